//! `arca tokenize` and `arca detokenize`: Equal-Info Window token files.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use arca_runtime::Model;
use arca_runtime::eiw::{self, Schedule, TokenFile, Tokenizer, Windows};

use crate::Ui;
use crate::args::TokenizeArgs;
use crate::io::{Input, Output};
use crate::models;

/// The inputs, the output, and the loaded network.
struct Job {
    inputs: Vec<Input>,
    out: Output,
    model: Model,
}

fn job(args: &TokenizeArgs, ui: &Ui, binary_out: bool) -> Result<Job> {
    let inputs = Input::from_args(&args.input);
    if inputs.iter().filter(|i| matches!(i, Input::Stdin)).count() > 1 {
        bail!("stdin ('-') can be read only once");
    }
    let out = if args.output.as_os_str() == "-" {
        Output::Stdout
    } else {
        Output::File(args.output.clone())
    };
    out.check(args.force, binary_out)?;
    let model = models::load(args.model.as_deref(), ui.load_options())?;
    match &model {
        Model::Network { .. } => {}
        Model::Circuit { bundle, .. } => bail!(
            "Equal-Info Windows need a network model; '{}' is an image model (a probabilistic circuit)",
            bundle.manifest().name
        ),
        Model::None => bail!("Equal-Info Windows need a network model, not `none`"),
    }
    Ok(Job { inputs, out, model })
}

fn network(model: &Model) -> &dyn arca_runtime::engine::ByteModel {
    match model {
        Model::Network { network, .. } => network.as_ref(),
        // `job` refused the others.
        _ => unreachable!("checked in job()"),
    }
}

fn schedule(args: &TokenizeArgs) -> Schedule {
    Schedule {
        threads: args.threads,
        ..Schedule::default()
    }
}

fn summary(text: usize, windows: usize, bits: u32) -> String {
    let bpb = if text == 0 {
        0.0
    } else {
        (windows as f64 * f64::from(bits)) / text as f64
    };
    format!("{text} bytes <-> {windows} windows of {bits} bits ({bpb:.3} bits/byte)")
}

fn report(ui: &Ui, out: &Output, label: &str, line: &str, start: Instant) {
    if !ui.quiet && (matches!(out, Output::File(_)) || ui.verbose > 0) {
        let mut line = format!("{label}: {line}");
        if ui.verbose > 0 {
            line.push_str(&format!(", {:.2} s", start.elapsed().as_secs_f64()));
        }
        errln!("{line}");
    }
}

/// `arca tokenize`: every input is one document of the token file (windows never cross from
/// one into the next); `--raw` writes the bare tokens of a single input.
pub fn tokenize(args: &TokenizeArgs, ui: &Ui) -> Result<()> {
    let bits = args
        .eiw
        .context("tokenize needs the window size: --eiw W")?;
    if args.raw && args.input.len() > 1 {
        bail!("--raw writes the tokens of one input (a raw file has no document boundaries)");
    }
    let job = job(args, ui, true)?;
    let tok = Tokenizer::new(network(&job.model), bits)?;
    let texts = job
        .inputs
        .iter()
        .map(Input::read)
        .collect::<Result<Vec<_>>>()?;
    let label = match job.inputs.as_slice() {
        [one] => one.to_string(),
        many => format!("{} files", many.len()),
    };
    let start = Instant::now();
    let docs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let windows = tok
        .encode_documents(&docs, &schedule(args))
        .with_context(|| label.clone())?;
    let file = TokenFile::new(job.model.id(), tok.segment(), &windows)?;
    let bytes = if args.raw {
        file.windows.to_token_file()
    } else {
        file.to_bytes()
    };
    job.out
        .write(&bytes, args.force, None)
        .with_context(|| label.clone())?;
    let text_len = texts.iter().map(Vec::len).sum();
    report(
        ui,
        &job.out,
        &label,
        &summary(text_len, file.windows.len(), bits),
        start,
    );
    Ok(())
}

/// `arca detokenize`: a token file back to its text (its documents, one after the other).
pub fn detokenize(args: &TokenizeArgs, ui: &Ui) -> Result<()> {
    if args.input.len() > 1 {
        bail!("detokenize reads one token file");
    }
    let job = job(args, ui, false)?;
    let input = &job.inputs[0];
    let label = input.to_string();
    let data = input.read()?;
    let (windows, runs_file) = if args.raw {
        let bits = args
            .eiw
            .context("a raw token file does not say its window size: give --eiw W")?;
        (
            Windows::from_token_file(bits, &data).with_context(|| label.clone())?,
            None,
        )
    } else {
        if !TokenFile::sniff(&data) {
            bail!(
                "{label}: not an arca token file (no ATOK header); for the bare tokens that \
                 `arca tokenize --raw` writes, give --raw and --eiw W"
            );
        }
        let file = TokenFile::parse(&data).with_context(|| label.clone())?;
        file.check(args.eiw, job.model.id(), job.model.name())
            .with_context(|| label.clone())?;
        (file.windows.clone(), Some(file))
    };
    // A token file says which window rules made it; bare tokens are this build's.
    let revision = runs_file.as_ref().map_or(eiw::REVISION, |f| f.rules);
    let tok = Tokenizer::new(network(&job.model), windows.bits())?
        .with_revision(revision)
        .with_context(|| label.clone())?;
    let start = Instant::now();
    let text = match &runs_file {
        Some(file) => tok
            .decode_runs(&file.documents(), &schedule(args))
            .with_context(|| label.clone())?
            .concat(),
        None => tok
            .decode(&windows, &schedule(args))
            .with_context(|| label.clone())?,
    };
    job.out
        .write(&text, args.force, None)
        .with_context(|| label.clone())?;
    report(
        ui,
        &job.out,
        &label,
        &summary(text.len(), windows.len(), windows.bits()),
        start,
    );
    Ok(())
}
