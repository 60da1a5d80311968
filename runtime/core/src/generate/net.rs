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
//!   448 (`examples/gen_costs.rs`), most of it not arithmetic, and its present outputs are fresh
//!   copies of the whole cache. Speculative decoding lives on the gap between a draft call and a
//!   target call, and a fixed cost per call shrinks that gap.
//! - **exactness**: every logit here is computed by the same operations in the same order
//!   whether its token is fed alone or inside a k-token verify call (matrix products accumulate
//!   each output over the input index in order; a query's attention scores and weighted sums
//!   are chains over components and keys in order, whatever queries share the call), so a verify call
//!   reproduces one-token decoding bit for bit and greedy speculative output equals greedy
//!   target-only output by construction, not by luck of rounding.
//!
//! Logits rows are always [`VOCAB`] (256) wide, so samplers and verifiers have one shape: a
//! model with a smaller vocabulary scores the symbols past it `-inf` (probability 0, never an
//! argmax).
//!
//! Weights are copied out of the bundle's payload once at load (f32, `[in][out]` as the graph
//! stores its `.T` matrices). The cache is preallocated for the whole context; rolling it back
//! to an accepted length only moves its length.

use std::fmt;

use crate::bundle::{Bundle, DType, ModelKind};

use super::GenError;

/// Width of a logits row: the largest vocabulary, the 256 byte values. Tokens are `u8`.
pub const VOCAB: usize = 256;

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
    /// Symbols (at most [`VOCAB`]).
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
            vocab: VOCAB,
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
    /// `[n][vocab]` logits of a model with fewer than [`VOCAB`] symbols.
    narrow: Vec<f32>,
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
        if m.vocab_size == 0 || m.vocab_size as usize > VOCAB {
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
        let distill = m
            .provenance
            .iter()
            .find(|(k, _)| k == "distill")
            .map(|(_, v)| v.clone());
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
    /// (`tokens.len() * VOCAB`, row t scores the token after `tokens[t]`; symbols past the
    /// model's vocabulary score `-inf`).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the cache and the tokens together exceed the context,
    /// [`GenError::Token`] for a token outside the vocabulary.
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
        if let Some(&t) = tokens.iter().find(|&&t| usize::from(t) >= self.cfg.vocab) {
            return Err(GenError::Token {
                model: self.name.clone(),
                token: t,
                vocab: self.cfg.vocab,
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
        tokens: &[u8],
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
            row.copy_from_slice(&self.emb[usize::from(tok) * d..][..d]);
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
        let v = cfg.vocab;
        if v == VOCAB {
            matmul(&s.h, &self.head, logits, d, v, fma);
            add_bias(logits, &self.head_b);
        } else {
            s.narrow.clear();
            s.narrow.resize(n * v, 0.0);
            matmul(&s.h, &self.head, &mut s.narrow, d, v, fma);
            add_bias(&mut s.narrow, &self.head_b);
            for (row, small) in logits.chunks_exact_mut(VOCAB).zip(s.narrow.chunks_exact(v)) {
                row[..v].copy_from_slice(small);
                row[v..].fill(f32::NEG_INFINITY);
            }
        }
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

/// Keys per block of the key cache (one AVX2 vector of scores).
const KEY_BLOCK: usize = 8;

/// Blocks holding `keys` keys.
fn key_blocks(keys: usize) -> usize {
    keys.div_ceil(KEY_BLOCK)
}

/// `out[r][key] = q[r] . key` for the `n` queries of `q` (`[n][hd]`) and the `blocks * 8`
/// keys of `kt` (`[blocks][hd][8]`, [`Cache::k`]'s layout); `out` is `[n][blocks * 8]`.
///
/// Every score takes its `hd` products in component order from zero, whatever the number of
/// queries and keys: the bits of a score are those of a one-token call. Keys past the cached
/// ones in the last block get scores that are never used.
#[inline(always)]
fn scores(q: &[f32], kt: &[f32], hd: usize, blocks: usize, out: &mut [f32], fma: bool) {
    #[cfg(target_arch = "x86_64")]
    if fma {
        #[allow(unsafe_code)]
        // SAFETY: `fma` is true only when AVX2 and FMA were detected (`fma_available`).
        unsafe {
            avx2::scores(q, kt, hd, blocks, out)
        };
        return;
    }
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
fn weighted_sums(
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
            avx2::weighted_sums(w, stride, first, vals, hd, inv, out, out_stride)
        };
        return;
    }
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

/// `x[t] += b` for every row `t` of `x` (nothing when the model has no such bias).
#[inline(always)]
fn add_bias(x: &mut [f32], b: &[f32]) {
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
fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32], d: usize) {
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
                    avx2::tile_group::<1, 4>(x, wg, y, k, m, c0);
                } else {
                    avx2::tile_group::<2, 2>(x, wg, y, k, m, c0);
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
                let xv: [__m256; R] =
                    std::array::from_fn(|r| _mm256_set1_ps(*xs[r].as_ptr().add(i)));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> NetConfig {
        NetConfig::gpt(40, 2, 2, 64)
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
                        let (mut got, mut want) =
                            (vec![f32::NAN; n * stride], vec![0.0; n * stride]);
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

    /// The arithmetic family (learned positions, LayerNorm, biases, untied 16-symbol head):
    /// the same property, and the symbols past the vocabulary score `-inf`.
    #[test]
    fn arith_models_split_calls_alike_and_score_only_their_symbols() {
        let cfg = NetConfig {
            vocab: 16,
            arch: Arch::ARITH,
            ..NetConfig::gpt(24, 2, 3, 34)
        };
        let net = Net::random(cfg, 9);
        let tokens: Vec<u8> = (0..30u8).map(|i| (i * 7 + 3) % 16).collect();
        let mut s = Scratch::default();
        let mut whole = Vec::new();
        net.forward(&mut net.new_cache(), &tokens, &mut s, &mut whole)
            .unwrap();
        for row in whole.chunks_exact(VOCAB) {
            assert!(row[..16].iter().all(|v| v.is_finite()));
            assert!(row[16..].iter().all(|&v| v == f32::NEG_INFINITY));
        }
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
