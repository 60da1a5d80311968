//! [`GraphSpec`]: what a `model.onnx` is, read from its inputs and outputs by name and shape.
//!
//! A decoder exported by `optimum-cli export onnx --task text-generation-with-past` (or by
//! `torch.onnx.export` with the same names) takes `input_ids` `[batch, seq]`,
//! `attention_mask` `[batch, past + seq]`, optionally `position_ids` `[batch, seq]`, and
//! `past_key_values.{i}.key` / `.value` `[batch, kv_heads, past, head_dim]` for every layer
//! `i`; it gives `logits` `[batch, seq, vocab]` and `present.{i}.key` / `.value`
//! `[batch, kv_heads, past + seq, head_dim]`. [`GraphSpec::read`] checks exactly that and says
//! which name is missing or unexpected, so a graph without a KV cache, an encoder or a
//! classifier is refused before tract is asked to load it.

use std::collections::BTreeMap;
use std::path::Path;

use tract_onnx::pb;

use crate::config::HfConfig;
use crate::error::HfError;

/// What one graph input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRole {
    /// `input_ids`: the new tokens.
    InputIds,
    /// `attention_mask`: ones over past and new positions.
    AttentionMask,
    /// `position_ids`: the positions of the new tokens.
    PositionIds,
    /// `past_key_values.{layer}.key` (`value: false`) or `.value`.
    Past {
        /// Layer index.
        layer: usize,
        /// Whether this is the value (not the key) cache.
        value: bool,
    },
}

/// What one graph output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputRole {
    /// `logits`: `[batch, seq, vocab]`.
    Logits,
    /// `present.{layer}.key` (`value: false`) or `.value`.
    Present {
        /// Layer index.
        layer: usize,
        /// Whether this is the value (not the key) cache.
        value: bool,
    },
}

/// Element type of the integer inputs (`input_ids`, `attention_mask`, `position_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    /// ONNX `int64` (what optimum and `torch.onnx.export` write).
    I64,
    /// ONNX `int32`.
    I32,
}

const FLOAT: i32 = pb::tensor_proto::DataType::Float as i32;
const INT64: i32 = pb::tensor_proto::DataType::Int64 as i32;
const INT32: i32 = pb::tensor_proto::DataType::Int32 as i32;

/// The inputs and outputs of a decoder graph, in the graph's order, with their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSpec {
    inputs: Vec<(String, InputRole)>,
    outputs: Vec<(String, OutputRole)>,
    layers: usize,
    id_type: IdType,
    parameters: u64,
    weight_types: BTreeMap<String, u64>,
}

/// One value's element type and dimensions (`None` for a symbolic dimension).
struct ValueShape {
    elem_type: i32,
    dims: Vec<Option<i64>>,
}

fn value_shape(v: &pb::ValueInfoProto) -> Option<ValueShape> {
    // Tensors are the only kind of value tract's ONNX schema knows.
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    let dims = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ValueShape {
        elem_type: t.elem_type,
        dims,
    })
}

/// `prefix{layer}.key` / `prefix{layer}.value` -> (layer, is value).
fn kv_name(name: &str, prefix: &str) -> Option<(usize, bool)> {
    let rest = name.strip_prefix(prefix)?;
    let (layer, which) = rest.split_once('.')?;
    let layer = layer.parse().ok()?;
    match which {
        "key" => Some((layer, false)),
        "value" => Some((layer, true)),
        _ => None,
    }
}

fn type_name(code: i32) -> String {
    pb::tensor_proto::DataType::try_from(code)
        .map(|t| t.as_str_name().to_lowercase())
        .unwrap_or_else(|_| format!("type {code}"))
}

impl GraphSpec {
    /// Recognises the decoder inputs and outputs of `proto` and checks them against `config`.
    /// `path` names the file in error messages.
    pub fn read(
        proto: &pb::ModelProto,
        config: &HfConfig,
        path: &Path,
    ) -> Result<GraphSpec, HfError> {
        let err = |reason: String| HfError::Graph {
            path: path.to_owned(),
            reason,
        };
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| err("holds no graph".into()))?;
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();

        let mut inputs = Vec::new();
        let mut id_type = None;
        let mut past = BTreeMap::new();
        let mut unknown = Vec::new();
        for v in graph
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name.as_str()))
        {
            let name = v.name.as_str();
            let role = match name {
                "input_ids" => InputRole::InputIds,
                "attention_mask" => InputRole::AttentionMask,
                "position_ids" => InputRole::PositionIds,
                _ => match kv_name(name, "past_key_values.") {
                    Some((layer, value)) => InputRole::Past { layer, value },
                    None => {
                        unknown.push(name);
                        continue;
                    }
                },
            };
            let shape = value_shape(v)
                .ok_or_else(|| err(format!("gives input '{name}' no tensor type")))?;
            match role {
                InputRole::Past { layer, value } => {
                    if shape.elem_type != FLOAT {
                        return Err(err(format!(
                            "has input '{name}' of {}; only float32 KV caches run here",
                            type_name(shape.elem_type)
                        )));
                    }
                    check_kv_dims(name, &shape.dims, config).map_err(&err)?;
                    past.insert((layer, value), ());
                }
                _ => {
                    let t = match shape.elem_type {
                        INT64 => IdType::I64,
                        INT32 => IdType::I32,
                        other => {
                            return Err(err(format!(
                                "has input '{name}' of {}, expected int64 or int32",
                                type_name(other)
                            )));
                        }
                    };
                    if shape.dims.len() != 2 {
                        return Err(err(format!(
                            "has input '{name}' of rank {}, expected [batch, length]",
                            shape.dims.len()
                        )));
                    }
                    if id_type.is_some_and(|seen| seen != t) {
                        return Err(err(format!(
                            "mixes int32 and int64 integer inputs ('{name}')"
                        )));
                    }
                    id_type = Some(t);
                }
            }
            inputs.push((name.to_owned(), role));
        }
        for required in [InputRole::InputIds, InputRole::AttentionMask] {
            if !inputs.iter().any(|(_, r)| *r == required) {
                let name = if required == InputRole::InputIds {
                    "input_ids"
                } else {
                    "attention_mask"
                };
                let all: Vec<&str> = graph
                    .input
                    .iter()
                    .map(|v| v.name.as_str())
                    .filter(|n| !initializers.contains(n))
                    .collect();
                return Err(err(format!(
                    "has no input '{name}' (its inputs: {})",
                    all.join(", ")
                )));
            }
        }
        if let Some(name) = unknown.first() {
            return Err(err(format!(
                "has an input '{name}' that is not one of a decoder's (input_ids, attention_mask, position_ids, past_key_values.{{i}}.key/value)"
            )));
        }
        let layers = past.keys().map(|(l, _)| l + 1).max().unwrap_or(0);
        if layers == 0 {
            return Err(err(
                "has no input 'past_key_values.0.key': a decoder without a KV cache (export it with --task text-generation-with-past)".into(),
            ));
        }
        for layer in 0..layers {
            for (value, which) in [(false, "key"), (true, "value")] {
                if !past.contains_key(&(layer, value)) {
                    return Err(err(format!(
                        "has no input 'past_key_values.{layer}.{which}'"
                    )));
                }
            }
        }
        if layers != config.layers() {
            return Err(err(format!(
                "has the KV cache of {layers} layers, config.json says {}",
                config.layers()
            )));
        }

        let mut outputs = Vec::new();
        for v in &graph.output {
            let name = v.name.as_str();
            let role = if name == "logits" {
                OutputRole::Logits
            } else if let Some((layer, value)) = kv_name(name, "present.") {
                if layer >= layers {
                    return Err(err(format!(
                        "has an output '{name}' for a layer without past_key_values input"
                    )));
                }
                OutputRole::Present { layer, value }
            } else {
                // Extra outputs (hidden states, attentions) are computed and dropped.
                continue;
            };
            if let Some(shape) = value_shape(v) {
                if shape.elem_type != FLOAT {
                    return Err(err(format!(
                        "has output '{name}' of {}, expected float32",
                        type_name(shape.elem_type)
                    )));
                }
                if role == OutputRole::Logits {
                    check_logits_dims(&shape.dims, config).map_err(&err)?;
                }
            }
            outputs.push((name.to_owned(), role));
        }
        if !outputs.iter().any(|(_, r)| *r == OutputRole::Logits) {
            return Err(err("has no output 'logits'".into()));
        }
        for layer in 0..layers {
            for (value, which) in [(false, "key"), (true, "value")] {
                if !outputs
                    .iter()
                    .any(|(_, r)| *r == OutputRole::Present { layer, value })
                {
                    return Err(err(format!("has no output 'present.{layer}.{which}'")));
                }
            }
        }

        let mut parameters = 0u64;
        let mut weight_types = BTreeMap::new();
        for t in &graph.initializer {
            let elements = t
                .dims
                .iter()
                .try_fold(1u64, |acc, &d| {
                    u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
                })
                .unwrap_or(0);
            parameters = parameters.saturating_add(elements);
            *weight_types.entry(type_name(t.data_type)).or_insert(0u64) += elements;
        }
        Ok(GraphSpec {
            inputs,
            outputs,
            layers,
            id_type: id_type.unwrap_or(IdType::I64),
            parameters,
            weight_types,
        })
    }

    /// The graph's inputs (initializers excluded), in order, with their roles.
    pub fn inputs(&self) -> &[(String, InputRole)] {
        &self.inputs
    }

    /// The recognised outputs, in graph order, with their roles (others are ignored).
    pub fn outputs(&self) -> &[(String, OutputRole)] {
        &self.outputs
    }

    /// Number of layers with a KV cache.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Whether the graph takes `position_ids`.
    pub fn has_position_ids(&self) -> bool {
        self.inputs
            .iter()
            .any(|(_, r)| *r == InputRole::PositionIds)
    }

    /// Element type of the integer inputs.
    pub fn id_type(&self) -> IdType {
        self.id_type
    }

    /// Number of weights: the elements of every initializer.
    pub fn parameters(&self) -> u64 {
        self.parameters
    }

    /// Elements of the initializers by ONNX type name (`float`, `float16`, `int8`...).
    pub fn weight_types(&self) -> &BTreeMap<String, u64> {
        &self.weight_types
    }
}

/// `[batch, kv_heads, past, head_dim]`, with the static dimensions equal to the config's.
fn check_kv_dims(name: &str, dims: &[Option<i64>], config: &HfConfig) -> Result<(), String> {
    if dims.len() != 4 {
        return Err(format!(
            "has input '{name}' of rank {}, expected [batch, kv_heads, past, head_dim]",
            dims.len()
        ));
    }
    for (axis, what, expected) in [
        (1, "key/value heads", config.kv_heads()),
        (3, "head dim", config.head_dim()),
    ] {
        if let Some(d) = dims[axis]
            && usize::try_from(d).ok() != Some(expected)
        {
            return Err(format!(
                "has input '{name}' with {d} {what} (axis {axis}), config.json says {expected}"
            ));
        }
    }
    Ok(())
}

/// `[batch, seq, vocab]`, with a static vocabulary equal to the config's.
fn check_logits_dims(dims: &[Option<i64>], config: &HfConfig) -> Result<(), String> {
    if dims.len() != 3 {
        return Err(format!(
            "has output 'logits' of rank {}, expected [batch, seq, vocab]",
            dims.len()
        ));
    }
    if let Some(v) = dims[2]
        && usize::try_from(v).ok() != Some(config.vocab_size())
    {
        return Err(format!(
            "has 'logits' over {v} symbols, config.json says vocab_size {}",
            config.vocab_size()
        ));
    }
    Ok(())
}
