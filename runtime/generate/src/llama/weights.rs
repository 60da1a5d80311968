//! [`LlamaWeights`]: every matrix of a Llama model `[out][in]` as transformers stores it, in
//! f32, f16 or int8 with one f32 scale per output row ([`Precision`]), and the norms in f32.
//!
//! Two sources:
//!
//! - `model.safetensors` (read with HF's `safetensors` crate from bytes in memory): matrices
//!   already in the asked precision (f32 at [`Precision::F32`], f16 at [`Precision::F16`]) are
//!   used in place in those bytes; others (bf16, or f32 asked as f16 or int8) are converted
//!   once. Int8 is symmetric per row: `scale = max |w| / 127`, `q = round(w / scale)`.
//! - an arca bundle written by [`crate::pack_llama`]: every matrix is already in the bundle's
//!   precision and is used in place in the bundle's bytes (memory-mapped by
//!   [`Bundle::open`]), with no copy.
//!
//! The names are transformers' (`model.layers.{i}.self_attn.q_proj.weight`, ...); int8 scales
//! are `<name>.scale`.

use std::ops::Range;

use arca_bundle::{Bundle, DType};
use safetensors::{Dtype, SafeTensors};

use crate::llama::config::LlamaConfig;
use crate::llama::error::LlamaError;
use crate::llama::kernels::{Matrix, Rows};

/// Element type of the weight matrices (the norms are always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 4 bytes a weight.
    F32,
    /// IEEE half, 2 bytes a weight (widened exactly to f32 in the kernels).
    F16,
    /// One signed byte a weight and one f32 scale per output row.
    Int8,
}

impl Precision {
    /// Every precision, widest first.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Int8];

    /// `f32`, `f16` or `int8`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }

    /// Parses [`Precision::as_str`]'s words.
    pub fn from_word(word: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.as_str() == word)
    }

    /// The bundle element type of its matrices.
    pub(crate) fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Int8 => DType::I8,
        }
    }
}

/// The bytes weights are read from in place.
enum Store {
    /// A bundle (memory-mapped, static or owned by it).
    Bundle(Bundle),
    /// A safetensors file's bytes.
    Bytes(Vec<u8>),
}

impl Store {
    fn bytes(&self) -> &[u8] {
        match self {
            Store::Bundle(b) => b.as_bytes(),
            Store::Bytes(v) => v,
        }
    }
}

/// Where one tensor's bytes are.
enum Bytes {
    /// In the store, in place.
    InStore(Range<usize>),
    /// Converted at load.
    Owned(Vec<u8>),
}

/// One weight matrix.
pub(crate) struct Tensor {
    bytes: Bytes,
    /// Int8 only: one little-endian f32 per row.
    scales: Option<Bytes>,
    rows: usize,
    cols: usize,
}

/// One decoder layer's weights.
pub(crate) struct Layer {
    pub(crate) input_norm: Vec<f32>,
    pub(crate) q: Tensor,
    pub(crate) k: Tensor,
    pub(crate) v: Tensor,
    pub(crate) o: Tensor,
    pub(crate) post_norm: Vec<f32>,
    pub(crate) gate: Tensor,
    pub(crate) up: Tensor,
    pub(crate) down: Tensor,
}

/// Every weight of a Llama model (see the module docs).
pub struct LlamaWeights {
    store: Store,
    precision: Precision,
    pub(crate) embed: Tensor,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Vec<f32>,
    /// `None` when tied to the embedding.
    pub(crate) head: Option<Tensor>,
}

/// A tensor as its source has it.
struct Found {
    dtype: Source,
    shape: Vec<usize>,
    range: Range<usize>,
}

/// The element types a source holds that this path reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    F32,
    F16,
    BF16,
    I8,
    Other,
}

/// What the loader reads from: a name to its bytes in the store.
struct Reader<'a> {
    bytes: &'a [u8],
    file: &'a str,
    precision: Precision,
    /// Matrices are already in `precision` (a bundle): never converted.
    packed: bool,
    find: &'a dyn Fn(&str) -> Option<Found>,
}

fn le_f32(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The bytes of `values` as little-endian f32.
pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Symmetric int8 per row: `(q, scales)`.
fn quantize(values: &[f32], cols: usize) -> (Vec<u8>, Vec<u8>) {
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / cols.max(1) * 4);
    for row in values.chunks_exact(cols) {
        let max = row.iter().fold(0.0f32, |m, &w| m.max(w.abs()));
        let scale = max / 127.0;
        for &w in row {
            let v = if scale > 0.0 {
                (w / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            };
            q.push(v as u8);
        }
        scales.extend_from_slice(&scale.to_le_bytes());
    }
    (q, scales)
}

impl Reader<'_> {
    fn find(&self, name: &str) -> Result<Found, LlamaError> {
        (self.find)(name).ok_or_else(|| LlamaError::MissingTensor {
            file: self.file.to_owned(),
            name: name.to_owned(),
        })
    }

    fn shaped(&self, name: &str, expected: &[usize]) -> Result<Found, LlamaError> {
        let found = self.find(name)?;
        if found.shape != expected {
            return Err(LlamaError::Shape {
                file: self.file.to_owned(),
                name: name.to_owned(),
                found: found.shape,
                expected: expected.to_vec(),
            });
        }
        Ok(found)
    }

    fn dtype_error(&self, name: &str, found: Source, accepted: &'static str) -> LlamaError {
        LlamaError::DType {
            file: self.file.to_owned(),
            name: name.to_owned(),
            dtype: format!("{found:?}").to_lowercase(),
            accepted,
        }
    }

    /// A float tensor as f32 values (f32, f16 or bf16 sources).
    fn floats(
        &self,
        name: &str,
        found: &Found,
        accepted: &'static str,
    ) -> Result<Vec<f32>, LlamaError> {
        let b = &self.bytes[found.range.clone()];
        Ok(match found.dtype {
            Source::F32 => b.chunks_exact(4).map(le_f32).collect(),
            Source::F16 => b
                .chunks_exact(2)
                .map(|h| half::f16::from_bits(u16::from_le_bytes([h[0], h[1]])).to_f32())
                .collect(),
            Source::BF16 => b
                .chunks_exact(2)
                .map(|h| f32::from_bits(u32::from(u16::from_le_bytes([h[0], h[1]])) << 16))
                .collect(),
            other => return Err(self.dtype_error(name, other, accepted)),
        })
    }

    /// A norm's gains, `[len]`, as f32.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, LlamaError> {
        let found = self.shaped(name, &[len])?;
        let accepted = if self.packed {
            "f32"
        } else {
            "f32, f16 or bf16"
        };
        if self.packed && found.dtype != Source::F32 {
            return Err(self.dtype_error(name, found.dtype, accepted));
        }
        self.floats(name, &found, accepted)
    }

    /// A `[rows][cols]` matrix in the reader's precision.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Tensor, LlamaError> {
        let found = self.shaped(name, &[rows, cols])?;
        let in_store = |found: Found, scales: Option<Bytes>| Tensor {
            bytes: Bytes::InStore(found.range),
            scales,
            rows,
            cols,
        };
        let tensor = match (found.dtype, self.precision) {
            (Source::F32, Precision::F32) | (Source::F16, Precision::F16) => in_store(found, None),
            (Source::I8, Precision::Int8) if self.packed => {
                let scale_name = format!("{name}.scale");
                let s = self.shaped(&scale_name, &[rows])?;
                if s.dtype != Source::F32 {
                    return Err(self.dtype_error(&scale_name, s.dtype, "f32"));
                }
                in_store(found, Some(Bytes::InStore(s.range)))
            }
            (dtype, _) if self.packed => {
                let accepted = match self.precision {
                    Precision::F32 => "f32 (the bundle's precision)",
                    Precision::F16 => "f16 (the bundle's precision)",
                    Precision::Int8 => "i8 (the bundle's precision)",
                };
                return Err(self.dtype_error(name, dtype, accepted));
            }
            _ => {
                let values = self.floats(name, &found, "f32, f16 or bf16")?;
                match self.precision {
                    Precision::F32 => Tensor {
                        bytes: Bytes::Owned(f32_bytes(&values)),
                        scales: None,
                        rows,
                        cols,
                    },
                    Precision::F16 => Tensor {
                        bytes: Bytes::Owned(
                            values
                                .iter()
                                .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
                                .collect(),
                        ),
                        scales: None,
                        rows,
                        cols,
                    },
                    Precision::Int8 => {
                        let (q, scales) = quantize(&values, cols);
                        Tensor {
                            bytes: Bytes::Owned(q),
                            scales: Some(Bytes::Owned(scales)),
                            rows,
                            cols,
                        }
                    }
                }
            }
        };
        Ok(tensor)
    }
}

/// The transformers name of layer `i`'s tensor `part` (`self_attn.q_proj.weight`, ...).
pub(crate) fn layer_name(i: usize, part: &str) -> String {
    format!("model.layers.{i}.{part}")
}

impl LlamaWeights {
    fn read(cfg: &LlamaConfig, store: Store, r: &Reader<'_>) -> Result<LlamaWeights, LlamaError> {
        let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
        let (qw, kvw) = (cfg.q_width(), cfg.kv_width());
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let n = |part: &str| layer_name(i, part);
            layers.push(Layer {
                input_norm: r.vector(&n("input_layernorm.weight"), d)?,
                q: r.matrix(&n("self_attn.q_proj.weight"), qw, d)?,
                k: r.matrix(&n("self_attn.k_proj.weight"), kvw, d)?,
                v: r.matrix(&n("self_attn.v_proj.weight"), kvw, d)?,
                o: r.matrix(&n("self_attn.o_proj.weight"), d, qw)?,
                post_norm: r.vector(&n("post_attention_layernorm.weight"), d)?,
                gate: r.matrix(&n("mlp.gate_proj.weight"), f, d)?,
                up: r.matrix(&n("mlp.up_proj.weight"), f, d)?,
                down: r.matrix(&n("mlp.down_proj.weight"), d, f)?,
            });
        }
        let weights = LlamaWeights {
            embed: r.matrix("model.embed_tokens.weight", v, d)?,
            norm: r.vector("model.norm.weight", d)?,
            head: if cfg.tie_word_embeddings {
                None
            } else {
                Some(r.matrix("lm_head.weight", v, d)?)
            },
            layers,
            precision: r.precision,
            store,
        };
        Ok(weights)
    }

    /// Checks every view once, so the forward builds them again without failing.
    fn check(self, file: &str) -> Result<LlamaWeights, LlamaError> {
        for (name, t) in self.matrices() {
            self.try_view(t).map_err(|reason| LlamaError::Config {
                file: file.to_owned(),
                reason: format!("tensor `{name}`: {reason}"),
            })?;
        }
        Ok(self)
    }

    /// Reads `model.safetensors`'s bytes (`file` names them in errors).
    pub(crate) fn from_safetensors(
        bytes: Vec<u8>,
        file: &str,
        cfg: &LlamaConfig,
        precision: Precision,
    ) -> Result<LlamaWeights, LlamaError> {
        let parsed = SafeTensors::deserialize(&bytes).map_err(|e| LlamaError::Safetensors {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        let base = bytes.as_ptr() as usize;
        let find = |name: &str| {
            let view = parsed.tensor(name).ok()?;
            let start = view.data().as_ptr() as usize - base;
            Some(Found {
                dtype: match view.dtype() {
                    Dtype::F32 => Source::F32,
                    Dtype::F16 => Source::F16,
                    Dtype::BF16 => Source::BF16,
                    Dtype::I8 => Source::I8,
                    _ => Source::Other,
                },
                shape: view.shape().to_vec(),
                range: start..start + view.data().len(),
            })
        };
        let reader = Reader {
            bytes: &bytes,
            file,
            precision,
            packed: false,
            find: &find,
        };
        // The parsed view borrows `bytes`; read the layout first, then hand the bytes over
        // (moving a Vec does not move its heap buffer, so the ranges stay valid).
        let mut weights = LlamaWeights::read(cfg, Store::Bytes(Vec::new()), &reader)?;
        drop(parsed);
        weights.store = Store::Bytes(bytes);
        weights.check(file)
    }

    /// Reads a bundle written by [`crate::pack_llama`] whose matrices are in `precision`.
    pub(crate) fn from_bundle(
        bundle: &Bundle,
        cfg: &LlamaConfig,
        precision: Precision,
    ) -> Result<LlamaWeights, LlamaError> {
        let all = bundle.as_bytes();
        let base = all.as_ptr() as usize;
        let find = |name: &str| {
            let entry = bundle.manifest().tensors.iter().find(|t| t.name == name)?;
            let data = bundle.tensor(name)?;
            let start = data.as_ptr() as usize - base;
            Some(Found {
                dtype: match entry.dtype {
                    DType::F32 => Source::F32,
                    DType::F16 => Source::F16,
                    DType::I8 => Source::I8,
                    _ => Source::Other,
                },
                shape: entry
                    .shape
                    .iter()
                    .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
                    .collect(),
                range: start..start + data.len(),
            })
        };
        let file = format!("bundle '{}'", bundle.manifest().name);
        let reader = Reader {
            bytes: all,
            file: &file,
            precision,
            packed: true,
            find: &find,
        };
        LlamaWeights::read(cfg, Store::Bundle(bundle.clone()), &reader)?.check(&file)
    }

    /// The precision of the matrices.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    fn bytes<'a>(&'a self, b: &'a Bytes) -> &'a [u8] {
        match b {
            Bytes::InStore(r) => self.store.bytes().get(r.clone()).unwrap_or_default(),
            Bytes::Owned(v) => v,
        }
    }

    fn try_view<'a>(&'a self, t: &'a Tensor) -> Result<Matrix<'a>, String> {
        let data = self.bytes(&t.bytes);
        let rows = match (self.precision, &t.scales) {
            (Precision::F32, _) => Rows::F32(data),
            (Precision::F16, _) => Rows::F16(data),
            (Precision::Int8, Some(s)) => Rows::I8 {
                q: data,
                scales: self.bytes(s),
            },
            (Precision::Int8, None) => return Err("int8 without scales".into()),
        };
        Matrix::new(rows, t.rows, t.cols, t.cols)
    }

    /// The kernels' view of a matrix (checked at load).
    pub(crate) fn view<'a>(&'a self, t: &'a Tensor) -> Matrix<'a> {
        match self.try_view(t) {
            Ok(m) => m,
            Err(e) => unreachable!("every weight view is checked at load: {e}"),
        }
    }

    /// The output projection (the embedding when tied).
    pub(crate) fn head(&self) -> &Tensor {
        self.head.as_ref().unwrap_or(&self.embed)
    }

    /// Every matrix with its transformers name, in the order a bundle stores them.
    pub(crate) fn matrices(&self) -> Vec<(String, &Tensor)> {
        let mut out = vec![("model.embed_tokens.weight".to_owned(), &self.embed)];
        for (i, l) in self.layers.iter().enumerate() {
            for (part, t) in [
                ("self_attn.q_proj.weight", &l.q),
                ("self_attn.k_proj.weight", &l.k),
                ("self_attn.v_proj.weight", &l.v),
                ("self_attn.o_proj.weight", &l.o),
                ("mlp.gate_proj.weight", &l.gate),
                ("mlp.up_proj.weight", &l.up),
                ("mlp.down_proj.weight", &l.down),
            ] {
                out.push((layer_name(i, part), t));
            }
        }
        if let Some(h) = &self.head {
            out.push(("lm_head.weight".to_owned(), h));
        }
        out
    }

    /// Every norm's gains with its transformers name.
    pub(crate) fn norms(&self) -> Vec<(String, &[f32])> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.push((layer_name(i, "input_layernorm.weight"), &l.input_norm[..]));
            out.push((
                layer_name(i, "post_attention_layernorm.weight"),
                &l.post_norm[..],
            ));
        }
        out.push(("model.norm.weight".to_owned(), &self.norm[..]));
        out
    }

    /// A matrix's element bytes, its scale bytes (int8), rows and columns.
    pub(crate) fn raw<'a>(&'a self, t: &'a Tensor) -> (&'a [u8], Option<&'a [u8]>, usize, usize) {
        (
            self.bytes(&t.bytes),
            t.scales.as_ref().map(|s| self.bytes(s)),
            t.rows,
            t.cols,
        )
    }

    /// Bytes of the matrices held in place in the source (not converted at load).
    pub fn bytes_in_place(&self) -> usize {
        self.matrices()
            .iter()
            .map(|(_, t)| match &t.bytes {
                Bytes::InStore(r) => r.len(),
                Bytes::Owned(_) => 0,
            })
            .sum()
    }
}

/// A `model.safetensors` of random weights for `cfg` (uniform in `±sqrt(3 / fan_in)`, norms 1,
/// the output layer scaled by `head_scale`), written with the `safetensors` crate: synthetic
/// models for tests and measurements.
pub fn random_safetensors(
    cfg: &LlamaConfig,
    seed: u64,
    head_scale: f32,
) -> Result<Vec<u8>, LlamaError> {
    let mut next = crate::random::uniform(seed);
    let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (qw, kvw) = (cfg.q_width(), cfg.kv_width());
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut mat = |name: String, rows: usize, cols: usize, gain: f32| {
        let s = (3.0 / cols as f32).sqrt() * gain;
        let values: Vec<f32> = (0..rows * cols).map(|_| next(s)).collect();
        (name, vec![rows, cols], f32_bytes(&values))
    };
    let ones = |name: String| (name, vec![d], f32_bytes(&vec![1.0; d]));
    tensors.push(mat("model.embed_tokens.weight".into(), v, d, 1.0));
    for i in 0..cfg.num_hidden_layers {
        let n = |part: &str| layer_name(i, part);
        tensors.push(ones(n("input_layernorm.weight")));
        tensors.push(mat(n("self_attn.q_proj.weight"), qw, d, 1.0));
        tensors.push(mat(n("self_attn.k_proj.weight"), kvw, d, 1.0));
        tensors.push(mat(n("self_attn.v_proj.weight"), kvw, d, 1.0));
        tensors.push(mat(n("self_attn.o_proj.weight"), d, qw, 1.0));
        tensors.push(ones(n("post_attention_layernorm.weight")));
        tensors.push(mat(n("mlp.gate_proj.weight"), f, d, 1.0));
        tensors.push(mat(n("mlp.up_proj.weight"), f, d, 1.0));
        tensors.push(mat(n("mlp.down_proj.weight"), d, f, 1.0));
    }
    tensors.push(ones("model.norm.weight".into()));
    if !cfg.tie_word_embeddings {
        tensors.push(mat("lm_head.weight".into(), v, d, head_scale));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|views| safetensors::serialize(views, None));
    views.map_err(|e| LlamaError::Safetensors {
        file: "random weights".into(),
        reason: e.to_string(),
    })
}
