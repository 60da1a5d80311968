//! Load time and peak memory: a `.arcm` bundle through `TextModel::load` (with the native engine
//! and with tract) versus tract's plain loader on the original `.onnx`.
//!
//! ```text
//! cargo run --release -p arca-runtime --example load_bench -- models/text-small.arcm models/text-small.onnx [RUNS]
//! ```
//!
//! Each measurement runs in a fresh child process (this binary with `--child`), which reports
//! the wall time from before opening the file to a runnable plan, and its peak resident memory
//! (`VmHWM` from `/proc/self/status`, Linux only). The parent prints the median of RUNS (5)
//! runs of each.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use arca_runtime::bundle::Bundle;
use arca_runtime::engine::{Engine, LoadOptions, TextModel};
use arca_runtime::stats::median;
use tract_onnx::prelude::*;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn child(mode: &str, path: &Path) -> Result {
    let before = vm_hwm_kib();
    let t0 = Instant::now();
    match mode {
        "open" => {
            let bundle = Bundle::open(path)?;
            std::hint::black_box(&bundle);
        }
        "arcm" | "arcm-tract" => {
            let bundle = Bundle::open(path)?;
            let engine = if mode == "arcm" {
                Engine::Native
            } else {
                Engine::Tract
            };
            let options = LoadOptions {
                engine,
                ..LoadOptions::default()
            };
            let model = TextModel::load_with(&bundle, options)?;
            std::hint::black_box(&model);
        }
        "onnx" => {
            let plan = tract_onnx::onnx()
                .model_for_path(path)?
                .into_optimized()?
                .into_runnable()?;
            std::hint::black_box(&plan);
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("secs={secs} hwm_kib={} start_kib={before}", vm_hwm_kib());
    Ok(())
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (Some(mode), Some(path)) = (args.get(2), args.get(3)) else {
            return Err("usage: load_bench --child MODE PATH".into());
        };
        return child(mode, Path::new(path));
    }
    let (Some(arcm), Some(onnx)) = (args.get(1), args.get(2)) else {
        return Err("usage: load_bench MODEL.arcm MODEL.onnx [RUNS]".into());
    };
    let runs: usize = args.get(3).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let exe = std::env::current_exe()?;
    println!("| loader | median load ms | median peak RSS MiB | process start RSS MiB |");
    println!("| --- | --- | --- | --- |");
    for (mode, path) in [
        ("open", arcm),
        ("arcm", arcm),
        ("arcm-tract", arcm),
        ("onnx", onnx),
    ] {
        let (mut secs, mut hwm, mut start) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let out = Command::new(&exe).args(["--child", mode, path]).output()?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
            }
            let text = String::from_utf8_lossy(&out.stdout);
            for field in text.split_whitespace() {
                let (k, v) = field.split_once('=').ok_or("bad child output")?;
                let v: f64 = v.parse()?;
                match k {
                    "secs" => secs.push(v * 1e3),
                    "hwm_kib" => hwm.push(v / 1024.0),
                    _ => start.push(v / 1024.0),
                }
            }
        }
        let label = match mode {
            "open" => "Bundle::open alone (map + all checks)",
            "arcm" => "Bundle::open + TextModel::load, native engine",
            "arcm-tract" => "Bundle::open + TextModel::load, tract engine",
            _ => "tract model_for_path + into_optimized + into_runnable",
        };
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} |",
            median(&secs),
            median(&hwm),
            median(&start)
        );
    }
    Ok(())
}
