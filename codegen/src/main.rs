//! `arca-codegen`: the host-side tools as a command.
//!
//! ```text
//! arca-codegen pack MODEL.onnx --manifest MODEL.json -o MODEL.arcm
//! arca-codegen emit MODEL.arcm -o model.rs      # no_std Rust for a microcontroller
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use arca_runtime::bundle::Bundle;
use clap::{Parser, Subcommand};

/// Host-side tools of arca: pack ONNX models into bundles, emit bundles as no_std Rust.
#[derive(Debug, Parser)]
#[command(name = "arca-codegen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pack an ONNX model and its JSON manifest spec into a .arcm bundle
    Pack {
        /// The ONNX model
        onnx: PathBuf,
        /// The manifest spec (JSON)
        #[arg(long, value_name = "SPEC")]
        manifest: PathBuf,
        /// The bundle to write
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
    /// Emit a compressor bundle as a no_std Rust module: weights in static arrays (flash),
    /// integer inference with fixed buffers, the runtime's logits bit for bit. Prints the flash
    /// and RAM it takes on stderr
    Emit {
        /// The compressor bundle (.arcm)
        bundle: PathBuf,
        /// The Rust file to write (written whole, then renamed; default stdout)
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Pack {
            onnx,
            manifest,
            output,
        } => {
            let report = arca_codegen::pack(&onnx, &manifest, &output)?;
            eprintln!("{report}");
        }
        Command::Emit { bundle, output } => {
            let b = Bundle::open(&bundle)
                .map_err(|e| format!("cannot open {}: {e}", bundle.display()))?;
            let (source, report) = arca_codegen::emit::emit_with_report(&b)?;
            match &output {
                Some(out) => arca_codegen::write_file_atomically(out, source.as_bytes())?,
                None => print!("{source}"),
            }
            eprintln!(
                "emitted {}: {} bytes of static data (flash), {} bytes of scratch (RAM), {} multiply-adds per byte",
                b.manifest().name,
                report.static_bytes,
                report.scratch_bytes,
                report.macs
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arca-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
