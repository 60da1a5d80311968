//! `arca models` and `arca pack`: models rather than streams (`arca inspect` is `inspect.rs`).

use anyhow::{Context, Result};
use arca_runtime::shipped;

use crate::Ui;
use crate::args::PackArgs;
use crate::sizes;

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

/// `arca pack MODEL.onnx --manifest SPEC.json -o OUT.arcm`, or `arca pack DIR -o OUT.arcm`
/// for a model directory exported by optimum (an `hf-decoder` bundle, see arca-hf).
#[cfg(feature = "tract")]
pub fn pack(args: &PackArgs, ui: &Ui) -> Result<()> {
    let out = crate::io::Output::File(args.output.clone());
    out.check(args.force, false)?;
    if args.onnx.is_dir() {
        if args.manifest.is_some() {
            anyhow::bail!(
                "'{}' is a model directory: its config.json is the manifest, --manifest is for an ONNX file",
                args.onnx.display()
            );
        }
        let bytes = match args.weights.as_deref() {
            Some(word) => {
                let precision = arca_generate::Precision::from_word(word)
                    .with_context(|| format!("--weights {word}: not f32, f16 or int8"))?;
                arca_generate::pack_llama(&args.onnx, precision)
            }
            .with_context(|| {
                format!(
                    "cannot pack '{}' with --weights {word}",
                    args.onnx.display()
                )
            })?,
            None => arca_hf::pack(&args.onnx)
                .with_context(|| format!("cannot pack '{}'", args.onnx.display()))?,
        };
        let bundle = arca_runtime::Bundle::from_bytes(bytes.clone())
            .context("the packed bundle does not read back")?;
        arca_codegen::write_file_atomically(&args.output, &bytes)?;
        if !ui.quiet {
            let m = bundle.manifest();
            errln!(
                "packed {} ({}, id {}) into {}: {} bytes, {} parameters",
                m.name,
                args.weights
                    .as_deref()
                    .map_or("hf-decoder, for tract".to_owned(), |w| format!(
                        "native Llama, {w} weights"
                    )),
                bundle.short_id(),
                args.output.display(),
                bytes.len(),
                m.parameters
            );
        }
        return Ok(());
    }
    if args.weights.is_some() {
        anyhow::bail!(
            "--weights packs a Llama-family model directory (config.json, model.safetensors, tokenizer.json); '{}' is not a directory",
            args.onnx.display()
        );
    }
    let Some(manifest) = &args.manifest else {
        anyhow::bail!(
            "packing the ONNX file '{}' needs --manifest SPEC.json (a model directory with config.json needs none)",
            args.onnx.display()
        );
    };
    let report = arca_codegen::pack(&args.onnx, manifest, &args.output)
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
