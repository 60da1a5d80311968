//! [`ModelSource`]: where a decoder's files come from: a model directory (`model.onnx`,
//! `config.json`, `tokenizer.json` side by side, as optimum writes them) or an `hf-decoder`
//! bundle made from one by [`pack`](crate::pack). Everything above this module reads files
//! through it and does not know which of the two it has.
//!
//! In a bundle, the graph is the bundle's ONNX graph with every initializer in the 64-byte
//! aligned payload as external data (`location "."`), and the other files are payload entries
//! of type `u8` named [`CONFIG_SECTION`] and [`TOKENIZER_SECTION`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arca_bundle::tract::{PayloadResolver, anchor_dir};
use arca_bundle::{Bundle, ModelKind, PAYLOAD_LOCATION};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::error::HfError;

/// The graph file of a model directory.
pub const GRAPH_FILE: &str = "model.onnx";
/// The configuration file of a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// The tokenizer file of a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The payload entry of an `hf-decoder` bundle that holds `config.json`'s bytes.
pub const CONFIG_SECTION: &str = "hf/config.json";
/// The payload entry of an `hf-decoder` bundle that holds `tokenizer.json`'s bytes.
pub const TOKENIZER_SECTION: &str = "hf/tokenizer.json";

/// A model directory or an `hf-decoder` bundle.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A directory as optimum writes it.
    Dir(PathBuf),
    /// An opened `hf-decoder` bundle, and the file it came from.
    Bundle(PathBuf, Bundle),
}

impl ModelSource {
    /// A directory, or a bundle file (checked, and refused unless its kind is `hf-decoder`).
    pub fn open(path: &Path) -> Result<ModelSource, HfError> {
        if path.is_dir() {
            return Ok(ModelSource::Dir(path.to_owned()));
        }
        if !path.exists() {
            return Err(HfError::Missing {
                path: path.to_owned(),
                what: "expected a model directory (model.onnx, config.json, tokenizer.json) or an .arcm bundle".into(),
            });
        }
        let bundle = Bundle::open(path).map_err(|e| HfError::Bundle {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let kind = bundle.manifest().kind;
        if kind != ModelKind::HfDecoder {
            return Err(HfError::Bundle {
                path: path.to_owned(),
                reason: format!(
                    "a bundle of kind '{kind}', not '{}' (made by `arca pack DIR`)",
                    ModelKind::HfDecoder
                ),
            });
        }
        Ok(ModelSource::Bundle(path.to_owned(), bundle))
    }

    /// The model's name: the directory's name, or the bundle's manifest name.
    pub fn name(&self) -> String {
        match self {
            ModelSource::Dir(dir) => {
                let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "model".into())
            }
            ModelSource::Bundle(_, bundle) => bundle.manifest().name.clone(),
        }
    }

    /// How error messages name the file `file` (`dir/model.onnx`, or `x.arcm (config.json)`).
    pub fn label(&self, file: &str) -> PathBuf {
        match self {
            ModelSource::Dir(dir) => dir.join(file),
            ModelSource::Bundle(path, _) if file == GRAPH_FILE => path.clone(),
            ModelSource::Bundle(path, _) => PathBuf::from(format!("{} ({file})", path.display())),
        }
    }

    /// The bytes of `config.json` or `tokenizer.json`.
    pub fn read(&self, file: &str) -> Result<Vec<u8>, HfError> {
        match self {
            ModelSource::Dir(dir) => {
                let what = format!("a model directory needs {file} beside {GRAPH_FILE}");
                crate::error::read_required(&dir.join(file), &what)
            }
            ModelSource::Bundle(path, bundle) => {
                let section = format!("hf/{file}");
                bundle
                    .tensor(&section)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| HfError::Bundle {
                        path: path.clone(),
                        reason: format!("has no section '{section}'"),
                    })
            }
        }
    }

    /// The graph, decoded.
    pub fn graph_proto(&self) -> Result<pb::ModelProto, HfError> {
        let label = self.label(GRAPH_FILE);
        let bad = |e: prost::DecodeError| HfError::Graph {
            path: label.clone(),
            reason: format!("is not an ONNX model: {e}"),
        };
        match self {
            ModelSource::Dir(dir) => {
                let bytes = crate::error::read_required(
                    &dir.join(GRAPH_FILE),
                    "export the model with `optimum-cli export onnx --task text-generation-with-past`",
                )?;
                pb::ModelProto::decode(bytes.as_slice()).map_err(bad)
            }
            ModelSource::Bundle(_, bundle) => {
                pb::ModelProto::decode(bundle.onnx_graph_bytes()).map_err(bad)
            }
        }
    }

    /// Parses `proto` into a tract model, external data read from the directory or from the
    /// bundle's payload.
    pub fn inference_model(&self, proto: &pb::ModelProto) -> Result<InferenceModel, HfError> {
        let label = self.label(GRAPH_FILE);
        let tract = |e: TractError| HfError::Tract {
            path: label.clone(),
            stage: "load",
            message: format!("{e:#}"),
        };
        let mut onnx = tract_onnx::onnx();
        let result = match self {
            ModelSource::Dir(dir) => {
                let dir = dir.to_str().ok_or_else(|| HfError::Graph {
                    path: label.clone(),
                    reason: "lies in a directory whose name is not UTF-8".into(),
                })?;
                onnx.parse(proto, Some(dir)).map_err(tract)?
            }
            ModelSource::Bundle(_, bundle) => {
                check_payload_locations(proto).map_err(|reason| HfError::Graph {
                    path: label.clone(),
                    reason,
                })?;
                onnx.provider = Arc::new(PayloadResolver::new(bundle.clone()));
                let anchor = anchor_dir();
                onnx.parse(proto, anchor.to_str()).map_err(tract)?
            }
        };
        if !result.unresolved_inputs.is_empty() {
            return Err(HfError::Graph {
                path: label,
                reason: format!("has unresolved inputs {:?}", result.unresolved_inputs),
            });
        }
        Ok(result.model)
    }
}

/// Refuses a bundled graph whose external data points anywhere but the payload.
fn check_payload_locations(proto: &pb::ModelProto) -> Result<(), String> {
    let Some(graph) = proto.graph.as_ref() else {
        return Ok(());
    };
    for t in &graph.initializer {
        if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
            let location = t.external_data.iter().find(|e| e.key == "location");
            if location.map(|e| e.value.as_str()) != Some(PAYLOAD_LOCATION) {
                return Err(format!(
                    "has tensor '{}' pointing to external file {:?}; bundled weights must be in the payload",
                    t.name,
                    location.map(|e| e.value.as_str())
                ));
            }
        }
    }
    Ok(())
}
