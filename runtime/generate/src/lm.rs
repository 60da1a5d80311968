//! [`Lm`]: a model and its KV cache, fed from a growing sequence through the sliding
//! context windows ([`window_start`]).

use crate::error::GenError;
use crate::net::{Cache, Net, Scratch, VOCAB};

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
