//! How many tokens to draft: [`CallCost`] measures what a k-token verify call costs against a
//! one-token call, and [`DraftLength`] picks the draft length from it and from the acceptance
//! seen so far.

use std::time::Instant;

use crate::decoder::Decoder;
use crate::error::GenError;

/// Measured seconds of one forward call of `k` tokens, `k = 1..=max`, on a model holding some
/// tokens already (median of `reps`, after one untimed call of each length).
#[derive(Clone, Debug, PartialEq)]
pub struct CallCost {
    /// `seconds[k - 1]`: a `k`-token call.
    pub seconds: Vec<f64>,
}

impl CallCost {
    /// Times `model` holding 64 tokens (fewer if the context is short).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the context is shorter than `max` tokens, and the model's
    /// errors.
    pub fn measure(model: &mut dyn Decoder, max: usize, reps: usize) -> Result<CallCost, GenError> {
        CallCost::measure_at(model, 64, max, reps)
    }

    /// Times `model` holding `cached` tokens (fewer if the context is short): attention makes
    /// every token of a call cost more as the cache grows, and a model's matrix products do not.
    /// The model's cache is used (and left holding the measurement's tokens): empty it before
    /// generating (an [`Lm`](crate::Lm) does, and [`Lm::call_cost`](crate::Lm::call_cost) does after).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] when the context is shorter than `max` tokens, and the model's
    /// errors.
    pub fn measure_at(
        model: &mut dyn Decoder,
        cached: usize,
        max: usize,
        reps: usize,
    ) -> Result<CallCost, GenError> {
        let base = cached.min(model.context_len().saturating_sub(max));
        let mut logits = Vec::new();
        // Any tokens will do (the cost does not depend on them): text, folded into the vocabulary.
        let vocab = model.vocab().max(1);
        let text: Vec<u32> = b"The quick brown fox jumps over the lazy dog. "
            .iter()
            .cycle()
            .take(base + max)
            .map(|&b| (usize::from(b) % vocab) as u32)
            .collect();
        model.truncate(0);
        if base > 0 {
            model.forward(&text[..base], &mut logits)?;
        }
        // One untimed sweep first: the first calls of a process run slow (a one-token call
        // measured 0.68 ms at start-up, 0.3 ms while decoding: page faults, cold caches).
        for k in 1..=max {
            model.truncate(base);
            model.forward(&text[base..base + k], &mut logits)?;
        }
        let mut seconds = Vec::with_capacity(max);
        for k in 1..=max {
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps.max(1) {
                model.truncate(base);
                let t = Instant::now();
                model.forward(&text[base..base + k], &mut logits)?;
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
/// acceptance when its manifest has one ([`Drafter::prior_accept`](crate::Drafter::prior_accept)), else [`PRIOR_ACCEPT`]) and
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
pub(crate) struct CostModel {
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
