//! Equal-Info Windows in a `.arca` stream (`text-eiw`): the blocks are the segments, the block
//! data are the windows. The window coder itself is [`crate::eiw`]; this file puts its output
//! in the container and checks what comes back.

use std::ops::Range;

use crate::container::{BlockEntry, BlockMode, Codec, Stream};
use crate::eiw::{self, Schedule, Tokenizer};
use crate::engine::ByteModel;

use super::blocks::{self, check_block};
use super::error::CodecError;

/// Options of Equal-Info Window compression (see [`crate::eiw`]).
#[derive(Debug, Clone, Copy)]
pub struct EiwOptions {
    /// Window size in bits: a multiple of 8 in `16..=4096`.
    pub bits: u32,
    /// Bytes per segment (a block of the stream; windows never cross one).
    pub segment: u32,
    /// Threads and batch size: speed only, never the output.
    pub schedule: Schedule,
}

impl EiwOptions {
    /// Windows of `bits` bits, default segment and schedule.
    pub fn new(bits: u32) -> Self {
        EiwOptions {
            bits,
            segment: eiw::DEFAULT_SEGMENT,
            schedule: Schedule::default(),
        }
    }
}

/// Compresses `input` into Equal-Info Windows of `opts.bits` bits with `model`, whose bundle is
/// `(id, name)`.
pub(crate) fn compress(
    model: &dyn ByteModel,
    id_name: (u128, &str),
    input: &[u8],
    opts: &EiwOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, CodecError> {
    if opts.segment == 0 {
        return Err(CodecError::Options(
            "segment must be at least 1 byte".into(),
        ));
    }
    if input.len() as u64 / u64::from(opts.segment) >= u64::from(u32::MAX) {
        return Err(CodecError::TooLarge("more than 2^32 segments".into()));
    }
    let tok = Tokenizer::new(model, opts.bits)?.with_segment(opts.segment);
    let segments = tok.encode_segments(input, &opts.schedule)?;
    progress(input.len() as u64);
    let mut entries = Vec::with_capacity(segments.len());
    let mut datas = Vec::with_capacity(segments.len());
    for (plain, windows) in input.chunks(opts.segment as usize).zip(segments) {
        let len = u32::try_from(windows.as_bytes().len())
            .map_err(|_| CodecError::TooLarge("a segment's windows exceed 4 GiB".into()))?;
        entries.push(BlockEntry::new(BlockMode::Coded, plain, len));
        datas.push(windows.as_bytes().to_vec());
    }
    let mut header = blocks::header(
        Codec::TextEiw,
        16,
        eiw::REVISION,
        id_name,
        opts.segment,
        input.len() as u64,
    );
    header.window_bits = opts.bits as u16;
    Ok(Stream::write(&header, &entries, &datas))
}

/// Decodes blocks `range` of an Equal-Info Window stream, all windows in one batched run on
/// `threads` workers, checking each block's length and checksum.
pub(crate) fn decode_blocks(
    model: &dyn ByteModel,
    stream: &Stream<'_>,
    range: Range<usize>,
    threads: usize,
) -> Result<Vec<Vec<u8>>, CodecError> {
    let bits = u32::from(stream.header().window_bits);
    let tok = Tokenizer::new(model, bits)?.with_revision(stream.header().codec_revision)?;
    let width = bits as usize / 8;
    let mut runs = Vec::with_capacity(range.len());
    let mut first = stream.entries()[..range.start]
        .iter()
        .map(|e| e.compressed_len as usize / width)
        .sum::<usize>();
    for i in range.clone() {
        let data = stream
            .block_data(i)
            .ok_or(CodecError::BlockCorrupt { index: i })?;
        if stream.entries()[i].mode != BlockMode::Coded {
            return Err(CodecError::BlockCorrupt { index: i });
        }
        runs.push((data, first));
        first += data.len() / width;
    }
    let schedule = Schedule {
        threads,
        ..Schedule::default()
    };
    let plains = tok.decode_runs(&runs, &schedule)?;
    for (i, plain) in range.zip(&plains) {
        check_block(stream, i, plain)?;
    }
    Ok(plains)
}
