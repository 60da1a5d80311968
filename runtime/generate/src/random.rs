//! The seeded random numbers of the random-weight models (tests and benchmarks): splitmix64,
//! the same stream on every platform, written once for the native decoder and the Llama path.

/// Uniform values in `[-scale, scale)` from `seed`: each call `next(scale)` gives the next one.
pub(crate) fn uniform(seed: u64) -> impl FnMut(f32) -> f32 {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    move |scale: f32| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}
