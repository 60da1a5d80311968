//! Quantizer invariants: exact totals, every frequency >= 1, monotone, deterministic.
#![allow(clippy::unwrap_used)]

mod common;

use arca_coder::quantize::{EXP_ONE, EXP_TABLE_LEN, exp_neg_q30, quantize_cumulative};
use arca_coder::{
    Cdf, QuantizeError, RangeDecoder, RangeEncoder, WordCursor, bit_probability, cumulative,
    logits_f32_to_fixed, quantize_logits, quantize_probs_f32, quantize_weights,
};
use common::{Rng, VecSink, cdf_of};
use proptest::prelude::*;

fn check_table(freqs: &[u32], precision: u32) {
    assert!(freqs.iter().all(|&f| f >= 1), "a zero frequency");
    let sum: u64 = freqs.iter().map(|&f| u64::from(f)).sum();
    assert_eq!(sum, 1u64 << precision);
}

fn logits_strategy() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        proptest::collection::vec(any::<i32>(), 1..600),
        proptest::collection::vec(-5000i32..5000, 1..600),
        proptest::collection::vec(
            prop_oneof![Just(0i32), Just(i32::MIN), Just(i32::MAX), -3i32..3],
            1..300
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn logits_give_exact_monotone_tables(logits in logits_strategy(), frac_bits in 0u32..=16, p in 1u32..=24) {
        let n = logits.len();
        let mut freqs = vec![0u32; n];
        let r = quantize_logits(&logits, frac_bits, p, &mut freqs);
        if n as u64 > 1u64 << p {
            prop_assert_eq!(r, Err(QuantizeError::TooManySymbols));
            return Ok(());
        }
        r.unwrap();
        check_table(&freqs, p);
        // Monotone: a larger logit never gets a smaller frequency.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| logits[i]);
        for w in order.windows(2) {
            let (a, b) = (w[0], w[1]);
            if logits[a] < logits[b] {
                prop_assert!(freqs[a] <= freqs[b], "logit {} -> {}, logit {} -> {}", logits[a], freqs[a], logits[b], freqs[b]);
            }
        }
        // Deterministic.
        let mut again = vec![0u32; n];
        quantize_logits(&logits, frac_bits, p, &mut again).unwrap();
        prop_assert_eq!(&freqs, &again);
        // Shift invariant (when the shift doesn't saturate).
        if logits.iter().all(|&l| l.checked_add(12345).is_some()) {
            let shifted: Vec<i32> = logits.iter().map(|&l| l + 12345).collect();
            quantize_logits(&shifted, frac_bits, p, &mut again).unwrap();
            prop_assert_eq!(&freqs, &again);
        }
    }

    #[test]
    fn probs_give_exact_tables(probs in proptest::collection::vec(prop_oneof![0.0f32..=1.0, Just(0.0), 1e-30f32..1e-6, 1.0f32..1e30], 1..600), p in 1u32..=24) {
        let mut freqs = vec![0u32; probs.len()];
        let r = quantize_probs_f32(&probs, p, &mut freqs);
        if probs.len() as u64 > 1u64 << p {
            prop_assert_eq!(r, Err(QuantizeError::TooManySymbols));
        } else {
            r.unwrap();
            check_table(&freqs, p);
        }
    }

    #[test]
    fn cumulative_starts_are_exact_tables(w in proptest::collection::vec(0u64..1 << 50, 1..300), p in 9u32..=24) {
        // Weights summing below 2^64: each < 2^50, at most 300 of them.
        let n = w.len() as u32;
        let total: u64 = w.iter().sum::<u64>().max(1);
        let mut below = 0u64;
        let mut starts = Vec::new();
        for (x, &wx) in w.iter().enumerate() {
            starts.push(quantize_cumulative(below, total, x as u32, n, p));
            below += wx;
        }
        starts.push(quantize_cumulative(total, total, n, n, p));
        prop_assert_eq!(starts[0], 0);
        prop_assert_eq!(*starts.last().unwrap(), 1 << p);
        let freqs: Vec<u32> = starts.windows(2).map(|s| s[1] - s[0]).collect();
        check_table(&freqs, p);
        // In proportion: within 1 + 2^-16 of the exact share plus the floor losses.
        for (&f, &wx) in freqs.iter().zip(&w) {
            let exact = wx as f64 / total as f64 * f64::from((1u32 << p) - n);
            prop_assert!((f as f64 - 1.0 - exact).abs() <= 1.0 + exact * 1e-4);
        }
    }

    #[test]
    fn weights_give_exact_tables(w in proptest::collection::vec(any::<u32>(), 1..600), p in 10u32..=24) {
        let mut freqs = w.clone();
        quantize_weights(&mut freqs, p).unwrap();
        check_table(&freqs, p);
        for i in 0..w.len() {
            for j in 0..w.len().min(40) {
                if w[i] < w[j] {
                    prop_assert!(freqs[i] <= freqs[j]);
                }
            }
        }
    }

    #[test]
    fn fixed_point_conversion_rounds_half_away(x in -1e6f32..1e6, frac_bits in 0u32..=16) {
        let mut out = [0i32];
        logits_f32_to_fixed(&[x], frac_bits, &mut out).unwrap();
        let want = (f64::from(x) * f64::from(1u32 << frac_bits)).round(); // f64::round: half away
        prop_assert_eq!(f64::from(out[0]), want.clamp(f64::from(i32::MIN), f64::from(i32::MAX)));
    }
}

#[test]
fn exp_table_matches_exp_and_is_monotone() {
    assert_eq!(exp_neg_q30(0), EXP_ONE);
    let mut prev = u32::MAX;
    for k in 0..EXP_TABLE_LEN {
        let v = exp_neg_q30(k);
        let want = (-(k as f64) / 64.0).exp() * f64::from(EXP_ONE);
        assert!((f64::from(v) - want).abs() <= 1.0, "k={k}: {v} vs {want}");
        assert!(v >= 1 && v <= prev, "k={k}");
        prev = v;
    }
    assert_eq!(exp_neg_q30(EXP_TABLE_LEN), 1);
    assert_eq!(exp_neg_q30(usize::MAX), 1);
}

#[test]
fn quantized_logits_are_close_to_softmax() {
    let mut rng = Rng(5);
    for _ in 0..50 {
        let logits: Vec<f32> = (0..256)
            .map(|_| (rng.below(20_000) as f32 - 10_000.0) / 1000.0)
            .collect();
        let mut fixed = vec![0i32; 256];
        logits_f32_to_fixed(&logits, 10, &mut fixed).unwrap();
        let mut freqs = vec![0u32; 256];
        quantize_logits(&fixed, 10, 24, &mut freqs).unwrap();
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let z: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
        // KL(softmax || quantized) in bits per symbol.
        let kl: f64 = logits
            .iter()
            .zip(&freqs)
            .map(|(&l, &f)| {
                let p = f64::from(l - max).exp() / z;
                let q = f64::from(f) / f64::from(1u32 << 24);
                p * (p / q).log2()
            })
            .sum();
        assert!(kl < 2e-4, "KL {kl} bits");
    }
}

#[test]
fn edge_cases() {
    // Many equal logits: uniform up to the leftover on the lowest index.
    let mut f = vec![0u32; 1000];
    quantize_logits(&vec![0; 1000], 8, 24, &mut f).unwrap();
    check_table(&f, 24);
    assert!(f[1..].iter().all(|&x| x == f[1]) && f[0] >= f[1] && f[0] - f[1] < 1000);
    // Huge gaps don't overflow; the far tail gets exactly 1.
    let mut f = [0u32; 3];
    quantize_logits(&[i32::MAX, i32::MIN, 0], 0, 24, &mut f).unwrap();
    assert_eq!(f, [(1 << 24) - 2, 1, 1]);
    // n == 2^precision: all ones.
    let mut f = vec![0u32; 256];
    quantize_logits(&(0..256).collect::<Vec<_>>(), 4, 8, &mut f).unwrap();
    assert!(f.iter().all(|&x| x == 1));
    // Single symbol.
    let mut f = [0u32];
    quantize_logits(&[-77], 3, 1, &mut f).unwrap();
    assert_eq!(f, [2]);
    // Probabilities.
    let mut f = [0u32; 3];
    quantize_probs_f32(&[0.5, 0.25, 0.25], 4, &mut f).unwrap();
    assert_eq!(f, [8, 4, 4]);
    quantize_probs_f32(&[0.0, -0.0, 0.0], 4, &mut f).unwrap();
    assert_eq!(f, [6, 5, 5]);
    quantize_probs_f32(&[7.0, 1.0, 0.0], 4, &mut f).unwrap(); // > 1 counts as 1
    check_table(&f, 4);
    assert_eq!(f[0], f[1] + 1);
}

#[test]
fn errors() {
    let mut f = [0u32; 3];
    assert_eq!(
        quantize_logits(&[1, 2], 0, 8, &mut f),
        Err(QuantizeError::LengthMismatch)
    );
    assert_eq!(
        quantize_logits(&[], 0, 8, &mut []),
        Err(QuantizeError::Empty)
    );
    assert_eq!(
        quantize_logits(&[1, 2, 3], 0, 1, &mut f),
        Err(QuantizeError::TooManySymbols)
    );
    assert_eq!(
        quantize_logits(&[1, 2, 3], 0, 0, &mut f),
        Err(QuantizeError::InvalidPrecision)
    );
    assert_eq!(
        quantize_logits(&[1, 2, 3], 0, 25, &mut f),
        Err(QuantizeError::InvalidPrecision)
    );
    assert_eq!(
        quantize_logits(&[1, 2, 3], 17, 8, &mut f),
        Err(QuantizeError::InvalidFracBits)
    );
    assert_eq!(
        quantize_probs_f32(&[0.1, f32::NAN, 0.2], 8, &mut f),
        Err(QuantizeError::NotFinite)
    );
    assert_eq!(
        quantize_probs_f32(&[0.1, f32::INFINITY, 0.2], 8, &mut f),
        Err(QuantizeError::NotFinite)
    );
    assert_eq!(
        quantize_probs_f32(&[0.1, -0.1, 0.2], 8, &mut f),
        Err(QuantizeError::Negative)
    );
    let mut o = [0i32; 2];
    assert_eq!(
        logits_f32_to_fixed(&[0.0, f32::NAN], 4, &mut o),
        Err(QuantizeError::NotFinite)
    );
    assert_eq!(
        logits_f32_to_fixed(&[0.0], 4, &mut o),
        Err(QuantizeError::LengthMismatch)
    );
    assert_eq!(
        logits_f32_to_fixed(&[0.0, 1.0], 17, &mut o),
        Err(QuantizeError::InvalidFracBits)
    );
    logits_f32_to_fixed(&[1e20, -1e20], 16, &mut o).unwrap();
    assert_eq!(o, [i32::MAX, i32::MIN]);
    logits_f32_to_fixed(&[1.5, -1.5], 0, &mut o).unwrap();
    assert_eq!(o, [2, -2]);
    logits_f32_to_fixed(&[0.499_999_97, -0.499_999_97], 0, &mut o).unwrap();
    assert_eq!(o, [0, 0]);

    let mut cdf = [0u32; 3];
    assert_eq!(
        cumulative(&[1, 2, 3], &mut cdf),
        Err(QuantizeError::LengthMismatch)
    );
    assert_eq!(
        cumulative(&[u32::MAX, 2], &mut cdf),
        Err(QuantizeError::InvalidFrequencies)
    );
    cumulative(&[1, 2], &mut cdf).unwrap();
    assert_eq!(cdf, [0, 1, 3]);
    let mut one = [9u32];
    cumulative(&[], &mut one).unwrap();
    assert_eq!(one, [0]);

    assert_eq!(
        Cdf::<2>::from_freqs(&[1, 2, 5], 3),
        Err(QuantizeError::CapacityExceeded)
    );
    assert_eq!(
        Cdf::<4>::from_freqs(&[1, 2, 4], 3),
        Err(QuantizeError::InvalidFrequencies)
    );
    assert_eq!(
        Cdf::<4>::from_freqs(&[0, 3, 5], 3),
        Err(QuantizeError::InvalidFrequencies)
    );
    assert_eq!(
        Cdf::<2>::from_logits(&[1, 2, 3], 0, 8),
        Err(QuantizeError::CapacityExceeded)
    );
    let c = Cdf::<4>::from_freqs(&[1, 2, 5], 3).unwrap();
    assert_eq!((c.len(), c.precision(), c.is_empty()), (3, 3, false));
    assert_eq!(c.interval(0), Some((0, 1)));
    assert_eq!(c.interval(2), Some((3, 5)));
    assert_eq!(c.interval(3), None);
    assert_eq!(
        (
            c.find(0),
            c.find(1),
            c.find(2),
            c.find(3),
            c.find(7),
            c.find(8)
        ),
        (Some(0), Some(1), Some(1), Some(2), Some(2), None)
    );
}

#[test]
fn bit_probability_values() {
    let cdf = [0u32, 1 << 14, 1 << 15, 3 << 14, 1 << 16];
    assert_eq!(bit_probability(&cdf, 0, 2, 4), 32768);
    assert_eq!(bit_probability(&cdf, 0, 1, 4), 49152);
    assert_eq!(bit_probability(&cdf, 0, 3, 4), 16384);
    // Invalid or empty ranges: 1/2.
    assert_eq!(bit_probability(&cdf, 0, 0, 4), 32768);
    assert_eq!(bit_probability(&cdf, 0, 2, 5), 32768);
    assert_eq!(bit_probability(&cdf, 3, 2, 4), 32768);
    assert_eq!(bit_probability(&[0, 5, 5, 5], 1, 2, 3), 32768);
    assert_eq!(bit_probability(&[0, 9, 5, 12], 0, 1, 2), 32768);
    // Clamped to 1..=65535.
    assert_eq!(bit_probability(&[0, 1 << 24, (1 << 24) + 1], 0, 1, 2), 1);
    assert_eq!(bit_probability(&[0, 1, 1 << 24], 0, 1, 2), 65535);
}

#[test]
fn byte_cdf_as_binary_decisions_round_trips() {
    let mut rng = Rng(11);
    let logits: Vec<i32> = (0..256)
        .map(|i| {
            if i == 101 {
                9000
            } else {
                -(rng.below(4000) as i32)
            }
        })
        .collect();
    let mut freqs = vec![0u32; 256];
    quantize_logits(&logits, 10, 24, &mut freqs).unwrap();
    let cdf = cdf_of(&freqs);
    let bytes: Vec<u8> = (0..2000)
        .map(|i| {
            if i % 3 == 0 {
                101
            } else {
                rng.below(256) as u8
            }
        })
        .collect();
    let mut enc = RangeEncoder::new(VecSink::default());
    for &b in &bytes {
        let (mut lo, mut hi) = (0usize, 256usize);
        for bit in (0..8).rev() {
            let mid = (lo + hi) / 2;
            let one = (b >> bit) & 1 == 1;
            enc.encode_bit(one, bit_probability(&cdf, lo, mid, hi))
                .unwrap();
            if one { lo = mid } else { hi = mid }
        }
    }
    let words = enc.finish().unwrap().0;
    let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
    for &b in &bytes {
        let (mut lo, mut hi) = (0usize, 256usize);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if dec.decode_bit(bit_probability(&cdf, lo, mid, hi)).unwrap() {
                lo = mid
            } else {
                hi = mid
            }
        }
        assert_eq!(lo, usize::from(b));
    }
}
