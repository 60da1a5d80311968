//! The generation models' forward pass, native f32, with a KV cache that rolls back for free.
//!
//! The bundles of `models/gen` hold an ONNX graph (byte-level GPT: RMSNorm, RoPE attention,
//! GELU MLP, tied embedding; see `models/gen/README.md`) that tract runs too
//! (`tests/tests/generate.rs` checks the two agree to 1e-3 on every shipped model). Generation
//! runs this hand-written forward instead, for two reasons measured on the target model (1.8M
//! parameters, one thread, this repo's 2-core AMD EPYC):
//!
//! - **cost**: tract re-derives every shape of the graph on each call because the sequence and
//!   past lengths are symbolic; a one-token call took 1.5 ms at 64 cached tokens and 3.0 ms at
//!   448 (`examples/gen_costs.rs`), most of it not arithmetic, and its present outputs are fresh
//!   copies of the whole cache. Speculative decoding lives on the gap between a draft call and a
//!   target call, and a fixed cost per call shrinks that gap.
//! - **exactness**: every logit here is computed by the same operations in the same order
//!   whether its token is fed alone or inside a k-token verify call (matrix products accumulate
//!   each output over the input index in order, attention runs per query), so a verify call
//!   reproduces one-token decoding bit for bit and greedy speculative output equals greedy
//!   target-only output by construction, not by luck of rounding.
//!
//! Weights are copied out of the bundle's payload once at load (f32, `[in][out]` as the graph
//! stores its `.T` matrices). The cache is preallocated for the whole context; rolling it back
//! to an accepted length only moves its length.

use std::fmt;

use crate::bundle::{Bundle, DType, ModelKind};

use super::GenError;

/// Vocabulary of the generation models: the 256 byte values.
pub const VOCAB: usize = 256;

/// Shape of a generation model, read from its manifest (`architecture.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// MLP hidden width over `d_model`.
    pub mlp_mult: usize,
    /// Longest window the model was trained on (cache capacity).
    pub context_len: usize,
}

impl NetConfig {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters (embedding, attention and MLP matrices, norm gains).
    pub fn parameters(&self) -> usize {
        let d = self.d_model;
        VOCAB * d + self.n_layer * (4 * d * d + 2 * d * self.mlp_mult * d + 2 * d) + d
    }
}

/// One block's weights (matrices `[in][out]`, [`pack`]ed once assembled).
#[derive(Clone)]
struct Block {
    norm1: Vec<f32>,
    wq: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    wo: Vec<f32>,
    norm2: Vec<f32>,
    w1: Vec<f32>,
    w2: Vec<f32>,
}

/// A loaded generation model.
#[derive(Clone)]
pub struct Net {
    name: String,
    kind: ModelKind,
    id: u128,
    distill: Option<String>,
    cfg: NetConfig,
    eps: f32,
    /// `[VOCAB][d]`: input rows.
    emb: Vec<f32>,
    /// `[d][VOCAB]`: the tied output projection ([`pack`]ed).
    emb_t: Vec<f32>,
    blocks: Vec<Block>,
    norm_f: Vec<f32>,
    /// `[context_len][head_dim / 2]` cosines and sines of the rotary angles.
    cos: Vec<f32>,
    sin: Vec<f32>,
    fma: bool,
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The keys and values a model has seen, for every layer, and how many tokens that is.
#[derive(Clone, Debug)]
pub struct Cache {
    /// Per layer `[n_head][head_dim][context_len]` (transposed: a query's scores are
    /// vectors over keys).
    k: Vec<Vec<f32>>,
    /// Per layer `[n_head][context_len][head_dim]`.
    v: Vec<Vec<f32>>,
    len: usize,
}

impl Cache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets everything after the first `len` tokens (no-op if it holds fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Working buffers of [`Net::forward`], reused between calls.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    y: Vec<f32>,
    a: Vec<f32>,
    scores: Vec<f32>,
    /// One head's query, scaled.
    qh: Vec<f32>,
}

fn arch_value(bundle: &Bundle, key: &str) -> Result<String, String> {
    let full = format!("architecture.{key}");
    bundle
        .manifest()
        .provenance
        .iter()
        .find(|(k, _)| *k == full)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("the manifest has no `{full}`"))
}

fn arch_usize(bundle: &Bundle, key: &str) -> Result<usize, String> {
    let v = arch_value(bundle, key)?;
    v.parse()
        .map_err(|_| format!("`architecture.{key}` is {v:?}, not a count"))
}

fn arch_f32(bundle: &Bundle, key: &str) -> Result<f32, String> {
    let v = arch_value(bundle, key)?;
    v.parse()
        .map_err(|_| format!("`architecture.{key}` is {v:?}, not a number"))
}

impl Net {
    /// Loads a `target` or `draft` bundle made by `models/gen/export.py`.
    pub fn load(bundle: &Bundle) -> Result<Net, GenError> {
        let m = bundle.manifest();
        let contract = |reason: String| GenError::Contract {
            model: m.name.clone(),
            reason,
        };
        if !matches!(m.kind, ModelKind::Target | ModelKind::Draft) {
            return Err(GenError::Kind {
                model: m.name.clone(),
                kind: m.kind.as_str(),
            });
        }
        if m.vocab_size as usize != VOCAB {
            return Err(GenError::Vocab {
                model: m.name.clone(),
                vocab: m.vocab_size,
            });
        }
        let get = |k| arch_usize(bundle, k).map_err(contract);
        let cfg = NetConfig {
            d_model: get("d_model")?,
            n_layer: get("n_layer")?,
            n_head: get("n_head")?,
            mlp_mult: get("mlp_mult")?,
            context_len: m.context_len as usize,
        };
        let head_dim = get("head_dim")?;
        let positions = arch_value(bundle, "positions").map_err(contract)?;
        let norm = arch_value(bundle, "norm").map_err(contract)?;
        if cfg.n_head == 0
            || cfg.d_model != cfg.n_head * head_dim
            || head_dim % 2 != 0
            || positions != "rope"
            || norm != "rms"
            || cfg.context_len == 0
            || cfg.n_layer == 0
        {
            return Err(contract(format!(
                "unsupported architecture (d_model {}, {} heads of {head_dim}, positions {positions}, norm {norm}, context {})",
                cfg.d_model, cfg.n_head, cfg.context_len
            )));
        }
        let eps = arch_f32(bundle, "norm_eps").map_err(contract)?;
        let d = cfg.d_model;
        let f = cfg.mlp_mult * d;
        let t = |name: &str, shape: &[usize]| {
            let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
            bundle
                .tensor_values(name, DType::F32, &shape, f32::from_le_bytes)
                .map_err(contract)
        };
        let emb = t("emb.weight", &[VOCAB, d])?;
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blocks.{i}.");
            blocks.push(Block {
                norm1: t(&format!("{p}norm1.weight"), &[d])?,
                wq: t(&format!("{p}wq.weight.T"), &[d, d])?,
                wk: t(&format!("{p}wk.weight.T"), &[d, d])?,
                wv: t(&format!("{p}wv.weight.T"), &[d, d])?,
                wo: t(&format!("{p}wo.weight.T"), &[d, d])?,
                norm2: t(&format!("{p}norm2.weight"), &[d])?,
                w1: t(&format!("{p}w1.weight.T"), &[d, f])?,
                w2: t(&format!("{p}w2.weight.T"), &[f, d])?,
            });
        }
        let norm_f = t("norm_f.weight", &[d])?;
        let inv_freq = t("rope_inv_freq", &[1, head_dim / 2])?;
        let distill = m
            .provenance
            .iter()
            .find(|(k, _)| k == "distill")
            .map(|(_, v)| v.clone());
        Ok(Net::assemble(
            m.name.clone(),
            m.kind,
            bundle.id(),
            distill,
            cfg,
            eps,
            emb,
            blocks,
            norm_f,
            &inv_freq,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        name: String,
        kind: ModelKind,
        id: u128,
        distill: Option<String>,
        cfg: NetConfig,
        eps: f32,
        emb: Vec<f32>,
        blocks: Vec<Block>,
        norm_f: Vec<f32>,
        inv_freq: &[f32],
    ) -> Net {
        let d = cfg.d_model;
        let f = cfg.mlp_mult * d;
        let mut emb_t = vec![0.0; d * VOCAB];
        for (r, row) in emb.chunks_exact(d).enumerate() {
            for (c, &w) in row.iter().enumerate() {
                emb_t[c * VOCAB + r] = w;
            }
        }
        let emb_t = pack(&emb_t, d, VOCAB);
        let blocks = blocks
            .into_iter()
            .map(|b| Block {
                wq: pack(&b.wq, d, d),
                wk: pack(&b.wk, d, d),
                wv: pack(&b.wv, d, d),
                wo: pack(&b.wo, d, d),
                w1: pack(&b.w1, d, f),
                w2: pack(&b.w2, f, d),
                ..b
            })
            .collect();
        // The graph's angles: Cast(position) to f32, times inv_freq in f32, then Cos and Sin.
        let half = cfg.head_dim() / 2;
        let mut cos = Vec::with_capacity(cfg.context_len * half);
        let mut sin = Vec::with_capacity(cfg.context_len * half);
        for pos in 0..cfg.context_len {
            for &f in &inv_freq[..half] {
                let a = pos as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Net {
            name,
            kind,
            id,
            distill,
            cfg,
            eps,
            emb,
            emb_t,
            blocks,
            norm_f,
            cos,
            sin,
            fma: fma_available(),
        }
    }

    /// A model with random weights (tests and benchmarks that need no trained bundle).
    pub fn random(cfg: NetConfig, seed: u64) -> Net {
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut next = move |scale: f32| {
            // splitmix64 to a uniform in [-scale, scale)
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        };
        let d = cfg.d_model;
        let f = cfg.mlp_mult * d;
        let mut mat = |n: usize, fan_in: usize| -> Vec<f32> {
            let s = (3.0 / fan_in as f32).sqrt();
            (0..n).map(|_| next(s)).collect()
        };
        let emb = mat(VOCAB * d, d);
        let blocks = (0..cfg.n_layer)
            .map(|_| Block {
                norm1: vec![1.0; d],
                wq: mat(d * d, d),
                wk: mat(d * d, d),
                wv: mat(d * d, d),
                wo: mat(d * d, d),
                norm2: vec![1.0; d],
                w1: mat(d * f, d),
                w2: mat(f * d, f),
            })
            .collect();
        let half = cfg.head_dim() / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|j| 1.0 / 10000f32.powf(2.0 * j as f32 / cfg.head_dim() as f32))
            .collect();
        Net::assemble(
            format!("random-{seed}"),
            ModelKind::Target,
            u128::from(seed),
            None,
            cfg,
            1e-5,
            emb,
            blocks,
            vec![1.0; d],
            &inv_freq,
        )
    }

    /// The manifest's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `target` or `draft`.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The bundle's id (xxh3-128 of graph and payload).
    pub fn id(&self) -> u128 {
        self.id
    }

    /// How a draft was distilled (`kd`, `adaspec`), from its manifest's `distill` entry.
    pub fn distill(&self) -> Option<&str> {
        self.distill.as_deref()
    }

    /// The model's shape.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Longest window of tokens the cache holds.
    pub fn context_len(&self) -> usize {
        self.cfg.context_len
    }

    /// An empty cache.
    pub fn new_cache(&self) -> Cache {
        let per = self.cfg.n_head * self.cfg.context_len * self.cfg.head_dim();
        Cache {
            k: vec![vec![0.0; per]; self.cfg.n_layer],
            v: vec![vec![0.0; per]; self.cfg.n_layer],
            len: 0,
        }
    }

    /// Feeds `tokens` after the cached ones and writes their logits to `logits`
    /// (`tokens.len() * 256`, row t scores the token after `tokens[t]`).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the cache and the tokens together exceed the context.
    pub fn forward(
        &self,
        cache: &mut Cache,
        tokens: &[u8],
        scratch: &mut Scratch,
        logits: &mut Vec<f32>,
    ) -> Result<(), GenError> {
        if cache.len + tokens.len() > self.cfg.context_len {
            return Err(GenError::Window {
                model: self.name.clone(),
                len: cache.len + tokens.len(),
                context_len: self.cfg.context_len,
            });
        }
        logits.clear();
        logits.resize(tokens.len() * VOCAB, 0.0);
        if tokens.is_empty() {
            return Ok(());
        }
        #[cfg(target_arch = "x86_64")]
        if self.fma {
            #[allow(unsafe_code)]
            // SAFETY: `fma` is set only when AVX2 and FMA were detected (`fma_available`).
            unsafe {
                self.forward_avx2(cache, tokens, scratch, logits)
            };
            return Ok(());
        }
        self.forward_body(cache, tokens, scratch, logits, self.fma);
        Ok(())
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_avx2(
        &self,
        cache: &mut Cache,
        tokens: &[u8],
        scratch: &mut Scratch,
        logits: &mut [f32],
    ) {
        self.forward_body(cache, tokens, scratch, logits, true);
    }

    #[inline(always)]
    fn forward_body(
        &self,
        cache: &mut Cache,
        tokens: &[u8],
        s: &mut Scratch,
        logits: &mut [f32],
        fma: bool,
    ) {
        let cfg = &self.cfg;
        let (d, n) = (cfg.d_model, tokens.len());
        let f = cfg.mlp_mult * d;
        let (hd, ctx) = (cfg.head_dim(), cfg.context_len);
        let past = cache.len;
        for buf in [&mut s.x, &mut s.h, &mut s.q, &mut s.k, &mut s.v, &mut s.y] {
            buf.clear();
            buf.resize(n * d, 0.0);
        }
        s.a.clear();
        s.a.resize(n * f, 0.0);
        s.scores.clear();
        s.scores.resize(past + n, 0.0);
        s.qh.clear();
        s.qh.resize(hd, 0.0);
        for (row, &t) in s.x.chunks_exact_mut(d).zip(tokens) {
            row.copy_from_slice(&self.emb[usize::from(t) * d..][..d]);
        }
        let scale = 1.0 / (hd as f32).sqrt();
        for (layer, b) in self.blocks.iter().enumerate() {
            rms_norm(&s.x, &b.norm1, self.eps, &mut s.h, d);
            matmul(&s.h, &b.wq, &mut s.q, d, d, fma);
            matmul(&s.h, &b.wk, &mut s.k, d, d, fma);
            matmul(&s.h, &b.wv, &mut s.v, d, d, fma);
            for t in 0..n {
                let pos = past + t;
                let (c, sn) = (
                    &self.cos[pos * hd / 2..][..hd / 2],
                    &self.sin[pos * hd / 2..],
                );
                for head in 0..cfg.n_head {
                    let o = t * d + head * hd;
                    rope(&mut s.q[o..o + hd], c, &sn[..hd / 2]);
                    rope(&mut s.k[o..o + hd], c, &sn[..hd / 2]);
                    // Keys transposed (`[head][hd][ctx]`), so scores vectorize over keys.
                    let kt = &mut cache.k[layer][head * hd * ctx + pos..];
                    for (j, &kv) in s.k[o..o + hd].iter().enumerate() {
                        kt[j * ctx] = kv;
                    }
                    let slot = (head * ctx + pos) * hd;
                    cache.v[layer][slot..slot + hd].copy_from_slice(&s.v[o..o + hd]);
                }
            }
            for t in 0..n {
                let seen = past + t + 1;
                for head in 0..cfg.n_head {
                    let o = t * d + head * hd;
                    for (qh, &v) in s.qh.iter_mut().zip(&s.q[o..o + hd]) {
                        *qh = v * scale;
                    }
                    let kt = &cache.k[layer][head * hd * ctx..][..hd * ctx];
                    let vals = &cache.v[layer][head * ctx * hd..][..seen * hd];
                    let sc = &mut s.scores[..seen];
                    sc.fill(0.0);
                    // Each score takes its hd products in order, 8 keys per vector.
                    for (&q, row) in s.qh.iter().zip(kt.chunks_exact(ctx)) {
                        for (score, &k) in sc.iter_mut().zip(&row[..seen]) {
                            *score = madd(q, k, *score, fma);
                        }
                    }
                    let max = max8(sc);
                    for score in sc.iter_mut() {
                        *score = exp(*score - max, fma);
                    }
                    let inv = 1.0 / sum8(sc);
                    weighted_sum(sc, vals, inv, &mut s.y[o..o + hd], fma);
                }
            }
            matmul(&s.y, &b.wo, &mut s.h, d, d, fma);
            add_assign(&mut s.x, &s.h);
            rms_norm(&s.x, &b.norm2, self.eps, &mut s.h, d);
            matmul(&s.h, &b.w1, &mut s.a, d, f, fma);
            for a in &mut s.a {
                *a = gelu(*a, fma);
            }
            matmul(&s.a, &b.w2, &mut s.h, f, d, fma);
            add_assign(&mut s.x, &s.h);
        }
        rms_norm(&s.x, &self.norm_f, self.eps, &mut s.h, d);
        matmul(&s.h, &self.emb_t, logits, d, VOCAB, fma);
        cache.len = past + n;
    }
}

/// AVX2 and FMA present (x86-64), or an architecture whose every FPU fuses (aarch64).
fn fma_available() -> bool {
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

/// `a * b + c`, fused (one rounding) when the FPU has it.
#[inline(always)]
fn madd(a: f32, b: f32, c: f32, fma: bool) -> f32 {
    if fma { a.mul_add(b, c) } else { a * b + c }
}

/// Sum in eight lanes (lane `l` takes elements `l, l + 8, ...`, a tail past the last multiple
/// of 8 goes to lane 0), the lanes added pairwise in a fixed order: vectorizes, and the result
/// depends only on the values, not on the call they came in.
#[inline(always)]
fn sum8(a: &[f32]) -> f32 {
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
fn max8(a: &[f32]) -> f32 {
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

/// `out = inv * sum_key w[key] * vals[key]` for `vals` `[keys][hd]`: every output lane takes
/// the keys in a fixed order (four interleaved partial sums, key mod 4, added pairwise, then
/// the last `keys % 4` keys), which depends only on how many keys a query sees. Four chains of
/// multiply-adds in registers instead of one through memory: the single read-modify-write
/// chain per key ran at the latency of a multiply-add plus a store-to-load forward.
#[inline(always)]
fn weighted_sum(w: &[f32], vals: &[f32], inv: f32, out: &mut [f32], fma: bool) {
    let hd = out.len();
    if !hd.is_multiple_of(8) {
        out.fill(0.0);
        for (&p, val) in w.iter().zip(vals.chunks_exact(hd)) {
            for (acc, &x) in out.iter_mut().zip(val) {
                *acc = madd(p, x, *acc, fma);
            }
        }
        out.iter_mut().for_each(|o| *o *= inv);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if fma {
        #[allow(unsafe_code)]
        // SAFETY: `fma` is true only when AVX2 and FMA were detected (`fma_available`).
        unsafe {
            avx2::weighted_sum(w, vals, inv, out)
        };
        return;
    }
    let quads = w.len() / 4;
    for (c, lanes) in out.chunks_exact_mut(8).enumerate() {
        let j = c * 8;
        let mut acc = [[0.0f32; 8]; 4];
        for (q, p) in w.chunks_exact(4).enumerate() {
            for (u, a) in acc.iter_mut().enumerate() {
                let v: &[f32; 8] = vals[(4 * q + u) * hd + j..][..8]
                    .try_into()
                    .expect("8 lanes");
                for l in 0..8 {
                    a[l] = madd(p[u], v[l], a[l], fma);
                }
            }
        }
        for l in 0..8 {
            let mut sum = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
            for key in 4 * quads..w.len() {
                sum = madd(w[key], vals[key * hd + j + l], sum, fma);
            }
            lanes[l] = sum * inv;
        }
    }
}

/// The graph's exact GELU, `x * (erf(x / sqrt 2) + 1) / 2`, with [`erf`].
#[inline(always)]
fn gelu(x: f32, fma: bool) -> f32 {
    x * (erf(x * std::f32::consts::FRAC_1_SQRT_2, fma) + 1.0) * 0.5
}

/// `erf` as the rational function `x P(x^2) / Q(x^2)` on `[-4, 4]` (clamped outside, where
/// erf is 1 to f32 precision), the approximation Eigen and XLA use for f32: within 4.8e-7 of
/// `libm::erff` on a grid of step 1e-5 over [-8, 8] (4.2e-7 with FMA; the test's bound is 5e-7). Written by hand because it has no
/// branch, so the GELU loop vectorizes, where `libm::erff` took a quarter of a verify call's
/// time; and, being elementwise, a token's value is the same alone or in a verify call.
#[inline(always)]
fn erf(x: f32, fma: bool) -> f32 {
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
fn exp(x: f32, fma: bool) -> f32 {
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
fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// The graph's RMSNorm: `x / sqrt(mean(x^2) + eps) * w`, row by row.
#[inline(always)]
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32], d: usize) {
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
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let h = x.len() / 2;
    for j in 0..h {
        let (a, b) = (x[j], x[j + h]);
        x[j] = a * cos[j] + -b * sin[j];
        x[j + h] = b * cos[j] + a * sin[j];
    }
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
fn pack(w: &[f32], k: usize, m: usize) -> Vec<f32> {
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
fn matmul(x: &[f32], w: &[f32], y: &mut [f32], k: usize, m: usize, fma: bool) {
    let n = x.len() / k;
    let mut offset = 0;
    for (c0, t) in column_tiles(m) {
        let wt = &w[offset..offset + k * t.vectors * 8];
        offset += k * t.vectors * 8;
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
                    avx2::tile::<$r, $v>(x, wt, y, k, m, r0, c0)
                };
                return;
            }
            tile::<$r, $v>(x, wt, y, k, m, r0, c0, fma)
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

/// One tile, portable: `R` rows by `V` vectors of 8 columns starting at column `c0`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<const R: usize, const V: usize>(
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

/// The tile with AVX2 intrinsics: LLVM did not keep the portable version's vectors of
/// accumulators in registers for 32-column tiles (they ran 5x slower than 16-column ones).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };

    /// [`super::weighted_sum`] for `out.len()` a multiple of 8, with the same operations in
    /// the same order (the LLVM build of the portable loops used 2-lane vectors).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn weighted_sum(w: &[f32], vals: &[f32], inv: f32, out: &mut [f32]) {
        let hd = out.len();
        assert!(hd.is_multiple_of(8) && vals.len() >= w.len() * hd);
        let quads = w.len() / 4;
        let v = vals.as_ptr();
        for c in 0..hd / 8 {
            let j = c * 8;
            let mut acc = [_mm256_setzero_ps(); 4];
            for q in 0..quads {
                for (u, a) in acc.iter_mut().enumerate() {
                    let key = 4 * q + u;
                    #[allow(unsafe_code)]
                    // SAFETY: key < w.len() and j + 8 <= hd, so the 8 lanes lie inside `vals`
                    // (asserted above); unaligned loads are allowed.
                    let x = unsafe { _mm256_loadu_ps(v.add(key * hd + j)) };
                    *a = _mm256_fmadd_ps(_mm256_set1_ps(w[key]), x, *a);
                }
            }
            let mut sum =
                _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            for (key, &p) in w.iter().enumerate().skip(4 * quads) {
                #[allow(unsafe_code)]
                // SAFETY: as above.
                let x = unsafe { _mm256_loadu_ps(v.add(key * hd + j)) };
                sum = _mm256_fmadd_ps(_mm256_set1_ps(p), x, sum);
            }
            let r = _mm256_mul_ps(sum, _mm256_set1_ps(inv));
            let lanes: &mut [f32; 8] = (&mut out[j..j + 8]).try_into().expect("8 lanes");
            #[allow(unsafe_code)]
            // SAFETY: `lanes` is 8 writable f32 (unaligned stores are allowed).
            unsafe {
                _mm256_storeu_ps(lanes.as_mut_ptr(), r)
            };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> NetConfig {
        NetConfig {
            d_model: 40,
            n_layer: 2,
            n_head: 2,
            mlp_mult: 4,
            context_len: 64,
        }
    }

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

    /// The property greedy speculative decoding rests on: logits do not depend on how the
    /// tokens were split into calls.
    #[test]
    fn chunked_calls_give_the_same_bits_as_one_call() {
        let net = Net::random(small(), 3);
        let text = b"It was the best of times, it was the worst of times, it was";
        let mut s = Scratch::default();
        let mut whole = Vec::new();
        let mut cache = net.new_cache();
        net.forward(&mut cache, text, &mut s, &mut whole).unwrap();
        for chunk in [1, 2, 3, 5, 17] {
            let mut cache = net.new_cache();
            let mut got = Vec::new();
            let mut part = Vec::new();
            for c in text.chunks(chunk) {
                net.forward(&mut cache, c, &mut s, &mut part).unwrap();
                got.extend_from_slice(&part);
            }
            assert_eq!(got, whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn rollback_then_refeed_reproduces_the_logits() {
        let net = Net::random(small(), 5);
        let mut s = Scratch::default();
        let mut cache = net.new_cache();
        let mut a = Vec::new();
        net.forward(&mut cache, b"abcdef", &mut s, &mut a).unwrap();
        net.forward(&mut cache, b"xyz", &mut s, &mut a).unwrap();
        cache.truncate(6);
        net.forward(&mut cache, b"ghi", &mut s, &mut a).unwrap();
        let mut b = Vec::new();
        let mut fresh = net.new_cache();
        net.forward(&mut fresh, b"abcdefghi", &mut s, &mut b)
            .unwrap();
        assert_eq!(a, b[6 * VOCAB..]);
    }

    #[test]
    fn overflowing_the_context_is_an_error() {
        let net = Net::random(small(), 1);
        let mut cache = net.new_cache();
        let (mut s, mut out) = (Scratch::default(), Vec::new());
        net.forward(&mut cache, &[b'a'; 60], &mut s, &mut out)
            .unwrap();
        let err = net
            .forward(&mut cache, &[b'a'; 5], &mut s, &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("65"), "{err}");
        assert_eq!(cache.len(), 60);
    }

    #[test]
    fn parameter_count_matches_the_model_card() {
        let target = NetConfig {
            d_model: 192,
            n_layer: 4,
            n_head: 6,
            mlp_mult: 4,
            context_len: 512,
        };
        assert_eq!(target.parameters(), 1_820_352);
    }
}
