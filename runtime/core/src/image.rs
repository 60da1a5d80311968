//! Image files for the circuit codec: 8-bit grayscale images in MNIST idx, PGM or PNG files.
//!
//! `arca compress -m <circuit> FILE` codes an image file's pixels with a probabilistic circuit.
//! Everything in the file that is not a pixel (its header, comments, PNG chunks) is the file's
//! *layout*: [`parse`] splits a file into pixels and layout, the codec stores the layout beside
//! the coded pixels, and [`write`] joins the two into the file again. [`layout_dims`] tells a
//! decoder how many pixels to decode before it calls [`write`].
//!
//! ```
//! use arca_runtime::image::{self, ImageFormat};
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

use std::io::{Cursor, Read};

use thiserror::Error;

/// Most bytes of pixels that gzip or PNG input may decompress to (1 GiB): a guard against
/// decompression bombs. Uncompressed input (idx, PGM) has no such limit.
pub const MAX_DECODED_BYTES: usize = 1 << 30;

/// A PNG chunk kept in a layout: its type and its data.
type KeptChunk<'a> = ([u8; 4], &'a [u8]);

/// Version of the layout blob this build writes and reads.
const LAYOUT_VERSION: u8 = 1;
/// Bytes of the layout before the format-specific part.
const LAYOUT_HEAD: usize = 14;
/// The 16-byte idx header: magic, count, rows, cols.
const IDX_HEADER: usize = 16;
/// The magic of an idx file of unsigned bytes with 3 dimensions.
const IDX_MAGIC: [u8; 4] = [0, 0, 0x08, 3];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
/// Deflate expands at most 1032:1; a PNG whose pixels need more is refused before decoding.
const DEFLATE_MAX_RATIO: u128 = 1032;
/// The zlib level of the PNGs that [`write`] produces.
const PNG_ZLIB_LEVEL: u8 = 9;

/// The file formats [`parse`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// MNIST idx, unsigned bytes, 3 dimensions (raw, or gzip on input).
    Idx,
    /// Binary PGM (`P5`), maxval 255.
    Pgm,
    /// PNG, 8-bit grayscale.
    Png,
}

impl ImageFormat {
    fn code(self) -> u8 {
        match self {
            ImageFormat::Idx => 1,
            ImageFormat::Pgm => 2,
            ImageFormat::Png => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ImageFormat::Idx),
            2 => Some(ImageFormat::Pgm),
            3 => Some(ImageFormat::Png),
            _ => None,
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Idx => "idx",
            ImageFormat::Pgm => "pgm",
            ImageFormat::Png => "png",
        })
    }
}

/// What goes wrong reading an image file or rebuilding one. Each message names the sizes or
/// bytes involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The input has no bytes.
    #[error("empty input: no image data")]
    Empty,
    /// The first bytes are none of the formats this module reads.
    #[error(
        "unrecognized image format (first bytes: {head}); expected an MNIST idx file (raw or \
         gzip), a binary PGM (P5) or a PNG"
    )]
    UnknownFormat {
        /// The first bytes, in hex.
        head: String,
    },
    /// A well-formed file of a kind that is not coded: color, another bit depth, ASCII PGM, an
    /// idx labels file, an animated PNG.
    #[error("{reason}")]
    Unsupported {
        /// The format detected.
        format: ImageFormat,
        /// What it is, and what is supported.
        reason: String,
    },
    /// The sizes a header announces disagree with the file's length: truncated, or bytes past
    /// the end.
    #[error("{reason}")]
    Length {
        /// The format detected.
        format: ImageFormat,
        /// The sizes involved.
        reason: String,
    },
    /// The file is damaged or not well-formed.
    #[error("malformed {format} file: {reason}")]
    Malformed {
        /// The format detected.
        format: ImageFormat,
        /// What is wrong, and where.
        reason: String,
    },
    /// Decompressed pixels would exceed [`MAX_DECODED_BYTES`].
    #[error("{what} needs {bytes} bytes, more than the limit of {MAX_DECODED_BYTES} bytes")]
    TooLarge {
        /// What is that large.
        what: String,
        /// Its size.
        bytes: u128,
    },
    /// The gzip stream is corrupt.
    #[error("corrupt gzip stream: {0}")]
    Gzip(#[source] std::io::Error),
    /// The `png` crate refused the image data.
    #[error("malformed png file: {0}")]
    PngDecode(#[source] png::DecodingError),
    /// The `png` crate failed to encode the pixels.
    #[error("PNG encoding failed: {0}")]
    PngEncode(#[source] png::EncodingError),
    /// A layout given to [`write`] or [`layout_dims`] is not one that [`parse`] can produce.
    #[error("invalid image layout: {0}")]
    Layout(String),
    /// [`write`] was given another number of pixels than the layout describes.
    #[error(
        "the layout describes {count} images of {height}x{width} ({expected} pixels), but \
         {actual} pixels were given"
    )]
    PixelCount {
        /// Images in the layout.
        count: usize,
        /// Their height.
        height: usize,
        /// Their width.
        width: usize,
        /// Pixels the layout needs.
        expected: u128,
        /// Pixels given.
        actual: usize,
    },
}

/// The images of one file: their pixels and the file's layout (everything else).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// The file's format.
    pub format: ImageFormat,
    /// Rows of each image.
    pub height: usize,
    /// Columns of each image.
    pub width: usize,
    /// Number of images (at least 1; a PNG holds 1).
    pub count: usize,
    /// `count * height * width` pixels, row-major, image after image.
    pub pixels: Vec<u8>,
    layout: Vec<u8>,
}

impl Images {
    /// The layout to store beside the pixels, for [`write`] and [`layout_dims`].
    pub fn layout(&self) -> &[u8] {
        &self.layout
    }

    /// The pixels of image `i`, `height * width` bytes.
    ///
    /// # Panics
    ///
    /// If `i >= count`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.count, "image {i} of {}", self.count);
        let size = self.height * self.width;
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Whether the input was a gzip'd idx file: [`write`] then gzips the idx file again.
    pub fn was_gzipped(&self) -> bool {
        self.format == ImageFormat::Idx && self.layout.get(LAYOUT_HEAD) == Some(&1)
    }
}

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
/// back encoded with this module's fixed settings (see the module docs).
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
            let mut out = Vec::with_capacity(IDX_HEADER + pixels.len());
            out.extend_from_slice(&IDX_MAGIC);
            for n in [parsed.count, parsed.height, parsed.width] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            out.extend_from_slice(pixels);
            if *gzipped {
                return gzip(&out);
            }
            Ok(out)
        }
        Rest::Pgm { headers, trailer } => {
            let header_bytes: usize = headers.iter().map(|h| h.len()).sum();
            let mut out = Vec::with_capacity(header_bytes + pixels.len() + trailer.len());
            let size = pixels.len() / headers.len();
            for (header, image) in headers.iter().zip(pixels.chunks_exact(size)) {
                out.extend_from_slice(header);
                out.extend_from_slice(image);
            }
            out.extend_from_slice(trailer);
            Ok(out)
        }
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

/// `data` in a gzip file with fixed settings: deflate level 9 (miniz_oxide), no file name,
/// modification time 0. The same bytes for the same input and crate versions.
fn gzip(data: &[u8]) -> Result<Vec<u8>, ImageError> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).map_err(ImageError::Gzip)?;
    enc.finish().map_err(ImageError::Gzip)
}

/// The format, count, height and width a layout describes: a decoder decodes
/// `count * height * width` pixels, then calls [`write`]. Checks the whole layout.
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

// ---------------------------------------------------------------------------------------------
// idx

/// The name of an idx element type, for the types the idx format defines.
fn idx_type_name(code: u8) -> Option<&'static str> {
    match code {
        0x08 => Some("unsigned byte"),
        0x09 => Some("signed byte"),
        0x0B => Some("16-bit integer"),
        0x0C => Some("32-bit integer"),
        0x0D => Some("32-bit float"),
        0x0E => Some("64-bit float"),
        _ => None,
    }
}

/// Checks the idx magic (at least 4 bytes given) and returns nothing, or why it is refused.
fn check_idx_magic(magic: &[u8], gz: &str) -> Result<(), ImageError> {
    let unsupported = |reason: String| ImageError::Unsupported {
        format: ImageFormat::Idx,
        reason,
    };
    let element = magic[2];
    if element != 0x08 {
        let name = idx_type_name(element).unwrap_or("unknown");
        return Err(unsupported(format!(
            "idx file{gz} has elements of type 0x{element:02X} ({name}); only unsigned bytes \
             (0x08) are supported"
        )));
    }
    let dims = magic[3];
    if dims != 3 {
        let hint = if dims == 1 { " (a labels file?)" } else { "" };
        return Err(unsupported(format!(
            "idx file{gz} has {dims} dimensions{hint}; only image files with 3 dimensions \
             (magic 0x00000803) are supported"
        )));
    }
    Ok(())
}

/// The counts in an idx header (16 bytes, magic checked), each at least 1, and the file length
/// they imply.
fn idx_dims(header: &[u8], gz: &str) -> Result<([u32; 3], u128), ImageError> {
    let mut dims = [0u32; 3];
    for (i, dim) in dims.iter_mut().enumerate() {
        let at = 4 + 4 * i;
        *dim = u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    }
    for (dim, name) in dims
        .iter()
        .zip(["image count", "row count", "column count"])
    {
        if *dim == 0 {
            return Err(ImageError::Malformed {
                format: ImageFormat::Idx,
                reason: format!("the header{gz} gives an {name} of 0"),
            });
        }
    }
    let total = IDX_HEADER as u128 + dims.iter().map(|&d| d as u128).product::<u128>();
    Ok((dims, total))
}

fn idx_truncated_header(len: usize, gz: &str) -> ImageError {
    ImageError::Length {
        format: ImageFormat::Idx,
        reason: format!("truncated idx file{gz}: {len} bytes, the header alone needs {IDX_HEADER}"),
    }
}

/// Gunzips an idx file, reading no more than its header announces.
fn gunzip_idx(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    const GZ: &str = " (gunzipped)";
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut plain = Vec::new();
    (&mut decoder)
        .take(IDX_HEADER as u64)
        .read_to_end(&mut plain)
        .map_err(ImageError::Gzip)?;
    let looks_like_idx =
        plain.len() >= 3 && plain[0] == 0 && plain[1] == 0 && idx_type_name(plain[2]).is_some();
    if !looks_like_idx {
        return Err(ImageError::Unsupported {
            format: ImageFormat::Idx,
            reason: format!(
                "gzip input holds no idx file (gunzipped bytes start: {}); only gzip'd MNIST idx \
                 files are supported",
                hex_head(&plain)
            ),
        });
    }
    if plain.len() < 4 {
        return Err(idx_truncated_header(plain.len(), GZ));
    }
    check_idx_magic(&plain, GZ)?;
    if plain.len() < IDX_HEADER {
        return Err(idx_truncated_header(plain.len(), GZ));
    }
    let ([count, rows, cols], total) = idx_dims(&plain, GZ)?;
    if total > MAX_DECODED_BYTES as u128 {
        return Err(ImageError::TooLarge {
            what: format!("the gzip'd idx file's {count} images of {rows}x{cols}"),
            bytes: total,
        });
    }
    // One byte more than announced, to tell an exact stream from a longer one.
    (&mut decoder)
        .take(total as u64 + 1 - IDX_HEADER as u64)
        .read_to_end(&mut plain)
        .map_err(ImageError::Gzip)?;
    if plain.len() as u128 > total {
        return Err(ImageError::Length {
            format: ImageFormat::Idx,
            reason: format!(
                "idx file{GZ} has trailing bytes: header says {count} images of {rows}x{cols} \
                 ({total} bytes), the gzip stream holds more"
            ),
        });
    }
    Ok(plain)
}

fn parse_idx(bytes: &[u8], gzipped: bool) -> Result<Images, ImageError> {
    let gz = if gzipped { " (gunzipped)" } else { "" };
    if bytes.len() < 4 {
        return Err(idx_truncated_header(bytes.len(), gz));
    }
    check_idx_magic(bytes, gz)?;
    if bytes.len() < IDX_HEADER {
        return Err(idx_truncated_header(bytes.len(), gz));
    }
    let ([count, rows, cols], total) = idx_dims(bytes, gz)?;
    let len = bytes.len() as u128;
    if len != total {
        let what = if len < total {
            format!("truncated idx file{gz}")
        } else {
            format!("idx file{gz} has trailing bytes")
        };
        return Err(ImageError::Length {
            format: ImageFormat::Idx,
            reason: format!(
                "{what}: header says {count} images of {rows}x{cols} ({total} bytes), file has \
                 {len} bytes"
            ),
        });
    }
    let mut layout = layout_head(ImageFormat::Idx, count, rows, cols);
    layout.push(u8::from(gzipped));
    Ok(Images {
        format: ImageFormat::Idx,
        height: rows as usize,
        width: cols as usize,
        count: count as usize,
        pixels: bytes[IDX_HEADER..].to_vec(),
        layout,
    })
}

// ---------------------------------------------------------------------------------------------
// PGM

/// The whitespace of netpbm headers.
fn is_pnm_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

fn pgm_malformed(reason: String) -> ImageError {
    ImageError::Malformed {
        format: ImageFormat::Pgm,
        reason,
    }
}

fn pgm_truncated_header(image: usize) -> ImageError {
    ImageError::Length {
        format: ImageFormat::Pgm,
        reason: format!("truncated PGM file: image {image}'s header ends before its pixels"),
    }
}

/// A PGM header: the image's size and where its pixels start.
struct PgmHeader {
    width: u32,
    height: u32,
    raster: usize,
}

/// Skips the whitespace and comments at `*pos`; says whether there were any.
fn skip_pnm_space(bytes: &[u8], pos: &mut usize, image: usize) -> Result<bool, ImageError> {
    let start = *pos;
    while let Some(&b) = bytes.get(*pos) {
        if is_pnm_space(b) {
            *pos += 1;
        } else if b == b'#' {
            skip_comment(bytes, pos, image)?;
        } else {
            break;
        }
    }
    Ok(*pos > start)
}

/// Skips a comment at `*pos` (`#` through the next CR or LF, included).
fn skip_comment(bytes: &[u8], pos: &mut usize, image: usize) -> Result<(), ImageError> {
    match bytes[*pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(end) => {
            *pos += end + 1;
            Ok(())
        }
        None => Err(pgm_truncated_header(image)),
    }
}

/// Reads a header number (after whitespace or comments) at `*pos`.
fn pgm_number(bytes: &[u8], pos: &mut usize, what: &str, image: usize) -> Result<u32, ImageError> {
    let spaced = skip_pnm_space(bytes, pos, image)?;
    let Some(&first) = bytes.get(*pos) else {
        return Err(pgm_truncated_header(image));
    };
    if !spaced {
        return Err(pgm_malformed(format!(
            "image {image}: expected whitespace before the {what} at offset {}",
            *pos
        )));
    }
    if !first.is_ascii_digit() {
        return Err(pgm_malformed(format!(
            "image {image}: expected the {what} (a decimal number) at offset {}, found byte 0x{first:02X}",
            *pos
        )));
    }
    let mut value: u64 = 0;
    while let Some(&b) = bytes.get(*pos).filter(|b| b.is_ascii_digit()) {
        value = value * 10 + u64::from(b - b'0');
        if value > u64::from(u32::MAX) {
            return Err(pgm_malformed(format!(
                "image {image}: the {what} is too large"
            )));
        }
        *pos += 1;
    }
    Ok(value as u32)
}

/// Reads the header of image `image` (1-based, for messages) that starts at `start` with `P`.
fn pgm_header(bytes: &[u8], start: usize, image: usize) -> Result<PgmHeader, ImageError> {
    let magic = bytes.get(start..start + 2).unwrap_or(&bytes[start..]);
    if magic != b"P5" {
        let kind = match magic {
            b"P1" => "ASCII bitmap (PBM, P1)",
            b"P2" => "ASCII graymap (PGM, P2)",
            b"P3" => "ASCII color pixmap (PPM, P3)",
            b"P4" => "binary bitmap (PBM, P4)",
            b"P6" => "binary color pixmap (PPM, P6)",
            b"P7" => "PAM (P7)",
            _ => {
                return Err(pgm_malformed(format!(
                    "image {image}: no P5 magic at offset {start}"
                )));
            }
        };
        return Err(ImageError::Unsupported {
            format: ImageFormat::Pgm,
            reason: format!("netpbm {kind} is not supported; only binary PGM (P5) with maxval 255"),
        });
    }
    let mut pos = start + 2;
    let width = pgm_number(bytes, &mut pos, "width", image)?;
    let height = pgm_number(bytes, &mut pos, "height", image)?;
    let maxval = pgm_number(bytes, &mut pos, "maxval", image)?;
    if width == 0 || height == 0 {
        return Err(pgm_malformed(format!(
            "image {image} is {width}x{height}; width and height must be at least 1"
        )));
    }
    if maxval != 255 {
        let detail = match maxval {
            0 => return Err(pgm_malformed(format!("image {image} has maxval 0"))),
            1..=254 => format!("PGM maxval is {maxval}"),
            256..=65535 => format!("PGM maxval is {maxval} (16-bit samples)"),
            _ => {
                return Err(pgm_malformed(format!(
                    "image {image} has maxval {maxval} > 65535"
                )));
            }
        };
        return Err(ImageError::Unsupported {
            format: ImageFormat::Pgm,
            reason: format!("{detail}; only 8-bit PGM (maxval 255) is supported"),
        });
    }
    // Exactly one whitespace byte (or a comment through its line end) before the pixels.
    match bytes.get(pos) {
        None => return Err(pgm_truncated_header(image)),
        Some(&b) if is_pnm_space(b) => pos += 1,
        Some(b'#') => skip_comment(bytes, &mut pos, image)?,
        Some(&b) => {
            return Err(pgm_malformed(format!(
                "image {image}: expected one whitespace byte after the maxval at offset {pos}, \
                 found byte 0x{b:02X}"
            )));
        }
    }
    Ok(PgmHeader {
        width,
        height,
        raster: pos,
    })
}

fn parse_pgm(bytes: &[u8]) -> Result<Images, ImageError> {
    let mut headers: Vec<&[u8]> = Vec::new();
    let mut pixels = Vec::new();
    let mut dims = None;
    let mut start = 0; // where the current image's header (and any whitespace before it) starts
    let mut magic = 0; // where its `P5` is
    let trailer = loop {
        let image = headers.len() + 1;
        let header = pgm_header(bytes, magic, image)?;
        let (width, height) = (header.width, header.height);
        match dims {
            None => dims = Some((width, height)),
            Some((w, h)) if (w, h) != (width, height) => {
                return Err(ImageError::Unsupported {
                    format: ImageFormat::Pgm,
                    reason: format!(
                        "PGM image {image} is {width}x{height} but image 1 is {w}x{h}; all \
                         images in a file must have the same size"
                    ),
                });
            }
            Some(_) => {}
        }
        let size = u64::from(width) * u64::from(height);
        let left = bytes.len() - header.raster;
        if (left as u64) < size {
            return Err(ImageError::Length {
                format: ImageFormat::Pgm,
                reason: format!(
                    "truncated PGM file: image {image}'s header says {width}x{height} ({size} \
                     bytes), only {left} bytes follow it"
                ),
            });
        }
        let end = header.raster + size as usize;
        headers.push(&bytes[start..header.raster]);
        pixels.extend_from_slice(&bytes[header.raster..end]);
        let next = end
            + bytes[end..]
                .iter()
                .take_while(|&&b| is_pnm_space(b))
                .count();
        if next == bytes.len() {
            break &bytes[end..];
        }
        if bytes[next] != b'P' {
            return Err(pgm_malformed(format!(
                "{} unexpected bytes after image {image} (offset {next}): neither whitespace nor \
                 another image",
                bytes.len() - next
            )));
        }
        start = end;
        magic = next;
    };
    let (width, height) = dims.unwrap_or((1, 1));
    let count = u32::try_from(headers.len())
        .map_err(|_| pgm_malformed(format!("{} images are too many", headers.len())))?;
    let mut layout = layout_head(ImageFormat::Pgm, count, height, width);
    let mut previous: &[u8] = &[];
    for header in &headers {
        if *header == previous {
            push_u32(&mut layout, 0);
        } else {
            push_len(&mut layout, header.len(), ImageFormat::Pgm)?;
            layout.extend_from_slice(header);
            previous = header;
        }
    }
    push_len(&mut layout, trailer.len(), ImageFormat::Pgm)?;
    layout.extend_from_slice(trailer);
    Ok(Images {
        format: ImageFormat::Pgm,
        height: height as usize,
        width: width as usize,
        count: headers.len(),
        pixels,
        layout,
    })
}

// ---------------------------------------------------------------------------------------------
// PNG

fn png_malformed(reason: String) -> ImageError {
    ImageError::Malformed {
        format: ImageFormat::Png,
        reason,
    }
}

fn png_unsupported(reason: String) -> ImageError {
    ImageError::Unsupported {
        format: ImageFormat::Png,
        reason,
    }
}

/// A chunk of a PNG file: its type, its data, and its bytes in the file (length to CRC).
struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    raw: &'a [u8],
}

/// The chunk type as text, for messages.
fn chunk_name(kind: &[u8; 4]) -> String {
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
fn png_chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, ImageError> {
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
fn refused_chunk(kind: &[u8; 4]) -> Option<&'static str> {
    match kind {
        b"IHDR" | b"IDAT" | b"IEND" => Some("it is rebuilt from the pixels"),
        b"acTL" | b"fcTL" | b"fdAT" => Some("animated PNGs (APNG) are not supported"),
        b"PLTE" => Some("a grayscale PNG has no palette"),
        _ if kind[0].is_ascii_uppercase() => Some("it is an unknown critical chunk"),
        _ => None,
    }
}

fn parse_png(bytes: &[u8]) -> Result<Images, ImageError> {
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
fn write_png(
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

// ---------------------------------------------------------------------------------------------
// The layout

fn layout_head(format: ImageFormat, count: u32, height: u32, width: u32) -> Vec<u8> {
    let mut layout = vec![LAYOUT_VERSION, format.code()];
    for n in [count, height, width] {
        push_u32(&mut layout, n);
    }
    layout
}

fn push_u32(layout: &mut Vec<u8>, n: u32) {
    layout.extend_from_slice(&n.to_le_bytes());
}

fn push_len(layout: &mut Vec<u8>, len: usize, format: ImageFormat) -> Result<(), ImageError> {
    let len = u32::try_from(len).map_err(|_| ImageError::Malformed {
        format,
        reason: format!("a part of {len} bytes is too large to store"),
    })?;
    push_u32(layout, len);
    Ok(())
}

/// The format-specific part of a decoded layout.
enum Rest<'a> {
    Idx {
        gzipped: bool,
    },
    Pgm {
        /// One header per image (repeats resolved).
        headers: Vec<&'a [u8]>,
        trailer: &'a [u8],
    },
    Png {
        before: Vec<([u8; 4], &'a [u8])>,
        after: Vec<([u8; 4], &'a [u8])>,
        /// How to rebuild the input's IDAT chunks exactly, when that was found.
        exact: Option<(exact::Params, Vec<u32>)>,
    },
}

/// A layout, checked: everything [`write`] needs.
struct Layout<'a> {
    format: ImageFormat,
    count: u32,
    height: u32,
    width: u32,
    rest: Rest<'a>,
}

/// Reads a layout front to back; every read is checked against the bytes that are there.
struct LayoutReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> LayoutReader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ImageError> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return Err(ImageError::Layout(format!(
                "{what} needs {n} bytes at offset {}, only {left} left",
                self.pos
            )));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ImageError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, ImageError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn chunks(&mut self, where_: &str) -> Result<Vec<KeptChunk<'a>>, ImageError> {
        let n = self.u32("a chunk count")?;
        let mut chunks = Vec::new();
        for _ in 0..n {
            let t = self.take(4, "a chunk type")?;
            let kind = [t[0], t[1], t[2], t[3]];
            let name = chunk_name(&kind);
            if !kind.iter().all(u8::is_ascii_alphabetic) {
                return Err(ImageError::Layout(format!(
                    "chunk type '{name}' is not 4 letters"
                )));
            }
            if let Some(why) = refused_chunk(&kind) {
                return Err(ImageError::Layout(format!(
                    "a {name} chunk {where_}: {why}"
                )));
            }
            let len = self.u32("a chunk length")?;
            if len > i32::MAX as u32 {
                return Err(ImageError::Layout(format!(
                    "chunk {name} has length {len} > 2^31-1"
                )));
            }
            let data = self.take(len as usize, "chunk data")?;
            chunks.push((kind, data));
        }
        Ok(chunks)
    }
}

impl<'a> Layout<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, ImageError> {
        let mut r = LayoutReader { bytes, pos: 0 };
        let version = r.u8("the version")?;
        if version != LAYOUT_VERSION {
            return Err(ImageError::Layout(format!(
                "version {version}; this build reads version {LAYOUT_VERSION}"
            )));
        }
        let code = r.u8("the format")?;
        let format = ImageFormat::from_code(code)
            .ok_or_else(|| ImageError::Layout(format!("unknown format code {code}")))?;
        let count = r.u32("the image count")?;
        let height = r.u32("the height")?;
        let width = r.u32("the width")?;
        if count == 0 || height == 0 || width == 0 {
            return Err(ImageError::Layout(format!(
                "{count} images of {height}x{width}; each must be at least 1"
            )));
        }
        let rest = match format {
            ImageFormat::Idx => {
                let flags = r.u8("the idx flags")?;
                if flags > 1 {
                    return Err(ImageError::Layout(format!(
                        "unknown idx flags 0x{flags:02X}"
                    )));
                }
                Rest::Idx {
                    gzipped: flags == 1,
                }
            }
            ImageFormat::Pgm => {
                let mut headers: Vec<&[u8]> = Vec::new();
                for i in 0..count as usize {
                    let len = r.u32("a PGM header length")?;
                    if len == 0 {
                        let Some(&previous) = headers.last() else {
                            return Err(ImageError::Layout(
                                "the first PGM header repeats a previous one".to_string(),
                            ));
                        };
                        headers.push(previous);
                        continue;
                    }
                    let header = r.take(len as usize, "a PGM header")?;
                    check_pgm_header(header, i + 1, width, height)?;
                    headers.push(header);
                }
                let len = r.u32("the PGM trailer length")?;
                let trailer = r.take(len as usize, "the PGM trailer")?;
                if !trailer.iter().all(|&b| is_pnm_space(b)) {
                    return Err(ImageError::Layout(
                        "the PGM trailer is not whitespace".to_string(),
                    ));
                }
                Rest::Pgm { headers, trailer }
            }
            ImageFormat::Png => {
                if count != 1 {
                    return Err(ImageError::Layout(format!("a PNG with {count} images")));
                }
                if height > i32::MAX as u32 || width > i32::MAX as u32 {
                    return Err(ImageError::Layout(format!("a {width}x{height} PNG")));
                }
                let flags = r.u8("the PNG flags")?;
                if flags > 2 {
                    return Err(ImageError::Layout(format!(
                        "unknown PNG flags 0x{flags:02X}"
                    )));
                }
                let exact = if flags == 2 {
                    let p = r.take(4, "the deflate parameters")?;
                    let filters = r.take(height as usize, "the row filters")?.to_vec();
                    let params = exact::Params {
                        level: p[0],
                        window_bits: p[1],
                        mem_level: p[2],
                        strategy: p[3],
                        filters,
                    };
                    params.check().map_err(ImageError::Layout)?;
                    let n = r.u32("the IDAT chunk count")?;
                    if n == 0 {
                        return Err(ImageError::Layout("no IDAT chunk".into()));
                    }
                    let mut lens = Vec::new();
                    for _ in 0..n {
                        lens.push(r.u32("an IDAT chunk length")?);
                    }
                    Some((params, lens))
                } else {
                    None
                };
                let before = r.chunks("before IDAT")?;
                let after = r.chunks("after IDAT")?;
                Rest::Png {
                    before,
                    after,
                    exact,
                }
            }
        };
        if r.pos != bytes.len() {
            return Err(ImageError::Layout(format!(
                "{} bytes after the end of a {format} layout",
                bytes.len() - r.pos
            )));
        }
        Ok(Layout {
            format,
            count,
            height,
            width,
            rest,
        })
    }
}

/// Checks a stored PGM header: whitespace (not before the first image), one P5 header of the
/// layout's size, nothing after it.
fn check_pgm_header(
    header: &[u8],
    image: usize,
    width: u32,
    height: u32,
) -> Result<(), ImageError> {
    let magic = header.iter().take_while(|&&b| is_pnm_space(b)).count();
    if image == 1 && magic != 0 {
        return Err(ImageError::Layout(
            "the first PGM header starts with whitespace".to_string(),
        ));
    }
    if magic == header.len() {
        return Err(ImageError::Layout(format!(
            "PGM header {image} is only whitespace"
        )));
    }
    let parsed = pgm_header(header, magic, image)
        .map_err(|e| ImageError::Layout(format!("PGM header {image}: {e}")))?;
    if parsed.raster != header.len() {
        return Err(ImageError::Layout(format!(
            "PGM header {image} has {} bytes after its end",
            header.len() - parsed.raster
        )));
    }
    if (parsed.width, parsed.height) != (width, height) {
        return Err(ImageError::Layout(format!(
            "PGM header {image} says {}x{}, the layout {width}x{height}",
            parsed.width, parsed.height
        )));
    }
    Ok(())
}

/// The first bytes of `bytes` in hex, for messages.
fn hex_head(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if head.is_empty() {
        "none".to_string()
    } else {
        head.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn idx(count: u32, h: u32, w: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = IDX_MAGIC.to_vec();
        for n in [count, h, w] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(pixels);
        out
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out
    }

    /// A PNG by hand: filter 0 rows, zlib via flate2, `extra` chunks before IDAT.
    fn png(w: u32, h: u32, depth: u8, color: u8, rows: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
        use std::io::Write;
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
        let stride = rows.len() / h as usize;
        let mut raw = Vec::new();
        for row in rows.chunks_exact(stride) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&raw).unwrap_or_default();
        let zdata = z.finish().unwrap_or_default();
        let mut out = PNG_SIGNATURE.to_vec();
        out.extend(chunk(b"IHDR", &ihdr));
        for c in extra {
            out.extend_from_slice(c);
        }
        out.extend(chunk(b"IDAT", &zdata));
        out.extend(chunk(b"IEND", b""));
        out
    }

    fn err(bytes: &[u8]) -> String {
        match parse(bytes) {
            Err(e) => e.to_string(),
            Ok(i) => format!("parsed as {} {}x{}", i.format, i.height, i.width),
        }
    }

    #[test]
    fn idx_round_trips_and_gzip_comes_back_gzipped() -> Result<(), ImageError> {
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 7) as u8).collect();
        let file = idx(2, 3, 4, &pixels);
        let images = parse(&file)?;
        assert_eq!(
            (images.format, images.count, images.height, images.width),
            (ImageFormat::Idx, 2, 3, 4)
        );
        assert_eq!(images.image(1), &pixels[12..]);
        assert_eq!(write(images.layout(), &images.pixels)?, file);
        assert_eq!(layout_dims(images.layout())?, (ImageFormat::Idx, 2, 3, 4));

        let gz = gzip(&file)?;
        let images = parse(&gz)?;
        assert!(images.was_gzipped());
        let back = write(images.layout(), &images.pixels)?;
        assert_eq!(back, gz, "gzip with the fixed settings is reproduced");
        Ok(())
    }

    #[test]
    fn pgm_keeps_headers_comments_and_several_images() -> Result<(), ImageError> {
        let mut file = b"P5\n# made by hand\n# two lines\n3  2\n255\n".to_vec();
        file.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        file.extend_from_slice(b"P5 3 2 255\n");
        file.extend_from_slice(&[7, 8, 9, 10, 11, 12]);
        file.extend_from_slice(b"\n");
        let images = parse(&file)?;
        assert_eq!(
            (images.format, images.count, images.height, images.width),
            (ImageFormat::Pgm, 2, 2, 3)
        );
        assert_eq!(images.pixels, (1..=12).collect::<Vec<u8>>());
        assert_eq!(write(images.layout(), &images.pixels)?, file);
        Ok(())
    }

    #[test]
    fn png_keeps_pixels_and_chunks_and_its_own_output_exactly() -> Result<(), ImageError> {
        let rows: Vec<u8> = (0..5 * 4).map(|i| (i * 13) as u8).collect();
        let text = chunk(b"tEXt", b"Comment\0hand made");
        let file = png(5, 4, 8, 0, &rows, &[text]);
        let images = parse(&file)?;
        assert_eq!(
            (images.format, images.count, images.height, images.width),
            (ImageFormat::Png, 1, 4, 5)
        );
        assert_eq!(images.pixels, rows);
        let back = write(images.layout(), &images.pixels)?;
        let again = parse(&back)?;
        assert_eq!(again.pixels, rows);
        assert!(back.windows(17).any(|w| w == b"Comment\0hand made"));
        // What write produced comes back byte for byte.
        assert_eq!(write(again.layout(), &again.pixels)?, back);
        Ok(())
    }

    #[test]
    fn unsupported_and_damaged_files_are_errors() {
        let rows = vec![0u8; 4 * 4 * 3];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty input"),
            (b"hello world".to_vec(), "unrecognized image format"),
            (idx(2, 2, 2, &[0; 5]), "truncated"),
            (idx(1, 2, 2, &[0; 6]), "2"),
            (
                [[0, 0, 8, 1].as_slice(), &10u32.to_be_bytes(), &[0; 10]].concat(),
                "idx",
            ),
            (b"P2\n2 2\n255\n0 0 0 0\n".to_vec(), "P2"),
            ([b"P5\n2 2\n65535\n".as_slice(), &[0; 8]].concat(), "65535"),
            (png(4, 4, 8, 2, &rows, &[]), "RGB"),
            (png(4, 4, 16, 0, &[0; 32], &[]), "16"),
            (
                png(4, 4, 8, 3, &[0; 16], &[chunk(b"PLTE", &[0, 0, 0])]),
                "palette",
            ),
        ];
        for (bytes, needle) in cases {
            let msg = err(&bytes);
            assert!(msg.contains(needle), "expected '{needle}' in: {msg}");
        }
        // A PNG with a damaged CRC.
        let mut bad = png(4, 4, 8, 0, &[0; 16], &[]);
        let at = bad.len() - 20;
        bad[at] ^= 1;
        assert!(parse(&bad).is_err());
        // gzip that is not an idx, and a truncated gzip stream.
        assert!(parse(&gzip(b"not an idx file").unwrap_or_default()).is_err());
        let gz = gzip(&idx(1, 2, 2, &[1, 2, 3, 4])).unwrap_or_default();
        assert!(parse(&gz[..gz.len() / 2]).is_err());
    }

    #[test]
    fn zlib_made_png_comes_back_byte_for_byte() -> Result<(), ImageError> {
        // Rows filtered 0-4 in turn, deflated by zlib with non-default parameters, the stream
        // split over two IDAT chunks, a tEXt chunk after them.
        let (w, h) = (7usize, 5usize);
        let pixels: Vec<u8> = (0..w * h).map(|i| (i * i * 31 % 251) as u8).collect();
        let filters: Vec<u8> = (0..h as u8).map(|r| r % 5).collect();
        let params = exact::Params {
            level: 9,
            window_bits: 10,
            mem_level: 9,
            strategy: 1,
            filters,
        };
        let rows = exact::filter(&pixels, w, &params.filters);
        let stream = exact::zlib::deflate(&rows, &params).unwrap_or_default();
        let mut ihdr = (w as u32).to_be_bytes().to_vec();
        ihdr.extend_from_slice(&(h as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut file = PNG_SIGNATURE.to_vec();
        file.extend(chunk(b"IHDR", &ihdr));
        file.extend(chunk(b"IDAT", &stream[..10]));
        file.extend(chunk(b"IDAT", &stream[10..]));
        file.extend(chunk(b"tEXt", b"Software\0zlib by hand"));
        file.extend(chunk(b"IEND", b""));
        let images = parse(&file)?;
        assert_eq!(images.pixels, pixels);
        assert_eq!(write(images.layout(), &images.pixels)?, file);
        // A miniz-made PNG is not reproducible: same pixels, re-encoded.
        let other = png(5, 4, 8, 0, &[9; 20], &[]);
        let images = parse(&other)?;
        assert_eq!(
            parse(&write(images.layout(), &images.pixels)?)?.pixels,
            vec![9; 20]
        );
        // A layout whose IDAT lengths do not add up is refused.
        let layout = parse(&file)?.layout().to_vec();
        let mut bad = layout.clone();
        let at = 14 + 1 + 4 + h + 4; // flags, parameters, filters, chunk count: the first length
        bad[at] ^= 1;
        assert!(write(&bad, &pixels).is_err());
        Ok(())
    }

    #[test]
    fn hostile_layouts_are_errors() -> Result<(), ImageError> {
        let file = idx(1, 2, 2, &[1, 2, 3, 4]);
        let layout = parse(&file)?.layout().to_vec();
        assert!(matches!(
            write(&layout, &[0; 3]),
            Err(ImageError::PixelCount { .. })
        ));
        for cut in 0..layout.len() {
            assert!(write(&layout[..cut], &[0; 4]).is_err(), "cut at {cut}");
        }
        let mut huge = layout.clone();
        huge[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(write(&huge, &[0; 4]).is_err());
        let mut version = layout;
        version[0] = 9;
        assert!(layout_dims(&version).is_err());
        Ok(())
    }

    proptest! {
        #[test]
        fn idx_and_pgm_round_trip(count in 1u32..4, h in 1u32..6, w in 1u32..6, seed in any::<u64>()) {
            let n = (count * h * w) as usize;
            let pixels: Vec<u8> = (0..n as u64).map(|i| (i.wrapping_mul(seed | 1) >> 3) as u8).collect();
            let file = idx(count, h, w, &pixels);
            let images = parse(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(write(images.layout(), &images.pixels).ok(), Some(file));
            let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
            pgm.extend_from_slice(&pixels[..(h * w) as usize]);
            let images = parse(&pgm).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(write(images.layout(), &images.pixels).ok(), Some(pgm));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), prefix in 0usize..4) {
            let heads: [&[u8]; 4] = [b"", &IDX_MAGIC, b"P5 ", &PNG_SIGNATURE];
            let input = [heads[prefix], &bytes].concat();
            let _ = parse(&input);
            let _ = write(&bytes, &bytes);
            let _ = layout_dims(&bytes);
        }
    }
}

/// More file-format tests: the committed MNIST fixtures, exact messages, gzip bombs, interlaced
/// and animated PNGs, every hostile layout field, and fuzz-style properties.
#[cfg(test)]
mod format_tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write as _;
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

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

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
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

    // --- PNG helpers: a hand-made PNG, chunk by chunk.

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
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

    /// Adam7 scanlines (filter 0) of an 8-bit grayscale image.
    fn adam7(pixels: &[u8], width: usize, height: usize) -> Vec<u8> {
        let passes = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ];
        let mut out = Vec::new();
        for (x0, y0, dx, dy) in passes {
            if x0 >= width || y0 >= height {
                continue;
            }
            for y in (y0..height).step_by(dy) {
                out.push(0);
                for x in (x0..width).step_by(dx) {
                    out.push(pixels[y * width + x]);
                }
            }
        }
        out
    }

    /// An 8-bit grayscale PNG made by the `png` crate with its own defaults.
    fn png_by_crate(width: u32, height: u32, pixels: &[u8], text: Option<(&str, &str)>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
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

    /// The chunk types of a PNG, in order.
    fn chunk_kinds(file: &[u8]) -> Vec<String> {
        png_chunks(file)
            .unwrap()
            .iter()
            .map(|c| chunk_name(&c.kind))
            .collect()
    }

    // --- idx

    #[test]
    fn mnist_idx_round_trips() {
        let file = mnist("t10k-first100-idx3-ubyte");
        let images = round_trip(&file);
        assert_eq!(images.format, ImageFormat::Idx);
        assert_eq!((images.count, images.height, images.width), (100, 28, 28));
        assert!(!images.was_gzipped());
        assert_eq!(images.image(0), &file[16..16 + 784]);
        assert_eq!(images.image(99), &file[file.len() - 784..]);
        assert_eq!(
            layout_dims(images.layout()).unwrap(),
            (ImageFormat::Idx, 100, 28, 28)
        );
        assert_eq!(images.layout().len(), LAYOUT_HEAD + 1);
    }

    #[test]
    fn mnist_gzip_comes_back_gzipped() {
        let plain = mnist("t10k-first100-idx3-ubyte");
        let images = parse(&mnist("t10k-first100-idx3-ubyte.gz")).unwrap();
        assert!(images.was_gzipped());
        assert_eq!((images.count, images.height, images.width), (100, 28, 28));
        assert_eq!(images.pixels, plain[16..]);
        // Written back gzipped (fixed settings), the same idx bytes inside.
        let back = write(images.layout(), &images.pixels).unwrap();
        assert_eq!(back[..2], GZIP_MAGIC);
        let mut inside = Vec::new();
        flate2::read::GzDecoder::new(back.as_slice())
            .read_to_end(&mut inside)
            .unwrap();
        assert_eq!(inside, plain);
        // ...and that gzip file comes back byte for byte.
        round_trip(&back);
    }

    #[test]
    fn idx_of_any_size_round_trips() {
        round_trip(&idx_file(1, 1, 1, &[7]));
        let images = round_trip(&idx_file(3, 2, 5, &ramp(30)));
        assert_eq!(images.image(1), &ramp(30)[10..20]);
        // Two gzip members back to back are one gzip file.
        let file = idx_file(2, 3, 3, &ramp(18));
        let mut two = gzip(&file[..20]);
        two.extend_from_slice(&gzip(&file[20..]));
        assert_eq!(parse(&two).unwrap().pixels, ramp(18));
    }

    #[test]
    fn idx_length_errors_name_the_sizes() {
        let file = mnist("t10k-first100-idx3-ubyte");
        assert_err_contains(
            parse(&file[..5000]),
            &[
                "truncated idx file",
                "100 images of 28x28 (78416 bytes)",
                "file has 5000 bytes",
            ],
        );
        let mut longer = file.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_err_contains(
            parse(&longer),
            &["trailing bytes", "78416 bytes", "78419 bytes"],
        );
        assert_err_contains(
            parse(&file[..10]),
            &["truncated idx file", "10 bytes", "16"],
        );
        assert_err_contains(parse(&file[..3]), &["truncated idx file", "3 bytes"]);
        assert_err_contains(parse(&idx_file(0, 28, 28, &[])), &["image count of 0"]);
        assert_err_contains(parse(&idx_file(1, 0, 28, &[])), &["row count of 0"]);
        // The full MNIST header on 5000 bytes: the message of the issue.
        let mut head = idx_file(10000, 28, 28, &[]);
        head.resize(5000, 0);
        assert_eq!(
            message(parse(&head)),
            "truncated idx file: header says 10000 images of 28x28 (7840016 bytes), file has 5000 bytes"
        );
    }

    #[test]
    fn idx_of_other_kinds_is_refused() {
        let labels = [0, 0, 8, 1, 0, 0, 0, 2, 7, 3];
        assert_err_contains(
            parse(&labels),
            &["1 dimensions", "labels file", "0x00000803"],
        );
        let floats = [
            0, 0, 0x0D, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        assert_err_contains(parse(&floats), &["0x0D", "32-bit float", "unsigned bytes"]);
        assert_err_contains(parse(&gzip(&labels)), &["gunzipped", "labels file"]);
    }

    #[test]
    fn gzip_errors() {
        let gz = mnist("t10k-first100-idx3-ubyte.gz");
        assert_err_contains(parse(&gz[..gz.len() / 2]), &["corrupt gzip stream"]);
        assert_err_contains(parse(&gz[..5]), &["corrupt gzip stream"]);
        let mut tail = gz.clone();
        tail.extend_from_slice(b"junk after the stream");
        assert!(parse(&tail).is_err());
        // Truncated idx inside an intact gzip stream.
        let plain = mnist("t10k-first100-idx3-ubyte");
        assert_err_contains(
            parse(&gzip(&plain[..1000])),
            &[
                "truncated idx file (gunzipped)",
                "78416 bytes",
                "file has 1000 bytes",
            ],
        );
        assert_err_contains(parse(&gzip(b"P5 1 1 255\n\x00")), &["gzip", "no idx file"]);
        assert_err_contains(
            parse(&gzip(&[0, 0, 8])),
            &["truncated idx file (gunzipped)"],
        );
    }

    #[test]
    fn gzip_bombs_stop_at_the_header_size() {
        // One 28x28 image announced, 64 MiB of zeros in the stream: read 785 bytes, refuse.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        gz.write_all(&idx_file(1, 28, 28, &[])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_err_contains(
            parse(&bomb),
            &["trailing bytes", "1 images of 28x28 (800 bytes)"],
        );
        // A header announcing more than the limit is refused before any pixel is read.
        assert_err_contains(
            parse(&gzip(&idx_file(65535, 65535, 65535, &[]))),
            &["65535 images of 65535x65535", "limit"],
        );
    }

    // --- PGM

    #[test]
    fn pgm_round_trips_with_its_header_verbatim() {
        let mut file = b"P5\n# made by hand\n#\r  4\t\t3 # width, height\n255\n".to_vec();
        file.extend_from_slice(&ramp(12));
        let images = round_trip(&file);
        assert_eq!(images.format, ImageFormat::Pgm);
        assert_eq!((images.count, images.height, images.width), (1, 3, 4));
        assert_eq!(images.pixels, ramp(12));

        // A comment right after the maxval ends the header; CR as the delimiter.
        for header in [&b"P5 2 1 255#c\n"[..], b"P5 2 1 255\r", b"P5\n2\n1\n255 "] {
            let mut file = header.to_vec();
            file.extend_from_slice(&[10, 13]);
            assert_eq!(round_trip(&file).pixels, [10, 13]);
        }
        // Pixels that look like whitespace, and a pixel-free-looking raster.
        let mut file = b"P5 3 1 255\n".to_vec();
        file.extend_from_slice(b"\n \n");
        assert_eq!(round_trip(&file).pixels, b"\n \n");
    }

    #[test]
    fn pgm_with_several_images() {
        let mut file = Vec::new();
        for i in 0..3u8 {
            file.extend_from_slice(b"P5\n28 28\n255\n");
            file.extend(std::iter::repeat_n(i, 784));
        }
        let images = round_trip(&file);
        assert_eq!((images.count, images.height, images.width), (3, 28, 28));
        assert_eq!(images.image(2), &[2; 784][..]);
        // Equal headers are stored once.
        assert!(images.layout().len() < LAYOUT_HEAD + 4 + 14 + 4 + 4 + 4);
        assert_eq!(
            layout_dims(images.layout()).unwrap(),
            (ImageFormat::Pgm, 3, 28, 28)
        );

        // Whitespace between images and after the last one is kept; headers may differ.
        let mut file = b"P5 2 2 255\n".to_vec();
        file.extend_from_slice(&[1, 2, 3, 4]);
        file.extend_from_slice(b"\n\nP5\n# second\n2 2\n255\n");
        file.extend_from_slice(&[5, 6, 7, 8]);
        file.extend_from_slice(b"\n");
        let images = round_trip(&file);
        assert_eq!(images.count, 2);
        assert_eq!(images.pixels, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn pgm_errors() {
        let mut sizes = b"P5 2 2 255\n\x01\x02\x03\x04".to_vec();
        sizes.extend_from_slice(b"P5 3 2 255\n\x01\x02\x03\x04\x05\x06");
        assert_err_contains(
            parse(&sizes),
            &["image 2 is 3x2", "image 1 is 2x2", "same size"],
        );
        assert_err_contains(parse(b"P2\n2 1\n255\n0 255\n"), &["ASCII", "P2", "P5"]);
        assert_err_contains(parse(b"P6\n1 1\n255\n\x00\x00\x00"), &["PPM", "P6"]);
        assert_err_contains(
            parse(b"P5\n1 1\n65535\n\x00\x00"),
            &["maxval is 65535", "16-bit", "maxval 255"],
        );
        assert_err_contains(parse(b"P5\n1 1\n15\n\x00"), &["maxval is 15"]);
        assert_err_contains(
            parse(b"P5\n28 28\n255\n\x00\x00"),
            &["truncated PGM", "28x28 (784 bytes)", "only 2 bytes"],
        );
        assert_err_contains(parse(b"P5\n28 28"), &["truncated PGM", "header"]);
        assert_err_contains(parse(b"P5 2 1 # no end"), &["truncated PGM"]);
        assert_err_contains(parse(b"P5 0 1 255\n"), &["0x1", "at least 1"]);
        assert_err_contains(parse(b"P5 x 1 255\n"), &["width", "0x78"]);
        assert_err_contains(parse(b"P528 28 255\n"), &["whitespace before the width"]);
        assert_err_contains(parse(b"P5 99999999999 1 255\n"), &["too large"]);
        assert_err_contains(parse(b"P5 1 1 255x\x00"), &["one whitespace byte"]);
        assert_err_contains(
            parse(b"P5 1 1 255\n\x00garbage"),
            &["7 unexpected bytes after image 1"],
        );
        assert_err_contains(
            parse(b"P5 1 1 255\n\x00\nP5 1 1"),
            &["truncated PGM", "image 2"],
        );
    }

    // --- PNG

    #[test]
    fn png_round_trips_pixel_exact_then_byte_exact() {
        let (w, h) = (28, 28);
        let pixels = ramp(w * h);
        let file = png_by_crate(w as u32, h as u32, &pixels, None);
        let images = parse(&file).unwrap();
        assert_eq!(images.format, ImageFormat::Png);
        assert_eq!((images.count, images.height, images.width), (1, h, w));
        assert_eq!(images.pixels, pixels);
        // Re-encoded with the fixed settings: same pixels; and that file comes back byte for byte.
        let written = write(images.layout(), &images.pixels).unwrap();
        let again = round_trip(&written);
        assert_eq!(again.pixels, pixels);
        assert_eq!(again.layout(), images.layout());
        assert_eq!(chunk_kinds(&written), ["IHDR", "IDAT", "IEND"]);
        // Hand-made, odd sizes.
        for (w, h) in [(1, 1), (1, 9), (13, 1), (5, 3)] {
            let pixels = ramp(w * h);
            let file = png_file(
                ihdr(w as u32, h as u32, 8, 0, 0),
                &[(b"IDAT", &scanlines(&pixels, w))],
            );
            let images = parse(&file).unwrap();
            assert_eq!(images.pixels, pixels);
            round_trip(&write(images.layout(), &pixels).unwrap());
        }
    }

    #[test]
    fn png_keeps_its_other_chunks_in_place() {
        // Chunks before and after the image data, which is split over two IDAT chunks.
        let pixels = ramp(6 * 4);
        let z = zlib(&scanlines(&pixels, 6));
        let mut file = PNG_SIGNATURE.to_vec();
        file.extend_from_slice(&ihdr(6, 4, 8, 0, 0));
        file.extend_from_slice(&png_chunk(b"gAMA", &100000u32.to_be_bytes()));
        file.extend_from_slice(&png_chunk(b"tEXt", b"Title\0a digit"));
        file.extend_from_slice(&png_chunk(b"IDAT", &z[..5]));
        file.extend_from_slice(&png_chunk(b"IDAT", &z[5..]));
        file.extend_from_slice(&png_chunk(b"tIME", &[7, 233, 1, 2, 3, 4, 5]));
        file.extend_from_slice(&png_chunk(b"tEXt", b"Comment\0after the pixels"));
        file.extend_from_slice(&png_chunk(b"IEND", &[]));
        let images = parse(&file).unwrap();
        assert_eq!(images.pixels, pixels);
        let written = write(images.layout(), &images.pixels).unwrap();
        // zlib reproduces this deflate stream, so the file comes back whole, IDAT split included.
        assert_eq!(written, file);
        assert_eq!(
            chunk_kinds(&written),
            [
                "IHDR", "gAMA", "tEXt", "IDAT", "IDAT", "tIME", "tEXt", "IEND"
            ]
        );
        for text in [&b"Title\0a digit"[..], b"Comment\0after the pixels"] {
            assert!(written.windows(text.len()).any(|w| w == text));
        }
        // The png crate reads it, text included.
        let decoder = png::Decoder::new(Cursor::new(written.as_slice()));
        let reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().uncompressed_latin1_text[0].text, "a digit");
        round_trip(&written);

        // A tEXt chunk written by the png crate's encoder.
        let file = png_by_crate(4, 2, &ramp(8), Some(("Software", "arca test")));
        let images = parse(&file).unwrap();
        let written = round_trip(&write(images.layout(), &images.pixels).unwrap());
        assert_eq!(written.pixels, ramp(8));
        assert!(images.layout().windows(9).any(|w| w == b"arca test"));
    }

    #[test]
    fn png_interlaced_is_read_and_written_plain() {
        for (w, h) in [(1, 1), (3, 2), (9, 11), (28, 28)] {
            let pixels = ramp(w * h);
            let file = png_file(
                ihdr(w as u32, h as u32, 8, 0, 1),
                &[(b"IDAT", &adam7(&pixels, w, h))],
            );
            let images = parse(&file).unwrap();
            assert_eq!(images.pixels, pixels, "{w}x{h}");
            let written = write(images.layout(), &images.pixels).unwrap();
            assert_eq!(written[8 + 8 + 12], 0, "written back not interlaced");
            assert_eq!(parse(&written).unwrap().pixels, pixels);
        }
    }

    #[test]
    fn png_of_other_kinds_is_refused() {
        let idat: &[(&[u8; 4], &[u8])] = &[(b"IDAT", &[0, 0, 0, 0])];
        let cases: [(u8, u8, &str); 7] = [
            (
                8,
                2,
                "PNG is RGB (color type 2); only 8-bit grayscale is supported",
            ),
            (8, 3, "PNG is palette (indexed color) (color type 3)"),
            (8, 4, "grayscale with alpha (color type 4)"),
            (8, 6, "RGBA (color type 6)"),
            (
                16,
                0,
                "PNG is 16-bit grayscale; only 8-bit grayscale is supported",
            ),
            (4, 0, "PNG is 4-bit grayscale"),
            (1, 0, "PNG is 1-bit grayscale"),
        ];
        for (depth, color, text) in cases {
            assert_err_contains(parse(&png_file(ihdr(1, 1, depth, color, 0), idat)), &[text]);
        }
        // Made by the png crate, to be sure these are the real thing.
        let mut rgb = Vec::new();
        let mut encoder = png::Encoder::new(&mut rgb, 2, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[9; 12]).unwrap();
        writer.finish().unwrap();
        assert_err_contains(parse(&rgb), &["PNG is RGB (color type 2)"]);
        let mut indexed = Vec::new();
        let mut encoder = png::Encoder::new(&mut indexed, 2, 2);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![0, 0, 0, 255, 255, 255]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0, 1, 1, 0]).unwrap();
        writer.finish().unwrap();
        assert_err_contains(parse(&indexed), &["palette", "color type 3"]);
        let mut deep = Vec::new();
        let mut encoder = png::Encoder::new(&mut deep, 2, 2);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Sixteen);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[1; 8]).unwrap();
        writer.finish().unwrap();
        assert_err_contains(parse(&deep), &["16-bit grayscale"]);
    }

    #[test]
    fn png_damage_is_refused() {
        let good = png_file(
            ihdr(2, 2, 8, 0, 0),
            &[(b"IDAT", &scanlines(&[1, 2, 3, 4], 2))],
        );
        parse(&good).unwrap();
        let mut crc = good.clone();
        crc[8 + 8 + 13] ^= 1; // IHDR's CRC
        assert_err_contains(parse(&crc), &["IHDR", "bad CRC"]);
        let mut tail = good.clone();
        tail.extend_from_slice(b"xyz");
        assert_err_contains(parse(&tail), &["3 trailing bytes after its IEND"]);
        assert_err_contains(
            parse(&good[..good.len() - 12]),
            &["truncated PNG", "no IEND"],
        );
        assert_err_contains(
            parse(&good[..good.len() - 5]),
            &["truncated PNG", "needs 8 bytes"],
        );
        assert_err_contains(
            parse(&good[..good.len() - 14]),
            &["truncated PNG", "chunk IDAT"],
        );
        assert_err_contains(parse(&PNG_SIGNATURE), &["truncated PNG"]);
        assert_err_contains(parse(&png_file(ihdr(2, 2, 8, 0, 0), &[])), &["no IDAT"]);
        let apng = png_file(
            ihdr(2, 2, 8, 0, 0),
            &[
                (b"acTL", &[0, 0, 0, 1, 0, 0, 0, 0]),
                (b"IDAT", &scanlines(&[1, 2, 3, 4], 2)),
            ],
        );
        assert_err_contains(parse(&apng), &["animated PNG", "acTL"]);
        let plte = png_file(
            ihdr(2, 2, 8, 0, 0),
            &[
                (b"PLTE", &[0, 0, 0]),
                (b"IDAT", &scanlines(&[1, 2, 3, 4], 2)),
            ],
        );
        assert_err_contains(parse(&plte), &["PLTE"]);
        let critical = png_file(
            ihdr(2, 2, 8, 0, 0),
            &[(b"XYZW", &[]), (b"IDAT", &scanlines(&[1, 2, 3, 4], 2))],
        );
        assert_err_contains(parse(&critical), &["XYZW", "unknown critical chunk"]);
        let split = png_file(
            ihdr(2, 2, 8, 0, 0),
            &[
                (b"IDAT", &scanlines(&[1, 2, 3, 4], 2)),
                (b"tEXt", b"a\0b"),
                (b"IDAT", &[]),
            ],
        );
        assert_err_contains(parse(&split), &["not consecutive"]);
        let short = png_file(ihdr(2, 2, 8, 0, 0), &[(b"IDAT", &[0, 1, 2])]);
        assert_err_contains(parse(&short), &["malformed png"]);
        // A header promising far more pixels than the data can hold is refused before decoding.
        let huge = png_file(ihdr(30000, 30000, 8, 0, 0), &[(b"IDAT", &[0; 100])]);
        assert_err_contains(parse(&huge), &["cannot hold 30000x30000"]);
        let larger = png_file(ihdr(65536, 65536, 8, 0, 0), &[(b"IDAT", &[0; 100])]);
        assert_err_contains(parse(&larger), &["65536x65536", "limit"]);
        assert_err_contains(
            parse(&png_file(
                ihdr(0, 2, 8, 0, 0),
                &[(b"IDAT", &[0u8, 0, 0][..])],
            )),
            &["invalid size 0x2"],
        );
    }

    // --- anything else

    #[test]
    fn empty_and_garbage_are_refused() {
        assert!(matches!(parse(&[]), Err(ImageError::Empty)));
        assert_eq!(message(parse(&[])), "empty input: no image data");
        assert_err_contains(
            parse(b"hello, world"),
            &["unrecognized image format", "68 65 6c 6c", "PNG"],
        );
        assert_err_contains(parse(b"P"), &["unrecognized"]);
        assert_err_contains(parse(&[0, 0, 0, 0]), &["unrecognized"]);
        assert_err_contains(
            parse(&[0xff, 0xd8, 0xff, 0xe0]),
            &["unrecognized", "ff d8 ff e0"],
        );
    }

    #[test]
    fn format_names() {
        assert_eq!(ImageFormat::Idx.to_string(), "idx");
        assert_eq!(ImageFormat::Pgm.to_string(), "pgm");
        assert_eq!(ImageFormat::Png.to_string(), "png");
    }

    // --- hostile layouts

    fn head(format: u8, count: u32, height: u32, width: u32) -> Vec<u8> {
        let mut l = vec![LAYOUT_VERSION, format];
        for n in [count, height, width] {
            l.extend_from_slice(&n.to_le_bytes());
        }
        l
    }

    fn with(mut layout: Vec<u8>, tail: &[u8]) -> Vec<u8> {
        layout.extend_from_slice(tail);
        layout
    }

    fn len_prefixed(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn hostile_layouts_are_errors() {
        let pgm_header = len_prefixed(b"P5 2 2 255\n");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "version needs 1 bytes"),
            (vec![2, 1], "version 2"),
            (vec![1, 9], "unknown format code 9"),
            (vec![1, 1, 0, 0], "image count needs 4 bytes"),
            (with(head(1, 0, 2, 2), &[0]), "0 images of 2x2"),
            (with(head(1, 1, 2, 0), &[0]), "at least 1"),
            (head(1, 1, 2, 2), "idx flags needs 1 bytes"),
            (with(head(1, 1, 2, 2), &[2]), "unknown idx flags"),
            (with(head(1, 1, 2, 2), &[0, 0]), "1 bytes after the end"),
            (
                with(head(2, 1, 2, 2), &[0, 0, 0, 0]),
                "first PGM header repeats",
            ),
            (
                with(head(2, 1, 2, 2), &[255, 255, 255, 255]),
                "PGM header needs 4294967295 bytes",
            ),
            (
                with(head(2, 1, 2, 2), &len_prefixed(b"P5 2 3 255\n")),
                "says 2x3, the layout 2x2",
            ),
            (with(head(2, 1, 2, 2), &len_prefixed(b"P2 2 2 255\n")), "P2"),
            (
                with(head(2, 1, 2, 2), &len_prefixed(b"P5 2 2 255\nX")),
                "1 bytes after its end",
            ),
            (
                with(head(2, 1, 2, 2), &len_prefixed(b" P5 2 2 255\n")),
                "starts with whitespace",
            ),
            (
                with(head(2, 1, 2, 2), &len_prefixed(b"P5 2 2")),
                "truncated",
            ),
            (
                with(head(2, 1, 2, 2), &pgm_header),
                "PGM trailer length needs 4",
            ),
            (
                with(with(head(2, 1, 2, 2), &pgm_header), &len_prefixed(b"x")),
                "trailer is not whitespace",
            ),
            (
                with(head(2, 4_000_000_000, 2, 2), &pgm_header),
                "PGM header length needs 4",
            ),
            (
                with(head(3, 2, 2, 2), &[0, 0, 0, 0, 0, 0, 0, 0, 0]),
                "a PNG with 2 images",
            ),
            (with(head(3, 1, 2, 1 << 31), &[0; 9]), "PNG"),
            (with(head(3, 1, 2, 2), &[4]), "unknown PNG flags"),
            (
                with(head(3, 1, 2, 2), &[0, 255, 255, 255, 255]),
                "chunk type needs 4",
            ),
            (
                with(
                    head(3, 1, 2, 2),
                    &[0, 1, 0, 0, 0, b'I', b'D', b'A', b'T', 0, 0, 0, 0],
                ),
                "IDAT chunk before IDAT",
            ),
            (
                with(
                    head(3, 1, 2, 2),
                    &[0, 1, 0, 0, 0, b'a', b'c', b'T', b'L', 0, 0, 0, 0],
                ),
                "animated",
            ),
            (
                with(
                    head(3, 1, 2, 2),
                    &[0, 1, 0, 0, 0, b't', b'E', b'X', b'1', 0, 0, 0, 0],
                ),
                "not 4 letters",
            ),
            (
                with(
                    head(3, 1, 2, 2),
                    &[0, 1, 0, 0, 0, b't', b'E', b'X', b't', 255, 255, 255, 127],
                ),
                "chunk data needs 2147483647",
            ),
            (
                with(
                    head(3, 1, 2, 2),
                    &[0, 1, 0, 0, 0, b't', b'E', b'X', b't', 255, 255, 255, 255],
                ),
                "length 4294967295",
            ),
            (
                with(head(3, 1, 2, 2), &[0, 0, 0, 0, 0]),
                "chunk count needs 4",
            ),
        ];
        for (layout, text) in cases {
            let pixels = [0u8; 4];
            let err = write(&layout, &pixels).unwrap_err().to_string();
            assert!(
                err.contains(text),
                "write({layout:?}): {err:?} lacks {text:?}"
            );
            let err = layout_dims(&layout).unwrap_err().to_string();
            assert!(
                err.contains(text),
                "layout_dims({layout:?}): {err:?} lacks {text:?}"
            );
        }
        // A valid layout with the wrong number of pixels, even a huge one.
        let layout = with(head(1, u32::MAX, u32::MAX, u32::MAX), &[0]);
        assert_err_contains(
            write(&layout, &[0; 4]),
            &[
                "4294967295 images of 4294967295x4294967295",
                "4 pixels were given",
            ],
        );
        let ok = with(head(1, 1, 2, 2), &[0]);
        assert_err_contains(write(&ok, &[0; 5]), &["(4 pixels)", "5 pixels were given"]);
        assert_eq!(
            write(&ok, &[1, 2, 3, 4]).unwrap(),
            idx_file(1, 2, 2, &[1, 2, 3, 4])
        );
    }

    // --- properties

    /// A random PGM: images of one size, headers with random whitespace and comments.
    fn pgm_strategy() -> impl Strategy<Value = Vec<u8>> {
        let sep = prop::sample::select(vec![
            " ", "\n", "\t\t", "\r\n", " #x y\n", "\n#\r ", "\x0b", "\x0c",
        ]);
        let end = prop::sample::select(vec!["\n", " ", "\t", "\r", "#c\n", "# c\r"]);
        let between = prop::sample::select(vec!["", "\n", " \n\t"]);
        let header = (prop::collection::vec(sep, 3), end, between);
        (
            1usize..6,
            1usize..6,
            prop::collection::vec(header, 1..4),
            between_strategy(),
        )
            .prop_flat_map(|(w, h, headers, trailer)| {
                let n = headers.len() * w * h;
                (
                    Just((w, h, headers, trailer)),
                    prop::collection::vec(any::<u8>(), n),
                )
            })
            .prop_map(|((w, h, headers, trailer), pixels)| {
                let mut file = Vec::new();
                for (i, ((seps, end, between), image)) in
                    headers.iter().zip(pixels.chunks(w * h)).enumerate()
                {
                    if i > 0 {
                        file.extend_from_slice(between.as_bytes());
                    }
                    let text = format!("P5{}{w}{}{h}{}255{end}", seps[0], seps[1], seps[2]);
                    file.extend_from_slice(text.as_bytes());
                    file.extend_from_slice(image);
                }
                file.extend_from_slice(trailer.as_bytes());
                file
            })
    }

    fn between_strategy() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "\n", " \n\t"])
    }

    fn idx_strategy() -> impl Strategy<Value = Vec<u8>> {
        (1u32..5, 1u32..8, 1u32..8)
            .prop_flat_map(|(c, r, w)| {
                (
                    Just((c, r, w)),
                    prop::collection::vec(any::<u8>(), (c * r * w) as usize),
                )
            })
            .prop_map(|((c, r, w), pixels)| idx_file(c, r, w, &pixels))
    }

    proptest! {
        #[test]
        fn idx_round_trips(file in idx_strategy()) {
            let images = parse(&file).unwrap();
            prop_assert_eq!(write(images.layout(), &images.pixels).unwrap(), file.clone());
            let gz = parse(&gzip(&file)).unwrap();
            prop_assert_eq!(&gz.pixels, &images.pixels);
            let back = write(gz.layout(), &gz.pixels).unwrap();
            prop_assert_eq!(write(parse(&back).unwrap().layout(), &gz.pixels).unwrap(), back);
        }

        #[test]
        fn pgm_round_trips(file in pgm_strategy()) {
            let images = parse(&file).unwrap();
            let (format, count, h, w) = layout_dims(images.layout()).unwrap();
            prop_assert_eq!((format, count, h, w), (ImageFormat::Pgm, images.count, images.height, images.width));
            prop_assert_eq!(write(images.layout(), &images.pixels).unwrap(), file);
        }

        #[test]
        fn png_round_trips(w in 1usize..20, h in 1usize..20, seed in any::<u64>(), interlace in any::<bool>()) {
            let pixels: Vec<u8> = (0..w * h).map(|i| ((i as u64).wrapping_mul(seed) >> 7) as u8).collect();
            let raw = if interlace { adam7(&pixels, w, h) } else { scanlines(&pixels, w) };
            let file = png_file(ihdr(w as u32, h as u32, 8, 0, u8::from(interlace)), &[(b"tEXt", b"k\0v"), (b"IDAT", &raw)]);
            let images = parse(&file).unwrap();
            prop_assert_eq!(&images.pixels, &pixels);
            let written = write(images.layout(), &pixels).unwrap();
            let again = parse(&written).unwrap();
            prop_assert_eq!(&again.pixels, &pixels);
            prop_assert_eq!(write(again.layout(), &pixels).unwrap(), written);
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
            for magic in [&[0x1f, 0x8b][..], &PNG_SIGNATURE, b"P5 ", &IDX_MAGIC] {
                let _ = parse(&[magic, &bytes].concat());
            }
        }

        #[test]
        fn damaged_files_never_panic(which in 0usize..3, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let mut file = match which {
                0 => png_by_crate(5, 4, &ramp(20), Some(("a", "b"))),
                1 => gzip(&idx_file(2, 3, 3, &ramp(18))),
                _ => [&b"P5 3 3 255\n"[..], &ramp(9), b"P5 3 3 255\n", &ramp(9)].concat(),
            };
            for (at, value) in flips {
                let at = at.index(file.len());
                file[at] = value;
            }
            if let Ok(images) = parse(&file) {
                let _ = write(images.layout(), &images.pixels).unwrap();
            }
        }

        #[test]
        fn write_never_panics(layout in prop::collection::vec(any::<u8>(), 0..80), pixels in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = write(&layout, &pixels);
            let _ = layout_dims(&layout);
            // Past the version and format bytes too.
            for format in 1..=3 {
                let mut l = vec![LAYOUT_VERSION, format];
                l.extend_from_slice(&layout);
                let _ = write(&l, &pixels);
                let _ = layout_dims(&l);
            }
        }
    }
}

/// Rebuilding a PNG's own IDAT bytes: its row filters, and the zlib parameters that reproduce its
/// deflate stream.
///
/// A PNG's pixels are deflated after a per-row filter; neither is part of the image, but both
/// decide the file's bytes. [`find`] reads the filter of every row from the stream and tries zlib
/// (the reference implementation, linked through `libz-sys`) with the parameters the stream's
/// header allows: the level class (FLEVEL), the window (CINFO), then memory levels and
/// strategies. Writers built on zlib (libpng, Python's zlib, optipng's trials) are found this way,
/// and then [`write`] gives the input back byte for byte. zlib's output for given parameters has
/// been stable across its releases (1.2.13 and the bundled 1.3.2 agree, checked); when nothing
/// matches, the PNG is re-encoded instead (same pixels and chunks).
mod exact {
    use super::{ImageError, PNG_SIGNATURE, png_malformed};

    /// The most bytes of deflate work [`find`] spends on one image.
    const SEARCH_BYTES: usize = 64 << 20;

    /// How to rebuild an IDAT stream.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(super) struct Params {
        pub(super) level: u8,
        pub(super) window_bits: u8,
        pub(super) mem_level: u8,
        pub(super) strategy: u8,
        /// The filter type of each row (0-4).
        pub(super) filters: Vec<u8>,
    }

    impl Params {
        /// Checks ranges (a layout may be hostile).
        pub(super) fn check(&self) -> Result<(), String> {
            let ok = self.level <= 9
                && (8..=15).contains(&self.window_bits)
                && (1..=9).contains(&self.mem_level)
                && self.strategy <= 4
                && self.filters.iter().all(|&f| f <= 4);
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "deflate parameters out of range (level {}, window {}, memory {}, strategy {})",
                    self.level, self.window_bits, self.mem_level, self.strategy
                ))
            }
        }
    }

    /// The filtered rows (each a filter byte, then the filtered pixels) of 8-bit gray `pixels`.
    pub(super) fn filter(pixels: &[u8], width: usize, filters: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pixels.len() + filters.len());
        let zero = vec![0u8; width];
        for (r, (&f, row)) in filters.iter().zip(pixels.chunks_exact(width)).enumerate() {
            let up = if r == 0 {
                &zero[..]
            } else {
                &pixels[(r - 1) * width..r * width]
            };
            out.push(f);
            for i in 0..width {
                let a = if i > 0 { row[i - 1] } else { 0 };
                let b = up[i];
                let c = if i > 0 { up[i - 1] } else { 0 };
                let pred = match f {
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    4 => paeth(a, b, c),
                    _ => 0,
                };
                out.push(row[i].wrapping_sub(pred));
            }
        }
        out
    }

    fn paeth(a: u8, b: u8, c: u8) -> u8 {
        let p = i16::from(a) + i16::from(b) - i16::from(c);
        let (pa, pb, pc) = (
            (p - i16::from(a)).abs(),
            (p - i16::from(b)).abs(),
            (p - i16::from(c)).abs(),
        );
        if pa <= pb && pa <= pc {
            a
        } else if pb <= pc {
            b
        } else {
            c
        }
    }

    /// The parameters that rebuild `stream` (the concatenated IDAT data) from `pixels`, if any.
    pub(super) fn find(
        stream: &[u8],
        pixels: &[u8],
        width: usize,
        height: usize,
    ) -> Option<Params> {
        use std::io::Read;
        let [cmf, flg, ..] = *stream else {
            return None;
        };
        if cmf & 0x0f != 8 {
            return None;
        }
        let window_bits = (cmf >> 4) + 8;
        // The filtered rows, to read each row's filter.
        let want = height.checked_mul(width + 1)?;
        let mut rows = Vec::with_capacity(want);
        flate2::read::ZlibDecoder::new(stream)
            .take(want as u64 + 1)
            .read_to_end(&mut rows)
            .ok()?;
        if rows.len() != want {
            return None;
        }
        let filters: Vec<u8> = rows.iter().step_by(width + 1).copied().collect();
        if filters.iter().any(|&f| f > 4) || filter(pixels, width, &filters) != rows {
            return None;
        }
        // zlib writes FLEVEL 0 for levels 0-1 and for the Huffman-only and RLE strategies.
        let candidates: Vec<(u8, u8)> = match flg >> 6 {
            0 => {
                let mut c: Vec<(u8, u8)> = (0..=1).flat_map(|l| [(l, 0), (l, 1), (l, 4)]).collect();
                c.extend((0..=9).flat_map(|l| [(l, 2), (l, 3)]));
                c
            }
            1 => (2..=5).flat_map(|l| [(l, 0), (l, 1), (l, 4)]).collect(),
            2 => vec![(6, 0), (6, 1), (6, 4)],
            _ => (7..=9)
                .rev()
                .flat_map(|l| [(l, 0), (l, 1), (l, 4)])
                .collect(),
        };
        let mut spent = 0usize;
        for mem_level in [8u8, 9, 7, 6, 5, 4, 3, 2, 1] {
            for &(level, strategy) in &candidates {
                if spent > SEARCH_BYTES {
                    return None;
                }
                spent += rows.len();
                let params = Params {
                    level,
                    window_bits,
                    mem_level,
                    strategy,
                    filters: Vec::new(),
                };
                if zlib::deflate(&rows, &params).as_deref() == Some(stream) {
                    return Some(Params { filters, ..params });
                }
            }
        }
        None
    }

    /// The PNG with its original IDAT: IHDR, the chunks before, the IDAT chunks of `lens`, the
    /// chunks after, IEND.
    pub(super) fn write(
        width: u32,
        height: u32,
        before: &[([u8; 4], &[u8])],
        after: &[([u8; 4], &[u8])],
        params: &Params,
        lens: &[u32],
        pixels: &[u8],
    ) -> Result<Vec<u8>, ImageError> {
        let rows = filter(pixels, width as usize, &params.filters);
        let stream = zlib::deflate(&rows, params)
            .ok_or_else(|| png_malformed("zlib failed to deflate the rows".into()))?;
        let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
        if total != stream.len() as u64 {
            return Err(ImageError::Layout(format!(
                "the IDAT chunks hold {total} bytes, the deflated rows {}",
                stream.len()
            )));
        }
        let mut out = PNG_SIGNATURE.to_vec();
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        for (kind, data) in before {
            chunk(&mut out, kind, data);
        }
        let mut at = 0;
        for &len in lens {
            chunk(&mut out, b"IDAT", &stream[at..at + len as usize]);
            at += len as usize;
        }
        for (kind, data) in after {
            chunk(&mut out, kind, data);
        }
        chunk(&mut out, b"IEND", &[]);
        Ok(out)
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }

    /// zlib's `deflate` with every parameter exposed (flate2 does not expose the memory level
    /// or the strategy).
    pub(super) mod zlib {
        #![allow(unsafe_code)] // FFI to zlib: the only way to reproduce zlib's output exactly.

        use std::alloc::{Layout, alloc, dealloc};
        use std::os::raw::c_int;
        use std::ptr::null_mut;

        use libz_sys as z;

        use super::Params;

        /// Room kept before each allocation for its size, aligned for any zlib structure.
        const HEADER: usize = 16;

        /// zlib's allocator: `std::alloc` with the size stored in front of the block.
        unsafe extern "C" fn zalloc(_: z::voidpf, items: z::uInt, size: z::uInt) -> z::voidpf {
            let Some(n) = (items as usize)
                .checked_mul(size as usize)
                .and_then(|n| n.checked_add(HEADER))
            else {
                return null_mut();
            };
            let Ok(layout) = Layout::from_size_align(n, HEADER) else {
                return null_mut();
            };
            // SAFETY: `layout` has a non-zero size (at least HEADER); the block is at least
            // HEADER bytes, so writing a usize at its start and returning start + HEADER stays
            // inside it.
            unsafe {
                let p = alloc(layout);
                if p.is_null() {
                    return null_mut();
                }
                p.cast::<usize>().write(n);
                p.add(HEADER).cast()
            }
        }

        /// Frees what [`zalloc`] returned.
        unsafe extern "C" fn zfree(_: z::voidpf, p: z::voidpf) {
            if p.is_null() {
                return;
            }
            // SAFETY: zlib frees only pointers zalloc returned: HEADER bytes after a block whose
            // first usize is its size, allocated with this layout.
            unsafe {
                let base = p.cast::<u8>().sub(HEADER);
                let n = base.cast::<usize>().read();
                dealloc(base, Layout::from_size_align_unchecked(n, HEADER));
            }
        }

        /// `data` deflated in one zlib stream with `params`; `None` if zlib refuses them.
        pub(in super::super) fn deflate(data: &[u8], params: &Params) -> Option<Vec<u8>> {
            let avail_in = z::uInt::try_from(data.len()).ok()?;
            let mut strm = z::z_stream {
                next_in: data.as_ptr().cast_mut(),
                avail_in,
                total_in: 0,
                next_out: null_mut(),
                avail_out: 0,
                total_out: 0,
                msg: null_mut(),
                state: null_mut(),
                zalloc,
                zfree,
                opaque: null_mut(),
                data_type: 0,
                adler: 0,
                reserved: 0,
            };
            // SAFETY: `strm` is initialized as zlib requires (allocators set, input set) and
            // stays in place until deflateEnd; zlib reads `data` only (next_in is never written
            // through) and writes only the `avail_out` bytes at `next_out`, inside `out`.
            unsafe {
                let rc = z::deflateInit2_(
                    &mut strm,
                    c_int::from(params.level),
                    z::Z_DEFLATED,
                    c_int::from(params.window_bits),
                    c_int::from(params.mem_level),
                    c_int::from(params.strategy),
                    z::zlibVersion(),
                    std::mem::size_of::<z::z_stream>() as c_int,
                );
                if rc != z::Z_OK {
                    return None;
                }
                let bound = z::deflateBound(&mut strm, data.len() as z::uLong) as usize;
                let mut out = vec![0u8; bound];
                strm.next_out = out.as_mut_ptr();
                strm.avail_out = z::uInt::try_from(bound).ok()?;
                let rc = z::deflate(&mut strm, z::Z_FINISH);
                let written = strm.total_out as usize;
                z::deflateEnd(&mut strm);
                if rc != z::Z_STREAM_END {
                    return None;
                }
                out.truncate(written);
                Some(out)
            }
        }
    }
}
