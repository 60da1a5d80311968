//! Drafters: what proposes the tokens a verify call checks. [`ModelDrafter`] runs a small
//! distilled model; [`LookupDrafter`] copies what followed the last occurrence of the current
//! suffix (prompt lookup).

use crate::decoder::Decoder;
use crate::error::GenError;
use crate::lm::Lm;
use crate::verify::{Rng, Sampling};

/// A proposal: tokens and, for a model drafter sampling, the distribution each was drawn from.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    /// Proposed tokens.
    pub tokens: Vec<u32>,
    /// `q` of each token (sampling with a model drafter; rows of the vocabulary's width), else
    /// empty (point masses).
    pub q: Vec<Vec<f64>>,
}

/// Something that guesses the target's next tokens.
pub trait Drafter {
    /// A short description for statistics (`gen-draft-kd (draft, distill kd)`, `prompt lookup`).
    fn describe(&self) -> String;

    /// Proposes up to `max` tokens to follow `seq` (which ends with the last token emitted). A
    /// model drafter chooses as `sampling` says (its repeat penalty included, with `seq` as the
    /// history) so that its tokens are the target's as often as possible.
    ///
    /// # Errors
    ///
    /// Model errors of a model drafter.
    fn propose(
        &mut self,
        seq: &[u32],
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
    ext: Vec<u32>,
    probs: Vec<f64>,
}

impl<'a> ModelDrafter<'a> {
    /// A drafter running `draft` (`net.decoder()` for a native model, or any [`Decoder`] over
    /// the target's vocabulary; pair bundles through [`check_pair`](crate::check_pair) first).
    pub fn new(draft: impl Decoder + 'a, p_min: f64) -> ModelDrafter<'a> {
        ModelDrafter {
            lm: Lm::new(draft),
            p_min,
            ext: Vec::new(),
            probs: Vec::new(),
        }
    }
}

/// Largest probability of `softmax(logits)`.
pub(crate) fn top_prob(logits: &[f32]) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    1.0 / sum
}

impl Drafter for ModelDrafter<'_> {
    fn describe(&self) -> String {
        self.lm.decoder().describe()
    }

    fn propose(
        &mut self,
        seq: &[u32],
        max: usize,
        sampling: &Sampling,
        rng: &mut Rng,
        out: &mut Draft,
    ) -> Result<(), GenError> {
        out.tokens.clear();
        out.q.clear();
        self.ext.clear();
        self.ext.extend_from_slice(seq);
        while out.tokens.len() < max && !self.ext.is_empty() {
            let logits = self.lm.score(&self.ext, self.ext.len() - 1)?;
            if self.p_min > 0.0 && top_prob(logits) < self.p_min {
                break;
            }
            let token = if sampling.is_greedy() {
                sampling.greedy(logits, &self.ext)
            } else {
                sampling.probs(logits, &self.ext, &mut self.probs);
                let token = rng.pick(&self.probs);
                out.q.push(self.probs.clone());
                token
            };
            out.tokens.push(token);
            self.ext.push(token);
        }
        Ok(())
    }

    fn token_cost(&mut self) -> f64 {
        self.lm
            .call_cost(64, 1, 5)
            .map_or(0.0, |c| c.seconds.first().copied().unwrap_or(0.0))
    }

    fn prior_accept(&self, greedy: bool) -> Option<f64> {
        self.lm.decoder().measured_acceptance(greedy)
    }
}

/// Prompt lookup: finds the most recent earlier occurrence of the sequence's last `n` tokens
/// (longest `n` first, from `max_ngram` down to `min_ngram`) and proposes the tokens that
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
        seq: &[u32],
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
            // Most recent match that has at least one token after it (not the suffix itself).
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
