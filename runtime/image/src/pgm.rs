//! Binary PGM (`P5`, maxval 255): one image, or several of one size back to back.

use crate::blob::{layout_head, push_len, push_u32};
use crate::types::{ImageError, ImageFormat, Images};

/// The whitespace of netpbm headers.
pub(crate) fn is_pnm_space(b: u8) -> bool {
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

pub(crate) fn parse_pgm(bytes: &[u8]) -> Result<Images, ImageError> {
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

/// The PGM file of `headers` (one per image, verbatim), each followed by its image's pixels,
/// then `trailer`.
pub(crate) fn write_pgm(headers: &[&[u8]], trailer: &[u8], pixels: &[u8]) -> Vec<u8> {
    let header_bytes: usize = headers.iter().map(|h| h.len()).sum();
    let mut out = Vec::with_capacity(header_bytes + pixels.len() + trailer.len());
    let size = pixels.len() / headers.len();
    for (header, image) in headers.iter().zip(pixels.chunks_exact(size)) {
        out.extend_from_slice(header);
        out.extend_from_slice(image);
    }
    out.extend_from_slice(trailer);
    out
}

/// Checks a stored PGM header: whitespace (not before the first image), one P5 header of the
/// layout's size, nothing after it.
pub(crate) fn check_pgm_header(
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
