//! `arca inspect MODEL`: what a model is. An embedded model or a `.arcm` bundle prints its
//! manifest as `key: value` lines (and, for circuits, the structure the coder reads; for
//! `hf-decoder` bundles, what arca-hf reads from them); a model directory exported by optimum
//! prints what arca-hf recognises in it and whether tract can run it.

use std::path::Path;

use anyhow::{Context, Result};
use arca_runtime::circuit::Circuit;
use arca_runtime::{ModelKind, shipped};

use crate::args::InspectArgs;

/// `arca inspect MODEL`.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    let path = Path::new(&args.model);
    if path.is_dir() {
        return inspect_dir(path);
    }
    let bundle = shipped::resolve(&args.model)
        .with_context(|| format!("cannot load model '{}'", args.model))?;
    let manifest_lines = bundle.manifest_lines();
    for (key, value) in &manifest_lines {
        outln!("{key}: {value}");
    }
    match bundle.manifest().kind {
        ModelKind::Circuit => circuit_lines(&bundle)?,
        ModelKind::HfDecoder => hf_bundle_lines(path, &bundle, &manifest_lines)?,
        _ => {}
    }
    Ok(())
}

fn circuit_lines(bundle: &arca_runtime::Bundle) -> Result<()> {
    // The structure the native coder reads, checked as it loads it.
    match Circuit::load(bundle) {
        Ok(c) => {
            let (h, w) = c.image_size();
            outln!(
                "circuit: hidden Chow-Liu tree, {h}x{w} pixels, {} latent states per pixel, 256 values",
                c.states()
            );
            outln!(
                "circuit tree: root pixel {} (row {}, column {}), {} levels",
                c.root(),
                c.root() / w,
                c.root() % w,
                c.levels()
            );
            outln!(
                "circuit coding order: depth-first pre-order, children in increasing pixel index"
            );
        }
        Err(e) => outln!("circuit: cannot be used: {e}"),
    }
    Ok(())
}

/// A model directory: everything arca-hf finds in it.
#[cfg(feature = "tract")]
fn inspect_dir(dir: &Path) -> Result<()> {
    let source = arca_hf::ModelSource::open(dir)?;
    for (key, value) in arca_hf::describe(&source)? {
        outln!("{key}: {value}");
    }
    Ok(())
}

/// An `hf-decoder` bundle: after its manifest, what arca-hf reads from it (keys the manifest
/// already printed are not repeated).
#[cfg(feature = "tract")]
fn hf_bundle_lines(
    path: &Path,
    bundle: &arca_runtime::Bundle,
    printed: &[(String, String)],
) -> Result<()> {
    let source = arca_hf::ModelSource::Bundle(path.to_owned(), bundle.clone());
    for (key, value) in arca_hf::describe(&source)? {
        if !printed.iter().any(|(k, _)| *k == key) {
            outln!("{key}: {value}");
        }
    }
    Ok(())
}

#[cfg(not(feature = "tract"))]
fn inspect_dir(dir: &Path) -> Result<()> {
    anyhow::bail!(
        "'{}' is a directory: this build of arca reads model directories with tract, which it \
         does not have (build with the `tract` feature, on by default)",
        dir.display()
    )
}

#[cfg(not(feature = "tract"))]
fn hf_bundle_lines(
    _path: &Path,
    _bundle: &arca_runtime::Bundle,
    _printed: &[(String, String)],
) -> Result<()> {
    outln!("tract: this build of arca has no tract to run hf-decoder bundles");
    Ok(())
}
