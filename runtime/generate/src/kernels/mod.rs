//! The f32 kernels of the forward pass ([`crate::net`]): matrix products over packed
//! weights, attention scores and weighted sums over the blocked key cache, softmax pieces
//! ([`exp`], [`max8`], [`sum8`]), GELU, the norms and RoPE.
//!
//! Laid out as tract's `linalg`: [`generic`] holds the portable loops (the reference, and the
//! path of aarch64 and armv7), [`x86_64`] the AVX2 and FMA kernels, and this module the one
//! entry point the model calls, which picks the AVX2 kernel when `fma` is set on x86-64 and the
//! portable loop otherwise.
//!
//! The contract every kernel keeps: an output's operations run in the same order whatever the
//! number of rows (tokens) or queries fed with it, so a k-token call reproduces k one-token
//! calls bit for bit; and an AVX2 kernel performs the portable loop's multiply-adds (fused) in
//! the portable loop's order, so both paths give the same bits. Change an order and the golden
//! values and the speculative-decoding guarantee go with it.

mod generic;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub(crate) use generic::KEY_BLOCK;
use generic::madd;
pub(crate) use generic::{add_assign, add_bias, exp, gelu, layer_norm, max8, rms_norm, rope, sum8};

/// AVX2 and FMA present (x86-64), or an architecture whose every FPU fuses (aarch64).
pub(crate) fn fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Blocks holding `keys` keys.
pub(crate) fn key_blocks(keys: usize) -> usize {
    keys.div_ceil(KEY_BLOCK)
}

/// `out[r][key] = q[r] . key` for the `n` queries of `q` (`[n][hd]`) and the `blocks * 8`
/// keys of `kt` (`[blocks][hd][8]`, [`Cache::k`](crate::net::Cache::k)'s layout); `out` is
/// `[n][blocks * 8]`.
///
/// Every score takes its `hd` products in component order from zero, whatever the number of
/// queries and keys: the bits of a score are those of a one-token call. Keys past the cached
/// ones in the last block get scores that are never used.
#[inline(always)]
pub(crate) fn scores(q: &[f32], kt: &[f32], hd: usize, blocks: usize, out: &mut [f32], fma: bool) {
    #[cfg(target_arch = "x86_64")]
    if fma {
        #[allow(unsafe_code)]
        // SAFETY: `fma` is true only when AVX2 and FMA were detected (`fma_available`).
        unsafe {
            x86_64::scores(q, kt, hd, blocks, out)
        };
        return;
    }
    generic::scores(q, kt, hd, blocks, out, fma)
}

/// `out[r] = inv[r] * sum_key w[r][key] * vals[key]` over the first `first + r` keys, for
/// the `n = inv.len()` queries `r` of `w` (`[n][stride]`, softmax weights), `vals`
/// `[keys][hd]`, and `out` rows `out_stride` apart.
///
/// Every output lane is one chain of multiply-adds over the keys in order from zero, then one
/// multiply by `inv`: it depends only on the weights and values its query sees, not on the
/// queries fed with it. (The earlier per-query version split each lane into four chains by
/// key mod 4 for latency; four lanes of a 32-wide head side by side give the same four
/// independent chains, and two queries side by side eight.)
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
    #[cfg(target_arch = "x86_64")]
    if fma && hd.is_multiple_of(8) {
        #[allow(unsafe_code)]
        // SAFETY: `fma` is true only when AVX2 and FMA were detected (`fma_available`).
        unsafe {
            x86_64::weighted_sums(w, stride, first, vals, hd, inv, out, out_stride)
        };
        return;
    }
    generic::weighted_sums(w, stride, first, vals, hd, inv, out, out_stride, fma)
}

/// A column tile of [`matmul`]: `vectors` vectors of 8 columns, and at most `rows` rows of
/// accumulators kept in registers at once.
#[derive(Clone, Copy)]
struct Tile {
    vectors: usize,
    rows: usize,
}

/// The tiles, widest first: 16 columns by 6 rows (12 accumulators, 2 weight vectors and the
/// broadcast input in 15 of the 16 AVX2 registers: 12 multiply-adds for 2 weight loads and 6
/// broadcasts, the shape of BLIS's Haswell kernel), then 8 columns by 6 rows for an odd
/// vector left of the width. Fewer rows (the last tile of a call, and 1-token calls) run the
/// same tile with `R` < 6. A 24-column by 4-row tile needs all 16 registers, and LLVM spilled
/// an accumulator whose store-to-load chain then set the pace: an 8-token call of the target
/// (64 cached, one thread) took 1.22 ms with it and indexed loads, 0.89 ms with these tiles
/// and the raw loads below (medians of 200 and 500 calls, 2026-12-01).
const TILES: [Tile; 2] = [
    Tile {
        vectors: 2,
        rows: 6,
    },
    Tile {
        vectors: 1,
        rows: 6,
    },
];

/// The column tiles of an `m`-column matrix: `(first column, tile)`; columns past the last
/// tile (`m % 16`) are left to the scalar tail.
fn column_tiles(m: usize) -> impl Iterator<Item = (usize, Tile)> {
    let (wide, narrow) = (TILES[0].vectors * 8, TILES[1].vectors * 8);
    let n_wide = m / wide;
    let n_narrow = (m - n_wide * wide) / narrow;
    (0..n_wide)
        .map(move |t| (t * wide, TILES[0]))
        .chain((0..n_narrow).map(move |t| (n_wide * wide + t * narrow, TILES[1])))
}

/// Columns covered by [`column_tiles`].
fn tiled_columns(m: usize) -> usize {
    column_tiles(m).map(|(_, t)| t.vectors * 8).sum()
}

/// Reorders a `[k][m]` matrix into the column tiles of [`column_tiles`], each `[k][width]`,
/// followed by the remaining columns as `[k][rest]`: each tile of [`matmul`] then streams one
/// contiguous block instead of one cache line from each of `k` rows (3 KB apart for the
/// target's MLP), which is what the hardware prefetcher wants when the weights come from DRAM.
pub(crate) fn pack(w: &[f32], k: usize, m: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(k * m);
    for (c0, t) in column_tiles(m) {
        for i in 0..k {
            out.extend_from_slice(&w[i * m + c0..][..t.vectors * 8]);
        }
    }
    let full = tiled_columns(m);
    for i in 0..k {
        out.extend_from_slice(&w[i * m + full..(i + 1) * m]);
    }
    out
}

/// `y[t] = x[t] @ w` for `x` `[n][k]`, `y` `[n][m]` and `w` a `[k][m]` matrix laid out by
/// [`pack`].
///
/// Each output is one accumulator that starts at zero and takes `x[t][i] * w[i][j]` for
/// `i = 0..k` in order: a row's result does not depend on how many rows are fed with it nor on
/// the tile it lands in (the determinism the module docs rely on). Tiles keep their
/// accumulators in registers, so a weight is loaded once per tile of rows, and the column tiles
/// run outermost so a tile's weights stay in cache across row tiles.
#[inline(always)]
pub(crate) fn matmul(x: &[f32], w: &[f32], y: &mut [f32], k: usize, m: usize, fma: bool) {
    let n = x.len() / k;
    let grouped = grouped_tiles(x, w, y, k, m, fma);
    let mut offset = 0;
    for (index, (c0, t)) in column_tiles(m).enumerate() {
        let wt = &w[offset..offset + k * t.vectors * 8];
        offset += k * t.vectors * 8;
        if index < grouped {
            continue;
        }
        // Rows split evenly over the fewest tiles (8 rows: 4 + 4, not 6 + 2): a thin tile
        // reloads every weight for few multiply-adds.
        let tiles = n.div_ceil(t.rows);
        let mut r0 = 0;
        for i in 0..tiles {
            let r = n / tiles + usize::from(i < n % tiles);
            tile_dispatch(r, t.vectors, x, wt, y, k, m, r0, c0, fma);
            r0 += r;
        }
    }
    let full = tiled_columns(m);
    let rest = m - full;
    if rest > 0 {
        let wr = &w[offset..];
        for t in 0..n {
            for j in 0..rest {
                let mut acc = 0.0;
                for i in 0..k {
                    acc = madd(x[t * k + i], wr[i * rest + j], acc, fma);
                }
                y[t * m + full + j] = acc;
            }
        }
    }
}

/// Calls of one to three rows (every draft call, and the target's one-token calls) with AVX2:
/// runs the wide tiles several at a time, returning how many it did (0 otherwise).
///
/// A 16-column tile of one row has only two accumulator chains, and each multiply-add waits for
/// the previous one of its chain (4 cycles on Zen 3 and Haswell alike), so such a call ran at a
/// quarter of the FMA units' rate: the one-row tile was the hottest loop of plain decoding.
/// Four tiles at once give one row eight chains (two rows: two tiles, eight chains; three
/// rows in two tiles measured slower than in one, twelve accumulators and four weight vectors
/// being more than the 16 registers). Each output still takes its products in input order from zero, so the bits are the
/// tile's own.
#[inline(always)]
fn grouped_tiles(x: &[f32], w: &[f32], y: &mut [f32], k: usize, m: usize, fma: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    if fma {
        let n = x.len() / k;
        let wide = m / (TILES[0].vectors * 8);
        let group = match n {
            1 => 4,
            2 => 2,
            _ => return 0,
        };
        let block = k * TILES[0].vectors * 8;
        let mut t = 0;
        while t + group <= wide {
            let wg = &w[t * block..(t + group) * block];
            let c0 = t * TILES[0].vectors * 8;
            #[allow(unsafe_code)]
            // SAFETY: `fma` is true only when AVX2 and FMA were detected (`fma_available`).
            unsafe {
                if n == 1 {
                    x86_64::tile_group::<1, 4>(x, wg, y, k, m, c0);
                } else {
                    x86_64::tile_group::<2, 2>(x, wg, y, k, m, c0);
                }
            };
            t += group;
        }
        return t;
    }
    let _ = (x, w, y, k, m, fma);
    0
}

/// Runs the tile of `rows` rows by `vectors` vectors of 8 columns: AVX2 intrinsics when `fma`
/// on x86-64, the portable loops otherwise (the same multiply-adds in the same order).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile_dispatch(
    rows: usize,
    vectors: usize,
    x: &[f32],
    wt: &[f32],
    y: &mut [f32],
    k: usize,
    m: usize,
    r0: usize,
    c0: usize,
    fma: bool,
) {
    macro_rules! go {
        ($r:literal, $v:literal) => {{
            #[cfg(target_arch = "x86_64")]
            if fma {
                #[allow(unsafe_code)]
                // SAFETY: `fma` is true only when AVX2 and FMA were detected (`fma_available`).
                unsafe {
                    x86_64::tile::<$r, $v>(x, wt, y, k, m, r0, c0)
                };
                return;
            }
            generic::tile::<$r, $v>(x, wt, y, k, m, r0, c0, fma)
        }};
    }
    match (rows, vectors) {
        (1, 2) => go!(1, 2),
        (2, 2) => go!(2, 2),
        (3, 2) => go!(3, 2),
        (4, 2) => go!(4, 2),
        (5, 2) => go!(5, 2),
        (6, 2) => go!(6, 2),
        (1, 1) => go!(1, 1),
        (2, 1) => go!(2, 1),
        (3, 1) => go!(3, 1),
        (4, 1) => go!(4, 1),
        (5, 1) => go!(5, 1),
        (6, 1) => go!(6, 1),
        _ => unreachable!("tile {rows} x {vectors} is not in TILES"),
    }
}
