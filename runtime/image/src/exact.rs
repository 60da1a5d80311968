//! deflate stream.
//!
//! A PNG's pixels are deflated after a per-row filter; neither is part of the image, but both
//! decide the file's bytes. [`find`] reads the filter of every row from the stream and tries zlib
//! (the reference implementation, linked through `libz-sys`) with the parameters the stream's
//! header allows: the level class (FLEVEL), the window (CINFO), then memory levels and
//! strategies. Writers built on zlib (libpng, Python's zlib, optipng's trials) are found this way,
//! and then [`write`] gives the input back byte for byte. zlib's output for given parameters has
//! been stable across its releases (1.2.13 and the bundled 1.3.2 agree, checked); when nothing
//! matches, the PNG is re-encoded instead (same pixels and chunks).
//!
//! [`write`]: fn@write

use crate::types::{ImageError, PNG_SIGNATURE, png_malformed};

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
pub(super) fn find(stream: &[u8], pixels: &[u8], width: usize, height: usize) -> Option<Params> {
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

/// Appends one PNG chunk: length, type, data, CRC-32 of type and data.
pub(crate) fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
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
