//! Equal-Info Window coding speed: one lane at a time versus batched lanes, in one run.
//!
//! ```text
//! cargo run --release -p arca-runtime --example eiw_speed -- FILE [W] [RUNS] [native|tract]
//! ```
//!
//! Encodes and decodes FILE (default W = 32) with the default text model under four schedules:
//! one lane at a time on one thread (the reference), batched lanes on one thread, one lane at a
//! time on every core, and batched lanes on every core. Every schedule must give the reference's
//! windows byte for byte (checked), and every decode must give FILE back. Prints the median of
//! RUNS (3) runs per schedule and the speed-up over the reference, measured in this run.

use std::time::Instant;

use arca_runtime::eiw::{Schedule, Tokenizer};
use arca_runtime::shipped;
use arca_runtime::stats::median;
use arca_runtime::{Engine, LoadOptions, TextModel};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or("usage: eiw_speed FILE [W] [RUNS]")?;
    let bits: u32 = args.get(1).map_or(Ok(32), |s| s.parse())?;
    let runs: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let engine = match args.get(3).map(String::as_str) {
        None | Some("native") => Engine::Native,
        Some("tract") => Engine::Tract,
        Some(other) => return Err(format!("unknown engine '{other}' (native or tract)").into()),
    };
    let text = std::fs::read(path)?;
    let bundle = shipped::resolve(shipped::default_compressor())?;
    let options = LoadOptions {
        engine,
        ..LoadOptions::default()
    };
    let model = TextModel::load_with(&bundle, options)?;
    let tok = Tokenizer::new(&model, bits)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let schedules = [
        ("one lane, 1 thread", Schedule::one_at_a_time()),
        (
            "batched, 1 thread",
            Schedule {
                threads: 1,
                ..Schedule::default()
            },
        ),
        (
            "one lane per thread",
            Schedule {
                threads: cores,
                batch: 1,
            },
        ),
        (
            "batched, all threads",
            Schedule {
                threads: cores,
                ..Schedule::default()
            },
        ),
    ];
    println!(
        "{path}: {} bytes, W = {bits}, {engine} engine, {cores} cores, median of {runs} runs",
        text.len()
    );
    println!(
        "| schedule | encode s | decode s | encode KB/s | decode KB/s | speed-up enc | speed-up dec |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut reference = None;
    let mut base = (0.0, 0.0);
    for (name, schedule) in schedules {
        let mut enc = Vec::new();
        let mut dec = Vec::new();
        let mut windows = None;
        for _ in 0..runs {
            let t = Instant::now();
            let w = tok.encode(&text, &schedule)?;
            enc.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let back = tok.decode(&w, &schedule)?;
            dec.push(t.elapsed().as_secs_f64());
            if back != text {
                return Err(format!("{name}: decode differs from the input").into());
            }
            windows = Some(w);
        }
        let windows = windows.ok_or("RUNS must be at least 1")?;
        match &reference {
            None => reference = Some(windows),
            Some(r) if *r != windows => {
                return Err(format!("{name}: windows differ from one-at-a-time").into());
            }
            Some(_) => {}
        }
        let (e, d) = (median(&enc), median(&dec));
        if base == (0.0, 0.0) {
            base = (e, d);
        }
        let kb = text.len() as f64 / 1000.0;
        println!(
            "| {name} | {e:.2} | {d:.2} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
            kb / e,
            kb / d,
            base.0 / e,
            base.1 / d
        );
    }
    let r = reference.ok_or("no schedule ran")?;
    println!(
        "windows identical under every schedule: {} windows, {:.3} bits/byte",
        r.len(),
        8.0 * r.as_bytes().len() as f64 / text.len() as f64
    );
    Ok(())
}
