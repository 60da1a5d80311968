//! `arca tokenize` and `arca detokenize`: Equal-Info Window token files.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use arca_runtime::eiw::{Schedule, Tokenizer, Windows};

use crate::Ui;
use crate::args::TokenizeArgs;
use crate::io::{Input, Output};
use arca_runtime::Model;

use crate::models;

/// Reads the input, loads the model and builds the tokenizer; `f` does the rest.
fn with_tokenizer(
    args: &TokenizeArgs,
    ui: &Ui,
    binary_out: bool,
    f: impl FnOnce(&Tokenizer<'_>, &Schedule, Vec<u8>) -> Result<(Vec<u8>, String)>,
) -> Result<()> {
    let input = Input::from_args(std::slice::from_ref(&args.input))
        .pop()
        .context("no input")?;
    let out = if args.output.as_os_str() == "-" {
        Output::Stdout
    } else {
        Output::File(args.output.clone())
    };
    out.check(args.force, binary_out)?;
    let data = input.read()?;
    let loaded = models::load(args.model.as_deref(), ui.load_options())?;
    let network = match &loaded {
        Model::Network { network, .. } => network,
        Model::Circuit { bundle, .. } => bail!(
            "Equal-Info Windows need a network model; '{}' is an image model (a probabilistic circuit)",
            bundle.manifest().name
        ),
        Model::None => bail!("Equal-Info Windows need a network model, not `none`"),
    };
    let tok = Tokenizer::new(network.as_ref(), args.eiw)?;
    let schedule = Schedule {
        threads: args.threads,
        ..Schedule::default()
    };
    let start = Instant::now();
    let label = input.to_string();
    let (result, summary) = f(&tok, &schedule, data).with_context(|| label.clone())?;
    out.write(&result, args.force, None)
        .with_context(|| label.clone())?;
    if !ui.quiet && (matches!(out, Output::File(_)) || ui.verbose > 0) {
        let mut line = format!("{label}: {summary}");
        if ui.verbose > 0 {
            line.push_str(&format!(", {:.2} s", start.elapsed().as_secs_f64()));
        }
        errln!("{line}");
    }
    Ok(())
}

fn summary(text: usize, windows: usize, bits: u32) -> String {
    let bpb = if text == 0 {
        0.0
    } else {
        (windows as f64 * f64::from(bits)) / text as f64
    };
    format!("{text} bytes <-> {windows} windows of {bits} bits ({bpb:.3} bits/byte)")
}

/// `arca tokenize`.
pub fn tokenize(args: &TokenizeArgs, ui: &Ui) -> Result<()> {
    with_tokenizer(args, ui, true, |tok, schedule, text| {
        let windows = tok.encode(&text, schedule)?;
        let line = summary(text.len(), windows.len(), tok.bits());
        Ok((windows.to_token_file(), line))
    })
}

/// `arca detokenize`.
pub fn detokenize(args: &TokenizeArgs, ui: &Ui) -> Result<()> {
    with_tokenizer(args, ui, false, |tok, schedule, data| {
        let windows = Windows::from_token_file(tok.bits(), &data)?;
        let text = tok.decode(&windows, schedule)?;
        let line = summary(text.len(), windows.len(), tok.bits());
        Ok((text, line))
    })
}
