//! 8-bit grayscale PNG: its chunks, decoding its pixels, and encoding them again.

use std::io::Cursor;

use crate::blob::{layout_head, push_len};
use crate::exact;
use crate::types::{
    ImageError, ImageFormat, Images, MAX_DECODED_BYTES, PNG_SIGNATURE, png_malformed,
};

/// Deflate expands at most 1032:1; a PNG whose pixels need more is refused before decoding.
const DEFLATE_MAX_RATIO: u128 = 1032;
/// The zlib level of the PNGs that [`write`](crate::write) produces.
const PNG_ZLIB_LEVEL: u8 = 9;

fn png_unsupported(reason: String) -> ImageError {
    ImageError::Unsupported {
        format: ImageFormat::Png,
        reason,
    }
}

/// A chunk of a PNG file: its type, its data, and its bytes in the file (length to CRC).
pub(crate) struct Chunk<'a> {
    pub(crate) kind: [u8; 4],
    data: &'a [u8],
    raw: &'a [u8],
}

/// The chunk type as text, for messages.
pub(crate) fn chunk_name(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02X}")
            }
        })
        .collect()
}

/// Splits a PNG (signature checked) into its chunks, checking lengths and CRCs.
pub(crate) fn png_chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, ImageError> {
    let mut chunks = Vec::new();
    let mut pos = PNG_SIGNATURE.len();
    loop {
        if pos == bytes.len() {
            return Err(ImageError::Length {
                format: ImageFormat::Png,
                reason: format!(
                    "truncated PNG file: {} bytes and no IEND chunk",
                    bytes.len()
                ),
            });
        }
        let Some(head) = bytes.get(pos..pos + 8) else {
            return Err(ImageError::Length {
                format: ImageFormat::Png,
                reason: format!(
                    "truncated PNG file: a chunk header at offset {pos} needs 8 bytes, {} left",
                    bytes.len() - pos
                ),
            });
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        let name = chunk_name(&kind);
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(png_malformed(format!(
                "chunk type '{name}' at offset {pos} is not 4 letters"
            )));
        }
        if len > i32::MAX as u32 {
            return Err(png_malformed(format!(
                "chunk {name} at offset {pos} has length {len} > 2^31-1"
            )));
        }
        let end = pos as u64 + 12 + u64::from(len);
        if end > bytes.len() as u64 {
            return Err(ImageError::Length {
                format: ImageFormat::Png,
                reason: format!(
                    "truncated PNG file: chunk {name} at offset {pos} needs {} bytes, {} left",
                    12 + u64::from(len),
                    bytes.len() - pos
                ),
            });
        }
        let end = end as usize;
        let data = &bytes[pos + 8..end - 4];
        let stored = u32::from_be_bytes([
            bytes[end - 4],
            bytes[end - 3],
            bytes[end - 2],
            bytes[end - 1],
        ]);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&kind);
        crc.update(data);
        if crc.finalize() != stored {
            return Err(png_malformed(format!(
                "chunk {name} at offset {pos} has a bad CRC"
            )));
        }
        chunks.push(Chunk {
            kind,
            data,
            raw: &bytes[pos..end],
        });
        pos = end;
        if &kind == b"IEND" {
            if !data.is_empty() {
                return Err(png_malformed(format!(
                    "IEND chunk has {} bytes, not 0",
                    data.len()
                )));
            }
            if pos != bytes.len() {
                return Err(ImageError::Length {
                    format: ImageFormat::Png,
                    reason: format!(
                        "PNG file has {} trailing bytes after its IEND chunk",
                        bytes.len() - pos
                    ),
                });
            }
            return Ok(chunks);
        }
    }
}

/// The IHDR fields this module reads: width, height, interlaced.
fn png_header(ihdr: &Chunk<'_>) -> Result<(u32, u32, bool), ImageError> {
    if &ihdr.kind != b"IHDR" {
        return Err(png_malformed(format!(
            "the first chunk is {}, not IHDR",
            chunk_name(&ihdr.kind)
        )));
    }
    let d = ihdr.data;
    if d.len() != 13 {
        return Err(png_malformed(format!("IHDR has {} bytes, not 13", d.len())));
    }
    let width = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let height = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    let (depth, color) = (d[8], d[9]);
    let color_name = match color {
        0 => None,
        2 => Some("RGB"),
        3 => Some("palette (indexed color)"),
        4 => Some("grayscale with alpha"),
        6 => Some("RGBA"),
        _ => {
            return Err(png_malformed(format!(
                "IHDR has an invalid color type {color}"
            )));
        }
    };
    if let Some(name) = color_name {
        return Err(png_unsupported(format!(
            "PNG is {name} (color type {color}); only 8-bit grayscale is supported"
        )));
    }
    if depth != 8 {
        return Err(if matches!(depth, 1 | 2 | 4 | 16) {
            png_unsupported(format!(
                "PNG is {depth}-bit grayscale; only 8-bit grayscale is supported"
            ))
        } else {
            png_malformed(format!("IHDR has an invalid bit depth {depth}"))
        });
    }
    if width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return Err(png_malformed(format!(
            "IHDR gives an invalid size {width}x{height}"
        )));
    }
    if d[10] != 0 || d[11] != 0 {
        return Err(png_malformed(format!(
            "IHDR has compression method {} and filter method {}; only 0 is defined",
            d[10], d[11]
        )));
    }
    let interlaced = match d[12] {
        0 => false,
        1 => true,
        other => {
            return Err(png_malformed(format!(
                "IHDR has an invalid interlace method {other}"
            )));
        }
    };
    Ok((width, height, interlaced))
}

/// Why a chunk kept in the layout is refused, if it is.
pub(crate) fn refused_chunk(kind: &[u8; 4]) -> Option<&'static str> {
    match kind {
        b"IHDR" | b"IDAT" | b"IEND" => Some("it is rebuilt from the pixels"),
        b"acTL" | b"fcTL" | b"fdAT" => Some("animated PNGs (APNG) are not supported"),
        b"PLTE" => Some("a grayscale PNG has no palette"),
        _ if kind[0].is_ascii_uppercase() => Some("it is an unknown critical chunk"),
        _ => None,
    }
}

pub(crate) fn parse_png(bytes: &[u8]) -> Result<Images, ImageError> {
    let chunks = png_chunks(bytes)?;
    let (width, height, interlaced) = png_header(&chunks[0])?;
    // Chunks before the IDAT run, the run, and after it.
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut idat: Vec<&Chunk<'_>> = Vec::new();
    for chunk in &chunks[1..chunks.len() - 1] {
        let name = chunk_name(&chunk.kind);
        match &chunk.kind {
            b"IDAT" if after.is_empty() => {
                idat.push(chunk);
                continue;
            }
            b"IDAT" => {
                return Err(png_malformed(
                    "IDAT chunks are not consecutive (other chunks are between them)".to_string(),
                ));
            }
            b"acTL" | b"fcTL" | b"fdAT" => {
                return Err(png_unsupported(format!(
                    "animated PNG (APNG, {name} chunk) is not supported; only a single 8-bit \
                     grayscale image"
                )));
            }
            b"IHDR" => return Err(png_malformed("a second IHDR chunk".to_string())),
            b"PLTE" => return Err(png_malformed("a PLTE chunk in a grayscale PNG".to_string())),
            _ => {}
        }
        if let Some(why) = refused_chunk(&chunk.kind) {
            return Err(png_unsupported(format!("PNG has a {name} chunk: {why}")));
        }
        let list = if idat.is_empty() {
            &mut before
        } else {
            &mut after
        };
        list.push((chunk.kind, chunk.data));
    }
    if idat.is_empty() {
        return Err(png_malformed("no IDAT chunk".to_string()));
    }
    let pixel_bytes = u128::from(width) * u128::from(height);
    if pixel_bytes > MAX_DECODED_BYTES as u128 {
        return Err(ImageError::TooLarge {
            what: format!("a {width}x{height} PNG"),
            bytes: pixel_bytes,
        });
    }
    let compressed: usize = idat.iter().map(|c| c.data.len()).sum();
    if pixel_bytes > DEFLATE_MAX_RATIO * (compressed as u128 + 4) {
        return Err(png_malformed(format!(
            "{compressed} bytes of IDAT data cannot hold {width}x{height} pixels (deflate expands \
             at most {DEFLATE_MAX_RATIO}:1)"
        )));
    }
    let pixels = decode_png_pixels(&chunks[0], &idat, pixel_bytes as usize)?;

    let mut layout = layout_head(ImageFormat::Png, 1, height, width);
    let stream: Vec<u8> = idat.iter().flat_map(|c| c.data.iter().copied()).collect();
    let exact = if interlaced {
        None
    } else {
        exact::find(&stream, &pixels, width as usize, height as usize)
    };
    layout.push(u8::from(interlaced) | if exact.is_some() { 2 } else { 0 });
    if let Some(params) = &exact {
        layout.extend_from_slice(&[
            params.level,
            params.window_bits,
            params.mem_level,
            params.strategy,
        ]);
        layout.extend_from_slice(&params.filters);
        push_len(&mut layout, idat.len(), ImageFormat::Png)?;
        for chunk in &idat {
            push_len(&mut layout, chunk.data.len(), ImageFormat::Png)?;
        }
    }
    for list in [&before, &after] {
        push_len(&mut layout, list.len(), ImageFormat::Png)?;
        for (kind, data) in list {
            layout.extend_from_slice(kind);
            push_len(&mut layout, data.len(), ImageFormat::Png)?;
            layout.extend_from_slice(data);
        }
    }
    Ok(Images {
        format: ImageFormat::Png,
        height: height as usize,
        width: width as usize,
        count: 1,
        pixels,
        layout,
    })
}

/// Decodes the pixels of the IHDR and IDAT chunks with the `png` crate (other chunks are kept
/// verbatim, so they need not please the decoder).
fn decode_png_pixels(
    ihdr: &Chunk<'_>,
    idat: &[&Chunk<'_>],
    size: usize,
) -> Result<Vec<u8>, ImageError> {
    let mut bare = Vec::with_capacity(
        PNG_SIGNATURE.len() + ihdr.raw.len() + idat.iter().map(|c| c.raw.len()).sum::<usize>() + 12,
    );
    bare.extend_from_slice(&PNG_SIGNATURE);
    bare.extend_from_slice(ihdr.raw);
    for chunk in idat {
        bare.extend_from_slice(chunk.raw);
    }
    bare.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    let limits = png::Limits {
        bytes: MAX_DECODED_BYTES,
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bare.as_slice()), limits);
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(ImageError::PngDecode)?;
    if reader.output_buffer_size() != Some(size) {
        return Err(png_malformed(format!(
            "the decoder wants {:?} bytes for {size} pixels",
            reader.output_buffer_size()
        )));
    }
    let mut pixels = vec![0; size];
    let info = reader
        .next_frame(&mut pixels)
        .map_err(ImageError::PngDecode)?;
    if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Eight {
        return Err(png_malformed(format!(
            "decoded as {:?} {:?}, not 8-bit grayscale",
            info.color_type, info.bit_depth
        )));
    }
    Ok(pixels)
}

/// Encodes a PNG with this module's fixed settings: IHDR, the kept chunks before the image
/// data, one IDAT (Paeth on every row, zlib level 9), the kept chunks after, IEND.
pub(crate) fn write_png(
    width: u32,
    height: u32,
    before: &[([u8; 4], &[u8])],
    after: &[([u8; 4], &[u8])],
    pixels: &[u8],
) -> Result<Vec<u8>, ImageError> {
    let kept: usize = before.iter().chain(after).map(|(_, d)| d.len() + 12).sum();
    let mut out = Vec::with_capacity(kept + pixels.len() / 2 + 64);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_filter(png::Filter::Paeth);
    encoder.set_deflate_compression(png::DeflateCompression::Level(PNG_ZLIB_LEVEL));
    let mut writer = encoder.write_header().map_err(ImageError::PngEncode)?;
    for (kind, data) in before {
        writer
            .write_chunk(png::chunk::ChunkType(*kind), data)
            .map_err(ImageError::PngEncode)?;
    }
    writer
        .write_image_data(pixels)
        .map_err(ImageError::PngEncode)?;
    for (kind, data) in after {
        writer
            .write_chunk(png::chunk::ChunkType(*kind), data)
            .map_err(ImageError::PngEncode)?;
    }
    writer.finish().map_err(ImageError::PngEncode)?;
    Ok(out)
}
