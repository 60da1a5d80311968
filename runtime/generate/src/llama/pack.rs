//! [`pack_llama`]: a transformers Llama directory as one arca bundle (`.arcm`) whose weights
//! the native path maps in place.
//!
//! The layout (arca-bundle format 1, written with [`arca_bundle::encode`]; the graph is
//! empty):
//!
//! - manifest: kind `target`, `vocab_size` and `context_len` from the configuration,
//!   `parameters`, `quantization` saying the precision, and provenance `format: llama`,
//!   `llama.precision: f32|f16|int8`, `architecture: LlamaForCausalLM`;
//! - payload, every entry 64-byte aligned: `hf/config.json` and (when the directory has one)
//!   `hf/tokenizer.json` as `u8` entries holding the files' bytes (as `arca-hf`'s bundles
//!   do); every matrix under its transformers name, `[out][in]`, in the precision (`f32`, `f16`
//!   or `i8`), an int8 matrix followed by `<name>.scale` (`f32 [out]`); the norms in `f32`.
//!
//! The output is a pure function of the directory's files and the precision, and
//! [`LlamaModel::from_bundle`](crate::LlamaModel::from_bundle) on it computes the bits of
//! [`LlamaModel::from_dir`](crate::LlamaModel::from_dir) at that precision.

use std::path::Path;

use arca_bundle::{DType, Manifest, ModelKind, TENSOR_ALIGN, TensorEntry, encode};

use crate::llama::error::LlamaError;
use crate::llama::forward::{
    CONFIG_ENTRY, FORMAT, FORMAT_KEY, LlamaModel, PRECISION_KEY, TOKENIZER_ENTRY,
};
use crate::llama::weights::{Precision, f32_bytes};

/// The payload under construction: entries appended 64-byte aligned.
#[derive(Default)]
struct Payload {
    bytes: Vec<u8>,
    tensors: Vec<TensorEntry>,
}

impl Payload {
    fn push(&mut self, name: &str, dtype: DType, shape: &[usize], data: &[u8]) {
        let offset = self.bytes.len().div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN;
        self.bytes.resize(offset, 0);
        self.bytes.extend_from_slice(data);
        self.tensors.push(TensorEntry {
            name: name.to_owned(),
            dtype,
            shape: shape.iter().map(|&d| d as u64).collect(),
            offset: offset as u64,
            len: data.len() as u64,
        });
    }
}

/// The bytes of a native Llama bundle made from the transformers directory `dir`
/// (`config.json`, `model.safetensors`, optionally `tokenizer.json`), its matrices in
/// `precision` (see the module docs for the layout).
pub fn pack_llama(dir: &Path, precision: Precision) -> Result<Vec<u8>, LlamaError> {
    let model = LlamaModel::from_dir(dir, precision)?;
    let config_path = dir.join("config.json");
    let config = std::fs::read(&config_path).map_err(|source| LlamaError::Io {
        path: config_path,
        source,
    })?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = match std::fs::read(&tokenizer_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(LlamaError::Io {
                path: tokenizer_path,
                source,
            });
        }
    };
    pack_model(&model, &config, tokenizer.as_deref())
}

/// The bundle of a loaded model, with `config.json`'s and `tokenizer.json`'s bytes.
pub(crate) fn pack_model(
    model: &LlamaModel,
    config: &[u8],
    tokenizer: Option<&[u8]>,
) -> Result<Vec<u8>, LlamaError> {
    let cfg = model.config();
    let w = model.weights();
    let precision = w.precision();
    let mut payload = Payload::default();
    payload.push(CONFIG_ENTRY, DType::U8, &[config.len()], config);
    if let Some(t) = tokenizer {
        payload.push(TOKENIZER_ENTRY, DType::U8, &[t.len()], t);
    }
    for (name, t) in w.matrices() {
        let (data, scales, rows, cols) = w.raw(t);
        payload.push(&name, precision.dtype(), &[rows, cols], data);
        if let Some(s) = scales {
            payload.push(&format!("{name}.scale"), DType::F32, &[rows], s);
        }
    }
    for (name, gains) in w.norms() {
        payload.push(&name, DType::F32, &[gains.len()], &f32_bytes(gains));
    }
    let too_big = |what: &str| LlamaError::Bundle {
        model: model.name().to_owned(),
        reason: format!("its {what} does not fit the manifest's u32"),
    };
    let manifest = Manifest {
        name: model.name().to_owned(),
        kind: ModelKind::Target,
        description: format!(
            "LlamaForCausalLM for arca's native path: {} layers, width {}, {} weights",
            cfg.num_hidden_layers,
            cfg.hidden_size,
            precision.as_str()
        ),
        vocab_size: u32::try_from(cfg.vocab_size).map_err(|_| too_big("vocabulary"))?,
        context_len: u32::try_from(cfg.max_position_embeddings).map_err(|_| too_big("context"))?,
        quantization: match precision {
            Precision::F32 => "f32 weights".into(),
            Precision::F16 => "f16 weights, f32 arithmetic".into(),
            Precision::Int8 => {
                "int8 weights with one f32 scale per output row, f32 arithmetic".into()
            }
        },
        parameters: cfg.parameters() as u64,
        provenance: vec![
            (FORMAT_KEY.into(), FORMAT.into()),
            (PRECISION_KEY.into(), precision.as_str().into()),
            ("architecture".into(), "LlamaForCausalLM".into()),
        ],
        tensors: payload.tensors,
        ..Manifest::default()
    };
    Ok(encode(manifest, &[], &payload.bytes)?)
}
