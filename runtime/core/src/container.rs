//! The `.arca` stream container: header, block table, blocks.
//!
//! A stream is self-describing: the header names the model (its id, the hash of its bundle, and
//! its name), the codec and every coding parameter; the block table gives each block's
//! compressed and original length and a CRC-32 of its plaintext, so blocks decode independently
//! (in parallel, or one at a time for random access) and a corrupted block is reported by index.
//!
//! Format version 2, what this build writes:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "ARCA"
//! 4       2     format version (2)
//! 6       1     codec (0 = stored, 1 = text-cm: byte model mixed with context models,
//!               2 = text-eiw: the byte model alone, in Equal-Info Windows,
//!               3 = image-pc: images coded by a probabilistic circuit,
//!               4 = text-nn: the byte model (revision 2: with small context models;
//!               revision 3: models that see the last 16 KiB), the codec of small devices;
//!               see the `arca-embedded` crate)
//! 7       1     coder precision in bits (16: binary decisions with 16-bit probabilities;
//!               text-eiw: 16-bit byte distributions; image-pc: 24-bit pixel intervals;
//!               text-nn: 24-bit byte distributions)
//! 8       16    model id (u128; 0 for the stored codec)
//! 24      1     length n of the model name (at most 32)
//! 25      n     model name, UTF-8
//! ..      var   window bits W (0 = no Equal-Info Windows; text-eiw: 16..=4096, a multiple of 8)
//! ..      var   codec revision (the codec's fixed parameters; bumped when they change)
//! ..      var   block size in bytes (text-eiw: the segment; windows never cross one, and a
//!               block's data is its windows, W / 8 bytes each; image-pc: whole images)
//! ..      var   original length in bytes (image-pc: of the pixels, not of the file)
//! ..      4     CRC-32 of the header's bytes before it
//! ..            block table, one entry per block (the count is the original length divided
//!               by the block size, rounded up; every block but the last is block size long):
//!               var compressed length << 1 | mode (0 = coded, 1 = stored raw), then the
//!               plaintext's CRC-32 u32
//! ..      4     CRC-32 of the block table
//! ..            image-pc only, the file layout: length u32, the bytes (everything of the
//!               original file that is not pixels, see `arca_image`), CRC-32 of both u32
//! ..            the blocks, back to back, in table order (text-cm revision 2: a coded block
//!               starts with its profile byte, bit 0 = the fast set of context models, bit 1 =
//!               without the network, bit 2 = the binary contexts, revision 3: bit 3 = the
//!               extended contexts; see `codec::Profile`. text-nn revision 3: a coded block
//!               starts with a CRC-32 u32 of each 16 KiB window of its plaintext but the last,
//!               so a decoder holding one window writes each once it is checked)
//! ```
//!
//! `var` is an unsigned LEB128 varint: 7 bits a byte, low bits first, the high bit set on every
//! byte but the last, in its shortest form (a reader refuses a longer one, so each stream has
//! one encoding). A one-block text stream's header and table take 50-60 bytes, most of it the
//! model id, the name and three checksums.
//!
//! Format version 1 (builds before 2026-12-05; still read, never written) had the same fields
//! at fixed offsets: an 80-byte header (the name zero padded to 32 bytes; W and the revision
//! u16, the block size u32, the original length u64, then the block count u32 and the CRC), and
//! 16 bytes per table entry (compressed length u32, original length u32, CRC-32 u32, mode u8,
//! 3 zero bytes). The rest of the stream is the same in both.
//!
//! All integers are little endian.
//!
//! A file may hold several streams back to back ("frames"): what concatenating `.arca` files
//! gives, and what the streaming encoder ([`crate::stream::Encoder`]) writes for an input longer
//! than one frame. They decode to the concatenation of their originals ([`frames`] parses
//! them; [`Stream::parse`] reads exactly one). A stream of one frame is the whole format of
//! older builds, so nothing was added to the header for streaming.
//!
//! ```
//! use arca_runtime::container::{BlockEntry, BlockMode, Header, Stream};
//! let header = Header::stored(3, 1 << 20);
//! let block = BlockEntry::new(BlockMode::Stored, b"abc", 3);
//! let bytes = Stream::write(&header, &[block], &[b"abc".to_vec()]);
//! let stream = Stream::parse(&bytes).unwrap();
//! assert_eq!(stream.block_data(0).unwrap(), b"abc");
//! ```

use thiserror::Error;

/// The four bytes every `.arca` stream starts with.
pub const MAGIC: [u8; 4] = *b"ARCA";
pub use arca_embedded::stream::{OLDEST_VERSION, VERSION};

/// The fewest bytes a stream's header takes (a reader of a pipe reads this much first).
pub const MIN_HEADER_LEN: usize = arca_embedded::stream::MIN_HEADER_LEN;
/// The longest model name a header holds, in bytes (a longer one is cut).
pub const NAME_LEN: usize = arca_embedded::stream::NAME_LEN;

/// Errors found while reading a stream. Each names what is wrong, and where.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerError {
    /// The input does not start with the `.arca` magic bytes.
    #[error("not an arca stream (bad magic bytes)")]
    BadMagic,
    /// The stream was written by a newer (or unknown) format version.
    #[error(
        "unsupported arca format version {0} (this build reads versions {OLDEST_VERSION} to {VERSION})"
    )]
    UnsupportedVersion(u16),
    /// The stream ends before a structure it announces.
    #[error("stream is truncated: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        /// Which structure was cut.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes that are there.
        available: u64,
    },
    /// The header's checksum does not match.
    #[error("stream header is corrupted (checksum mismatch)")]
    HeaderCorrupt,
    /// The block table's checksum does not match.
    #[error("stream block table is corrupted (checksum mismatch)")]
    TableCorrupt,
    /// The image layout's checksum does not match.
    #[error("stream image layout is corrupted (checksum mismatch)")]
    LayoutCorrupt,
    /// Header fields contradict each other or the block table.
    #[error("stream is inconsistent: {0}")]
    Inconsistent(String),
    /// There is data after the last block.
    #[error("stream has {0} unexpected trailing bytes after the last block")]
    TrailingBytes(u64),
}

impl From<arca_embedded::stream::StreamError> for ContainerError {
    fn from(e: arca_embedded::stream::StreamError) -> Self {
        use arca_embedded::stream::StreamError as E;
        match e {
            E::BadMagic => ContainerError::BadMagic,
            E::UnsupportedVersion(v) => ContainerError::UnsupportedVersion(v),
            E::Truncated {
                what,
                needed,
                available,
            } => ContainerError::Truncated {
                what,
                needed,
                available,
            },
            E::HeaderCorrupt => ContainerError::HeaderCorrupt,
            E::TableCorrupt => ContainerError::TableCorrupt,
            E::LayoutCorrupt => ContainerError::LayoutCorrupt,
            E::TrailingBytes(n) => ContainerError::TrailingBytes(n),
            other => ContainerError::Inconsistent(
                other
                    .to_string()
                    .trim_start_matches("stream is inconsistent: ")
                    .to_owned(),
            ),
        }
    }
}

/// How a block's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMode {
    /// Coded by the stream's codec.
    Coded,
    /// Stored as is, because coding did not make it smaller.
    Stored,
}

/// One entry of the block table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry {
    /// Bytes the block takes in the stream.
    pub compressed_len: u32,
    /// Bytes the block decodes to.
    pub original_len: u32,
    /// CRC-32 of the decoded bytes.
    pub crc32: u32,
    /// Coded or stored.
    pub mode: BlockMode,
}

impl BlockEntry {
    /// An entry for `plaintext`, stored in `compressed_len` bytes with `mode`.
    pub fn new(mode: BlockMode, plaintext: &[u8], compressed_len: u32) -> Self {
        Self {
            compressed_len,
            original_len: plaintext.len() as u32,
            crc32: crc32fast::hash(plaintext),
            mode,
        }
    }
}

/// The fixed header of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Codec id (see [`Codec`]).
    pub codec: Codec,
    /// Coder precision in bits.
    pub precision: u8,
    /// Model id: the payload hash of the bundle the stream was made with.
    pub model_id: u128,
    /// The model's name, for messages and automatic model selection.
    pub model_name: String,
    /// Equal-Info Window size in bits (0 = none).
    pub window_bits: u16,
    /// Revision of the codec's fixed parameters.
    pub codec_revision: u16,
    /// Maximum bytes per block.
    pub block_size: u32,
    /// Length of the original input.
    pub original_len: u64,
    /// Number of blocks.
    pub block_count: u32,
}

/// Codec ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// No model: every block is stored.
    Stored,
    /// A byte-level model mixed with adaptive context models, coded bit by bit.
    TextCm,
    /// The byte-level model alone, in Equal-Info Windows of `window_bits` (see `crate::eiw`).
    TextEiw,
    /// Images coded by a probabilistic circuit (see `crate::circuit`); the stream carries the
    /// file's layout.
    ImagePc,
    /// The byte-level model alone, one 24-bit distribution per byte and no context models: the
    /// codec a microcontroller decodes (`arca_embedded`).
    TextNn,
}

impl Codec {
    fn to_byte(self) -> u8 {
        match self {
            Codec::Stored => 0,
            Codec::TextCm => 1,
            Codec::TextEiw => 2,
            Codec::ImagePc => 3,
            Codec::TextNn => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Codec::Stored),
            1 => Some(Codec::TextCm),
            2 => Some(Codec::TextEiw),
            3 => Some(Codec::ImagePc),
            4 => Some(Codec::TextNn),
            _ => None,
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Stored => "stored",
            Codec::TextCm => "text-cm",
            Codec::TextEiw => "text-eiw",
            Codec::ImagePc => "image-pc",
            Codec::TextNn => "text-nn",
        }
    }
}

impl Header {
    /// A header for a stream of `original_len` bytes whose blocks are all stored.
    pub fn stored(original_len: u64, block_size: u32) -> Self {
        Header {
            codec: Codec::Stored,
            precision: 0,
            model_id: 0,
            model_name: String::new(),
            window_bits: 0,
            codec_revision: 0,
            block_size,
            original_len,
            block_count: block_count(original_len, block_size),
        }
    }

    /// The header in the current format ([`VERSION`]), with its checksum.
    fn to_bytes(&self) -> Vec<u8> {
        use arca_embedded::stream as s;
        let header = s::Header {
            codec: self.codec.to_byte(),
            precision: self.precision,
            model_id: self.model_id,
            name: s::Header::pad_name(&self.model_name),
            window_bits: self.window_bits,
            codec_revision: self.codec_revision,
            block_size: self.block_size,
            original_len: self.original_len,
            block_count: self.block_count,
        };
        let mut out = [0u8; s::MAX_HEADER_LEN];
        let n = header.write(&mut out);
        out[..n].to_vec()
    }
}

/// Number of blocks needed for `len` bytes in blocks of `block_size`.
pub fn block_count(len: u64, block_size: u32) -> u32 {
    if block_size == 0 {
        return 0;
    }
    len.div_ceil(u64::from(block_size)) as u32
}

/// A parsed, checked stream: header, table and a view of each block's bytes.
#[derive(Debug)]
pub struct Stream<'a> {
    header: Header,
    version: u16,
    entries: Vec<BlockEntry>,
    offsets: Vec<usize>,
    layout: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> Stream<'a> {
    /// Serializes a complete stream.
    pub fn write(header: &Header, entries: &[BlockEntry], blocks: &[Vec<u8>]) -> Vec<u8> {
        Self::write_with_layout(header, entries, blocks, &[])
    }

    /// Serializes a complete stream; `layout` is written for the codecs that carry one
    /// ([`Codec::ImagePc`]) and ignored for the others.
    pub fn write_with_layout(
        header: &Header,
        entries: &[BlockEntry],
        blocks: &[Vec<u8>],
        layout: &[u8],
    ) -> Vec<u8> {
        use arca_embedded::stream::{MAX_ENTRY_LEN, MAX_HEADER_LEN, write_entry};
        let body: usize = blocks.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(MAX_HEADER_LEN + entries.len() * MAX_ENTRY_LEN + 4 + body);
        out.extend_from_slice(&header.to_bytes());
        let table_start = out.len();
        for (i, e) in entries.iter().enumerate() {
            // Format 2 does not store a block's original length: it follows from the header.
            debug_assert_eq!(
                u64::from(e.original_len),
                arca_embedded::stream::block_len(header.original_len, header.block_size, i as u32),
                "block {i}'s length"
            );
            let mut entry = [0u8; MAX_ENTRY_LEN];
            let stored = e.mode == BlockMode::Stored;
            let n = write_entry(e.compressed_len, e.crc32, stored, &mut entry);
            out.extend_from_slice(&entry[..n]);
        }
        let crc = crc32fast::hash(&out[table_start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        if header.codec == Codec::ImagePc {
            let start = out.len();
            out.extend_from_slice(&(layout.len() as u32).to_le_bytes());
            out.extend_from_slice(layout);
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_le_bytes());
        }
        for b in blocks {
            out.extend_from_slice(b);
        }
        out
    }

    /// Parses and checks the header and block table of `bytes`.
    ///
    /// Blocks themselves are checked when decoded (their CRC covers the plaintext). The checks
    /// are those of [`arca_embedded::stream::Stream::parse`], the allocation-free reader that
    /// microcontrollers use, so the two never disagree on what a valid stream is.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ContainerError> {
        let (stream, len) = Self::parse_prefix(bytes)?;
        if len < bytes.len() {
            return Err(ContainerError::TrailingBytes((bytes.len() - len) as u64));
        }
        Ok(stream)
    }

    /// Parses the stream `bytes` starts with (a file may hold several streams back to back:
    /// see [`frames`]) and returns it with its length in bytes. A prefix too short to hold the
    /// stream is [`ContainerError::Truncated`], whose `needed` is the length the prefix must
    /// have to get further (what a reader of a pipe reads next).
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(Self, usize), ContainerError> {
        let (view, len) = arca_embedded::stream::Stream::parse_prefix(bytes)?;
        let bytes = &bytes[..len];
        let h = view.header();
        let codec = Codec::from_byte(h.codec)
            .ok_or_else(|| ContainerError::Inconsistent(format!("unknown codec id {}", h.codec)))?;
        let header = Header {
            codec,
            precision: h.precision,
            model_id: h.model_id,
            model_name: String::from_utf8_lossy(h.model_name_bytes()).into_owned(),
            window_bits: h.window_bits,
            codec_revision: h.codec_revision,
            block_size: h.block_size,
            original_len: h.original_len,
            block_count: h.block_count,
        };
        let mut entries = Vec::with_capacity(h.block_count as usize);
        let mut offsets = Vec::with_capacity(h.block_count as usize);
        // The blocks fill the end of the stream, back to back (checked by the reader).
        let body: usize = view.blocks().map(|b| b.data.len()).sum();
        let mut offset = bytes.len() - body;
        for b in view.blocks() {
            offsets.push(offset);
            offset += b.data.len();
            entries.push(BlockEntry {
                compressed_len: b.data.len() as u32,
                original_len: b.original_len,
                crc32: b.crc32,
                mode: if b.stored {
                    BlockMode::Stored
                } else {
                    BlockMode::Coded
                },
            });
        }
        let stream = Stream {
            header,
            version: view.version(),
            entries,
            offsets,
            layout: view.layout(),
            bytes,
        };
        Ok((stream, len))
    }

    /// The stream header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The container format version the stream was written in ([`VERSION`], or an older one
    /// this build still reads).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The file layout an image stream carries (empty for the other codecs).
    pub fn layout(&self) -> &'a [u8] {
        self.layout
    }

    /// The block table.
    pub fn entries(&self) -> &[BlockEntry] {
        &self.entries
    }

    /// Where block `i`'s data starts, in bytes from the start of the stream (after the header,
    /// the layout of an image stream, and the block table).
    pub fn block_offset(&self, i: usize) -> Option<usize> {
        self.offsets.get(i).copied()
    }

    /// The compressed bytes of block `i`.
    pub fn block_data(&self, i: usize) -> Option<&'a [u8]> {
        let entry = self.entries.get(i)?;
        let start = *self.offsets.get(i)?;
        self.bytes.get(start..start + entry.compressed_len as usize)
    }

    /// This stream written again in the current format with `header` in place of its own (the
    /// table, layout and blocks as they are): what a tool that edits a header field, or a test
    /// that forges one, needs, without knowing where the fields lie.
    pub fn rewrite(&self, header: &Header) -> Vec<u8> {
        let blocks: Vec<Vec<u8>> = (0..self.entries.len())
            .filter_map(|i| self.block_data(i).map(<[u8]>::to_vec))
            .collect();
        Self::write_with_layout(header, &self.entries, &blocks, self.layout)
    }

    /// Total stream length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for a stream of no bytes (never the case for a parsed stream).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The streams of a file that holds one or more back to back (what concatenating `.arca` files
/// gives, and what [`crate::stream::Encoder`] writes for inputs longer than a frame): each
/// parsed, in order, or the first error. Bytes after a stream that do not start another one
/// are [`ContainerError::TrailingBytes`].
pub fn frames(bytes: &[u8]) -> Result<Vec<Stream<'_>>, ContainerError> {
    let mut streams = Vec::new();
    let mut rest = bytes;
    loop {
        let (stream, len) = Stream::parse_prefix(rest)?;
        streams.push(stream);
        rest = &rest[len..];
        if rest.is_empty() {
            return Ok(streams);
        }
        if !rest.starts_with(&MAGIC) {
            return Err(ContainerError::TrailingBytes(rest.len() as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let data = b"hello world, hello arca".to_vec();
        let mut header = Header::stored(data.len() as u64, 10);
        header.model_name = "text-small".into();
        let blocks: Vec<Vec<u8>> = data.chunks(10).map(<[u8]>::to_vec).collect();
        let entries: Vec<BlockEntry> = blocks
            .iter()
            .map(|b| BlockEntry::new(BlockMode::Stored, b, b.len() as u32))
            .collect();
        Stream::write(&header, &entries, &blocks)
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let s = Stream::parse(&bytes).expect("parse");
        assert_eq!(s.header().block_count, 3);
        assert_eq!(s.header().model_name, "text-small");
        let joined: Vec<u8> = (0..3)
            .flat_map(|i| s.block_data(i).expect("block").to_vec())
            .collect();
        assert_eq!(joined, b"hello world, hello arca");
    }

    #[test]
    fn empty_stream() {
        let header = Header::stored(0, 1 << 20);
        let bytes = Stream::write(&header, &[], &[]);
        let s = Stream::parse(&bytes).expect("parse");
        assert_eq!(s.entries().len(), 0);
    }

    #[test]
    fn back_to_back_streams_are_frames() {
        let one = sample();
        let two = [one.clone(), one.clone()].concat();
        let frames = frames(&two).expect("frames");
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].len(), one.len());
        assert_eq!(frames[1].block_data(0).expect("block"), b"hello worl");
        let mut junk = one.clone();
        junk.extend_from_slice(b"junk");
        assert_eq!(
            super::frames(&junk).err(),
            Some(ContainerError::TrailingBytes(4))
        );
        assert_eq!(
            Stream::parse(&two).err(),
            Some(ContainerError::TrailingBytes(one.len() as u64))
        );
        for cut in one.len() + 1..two.len() {
            assert!(super::frames(&two[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_prefix_says_how_much_more_it_needs() {
        let bytes = sample();
        let mut have = MIN_HEADER_LEN;
        let mut asked = Vec::new();
        loop {
            match Stream::parse_prefix(&bytes[..have]) {
                Ok((_, len)) => {
                    assert_eq!(len, bytes.len());
                    break;
                }
                Err(ContainerError::Truncated { needed, .. }) => {
                    assert!(needed as usize > have, "no progress at {have}");
                    have = needed as usize;
                    asked.push(have);
                }
                Err(e) => panic!("{e}"),
            }
        }
        // The header (43 bytes: 25 fixed, the 10-byte name, four one-byte varints, the
        // checksum), then the table at its shortest (three entries of 5 bytes and a checksum),
        // then the whole stream.
        let table_end = 43 + 3 * 5 + 4;
        assert_eq!(asked, [43, table_end, bytes.len()]);
        let s = Stream::parse(&bytes).expect("parse");
        assert_eq!(s.block_offset(0), Some(table_end));
        assert_eq!(s.version(), VERSION);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(Stream::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn header_and_table_flips_are_caught() {
        let bytes = sample();
        let table_end = Stream::parse(&bytes)
            .expect("parse")
            .block_offset(0)
            .expect("a block");
        for i in 0..table_end {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(Stream::parse(&b).is_err(), "flip at byte {i} bit {bit}");
            }
        }
    }
}
