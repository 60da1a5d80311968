//! What arca-hf refuses, and that each refusal names the file and what is wrong: graphs that are
//! not decoders with a KV cache, a graph tract cannot load, missing or malformed files, and
//! prompts that are not UTF-8.

use std::path::{Path, PathBuf};

use arca_hf::{HfModel, HfTokenizer};
use prost::Message;
use tract_onnx::pb;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf")
}

/// A copy of the llama fixture in a temp dir, its graph changed by `edit`.
fn edited_llama(edit: impl FnOnce(&mut pb::GraphProto)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = data().join("llama");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).expect("copy");
    }
    let bytes = std::fs::read(src.join("model.onnx")).expect("model.onnx");
    let mut proto = pb::ModelProto::decode(bytes.as_slice()).expect("ONNX");
    edit(proto.graph.as_mut().expect("graph"));
    std::fs::write(tmp.path().join("model.onnx"), proto.encode_to_vec()).expect("write");
    tmp
}

fn open_err(dir: &Path) -> String {
    match HfModel::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_graph_without_attention_mask_is_refused_by_name() {
    let tmp = edited_llama(|g| g.input.retain(|i| i.name != "attention_mask"));
    let e = open_err(tmp.path());
    assert!(e.ends_with("model.onnx has no input 'attention_mask' (its inputs: input_ids, position_ids, past_key_values.0.key, past_key_values.0.value, past_key_values.1.key, past_key_values.1.value)"), "{e}");
    // pack checks the same way.
    let e = arca_hf::pack(tmp.path()).err().map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("has no input 'attention_mask'")));
}

#[test]
fn a_graph_without_a_present_output_is_refused_by_name() {
    let tmp = edited_llama(|g| g.output.retain(|o| o.name != "present.1.value"));
    let e = open_err(tmp.path());
    assert!(
        e.ends_with("model.onnx has no output 'present.1.value'"),
        "{e}"
    );
}

#[test]
fn a_graph_without_kv_cache_is_refused_with_the_export_task() {
    let tmp = edited_llama(|g| g.input.retain(|i| !i.name.starts_with("past_key_values.")));
    let e = open_err(tmp.path());
    assert!(
        e.contains("has no input 'past_key_values.0.key'")
            && e.contains("--task text-generation-with-past"),
        "{e}"
    );
}

#[test]
fn a_graph_that_disagrees_with_config_is_refused() {
    let tmp = edited_llama(|_| {});
    let config = std::fs::read_to_string(tmp.path().join("config.json")).expect("config");
    let config = config.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    std::fs::write(tmp.path().join("config.json"), config).expect("write");
    let e = open_err(tmp.path());
    assert!(
        e.ends_with("model.onnx has the KV cache of 2 layers, config.json says 3"),
        "{e}"
    );

    let config = std::fs::read_to_string(data().join("llama/config.json")).expect("config");
    let config = config.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4");
    std::fs::write(tmp.path().join("config.json"), config).expect("write");
    let e = open_err(tmp.path());
    assert!(
        e.contains(
            "has input 'past_key_values.0.key' with 2 key/value heads (axis 1), config.json says 4"
        ),
        "{e}"
    );
}

#[test]
fn a_non_decoder_onnx_is_refused_naming_the_missing_input() {
    // The project's own byte model: input `context`, output `logits`.
    let tmp = tempfile::tempdir().expect("temp dir");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    std::fs::copy(
        models.join("text-small.onnx"),
        tmp.path().join("model.onnx"),
    )
    .expect("copy");
    std::fs::copy(
        data().join("llama/config.json"),
        tmp.path().join("config.json"),
    )
    .expect("copy");
    let e = open_err(tmp.path());
    assert!(
        e.ends_with("model.onnx has no input 'input_ids' (its inputs: context)"),
        "{e}"
    );
}

#[test]
fn an_operator_tract_cannot_load_is_reported_with_tracts_message() {
    let tmp = edited_llama(|g| {
        if let Some(n) = g.node.iter_mut().find(|n| n.op_type == "Softmax") {
            n.op_type = "NoSuchOperator".into();
        }
    });
    let e = open_err(tmp.path());
    // tract parses unknown operators and refuses them when it types the graph.
    assert!(
        e.contains("model.onnx: tract cannot type the graph: Translating node"),
        "{e}"
    );
    assert!(
        e.contains("Unimplemented(NoSuchOperator)"),
        "tract's text: {e}"
    );
}

#[test]
fn missing_files_are_named() {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        data().join("llama/model.onnx"),
        tmp.path().join("model.onnx"),
    )
    .expect("copy");
    let e = open_err(tmp.path());
    assert!(
        e.ends_with(
            "config.json is missing: a model directory needs config.json beside model.onnx"
        ),
        "{e}"
    );

    let empty = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        data().join("llama/config.json"),
        empty.path().join("config.json"),
    )
    .expect("copy");
    let e = open_err(empty.path());
    assert!(
        e.contains("model.onnx is missing: export the model with `optimum-cli"),
        "{e}"
    );

    let e = open_err(&empty.path().join("nothing-here"));
    assert!(e.contains("nothing-here is missing"), "{e}");

    let e = arca_hf::pack(tmp.path()).err().map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("config.json is missing")));
}

#[test]
fn a_file_that_is_not_a_bundle_is_refused() {
    let e = open_err(&data().join("llama/tokenizer.json"));
    assert!(e.contains("tokenizer.json: not an arca bundle"), "{e}");
    let arcm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/text-small.arcm");
    let e = open_err(&arcm);
    assert!(
        e.contains("a bundle of kind 'compressor', not 'hf-decoder'"),
        "{e}"
    );
}

#[test]
fn malformed_tokenizer_json_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let good = std::fs::read(data().join("llama/tokenizer.json")).expect("tokenizer.json");
    let path = tmp.path().join("tokenizer.json");
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        (
            "wrong JSON",
            br#"{"model": {"type": "NoSuchModel"}}"#.to_vec(),
        ),
    ] {
        std::fs::write(&path, &bytes).expect("write");
        let e = HfTokenizer::from_file(&path).err().map(|e| e.to_string());
        let e = e.unwrap_or_else(|| panic!("{what} tokenizer.json loaded"));
        assert!(
            e.starts_with(&format!("{}: not a tokenizer", path.display())),
            "{what}: {e}"
        );
    }
    let e = HfTokenizer::from_file(&tmp.path().join("absent.json"))
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("absent.json is missing")));
}

#[test]
fn tokenizer_round_trips_bytes_and_streams_partial_utf8() -> Result<(), arca_hf::HfError> {
    let tok = HfTokenizer::from_file(&data().join("llama/tokenizer.json"))?;
    assert_eq!(tok.vocab_size(), 1024);
    assert_eq!(tok.model_type(), "BPE");
    assert_eq!(tok.eos_ids(), &[0], "from tokenizer_config.json");
    let text = "Æsop's fables — «naïve» 東京, 🦀\n\tend";
    let ids = tok.encode(text.as_bytes())?;
    assert_eq!(tok.decode(&ids)?, text.as_bytes());
    // One token at a time, the bytes concatenate to the text even inside a character.
    let mut streamed = Vec::new();
    let mut split_char = false;
    for &id in &ids {
        let bytes = tok.decode(&[id])?;
        split_char |= std::str::from_utf8(&bytes).is_err();
        streamed.extend(bytes);
    }
    assert_eq!(streamed, text.as_bytes());
    assert!(split_char, "some token holds part of a character");
    // Special tokens decode to nothing; ids outside the vocabulary are errors.
    assert_eq!(tok.decode(&[0])?, b"");
    let e = tok.decode(&[5000]).err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("tokenizer: token id 5000 is outside the vocabulary of 1024 tokens")
    );
    let e = tok.encode(b"ok \xff\xfe").err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("the prompt is not valid UTF-8 (bytes from offset 3 on); the tokenizer encodes text")
    );
    Ok(())
}

#[test]
fn fingerprint_follows_the_vocabulary_not_the_formatting() -> Result<(), arca_hf::HfError> {
    let path = data().join("llama/tokenizer.json");
    let json = std::fs::read(&path).expect("tokenizer.json");
    let a = HfTokenizer::from_bytes(&json, None, &path)?;
    let b = HfTokenizer::from_file(&data().join("gpt2/tokenizer.json"))?;
    assert_eq!(a.fingerprint(), b.fingerprint());

    let mut value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    let pretty = serde_json::to_vec_pretty(&value).expect("JSON");
    assert_eq!(
        HfTokenizer::from_bytes(&pretty, None, &path)?.fingerprint(),
        a.fingerprint()
    );

    // Swap the ids of two tokens: same strings, different mapping.
    let vocab = value["model"]["vocab"].as_object_mut().expect("vocab");
    let (x, y) = (vocab["the"].clone(), vocab["and"].clone());
    vocab.insert("the".into(), y);
    vocab.insert("and".into(), x);
    let swapped = serde_json::to_vec(&value).expect("JSON");
    assert_ne!(
        HfTokenizer::from_bytes(&swapped, None, &path)?.fingerprint(),
        a.fingerprint()
    );
    Ok(())
}
