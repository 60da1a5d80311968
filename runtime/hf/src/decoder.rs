//! [`HfModel`] and [`HfDecoder`]: a decoder export run in tract, with its KV cache.
//!
//! [`HfModel::open`] reads `config.json`, recognises the graph's inputs and outputs
//! ([`GraphSpec`]), fixes batch 1 and two symbols (`S`, the new tokens of a call, and `P`, the
//! cached positions), then types, optimizes and plans the graph once. The model is cheap to
//! clone and shared across threads (`Arc`). [`HfModel::session`] starts an [`HfDecoder`], which
//! owns the KV cache (one tensor `[1, kv_heads, cached, head_dim]` per layer and key/value):
//! [`HfDecoder::forward`] feeds any number of tokens in one call (a prompt, or the draft tokens
//! a verifier checks) and keeps the graph's `present.*` outputs as the new cache;
//! [`HfDecoder::truncate`] rolls the cache back to a prefix by slicing it on the position axis.
//!
//! ```no_run
//! let model = arca_hf::HfModel::open("tests/data/hf/llama".as_ref())?;
//! let mut decoder = model.session();
//! let mut logits = Vec::new();
//! decoder.forward(&[500, 727, 447], &mut logits)?;       // 3 rows of vocab() logits
//! let row = &logits[2 * decoder.vocab()..];              // predicts the 4th token
//! # let _ = row;
//! # Ok::<(), arca_hf::HfError>(())
//! ```

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::config::HfConfig;
use crate::error::HfError;
use crate::graph::{GraphSpec, IdType, InputRole, OutputRole};
use crate::source::{GRAPH_FILE, ModelSource};
use crate::tokenizer::HfTokenizer;

/// A decoder export, loaded and planned once. Clones share it.
#[derive(Clone)]
pub struct HfModel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    source: ModelSource,
    config: HfConfig,
    spec: GraphSpec,
    plan: Arc<TypedRunnableModel>,
    /// The role of each plan input, in plan order.
    inputs: Vec<InputRole>,
    /// The role of each plan output, in plan order.
    outputs: Vec<OutputRole>,
}

impl std::fmt::Debug for HfModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfModel")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl HfModel {
    /// Opens a model directory (`model.onnx`, `config.json`) or an `hf-decoder` bundle, and
    /// builds the optimized tract plan (this takes a while: every weight is read and the graph
    /// rewritten for this CPU).
    pub fn open(path: &Path) -> Result<HfModel, HfError> {
        HfModel::from_source(ModelSource::open(path)?)
    }

    /// [`HfModel::open`] on a source already opened.
    pub fn from_source(source: ModelSource) -> Result<HfModel, HfError> {
        let proto = source.graph_proto()?;
        let config = HfConfig::of_source(&source)?;
        let label = source.label(GRAPH_FILE);
        let spec = GraphSpec::read(&proto, &config, &label)?;
        let mut model = source.inference_model(&proto)?;
        drop(proto);
        let tract = |stage: &'static str| {
            let label = label.clone();
            move |e: TractError| HfError::Tract {
                path: label.clone(),
                stage,
                message: format!("{e:#}"),
            }
        };

        // Keep the recognised outputs only (hidden states or attentions are pruned).
        let output_names: Vec<&str> = spec.outputs().iter().map(|(n, _)| n.as_str()).collect();
        model
            .select_outputs_by_name(&output_names)
            .map_err(tract("select the outputs of"))?;
        let outputs = spec.outputs().iter().map(|(_, r)| *r).collect();

        let s = model.symbols.sym("S");
        let p = model.symbols.sym("P");
        let id_type = match spec.id_type() {
            IdType::I64 => i64::datum_type(),
            IdType::I32 => i32::datum_type(),
        };
        let mut inputs = Vec::new();
        let outlets = model
            .input_outlets()
            .map_err(tract("read the inputs of"))?
            .to_vec();
        for (i, outlet) in outlets.iter().enumerate() {
            let name = &model.node(outlet.node).name;
            let role = spec
                .inputs()
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| *r)
                .ok_or_else(|| HfError::Graph {
                    path: label.clone(),
                    reason: format!("has an input '{name}' tract sees but the graph does not list"),
                })?;
            let fact = match role {
                InputRole::InputIds | InputRole::PositionIds => {
                    InferenceFact::dt_shape(id_type, tvec![1.to_dim(), s.to_dim()])
                }
                InputRole::AttentionMask => {
                    InferenceFact::dt_shape(id_type, tvec![1.to_dim(), p.to_dim() + s.to_dim()])
                }
                InputRole::Past { .. } => InferenceFact::dt_shape(
                    f32::datum_type(),
                    tvec![
                        1.to_dim(),
                        config.kv_heads().to_dim(),
                        p.to_dim(),
                        config.head_dim().to_dim()
                    ],
                ),
            };
            model
                .set_input_fact(i, fact)
                .map_err(tract("set the input shapes of"))?;
            inputs.push(role);
        }
        let typed = model.into_typed().map_err(tract("type"))?;
        let optimized = typed.into_optimized().map_err(tract("optimize"))?;
        let plan = optimized.into_runnable().map_err(tract("plan"))?;
        Ok(HfModel {
            inner: Arc::new(Inner {
                name: source.name(),
                source,
                config,
                spec,
                plan,
                inputs,
                outputs,
            }),
        })
    }

    /// A new decoding session with an empty KV cache.
    pub fn session(&self) -> HfDecoder {
        let layers = self.inner.spec.layers();
        HfDecoder {
            kv: vec![self.empty_kv().into_tvalue(); 2 * layers],
            cached: 0,
            model: self.inner.clone(),
        }
    }

    fn empty_kv(&self) -> Tensor {
        let c = &self.inner.config;
        Tensor::zero::<f32>(&[1, c.kv_heads(), 0, c.head_dim()])
            .unwrap_or_else(|_| Tensor::default())
    }

    /// The model's tokenizer (`tokenizer.json` beside the graph, or in the bundle); its EOS is
    /// `tokenizer_config.json`'s when there is one, else `config.json`'s `eos_token_id`.
    pub fn tokenizer(&self) -> Result<HfTokenizer, HfError> {
        HfTokenizer::of_source(&self.inner.source, &self.inner.config)
    }

    /// The model's name (its directory's, or the bundle's).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What `config.json` says.
    pub fn config(&self) -> &HfConfig {
        &self.inner.config
    }

    /// The graph's recognised inputs and outputs, parameters and weight types.
    pub fn spec(&self) -> &GraphSpec {
        &self.inner.spec
    }

    /// Where the model was read from.
    pub fn source(&self) -> &ModelSource {
        &self.inner.source
    }
}

/// One decoding session: the model and its KV cache. Its methods are those of
/// `arca_generate::Decoder`.
#[derive(Clone)]
pub struct HfDecoder {
    model: Arc<Inner>,
    /// `[1, kv_heads, cached, head_dim]` per layer: key at `2 * layer`, value at `2 * layer + 1`.
    /// Shared with the graph's inputs and taken from its outputs without a copy.
    kv: Vec<TValue>,
    cached: usize,
}

impl std::fmt::Debug for HfDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfDecoder")
            .field("model", &self.model.name)
            .field("cached", &self.cached)
            .finish()
    }
}

impl HfDecoder {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Number of logits per position.
    pub fn vocab(&self) -> usize {
        self.model.config.vocab_size()
    }

    /// The most positions the cache may hold (`max_position_embeddings` / `n_positions`).
    pub fn context_len(&self) -> usize {
        self.model.config.context_len()
    }

    /// Number of positions in the KV cache.
    pub fn cached(&self) -> usize {
        self.cached
    }

    /// Keeps the first `len` cached positions (no-op when `len >= cached()`).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.cached {
            return;
        }
        for t in &mut self.kv {
            match t.slice(2, 0, len) {
                Ok(kept) => *t = kept.into_tvalue(),
                // Unreachable: every stored tensor was checked to be rank 4 with `cached`
                // positions. Should it happen, an empty cache is still a consistent state.
                Err(_) => {
                    self.reset();
                    return;
                }
            }
        }
        self.cached = len;
    }

    /// Empties the KV cache.
    pub fn reset(&mut self) {
        let c = &self.model.config;
        for t in &mut self.kv {
            *t = Tensor::zero::<f32>(&[1, c.kv_heads(), 0, c.head_dim()])
                .unwrap_or_else(|_| Tensor::default())
                .into_tvalue();
        }
        self.cached = 0;
    }

    /// Runs `tokens` after the cached positions in one call: `out` gets `tokens.len()` rows of
    /// [`vocab`](HfDecoder::vocab) logits, row `i` predicting the token after `tokens[i]`, and
    /// the cache grows by `tokens.len()`. On error the cache is unchanged.
    pub fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), HfError> {
        out.clear();
        if tokens.is_empty() {
            return Ok(());
        }
        let input_err = |reason: String| HfError::Input {
            model: self.model.name.clone(),
            reason,
        };
        let vocab = self.vocab();
        let total = self.cached + tokens.len();
        if total > self.context_len() {
            return Err(input_err(format!(
                "{} cached + {} new positions exceed the context of {}",
                self.cached,
                tokens.len(),
                self.context_len()
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(input_err(format!(
                "token {t} is outside the vocabulary of {vocab}"
            )));
        }
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let positions: Vec<i64> = (self.cached as i64..total as i64).collect();
        let mask = vec![1i64; total];
        let id_type = self.model.spec.id_type();
        let mut values = TVec::new();
        for role in &self.model.inputs {
            let value = match *role {
                InputRole::InputIds => row(&ids, id_type),
                InputRole::PositionIds => row(&positions, id_type),
                InputRole::AttentionMask => row(&mask, id_type),
                InputRole::Past { layer, value } => {
                    Ok(self.kv[2 * layer + usize::from(value)].clone())
                }
            }
            .map_err(|e| self.run_err(e))?;
            values.push(value);
        }
        let results = self.model.plan.run(values).map_err(|e| self.run_err(e))?;
        let mut fresh: Vec<Option<TValue>> = vec![None; self.kv.len()];
        for (role, value) in self.model.outputs.iter().zip(results) {
            match *role {
                OutputRole::Logits => {
                    let view = value
                        .to_plain_array_view::<f32>()
                        .map_err(|e| self.run_err(e))?;
                    if view.shape() != [1, tokens.len(), vocab] {
                        return Err(input_err(format!(
                            "logits came out {:?}, expected [1, {}, {vocab}]",
                            view.shape(),
                            tokens.len()
                        )));
                    }
                    out.extend(view.iter().copied());
                }
                OutputRole::Present {
                    layer,
                    value: is_value,
                } => {
                    let c = &self.model.config;
                    if value.shape() != [1, c.kv_heads(), total, c.head_dim()] {
                        return Err(input_err(format!(
                            "present.{layer} came out {:?}, expected [1, {}, {total}, {}]",
                            value.shape(),
                            c.kv_heads(),
                            c.head_dim()
                        )));
                    }
                    fresh[2 * layer + usize::from(is_value)] = Some(value);
                }
            }
        }
        // GraphSpec checked that every layer has both present outputs.
        let fresh: Option<Vec<TValue>> = fresh.into_iter().collect();
        self.kv = fresh.ok_or_else(|| input_err("a present.* output is missing".into()))?;
        self.cached = total;
        Ok(())
    }

    fn run_err(&self, e: TractError) -> HfError {
        HfError::Run {
            model: self.model.name.clone(),
            message: format!("{e:#}"),
        }
    }
}

/// A `[1, len]` tensor of the graph's integer type.
fn row(values: &[i64], id_type: IdType) -> TractResult<TValue> {
    let t = match id_type {
        IdType::I64 => Tensor::from_shape(&[1, values.len()], values)?,
        IdType::I32 => {
            // Positions and ids are below the context and vocabulary sizes, far below 2^31.
            let narrow: Vec<i32> = values.iter().map(|&v| v as i32).collect();
            Tensor::from_shape(&[1, values.len()], &narrow)?
        }
    };
    Ok(t.into_tvalue())
}
