//! Load time and decoding speed of a decoder export in tract.
//!
//! ```text
//! cargo run --release -p arca-hf --example hf_bench -- tests/data/hf/llama [TOKENS]
//! ```
//!
//! Prints (stderr, llama.cpp style) the load time (parse + type + optimize + plan), the prompt
//! call, the speed of one-token calls (greedy, the median of 5 runs) and of 8-token calls
//! (what a speculative verifier makes).

use std::path::PathBuf;
use std::time::Instant;

use arca_hf::{HfError, HfModel};

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), HfError> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "tests/data/hf/llama".into()));
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);

    let mut loads = Vec::new();
    let mut model = None;
    for _ in 0..3 {
        let start = Instant::now();
        model = Some(HfModel::open(&dir)?);
        loads.push(start.elapsed().as_secs_f64());
    }
    let Some(model) = model else { return Ok(()) };
    let tokenizer = model.tokenizer()?;
    let prompt = tokenizer.encode(b"The old man")?;
    let mut logits = Vec::new();

    let mut prompt_s = Vec::new();
    let mut one = Vec::new();
    for _ in 0..5 {
        let mut d = model.session();
        let start = Instant::now();
        d.forward(&prompt, &mut logits)?;
        prompt_s.push(start.elapsed().as_secs_f64());
        let mut next = argmax(&logits[logits.len() - d.vocab()..]);
        let start = Instant::now();
        for _ in 0..n.min(d.context_len() - prompt.len()) {
            d.forward(&[next], &mut logits)?;
            next = argmax(&logits);
        }
        one.push(n as f64 / start.elapsed().as_secs_f64());
    }

    let mut eight = Vec::new();
    for _ in 0..5 {
        let mut d = model.session();
        d.forward(&prompt, &mut logits)?;
        let calls = n / 8;
        let start = Instant::now();
        for c in 0..calls {
            let block: Vec<u32> = (0..8).map(|i| ((c * 8 + i) * 37 % 1000) as u32).collect();
            d.forward(&block, &mut logits)?;
        }
        eight.push((calls * 8) as f64 / start.elapsed().as_secs_f64());
    }
    eprintln!("model: {} ({})", model.name(), dir.display());
    eprintln!(
        "load (parse + optimize + plan): {:.1} ms (median of 3)",
        median(loads) * 1e3
    );
    eprintln!(
        "prompt of {} tokens: {:.2} ms",
        prompt.len(),
        median(prompt_s) * 1e3
    );
    eprintln!(
        "one-token calls: {:.0} tokens per second ({n} tokens, median of 5)",
        median(one)
    );
    eprintln!(
        "8-token calls: {:.0} tokens per second (median of 5)",
        median(eight)
    );
    Ok(())
}
