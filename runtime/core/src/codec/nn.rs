//! The `text-nn` codec: the network and small adaptive context models (revision 2; revision 1,
//! still read, had the network alone), sized so that a decoder needs the network, 29 KiB of
//! tables and one block of memory. The coder itself is `arca-embedded`'s, the same code the
//! Cortex-M firmware runs; this file adapts a [`ByteModel`] to it.

use arca_coder::RangeEncoder;

use crate::container::{Codec, Header, Stream};
use crate::engine::{ByteModel, ModelError};

use super::blocks::{self, ENCODE_BATCH, encode_blocks, trimmed_bytes};
use super::error::CodecError;

/// Default block size of `text-nn` streams: a decoder holds one block in RAM to check its CRC
/// before writing it, and the Cortex-M firmware (`targets/cortex-m`) has 16 KiB for it. Each
/// block starts with PAD context and fresh adaptive models.
pub const NN_BLOCK_SIZE: u32 = 16 << 10;

/// A [`ByteModel`] seen as an [`arca_embedded::Network`]: one context per call.
pub(crate) struct NnNetwork<'m> {
    model: &'m dyn ByteModel,
    logits: Vec<i32>,
}

impl<'m> NnNetwork<'m> {
    fn new(model: &'m dyn ByteModel) -> Self {
        NnNetwork {
            model,
            logits: Vec::with_capacity(256),
        }
    }
}

impl arca_embedded::Network for NnNetwork<'_> {
    type Error = ModelError;
    fn context_len(&self) -> usize {
        self.model.context_len()
    }
    fn pad(&self) -> u16 {
        self.model.pad_id()
    }
    fn frac_bits(&self) -> u32 {
        self.model.logit_frac_bits()
    }
    fn logits(&mut self, context: &[u16], out: &mut [i32; 256]) -> Result<(), ModelError> {
        self.logits.clear();
        self.model.logits(context, 1, &mut self.logits)?;
        let row = self
            .logits
            .get(..256)
            .ok_or_else(|| ModelError::from("the network gave fewer than 256 logits"))?;
        out.copy_from_slice(row);
        Ok(())
    }
}

/// The `text-nn` encoder's source: the whole block is known, so positions are evaluated
/// [`ENCODE_BATCH`] at a time (the same integers as one at a time: the model is integer-exact,
/// and `tests/tests/embedded.rs` checks the streams are identical).
pub(crate) struct NnBatched<'m> {
    model: &'m dyn ByteModel,
    data: &'m [u8],
    start: usize,
    rows: usize,
    contexts: Vec<u16>,
    logits: Vec<i32>,
}

impl arca_embedded::LogitsSource for NnBatched<'_> {
    type Error = ModelError;

    fn frac_bits(&self) -> u32 {
        self.model.logit_frac_bits()
    }

    fn logits(&mut self, pos: usize, _history: &[u8]) -> Result<&[i32; 256], ModelError> {
        if pos < self.start || pos >= self.start + self.rows {
            let n = self.model.context_len();
            let batch = ENCODE_BATCH.min(self.data.len().saturating_sub(pos)).max(1);
            self.contexts.resize(batch * n, 0);
            for (b, row) in self.contexts.chunks_exact_mut(n).enumerate() {
                arca_embedded::context_at(self.data, pos + b, self.model.pad_id(), row);
            }
            self.logits.clear();
            self.model.logits(&self.contexts, batch, &mut self.logits)?;
            if self.logits.len() != batch * 256 {
                return Err("the network gave the wrong number of logits".into());
            }
            self.start = pos;
            self.rows = batch;
        }
        let at = (pos - self.start) * 256;
        self.logits
            .get(at..at + 256)
            .and_then(|r| <&[i32; 256]>::try_from(r).ok())
            .ok_or_else(|| "logits out of range".into())
    }
}

/// A `text-nn` coding error as a codec error (a decoder's failure is block corruption; the
/// caller sets the index).
pub(crate) fn nn_error<E: Into<ModelError>>(e: arca_embedded::CodeError<E>) -> CodecError {
    match e {
        arca_embedded::CodeError::Codec(arca_embedded::Error::Corrupt) => {
            CodecError::BlockCorrupt { index: usize::MAX }
        }
        arca_embedded::CodeError::Codec(e) => CodecError::Model(Box::new(e)),
        arca_embedded::CodeError::Source(e) => CodecError::Model(e.into()),
    }
}

/// Encodes one `text-nn` block, batched (`true`) or one network call per byte: the stream is
/// the same either way (the encoder's batches are a speed-up only).
pub(crate) fn encode_block(
    model: &dyn ByteModel,
    block: &[u8],
    batched: bool,
) -> Result<Vec<u8>, CodecError> {
    let mut enc = arca_embedded::Encoding::new(RangeEncoder::new(Vec::new()));
    let mut copy = block.to_vec();
    let mut adaptive = Box::new(arca_embedded::Adaptive::new());
    if batched {
        let mut source = NnBatched {
            model,
            data: block,
            start: 0,
            rows: 0,
            contexts: Vec::new(),
            logits: Vec::new(),
        };
        arca_embedded::code_block_adaptive(&mut enc, &mut source, &mut adaptive, &mut copy)
            .map_err(nn_error)?;
    } else {
        let mut source = arca_embedded::StepSource::new(NnNetwork::new(model));
        arca_embedded::code_block_adaptive(&mut enc, &mut source, &mut adaptive, &mut copy)
            .map_err(nn_error)?;
    }
    let words = enc
        .finish()
        .map_err(|e| CodecError::Options(format!("range coder: {e}")))?;
    Ok(trimmed_bytes(&words))
}

/// Decodes one coded `text-nn` block of `len` bytes of codec revision `revision` (1 or 2,
/// checked with the header), one network call per byte.
pub(crate) fn decode_block(
    model: &dyn ByteModel,
    revision: u16,
    data: &[u8],
    len: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![0u8; len];
    let mut dec =
        arca_embedded::Decoding::new(data).map_err(|_| CodecError::BlockCorrupt { index: 0 })?;
    let mut source = arca_embedded::StepSource::new(NnNetwork::new(model));
    if revision == 1 {
        arca_embedded::code_block(&mut dec, &mut source, &mut out).map_err(nn_error)?;
    } else {
        let mut adaptive = Box::new(arca_embedded::Adaptive::new());
        arca_embedded::code_block_adaptive(&mut dec, &mut source, &mut adaptive, &mut out)
            .map_err(nn_error)?;
    }
    Ok(out)
}

/// Compresses `input` into a `text-nn` stream with one network call per byte, the decoder's
/// call sequence: for tests that prove the batched encoder writes the same stream.
#[doc(hidden)]
pub fn compress_nn_stepwise(
    model: &dyn ByteModel,
    model_id: u128,
    model_name: &str,
    input: &[u8],
    block_size: u32,
) -> Result<Vec<u8>, CodecError> {
    let (entries, datas) = encode_blocks(input, block_size.max(1), 1, |block| {
        encode_block(model, block, false)
    })?;
    Ok(Stream::write(
        &header((model_id, model_name), block_size, input.len()),
        &entries,
        &datas,
    ))
}

/// The header of a `text-nn` stream.
pub(crate) fn header(model: (u128, &str), block_size: u32, len: usize) -> Header {
    blocks::header(
        Codec::TextNn,
        arca_embedded::PRECISION as u8,
        arca_embedded::REVISION,
        model,
        block_size,
        len as u64,
    )
}
