//! Image files for the circuit codec: 8-bit grayscale images in MNIST idx, PGM or PNG files.
//!
//! `arca compress -m <circuit> FILE` codes an image file's pixels with a probabilistic circuit.
//! Everything in the file that is not a pixel (its header, comments, PNG chunks) is the file's
//! *layout*: [`parse`] splits a file into pixels and layout, the codec stores the layout beside
//! the coded pixels, and [`write`] joins the two into the file again. [`layout_dims`] tells a
//! decoder how many pixels to decode before it calls [`write`].
//!
//! ```
//! use arca_image::{self as image, ImageFormat};
//! let mut file = b"P5\n# a 3x2 test image\n3 2\n255\n".to_vec();
//! file.extend_from_slice(&[0, 64, 128, 192, 255, 7]);
//!
//! let images = image::parse(&file)?;
//! assert_eq!(images.format, ImageFormat::Pgm);
//! assert_eq!((images.count, images.height, images.width), (1, 2, 3));
//! assert_eq!(images.image(0), &[0, 64, 128, 192, 255, 7]);
//!
//! // The decoder's side: the stored layout says how many pixels to decode, then rebuilds the file.
//! let layout = images.layout();
//! assert_eq!(image::layout_dims(layout)?, (ImageFormat::Pgm, 1, 2, 3));
//! assert_eq!(image::write(layout, &images.pixels)?, file);
//! # Ok::<(), image::ImageError>(())
//! ```
//!
//! # Formats, and what comes back exactly
//!
//! The format is detected from the first bytes; the image size is whatever the file says (any
//! height, width and count of at least 1): checking it against a model is the caller's job.
//!
//! - **idx** (MNIST, magic `00 00 08 03`: unsigned bytes, 3 dimensions): big-endian count, rows
//!   and columns, then `count * rows * cols` pixels; the length must be exact. Written back byte
//!   for byte. Other element types and dimension counts (the labels file, `00 00 08 01`) are
//!   refused.
//! - **idx inside gzip** (input starts `1f 8b`): gunzipped, with the output capped at what the
//!   idx header announces and at [`MAX_DECODED_BYTES`]. A gzip stream's own bytes cannot be
//!   reproduced (MNIST's `.gz` files come from a deflate encoder that no zlib level matches), so
//!   [`write`] gzips the idx file again with fixed settings (level 9, no name, time 0): the
//!   result is a gzip file whose content is the original idx file byte for byte, but its
//!   compressed bytes differ from the input's. [`Images::was_gzipped`] says when that happened.
//! - **PGM**, binary `P5` with maxval 255. Each header is kept verbatim, comments and exact
//!   whitespace included, so the file comes back byte for byte. Several images back to back
//!   (netpbm allows it) are read if they all have the same size; whitespace between them and
//!   after the last one is kept. ASCII `P2`, other maxvals and the other netpbm formats are
//!   refused.
//! - **PNG**, 8-bit grayscale (color type 0, bit depth 8) only; every other color type and bit
//!   depth is refused. Chunks other than `IHDR`, `IDAT` and `IEND` are kept verbatim, with their
//!   place before or after the image data. The image data itself is rebuilt exactly when zlib
//!   made it: [`parse`] records each row's filter and searches zlib's parameters (level class and
//!   window from the stream's header, then memory levels and strategies) for the ones that
//!   reproduce the `IDAT` stream, and [`write`] deflates the re-filtered rows with them, split into
//!   the same `IDAT` chunks: PNGs from libpng, Python's zlib or optipng come back byte for byte.
//!   Otherwise [`write`] encodes the pixels again with fixed settings (the `png` crate: one `IDAT`
//!   chunk, filter Paeth on every row, zlib level 9 from miniz_oxide, not interlaced): the same
//!   pixels and the same other chunks, other `IDAT` bytes. Interlaced (Adam7)
//!   input is accepted and written back **not interlaced**. Animated PNGs (`acTL`), a `PLTE`
//!   chunk, unknown critical chunks, bad CRCs and bytes after `IEND` are refused. The coded
//!   pixels never include the PNG's deflate stream.
//!
//! # Layout
//!
//! A small versioned blob; integers are little endian, like the rest of the `.arca` container.
//! [`write`] and [`layout_dims`] check all of it, and never trust a size before checking it
//! against the bytes that are there.
//!
//! ```text
//! offset  size  field
//! 0       1     layout version (1)
//! 1       1     format: 1 = idx, 2 = PGM, 3 = PNG
//! 2       4     count: images in the file (u32, >= 1; PNG: 1)
//! 6       4     height in pixels (u32, >= 1)
//! 10      4     width in pixels (u32, >= 1)
//! 14            format-specific, to the end of the layout:
//!   idx   1     flags: bit 0 = the input was gzip (written back gzipped again); others 0
//!   PGM         count headers, each: length n (u32) and n bytes, everything between the end
//!               of the previous image's pixels (or the file's start) and this image's pixels;
//!               n = 0 repeats the previous header (never for the first); then length t (u32)
//!               and t bytes after the last image, whitespace only
//!   PNG   1     flags: bit 0 = the input was interlaced (written back not interlaced), bit 1 =
//!               the IDAT is rebuilt exactly (never with bit 0); others 0
//!         (bit 1 only) 4 bytes: zlib level, window bits, memory level, strategy; one filter
//!               type per row (height bytes); IDAT chunk count (u32) and each one's length (u32)
//!         4     number of chunks before IDAT, then each: type (4 bytes), length n (u32), n bytes
//!         4     number of chunks after IDAT, the same way
//! ```
//!
//! [`write`]: fn@write

mod blob;
mod exact;
mod idx;
mod layout;
mod pgm;
mod png;
#[cfg(test)]
mod tests;
mod types;

use crate::idx::{GZIP_MAGIC, gunzip_idx, idx_type_name, parse_idx};
use crate::layout::{Layout, Rest};
use crate::pgm::parse_pgm;
use crate::png::{parse_png, write_png};
pub use crate::types::{ImageError, ImageFormat, Images, MAX_DECODED_BYTES};
use crate::types::{PNG_SIGNATURE, hex_head};

/// Reads an image file: idx (raw or gzip), PGM (`P5`) or PNG, detected from its first bytes.
pub fn parse(bytes: &[u8]) -> Result<Images, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        let plain = gunzip_idx(bytes)?;
        return parse_idx(&plain, true);
    }
    if bytes.starts_with(&PNG_SIGNATURE) {
        return parse_png(bytes);
    }
    if bytes.len() >= 2 && bytes[0] == b'P' && (b'1'..=b'7').contains(&bytes[1]) {
        return parse_pgm(bytes);
    }
    if bytes.len() >= 3 && bytes[0] == 0 && bytes[1] == 0 && idx_type_name(bytes[2]).is_some() {
        return parse_idx(bytes, false);
    }
    Err(ImageError::UnknownFormat {
        head: hex_head(bytes),
    })
}

/// Rebuilds a file from a layout that [`parse`] made and the pixels (`count * height * width`
/// bytes, image after image). A gzip'd idx input comes back gzipped again (the same idx inside,
/// other compressed bytes); a PNG comes
/// back encoded with this crate's fixed settings (see the crate docs).
pub fn write(layout: &[u8], pixels: &[u8]) -> Result<Vec<u8>, ImageError> {
    let parsed = Layout::decode(layout)?;
    let expected = parsed.count as u128 * parsed.height as u128 * parsed.width as u128;
    if expected != pixels.len() as u128 {
        return Err(ImageError::PixelCount {
            count: parsed.count as usize,
            height: parsed.height as usize,
            width: parsed.width as usize,
            expected,
            actual: pixels.len(),
        });
    }
    match &parsed.rest {
        Rest::Idx { gzipped } => {
            idx::write_idx(parsed.count, parsed.height, parsed.width, *gzipped, pixels)
        }
        Rest::Pgm { headers, trailer } => Ok(pgm::write_pgm(headers, trailer, pixels)),
        Rest::Png {
            before,
            after,
            exact: Some((params, lens)),
        } => exact::write(
            parsed.width,
            parsed.height,
            before,
            after,
            params,
            lens,
            pixels,
        ),
        Rest::Png { before, after, .. } => {
            write_png(parsed.width, parsed.height, before, after, pixels)
        }
    }
}

/// The format, count, height and width a layout describes: a decoder decodes
/// `count * height * width` pixels, then calls [`write`](fn@write). Checks the whole layout.
pub fn layout_dims(layout: &[u8]) -> Result<(ImageFormat, usize, usize, usize), ImageError> {
    let parsed = Layout::decode(layout)?;
    let (count, height, width) = (
        parsed.count as usize,
        parsed.height as usize,
        parsed.width as usize,
    );
    if count
        .checked_mul(height)
        .and_then(|n| n.checked_mul(width))
        .is_none()
    {
        return Err(ImageError::Layout(format!(
            "{count} images of {height}x{width} do not fit in memory"
        )));
    }
    Ok((parsed.format, count, height, width))
}
