//! Streaming compression: an [`Encoder`] that is a [`std::io::Write`] and a [`Decoder`] that is
//! a [`std::io::Read`], as `zstd::stream` and `flate2` have, so a log, a `tar` pipe or a socket
//! is compressed as it arrives, in memory bounded by the frame size and not by the input.
//!
//! # Frames
//!
//! A container ([`crate::container`]) states its original length and block table up front, so
//! a stream whose length is not known in advance is written as a sequence of *frames*: the
//! encoder cuts its input into frames of [`FRAME_SIZE`] bytes (rounded to whole blocks) and
//! writes each as a complete container as soon as its blocks are coded. A file of several
//! frames is what concatenating `.arca` files gives, and every reader of this crate decodes it
//! to the concatenation of the originals ([`crate::container::frames`], [`crate::decompress`], this
//! module's [`Decoder`]), as gzip and zstd do with their members and frames. So streaming
//! needed no new container fields, and a stream of one frame (any input up to [`FRAME_SIZE`])
//! is byte for byte what [`TextCodec::compress`] writes, which the Cortex-M decoder and older
//! builds read.
//!
//! The frame length depends only on the block size (never on the thread count), so the bytes
//! written are the same on every machine. Each frame costs one header and table (about 100
//! bytes per 8 MiB); [`Encoder::flush`] ends a frame early, for a writer that wants what it has
//! written so far to be decodable now (a log shipped every second, say).
//!
//! ```
//! use std::io::{Read, Write};
//! use arca_runtime::codec::{Model, ModelSource};
//! use arca_runtime::container::Header;
//! use arca_runtime::stream::{Decoder, Encoder};
//! use arca_runtime::TextCodec;
//!
//! // Context models alone, so the example needs no model file.
//! let codec = TextCodec::without_network();
//! let mut enc = Encoder::new(&codec, Vec::new());
//! enc.write_all(b"a line of a log\n")?;
//! enc.write_all(b"another line of a log\n")?;
//! let packed = enc.finish()?;
//!
//! struct NoModel(Model);
//! impl ModelSource for NoModel {
//!     fn model_for(&mut self, _: &Header) -> Result<&Model, arca_runtime::engine::ModelError> {
//!         Ok(&self.0)
//!     }
//! }
//! let mut models = NoModel(Model::None);
//! let mut text = String::new();
//! Decoder::new(&packed[..], &mut models).read_to_string(&mut text)?;
//! assert_eq!(text, "a line of a log\nanother line of a log\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};

use crate::codec::{self, CodecError, DecodeOptions, EiwOptions, ModelSource, Options, TextCodec};
use crate::container::{ContainerError, MAGIC, MIN_HEADER_LEN, Stream};

/// Original bytes per frame the [`Encoder`] aims at (rounded down to whole blocks, and at least
/// one block): 8 MiB, eight of the default 1 MiB blocks, enough to keep eight cores busy.
pub const FRAME_SIZE: u64 = 8 << 20;

/// Which text codec an [`Encoder`] writes (see [`crate::codec`] for what each is for).
#[derive(Debug, Clone)]
pub enum Method {
    /// `text-cm`, the default: the network mixed with context models.
    Cm,
    /// `text-nn`: the network with small context models (what a microcontroller decodes).
    Nn,
    /// `text-eiw`: Equal-Info Windows; frames hold whole segments.
    Eiw(EiwOptions),
}

/// A [`Write`] that compresses what is written to it into `W`, one frame at a time. Call
/// [`Encoder::finish`] at the end: it codes the last frame and gives the writer back (dropping
/// an encoder loses what it buffered, as with `zstd::stream::Encoder`).
pub struct Encoder<'a, W: Write> {
    codec: TextCodec<'a>,
    /// Other codecs each `text-cm` frame is also coded with; the smallest frame is written.
    alternatives: Vec<TextCodec<'a>>,
    method: Method,
    options: Options,
    progress: &'a (dyn Fn(u64) + Sync),
    buf: Vec<u8>,
    frame_size: u64,
    frame_len: usize,
    writer: W,
    frames: u64,
    written: u64,
}

impl<'a, W: Write> Encoder<'a, W> {
    /// An encoder writing `text-cm` frames with default [`Options`] into `writer`, coding with
    /// (a copy of) `codec`.
    pub fn new(codec: &TextCodec<'a>, writer: W) -> Self {
        let mut enc = Encoder {
            codec: codec.clone(),
            alternatives: Vec::new(),
            method: Method::Cm,
            options: Options::default(),
            progress: &|_| {},
            buf: Vec::new(),
            frame_size: FRAME_SIZE,
            frame_len: 0,
            writer,
            frames: 0,
            written: 0,
        };
        enc.frame_len = enc.frame_len();
        enc
    }

    /// Also codes each `text-cm` frame with `codec` (another model, or none) and writes the
    /// smallest of the tries: a frame is a complete stream that names its model, so a decoder
    /// needs nothing more (`arca compress -7 .. -9`). Each alternative costs one more pass;
    /// progress counts the first codec's only.
    pub fn alternative(mut self, codec: &TextCodec<'a>) -> Self {
        self.alternatives.push(codec.clone());
        self
    }

    /// Writes `method` frames instead (before the first write).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self.frame_len = self.frame_len();
        self
    }

    /// Codes with `options` (block size, threads; before the first write).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self.frame_len = self.frame_len();
        self
    }

    /// Frames of about `bytes` original bytes instead of [`FRAME_SIZE`] (rounded down to whole
    /// blocks, at least one; before the first write): smaller frames hold less in memory and
    /// reach the writer sooner, and each costs a header.
    pub fn frame_size(mut self, bytes: u64) -> Self {
        self.frame_size = bytes;
        self.frame_len = self.frame_len();
        self
    }

    /// Calls `progress` with the number of input bytes just coded (from worker threads).
    pub fn progress(mut self, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        self.progress = progress;
        self
    }

    /// Whole blocks (segments for Equal-Info Windows) of about `frame_size` bytes.
    fn frame_len(&self) -> usize {
        let unit = match &self.method {
            Method::Eiw(eiw) => eiw.segment,
            Method::Cm | Method::Nn => self.options.block_size,
        };
        let unit = u64::from(unit.max(1));
        usize::try_from(unit * (self.frame_size / unit).max(1)).unwrap_or(usize::MAX)
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Compressed bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The writer, to take out what the frames so far wrote (an in-memory writer's bytes).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Codes what is buffered as one frame and writes it.
    fn write_frame(&mut self) -> io::Result<()> {
        let (input, progress) = (&self.buf[..], self.progress);
        let mut packed = match &self.method {
            Method::Cm => self.codec.compress(input, &self.options, progress),
            Method::Nn => self.codec.compress_nn(input, &self.options, progress),
            Method::Eiw(eiw) => self.codec.compress_eiw(input, eiw, progress),
        }
        .map_err(invalid_input)?;
        if matches!(self.method, Method::Cm) {
            for codec in &self.alternatives {
                let other = codec
                    .compress(input, &self.options, &|_| {})
                    .map_err(invalid_input)?;
                if other.len() < packed.len() {
                    packed = other;
                }
            }
        }
        self.writer.write_all(&packed)?;
        self.buf.clear();
        self.frames += 1;
        self.written += packed.len() as u64;
        Ok(())
    }

    /// Codes the last frame (an empty one if nothing was written, so that an empty input still
    /// gives a valid stream), flushes the writer and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.frames == 0 {
            self.write_frame()?;
        }
        self.writer.flush()?;
        Ok(self.writer)
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.frame_len);
        }
        let take = data.len().min(self.frame_len - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == self.frame_len {
            self.write_frame()?;
        }
        Ok(take)
    }

    /// Ends the current frame early (if it holds anything) and flushes the writer: everything
    /// written so far can then be decoded.
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.write_frame()?;
        }
        self.writer.flush()
    }
}

/// A [`Read`] that decodes the frames it reads from `R`, one at a time: memory holds one
/// frame's compressed bytes and its original, whatever the length of the input. Every block is
/// checked against its CRC before any of its bytes are returned; the frames may name different
/// models (each is asked of the [`ModelSource`]). It is a [`PushDecoder`] fed from the reader,
/// which reads no further than the next frame needs.
pub struct Decoder<'a, R: Read> {
    reader: R,
    models: &'a mut dyn ModelSource,
    push: Option<PushDecoder<'a>>,
    chunk: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    read: u64,
}

impl<'a, R: Read> Decoder<'a, R> {
    /// A decoder of the stream `reader` gives, finding models in `models`.
    pub fn new(reader: R, models: &'a mut dyn ModelSource) -> Self {
        Decoder {
            reader,
            models,
            push: Some(PushDecoder::new(0)),
            chunk: Vec::new(),
            out: Vec::new(),
            pos: 0,
            read: 0,
        }
    }

    /// Decodes each frame's blocks on `threads` workers (0, the default: the rayon pool this is
    /// called from, else one per core).
    pub fn threads(mut self, threads: usize) -> Self {
        self.push = self.push.map(|p| p.threads(threads));
        self
    }

    /// Calls `progress` with the number of original bytes just decoded (from worker threads).
    pub fn progress(mut self, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        self.push = self.push.map(|p| p.progress(progress));
        self
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.push.as_ref().map_or(0, PushDecoder::frames)
    }

    /// Compressed bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The reader.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Reads what the next frame needs and pushes it; at the end of the input, checks that
    /// nothing was cut. Leaves decoded bytes in `self.out`.
    fn refill(&mut self) -> io::Result<()> {
        let Some(push) = self.push.as_mut() else {
            return Ok(());
        };
        self.chunk.clear();
        let want = push.wanted() as u64;
        let got = (&mut self.reader).take(want).read_to_end(&mut self.chunk)?;
        self.read += got as u64;
        if got == 0 {
            return self.push.take().map_or(Ok(()), PushDecoder::finish);
        }
        self.out.clear();
        self.pos = 0;
        let out = &mut self.out;
        let pushed = push.push(&self.chunk, self.models, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        });
        match pushed {
            Err(e) => match codec_error(&e) {
                // Not another frame: say how much is left over, as a whole-file reader would.
                Some(CodecError::Container(ContainerError::TrailingBytes(n)))
                    if self.frames() > 0 =>
                {
                    let rest = io::copy(&mut self.reader, &mut io::sink())?;
                    Err(invalid_data(ContainerError::TrailingBytes(n + rest)))
                }
                _ => Err(e),
            },
            Ok(()) => Ok(()),
        }
    }
}

impl<R: Read> Read for Decoder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.push.is_none() || buf.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A decoder the caller pushes compressed bytes into, in pieces of any size (what a callback
/// API, a socket handler or Python's `zlib.decompressobj` style wants, where [`Decoder`] pulls
/// from a reader): each frame the pieces complete is decoded, checked and handed to `out`; a
/// damaged frame hands over nothing.
pub struct PushDecoder<'a> {
    pending: Vec<u8>,
    /// The length `pending` must reach before parsing can get further.
    need: usize,
    frames: u64,
    threads: usize,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<'a> PushDecoder<'a> {
    /// A decoder that decodes each frame's blocks on `threads` workers (0 = the rayon pool this is
    /// called from, else one per core).
    pub fn new(threads: usize) -> Self {
        PushDecoder {
            pending: Vec::new(),
            need: MIN_HEADER_LEN,
            frames: 0,
            threads,
            progress: &|_| {},
        }
    }

    /// Decodes on `threads` workers instead.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Calls `progress` with the number of original bytes just decoded (from worker threads).
    pub fn progress(mut self, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        self.progress = progress;
        self
    }

    /// How many more bytes the next step needs (the rest of a header, a table or a frame): what
    /// a reader should read next, so that it never reads past the frame it is in.
    pub fn wanted(&self) -> usize {
        self.need.saturating_sub(self.pending.len()).max(1)
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes that do not start a stream: garbage after the last one, or no stream at all.
    fn not_a_frame(&self) -> ContainerError {
        if self.frames > 0 {
            ContainerError::TrailingBytes(self.pending.len() as u64)
        } else {
            ContainerError::BadMagic
        }
    }

    /// Adds `data`; every frame it completes is decoded with a model from `models` and given
    /// to `out`, in order. After an error the decoder is in an unspecified state: drop it.
    pub fn push(
        &mut self,
        data: &[u8],
        models: &mut dyn ModelSource,
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.pending.extend_from_slice(data);
        loop {
            let n = self.pending.len().min(MAGIC.len());
            if self.pending[..n] != MAGIC[..n] {
                return Err(invalid_data(self.not_a_frame()));
            }
            if n < MAGIC.len() {
                self.need = MAGIC.len();
                return Ok(());
            }
            let (plain, used) = match Stream::parse_prefix(&self.pending) {
                Ok((stream, used)) => {
                    let opts = DecodeOptions {
                        threads: self.threads,
                        range: None,
                    };
                    let plain = codec::decompress_stream(&stream, models, &opts, self.progress)
                        .map_err(invalid_data)?;
                    (plain, used)
                }
                Err(ContainerError::Truncated { needed, .. })
                    if needed > self.pending.len() as u64 =>
                {
                    self.need = usize::try_from(needed).unwrap_or(usize::MAX);
                    return Ok(());
                }
                Err(e) => return Err(invalid_data(e)),
            };
            self.pending.drain(..used);
            self.need = MIN_HEADER_LEN;
            self.frames += 1;
            out(&plain)?;
        }
    }

    /// Ends the input: an error if it stopped inside a stream or held none at all.
    pub fn finish(self) -> io::Result<()> {
        if self.pending.is_empty() && self.frames > 0 {
            return Ok(());
        }
        if self.frames > 0 && !self.pending.starts_with(&MAGIC) {
            return Err(invalid_data(self.not_a_frame()));
        }
        match Stream::parse_prefix(&self.pending) {
            Err(e) => Err(invalid_data(e)),
            // `push` decodes every whole frame, so none is left here.
            Ok(_) => Err(io::Error::other("a whole frame was left undecoded")),
        }
    }
}

/// A decoding failure as an I/O error that keeps the library's error (and message) inside.
fn invalid_data(e: impl Into<CodecError>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.into())
}

/// An encoding failure (bad options, a model that cannot code) as an I/O error.
fn invalid_input(e: CodecError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// The library error inside an I/O error from an [`Encoder`] or [`Decoder`], if there is one
/// (the others come from the reader or writer).
pub fn codec_error(e: &io::Error) -> Option<&CodecError> {
    e.get_ref()?.downcast_ref::<CodecError>()
}

#[cfg(test)]
mod tests;
