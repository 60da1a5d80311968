//! `arca inspect` and `arca pack` on a model directory exported by optimum
//! (`tests/data/hf/llama`), and on the `hf-decoder` bundle `arca pack` makes from it.
#![cfg(feature = "tract")]

mod common;

use std::path::{Path, PathBuf};

use common::{arca, fails_with, ok};

fn llama() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf/llama")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn inspect_a_model_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = arca(dir.path(), &["inspect", llama().to_str().expect("utf-8")]);
    ok(&out);
    let text = stdout(&out);
    for line in [
        "architecture: LlamaForCausalLM (model_type llama)",
        "layers: 2",
        "heads: 4 query, 2 key/value",
        "head_dim: 16",
        "hidden_size: 64",
        "vocab_size: 1024",
        "context_len: 256",
        "parameters: 223296",
        "weights: float (223296 elements)",
        "inputs: input_ids, attention_mask, position_ids",
        "outputs: logits",
    ] {
        assert!(text.lines().any(|l| l == line), "no '{line}' in:\n{text}");
    }
    assert!(
        text.contains("tokenizer: 1024 tokens, BPE, eos 0, fingerprint "),
        "{text}"
    );
    assert!(text.contains("tract: runs it"), "{text}");

    // A directory without a graph says which file is missing.
    let out = arca(dir.path(), &["inspect", "."]);
    fails_with(&out, "model.onnx is missing");
}

#[test]
fn pack_a_model_directory_and_inspect_the_bundle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = llama();
    let src = src.to_str().expect("utf-8");
    let out = arca(dir.path(), &["pack", src, "-o", "llama.arcm"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("packed llama (hf-decoder"));
    let out = arca(dir.path(), &["pack", src, "-o", "llama.arcm"]);
    fails_with(&out, "already exists");
    let out = arca(
        dir.path(),
        &["pack", src, "--manifest", "x.json", "-o", "other.arcm"],
    );
    fails_with(&out, "is a model directory");
    assert!(!dir.path().join("other.arcm").exists());

    let out = arca(dir.path(), &["inspect", "llama.arcm"]);
    ok(&out);
    let text = stdout(&out);
    for line in [
        "kind: hf-decoder",
        "vocab_size: 1024",
        "layers: 2",
        "hf.model_type: llama",
    ] {
        assert!(text.lines().any(|l| l == line), "no '{line}' in:\n{text}");
    }
    assert!(text.contains("tract: runs it"), "{text}");
    assert_eq!(text.matches("vocab_size:").count(), 1, "{text}");
}
