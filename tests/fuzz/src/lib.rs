//! The code paths arca's fuzz targets drive, shared with the regression test that replays every
//! crash input (`tests/tests/fuzz_regressions.rs` includes this file as a module), so a saved
//! input is replayed through exactly the code that found it.
//!
//! Each entry point runs twice: on the raw bytes, and on a copy whose checksums (and the few
//! fields a checksum-free fuzzer would otherwise never guess) are made consistent, so that
//! mutations reach the block decoder and the rkyv manifest validation instead of all stopping at
//! a CRC or hash mismatch. Neither may panic; errors are the expected outcome.

use arca_runtime::bundle::Bundle;
use arca_runtime::codec::{Options, TextCodec};
use arca_runtime::container::{self, Stream};
use arca_runtime::engine::TextModel;

/// Streams declaring more original bytes than this are parsed but not decoded: the decoder
/// allocates and codes the declared length (a 100-byte stream can declare 4 GiB), which the
/// fuzzer would report as out-of-memory or timeout on every such input and stop exploring; and
/// decoding costs about a microsecond per byte, so this keeps the fuzzer at hundreds of inputs
/// a second. The largest seed decodes to 11 KB.
pub const MAX_DECODED_LEN: u64 = 16 << 10;

/// Bundles up to this size are also loaded into tract (and run once): cheap for the tiny test
/// fixture, seconds for the shipped model.
pub const MAX_LOADED_BUNDLE: usize = 64 << 10;

/// Arbitrary bytes as a `.arca` stream: parse, and decode with the network-free codec.
pub fn decode_stream(data: &[u8]) {
    decode(data);
    if let Some(fixed) = fix_stream(data) {
        decode(&fixed);
    }
}

/// Arbitrary bytes as a `.arcm` bundle: open, list the manifest, load small ones.
pub fn open_bundle(data: &[u8]) {
    open(data);
    if let Some(fixed) = fix_bundle(data) {
        open(&fixed);
    }
}

fn decode(data: &[u8]) {
    let Ok(stream) = Stream::parse(data) else {
        return;
    };
    for i in 0..=stream.entries().len() {
        let _ = stream.block_data(i);
    }
    if stream.header().original_len > MAX_DECODED_LEN {
        return;
    }
    let codec = TextCodec::without_network();
    let opts = Options {
        block_size: 4096,
        threads: 1,
    };
    if let Ok(out) = codec.decompress(data, &opts, &|_| {}) {
        assert_eq!(out.len() as u64, stream.header().original_len);
    }
}

fn open(data: &[u8]) {
    let Ok(bundle) = Bundle::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = bundle.manifest_lines();
    let _ = format!("{bundle:?} {}", bundle.short_id());
    for t in &bundle.manifest().tensors {
        let _ = bundle.tensor(&t.name);
    }
    if bundle.as_bytes().len() > MAX_LOADED_BUNDLE {
        return;
    }
    let Ok(model) = TextModel::load(&bundle) else {
        return;
    };
    if model.context_len() <= 4096 {
        let context = vec![model.pad_id(); model.context_len()];
        let mut logits = Vec::new();
        let _ = model.logits(&context, 1, &mut logits);
    }
}

/// `data` made into a stream header and table with valid checksums, the right magic, version
/// and codec revision, a block count that matches the lengths, and model id 0 (the network-free
/// codec's), so that decoding goes past [`Stream::parse`]. Data whose version field says 2 is
/// fixed as a version 2 stream (variable-length fields), anything else as version 1. `None` if
/// too short for a header.
pub fn fix_stream(data: &[u8]) -> Option<Vec<u8>> {
    if data.get(4..6) == Some(&2u16.to_le_bytes()[..]) {
        fix_stream_v2(data)
    } else {
        fix_stream_v1(data)
    }
}

/// Version 1: an 80-byte header and 16-byte table entries at fixed offsets.
fn fix_stream_v1(data: &[u8]) -> Option<Vec<u8>> {
    const HEADER_LEN: usize = 80;
    const ENTRY_LEN: usize = 16;
    let mut v = data.get(..HEADER_LEN).map(|_| data.to_vec())?;
    v[0..4].copy_from_slice(&container::MAGIC);
    v[4..6].copy_from_slice(&1u16.to_le_bytes());
    v[8..24].fill(0);
    v[58..60].copy_from_slice(&text_cm_revision().to_le_bytes());
    let block_size = u32_at(&v, 60);
    let original_len = u64::from_le_bytes(v[64..72].try_into().ok()?);
    if block_size > 0 {
        let n = container::block_count(original_len, block_size);
        v[72..76].copy_from_slice(&n.to_le_bytes());
    }
    let crc = crc32(&v[..76]);
    v[76..80].copy_from_slice(&crc.to_le_bytes());
    let n = u32_at(&v, 72) as usize;
    let table_end = n.checked_mul(ENTRY_LEN)?.checked_add(HEADER_LEN)?;
    if let Some(table) = v.get(HEADER_LEN..table_end) {
        let crc = crc32(table);
        if let Some(slot) = v.get_mut(table_end..table_end + 4) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
    }
    Some(v)
}

/// Version 2: the header rewritten from the fields `data` holds (its name length cut to 32,
/// its varints read as they are, the revision replaced), then `data`'s table with its checksum
/// fixed where the entries are whole.
fn fix_stream_v2(data: &[u8]) -> Option<Vec<u8>> {
    let fixed = data.get(..25)?;
    let name_len = usize::from(fixed[24]).min(container::NAME_LEN);
    let mut at = 25 + name_len;
    let mut fields = [0u64; 4];
    for f in &mut fields {
        let (value, n) = varint(data, at)?;
        *f = value;
        at += n;
    }
    let [window_bits, _, block_size, original_len] = fields;
    let mut v = Vec::with_capacity(data.len());
    v.extend_from_slice(&container::MAGIC);
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&fixed[6..8]);
    v.extend_from_slice(&[0; 16]);
    v.push(name_len as u8);
    v.extend_from_slice(data.get(25..25 + name_len)?);
    for f in [
        window_bits,
        u64::from(text_cm_revision()),
        block_size,
        original_len,
    ] {
        put_varint(f, &mut v);
    }
    let crc = crc32(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    // The old checksum's 4 bytes are replaced by the new one.
    let rest = data.get(at + 4..).unwrap_or(&[]);
    let table_start = v.len();
    v.extend_from_slice(rest);
    let n = if block_size == 0 {
        0
    } else {
        original_len.div_ceil(block_size)
    };
    let mut end = table_start;
    for _ in 0..n.min(1 << 20) {
        let (_, len) = varint(&v, end)?;
        end += len + 4;
    }
    if let Some(table) = v.get(table_start..end) {
        let crc = crc32(table);
        if let Some(slot) = v.get_mut(end..end + 4) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
    }
    Some(v)
}

fn text_cm_revision() -> u16 {
    arca_runtime::codec::revision(arca_runtime::Codec::TextCm)
}

/// An unsigned LEB128 varint at `at`: its value and length (`None` past the end or 10 bytes).
fn varint(data: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *data.get(at + i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `data` made into a bundle header with the right magic, version and manifest offset and valid
/// header and manifest hashes, so that the manifest reaches rkyv's validation. `None` if too
/// short for a header.
pub fn fix_bundle(data: &[u8]) -> Option<Vec<u8>> {
    use arca_runtime::bundle::{FORMAT_VERSION, HEADER_LEN, MAGIC};
    use xxhash_rust::xxh3::xxh3_64;
    let mut v = data.get(..HEADER_LEN).map(|_| data.to_vec())?;
    v[0..4].copy_from_slice(&MAGIC);
    v[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    v[8..16].fill(0);
    v[16..24].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    let manifest_len = usize::try_from(u64::from_le_bytes(v[24..32].try_into().ok()?)).ok()?;
    if let Some(manifest) = HEADER_LEN
        .checked_add(manifest_len)
        .and_then(|end| v.get(HEADER_LEN..end))
    {
        let hash = xxh3_64(manifest);
        v[64..72].copy_from_slice(&hash.to_le_bytes());
    }
    let hash = xxh3_64(&v[..72]);
    v[72..80].copy_from_slice(&hash.to_le_bytes());
    Some(v)
}

fn u32_at(v: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = v.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

/// CRC-32 (IEEE, the one `crc32fast` computes), bit by bit: only fix-ups need it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
