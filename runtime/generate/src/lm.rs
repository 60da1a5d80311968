//! [`Lm`]: a [`Decoder`] fed from a growing token sequence through the sliding context windows
//! ([`window_start`]), rolling its cache back to what it shares with the sequence.

use std::fmt;

use crate::decoder::Decoder;
use crate::error::GenError;
use crate::length::CallCost;

/// First position of the window that predicts position `p` (see the crate docs): 0 while
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
pub struct Lm<'a> {
    model: Box<dyn Decoder + 'a>,
    /// Window start of what the cache holds; the cache holds `fed`, i.e. `seq[start..]`.
    start: usize,
    fed: Vec<u32>,
    logits: Vec<f32>,
    calls: u64,
}

impl fmt::Debug for Lm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lm")
            .field("model", &self.model.name())
            .field("start", &self.start)
            .field("fed", &self.fed.len())
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

impl<'a> Lm<'a> {
    /// `model` with its cache emptied (a `&mut` of a decoder works: the caller keeps it).
    pub fn new(model: impl Decoder + 'a) -> Lm<'a> {
        let mut model: Box<dyn Decoder + 'a> = Box::new(model);
        model.truncate(0);
        Lm {
            model,
            start: 0,
            fed: Vec::new(),
            logits: Vec::new(),
            calls: 0,
        }
    }

    /// The model.
    pub fn decoder(&self) -> &dyn Decoder {
        &*self.model
    }

    /// Forward calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Logits predicting positions `from + 1 ..= seq.len()`: one row of
    /// [`Decoder::vocab`] entries per token of `seq[from..]`. The cache keeps what it shares
    /// with `seq` (so a rejected draft is rolled back here) and everything not yet fed goes
    /// through one forward call.
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] if those positions do not share one window (`window_start`), the
    /// model's errors, and [`GenError::Backend`] for a model that returns the wrong number of
    /// logits.
    pub fn score(&mut self, seq: &[u32], from: usize) -> Result<&[f32], GenError> {
        let ctx = self.model.context_len();
        let start = window_start(from + 1, ctx);
        if window_start(seq.len(), ctx) != start || from >= seq.len() {
            return Err(GenError::Window {
                model: self.model.name().to_owned(),
                len: seq.len().saturating_sub(start),
                context_len: ctx,
            });
        }
        self.feed(seq, start, from)?;
        let rows = seq.len() - from;
        let width = rows * self.model.vocab();
        Ok(&self.logits[self.logits.len() - width..])
    }

    /// Fills the cache with `seq[start..]` read as the window starting at `start` (the prompt,
    /// before decoding; logits are not kept).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] if that is longer than the context, and the model's errors.
    pub fn prefill(&mut self, seq: &[u32], start: usize) -> Result<(), GenError> {
        self.feed(seq, start.min(seq.len()), seq.len())
    }

    /// Times the model's calls ([`CallCost::measure_at`]) and empties its cache after.
    ///
    /// # Errors
    ///
    /// The model's errors.
    pub fn call_cost(
        &mut self,
        cached: usize,
        max: usize,
        reps: usize,
    ) -> Result<CallCost, GenError> {
        let cost = CallCost::measure_at(&mut *self.model, cached, max, reps);
        self.model.truncate(0);
        self.fed.clear();
        self.start = 0;
        cost
    }

    /// Rolls the cache back to what it shares with `seq[start..from]` and feeds the rest of
    /// `seq` in one call (none when nothing is left).
    fn feed(&mut self, seq: &[u32], start: usize, from: usize) -> Result<(), GenError> {
        // A cache that does not hold what was fed (someone else used the model) starts over.
        if start != self.start || self.model.cached() != self.fed.len() {
            self.start = start;
            self.fed.clear();
            self.model.truncate(0);
        }
        let window = &seq[start..];
        let keep = self
            .fed
            .iter()
            .zip(&window[..from - start])
            .take_while(|(a, b)| a == b)
            .count();
        self.model.truncate(keep);
        self.fed.truncate(keep);
        let feed = &window[keep..];
        if feed.is_empty() {
            self.logits.clear();
            return Ok(());
        }
        if let Err(e) = self.model.forward(feed, &mut self.logits) {
            // The cache may hold part of the call: forget it all.
            self.model.truncate(0);
            self.fed.clear();
            return Err(e);
        }
        self.calls += 1;
        let want = feed.len() * self.model.vocab();
        if self.logits.len() != want {
            return Err(GenError::Backend {
                model: self.model.name().to_owned(),
                message: format!(
                    "returned {} logits for {} tokens of a {}-token vocabulary (want {want})",
                    self.logits.len(),
                    feed.len(),
                    self.model.vocab()
                ),
            });
        }
        self.fed.extend_from_slice(feed);
        Ok(())
    }
}
