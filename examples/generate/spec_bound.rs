//! What speculative decoding could gain on a target, with a draft that is free and always
//! right: an oracle that proposes the target's own greedy continuation (computed first), so
//! every draft is accepted and only the verify calls cost. With a draft model given, the oracle
//! also runs that model's proposals and throws them away: the same tokens and calls, plus what
//! drafting costs, directly and in what it does to the target's caches.
//!
//! Prompts: 128 bytes at byte 20,000 of the first 8 files (sorted) of a folder; 256 bytes
//! generated; per prompt the fastest of 5 rounds of each method (the rounds alternate methods),
//! then the median over prompts. One thread.
//!
//! ```sh
//! cargo run --release -p arca-examples --example spec_bound -- \
//!     models/gen/trained/gen-target.arcm ../shared/data/valid [models/gen/trained/gen-draft-kd-onpolicy.arcm]
//! ```

use std::error::Error;

use arca_generate::{
    Draft, Drafter, GenError, ModelDrafter, Net, Options, Rng, Sampling, TextTokenizer, Tokenizer,
    generate,
};
use arca_runtime::Bundle;
use arca_runtime::stats::median;

const LENGTHS: [usize; 7] = [1, 2, 3, 4, 5, 6, 8];
const ROUNDS: usize = 5;

/// Proposes what follows `seq` in `text` (the target's greedy output), after running `model`'s
/// proposal if there is one.
struct Oracle<'a> {
    text: Vec<u32>,
    model: Option<ModelDrafter<'a>>,
}

impl Drafter for Oracle<'_> {
    fn describe(&self) -> String {
        "oracle".into()
    }

    fn propose(
        &mut self,
        seq: &[u32],
        max: usize,
        sampling: &Sampling,
        rng: &mut Rng,
        out: &mut Draft,
    ) -> Result<(), GenError> {
        if let Some(m) = &mut self.model {
            m.propose(seq, max, sampling, rng, out)?;
        }
        out.tokens.clear();
        out.q.clear();
        let rest = &self.text[seq.len().min(self.text.len())..];
        out.tokens.extend_from_slice(&rest[..rest.len().min(max)]);
        Ok(())
    }

    fn token_cost(&mut self) -> f64 {
        0.0
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: spec_bound TARGET.arcm PROMPT_DIR [DRAFT.arcm]";
    let target = Net::load(&Bundle::open(args.get(1).ok_or(usage)?)?)?;
    let draft = match args.get(3) {
        Some(p) => Some(Net::load(&Bundle::open(p)?)?),
        None => None,
    };
    let mut files: Vec<_> = std::fs::read_dir(args.get(2).ok_or(usage)?)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let plain = Options {
        n: 256,
        ..Options::default()
    };
    let bytes = Tokenizer::Bytes;
    let mut speedups = vec![Vec::new(); LENGTHS.len()];
    for file in &files {
        let text = std::fs::read(file)?;
        let Some(prompt) = text.get(20_000..20_128) else {
            continue;
        };
        let prompt = &bytes.encode(prompt)?;
        let mut full = prompt.clone();
        let mut target_decoder = target.decoder();
        let decoder = &mut target_decoder;
        generate(decoder, None, &bytes, prompt, &plain, &mut |b| {
            full.extend(bytes.encode(b).unwrap_or_default());
            Ok(())
        })?;
        let mut best = vec![f64::INFINITY; LENGTHS.len() + 1];
        for _ in 0..ROUNDS {
            let s = generate(decoder, None, &bytes, prompt, &plain, &mut |_| Ok(()))?;
            best[0] = best[0].min(s.decode_seconds);
            for (i, &k) in LENGTHS.iter().enumerate() {
                let mut oracle = Oracle {
                    text: full.clone(),
                    model: draft.as_ref().map(|d| ModelDrafter::new(d.decoder(), 0.0)),
                };
                let o = Options {
                    draft_start: Some(k),
                    fixed_length: true,
                    ..plain.clone()
                };
                let s = generate(decoder, Some(&mut oracle), &bytes, prompt, &o, &mut |_| {
                    Ok(())
                })?;
                if s.accepted != s.drafted {
                    return Err(
                        "the oracle's draft was rejected: output is not deterministic".into(),
                    );
                }
                best[i + 1] = best[i + 1].min(s.decode_seconds);
            }
        }
        for (i, s) in speedups.iter_mut().enumerate() {
            s.push(best[0] / best[i + 1]);
        }
        if speedups[0].len() == 8 {
            break;
        }
    }
    if speedups[0].is_empty() {
        return Err("no file in the prompt folder has 20,128 bytes".into());
    }
    let with = match &draft {
        Some(d) => format!(", running {}'s proposals alongside", d.name()),
        None => String::new(),
    };
    println!(
        "{}: always-accepted free draft{with}, {} prompts, speedup over target-only (median of per-prompt best of {ROUNDS}):",
        target.name(),
        speedups[0].len()
    );
    println!("| draft length | speedup | lowest | highest |");
    println!("| ---: | ---: | ---: | ---: |");
    for (k, s) in LENGTHS.iter().zip(speedups) {
        let (lo, hi) = s
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        println!("| {k} | {:.2}x | {lo:.2}x | {hi:.2}x |", median(&s));
    }
    Ok(())
}
