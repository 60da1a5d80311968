//! [`Decoder`] for the native Llama path, so it generates, drafts and verifies like any model.

use crate::decoder::Decoder;
use crate::error::GenError;
use crate::llama::forward::LlamaDecoder;

impl Decoder for LlamaDecoder {
    fn name(&self) -> &str {
        LlamaDecoder::name(self)
    }

    fn vocab(&self) -> usize {
        LlamaDecoder::vocab(self)
    }

    fn context_len(&self) -> usize {
        LlamaDecoder::context_len(self)
    }

    fn cached(&self) -> usize {
        LlamaDecoder::cached(self)
    }

    fn truncate(&mut self, len: usize) {
        LlamaDecoder::truncate(self, len);
    }

    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        LlamaDecoder::forward(self, tokens, out)
    }

    fn describe(&self) -> String {
        format!(
            "{} (native {})",
            LlamaDecoder::name(self),
            self.model().precision().as_str()
        )
    }
}
