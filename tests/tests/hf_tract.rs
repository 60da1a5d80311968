//! Standard decoder exports run in tract (issue #21's first step): `tests/data/hf` holds a
//! Llama-family and a GPT-2 model with random weights, built by `transformers` and exported by
//! optimum (`text-generation-with-past`), made by `models/hf/make_fixtures.py`. tract runs each
//! graph with the KV cache kept between calls (the prompt in one call, then one token a call),
//! inputs recognised by name, and decodes greedily to the very tokens onnxruntime decoded
//! (`reference.json`); the first logits agree within 1e-4.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tract_onnx::prelude::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hf")
}

/// One exported model, optimized for batch 1 with symbolic past and new lengths.
struct Decoder {
    plan: std::sync::Arc<TypedRunnableModel>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
}

fn load(name: &str) -> TractResult<Decoder> {
    let path = dir().join(name);
    let config: Value = serde_json::from_slice(&std::fs::read(path.join("config.json"))?)?;
    let get = |keys: &[&str]| -> usize {
        keys.iter()
            .find_map(|k| config[*k].as_u64())
            .unwrap_or_else(|| panic!("config.json has none of {keys:?}")) as usize
    };
    let layers = get(&["num_hidden_layers", "n_layer"]);
    let heads = get(&["num_attention_heads", "n_head"]);
    let kv_heads = get(&["num_key_value_heads", "num_attention_heads", "n_head"]);
    let head_dim = get(&["hidden_size", "n_embd"]) / heads;

    let mut model = tract_onnx::onnx().model_for_path(path.join("model.onnx"))?;
    let inputs: Vec<String> = model
        .input_outlets()?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    let outputs: Vec<String> = model
        .output_outlets()?
        .iter()
        .map(|o| model.outlet_label(*o).unwrap_or_default().to_owned())
        .collect();
    let s = model.symbols.sym("S");
    let p = model.symbols.sym("P");
    for (i, input) in inputs.clone().iter().enumerate() {
        let shape: TVec<TDim> = match input.as_str() {
            "input_ids" | "position_ids" => tvec![1.into(), s.to_dim()],
            "attention_mask" => tvec![1.into(), p.to_dim() + s.to_dim()],
            name if name.starts_with("past_key_values.") => {
                tvec![1.into(), kv_heads.into(), p.to_dim(), head_dim.into()]
            }
            other => panic!("unexpected input {other}"),
        };
        let dt = if input.starts_with("past_key_values.") {
            f32::datum_type()
        } else {
            i64::datum_type()
        };
        model.set_input_fact(i, InferenceFact::dt_shape(dt, shape))?;
    }
    let plan = model.into_optimized()?.into_runnable()?;
    Ok(Decoder {
        plan,
        inputs,
        outputs,
        layers,
        kv_heads,
        head_dim,
    })
}

/// A `[1, len]` int64 tensor.
fn row(values: Vec<i64>) -> TractResult<Tensor> {
    let len = values.len();
    Ok(tract_ndarray::Array2::from_shape_vec((1, len), values)?.into_tensor())
}

/// Greedy decoding of `n` tokens after `prompt`; the tokens and the first call's last logits.
fn greedy(d: &Decoder, prompt: &[i64], n: usize) -> TractResult<(Vec<i64>, Vec<f32>)> {
    let mut ids = prompt.to_vec();
    let mut feed = prompt.to_vec();
    let empty = Tensor::zero::<f32>(&[1, d.kv_heads, 0, d.head_dim])?;
    let mut past: Vec<Tensor> = vec![empty; 2 * d.layers];
    let (mut out, mut first) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let n_past = ids.len() - feed.len();
        let mut values = TVec::new();
        for name in &d.inputs {
            let t = match name.as_str() {
                "input_ids" => row(feed.clone())?,
                "attention_mask" => row(vec![1i64; ids.len()])?,
                "position_ids" => row((n_past as i64..ids.len() as i64).collect())?,
                kv => {
                    let rest = kv.trim_start_matches("past_key_values.");
                    let (layer, which) = rest.split_once('.').expect("past_key_values.i.kind");
                    let layer: usize = layer.parse()?;
                    past[2 * layer + usize::from(which == "value")].clone()
                }
            };
            values.push(t.into_tvalue());
        }
        let result = d.plan.run(values)?;
        let mut logits = None;
        for (name, value) in d.outputs.iter().zip(result) {
            if name == "logits" {
                logits = Some(value);
            } else if let Some(rest) = name.strip_prefix("present.") {
                let (layer, which) = rest.split_once('.').expect("present.i.kind");
                let layer: usize = layer.parse()?;
                past[2 * layer + usize::from(which == "value")] = value.into_tensor();
            }
        }
        let logits = logits.expect("a logits output");
        let view = logits.to_plain_array_view::<f32>()?;
        let last = view.shape()[1] - 1;
        let row: Vec<f32> = (0..view.shape()[2]).map(|v| view[[0, last, v]]).collect();
        if first.is_empty() {
            first = row[..16].to_vec();
        }
        let next = arca_generate::argmax(&row) as i64;
        out.push(next);
        ids.push(next);
        feed = vec![next];
    }
    Ok((out, first))
}

fn check(name: &str) -> TractResult<()> {
    let reference: Value = serde_json::from_slice(&std::fs::read(dir().join("reference.json"))?)?;
    let n = reference["new_tokens"].as_u64().expect("new_tokens") as usize;
    let decoder = load(name)?;
    let runs = reference["models"][name].as_array().expect("runs");
    assert!(runs.len() >= 3, "{name}: too few prompts");
    for run in runs {
        let ints = |key: &str| -> Vec<i64> {
            run[key]
                .as_array()
                .expect(key)
                .iter()
                .map(|v| v.as_i64().expect("id"))
                .collect()
        };
        let (tokens, first) = greedy(&decoder, &ints("prompt_ids"), n)?;
        assert_eq!(tokens, ints("greedy"), "{name}: {:?}", run["prompt"]);
        for (i, (a, b)) in first
            .iter()
            .zip(run["first_logits"].as_array().expect("logits"))
            .enumerate()
        {
            let b = b.as_f64().expect("logit") as f32;
            assert!(
                (a - b).abs() <= 1e-4,
                "{name}: logit {i}: tract {a}, onnxruntime {b}"
            );
        }
    }
    Ok(())
}

#[test]
fn llama_export_decodes_like_onnxruntime() -> TractResult<()> {
    check("llama")
}

#[test]
fn gpt2_export_decodes_like_onnxruntime() -> TractResult<()> {
    check("gpt2")
}
