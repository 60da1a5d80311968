//! `arca generate` and `arca bench-generate`: generation with a target model, plain or
//! speculative: prose (bytes) or arithmetic (the 16 symbols of `models/arith`).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use arca_generate::{
    self as generate, CallCost, Decoder, Drafter, LookupDrafter, ModelDrafter, Options, Sampling,
    Stats, TextTokenizer,
};
use arca_runtime::arith::{self, ArithSpec};
use arca_runtime::stats::median;
use arca_runtime::{Device, Engine};

use crate::Ui;
use crate::args::{BenchGenerateArgs, Controls, GenerateArgs};
use crate::gen_model::GenModel;
use crate::io::Output;

/// `--device` either selects the CPU or is refused, never ignored (`--engine` is the models'
/// business: [`GenModel::load`]).
fn check_device(ui: &Ui) -> Result<()> {
    if ui.device == Device::Cuda {
        bail!(
            "--device cuda is not supported by generate: the native decoder and tract's decoder run on the CPU{}; use --device cpu or auto",
            if cfg!(feature = "cuda") {
                " (this build's CUDA support is for the codecs' tract models)"
            } else {
                " (and this build has no CUDA support: --features cuda)"
            }
        );
    }
    Ok(())
}

/// The threads line of the statistics: what ran, and what was asked.
fn threads_line(controls: &Controls, engine: &str) -> String {
    match controls.threads {
        Some(n) if n != 1 => {
            format!("threads   = 1 ({engine} decoder, single-threaded; -t {n} has no effect)")
        }
        _ => format!("threads   = 1 ({engine} decoder, single-threaded)"),
    }
}

fn load_pair(target: &str, drafts: &[&str], engine: Engine) -> Result<(GenModel, Vec<GenModel>)> {
    let target = GenModel::load(target, engine)?;
    let drafts = drafts
        .iter()
        .map(|d| target.load_draft(d, engine))
        .collect::<Result<Vec<_>>>()?;
    Ok((target, drafts))
}

/// The options both subcommands share: stop tokens and strings, the empty-prompt token.
fn base_options(tokenizer: &dyn TextTokenizer, controls: &Controls) -> Options {
    Options {
        stop: tokenizer.eos().into_iter().collect(),
        stop_strings: controls
            .reverse_prompt
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        empty_prompt: tokenizer.empty_prompt(),
        ..Options::default()
    }
}

/// `arca generate`.
pub fn generate(args: &GenerateArgs, ui: &Ui) -> Result<()> {
    let started = Instant::now();
    check_device(ui)?;
    let prompt = match &args.file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read prompt file '{}'", path.display()))?,
        None => args.prompt.as_bytes().to_vec(),
    };
    let drafts: Vec<&str> = args.model_draft.as_deref().into_iter().collect();
    let (target, mut drafts) = load_pair(&args.model, &drafts, ui.engine)?;
    let draft = drafts.pop();
    let tokenizer = target.tokenizer();
    let tokens = tokenizer.encode(&prompt)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let c = &args.controls;
    let options = Options {
        n: args.n,
        sampling: Sampling {
            temperature: args.temp,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
            repeat_penalty: c.repeat_penalty,
            repeat_last_n: c.repeat_last_n,
        },
        seed,
        draft_max: usize::from(args.draft_max),
        draft_start: args.draft_start,
        fixed_length: args.draft_fixed,
        ..base_options(tokenizer, c)
    };
    let mut model_drafter = draft
        .as_ref()
        .map(|d| ModelDrafter::new(d.decoder(), args.draft_p_min));
    let mut lookup = LookupDrafter::default();
    let drafter: Option<&mut dyn Drafter> = match (&mut model_drafter, args.lookup) {
        (Some(d), _) => Some(d),
        (None, true) => Some(&mut lookup),
        (None, false) => None,
    };
    let description = drafter.as_ref().map(|d| d.describe());

    let mut out = std::io::stdout().lock();
    if !args.no_echo {
        out.write_all(&prompt)?;
        out.flush()?;
    }
    let mut decoder = target.decoder();
    let stats = generate::generate(
        &mut decoder,
        drafter,
        tokenizer,
        &tokens,
        &options,
        &mut |text| {
            out.write_all(text)?;
            out.flush()
        },
    )?;
    writeln!(out)?;
    drop(out);
    if !ui.quiet {
        print_stats(&stats, &options, description.as_deref());
        errln!("{}", threads_line(c, target.engine()));
        print_perf(&stats, load_seconds, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The statistics in llama.cpp's words (its `speculative` example), then arca's extras.
fn print_stats(stats: &Stats, options: &Options, drafter: Option<&str>) {
    let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    errln!("");
    errln!(
        "encoded {:4} tokens in {:8.3} seconds, speed: {:8.3} t/s",
        stats.prompt_tokens,
        stats.prompt_seconds,
        rate(stats.prompt_tokens, stats.prompt_seconds)
    );
    errln!(
        "decoded {:4} tokens in {:8.3} seconds, speed: {:8.3} t/s",
        stats.decoded,
        stats.decode_seconds,
        rate(stats.decoded, stats.decode_seconds)
    );
    errln!("");
    if let Some(d) = drafter {
        errln!("n_draft   = {}", options.draft_max);
        errln!("n_predict = {}", stats.decoded);
        errln!("n_drafted = {}", stats.drafted);
        errln!("n_accept  = {}", stats.accepted);
        errln!("accept    = {:.3}%", 100.0 * stats.accept_rate());
        errln!("draft     = {d}, first draft length {}", stats.draft_start);
    } else {
        errln!("n_predict = {}", stats.decoded);
    }
    errln!(
        "target calls = {}, mean accepted tokens per target call = {:.3}",
        stats.target_calls,
        stats.tokens_per_call()
    );
    let s = &options.sampling;
    let penalty = if s.penalizes() {
        format!(
            " repeat-penalty {} (last {})",
            s.repeat_penalty, s.repeat_last_n
        )
    } else {
        String::new()
    };
    if !s.is_greedy() {
        errln!(
            "sampling: repeat-penalty {} (last {}) top-k {} top-p {} min-p {} temp {} seed {}",
            s.repeat_penalty,
            s.repeat_last_n,
            s.top_k,
            s.top_p,
            s.min_p,
            s.temperature,
            options.seed
        );
    } else if !penalty.is_empty() {
        errln!("sampling: greedy,{penalty}");
    }
    if stats.stopped {
        errln!("stopped by an end token or a reverse prompt");
    }
}

/// llama.cpp's perf lines: load, prompt eval, eval (target calls as runs, per-token figures
/// over the tokens decoded) and total.
fn print_perf(stats: &Stats, load_seconds: f64, total_seconds: f64) {
    let ms = |s: f64| s * 1e3;
    let per = |s: f64, n: usize| if n > 0 { ms(s) / n as f64 } else { 0.0 };
    let tps = |s: f64, n: usize| if s > 0.0 { n as f64 / s } else { 0.0 };
    errln!("llama_perf: load time = {:10.2} ms", ms(load_seconds));
    errln!(
        "llama_perf: prompt eval time = {:10.2} ms / {:5} tokens ({:8.2} ms per token, {:8.2} tokens per second)",
        ms(stats.prompt_seconds),
        stats.prompt_tokens,
        per(stats.prompt_seconds, stats.prompt_tokens),
        tps(stats.prompt_seconds, stats.prompt_tokens)
    );
    errln!(
        "llama_perf: eval time = {:10.2} ms / {:5} runs ({:8.2} ms per token, {:8.2} tokens per second)",
        ms(stats.decode_seconds),
        stats.target_calls,
        per(stats.decode_seconds, stats.decoded),
        tps(stats.decode_seconds, stats.decoded)
    );
    errln!(
        "llama_perf: total time = {:10.2} ms / {:5} tokens",
        ms(total_seconds),
        stats.prompt_tokens + stats.decoded
    );
}

/// Prompt sources: files, and the `.txt` files of directories, sorted.
fn prompt_files(from: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in from {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list '{}'", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "txt"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            bail!(
                "prompt source '{}' does not exist (the default is the validation books in ../shared/data/valid; pass --from FILE)",
                p.display()
            );
        }
    }
    if files.is_empty() {
        bail!("no .txt files to cut prompts from");
    }
    Ok(files)
}

/// `count` prompts of `len` bytes: prompt i comes from file `i % files`, at an offset spread
/// over the file and moved to the next line start.
pub fn cut_prompts(files: &[PathBuf], count: usize, len: usize) -> Result<Vec<Vec<u8>>> {
    let texts = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("cannot read '{}'", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let per_file = count.div_ceil(texts.len()).max(1);
    let mut prompts = Vec::with_capacity(count);
    for i in 0..count {
        let text = &texts[i % texts.len()];
        let slot = i / texts.len();
        let at = text.len() * (slot + 1) / (per_file + 1);
        let start = text[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(at, |p| at + p + 1);
        let prompt = text.get(start..start + len).with_context(|| {
            format!(
                "'{}' is too short for a {len}-byte prompt",
                files[i % files.len()].display()
            )
        })?;
        prompts.push(prompt.to_vec());
    }
    Ok(prompts)
}

/// What the bench runs: prompts in the target's tokens, how they were made, and for
/// arithmetic the answers a correct model writes.
struct Workload {
    prompts: Vec<Vec<u32>>,
    source: String,
    /// The answers' text.
    answers: Option<Vec<Vec<u8>>>,
}

fn workload(args: &BenchGenerateArgs, target: &GenModel) -> Result<Workload> {
    let tokenizer = target.tokenizer();
    let arith_spec = target
        .bundle()
        .filter(|b| b.manifest().kind == arca_runtime::bundle::ModelKind::Target)
        .and_then(|b| ArithSpec::of(b).ok());
    let Some(spec) = arith_spec else {
        let files = prompt_files(&args.from)?;
        return Ok(Workload {
            prompts: cut_prompts(&files, args.prompts, args.prompt_len)?
                .iter()
                .map(|p| tokenizer.encode(p))
                .collect::<Result<_, _>>()?,
            source: format!(
                "{} prompts of {} bytes cut from {}, {} tokens generated each",
                args.prompts,
                args.prompt_len,
                args.from
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                args.n
            ),
            answers: None,
        });
    };
    let problems = spec.spread_problems(args.prompts);
    let mut prompts = Vec::with_capacity(problems.len());
    let mut answers = Vec::with_capacity(problems.len());
    for p in &problems {
        prompts.push(tokenizer.encode(p.question(spec.format)?.as_bytes())?);
        answers.push(p.answer(spec.format)?.into_bytes());
    }
    let digits: Vec<usize> = problems
        .iter()
        .map(|p| arith::digits(p.a.max(p.b).into()))
        .collect();
    Ok(Workload {
        source: format!(
            "{} held-out {} problems ({}-{} digit operands, in turn; questions in the {} format), each answered up to the end token (at most {} tokens)",
            prompts.len(),
            spec.op.task(),
            digits.iter().min().unwrap_or(&0),
            digits.iter().max().unwrap_or(&0),
            spec.format,
            args.n
        ),
        prompts,
        answers: Some(answers),
    })
}

struct Method<'a> {
    label: String,
    detail: String,
    drafter: Option<Box<dyn Drafter + 'a>>,
    speeds: Vec<f64>,
    speedups: Vec<f64>,
    stats: Vec<Stats>,
    /// Per prompt: the drafter's share of the decoding time.
    draft_share: Vec<f64>,
    identical: usize,
}

impl<'a> Method<'a> {
    fn new(label: String, detail: String, drafter: Option<Box<dyn Drafter + 'a>>) -> Self {
        Method {
            label,
            detail,
            drafter,
            speeds: vec![],
            speedups: vec![],
            stats: vec![],
            draft_share: vec![],
            identical: 0,
        }
    }
}

fn run_once(
    target: &mut dyn Decoder,
    drafter: Option<&mut (dyn Drafter + '_)>,
    tokenizer: &dyn TextTokenizer,
    prompt: &[u32],
    options: &Options,
) -> Result<(Vec<u8>, Stats)> {
    let mut out = Vec::with_capacity(options.n);
    let stats = generate::generate(target, drafter, tokenizer, prompt, options, &mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok((out, stats))
}

/// `arca bench-generate`.
pub fn bench(args: &BenchGenerateArgs, ui: &Ui) -> Result<()> {
    check_device(ui)?;
    let report_out = (args.output.as_os_str() != "-").then(|| Output::File(args.output.clone()));
    if let Some(out) = &report_out {
        out.check(args.force, false)?;
    }
    let draft_specs: Vec<&str> = args.drafts.iter().map(String::as_str).collect();
    let (target, drafts) = load_pair(&args.model, &draft_specs, ui.engine)?;
    let tokenizer = target.tokenizer();
    let work = workload(args, &target)?;
    let prompts = &work.prompts;
    let c = &args.controls;
    let options = Options {
        n: args.n,
        sampling: Sampling {
            repeat_penalty: c.repeat_penalty,
            repeat_last_n: c.repeat_last_n,
            ..Sampling::GREEDY
        },
        draft_max: usize::from(args.draft_max),
        draft_start: args.draft_fixed,
        fixed_length: args.draft_fixed.is_some(),
        ..base_options(tokenizer, c)
    };
    let mut decoder = target.decoder();

    let verify_max = 16.min(decoder.context_len() - 1);
    // The curve at 64 cached tokens, and where the middle of a generation runs (attention
    // makes every token of a call dearer as the cache grows).
    let room = decoder.context_len() - verify_max - 1;
    let mean_prompt = prompts.iter().map(Vec::len).sum::<usize>() / prompts.len().max(1);
    let mut cached = vec![64.min(room)];
    let middle = (mean_prompt + args.n.min(decoder.context_len()) / 2).min(room);
    if middle != cached[0] {
        cached.push(middle);
    }
    let curves = cached
        .iter()
        .map(|&c| CallCost::measure_at(&mut decoder, c, verify_max + 1, 15))
        .collect::<Result<Vec<_>, _>>()?;
    let cost = &curves[0];
    let mut methods: Vec<Method<'_>> = vec![Method::new(
        "target only".into(),
        format!("{} ({} parameters)", target.name(), target.parameters()),
        None,
    )];
    for d in &drafts {
        let per_token = CallCost::measure(&mut d.decoder(), 1, 15)?.seconds[0];
        methods.push(Method::new(
            format!("draft {}", d.label()),
            format!(
                "{} ({} parameters, {:.3} ms/token vs target {:.3})",
                d.name(),
                d.parameters(),
                per_token * 1e3,
                cost.seconds[0] * 1e3
            ),
            Some(Box::new(ModelDrafter::new(d.decoder(), args.draft_p_min))),
        ));
    }
    if !args.no_lookup {
        let lookup = LookupDrafter::default();
        methods.push(Method::new(
            "prompt lookup".into(),
            lookup.describe(),
            Some(Box::new(lookup)),
        ));
    }

    let mut reference_outputs = work.answers.as_ref().map(|_| Vec::new());
    for (i, prompt) in prompts.iter().enumerate() {
        let mut reference: Option<Vec<u8>> = None;
        let mut base_speed = 0.0;
        for m in &mut methods {
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..args.runs {
                let (out, stats) = run_once(
                    &mut decoder,
                    m.drafter.as_deref_mut(),
                    tokenizer,
                    prompt,
                    &options,
                )?;
                times.push(stats.decode_seconds);
                last = Some((out, stats));
            }
            let (out, mut stats) = last.context("no run")?;
            m.draft_share
                .push(stats.draft_seconds / stats.decode_seconds.max(1e-12));
            stats.decode_seconds = median(&times);
            let speed = stats.speed();
            match &reference {
                None => {
                    if let Some(outs) = &mut reference_outputs {
                        outs.push(out.clone());
                    }
                    reference = Some(out);
                    base_speed = speed;
                    m.identical += 1;
                }
                Some(r) => m.identical += usize::from(*r == out),
            }
            m.speedups.push(speed / base_speed);
            m.speeds.push(speed);
            m.stats.push(stats);
        }
        if !ui.quiet && (prompts.len() <= 10 || (i + 1) % 10 == 0 || i + 1 == prompts.len()) {
            let line: Vec<String> = methods
                .iter()
                .map(|m| format!("{} {:.0} t/s", m.label, m.speeds[i]))
                .collect();
            errln!("prompt {}/{}: {}", i + 1, prompts.len(), line.join(", "));
        }
    }

    let mut doc = String::new();
    doc.push_str(&format!(
        "# Speculative generation: {}\n\nGreedy{}, {}, draft length {} (model drafts stop under top probability {}), median of {} run(s) per prompt. One thread.\n\n",
        target.name(),
        {
            let mut extra = String::new();
            if options.sampling.penalizes() {
                extra += &format!(
                    " with repeat penalty {} over the last {} tokens",
                    c.repeat_penalty, c.repeat_last_n
                );
            }
            if !c.reverse_prompt.is_empty() {
                extra += &format!(" (stopping at {:?})", c.reverse_prompt);
            }
            extra
        },
        work.source,
        match args.draft_fixed {
            Some(k) => format!("fixed at {k}"),
            None => format!("adaptive up to {}", args.draft_max),
        },
        args.draft_p_min,
        args.runs
    ));
    doc.push_str("| method | tokens/s (median) | speedup (median) | accept | tokens per target call | first draft length | time drafting | output = target's | model |\n");
    doc.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for m in &methods {
        let drafted: u64 = m.stats.iter().map(|s| s.drafted).sum();
        let accepted: u64 = m.stats.iter().map(|s| s.accepted).sum();
        let decoded: usize = m.stats.iter().map(|s| s.decoded).sum();
        let calls: u64 = m.stats.iter().map(|s| s.target_calls).sum();
        let accept = if m.drafter.is_some() && drafted > 0 {
            format!("{:.1}%", 100.0 * accepted as f64 / drafted as f64)
        } else {
            "-".into()
        };
        let starts: Vec<f64> = m.stats.iter().map(|s| s.draft_start as f64).collect();
        doc.push_str(&format!(
            "| {} | {:.0} | {:.2}x | {} | {:.2} | {} | {} | {}/{} | {} |\n",
            m.label,
            median(&m.speeds),
            median(&m.speedups),
            accept,
            decoded as f64 / calls.max(1) as f64,
            if m.drafter.is_some() {
                format!("{}", median(&starts))
            } else {
                "-".into()
            },
            if m.drafter.is_some() {
                format!("{:.0}%", 100.0 * median(&m.draft_share))
            } else {
                "-".into()
            },
            m.identical,
            prompts.len(),
            m.detail
        ));
    }
    if let (Some(answers), Some(reference)) = (&work.answers, &reference_outputs) {
        let right = answers
            .iter()
            .zip(reference)
            .filter(|(a, r)| a == r)
            .count();
        doc.push_str(&format!(
            "\nThe target's answers (greedy, up to its end token) are correct for {right} of {} problems.\n",
            answers.len()
        ));
    }
    doc.push_str(
        "\nVerify cost: a k-token target call's time over a 1-token call's (median of 15), with the tokens cached that each row says:\n\n| k |",
    );
    for k in 1..=verify_max {
        doc.push_str(&format!(" {k} |"));
    }
    doc.push_str(" 1-token call |\n| --- |");
    doc.push_str(&" ---: |".repeat(verify_max + 1));
    for (c, curve) in cached.iter().zip(&curves) {
        doc.push_str(&format!("\n| ratio, {c} cached |"));
        for k in 1..=verify_max {
            doc.push_str(&format!(" {:.2} |", curve.ratio(k)));
        }
        doc.push_str(&format!(" {:.3} ms |", curve.seconds[0] * 1e3));
    }
    doc.push('\n');
    crate::io::write_report(report_out.as_ref(), &doc, args.force, ui.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn prompts_start_at_line_starts() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.txt");
        let text: String = (0..200)
            .map(|i| format!("line {i} of the book\n"))
            .collect();
        std::fs::write(&path, &text)?;
        let prompts = cut_prompts(&[path], 3, 30)?;
        assert_eq!(prompts.len(), 3);
        for p in &prompts {
            assert!(p.starts_with(b"line "), "{:?}", String::from_utf8_lossy(p));
            assert_eq!(p.len(), 30);
        }
        assert_ne!(prompts[0], prompts[1]);
        Ok(())
    }

    #[test]
    fn missing_prompt_source_is_a_clear_error() {
        let err = prompt_files(&[Path::new("/nonexistent/valid").to_path_buf()]).unwrap_err();
        assert!(err.to_string().contains("--from"), "{err}");
    }
}
