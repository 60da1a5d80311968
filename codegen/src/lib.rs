//! arca-codegen: host-side tools that turn trained models into what arca ships.
//!
//! [`pack`] turns an ONNX model and a JSON manifest spec into a `.arcm` bundle (see
//! [`arca_runtime::bundle`] for the format): every initializer's data, whether inline or in
//! external data files beside the `.onnx`, moves to the 64-byte aligned payload, and the graph
//! refers to it as external data. The output is a pure function of the two input files (dates
//! come from the spec, never from the clock), so packed bundles are golden-tested byte for byte.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let report = arca_codegen::pack(
//!     Path::new("models/text-small.onnx"),
//!     Path::new("models/text-small.json"),
//!     Path::new("models/text-small.arcm"),
//! )?;
//! println!("{report}");
//! # Ok::<(), arca_codegen::PackError>(())
//! ```
//!
//! # Manifest spec (JSON)
//!
//! | key | type | notes |
//! | --- | --- | --- |
//! | `name` | string | required |
//! | `kind` | string | required: `compressor`, `circuit`, `target`, `draft` or `arith` |
//! | `description`, `quantization` | string | default empty |
//! | `vocab_size`, `context_len`, `pad_id`, `logit_frac_bits` | integer (u32) | default 0 |
//! | `inputs`, `outputs` | array of strings | default: the graph's; if given, must exist |
//! | `kv_cache_inputs`, `kv_cache_outputs` | array of strings | default empty |
//! | `parameters` | integer | default: elements of all initializers |
//! | `training` | object | provenance, stored as `training.<key>` strings |
//! | `metrics` | object | numbers stored as metrics; anything else as provenance |
//! | anything else | any | provenance, stored as `<key>` strings |
//!
//! Nested objects are flattened with dots; keys are sorted.

pub mod emit;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use arca_runtime::bundle::tract::ExternalFiles;
use arca_runtime::bundle::{
    self, Bundle, BundleError, DType, Manifest, ModelKind, PAYLOAD_LOCATION, TENSOR_ALIGN,
    TensorEntry,
};
use prost::Message;
use serde_json::Value;
use tract_onnx::pb;

/// Everything that can go wrong packing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The ONNX model is unreadable or unsupported.
    #[error("ONNX model {path}: {reason}")]
    Onnx {
        /// The `.onnx` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The manifest spec is invalid.
    #[error("manifest spec {path}: {reason}")]
    Spec {
        /// The `.json` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bundle could not be built (or did not read back).
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// What [`pack`] wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackReport {
    /// The bundle file.
    pub out: PathBuf,
    /// Manifest name.
    pub name: String,
    /// Model id (see [`Bundle::id`]).
    pub id: u128,
    /// Bundle size in bytes.
    pub bytes: u64,
    /// Number of payload tensors.
    pub tensors: usize,
    /// Payload size in bytes.
    pub payload_bytes: u64,
    /// Parameter count recorded in the manifest.
    pub parameters: u64,
}

impl fmt::Display for PackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = format!("{:032x}", self.id);
        write!(
            f,
            "packed {} (id {}) into {}: {} bytes, {} tensors, {} payload bytes, {} parameters",
            self.name,
            &id[..12],
            self.out.display(),
            self.bytes,
            self.tensors,
            self.payload_bytes,
            self.parameters
        )
    }
}

/// Packs `onnx` and the manifest spec `spec` into the bundle `out`.
///
/// The bundle is written to a temporary file in `out`'s folder and renamed over `out` only once
/// it is complete and reads back, so `out` is never half-written and a bundle that is open
/// (memory-mapped) elsewhere is replaced, not modified.
pub fn pack(onnx: &Path, spec: &Path, out: &Path) -> Result<PackReport, PackError> {
    let bytes = pack_to_bytes(onnx, spec)?;
    let bundle = Bundle::from_bytes(bytes.clone())?;
    write_atomically(out, &bytes)?;
    let m = bundle.manifest();
    Ok(PackReport {
        out: out.to_owned(),
        name: m.name.clone(),
        id: bundle.id(),
        bytes: bytes.len() as u64,
        tensors: m.tensors.len(),
        payload_bytes: bundle.payload().len() as u64,
        parameters: m.parameters,
    })
}

/// Builds the bundle bytes that [`pack`] writes.
pub fn pack_to_bytes(onnx: &Path, spec: &Path) -> Result<Vec<u8>, PackError> {
    let onnx_err = |reason: String| PackError::Onnx {
        path: onnx.to_owned(),
        reason,
    };
    let raw = std::fs::read(onnx).map_err(|source| PackError::Io {
        action: "cannot read",
        path: onnx.to_owned(),
        source,
    })?;
    let mut proto =
        pb::ModelProto::decode(raw.as_slice()).map_err(|e| onnx_err(format!("not ONNX: {e}")))?;
    drop(raw);
    let spec_text = std::fs::read_to_string(spec).map_err(|source| PackError::Io {
        action: "cannot read",
        path: spec.to_owned(),
        source,
    })?;
    let spec_value: Value = serde_json::from_str(&spec_text).map_err(|e| PackError::Spec {
        path: spec.to_owned(),
        reason: format!("not JSON: {e}"),
    })?;
    let mut manifest = parse_spec(&spec_value).map_err(|reason| PackError::Spec {
        path: spec.to_owned(),
        reason,
    })?;

    let dir = onnx
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut external = ExternalFiles::new(dir);
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| onnx_err("the model has no graph".into()))?;

    let mut payload = Vec::new();
    let mut counted_parameters = 0u64;
    for t in &mut graph.initializer {
        if t.data_type == pb::tensor_proto::DataType::String as i32 {
            continue; // Strings stay inline: they have no raw form.
        }
        let dtype = DType::from_onnx_code(t.data_type).ok_or_else(|| {
            onnx_err(format!(
                "initializer `{}` has unsupported data type {}",
                t.name, t.data_type
            ))
        })?;
        let data = tensor_bytes(t, dtype, &mut external).map_err(&onnx_err)?;
        let shape = t
            .dims
            .iter()
            .map(|&d| u64::try_from(d))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| onnx_err(format!("initializer `{}` has a negative dimension", t.name)))?;
        let offset = payload.len().next_multiple_of(TENSOR_ALIGN);
        payload.resize(offset, 0);
        payload.extend_from_slice(&data);
        let entry = TensorEntry {
            name: t.name.clone(),
            dtype,
            shape,
            offset: offset as u64,
            len: data.len() as u64,
        };
        counted_parameters = counted_parameters.saturating_add(entry.elements().unwrap_or(0));
        manifest.tensors.push(entry);
        clear_data(t);
        t.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        t.external_data = vec![
            entry_proto("location", PAYLOAD_LOCATION),
            entry_proto("offset", &offset.to_string()),
            entry_proto("length", &data.len().to_string()),
        ];
    }
    for node in &mut graph.node {
        inline_attributes(node, &mut external).map_err(&onnx_err)?;
    }

    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let graph_inputs: Vec<String> = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !initializers.contains(&n.as_str()))
        .collect();
    let graph_outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let spec_err = |reason: String| PackError::Spec {
        path: spec.to_owned(),
        reason,
    };
    if manifest.inputs.is_empty() {
        manifest.inputs = graph_inputs.clone();
    }
    if manifest.outputs.is_empty() {
        manifest.outputs = graph_outputs.clone();
    }
    for (names, have, what) in [
        (&manifest.inputs, &graph_inputs, "input"),
        (&manifest.kv_cache_inputs, &graph_inputs, "KV-cache input"),
        (&manifest.outputs, &graph_outputs, "output"),
        (
            &manifest.kv_cache_outputs,
            &graph_outputs,
            "KV-cache output",
        ),
    ] {
        if let Some(missing) = names.iter().find(|n| !have.contains(n)) {
            return Err(spec_err(format!(
                "{what} `{missing}` is not in the graph (graph {what}s: {})",
                have.join(", ")
            )));
        }
    }
    if manifest.kind == ModelKind::Compressor {
        check_context_len(graph, &manifest).map_err(spec_err)?;
    }
    if manifest.parameters == 0 {
        manifest.parameters = counted_parameters;
    }
    if let Some(file) = onnx.file_name() {
        manifest
            .provenance
            .push(("onnx.file".into(), file.to_string_lossy().into_owned()));
    }
    if !proto.producer_name.is_empty() {
        let producer = format!("{} {}", proto.producer_name, proto.producer_version);
        manifest
            .provenance
            .push(("onnx.producer".into(), producer.trim_end().to_owned()));
    }
    let graph_bytes = proto.encode_to_vec();
    Ok(bundle::encode(manifest, &graph_bytes, &payload)?)
}

fn entry_proto(key: &str, value: &str) -> pb::StringStringEntryProto {
    pb::StringStringEntryProto {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn clear_data(t: &mut pb::TensorProto) {
    t.raw_data.clear();
    t.float_data.clear();
    t.int32_data.clear();
    t.int64_data.clear();
    t.double_data.clear();
    t.uint64_data.clear();
    t.external_data.clear();
    t.data_location = None;
}

/// The declared context length of a compressor's first input must match the spec.
fn check_context_len(graph: &pb::GraphProto, manifest: &Manifest) -> Result<(), String> {
    let Some(input) = manifest.inputs.first() else {
        return Ok(());
    };
    let Some(info) = graph.input.iter().find(|i| &i.name == input) else {
        return Ok(());
    };
    let dims = info
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .and_then(|v| {
            let pb::type_proto::Value::TensorType(t) = v;
            t.shape.as_ref()
        })
        .map(|s| s.dim.as_slice())
        .unwrap_or_default();
    if let Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) =
        dims.get(1).and_then(|d| d.value.as_ref())
        && *n != i64::from(manifest.context_len)
    {
        return Err(format!(
            "context_len is {}, but graph input `{input}` has {n} positions",
            manifest.context_len
        ));
    }
    Ok(())
}

/// The little-endian raw bytes of a tensor, wherever the ONNX file keeps them.
fn tensor_bytes(
    t: &pb::TensorProto,
    dtype: DType,
    external: &mut ExternalFiles<'_>,
) -> Result<Vec<u8>, String> {
    let elements = t
        .dims
        .iter()
        .try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
        .ok_or_else(|| format!("tensor `{}` has a bad shape {:?}", t.name, t.dims))?;
    let expected = elements
        .checked_mul(dtype.size())
        .ok_or_else(|| format!("tensor `{}` is too large", t.name))?;
    let is_external = t.data_location == Some(pb::tensor_proto::DataLocation::External as i32);
    let bytes = if !t.raw_data.is_empty() {
        t.raw_data.clone()
    } else if is_external {
        external.read(t).map_err(|e| format!("the graph {e}"))?
    } else {
        typed_bytes(t, dtype)
    };
    if bytes.len() != expected {
        return Err(format!(
            "tensor `{}` has {} bytes of data, its shape {:?} of {} needs {expected}",
            t.name,
            bytes.len(),
            t.dims,
            dtype.as_str()
        ));
    }
    Ok(bytes)
}

/// Converts the type-specific repeated fields of a `TensorProto` to raw little-endian bytes.
fn typed_bytes(t: &pb::TensorProto, dtype: DType) -> Vec<u8> {
    // Narrow types live in `int32_data` / `uint64_data`; the casts keep their low bits by design.
    match dtype {
        DType::F32 => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F64 => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::I64 => t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::I32 => t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::I8 | DType::U8 | DType::Bool => t.int32_data.iter().map(|&v| v as u8).collect(),
        DType::I16 | DType::U16 | DType::F16 => t
            .int32_data
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        DType::U32 => t
            .uint64_data
            .iter()
            .flat_map(|&v| (v as u32).to_le_bytes())
            .collect(),
        DType::U64 => t.uint64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Inlines external data found in node attributes (and subgraphs) as `raw_data`, so the
/// bundle never refers to a file.
fn inline_attributes(
    node: &mut pb::NodeProto,
    external: &mut ExternalFiles<'_>,
) -> Result<(), String> {
    for a in &mut node.attribute {
        for t in a.t.iter_mut().chain(a.tensors.iter_mut()) {
            inline_tensor(t, external)?;
        }
        for g in a.g.iter_mut().chain(a.graphs.iter_mut()) {
            for t in &mut g.initializer {
                inline_tensor(t, external)?;
            }
            for n in &mut g.node {
                inline_attributes(n, external)?;
            }
        }
    }
    Ok(())
}

fn inline_tensor(t: &mut pb::TensorProto, external: &mut ExternalFiles<'_>) -> Result<(), String> {
    if t.data_location != Some(pb::tensor_proto::DataLocation::External as i32) {
        return Ok(());
    }
    let dtype = DType::from_onnx_code(t.data_type).ok_or_else(|| {
        format!(
            "tensor `{}` has unsupported data type {}",
            t.name, t.data_type
        )
    })?;
    let data = tensor_bytes(t, dtype, external)?;
    clear_data(t);
    t.raw_data = data;
    Ok(())
}

/// Flattens a JSON value into `(dotted.key, value)` pairs, keys sorted.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if let Some(child) = map.get(k) {
                    flatten(&key, child, out);
                }
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Builds the manifest (without tensors and hashes) from the spec.
fn parse_spec(spec: &Value) -> Result<Manifest, String> {
    let obj = spec.as_object().ok_or("the spec must be a JSON object")?;
    let string = |key: &str, required: bool| -> Result<String, String> {
        match obj.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("`{key}` must be a string, got {other}")),
            None if required => Err(format!("`{key}` is missing")),
            None => Ok(String::new()),
        }
    };
    let number = |key: &str| -> Result<u64, String> {
        match obj.get(key) {
            None => Ok(0),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {v}")),
        }
    };
    let small = |key: &str| -> Result<u32, String> {
        u32::try_from(number(key)?).map_err(|_| format!("`{key}` does not fit in 32 bits"))
    };
    let names = |key: &str| -> Result<Vec<String>, String> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("`{key}` must be an array of strings")),
            Some(other) => Err(format!("`{key}` must be an array of strings, got {other}")),
        }
    };
    let kind_word = string("kind", true)?;
    let kind = ModelKind::from_word(&kind_word).ok_or_else(|| {
        let words: Vec<&str> = ModelKind::ALL.iter().map(|k| k.as_str()).collect();
        format!(
            "unknown kind `{kind_word}` (expected one of: {})",
            words.join(", ")
        )
    })?;
    let mut manifest = Manifest {
        name: string("name", true)?,
        kind,
        description: string("description", false)?,
        vocab_size: small("vocab_size")?,
        context_len: small("context_len")?,
        pad_id: small("pad_id")?,
        logit_frac_bits: small("logit_frac_bits")?,
        quantization: string("quantization", false)?,
        inputs: names("inputs")?,
        outputs: names("outputs")?,
        kv_cache_inputs: names("kv_cache_inputs")?,
        kv_cache_outputs: names("kv_cache_outputs")?,
        parameters: number("parameters")?,
        ..Manifest::default()
    };
    if manifest.name.is_empty() {
        return Err("`name` is empty".into());
    }
    const KNOWN: [&str; 14] = [
        "name",
        "kind",
        "description",
        "vocab_size",
        "context_len",
        "pad_id",
        "logit_frac_bits",
        "quantization",
        "inputs",
        "outputs",
        "kv_cache_inputs",
        "kv_cache_outputs",
        "parameters",
        "metrics",
    ];
    let mut rest = serde_json::Map::new();
    for (k, v) in obj {
        if !KNOWN.contains(&k.as_str()) {
            rest.insert(k.clone(), v.clone());
        }
    }
    let mut provenance = Vec::new();
    flatten("", &Value::Object(rest), &mut provenance);
    manifest.provenance = provenance
        .iter()
        .map(|(k, v)| (k.clone(), as_text(v)))
        .collect();
    if let Some(metrics) = obj.get("metrics") {
        let mut flat = Vec::new();
        flatten("", metrics, &mut flat);
        for (k, v) in flat {
            match v.as_f64() {
                Some(x) => manifest.metrics.push((k, x)),
                None => manifest
                    .provenance
                    .push((format!("metrics.{k}"), as_text(&v))),
            }
        }
    }
    Ok(manifest)
}

/// Writes `bytes` to `out` through a temporary file beside it, renamed over `out` once
/// complete: `out` is never half-written.
pub fn write_file_atomically(out: &Path, bytes: &[u8]) -> Result<(), PackError> {
    write_atomically(out, bytes)
}

/// Writes `bytes` to a temporary file beside `out`, then renames it over `out`.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), PackError> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| PackError::Io {
            action,
            path,
            source,
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".arcm-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io("cannot create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .map_err(io("cannot write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io("cannot write", tmp.path()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(io("cannot set permissions of", tmp.path()))?;
    }
    tmp.persist(out).map_err(|e| PackError::Io {
        action: "cannot rename the temporary file to",
        path: out.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_flattening() -> Result<(), String> {
        let spec: Value = serde_json::from_str(
            r#"{"name":"m","kind":"draft","training":{"date":"2026-11-26","steps":100,
                "data":{"set":"enwik8","bytes":1000}},"metrics":{"bpb":2.5,"note":"x"},"seed":7}"#,
        )
        .map_err(|e| e.to_string())?;
        let m = parse_spec(&spec)?;
        assert_eq!(m.kind, ModelKind::Draft);
        let keys: Vec<&str> = m.provenance.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "seed",
                "training.data.bytes",
                "training.data.set",
                "training.date",
                "training.steps",
                "metrics.note"
            ]
        );
        assert_eq!(m.metrics, vec![("bpb".to_string(), 2.5)]);
        Ok(())
    }

    #[test]
    fn spec_errors_say_what_is_wrong() {
        let err = |text: &str| {
            serde_json::from_str::<Value>(text)
                .map_err(|e| e.to_string())
                .and_then(|v| parse_spec(&v))
                .err()
                .unwrap_or_default()
        };
        assert_eq!(err(r#"{"kind":"draft"}"#), "`name` is missing");
        assert!(err(r#"{"name":"m","kind":"big"}"#).contains("unknown kind `big`"));
        assert!(err(r#"{"name":"m","kind":"draft","context_len":-1}"#).contains("context_len"));
        assert!(err(r#"{"name":"m","kind":"draft","inputs":[1]}"#).contains("inputs"));
    }
}
