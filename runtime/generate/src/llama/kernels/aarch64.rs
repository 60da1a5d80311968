//! The NEON kernels (aarch64, where NEON is always present): the portable loops' fused
//! multiply-adds in the portable loops' order, so both give the same bits.
//!
//! A dot product's eight lanes are two `float32x4_t` accumulators (lanes 0-3 and 4-7); f16
//! weights are widened with the portable loop's exact bit arithmetic (the f16 conversion
//! intrinsics are not stable Rust), int8 ones by `sxtl` + `scvtf`. The blocking is
//! [`super::x86_64`]'s: blocks of 8 rows, the tokens in groups of up to 4.

#![allow(unsafe_code)] // Loads and stores through raw pointers; each block says why it is in bounds.

use std::arch::aarch64::{
    float32x4_t, uint32x4_t, vadd_f32, vaddq_f32, vandq_u32, vbslq_u32, vcgeq_u32, vcvtq_f32_s32,
    vdupq_n_f32, vdupq_n_u32, vfmaq_f32, vget_high_f32, vget_high_s16, vget_high_u16,
    vget_lane_f32, vget_low_f32, vget_low_s16, vget_low_u16, vld1_s8, vld1q_f32, vld1q_u16,
    vmovl_s8, vmovl_s16, vmovl_u16, vmulq_f32, vorrq_u32, vreinterpretq_f32_u32,
    vreinterpretq_u32_f32, vshlq_n_u32, vst1q_f32, vtstq_u32,
};

use crate::llama::kernels::generic::Rows;

const F32: u8 = 0;
const F16: u8 = 1;
const I8: u8 = 2;

/// Eight lanes.
type V8 = (float32x4_t, float32x4_t);

/// Four halves (zero-extended to 32 bits) as f32, exactly ([`super::generic::f16_to_f32`]).
#[inline]
#[target_feature(enable = "neon")]
fn f16x4(h: uint32x4_t) -> float32x4_t {
    let sign = vshlq_n_u32::<16>(vandq_u32(h, vdupq_n_u32(0x8000)));
    let em = vandq_u32(h, vdupq_n_u32(0x7fff));
    let mant = vandq_u32(h, vdupq_n_u32(0x3ff));
    let scale = vdupq_n_f32(f32::from_bits((127 + 112) << 23));
    let finite = vmulq_f32(vreinterpretq_f32_u32(vshlq_n_u32::<13>(em)), scale);
    let quiet = vandq_u32(vtstq_u32(mant, mant), vdupq_n_u32(0x0040_0000));
    let special = vorrq_u32(
        vorrq_u32(vdupq_n_u32(0x7f80_0000), vshlq_n_u32::<13>(mant)),
        quiet,
    );
    let is_special = vcgeq_u32(em, vdupq_n_u32(0x7c00));
    let bits = vbslq_u32(is_special, special, vreinterpretq_u32_f32(finite));
    vreinterpretq_f32_u32(vorrq_u32(sign, bits))
}

/// Eight weights at `p` as f32.
///
/// # Safety
///
/// `p` must be valid for reading 8 elements of precision `P` (32, 16 or 8 bytes).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load<const P: u8>(p: *const u8) -> V8 {
    // SAFETY: the caller guarantees the bytes are readable; NEON loads need no alignment
    // beyond the element's, and the f32 and u16 pointers come from byte slices, so they use
    // the unaligned-safe `vld1` forms on their elements' addresses (aarch64 permits unaligned
    // element access to normal memory).
    unsafe {
        match P {
            F32 => (
                vld1q_f32(p.cast::<f32>()),
                vld1q_f32(p.cast::<f32>().add(4)),
            ),
            F16 => {
                let h = vld1q_u16(p.cast::<u16>());
                (
                    f16x4(vmovl_u16(vget_low_u16(h))),
                    f16x4(vmovl_u16(vget_high_u16(h))),
                )
            }
            _ => {
                let w = vmovl_s8(vld1_s8(p.cast::<i8>()));
                (
                    vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))),
                    vcvtq_f32_s32(vmovl_s16(vget_high_s16(w))),
                )
            }
        }
    }
}

/// The lanes added as `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
#[inline]
#[target_feature(enable = "neon")]
fn reduce8(v: V8) -> f32 {
    let s = vaddq_f32(v.0, v.1);
    let u = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    vget_lane_f32::<0>(u) + vget_lane_f32::<1>(u)
}

#[derive(Clone, Copy)]
struct Raw<'a> {
    base: *const u8,
    stride: usize,
    scales: &'a [u8],
}

/// [`super::matmul`] for `k` a multiple of 8.
#[target_feature(enable = "neon")]
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

#[target_feature(enable = "neon")]
fn blocks<const P: u8>(x: &[f32], n: usize, k: usize, w: Raw<'_>, rows: usize, y: &mut [f32]) {
    let mut r0 = 0;
    while r0 < rows {
        let rb = (rows - r0).min(8);
        let mut t0 = 0;
        while t0 < n {
            let tg = (n - t0).min(4);
            if rb == 8 {
                match tg {
                    1 => (0..2).for_each(|i| tile::<P, 4, 1>(x, k, t0, w, r0 + 4 * i, rows, y)),
                    2 => (0..4).for_each(|i| tile::<P, 2, 2>(x, k, t0, w, r0 + 2 * i, rows, y)),
                    3 => (0..4).for_each(|i| tile::<P, 2, 3>(x, k, t0, w, r0 + 2 * i, rows, y)),
                    _ => (0..4).for_each(|i| tile::<P, 2, 4>(x, k, t0, w, r0 + 2 * i, rows, y)),
                }
            } else {
                for r in r0..r0 + rb {
                    match tg {
                        1 => tile::<P, 1, 1>(x, k, t0, w, r, rows, y),
                        2 => tile::<P, 1, 2>(x, k, t0, w, r, rows, y),
                        3 => tile::<P, 1, 3>(x, k, t0, w, r, rows, y),
                        _ => tile::<P, 1, 4>(x, k, t0, w, r, rows, y),
                    }
                }
            }
            t0 += tg;
        }
        r0 += rb;
    }
}

/// Rows `r0..r0 + R` for tokens `t0..t0 + T`: `2 * R * T` accumulators (32 registers).
#[inline]
#[target_feature(enable = "neon")]
fn tile<const P: u8, const R: usize, const T: usize>(
    x: &[f32],
    k: usize,
    t0: usize,
    w: Raw<'_>,
    r0: usize,
    rows: usize,
    y: &mut [f32],
) {
    let size = match P {
        F32 => 4,
        F16 => 2,
        _ => 1,
    };
    assert!(x.len() >= (t0 + T) * k && r0 + R <= rows && y.len() >= (t0 + T) * rows);
    let zero = vdupq_n_f32(0.0);
    let mut acc = [[(zero, zero); T]; R];
    let xp = x.as_ptr();
    for c in (0..k).step_by(8) {
        // SAFETY: tokens t0..t0 + T are rows of `x` (asserted) and c + 8 <= k; rows
        // r0..r0 + R < rows are inside the matrix, whose length `matmul` asserted.
        unsafe {
            let xs: [V8; T] = std::array::from_fn(|t| {
                let p = xp.add((t0 + t) * k + c);
                (vld1q_f32(p), vld1q_f32(p.add(4)))
            });
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = load::<P>(w.base.add((r0 + r) * w.stride + c * size));
                for (a, xv) in a.iter_mut().zip(&xs) {
                    a.0 = vfmaq_f32(a.0, xv.0, wv.0);
                    a.1 = vfmaq_f32(a.1, xv.1, wv.1);
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

/// [`super::weighted_sum`] for a width that is a multiple of 8: up to 4 pairs of vectors of
/// outputs per pass over the values.
#[target_feature(enable = "neon")]
pub(super) fn weighted_sum(p: &[f32], vals: &[f32], stride: usize, out: &mut [f32]) {
    let hd = out.len();
    assert!(hd.is_multiple_of(8));
    assert!(p.is_empty() || vals.len() >= (p.len() - 1) * stride + hd);
    let mut c0 = 0;
    while c0 < hd {
        let v = ((hd - c0) / 8).min(4);
        match v {
            4 => sum_lanes::<8>(p, vals, stride, c0, out),
            3 => sum_lanes::<6>(p, vals, stride, c0, out),
            2 => sum_lanes::<4>(p, vals, stride, c0, out),
            _ => sum_lanes::<2>(p, vals, stride, c0, out),
        }
        c0 += v * 8;
    }
}

#[inline]
#[target_feature(enable = "neon")]
fn sum_lanes<const V: usize>(p: &[f32], vals: &[f32], stride: usize, c0: usize, out: &mut [f32]) {
    assert!(c0 + V * 4 <= out.len());
    let mut acc = [vdupq_n_f32(0.0); V];
    let vp = vals.as_ptr();
    for (j, &pj) in p.iter().enumerate() {
        let pv = vdupq_n_f32(pj);
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: j < p.len() and c0 + 4 * v + 4 <= hd: inside `vals` (asserted by
            // `weighted_sum`).
            let x = unsafe { vld1q_f32(vp.add(j * stride + c0 + 4 * v)) };
            *a = vfmaq_f32(*a, pv, x);
        }
    }
    for (v, a) in acc.iter().enumerate() {
        // SAFETY: c0 + 4 * v + 4 <= out.len() (asserted).
        unsafe { vst1q_f32(out.as_mut_ptr().add(c0 + 4 * v), *a) };
    }
}
