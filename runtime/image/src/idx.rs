//! MNIST idx files of unsigned bytes with 3 dimensions, raw or inside gzip.

use std::io::Read;

use crate::blob::layout_head;
use crate::types::{ImageError, ImageFormat, Images, MAX_DECODED_BYTES, hex_head};

/// The 16-byte idx header: magic, count, rows, cols.
const IDX_HEADER: usize = 16;
/// The magic of an idx file of unsigned bytes with 3 dimensions.
pub(crate) const IDX_MAGIC: [u8; 4] = [0, 0, 0x08, 3];
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The name of an idx element type, for the types the idx format defines.
pub(crate) fn idx_type_name(code: u8) -> Option<&'static str> {
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
pub(crate) fn gunzip_idx(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
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

pub(crate) fn parse_idx(bytes: &[u8], gzipped: bool) -> Result<Images, ImageError> {
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

/// The idx file of `count` images of `height`x`width` (`pixels`, image after image), gzipped
/// with [`gzip`] if the input was.
pub(crate) fn write_idx(
    count: u32,
    height: u32,
    width: u32,
    gzipped: bool,
    pixels: &[u8],
) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::with_capacity(IDX_HEADER + pixels.len());
    out.extend_from_slice(&IDX_MAGIC);
    for n in [count, height, width] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    if gzipped {
        return gzip(&out);
    }
    Ok(out)
}

/// `data` in a gzip file with fixed settings: deflate level 9 (miniz_oxide), no file name,
/// modification time 0. The same bytes for the same input and crate versions.
pub(crate) fn gzip(data: &[u8]) -> Result<Vec<u8>, ImageError> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).map_err(ImageError::Gzip)?;
    enc.finish().map_err(ImageError::Gzip)
}
