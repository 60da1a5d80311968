//! A build without tract runs what the native engine lowers, and says what it cannot run.

use super::*;

#[test]
fn text_small_runs_and_tiny_is_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
    let bundle = crate::shipped::resolve("text-small")?;
    let model = TextModel::load(&bundle)?;
    assert_eq!(
        (model.engine(), model.device()),
        (Engine::Native, Device::Cpu)
    );
    let model = TextModel::load_on(&bundle, Device::Auto)?;
    assert_eq!(model.device(), Device::Cpu);

    let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny.arcm");
    let msg = TextModel::load(&Bundle::open(tiny)?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("needs tract") && msg.contains("no tract engine"),
        "{msg}"
    );
    for (options, want) in [
        (
            LoadOptions {
                device: Device::Cpu,
                engine: Engine::Tract,
            },
            "cannot load model `text-small` with tract",
        ),
        (
            LoadOptions {
                device: Device::Cuda,
                engine: Engine::Auto,
            },
            "device `cuda` is not available: this build of arca has no tract engine",
        ),
    ] {
        let msg = TextModel::load_with(&bundle, options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.starts_with(want), "{msg}");
    }
    Ok(())
}
