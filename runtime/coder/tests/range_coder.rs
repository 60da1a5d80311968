//! Round trips, extremes, errors and hostile input for the range coder.
#![allow(clippy::unwrap_used)]

mod common;

use arca_coder::{
    BufferFull, ByteWordCursor, Cdf, DecodeError, EncodeError, RangeDecoder, RangeEncoder,
    WordCursor, quantize_logits, quantize_weights, words_to_le_bytes,
};
use common::{Rng, VecSink, cdf_of};
use proptest::prelude::*;

/// Encodes `symbols` with `(freqs, precision)` per step via `encode`, decodes via
/// `decode_with_cdf`, and checks the round trip. Returns the number of words.
fn round_trip(models: &[(Vec<u32>, u32)], symbols: &[(usize, usize)]) -> usize {
    let cdfs: Vec<Vec<u32>> = models.iter().map(|(f, _)| cdf_of(f)).collect();
    let mut enc = RangeEncoder::new(VecSink::default());
    for &(m, s) in symbols {
        let (cdf, p) = (&cdfs[m], models[m].1);
        enc.encode(cdf[s], cdf[s + 1] - cdf[s], p).unwrap();
    }
    let words = enc.finish().unwrap().0;
    let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
    for (i, &(m, s)) in symbols.iter().enumerate() {
        let got = dec.decode_with_cdf(&cdfs[m], models[m].1).unwrap();
        assert_eq!(got, s, "symbol {i}");
    }
    words.len()
}

/// Random model: `n` symbols, random weights (some zero), normalized at `precision`.
fn random_model(rng: &mut Rng, n: usize, precision: u32) -> Vec<u32> {
    let shape = rng.below(4);
    let mut w: Vec<u32> = (0..n)
        .map(|_| match shape {
            0 => rng.below(1 << 16) as u32,
            1 => (rng.below(1 << 31) as u32) >> rng.below(31),
            2 => u32::from(rng.below(8) == 0) * 1000,
            _ => rng.next_u64() as u32,
        })
        .collect();
    quantize_weights(&mut w, precision).unwrap();
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_streams_round_trip(seed in any::<u64>(), n_models in 1usize..5, len in 0usize..3000) {
        let mut rng = Rng(seed | 1);
        let models: Vec<(Vec<u32>, u32)> = (0..n_models).map(|_| {
            let precision = 1 + rng.below(24) as u32;
            let max_n = (1u64 << precision).min(700);
            let n = 1 + rng.below(max_n) as usize;
            (random_model(&mut rng, n, precision), precision)
        }).collect();
        let cdfs: Vec<Vec<u32>> = models.iter().map(|(f, _)| cdf_of(f)).collect();
        let symbols: Vec<(usize, usize)> = (0..len).map(|_| {
            let m = rng.below(n_models as u64) as usize;
            // Half the time any symbol (improbable ones too), else one drawn from the model.
            let s = if rng.below(2) == 0 {
                rng.below(models[m].0.len() as u64) as usize
            } else {
                rng.sample(&cdfs[m], models[m].1)
            };
            (m, s)
        }).collect();
        round_trip(&models, &symbols);
    }

    #[test]
    fn mixed_bits_and_symbols_round_trip(seed in any::<u64>(), len in 0usize..3000) {
        let mut rng = Rng(seed | 1);
        let freqs = random_model(&mut rng, 256, 24);
        let cdf = cdf_of(&freqs);
        let ops: Vec<(bool, u16, bool, usize)> = (0..len).map(|_| {
            let p1 = match rng.below(4) { 0 => 1, 1 => 65535, _ => 1 + rng.below(65535) as u16 };
            (rng.below(3) == 0, p1, rng.below(2) == 0, rng.below(256) as usize)
        }).collect();
        let mut enc = RangeEncoder::new(VecSink::default());
        for &(is_bit, p1, bit, s) in &ops {
            if is_bit { enc.encode_bit(bit, p1).unwrap() } else { enc.encode_with_cdf(&cdf, s, 24).unwrap() }
        }
        let words = enc.finish().unwrap().0;
        let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
        for &(is_bit, p1, bit, s) in &ops {
            if is_bit {
                prop_assert_eq!(dec.decode_bit(p1).unwrap(), bit);
            } else {
                prop_assert_eq!(dec.decode_with_cdf(&cdf, 24).unwrap(), s);
            }
        }
    }

    #[test]
    fn garbage_words_never_panic(words in proptest::collection::vec(any::<u32>(), 0..40), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let n = 1 + rng.below(300) as usize;
        let freqs = random_model(&mut rng, n, 24);
        let cdf = cdf_of(&freqs);
        let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
        for _ in 0..500 {
            let r = match rng.below(4) {
                0 => dec.decode_bit(1 + rng.below(65535) as u16).map(usize::from),
                1 => {
                    // decode_target + advance with an arbitrary (possibly wrong) symbol.
                    let _ = dec.decode_target(24);
                    let s = rng.below(freqs.len() as u64) as usize;
                    dec.advance(cdf[s], freqs[s], 24).map(|_| s)
                }
                2 => dec.decode_with_cdf(&[0, 1, 2, 3, 4], 2),
                _ => dec.decode_with_cdf(&cdf, 24),
            };
            if let Err(e) = r {
                prop_assert_eq!(e, DecodeError::CorruptData);
            }
        }
    }

    #[test]
    fn garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let cdf = [0u32, 1, 1 << 23, (1 << 24) - 1, 1 << 24];
        let mut dec = RangeDecoder::new(ByteWordCursor::new(&bytes)).unwrap();
        for _ in 0..300 {
            let _ = dec.decode_with_cdf(&cdf, 24);
            let _ = dec.decode_bit(3);
        }
    }

    #[test]
    fn bits_so_far_bounds_the_finished_length(seed in any::<u64>(), len in 0usize..2000) {
        let mut rng = Rng(seed | 1);
        let freqs = random_model(&mut rng, 64, 20);
        let cdf = cdf_of(&freqs);
        let mut enc = RangeEncoder::new(VecSink::default());
        let mut prev = enc.bits_so_far();
        for i in 0..len {
            let s = rng.sample(&cdf, 20);
            enc.encode_with_cdf(&cdf, s, 20).unwrap();
            let bound = enc.bits_so_far();
            prop_assert!(bound >= prev);
            prev = bound;
            if i % 97 == 0 {
                let words = enc.clone().finish().unwrap().0;
                prop_assert!(words.len() as u64 * 32 <= bound);
            }
        }
    }
}

impl Clone for VecSink {
    fn clone(&self) -> Self {
        VecSink(self.0.clone())
    }
}

#[test]
fn empty_stream_is_empty() {
    let words = RangeEncoder::new(VecSink::default()).finish().unwrap().0;
    assert!(words.is_empty());
    let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
    // Reading past the end gives zeros: the first symbol of a table.
    assert_eq!(dec.decode_with_cdf(&[0, 5, 16], 4).unwrap(), 0);
}

#[test]
fn one_dominant_symbol() {
    for n in [2usize, 3, 256, 5000] {
        let mut freqs = vec![1u32; n];
        freqs[n / 2] = (1 << 24) - (n as u32 - 1);
        let models = [(freqs, 24)];
        // Mostly the dominant symbol...
        let common: Vec<(usize, usize)> = (0..20_000)
            .map(|i| (0, if i % 1000 == 7 { 0 } else { n / 2 }))
            .collect();
        let words = round_trip(&models, &common);
        // 20 rare symbols of 24 bits each; the 19980 others cost almost nothing.
        assert!(words <= 20 * 24 / 32 + 2, "n={n}: {words} words");
        // ...and only the improbable ones (24 bits each, worst case).
        let rare: Vec<(usize, usize)> = (0..3000)
            .map(|i| (0, if i % 2 == 0 { 0 } else { n - 1 }))
            .collect();
        let words = round_trip(&models, &rare);
        assert!(words <= 3000 * 24 / 32 + 2, "n={n}: {words} words");
    }
}

#[test]
fn large_alphabets() {
    let mut rng = Rng(42);
    for (n, precision) in [
        (4096usize, 12u32),
        (8192, 13),
        (5000, 24),
        (1 << 16, 24),
        (70_000, 17),
    ] {
        let freqs = random_model(&mut rng, n, precision);
        let symbols: Vec<(usize, usize)> = (0..5000)
            .map(|_| (0, rng.below(n as u64) as usize))
            .collect();
        round_trip(&[(freqs, precision)], &symbols);
    }
}

#[test]
fn precision_1_and_24() {
    let mut rng = Rng(7);
    let p1 = (vec![1u32, 1], 1);
    let p24 = (vec![(1 << 24) - 1, 1], 24);
    let p24b = (vec![1, (1 << 24) - 1], 24);
    let models = [p1, p24, p24b];
    let symbols: Vec<(usize, usize)> = (0..20_000)
        .map(|_| (rng.below(3) as usize, rng.below(2) as usize))
        .collect();
    round_trip(&models, &symbols);
}

#[test]
fn runs_of_all_ones_words_and_carries() {
    // Always the last symbol with tiny probability drives `low` up: 0xFFFF_FFFF words, carries.
    let models = [
        (vec![(1 << 24) - 1, 1], 24),
        (vec![1, (1 << 24) - 1], 24),
        (vec![1 << 23, 1 << 23], 24),
    ];
    let mut rng = Rng(99);
    for pattern in 0..6 {
        let symbols: Vec<(usize, usize)> = (0..4000)
            .map(|i| match pattern {
                0 => (0, 1),
                1 => (1, 1),
                2 => (2, 1),
                3 => (if i % 50 == 49 { 2 } else { 0 }, 1),
                4 => (0, usize::from(i % 97 == 0)),
                _ => (rng.below(3) as usize, usize::from(rng.below(8) != 0)),
            })
            .collect();
        round_trip(&models, &symbols);
    }
    // The all-ones pattern really produces 0xFFFF_FFFF words.
    let mut enc = RangeEncoder::new(VecSink::default());
    for _ in 0..1000 {
        enc.encode((1 << 24) - 1, 1, 24).unwrap();
    }
    let words = enc.finish().unwrap().0;
    assert!(words.iter().filter(|&&w| w == u32::MAX).count() > 100);
}

#[test]
fn extreme_bits() {
    for p1 in [1u16, 2, 32768, 65534, 65535] {
        let bits: Vec<bool> = (0..5000).map(|i| (i * 7919) % 13 < 6).collect();
        let mut enc = RangeEncoder::new(VecSink::default());
        for &b in &bits {
            enc.encode_bit(b, p1).unwrap();
        }
        let words = enc.finish().unwrap().0;
        let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
        for &b in &bits {
            assert_eq!(dec.decode_bit(p1).unwrap(), b, "p1={p1}");
        }
    }
}

#[test]
fn invalid_arguments_are_errors() {
    let mut enc = RangeEncoder::new(VecSink::default());
    assert_eq!(enc.encode(0, 0, 8), Err(EncodeError::InvalidSymbol));
    assert_eq!(enc.encode(200, 57, 8), Err(EncodeError::InvalidSymbol));
    assert_eq!(
        enc.encode(u32::MAX, u32::MAX, 24),
        Err(EncodeError::InvalidSymbol)
    );
    assert_eq!(enc.encode(0, 1, 0), Err(EncodeError::InvalidPrecision));
    assert_eq!(enc.encode(0, 1, 25), Err(EncodeError::InvalidPrecision));
    assert_eq!(
        enc.encode_bit(true, 0),
        Err(EncodeError::InvalidProbability)
    );
    assert_eq!(
        enc.encode_with_cdf(&[0, 3, 8], 2, 3),
        Err(EncodeError::InvalidSymbol)
    );
    assert_eq!(
        enc.encode_with_cdf(&[0, 3, 7], 0, 3),
        Err(EncodeError::InvalidCdf)
    );
    assert_eq!(
        enc.encode_with_cdf(&[1, 3, 8], 0, 3),
        Err(EncodeError::InvalidCdf)
    );
    assert_eq!(
        enc.encode_with_cdf(&[0, 5, 3, 8], 1, 3),
        Err(EncodeError::InvalidCdf)
    );
    assert_eq!(
        enc.encode_with_cdf(&[8], 0, 3),
        Err(EncodeError::InvalidCdf)
    );
    assert_eq!(enc.encode_with_cdf(&[], 0, 3), Err(EncodeError::InvalidCdf));
    // The encoder is still usable after argument errors.
    enc.encode(3, 5, 8).unwrap();
    let words = enc.finish().unwrap().0;

    let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
    assert_eq!(dec.advance(0, 0, 8), Err(DecodeError::InvalidSymbol));
    assert_eq!(dec.advance(0, 1, 25), Err(DecodeError::InvalidPrecision));
    assert_eq!(dec.decode_bit(0), Err(DecodeError::InvalidProbability));
    assert_eq!(
        dec.decode_with_cdf(&[0, 3, 7], 3),
        Err(DecodeError::InvalidCdf)
    );
    assert_eq!(
        dec.decode_with_cdf(&[0, 3, 8], 0),
        Err(DecodeError::InvalidPrecision)
    );
    assert!(dec.decode_target(0) < 2 && dec.decode_target(99) < 1 << 24);
    let t = dec.decode_target(8);
    assert!((3..8).contains(&t));
    dec.advance(3, 5, 8).unwrap();
    // A non-monotone table never panics (an error or some symbol).
    for hi in [0u32, 0x2000_0000, 0x8000_0000, 0xF000_0000, u32::MAX] {
        let words = [hi, 0];
        let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
        for cdf in [
            [0u32, 9, 2, 16],
            [0, 0, 0, 16],
            [0, 16, 16, 16],
            [0, 16, 0, 16],
        ] {
            let _ = dec.decode_with_cdf(&cdf, 4);
        }
    }
}

#[test]
fn full_heapless_sink_is_an_error() {
    let mut enc = RangeEncoder::new(heapless::Vec::<u32, 4>::new());
    let mut failed = None;
    for i in 0..10_000 {
        if let Err(e) = enc.encode(i % 200, 1, 24) {
            failed = Some(e);
            break;
        }
    }
    assert_eq!(failed, Some(EncodeError::Write(BufferFull)));

    // Fits during encoding but not at finish.
    let mut enc = RangeEncoder::new(heapless::Vec::<u32, 1>::new());
    for _ in 0..3 {
        enc.encode(12345, 1, 24).unwrap();
    }
    assert!(matches!(enc.finish(), Err(EncodeError::Write(BufferFull))));

    // A zero-capacity sink still codes an empty message.
    let enc = RangeEncoder::new(heapless::Vec::<u32, 0>::new());
    assert!(enc.finish().unwrap().is_empty());
}

#[test]
fn heapless_sink_round_trip_and_byte_cursor() {
    let logits: Vec<i32> = (0..256).map(|i| -((i * 37) % 900)).collect();
    let mut freqs = vec![0u32; 256];
    quantize_logits(&logits, 6, 24, &mut freqs).unwrap();
    let cdf = Cdf::<256>::from_freqs(&freqs, 24).unwrap();
    let message: Vec<usize> = (0..500).map(|i| (i * i + 3) % 256).collect();
    let mut enc = RangeEncoder::new(heapless::Vec::<u32, 1024>::new());
    for &s in &message {
        cdf.encode(&mut enc, s).unwrap();
    }
    let words = enc.finish().unwrap();
    let mut bytes = vec![0u8; words.len() * 4];
    assert_eq!(words_to_le_bytes(&words, &mut bytes), Ok(bytes.len()));
    assert_eq!(words_to_le_bytes(&words, &mut [0u8; 3]), Err(BufferFull));
    // Trailing zero bytes may be dropped: the cursor zero-pads and the decoder reads zeros.
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    let mut dec = RangeDecoder::new(ByteWordCursor::new(&bytes)).unwrap();
    for &s in &message {
        assert_eq!(cdf.decode(&mut dec).unwrap(), s);
    }
}

/// Information content in bits of `symbols` under `freqs` at `precision`.
fn information_bits(freqs: &[u32], precision: u32, symbols: &[usize]) -> f64 {
    symbols
        .iter()
        .map(|&s| f64::from(precision) - f64::from(freqs[s]).log2())
        .sum()
}

#[test]
fn coded_size_is_close_to_the_entropy() {
    let mut rng = Rng(2024);
    // Skewed, text-like 256-symbol model (Zipf-ish) at 24 bits.
    let logits: Vec<i32> = (0..256)
        .map(|i| -((i as f64 + 1.0).ln() * 1.3 * 256.0) as i32)
        .collect();
    let mut freqs = vec![0u32; 256];
    quantize_logits(&logits, 8, 24, &mut freqs).unwrap();
    let cdf = cdf_of(&freqs);
    let symbols: Vec<usize> = (0..300_000).map(|_| rng.sample(&cdf, 24)).collect();
    let mut enc = RangeEncoder::new(VecSink::default());
    for &s in &symbols {
        enc.encode_with_cdf(&cdf, s, 24).unwrap();
    }
    let words = enc.finish().unwrap().0;
    let info = information_bits(&freqs, 24, &symbols);
    let coded = words.len() as f64 * 32.0;
    assert!(
        coded <= info * 1.001 + 96.0,
        "coded {coded} bits, information {info} bits"
    );

    // Binary coding too: skewed bits.
    let p1 = 3000u16;
    let bits: Vec<bool> = (0..300_000)
        .map(|_| rng.below(65536) < u64::from(p1))
        .collect();
    let mut enc = RangeEncoder::new(VecSink::default());
    for &b in &bits {
        enc.encode_bit(b, p1).unwrap();
    }
    let words = enc.finish().unwrap().0;
    let info: f64 = bits
        .iter()
        .map(|&b| 16.0 - f64::from(if b { p1 } else { 65535 - p1 + 1 }).log2())
        .sum();
    let coded = words.len() as f64 * 32.0;
    assert!(
        coded <= info * 1.001 + 96.0,
        "coded {coded} bits, information {info} bits"
    );
}
