//! [`Decoder`]: what generation asks of a model, whatever runs it. A causal language model that
//! owns its KV cache, takes `u32` tokens and returns one row of logits per token fed; the
//! native [`Net`](crate::Net) is one ([`NetDecoder`](crate::NetDecoder)), and another crate can
//! plug in a backend of its own (tract running an ONNX export, a GPU) by implementing the six
//! required methods.
//!
//! ```
//! use arca_generate::{Decoder, Net, NetConfig};
//!
//! let net = Net::random(NetConfig::gpt(16, 1, 2, 32), 1);
//! let mut model = net.decoder();
//! let mut logits = Vec::new();
//! model.forward(&[72, 105], &mut logits)?; // "Hi"
//! assert_eq!(logits.len(), 2 * model.vocab());
//! assert_eq!(model.cached(), 2);
//! model.truncate(1); // forget the "i"
//! model.forward(&[111], &mut logits)?; // "Ho"
//! assert_eq!(model.cached(), 2);
//! # Ok::<(), arca_generate::GenError>(())
//! ```

use crate::error::GenError;

/// A causal language model that owns its KV cache.
///
/// Generation ([`generate`](crate::generate), [`Lm`](crate::Lm)) keeps the cache within
/// [`context_len`](Decoder::context_len) and rolls it back with
/// [`truncate`](Decoder::truncate) after a rejected draft, so an implementation need not slide
/// windows itself. Greedy speculative output equals plain greedy output exactly when a
/// k-token `forward` gives the same bits as k one-token calls (true of the native model); a
/// backend without that property still decodes correctly, but the two outputs may part where
/// two logits are within rounding of each other.
pub trait Decoder {
    /// Name for messages.
    fn name(&self) -> &str;
    /// Entries per logits row.
    fn vocab(&self) -> usize;
    /// Positions the model attends over (the context length).
    fn context_len(&self) -> usize;
    /// Tokens the cache holds.
    fn cached(&self) -> usize;
    /// Keeps only the first `len` cached tokens (rollback after a rejected draft; 0 = reset).
    fn truncate(&mut self, len: usize);
    /// Feeds `tokens` after the cached ones in ONE call, appending them to the cache, and
    /// writes `tokens.len() * vocab()` logits (row `i` predicts the token after `tokens[i]`) to `out`
    /// (cleared and resized by the callee).
    ///
    /// # Errors
    ///
    /// [`GenError::Window`] past the context, [`GenError::Token`] for a token outside the
    /// vocabulary, [`GenError::Backend`] for whatever else a backend fails on.
    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError>;

    /// A longer description for statistics (the native drafts add how they were distilled).
    fn describe(&self) -> String {
        self.name().to_owned()
    }

    /// A draft's acceptance rate against its target measured when it was made (argmax
    /// agreement per token for greedy decoding, `sum_x min(p, q)` for sampling), which sets the
    /// first draft length; `None` when unknown.
    fn measured_acceptance(&self, greedy: bool) -> Option<f64> {
        let _ = greedy;
        None
    }
}

impl<D: Decoder + ?Sized> Decoder for &mut D {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn vocab(&self) -> usize {
        (**self).vocab()
    }
    fn context_len(&self) -> usize {
        (**self).context_len()
    }
    fn cached(&self) -> usize {
        (**self).cached()
    }
    fn truncate(&mut self, len: usize) {
        (**self).truncate(len);
    }
    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        (**self).forward(tokens, out)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn measured_acceptance(&self, greedy: bool) -> Option<f64> {
        (**self).measured_acceptance(greedy)
    }
}

impl<D: Decoder + ?Sized> Decoder for Box<D> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn vocab(&self) -> usize {
        (**self).vocab()
    }
    fn context_len(&self) -> usize {
        (**self).context_len()
    }
    fn cached(&self) -> usize {
        (**self).cached()
    }
    fn truncate(&mut self, len: usize) {
        (**self).truncate(len);
    }
    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        (**self).forward(tokens, out)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn measured_acceptance(&self, greedy: bool) -> Option<f64> {
        (**self).measured_acceptance(greedy)
    }
}
