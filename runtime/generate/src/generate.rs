//! [`generate`]: plain or speculative decoding with a target, a drafter and the exact
//! verification rule, and its [`Options`] and [`Stats`].

use std::time::Instant;

use crate::decoder::Decoder;
use crate::draft::{Draft, Drafter};
use crate::error::GenError;
use crate::length::{DraftLength, PRIOR_ACCEPT};
use crate::lm::{Lm, window_start};
use crate::stop::StopText;
use crate::tokenizer::TextTokenizer;
use crate::verify::{Rng, Sampling, verify_greedy, verify_sample};

/// Settings of one generation.
#[derive(Clone, Debug)]
pub struct Options {
    /// Tokens to generate.
    pub n: usize,
    /// Greedy or sampled, and the filters (top-k, top-p, min-p, repeat penalty).
    pub sampling: Sampling,
    /// Seed of the sampler (and of a sampling drafter).
    pub seed: u64,
    /// Longest draft.
    pub draft_max: usize,
    /// First draft length: `None` measures the costs and picks ([`DraftLength::from_costs`]).
    pub draft_start: Option<usize>,
    /// Keep the draft length fixed instead of adapting it.
    pub fixed_length: bool,
    /// Tokens that end the generation when the target emits one (an end-of-sequence token, the
    /// arithmetic models' END): it counts as decoded but is not passed to the sink.
    pub stop: Vec<u32>,
    /// Texts that end the generation when the generated text (not the prompt) contains one:
    /// the text before it is passed to the sink, nothing from it on; the token that completed
    /// it counts as decoded. Empty strings are skipped.
    pub stop_strings: Vec<Vec<u8>>,
    /// The token an empty prompt is read as (not echoed): a newline for the byte models
    /// ([`TextTokenizer::empty_prompt`]); `None` refuses an empty prompt.
    pub empty_prompt: Option<u32>,
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
            stop: Vec::new(),
            stop_strings: Vec::new(),
            empty_prompt: None,
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
    /// Tokens generated (`n`, or fewer when a stop token or string came first; the token
    /// that stopped counts).
    pub decoded: usize,
    /// Seconds from the first decoding step to the last token (drafting included).
    pub decode_seconds: f64,
    /// Of those, seconds in the drafter.
    pub draft_seconds: f64,
    /// Seconds spent timing the target's calls to choose the first draft length (0 when
    /// `draft_start` is given or there is no drafter).
    pub measure_seconds: f64,
    /// Target forward calls while decoding.
    pub target_calls: u64,
    /// Draft tokens proposed.
    pub drafted: u64,
    /// Draft tokens accepted.
    pub accepted: u64,
    /// First draft length (0 without a drafter).
    pub draft_start: usize,
    /// Whether a stop token or stop string ended the generation.
    pub stopped: bool,
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

/// Generates `options.n` tokens after `prompt` with `target` (or fewer, up to a stop token or
/// string), speculatively when a `drafter` is given, passing the text of each accepted run of
/// tokens (`tokenizer.decode`, token by token) to `sink` as soon as it is decided; with stop
/// strings, the bytes that could still begin one are held back until they cannot.
///
/// The target's cache is emptied first and left holding the generation's last window.
///
/// # Errors
///
/// [`GenError::EmptyPrompt`] for an empty prompt without [`Options::empty_prompt`],
/// [`GenError::Token`] for a prompt token outside the vocabulary, the models' errors, and
/// `sink`'s.
pub fn generate(
    target: &mut dyn Decoder,
    mut drafter: Option<&mut (dyn Drafter + '_)>,
    tokenizer: &dyn TextTokenizer,
    prompt: &[u32],
    options: &Options,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Stats, GenError> {
    let mut stats = Stats::default();
    let (vocab, ctx) = (target.vocab(), target.context_len());
    let name = target.name().to_owned();
    if ctx == 0 {
        return Err(GenError::Contract {
            model: name,
            reason: "its context length is 0".into(),
        });
    }
    let mut seq: Vec<u32> = match (prompt.is_empty(), options.empty_prompt) {
        (false, _) => prompt.to_vec(),
        (true, Some(start)) => vec![start],
        (true, None) => return Err(GenError::EmptyPrompt { model: name }),
    };
    if let Some(&token) = seq.iter().find(|&&t| t as usize >= vocab) {
        return Err(GenError::Token {
            model: name,
            token,
            vocab,
        });
    }
    let skip = seq.len();
    let mut lm = Lm::new(target);
    let mut rng = Rng::new(options.seed);
    let start = window_start(seq.len(), ctx);

    let max = options.draft_max.min(ctx / 2).max(1);
    let mut length = match (&mut drafter, options.draft_start) {
        (None, _) => DraftLength::fixed(1, 1),
        (Some(_), Some(k)) => DraftLength::fixed(k, max),
        (Some(d), None) => {
            // Timed where decoding starts: attention makes calls dearer as the cache grows.
            let t = Instant::now();
            let cost = lm.call_cost(seq.len() - start, max + 1, 3)?;
            let prior = d
                .prior_accept(options.sampling.is_greedy())
                .unwrap_or(PRIOR_ACCEPT);
            let length = DraftLength::from_costs(&cost, d.token_cost(), prior, max);
            stats.measure_seconds = t.elapsed().as_secs_f64();
            length
        }
    };
    if drafter.is_some() {
        stats.draft_start = length.get();
    }

    // The prompt: fill the cache with the window's tokens up to the last one.
    let t = Instant::now();
    if seq.len() - 1 > start {
        lm.prefill(&seq[..seq.len() - 1], start)?;
        stats.prompt_tokens = seq.len() - 1 - start;
    }
    stats.prompt_seconds = t.elapsed().as_secs_f64();
    if options.n == 0 {
        return Ok(stats);
    }

    let calls_before = lm.calls();
    let mut draft = Draft::default();
    let mut p: Vec<Vec<f64>> = Vec::new();
    let mut penalized: Vec<f32> = Vec::new();
    let mut text = StopText::new(&options.stop_strings);
    let mut emit = Vec::new();
    let greedy = options.sampling.is_greedy();
    let t = Instant::now();
    while seq.len() - skip < options.n {
        let len = seq.len();
        let left = options.n - (len - skip);
        // Drafts never cross a window change nor run past the tokens still wanted.
        let room = (window_start(len, ctx) + ctx).saturating_sub(len);
        let asked = length.get().min(room).min(left - 1);
        draft.tokens.clear();
        draft.q.clear();
        if let Some(d) = drafter.as_mut().filter(|_| asked > 0) {
            let t = Instant::now();
            d.propose(&seq, asked, &options.sampling, &mut rng, &mut draft)?;
            stats.draft_seconds += t.elapsed().as_secs_f64();
            // A drafter may not propose more than asked, nor tokens the target cannot read.
            draft.tokens.truncate(asked);
            if let Some(bad) = draft.tokens.iter().position(|&t| t as usize >= vocab) {
                draft.tokens.truncate(bad);
            }
            if !draft.q.is_empty() {
                draft.tokens.truncate(draft.q.len());
                draft.q.truncate(draft.tokens.len());
            }
        }
        // Nothing after a stop token can be emitted: do not verify it.
        if let Some(cut) = draft.tokens.iter().position(|t| options.stop.contains(t)) {
            draft.tokens.truncate(cut + 1);
            draft.q.truncate(cut + 1);
        }
        let k = draft.tokens.len();
        seq.extend_from_slice(&draft.tokens);
        let logits = lm.score(&seq, len - 1)?;
        // Row i predicts position len + i, after the history seq[..len + i].
        let verdict = if greedy {
            let rows = if options.sampling.penalizes() {
                penalized.clear();
                penalized.extend_from_slice(logits);
                for (i, row) in penalized.chunks_exact_mut(vocab).enumerate() {
                    options.sampling.penalize(row, &seq[..len + i]);
                }
                &penalized[..]
            } else {
                logits
            };
            verify_greedy(&draft.tokens, rows)
        } else {
            p.resize_with(p.len().max(k + 1), Vec::new);
            for (i, (row, probs)) in logits.chunks_exact(vocab).zip(&mut p).enumerate() {
                options.sampling.probs(row, &seq[..len + i], probs);
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
        emit.clear();
        let mut stop_at = None;
        for (i, &token) in seq[len..end].iter().enumerate() {
            if options.stop.contains(&token) {
                stop_at = Some(i + 1);
                break;
            }
            if text.push(&tokenizer.decode(&[token]), &mut emit) {
                stop_at = Some(i + 1);
                break;
            }
        }
        if let Some(at) = stop_at {
            text.finish(&mut emit);
            if !emit.is_empty() {
                sink(&emit)?;
            }
            seq.truncate(len + at);
            stats.stopped = true;
            break;
        }
        if !emit.is_empty() {
            sink(&emit)?;
        }
    }
    emit.clear();
    text.finish(&mut emit);
    if !emit.is_empty() {
        sink(&emit)?;
    }
    stats.decode_seconds = t.elapsed().as_secs_f64();
    stats.decoded = (seq.len() - skip).min(options.n);
    stats.target_calls = lm.calls() - calls_before;
    Ok(stats)
}
