//! The AVX2 kernels (x86-64, with FMA and F16C), run only when all three were detected
//! ([`super::Isa::detect`]): the portable loops' fused multiply-adds in the portable loops'
//! order, so both give the same bits.
//!
//! A dot product's eight lanes are one `__m256` accumulator; f16 weights are widened by F16C
//! (`vcvtph2ps`) and int8 ones by `vpmovsxbd` + `vcvtdq2ps`, both exact, eight at a time. The
//! matrix product walks blocks of 8 rows; each block's weights are loaded once from memory and
//! used by every token of the call, in groups of up to 4 tokens that keep 6 to 8 accumulators
//! (independent chains, to hide the multiply-add latency) in registers.

#![allow(unsafe_code)] // Loads and stores through raw pointers; each block says why it is in bounds.

use std::arch::x86_64::{
    __m128i, __m256, _MM_HINT_T0, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadl_epi64,
    _mm_loadu_si128, _mm_movehl_ps, _mm_prefetch, _mm_shuffle_ps, _mm256_castps256_ps128,
    _mm256_cvtepi8_epi32, _mm256_cvtepi32_ps, _mm256_cvtph_ps, _mm256_extractf128_ps,
    _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

use crate::llama::kernels::generic::Rows;

const F32: u8 = 0;
const F16: u8 = 1;
const I8: u8 = 2;

/// Eight weights at `p` as f32.
///
/// # Safety
///
/// `p` must be valid for reading 8 elements of precision `P` (32, 16 or 8 bytes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load<const P: u8>(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees the bytes are readable; all three loads are unaligned.
    unsafe {
        match P {
            F32 => _mm256_loadu_ps(p.cast::<f32>()),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast::<__m128i>())),
            _ => _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast::<__m128i>()))),
        }
    }
}

/// The lanes added as `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`
/// ([`super::generic::reduce8`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce8(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let u = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps::<1>(u, u)))
}

/// One matrix as a base pointer, its element precision and its row stride in bytes.
#[derive(Clone, Copy)]
struct Raw<'a> {
    base: *const u8,
    stride: usize,
    scales: &'a [u8],
}

/// [`super::matmul`] for `k` a multiple of 8.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn matmul(x: &[f32], k: usize, w: Rows<'_>, rows: usize, stride: usize, y: &mut [f32]) {
    let n = x.len() / k;
    assert!(k.is_multiple_of(8) && y.len() >= n * rows);
    let need = |size: usize| match rows {
        0 => 0,
        _ => ((rows - 1) * stride + k) * size,
    };
    match w {
        Rows::F32(b) => {
            assert!(b.len() >= need(4));
            let raw = Raw {
                base: b.as_ptr(),
                stride: stride * 4,
                scales: &[],
            };
            blocks::<F32>(x, n, k, raw, rows, y);
        }
        Rows::Floats(f) => {
            assert!(f.len() >= need(1));
            let raw = Raw {
                base: f.as_ptr().cast::<u8>(),
                stride: stride * 4,
                scales: &[],
            };
            blocks::<F32>(x, n, k, raw, rows, y);
        }
        Rows::F16(b) => {
            assert!(b.len() >= need(2));
            let raw = Raw {
                base: b.as_ptr(),
                stride: stride * 2,
                scales: &[],
            };
            blocks::<F16>(x, n, k, raw, rows, y);
        }
        Rows::I8 { q, scales } => {
            assert!(q.len() >= need(1) && scales.len() >= rows * 4);
            let raw = Raw {
                base: q.as_ptr(),
                stride,
                scales,
            };
            blocks::<I8>(x, n, k, raw, rows, y);
        }
    }
}

/// Blocks of 8 rows (then single rows), each over the tokens in groups of up to 4.
#[target_feature(enable = "avx2,fma,f16c")]
fn blocks<const P: u8>(x: &[f32], n: usize, k: usize, w: Raw<'_>, rows: usize, y: &mut [f32]) {
    let mut r0 = 0;
    while r0 < rows {
        let rb = (rows - r0).min(8);
        let mut t0 = 0;
        while t0 < n {
            let tg = (n - t0).min(4);
            // The next block's rows are prefetched by the first token group: each row is only
            // `k` weights (512 bytes of int8 for the 40M target), too short a stream for the
            // hardware prefetcher, and int8 and f16 calls ran at a quarter of the memory
            // bandwidth without it.
            let ahead = t0 == 0 && r0 + 16 <= rows;
            if rb == 8 {
                match tg {
                    1 => tile::<P, 8, 1>(x, k, t0, w, r0, rows, y, ahead),
                    2 => (0..2)
                        .for_each(|i| tile::<P, 4, 2>(x, k, t0, w, r0 + 4 * i, rows, y, ahead)),
                    3 => (0..4)
                        .for_each(|i| tile::<P, 2, 3>(x, k, t0, w, r0 + 2 * i, rows, y, ahead)),
                    _ => (0..4)
                        .for_each(|i| tile::<P, 2, 4>(x, k, t0, w, r0 + 2 * i, rows, y, ahead)),
                }
            } else {
                for r in r0..r0 + rb {
                    match tg {
                        1 => tile::<P, 1, 1>(x, k, t0, w, r, rows, y, false),
                        2 => tile::<P, 1, 2>(x, k, t0, w, r, rows, y, false),
                        3 => tile::<P, 1, 3>(x, k, t0, w, r, rows, y, false),
                        _ => tile::<P, 1, 4>(x, k, t0, w, r, rows, y, false),
                    }
                }
            }
            t0 += tg;
        }
        r0 += rb;
    }
}

/// Rows `r0..r0 + R` for tokens `t0..t0 + T`: `R * T` accumulators; with `ahead`, each
/// cache line of rows `r0 + 8..r0 + 8 + R` (which exist) is prefetched as the same position
/// of rows `r0..r0 + R` is read.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
fn tile<const P: u8, const R: usize, const T: usize>(
    x: &[f32],
    k: usize,
    t0: usize,
    w: Raw<'_>,
    r0: usize,
    rows: usize,
    y: &mut [f32],
    ahead: bool,
) {
    let size = match P {
        F32 => 4,
        F16 => 2,
        _ => 1,
    };
    assert!(x.len() >= (t0 + T) * k && r0 + R <= rows && y.len() >= (t0 + T) * rows);
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let xp = x.as_ptr();
    let line = 64 / size;
    for c in (0..k).step_by(8) {
        if ahead && c % line == 0 {
            for r in 0..R {
                let p = w.base.wrapping_add((r0 + 8 + r) * w.stride + c * size);
                // A prefetch is a hint: it never faults and reads nothing the program sees.
                _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
            }
        }
        // SAFETY: tokens t0..t0 + T are rows of `x` (asserted) and c + 8 <= k; rows
        // r0..r0 + R < rows are inside the matrix, whose length `matmul` asserted.
        unsafe {
            let xs: [__m256; T] =
                std::array::from_fn(|t| _mm256_loadu_ps(xp.add((t0 + t) * k + c)));
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = load::<P>(w.base.add((r0 + r) * w.stride + c * size));
                for (a, &xv) in a.iter_mut().zip(&xs) {
                    *a = _mm256_fmadd_ps(xv, wv, *a);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        let o = r0 + r;
        for (t, &v) in a.iter().enumerate() {
            let s = reduce8(v);
            y[(t0 + t) * rows + o] = if P == I8 {
                let b = &w.scales[4 * o..4 * o + 4];
                s * f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            } else {
                s
            };
        }
    }
}

/// [`super::weighted_sum`] for a width that is a multiple of 8: up to 4 vectors of outputs
/// per pass over the values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn weighted_sum(p: &[f32], vals: &[f32], stride: usize, out: &mut [f32]) {
    let hd = out.len();
    assert!(hd.is_multiple_of(8));
    assert!(p.is_empty() || vals.len() >= (p.len() - 1) * stride + hd);
    let mut c0 = 0;
    while c0 < hd {
        let v = ((hd - c0) / 8).min(4);
        match v {
            4 => sum_lanes::<4>(p, vals, stride, c0, out),
            3 => sum_lanes::<3>(p, vals, stride, c0, out),
            2 => sum_lanes::<2>(p, vals, stride, c0, out),
            _ => sum_lanes::<1>(p, vals, stride, c0, out),
        }
        c0 += v * 8;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn sum_lanes<const V: usize>(p: &[f32], vals: &[f32], stride: usize, c0: usize, out: &mut [f32]) {
    assert!(c0 + V * 8 <= out.len());
    let mut acc = [_mm256_setzero_ps(); V];
    let vp = vals.as_ptr();
    for (j, &pj) in p.iter().enumerate() {
        let pv = _mm256_set1_ps(pj);
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: j < p.len() and c0 + 8 * v + 8 <= hd: inside `vals` (asserted by
            // `weighted_sum`).
            let x = unsafe { _mm256_loadu_ps(vp.add(j * stride + c0 + 8 * v)) };
            *a = _mm256_fmadd_ps(pv, x, *a);
        }
    }
    for (v, a) in acc.iter().enumerate() {
        // SAFETY: c0 + 8 * v + 8 <= out.len() (asserted).
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c0 + 8 * v), *a) };
    }
}
