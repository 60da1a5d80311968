//! Range coder: 64-bit state, `u32` words, probability precision up to 24 bits.
//!
//! A symbol is an interval `[start, start + freq)` of `[0, 2^precision)` (a quantized CDF gives
//! it, see [`crate::quantize`]). [`RangeEncoder`] narrows its interval to the symbol's share and
//! writes finished words to a [`WriteWords`] sink; [`RangeDecoder`] reads them back from a
//! [`ReadWords`] source and recovers every symbol, given the same intervals in the same order.
//!
//! ```
//! use arca_coder::{RangeDecoder, RangeEncoder, WordCursor};
//!
//! // A 3-symbol model at 4-bit precision: freqs 8, 5, 3 (sum 16); cdf = [0, 8, 13, 16].
//! let cdf = [0u32, 8, 13, 16];
//! let message = [0usize, 2, 1, 0, 0, 2];
//!
//! let mut enc = RangeEncoder::new(heapless::Vec::<u32, 16>::new());
//! for &s in &message {
//!     enc.encode(cdf[s], cdf[s + 1] - cdf[s], 4).unwrap();
//! }
//! let words = enc.finish().unwrap();
//!
//! let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
//! for &s in &message {
//!     assert_eq!(dec.decode_with_cdf(&cdf, 4).unwrap(), s);
//! }
//! ```
//!
//! # Word and carry scheme
//!
//! The encoder keeps `low` and `range` (both `u64`): the current interval is
//! `[low, low + range)` read as a fraction whose leading digits (base 2^32) are the words already
//! produced, followed by the 64 bits of `low`. Initially `low = 0`, `range = 2^64 - 1`.
//!
//! * **Encode** `(start, freq)` at precision `p`: `scale = range >> p`,
//!   `low += scale * start`, and `range = scale * freq`, except for the last symbol of the
//!   alphabet (`start + freq == 2^p`), which takes all of `range - scale * start`, so no range is
//!   lost to truncation. Since `range >= 2^32` before the step and `p <= 24`, `scale >= 2^8`.
//! * **Normalize**: if `range < 2^32`, the top word of `low` is shifted out (`low <<= 32`,
//!   `range <<= 32`). One shift always restores `range >= 2^32` (because `range >= scale >= 2^8`).
//! * **Carry**: `low + scale * start` may overflow 2^64; the carry belongs to the words already
//!   shifted out. So a shifted word is not written at once: the encoder holds back the last word
//!   that is not `0xFFFF_FFFF` (the *pending* word) and a count of `0xFFFF_FFFF` words after it.
//!   A carry turns the pending word into `pending + 1` and the `0xFFFF_FFFF` run into zeros; they
//!   are then final and written. A new word other than `0xFFFF_FFFF` flushes the pending word and
//!   run and becomes pending itself. (The interval never grows, so the prefix can receive at most
//!   one carry and the pending word, never `0xFFFF_FFFF`, can't overflow.)
//! * **Finish** picks the value in the final interval with the most trailing zero bits: none at
//!   all if the interval reaches past 2^64 (a carry) or `low == 0`, else `low` rounded up to a
//!   multiple of 2^32 (inside because `range >= 2^32`), and writes its top word. The dropped
//!   words are zeros, and the decoder reads zeros past the end of its input, so it needs no
//!   length: the stream is as short as possible, at most one word above the information content.
//!
//! The decoder keeps `range` identical to the encoder's and `value` = (the 64 stream bits in its
//! window) − `low`, which always lies in `[0, range)` for a valid stream. The symbol's slot is
//! `min(value / scale, 2^p - 1)`. A value outside the interval of the symbol it is told to
//! [`advance`](RangeDecoder::advance) past means the stream or the model is wrong:
//! [`DecodeError::CorruptData`]. Corruption is not always detectable this way (the container's
//! checksums are the real guard), but no input makes the decoder panic.

use core::fmt;

use crate::words::{ReadWords, WriteWords};

/// Largest supported probability precision, in bits.
pub const MAX_PRECISION: u32 = 24;

/// Precision of [`RangeEncoder::encode_bit`] / [`RangeDecoder::decode_bit`] probabilities.
pub const BIT_PRECISION: u32 = 16;

const WORD_BITS: u32 = 32;
const WORD_ONE: u64 = 1 << WORD_BITS;

/// Error of [`RangeEncoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError<E> {
    /// The sink refused a word. The encoder is left in an unspecified (but safe) state; start
    /// over with a larger sink.
    Write(E),
    /// `precision` is not in `1..=24`.
    InvalidPrecision,
    /// `freq == 0` or `start + freq > 2^precision` (or a symbol index outside the CDF).
    InvalidSymbol,
    /// A bit probability of 0 (must be in `1..=65535`).
    InvalidProbability,
    /// A CDF that doesn't start at 0 and end at `2^precision`, or isn't increasing.
    InvalidCdf,
}

impl<E: fmt::Display> fmt::Display for EncodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Write(e) => write!(f, "range encoder: cannot write word: {e}"),
            EncodeError::InvalidPrecision => f.write_str("range encoder: precision not in 1..=24"),
            EncodeError::InvalidSymbol => {
                f.write_str("range encoder: symbol interval empty or outside 2^precision")
            }
            EncodeError::InvalidProbability => {
                f.write_str("range encoder: bit probability not in 1..=65535")
            }
            EncodeError::InvalidCdf => f.write_str("range encoder: invalid cumulative table"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for EncodeError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EncodeError::Write(e) => Some(e),
            _ => None,
        }
    }
}

/// Error of [`RangeDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError<E> {
    /// The source failed to produce a word.
    Read(E),
    /// `precision` is not in `1..=24`.
    InvalidPrecision,
    /// `freq == 0` or `start + freq > 2^precision`.
    InvalidSymbol,
    /// A bit probability of 0 (must be in `1..=65535`).
    InvalidProbability,
    /// A CDF that doesn't start at 0 and end at `2^precision`, or isn't increasing.
    InvalidCdf,
    /// The stream doesn't match the model: the coded value lies outside the symbol's interval.
    CorruptData,
}

impl<E: fmt::Display> fmt::Display for DecodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Read(e) => write!(f, "range decoder: cannot read word: {e}"),
            DecodeError::InvalidPrecision => f.write_str("range decoder: precision not in 1..=24"),
            DecodeError::InvalidSymbol => {
                f.write_str("range decoder: symbol interval empty or outside 2^precision")
            }
            DecodeError::InvalidProbability => {
                f.write_str("range decoder: bit probability not in 1..=65535")
            }
            DecodeError::InvalidCdf => f.write_str("range decoder: invalid cumulative table"),
            DecodeError::CorruptData => {
                f.write_str("range decoder: corrupt stream (value outside the symbol's interval)")
            }
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for DecodeError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            DecodeError::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a `(start, freq, precision)` triple is invalid.
#[derive(Clone, Copy)]
enum SymbolCheck {
    Precision,
    Symbol,
}

/// Validates a symbol; returns `(scale, is_last)` for the given `range`.
#[inline(always)]
fn check_symbol(start: u32, freq: u32, precision: u32) -> Result<bool, SymbolCheck> {
    if precision == 0 || precision > MAX_PRECISION {
        return Err(SymbolCheck::Precision);
    }
    let end = u64::from(start) + u64::from(freq);
    let total = 1u64 << precision;
    if freq == 0 || end > total {
        return Err(SymbolCheck::Symbol);
    }
    Ok(end == total)
}

/// Interval `(start, freq)` of a bit at [`BIT_PRECISION`]: 0 is `[0, 2^16 - p1)`, 1 the rest.
#[inline(always)]
fn bit_interval(bit: bool, p1: u16) -> (u32, u32) {
    let p0 = (1u32 << BIT_PRECISION) - u32::from(p1);
    if bit { (p0, u32::from(p1)) } else { (0, p0) }
}

/// Checks that `cdf` has at least 2 entries, starts at 0 and ends at `2^precision`.
#[inline]
fn check_cdf_ends(cdf: &[u32], precision: u32) -> Result<(), SymbolCheck> {
    if precision == 0 || precision > MAX_PRECISION {
        return Err(SymbolCheck::Precision);
    }
    match (cdf.first(), cdf.last()) {
        (Some(&0), Some(&last)) if cdf.len() >= 2 && u64::from(last) == 1u64 << precision => Ok(()),
        _ => Err(SymbolCheck::Symbol),
    }
}

/// Range encoder writing `u32` words to a [`WriteWords`] sink. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RangeEncoder<W: WriteWords> {
    low: u64,
    range: u64,
    /// The last shifted-out word that a carry can still change (never `0xFFFF_FFFF`).
    pending: Option<u32>,
    /// Number of `0xFFFF_FFFF` words shifted out after `pending`.
    pending_ones: u64,
    /// Words handed to the sink so far.
    written: u64,
    sink: W,
}

impl<W: WriteWords> RangeEncoder<W> {
    /// A new encoder writing to `sink` (words are appended after whatever it holds).
    pub fn new(sink: W) -> Self {
        RangeEncoder {
            low: 0,
            range: u64::MAX,
            pending: None,
            pending_ones: 0,
            written: 0,
            sink,
        }
    }

    /// Encodes the symbol occupying `[start, start + freq)` of `[0, 2^precision)`.
    ///
    /// Requires `precision` in `1..=24`, `freq >= 1` and `start + freq <= 2^precision`.
    #[inline]
    pub fn encode(
        &mut self,
        start: u32,
        freq: u32,
        precision: u32,
    ) -> Result<(), EncodeError<W::Error>> {
        let is_last = check_symbol(start, freq, precision).map_err(|e| match e {
            SymbolCheck::Precision => EncodeError::InvalidPrecision,
            SymbolCheck::Symbol => EncodeError::InvalidSymbol,
        })?;
        self.encode_unchecked_args(start, freq, precision, is_last)
    }

    #[inline(always)]
    fn encode_unchecked_args(
        &mut self,
        start: u32,
        freq: u32,
        precision: u32,
        is_last: bool,
    ) -> Result<(), EncodeError<W::Error>> {
        // range >= 2^32 and precision <= 24, so scale >= 2^8 and no product overflows.
        let scale = self.range >> precision;
        let offset = scale * u64::from(start);
        let (low, carry) = self.low.overflowing_add(offset);
        self.low = low;
        self.range = if is_last {
            self.range - offset
        } else {
            scale * u64::from(freq)
        };
        if carry {
            self.propagate_carry()?;
        }
        if self.range < WORD_ONE {
            self.shift()?;
        }
        Ok(())
    }

    /// Encodes one bit; `p1` is P(bit == 1) in units of 2^-16 and must be in `1..=65535`.
    #[inline]
    pub fn encode_bit(&mut self, bit: bool, p1: u16) -> Result<(), EncodeError<W::Error>> {
        if p1 == 0 {
            return Err(EncodeError::InvalidProbability);
        }
        let (start, freq) = bit_interval(bit, p1);
        self.encode_unchecked_args(start, freq, BIT_PRECISION, bit)
    }

    /// Encodes `symbol` with the cumulative table `cdf` (`cdf[0] == 0`,
    /// `cdf[n] == 2^precision`, symbol `s` is `[cdf[s], cdf[s + 1])`).
    #[inline]
    pub fn encode_with_cdf(
        &mut self,
        cdf: &[u32],
        symbol: usize,
        precision: u32,
    ) -> Result<(), EncodeError<W::Error>> {
        check_cdf_ends(cdf, precision).map_err(|e| match e {
            SymbolCheck::Precision => EncodeError::InvalidPrecision,
            SymbolCheck::Symbol => EncodeError::InvalidCdf,
        })?;
        let (Some(&start), Some(&end)) = (
            cdf.get(symbol),
            symbol.checked_add(1).and_then(|i| cdf.get(i)),
        ) else {
            return Err(EncodeError::InvalidSymbol);
        };
        if end <= start {
            return Err(EncodeError::InvalidCdf);
        }
        self.encode(start, end - start, precision)
    }

    /// An upper bound on the length in bits of the stream if [`finish`](Self::finish) were
    /// called now: `32 *` (words written + words held back + 1). Word granular.
    pub fn bits_so_far(&self) -> u64 {
        let held = u64::from(self.pending.is_some()) + self.pending_ones;
        (self.written + held + 1) * u64::from(WORD_BITS)
    }

    /// The sink, with the words written so far (not the held-back ones).
    pub fn sink(&self) -> &W {
        &self.sink
    }

    /// Flushes the final words and returns the sink. Every encoded symbol can then be decoded.
    pub fn finish(mut self) -> Result<W, EncodeError<W::Error>> {
        if self.low != 0 {
            let (_, past_end) = self.low.overflowing_add(self.range - 1);
            if past_end {
                // 2^64 lies in the interval: carry and nothing more to write.
                self.low = 0;
                self.propagate_carry()?;
            } else {
                // No overflow: low + 2^32 - 1 <= low + range - 1 < 2^64.
                self.low = (self.low + (WORD_ONE - 1)) & !(WORD_ONE - 1);
                self.shift()?;
            }
        }
        if let Some(w) = self.pending.take() {
            // A lone trailing zero word carries no information (decoders read zeros past the end).
            if w != 0 || self.pending_ones != 0 {
                self.emit(w)?;
            }
        }
        for _ in 0..self.pending_ones {
            self.emit(u32::MAX)?;
        }
        self.pending_ones = 0;
        Ok(self.sink)
    }

    #[inline(always)]
    fn emit(&mut self, w: u32) -> Result<(), EncodeError<W::Error>> {
        self.sink.write_word(w).map_err(EncodeError::Write)?;
        self.written += 1;
        Ok(())
    }

    #[inline]
    fn shift(&mut self) -> Result<(), EncodeError<W::Error>> {
        let top = (self.low >> WORD_BITS) as u32;
        self.low <<= WORD_BITS;
        self.range <<= WORD_BITS;
        match self.pending {
            // No pending word: everything before is final, so a 0xFFFF_FFFF word here can never
            // receive a carry (the interval never reaches past what was already fixed).
            None if top == u32::MAX => self.emit(top)?,
            None => self.pending = Some(top),
            Some(_) if top == u32::MAX => self.pending_ones += 1,
            Some(prev) => {
                self.emit(prev)?;
                for _ in 0..self.pending_ones {
                    self.emit(u32::MAX)?;
                }
                self.pending_ones = 0;
                self.pending = Some(top);
            }
        }
        Ok(())
    }

    #[cold]
    fn propagate_carry(&mut self) -> Result<(), EncodeError<W::Error>> {
        // The carry adds one to the held-back words; they are then final (at most one carry can
        // reach them). Without a pending word the carry would run past the start of the stream,
        // which the interval arithmetic rules out.
        if let Some(prev) = self.pending.take() {
            self.emit(prev.wrapping_add(1))?;
            for _ in 0..self.pending_ones {
                self.emit(0)?;
            }
            self.pending_ones = 0;
        }
        Ok(())
    }
}

/// Range decoder reading `u32` words from a [`ReadWords`] source. See the [module docs](self).
///
/// Past the end of the source it reads zero words; it never panics, whatever the input.
#[derive(Debug, Clone)]
pub struct RangeDecoder<R: ReadWords> {
    /// Stream window minus the encoder's `low`; in `[0, range)` for a valid stream.
    value: u64,
    range: u64,
    source: R,
}

impl<R: ReadWords> RangeDecoder<R> {
    /// A decoder over `source`; reads the first two words.
    pub fn new(source: R) -> Result<Self, DecodeError<R::Error>> {
        let mut dec = RangeDecoder {
            value: 0,
            range: u64::MAX,
            source,
        };
        let hi = dec.next_word()?;
        let lo = dec.next_word()?;
        dec.value = (u64::from(hi) << WORD_BITS) | u64::from(lo);
        Ok(dec)
    }

    #[inline(always)]
    fn next_word(&mut self) -> Result<u32, DecodeError<R::Error>> {
        Ok(self
            .source
            .read_word()
            .map_err(DecodeError::Read)?
            .unwrap_or(0))
    }

    /// The slot in `[0, 2^precision)` the next symbol occupies: the symbol is the one whose
    /// interval `[start, start + freq)` contains it. Follow with [`advance`](Self::advance).
    ///
    /// `precision` outside `1..=24` is clamped into it (and `advance` then reports the error).
    #[inline]
    pub fn decode_target(&mut self, precision: u32) -> u32 {
        let precision = precision.clamp(1, MAX_PRECISION);
        let scale = self.range >> precision; // >= 2^8
        let max = (1u64 << precision) - 1;
        (self.value / scale).min(max) as u32
    }

    /// Consumes the symbol `[start, start + freq)` (the one containing
    /// [`decode_target`](Self::decode_target)), exactly mirroring [`RangeEncoder::encode`].
    #[inline]
    pub fn advance(
        &mut self,
        start: u32,
        freq: u32,
        precision: u32,
    ) -> Result<(), DecodeError<R::Error>> {
        let is_last = check_symbol(start, freq, precision).map_err(|e| match e {
            SymbolCheck::Precision => DecodeError::InvalidPrecision,
            SymbolCheck::Symbol => DecodeError::InvalidSymbol,
        })?;
        self.advance_unchecked_args(start, freq, precision, is_last)
    }

    #[inline(always)]
    fn advance_unchecked_args(
        &mut self,
        start: u32,
        freq: u32,
        precision: u32,
        is_last: bool,
    ) -> Result<(), DecodeError<R::Error>> {
        let scale = self.range >> precision;
        let offset = scale * u64::from(start);
        let size = if is_last {
            self.range - offset
        } else {
            scale * u64::from(freq)
        };
        let inside = match self.value.checked_sub(offset) {
            Some(v) if v < size => v,
            _ => return Err(DecodeError::CorruptData),
        };
        self.value = inside;
        self.range = size;
        if self.range < WORD_ONE {
            // value < range < 2^32: the shift can't overflow.
            let w = self.next_word()?;
            self.value = (self.value << WORD_BITS) | u64::from(w);
            self.range <<= WORD_BITS;
        }
        Ok(())
    }

    /// Decodes a symbol with the cumulative table `cdf` (`cdf[0] == 0`, `cdf[n] == 2^precision`,
    /// symbol `s` is `[cdf[s], cdf[s + 1])`) by binary search; returns its index.
    ///
    /// Only the two ends and the found interval are checked (a full check would cost O(n));
    /// a non-increasing table gives an error or a wrong symbol, never a panic.
    #[inline]
    pub fn decode_with_cdf(
        &mut self,
        cdf: &[u32],
        precision: u32,
    ) -> Result<usize, DecodeError<R::Error>> {
        check_cdf_ends(cdf, precision).map_err(|e| match e {
            SymbolCheck::Precision => DecodeError::InvalidPrecision,
            SymbolCheck::Symbol => DecodeError::InvalidCdf,
        })?;
        let target = self.decode_target(precision);
        let n = cdf.len() - 1;
        let symbol = cdf
            .get(..n)
            .unwrap_or(&[])
            .partition_point(|&c| c <= target)
            .checked_sub(1)
            .ok_or(DecodeError::InvalidCdf)?;
        let (Some(&start), Some(&end)) = (cdf.get(symbol), cdf.get(symbol + 1)) else {
            return Err(DecodeError::InvalidCdf);
        };
        if end <= start || target < start || target >= end {
            return Err(DecodeError::InvalidCdf);
        }
        self.advance(start, end - start, precision)?;
        Ok(symbol)
    }

    /// Decodes one bit; `p1` is P(bit == 1) in units of 2^-16 and must be in `1..=65535`.
    #[inline]
    pub fn decode_bit(&mut self, p1: u16) -> Result<bool, DecodeError<R::Error>> {
        if p1 == 0 {
            return Err(DecodeError::InvalidProbability);
        }
        let p0 = (1u32 << BIT_PRECISION) - u32::from(p1);
        let bit = self.decode_target(BIT_PRECISION) >= p0;
        let (start, freq) = bit_interval(bit, p1);
        self.advance_unchecked_args(start, freq, BIT_PRECISION, bit)?;
        Ok(bit)
    }

    /// The source (positioned after the words read so far).
    pub fn source(&self) -> &R {
        &self.source
    }

    /// Returns the source.
    pub fn into_source(self) -> R {
        self.source
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::WordCursor;

    struct Sink(Vec<u32>);

    impl WriteWords for Sink {
        type Error = core::convert::Infallible;
        fn write_word(&mut self, w: u32) -> Result<(), Self::Error> {
            self.0.push(w);
            Ok(())
        }
    }

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    const WRAP: u128 = 1 << 64;

    /// Steers the encoder (reading its private state) into an interval that straddles a word
    /// boundary for several words, so `0xFFFF_FFFF` words pile up behind a pending word, then
    /// pushes it over the boundary: the carry must turn the run into zeros.
    #[test]
    fn carry_through_a_run_of_all_ones_words() {
        for seed in 1..60u64 {
            let mut rng = seed * 0x9E37_79B9;
            let mut enc = RangeEncoder::new(Sink(Vec::new()));
            let mut symbols: Vec<(u32, u32, u32)> = Vec::new();
            let mut push = |enc: &mut RangeEncoder<Sink>, s: (u32, u32, u32)| {
                enc.encode(s.0, s.1, s.2).unwrap();
                symbols.push(s);
            };
            // Random bytes until the interval straddles the window's wrap point.
            while u128::from(enc.low) + u128::from(enc.range) <= WRAP {
                push(&mut enc, ((xorshift(&mut rng) % 256) as u32, 1, 8));
            }
            // Halve the interval keeping the wrap point inside: the shifted words are all ones.
            let mut max_ones = 0;
            for _ in 0..(70 + seed % 50) {
                let mid = u128::from(enc.low) + u128::from(enc.range >> 1);
                push(&mut enc, (u32::from(mid <= WRAP), 1, 1));
                max_ones = max_ones.max(enc.pending_ones);
                if u128::from(enc.low) + u128::from(enc.range) <= WRAP {
                    break; // carried already (mid == wrap)
                }
            }
            assert!(max_ones > 0, "seed {seed}: no run of all-ones words");
            // Move up until the carry happens.
            while u128::from(enc.low) + u128::from(enc.range) > WRAP {
                push(&mut enc, (1, 1, 1));
            }
            for _ in 0..50 {
                push(&mut enc, ((xorshift(&mut rng) % 256) as u32, 1, 8));
            }
            let words = enc.finish().unwrap().0;
            assert!(
                words.contains(&0),
                "seed {seed}: the carry left no zero word"
            );
            let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
            for (i, &(start, freq, p)) in symbols.iter().enumerate() {
                let t = dec.decode_target(p);
                assert!(t >= start && t < start + freq, "seed {seed} symbol {i}");
                dec.advance(start, freq, p).unwrap();
            }
        }
    }

    #[test]
    fn finish_past_the_end_carries() {
        // An interval that still straddles the wrap point finishes with the carry alone.
        let mut finished_by_carry = 0;
        for seed in 1..40u64 {
            let mut rng = seed * 0x2545_F491;
            let mut enc = RangeEncoder::new(Sink(Vec::new()));
            let mut symbols: Vec<(u32, u32, u32)> = Vec::new();
            for _ in 0..(xorshift(&mut rng) % 64) {
                let s = ((xorshift(&mut rng) % 256) as u32, 1, 8);
                enc.encode(s.0, s.1, s.2).unwrap();
                symbols.push(s);
            }
            if u128::from(enc.low) + u128::from(enc.range) > WRAP && enc.low != 0 {
                finished_by_carry += 1;
            }
            let words = enc.finish().unwrap().0;
            let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
            for &(start, freq, p) in &symbols {
                let t = dec.decode_target(p);
                assert!(t >= start && t < start + freq, "seed {seed}");
                dec.advance(start, freq, p).unwrap();
            }
        }
        assert!(finished_by_carry > 0);
    }
}
