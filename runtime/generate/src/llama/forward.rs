//! [`LlamaModel`] (configuration and weights, shared) and [`LlamaDecoder`] (one sequence: its
//! KV cache and working buffers): transformers' `LlamaForCausalLM` forward pass, natively.
//!
//! Per layer: RMSNorm, the q/k/v projections, rotate-half RoPE on queries and keys (angles
//! `position * inv_freq` in f32, `inv_freq = 1 / rope_theta^(2j / head_dim)`), causal
//! grouped-query attention (each key/value head serves `heads / kv_heads` query heads; scores
//! `q . k * head_dim^-0.5`, softmax, weighted sum of values), the o projection added to the
//! residual, RMSNorm, the SwiGLU MLP (`down(silu(gate(x)) * up(x))`) added to the residual;
//! then the final RMSNorm and the output projection (the embedding when tied).
//!
//! **Exactness.** Every value a token gets is computed by the same operations in the same
//! order whether the token is fed alone or in a k-token call: the matrix products are the
//! kernels' fixed-order dot products, a query's scores are dot products with each cached key,
//! its softmax runs over its own keys only, and its weighted sum is a chain over those keys
//! in order. So `forward(&[a, b, c])` gives the bits of three one-token calls, and rolling the
//! cache back ([`LlamaDecoder::truncate`]) then feeding again gives the bits of a fresh
//! decoder.

use std::path::Path;
use std::sync::Arc;

use arca_bundle::Bundle;

use crate::error::GenError;
use crate::kernels::{exp, max8, rms_norm, rope, sum8};
use crate::llama::config::LlamaConfig;
use crate::llama::error::LlamaError;
use crate::llama::kernels::{Isa, Matrix, Rows, matmul, weighted_sum};
use crate::llama::weights::{LlamaWeights, Precision};

/// The provenance key of a native Llama bundle's format (`llama`).
pub(crate) const FORMAT_KEY: &str = "format";
/// Its value.
pub(crate) const FORMAT: &str = "llama";
/// The provenance key of its precision (`f32`, `f16`, `int8`).
pub(crate) const PRECISION_KEY: &str = "llama.precision";
/// The payload entry holding `config.json`'s text.
pub(crate) const CONFIG_ENTRY: &str = "hf/config.json";
/// The payload entry holding `tokenizer.json`'s text.
pub(crate) const TOKENIZER_ENTRY: &str = "hf/tokenizer.json";

/// A Llama model: its configuration and weights. Shared by the decoders that run it
/// (`Arc<LlamaModel>`); immutable.
pub struct LlamaModel {
    name: String,
    cfg: LlamaConfig,
    weights: LlamaWeights,
    /// `[head_dim / 2]` rotary frequencies.
    inv_freq: Vec<f32>,
    isa: Isa,
}

impl std::fmt::Debug for LlamaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaModel")
            .field("name", &self.name)
            .field("precision", &self.weights.precision())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, LlamaError> {
    std::fs::read(path).map_err(|source| LlamaError::Io {
        path: path.to_owned(),
        source,
    })
}

impl LlamaModel {
    fn new(name: String, cfg: LlamaConfig, weights: LlamaWeights) -> LlamaModel {
        let hd = cfg.head_dim;
        // transformers' default RoPE: base ** (arange(0, hd, 2) / hd) in f32, then 1 / that.
        let inv_freq = (0..hd / 2)
            .map(|j| 1.0 / cfg.rope_theta.powf((2 * j) as f32 / hd as f32))
            .collect();
        LlamaModel {
            name,
            cfg,
            weights,
            inv_freq,
            isa: Isa::detect(),
        }
    }

    /// Reads a transformers model directory: `config.json` and `model.safetensors` (read into
    /// memory once; matrices already in `precision` are used in place there, the others
    /// converted). The model is named after the directory.
    pub fn from_dir(dir: &Path, precision: Precision) -> Result<LlamaModel, LlamaError> {
        let config_path = dir.join("config.json");
        let text = String::from_utf8_lossy(&read_file(&config_path)?).into_owned();
        let weights_path = dir.join("model.safetensors");
        let bytes = read_file(&weights_path)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "llama".into());
        LlamaModel::from_safetensors(
            name,
            &text,
            &config_path.display().to_string(),
            bytes,
            &weights_path.display().to_string(),
            precision,
        )
    }

    /// Reads `config.json`'s text and `model.safetensors`'s bytes; `config_file` and
    /// `weights_file` name them in errors.
    pub fn from_safetensors(
        name: String,
        config: &str,
        config_file: &str,
        safetensors: Vec<u8>,
        weights_file: &str,
        precision: Precision,
    ) -> Result<LlamaModel, LlamaError> {
        let cfg = LlamaConfig::from_json(config, config_file)?;
        let weights = LlamaWeights::from_safetensors(safetensors, weights_file, &cfg, precision)?;
        Ok(LlamaModel::new(name, cfg, weights))
    }

    /// Reads a bundle written by [`crate::pack_llama`]; its weights are used in place (for a
    /// bundle from [`Bundle::open`], in the memory map).
    pub fn from_bundle(bundle: &Bundle) -> Result<LlamaModel, LlamaError> {
        let m = bundle.manifest();
        let bad = |reason: String| LlamaError::Bundle {
            model: m.name.clone(),
            reason,
        };
        if m.get(FORMAT_KEY) != Some(FORMAT) {
            return Err(bad(format!(
                "not a native Llama bundle (its provenance has no `{FORMAT_KEY}: {FORMAT}`; \
                 pack one with pack_llama)"
            )));
        }
        let word = m
            .get(PRECISION_KEY)
            .ok_or_else(|| bad(format!("the manifest has no `{PRECISION_KEY}`")))?;
        let precision = Precision::from_word(word).ok_or_else(|| {
            bad(format!(
                "`{PRECISION_KEY}` is {word:?}, not f32, f16 or int8"
            ))
        })?;
        let config = bundle
            .tensor(CONFIG_ENTRY)
            .ok_or_else(|| bad(format!("it has no `{CONFIG_ENTRY}`")))?;
        let config = std::str::from_utf8(config)
            .map_err(|e| bad(format!("`{CONFIG_ENTRY}` is not UTF-8: {e}")))?;
        let cfg = LlamaConfig::from_json(config, &format!("bundle '{}': {CONFIG_ENTRY}", m.name))?;
        let weights = LlamaWeights::from_bundle(bundle, &cfg, precision)?;
        Ok(LlamaModel::new(m.name.clone(), cfg, weights))
    }

    /// Whether `bundle` is a native Llama bundle (made by [`pack_llama`](crate::pack_llama)).
    pub fn is_bundle(bundle: &Bundle) -> bool {
        bundle.manifest().get(FORMAT_KEY) == Some(FORMAT)
    }

    /// The model's name (its directory's or bundle's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Its weights.
    pub fn weights(&self) -> &LlamaWeights {
        &self.weights
    }

    /// The precision of its matrices.
    pub fn precision(&self) -> Precision {
        self.weights.precision()
    }

    /// Runs the portable loops instead of this CPU's SIMD kernels (same bits: the portable
    /// loops fuse their multiply-adds where the SIMD kernels do). For tests and measurements.
    pub fn use_portable_kernels(&mut self) {
        self.isa = self.isa.portable();
    }
}

/// Working buffers of a forward call, reused between calls.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    y: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// One key/value head's queries `[n * group][head_dim]`, then its scores
    /// `[n * group][keys]`.
    qh: Vec<f32>,
    scores: Vec<f32>,
    /// `[n][head_dim / 2]` rotary cosines and sines.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// One sequence run by a [`LlamaModel`]: the KV cache (grown as tokens come, up to the
/// context) and working buffers. Its methods are those of the `Decoder` trait of generation.
///
/// ```no_run
/// use std::{path::Path, sync::Arc};
/// use arca_generate::{LlamaDecoder, LlamaModel, Precision};
///
/// let model = LlamaModel::from_dir(Path::new("tests/data/hf/llama"), Precision::F16)?;
/// let mut dec = LlamaDecoder::new(Arc::new(model));
/// let mut logits = Vec::new();
/// dec.forward(&[500, 727, 447], &mut logits)?; // 3 rows of vocab() logits
/// assert_eq!(logits.len(), 3 * dec.vocab());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LlamaDecoder {
    model: Arc<LlamaModel>,
    context_len: usize,
    /// Per layer `[position][kv_heads][head_dim]`.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
    s: Scratch,
}

impl LlamaDecoder {
    /// An empty decoder whose context is the model's `max_position_embeddings`.
    pub fn new(model: Arc<LlamaModel>) -> LlamaDecoder {
        let ctx = model.cfg.max_position_embeddings;
        LlamaDecoder::with_context_len(model, ctx)
    }

    /// An empty decoder with a context of `context_len` tokens, at most the model's
    /// `max_position_embeddings`.
    pub fn with_context_len(model: Arc<LlamaModel>, context_len: usize) -> LlamaDecoder {
        let layers = model.cfg.num_hidden_layers;
        LlamaDecoder {
            context_len: context_len.min(model.cfg.max_position_embeddings),
            model,
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            len: 0,
            s: Scratch::default(),
        }
    }

    /// The model it runs.
    pub fn model(&self) -> &Arc<LlamaModel> {
        &self.model
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Tokens: ids are `0..vocab()`, and a logits row is `vocab()` wide.
    pub fn vocab(&self) -> usize {
        self.model.cfg.vocab_size
    }

    /// The most tokens the cache holds.
    pub fn context_len(&self) -> usize {
        self.context_len
    }

    /// Tokens in the cache.
    pub fn cached(&self) -> usize {
        self.len
    }

    /// Forgets every token after the first `len` (no-op if it holds fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Feeds `tokens` after the cached ones; `out` becomes `tokens.len() * vocab()` logits,
    /// row `i` scoring the token after `tokens[i]`.
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] past the context; a token outside the vocabulary is
    /// [`GenError::Token`] (or [`GenError::Contract`] when it does not fit a `u8`). The cache
    /// is unchanged on error.
    pub fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        self.try_forward(tokens, out).map_err(GenError::from)
    }

    /// [`LlamaDecoder::forward`] with this module's error.
    pub fn try_forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), LlamaError> {
        let model = Arc::clone(&self.model);
        let cfg = &model.cfg;
        let total = self.len + tokens.len();
        if total > self.context_len {
            return Err(LlamaError::Context {
                model: model.name.clone(),
                len: total,
                context_len: self.context_len,
            });
        }
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(LlamaError::Token {
                model: model.name.clone(),
                token,
                vocab: cfg.vocab_size,
            });
        }
        out.clear();
        out.resize(tokens.len() * cfg.vocab_size, 0.0);
        if !tokens.is_empty() {
            self.run(&model, tokens, out);
        }
        Ok(())
    }

    fn run(&mut self, m: &LlamaModel, tokens: &[u32], logits: &mut [f32]) {
        let (cfg, w, isa) = (&m.cfg, &m.weights, m.isa);
        let n = tokens.len();
        let (d, f, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
        let (qw, kvw) = (cfg.q_width(), cfg.kv_width());
        let group = cfg.num_attention_heads / cfg.num_key_value_heads;
        let (past, total) = (self.len, self.len + n);
        let eps = cfg.rms_norm_eps;
        let scale = 1.0 / (hd as f32).sqrt();
        let s = &mut self.s;
        let sized = |buf: &mut Vec<f32>, len: usize| {
            buf.clear();
            buf.resize(len, 0.0);
        };
        sized(&mut s.x, n * d);
        sized(&mut s.h, n * d);
        sized(&mut s.q, n * qw);
        sized(&mut s.k, n * kvw);
        sized(&mut s.v, n * kvw);
        sized(&mut s.y, n * qw);
        sized(&mut s.gate, n * f);
        sized(&mut s.up, n * f);
        sized(&mut s.qh, n * group * hd);
        sized(&mut s.scores, n * group * total);
        for cache in self.k.iter_mut().chain(self.v.iter_mut()) {
            if cache.len() < total * kvw {
                cache.resize(total * kvw, 0.0);
            }
        }
        let embed = w.view(&w.embed);
        for (row, &tok) in s.x.chunks_exact_mut(d).zip(tokens) {
            embed.row_f32(tok as usize, row);
        }
        s.cos.clear();
        s.sin.clear();
        for t in 0..n {
            let pos = (past + t) as f32;
            for &fr in &m.inv_freq {
                let a = pos * fr;
                s.cos.push(a.cos());
                s.sin.push(a.sin());
            }
        }
        let half = hd / 2;
        for (l, layer) in w.layers.iter().enumerate() {
            rms_norm(&s.x, &layer.input_norm, eps, &mut s.h, d);
            matmul(isa, &s.h, &w.view(&layer.q), &mut s.q);
            matmul(isa, &s.h, &w.view(&layer.k), &mut s.k);
            matmul(isa, &s.h, &w.view(&layer.v), &mut s.v);
            for t in 0..n {
                let (c, sn) = (&s.cos[t * half..][..half], &s.sin[t * half..][..half]);
                for head in s.q[t * qw..][..qw].chunks_exact_mut(hd) {
                    rope(head, c, sn);
                }
                for head in s.k[t * kvw..][..kvw].chunks_exact_mut(hd) {
                    rope(head, c, sn);
                }
            }
            let (kc, vc) = (&mut self.k[l], &mut self.v[l]);
            kc[past * kvw..total * kvw].copy_from_slice(&s.k);
            vc[past * kvw..total * kvw].copy_from_slice(&s.v);
            // One key/value head at a time, all its query heads and all the call's tokens
            // together: its keys are read once per call.
            for g in 0..cfg.num_key_value_heads {
                for t in 0..n {
                    for i in 0..group {
                        let head = g * group + i;
                        s.qh[(t * group + i) * hd..][..hd]
                            .copy_from_slice(&s.q[t * qw + head * hd..][..hd]);
                    }
                }
                let keys = match Matrix::new(Rows::Floats(&kc[g * hd..]), total, hd, kvw) {
                    Ok(k) => k,
                    Err(e) => unreachable!("the cache holds `total` positions: {e}"),
                };
                matmul(isa, &s.qh, &keys, &mut s.scores);
                for t in 0..n {
                    let seen = past + t + 1;
                    for i in 0..group {
                        let row = &mut s.scores[(t * group + i) * total..][..seen];
                        for x in row.iter_mut() {
                            *x *= scale;
                        }
                        let max = max8(row);
                        for x in row.iter_mut() {
                            *x = exp(*x - max, false);
                        }
                        let sum = sum8(row);
                        for x in row.iter_mut() {
                            *x /= sum;
                        }
                        let head = g * group + i;
                        let o = &mut s.y[t * qw + head * hd..][..hd];
                        weighted_sum(isa, row, &vc[g * hd..], kvw, o);
                    }
                }
            }
            matmul(isa, &s.y, &w.view(&layer.o), &mut s.h);
            for (x, h) in s.x.iter_mut().zip(&s.h) {
                *x += h;
            }
            rms_norm(&s.x, &layer.post_norm, eps, &mut s.h, d);
            matmul(isa, &s.h, &w.view(&layer.gate), &mut s.gate);
            matmul(isa, &s.h, &w.view(&layer.up), &mut s.up);
            for (g, u) in s.gate.iter_mut().zip(&s.up) {
                *g = *g / (1.0 + exp(-*g, false)) * u;
            }
            matmul(isa, &s.gate, &w.view(&layer.down), &mut s.h);
            for (x, h) in s.x.iter_mut().zip(&s.h) {
                *x += h;
            }
        }
        rms_norm(&s.x, &w.norm, eps, &mut s.h, d);
        matmul(isa, &s.h, &w.view(w.head()), logits);
        self.len = total;
    }
}
