//! Word sinks and sources for the range coder.
//!
//! The coder produces and consumes `u32` words. It writes them to a [`WriteWords`] sink and reads
//! them from a [`ReadWords`] source, so a fixed [`heapless::Vec`], an `alloc` `Vec`, a slice
//! cursor ([`WordCursor`]) or a byte-slice cursor ([`ByteWordCursor`], little-endian) all work.
//!
//! ```
//! use arca_coder::{ReadWords, WriteWords, ByteWordCursor};
//!
//! let mut sink: heapless::Vec<u32, 2> = heapless::Vec::new();
//! sink.write_word(7).unwrap();
//! sink.write_word(8).unwrap();
//! assert!(sink.write_word(9).is_err()); // full: an error, never a panic
//!
//! let mut bytes = ByteWordCursor::new(&[1, 0, 0, 0, 0xff]);
//! assert_eq!(bytes.read_word().unwrap(), Some(1));
//! assert_eq!(bytes.read_word().unwrap(), Some(0xff)); // trailing partial word, zero-padded
//! assert_eq!(bytes.read_word().unwrap(), None);
//! ```

use core::convert::Infallible;
use core::fmt;

/// A sink of `u32` words (what a [`RangeEncoder`](crate::RangeEncoder) writes to).
pub trait WriteWords {
    /// Error returned when a word cannot be written (e.g. a fixed buffer is full).
    type Error;
    /// Appends one word.
    fn write_word(&mut self, w: u32) -> Result<(), Self::Error>;
}

/// A source of `u32` words (what a [`RangeDecoder`](crate::RangeDecoder) reads from).
pub trait ReadWords {
    /// Error returned when reading fails.
    type Error;
    /// Reads the next word; `Ok(None)` means the end of the data.
    fn read_word(&mut self) -> Result<Option<u32>, Self::Error>;
}

impl<W: WriteWords + ?Sized> WriteWords for &mut W {
    type Error = W::Error;
    #[inline]
    fn write_word(&mut self, w: u32) -> Result<(), Self::Error> {
        (**self).write_word(w)
    }
}

impl<R: ReadWords + ?Sized> ReadWords for &mut R {
    type Error = R::Error;
    #[inline]
    fn read_word(&mut self) -> Result<Option<u32>, Self::Error> {
        (**self).read_word()
    }
}

/// Error of a fixed-capacity sink that has no room left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferFull;

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("word buffer is full")
    }
}

impl core::error::Error for BufferFull {}

impl<const N: usize> WriteWords for heapless::Vec<u32, N> {
    type Error = BufferFull;
    #[inline]
    fn write_word(&mut self, w: u32) -> Result<(), BufferFull> {
        self.push(w).map_err(|_| BufferFull)
    }
}

#[cfg(feature = "alloc")]
impl WriteWords for alloc::vec::Vec<u32> {
    type Error = Infallible;
    #[inline]
    fn write_word(&mut self, w: u32) -> Result<(), Infallible> {
        self.push(w);
        Ok(())
    }
}

/// Reads words from a `&[u32]`, front to back.
#[derive(Debug, Clone)]
pub struct WordCursor<'a> {
    words: &'a [u32],
    pos: usize,
}

impl<'a> WordCursor<'a> {
    /// A cursor at the start of `words`.
    pub fn new(words: &'a [u32]) -> Self {
        WordCursor { words, pos: 0 }
    }

    /// Number of words read so far (never more than the slice length).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The words not read yet.
    pub fn remaining(&self) -> &'a [u32] {
        self.words.get(self.pos..).unwrap_or(&[])
    }
}

impl ReadWords for WordCursor<'_> {
    type Error = Infallible;
    #[inline]
    fn read_word(&mut self) -> Result<Option<u32>, Infallible> {
        match self.words.get(self.pos) {
            Some(&w) => {
                self.pos += 1;
                Ok(Some(w))
            }
            None => Ok(None),
        }
    }
}

/// Reads little-endian `u32` words from a `&[u8]`; a trailing partial word is zero-padded.
#[derive(Debug, Clone)]
pub struct ByteWordCursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteWordCursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteWordCursor { bytes, pos: 0 }
    }

    /// Number of bytes consumed so far (never more than the slice length).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl ReadWords for ByteWordCursor<'_> {
    type Error = Infallible;
    #[inline]
    fn read_word(&mut self) -> Result<Option<u32>, Infallible> {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(None);
        }
        let mut buf = [0u8; 4];
        let take = rest.len().min(4);
        for (dst, src) in buf.iter_mut().zip(rest.iter().take(take)) {
            *dst = *src;
        }
        self.pos += take;
        Ok(Some(u32::from_le_bytes(buf)))
    }
}

/// Writes `words` as little-endian bytes into `out` (the layout [`ByteWordCursor`] reads).
///
/// Returns the number of bytes written, or [`BufferFull`] if `out` is shorter than
/// `4 * words.len()` (nothing is written then).
pub fn words_to_le_bytes(words: &[u32], out: &mut [u8]) -> Result<usize, BufferFull> {
    let needed = words.len().checked_mul(4).ok_or(BufferFull)?;
    let out = out.get_mut(..needed).ok_or(BufferFull)?;
    for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        let mut c = WordCursor::new(&[1, 2]);
        assert_eq!(c.read_word(), Ok(Some(1)));
        assert_eq!(c.remaining(), &[2]);
        assert_eq!(c.read_word(), Ok(Some(2)));
        assert_eq!(c.read_word(), Ok(None));
        assert_eq!(c.read_word(), Ok(None));
        assert_eq!(c.position(), 2);

        let mut b = ByteWordCursor::new(&[0x78, 0x56, 0x34, 0x12, 0xaa, 0xbb]);
        assert_eq!(b.read_word(), Ok(Some(0x1234_5678)));
        assert_eq!(b.read_word(), Ok(Some(0xbbaa)));
        assert_eq!(b.read_word(), Ok(None));
        assert_eq!(b.position(), 6);
    }

    #[test]
    fn sinks() {
        fn put<W: WriteWords>(mut sink: W, w: u32) -> Result<(), W::Error> {
            sink.write_word(w)
        }
        let mut v: heapless::Vec<u32, 1> = heapless::Vec::new();
        assert_eq!(put(&mut v, 5), Ok(()));
        assert_eq!(put(&mut v, 6), Err(BufferFull));
        assert_eq!(v.as_slice(), &[5]);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn alloc_vec_sink() {
        let mut v = alloc::vec::Vec::new();
        for w in 0..100 {
            assert_eq!(v.write_word(w), Ok(()));
        }
        assert_eq!(v.len(), 100);
        let mut enc = crate::RangeEncoder::new(alloc::vec::Vec::new());
        enc.encode(3, 4, 3).unwrap_or(());
        assert!(enc.finish().is_ok());
    }
}
