//! [`ByteModel`]: what the byte-level codecs need from a network, whichever engine runs it.

use super::text_model::TextModel;

/// A boxed error from a model backend.
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// What the byte-level codecs (`text-cm`, `text-nn`, Equal-Info Windows) need from a network:
/// contexts of [`ByteModel::context_len`] symbols in, 256 fixed-point logits per context out.
/// [`TextModel`] is the one arca ships; tests implement it with small exact networks.
pub trait ByteModel: Sync {
    /// Number of previous bytes the network sees.
    fn context_len(&self) -> usize;
    /// The context value used before the start of a block.
    fn pad_id(&self) -> u16;
    /// Fractional bits of the fixed-point logits.
    fn logit_frac_bits(&self) -> u32;
    /// Logits for `batch` contexts (`batch * context_len` values, oldest first) into `out`
    /// (`batch * 256` values).
    fn logits(&self, contexts: &[u16], batch: usize, out: &mut Vec<i32>) -> Result<(), ModelError>;
}

impl ByteModel for TextModel {
    fn context_len(&self) -> usize {
        TextModel::context_len(self)
    }
    fn pad_id(&self) -> u16 {
        TextModel::pad_id(self)
    }
    fn logit_frac_bits(&self) -> u32 {
        TextModel::logit_frac_bits(self)
    }
    fn logits(&self, contexts: &[u16], batch: usize, out: &mut Vec<i32>) -> Result<(), ModelError> {
        TextModel::logits(self, contexts, batch, out).map_err(|e| Box::new(e) as _)
    }
}
