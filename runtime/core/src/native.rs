//! The native integer engine: integer-exact MLPs evaluated with integer kernels in Rust.
//!
//! # Why hand-written
//!
//! Decoding is inherently sequential: one model call per byte, batch 1. tract runs the
//! f32-carrier graph of `text-small` at that shape in about 170 µs per call on this project's
//! 2-core reference machine, most of it per-call overhead and f32 kernels on 1-row matrices.
//! The same arithmetic as i16 x i8 dot products with i32 accumulation takes about a third of
//! that, and because every value is an integer whose sums are proven not to overflow, the
//! result is *bit-identical* to tract's on every CPU (integer addition does not depend on
//! order). That is the determinism contract's rule 3, so the engine is a pure speed-up: streams
//! do not depend on which engine wrote or reads them (tested against tract in this module and
//! end to end in `tests/`).
//!
//! # What it runs
//!
//! [`lower`] pattern-matches the ONNX graph as a chain from the `context` input to the logits:
//!
//! ```text
//! Gather(E[V, D], context) -> Flatten(axis 1)                  embedding, x: [N*D]
//! ( MatMul(x, W[K, M]) -> Cast(INT32) | MatMulInteger(x, W) )  acc = x . W (exact integers)
//!   -> { Mul | Add | Sub | Div by per-channel or scalar int constants, Clip(lo, hi) }*
//!   -> Gather(T[L], idx)                                        table nonlinearity, next x
//!   ... repeated ..., the last dense layer's int32 channels are the logits
//! ```
//!
//! which is what `models/export_text.py` emits. Lowering does an interval analysis of every
//! intermediate, channel by channel, from the actual weights: it refuses (and the caller falls
//! back to tract) unless every carrier value is an integer, every partial dot-product sum stays
//! below 2^24 for f32 carriers (so tract's f32 sums are exact in any order) and below 2^31
//! otherwise, every elementwise result fits in int32, no division can trap, and every table index
//! is in range. Under those conditions the kernels here compute exactly what ONNX semantics (and
//! tract) compute: integer `Div` truncates toward zero, as Rust's `/` does.
//!
//! Weights are converted once at load, from the mapped payload, to i8 rows laid out for dot
//! products (the f32 carrier is 4 bytes per weight; the copy is a quarter of that).

use std::collections::HashMap;

use crate::onnx;

use crate::bundle::Bundle;

/// Largest magnitude an f32 partial sum may reach and stay exact.
const F32_EXACT: i64 = 1 << 24;

/// One per-channel integer operation between a dense layer and its table (or the output),
/// applied in order to the layer's int32 accumulators with ONNX semantics (`i32` arithmetic that
/// wraps, division truncating toward zero). Lowering proved no result overflows and no division
/// traps. Also what [`LoweredLayer::ops`] holds, for code generators.
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
struct Dense {
    /// Inputs per output channel.
    k: usize,
    /// Output channels.
    m: usize,
    /// Weights transposed to `[m][k]`, so each output is one contiguous dot product.
    wt: Vec<i8>,
    /// The same weights packed for the AVX2 kernel ([`pack_pairs`]), or empty.
    packed: Vec<i8>,
    ops: Vec<LoweredOp>,
    /// The nonlinearity `x' = table[v]` (indices proven in range), or `None` for the output.
    table: Option<Vec<i16>>,
}

/// A lowered integer MLP over byte contexts.
#[derive(Debug, Clone)]
pub(crate) struct IntMlp {
    context_len: usize,
    rows: usize,
    dim: usize,
    /// Embedding `[rows][dim]`.
    emb: Vec<i16>,
    layers: Vec<Dense>,
    /// The first dense layer folded into the embedding: `first[(p * rows + b) * m + j]` is
    /// position p's contribution to channel j when the byte there is b, so the layer becomes N
    /// vector adds instead of N*D*m multiply-adds. Exact: the same integers, summed in another
    /// order, and every partial sum is bounded by the same analysis. `None` when too large.
    first: Option<Vec<i32>>,
    /// With `first`: a context value (PAD) and, for each `l` in `0..=context_len`, the sum of
    /// its contributions at positions `0..l`, so a context that starts with `l` PADs (the start
    /// of a block or window) costs one vector add for them instead of `l`. Exact like `first`.
    lead: Option<(u16, Vec<i32>)>,
    kernel: Kernel,
}

/// Largest folded first layer (bytes) worth its memory.
const MAX_FOLDED_BYTES: usize = 64 << 20;

/// Which compiled copy of the dense kernel runs (chosen once, from the CPU's features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

/// Reusable buffers for one caller.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    x: Vec<i16>,
    acc: Vec<i32>,
    /// Per-row buffers of a tile (batched evaluation).
    xs: [Vec<i16>; TILE],
    accs: [Vec<i32>; TILE],
}

/// Rows evaluated together by [`IntMlp::eval_rows`]: each weight is loaded once per tile.
const TILE: usize = 4;

impl IntMlp {
    /// Number of output channels (logits per context).
    pub(crate) fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.m)
    }

    /// The number of embedding rows: context values must be below this.
    pub(crate) fn vocab_rows(&self) -> usize {
        self.rows
    }

    /// Precomputes the sums of leading `value`s (see [`IntMlp::lead`]); a no-op without a
    /// folded first layer or for a value outside the embedding.
    pub(crate) fn with_lead(mut self, value: u16) -> Self {
        let (Some(first), Some(layer)) = (&self.first, self.layers.first()) else {
            return self;
        };
        if usize::from(value) >= self.rows {
            return self;
        }
        let m = layer.m;
        let mut sums = vec![0i32; (self.context_len + 1) * m];
        for p in 0..self.context_len {
            let at = (p * self.rows + usize::from(value)) * m;
            for j in 0..m {
                sums[(p + 1) * m + j] = sums[p * m + j].wrapping_add(first[at + j]);
            }
        }
        self.lead = Some((value, sums));
        self
    }

    /// The folded first layer for one context: the leading run of the lead value from its
    /// prefix sum, the rest one table row per position.
    #[inline(always)]
    fn first_layer(&self, first: &[i32], context: &[u16], m: usize, acc: &mut [i32]) {
        let mut from = 0;
        if let Some((value, sums)) = &self.lead {
            from = context.iter().take_while(|&&c| c == *value).count();
            acc.copy_from_slice(&sums[from * m..(from + 1) * m]);
        }
        for (p, &c) in context.iter().enumerate().skip(from) {
            let at = (p * self.rows + usize::from(c)) * m;
            let part = &first[at..at + m];
            acc.iter_mut()
                .zip(part)
                .for_each(|(a, &v)| *a = a.wrapping_add(v));
        }
    }

    /// A copy that uses the portable kernel (tests compare the kernels).
    #[cfg(test)]
    fn portable(&self) -> IntMlp {
        IntMlp {
            kernel: Kernel::Portable,
            ..self.clone()
        }
    }

    /// A copy without the folded first layer (tests compare both paths).
    #[cfg(test)]
    fn unfolded(&self) -> IntMlp {
        IntMlp {
            first: None,
            lead: None,
            ..self.clone()
        }
    }

    /// Logits of one context (`context_len` values, each `< vocab_rows`), appended to `out`.
    #[cfg(test)]
    pub(crate) fn eval_row(&self, context: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>) {
        debug_assert_eq!(context.len(), self.context_len);
        match self.kernel {
            Kernel::Portable => self.eval_body(context, scratch, out, false),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                #[allow(unsafe_code)]
                // SAFETY: `Kernel::Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
                unsafe {
                    self.eval_avx2(context, scratch, out)
                }
            }
        }
    }

    /// Logits of `contexts.len() / context_len` contexts, appended to `out` row by row: the same
    /// integers as [`IntMlp::eval_row`] on each (the sums are exact, only their order differs),
    /// but rows go through the dense layers [`TILE`] at a time, so each weight row is loaded and
    /// widened once for the tile instead of once per row.
    pub(crate) fn eval_rows(&self, contexts: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>) {
        debug_assert_eq!(contexts.len() % self.context_len, 0);
        match self.kernel {
            Kernel::Portable => self.rows_body(contexts, scratch, out, false),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                #[allow(unsafe_code)]
                // SAFETY: `Kernel::Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
                unsafe {
                    self.rows_avx2(contexts, scratch, out)
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn rows_avx2(&self, contexts: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>) {
        self.rows_body(contexts, scratch, out, true);
    }

    #[inline(always)]
    fn rows_body(&self, contexts: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>, avx2: bool) {
        let n = self.context_len;
        let mut tiles = contexts.chunks_exact(n * TILE);
        for tile in &mut tiles {
            self.tile_body(tile, scratch, out, avx2);
        }
        for row in tiles.remainder().chunks_exact(n) {
            self.eval_body(row, scratch, out, avx2);
        }
    }

    /// [`TILE`] rows through every layer.
    #[inline(always)]
    fn tile_body(&self, tile: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>, avx2: bool) {
        let n = self.context_len;
        let Scratch { xs, accs, .. } = scratch;
        for (i, layer) in self.layers.iter().enumerate() {
            for acc in accs.iter_mut() {
                acc.clear();
                acc.resize(layer.m, 0);
            }
            match &self.first {
                Some(first) if i == 0 => {
                    for (context, acc) in tile.chunks_exact(n).zip(accs.iter_mut()) {
                        self.first_layer(first, context, layer.m, acc);
                    }
                }
                _ => {
                    if i == 0 {
                        for (context, x) in tile.chunks_exact(n).zip(xs.iter_mut()) {
                            x.clear();
                            for &c in context {
                                let row = usize::from(c) * self.dim;
                                x.extend_from_slice(&self.emb[row..row + self.dim]);
                            }
                        }
                    }
                    dense_tile(xs, layer, accs, avx2);
                }
            }
            for (acc, x) in accs.iter_mut().zip(xs.iter_mut()) {
                for op in &layer.ops {
                    apply(op, acc);
                }
                if let Some(table) = &layer.table {
                    x.clear();
                    // Indices are proven to lie in 0..table.len() by `lower`.
                    x.extend(acc.iter().map(|&v| table[v as usize]));
                }
            }
            if layer.table.is_none() {
                for acc in accs.iter() {
                    out.extend_from_slice(acc);
                }
            }
        }
    }

    /// The whole row compiled for AVX2: `vpmaddwd` dot products, and `vpmulld`/`vpminsd` for the
    /// elementwise chain (baseline x86-64 has neither); about 3x the baseline build.
    #[cfg(all(test, target_arch = "x86_64"))]
    #[target_feature(enable = "avx2")]
    fn eval_avx2(&self, context: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>) {
        self.eval_body(context, scratch, out, true);
    }

    #[inline(always)]
    fn eval_body(&self, context: &[u16], scratch: &mut Scratch, out: &mut Vec<i32>, avx2: bool) {
        let Scratch { x, acc, .. } = scratch;
        for (i, layer) in self.layers.iter().enumerate() {
            acc.clear();
            acc.resize(layer.m, 0);
            match &self.first {
                Some(first) if i == 0 => self.first_layer(first, context, layer.m, acc),
                _ => {
                    if i == 0 {
                        x.clear();
                        for &c in context {
                            let row = usize::from(c) * self.dim;
                            x.extend_from_slice(&self.emb[row..row + self.dim]);
                        }
                    }
                    dense(x, layer, acc, avx2);
                }
            }
            for op in &layer.ops {
                apply(op, acc);
            }
            match &layer.table {
                Some(table) => {
                    x.clear();
                    // Indices are proven to lie in 0..table.len() by `lower`.
                    x.extend(acc.iter().map(|&v| table[v as usize]));
                }
                None => out.extend_from_slice(acc),
            }
        }
    }
}

/// One dot product per output channel. Products of i16 and i8 fit in i32 and every sum is
/// proven below 2^31 by `lower`; wrapping arithmetic keeps debug builds free of overflow checks
/// in the hot loop (it never wraps).
#[inline(always)]
fn dense(x: &[i16], layer: &Dense, acc: &mut [i32], avx2: bool) {
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
fn dot(x: &[i16], w: &[i8]) -> i32 {
    x.iter()
        .zip(w)
        .map(|(&xv, &w)| i32::from(xv).wrapping_mul(i32::from(w)))
        .fold(0i32, i32::wrapping_add)
}

/// [`dense`] for a tile of rows: each weight is read once for all of them. Exact for the same
/// reason as [`dense`]: integer sums, in another order.
#[inline(always)]
fn dense_tile(xs: &[Vec<i16>; TILE], layer: &Dense, accs: &mut [Vec<i32>; TILE], avx2: bool) {
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
const PACK_COLS: usize = 16;

/// Packs `[m][k]` weights for [`gemm_avx2`]: for each block of 16 output channels and each
/// input pair `(2p, 2p + 1)`, the 16 channels' weight pairs (kept as i8: half the cache
/// footprint, widened to i16 on load), so one `vpmaddwd` of a broadcast input pair with 8 of
/// them adds both products into 8 channels at once. Empty when
/// the shape does not divide (then the dot-product kernel runs).
fn pack_pairs(wt: &[i8], k: usize, m: usize) -> Vec<i8> {
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
unsafe fn gemm_avx2<const R: usize>(xs: [&[i16]; R], layer: &Dense, accs: [&mut [i32]; R]) {
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
fn apply(op: &LoweredOp, v: &mut [i32]) {
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

// ------------------------------------------------------------------------------------ lowering

/// A constant (initializer) as exact integers, with its ONNX shape.
struct Const {
    dims: Vec<usize>,
    values: Vec<i64>,
    /// ONNX data type code of the initializer.
    dtype: i32,
}

const ONNX_FLOAT: i32 = 1;
const ONNX_INT8: i32 = 3;
const ONNX_INT32: i32 = 6;
const ONNX_INT64: i32 = 7;

fn decode_const(t: &onnx::TensorProto, bundle: &Bundle) -> Result<Const, String> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor `{}` has dim {d}", t.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("tensor `{}` is too large", t.name))?;
    let external = t.data_location == Some(onnx::DATA_LOCATION_EXTERNAL);
    let raw: &[u8] = if external {
        let key = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == k)
                .and_then(|e| e.value.parse::<usize>().ok())
        };
        let offset = key("offset").unwrap_or(0);
        let length = key("length").ok_or_else(|| format!("tensor `{}` has no length", t.name))?;
        offset
            .checked_add(length)
            .and_then(|end| bundle.payload().get(offset..end))
            .ok_or_else(|| format!("tensor `{}` lies outside the payload", t.name))?
    } else {
        &t.raw_data
    };
    let width = match t.data_type {
        ONNX_FLOAT | ONNX_INT32 => 4,
        ONNX_INT8 => 1,
        ONNX_INT64 => 8,
        other => return Err(format!("tensor `{}` has data type {other}", t.name)),
    };
    let values: Vec<i64> = if raw.is_empty() && count > 0 {
        // Typed fields (small constants written without raw_data).
        match t.data_type {
            ONNX_FLOAT => t
                .float_data
                .iter()
                .map(|&v| f32_int(v, &t.name))
                .collect::<Result<_, _>>()?,
            ONNX_INT8 | ONNX_INT32 => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
            _ => t.int64_data.clone(),
        }
    } else {
        if raw.len() != count * width {
            return Err(format!(
                "tensor `{}` has {} bytes for {count} values",
                t.name,
                raw.len()
            ));
        }
        match t.data_type {
            ONNX_FLOAT => raw
                .chunks_exact(4)
                .map(|b| f32_int(f32::from_le_bytes([b[0], b[1], b[2], b[3]]), &t.name))
                .collect::<Result<_, _>>()?,
            ONNX_INT32 => raw
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            ONNX_INT8 => raw.iter().map(|&b| i64::from(b as i8)).collect(),
            _ => raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
        }
    };
    if values.len() != count {
        return Err(format!(
            "tensor `{}` has {} values for shape {dims:?}",
            t.name,
            values.len()
        ));
    }
    Ok(Const {
        dims,
        values,
        dtype: t.data_type,
    })
}

/// An f32 carrier value as an exact integer.
fn f32_int(v: f32, name: &str) -> Result<i64, String> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 2f32.powi(31) {
        Ok(v as i64)
    } else {
        Err(format!("tensor `{name}` holds {v}, not an integer"))
    }
}

/// What the chain's current value is.
enum Cur {
    Context,
    /// Gathered embedding rows, before Flatten.
    Embedded,
    /// Activations feeding a dense layer, with per-channel value ranges and carrier type.
    Act {
        ranges: Vec<(i64, i64)>,
        f32_carrier: bool,
    },
    /// f32 accumulations (before the Cast to int32).
    AccF32 {
        ranges: Vec<(i64, i64)>,
    },
    /// int32 channels.
    Int {
        ranges: Vec<(i64, i64)>,
    },
}

fn i32_range(r: (i64, i64)) -> bool {
    r.0 >= i64::from(i32::MIN) && r.1 <= i64::from(i32::MAX)
}

fn int_attr(node: &onnx::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// Lowers a bundle's graph to an [`IntMlp`], or says why it can't be (the caller uses tract).
pub(crate) fn lower(
    bundle: &Bundle,
    proto: &onnx::ModelProto,
    input: &str,
    output: &str,
    context_len: usize,
) -> Result<IntMlp, String> {
    let graph = proto.graph.as_ref().ok_or("no graph")?;
    let inits: HashMap<&str, &onnx::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut cur = Cur::Context;
    let mut cur_name = input.to_owned();
    let (mut rows, mut dim, mut emb) = (0usize, 0usize, Vec::<i16>::new());
    let mut emb_dtype = 0;
    let mut layers: Vec<Dense> = Vec::new();
    for node in &graph.node {
        let op = node.op_type.as_str();
        let what = || format!("node `{}` ({op})", node.name);
        let [out_name] = node.output.as_slice() else {
            return Err(format!("{} has {} outputs", what(), node.output.len()));
        };
        // Exactly one input is the chain's current value; the others are constants.
        let mut position = None;
        let mut consts = Vec::new();
        for (i, name) in node.input.iter().enumerate() {
            if *name == cur_name {
                if position.replace(i).is_some() {
                    return Err(format!("{} reads the chain value twice", what()));
                }
            } else if name.is_empty() {
                consts.push(None);
            } else {
                let t = inits.get(name.as_str()).ok_or_else(|| {
                    format!("{} reads `{name}`, not a constant nor the chain", what())
                })?;
                consts.push(Some(decode_const(t, bundle)?));
            }
        }
        let position = position.ok_or_else(|| format!("{} is not on the chain", what()))?;
        let one_const = |consts: &mut Vec<Option<Const>>| match consts.as_mut_slice() {
            [Some(_)] => consts.pop().flatten().ok_or_else(what),
            _ => Err(format!("{} needs exactly one constant operand", what())),
        };
        cur = match (op, cur) {
            ("Gather", Cur::Context) => {
                let e = one_const(&mut consts)?;
                if position != 1 || int_attr(node, "axis").unwrap_or(0) != 0 || e.dims.len() != 2 {
                    return Err(format!(
                        "{}: expected Gather(table[V, D], context, axis=0)",
                        what()
                    ));
                }
                (rows, dim) = (e.dims[0], e.dims[1]);
                emb =
                    to_i16(&e.values).ok_or_else(|| format!("{}: embedding is not i16", what()))?;
                emb_dtype = e.dtype;
                Cur::Embedded
            }
            ("Flatten", Cur::Embedded) => {
                if int_attr(node, "axis").unwrap_or(1) != 1 {
                    return Err(format!("{}: expected axis 1", what()));
                }
                let col = |d: usize| {
                    let vals = emb
                        .iter()
                        .skip(d)
                        .step_by(dim.max(1))
                        .map(|&v| i64::from(v));
                    (vals.clone().min().unwrap_or(0), vals.max().unwrap_or(0))
                };
                let per_dim: Vec<(i64, i64)> = (0..dim).map(col).collect();
                let ranges = (0..context_len)
                    .flat_map(|_| per_dim.iter().copied())
                    .collect();
                Cur::Act {
                    ranges,
                    f32_carrier: emb_dtype == ONNX_FLOAT,
                }
            }
            (
                mm @ ("MatMul" | "MatMulInteger"),
                Cur::Act {
                    ranges,
                    f32_carrier,
                },
            ) => {
                let w = one_const(&mut consts)?;
                let float = mm == "MatMul";
                if position != 0 || w.dims.len() != 2 || w.dims[0] != ranges.len() {
                    return Err(format!(
                        "{}: expected x[.., {}] . W[{}, M]",
                        what(),
                        ranges.len(),
                        ranges.len()
                    ));
                }
                if float != f32_carrier
                    || (float && w.dtype != ONNX_FLOAT)
                    || (!float && w.dtype != ONNX_INT8)
                {
                    return Err(format!("{}: carrier types do not match", what()));
                }
                let (k, m) = (w.dims[0], w.dims[1]);
                let mut wt = vec![0i8; k * m];
                let mut acc = Vec::with_capacity(m);
                for j in 0..m {
                    let (mut lo, mut hi, mut abs) = (0i64, 0i64, 0i64);
                    for (kk, &(xlo, xhi)) in ranges.iter().enumerate() {
                        let v = w.values[kk * m + j];
                        wt[j * k + kk] = i8::try_from(v)
                            .map_err(|_| format!("{}: weight {v} is not i8", what()))?;
                        lo += (v * xlo).min(v * xhi);
                        hi += (v * xlo).max(v * xhi);
                        abs += v.abs() * xlo.abs().max(xhi.abs());
                    }
                    let limit = if float { F32_EXACT } else { 1 << 31 };
                    if abs >= limit {
                        return Err(format!(
                            "{}: channel {j} can reach {abs} (limit {limit})",
                            what()
                        ));
                    }
                    acc.push((lo, hi));
                }
                layers.push(Dense {
                    k,
                    m,
                    wt,
                    packed: Vec::new(),
                    ops: Vec::new(),
                    table: None,
                });
                if float {
                    Cur::AccF32 { ranges: acc }
                } else {
                    Cur::Int { ranges: acc }
                }
            }
            ("Cast", Cur::AccF32 { ranges }) => {
                if int_attr(node, "to") != Some(i64::from(ONNX_INT32)) {
                    return Err(format!("{}: only Cast to INT32 is supported", what()));
                }
                Cur::Int { ranges }
            }
            (bin @ ("Mul" | "Add" | "Sub" | "Div"), Cur::Int { ranges }) => {
                let c = one_const(&mut consts)?;
                let m = ranges.len();
                if (bin == "Sub" || bin == "Div") && position != 0 {
                    return Err(format!(
                        "{}: the chain value must be the left operand",
                        what()
                    ));
                }
                if c.dtype != ONNX_INT32 {
                    return Err(format!("{}: operand is not int32", what()));
                }
                let vals: Vec<i64> = match c.values.len() {
                    1 if c.dims.iter().all(|&d| d == 1) => vec![c.values[0]; m],
                    n if n == m && c.dims.last() == Some(&m) => c.values,
                    _ => {
                        return Err(format!(
                            "{}: operand shape {:?} does not broadcast to [{m}]",
                            what(),
                            c.dims
                        ));
                    }
                };
                let mut next = Vec::with_capacity(m);
                for (&(lo, hi), &c) in ranges.iter().zip(&vals) {
                    let r = match bin {
                        "Mul" => ((lo * c).min(hi * c), (lo * c).max(hi * c)),
                        "Add" => (lo + c, hi + c),
                        "Sub" => (lo - c, hi - c),
                        _ => {
                            if c == 0 || (c == -1 && lo == i64::from(i32::MIN)) {
                                return Err(format!("{}: division may trap", what()));
                            }
                            // Truncating division is monotone in the dividend.
                            let (a, b) = (lo / c, hi / c);
                            (a.min(b), a.max(b))
                        }
                    };
                    if !i32_range(r) {
                        return Err(format!("{}: result {r:?} may overflow int32", what()));
                    }
                    next.push(r);
                }
                let vals: Vec<i32> = vals.iter().map(|&v| v as i32).collect();
                let layer = layers.last_mut().ok_or_else(what)?;
                layer.ops.push(match bin {
                    "Mul" => LoweredOp::Mul(vals),
                    "Add" => LoweredOp::Add(vals),
                    "Sub" => LoweredOp::Sub(vals),
                    _ if vals
                        .iter()
                        .all(|&v| v > 0 && v.count_ones() == 1 && v < 1 << 30) =>
                    {
                        LoweredOp::DivPow2(vals.iter().map(|v| v.trailing_zeros()).collect())
                    }
                    _ => LoweredOp::Div(vals),
                });
                Cur::Int { ranges: next }
            }
            ("Clip", Cur::Int { ranges }) => {
                let scalar = |c: Option<&Option<Const>>, default: i64| match c {
                    None | Some(None) => Ok(default),
                    Some(Some(c)) if c.values.len() == 1 && c.dtype == ONNX_INT32 => {
                        Ok(c.values[0])
                    }
                    Some(Some(_)) => Err(format!("{}: bounds must be int32 scalars", what())),
                };
                if position != 0 {
                    return Err(format!("{}: expected Clip(x, lo, hi)", what()));
                }
                let lo = scalar(consts.first(), i64::from(i32::MIN))?;
                let hi = scalar(consts.get(1), i64::from(i32::MAX))?;
                if lo > hi {
                    return Err(format!("{}: empty clip range", what()));
                }
                let layer = layers.last_mut().ok_or_else(what)?;
                layer.ops.push(LoweredOp::Clip(lo as i32, hi as i32));
                Cur::Int {
                    ranges: ranges
                        .iter()
                        .map(|&(a, b)| (a.clamp(lo, hi), b.clamp(lo, hi)))
                        .collect(),
                }
            }
            ("Gather", Cur::Int { ranges }) => {
                let t = one_const(&mut consts)?;
                if position != 1 || int_attr(node, "axis").unwrap_or(0) != 0 || t.dims.len() != 1 {
                    return Err(format!("{}: expected Gather(table[L], x, axis=0)", what()));
                }
                let len = t.values.len() as i64;
                let table =
                    to_i16(&t.values).ok_or_else(|| format!("{}: table is not i16", what()))?;
                let mut next = Vec::with_capacity(ranges.len());
                for &(lo, hi) in &ranges {
                    if lo < 0 || hi >= len {
                        return Err(format!(
                            "{}: index range {lo}..={hi} is not inside 0..{len}",
                            what()
                        ));
                    }
                    let seen = &t.values[lo as usize..=hi as usize];
                    next.push((
                        seen.iter().copied().min().unwrap_or(0),
                        seen.iter().copied().max().unwrap_or(0),
                    ));
                }
                let layer = layers.last_mut().ok_or_else(what)?;
                layer.table = Some(table);
                Cur::Act {
                    ranges: next,
                    f32_carrier: t.dtype == ONNX_FLOAT,
                }
            }
            (_, _) => return Err(format!("{} is not supported here", what())),
        };
        cur_name.clone_from(out_name);
        if cur_name == output {
            break;
        }
    }
    if cur_name != output || !matches!(cur, Cur::Int { .. }) {
        return Err(format!("the chain does not end in int32 output `{output}`"));
    }
    if rows == 0 || layers.is_empty() {
        return Err("no embedding or no dense layer".into());
    }
    #[cfg(target_arch = "x86_64")]
    let kernel = if std::arch::is_x86_feature_detected!("avx2") {
        Kernel::Avx2
    } else {
        Kernel::Portable
    };
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = Kernel::Portable;
    if kernel != Kernel::Portable {
        for layer in &mut layers {
            layer.packed = pack_pairs(&layer.wt, layer.k, layer.m);
        }
    }
    let first = fold_first_layer(&emb, rows, dim, context_len, &layers[0]);
    Ok(IntMlp {
        context_len,
        rows,
        dim,
        emb,
        layers,
        first,
        lead: None,
        kernel,
    })
}

/// One dense layer of a [`LoweredMlp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredLayer {
    /// Inputs per output channel.
    pub inputs: usize,
    /// Output channels.
    pub outputs: usize,
    /// Weights `[outputs][inputs]`: output `j` is `sum_i x[i] * weights[j * inputs + i]`.
    pub weights: Vec<i8>,
    /// The elementwise chain on the accumulators.
    pub ops: Vec<LoweredOp>,
    /// The nonlinearity `x'[j] = table[acc[j]]` (indices proven in range), or `None` for the
    /// output layer, whose accumulators are the logits.
    pub table: Option<Vec<i16>>,
}

/// The integer MLP a bundle's graph lowers to, as plain data: what the native engine runs,
/// and what `arca-codegen emit` writes out as `no_std` Rust. A copy: changing it changes
/// nothing in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredMlp {
    /// Context bytes per prediction.
    pub context_len: usize,
    /// Rows of the embedding (context values are below this).
    pub vocab_rows: usize,
    /// Embedding width.
    pub dim: usize,
    /// Embedding `[vocab_rows][dim]`: `x[p * dim + d] = embedding[context[p] * dim + d]`.
    pub embedding: Vec<i16>,
    /// Dense layers, first to last.
    pub layers: Vec<LoweredLayer>,
}

/// Lowers a compressor bundle's graph to its integer MLP, or says why it can't be.
pub fn lower_bundle(bundle: &Bundle) -> Result<LoweredMlp, String> {
    let m = bundle.manifest();
    let proto = crate::onnx::decode_model(bundle.onnx_graph_bytes())
        .map_err(|e| format!("bad ONNX graph: {e}"))?;
    let input = m.inputs.first().map_or("context", String::as_str);
    let output = m.outputs.first().map_or("logits", String::as_str);
    let context_len = usize::try_from(m.context_len)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("context_len {} is not positive", m.context_len))?;
    let mlp = lower(bundle, &proto, input, output, context_len)?;
    let layers = mlp
        .layers
        .iter()
        .map(|l| LoweredLayer {
            inputs: l.k,
            outputs: l.m,
            weights: l.wt.clone(),
            ops: l.ops.clone(),
            table: l.table.clone(),
        })
        .collect();
    Ok(LoweredMlp {
        context_len: mlp.context_len,
        vocab_rows: mlp.rows,
        dim: mlp.dim,
        embedding: mlp.emb,
        layers,
    })
}

/// Precomputes every position's contribution to the first dense layer (see [`IntMlp::first`]).
fn fold_first_layer(
    emb: &[i16],
    rows: usize,
    dim: usize,
    n: usize,
    layer: &Dense,
) -> Option<Vec<i32>> {
    let m = layer.m;
    let bytes = n.checked_mul(rows)?.checked_mul(m)?.checked_mul(4)?;
    if bytes > MAX_FOLDED_BYTES || layer.k != n * dim {
        return None;
    }
    let mut first = vec![0i32; n * rows * m];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: AVX2 was just detected.
        unsafe {
            fold_avx2(emb, rows, dim, n, layer, &mut first)
        };
        return Some(first);
    }
    fold_body(emb, rows, dim, n, layer, &mut first);
    Some(first)
}

/// [`fold_first_layer`]'s loops compiled for AVX2 (`vpmulld`): 67M multiply-adds for
/// text-small, most of the native engine's load time (47 ms in all, `load_bench`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fold_avx2(emb: &[i16], rows: usize, dim: usize, n: usize, layer: &Dense, first: &mut [i32]) {
    fold_body(emb, rows, dim, n, layer, first);
}

#[inline(always)]
fn fold_body(emb: &[i16], rows: usize, dim: usize, n: usize, layer: &Dense, first: &mut [i32]) {
    let m = layer.m;
    // Position p's weights transposed to [dim][m], so each byte's row is `dim` vector
    // multiply-adds over m contiguous channels.
    let mut wp = vec![0i32; dim * m];
    for p in 0..n {
        for (j, row) in layer.wt.chunks_exact(layer.k).enumerate() {
            for (d, &w) in row[p * dim..(p + 1) * dim].iter().enumerate() {
                wp[d * m + j] = i32::from(w);
            }
        }
        for (b, e) in emb.chunks_exact(dim).enumerate() {
            let out = &mut first[(p * rows + b) * m..][..m];
            for (&ed, w) in e.iter().zip(wp.chunks_exact(m)) {
                let ed = i32::from(ed);
                // Bounded by the layer's interval analysis; wrapping keeps the loop free of
                // overflow checks in debug builds, so it vectorizes there too.
                out.iter_mut()
                    .zip(w)
                    .for_each(|(o, &w)| *o = o.wrapping_add(ed.wrapping_mul(w)));
            }
        }
    }
}

fn to_i16(values: &[i64]) -> Option<Vec<i16>> {
    values.iter().map(|&v| i16::try_from(v).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, LoadOptions, TextModel};

    fn load(bundle: &Bundle, engine: Engine) -> Result<TextModel, crate::EngineError> {
        TextModel::load_with(
            bundle,
            LoadOptions {
                engine,
                ..LoadOptions::default()
            },
        )
    }

    /// Contexts that exercise every input: real text, PAD-heavy starts, random bytes.
    fn contexts(n: usize, pad: u16) -> Vec<u16> {
        let text = include_bytes!("../../../tests/data/canterbury/alice29.txt");
        let mut out = Vec::new();
        for start in (0..text.len() - n).step_by(997).take(150) {
            out.extend(text[start..start + n].iter().map(|&b| u16::from(b)));
        }
        for k in 0..=n {
            out.extend((0..n).map(|i| if i < k { pad } else { u16::from(text[i]) }));
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..n * 100 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            out.push((s % 257) as u16);
        }
        out
    }

    /// xxh3-64 of text-small's logits (little-endian i32) on [`contexts`]. tract computed it
    /// on x86-64 and this test checks it on every build: with tract, both engines must give it;
    /// without (the native-only ARM builds under qemu), the native kernels of that target must.
    /// It changes only when text-small does.
    const TEXT_SMALL_LOGITS_XXH3: u64 = 0x8633_eda1_9fe2_9229;

    #[test]
    fn text_small_logits_match_the_golden_hash() -> Result<(), Box<dyn std::error::Error>> {
        let bundle = crate::shipped::resolve("text-small")?;
        let mut engines = vec![Engine::Native];
        if cfg!(feature = "tract") {
            engines.push(Engine::Tract);
        }
        for engine in engines {
            let model = load(&bundle, engine)?;
            assert_eq!(model.engine(), engine);
            let n = model.context_len();
            let ctx = contexts(n, model.pad_id());
            let mut logits = Vec::new();
            model.logits(&ctx, ctx.len() / n, &mut logits)?;
            let mut runs = vec![(engine.to_string(), logits)];
            if engine == Engine::Native {
                // The kernel variants too: the portable one (what ARM runs) and the unfolded
                // first layer, whatever this CPU dispatches to; each one row at a time and in
                // tiles (`model.logits` above is the dispatched kernel in tiles).
                let proto = onnx::decode_model(bundle.onnx_graph_bytes())?;
                let mlp = lower(&bundle, &proto, "context", "logits", n)?;
                let mut scratch = Scratch::default();
                for (name, kernel) in [
                    ("dispatched", mlp.clone()),
                    ("PAD prefix sums", mlp.clone().with_lead(model.pad_id())),
                    ("portable", mlp.portable()),
                    ("unfolded", mlp.unfolded()),
                ] {
                    let mut out = Vec::new();
                    for row in ctx.chunks_exact(n) {
                        kernel.eval_row(row, &mut scratch, &mut out);
                    }
                    runs.push((format!("{name} by row"), out));
                    let mut out = Vec::new();
                    kernel.eval_rows(&ctx, &mut scratch, &mut out);
                    runs.push((format!("{name} in tiles"), out));
                }
            }
            for (name, logits) in runs {
                let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
                let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
                assert_eq!(
                    hash,
                    TEXT_SMALL_LOGITS_XXH3,
                    "{name}: {hash:#018x} over {} logits",
                    logits.len()
                );
            }
        }
        Ok(())
    }

    /// The native engine gives tract's logits, bit for bit, at several batch sizes, with both
    /// kernels. This is the proof the engine choice does not change streams.
    #[cfg(feature = "tract")]
    #[test]
    fn text_small_native_equals_tract() -> Result<(), Box<dyn std::error::Error>> {
        let bundle = crate::shipped::resolve("text-small")?;
        let native = load(&bundle, Engine::Native)?;
        let tract = load(&bundle, Engine::Tract)?;
        assert_eq!(native.engine(), Engine::Native);
        assert_eq!(tract.engine(), Engine::Tract);
        assert_eq!(load(&bundle, Engine::Auto)?.engine(), Engine::Native);
        let n = native.context_len();
        let ctx = contexts(n, native.pad_id());
        let rows = ctx.len() / n;
        let (mut want, mut got) = (Vec::new(), Vec::new());
        tract.logits(&ctx, rows, &mut want)?;
        native.logits(&ctx, rows, &mut got)?;
        assert_eq!(got.len(), want.len());
        let bad = (0..rows)
            .filter(|&r| got[r * 256..(r + 1) * 256] != want[r * 256..(r + 1) * 256])
            .count();
        assert_eq!(bad, 0, "{bad} of {rows} rows differ");
        for batch in [1usize, 7] {
            native.logits(&ctx[..batch * n], batch, &mut got)?;
            assert_eq!(got[..], want[..batch * 256]);
        }
        // Portable kernel vs the dispatched one.
        let proto = onnx::decode_model(bundle.onnx_graph_bytes())?;
        let mlp = lower(&bundle, &proto, "context", "logits", n)?;
        let portable = mlp.portable();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        for row in ctx.chunks_exact(n).take(40) {
            mlp.eval_row(row, &mut scratch, &mut a);
            portable.eval_row(row, &mut scratch, &mut b);
        }
        assert_eq!(a, b);
        assert_eq!(a[..], want[..a.len()]);
        assert!(mlp.first.is_some());
        let unfolded = mlp.unfolded();
        b.clear();
        for row in ctx.chunks_exact(n).take(40) {
            unfolded.eval_row(row, &mut scratch, &mut b);
        }
        assert_eq!(a, b);
        Ok(())
    }

    /// Shifts replace power-of-two divisions with the same truncation toward zero, negative
    /// dividends included (text-small's dividends are never negative, so its tests don't reach it).
    #[test]
    fn div_by_power_of_two_truncates_like_div() {
        let values: Vec<i32> = [
            i32::MIN,
            i32::MIN + 1,
            -65537,
            -1024,
            -1023,
            -7,
            -1,
            0,
            1,
            7,
            1023,
            65537,
            i32::MAX,
        ]
        .into_iter()
        .collect();
        for s in 0..30u32 {
            let mut shifted = values.clone();
            apply(&LoweredOp::DivPow2(vec![s; values.len()]), &mut shifted);
            let mut divided = values.clone();
            apply(&LoweredOp::Div(vec![1 << s; values.len()]), &mut divided);
            assert_eq!(shifted, divided, "shift {s}");
        }
    }

    /// Graphs outside the supported pattern fall back to tract under `Auto` and are a clear
    /// error under `Native`.
    #[cfg(feature = "tract")]
    #[test]
    fn other_graphs_fall_back_to_tract() -> Result<(), Box<dyn std::error::Error>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny.arcm");
        let bundle = Bundle::open(path)?;
        assert_eq!(load(&bundle, Engine::Auto)?.engine(), Engine::Tract);
        let err = load(&bundle, Engine::Native)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("the native engine cannot run it"), "{err}");
        Ok(())
    }
}
