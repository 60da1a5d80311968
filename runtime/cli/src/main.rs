//! `arca`: lossless compression driven by a small neural network, with a zstd-like command line.
//!
//! Every feature is a library call (`arca-runtime`, `arca-codegen`); this crate parses
//! arguments, reads and writes files (atomically), shows progress and prints errors as one line,
//! `arca: <message>`, with exit status 1.
//!
//! ```text
//! arca compress book.txt          # -> book.txt.arca
//! arca decompress book.txt.arca   # -> book.txt
//! arca list -v book.txt.arca
//! ```

/// Prints a line on stdout; a write error (a closed pipe) is returned to the caller.
macro_rules! outln {
    () => { crate::io::write_stdout(format_args!(""))? };
    ($($t:tt)*) => { crate::io::write_stdout(format_args!($($t)*))? };
}

/// Prints a line on stderr, ignoring write errors (there is nowhere left to report them).
macro_rules! errln {
    ($($t:tt)*) => { crate::io::write_stderr(format_args!($($t)*)) };
}

mod args;
mod commands;
mod gen_model;
mod io;
mod level;
mod models;
mod progress;
mod sizes;
mod ui;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
pub(crate) use ui::Ui;

fn init_logging(ui: &Ui) {
    use tracing_subscriber::EnvFilter;
    let level = match (ui.quiet, ui.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

fn run(cli: &Cli, ui: &Ui) -> anyhow::Result<()> {
    match &cli.command {
        Command::Compress(a) => commands::compress::compress(a, ui),
        Command::Decompress(a) => commands::compress::decompress(a, ui),
        Command::Test(a) => commands::compress::test(a, ui),
        Command::List(a) => commands::list::list(a, ui),
        Command::Inspect(a) => commands::inspect::inspect(a),
        Command::Models => commands::info::list_models(),
        Command::Pack(a) => commands::info::pack(a, ui),
        Command::Arith(a) => commands::arith::arith(a, ui),
        Command::Bench(a) => commands::bench::bench(a, ui),
        Command::Tokenize(a) => commands::tokenize::tokenize(a, ui),
        Command::Detokenize(a) => commands::tokenize::detokenize(a, ui),
        Command::Generate(a) => commands::generate::generate(a, ui),
        Command::BenchGenerate(a) => commands::generate::bench(a, ui),
        Command::Serve(a) => commands::serve::serve(a, ui),
    }
}

fn main() -> ExitCode {
    let argv = args::rewrite_zstd_flags(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 1.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let ui = Ui {
        verbose: cli.global.verbose,
        quiet: cli.global.quiet,
        no_progress: cli.global.no_progress,
        engine: cli.global.engine.into(),
        device: cli.global.device.into(),
    };
    init_logging(&ui);
    match run(&cli, &ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if io::is_broken_pipe(&e) => ExitCode::FAILURE,
        Err(e) if e.is::<commands::compress::Reported>() => ExitCode::FAILURE,
        Err(e) => {
            errln!("arca: {}", io::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
