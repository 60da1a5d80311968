//! The AVX2 and FMA kernels (x86-64), run only when both were detected
//! ([`super::fma_available`]): the same multiply-adds in the same order as the portable loops
//! of [`super::generic`] with `fma`, so their outputs are the same bits.
//!
//! Intrinsics, not the portable loops, for the matrix tiles: LLVM did not keep the portable
//! version's vectors of accumulators in registers for 32-column tiles (they ran 5x slower than
//! 16-column ones).

use std::arch::x86_64::{
    __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};

/// [`super::scores`]: queries in tiles of up to 4 rows, each tile over groups of key
/// blocks (12 or fewer accumulators, so that they, the key vectors and a broadcast fit the
/// 16 registers); every score's products in component order from zero.
#[target_feature(enable = "avx2,fma")]
pub(super) fn scores(q: &[f32], kt: &[f32], hd: usize, blocks: usize, out: &mut [f32]) {
    let n = q.len() / hd;
    let stride = blocks * 8;
    assert!(kt.len() >= blocks * hd * 8 && out.len() >= n * stride);
    let tiles = n.div_ceil(4);
    let mut r0 = 0;
    for i in 0..tiles {
        let rows = n / tiles + usize::from(i < n % tiles);
        let (q, out) = (&q[r0 * hd..], &mut out[r0 * stride..]);
        match rows {
            1 => score_rows::<1, 4>(q, kt, hd, blocks, out),
            2 => score_rows::<2, 4>(q, kt, hd, blocks, out),
            3 => score_rows::<3, 3>(q, kt, hd, blocks, out),
            4 => score_rows::<4, 2>(q, kt, hd, blocks, out),
            _ => unreachable!("tiles of 1 to 4 queries"),
        }
        r0 += rows;
    }
}

/// `R` queries over all `blocks`, `B` blocks at a time, then one at a time.
#[target_feature(enable = "avx2,fma")]
fn score_rows<const R: usize, const B: usize>(
    q: &[f32],
    kt: &[f32],
    hd: usize,
    blocks: usize,
    out: &mut [f32],
) {
    let mut b0 = 0;
    while b0 + B <= blocks {
        score_tile::<R, B>(q, kt, hd, b0, out, blocks * 8);
        b0 += B;
    }
    while b0 < blocks {
        score_tile::<R, 1>(q, kt, hd, b0, out, blocks * 8);
        b0 += 1;
    }
}

#[target_feature(enable = "avx2,fma")]
fn score_tile<const R: usize, const B: usize>(
    q: &[f32],
    kt: &[f32],
    hd: usize,
    b0: usize,
    out: &mut [f32],
    stride: usize,
) {
    assert!(q.len() >= R * hd && kt.len() >= (b0 + B) * hd * 8);
    assert!(out.len() >= (R - 1) * stride + (b0 + B) * 8);
    let mut acc = [[_mm256_setzero_ps(); B]; R];
    let (qp, kp) = (q.as_ptr(), kt.as_ptr());
    for j in 0..hd {
        #[allow(unsafe_code)]
        // SAFETY: j < hd, rows < R and blocks < b0 + B, inside `q` and `kt` (asserted).
        unsafe {
            let kv: [__m256; B] =
                std::array::from_fn(|b| _mm256_loadu_ps(kp.add(((b0 + b) * hd + j) * 8)));
            for (r, row) in acc.iter_mut().enumerate() {
                let qv = _mm256_set1_ps(*qp.add(r * hd + j));
                for (a, &k) in row.iter_mut().zip(&kv) {
                    *a = _mm256_fmadd_ps(qv, k, *a);
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (b, &lanes) in row.iter().enumerate() {
            let o: &mut [f32; 8] = (&mut out[r * stride + (b0 + b) * 8..][..8])
                .try_into()
                .expect("8 lanes");
            #[allow(unsafe_code)]
            // SAFETY: `o` is 8 writable f32 (unaligned stores are allowed).
            unsafe {
                _mm256_storeu_ps(o.as_mut_ptr(), lanes)
            };
        }
    }
}

/// [`super::weighted_sums`] for `hd` a multiple of 8: queries two at a time, the head's
/// lanes four vectors at a time; the same chains in the same order.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) fn weighted_sums(
    w: &[f32],
    stride: usize,
    first: usize,
    vals: &[f32],
    hd: usize,
    inv: &[f32],
    out: &mut [f32],
    out_stride: usize,
) {
    let n = inv.len();
    assert!(hd.is_multiple_of(8) && vals.len() >= (first + n - 1) * hd);
    assert!(w.len() >= (n - 1) * stride + first + n - 1);
    assert!(out.len() >= (n - 1) * out_stride + hd);
    let mut r0 = 0;
    while r0 < n {
        let rows = (n - r0).min(2);
        let mut c0 = 0;
        while c0 < hd {
            let vectors = ((hd - c0) / 8).min(4);
            let (w, inv, out) = (&w[r0 * stride..], &inv[r0..], &mut out[r0 * out_stride..]);
            let seen = first + r0;
            macro_rules! go {
                ($r:literal, $v:literal) => {
                    value_tile::<$r, $v>(w, stride, seen, vals, hd, c0, inv, out, out_stride)
                };
            }
            match (rows, vectors) {
                (1, 1) => go!(1, 1),
                (1, 2) => go!(1, 2),
                (1, 3) => go!(1, 3),
                (1, 4) => go!(1, 4),
                (2, 1) => go!(2, 1),
                (2, 2) => go!(2, 2),
                (2, 3) => go!(2, 3),
                (2, 4) => go!(2, 4),
                _ => unreachable!("1 or 2 queries by 1 to 4 vectors"),
            }
            c0 += vectors * 8;
        }
        r0 += rows;
    }
}

/// `R` queries (the first sees `seen` keys, the next one more) by `V` vectors of lanes
/// from `c0`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn value_tile<const R: usize, const V: usize>(
    w: &[f32],
    stride: usize,
    seen: usize,
    vals: &[f32],
    hd: usize,
    c0: usize,
    inv: &[f32],
    out: &mut [f32],
    out_stride: usize,
) {
    let last = seen + R - 1;
    assert!(vals.len() >= last * hd && c0 + V * 8 <= hd);
    assert!(w.len() >= (R - 1) * stride + last && inv.len() >= R);
    assert!(out.len() >= (R - 1) * out_stride + c0 + V * 8);
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    let (wp, vp) = (w.as_ptr(), vals.as_ptr());
    // Row r sees `seen + r` keys: all rows take the first `seen`, then the later rows
    // the rest.
    let mut step = |key: usize, from: usize| {
        #[allow(unsafe_code)]
        // SAFETY: key < last, c0 + V * 8 <= hd, rows < R: inside `vals` and `w`
        // (asserted above).
        unsafe {
            let vv: [__m256; V] =
                std::array::from_fn(|v| _mm256_loadu_ps(vp.add(key * hd + c0 + v * 8)));
            for (r, row) in acc.iter_mut().enumerate().skip(from) {
                let p = _mm256_set1_ps(*wp.add(r * stride + key));
                for (a, &x) in row.iter_mut().zip(&vv) {
                    *a = _mm256_fmadd_ps(p, x, *a);
                }
            }
        }
    };
    for key in 0..seen {
        step(key, 0);
    }
    for key in seen..last {
        step(key, key - seen + 1);
    }
    for (r, row) in acc.iter().enumerate() {
        let scale = _mm256_set1_ps(inv[r]);
        for (v, &lanes) in row.iter().enumerate() {
            let o: &mut [f32; 8] = (&mut out[r * out_stride + c0 + v * 8..][..8])
                .try_into()
                .expect("8 lanes");
            #[allow(unsafe_code)]
            // SAFETY: `o` is 8 writable f32 (unaligned stores are allowed).
            unsafe {
                _mm256_storeu_ps(o.as_mut_ptr(), _mm256_mul_ps(lanes, scale))
            };
        }
    }
}

/// `R` rows (all of `x`) by `B` consecutive 16-column tiles starting at column `c0`
/// (`wg`: their packed blocks, `[k][16]` each), the same multiply-adds in the same order as
/// [`tile`] runs them for each tile alone.
#[target_feature(enable = "avx2,fma")]
pub(super) fn tile_group<const R: usize, const B: usize>(
    x: &[f32],
    wg: &[f32],
    y: &mut [f32],
    k: usize,
    m: usize,
    c0: usize,
) {
    let xs: [&[f32]; R] = std::array::from_fn(|r| &x[r * k..][..k]);
    assert_eq!(wg.len(), B * k * 16, "B packed tiles of k rows of 16");
    assert!(y.len() >= (R - 1) * m + c0 + B * 16);
    let mut acc: [[[__m256; 2]; B]; R] = [[[_mm256_setzero_ps(); 2]; B]; R];
    let w = wg.as_ptr();
    for i in 0..k {
        #[allow(unsafe_code)]
        // SAFETY: i < k, every `xs[r]` has k values and `wg` B blocks of k * 16 (asserted
        // above); unaligned loads are allowed.
        unsafe {
            let xv: [__m256; R] = std::array::from_fn(|r| _mm256_set1_ps(*xs[r].as_ptr().add(i)));
            for b in 0..B {
                let wi = w.add(b * k * 16 + i * 16);
                let w0 = _mm256_loadu_ps(wi);
                let w1 = _mm256_loadu_ps(wi.add(8));
                for (row, &xr) in acc.iter_mut().zip(&xv) {
                    row[b][0] = _mm256_fmadd_ps(xr, w0, row[b][0]);
                    row[b][1] = _mm256_fmadd_ps(xr, w1, row[b][1]);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (b, pair) in a.iter().enumerate() {
            for (v, &lanes) in pair.iter().enumerate() {
                let out: &mut [f32; 8] = (&mut y[r * m + c0 + b * 16 + v * 8..][..8])
                    .try_into()
                    .expect("8 lanes");
                #[allow(unsafe_code)]
                // SAFETY: `out` is 8 writable f32 (unaligned stores are allowed).
                unsafe {
                    _mm256_storeu_ps(out.as_mut_ptr(), lanes)
                };
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) fn tile<const R: usize, const V: usize>(
    x: &[f32],
    wt: &[f32],
    y: &mut [f32],
    k: usize,
    m: usize,
    r0: usize,
    c0: usize,
) {
    let xs: [&[f32]; R] = std::array::from_fn(|r| &x[(r0 + r) * k..][..k]);
    assert_eq!(wt.len(), k * V * 8, "a column tile is k rows of V vectors");
    let mut acc: [[__m256; V]; R] = [[_mm256_setzero_ps(); V]; R];
    let w = wt.as_ptr();
    for i in 0..k {
        #[allow(unsafe_code)]
        // SAFETY: i < k, every `xs[r]` has k values and `wt` k * V * 8 (asserted above);
        // unaligned loads are allowed. Raw reads: the indexed version kept a bounds check
        // per row and input in the hot loop.
        unsafe {
            let wi = w.add(i * V * 8);
            let wv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(wi.add(v * 8)));
            for r in 0..R {
                let xv = _mm256_set1_ps(*xs[r].as_ptr().add(i));
                for v in 0..V {
                    acc[r][v] = _mm256_fmadd_ps(xv, wv[v], acc[r][v]);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (v, &lanes) in a.iter().enumerate() {
            let out: &mut [f32; 8] = (&mut y[(r0 + r) * m + c0 + v * 8..][..8])
                .try_into()
                .expect("8 lanes");
            #[allow(unsafe_code)]
            // SAFETY: `out` is 8 writable f32 (unaligned stores are allowed).
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), lanes)
            };
        }
    }
}
