//! `arca-codegen emit`: golden source for the shipped embedded model, and refusals.

use std::path::{Path, PathBuf};

use arca_codegen::emit::{EmitError, emit, emit_with_report};
use arca_runtime::bundle::Bundle;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The firmware's model is the emitter's output for `models/text-embedded.arcm`, byte for byte:
/// a change in the emitter (or a re-packed model) is a reviewed change of that file.
/// `ARCA_BLESS=1 cargo test -p arca-codegen --test emit` rewrites it.
#[test]
fn golden_firmware_model() -> Result {
    let bundle = Bundle::open(root().join("models/text-embedded.arcm"))?;
    let (source, report) = emit_with_report(&bundle)?;
    let golden = root().join("targets/cortex-m/src/model.rs");
    if std::env::var_os("ARCA_BLESS").is_some() {
        std::fs::write(&golden, &source)?;
    }
    let committed = std::fs::read_to_string(&golden)?;
    assert!(
        source == committed,
        "emitting models/text-embedded.arcm no longer gives {}",
        golden.display()
    );
    // Issue #5's flash budget for the weights, and the sizes the module docs quote.
    assert!(report.static_bytes <= 256 * 1024, "{report:?}");
    assert_eq!(report.macs, 384 * 256 + 256 * 256 + 256 * 256);
    assert!(source.contains(&format!("0x{:032x}", bundle.id())));
    Ok(())
}

#[test]
fn emission_is_deterministic_and_covers_the_default_model() -> Result {
    let bundle = Bundle::open(root().join("models/text-small.arcm"))?;
    let a = emit(&bundle)?;
    assert_eq!(a, emit(&bundle)?);
    assert!(a.contains("pub const CONTEXT_LEN: usize = 32;"));
    assert!(a.contains("impl arca_embedded::Network for Model"));
    Ok(())
}

#[test]
fn non_compressors_and_unlowerable_graphs_are_refused() -> Result {
    let circuit = Bundle::open(root().join("models/pc/trained/hclt-mnist-M32.arcm"))?;
    let e = emit(&circuit)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("not a compressor"), "{e}");
    // The tiny fixture computes in float: not an integer MLP.
    let tiny = Bundle::open(root().join("runtime/core/tests/data/tiny.arcm"))?;
    assert!(matches!(emit(&tiny), Err(EmitError::NotLowerable { .. })));
    Ok(())
}
