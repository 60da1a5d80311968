//! Shared helpers for the integration tests.
#![allow(dead_code)]

use arca_coder::WriteWords;
use core::convert::Infallible;

/// A growable sink (the crate's own `Vec` impl needs the `alloc` feature).
#[derive(Default, Debug)]
pub struct VecSink(pub Vec<u32>);

impl WriteWords for VecSink {
    type Error = Infallible;
    fn write_word(&mut self, w: u32) -> Result<(), Infallible> {
        self.0.push(w);
        Ok(())
    }
}

/// Cumulative table from frequencies.
pub fn cdf_of(freqs: &[u32]) -> Vec<u32> {
    let mut cdf = vec![0u32; freqs.len() + 1];
    arca_coder::cumulative(freqs, &mut cdf).expect("cumulative");
    cdf
}

/// Small deterministic PRNG (xorshift64*), so tests need no extra crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A symbol drawn from `cdf` (total `2^precision`).
    pub fn sample(&mut self, cdf: &[u32], precision: u32) -> usize {
        let t = self.below(1u64 << precision) as u32;
        cdf.partition_point(|&c| c <= t) - 1
    }
}
