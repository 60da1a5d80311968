//! The portable kernels: plain loops over `f32`, the reference the architecture kernels
//! reproduce bit for bit, and the path of every architecture without one (aarch64, armv7, and
//! x86-64 without AVX2 and FMA). `fma` chooses a fused multiply-add ([`madd`]) where the FPU
//! has one; with it, the results are those of the AVX2 kernels of [`super::x86_64`], operation
//! by operation.

/// Keys per block of the key cache (one AVX2 vector of scores).
pub(crate) const KEY_BLOCK: usize = 8;

/// `a * b + c`, fused (one rounding) when the FPU has it.
#[inline(always)]
pub(crate) fn madd(a: f32, b: f32, c: f32, fma: bool) -> f32 {
    if fma { a.mul_add(b, c) } else { a * b + c }
}

/// Sum in eight lanes (lane `l` takes elements `l, l + 8, ...`, a tail past the last multiple
/// of 8 goes to lane 0), the lanes added pairwise in a fixed order: vectorizes, and the result
/// depends only on the values, not on the call they came in.
#[inline(always)]
pub(crate) fn sum8(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail = chunks.remainder();
    for x in chunks {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    for &x in tail {
        acc[0] += x;
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// Largest value (the softmax's shift), in eight lanes; `NEG_INFINITY` for none.
#[inline(always)]
pub(crate) fn max8(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = a.chunks_exact(8);
    let tail = chunks.remainder();
    for x in chunks {
        for l in 0..8 {
            acc[l] = if x[l] > acc[l] { x[l] } else { acc[l] };
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// [`super::scores`], portable: per query, per block of keys, one accumulator per key taking
/// the `hd` products in component order.
#[inline(always)]
pub(crate) fn scores(q: &[f32], kt: &[f32], hd: usize, blocks: usize, out: &mut [f32], fma: bool) {
    let stride = blocks * KEY_BLOCK;
    for (qr, row) in q.chunks_exact(hd).zip(out.chunks_exact_mut(stride)) {
        for (block, lanes) in kt
            .chunks_exact(hd * KEY_BLOCK)
            .zip(row.chunks_exact_mut(KEY_BLOCK))
        {
            let mut acc = [0.0f32; KEY_BLOCK];
            for (&qj, keys) in qr.iter().zip(block.chunks_exact(KEY_BLOCK)) {
                for (a, &k) in acc.iter_mut().zip(keys) {
                    *a = madd(qj, k, *a, fma);
                }
            }
            lanes.copy_from_slice(&acc);
        }
    }
}

/// [`super::weighted_sums`], portable.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn weighted_sums(
    w: &[f32],
    stride: usize,
    first: usize,
    vals: &[f32],
    hd: usize,
    inv: &[f32],
    out: &mut [f32],
    out_stride: usize,
    fma: bool,
) {
    // Eight lanes at a time in a local accumulator, keys inner: the same chains, and the loop
    // vectorizes over lanes (a chain per lane walking `vals` at a stride of `hd` did not).
    for (r, &scale) in inv.iter().enumerate() {
        let wr = &w[r * stride..][..first + r];
        let o = &mut out[r * out_stride..][..hd];
        for (c0, lanes) in (0..hd).step_by(8).zip(o.chunks_mut(8)) {
            let mut acc = [0.0f32; 8];
            for (&p, val) in wr.iter().zip(vals.chunks_exact(hd)) {
                for (a, &x) in acc.iter_mut().zip(&val[c0..c0 + lanes.len()]) {
                    *a = madd(p, x, *a, fma);
                }
            }
            for (lane, a) in lanes.iter_mut().zip(acc) {
                *lane = a * scale;
            }
        }
    }
}

/// The graph's exact GELU, `x * (erf(x / sqrt 2) + 1) / 2`, with [`erf`].
#[inline(always)]
pub(crate) fn gelu(x: f32, fma: bool) -> f32 {
    x * (erf(x * std::f32::consts::FRAC_1_SQRT_2, fma) + 1.0) * 0.5
}

/// `erf` as the rational function `x P(x^2) / Q(x^2)` on `[-4, 4]` (clamped outside, where
/// erf is 1 to f32 precision), the approximation Eigen and XLA use for f32: within 4.8e-7 of
/// `libm::erff` on a grid of step 1e-5 over [-8, 8] (4.2e-7 with FMA; the test's bound is 5e-7). Written by hand because it has no
/// branch, so the GELU loop vectorizes, where `libm::erff` took a quarter of a verify call's
/// time; and, being elementwise, a token's value is the same alone or in a verify call.
#[inline(always)]
pub(crate) fn erf(x: f32, fma: bool) -> f32 {
    const P: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_600_2e-3,
        -1.609_603_3e-2,
    ];
    const Q: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329_4e-3,
        -1.426_474e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = P[1..].iter().fold(P[0], |p, &c| madd(p, x2, c, fma)) * x;
    let q = Q[1..].iter().fold(Q[0], |q, &c| madd(q, x2, c, fma));
    p / q
}

/// `e^x` for the softmax (`x <= 0` there): `2^n * e^r` with `n = round(x / ln 2)`, `r` reduced
/// in two steps (Cody-Waite) and `e^r` a degree-6 Taylor polynomial on `|r| <= ln 2 / 2`
/// (relative error at most 2.5e-7 against `f64::exp` on [-87, 0] in steps of 1e-4; the test's
/// bound is 3e-7); clamped to `[-87, 88]` so `2^n`
/// is a normal float. Branch-free, so a row of scores vectorizes; `f32::exp` is a libm call
/// per score.
#[inline(always)]
pub(crate) fn exp(x: f32, fma: bool) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = madd(-n, LN2_LO, madd(-n, LN2_HI, x, fma), fma);
    let c = [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let e = c[1..].iter().fold(c[0], |e, &k| madd(e, r, k, fma));
    // n is in [-126, 127]: a normal power of two.
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
pub(crate) fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `x[t] += b` for every row `t` of `x` (nothing when the model has no such bias).
#[inline(always)]
pub(crate) fn add_bias(x: &mut [f32], b: &[f32]) {
    if b.is_empty() {
        return;
    }
    for row in x.chunks_exact_mut(b.len()) {
        add_assign(row, b);
    }
}

/// The graph's LayerNormalization: `(x - mean) / sqrt(var + eps) * w + b`, row by row, with
/// the biased variance.
#[inline(always)]
pub(crate) fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32], d: usize) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let r = (var + eps).sqrt();
        for (((o, &v), &g), &c) in o.iter_mut().zip(row).zip(w).zip(b) {
            *o = (v - mean) / r * g + c;
        }
    }
}

/// The graph's RMSNorm: `x / sqrt(mean(x^2) + eps) * w`, row by row.
#[inline(always)]
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32], d: usize) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ms = row.iter().map(|&v| v * v).sum::<f32>() / d as f32;
        let r = (ms + eps).sqrt();
        for ((o, &v), &g) in o.iter_mut().zip(row).zip(w) {
            *o = v / r * g;
        }
    }
}

/// Rotate-half RoPE of one head: `x * cos + rotate_half(x) * sin`.
#[inline(always)]
pub(crate) fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let h = x.len() / 2;
    for j in 0..h {
        let (a, b) = (x[j], x[j + h]);
        x[j] = a * cos[j] + -b * sin[j];
        x[j + h] = b * cos[j] + a * sin[j];
    }
}

/// One tile of [`super::matmul`], portable: `R` rows by `V` vectors of 8 columns starting at
/// column `c0`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile<const R: usize, const V: usize>(
    x: &[f32],
    wt: &[f32],
    y: &mut [f32],
    k: usize,
    m: usize,
    r0: usize,
    c0: usize,
    fma: bool,
) {
    let xs: [&[f32]; R] = std::array::from_fn(|r| &x[(r0 + r) * k..][..k]);
    let mut acc = [[[0.0f32; 8]; V]; R];
    for (i, wi) in wt.chunks_exact(V * 8).enumerate() {
        for r in 0..R {
            let xv = xs[r][i];
            for v in 0..V {
                for l in 0..8 {
                    acc[r][v][l] = madd(xv, wi[v * 8 + l], acc[r][v][l], fma);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (v, lanes) in a.iter().enumerate() {
            y[(r0 + r) * m + c0 + v * 8..][..8].copy_from_slice(lanes);
        }
    }
}
