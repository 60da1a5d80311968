//! The integer kernels of the native engine: `i16 x i8` dot products with `i32` accumulators,
//! a portable loop and an AVX2 tile (chosen once per model, from the CPU's features). Integer
//! sums do not depend on their order, so every kernel gives the same bits.

/// One per-channel integer operation between a dense layer and its table (or the output),
/// applied in order to the layer's int32 accumulators with ONNX semantics (`i32` arithmetic that
/// wraps, division truncating toward zero). Lowering proved no result overflows and no division
/// traps. Also what [`LoweredLayer::ops`](crate::engine::LoweredLayer::ops) holds, for code generators.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoweredOp {
    /// `acc[j] *= c[j]`.
    Mul(Vec<i32>),
    /// `acc[j] += c[j]`.
    Add(Vec<i32>),
    /// `acc[j] -= c[j]`.
    Sub(Vec<i32>),
    /// `acc[j] /= c[j]`, truncating toward zero.
    Div(Vec<i32>),
    /// `acc[j] /= 2^s[j]`, truncating toward zero (integer division costs ~25 cycles per
    /// channel, a shift one).
    DivPow2(Vec<u32>),
    /// `acc[j] = clamp(acc[j], lo, hi)`.
    Clip(i32, i32),
}

/// `acc = x . W`, then the elementwise chain, then (except for the last layer) a table.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    /// Inputs per output channel.
    pub(crate) k: usize,
    /// Output channels.
    pub(crate) m: usize,
    /// Weights transposed to `[m][k]`, so each output is one contiguous dot product.
    pub(crate) wt: Vec<i8>,
    /// The same weights packed for the AVX2 kernel ([`pack_pairs`]), or empty.
    pub(crate) packed: Vec<i8>,
    pub(crate) ops: Vec<LoweredOp>,
    /// The nonlinearity `x' = table[v]` (indices proven in range), or `None` for the output.
    pub(crate) table: Option<Vec<i16>>,
}

/// Rows evaluated together by [`IntMlp::eval_rows`]: each weight is loaded once per tile.
pub(crate) const TILE: usize = 4;

/// One dot product per output channel. Products of i16 and i8 fit in i32 and every sum is
/// proven below 2^31 by `lower`; wrapping arithmetic keeps debug builds free of overflow checks
/// in the hot loop (it never wraps).
#[inline(always)]
pub(crate) fn dense(x: &[i16], layer: &Dense, acc: &mut [i32], avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx2 && !layer.packed.is_empty() && x.len() == layer.k {
        #[allow(unsafe_code)]
        // SAFETY: `avx2` is true only on paths entered after AVX2 was detected; the input has
        // `k` values and the packed weights their documented shape.
        unsafe {
            gemm_avx2::<1>([x], layer, [acc])
        };
        return;
    }
    let _ = avx2;
    let k = layer.k;
    for (a, row) in acc.iter_mut().zip(layer.wt.chunks_exact(k)) {
        *a = dot(x, row);
    }
}

#[inline(always)]
pub(crate) fn dot(x: &[i16], w: &[i8]) -> i32 {
    x.iter()
        .zip(w)
        .map(|(&xv, &w)| i32::from(xv).wrapping_mul(i32::from(w)))
        .fold(0i32, i32::wrapping_add)
}

/// [`dense`] for a tile of rows: each weight is read once for all of them. Exact for the same
/// reason as [`dense`]: integer sums, in another order.
#[inline(always)]
pub(crate) fn dense_tile(
    xs: &[Vec<i16>; TILE],
    layer: &Dense,
    accs: &mut [Vec<i32>; TILE],
    avx2: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2 && !layer.packed.is_empty() && xs.iter().all(|x| x.len() == layer.k) {
        let [a, b, c, d] = accs;
        #[allow(unsafe_code)]
        // SAFETY: as in `dense`.
        unsafe {
            gemm_avx2::<TILE>(
                [&xs[0], &xs[1], &xs[2], &xs[3]],
                layer,
                [a.as_mut_slice(), b, c, d],
            )
        };
        return;
    }
    let _ = avx2;
    for (j, row) in layer.wt.chunks_exact(layer.k).enumerate() {
        for (x, acc) in xs.iter().zip(accs.iter_mut()) {
            acc[j] = dot(x, row);
        }
    }
}

/// Output channels per block of the packed layout.
pub(crate) const PACK_COLS: usize = 16;

/// Packs `[m][k]` weights for [`gemm_avx2`]: for each block of 16 output channels and each
/// input pair `(2p, 2p + 1)`, the 16 channels' weight pairs (kept as i8: half the cache
/// footprint, widened to i16 on load), so one `vpmaddwd` of a broadcast input pair with 8 of
/// them adds both products into 8 channels at once. Empty when
/// the shape does not divide (then the dot-product kernel runs).
pub(crate) fn pack_pairs(wt: &[i8], k: usize, m: usize) -> Vec<i8> {
    if !k.is_multiple_of(2) || !m.is_multiple_of(PACK_COLS) || wt.len() != k * m {
        return Vec::new();
    }
    let mut packed = Vec::with_capacity(k * m);
    for block in 0..m / PACK_COLS {
        for p in 0..k / 2 {
            for c in 0..PACK_COLS {
                let j = block * PACK_COLS + c;
                packed.push(wt[j * k + 2 * p]);
                packed.push(wt[j * k + 2 * p + 1]);
            }
        }
    }
    packed
}

/// `R` rows times one packed layer: for each block of 16 channels, 2 accumulators per row
/// over the input pairs (the weights loaded once for all `R` rows, each row's pair broadcast
/// once for both accumulators). Lane sums stay below 2^31 as in [`dense`]: the same products,
/// each pair summed once by `vpmaddwd` (at most 2 * 2^15 * 2^7).
///
/// # Safety
///
/// AVX2 must be available; every `xs[r]` has `layer.k` values, every `accs[r]` `layer.m`, and
/// `layer.packed` is [`pack_pairs`] of the layer.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
pub(crate) unsafe fn gemm_avx2<const R: usize>(
    xs: [&[i16]; R],
    layer: &Dense,
    accs: [&mut [i32]; R],
) {
    use std::arch::x86_64::*;
    let pairs = layer.k / 2;
    let w = layer.packed.as_ptr();
    for block in 0..layer.m / PACK_COLS {
        let mut lo = [_mm256_setzero_si256(); R];
        let mut hi = [_mm256_setzero_si256(); R];
        let wb = block * pairs * 2 * PACK_COLS;
        for p in 0..pairs {
            // SAFETY: wb + (p + 1) * 32 <= m * k = packed.len(); 2p + 1 < k = x.len().
            unsafe {
                let at = w.add(wb + p * 2 * PACK_COLS);
                let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(at.cast()));
                let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(at.add(PACK_COLS).cast()));
                for r in 0..R {
                    let pair = xs[r].as_ptr().add(2 * p).cast::<i32>().read_unaligned();
                    let xb = _mm256_set1_epi32(pair);
                    lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(xb, w0));
                    hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(xb, w1));
                }
            }
        }
        for r in 0..R {
            // SAFETY: block * 16 + 16 <= m = accs[r].len().
            unsafe {
                let out = accs[r].as_mut_ptr().add(block * PACK_COLS);
                _mm256_storeu_si256(out.cast(), lo[r]);
                _mm256_storeu_si256(out.add(8).cast(), hi[r]);
            }
        }
    }
}

#[inline(always)]
pub(crate) fn apply(op: &LoweredOp, v: &mut [i32]) {
    match op {
        LoweredOp::Mul(c) => v
            .iter_mut()
            .zip(c)
            .for_each(|(a, &b)| *a = a.wrapping_mul(b)),
        LoweredOp::Add(c) => v
            .iter_mut()
            .zip(c)
            .for_each(|(a, &b)| *a = a.wrapping_add(b)),
        LoweredOp::Sub(c) => v
            .iter_mut()
            .zip(c)
            .for_each(|(a, &b)| *a = a.wrapping_sub(b)),
        // Divisors are non-zero and `i32::MIN / -1` is excluded by `lower`.
        LoweredOp::Div(c) => v
            .iter_mut()
            .zip(c)
            .for_each(|(a, &b)| *a = a.wrapping_div(b)),
        LoweredOp::DivPow2(c) => v.iter_mut().zip(c).for_each(|(a, &s)| {
            // Round toward zero: add 2^s - 1 to negative dividends before the arithmetic shift.
            let bias = (*a >> 31) & ((1i32 << s) - 1);
            *a = a.wrapping_add(bias) >> s;
        }),
        LoweredOp::Clip(lo, hi) => v.iter_mut().for_each(|a| *a = (*a).clamp(*lo, *hi)),
    }
}
