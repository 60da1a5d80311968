//! [`LlamaConfig`]: the shape of a `LlamaForCausalLM`, read from transformers' `config.json`.
//!
//! Only what the forward pass needs is read; everything it cannot compute is refused by name
//! (`rope_scaling` other than `null`, an activation other than `silu`, biases on the attention
//! or MLP projections, another architecture), so a model that loads is a model this path runs
//! as transformers does.

use serde_json::{Map, Value};

use crate::llama::error::LlamaError;

/// The shape of a Llama model (transformers' `LlamaConfig` names, `config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Width of the residual stream (`hidden_size`).
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP (`intermediate_size`).
    pub intermediate_size: usize,
    /// Decoder layers (`num_hidden_layers`).
    pub num_hidden_layers: usize,
    /// Query heads (`num_attention_heads`).
    pub num_attention_heads: usize,
    /// Key and value heads (`num_key_value_heads`; defaults to the query heads): each serves
    /// `num_attention_heads / num_key_value_heads` query heads.
    pub num_key_value_heads: usize,
    /// Width of one head (`head_dim`; defaults to `hidden_size / num_attention_heads`).
    pub head_dim: usize,
    /// The RMSNorm epsilon (`rms_norm_eps`).
    pub rms_norm_eps: f32,
    /// The RoPE base (`rope_theta`; defaults to 10000).
    pub rope_theta: f32,
    /// Longest sequence (`max_position_embeddings`): the decoder's context.
    pub max_position_embeddings: usize,
    /// Tokens (`vocab_size`).
    pub vocab_size: usize,
    /// The output projection is the input embedding (`tie_word_embeddings`; defaults to false,
    /// as in `LlamaConfig`).
    pub tie_word_embeddings: bool,
}

fn count(obj: &Map<String, Value>, key: &str) -> Result<Option<usize>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("`{key}` is {v}, not a count")),
    }
}

fn number(obj: &Map<String, Value>, key: &str) -> Result<Option<f32>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|x| Some(x as f32))
            .ok_or_else(|| format!("`{key}` is {v}, not a number")),
    }
}

fn flag(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| format!("`{key}` is {v}, not true or false")),
    }
}

fn required<T>(v: Option<T>, key: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("the key `{key}` is missing"))
}

impl LlamaConfig {
    /// Reads `config.json`'s text; `file` names it in errors.
    ///
    /// ```
    /// use arca_generate::LlamaConfig;
    /// let json = r#"{"hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
    ///   "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
    ///   "max_position_embeddings": 256, "vocab_size": 1024}"#;
    /// let cfg = LlamaConfig::from_json(json, "config.json")?;
    /// assert_eq!((cfg.head_dim, cfg.rope_theta), (16, 10000.0));
    /// let err = LlamaConfig::from_json(r#"{"hidden_size": 64}"#, "config.json").unwrap_err();
    /// assert!(err.to_string().contains("intermediate_size"));
    /// # Ok::<(), arca_generate::LlamaError>(())
    /// ```
    pub fn from_json(text: &str, file: &str) -> Result<LlamaConfig, LlamaError> {
        let config = |reason: String| LlamaError::Config {
            file: file.to_owned(),
            reason,
        };
        let unsupported = |what: String| LlamaError::Unsupported {
            file: file.to_owned(),
            what,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| config(format!("not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| config("not a JSON object".into()))?;
        if let Some(archs) = obj.get("architectures").and_then(Value::as_array) {
            let names: Vec<&str> = archs.iter().filter_map(Value::as_str).collect();
            if !names.contains(&"LlamaForCausalLM") {
                return Err(unsupported(format!("the architecture {names:?}")));
            }
        }
        match obj.get("rope_scaling") {
            None | Some(Value::Null) => {}
            Some(v) => {
                return Err(unsupported(format!(
                    "`rope_scaling` {v} (only null, plain RoPE, is)"
                )));
            }
        }
        match obj.get("hidden_act") {
            None => {}
            Some(Value::String(s)) if s == "silu" => {}
            Some(v) => return Err(unsupported(format!("`hidden_act` {v} (only \"silu\" is)"))),
        }
        for key in ["attention_bias", "mlp_bias"] {
            if flag(obj, key).map_err(config)? == Some(true) {
                return Err(unsupported(format!("`{key}` true (Llama has no biases)")));
            }
        }
        let c = |key: &str| count(obj, key).map_err(config);
        let req = |key: &str| c(key).and_then(|v| required(v, key).map_err(config));
        let hidden_size = req("hidden_size")?;
        let intermediate_size = req("intermediate_size")?;
        let num_hidden_layers = req("num_hidden_layers")?;
        let num_attention_heads = req("num_attention_heads")?;
        let num_key_value_heads = c("num_key_value_heads")?.unwrap_or(num_attention_heads);
        let rms_norm_eps = required(number(obj, "rms_norm_eps").map_err(config)?, "rms_norm_eps")
            .map_err(config)?;
        let rope_theta = number(obj, "rope_theta")
            .map_err(config)?
            .unwrap_or(10000.0);
        let max_position_embeddings = req("max_position_embeddings")?;
        let vocab_size = req("vocab_size")?;
        let tie_word_embeddings = flag(obj, "tie_word_embeddings")
            .map_err(config)?
            .unwrap_or(false);
        let head_dim = match c("head_dim")? {
            Some(h) => h,
            None if num_attention_heads > 0 => hidden_size / num_attention_heads,
            None => 0,
        };
        let cfg = LlamaConfig {
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps,
            rope_theta,
            max_position_embeddings,
            vocab_size,
            tie_word_embeddings,
        };
        cfg.check().map_err(config)?;
        Ok(cfg)
    }

    /// The checks every shape must pass (also for a configuration built in code).
    pub(crate) fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
            ("vocab_size", self.vocab_size),
        ] {
            if v == 0 {
                return Err(format!("`{key}` is 0"));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(format!(
                "`num_attention_heads` ({}) is not a multiple of `num_key_value_heads` ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "`head_dim` is {}; rotate-half RoPE needs it even",
                self.head_dim
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return Err(format!("`rms_norm_eps` is {}", self.rms_norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!("`rope_theta` is {}", self.rope_theta));
        }
        if u32::try_from(self.vocab_size).is_err() {
            return Err(format!(
                "`vocab_size` is {}; tokens are u32",
                self.vocab_size
            ));
        }
        Ok(())
    }

    /// Width of all query heads together.
    pub fn q_width(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_width(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// Parameters: embeddings, attention and MLP matrices, norms, and the head when untied.
    pub fn parameters(&self) -> usize {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let attn = 2 * d * self.q_width() + 2 * d * self.kv_width();
        let layer = attn + 3 * d * f + 2 * d;
        let head = if self.tie_word_embeddings { 0 } else { v * d };
        v * d + self.num_hidden_layers * layer + d + head
    }

    /// `config.json` text for this shape (what [`LlamaConfig::from_json`] reads back), for
    /// synthetic models and tests.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": null,
            "max_position_embeddings": self.max_position_embeddings,
            "vocab_size": self.vocab_size,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
        })
        .to_string()
    }
}
