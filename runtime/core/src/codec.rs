//! The text codec: a byte model mixed with context models drives the range coder.
//!
//! The input is cut into blocks of `block_size` bytes. Each block is coded on its own, with a
//! fresh network context (the bytes before the block's start are PAD) and fresh adaptive models,
//! so blocks code and decode in parallel and a reader can seek to any block.
//!
//! One function, [`code_block`], codes a block in both directions: the encoder and decoder
//! differ only in the [`BitCoder`] (encode the known bit, or decode it) and in how the network's
//! distributions are fetched ([`CdfSource`]): the encoder knows the whole block and asks the
//! network for many positions in one batch, the decoder asks for one position at a time. That is
//! allowed because the shipped model is integer-exact: its logits do not depend on batch shape
//! (a test proves the two paths give identical distributions).
//!
//! ```no_run
//! use arca_runtime::codec::{Options, TextCodec};
//! # fn demo(codec: &TextCodec) -> Result<(), arca_runtime::codec::CodecError> {
//! let packed = codec.compress(b"hello hello hello", &Options::default(), &|_| {})?;
//! let unpacked = codec.decompress(&packed, &Options::default(), &|_| {})?;
//! assert_eq!(unpacked, b"hello hello hello");
//! # Ok(()) }
//! ```

use arca_coder::{ByteWordCursor, RangeDecoder, RangeEncoder};
use rayon::prelude::*;
use thiserror::Error;

use crate::cm::{self, Predictor};
use crate::container::{self, BlockEntry, BlockMode, Codec, ContainerError, Header, Stream};
use crate::eiw::{self, EiwError, Schedule, Tokenizer};

/// Bits of precision of the network's byte distribution.
const NN_PRECISION: u32 = 24;
/// Positions the encoder asks the network for in one call.
const ENCODE_BATCH: usize = 1024;
/// Coder precision recorded in the header: binary decisions with 16-bit probabilities.
const BIT_PRECISION: u8 = 16;
/// How often (in bytes) progress is reported from inside a block.
const PROGRESS_STEP: usize = 1 << 14;

/// A boxed error from a model backend.
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// What the codec needs from a byte-level network.
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

impl ByteModel for crate::engine::TextModel {
    fn context_len(&self) -> usize {
        crate::engine::TextModel::context_len(self)
    }
    fn pad_id(&self) -> u16 {
        crate::engine::TextModel::pad_id(self)
    }
    fn logit_frac_bits(&self) -> u32 {
        crate::engine::TextModel::logit_frac_bits(self)
    }
    fn logits(&self, contexts: &[u16], batch: usize, out: &mut Vec<i32>) -> Result<(), ModelError> {
        crate::engine::TextModel::logits(self, contexts, batch, out).map_err(|e| Box::new(e) as _)
    }
}

/// Errors of compression and decompression.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The stream's header or table is bad.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The stream was made with another model.
    #[error(
        "stream was compressed with model '{stream_name}' (id {stream_id:032x}), not '{have_name}' (id {have_id:032x})"
    )]
    ModelMismatch {
        /// Model name in the stream.
        stream_name: String,
        /// Model id in the stream.
        stream_id: u128,
        /// The model we have.
        have_name: String,
        /// Its id.
        have_id: u128,
    },
    /// The stream was made by a different revision of the codec.
    #[error("stream uses codec revision {found}; this build implements revision {expected}")]
    Revision {
        /// Revision in the stream.
        found: u16,
        /// Revision of this build.
        expected: u16,
    },
    /// A block did not decode to its checksum.
    #[error("block {index} is corrupted (checksum mismatch after decoding)")]
    BlockCorrupt {
        /// Index of the block.
        index: usize,
    },
    /// The model failed.
    #[error("model error: {0}")]
    Model(ModelError),
    /// Input too large for the format.
    #[error("input too large: {0}")]
    TooLarge(String),
    /// Bad options.
    #[error("invalid option: {0}")]
    Options(String),
    /// Equal-Info Window coding failed (a damaged window, a bad window size).
    #[error(transparent)]
    Eiw(#[from] EiwError),
    /// An image file that cannot be read or written back.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// Images the circuit cannot code, or damaged image data.
    #[error(transparent)]
    Circuit(#[from] crate::circuit::CircuitError),
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

/// Coded blocks (in order) to the block table and the block data, or the first error.
pub(crate) type CodedBlock = Result<(BlockEntry, Vec<u8>), CodecError>;

/// Splits coded blocks into the table entries and the data, stopping at the first error.
pub(crate) fn unzip_blocks(
    coded: Vec<CodedBlock>,
) -> Result<(Vec<BlockEntry>, Vec<Vec<u8>>), CodecError> {
    let mut entries = Vec::with_capacity(coded.len());
    let mut datas = Vec::with_capacity(coded.len());
    for r in coded {
        let (e, d) = r?;
        entries.push(e);
        datas.push(d);
    }
    Ok((entries, datas))
}

/// A pool of `threads` workers (0 = one per core).
pub(crate) fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, CodecError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CodecError::Options(format!("cannot start {threads} threads: {e}")))
}

/// Coding options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Maximum bytes per block (compression only; decompression reads it from the stream).
    pub block_size: u32,
    /// Worker threads (0 = one per core).
    pub threads: usize,
}

/// Default block size: large enough for the adaptive models to learn a file, small enough
/// that books split into blocks for both cores.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;

/// Default block size of `text-nn` streams: a decoder holds one block in RAM to check its CRC
/// before writing it, and the Cortex-M firmware (`targets/cortex-m`) has 16 KiB for it. The
/// network alone codes, so smaller blocks cost only the PAD context at each block's start.
pub const NN_BLOCK_SIZE: u32 = 16 << 10;

impl Default for Options {
    fn default() -> Self {
        Options {
            block_size: DEFAULT_BLOCK_SIZE,
            threads: 0,
        }
    }
}

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

/// One binary decision through the range coder, in either direction.
pub trait BitCoder {
    /// Codes a bit with `P(1) = p1 / 2^16`. The encoder codes `bit` and returns it; the decoder
    /// ignores `bit` and returns the decoded one.
    fn code(&mut self, bit: bool, p1: u16) -> Result<bool, CodecError>;
}

struct Encoding(RangeEncoder<Vec<u32>>);

impl BitCoder for Encoding {
    #[inline]
    fn code(&mut self, bit: bool, p1: u16) -> Result<bool, CodecError> {
        self.0
            .encode_bit(bit, p1)
            .map_err(|e| CodecError::Options(format!("range coder: {e:?}")))?;
        Ok(bit)
    }
}

struct Decoding<'a>(RangeDecoder<ByteWordCursor<'a>>);

impl BitCoder for Decoding<'_> {
    #[inline]
    fn code(&mut self, _bit: bool, p1: u16) -> Result<bool, CodecError> {
        // A decoder error can only come from malformed data; report it as corruption of the
        // block being decoded (the caller maps the index).
        self.0
            .decode_bit(p1)
            .map_err(|_| CodecError::BlockCorrupt { index: usize::MAX })
    }
}

/// Where the network's distribution for each position of a block comes from.
pub trait CdfSource {
    /// The cumulative distribution (257 entries, total `2^24`) of the byte at `pos`, given the
    /// block's bytes before it (`history`, exactly `pos` bytes).
    fn cdf(&mut self, pos: usize, history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError>;
}

/// Writes the network context of position `pos` (the `n` bytes before it, PAD before the
/// block's start) into `out`.
fn context_at(history: &[u8], pos: usize, n: usize, pad: u16, out: &mut [u16]) {
    for (j, slot) in out.iter_mut().enumerate().take(n) {
        // Slot j holds the byte at pos - n + j.
        *slot = match (pos + j).checked_sub(n) {
            Some(i) => u16::from(history[i]),
            None => pad,
        };
    }
}

/// Turns a row of fixed-point logits into a cumulative table.
fn logits_to_cdf(logits: &[i32], frac_bits: u32, cdf: &mut [u32; 257]) -> Result<(), CodecError> {
    let mut freqs = [0u32; 256];
    arca_coder::quantize_logits(logits, frac_bits, NN_PRECISION, &mut freqs).map_err(|e| {
        CodecError::Model(format!("logits do not form a distribution: {e:?}").into())
    })?;
    arca_coder::cumulative(&freqs, cdf)
        .map_err(|e| CodecError::Model(format!("cannot build a CDF: {e:?}").into()))
}

/// The encoder's source: the whole block is known, so positions are evaluated in batches.
struct BatchedSource<'m, M: ByteModel + ?Sized> {
    model: &'m M,
    data: &'m [u8],
    start: usize,
    cdfs: Vec<[u32; 257]>,
    contexts: Vec<u16>,
    logits: Vec<i32>,
}

impl<M: ByteModel + ?Sized> CdfSource for BatchedSource<'_, M> {
    fn cdf(&mut self, pos: usize, _history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError> {
        if pos < self.start || pos >= self.start + self.cdfs.len() {
            let n = self.model.context_len();
            let batch = ENCODE_BATCH.min(self.data.len() - pos);
            self.contexts.resize(batch * n, 0);
            for b in 0..batch {
                let row = &mut self.contexts[b * n..(b + 1) * n];
                context_at(self.data, pos + b, n, self.model.pad_id(), row);
            }
            self.model
                .logits(&self.contexts, batch, &mut self.logits)
                .map_err(CodecError::Model)?;
            self.cdfs.resize(batch, [0; 257]);
            let frac = self.model.logit_frac_bits();
            for b in 0..batch {
                logits_to_cdf(
                    &self.logits[b * 256..(b + 1) * 256],
                    frac,
                    &mut self.cdfs[b],
                )?;
            }
            self.start = pos;
        }
        Ok(self.cdfs.get(pos - self.start))
    }
}

/// The decoder's source: one position at a time, from the bytes decoded so far.
struct StepSource<'m, M: ByteModel + ?Sized> {
    model: &'m M,
    cdf: [u32; 257],
    context: Vec<u16>,
    logits: Vec<i32>,
}

impl<M: ByteModel + ?Sized> CdfSource for StepSource<'_, M> {
    fn cdf(&mut self, pos: usize, history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError> {
        let n = self.model.context_len();
        self.context.resize(n, 0);
        context_at(history, pos, n, self.model.pad_id(), &mut self.context);
        self.model
            .logits(&self.context, 1, &mut self.logits)
            .map_err(CodecError::Model)?;
        logits_to_cdf(
            &self.logits[..256],
            self.model.logit_frac_bits(),
            &mut self.cdf,
        )?;
        Ok(Some(&self.cdf))
    }
}

/// A source for "no network": the context models alone.
struct NoNetwork;

impl CdfSource for NoNetwork {
    fn cdf(&mut self, _pos: usize, _history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError> {
        Ok(None)
    }
}

/// Codes one block of `len` bytes. Encoding: `plain` is the block. Decoding: `plain` is empty
/// and the decoded bytes are returned. The same steps run in the same order either way.
pub fn code_block<C: BitCoder, S: CdfSource>(
    coder: &mut C,
    source: &mut S,
    plain: &[u8],
    len: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(len);
    let mut predictor = Predictor::new(len);
    for pos in 0..len {
        let cdf = source.cdf(pos, &out)?;
        predictor.set_network_cdf(cdf);
        let byte = plain.get(pos).copied().unwrap_or(0);
        let mut c = 0u32;
        for i in (0..8).rev() {
            let bit = coder.code((byte >> i) & 1 == 1, predictor.p1())?;
            predictor.update(bit);
            c = (c << 1) | u32::from(bit);
        }
        out.push(c as u8);
        if (pos + 1) % PROGRESS_STEP == 0 {
            progress(PROGRESS_STEP as u64);
        }
    }
    progress((len % PROGRESS_STEP) as u64);
    Ok(out)
}

/// A [`ByteModel`] seen as an [`arca_embedded::Network`]: one context per call.
struct NnNetwork<'m> {
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
struct NnBatched<'m> {
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
fn nn_error<E: Into<ModelError>>(e: arca_embedded::CodeError<E>) -> CodecError {
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
fn encode_nn_block(model: &dyn ByteModel, block: &[u8], batched: bool) -> CodedBlock {
    let mut enc = arca_embedded::Encoding::new(RangeEncoder::new(Vec::new()));
    let mut copy = block.to_vec();
    if batched {
        let mut source = NnBatched {
            model,
            data: block,
            start: 0,
            rows: 0,
            contexts: Vec::new(),
            logits: Vec::new(),
        };
        arca_embedded::code_block(&mut enc, &mut source, &mut copy).map_err(nn_error)?;
    } else {
        let mut source = arca_embedded::StepSource::new(NnNetwork::new(model));
        arca_embedded::code_block(&mut enc, &mut source, &mut copy).map_err(nn_error)?;
    }
    let words = enc
        .finish()
        .map_err(|e| CodecError::Options(format!("range coder: {e}")))?;
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(arca_embedded::stored_len(&words));
    Ok(if bytes.len() >= block.len() {
        (
            BlockEntry::new(BlockMode::Stored, block, block.len() as u32),
            block.to_vec(),
        )
    } else {
        let len = bytes.len() as u32;
        (BlockEntry::new(BlockMode::Coded, block, len), bytes)
    })
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
    let coded: Vec<CodedBlock> = input
        .chunks(block_size.max(1) as usize)
        .map(|b| encode_nn_block(model, b, false))
        .collect();
    let (entries, datas) = unzip_blocks(coded)?;
    Ok(Stream::write(
        &nn_header(model_id, model_name, block_size, input.len()),
        &entries,
        &datas,
    ))
}

/// The header of a `text-nn` stream.
fn nn_header(model_id: u128, model_name: &str, block_size: u32, len: usize) -> Header {
    Header {
        codec: Codec::TextNn,
        precision: arca_embedded::PRECISION as u8,
        model_id,
        model_name: model_name.to_owned(),
        window_bits: 0,
        codec_revision: arca_embedded::REVISION,
        block_size,
        original_len: len as u64,
        block_count: container::block_count(len as u64, block_size),
    }
}

/// Compresses and decompresses with one model (or with none: context models only).
pub struct TextCodec<'m> {
    model: Option<&'m dyn ByteModel>,
    model_id: u128,
    model_name: String,
}

impl<'m> TextCodec<'m> {
    /// A codec driven by `model`, whose bundle has id `model_id` and name `model_name`.
    pub fn new(model: &'m dyn ByteModel, model_id: u128, model_name: &str) -> Self {
        TextCodec {
            model: Some(model),
            model_id,
            model_name: model_name.to_owned(),
        }
    }

    /// A codec with no network: context mixing alone (for comparison and tests).
    pub fn without_network() -> Self {
        TextCodec {
            model: None,
            model_id: 0,
            model_name: "none".to_owned(),
        }
    }

    fn pool(threads: usize) -> Result<rayon::ThreadPool, CodecError> {
        thread_pool(threads)
    }

    /// Cuts `input` into blocks of `opts.block_size` and codes them with `code` on
    /// `opts.threads` workers; the table entries and the block data, in order.
    fn code_blocks(
        input: &[u8],
        opts: &Options,
        code: impl Fn(&[u8]) -> CodedBlock + Sync,
    ) -> Result<(Vec<BlockEntry>, Vec<Vec<u8>>), CodecError> {
        if opts.block_size == 0 {
            return Err(CodecError::Options(
                "block size must be at least 1 byte".into(),
            ));
        }
        let blocks: Vec<&[u8]> = input.chunks(opts.block_size as usize).collect();
        if blocks.len() > u32::MAX as usize {
            return Err(CodecError::TooLarge("more than 2^32 blocks".into()));
        }
        let coded: Vec<CodedBlock> = Self::pool(opts.threads)?
            .install(|| blocks.par_iter().map(|block| code(block)).collect());
        unzip_blocks(coded)
    }

    fn code_one(
        &self,
        coder: &mut impl BitCoder,
        plain: &[u8],
        len: usize,
        batched: bool,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        match self.model {
            None => code_block(coder, &mut NoNetwork, plain, len, progress),
            Some(model) if batched => {
                let mut src = BatchedSource {
                    model,
                    data: plain,
                    start: 0,
                    cdfs: Vec::new(),
                    contexts: Vec::new(),
                    logits: Vec::new(),
                };
                code_block(coder, &mut src, plain, len, progress)
            }
            Some(model) => {
                let mut src = StepSource {
                    model,
                    cdf: [0; 257],
                    context: Vec::new(),
                    logits: Vec::new(),
                };
                code_block(coder, &mut src, plain, len, progress)
            }
        }
    }

    /// Compresses `input` into a complete `.arca` stream. `progress` is called with the number
    /// of input bytes just finished (from worker threads).
    pub fn compress(
        &self,
        input: &[u8],
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let (entries, datas) =
            Self::code_blocks(input, opts, |block| self.compress_block(block, progress))?;
        let header = Header {
            codec: Codec::TextCm,
            precision: BIT_PRECISION,
            model_id: self.model_id,
            model_name: self.model_name.clone(),
            window_bits: 0,
            codec_revision: cm::REVISION,
            block_size: opts.block_size,
            original_len: input.len() as u64,
            block_count: container::block_count(input.len() as u64, opts.block_size),
        };
        Ok(Stream::write(&header, &entries, &datas))
    }

    fn compress_block(
        &self,
        block: &[u8],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(BlockEntry, Vec<u8>), CodecError> {
        let mut enc = Encoding(RangeEncoder::new(Vec::new()));
        self.code_one(&mut enc, block, block.len(), true, progress)?;
        let words = enc
            .0
            .finish()
            .map_err(|e| CodecError::Options(format!("range coder: {e:?}")))?;
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        // The decoder reads zeros past the end, so trailing zero bytes need not be stored.
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        if bytes.len() >= block.len() {
            Ok((
                BlockEntry::new(BlockMode::Stored, block, block.len() as u32),
                block.to_vec(),
            ))
        } else {
            let len = bytes.len() as u32;
            Ok((BlockEntry::new(BlockMode::Coded, block, len), bytes))
        }
    }

    /// Compresses `input` into a `text-nn` stream: the network alone codes every byte (no
    /// context models), so a decoder needs only the network and one block of memory; that is
    /// the codec of `arca_embedded` and the Cortex-M firmware. Use [`NN_BLOCK_SIZE`] blocks for
    /// streams a microcontroller will decode.
    pub fn compress_nn(
        &self,
        input: &[u8],
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let model = self
            .model
            .ok_or_else(|| CodecError::Options("the text-nn codec needs a network model".into()))?;
        let (entries, datas) = Self::code_blocks(input, opts, |block| {
            let r = encode_nn_block(model, block, true);
            progress(block.len() as u64);
            r
        })?;
        let header = nn_header(
            self.model_id,
            &self.model_name,
            opts.block_size,
            input.len(),
        );
        Ok(Stream::write(&header, &entries, &datas))
    }

    /// Decodes one coded `text-nn` block of `len` bytes, one network call per byte.
    fn decode_nn_block(&self, data: &[u8], len: usize) -> Result<Vec<u8>, CodecError> {
        let model = self
            .model
            .ok_or_else(|| CodecError::Options("the text-nn codec needs a network model".into()))?;
        let mut out = vec![0u8; len];
        let mut dec = arca_embedded::Decoding::new(data)
            .map_err(|_| CodecError::BlockCorrupt { index: 0 })?;
        let mut source = arca_embedded::StepSource::new(NnNetwork::new(model));
        arca_embedded::code_block(&mut dec, &mut source, &mut out).map_err(nn_error)?;
        Ok(out)
    }

    /// Checks that `stream` was made for this codec's model.
    fn check_stream(&self, stream: &Stream<'_>) -> Result<(), CodecError> {
        let h = stream.header();
        if h.codec == Codec::Stored {
            return Ok(());
        }
        let revision = match h.codec {
            Codec::TextEiw => eiw::REVISION,
            Codec::TextNn => arca_embedded::REVISION,
            _ => cm::REVISION,
        };
        check_header(h, revision, self.model_id, &self.model_name)
    }

    /// Decompresses a complete stream, checking every block's checksum.
    pub fn decompress(
        &self,
        bytes: &[u8],
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let stream = Stream::parse(bytes)?;
        self.check_stream(&stream)?;
        let n = stream.entries().len();
        if stream.header().codec == Codec::TextEiw {
            let plain = self.decode_eiw_blocks(&stream, 0..n, opts)?.concat();
            progress(plain.len() as u64);
            return Ok(plain);
        }
        let decoded: Vec<Result<Vec<u8>, CodecError>> = Self::pool(opts.threads)?.install(|| {
            (0..n)
                .into_par_iter()
                .map(|i| self.decompress_block(&stream, i, progress))
                .collect()
        });
        let mut out = Vec::with_capacity(stream.header().original_len as usize);
        for d in decoded {
            out.extend_from_slice(&d?);
        }
        Ok(out)
    }

    /// The network, which Equal-Info Windows cannot do without.
    fn network_for_windows(&self) -> Result<&'m dyn ByteModel, CodecError> {
        self.model
            .ok_or_else(|| CodecError::Options("Equal-Info Windows need a network model".into()))
    }

    /// Compresses `input` into Equal-Info Windows of `opts.bits` bits, in a `.arca` stream
    /// whose blocks are the segments and whose block data are the windows.
    pub fn compress_eiw(
        &self,
        input: &[u8],
        opts: &EiwOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let model = self.network_for_windows()?;
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
        let header = Header {
            codec: Codec::TextEiw,
            precision: 16,
            model_id: self.model_id,
            model_name: self.model_name.clone(),
            window_bits: opts.bits as u16,
            codec_revision: eiw::REVISION,
            block_size: opts.segment,
            original_len: input.len() as u64,
            block_count: container::block_count(input.len() as u64, opts.segment),
        };
        Ok(Stream::write(&header, &entries, &datas))
    }

    /// Decodes blocks `range` of an Equal-Info Window stream, all windows in one batched run,
    /// checking each block's length and checksum.
    fn decode_eiw_blocks(
        &self,
        stream: &Stream<'_>,
        blocks: std::ops::Range<usize>,
        opts: &Options,
    ) -> Result<Vec<Vec<u8>>, CodecError> {
        let model = self.network_for_windows()?;
        let bits = u32::from(stream.header().window_bits);
        let tok = Tokenizer::new(model, bits)?;
        let width = bits as usize / 8;
        let mut runs = Vec::with_capacity(blocks.len());
        let mut first = stream.entries()[..blocks.start]
            .iter()
            .map(|e| e.compressed_len as usize / width)
            .sum::<usize>();
        for i in blocks.clone() {
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
            threads: opts.threads,
            ..Schedule::default()
        };
        let plains = tok.decode_runs(&runs, &schedule)?;
        for (i, plain) in blocks.zip(&plains) {
            let e = stream.entries()[i];
            if plain.len() != e.original_len as usize || crc32fast::hash(plain) != e.crc32 {
                return Err(CodecError::BlockCorrupt { index: i });
            }
        }
        Ok(plains)
    }

    /// Decodes only the bytes `range` of the original (end exclusive): the blocks that cover
    /// it, checked, then cut to the range.
    pub fn decompress_range(
        &self,
        bytes: &[u8],
        range: std::ops::Range<u64>,
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let stream = Stream::parse(bytes)?;
        self.check_stream(&stream)?;
        let h = stream.header();
        if range.start > range.end || range.end > h.original_len {
            return Err(CodecError::Options(format!(
                "range {}..{} is not within the {} bytes of the original",
                range.start, range.end, h.original_len
            )));
        }
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let bs = u64::from(h.block_size);
        let first = (range.start / bs) as usize;
        let last = ((range.end - 1) / bs) as usize;
        let plains = if h.codec == Codec::TextEiw {
            self.decode_eiw_blocks(&stream, first..last + 1, opts)?
        } else {
            let decoded: Vec<Result<Vec<u8>, CodecError>> =
                Self::pool(opts.threads)?.install(|| {
                    (first..=last)
                        .into_par_iter()
                        .map(|i| self.decompress_block(&stream, i, progress))
                        .collect()
                });
            decoded.into_iter().collect::<Result<_, _>>()?
        };
        let joined = plains.concat();
        let from = (range.start - first as u64 * bs) as usize;
        let to = from + (range.end - range.start) as usize;
        joined
            .get(from..to)
            .map(<[u8]>::to_vec)
            .ok_or(CodecError::BlockCorrupt { index: first })
    }

    /// Decodes block `index` of a parsed stream (random access).
    pub fn decompress_block(
        &self,
        stream: &Stream<'_>,
        index: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        self.check_stream(stream)?;
        if stream.header().codec == Codec::TextEiw && index < stream.entries().len() {
            let mut plain =
                self.decode_eiw_blocks(stream, index..index + 1, &Options::default())?;
            progress(stream.entries()[index].original_len.into());
            return plain.pop().ok_or(CodecError::BlockCorrupt { index });
        }
        let corrupt = CodecError::BlockCorrupt { index };
        let entry = *stream
            .entries()
            .get(index)
            .ok_or(CodecError::BlockCorrupt { index })?;
        let data = stream
            .block_data(index)
            .ok_or(CodecError::BlockCorrupt { index })?;
        let len = entry.original_len as usize;
        let plain = match entry.mode {
            BlockMode::Stored => {
                progress(len as u64);
                data.to_vec()
            }
            BlockMode::Coded => {
                // Every binary decision costs at least -log2(65535/65536) bits, so a byte costs
                // at least 1/5680 bit (text-nn: a 24-bit distribution gives every other byte at
                // least 1, so a byte costs at least 1/45,600 bit): a block claiming far more
                // bytes than its bits can carry is corrupt (and would otherwise make us decode
                // gigabytes from nothing).
                let per_byte: u64 = if stream.header().codec == Codec::TextNn {
                    1 << 19
                } else {
                    1 << 16
                };
                if entry.original_len as u64 > (u64::from(entry.compressed_len) + 16) * per_byte {
                    return Err(corrupt);
                }
                let decoded = if stream.header().codec == Codec::TextNn {
                    self.decode_nn_block(data, len)
                } else {
                    let cursor = ByteWordCursor::new(data);
                    let decoder = RangeDecoder::new(cursor)
                        .map_err(|_| CodecError::BlockCorrupt { index })?;
                    self.code_one(&mut Decoding(decoder), &[], len, false, progress)
                };
                match decoded {
                    Ok(p) => p,
                    Err(CodecError::BlockCorrupt { .. }) => return Err(corrupt),
                    Err(e) => return Err(e),
                }
            }
        };
        if crc32fast::hash(&plain) != entry.crc32 {
            return Err(corrupt);
        }
        Ok(plain)
    }
}
