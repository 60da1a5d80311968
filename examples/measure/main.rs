//! Measures the text codec on files: bits per byte, compress and decompress speed, with the
//! network and, for comparison, with the context models alone. Every stream is decoded and
//! checked against its input.
//!
//! ```text
//! cargo run --release -p arca-examples --example measure -- [-m MODEL] [--ablation] [--engines] [-T N] FILE...
//! ```
//! `--ablation` adds the context models alone; `--engines` adds the same codec with the network
//! on tract instead of the native engine (same bytes, other speed), in the same run.
//! MODEL is a shipped model name, a `.arcm` bundle, or an `.onnx` file with its `.json` spec
//! beside it (packed on the fly).

use std::time::Instant;

use arca_runtime::bundle::Bundle;
use arca_runtime::codec::{Options, TextCodec};
use arca_runtime::engine::{Engine, LoadOptions, TextModel};

fn load(model: &str) -> Result<Bundle, Box<dyn std::error::Error>> {
    if let Some(stem) = model.strip_suffix(".onnx") {
        let spec = format!("{stem}.json");
        let bytes = arca_codegen::pack_to_bytes(model.as_ref(), spec.as_ref())?;
        return Ok(Bundle::from_bytes(bytes)?);
    }
    Ok(arca_runtime::shipped::resolve(model)?)
}

fn run(
    codec: &TextCodec,
    label: &str,
    data: &[u8],
    opts: &Options,
) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let packed = codec.compress(data, opts, &|_| {})?;
    let tc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let unpacked = codec.decompress(&packed, opts, &|_| {})?;
    let td = t.elapsed().as_secs_f64();
    if unpacked != data {
        return Err("round trip mismatch".into());
    }
    let bpb = 8.0 * packed.len() as f64 / data.len().max(1) as f64;
    let kb = data.len() as f64 / 1024.0;
    println!(
        "  {label:<12} {:>9} bytes  {bpb:.4} bpb  compress {:.1} KB/s  decompress {:.1} KB/s",
        packed.len(),
        kb / tc,
        kb / td
    );
    Ok(bpb)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut model = arca_runtime::shipped::default_compressor().to_owned();
    let mut ablation = false;
    let mut engines = false;
    let mut opts = Options::default();
    let mut files = Vec::new();
    while !args.is_empty() {
        let a = args.remove(0);
        match a.as_str() {
            "-m" if !args.is_empty() => model = args.remove(0),
            "-T" if !args.is_empty() => opts.threads = args.remove(0).parse()?,
            "-B" if !args.is_empty() => opts.block_size = args.remove(0).parse()?,
            "--ablation" => ablation = true,
            "--engines" => engines = true,
            _ => files.push(a),
        }
    }
    let bundle = load(&model)?;
    let t = Instant::now();
    let net = TextModel::load(&bundle)?;
    println!(
        "model {} (id {}), {} engine, built in {:.1} ms",
        bundle.manifest().name,
        bundle.id_hex(),
        net.engine(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let with = TextCodec::new(&net, bundle.id(), &bundle.manifest().name);
    let tract_net = if engines {
        let options = LoadOptions {
            engine: Engine::Tract,
            ..LoadOptions::default()
        };
        Some(TextModel::load_with(&bundle, options)?)
    } else {
        None
    };
    let on_tract = tract_net
        .as_ref()
        .map(|m| TextCodec::new(m, bundle.id(), &bundle.manifest().name));
    let without = TextCodec::without_network();
    for f in files {
        let data = std::fs::read(&f)?;
        println!("{f} ({} bytes)", data.len());
        let bpb = run(&with, &format!("arca/{}", net.engine()), &data, &opts)?;
        if let Some(codec) = &on_tract {
            let other = run(codec, "arca/tract", &data, &opts)?;
            if other != bpb {
                return Err("the engines gave different sizes".into());
            }
        }
        if ablation {
            run(&without, "cm-only", &data, &opts)?;
        }
    }
    Ok(())
}
