//! The portable kernels: the reference order that [`super::x86_64`] and [`super::aarch64`]
//! reproduce bit for bit (with `fma`), and the path of every other architecture (without).
//!
//! **The order of a dot product** (every matrix output, every attention score): eight lanes,
//! lane `l` a chain of multiply-adds from zero over the inputs `i = l, l + 8, l + 16, ...` in
//! order (a tail past the last multiple of 8 goes to the lanes of its index too), then the
//! lanes added as `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`, then, for int8 weights,
//! one multiply by the row's scale. It depends on the row and the input alone: not on the
//! number of tokens in the call, nor on the rows computed beside it.

/// `a * b + c`, fused (one rounding) when `fma`.
#[inline(always)]
pub(crate) fn madd(a: f32, b: f32, c: f32, fma: bool) -> f32 {
    if fma { a.mul_add(b, c) } else { a * b + c }
}

/// The lanes of a dot product added in the fixed order of the module docs.
#[inline(always)]
pub(crate) fn reduce8(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// An IEEE half (bits) as the f32 of the same value, exactly: the exponent and mantissa moved
/// into f32 position and scaled by 2^112 (exact for normal and subnormal halves alike), the
/// infinities and NaNs (quieted, as F16C does) set apart. Branch-free but for the select, so
/// it vectorizes.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let mant = em & 0x3ff;
    let finite = f32::from_bits(em << 13) * f32::from_bits((127 + 112) << 23);
    let special = 0x7f80_0000 | (mant << 13) | if mant != 0 { 0x0040_0000 } else { 0 };
    let bits = if em >= 0x7c00 {
        special
    } else {
        finite.to_bits()
    };
    f32::from_bits(sign | bits)
}

/// Element `i` of a row of little-endian f32.
#[inline(always)]
fn f32_at(row: &[u8], i: usize) -> f32 {
    let b = &row[4 * i..4 * i + 4];
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Element `i` of a row of little-endian f16.
#[inline(always)]
fn f16_at(row: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([row[2 * i], row[2 * i + 1]]))
}

/// Element `i` of a row of int8 (unscaled).
#[inline(always)]
fn i8_at(row: &[u8], i: usize) -> f32 {
    f32::from(row[i] as i8)
}

/// The dot product of `x` with the `x.len()` elements `w(i)`, in the order of the module docs.
#[inline(always)]
pub(crate) fn dot(x: &[f32], w: impl Fn(usize) -> f32, fma: bool) -> f32 {
    let k = x.len();
    let mut acc = [0.0f32; 8];
    let full = k / 8 * 8;
    for c in (0..full).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a = madd(x[c + l], w(c + l), *a, fma);
        }
    }
    for i in full..k {
        acc[i % 8] = madd(x[i], w(i), acc[i % 8], fma);
    }
    reduce8(acc)
}

/// The elements of one matrix, as [`super::Matrix`] holds them (checked there).
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// Little-endian f32 bytes.
    F32(&'a [u8]),
    /// Little-endian f16 bytes.
    F16(&'a [u8]),
    /// Int8 and one little-endian f32 scale per row.
    I8 { q: &'a [u8], scales: &'a [u8] },
    /// Floats in memory (the key cache).
    Floats(&'a [f32]),
}

/// `y[t][o] = dot(x[t], row o)` for the `n` rows of `x` (`[n][k]`) and the `rows` rows of the
/// matrix (`stride` elements apart); `y` is `[n][rows]`.
pub(crate) fn matmul(
    x: &[f32],
    k: usize,
    w: Rows<'_>,
    rows: usize,
    stride: usize,
    y: &mut [f32],
    fma: bool,
) {
    for (xt, yt) in x.chunks_exact(k).zip(y.chunks_exact_mut(rows)) {
        for (o, out) in yt.iter_mut().enumerate() {
            let s = o * stride;
            *out = match w {
                Rows::F32(b) => dot(xt, |i| f32_at(&b[4 * s..], i), fma),
                Rows::F16(b) => dot(xt, |i| f16_at(&b[2 * s..], i), fma),
                Rows::I8 { q, scales } => dot(xt, |i| i8_at(&q[s..], i), fma) * f32_at(scales, o),
                Rows::Floats(f) => dot(xt, |i| f[s + i], fma),
            };
        }
    }
}

/// `out[c] = sum_j p[j] * vals[j * stride + c]` for `c < out.len()`: one chain of
/// multiply-adds per output over `j` in order from zero (vector lanes across outputs, so any
/// vector width gives these bits).
pub(crate) fn weighted_sum(p: &[f32], vals: &[f32], stride: usize, out: &mut [f32], fma: bool) {
    let hd = out.len();
    for (c0, lanes) in (0..hd).step_by(8).zip(out.chunks_mut(8)) {
        let mut acc = [0.0f32; 8];
        for (j, &pj) in p.iter().enumerate() {
            let v = &vals[j * stride + c0..][..lanes.len()];
            for (a, &x) in acc.iter_mut().zip(v) {
                *a = madd(pj, x, *a, fma);
            }
        }
        lanes.copy_from_slice(&acc[..lanes.len()]);
    }
}

/// Row `row` of the matrix as f32 (the embedding lookup): f16 widened exactly, int8 times
/// its scale.
pub(crate) fn row_f32(w: Rows<'_>, row: usize, stride: usize, out: &mut [f32]) {
    let s = row * stride;
    match w {
        Rows::F32(b) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f32_at(&b[4 * s..], i);
            }
        }
        Rows::F16(b) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f16_at(&b[2 * s..], i);
            }
        }
        Rows::I8 { q, scales } => {
            let scale = f32_at(scales, row);
            for (i, o) in out.iter_mut().enumerate() {
                *o = i8_at(&q[s..], i) * scale;
            }
        }
        Rows::Floats(f) => out.copy_from_slice(&f[s..s + out.len()]),
    }
}
