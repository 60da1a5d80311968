//! [`describe`]: what a model directory or `hf-decoder` bundle holds, as `key: value` lines
//! for `arca inspect`: the configuration, the graph's recognised inputs and outputs, the
//! weights, the tokenizer, and whether tract can run the graph (it tries, and times it).

use std::time::Instant;

use crate::config::HfConfig;
use crate::decoder::HfModel;
use crate::error::HfError;
use crate::graph::{GraphSpec, InputRole, OutputRole};
use crate::source::{CONFIG_FILE, GRAPH_FILE, ModelSource, TOKENIZER_FILE};
use crate::tokenizer::HfTokenizer;

/// `key: value` lines describing `source`. A configuration or graph that is not a decoder's is
/// an error; a tokenizer or a graph tract cannot load is reported in the lines, so the rest of
/// the description is still printed.
pub fn describe(source: &ModelSource) -> Result<Vec<(String, String)>, HfError> {
    let proto = source.graph_proto()?;
    let config = HfConfig::from_json(&source.read(CONFIG_FILE)?, &source.label(CONFIG_FILE))?;
    let spec = GraphSpec::read(&proto, &config, &source.label(GRAPH_FILE))?;
    drop(proto);
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut line = |k: &str, v: String| lines.push((k.to_owned(), v));
    line("model", source.name());
    line(
        "architecture",
        format!(
            "{} (model_type {})",
            config.architecture().unwrap_or("-"),
            config.model_type()
        ),
    );
    line("layers", config.layers().to_string());
    line(
        "heads",
        format!("{} query, {} key/value", config.heads(), config.kv_heads()),
    );
    line("head_dim", config.head_dim().to_string());
    line("hidden_size", config.hidden_size().to_string());
    line("vocab_size", config.vocab_size().to_string());
    line("context_len", config.context_len().to_string());
    line("parameters", spec.parameters().to_string());
    let weights: Vec<String> = spec
        .weight_types()
        .iter()
        .map(|(t, n)| format!("{t} ({n} elements)"))
        .collect();
    line("weights", weights.join(", "));
    let inputs: Vec<&str> = spec
        .inputs()
        .iter()
        .filter(|(_, r)| !matches!(r, InputRole::Past { .. }))
        .map(|(n, _)| n.as_str())
        .collect();
    line("inputs", inputs.join(", "));
    line(
        "kv_cache",
        format!(
            "past_key_values.{{0..{}}}.key/value -> present.{{0..{}}}.key/value, [1, {}, past, {}] float32",
            spec.layers() - 1,
            spec.layers() - 1,
            config.kv_heads(),
            config.head_dim()
        ),
    );
    let outputs: Vec<&str> = spec
        .outputs()
        .iter()
        .filter(|(_, r)| *r == OutputRole::Logits)
        .map(|(n, _)| n.as_str())
        .collect();
    line("outputs", outputs.join(", "));
    let eos = |ids: &[u32]| {
        if ids.is_empty() {
            "-".to_owned()
        } else {
            ids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    line("eos_token_id", eos(config.eos_token_ids()));
    let tokenizer = source.read(TOKENIZER_FILE).and_then(|json| {
        let tc = source.read("tokenizer_config.json").ok();
        HfTokenizer::from_bytes(&json, tc.as_deref(), &source.label(TOKENIZER_FILE))
    });
    match tokenizer {
        Ok(t) => {
            let t = t.or_eos(config.eos_token_ids());
            line(
                "tokenizer",
                format!(
                    "{} tokens, {}, eos {}, fingerprint {:032x}",
                    t.vocab_size(),
                    t.model_type(),
                    eos(t.eos_ids()),
                    t.fingerprint()
                ),
            );
        }
        Err(e) => line("tokenizer", format!("cannot be used: {e}")),
    }
    let start = Instant::now();
    match HfModel::from_source(source.clone()) {
        Ok(_) => line(
            "tract",
            format!(
                "runs it (loaded and optimized in {:.2} s)",
                start.elapsed().as_secs_f64()
            ),
        ),
        Err(e) => line("tract", format!("cannot run it: {e}")),
    }
    Ok(lines)
}
