//! The two optimum exports of `tests/data/hf` (a Llama and a GPT-2 made by
//! `models/hf/make_fixtures.py`) through the library: greedy decoding equals onnxruntime's
//! (`reference.json`: 4 prompts x 128 tokens, first logits within 1e-4), k-token calls equal
//! one-token calls, rollback equals a fresh run, and a packed bundle decodes like the directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arca_hf::{HfDecoder, HfError, HfModel};
use serde_json::Value;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf")
}

/// Each model is loaded (and optimized) once for all tests of this file.
fn model(name: &str) -> &'static HfModel {
    static LLAMA: OnceLock<HfModel> = OnceLock::new();
    static GPT2: OnceLock<HfModel> = OnceLock::new();
    let cell = if name == "llama" { &LLAMA } else { &GPT2 };
    cell.get_or_init(|| match HfModel::open(&data().join(name)) {
        Ok(m) => m,
        Err(e) => panic!("{name}: {e}"),
    })
}

fn reference() -> Value {
    let bytes = std::fs::read(data().join("reference.json")).expect("reference.json");
    serde_json::from_slice(&bytes).expect("reference.json is JSON")
}

fn ids(run: &Value, key: &str) -> Vec<u32> {
    run[key]
        .as_array()
        .expect(key)
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Greedy decoding of `n` tokens: the prompt in one call, then one token a call. Returns the
/// tokens and the first call's last row of logits.
fn greedy(d: &mut HfDecoder, prompt: &[u32], n: usize) -> Result<(Vec<u32>, Vec<f32>), HfError> {
    let mut logits = Vec::new();
    let mut out = Vec::new();
    let mut first = Vec::new();
    let mut feed = prompt.to_vec();
    for _ in 0..n {
        d.forward(&feed, &mut logits)?;
        let row = &logits[logits.len() - d.vocab()..];
        if first.is_empty() {
            first = row.to_vec();
        }
        let next = argmax(row);
        out.push(next);
        feed = vec![next];
    }
    Ok((out, first))
}

fn check_reference(name: &str) -> Result<(), HfError> {
    let reference = reference();
    let n = reference["new_tokens"].as_u64().expect("new_tokens") as usize;
    let model = model(name);
    let tokenizer = model.tokenizer()?;
    let runs = reference["models"][name].as_array().expect("runs");
    assert!(runs.len() >= 3, "{name}: too few prompts");
    for run in runs {
        let prompt = run["prompt"].as_str().expect("prompt");
        assert_eq!(
            tokenizer.encode(prompt.as_bytes())?,
            ids(run, "prompt_ids"),
            "{name}: tokenizer on {prompt:?}"
        );
        let mut decoder = model.session();
        let (tokens, first) = greedy(&mut decoder, &ids(run, "prompt_ids"), n)?;
        assert_eq!(tokens, ids(run, "greedy"), "{name}: {prompt:?}");
        assert_eq!(decoder.cached(), ids(run, "prompt_ids").len() + n - 1);
        let expected = run["first_logits"].as_array().expect("first_logits");
        assert!(expected.len() >= 16);
        for (i, (a, b)) in first.iter().zip(expected).enumerate() {
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
fn llama_decodes_like_onnxruntime() -> Result<(), HfError> {
    check_reference("llama")
}

#[test]
fn gpt2_decodes_like_onnxruntime() -> Result<(), HfError> {
    check_reference("gpt2")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A prompt then 8 tokens in one call gives the logits of 8 one-token calls, every row.
fn check_k_tokens(name: &str) -> Result<(), HfError> {
    let model = model(name);
    let prompt = [500u32, 727, 447];
    let next = [994u32, 994, 311, 878, 55, 13, 21, 657];
    let mut logits = Vec::new();

    let mut batched = model.session();
    batched.forward(&prompt, &mut logits)?;
    assert_eq!(logits.len(), prompt.len() * batched.vocab());
    batched.forward(&next, &mut logits)?;
    assert_eq!(logits.len(), next.len() * batched.vocab());
    assert_eq!(batched.cached(), prompt.len() + next.len());
    let k_rows = logits.clone();

    let mut single = model.session();
    single.forward(&prompt, &mut logits)?;
    let v = single.vocab();
    for (i, &t) in next.iter().enumerate() {
        single.forward(&[t], &mut logits)?;
        let d = max_diff(&logits, &k_rows[i * v..(i + 1) * v]);
        assert!(d <= 1e-4, "{name}: row {i} differs by {d}");
    }
    Ok(())
}

#[test]
fn llama_k_token_call_equals_one_token_calls() -> Result<(), HfError> {
    check_k_tokens("llama")
}

#[test]
fn gpt2_k_token_call_equals_one_token_calls() -> Result<(), HfError> {
    check_k_tokens("gpt2")
}

/// Rolling back and feeding other tokens gives the logits of a fresh run on the new text.
fn check_rollback(name: &str) -> Result<(), HfError> {
    let model = model(name);
    let mut logits = Vec::new();
    let mut fresh_logits = Vec::new();
    let mut d = model.session();
    d.forward(&[500, 727, 447, 994, 994, 311, 878], &mut logits)?;
    d.truncate(4);
    assert_eq!(d.cached(), 4);
    d.truncate(9); // longer than the cache: nothing changes
    assert_eq!(d.cached(), 4);
    d.forward(&[12, 34, 56], &mut logits)?;

    let mut fresh = model.session();
    fresh.forward(&[500, 727, 447, 994, 12, 34, 56], &mut fresh_logits)?;
    let v = d.vocab();
    let diff = max_diff(&logits, &fresh_logits[4 * v..]);
    assert!(diff <= 1e-4, "{name}: rollback differs by {diff}");

    d.truncate(0);
    assert_eq!(d.cached(), 0);
    d.forward(&[500, 727, 447, 994, 12, 34, 56], &mut logits)?;
    let diff = max_diff(&logits, &fresh_logits);
    assert!(diff <= 1e-4, "{name}: after truncate(0) differs by {diff}");
    Ok(())
}

#[test]
fn llama_rollback_equals_fresh_run() -> Result<(), HfError> {
    check_rollback("llama")
}

#[test]
fn gpt2_rollback_equals_fresh_run() -> Result<(), HfError> {
    check_rollback("gpt2")
}

#[test]
fn calls_the_model_cannot_serve_are_errors_and_leave_the_cache() -> Result<(), HfError> {
    let model = model("llama");
    let mut d = model.session();
    let mut logits = vec![1.0];
    d.forward(&[], &mut logits)?;
    assert!(logits.is_empty());
    d.forward(&[1, 2], &mut logits)?;
    let e = d
        .forward(&[3, 1024], &mut logits)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("llama: token 1024 is outside the vocabulary of 1024")
    );
    assert_eq!(d.cached(), 2);
    let too_long = vec![1u32; d.context_len() - 1];
    let e = d
        .forward(&too_long, &mut logits)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("llama: 2 cached + 255 new positions exceed the context of 256")
    );
    assert_eq!(d.cached(), 2);
    assert_eq!((d.name(), d.vocab(), d.context_len()), ("llama", 1024, 256));
    Ok(())
}

#[test]
fn packed_bundle_decodes_like_the_directory() -> Result<(), HfError> {
    let dir = data().join("llama");
    let bytes = arca_hf::pack(&dir)?;
    assert_eq!(bytes, arca_hf::pack(&dir)?, "packing is deterministic");
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("llama.arcm");
    std::fs::write(&path, &bytes).expect("write bundle");

    let bundle = arca_bundle::Bundle::open(&path).expect("bundle reads back");
    let m = bundle.manifest();
    assert_eq!(m.kind, arca_bundle::ModelKind::HfDecoder);
    assert_eq!(
        (m.vocab_size, m.context_len, m.parameters),
        (1024, 256, 223_296)
    );
    assert_eq!(m.kv_cache_inputs.len(), 4);
    for t in &m.tensors {
        assert_eq!(t.offset % 64, 0, "{} is not aligned", t.name);
    }
    let graph_weights = m
        .tensors
        .iter()
        .filter(|t| !t.name.starts_with("hf/"))
        .count();
    assert_eq!(graph_weights, 17);

    let packed = HfModel::open(&path)?;
    assert_eq!(packed.name(), "llama");
    let tokenizer = packed.tokenizer()?;
    assert_eq!(
        tokenizer.fingerprint(),
        model("llama").tokenizer()?.fingerprint()
    );
    assert_eq!(tokenizer.eos_ids(), &[0]);
    let prompt = tokenizer.encode(b"The old man")?;
    let (a, first_a) = greedy(&mut packed.session(), &prompt, 64)?;
    let (b, first_b) = greedy(&mut model("llama").session(), &prompt, 64)?;
    assert_eq!(a, b);
    assert_eq!(first_a, first_b, "same weights, same plan, same logits");
    Ok(())
}
