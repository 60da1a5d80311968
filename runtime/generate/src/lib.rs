//! Generation with a target model, plain or speculative: prose with the byte-level models of
//! `models/gen`, and arithmetic answers with the 16-symbol models of `models/arith` (whose
//! [`Tokenizer`] maps text to symbols and whose end token stops a generation, [`Options::stop`]).
//!
//! Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a cheap [`Drafter`] proposes
//! up to k tokens, the target scores all of them in one call, and the exact rule of
//! [`verify_greedy`] and [`verify_sample`] keeps the target's output distribution: greedy
//! output is the target's own greedy output, sampled output follows the target's (temperature,
//! top-p) law. Two drafters: a small distilled model ([`ModelDrafter`]) and prompt lookup
//! ([`LookupDrafter`], copying what followed the last occurrence of the current suffix).
//!
//! Both models run the native forward of [`Net`] with KV caches; after a verify call each cache
//! keeps only the accepted tokens (rolling back is moving a length). The draft length adapts
//! ([`DraftLength`]): it starts where the measured cost of a k-token target call against a
//! one-token call ([`CallCost`]) makes drafting pay best, grows when a whole draft is accepted,
//! shrinks on an early rejection, and a model draft stops early when its own top probability
//! falls under `p_min`.
//!
//! **Context.** The models are trained on windows of `context_len` tokens (512 bytes for prose,
//! 34 symbols for the adder, which a question and its answer fill exactly). The token at
//! position `p` is predicted from `seq[window_start(p)..p]`: the whole prefix while it fits, then
//! a window that moves in steps of half the context, so it always holds between half and all of
//! a context. Plain and speculative decoding use the same windows (a verify call never spans a
//! window change), so their greedy outputs stay identical past the context. A prompt longer than
//! the context is read through the same rule: only its last bytes (at least half a context) are
//! seen. An empty prompt is read by a byte model as a single `"\n"` (the start of a line),
//! which is not echoed; a model of other symbols has no such start and refuses it.
//!
//! **Exactness.** A [`Net::forward`] call of k tokens computes every logit by the same
//! operations in the same order as k one-token calls, so verifying a draft reproduces one-token
//! decoding bit for bit: greedy speculative output equals greedy target-only output by
//! construction, not by luck of rounding.
//!
//! **Modules** (all private; their public items are re-exported here):
//!
//! - `net`: the model: [`NetConfig`] and [`Arch`] read from a bundle's manifest, the weights
//!   loaded from its payload ([`Net::load`]), the KV [`Cache`] and the forward pass;
//! - `kernels`: the f32 kernels of the forward pass behind one dispatch: the portable loops
//!   (`kernels/generic.rs`, also the aarch64 and armv7 path) and the AVX2 and FMA ones
//!   (`kernels/x86_64.rs`, the portable loops' fused multiply-adds in the same order);
//! - `verify`: sampling ([`Sampling`], [`Rng`]) and the exact verification rule;
//! - this file: the drafters ([`ModelDrafter`], [`LookupDrafter`]), the [`Tokenizer`], the
//!   draft-length controller ([`DraftLength`], [`CallCost`]) and [`generate`] itself.

mod error;
mod kernels;
mod net;
mod verify;

use std::time::Instant;

use arca_bundle::{Bundle, ModelKind};

pub use error::GenError;
pub use net::{Arch, Cache, Net, NetConfig, Norm, Positions, Scratch, VOCAB};
pub use verify::{Rng, Sampling, Verdict, argmax, verify_greedy, verify_sample};

/// First position of the window that predicts position `p` (see the module docs): 0 while
/// `p <= context_len`, then multiples of `context_len / 2` keeping the window within the context.
pub fn window_start(p: usize, context_len: usize) -> usize {
    if p <= context_len {
        0
    } else {
        let half = (context_len / 2).max(1);
        (p - context_len).div_ceil(half) * half
    }
}

/// A model with its cache, fed from a growing token sequence.
#[derive(Debug)]
pub struct Lm<'a> {
    net: &'a Net,
    cache: Cache,
    /// Window start of what the cache holds; the cache holds `fed`, i.e. `seq[start..]`.
    start: usize,
    fed: Vec<u8>,
    scratch: Scratch,
    logits: Vec<f32>,
    calls: u64,
}

impl<'a> Lm<'a> {
    /// An empty state for `net`.
    pub fn new(net: &'a Net) -> Lm<'a> {
        Lm {
            net,
            cache: net.new_cache(),
            start: 0,
            fed: Vec::new(),
            scratch: Scratch::default(),
            logits: Vec::new(),
            calls: 0,
        }
    }

    /// The model.
    pub fn net(&self) -> &'a Net {
        self.net
    }

    /// Forward calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Logits predicting positions `from + 1 ..= seq.len()`: one row per token of
    /// `seq[from..]`. The cache keeps what it shares with `seq` (so a rejected draft is rolled
    /// back here) and everything not yet fed goes through one forward call.
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] if those positions do not share one window (`window_start`).
    pub fn score(&mut self, seq: &[u8], from: usize) -> Result<&[f32], GenError> {
        let ctx = self.net.context_len();
        let start = window_start(from + 1, ctx);
        if window_start(seq.len(), ctx) != start || from >= seq.len() {
            return Err(GenError::Window {
                model: self.net.name().to_owned(),
                len: seq.len().saturating_sub(start),
                context_len: ctx,
            });
        }
        self.feed(seq, start, from)?;
        let rows = seq.len() - from;
        Ok(&self.logits[self.logits.len() - rows * VOCAB..])
    }

    /// Fills the cache with `seq[start..]` read as the window starting at `start` (the prompt,
    /// before decoding; logits are not kept).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] if that is longer than the context.
    pub fn prefill(&mut self, seq: &[u8], start: usize) -> Result<(), GenError> {
        self.feed(seq, start, seq.len())
    }

    /// Rolls the cache back to what it shares with `seq[start..from]` and feeds the rest of
    /// `seq` in one call.
    fn feed(&mut self, seq: &[u8], start: usize, from: usize) -> Result<(), GenError> {
        if start != self.start {
            self.start = start;
            self.fed.clear();
            self.cache.truncate(0);
        }
        let window = &seq[start..];
        let keep = self
            .fed
            .iter()
            .zip(&window[..from - start])
            .take_while(|(a, b)| a == b)
            .count();
        self.cache.truncate(keep);
        self.fed.truncate(keep);
        let feed = &window[keep..];
        self.net
            .forward(&mut self.cache, feed, &mut self.scratch, &mut self.logits)?;
        self.calls += 1;
        self.fed.extend_from_slice(feed);
        Ok(())
    }
}

/// A proposal: tokens and, for a model drafter sampling, the distribution each was drawn from.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    /// Proposed tokens.
    pub tokens: Vec<u8>,
    /// `q` of each token (sampling with a model drafter), else empty (point masses).
    pub q: Vec<[f64; VOCAB]>,
}

/// Something that guesses the target's next tokens.
pub trait Drafter {
    /// A short description for statistics (`gen-draft-kd (draft, distill kd)`, `prompt lookup`).
    fn describe(&self) -> String;

    /// Proposes up to `max` tokens to follow `seq` (which ends with the last token emitted).
    ///
    /// # Errors
    ///
    /// Model errors of a model drafter.
    fn propose(
        &mut self,
        seq: &[u8],
        max: usize,
        sampling: &Sampling,
        rng: &mut Rng,
        out: &mut Draft,
    ) -> Result<(), GenError>;

    /// Seconds of one proposed token, measured (for the first draft length); 0 if negligible.
    fn token_cost(&mut self) -> f64;

    /// The acceptance rate measured when the drafter was made (for the first draft length):
    /// per-token argmax agreement with the target for greedy decoding, the mean
    /// `sum_x min(p, q)` for sampling. `None` when unknown.
    fn prior_accept(&self, greedy: bool) -> Option<f64> {
        let _ = greedy;
        None
    }
}

/// A draft model: proposes its own greedy or sampled tokens, stopping when its top probability
/// falls under `p_min`.
#[derive(Debug)]
pub struct ModelDrafter<'a> {
    lm: Lm<'a>,
    p_min: f64,
    /// The sequence and the tokens drafted so far (reused between proposals).
    ext: Vec<u8>,
}

impl<'a> ModelDrafter<'a> {
    /// A drafter running `draft` (pair it with its target through [`check_pair`] first).
    pub fn new(draft: &'a Net, p_min: f64) -> ModelDrafter<'a> {
        ModelDrafter {
            lm: Lm::new(draft),
            p_min,
            ext: Vec::new(),
        }
    }
}

/// How text becomes a model's tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tokenizer {
    /// A token is a byte (the prose models, 256 symbols).
    Bytes,
    /// Token `i` is the `i`-th character of the model's symbol table (manifest `arith.vocab`,
    /// the arithmetic models), and `end` (`arith.end_id`) ends an answer.
    Symbols {
        /// The symbols, by token.
        chars: Vec<char>,
        /// The end token.
        end: Option<u8>,
    },
}

impl Tokenizer {
    /// The tokenizer a generation bundle's manifest describes: bytes for a 256-symbol
    /// vocabulary, else the `arith.vocab` table.
    ///
    /// # Errors
    ///
    /// [`GenError::Contract`] when a smaller vocabulary has no symbol table of its size.
    pub fn of(bundle: &Bundle) -> Result<Tokenizer, GenError> {
        let m = bundle.manifest();
        if m.vocab_size as usize == VOCAB {
            return Ok(Tokenizer::Bytes);
        }
        let contract = |reason: String| GenError::Contract {
            model: m.name.clone(),
            reason,
        };
        let get = |key: &str| m.get(key);
        let chars: Vec<char> = get("arith.vocab")
            .ok_or_else(|| {
                contract(format!(
                    "a {}-symbol vocabulary needs its symbols in the manifest (`arith.vocab`)",
                    m.vocab_size
                ))
            })?
            .chars()
            .collect();
        if chars.len() != m.vocab_size as usize {
            return Err(contract(format!(
                "`arith.vocab` has {} symbols, the vocabulary {}",
                chars.len(),
                m.vocab_size
            )));
        }
        let end = match get("arith.end_id") {
            None => None,
            Some(v) => Some(
                v.parse::<u8>()
                    .ok()
                    .filter(|&e| usize::from(e) < chars.len())
                    .ok_or_else(|| contract(format!("`arith.end_id` {v:?} is not a token")))?,
            ),
        };
        Ok(Tokenizer::Symbols { chars, end })
    }

    /// The tokens of `text`.
    ///
    /// # Errors
    ///
    /// [`GenError::Symbol`] for text that is not UTF-8 or has a character outside the table.
    pub fn encode(&self, text: &[u8]) -> Result<Vec<u8>, GenError> {
        match self {
            Tokenizer::Bytes => Ok(text.to_vec()),
            Tokenizer::Symbols { chars, .. } => {
                let table: String = chars.iter().collect();
                let bad = |what: String| GenError::Symbol {
                    what,
                    symbols: table.clone(),
                };
                let text = std::str::from_utf8(text)
                    .map_err(|_| bad("the prompt is not UTF-8 text".into()))?;
                text.chars()
                    .map(|c| {
                        chars
                            .iter()
                            .position(|&s| s == c)
                            .map(|i| i as u8)
                            .ok_or_else(|| bad(format!("character {c:?} is not a symbol")))
                    })
                    .collect()
            }
        }
    }

    /// The text of `tokens` (UTF-8 for symbols; `?` for a token outside the table).
    pub fn decode(&self, tokens: &[u8]) -> Vec<u8> {
        match self {
            Tokenizer::Bytes => tokens.to_vec(),
            Tokenizer::Symbols { chars, .. } => tokens
                .iter()
                .map(|&t| chars.get(usize::from(t)).copied().unwrap_or('?'))
                .collect::<String>()
                .into_bytes(),
        }
    }

    /// The symbols, for messages: `the 256 bytes`, or the table as a quoted string.
    pub fn describe(&self) -> String {
        match self {
            Tokenizer::Bytes => "the 256 bytes".into(),
            Tokenizer::Symbols { chars, end } => format!(
                "{:?} (end token {})",
                chars.iter().collect::<String>(),
                end.map_or("none".into(), |e| e.to_string())
            ),
        }
    }

    /// The token that ends a generation, if the model has one.
    pub fn stop(&self) -> Option<u8> {
        match self {
            Tokenizer::Bytes => None,
            Tokenizer::Symbols { end, .. } => *end,
        }
    }
}

/// Checks that the bundle `draft` can draft for `target`: both generation models over the same
/// vocabulary (size and symbols).
///
/// # Errors
///
/// [`GenError::VocabMismatch`] when the vocabularies differ, [`GenError::Kind`] when either is
/// not a generation model.
pub fn check_pair(target: &Bundle, draft: &Bundle) -> Result<(), GenError> {
    let (t, d) = (target.manifest(), draft.manifest());
    for m in [t, d] {
        if !matches!(m.kind, ModelKind::Target | ModelKind::Draft) {
            return Err(GenError::Kind {
                model: m.name.clone(),
                kind: m.kind.as_str(),
            });
        }
    }
    if t.vocab_size != d.vocab_size {
        return Err(GenError::VocabMismatch {
            target: t.name.clone(),
            target_vocab: t.vocab_size,
            draft: d.name.clone(),
            draft_vocab: d.vocab_size,
        });
    }
    let (tt, dt) = (Tokenizer::of(target)?, Tokenizer::of(draft)?);
    if tt != dt {
        return Err(GenError::SymbolMismatch {
            target: t.name.clone(),
            draft: d.name.clone(),
            detail: format!("{} against {}", tt.describe(), dt.describe()),
        });
    }
    Ok(())
}

/// Largest probability of `softmax(logits)`.
fn top_prob(logits: &[f32]) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    1.0 / sum
}

impl Drafter for ModelDrafter<'_> {
    fn describe(&self) -> String {
        let net = self.lm.net();
        match net.distill() {
            Some(d) => format!("{} (distill: {d})", net.name()),
            None => net.name().to_owned(),
        }
    }

    fn propose(
        &mut self,
        seq: &[u8],
        max: usize,
        sampling: &Sampling,
        rng: &mut Rng,
        out: &mut Draft,
    ) -> Result<(), GenError> {
        out.tokens.clear();
        out.q.clear();
        self.ext.clear();
        self.ext.extend_from_slice(seq);
        let mut q = [0.0; VOCAB];
        while out.tokens.len() < max {
            let logits = self.lm.score(&self.ext, self.ext.len() - 1)?;
            if self.p_min > 0.0 && top_prob(logits) < self.p_min {
                break;
            }
            let token = if sampling.is_greedy() {
                argmax(logits) as u8
            } else {
                sampling.probs(logits, &mut q);
                out.q.push(q);
                rng.pick(&q)
            };
            out.tokens.push(token);
            self.ext.push(token);
        }
        Ok(())
    }

    fn token_cost(&mut self) -> f64 {
        let net = self.lm.net();
        CallCost::measure(net, 1, 5).map_or(0.0, |c| c.seconds[0])
    }

    fn prior_accept(&self, greedy: bool) -> Option<f64> {
        self.lm.net().measured_acceptance(greedy)
    }
}

/// Prompt lookup: finds the most recent earlier occurrence of the sequence's last `n` bytes
/// (longest `n` first, from `max_ngram` down to `min_ngram`) and proposes the bytes that
/// followed it. Costs nothing to run; wins on text that repeats itself.
#[derive(Clone, Debug)]
pub struct LookupDrafter {
    /// Longest suffix tried.
    pub max_ngram: usize,
    /// Shortest suffix tried.
    pub min_ngram: usize,
}

impl Default for LookupDrafter {
    fn default() -> Self {
        LookupDrafter {
            max_ngram: 8,
            min_ngram: 3,
        }
    }
}

impl Drafter for LookupDrafter {
    fn describe(&self) -> String {
        format!(
            "prompt lookup ({}..{}-token suffixes)",
            self.min_ngram, self.max_ngram
        )
    }

    fn propose(
        &mut self,
        seq: &[u8],
        max: usize,
        _sampling: &Sampling,
        _rng: &mut Rng,
        out: &mut Draft,
    ) -> Result<(), GenError> {
        out.tokens.clear();
        out.q.clear();
        for n in (self.min_ngram..=self.max_ngram).rev() {
            if n == 0 || n >= seq.len() {
                continue;
            }
            let suffix = &seq[seq.len() - n..];
            // Most recent match that has at least one byte after it (not the suffix itself).
            if let Some(at) = seq[..seq.len() - 1].windows(n).rposition(|w| w == suffix) {
                let follow = &seq[at + n..];
                out.tokens
                    .extend_from_slice(&follow[..follow.len().min(max)]);
                return Ok(());
            }
        }
        Ok(())
    }

    fn token_cost(&mut self) -> f64 {
        0.0
    }
}

/// Measured seconds of one forward call of `k` tokens, `k = 1..=max`, on a model holding some
/// tokens already (median of `reps`, after one untimed call of each length).
#[derive(Clone, Debug, PartialEq)]
pub struct CallCost {
    /// `seconds[k - 1]`: a `k`-token call.
    pub seconds: Vec<f64>,
}

impl CallCost {
    /// Times `net` holding 64 tokens (fewer if the context is short).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the context is shorter than `max` tokens.
    pub fn measure(net: &Net, max: usize, reps: usize) -> Result<CallCost, GenError> {
        CallCost::measure_at(net, 64, max, reps)
    }

    /// Times `net` holding `cached` tokens (fewer if the context is short): attention makes
    /// every token of a call cost more as the cache grows, and a model's matrix products do not.
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the context is shorter than `max` tokens.
    pub fn measure_at(
        net: &Net,
        cached: usize,
        max: usize,
        reps: usize,
    ) -> Result<CallCost, GenError> {
        let base = cached.min(net.context_len().saturating_sub(max));
        let mut cache = net.new_cache();
        let mut scratch = Scratch::default();
        let mut logits = Vec::new();
        // Any tokens will do (the cost does not depend on them): text, folded into the vocabulary.
        let vocab = net.vocab();
        let text: Vec<u8> = b"The quick brown fox jumps over the lazy dog. "
            .iter()
            .cycle()
            .take(base + max)
            .map(|&b| (usize::from(b) % vocab) as u8)
            .collect();
        net.forward(&mut cache, &text[..base], &mut scratch, &mut logits)?;
        // One untimed sweep first: the first calls of a process run slow (a one-token call
        // measured 0.68 ms at start-up, 0.3 ms while decoding: page faults, cold caches).
        for k in 1..=max {
            cache.truncate(base);
            net.forward(&mut cache, &text[base..base + k], &mut scratch, &mut logits)?;
        }
        let mut seconds = Vec::with_capacity(max);
        for k in 1..=max {
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps.max(1) {
                cache.truncate(base);
                let t = Instant::now();
                net.forward(&mut cache, &text[base..base + k], &mut scratch, &mut logits)?;
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            seconds.push(times[times.len() / 2]);
        }
        Ok(CallCost { seconds })
    }

    /// `seconds[k - 1] / seconds[0]`.
    pub fn ratio(&self, k: usize) -> f64 {
        self.seconds[k - 1] / self.seconds[0]
    }
}

/// The draft length controller (see the module docs).
///
/// With measured costs ([`DraftLength::from_costs`]) it keeps a running estimate of the
/// per-token acceptance rate `a` (accepted tokens are successes, a rejection one failure, with
/// a decay of [`DECAY`] per verify call and a prior worth two tokens: the draft's own measured
/// acceptance when its manifest has one ([`Drafter::prior_accept`]), else [`PRIOR_ACCEPT`]) and
/// drafts the `k` that maximizes expected tokens per second,
/// `(1 - a^(k+1)) / (1 - a) / (k * draft_token + verify(k))`: a whole accepted draft raises `a`
/// and so the length, an early rejection lowers both, and the verify-cost curve caps it where
/// another drafted token costs more than it is expected to bring. Without costs (a given start
/// length) the rule is the plain one: one longer after a whole accepted draft, one shorter after
/// a rejection.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftLength {
    k: usize,
    max: usize,
    model: Option<CostModel>,
}

#[derive(Clone, Debug, PartialEq)]
struct CostModel {
    /// `verify[k]`: seconds of a target call with k drafts (k + 1 tokens).
    verify: Vec<f64>,
    draft_token: f64,
    prior: f64,
    accepted: f64,
    rejected: f64,
}

/// Acceptance rate assumed before any is observed, for a drafter that measured none.
pub const PRIOR_ACCEPT: f64 = 0.7;

/// Weight of the previous observations at each verify call.
pub const DECAY: f64 = 0.9;

impl CostModel {
    fn accept_rate(&self) -> f64 {
        (self.accepted + 2.0 * self.prior) / (self.accepted + self.rejected + 2.0)
    }

    fn best(&self, max: usize) -> usize {
        let a = self.accept_rate().min(0.999);
        let rate = |k: usize| {
            let tokens = (1.0 - a.powi(k as i32 + 1)) / (1.0 - a);
            let verify = self.verify.get(k).copied().unwrap_or(f64::INFINITY);
            tokens / (k as f64 * self.draft_token + verify)
        };
        (1..=max)
            .max_by(|&x, &y| rate(x).total_cmp(&rate(y)))
            .unwrap_or(1)
    }
}

impl DraftLength {
    /// A start without costs (`k` clamped to `1..=max`), adapted by the plain rule.
    pub fn fixed(k: usize, max: usize) -> DraftLength {
        DraftLength {
            k: k.clamp(1, max.max(1)),
            max: max.max(1),
            model: None,
        }
    }

    /// The cost-driven controller: `target.seconds[k]` is a verify call of k drafts plus the
    /// pending token, `draft_token` the drafter's seconds per proposed token, `prior` the
    /// acceptance rate believed before any is seen (clamped to `0..=1`).
    pub fn from_costs(target: &CallCost, draft_token: f64, prior: f64, max: usize) -> DraftLength {
        let max = max.clamp(1, target.seconds.len().saturating_sub(1).max(1));
        let model = CostModel {
            verify: target.seconds.clone(),
            draft_token,
            prior: prior.clamp(0.0, 1.0),
            accepted: 0.0,
            rejected: 0.0,
        };
        DraftLength {
            k: model.best(max),
            max,
            model: Some(model),
        }
    }

    /// Current length.
    pub fn get(&self) -> usize {
        self.k
    }

    /// The acceptance rate the controller believes (`None` without costs).
    pub fn accept_rate(&self) -> Option<f64> {
        self.model.as_ref().map(CostModel::accept_rate)
    }

    /// After a verify call that asked for `asked` tokens, got `drafted` and accepted `accepted`.
    pub fn update(&mut self, asked: usize, drafted: usize, accepted: usize) {
        match &mut self.model {
            Some(m) => {
                m.accepted = DECAY * m.accepted + accepted as f64;
                m.rejected = DECAY * m.rejected + f64::from(u8::from(accepted < drafted));
                self.k = m.best(self.max);
            }
            None => {
                if accepted < drafted {
                    self.k = (self.k - 1).max(1);
                } else if drafted == asked && drafted > 0 {
                    self.k = (self.k + 1).min(self.max);
                }
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn net(seed: u64) -> Net {
        Net::random(
            NetConfig {
                mlp_mult: 2,
                ..NetConfig::gpt(32, 2, 2, 48)
            },
            seed,
        )
    }

    fn run(
        target: &Net,
        drafter: Option<&mut dyn Drafter>,
        prompt: &[u8],
        o: &Options,
    ) -> (Vec<u8>, Stats) {
        let mut out = Vec::new();
        let stats = generate(target, drafter, prompt, o, &mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len(), o.n);
        (out, stats)
    }

    #[test]
    fn windows_hold_half_to_all_of_the_context() {
        for p in 0..2000 {
            let s = window_start(p, 512);
            assert!(p - s <= 512, "{p}");
            assert!(p <= 512 || p - s > 256, "{p}");
            assert_eq!(s % 256, 0);
        }
    }

    /// Greedy speculative output is the target's greedy output, for a model draft and prompt
    /// lookup, fixed and adaptive lengths, across window changes (context 48, 150 bytes).
    #[test]
    fn greedy_speculative_equals_greedy_target() {
        let target = net(1);
        let small = net(2);
        for prompt in [&b""[..], b"a", b"abcabcabcabc", &[b'x'; 70]] {
            let o = Options {
                n: 150,
                ..Options::default()
            };
            let (want, _) = run(&target, None, prompt, &o);
            for k in [1, 2, 5, 16] {
                let o = Options {
                    draft_max: k,
                    draft_start: Some(k),
                    fixed_length: k == 5,
                    ..o.clone()
                };
                let mut d = ModelDrafter::new(&small, 0.0);
                let (got, s) = run(&target, Some(&mut d), prompt, &o);
                assert_eq!(got, want, "model draft, k {k}, prompt {prompt:?}");
                assert!(s.drafted > 0);
                let mut d = LookupDrafter::default();
                let (got, _) = run(&target, Some(&mut d), prompt, &o);
                assert_eq!(got, want, "lookup, k {k}, prompt {prompt:?}");
            }
            // The target drafting for itself is always right.
            let mut d = ModelDrafter::new(&target, 0.0);
            let (got, s) = run(&target, Some(&mut d), prompt, &o);
            assert_eq!(got, want);
            assert_eq!(s.accepted, s.drafted);
        }
    }

    /// Speculative decoding with a stop token (the arithmetic models' END) on the arithmetic
    /// architecture: output equals target-only output, ends before the stop token, and counts
    /// it as decoded.
    #[test]
    fn stop_token_ends_plain_and_speculative_output_alike() {
        let cfg = |seed| {
            let c = NetConfig {
                vocab: 16,
                arch: net::Arch::ARITH,
                ..NetConfig::gpt(32, 2, 2, 34)
            };
            Net::random(c, seed)
        };
        let (target, small) = (cfg(11), cfg(12));
        let prompt: Vec<u8> = (0..12u8).map(|i| (i * 5 + 1) % 13).collect();
        let collect = |drafter: Option<&mut dyn Drafter>, o: &Options| {
            let mut out = Vec::new();
            let stats = generate(&target, drafter, &prompt, o, &mut |b: &[u8]| {
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            (out, stats)
        };
        let free = Options {
            n: 20,
            ..Options::default()
        };
        let (all, _) = collect(None, &free);
        assert_eq!(all.len(), 20);
        // Stop at the target's fourth token: its first occurrence ends the output.
        let stop = all[3];
        let cut = all.iter().position(|&t| t == stop).unwrap();
        let o = Options {
            stop: Some(stop),
            ..free.clone()
        };
        let (want, stats) = collect(None, &o);
        assert_eq!(want, all[..cut]);
        assert_eq!(stats.decoded, cut + 1);
        for k in [1, 3, 8] {
            let o = Options {
                draft_max: k,
                draft_start: Some(k),
                ..o.clone()
            };
            let mut d = ModelDrafter::new(&small, 0.0);
            let (got, s) = collect(Some(&mut d), &o);
            assert_eq!(got, want, "model draft, k {k}");
            assert_eq!(s.decoded, cut + 1);
            let mut d = ModelDrafter::new(&target, 0.0);
            let (got, s) = collect(Some(&mut d), &o);
            assert_eq!(got, want, "self draft, k {k}");
            assert_eq!(s.accepted, s.drafted);
        }
        // An empty prompt has no meaning for a model that does not read bytes.
        let err = generate(&target, None, &[], &o, &mut |_: &[u8]| Ok(())).unwrap_err();
        assert!(matches!(err, GenError::EmptyPrompt { .. }), "{err}");
        let err = generate(&target, None, &[1, 200], &o, &mut |_: &[u8]| Ok(())).unwrap_err();
        assert!(matches!(err, GenError::Token { token: 200, .. }), "{err}");
    }

    #[test]
    fn sampling_is_reproducible_from_the_seed() {
        let target = net(1);
        let small = net(2);
        let o = Options {
            n: 60,
            sampling: Sampling {
                temperature: 0.8,
                top_p: 0.95,
            },
            seed: 7,
            ..Options::default()
        };
        let mut d = ModelDrafter::new(&small, 0.0);
        let (a, _) = run(&target, Some(&mut d), b"seed", &o);
        let mut d = ModelDrafter::new(&small, 0.0);
        let (b, _) = run(&target, Some(&mut d), b"seed", &o);
        assert_eq!(a, b);
        let (c, _) = run(&target, None, b"seed", &Options { seed: 8, ..o });
        assert_ne!(a, c);
    }

    #[test]
    fn zero_tokens_generates_nothing() {
        let target = net(1);
        let (out, s) = run(
            &target,
            None,
            b"abc",
            &Options {
                n: 0,
                ..Options::default()
            },
        );
        assert!(out.is_empty());
        assert_eq!((s.decoded, s.target_calls, s.prompt_tokens), (0, 0, 2));
    }

    #[test]
    fn lookup_copies_what_followed_the_suffix() {
        let mut d = LookupDrafter::default();
        let mut out = Draft::default();
        let mut rng = Rng::new(0);
        d.propose(
            b"the cat sat. the cat",
            4,
            &Sampling::GREEDY,
            &mut rng,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.tokens, b" sat");
        d.propose(b"no repeats", 4, &Sampling::GREEDY, &mut rng, &mut out)
            .unwrap();
        assert!(out.tokens.is_empty());
    }

    #[test]
    fn draft_length_grows_and_shrinks() {
        let mut l = DraftLength::fixed(3, 5);
        l.update(3, 3, 3);
        assert_eq!(l.get(), 4);
        l.update(4, 4, 1);
        assert_eq!(l.get(), 3);
        l.update(3, 2, 2); // stopped early by confidence, all accepted: unchanged
        assert_eq!(l.get(), 3);
        let cost = CallCost {
            seconds: vec![1.0, 1.05, 1.1, 1.15, 1.2, 3.0, 6.0],
        };
        // The prior sets the start: a draft measured to agree on every token starts where the
        // cost curve caps it, one that rarely agrees at one token.
        assert_eq!(DraftLength::from_costs(&cost, 0.0, 1.0, 6).get(), 4);
        assert_eq!(DraftLength::from_costs(&cost, 0.0, 0.05, 6).get(), 1);
        let cheap = CallCost {
            seconds: vec![1.0; 7],
        };
        assert_eq!(DraftLength::from_costs(&cheap, 0.0, 1.0, 6).get(), 6);
        let mut l = DraftLength::from_costs(&cost, 0.0, PRIOR_ACCEPT, 6);
        assert_eq!(l.get(), 4);
        // Rejections pull the estimate (and the length) down, whole drafts push them up, and
        // the cost curve caps the length (a 5-draft call costs 2.5x a 4-draft one).
        for _ in 0..5 {
            l.update(4, 4, 0);
        }
        assert!(l.accept_rate().unwrap() < 0.3 && l.get() < 4, "{l:?}");
        for _ in 0..30 {
            let k = l.get();
            l.update(k, k, k);
        }
        assert!(l.accept_rate().unwrap() > 0.9, "{l:?}");
        assert_eq!(l.get(), 4);
    }
}
