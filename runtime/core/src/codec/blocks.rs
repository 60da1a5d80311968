//! The block machinery every codec shares, written once: the header of a stream of blocks, the
//! parallel encoder with its stored-block fallback, the words-to-bytes trim, and the parallel
//! decoder that checks every block's length and CRC; and the walk over a file's frames (streams
//! back to back), with a byte range split across them.
//!
//! A codec supplies only what is its own: how one block of plaintext becomes coded bytes, and
//! back. Everything here is the same for `text-cm`, `text-nn` and `image-pc` streams (Equal-Info
//! Windows decode all of a stream's windows in one batched run and check blocks with
//! [`check_block`]).

use std::ops::Range;

use rayon::prelude::*;

use crate::container::{self, BlockEntry, BlockMode, Codec, Header, Stream};

use super::error::CodecError;

/// Positions an encoder asks the network for in one call (the model's logits do not depend on
/// the batch, so this is speed only).
pub(crate) const ENCODE_BATCH: usize = 1024;

/// The header of a stream of `len` bytes in blocks of `block_size` bytes, coded by `codec` at
/// `revision` with the model `(model_id, model_name)` (`0, "none"` for none).
pub(crate) fn header(
    codec: Codec,
    precision: u8,
    revision: u16,
    (model_id, model_name): (u128, &str),
    block_size: u32,
    len: u64,
) -> Header {
    Header {
        codec,
        precision,
        model_id,
        model_name: model_name.to_owned(),
        window_bits: 0,
        codec_revision: revision,
        block_size,
        original_len: len,
        block_count: container::block_count(len, block_size),
    }
}

/// Checks that a stream's header has the codec revision this build implements and the model
/// we have.
pub(crate) fn check_header(
    h: &Header,
    revision: u16,
    model_id: u128,
    model_name: &str,
) -> Result<(), CodecError> {
    if h.codec_revision != revision {
        return Err(CodecError::Revision {
            found: h.codec_revision,
            expected: revision,
        });
    }
    if h.model_id != model_id {
        return Err(CodecError::ModelMismatch {
            stream_name: h.model_name.clone(),
            stream_id: h.model_id,
            have_name: model_name.to_owned(),
            have_id: model_id,
        });
    }
    Ok(())
}

/// Runs `f` on `threads` workers (0 = the caller's rayon pool, or one per core; see
/// [`crate::pool`]).
fn on_workers<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, CodecError> {
    crate::pool::install(threads, f).map_err(CodecError::Options)
}

/// The little-endian bytes of a range coder's words, without the trailing zero bytes (the
/// decoders read zeros past the end).
pub(crate) fn trimmed_bytes(words: &[u32]) -> Vec<u8> {
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(arca_embedded::stored_len(words));
    bytes
}

/// The table entry and data of `plain` coded as `coded`: stored as it is when coding did not
/// make it smaller.
pub(crate) fn coded_or_stored(plain: &[u8], coded: Vec<u8>) -> (BlockEntry, Vec<u8>) {
    if coded.len() >= plain.len() {
        (
            BlockEntry::new(BlockMode::Stored, plain, plain.len() as u32),
            plain.to_vec(),
        )
    } else {
        let len = coded.len() as u32;
        (BlockEntry::new(BlockMode::Coded, plain, len), coded)
    }
}

/// Cuts `input` into blocks of `block_size` bytes and codes each with `code` on `threads`
/// workers (a block that does not shrink is stored); the table entries and the block data, in
/// order, or the first error.
pub(crate) fn encode_blocks(
    input: &[u8],
    block_size: u32,
    threads: usize,
    code: impl Fn(&[u8]) -> Result<Vec<u8>, CodecError> + Sync,
) -> Result<(Vec<BlockEntry>, Vec<Vec<u8>>), CodecError> {
    if block_size == 0 {
        return Err(CodecError::Options(
            "block size must be at least 1 byte".into(),
        ));
    }
    let blocks: Vec<&[u8]> = input.chunks(block_size as usize).collect();
    if blocks.len() > u32::MAX as usize {
        return Err(CodecError::TooLarge("more than 2^32 blocks".into()));
    }
    let coded: Vec<Result<(BlockEntry, Vec<u8>), CodecError>> = on_workers(threads, || {
        blocks
            .par_iter()
            .map(|block| Ok(coded_or_stored(block, code(block)?)))
            .collect()
    })?;
    let mut entries = Vec::with_capacity(coded.len());
    let mut datas = Vec::with_capacity(coded.len());
    for r in coded {
        let (e, d) = r?;
        entries.push(e);
        datas.push(d);
    }
    Ok((entries, datas))
}

/// How a codec decodes one coded block: from its table entry and its data to the plaintext.
pub(crate) type DecodeFn<'a> = dyn Fn(BlockEntry, &[u8]) -> Result<Vec<u8>, CodecError> + Sync + 'a;

/// Checks a decoded block against its table entry (length and CRC-32).
pub(crate) fn check_block(
    stream: &Stream<'_>,
    index: usize,
    plain: &[u8],
) -> Result<(), CodecError> {
    let entry = stream.entries()[index];
    if plain.len() != entry.original_len as usize || crc32fast::hash(plain) != entry.crc32 {
        return Err(CodecError::BlockCorrupt { index });
    }
    Ok(())
}

/// Decodes one block: a stored block is copied, a coded one goes to `decode` (with its table
/// entry and data); then it is checked. A decoder's `BlockCorrupt` names this block.
pub(crate) fn decode_block(
    stream: &Stream<'_>,
    index: usize,
    progress: &(dyn Fn(u64) + Sync),
    decode: &DecodeFn<'_>,
) -> Result<Vec<u8>, CodecError> {
    let corrupt = CodecError::BlockCorrupt { index };
    let entry = *stream.entries().get(index).ok_or(corrupt)?;
    let data = stream
        .block_data(index)
        .ok_or(CodecError::BlockCorrupt { index })?;
    let plain = match entry.mode {
        BlockMode::Stored => {
            progress(u64::from(entry.original_len));
            data.to_vec()
        }
        BlockMode::Coded => match decode(entry, data) {
            Ok(p) => p,
            Err(CodecError::BlockCorrupt { .. }) => {
                return Err(CodecError::BlockCorrupt { index });
            }
            Err(e) => return Err(e),
        },
    };
    check_block(stream, index, &plain)?;
    Ok(plain)
}

/// Decodes blocks `range` of `stream` with [`decode_block`] on `threads` workers; the
/// plaintexts in order, or the first error.
pub(crate) fn decode_blocks(
    stream: &Stream<'_>,
    range: Range<usize>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
    decode: &DecodeFn<'_>,
) -> Result<Vec<Vec<u8>>, CodecError> {
    let decoded: Vec<Result<Vec<u8>, CodecError>> = on_workers(threads, || {
        range
            .into_par_iter()
            .map(|i| decode_block(stream, i, progress, decode))
            .collect()
    })?;
    decoded.into_iter().collect()
}

/// Decodes the streams of `bytes` (one, or several back to back) with `decode`, which gets
/// each stream and the part of `range` that falls in it (counted from the stream's start;
/// `None` for all of it), and joins what it returns.
pub(crate) fn decode_frames(
    bytes: &[u8],
    range: Option<Range<u64>>,
    mut decode: impl FnMut(&Stream<'_>, Option<Range<u64>>) -> Result<Vec<u8>, CodecError>,
) -> Result<Vec<u8>, CodecError> {
    let frames = container::frames(bytes)?;
    if let [stream] = frames.as_slice() {
        return decode(stream, range);
    }
    let total: u64 = frames.iter().map(|f| f.header().original_len).sum();
    if let Some(r) = &range
        && (r.start > r.end || r.end > total)
    {
        return Err(CodecError::Options(format!(
            "range {}..{} is not within the {total} bytes of the original",
            r.start, r.end
        )));
    }
    let mut out = Vec::new();
    let mut start = 0u64;
    for stream in &frames {
        let len = stream.header().original_len;
        match &range {
            None => out.extend(decode(stream, None)?),
            Some(r) => {
                let (from, to) = (r.start.max(start), r.end.min(start + len));
                if from < to {
                    out.extend(decode(stream, Some(from - start..to - start))?);
                }
            }
        }
        start += len;
    }
    Ok(out)
}
