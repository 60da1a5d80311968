//! Packing the committed fixture: golden bytes, external data, round trip through the engine.

use std::path::{Path, PathBuf};

use arca_runtime::bundle::Bundle;
use arca_runtime::engine::TextModel;
use tract_onnx::prelude::*;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/core/tests/data")
}

/// `ARCA_BLESS=1 cargo test -p arca-codegen --test pack` rewrites the golden bundle.
#[test]
fn golden_bundle_is_byte_identical() -> Result {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("tiny.arcm");
    let report = arca_codegen::pack(&data().join("tiny.onnx"), &data().join("tiny.json"), &out)?;
    let packed = std::fs::read(&out)?;
    let golden_path = data().join("tiny.arcm");
    if std::env::var_os("ARCA_BLESS").is_some() {
        std::fs::write(&golden_path, &packed)?;
    }
    let golden = std::fs::read(&golden_path)?;
    assert!(
        packed == golden,
        "packing tiny.onnx no longer gives {}",
        golden_path.display()
    );
    assert_eq!(report.bytes, packed.len() as u64);
    assert_eq!(report.tensors, 8);
    // Nothing but the bundle is left in the output folder.
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
    let bundle = Bundle::open(&out)?;
    assert_eq!(bundle.id(), report.id);
    let lines = bundle.manifest_lines();
    for key in [
        "name",
        "kind",
        "id",
        "parameters",
        "context_len",
        "quantization",
        "training.date",
    ] {
        assert!(lines.iter().any(|(k, _)| k == key), "inspect lacks `{key}`");
    }
    Ok(())
}

#[test]
fn external_data_packs_to_the_same_model() -> Result {
    let a = Bundle::from_bytes(arca_codegen::pack_to_bytes(
        &data().join("tiny.onnx"),
        &data().join("tiny.json"),
    )?)?;
    let b = Bundle::from_bytes(arca_codegen::pack_to_bytes(
        &data().join("tiny_ext.onnx"),
        &data().join("tiny.json"),
    )?)?;
    assert_eq!(a.id(), b.id());
    assert_eq!(a.payload(), b.payload());
    Ok(())
}

#[test]
fn pack_open_run_matches_plain_tract() -> Result {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("m.arcm");
    let onnx = data().join("tiny_ext.onnx");
    arca_codegen::pack(&onnx, &data().join("tiny.json"), &out)?;
    let model = TextModel::load(&Bundle::open(&out)?)?;
    let n = model.context_len();
    let batch = 9;
    let contexts: Vec<u16> = (0..batch * n)
        .map(|i| ((i * 53 + 5) % 257) as u16)
        .collect();
    let mut got = Vec::new();
    model.logits(&contexts, batch, &mut got)?;

    let mut plain = tract_onnx::onnx().model_for_path(&onnx)?;
    let b = plain.symbols.sym("batch");
    plain.set_input_fact(
        0,
        InferenceFact::dt_shape(i64::datum_type(), [b.to_dim(), n.to_dim()]),
    )?;
    let plan = plain.into_optimized()?.into_runnable()?;
    let values: Vec<i64> = contexts.iter().map(|&c| i64::from(c)).collect();
    let input = tract_ndarray::Array2::from_shape_vec((batch, n), values)?.into_tensor();
    let out = plan.run(tvec!(input.into_tvalue()))?;
    let expected = out
        .first()
        .ok_or("no output")?
        .try_as_plain_ram()?
        .as_slice::<i32>()?
        .to_vec();
    assert_eq!(got, expected);
    Ok(())
}

#[test]
fn failures_leave_no_file() -> Result {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("m.arcm");
    let bad_spec = dir.path().join("bad.json");
    std::fs::write(
        &bad_spec,
        r#"{"name":"x","kind":"compressor","context_len":5}"#,
    )?;
    let err = arca_codegen::pack(&data().join("tiny.onnx"), &bad_spec, &out)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("context_len is 5, but graph input `context` has 4"),
        "{err}"
    );
    let not_onnx = arca_codegen::pack(&bad_spec, &data().join("tiny.json"), &out);
    assert!(not_onnx.is_err());
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        1,
        "only bad.json may remain"
    );
    Ok(())
}

/// The shipped bundles are what packing the committed ONNX and spec gives: fails after a
/// re-export until `arca pack models/NAME.onnx --manifest models/NAME.json -o
/// models/NAME.arcm` is run again (and, for text-embedded, `arca-codegen emit`).
#[test]
fn shipped_text_models_are_up_to_date() -> Result {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    for name in ["text-small", "text-embedded"] {
        let (onnx, spec) = (
            models.join(format!("{name}.onnx")),
            models.join(format!("{name}.json")),
        );
        let packed = arca_codegen::pack_to_bytes(&onnx, &spec)?;
        let shipped = std::fs::read(models.join(format!("{name}.arcm")))?;
        assert!(
            packed == shipped,
            "models/{name}.arcm is stale: re-pack it from models/{name}.onnx and .json"
        );
    }
    Ok(())
}
