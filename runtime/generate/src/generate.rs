//! [`generate`]: plain or speculative decoding with a target, a drafter and the exact
//! verification rule, and its [`Options`] and [`Stats`].

use std::time::Instant;

use crate::draft::{Draft, Drafter};
use crate::error::GenError;
use crate::length::{CallCost, DraftLength, PRIOR_ACCEPT};
use crate::lm::{Lm, window_start};
use crate::net::{Net, VOCAB};
use crate::verify::{Rng, Sampling, verify_greedy, verify_sample};

/// Settings of one generation.
#[derive(Clone, Debug)]
pub struct Options {
    /// Tokens (bytes) to generate.
    pub n: usize,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Seed of the sampler (and of a sampling drafter).
    pub seed: u64,
    /// Longest draft.
    pub draft_max: usize,
    /// First draft length: `None` measures the costs and picks ([`DraftLength::from_costs`]).
    pub draft_start: Option<usize>,
    /// Keep the draft length fixed instead of adapting it.
    pub fixed_length: bool,
    /// A token that ends the generation when the target emits it (the arithmetic models'
    /// END): it counts as decoded but is not passed to the sink.
    pub stop: Option<u8>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n: 128,
            sampling: Sampling::GREEDY,
            seed: 0,
            draft_max: 16,
            draft_start: None,
            fixed_length: false,
            stop: None,
        }
    }
}

/// What a generation did, in the words of llama.cpp's statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Prompt tokens fed before decoding (the window's part of the prompt, less the last).
    pub prompt_tokens: usize,
    /// Seconds spent feeding them.
    pub prompt_seconds: f64,
    /// Tokens generated (`n`, or fewer when the stop token came first; it counts).
    pub decoded: usize,
    /// Seconds from the first decoding step to the last token (drafting included).
    pub decode_seconds: f64,
    /// Of those, seconds in the drafter.
    pub draft_seconds: f64,
    /// Target forward calls while decoding.
    pub target_calls: u64,
    /// Draft tokens proposed.
    pub drafted: u64,
    /// Draft tokens accepted.
    pub accepted: u64,
    /// First draft length (0 without a drafter).
    pub draft_start: usize,
}

impl Stats {
    /// Tokens per second while decoding.
    pub fn speed(&self) -> f64 {
        self.decoded as f64 / self.decode_seconds.max(1e-12)
    }

    /// Accepted over drafted (0 when nothing was drafted).
    pub fn accept_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Tokens emitted per target call.
    pub fn tokens_per_call(&self) -> f64 {
        self.decoded as f64 / self.target_calls.max(1) as f64
    }
}

/// Generates `options.n` tokens after `prompt` with `target` (or fewer, up to `options.stop`),
/// speculatively when a `drafter` is given, passing each accepted run of tokens to `sink` as
/// soon as it is decided.
///
/// # Errors
///
/// [`GenError::EmptyPrompt`] for an empty prompt to a model that does not read bytes (only a
/// byte model has a natural start, `"\n"`), [`GenError::Token`] for a prompt token outside
/// the vocabulary, other model errors, and `sink`'s.
pub fn generate(
    target: &Net,
    mut drafter: Option<&mut (dyn Drafter + '_)>,
    prompt: &[u8],
    options: &Options,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Stats, GenError> {
    let mut stats = Stats::default();
    let mut seq: Vec<u8> = match (prompt.is_empty(), target.vocab() == VOCAB) {
        (false, _) => prompt.to_vec(),
        (true, true) => b"\n".to_vec(),
        (true, false) => {
            return Err(GenError::EmptyPrompt {
                model: target.name().to_owned(),
            });
        }
    };
    if let Some(&token) = seq.iter().find(|&&t| usize::from(t) >= target.vocab()) {
        return Err(GenError::Token {
            model: target.name().to_owned(),
            token,
            vocab: target.vocab(),
        });
    }
    let skip = seq.len();
    let ctx = target.context_len();
    let mut lm = Lm::new(target);
    let mut rng = Rng::new(options.seed);

    // The prompt: fill the cache with the window's tokens up to the last one.
    let start = window_start(seq.len(), ctx);
    let t = Instant::now();
    if seq.len() - 1 > start {
        lm.prefill(&seq[..seq.len() - 1], start)?;
        stats.prompt_tokens = seq.len() - 1 - start;
    }
    stats.prompt_seconds = t.elapsed().as_secs_f64();
    if options.n == 0 {
        return Ok(stats);
    }

    let max = options.draft_max.clamp(1, ctx / 2);
    let mut length = match (&mut drafter, options.draft_start) {
        (None, _) => DraftLength::fixed(1, 1),
        (Some(_), Some(k)) => DraftLength::fixed(k, max),
        (Some(d), None) => {
            // Timed where decoding starts: attention makes calls dearer as the cache grows.
            let cost = CallCost::measure_at(target, seq.len() - start, max + 1, 3)?;
            let prior = d
                .prior_accept(options.sampling.is_greedy())
                .unwrap_or(PRIOR_ACCEPT);
            DraftLength::from_costs(&cost, d.token_cost(), prior, max)
        }
    };
    if drafter.is_some() {
        stats.draft_start = length.get();
    }
    let calls_before = lm.calls();
    let mut draft = Draft::default();
    let mut p = vec![[0.0; VOCAB]; max + 1];
    let t = Instant::now();
    while seq.len() - skip < options.n {
        let len = seq.len();
        let left = options.n - (len - skip);
        // Drafts never cross a window change nor run past the bytes still wanted.
        let room = (window_start(len, ctx) + ctx).saturating_sub(len);
        let asked = length.get().min(room).min(left - 1);
        draft.tokens.clear();
        draft.q.clear();
        if let Some(d) = drafter.as_mut().filter(|_| asked > 0) {
            let t = Instant::now();
            d.propose(&seq, asked, &options.sampling, &mut rng, &mut draft)?;
            stats.draft_seconds += t.elapsed().as_secs_f64();
        }
        // Nothing after a stop token can be emitted: do not verify it.
        if let Some(cut) = options
            .stop
            .and_then(|stop| draft.tokens.iter().position(|&t| t == stop))
        {
            draft.tokens.truncate(cut + 1);
            draft.q.truncate(cut + 1);
        }
        let k = draft.tokens.len();
        seq.extend_from_slice(&draft.tokens);
        let logits = lm.score(&seq, len - 1)?;
        let verdict = if options.sampling.is_greedy() {
            verify_greedy(&draft.tokens, logits)
        } else {
            for (row, probs) in logits.chunks_exact(VOCAB).zip(&mut p) {
                options.sampling.probs(row, probs);
            }
            verify_sample(&draft.tokens, &draft.q, &p[..=k], &mut rng)
        };
        seq.truncate(len + verdict.accepted);
        seq.push(verdict.next);
        stats.drafted += k as u64;
        stats.accepted += verdict.accepted as u64;
        if drafter.is_some() && !options.fixed_length && asked > 0 {
            length.update(asked, k, verdict.accepted);
        }
        let end = seq.len().min(skip + options.n);
        let stop_at = options
            .stop
            .and_then(|stop| seq[len..end].iter().position(|&t| t == stop));
        if let Some(at) = stop_at {
            sink(&seq[len..len + at])?;
            seq.truncate(len + at + 1);
            break;
        }
        sink(&seq[len..end])?;
    }
    stats.decode_seconds = t.elapsed().as_secs_f64();
    stats.decoded = (seq.len() - skip).min(options.n);
    stats.target_calls = lm.calls() - calls_before;
    Ok(stats)
}
