//! arca-embedded: the `text-nn` codec, `no_std` and allocation-free, for PCs and microcontrollers.
//!
//! `text-nn` is arca's text codec for small devices: an integer-exact byte-level network predicts
//! each byte, and its fixed-point logits become a 24-bit integer CDF. In revision 2 (what this
//! build writes) small adaptive context models ([`adaptive`]: orders 0-3 and a match model, 29
//! KiB of tables) are mixed with it bit by bit, so a file the network never saw (a log, JSON)
//! is learned as it is coded; revision 1 (still read) coded each byte with the network's CDF
//! alone. Either way the range coder is [`arca_coder`]'s and the whole decoder state is the
//! network's scratch buffers, the context models, the range decoder and one block of output: a
//! Cortex-M4 with 64 KB of RAM decodes what `arca compress` wrote on a PC.
//!
//! The crate is the single implementation of that codec:
//!
//! * [`code_block`] codes one block in either direction. The encoder and the decoder call it
//!   with the same model, in the same order; they differ only in the [`SymbolCoder`] (encode the
//!   known byte, or decode one) and in where the logits come from ([`LogitsSource`]: the PC
//!   encoder evaluates many positions in one batch, a decoder one position at a time; allowed
//!   because the model is integer-exact, so its logits do not depend on the batch).
//! * [`stream`] reads a `.arca` stream from a byte slice without copying (header, block table,
//!   CRCs) and [`stream::decode`] decodes a whole `text-nn` stream block by block into a caller's
//!   buffer, checking each block's CRC-32 before handing it to a sink.
//!
//! The PC runtime (`arca-runtime`) writes `text-nn` streams with [`code_block`] and its own
//! container writer; the firmware in `targets/cortex-m` decodes them with [`stream::decode`] and
//! a model emitted by `arca-codegen emit`.
//!
//! ```
//! use arca_embedded::{Decoding, Encoding, Network, StepSource, code_block};
//!
//! /// A toy network: prefers the byte after the previous one.
//! struct Next;
//! impl Network for Next {
//!     type Error = core::convert::Infallible;
//!     fn context_len(&self) -> usize { 2 }
//!     fn pad(&self) -> u16 { 256 }
//!     fn frac_bits(&self) -> u32 { 8 }
//!     fn logits(&mut self, ctx: &[u16], out: &mut [i32; 256]) -> Result<(), Self::Error> {
//!         out.fill(0);
//!         out[usize::from(ctx[1].wrapping_add(1) as u8)] = 8 << 8;
//!         Ok(())
//!     }
//! }
//!
//! let mut plain = *b"abcdefgh";
//! let mut enc = Encoding::new(arca_coder::RangeEncoder::new(Vec::new()));
//! code_block(&mut enc, &mut StepSource::new(Next), &mut plain).unwrap();
//! let words = enc.finish().unwrap();
//! let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
//! bytes.truncate(arca_embedded::stored_len(&words));
//! assert!(bytes.len() < 8);
//!
//! let mut out = [0u8; 8];
//! let mut dec = Decoding::new(&bytes).unwrap();
//! code_block(&mut dec, &mut StepSource::new(Next), &mut out).unwrap();
//! assert_eq!(&out, b"abcdefgh");
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate alloc;

use core::fmt;

use arca_coder::{ByteWordCursor, RangeDecoder, RangeEncoder, WriteWords};

pub mod adaptive;
mod history;
pub mod stream;

pub use adaptive::Adaptive;
pub use history::{History, WINDOW};

/// Bits of precision of the byte distributions (the range coder's maximum).
pub const PRECISION: u32 = 24;
/// Codec revision this build writes: bumped whenever a change here changes the coded bits;
/// stored in each stream. Revision 1 codes each byte with the network's distribution alone
/// ([`code_block`]); revision 2 mixes in small adaptive models, bit by bit
/// ([`code_block_adaptive`]); revision 3 lets a block be longer than a decoder's memory: the
/// models see the last [`WINDOW`] bytes, and a decoder checks and writes the block in segments
/// of that length ([`code_segment`]).
pub const REVISION: u16 = 3;
/// The oldest revision this build still reads.
pub const OLDEST_REVISION: u16 = 1;
/// Longest network context [`StepSource`] builds (bytes).
pub const MAX_CONTEXT: usize = 256;

/// An integer-exact byte-level network: fixed-point logits of the next byte from the
/// `context_len` bytes before it.
pub trait Network {
    /// What can go wrong evaluating it (`Infallible` for generated code).
    type Error;
    /// Number of previous bytes the network sees (at most [`MAX_CONTEXT`] for [`StepSource`]).
    fn context_len(&self) -> usize;
    /// The context value before the start of a block.
    fn pad(&self) -> u16;
    /// Fractional bits of the logits (logit in nats = value / 2^frac_bits), at most 16.
    fn frac_bits(&self) -> u32;
    /// Logits of the 256 byte values after `context` (`context_len` values, oldest first).
    fn logits(&mut self, context: &[u16], out: &mut [i32; 256]) -> Result<(), Self::Error>;
}

/// Where the logits of each position of a block come from.
pub trait LogitsSource {
    /// What can go wrong.
    type Error;
    /// Fractional bits of the logits.
    fn frac_bits(&self) -> u32;
    /// The logits of the byte at `history.pos()` given the block's bytes before it.
    fn logits(&mut self, history: History<'_>) -> Result<&[i32; 256], Self::Error>;
}

/// Writes the network context of position `pos` (the `out.len()` bytes before it, oldest first,
/// `pad` before the block's start) into `out`.
pub fn context_at(history: &[u8], pos: usize, pad: u16, out: &mut [u16]) {
    let n = out.len();
    for (j, slot) in out.iter_mut().enumerate() {
        // Slot j holds the byte at pos - n + j.
        *slot = match (pos + j).checked_sub(n) {
            Some(i) => history.get(i).map_or(pad, |&b| u16::from(b)),
            None => pad,
        };
    }
}

/// A [`LogitsSource`] that evaluates the network once per position, from the history.
pub struct StepSource<N: Network> {
    net: N,
    context: [u16; MAX_CONTEXT],
    logits: [i32; 256],
}

impl<N: Network> StepSource<N> {
    /// A source over `net`.
    pub fn new(net: N) -> Self {
        StepSource {
            net,
            context: [0; MAX_CONTEXT],
            logits: [0; 256],
        }
    }

    /// The network back.
    pub fn into_inner(self) -> N {
        self.net
    }
}

/// Errors of a [`StepSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError<E> {
    /// The network's context is longer than [`MAX_CONTEXT`].
    ContextTooLong(usize),
    /// The network failed.
    Network(E),
}

impl<E: fmt::Display> fmt::Display for StepError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::ContextTooLong(n) => write!(
                f,
                "network context of {n} bytes is longer than the {MAX_CONTEXT} supported"
            ),
            StepError::Network(e) => write!(f, "network: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for StepError<E> {}

impl<N: Network> LogitsSource for StepSource<N> {
    type Error = StepError<N::Error>;

    fn frac_bits(&self) -> u32 {
        self.net.frac_bits()
    }

    fn logits(&mut self, history: History<'_>) -> Result<&[i32; 256], Self::Error> {
        let n = self.net.context_len();
        let ctx = self
            .context
            .get_mut(..n)
            .ok_or(StepError::ContextTooLong(n))?;
        let pad = self.net.pad();
        for (j, slot) in ctx.iter_mut().enumerate() {
            // Slot j holds the byte n - j back (a window is far longer than any context).
            *slot = history.back(n - j).map_or(pad, u16::from);
        }
        self.net
            .logits(ctx, &mut self.logits)
            .map_err(StepError::Network)?;
        Ok(&self.logits)
    }
}

/// One byte through the range coder, in either direction.
pub trait SymbolCoder {
    /// Codes a byte with the cumulative table `cdf` (257 entries, total `2^PRECISION`). The
    /// encoder codes `byte` and returns it; the decoder ignores `byte` and returns the decoded
    /// one.
    fn code(&mut self, cdf: &[u32; 257], byte: u8) -> Result<u8, Error>;
    /// Codes one binary decision with `P(1) = p1 / 2^16` (`p1` in `1..=65535`); as
    /// [`SymbolCoder::code`], the encoder codes `bit`, the decoder returns the decoded one.
    fn code_bit(&mut self, p1: u16, bit: bool) -> Result<bool, Error>;
}

/// The encoding direction: a range encoder writing words to `W`.
pub struct Encoding<W: WriteWords>(RangeEncoder<W>);

impl<W: WriteWords> Encoding<W> {
    /// Encodes into `encoder`.
    pub fn new(encoder: RangeEncoder<W>) -> Self {
        Encoding(encoder)
    }

    /// Flushes the encoder and returns its sink (see [`stored_len`] for what to keep).
    pub fn finish(self) -> Result<W, Error> {
        self.0.finish().map_err(|_| Error::Encoder)
    }
}

impl<W: WriteWords> SymbolCoder for Encoding<W> {
    #[inline]
    fn code(&mut self, cdf: &[u32; 257], byte: u8) -> Result<u8, Error> {
        self.0
            .encode_with_cdf(cdf, usize::from(byte), PRECISION)
            .map_err(|_| Error::Encoder)?;
        Ok(byte)
    }

    #[inline]
    fn code_bit(&mut self, p1: u16, bit: bool) -> Result<bool, Error> {
        self.0.encode_bit(bit, p1).map_err(|_| Error::Encoder)?;
        Ok(bit)
    }
}

/// Length in bytes of the little-endian form of `words` worth storing: trailing zero bytes are
/// dropped, because the decoder reads zeros past the end.
pub fn stored_len(words: &[u32]) -> usize {
    let mut n = words.len() * 4;
    for w in words.iter().rev() {
        let zeros = (w.leading_zeros() / 8) as usize;
        n -= zeros;
        if zeros < 4 {
            break;
        }
    }
    n
}

/// The decoding direction: a range decoder over a block's bytes.
pub struct Decoding<'a>(RangeDecoder<ByteWordCursor<'a>>);

impl<'a> Decoding<'a> {
    /// A decoder over one coded block.
    pub fn new(block: &'a [u8]) -> Result<Self, Error> {
        RangeDecoder::new(ByteWordCursor::new(block))
            .map(Decoding)
            .map_err(|_| Error::Corrupt)
    }
}

impl SymbolCoder for Decoding<'_> {
    #[inline]
    fn code(&mut self, cdf: &[u32; 257], _byte: u8) -> Result<u8, Error> {
        // A decoder error can only come from malformed data.
        let s = self
            .0
            .decode_with_cdf(cdf, PRECISION)
            .map_err(|_| Error::Corrupt)?;
        u8::try_from(s).map_err(|_| Error::Corrupt)
    }

    #[inline]
    fn code_bit(&mut self, p1: u16, _bit: bool) -> Result<bool, Error> {
        self.0.decode_bit(p1).map_err(|_| Error::Corrupt)
    }
}

/// Errors of [`code_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The coded data is damaged.
    Corrupt,
    /// The range encoder failed (its sink is full).
    Encoder,
    /// The logits do not form a distribution (a bad `frac_bits`).
    Distribution,
    /// A revision 3 buffer that holds neither the block nor a whole number of windows.
    Buffer,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Corrupt => "coded data is corrupted",
            Error::Encoder => "range encoder failed (output buffer full)",
            Error::Distribution => "network logits do not form a distribution",
            Error::Buffer => "the buffer holds neither the block nor a whole number of windows",
        })
    }
}

impl core::error::Error for Error {}

/// Turns a row of fixed-point logits into the cumulative table the coder uses (the codec's
/// one quantization step: every byte gets a frequency of at least 1, the total is `2^24`).
pub fn cdf_of_logits(
    logits: &[i32; 256],
    frac_bits: u32,
    cdf: &mut [u32; 257],
) -> Result<(), Error> {
    let mut freqs = [0u32; 256];
    arca_coder::quantize_logits(logits, frac_bits, PRECISION, &mut freqs)
        .map_err(|_| Error::Distribution)?;
    arca_coder::cumulative(&freqs, cdf).map_err(|_| Error::Distribution)
}

/// Codes one block, in either direction. Encoding: `block` holds the plaintext and is left
/// unchanged. Decoding: `block` is overwritten with the decoded bytes (its length is the
/// block's original length). The same steps run in the same order either way; a failure of the
/// source comes back as [`CodeError::Source`] with its own error, so callers keep its message.
pub fn code_block<C: SymbolCoder, S: LogitsSource>(
    coder: &mut C,
    source: &mut S,
    block: &mut [u8],
) -> Result<(), CodeError<S::Error>> {
    let len = block.len();
    walk(source, block, usize::MAX, 0..len, |cdf, _, byte| {
        coder.code(cdf, byte)
    })
}

/// Codes one block as [`code_block`] does, with revision 2's adaptive models ([`adaptive`])
/// mixed into the network's prediction: each byte is 8 binary decisions, most significant bit
/// first. `adaptive` is reset first, so each block is coded on its own; it is the caller's so
/// that a microcontroller decides where its [`Adaptive::SIZE`] bytes live.
pub fn code_block_adaptive<C: SymbolCoder, S: LogitsSource>(
    coder: &mut C,
    source: &mut S,
    adaptive: &mut Adaptive,
    block: &mut [u8],
) -> Result<(), CodeError<S::Error>> {
    adaptive.reset(2);
    let len = block.len();
    walk(source, block, usize::MAX, 0..len, |cdf, history, byte| {
        code_bits(coder, adaptive, cdf, history, byte)
    })
}

/// Codes the next segment of a revision 3 block of `len` bytes, in either direction: the bytes
/// from `*pos` (0 at the start of the block, which resets `adaptive`) to the next multiple of
/// [`WINDOW`] or `len`, whichever comes first, and moves `*pos` there. Returns where the
/// segment's bytes are in `ring` (encoding: they were read from there; decoding: they were
/// written there).
///
/// `ring` is the whole block (`ring.len() >= len`; an encoder's plaintext) or a ring of the
/// last `ring.len()` bytes, a whole number of windows (a decoder's buffer: byte `i` of the block
/// is at `i % ring.len()`). Either way the models see exactly the last [`WINDOW`] bytes, so an
/// encoder holding the whole block and a decoder holding one window compute the same
/// predictions.
pub fn code_segment<C: SymbolCoder, S: LogitsSource>(
    coder: &mut C,
    source: &mut S,
    adaptive: &mut Adaptive,
    ring: &mut [u8],
    len: usize,
    pos: &mut usize,
) -> Result<core::ops::Range<usize>, CodeError<S::Error>> {
    let whole = ring.len() >= len;
    if !whole && (ring.len() < WINDOW || !ring.len().is_multiple_of(WINDOW)) {
        return Err(CodeError::Codec(Error::Buffer));
    }
    let start = *pos;
    if start == 0 {
        adaptive.reset(3);
    }
    let end = len.min((start / WINDOW + 1) * WINDOW).max(start);
    walk(source, ring, WINDOW, start..end, |cdf, history, byte| {
        code_bits(coder, adaptive, cdf, history, byte)
    })?;
    *pos = end;
    let at = if whole { start } else { start % ring.len() };
    Ok(at..at + (end - start))
}

/// Codes a whole revision 3 block held in `block` (see [`code_segment`]), in either direction.
pub fn code_block_windowed<C: SymbolCoder, S: LogitsSource>(
    coder: &mut C,
    source: &mut S,
    adaptive: &mut Adaptive,
    block: &mut [u8],
) -> Result<(), CodeError<S::Error>> {
    let (len, mut pos) = (block.len(), 0);
    while pos < len {
        code_segment(coder, source, adaptive, block, len, &mut pos)?;
    }
    Ok(())
}

/// One byte as 8 binary decisions mixed by the adaptive models (revisions 2 and 3).
#[inline]
fn code_bits<C: SymbolCoder>(
    coder: &mut C,
    adaptive: &mut Adaptive,
    cdf: &[u32; 257],
    history: History<'_>,
    byte: u8,
) -> Result<u8, Error> {
    adaptive.start_byte(history);
    let mut partial = 1u32;
    for shift in (0..8).rev() {
        let p1 = adaptive.predict(cdf, partial, history);
        let bit = coder.code_bit(p1, byte >> shift & 1 == 1)?;
        adaptive.update(bit);
        partial = partial << 1 | u32::from(bit);
    }
    Ok(partial as u8)
}

/// The walk every revision shares: for each position in `range`, the network's CDF from
/// `source`, then `code_byte(cdf, history, byte)` codes the byte (encoding: `byte` is the
/// plaintext's, read from `ring`) or decodes it (the return value, written into `ring`). Byte
/// `i` of the block lives at `ring[i % ring.len()]`; the history sees the last `window` bytes.
fn walk<S: LogitsSource>(
    source: &mut S,
    ring: &mut [u8],
    window: usize,
    range: core::ops::Range<usize>,
    mut code_byte: impl FnMut(&[u32; 257], History<'_>, u8) -> Result<u8, Error>,
) -> Result<(), CodeError<S::Error>> {
    let frac = source.frac_bits();
    let mut cdf = [0u32; 257];
    let size = ring.len();
    for pos in range {
        let slot = pos % size;
        let history = History {
            ring: &*ring,
            pos,
            window,
        };
        let logits = source.logits(history).map_err(CodeError::Source)?;
        cdf_of_logits(logits, frac, &mut cdf).map_err(CodeError::Codec)?;
        let coded = code_byte(&cdf, history, ring[slot]).map_err(CodeError::Codec)?;
        ring[slot] = coded;
    }
    Ok(())
}

/// Errors of [`code_block`]: the codec's, or the logits source's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError<E> {
    /// Coding failed.
    Codec(Error),
    /// The logits source failed.
    Source(E),
}

impl<E: fmt::Display> fmt::Display for CodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Codec(e) => e.fmt(f),
            CodeError::Source(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::convert::Infallible;
    use proptest::prelude::*;

    /// A toy network that bets on the byte after the previous one (the stream tests' network).
    pub(crate) struct Next;
    impl Network for Next {
        type Error = Infallible;
        fn context_len(&self) -> usize {
            2
        }
        fn pad(&self) -> u16 {
            256
        }
        fn frac_bits(&self) -> u32 {
            8
        }
        fn logits(&mut self, ctx: &[u16], out: &mut [i32; 256]) -> Result<(), Infallible> {
            out.fill(0);
            out[usize::from(ctx[1].wrapping_add(1) as u8)] = 6 << 8;
            Ok(())
        }
    }

    /// A deterministic toy network: logits from a hash of the context, with a lean to `e`.
    struct Hashy;
    impl Network for Hashy {
        type Error = Infallible;
        fn context_len(&self) -> usize {
            3
        }
        fn pad(&self) -> u16 {
            256
        }
        fn frac_bits(&self) -> u32 {
            6
        }
        fn logits(&mut self, ctx: &[u16], out: &mut [i32; 256]) -> Result<(), Infallible> {
            let h = ctx.iter().fold(0x811c_9dc5u32, |h, &c| {
                (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
            });
            for (i, o) in out.iter_mut().enumerate() {
                let x = (h ^ (i as u32).wrapping_mul(0x9E37_79B1)).rotate_left(7);
                *o = (x % 400) as i32 - 200 + if i == usize::from(b'e') { 300 } else { 0 };
            }
            Ok(())
        }
    }

    fn finish(enc: Encoding<Vec<u32>>) -> Vec<u8> {
        let words = enc.finish().unwrap();
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.truncate(stored_len(&words));
        bytes
    }

    #[test]
    fn stored_len_drops_trailing_zero_bytes() {
        assert_eq!(stored_len(&[]), 0);
        assert_eq!(stored_len(&[0, 0]), 0);
        assert_eq!(stored_len(&[0x0102_0304]), 4);
        assert_eq!(stored_len(&[5, 0x0000_0100]), 6);
        assert_eq!(stored_len(&[5, 0x0000_0001, 0]), 5);
    }

    fn roundtrip(plain: &[u8]) -> Vec<u8> {
        let mut copy = plain.to_vec();
        let mut enc = Encoding::new(RangeEncoder::new(Vec::new()));
        code_block(&mut enc, &mut StepSource::new(Hashy), &mut copy).unwrap();
        assert_eq!(copy, plain, "encoding leaves the block unchanged");
        let bytes = finish(enc);
        let mut out = alloc::vec![0u8; plain.len()];
        let mut dec = Decoding::new(&bytes).unwrap();
        code_block(&mut dec, &mut StepSource::new(Hashy), &mut out).unwrap();
        out
    }

    /// A block coder with adaptive models (revision 2 or 3), for the toy network.
    type AdaptiveCoder<C> = fn(
        &mut C,
        &mut StepSource<Hashy>,
        &mut Adaptive,
        &mut [u8],
    ) -> Result<(), CodeError<StepError<Infallible>>>;

    /// Encodes `plain` with `code`, checking that the block is left unchanged.
    fn encode_adaptive(
        plain: &[u8],
        adaptive: &mut Adaptive,
        code: AdaptiveCoder<Encoding<Vec<u32>>>,
    ) -> Vec<u8> {
        let mut copy = plain.to_vec();
        let mut enc = Encoding::new(RangeEncoder::new(Vec::new()));
        code(&mut enc, &mut StepSource::new(Hashy), adaptive, &mut copy).unwrap();
        assert_eq!(copy, plain, "encoding leaves the block unchanged");
        finish(enc)
    }

    /// Revision 2: the coded bytes, and the decoded block.
    fn roundtrip_adaptive(plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut adaptive = Adaptive::new();
        let bytes = encode_adaptive(plain, &mut adaptive, code_block_adaptive);
        let mut out = alloc::vec![0u8; plain.len()];
        let mut dec = Decoding::new(&bytes).unwrap();
        // The state left by the encoder is reset: a used one decodes the same.
        code_block_adaptive(
            &mut dec,
            &mut StepSource::new(Hashy),
            &mut adaptive,
            &mut out,
        )
        .unwrap();
        (bytes, out)
    }

    #[test]
    fn empty_and_single_bytes_round_trip() {
        assert_eq!(roundtrip(b""), b"");
        assert_eq!(roundtrip_adaptive(b"").1, b"");
        for b in 0..=255u8 {
            assert_eq!(roundtrip(&[b]), [b]);
            assert_eq!(roundtrip_adaptive(&[b]).1, [b]);
        }
    }

    #[test]
    fn adaptive_models_learn_what_the_network_does_not_know() {
        // Log lines the toy network has no idea about: the context models and the match
        // model must take them far below its cost.
        let mut log = Vec::new();
        for i in 0..300u32 {
            let line = alloc::format!(
                "2026-12-05 04:{:02}:{:02} unpack libfoo{}:amd64 1.{}-{}\n",
                i / 60 % 60,
                i % 60,
                i % 7,
                i % 13,
                i % 3
            );
            log.extend_from_slice(line.as_bytes());
        }
        let mut copy = log.clone();
        let mut enc = Encoding::new(RangeEncoder::new(Vec::new()));
        code_block(&mut enc, &mut StepSource::new(Hashy), &mut copy).unwrap();
        let network_alone = finish(enc).len();
        let (mixed, out) = roundtrip_adaptive(&log);
        assert_eq!(out, log);
        let bpb = |n: usize| n as f64 * 8.0 / log.len() as f64;
        assert!(
            bpb(mixed.len()) < 1.5 && bpb(network_alone) > 5.0,
            "{:.2} vs the network's {:.2} bits per byte",
            bpb(mixed.len()),
            bpb(network_alone)
        );
    }

    /// Revision 3: the bytes coded, and the block decoded through a ring of one window.
    fn roundtrip_windowed(plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut adaptive = Adaptive::new();
        let bytes = encode_adaptive(plain, &mut adaptive, code_block_windowed);
        let mut out = Vec::new();
        let mut ring = alloc::vec![0u8; WINDOW];
        let mut dec = Decoding::new(&bytes).unwrap();
        let mut source = StepSource::new(Hashy);
        let mut pos = 0;
        while pos < plain.len() {
            let at = code_segment(
                &mut dec,
                &mut source,
                &mut adaptive,
                &mut ring,
                plain.len(),
                &mut pos,
            )
            .unwrap();
            out.extend_from_slice(&ring[at]);
        }
        (bytes, out)
    }

    #[test]
    fn windowed_blocks_keep_learning_past_a_window() {
        // Log lines whose fields repeat with periods of hundreds of lines: a block of revision 3
        // (one window of history, models that keep learning) against revision 2's 16 KiB blocks.
        let mut log = Vec::new();
        let mut i = 0u32;
        while log.len() < 4 * WINDOW {
            let line = alloc::format!(
                "Dec  5 04:{:02}:{:02} host{} kernel: usb {}-{}: device {} ({})\n",
                i / 60 % 60,
                i % 60,
                i % 3,
                i % 211,
                i % 7,
                i * 37 % 499,
                ["new", "reset", "gone"][(i % 3) as usize]
            );
            log.extend_from_slice(line.as_bytes());
            i += 1;
        }
        let (windowed, out) = roundtrip_windowed(&log);
        assert_eq!(out, log);
        let blocks: usize = log
            .chunks(WINDOW)
            .map(|b| roundtrip_adaptive(b).0.len())
            .sum();
        assert!(
            windowed.len() * 10 < blocks * 9,
            "{} bytes against {blocks} in 16 KiB blocks of revision 2",
            windowed.len()
        );
        // A buffer that is neither the block nor whole windows is refused.
        let mut dec = Decoding::new(&windowed).unwrap();
        let mut ring = alloc::vec![0u8; WINDOW + 1];
        let r = code_segment(
            &mut dec,
            &mut StepSource::new(Hashy),
            &mut Adaptive::new(),
            &mut ring,
            log.len(),
            &mut 0,
        );
        assert_eq!(r, Err(CodeError::Codec(Error::Buffer)));
    }

    #[test]
    fn context_is_padded_before_the_start() {
        let mut ctx = [0u16; 4];
        context_at(b"ab", 2, 256, &mut ctx);
        assert_eq!(ctx, [256, 256, 97, 98]);
        context_at(b"abcdef", 6, 256, &mut ctx);
        assert_eq!(ctx, [99, 100, 101, 102]);
        context_at(b"", 0, 7, &mut ctx);
        assert_eq!(ctx, [7; 4]);
    }

    #[test]
    fn too_long_a_context_is_an_error() {
        struct Long;
        impl Network for Long {
            type Error = Infallible;
            fn context_len(&self) -> usize {
                MAX_CONTEXT + 1
            }
            fn pad(&self) -> u16 {
                0
            }
            fn frac_bits(&self) -> u32 {
                0
            }
            fn logits(&mut self, _: &[u16], _: &mut [i32; 256]) -> Result<(), Infallible> {
                Ok(())
            }
        }
        let mut enc = Encoding::new(RangeEncoder::new(Vec::new()));
        let r = code_block(&mut enc, &mut StepSource::new(Long), &mut [1u8, 2]);
        assert_eq!(
            r,
            Err(CodeError::Source(StepError::ContextTooLong(
                MAX_CONTEXT + 1
            )))
        );
    }

    #[test]
    fn damaged_data_is_an_error_or_other_bytes_never_a_panic() {
        let plain: Vec<u8> = b"the quick brown fox jumps over the lazy dog ".repeat(20);
        let mut copy = plain.clone();
        let mut enc = Encoding::new(RangeEncoder::new(Vec::new()));
        code_block(&mut enc, &mut StepSource::new(Hashy), &mut copy).unwrap();
        let bytes = finish(enc);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let mut out = alloc::vec![0u8; plain.len()];
            if let Ok(mut dec) = Decoding::new(&bad) {
                let _ = code_block(&mut dec, &mut StepSource::new(Hashy), &mut out);
            }
        }
        let (bytes, _) = roundtrip_adaptive(&plain);
        let mut adaptive = Adaptive::new();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let mut out = alloc::vec![0u8; plain.len()];
            if let Ok(mut dec) = Decoding::new(&bad) {
                let mut source = StepSource::new(Hashy);
                let _ = code_block_adaptive(&mut dec, &mut source, &mut adaptive, &mut out);
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(plain in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert_eq!(roundtrip(&plain), plain.clone());
            prop_assert_eq!(roundtrip_adaptive(&plain).1, plain.clone());
            prop_assert_eq!(roundtrip_windowed(&plain).1, plain);
        }
    }
}
