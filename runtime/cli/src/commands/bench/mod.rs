//! `arca bench`: bits per byte and speed of arca against the classic compressors, as a
//! markdown report and an optional SVG plot.
//!
//! Every input is compressed and decompressed by every method: arca in-process (plain, and
//! Equal-Info Windows of each `--eiw` size), and each classic tool found on `PATH` as a
//! subprocess (`gzip -9`, `bzip2 -9`, `xz -9e`, `zstd --ultra -22`, `brotli -q 11`) reading a
//! temporary copy of the input. Each direction is timed with the wall clock (the median of
//! `--runs` runs) and every round trip is checked byte for byte.
//!
//! ```text
//! arca bench --eiw 16,64 --tools gzip,xz book1 book2 -o report.md --svg report.svg
//! ```
//!
//! A round trip that does not give the input back is reported in the table (`FAILED`), and the
//! command then exits with status 1.
//!
//! The command is split by concern: this file holds the entry point (checking the arguments,
//! loading the model, putting the pieces together); `harness.rs` runs and times the methods and
//! checks the round trips; `report.rs` writes the markdown; `plot.rs` draws the SVG (only with
//! the `plot` feature, a default one); `results.rs` holds the measurements they all share.

mod harness;
#[cfg(feature = "plot")]
mod plot;
mod report;
mod results;

use std::fs;

use anyhow::{Context, Result, bail};
use arca_runtime::Model;

use self::harness::{Bench, find_on_path, tool_compress, tool_version};
use self::report::{RunInfo, command_line, fmt_bpb, fmt_speed, machine, names, report, utc_now};
use self::results::{Method, bits_per_byte, kb_per_sec};
use crate::Ui;
use crate::args::{BenchArgs, TextCodecChoice};
use crate::io::Output;
use crate::models;

/// `arca bench`.
pub fn bench(args: &BenchArgs, ui: &Ui) -> Result<()> {
    // Everything that can be wrong with the arguments fails here, before any work.
    let report_out = (args.output.as_os_str() != "-").then(|| Output::File(args.output.clone()));
    if let Some(out) = &report_out {
        out.check(args.force, false)?;
    }
    let svg_out = match &args.svg {
        // Board builds (`--no-default-features`) leave plotters out.
        Some(_) if !cfg!(feature = "plot") => bail!(
            "this arca was built without plot support (cargo feature `plot`); run it without --svg"
        ),
        Some(p) if p.as_os_str() == "-" => bail!("--svg needs a file name (not `-`)"),
        Some(p) => Some(Output::File(p.clone())),
        None => None,
    };
    if let Some(out) = &svg_out {
        out.check(args.force, false)?;
    }
    if let (Some(report), Some(svg)) = (&report_out, &args.svg)
        && matches!(report, Output::File(p) if p == svg)
    {
        bail!("the report and the plot cannot both be '{}'", svg.display());
    }
    let mut methods = Vec::new();
    if !args.no_plain {
        methods.push(Method::Arca);
    }
    methods.extend(args.eiw.0.iter().map(|&w| Method::ArcaEiw(w)));
    let mut missing = Vec::new();
    let mut tool_versions = Vec::new();
    for &tool in &args.tools.0 {
        let (program, _) = tool_compress(tool);
        if find_on_path(program).is_some() {
            methods.push(Method::Tool(tool));
            let version =
                tool_version(tool).unwrap_or_else(|| format!("{program} (version unknown)"));
            tool_versions.push(version);
        } else {
            missing.push(program);
            if !ui.quiet {
                errln!("arca: {program} is not installed; its rows are left out");
            }
        }
    }
    if methods.is_empty() {
        bail!("nothing to measure: every method is turned off or not installed");
    }
    let data: Vec<Vec<u8>> = args
        .files
        .iter()
        .map(|p| fs::read(p).with_context(|| format!("cannot read '{}'", p.display())))
        .collect::<Result<_>>()?;

    let wants_arca = methods.iter().any(|m| m.is_arca());
    let loaded = if wants_arca {
        Some(models::load(args.model.as_deref(), ui.load_options())?)
    } else {
        None
    };
    let nn = match args.codec {
        Some(choice) => choice == TextCodecChoice::Nn,
        None => loaded.as_ref().is_some_and(Model::prefers_nn),
    };
    if nn && matches!(loaded, Some(Model::None)) {
        bail!("the nn codec needs a network; -m none has no network");
    }
    let block_size = args.block_size.unwrap_or(if nn {
        arca_runtime::codec::NN_BLOCK_SIZE
    } else {
        arca_runtime::codec::DEFAULT_BLOCK_SIZE
    });
    let arca = match &loaded {
        Some(Model::Network { bundle, network }) => format!(
            "arca {}, model {} (id {}), plain codec {}, engine {}, device {}, threads {}",
            env!("CARGO_PKG_VERSION"),
            bundle.manifest().name,
            bundle.id_hex(),
            if nn { "text-nn" } else { "text-cm" },
            network.engine(),
            network.device(),
            threads_label(args.threads)
        ),
        Some(Model::None) => format!(
            "arca {}, no network (context models alone), threads {}",
            env!("CARGO_PKG_VERSION"),
            threads_label(args.threads)
        ),
        Some(Model::Circuit { bundle, .. }) => bail!(
            "model '{}' codes images; arca bench measures text (images: tools/bench-images)",
            bundle.manifest().name
        ),
        None => format!("arca {} (no arca rows)", env!("CARGO_PKG_VERSION")),
    };
    if matches!(loaded, Some(Model::None))
        && methods.iter().any(|m| matches!(m, Method::ArcaEiw(_)))
    {
        bail!("Equal-Info Windows need a network model; pass --eiw none with -m none");
    }

    let scratch = tempfile::tempdir().context("cannot create a scratch folder")?;
    let bench = Bench {
        codec: loaded.as_ref().map(Model::text_codec).transpose()?,
        threads: args.threads,
        block_size,
        nn,
        runs: args.runs as usize,
        scratch: scratch.path(),
        progress: ui.progress(),
    };
    let names = names(&args.files);
    let mut rows = Vec::new();
    for (name, bytes) in names.iter().zip(&data) {
        for &method in &methods {
            let row = bench.measure(name, method, bytes)?;
            if !ui.quiet {
                errln!(
                    "{name}: {}: {} -> {} bytes, {} bits/byte, {} / {} KB/s{}",
                    method.label(),
                    row.original,
                    row.compressed,
                    fmt_bpb(bits_per_byte(row.original, row.compressed)),
                    fmt_speed(kb_per_sec(row.original, row.compress_secs)),
                    fmt_speed(kb_per_sec(row.original, row.decompress_secs)),
                    row.failure
                        .as_ref()
                        .map_or(String::new(), |f| format!(", ROUND TRIP FAILED: {f}"))
                );
            }
            rows.push(row);
        }
    }

    let ctx = RunInfo {
        date: utc_now(),
        machine: machine(),
        arca,
        command: command_line(),
        runs: bench.runs,
        tools: tool_versions,
        missing,
    };
    let doc = report(&ctx, &rows)?;
    #[cfg(feature = "plot")]
    let svg = match &svg_out {
        Some(_) => Some(plot::plot(
            &results::totals(&rows),
            &format!("bits per byte vs compression speed, {}", names.join(", ")),
        )?),
        None => None,
    };
    // Without the `plot` feature, `--svg` failed with the other arguments.
    #[cfg(not(feature = "plot"))]
    let svg: Option<String> = None;
    crate::io::write_report(report_out.as_ref(), &doc, args.force, ui.quiet)?;
    if let (Some(out), Some(svg)) = (&svg_out, &svg) {
        out.write(svg.as_bytes(), args.force, None)?;
        if !ui.quiet {
            errln!("wrote {out}");
        }
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| format!("{} ({})", r.file, r.method.label()))
        .collect();
    if !failed.is_empty() {
        bail!("round trip failed: {}", failed.join(", "));
    }
    Ok(())
}

fn threads_label(threads: usize) -> String {
    if threads == 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("0 (one per core: {cores})")
    } else {
        threads.to_string()
    }
}
