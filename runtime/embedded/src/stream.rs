//! A zero-copy reader of `.arca` streams and the `text-nn` stream decoder.
//!
//! The layout is the one `arca-runtime`'s `container` module documents (a header with a CRC-32,
//! a block table with its own CRC-32, then the blocks; all integers little endian; format
//! version 2 writes lengths as varints, version 1 wrote fixed-size fields, and both are read).
//! This module holds the one reader of that layout and the writer of its header and table
//! entries ([`Header::write`], [`write_entry`]), which the runtime's container module uses, so
//! the PC and a microcontroller cannot disagree on what a valid stream is. It reads without
//! allocating:
//! a test in `tests/tests/embedded.rs` parses every stream the CLI writes with both and compares
//! what they find. [`decode`] then decodes a `text-nn` stream (codec id
//! [`CODEC_TEXT_NN`]) one block at a time into a caller's buffer and hands each block to a sink
//! only after its CRC-32 matched, so a damaged block never reaches the output.
//!
//! ```
//! use arca_embedded::stream::{Stream, StreamError};
//! assert_eq!(Stream::parse(b"GZIP").err(), Some(StreamError::BadMagic));
//! ```

use core::fmt;

use crate::{
    Adaptive, CodeError, Decoding, Error, Network, OLDEST_REVISION, PRECISION, REVISION, StepError,
    StepSource, WINDOW, code_block, code_block_adaptive, code_segment,
};

/// The four bytes every `.arca` stream starts with.
pub const MAGIC: [u8; 4] = *b"ARCA";
/// The container format version this build writes (2: variable-length fields).
pub const VERSION: u16 = 2;
/// The oldest format version this build reads (1: fixed-size fields).
pub const OLDEST_VERSION: u16 = 1;
/// Size of a version 1 header (fixed), including its CRC.
pub const V1_HEADER_LEN: usize = 80;
/// Size of one version 1 block-table entry (fixed).
pub const V1_ENTRY_LEN: usize = 16;
/// The fewest bytes a version 2 header takes: no model name and one-byte varints.
pub const MIN_HEADER_LEN: usize = FIXED_LEN + 4 + 4;
/// The most bytes a version 2 header takes: a 32-byte name and the longest varints.
pub const MAX_HEADER_LEN: usize = FIXED_LEN + NAME_LEN + 3 + 3 + 5 + 10 + 4;
/// The most bytes a version 2 block-table entry takes.
pub const MAX_ENTRY_LEN: usize = 5 + 4;
/// The longest model name a header holds, in bytes.
pub const NAME_LEN: usize = 32;
/// Bytes of a version 2 header before the model name: magic, version, codec, precision, model
/// id, name length.
const FIXED_LEN: usize = 25;
/// Codec id of a stream whose blocks are all stored.
pub const CODEC_STORED: u8 = 0;
/// Codec id of Equal-Info Window streams (their blocks hold whole windows).
pub const CODEC_TEXT_EIW: u8 = 2;
/// Codec id of image streams (they carry a layout section after the table).
pub const CODEC_IMAGE_PC: u8 = 3;
/// Codec id of `text-nn`: the network (revision 1) or the network mixed with small adaptive
/// models (revision 2).
pub const CODEC_TEXT_NN: u8 = 4;
/// The highest codec id the format defines.
const LAST_CODEC: u8 = 4;

/// What is wrong with a stream's structure. Each names what is wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The input does not start with the `.arca` magic bytes.
    BadMagic,
    /// Another format version.
    UnsupportedVersion(u16),
    /// The stream ends before a structure it announces.
    Truncated {
        /// Which structure was cut.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes that are there.
        available: u64,
    },
    /// The header's checksum does not match.
    HeaderCorrupt,
    /// The block table's checksum does not match.
    TableCorrupt,
    /// The image layout's checksum does not match.
    LayoutCorrupt,
    /// Fields contradict each other: what, and the block it concerns.
    Inconsistent {
        /// What contradicts what.
        what: &'static str,
        /// The block, if one.
        block: Option<u32>,
    },
    /// There is data after the last block.
    TrailingBytes(u64),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StreamError::BadMagic => f.write_str("not an arca stream (bad magic bytes)"),
            StreamError::UnsupportedVersion(v) => write!(
                f,
                "unsupported arca format version {v} (this build reads versions {OLDEST_VERSION} to {VERSION})"
            ),
            StreamError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "stream is truncated: {what} needs {needed} bytes, only {available} present"
            ),
            StreamError::HeaderCorrupt => {
                f.write_str("stream header is corrupted (checksum mismatch)")
            }
            StreamError::TableCorrupt => {
                f.write_str("stream block table is corrupted (checksum mismatch)")
            }
            StreamError::LayoutCorrupt => {
                f.write_str("stream image layout is corrupted (checksum mismatch)")
            }
            StreamError::Inconsistent { what, block: None } => {
                write!(f, "stream is inconsistent: {what}")
            }
            StreamError::Inconsistent {
                what,
                block: Some(b),
            } => write!(f, "stream is inconsistent: block {b}: {what}"),
            StreamError::TrailingBytes(n) => {
                write!(
                    f,
                    "stream has {n} unexpected trailing bytes after the last block"
                )
            }
        }
    }
}

impl core::error::Error for StreamError {}

/// The header of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Codec id.
    pub codec: u8,
    /// Coder precision in bits.
    pub precision: u8,
    /// Model id: the payload hash of the bundle the stream was made with.
    pub model_id: u128,
    /// The model's name, zero padded (see [`Header::model_name`]).
    pub name: [u8; NAME_LEN],
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

impl Header {
    /// The model's name (up to its first zero byte; `"?"` if that is not UTF-8).
    pub fn model_name(&self) -> &str {
        core::str::from_utf8(self.model_name_bytes()).unwrap_or("?")
    }

    /// The model name's bytes, up to the first zero byte.
    pub fn model_name_bytes(&self) -> &[u8] {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        &self.name[..end]
    }

    /// The original length of block `index`: `block_size` for every block but the last, what
    /// is left of the input for the last (0 past the end). Format 2 stores no per-block length;
    /// this is it.
    pub fn block_len(&self, index: u32) -> u64 {
        block_len(self.original_len, self.block_size, index)
    }

    /// `name` as the header holds it: its first [`NAME_LEN`] bytes, zero padded.
    pub fn pad_name(name: &str) -> [u8; NAME_LEN] {
        let mut out = [0u8; NAME_LEN];
        let n = name.len().min(NAME_LEN);
        out[..n].copy_from_slice(&name.as_bytes()[..n]);
        out
    }

    /// Writes the header in the current format ([`VERSION`]) to the start of `out` and returns
    /// its length. `block_count` is not written (a reader derives it from the lengths).
    pub fn write(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6] = self.codec;
        out[7] = self.precision;
        out[8..24].copy_from_slice(&self.model_id.to_le_bytes());
        let name = self.model_name_bytes();
        out[24] = name.len() as u8;
        let mut at = FIXED_LEN + name.len();
        out[FIXED_LEN..at].copy_from_slice(name);
        for v in [
            u64::from(self.window_bits),
            u64::from(self.codec_revision),
            u64::from(self.block_size),
            self.original_len,
        ] {
            at += put_varint(v, &mut out[at..]);
        }
        let crc = crc32fast::hash(&out[..at]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        at + 4
    }
}

/// [`Header::block_len`] from the two fields it needs (for the table's iterator, which keeps
/// only those, and the runtime's writer, which has its own header type).
pub fn block_len(original_len: u64, block_size: u32, index: u32) -> u64 {
    let before = u64::from(block_size) * u64::from(index);
    original_len
        .saturating_sub(before)
        .min(u64::from(block_size))
}

/// Writes one block-table entry in the current format ([`VERSION`]) to the start of `out` and
/// returns its length: the compressed length and the mode as one varint
/// (`compressed_len << 1 | stored`), then the plaintext's CRC-32.
pub fn write_entry(
    compressed_len: u32,
    crc32: u32,
    stored: bool,
    out: &mut [u8; MAX_ENTRY_LEN],
) -> usize {
    let n = put_varint(
        u64::from(compressed_len) << 1 | u64::from(stored),
        &mut out[..],
    );
    out[n..n + 4].copy_from_slice(&crc32.to_le_bytes());
    n + 4
}

/// Writes `v` as an unsigned LEB128 varint (7 bits a byte, low first; the high bit says more
/// follow) and returns its length. `out` must hold it (10 bytes hold any `u64`).
fn put_varint(mut v: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        out[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    n + 1
}

/// A varint read at some offset.
enum Varint {
    /// Its value and length in bytes.
    Value(u64, usize),
    /// The input ends inside it.
    Cut,
    /// Longer than a `u64`, or not in its shortest form (so each value has one encoding).
    Bad,
}

fn get_varint(b: &[u8], at: usize) -> Varint {
    let mut v = 0u64;
    for i in 0..10 {
        let Some(&byte) = b.get(at + i) else {
            return Varint::Cut;
        };
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return Varint::Bad;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Varint::Bad;
            }
            return Varint::Value(v, i + 1);
        }
    }
    Varint::Bad
}

/// One block: its table entry and its bytes in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// Bytes the block decodes to.
    pub original_len: u32,
    /// CRC-32 of the decoded bytes.
    pub crc32: u32,
    /// Stored as is (`data` is the plaintext) rather than coded.
    pub stored: bool,
    /// The block's bytes in the stream.
    pub data: &'a [u8],
}

/// A parsed, checked stream: header, table and a view of each block's bytes.
#[derive(Debug, Clone)]
pub struct Stream<'a> {
    header: Header,
    version: u16,
    table: &'a [u8],
    body: &'a [u8],
    layout: &'a [u8],
}

/// One entry of a block table, as read (checked by [`Stream::parse_prefix`]).
struct Entry {
    compressed: u64,
    original: u64,
    crc32: u32,
    /// 0 = coded, 1 = stored; anything else is an error.
    mode: u8,
}

/// The entries of a table whose structure was checked (in version 2, every varint read once).
struct Entries<'a> {
    table: &'a [u8],
    version: u16,
    at: usize,
    index: u32,
    count: u32,
    block_size: u32,
    original_len: u64,
}

impl<'a> Entries<'a> {
    fn new(table: &'a [u8], version: u16, header: &Header) -> Self {
        Entries {
            table,
            version,
            at: 0,
            index: 0,
            count: header.block_count,
            block_size: header.block_size,
            original_len: header.original_len,
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.index == self.count {
            return None;
        }
        let entry = if self.version == 1 {
            let e = self.table.get(self.at..self.at + V1_ENTRY_LEN)?;
            self.at += V1_ENTRY_LEN;
            Entry {
                compressed: u64::from(le_u32(e, 0)),
                original: u64::from(le_u32(e, 4)),
                crc32: le_u32(e, 8),
                mode: e[12],
            }
        } else {
            let Varint::Value(v, n) = get_varint(self.table, self.at) else {
                return None;
            };
            let crc32 = le_u32(self.table, self.at + n);
            self.at += n + 4;
            // A version 2 table does not repeat what the header says.
            Entry {
                compressed: v >> 1,
                original: block_len(self.original_len, self.block_size, self.index),
                crc32,
                mode: (v & 1) as u8,
            }
        };
        self.index += 1;
        Some(entry)
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn truncated(what: &'static str, needed: usize, available: usize) -> StreamError {
    StreamError::Truncated {
        what,
        needed: needed as u64,
        available: available as u64,
    }
}

const fn inconsistent(what: &'static str, block: Option<u32>) -> StreamError {
    StreamError::Inconsistent { what, block }
}

/// Reads the header: it, its version and its length in bytes.
fn parse_header(bytes: &[u8]) -> Result<(Header, u16, usize), StreamError> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(StreamError::BadMagic);
    }
    let version = bytes
        .get(4..6)
        .map(|v| u16::from_le_bytes([v[0], v[1]]))
        .ok_or_else(|| truncated("header", MIN_HEADER_LEN, bytes.len()))?;
    let (header, len) = match version {
        1 => parse_header_v1(bytes)?,
        2 => parse_header_v2(bytes)?,
        _ => return Err(StreamError::UnsupportedVersion(version)),
    };
    if header.codec > LAST_CODEC {
        return Err(inconsistent("unknown codec id", None));
    }
    if header.block_size == 0 {
        return Err(inconsistent("block size is 0", None));
    }
    let w = header.window_bits;
    if header.codec == CODEC_TEXT_EIW && (!w.is_multiple_of(8) || !(16..=4096).contains(&w)) {
        return Err(inconsistent(
            "Equal-Info Windows of an unsupported size",
            None,
        ));
    }
    let blocks = header.original_len.div_ceil(u64::from(header.block_size));
    if u64::from(header.block_count) != blocks {
        return Err(inconsistent(
            "block count does not match the original length and block size",
            None,
        ));
    }
    Ok((header, version, len))
}

/// Version 1: 80 bytes at fixed offsets, the block count stored.
fn parse_header_v1(bytes: &[u8]) -> Result<(Header, usize), StreamError> {
    let h = bytes
        .get(..V1_HEADER_LEN)
        .ok_or_else(|| truncated("header", V1_HEADER_LEN, bytes.len()))?;
    if crc32fast::hash(&h[..76]) != le_u32(h, 76) {
        return Err(StreamError::HeaderCorrupt);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[8..24]);
    let mut name = [0u8; NAME_LEN];
    name.copy_from_slice(&h[24..56]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&h[64..72]);
    let header = Header {
        codec: h[6],
        precision: h[7],
        model_id: u128::from_le_bytes(id),
        name,
        window_bits: u16::from_le_bytes([h[56], h[57]]),
        codec_revision: u16::from_le_bytes([h[58], h[59]]),
        block_size: le_u32(h, 60),
        original_len: u64::from_le_bytes(len),
        block_count: le_u32(h, 72),
    };
    Ok((header, V1_HEADER_LEN))
}

/// Version 2: the fixed fields, the name with its length, four varints (window bits, codec
/// revision, block size, original length), the CRC-32 of all before it.
fn parse_header_v2(bytes: &[u8]) -> Result<(Header, usize), StreamError> {
    let fixed = bytes
        .get(..FIXED_LEN)
        .ok_or_else(|| truncated("header", MIN_HEADER_LEN, bytes.len()))?;
    let name_len = usize::from(fixed[24]);
    if name_len > NAME_LEN {
        // Only damage writes a longer name; the checksum cannot be found to say so.
        return Err(StreamError::HeaderCorrupt);
    }
    let mut at = FIXED_LEN + name_len;
    let mut fields = [0u64; 4];
    for (k, field) in fields.iter_mut().enumerate() {
        match get_varint(bytes, at) {
            Varint::Value(v, n) => {
                *field = v;
                at += n;
            }
            // At least one byte for this field and each after it, and the checksum.
            Varint::Cut => {
                let needed = bytes.len().max(at) + 1 + (fields.len() - k - 1) + 4;
                return Err(truncated("header", needed, bytes.len()));
            }
            Varint::Bad => return Err(StreamError::HeaderCorrupt),
        }
    }
    let crc = bytes
        .get(at..at + 4)
        .ok_or_else(|| truncated("header", at + 4, bytes.len()))?;
    if crc32fast::hash(&bytes[..at]) != le_u32(crc, 0) {
        return Err(StreamError::HeaderCorrupt);
    }
    let [window_bits, codec_revision, block_size, original_len] = fields;
    let out_of_range = |what| move |_| inconsistent(what, None);
    let block_size = u32::try_from(block_size).map_err(out_of_range("block size over 4 GiB"))?;
    let block_count = if block_size == 0 {
        0
    } else {
        u32::try_from(original_len.div_ceil(u64::from(block_size)))
            .map_err(out_of_range("more than 2^32 - 1 blocks"))?
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&fixed[8..24]);
    let mut name = [0u8; NAME_LEN];
    name[..name_len].copy_from_slice(&bytes[FIXED_LEN..FIXED_LEN + name_len]);
    let header = Header {
        codec: fixed[6],
        precision: fixed[7],
        model_id: u128::from_le_bytes(id),
        name,
        window_bits: u16::try_from(window_bits)
            .map_err(out_of_range("window size over 65,535 bits"))?,
        codec_revision: u16::try_from(codec_revision)
            .map_err(out_of_range("codec revision over 65,535"))?,
        block_size,
        original_len,
        block_count,
    };
    Ok((header, at + 4))
}

/// Where the block table that starts at `start` ends (before its checksum), reading version 2
/// entries; a cut table says how long the input must be to hold the rest at the least.
fn scan_table_v2(bytes: &[u8], start: usize, count: u32) -> Result<usize, StreamError> {
    // Each entry takes at least 5 bytes, the checksum 4.
    let at_least = |at: usize, left: u32| {
        (left as usize)
            .checked_mul(5)
            .and_then(|n| n.checked_add(at + 4))
            .ok_or(inconsistent("block count overflows", None))
    };
    let needed = at_least(start, count)?;
    if bytes.len() < needed {
        return Err(truncated("block table", needed, bytes.len()));
    }
    let mut at = start;
    for left in (0..count).rev() {
        match get_varint(bytes, at) {
            Varint::Value(_, n) => at += n,
            Varint::Cut => {
                let needed = at_least(bytes.len() + 1 + 4, left)?;
                return Err(truncated("block table", needed, bytes.len()));
            }
            Varint::Bad => return Err(StreamError::TableCorrupt),
        }
        if bytes.len() < at + 4 {
            let needed = at_least(at + 4, left)?;
            return Err(truncated("block table", needed, bytes.len()));
        }
        at += 4;
    }
    Ok(at)
}

impl<'a> Stream<'a> {
    /// Parses and checks the header and block table of `bytes`. Blocks themselves are checked
    /// when decoded (their CRC covers the plaintext).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, StreamError> {
        let (stream, len) = Self::parse_prefix(bytes)?;
        if len < bytes.len() {
            return Err(StreamError::TrailingBytes((bytes.len() - len) as u64));
        }
        Ok(stream)
    }

    /// Parses the stream `bytes` starts with and returns it with its length in bytes; what
    /// follows it is the caller's (a file may hold several streams back to back, as gzip and
    /// zstd files may). On a prefix too short to hold the stream, the error is
    /// [`StreamError::Truncated`] with `needed` the length the prefix must have to get further:
    /// a reader that has no more than a prefix reads that much and asks again.
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(Self, usize), StreamError> {
        let (header, version, table_start) = parse_header(bytes)?;
        let n = header.block_count;
        let entries_end = if version == 1 {
            (n as usize)
                .checked_mul(V1_ENTRY_LEN)
                .and_then(|t| t.checked_add(table_start))
                .ok_or(inconsistent("block count overflows", None))?
        } else {
            scan_table_v2(bytes, table_start, n)?
        };
        let table_end = entries_end + 4;
        let table = bytes
            .get(table_start..table_end)
            .ok_or_else(|| truncated("block table", table_end, bytes.len()))?;
        let (entries, crc) = table.split_at(table.len() - 4);
        if crc32fast::hash(entries) != le_u32(crc, 0) {
            return Err(StreamError::TableCorrupt);
        }
        let (layout, body_start) = if header.codec == CODEC_IMAGE_PC {
            let len = bytes
                .get(table_end..table_end + 4)
                .map(|_| le_u32(bytes, table_end) as usize)
                .ok_or_else(|| truncated("layout", table_end + 4, bytes.len()))?;
            let end = (table_end + 4)
                .checked_add(len)
                .and_then(|e| e.checked_add(4))
                .ok_or(inconsistent("layout length overflows", None))?;
            let section = bytes
                .get(table_end..end)
                .ok_or_else(|| truncated("layout", end, bytes.len()))?;
            if crc32fast::hash(&section[..len + 4]) != le_u32(section, len + 4) {
                return Err(StreamError::LayoutCorrupt);
            }
            (&section[4..len + 4], end)
        } else {
            (&bytes[..0], table_end)
        };
        let mut total: u64 = 0;
        let mut offset = body_start;
        for (i, e) in Entries::new(entries, version, &header).enumerate() {
            let block = Some(i as u32);
            let stored = match e.mode {
                0 => false,
                1 => true,
                _ => return Err(inconsistent("unknown block mode", block)),
            };
            let compressed = u32::try_from(e.compressed)
                .map_err(|_| inconsistent("compressed length over 4 GiB", block))?;
            if e.original != header.block_len(i as u32) {
                return Err(inconsistent(
                    "original length does not match the block size",
                    block,
                ));
            }
            if stored && u64::from(compressed) != e.original {
                return Err(inconsistent("stored block of another length", block));
            }
            if !stored && header.codec == CODEC_STORED {
                return Err(inconsistent("coded block in a stream with no codec", block));
            }
            if !stored
                && header.codec == CODEC_TEXT_EIW
                && !compressed.is_multiple_of(u32::from(header.window_bits) / 8)
            {
                return Err(inconsistent("not a whole number of windows", block));
            }
            total += e.original;
            offset = offset.saturating_add(compressed as usize);
        }
        if total != header.original_len {
            return Err(inconsistent("block lengths do not add up", None));
        }
        if offset > bytes.len() {
            return Err(truncated("blocks", offset, bytes.len()));
        }
        let stream = Stream {
            header,
            version,
            table: entries,
            body: &bytes[body_start..offset],
            layout,
        };
        Ok((stream, offset))
    }

    /// The stream header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The container format version the stream was written in.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The file layout an image stream carries (empty for the other codecs).
    pub fn layout(&self) -> &'a [u8] {
        self.layout
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> impl Iterator<Item = Block<'a>> + 'a {
        let body = self.body;
        let mut at = 0usize;
        Entries::new(self.table, self.version, &self.header).map(move |e| {
            // `parse` checked that the lengths fit 32 bits and the blocks fill the body.
            let len = e.compressed as usize;
            let data = body.get(at..at + len).unwrap_or(&[]);
            at += len;
            Block {
                original_len: e.original as u32,
                crc32: e.crc32,
                stored: e.mode == 1,
                data,
            }
        })
    }
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError<N, S> {
    /// The stream's structure is bad.
    Stream(StreamError),
    /// Not a `text-nn` (or stored) stream.
    Codec(u8),
    /// Another revision or precision of the codec.
    Revision {
        /// Revision in the stream.
        found: u16,
        /// Precision in the stream.
        precision: u8,
    },
    /// The stream was made with another model.
    Model {
        /// The stream's model id.
        stream: u128,
        /// The model this decoder has.
        have: u128,
    },
    /// The decode buffer is too short: a block of revision 1 or 2 does not fit it, or a window
    /// of revision 3 (16 KiB; or the block, if shorter).
    BlockTooLarge {
        /// The buffer the stream needs.
        len: u32,
        /// The buffer's length.
        buffer: usize,
    },
    /// A block did not decode to its checksum.
    BlockCorrupt(u32),
    /// The network's context is longer than [`crate::MAX_CONTEXT`].
    ContextTooLong(usize),
    /// The network's logits do not form a distribution (its fractional bits are out of range).
    Distribution,
    /// The network failed.
    Network(N),
    /// The sink refused the output.
    Sink(S),
}

impl<N: fmt::Display, S: fmt::Display> fmt::Display for DecodeError<N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Stream(e) => e.fmt(f),
            DecodeError::Codec(c) => {
                write!(f, "stream uses codec {c}, not text-nn ({CODEC_TEXT_NN})")
            }
            DecodeError::Revision { found, precision } => write!(
                f,
                "stream uses text-nn revision {found} at {precision} bits; this build decodes revisions {OLDEST_REVISION} to {REVISION} at {PRECISION} bits"
            ),
            DecodeError::Model { stream, have } => write!(
                f,
                "stream was compressed with model id {stream:032x}, not this model ({have:032x})"
            ),
            DecodeError::BlockTooLarge { len, buffer } => write!(
                f,
                "the stream needs a decode buffer of {len} bytes (a block, or a revision 3 window); this one has {buffer}"
            ),
            DecodeError::BlockCorrupt(i) => {
                write!(
                    f,
                    "block {i} is corrupted (checksum mismatch after decoding)"
                )
            }
            DecodeError::ContextTooLong(n) => write!(
                f,
                "network context of {n} bytes is longer than the {} supported",
                crate::MAX_CONTEXT
            ),
            DecodeError::Distribution => f.write_str("network logits do not form a distribution"),
            DecodeError::Network(e) => write!(f, "network: {e}"),
            DecodeError::Sink(e) => write!(f, "output: {e}"),
        }
    }
}

impl<N: fmt::Debug + fmt::Display, S: fmt::Debug + fmt::Display> core::error::Error
    for DecodeError<N, S>
{
}

/// The checksums a revision 3 block starts with, for its plaintext `block` (what an encoder
/// writes before the coded bytes): one CRC-32 (little endian) of each of its [`WINDOW`]-byte
/// segments but the last, which the block's own CRC-32 covers.
pub fn segment_crcs(block: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let checked = block.len().div_ceil(WINDOW).saturating_sub(1);
    block
        .chunks(WINDOW)
        .take(checked)
        .flat_map(|segment| crc32fast::hash(segment).to_le_bytes())
}

/// A revision 3 block's [`segment_crcs`] and the coded bytes after them, for a block of `len`
/// bytes; `None` if the block is too short to hold them.
pub fn split_segment_crcs(data: &[u8], len: usize) -> Option<(&[u8], &[u8])> {
    let n = len.div_ceil(WINDOW).saturating_sub(1);
    data.split_at_checked(n * 4)
}

/// Decodes a `text-nn` stream (or one whose blocks are all stored) made for the model with id
/// `model_id`, into `buf`, and hands the text to `sink` in pieces that have been checked: whole
/// blocks of revisions 1 and 2 (each must fit `buf`), [`WINDOW`]-byte segments of revision 3
/// blocks (`buf` must hold a window; it is used as a ring). Returns the number of bytes written.
/// Every structural check, and the check that the blocks fit `buf`, comes before the first byte
/// is written; a damaged block stops the decoding with [`DecodeError::BlockCorrupt`] before
/// anything of it that does not match its checksum is written.
pub fn decode<N: Network, S>(
    bytes: &[u8],
    model_id: u128,
    net: N,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), S>,
) -> Result<u64, DecodeError<N::Error, S>> {
    let stream = Stream::parse(bytes).map_err(DecodeError::Stream)?;
    let h = stream.header();
    match h.codec {
        CODEC_STORED => {}
        CODEC_TEXT_NN => {
            if !(OLDEST_REVISION..=REVISION).contains(&h.codec_revision)
                || u32::from(h.precision) != PRECISION
            {
                return Err(DecodeError::Revision {
                    found: h.codec_revision,
                    precision: h.precision,
                });
            }
            if h.model_id != model_id {
                return Err(DecodeError::Model {
                    stream: h.model_id,
                    have: model_id,
                });
            }
        }
        other => return Err(DecodeError::Codec(other)),
    }
    let windowed = h.codec == CODEC_TEXT_NN && h.codec_revision >= 3;
    // A revision 3 block needs a window of buffer (or itself, if shorter); revisions 1 and 2
    // the whole block.
    let need = |len: u32| {
        if windowed {
            len.min(WINDOW as u32)
        } else {
            len
        }
    };
    if let Some(b) = stream
        .blocks()
        .find(|b| !b.stored && need(b.original_len) as usize > buf.len())
    {
        return Err(DecodeError::BlockTooLarge {
            len: need(b.original_len),
            buffer: buf.len(),
        });
    }
    let mut source = StepSource::new(net);
    // The context models: on the stack of whoever calls this (about 40 KiB).
    let mut adaptive = Adaptive::new();
    let mut written = 0u64;
    for (i, block) in stream.blocks().enumerate() {
        let index = i as u32;
        let corrupt = || DecodeError::BlockCorrupt(index);
        if block.stored {
            if crc32fast::hash(block.data) != block.crc32 {
                return Err(corrupt());
            }
            sink(block.data).map_err(DecodeError::Sink)?;
            written += block.data.len() as u64;
            continue;
        }
        let len = block.original_len as usize;
        if windowed {
            // A ring of whole windows, or the block if it is shorter.
            let ring_len = if len <= buf.len() {
                len
            } else {
                buf.len() / WINDOW * WINDOW
            };
            let ring = &mut buf[..ring_len];
            let (crcs, data) = split_segment_crcs(block.data, len).ok_or_else(corrupt)?;
            let mut dec = Decoding::new(data).map_err(|_| corrupt())?;
            let mut whole = crc32fast::Hasher::new();
            if len == 0 && crc32fast::hash(&[]) != block.crc32 {
                return Err(corrupt());
            }
            let mut pos = 0;
            while pos < len {
                let at = code_segment(&mut dec, &mut source, &mut adaptive, ring, len, &mut pos)
                    .map_err(|e| decode_error(e, index))?;
                let segment = &ring[at];
                // Each byte is hashed once: the window's CRC, folded into the block's.
                let mut window = crc32fast::Hasher::new();
                window.update(segment);
                whole.combine(&window);
                let checked = match crcs.chunks_exact(4).nth((pos - 1) / WINDOW) {
                    Some(c) => window.finalize().to_le_bytes() == c,
                    // The last segment: the block's checksum covers it.
                    None => whole.clone().finalize() == block.crc32,
                };
                if !checked {
                    return Err(corrupt());
                }
                sink(segment).map_err(DecodeError::Sink)?;
                written += segment.len() as u64;
            }
            continue;
        }
        let out = &mut buf[..len];
        let mut dec = Decoding::new(block.data).map_err(|_| corrupt())?;
        let coded = if h.codec_revision == 1 {
            code_block(&mut dec, &mut source, out)
        } else {
            code_block_adaptive(&mut dec, &mut source, &mut adaptive, out)
        };
        coded.map_err(|e| decode_error(e, index))?;
        if crc32fast::hash(out) != block.crc32 {
            return Err(corrupt());
        }
        sink(out).map_err(DecodeError::Sink)?;
        written += out.len() as u64;
    }
    Ok(written)
}

/// A coding error of block `index` as a decoding error.
fn decode_error<N, S>(e: CodeError<StepError<N>>, index: u32) -> DecodeError<N, S> {
    match e {
        CodeError::Source(StepError::Network(e)) => DecodeError::Network(e),
        CodeError::Source(StepError::ContextTooLong(n)) => DecodeError::ContextTooLong(n),
        CodeError::Codec(Error::Distribution) => DecodeError::Distribution,
        CodeError::Codec(_) => DecodeError::BlockCorrupt(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Next;
    use crate::{Encoding, code_block_windowed, stored_len};
    use alloc::vec::Vec;
    use arca_coder::RangeEncoder;
    use core::convert::Infallible;

    const ID: u128 = 0x1234_5678_9abc_def0_1122_3344_5566_7788;

    /// A `text-nn` stream of `plain` in blocks of `block_size`, laid out as the runtime's
    /// container writer lays it out.
    fn write(plain: &[u8], block_size: usize) -> Vec<u8> {
        write_revision(plain, block_size, REVISION)
    }

    fn write_revision(plain: &[u8], block_size: usize, revision: u16) -> Vec<u8> {
        write_version(plain, block_size, revision, VERSION)
    }

    /// The same in container format `version` (1 by hand, as the builds before version 2 wrote
    /// it; 2 with this module's writer).
    fn write_version(plain: &[u8], block_size: usize, revision: u16, version: u16) -> Vec<u8> {
        let mut adaptive = Adaptive::new();
        let mut table = Vec::new();
        let mut body = Vec::new();
        for block in plain.chunks(block_size) {
            let mut copy = block.to_vec();
            let mut enc = Encoding::new(RangeEncoder::new(Vec::new()));
            let mut source = StepSource::new(Next);
            match revision {
                1 => code_block(&mut enc, &mut source, &mut copy).unwrap(),
                2 => code_block_adaptive(&mut enc, &mut source, &mut adaptive, &mut copy).unwrap(),
                _ => code_block_windowed(&mut enc, &mut source, &mut adaptive, &mut copy).unwrap(),
            }
            let words = enc.finish().unwrap();
            let mut bytes = Vec::new();
            if revision >= 3 {
                bytes.extend(segment_crcs(block));
            }
            bytes.extend(words.iter().flat_map(|w| w.to_le_bytes()));
            bytes.truncate(bytes.len() - words.len() * 4 + stored_len(&words));
            let stored = bytes.len() >= block.len();
            let data = if stored { block.to_vec() } else { bytes };
            let crc = crc32fast::hash(block);
            if version == 1 {
                table.extend_from_slice(&(data.len() as u32).to_le_bytes());
                table.extend_from_slice(&(block.len() as u32).to_le_bytes());
                table.extend_from_slice(&crc.to_le_bytes());
                table.extend_from_slice(&[u8::from(stored), 0, 0, 0]);
            } else {
                let mut e = [0u8; MAX_ENTRY_LEN];
                let n = write_entry(data.len() as u32, crc, stored, &mut e);
                table.extend_from_slice(&e[..n]);
            }
            body.extend_from_slice(&data);
        }
        let header = Header {
            codec: CODEC_TEXT_NN,
            precision: PRECISION as u8,
            model_id: ID,
            name: Header::pad_name("next"),
            window_bits: 0,
            codec_revision: revision,
            block_size: block_size as u32,
            original_len: plain.len() as u64,
            block_count: plain.len().div_ceil(block_size) as u32,
        };
        let mut out = if version == 1 {
            write_header_v1(&header).to_vec()
        } else {
            let mut h = [0u8; MAX_HEADER_LEN];
            let n = header.write(&mut h);
            h[..n].to_vec()
        };
        let crc = crc32fast::hash(&table);
        out.extend_from_slice(&table);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A version 1 header, as the builds before version 2 wrote it.
    fn write_header_v1(header: &Header) -> [u8; V1_HEADER_LEN] {
        let mut h = [0u8; V1_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&1u16.to_le_bytes());
        h[6] = header.codec;
        h[7] = header.precision;
        h[8..24].copy_from_slice(&header.model_id.to_le_bytes());
        h[24..56].copy_from_slice(&header.name);
        h[56..58].copy_from_slice(&header.window_bits.to_le_bytes());
        h[58..60].copy_from_slice(&header.codec_revision.to_le_bytes());
        h[60..64].copy_from_slice(&header.block_size.to_le_bytes());
        h[64..72].copy_from_slice(&header.original_len.to_le_bytes());
        h[72..76].copy_from_slice(&header.block_count.to_le_bytes());
        let crc = crc32fast::hash(&h[..76]);
        h[76..80].copy_from_slice(&crc.to_le_bytes());
        h
    }

    type Decoded = Result<u64, DecodeError<Infallible, Infallible>>;

    /// Decodes `bytes` with a buffer of `buf` bytes: the result, and each piece the sink got
    /// (also those before an error).
    fn decode_pieces(bytes: &[u8], buf: usize) -> (Decoded, Vec<Vec<u8>>) {
        let mut pieces = Vec::new();
        let mut buf = alloc::vec![0u8; buf];
        let r = decode(
            bytes,
            ID,
            Next,
            &mut buf,
            |b: &[u8]| -> Result<(), Infallible> {
                pieces.push(b.to_vec());
                Ok(())
            },
        );
        (r, pieces)
    }

    fn decode_all(
        bytes: &[u8],
        buf: usize,
    ) -> Result<Vec<u8>, DecodeError<Infallible, Infallible>> {
        let (r, pieces) = decode_pieces(bytes, buf);
        r.map(|_| pieces.concat())
    }

    /// Text whose repeats are both nearer and farther than a window.
    fn long_text() -> Vec<u8> {
        let mut t = Vec::new();
        let mut i = 0u32;
        while t.len() < 3 * WINDOW + 5000 {
            let line = alloc::format!("{} line {} of {}\n", i % 97, i * 7 % 1013, i % 5);
            t.extend_from_slice(line.as_bytes());
            i += 1;
        }
        t
    }

    #[test]
    fn windowed_blocks_decode_through_a_one_window_ring() {
        let t = long_text();
        for bs in [WINDOW, WINDOW + 1, 2 * WINDOW + 3, t.len()] {
            let s = write(&t, bs);
            for buf in [WINDOW, 2 * WINDOW, t.len()] {
                let (n, pieces) = decode_pieces(&s, buf);
                assert_eq!(n.unwrap() as usize, t.len());
                assert_eq!(pieces.concat(), t, "block size {bs}, buffer {buf}");
                let lens: Vec<usize> = pieces.iter().map(Vec::len).collect();
                assert!(lens.iter().all(|&p| p <= WINDOW), "{lens:?}");
            }
        }
        // A buffer shorter than a window cannot hold the history.
        let s = write(&t, t.len());
        assert_eq!(
            decode_all(&s, WINDOW - 1),
            Err(DecodeError::BlockTooLarge {
                len: WINDOW as u32,
                buffer: WINDOW - 1
            })
        );
    }

    #[test]
    fn a_damaged_window_stops_the_decoding_after_the_windows_before_it() {
        let t = long_text();
        let s = write(&t, t.len());
        let body = s.len()
            - Stream::parse(&s)
                .unwrap()
                .blocks()
                .next()
                .unwrap()
                .data
                .len();
        // The second window's checksum, then a byte of the coded data well into the block.
        for at in [body + 4, s.len() - 40] {
            let mut bad = s.clone();
            bad[at] ^= 0x10;
            let (r, pieces) = decode_pieces(&bad, WINDOW);
            let out = pieces.concat();
            assert_eq!(r, Err(DecodeError::BlockCorrupt(0)), "byte {at}");
            assert!(
                out.len().is_multiple_of(WINDOW) && out.len() < t.len(),
                "{}",
                out.len()
            );
            assert_eq!(out, t[..out.len()], "only checked windows are written");
        }
    }

    fn text() -> Vec<u8> {
        let mut t: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        t.extend_from_slice(b"random-ish: \x00\xff qwerty");
        t
    }

    #[test]
    fn streams_decode_block_by_block() {
        let t = text();
        for version in OLDEST_VERSION..=VERSION {
            for revision in OLDEST_REVISION..=REVISION {
                for bs in [1, 7, 100, 4096] {
                    let s = write_version(&t, bs, revision, version);
                    let p = Stream::parse(&s).unwrap();
                    assert_eq!(p.version(), version);
                    assert_eq!(p.header().model_name(), "next");
                    assert_eq!(p.blocks().count(), t.len().div_ceil(bs));
                    let out = decode_all(&s, 4096);
                    assert_eq!(out.unwrap(), t, "revision {revision}, block size {bs}");
                }
            }
        }
        assert_eq!(decode_all(&write(b"", 16), 16).unwrap(), b"");
        // A revision from the future is refused.
        let s = write_revision(&t, 100, REVISION + 1);
        let msg = alloc::format!("{}", decode_all(&s, 4096).unwrap_err());
        assert!(msg.contains("revisions 1 to"), "{msg}");
    }

    #[test]
    fn every_damaged_byte_is_an_error_or_a_checked_block_never_wrong_output() {
        let t = text();
        for version in OLDEST_VERSION..=VERSION {
            let s = write_version(&t[..700], 128, REVISION, version);
            flip_every_byte(&s, &t[..700]);
        }
    }

    fn flip_every_byte(s: &[u8], t: &[u8]) {
        for i in 0..s.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = s.to_vec();
                bad[i] ^= flip;
                match decode_all(&bad, 4096) {
                    Ok(out) => assert_eq!(out, t, "byte {i}: wrong output accepted"),
                    Err(e) => {
                        // Every error has a message.
                        assert!(!alloc::format!("{e}").is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn varints_have_one_form() {
        let mut b = [0u8; 10];
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let n = put_varint(v, &mut b);
            assert!(matches!(get_varint(&b, 0), Varint::Value(x, m) if x == v && m == n));
            assert!(matches!(get_varint(&b[..n - 1], 0), Varint::Cut));
        }
        // A longer form of a value, or more than 64 bits: refused.
        assert!(matches!(get_varint(&[0x81, 0x00], 0), Varint::Bad));
        assert!(matches!(
            get_varint(
                &[0xff; 9].iter().chain(&[2]).copied().collect::<Vec<_>>(),
                0
            ),
            Varint::Bad
        ));
        assert!(matches!(get_varint(&[0x80; 11], 0), Varint::Bad));
    }

    /// A version 2 header whose checksum matches but whose fields a writer never writes.
    #[test]
    fn forged_headers_are_refused() {
        let s = write(&text(), 512);
        let forge = |edit: &dyn Fn(&mut Vec<u8>)| {
            // "next", W and the revision (a byte each), block size and length (two each), CRC.
            let n = FIXED_LEN + 4 + 1 + 1 + 2 + 2 + 4;
            let mut h = s[..n - 4].to_vec();
            edit(&mut h);
            let crc = crc32fast::hash(&h);
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&s[n..]);
            Stream::parse(&h).err()
        };
        assert_eq!(forge(&|_| {}), None, "the unedited header parses");
        assert_eq!(
            forge(&|h| h[24] = 33),
            Some(StreamError::HeaderCorrupt),
            "a name longer than 32 bytes"
        );
        // Revision as 0x80 0x00 (a longer form of 0).
        assert_eq!(
            forge(&|h| {
                h.splice(FIXED_LEN + 5..FIXED_LEN + 6, [0x80, 0x00]);
            }),
            Some(StreamError::HeaderCorrupt)
        );
        // A window size of 2^16 bits.
        assert!(matches!(
            forge(&|h| {
                h.splice(FIXED_LEN + 4..FIXED_LEN + 5, [0x80, 0x80, 0x04]);
            }),
            Some(StreamError::Inconsistent { .. })
        ));
    }

    #[test]
    fn truncations_are_errors() {
        for version in OLDEST_VERSION..=VERSION {
            let s = write_version(&text(), 512, REVISION, version);
            for n in 0..s.len() {
                assert!(decode_all(&s[..n], 4096).is_err(), "truncated to {n}");
                if n < MAGIC.len() {
                    // Not yet the magic bytes: a reader of a pipe checks those itself.
                    continue;
                }
                let e = Stream::parse_prefix(&s[..n]).expect_err("a prefix");
                // A reader that reads what a cut stream says it needs gets further.
                if let StreamError::Truncated { needed, .. } = e {
                    assert!(needed > n as u64 && needed <= s.len() as u64, "{n}: {e}");
                } else {
                    panic!("truncated to {n}: {e}");
                }
            }
        }
        let s = write(&text(), 512);
        let mut long = s.clone();
        long.push(0);
        assert_eq!(
            decode_all(&long, 4096),
            Err(DecodeError::Stream(StreamError::TrailingBytes(1)))
        );
    }

    #[test]
    fn refusals_say_why_before_writing_anything() {
        let s = write(&text(), 1024);
        let mut written = 0;
        let mut buf = [0u8; 512];
        let r = decode(
            &s,
            ID,
            Next,
            &mut buf,
            |b: &[u8]| -> Result<(), Infallible> {
                written += b.len();
                Ok(())
            },
        );
        assert_eq!(
            r,
            Err(DecodeError::BlockTooLarge {
                len: 1024,
                buffer: 512
            })
        );
        assert_eq!(written, 0);
        let mut buf = [0u8; 1024];
        let r = decode(
            &s,
            ID ^ 1,
            Next,
            &mut buf,
            |_: &[u8]| -> Result<(), Infallible> { Ok(()) },
        );
        assert!(matches!(r, Err(DecodeError::Model { .. })));
        let msg = alloc::format!("{}", r.unwrap_err());
        assert!(
            msg.contains("another") || msg.contains("not this model"),
            "{msg}"
        );
    }
}
