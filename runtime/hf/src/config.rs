//! [`HfConfig`]: the numbers of `config.json` that running a decoder needs.
//!
//! Two naming families are read: the Llama one (`num_hidden_layers`, `num_attention_heads`,
//! `num_key_value_heads`, `hidden_size`, `head_dim`, `max_position_embeddings`), which Mistral,
//! Qwen2, Phi, GPT-NeoX and most recent decoders share, and GPT-2's (`n_layer`, `n_head`,
//! `n_embd`, `n_positions`). A missing key is an error that names the key and its aliases.
//!
//! ```
//! let json = br#"{"model_type": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 64,
//!                 "n_positions": 256, "vocab_size": 1024, "eos_token_id": 0}"#;
//! let config = arca_hf::HfConfig::from_json(json, "config.json".as_ref())?;
//! assert_eq!((config.layers(), config.kv_heads(), config.head_dim()), (2, 4, 16));
//! assert_eq!(config.eos_token_ids(), &[0]);
//! # Ok::<(), arca_hf::HfError>(())
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::HfError;
use crate::source::{CONFIG_FILE, ModelSource};

/// What `config.json` says about a decoder's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfConfig {
    model_type: String,
    architecture: Option<String>,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    hidden_size: usize,
    head_dim: usize,
    context_len: usize,
    vocab_size: usize,
    eos_token_ids: Vec<u32>,
    bos_token_id: Option<u32>,
}

impl HfConfig {
    /// Reads and parses `path` (a `config.json`).
    pub fn from_file(path: &Path) -> Result<HfConfig, HfError> {
        let bytes = crate::error::read_required(
            path,
            "a model directory needs the config.json that transformers writes",
        )?;
        HfConfig::from_json(&bytes, path)
    }

    /// The `config.json` of a directory or a bundle.
    pub fn of_source(source: &ModelSource) -> Result<HfConfig, HfError> {
        HfConfig::from_json(&source.read(CONFIG_FILE)?, &source.label(CONFIG_FILE))
    }

    /// Parses the bytes of a `config.json`; `path` is only used in error messages.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<HfConfig, HfError> {
        let err = |reason: String| HfError::Config {
            path: path.to_owned(),
            reason,
        };
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
        let map = value
            .as_object()
            .ok_or_else(|| err("not a JSON object".into()))?;
        let reader = Reader {
            map,
            path: path.to_owned(),
        };
        let model_type = map
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let architecture = map
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_owned);
        let layers = reader.required(&["num_hidden_layers", "n_layer", "num_layers"], "layers")?;
        let heads = reader.required(
            &["num_attention_heads", "n_head", "num_heads"],
            "attention heads",
        )?;
        let kv_heads = reader.optional(&["num_key_value_heads"])?.unwrap_or(heads);
        let hidden_size = reader.required(&["hidden_size", "n_embd", "d_model"], "width")?;
        let head_dim = match reader.optional(&["head_dim"])? {
            Some(d) => d,
            None if heads > 0 && hidden_size % heads == 0 => hidden_size / heads,
            None => {
                return Err(err(format!(
                    "no 'head_dim', and hidden size {hidden_size} is not a multiple of {heads} heads"
                )));
            }
        };
        let context_len = reader.required(
            &[
                "max_position_embeddings",
                "n_positions",
                "n_ctx",
                "max_sequence_length",
            ],
            "context length",
        )?;
        let vocab_size = reader.required(&["vocab_size"], "vocabulary size")?;
        for (what, n) in [
            ("layers", layers),
            ("attention heads", heads),
            ("key/value heads", kv_heads),
            ("head dim", head_dim),
            ("context length", context_len),
            ("vocabulary size", vocab_size),
        ] {
            if n == 0 {
                return Err(err(format!("the number of {what} is 0")));
            }
        }
        if heads % kv_heads != 0 {
            return Err(err(format!(
                "{heads} attention heads are not a multiple of {kv_heads} key/value heads"
            )));
        }
        let eos_token_ids = match map.get("eos_token_id") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|v| reader.token_id(v, "eos_token_id"))
                .collect::<Result<_, _>>()?,
            Some(v) => vec![reader.token_id(v, "eos_token_id")?],
        };
        let bos_token_id = match map.get("bos_token_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(reader.token_id(v, "bos_token_id")?),
        };
        Ok(HfConfig {
            model_type,
            architecture,
            layers,
            heads,
            kv_heads,
            hidden_size,
            head_dim,
            context_len,
            vocab_size,
            eos_token_ids,
            bos_token_id,
        })
    }

    /// `model_type` (`llama`, `gpt2`...), or `unknown` when the file has none.
    pub fn model_type(&self) -> &str {
        &self.model_type
    }

    /// The first of `architectures` (`LlamaForCausalLM`), when the file names one.
    pub fn architecture(&self) -> Option<&str> {
        self.architecture.as_deref()
    }

    /// Number of decoder layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Number of query heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Number of key/value heads (= heads without grouped-query attention).
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Width of the residual stream.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Width of one head (`head_dim`, or hidden size / heads).
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// The most positions the model was trained for.
    pub fn context_len(&self) -> usize {
        self.context_len
    }

    /// Number of logits per position.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// End-of-sequence ids (`eos_token_id`, an integer or a list; empty when absent).
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Beginning-of-sequence id, when the file has one.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }
}

/// Reads counts from the JSON object, with messages naming the file and the keys.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    path: PathBuf,
}

impl Reader<'_> {
    fn err(&self, reason: String) -> HfError {
        HfError::Config {
            path: self.path.clone(),
            reason,
        }
    }

    /// The first of `keys` that is present and not null, as a count.
    fn optional(&self, keys: &[&str]) -> Result<Option<usize>, HfError> {
        for key in keys {
            match self.map.get(*key) {
                None | Some(Value::Null) => continue,
                Some(v) => {
                    return v
                        .as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .map(Some)
                        .ok_or_else(|| {
                            self.err(format!("'{key}' is {v}, expected a non-negative integer"))
                        });
                }
            }
        }
        Ok(None)
    }

    fn required(&self, keys: &[&str], what: &str) -> Result<usize, HfError> {
        self.optional(keys)?.ok_or_else(|| {
            let (first, rest) = keys.split_first().map_or(("", &[][..]), |(f, r)| (*f, r));
            let aliases = if rest.is_empty() {
                String::new()
            } else {
                let quoted: Vec<String> = rest.iter().map(|k| format!("'{k}'")).collect();
                format!(" (nor {})", quoted.join(", "))
            };
            self.err(format!("no '{first}'{aliases}: the {what} of the model"))
        })
    }

    fn token_id(&self, v: &Value, key: &str) -> Result<u32, HfError> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.err(format!("'{key}' holds {v}, expected a token id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<HfConfig, HfError> {
        HfConfig::from_json(json.as_bytes(), Path::new("dir/config.json"))
    }

    #[test]
    fn llama_keys_with_grouped_heads_and_eos_list() -> Result<(), HfError> {
        let c = parse(
            r#"{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "hidden_size": 64, "head_dim": 16,
                "max_position_embeddings": 256, "vocab_size": 1024,
                "eos_token_id": [1, 7], "bos_token_id": 0}"#,
        )?;
        assert_eq!(c.model_type(), "llama");
        assert_eq!((c.layers(), c.heads(), c.kv_heads()), (2, 4, 2));
        assert_eq!(
            (c.hidden_size(), c.head_dim(), c.context_len()),
            (64, 16, 256)
        );
        assert_eq!(c.eos_token_ids(), &[1, 7]);
        assert_eq!(c.bos_token_id(), Some(0));
        Ok(())
    }

    #[test]
    fn missing_and_mistyped_keys_are_named() {
        let e = parse(r#"{"n_head": 4, "n_embd": 64, "n_positions": 9, "vocab_size": 3}"#)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "dir/config.json: no 'num_hidden_layers' (nor 'n_layer', 'num_layers'): the layers of the model"
            )
        );
        let e = parse(
            r#"{"n_layer": "two", "n_head": 4, "n_embd": 64, "n_positions": 9, "vocab_size": 3}"#,
        )
        .err()
        .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("'n_layer' is \"two\"")));
        let e = parse("[1, 2]").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("not a JSON object")));
        let e = parse(
            r#"{"n_layer": 1, "n_head": 3, "n_embd": 64, "n_positions": 9, "vocab_size": 3}"#,
        )
        .err()
        .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("not a multiple of 3 heads")));
    }
}
