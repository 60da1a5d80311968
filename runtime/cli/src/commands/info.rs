//! `arca inspect`, `arca models` and `arca pack`: models rather than streams.

use anyhow::{Context, Result};
use arca_runtime::circuit::Circuit;
use arca_runtime::{ModelKind, shipped};

use crate::Ui;
use crate::args::{InspectArgs, PackArgs};
use crate::sizes;

/// `arca inspect MODEL`: the manifest as `key: value` lines.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    let bundle = shipped::resolve(&args.model)
        .with_context(|| format!("cannot load model '{}'", args.model))?;
    for (key, value) in bundle.manifest_lines() {
        outln!("{key}: {value}");
    }
    if bundle.manifest().kind == ModelKind::Circuit {
        // The structure the native coder reads, checked as it loads it.
        match Circuit::load(&bundle) {
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
    }
    Ok(())
}

/// Thousands separators for parameter counts: `1234567` -> `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `arca models`: the embedded models.
pub fn list_models() -> Result<()> {
    let default = shipped::default_compressor();
    let bundles = shipped::shipped()
        .iter()
        .map(|model| {
            let bundle = model
                .bundle()
                .with_context(|| format!("embedded model '{}' is corrupted", model.name()))?;
            Ok((model.name(), bundle))
        })
        .collect::<Result<Vec<_>>>()?;
    outln!(
        "{:<2}{:<16}  {:<10}  {:>12}  {:>10}  Description",
        "",
        "Name",
        "Kind",
        "Parameters",
        "Size"
    );
    for (name, bundle) in &bundles {
        let m = bundle.manifest();
        let mark = if *name == default { "*" } else { "" };
        outln!(
            "{:<2}{:<16}  {:<10}  {:>12}  {:>10}  {}",
            mark,
            name,
            m.kind.as_str(),
            grouped(m.parameters),
            sizes::approx(bundle.as_bytes().len() as u64),
            m.description
        );
    }
    outln!("\n* the default model of `arca compress` (`-m NAME` picks another)");
    Ok(())
}

/// `arca pack MODEL.onnx --manifest SPEC.json -o OUT.arcm`.
#[cfg(feature = "tract")]
pub fn pack(args: &PackArgs, ui: &Ui) -> Result<()> {
    let out = crate::io::Output::File(args.output.clone());
    out.check(args.force, false)?;
    let report = arca_codegen::pack(&args.onnx, &args.manifest, &args.output)
        .with_context(|| format!("cannot pack '{}'", args.onnx.display()))?;
    if !ui.quiet {
        errln!("{report}");
    }
    Ok(())
}

/// `arca pack` reads ONNX with tract's schema, so builds without tract (the native-only board
/// builds) cannot pack; they run bundles made elsewhere.
#[cfg(not(feature = "tract"))]
pub fn pack(_args: &PackArgs, _ui: &Ui) -> Result<()> {
    anyhow::bail!(
        "this build of arca cannot pack models: it has no tract (build with the `tract` feature, \
         on by default)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
