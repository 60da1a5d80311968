//! Encode/decode throughput of arca's range coder vs constriction's, same stream, same CDF.
//!
//! 1M symbols from a skewed, text-like 256-symbol distribution (Zipf-like), one shared integer
//! model at 24-bit precision. Each symbol is one byte of input, so Msym/s = MB/s of input.
//! Run: `cargo bench -p arca-coder`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use arca_coder::{RangeDecoder, RangeEncoder, WordCursor, WriteWords, cumulative, quantize_logits};
use constriction::stream::model::DefaultContiguousCategoricalEntropyModel;
use constriction::stream::queue::{DefaultRangeEncoder, RangeDecoder as CRangeDecoder};
use constriction::stream::{Decode, Encode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N: usize = 1_000_000;
const PRECISION: u32 = 24;

struct VecSink(Vec<u32>);

impl WriteWords for VecSink {
    type Error = std::convert::Infallible;
    #[inline]
    fn write_word(&mut self, w: u32) -> Result<(), Self::Error> {
        self.0.push(w);
        Ok(())
    }
}

/// Zipf-like logits (Q8 nats) over 256 byte values, shuffled so frequent symbols are spread out.
fn model() -> (Vec<u32>, Vec<u32>) {
    let logits: Vec<i32> = (0..256u32)
        .map(|i| {
            let rank = (i * 167 + 13) % 256; // a permutation of 0..256
            -((f64::from(rank) + 1.0).ln() * 1.1 * 256.0) as i32
        })
        .collect();
    let mut freqs = vec![0u32; 256];
    quantize_logits(&logits, 8, PRECISION, &mut freqs).unwrap();
    let mut cdf = vec![0u32; 257];
    cumulative(&freqs, &mut cdf).unwrap();
    (freqs, cdf)
}

fn stream(cdf: &[u32]) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..N)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let t = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as u32; // 24 bits
            cdf.partition_point(|&c| c <= t) - 1
        })
        .collect()
}

fn arca_encode(cdf: &[u32], symbols: &[usize]) -> Vec<u32> {
    let mut enc = RangeEncoder::new(VecSink(Vec::with_capacity(N / 4)));
    for &s in symbols {
        enc.encode_with_cdf(cdf, s, PRECISION).unwrap();
    }
    enc.finish().unwrap().0
}

fn arca_decode(cdf: &[u32], words: &[u32], out: &mut [usize]) {
    let mut dec = RangeDecoder::new(WordCursor::new(words)).unwrap();
    for o in out.iter_mut() {
        *o = dec.decode_with_cdf(cdf, PRECISION).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let (freqs, cdf) = model();
    let symbols = stream(&cdf);
    let cmodel = DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(
        &freqs, false,
    )
    .unwrap();

    // Both must round-trip, and compress to about the same size.
    let arca_words = arca_encode(&cdf, &symbols);
    let mut out = vec![0usize; N];
    arca_decode(&cdf, &arca_words, &mut out);
    assert_eq!(out, symbols);
    let mut cenc = DefaultRangeEncoder::new();
    for &s in &symbols {
        cenc.encode_symbol(s, cmodel.as_view()).unwrap();
    }
    let c_words = cenc.into_compressed().unwrap();
    let mut cdec: CRangeDecoder<u32, u64, _> =
        CRangeDecoder::from_compressed(c_words.as_slice()).unwrap();
    for &s in &symbols {
        assert_eq!(cdec.decode_symbol(cmodel.as_view()).unwrap(), s);
    }
    let info: f64 = symbols
        .iter()
        .map(|&s| 24.0 - f64::from(freqs[s]).log2())
        .sum();
    eprintln!(
        "stream: {N} symbols, information {:.4} bits/sym; arca {} words ({:.4} bits/sym), constriction {} words ({:.4} bits/sym)",
        info / N as f64,
        arca_words.len(),
        arca_words.len() as f64 * 32.0 / N as f64,
        c_words.len(),
        c_words.len() as f64 * 32.0 / N as f64,
    );

    let mut g = c.benchmark_group("range_coder_1M_sym_256");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("encode/arca", |b| {
        b.iter(|| black_box(arca_encode(&cdf, black_box(&symbols))))
    });
    g.bench_function("encode/constriction", |b| {
        b.iter(|| {
            let mut enc = DefaultRangeEncoder::with_write_backend(Vec::with_capacity(N / 4));
            for &s in black_box(&symbols) {
                enc.encode_symbol(s, cmodel.as_view()).unwrap();
            }
            black_box(enc.into_compressed().unwrap())
        })
    });
    g.bench_function("decode/arca", |b| {
        b.iter(|| {
            arca_decode(&cdf, black_box(&arca_words), &mut out);
            black_box(&out);
        })
    });
    g.bench_function("decode/constriction", |b| {
        b.iter(|| {
            let mut dec: CRangeDecoder<u32, u64, _> =
                CRangeDecoder::from_compressed(black_box(c_words.as_slice())).unwrap();
            for o in out.iter_mut() {
                *o = dec.decode_symbol(cmodel.as_view()).unwrap();
            }
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
