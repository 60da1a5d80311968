//! The `text-nn` codec: the network and small adaptive context models, sized so that a decoder
//! needs the network, 40 KiB of tables and 16 KiB of history (revision 3: the models see the
//! last [`arca_embedded::WINDOW`] bytes, and a block carries a checksum per window so that a
//! decoder can write it in checked pieces; revision 2, still read, needed the whole block in
//! memory; revision 1 had the network alone). The coder itself is `arca-embedded`'s, the same
//! code the Cortex-M firmware runs; this file adapts a [`ByteModel`] to it.

use arca_coder::RangeEncoder;

use crate::container::{Codec, Header, Stream};
use crate::engine::{ByteModel, ModelError};

use super::blocks::{self, ENCODE_BATCH, encode_blocks, trimmed_bytes};
use super::error::CodecError;

/// Default block size of `text-nn` streams. Each block starts with PAD context and fresh
/// adaptive models, so longer blocks compress better (the models learn for longer); a decoder
/// holds only the last [`arca_embedded::WINDOW`] bytes whatever the block size, and the PC
/// decodes blocks in parallel.
pub const NN_BLOCK_SIZE: u32 = 256 << 10;

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

    fn logits(&mut self, history: arca_embedded::History<'_>) -> Result<&[i32; 256], ModelError> {
        let pos = history.pos();
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

/// Encodes one `text-nn` block (revision 3: the checksums of its windows but the last, then the
/// coded bytes), batched (`true`) or one network call per byte: the stream is the same either
/// way (the encoder's batches are a speed-up only).
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
        arca_embedded::code_block_windowed(&mut enc, &mut source, &mut adaptive, &mut copy)
            .map_err(nn_error)?;
    } else {
        let mut source = arca_embedded::StepSource::new(NnNetwork::new(model));
        arca_embedded::code_block_windowed(&mut enc, &mut source, &mut adaptive, &mut copy)
            .map_err(nn_error)?;
    }
    let words = enc
        .finish()
        .map_err(|e| CodecError::Options(format!("range coder: {e}")))?;
    let mut out: Vec<u8> = arca_embedded::stream::segment_crcs(block).collect();
    out.extend_from_slice(&trimmed_bytes(&words));
    Ok(out)
}

/// Decodes one coded `text-nn` block of `len` bytes of codec revision `revision` (1 to 3,
/// checked with the header), one network call per byte. A revision 3 block's window checksums
/// are checked here (the firmware checks each before writing its window; the caller checks the
/// block's).
pub(crate) fn decode_block(
    model: &dyn ByteModel,
    revision: u16,
    data: &[u8],
    len: usize,
) -> Result<Vec<u8>, CodecError> {
    let corrupt = || CodecError::BlockCorrupt { index: 0 };
    let mut out = vec![0u8; len];
    let (crcs, data) = if revision >= 3 {
        arca_embedded::stream::split_segment_crcs(data, len).ok_or_else(corrupt)?
    } else {
        (&[][..], data)
    };
    let mut dec = arca_embedded::Decoding::new(data).map_err(|_| corrupt())?;
    let mut source = arca_embedded::StepSource::new(NnNetwork::new(model));
    let mut adaptive = Box::new(arca_embedded::Adaptive::new());
    match revision {
        1 => arca_embedded::code_block(&mut dec, &mut source, &mut out),
        2 => arca_embedded::code_block_adaptive(&mut dec, &mut source, &mut adaptive, &mut out),
        _ => arca_embedded::code_block_windowed(&mut dec, &mut source, &mut adaptive, &mut out),
    }
    .map_err(nn_error)?;
    let checked = out
        .chunks(arca_embedded::WINDOW)
        .zip(crcs.chunks_exact(4))
        .all(|(segment, crc)| crc32fast::hash(segment).to_le_bytes() == crc);
    if !checked {
        return Err(corrupt());
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
