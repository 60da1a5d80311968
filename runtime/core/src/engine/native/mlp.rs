//! [`IntMlp`]: a lowered integer MLP, evaluated one context or a tile of contexts at a time.

use super::kernels::*;

/// A lowered integer MLP over byte contexts.
#[derive(Debug, Clone)]
pub(crate) struct IntMlp {
    pub(crate) context_len: usize,
    pub(crate) rows: usize,
    pub(crate) dim: usize,
    /// Embedding `[rows][dim]`.
    pub(crate) emb: Vec<i16>,
    pub(crate) layers: Vec<Dense>,
    /// The first dense layer folded into the embedding: `first[(p * rows + b) * m + j]` is
    /// position p's contribution to channel j when the byte there is b, so the layer becomes N
    /// vector adds instead of N*D*m multiply-adds. Exact: the same integers, summed in another
    /// order, and every partial sum is bounded by the same analysis. `None` when too large.
    pub(crate) first: Option<Vec<i32>>,
    /// With `first`: a context value (PAD) and, for each `l` in `0..=context_len`, the sum of
    /// its contributions at positions `0..l`, so a context that starts with `l` PADs (the start
    /// of a block or window) costs one vector add for them instead of `l`. Exact like `first`.
    pub(crate) lead: Option<(u16, Vec<i32>)>,
    pub(crate) kernel: Kernel,
}

/// Largest folded first layer (bytes) worth its memory.
pub(crate) const MAX_FOLDED_BYTES: usize = 64 << 20;

/// Which compiled copy of the dense kernel runs (chosen once, from the CPU's features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

/// Reusable buffers for one caller.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) x: Vec<i16>,
    pub(crate) acc: Vec<i32>,
    /// Per-row buffers of a tile (batched evaluation).
    pub(crate) xs: [Vec<i16>; TILE],
    pub(crate) accs: [Vec<i32>; TILE],
}

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
    #[cfg(all(test, feature = "models"))]
    pub(crate) fn portable(&self) -> IntMlp {
        IntMlp {
            kernel: Kernel::Portable,
            ..self.clone()
        }
    }

    /// A copy without the folded first layer (tests compare both paths).
    #[cfg(all(test, feature = "models"))]
    pub(crate) fn unfolded(&self) -> IntMlp {
        IntMlp {
            first: None,
            lead: None,
            ..self.clone()
        }
    }

    /// Logits of one context (`context_len` values, each `< vocab_rows`), appended to `out`.
    #[cfg(all(test, feature = "models"))]
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
    #[cfg(all(test, feature = "models", target_arch = "x86_64"))]
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
