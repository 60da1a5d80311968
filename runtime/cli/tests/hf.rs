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

fn gpt2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf/gpt2")
}

fn generate(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all = vec![
        "generate",
        "--temp",
        "0",
        "-n",
        "64",
        "-p",
        "The old man",
        "--no-echo",
    ];
    all.extend_from_slice(args);
    let out = arca(dir.path(), &all);
    ok(&out);
    stdout(&out)
}

#[test]
fn generate_from_a_model_directory_and_its_bundle() {
    let llama = llama();
    let llama = llama.to_str().expect("utf-8");
    let plain = generate(&["-m", llama]);
    assert!(plain.len() > 64, "64 tokens of text: {plain:?}");
    // tract is the engine auto picks for a directory, and the one asked for by name.
    assert_eq!(generate(&["-m", llama, "--engine", "tract"]), plain);
    // The packed bundle generates the same text.
    let dir = tempfile::tempdir().expect("temp dir");
    let packed = dir.path().join("llama.arcm");
    ok(&arca(
        dir.path(),
        &["pack", llama, "-o", packed.to_str().expect("utf-8")],
    ));
    assert_eq!(generate(&["-m", packed.to_str().expect("utf-8")]), plain);
    // Speculative greedy with a draft of the same tokenizer (the GPT-2 fixture shares the
    // Llama's BPE): the target's own text, whatever the draft proposes.
    let gpt2 = gpt2();
    assert_eq!(
        generate(&["-m", llama, "-md", gpt2.to_str().expect("utf-8")]),
        plain
    );
}

#[test]
fn generate_refuses_what_cannot_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let llama = llama();
    let llama = llama.to_str().expect("utf-8");
    let native_draft =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/gen/trained/gen-draft-kd.arcm");
    // A draft with another tokenizer (bytes against the BPE).
    fails_with(
        &arca(
            dir.path(),
            &[
                "generate",
                "-m",
                llama,
                "-md",
                native_draft.to_str().expect("utf-8"),
                "-p",
                "x",
            ],
        ),
        "does not share target",
    );
    // A malformed tokenizer.json.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).expect("mkdir");
    for f in ["model.onnx", "config.json"] {
        std::fs::copy(Path::new(llama).join(f), broken.join(f)).expect("copy");
    }
    std::fs::write(broken.join("tokenizer.json"), b"{\"model\": 3").expect("write");
    fails_with(
        &arca(
            dir.path(),
            &["generate", "-m", broken.to_str().expect("utf-8"), "-p", "x"],
        ),
        "tokenizer.json",
    );
    // An empty prompt is read as the model's start token; -n 0 generates nothing.
    let out = arca(
        dir.path(),
        &["generate", "-m", llama, "-p", "", "-n", "8", "--temp", "0"],
    );
    ok(&out);
    let out = arca(
        dir.path(),
        &["generate", "-m", llama, "-p", "hi", "-n", "0", "--no-echo"],
    );
    ok(&out);
    assert_eq!(stdout(&out).trim(), "");
    // A prompt longer than the context (256 positions): the sliding window reads its end.
    let long = "word ".repeat(400);
    ok(&arca(
        dir.path(),
        &[
            "generate",
            "-m",
            llama,
            "-p",
            &long,
            "-n",
            "8",
            "--temp",
            "0",
            "--no-echo",
        ],
    ));
}

fn repo_file(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
        .to_str()
        .expect("utf-8")
        .to_owned()
}

#[test]
fn native_llama_path_packs_and_matches_tract() {
    let llama = llama();
    let llama = llama.to_str().expect("utf-8");
    let tract = generate(&["-m", llama, "--engine", "tract"]);
    // The directory's safetensors on the native path, f32: the same greedy text as tract.
    assert_eq!(generate(&["-m", llama, "--engine", "native"]), tract);
    let dir = tempfile::tempdir().expect("temp dir");
    for precision in ["f32", "f16", "int8"] {
        let out = dir.path().join(format!("llama-{precision}.arcm"));
        let out = out.to_str().expect("utf-8");
        ok(&arca(
            dir.path(),
            &["pack", llama, "--weights", precision, "-o", out],
        ));
        let text = generate(&["-m", out]);
        if precision == "f32" {
            assert_eq!(text, tract, "the f32 bundle is the directory's weights");
        }
        // Speculative greedy on the native path equals plain greedy bit for bit (a k-token
        // call reproduces one-token calls), with a draft of the same tokenizer in any
        // precision.
        let draft = dir.path().join("llama-f16.arcm");
        if draft.exists() {
            assert_eq!(
                generate(&["-m", out, "-md", draft.to_str().expect("utf-8")]),
                text,
                "{precision}"
            );
        }
        // A native bundle has no graph for tract.
        fails_with(
            &arca(
                dir.path(),
                &["generate", "-m", out, "--engine", "tract", "-p", "x"],
            ),
            "holds no graph",
        );
    }
    // --weights is for a Llama directory.
    fails_with(
        &arca(
            dir.path(),
            &[
                "pack",
                &repo_file("models/text-small.onnx"),
                "--weights",
                "int8",
                "-o",
                "x.arcm",
            ],
        ),
        "--weights packs a Llama-family model directory",
    );
    fails_with(
        &arca(
            dir.path(),
            &[
                "pack",
                gpt2().to_str().expect("utf-8"),
                "--weights",
                "f16",
                "-o",
                "y.arcm",
            ],
        ),
        "cannot pack",
    );
}

/// The shipped target and drafts of issue #21 (39.9M parameters in int8; 1.8M in f16): greedy
/// speculative text equals the target's own, for each draft.
#[test]
fn shipped_target_and_drafts_agree_with_the_target() {
    let target = repo_file("models/hf/trained/llama-target-int8.arcm");
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "-m",
            &target,
            "--temp",
            "0",
            "-n",
            "96",
            "--no-echo",
        ];
        args.extend_from_slice(&["-p", "It was a dark and stormy night"]);
        args.extend_from_slice(extra);
        let out = arca(dir.path(), &args);
        ok(&out);
        stdout(&out)
    };
    let plain = run(&[]);
    assert!(plain.len() > 200, "{plain:?}");
    for d in ["kd", "adaspec", "onpolicy"] {
        let draft = repo_file(&format!("models/hf/trained/llama-draft-{d}-f16.arcm"));
        assert_eq!(run(&["-md", &draft]), plain, "{d}");
    }
}
