//! Unit tests, by format: the MNIST fixtures, exact messages, gzip bombs, interlaced and
//! animated PNGs, every hostile layout field, and fuzz-style properties. The helpers that build
//! files are here, once.

#![allow(clippy::unwrap_used)]

mod idx;
mod layout;
mod mixed;
mod pgm;
mod png;

use std::io::Write as _;
use std::path::PathBuf;

use crate::exact;
use crate::idx::{GZIP_MAGIC, IDX_MAGIC};
use crate::png::{chunk_name, png_chunks};
use crate::types::{LAYOUT_HEAD, LAYOUT_VERSION, PNG_SIGNATURE};
use crate::{ImageError, ImageFormat, Images, layout_dims, parse, write};

fn mnist(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/mnist")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn idx_file(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = IDX_MAGIC.to_vec();
    for n in [count, rows, cols] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `bytes` in one zlib stream, deflated by flate2 at `level`.
fn zlib_at(level: u32, bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    zlib_at(6, bytes)
}

/// Pixels that are not all alike: `i * 37 + i / 7`, wrapping.
fn ramp(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 37 + i / 7) as u8).collect()
}

fn round_trip(file: &[u8]) -> Images {
    let images = parse(file).unwrap();
    assert_eq!(write(images.layout(), &images.pixels).unwrap(), file);
    images
}

fn message(result: Result<impl std::fmt::Debug, ImageError>) -> String {
    result.unwrap_err().to_string()
}

fn assert_err_contains<T: std::fmt::Debug>(result: Result<T, ImageError>, parts: &[&str]) {
    let text = message(result);
    for part in parts {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
}

/// The message of the error `parse` gives for `bytes`, or what it parsed.
fn err(bytes: &[u8]) -> String {
    match parse(bytes) {
        Err(e) => e.to_string(),
        Ok(i) => format!("parsed as {} {}x{}", i.format, i.height, i.width),
    }
}

// --- PNG helpers: a hand-made PNG, chunk by chunk.

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::exact::chunk(&mut out, kind, data);
    out
}

fn ihdr(width: u32, height: u32, depth: u8, color: u8, interlace: u8) -> Vec<u8> {
    let mut d = width.to_be_bytes().to_vec();
    d.extend_from_slice(&height.to_be_bytes());
    d.extend_from_slice(&[depth, color, 0, 0, interlace]);
    png_chunk(b"IHDR", &d)
}

/// A PNG from its IHDR and chunks in order; `IDAT` data given raw is zlib'd here.
fn png_file(ihdr: Vec<u8>, chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut out = PNG_SIGNATURE.to_vec();
    out.extend_from_slice(&ihdr);
    for (kind, data) in chunks {
        if *kind == b"IDAT" {
            out.extend_from_slice(&png_chunk(kind, &zlib(data)));
        } else {
            out.extend_from_slice(&png_chunk(kind, data));
        }
    }
    out.extend_from_slice(&png_chunk(b"IEND", &[]));
    out
}

/// Scanlines with filter 0 for an image of `row_bytes` bytes a row.
fn scanlines(pixels: &[u8], row_bytes: usize) -> Vec<u8> {
    pixels
        .chunks(row_bytes)
        .flat_map(|row| std::iter::once(0).chain(row.iter().copied()))
        .collect()
}

/// A PNG by hand: filter 0 rows, zlib via flate2 at level 9, `extra` chunks before IDAT.
fn png_by_hand(w: u32, h: u32, depth: u8, color: u8, rows: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let stride = rows.len() / h as usize;
    let mut out = PNG_SIGNATURE.to_vec();
    out.extend(ihdr(w, h, depth, color, 0));
    for c in extra {
        out.extend_from_slice(c);
    }
    out.extend(png_chunk(b"IDAT", &zlib_at(9, &scanlines(rows, stride))));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// An 8-bit grayscale PNG made by the `png` crate with its own defaults.
fn png_by_crate(width: u32, height: u32, pixels: &[u8], text: Option<(&str, &str)>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut out, width, height);
    encoder.set_color(::png::ColorType::Grayscale);
    encoder.set_depth(::png::BitDepth::Eight);
    if let Some((key, value)) = text {
        encoder
            .add_text_chunk(key.to_string(), value.to_string())
            .unwrap();
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(pixels).unwrap();
    writer.finish().unwrap();
    out
}
