//! The kernels against naive loops and references: the matrix product and the attention
//! kernels give the portable loops' bits on either path and for any number of rows, [`erf`]
//! and [`exp`] stay within their bounds of libm and `f64::exp`.

use super::generic::erf;
use super::*;

#[test]
fn matmul_matches_the_naive_product_for_every_row_count() {
    // 57 columns: three 16-wide tiles, an 8-wide one and a scalar column; 37: two 16-wide
    // tiles and 5 scalar columns; 8: one 8-wide tile.
    for (k, m) in [(7, 57), (5, 37), (3, 8), (192, 256)] {
        let w: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.37).sin()).collect();
        let packed = pack(&w, k, m);
        for n in 1..=9 {
            let x: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
            for fma in [false, fma_available()] {
                let mut y = vec![0.0; n * m];
                matmul(&x, &packed, &mut y, k, m, fma);
                for t in 0..n {
                    for j in 0..m {
                        let want: f32 =
                            (0..k).fold(0.0, |a, i| madd(x[t * k + i], w[i * m + j], a, fma));
                        assert_eq!(
                            y[t * m + j],
                            want,
                            "{k}x{m}, row {t} col {j} of {n}, fma {fma}"
                        );
                    }
                }
            }
        }
    }
}

/// The AVX2 attention scores (query tiles of 1-4 rows, groups of key blocks) give the
/// portable loop's bits for every query and key count, and so do the weighted sums of the
/// values (query pairs, groups of up to 4 vectors) for heads of 8 to 40 lanes; a query's
/// bits do not depend on the queries scored with it.
#[test]
fn attention_kernels_match_the_portable_loops_and_one_query_calls() {
    for hd in [8, 24, 32, 40] {
        let ctx = 80;
        let kt: Vec<f32> = (0..ctx * hd).map(|i| (i as f32 * 0.73).sin()).collect();
        let vals: Vec<f32> = (0..ctx * hd).map(|i| (i as f32 * 0.41).cos()).collect();
        for n in 1..=9 {
            for past in [0, 1, 7, 8, 9, 31, 40, ctx - n] {
                let keys = past + n;
                let blocks = key_blocks(keys);
                let stride = blocks * KEY_BLOCK;
                let q: Vec<f32> = (0..n * hd).map(|i| (i as f32 * 0.29).cos()).collect();
                for fma in [false, fma_available()] {
                    let (mut got, mut want) = (vec![f32::NAN; n * stride], vec![0.0; n * stride]);
                    scores(&q, &kt, hd, blocks, &mut got, fma);
                    for (r, row) in want.chunks_exact_mut(stride).enumerate() {
                        for (key, w) in row.iter_mut().enumerate() {
                            let (b, l) = (key / KEY_BLOCK, key % KEY_BLOCK);
                            *w = (0..hd).fold(0.0, |a, j| {
                                madd(q[r * hd + j], kt[(b * hd + j) * KEY_BLOCK + l], a, fma)
                            });
                        }
                    }
                    assert_eq!(
                        got, want,
                        "scores: hd {hd}, {n} queries, {past} cached, fma {fma}"
                    );
                    let w: Vec<f32> = (0..n * stride)
                        .map(|i| 0.5 + (i as f32 * 0.17).sin() / 3.0)
                        .collect();
                    let inv: Vec<f32> = (0..n).map(|r| 1.0 / (r as f32 + 2.0)).collect();
                    let d = hd + 5;
                    let (mut got, mut want) = (vec![f32::NAN; n * d], vec![f32::NAN; n * d]);
                    let v = &vals[..keys * hd];
                    weighted_sums(
                        &w,
                        stride,
                        past + 1,
                        v,
                        hd,
                        &inv,
                        &mut got[..(n - 1) * d + hd],
                        d,
                        fma,
                    );
                    for r in 0..n {
                        let o = &mut want[r * d..][..hd];
                        for (c, lane) in o.iter_mut().enumerate() {
                            let acc = (0..past + 1 + r).fold(0.0, |a, key| {
                                madd(w[r * stride + key], v[key * hd + c], a, fma)
                            });
                            *lane = acc * inv[r];
                        }
                        // The same query alone, as a one-token call at its position runs it.
                        let mut alone = vec![f32::NAN; hd];
                        let seen = past + 1 + r;
                        weighted_sums(
                            &w[r * stride..],
                            stride,
                            seen,
                            &v[..seen * hd],
                            hd,
                            &inv[r..=r],
                            &mut alone,
                            d,
                            fma,
                        );
                        assert_eq!(alone, o, "alone: hd {hd}, query {r} of {n}, {past} cached");
                    }
                    for r in 0..n {
                        assert_eq!(
                            got[r * d..][..hd],
                            want[r * d..][..hd],
                            "sums: hd {hd}, query {r} of {n}, {past} cached"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn erf_is_within_5e_7_of_libm() {
    for fma in [false, fma_available()] {
        let mut worst = 0.0f32;
        for i in -800_000..=800_000 {
            let x = i as f32 * 1e-5;
            worst = worst.max((erf(x, fma) - libm::erff(x)).abs());
        }
        for x in [-1e30, -9.0, -4.0, 4.0, 9.0, 1e30, f32::MIN, f32::MAX] {
            worst = worst.max((erf(x, fma) - libm::erff(x)).abs());
        }
        assert!(worst < 5e-7, "fma {fma}: worst {worst:e}");
    }
}

#[test]
fn exp_is_within_3e_7_relative_of_std() {
    for fma in [false, fma_available()] {
        let mut worst = 0.0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x, fma)) - want).abs() / want);
        }
        for x in [1.0f32, 10.0, 88.0] {
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x, fma)) - want).abs() / want);
        }
        assert!(worst < 3e-7, "fma {fma}: worst {worst:e}");
        // Below the clamp the value stays tiny and positive: a softmax weight of ~0.
        assert!(exp(-1e4, fma) > 0.0 && exp(-1e4, fma) < 1e-37);
    }
}
