//! [`pack`]: a model directory as one `hf-decoder` bundle (`.arcm`).
//!
//! The bundle holds the graph with every initializer moved to the 64-byte aligned payload
//! (ONNX external data, location `"."`, as `arca-codegen` lays out the project's own models),
//! and `config.json`, `tokenizer.json` and, when present, `tokenizer_config.json` as `u8`
//! payload entries named `hf/<file>`. The directory is checked first as [`HfModel::open`]
//! would check it (config, graph inputs and outputs, tokenizer), so a bundle that packs is one
//! that opens. The output is a pure function of the directory's files.
//!
//! [`HfModel::open`]: crate::HfModel::open

use std::path::Path;

use arca_bundle::tract::ExternalFiles;
use arca_bundle::{DType, Manifest, ModelKind, PAYLOAD_LOCATION, TENSOR_ALIGN, TensorEntry};
use prost::Message;
use tract_onnx::pb;

use crate::config::HfConfig;
use crate::error::HfError;
use crate::graph::{GraphSpec, InputRole, OutputRole};
use crate::source::{CONFIG_FILE, GRAPH_FILE, ModelSource, TOKENIZER_FILE};
use crate::tokenizer::HfTokenizer;

/// Optional files of a model directory that a bundle keeps when they are there.
const OPTIONAL_FILES: [&str; 1] = ["tokenizer_config.json"];

/// The bytes of an `hf-decoder` bundle made from the model directory `dir`.
pub fn pack(dir: &Path) -> Result<Vec<u8>, HfError> {
    let source = ModelSource::Dir(dir.to_owned());
    if !dir.is_dir() {
        return Err(HfError::Missing {
            path: dir.to_owned(),
            what: "expected a model directory (model.onnx, config.json, tokenizer.json)".into(),
        });
    }
    let config_bytes = source.read(CONFIG_FILE)?;
    let config = HfConfig::from_json(&config_bytes, &source.label(CONFIG_FILE))?;
    let tokenizer_bytes = source.read(TOKENIZER_FILE)?;
    let tokenizer_config = OPTIONAL_FILES
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok().map(|b| (*f, b)))
        .collect::<Vec<_>>();
    HfTokenizer::from_bytes(&tokenizer_bytes, None, &source.label(TOKENIZER_FILE))?;
    let mut proto = source.graph_proto()?;
    let label = source.label(GRAPH_FILE);
    let spec = GraphSpec::read(&proto, &config, &label)?;
    let graph_err = |reason: String| HfError::Graph {
        path: label.clone(),
        reason,
    };
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| graph_err("holds no graph".into()))?;

    let mut payload = Vec::new();
    let mut tensors = Vec::new();
    let mut external = ExternalFiles::new(dir);
    for t in &mut graph.initializer {
        let is_external = t.data_location == Some(pb::tensor_proto::DataLocation::External as i32);
        if t.raw_data.is_empty() && !is_external {
            continue; // Typed fields (small constants) stay in the graph.
        }
        let dtype = DType::from_onnx_code(t.data_type).ok_or_else(|| {
            graph_err(format!(
                "has initializer '{}' of ONNX data type {}, which bundles do not hold",
                t.name, t.data_type
            ))
        })?;
        let shape = t
            .dims
            .iter()
            .map(|&d| u64::try_from(d))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| {
                graph_err(format!(
                    "has initializer '{}' with a negative dimension",
                    t.name
                ))
            })?;
        let data = if is_external {
            external.read(t).map_err(&graph_err)?
        } else {
            std::mem::take(&mut t.raw_data)
        };
        let entry = push_entry(&mut payload, &t.name, dtype, shape, &data);
        let expected = entry
            .elements()
            .and_then(|n| n.checked_mul(dtype.size() as u64));
        if expected != Some(entry.len) {
            return Err(graph_err(format!(
                "has initializer '{}' with {} bytes for shape {:?} of {}",
                t.name,
                entry.len,
                entry.shape,
                dtype.as_str()
            )));
        }
        t.raw_data.clear();
        t.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        t.external_data = vec![
            entry_proto("location", PAYLOAD_LOCATION),
            entry_proto("offset", &entry.offset.to_string()),
            entry_proto("length", &entry.len.to_string()),
        ];
        tensors.push(entry);
    }
    let mut sections = vec![
        (CONFIG_FILE, config_bytes),
        (TOKENIZER_FILE, tokenizer_bytes),
    ];
    sections.extend(tokenizer_config);
    for (file, bytes) in sections {
        let shape = vec![bytes.len() as u64];
        tensors.push(push_entry(
            &mut payload,
            &format!("hf/{file}"),
            DType::U8,
            shape,
            &bytes,
        ));
    }

    let names = |role: fn(&InputRole) -> bool| -> Vec<String> {
        spec.inputs()
            .iter()
            .filter(|(_, r)| role(r))
            .map(|(n, _)| n.clone())
            .collect()
    };
    let out_names = |kv: bool| -> Vec<String> {
        spec.outputs()
            .iter()
            .filter(|(_, r)| matches!(r, OutputRole::Present { .. }) == kv)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let weight_types: Vec<String> = spec
        .weight_types()
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    let mut provenance = vec![
        ("hf.model_type".to_owned(), config.model_type().to_owned()),
        ("onnx.file".to_owned(), GRAPH_FILE.to_owned()),
    ];
    if !proto.producer_name.is_empty() {
        let producer = format!("{} {}", proto.producer_name, proto.producer_version);
        provenance.push(("onnx.producer".into(), producer.trim_end().to_owned()));
    }
    let manifest = Manifest {
        name: source.name(),
        kind: ModelKind::HfDecoder,
        description: format!(
            "{} decoder, {} layers, exported to ONNX with a KV cache",
            config.model_type(),
            config.layers()
        ),
        vocab_size: u32::try_from(config.vocab_size()).unwrap_or(u32::MAX),
        context_len: u32::try_from(config.context_len()).unwrap_or(u32::MAX),
        quantization: format!("none (weights: {})", weight_types.join(", ")),
        inputs: names(|r| !matches!(r, InputRole::Past { .. })),
        outputs: out_names(false),
        kv_cache_inputs: names(|r| matches!(r, InputRole::Past { .. })),
        kv_cache_outputs: out_names(true),
        parameters: spec.parameters(),
        provenance,
        tensors,
        ..Manifest::default()
    };
    let graph_bytes = proto.encode_to_vec();
    arca_bundle::encode(manifest, &graph_bytes, &payload).map_err(|e| HfError::Bundle {
        path: dir.to_owned(),
        reason: e.to_string(),
    })
}

/// Appends `data` to the payload at the next aligned offset.
fn push_entry(
    payload: &mut Vec<u8>,
    name: &str,
    dtype: DType,
    shape: Vec<u64>,
    data: &[u8],
) -> TensorEntry {
    let offset = payload.len().next_multiple_of(TENSOR_ALIGN);
    payload.resize(offset, 0);
    payload.extend_from_slice(data);
    TensorEntry {
        name: name.to_owned(),
        dtype,
        shape,
        offset: offset as u64,
        len: data.len() as u64,
    }
}

fn entry_proto(key: &str, value: &str) -> pb::StringStringEntryProto {
    pb::StringStringEntryProto {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}
