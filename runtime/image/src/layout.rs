//! The layout blob: everything in a file that is not a pixel, as [`parse`](crate::parse) stores it
//! for [`write`](crate::write) and [`layout_dims`](crate::layout_dims). Its format is in the
//! crate docs.

use crate::exact;
use crate::pgm::{check_pgm_header, is_pnm_space};
use crate::png::{chunk_name, refused_chunk};
use crate::types::{ImageError, ImageFormat, LAYOUT_VERSION};

/// A PNG chunk kept in a layout: its type and its data.
type KeptChunk<'a> = ([u8; 4], &'a [u8]);

/// The format-specific part of a decoded layout.
pub(crate) enum Rest<'a> {
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

/// A layout, checked: everything [`write`](crate::write) needs.
pub(crate) struct Layout<'a> {
    pub(crate) format: ImageFormat,
    pub(crate) count: u32,
    pub(crate) height: u32,
    pub(crate) width: u32,
    pub(crate) rest: Rest<'a>,
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
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, ImageError> {
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
