//! arca-generate's traits for the tract decoder and the `tokenizers` tokenizer, so a model
//! directory (or an `hf-decoder` bundle) generates, drafts and is served like a native model.

use arca_generate::{Decoder, GenError, TextTokenizer};

use crate::decoder::HfDecoder;
use crate::error::HfError;
use crate::tokenizer::HfTokenizer;

fn gen_error(model: &str, e: HfError) -> GenError {
    GenError::Backend {
        model: model.to_owned(),
        message: e.to_string(),
    }
}

impl Decoder for HfDecoder {
    fn name(&self) -> &str {
        HfDecoder::name(self)
    }

    fn vocab(&self) -> usize {
        HfDecoder::vocab(self)
    }

    fn context_len(&self) -> usize {
        HfDecoder::context_len(self)
    }

    fn cached(&self) -> usize {
        HfDecoder::cached(self)
    }

    fn truncate(&mut self, len: usize) {
        HfDecoder::truncate(self, len);
    }

    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        HfDecoder::forward(self, tokens, out).map_err(|e| gen_error(HfDecoder::name(self), e))
    }

    fn describe(&self) -> String {
        format!("{} (tract)", HfDecoder::name(self))
    }
}

impl TextTokenizer for HfTokenizer {
    fn encode(&self, text: &[u8]) -> Result<Vec<u32>, GenError> {
        HfTokenizer::encode(self, text).map_err(|e| GenError::Symbol {
            what: e.to_string(),
            symbols: format!("the {} tokens of its tokenizer.json", self.vocab_size()),
        })
    }

    fn decode(&self, tokens: &[u32]) -> Vec<u8> {
        // The ids come from the model, inside its vocabulary: a failure here is a tokenizer
        // without a piece for an id, shown as U+FFFD rather than dropped.
        HfTokenizer::decode(self, tokens).unwrap_or_else(|_| "\u{FFFD}".as_bytes().to_vec())
    }

    fn vocab(&self) -> usize {
        self.vocab_size()
    }

    fn eos(&self) -> Option<u32> {
        self.eos_ids().first().copied()
    }

    fn describe(&self) -> String {
        format!(
            "{} tokenizer, {} tokens",
            self.model_type(),
            self.vocab_size()
        )
    }

    fn fingerprint(&self) -> u64 {
        let f = HfTokenizer::fingerprint(self);
        (f as u64) ^ ((f >> 64) as u64)
    }

    fn empty_prompt(&self) -> Option<u32> {
        self.start()
    }
}
