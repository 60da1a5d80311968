//! The generation models' forward pass, native f32, with a KV cache that rolls back for free.
//!
//! Two families of decoder-only transformers are run, both exported with an explicit KV cache
//! that tract runs too (`tests/tests/generate.rs` checks the two agree to 1e-3 on every
//! shipped model):
//!
//! - the byte-level GPTs of `models/gen` (prose: RMSNorm, RoPE attention, GELU MLP, no biases,
//!   the 256-byte embedding tied to the output; see `models/gen/README.md`);
//! - the arithmetic transformers of `models/arith` (a 16-symbol vocabulary, learned absolute
//!   positions, LayerNorm, biases on every projection, an untied output head; see the
//!   speculative-generation section of `models/arith/README.md`).
//!
//! The manifest's `architecture.*` keys say which parts a model has ([`Arch`]). Generation runs
//! this hand-written forward instead of tract, for two reasons measured on the prose target
//! (1.8M parameters, one thread, this repo's 2-core AMD EPYC):
//!
//! - **cost**: tract re-derives every shape of the graph on each call because the sequence and
//!   past lengths are symbolic; a one-token call took 1.5 ms at 64 cached tokens and 3.0 ms at
//!   448 (`examples/generate/gen_costs.rs`), most of it not arithmetic, and its present outputs are fresh
//!   copies of the whole cache. Speculative decoding lives on the gap between a draft call and a
//!   target call, and a fixed cost per call shrinks that gap.
//! - **exactness**: every logit here is computed by the same operations in the same order
//!   whether its token is fed alone or inside a k-token verify call (matrix products accumulate
//!   each output over the input index in order; a query's attention scores and weighted sums
//!   are chains over components and keys in order, whatever queries share the call), so a verify call
//!   reproduces one-token decoding bit for bit and greedy speculative output equals greedy
//!   target-only output by construction, not by luck of rounding.
//!
//! Logits rows are [`Net::vocab`] wide (256 for the byte models, 16 for the adder), and tokens
//! are `u32` as for every [`Decoder`]; [`Net::decoder`] wraps a model with its cache and
//! buffers as one ([`NetDecoder`]).
//!
//! Weights are copied out of the bundle's payload once at load (f32, `[in][out]` as the graph
//! stores its `.T` matrices). The cache is preallocated for the whole context; rolling it back
//! to an accepted length only moves its length.
//!
//! The arithmetic is in [`crate::kernels`] (portable loops, and AVX2 kernels picked on x86-64
//! when AVX2 and FMA are detected); this module holds the model: its configuration, the
//! weights loaded from a bundle, the caches and the forward pass.

use std::fmt;

use arca_bundle::{Bundle, DType, ModelKind};

use crate::decoder::Decoder;
use crate::error::GenError;
use crate::kernels::{
    KEY_BLOCK, add_assign, add_bias, exp, fma_available, gelu, key_blocks, layer_norm, matmul,
    max8, pack, rms_norm, rope, scores, sum8, weighted_sums,
};

/// How a model knows where a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// Rotary embeddings of queries and keys (rotate-half, all of the head).
    Rope,
    /// A learned `[context_len][d]` table added to the token embedding.
    Learned,
}

/// The normalization before each block part and before the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `x / sqrt(mean(x^2) + eps) * g`.
    Rms,
    /// `(x - mean) / sqrt(var + eps) * g + b`.
    Layer,
}

/// The parts a model is built from (manifest `architecture.positions`, `.norm`, `.bias`,
/// `.tied`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    /// Position encoding.
    pub positions: Positions,
    /// Normalization.
    pub norm: Norm,
    /// Biases on the attention and MLP projections and on the head.
    pub bias: bool,
    /// The output projection is the transposed input embedding.
    pub tied: bool,
}

impl Arch {
    /// The byte-level GPT of `models/gen`.
    pub const GPT: Arch = Arch {
        positions: Positions::Rope,
        norm: Norm::Rms,
        bias: false,
        tied: true,
    };

    /// The arithmetic transformer of `models/arith`.
    pub const ARITH: Arch = Arch {
        positions: Positions::Learned,
        norm: Norm::Layer,
        bias: true,
        tied: false,
    };
}

/// Shape of a generation model, read from its manifest (`architecture.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Symbols: tokens are `0..vocab`.
    pub vocab: usize,
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
    /// Its parts.
    pub arch: Arch,
}

impl NetConfig {
    /// A byte-level GPT ([`Arch::GPT`], 256 symbols).
    pub fn gpt(d_model: usize, n_layer: usize, n_head: usize, context_len: usize) -> NetConfig {
        NetConfig {
            vocab: 256,
            d_model,
            n_layer,
            n_head,
            mlp_mult: 4,
            context_len,
            arch: Arch::GPT,
        }
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters (embeddings, attention and MLP matrices, norms, biases, head).
    pub fn parameters(&self) -> usize {
        let (d, v, f) = (self.d_model, self.vocab, self.mlp_mult * self.d_model);
        let norm = match self.arch.norm {
            Norm::Rms => d,
            Norm::Layer => 2 * d,
        };
        let bias = usize::from(self.arch.bias);
        let block = 4 * d * d + 2 * d * f + 2 * norm + bias * (4 * d + f + d);
        let positions = match self.arch.positions {
            Positions::Rope => 0,
            Positions::Learned => self.context_len * d,
        };
        let head = if self.arch.tied { 0 } else { d * v + bias * v };
        v * d + positions + self.n_layer * block + norm + head
    }
}

/// One block's weights (matrices `[in][out]`, [`pack`]ed once assembled; a bias or a norm
/// shift the model does not have is empty).
#[derive(Clone)]
struct Block {
    norm1: Vec<f32>,
    norm1_b: Vec<f32>,
    wq: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    wo: Vec<f32>,
    bq: Vec<f32>,
    bk: Vec<f32>,
    bv: Vec<f32>,
    bo: Vec<f32>,
    norm2: Vec<f32>,
    norm2_b: Vec<f32>,
    w1: Vec<f32>,
    w2: Vec<f32>,
    b1: Vec<f32>,
    b2: Vec<f32>,
}

/// The weights outside the blocks, as loaded.
struct Outer {
    /// `[vocab][d]`.
    emb: Vec<f32>,
    /// `[context_len][d]` (learned positions) or empty.
    pos: Vec<f32>,
    norm_f: Vec<f32>,
    norm_f_b: Vec<f32>,
    /// `[d][vocab]` (untied) or empty.
    head: Vec<f32>,
    head_b: Vec<f32>,
    /// `[head_dim / 2]` rotary frequencies (RoPE) or empty.
    inv_freq: Vec<f32>,
}

/// A loaded generation model.
#[derive(Clone)]
pub struct Net {
    name: String,
    kind: ModelKind,
    id: u128,
    distill: Option<String>,
    /// Agreement with its target measured at export (greedy, sampling), from the manifest.
    acceptance: (Option<f64>, Option<f64>),
    cfg: NetConfig,
    eps: f32,
    /// `[vocab][d]`: input rows.
    emb: Vec<f32>,
    /// `[context_len][d]`: learned positions (empty with RoPE).
    pos: Vec<f32>,
    /// `[d][vocab]`: the output projection ([`pack`]ed; the transposed embedding when tied).
    head: Vec<f32>,
    head_b: Vec<f32>,
    blocks: Vec<Block>,
    norm_f: Vec<f32>,
    norm_f_b: Vec<f32>,
    /// `[context_len][head_dim / 2]` cosines and sines of the rotary angles (empty without).
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
    /// Per layer `[n_head][blocks][head_dim][8]` (`context_len / 8` blocks, rounded up): keys
    /// in blocks of [`KEY_BLOCK`], each block's keys transposed, so scores are vectors over keys
    /// and one block is one contiguous read (the earlier `[head_dim][context_len]` layout made
    /// a head's scores 32 streams 2 KB apart, which land on 2 of a 32 KB 8-way L1's 64 sets).
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
    /// One head's `[n][keys rounded up to KEY_BLOCK]` scores, then softmax weights.
    scores: Vec<f32>,
    /// One head's queries, scaled, `[n][head_dim]`.
    qh: Vec<f32>,
    /// One head's softmax normalizers, one per query.
    inv: Vec<f32>,
}

fn arch_value(bundle: &Bundle, key: &str) -> Result<String, String> {
    let full = format!("architecture.{key}");
    bundle
        .manifest()
        .get(&full)
        .map(str::to_owned)
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

/// `architecture.{key}` as a boolean; absent means `default` (the prose bundles predate the
/// key).
fn arch_bool(bundle: &Bundle, key: &str, default: bool) -> Result<bool, String> {
    match arch_value(bundle, key) {
        Err(_) => Ok(default),
        Ok(v) => match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("`architecture.{key}` is {v:?}, not true or false")),
        },
    }
}

/// The manifest's architecture, checked for what this forward can run.
fn read_config(bundle: &Bundle) -> Result<(NetConfig, usize, f32), String> {
    let m = bundle.manifest();
    let positions = match arch_value(bundle, "positions")?.as_str() {
        "rope" => Positions::Rope,
        "learned" => Positions::Learned,
        other => return Err(format!("unknown `architecture.positions` {other:?}")),
    };
    let norm = match arch_value(bundle, "norm")?.as_str() {
        "rms" => Norm::Rms,
        "layer" => Norm::Layer,
        other => return Err(format!("unknown `architecture.norm` {other:?}")),
    };
    let cfg = NetConfig {
        vocab: m.vocab_size as usize,
        d_model: arch_usize(bundle, "d_model")?,
        n_layer: arch_usize(bundle, "n_layer")?,
        n_head: arch_usize(bundle, "n_head")?,
        mlp_mult: arch_usize(bundle, "mlp_mult")?,
        context_len: m.context_len as usize,
        arch: Arch {
            positions,
            norm,
            bias: arch_bool(bundle, "bias", false)?,
            tied: arch_bool(bundle, "tied", true)?,
        },
    };
    let head_dim = arch_usize(bundle, "head_dim")?;
    if cfg.n_head == 0
        || cfg.d_model != cfg.n_head * head_dim
        || (positions == Positions::Rope && head_dim % 2 != 0)
        || cfg.context_len == 0
        || cfg.n_layer == 0
        || cfg.mlp_mult == 0
    {
        return Err(format!(
            "unsupported shape (d_model {}, {} heads of {head_dim}, MLP x{}, {} layers, context {})",
            cfg.d_model, cfg.n_head, cfg.mlp_mult, cfg.n_layer, cfg.context_len
        ));
    }
    Ok((cfg, head_dim, arch_f32(bundle, "norm_eps")?))
}

impl Net {
    /// Loads a `target` or `draft` bundle made by `models/gen/export.py` or
    /// `models/arith/gen_export.py`.
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
        if m.vocab_size == 0 {
            return Err(GenError::Vocab {
                model: m.name.clone(),
                vocab: m.vocab_size,
            });
        }
        let (cfg, head_dim, eps) = read_config(bundle).map_err(contract)?;
        let (d, v) = (cfg.d_model, cfg.vocab);
        let f = cfg.mlp_mult * d;
        let t = |name: &str, shape: &[usize]| {
            let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
            bundle
                .tensor_values(name, DType::F32, &shape, f32::from_le_bytes)
                .map_err(contract)
        };
        let bias = |name: &str, n: usize| {
            if cfg.arch.bias {
                t(name, &[n])
            } else {
                Ok(Vec::new())
            }
        };
        let shift = |name: &str| {
            if cfg.arch.norm == Norm::Layer {
                t(name, &[d])
            } else {
                Ok(Vec::new())
            }
        };
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blocks.{i}.");
            blocks.push(Block {
                norm1: t(&format!("{p}norm1.weight"), &[d])?,
                norm1_b: shift(&format!("{p}norm1.bias"))?,
                wq: t(&format!("{p}wq.weight.T"), &[d, d])?,
                wk: t(&format!("{p}wk.weight.T"), &[d, d])?,
                wv: t(&format!("{p}wv.weight.T"), &[d, d])?,
                wo: t(&format!("{p}wo.weight.T"), &[d, d])?,
                bq: bias(&format!("{p}wq.bias"), d)?,
                bk: bias(&format!("{p}wk.bias"), d)?,
                bv: bias(&format!("{p}wv.bias"), d)?,
                bo: bias(&format!("{p}wo.bias"), d)?,
                norm2: t(&format!("{p}norm2.weight"), &[d])?,
                norm2_b: shift(&format!("{p}norm2.bias"))?,
                w1: t(&format!("{p}w1.weight.T"), &[d, f])?,
                w2: t(&format!("{p}w2.weight.T"), &[f, d])?,
                b1: bias(&format!("{p}w1.bias"), f)?,
                b2: bias(&format!("{p}w2.bias"), d)?,
            });
        }
        let outer = Outer {
            emb: t("emb.weight", &[v, d])?,
            pos: match cfg.arch.positions {
                Positions::Learned => t("pos_emb.weight", &[cfg.context_len, d])?,
                Positions::Rope => Vec::new(),
            },
            norm_f: t("norm_f.weight", &[d])?,
            norm_f_b: shift("norm_f.bias")?,
            head: if cfg.arch.tied {
                Vec::new()
            } else {
                t("head.weight.T", &[d, v])?
            },
            head_b: if cfg.arch.tied {
                Vec::new()
            } else {
                bias("head.bias", v)?
            },
            inv_freq: match cfg.arch.positions {
                Positions::Rope => t("rope_inv_freq", &[1, head_dim / 2])?,
                Positions::Learned => Vec::new(),
            },
        };
        let distill = m.get("distill").map(str::to_owned);
        let metric = |keys: &[&str]| {
            m.metrics
                .iter()
                .find(|(k, _)| keys.contains(&k.as_str()))
                .map(|&(_, v)| v)
                .filter(|v| (0.0..=1.0).contains(v))
        };
        let mut net = Net::assemble(
            m.name.clone(),
            m.kind,
            bundle.id(),
            distill,
            cfg,
            eps,
            outer,
            blocks,
        );
        // models/gen/export.py and models/arith/gen_export.py name them differently.
        net.acceptance = (
            metric(&["valid_top1_agree", "teacher_argmax_agreement"]),
            metric(&["valid_accept_t1", "teacher_sum_min_pq"]),
        );
        Ok(net)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        name: String,
        kind: ModelKind,
        id: u128,
        distill: Option<String>,
        cfg: NetConfig,
        eps: f32,
        outer: Outer,
        blocks: Vec<Block>,
    ) -> Net {
        let (d, v) = (cfg.d_model, cfg.vocab);
        let f = cfg.mlp_mult * d;
        let head = if cfg.arch.tied {
            let mut t = vec![0.0; d * v];
            for (r, row) in outer.emb.chunks_exact(d).enumerate() {
                for (c, &w) in row.iter().enumerate() {
                    t[c * v + r] = w;
                }
            }
            pack(&t, d, v)
        } else {
            pack(&outer.head, d, v)
        };
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
        let half = outer.inv_freq.len();
        let mut cos = Vec::with_capacity(cfg.context_len * half);
        let mut sin = Vec::with_capacity(cfg.context_len * half);
        for pos in 0..cfg.context_len {
            for &f in &outer.inv_freq {
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
            acceptance: (None, None),
            cfg,
            eps,
            emb: outer.emb,
            pos: outer.pos,
            head,
            head_b: outer.head_b,
            blocks,
            norm_f: outer.norm_f,
            norm_f_b: outer.norm_f_b,
            cos,
            sin,
            fma: fma_available(),
        }
    }

    /// A model with random weights (tests and benchmarks that need no trained bundle). Norm
    /// gains are 1, and biases, norm shifts and positions small random values.
    pub fn random(cfg: NetConfig, seed: u64) -> Net {
        let mut next = crate::random::uniform(seed);
        let (d, v) = (cfg.d_model, cfg.vocab);
        let f = cfg.mlp_mult * d;
        let mut mat = |n: usize, fan_in: usize| -> Vec<f32> {
            let s = (3.0 / fan_in as f32).sqrt();
            (0..n).map(|_| next(s)).collect()
        };
        let small = |mat: &mut dyn FnMut(usize, usize) -> Vec<f32>, on: bool, n: usize| {
            if on { mat(n, 100) } else { Vec::new() }
        };
        let (bias, layer) = (cfg.arch.bias, cfg.arch.norm == Norm::Layer);
        let emb = mat(v * d, d);
        let blocks = (0..cfg.n_layer)
            .map(|_| Block {
                norm1: vec![1.0; d],
                norm1_b: small(&mut mat, layer, d),
                wq: mat(d * d, d),
                wk: mat(d * d, d),
                wv: mat(d * d, d),
                wo: mat(d * d, d),
                bq: small(&mut mat, bias, d),
                bk: small(&mut mat, bias, d),
                bv: small(&mut mat, bias, d),
                bo: small(&mut mat, bias, d),
                norm2: vec![1.0; d],
                norm2_b: small(&mut mat, layer, d),
                w1: mat(d * f, d),
                w2: mat(f * d, f),
                b1: small(&mut mat, bias, f),
                b2: small(&mut mat, bias, d),
            })
            .collect();
        let learned = cfg.arch.positions == Positions::Learned;
        let outer = Outer {
            pos: small(&mut mat, learned, cfg.context_len * d),
            norm_f: vec![1.0; d],
            norm_f_b: small(&mut mat, layer, d),
            head: if cfg.arch.tied {
                Vec::new()
            } else {
                mat(d * v, d)
            },
            head_b: small(&mut mat, bias && !cfg.arch.tied, v),
            inv_freq: if learned {
                Vec::new()
            } else {
                let hd = cfg.head_dim();
                (0..hd / 2)
                    .map(|j| 1.0 / 10000f32.powf(2.0 * j as f32 / hd as f32))
                    .collect()
            },
            emb,
        };
        Net::assemble(
            format!("random-{seed}"),
            ModelKind::Target,
            u128::from(seed),
            None,
            cfg,
            1e-5,
            outer,
            blocks,
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

    /// A draft's acceptance rate measured against its target when it was exported (manifest
    /// metrics): argmax agreement per token for greedy decoding, `sum_x min(p, q)` for
    /// sampling.
    pub fn measured_acceptance(&self, greedy: bool) -> Option<f64> {
        if greedy {
            self.acceptance.0
        } else {
            self.acceptance.1
        }
    }

    /// The model's shape.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Symbols of the vocabulary: tokens are `0..vocab()`.
    pub fn vocab(&self) -> usize {
        self.cfg.vocab
    }

    /// Longest window of tokens the cache holds.
    pub fn context_len(&self) -> usize {
        self.cfg.context_len
    }

    /// An empty cache.
    pub fn new_cache(&self) -> Cache {
        let per = self.cfg.n_head * self.cfg.context_len * self.cfg.head_dim();
        let per_k =
            self.cfg.n_head * key_blocks(self.cfg.context_len) * KEY_BLOCK * self.cfg.head_dim();
        Cache {
            k: vec![vec![0.0; per_k]; self.cfg.n_layer],
            v: vec![vec![0.0; per]; self.cfg.n_layer],
            len: 0,
        }
    }

    /// Feeds `tokens` after the cached ones and writes their logits to `logits`
    /// (`tokens.len() * vocab()`, row t scores the token after `tokens[t]`).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the cache and the tokens together exceed the context,
    /// [`GenError::Token`] for a token outside the vocabulary.
    pub fn forward(
        &self,
        cache: &mut Cache,
        tokens: &[u32],
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
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= self.cfg.vocab) {
            return Err(GenError::Token {
                model: self.name.clone(),
                token: t,
                vocab: self.cfg.vocab,
            });
        }
        logits.clear();
        logits.resize(tokens.len() * self.cfg.vocab, 0.0);
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
        tokens: &[u32],
        scratch: &mut Scratch,
        logits: &mut [f32],
    ) {
        self.forward_body(cache, tokens, scratch, logits, true);
    }

    /// The model's normalization of every row of `x` into `out`.
    #[inline(always)]
    fn norm(&self, x: &[f32], g: &[f32], b: &[f32], out: &mut [f32]) {
        let d = self.cfg.d_model;
        match self.cfg.arch.norm {
            Norm::Rms => rms_norm(x, g, self.eps, out, d),
            Norm::Layer => layer_norm(x, g, b, self.eps, out, d),
        }
    }

    #[inline(always)]
    fn forward_body(
        &self,
        cache: &mut Cache,
        tokens: &[u32],
        s: &mut Scratch,
        logits: &mut [f32],
        fma: bool,
    ) {
        let cfg = &self.cfg;
        let (d, n) = (cfg.d_model, tokens.len());
        let f = cfg.mlp_mult * d;
        let (hd, ctx) = (cfg.head_dim(), cfg.context_len);
        let rope_on = cfg.arch.positions == Positions::Rope;
        let past = cache.len;
        for buf in [&mut s.x, &mut s.h, &mut s.q, &mut s.k, &mut s.v, &mut s.y] {
            buf.clear();
            buf.resize(n * d, 0.0);
        }
        s.a.clear();
        s.a.resize(n * f, 0.0);
        // Every query of the call is scored against all `past + n` keys, whole blocks of them;
        // query t then uses only the first `past + t + 1` (causal).
        let blocks = key_blocks(past + n);
        let stride = blocks * KEY_BLOCK;
        let head_k = key_blocks(ctx) * KEY_BLOCK * hd;
        s.scores.clear();
        s.scores.resize(n * stride, 0.0);
        s.qh.clear();
        s.qh.resize(n * hd, 0.0);
        s.inv.clear();
        s.inv.resize(n, 0.0);
        for (t, (row, &tok)) in s.x.chunks_exact_mut(d).zip(tokens).enumerate() {
            row.copy_from_slice(&self.emb[tok as usize * d..][..d]);
            if !rope_on {
                add_assign(row, &self.pos[(past + t) * d..][..d]);
            }
        }
        let scale = 1.0 / (hd as f32).sqrt();
        for (layer, b) in self.blocks.iter().enumerate() {
            self.norm(&s.x, &b.norm1, &b.norm1_b, &mut s.h);
            matmul(&s.h, &b.wq, &mut s.q, d, d, fma);
            matmul(&s.h, &b.wk, &mut s.k, d, d, fma);
            matmul(&s.h, &b.wv, &mut s.v, d, d, fma);
            add_bias(&mut s.q, &b.bq);
            add_bias(&mut s.k, &b.bk);
            add_bias(&mut s.v, &b.bv);
            for t in 0..n {
                let pos = past + t;
                for head in 0..cfg.n_head {
                    let o = t * d + head * hd;
                    if rope_on {
                        let c = &self.cos[pos * hd / 2..][..hd / 2];
                        let sn = &self.sin[pos * hd / 2..][..hd / 2];
                        rope(&mut s.q[o..o + hd], c, sn);
                        rope(&mut s.k[o..o + hd], c, sn);
                    }
                    let block = head * head_k + (pos / KEY_BLOCK) * KEY_BLOCK * hd;
                    let kt = &mut cache.k[layer][block + pos % KEY_BLOCK..];
                    for (j, &kv) in s.k[o..o + hd].iter().enumerate() {
                        kt[j * KEY_BLOCK] = kv;
                    }
                    let slot = (head * ctx + pos) * hd;
                    cache.v[layer][slot..slot + hd].copy_from_slice(&s.v[o..o + hd]);
                }
            }
            // One head at a time, all queries together: each block of cached keys and each
            // cached value is read once per call and used by every query (one pass per query
            // made a 4-token verify call cost 4 passes over the cache; the cache, 2.4 MB at 400
            // tokens for the prose target, is read from L3).
            for head in 0..cfg.n_head {
                for (qh, q) in s.qh.chunks_exact_mut(hd).zip(s.q.chunks_exact(d)) {
                    for (a, &v) in qh.iter_mut().zip(&q[head * hd..][..hd]) {
                        *a = v * scale;
                    }
                }
                let kt = &cache.k[layer][head * head_k..][..blocks * KEY_BLOCK * hd];
                scores(&s.qh, kt, hd, blocks, &mut s.scores, fma);
                for (t, (row, inv)) in s
                    .scores
                    .chunks_exact_mut(stride)
                    .zip(&mut s.inv)
                    .enumerate()
                {
                    let sc = &mut row[..past + t + 1];
                    let max = max8(sc);
                    for score in sc.iter_mut() {
                        *score = exp(*score - max, fma);
                    }
                    *inv = 1.0 / sum8(sc);
                }
                let vals = &cache.v[layer][head * ctx * hd..][..(past + n) * hd];
                let out = &mut s.y[head * hd..][..(n - 1) * d + hd];
                weighted_sums(&s.scores, stride, past + 1, vals, hd, &s.inv, out, d, fma);
            }
            matmul(&s.y, &b.wo, &mut s.h, d, d, fma);
            add_bias(&mut s.h, &b.bo);
            add_assign(&mut s.x, &s.h);
            self.norm(&s.x, &b.norm2, &b.norm2_b, &mut s.h);
            matmul(&s.h, &b.w1, &mut s.a, d, f, fma);
            add_bias(&mut s.a, &b.b1);
            for a in &mut s.a {
                *a = gelu(*a, fma);
            }
            matmul(&s.a, &b.w2, &mut s.h, f, d, fma);
            add_bias(&mut s.h, &b.b2);
            add_assign(&mut s.x, &s.h);
        }
        self.norm(&s.x, &self.norm_f, &self.norm_f_b, &mut s.h);
        matmul(&s.h, &self.head, logits, d, cfg.vocab, fma);
        add_bias(logits, &self.head_b);
        cache.len = past + n;
    }
}

/// A [`Net`] with its own cache and buffers: the native model as a [`Decoder`]. Made by
/// [`Net::decoder`] (or [`NetDecoder::new`]); the model is borrowed, so a target and its
/// draft, or several generations, share one copy of the weights.
#[derive(Debug)]
pub struct NetDecoder<'a> {
    net: &'a Net,
    cache: Cache,
    scratch: Scratch,
}

impl<'a> NetDecoder<'a> {
    /// `net` with an empty cache.
    pub fn new(net: &'a Net) -> NetDecoder<'a> {
        NetDecoder {
            net,
            cache: net.new_cache(),
            scratch: Scratch::default(),
        }
    }

    /// The model.
    pub fn net(&self) -> &'a Net {
        self.net
    }
}

impl Net {
    /// This model as a [`Decoder`], with an empty cache.
    pub fn decoder(&self) -> NetDecoder<'_> {
        NetDecoder::new(self)
    }
}

impl Decoder for NetDecoder<'_> {
    fn name(&self) -> &str {
        self.net.name()
    }

    fn vocab(&self) -> usize {
        self.net.vocab()
    }

    fn context_len(&self) -> usize {
        self.net.context_len()
    }

    fn cached(&self) -> usize {
        self.cache.len()
    }

    fn truncate(&mut self, len: usize) {
        self.cache.truncate(len);
    }

    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        self.net
            .forward(&mut self.cache, tokens, &mut self.scratch, out)
    }

    fn describe(&self) -> String {
        match self.net.distill() {
            Some(d) => format!("{} (distill: {d})", self.net.name()),
            None => self.net.name().to_owned(),
        }
    }

    fn measured_acceptance(&self, greedy: bool) -> Option<f64> {
        self.net.measured_acceptance(greedy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &[u8]) -> Vec<u32> {
        text.iter().map(|&b| u32::from(b)).collect()
    }

    fn small() -> NetConfig {
        NetConfig::gpt(40, 2, 2, 64)
    }

    /// The property greedy speculative decoding rests on: logits do not depend on how the
    /// tokens were split into calls.
    #[test]
    fn chunked_calls_give_the_same_bits_as_one_call() {
        let net = Net::random(small(), 3);
        let text = &toks(b"It was the best of times, it was the worst of times, it was");
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

    /// The arithmetic family (learned positions, LayerNorm, biases, untied 16-symbol head):
    /// the same property, with rows as wide as the vocabulary.
    #[test]
    fn arith_models_split_calls_alike_and_score_only_their_symbols() {
        let cfg = NetConfig {
            vocab: 16,
            arch: Arch::ARITH,
            ..NetConfig::gpt(24, 2, 3, 34)
        };
        let net = Net::random(cfg, 9);
        let tokens: Vec<u32> = (0..30u32).map(|i| (i * 7 + 3) % 16).collect();
        let mut s = Scratch::default();
        let mut whole = Vec::new();
        net.forward(&mut net.new_cache(), &tokens, &mut s, &mut whole)
            .unwrap();
        assert_eq!(whole.len(), 30 * 16);
        assert!(whole.iter().all(|v| v.is_finite()));
        for chunk in [1, 4, 7] {
            let mut cache = net.new_cache();
            let (mut got, mut part) = (Vec::new(), Vec::new());
            for c in tokens.chunks(chunk) {
                net.forward(&mut cache, c, &mut s, &mut part).unwrap();
                got.extend_from_slice(&part);
            }
            assert_eq!(got, whole, "chunks of {chunk}");
        }
        let err = net
            .forward(&mut net.new_cache(), &[3, 16], &mut s, &mut whole)
            .unwrap_err();
        assert!(err.to_string().contains("token 16"), "{err}");
    }

    #[test]
    fn rollback_then_refeed_reproduces_the_logits() {
        let net = Net::random(small(), 5);
        let mut s = Scratch::default();
        let mut cache = net.new_cache();
        let mut a = Vec::new();
        net.forward(&mut cache, &toks(b"abcdef"), &mut s, &mut a)
            .unwrap();
        net.forward(&mut cache, &toks(b"xyz"), &mut s, &mut a)
            .unwrap();
        cache.truncate(6);
        net.forward(&mut cache, &toks(b"ghi"), &mut s, &mut a)
            .unwrap();
        let mut b = Vec::new();
        let mut fresh = net.new_cache();
        net.forward(&mut fresh, &toks(b"abcdefghi"), &mut s, &mut b)
            .unwrap();
        assert_eq!(a, b[6 * net.vocab()..]);
    }

    #[test]
    fn overflowing_the_context_is_an_error() {
        let net = Net::random(small(), 1);
        let mut cache = net.new_cache();
        let (mut s, mut out) = (Scratch::default(), Vec::new());
        net.forward(&mut cache, &[u32::from(b'a'); 60], &mut s, &mut out)
            .unwrap();
        let err = net
            .forward(&mut cache, &[u32::from(b'a'); 5], &mut s, &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("65"), "{err}");
        assert_eq!(cache.len(), 60);
    }

    #[test]
    fn parameter_count_matches_the_model_card() {
        assert_eq!(NetConfig::gpt(192, 4, 6, 512).parameters(), 1_820_352);
        // models/arith/README.md: the adder has 801,808 parameters (context 34).
        let adder = NetConfig {
            vocab: 16,
            arch: Arch::ARITH,
            ..NetConfig::gpt(128, 4, 4, 34)
        };
        assert_eq!(adder.parameters(), 801_808);
    }
}
