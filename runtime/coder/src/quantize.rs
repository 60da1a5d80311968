//! The quantizer: model outputs to integer frequency tables (where floats stop).
//!
//! Determinism rule 1 of arca: a decoder recovers the input only if it builds exactly the
//! integer CDF the encoder built. Everything here after the defined float-to-fixed conversions
//! ([`logits_f32_to_fixed`], the first step of [`quantize_probs_f32`]) is integer arithmetic in
//! a fixed order, so it gives the same table on every CPU.
//!
//! * [`quantize_logits`]: fixed-point logits (natural-log units, `value / 2^frac_bits` nats) to
//!   frequencies summing to exactly `2^precision`, each at least 1: an integer softmax through
//!   an exp table ([`exp_neg_q30`]) computed at compile time with integer arithmetic.
//! * [`quantize_probs_f32`]: float probabilities, via `round(p * 2^24)`, to the same.
//! * [`quantize_weights`]: the shared integer normalization (also for count-based models).
//! * [`cumulative`], [`Cdf`]: frequency tables to cumulative tables for the coder;
//!   [`bit_probability`] splits a CDF into binary decisions.
//!
//! ```
//! use arca_coder::quantize::{cumulative, quantize_logits};
//!
//! // Logits in Q8 nats (frac_bits = 8): 2.0, 0.0, -3.5 nats.
//! let logits = [512, 0, -896];
//! let mut freqs = [0u32; 3];
//! quantize_logits(&logits, 8, 16, &mut freqs).unwrap();
//! assert_eq!(freqs.iter().sum::<u32>(), 1 << 16);
//! assert!(freqs[0] > freqs[1] && freqs[1] > freqs[2] && freqs[2] >= 1);
//!
//! let mut cdf = [0u32; 4];
//! cumulative(&freqs, &mut cdf).unwrap();
//! assert_eq!(cdf[3], 1 << 16);
//! ```
//!
//! # Normalization
//!
//! Given integer weights `w_i` (sum `S`), precision `p` and `n` symbols: every symbol first gets
//! 1; the remaining `R = 2^p - n` is shared as `floor(w_i * R / S)`; what floor rounding leaves
//! (less than `n`) goes to the most probable symbol: the largest logit for
//! [`quantize_logits`], else the largest weight; the lowest index among ties. If all weights are
//! 0, they count as equal.

use core::fmt;

use crate::range::MAX_PRECISION;

/// Largest `frac_bits` accepted for fixed-point logits.
pub const MAX_FRAC_BITS: u32 = 16;

/// Grid of the exp table: entry `k` is `exp(-k / 64)`.
pub const EXP_GRID_PER_NAT: u32 = 64;

/// Fixed-point one of the exp table (`exp(0) = 2^30`).
pub const EXP_ONE: u32 = 1 << 30;

/// Number of exp table entries: `exp(-k/64) * 2^30 >= 1` for every `k` below it (~20.8 nats).
pub const EXP_TABLE_LEN: usize = 1331;

/// Error of the quantizer and CDF helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuantizeError {
    /// Input and output slices have incompatible lengths.
    LengthMismatch,
    /// No symbols.
    Empty,
    /// More symbols than `2^precision` (each needs a frequency of at least 1).
    TooManySymbols,
    /// `precision` not in `1..=24`.
    InvalidPrecision,
    /// `frac_bits` above [`MAX_FRAC_BITS`].
    InvalidFracBits,
    /// A NaN or infinite float input.
    NotFinite,
    /// A negative probability.
    Negative,
    /// Frequencies that contain a 0 or don't sum to `2^precision`, or a sum that overflows.
    InvalidFrequencies,
    /// A fixed-capacity table is too small for the alphabet.
    CapacityExceeded,
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            QuantizeError::LengthMismatch => "quantizer: slice lengths don't match",
            QuantizeError::Empty => "quantizer: empty alphabet",
            QuantizeError::TooManySymbols => "quantizer: more symbols than 2^precision",
            QuantizeError::InvalidPrecision => "quantizer: precision not in 1..=24",
            QuantizeError::InvalidFracBits => "quantizer: frac_bits above 16",
            QuantizeError::NotFinite => "quantizer: NaN or infinite input",
            QuantizeError::Negative => "quantizer: negative probability",
            QuantizeError::InvalidFrequencies => {
                "quantizer: frequencies contain 0 or don't sum to 2^precision"
            }
            QuantizeError::CapacityExceeded => "quantizer: alphabet larger than the table capacity",
        };
        f.write_str(msg)
    }
}

impl core::error::Error for QuantizeError {}

/// `exp(-k/64) * 2^30`, rounded, at least 1, for `k < EXP_TABLE_LEN`; built by [`build_exp_table`].
static EXP_TABLE: [u32; EXP_TABLE_LEN] = build_exp_table();

/// Builds the exp table at compile time with integer arithmetic only (no libm): `exp(-1/64)` by
/// its Taylor series in Q62, then repeated Q62 multiplication, rounded to Q30.
const fn build_exp_table() -> [u32; EXP_TABLE_LEN] {
    const Q: u32 = 62;
    let one: u128 = 1 << Q;
    let x: u128 = one / EXP_GRID_PER_NAT as u128; // 1/64 in Q62
    // exp(-x) = sum (-x)^j / j!
    let mut pos: u128 = one;
    let mut neg: u128 = 0;
    let mut term: u128 = one;
    let mut j: u128 = 1;
    while j <= 20 {
        term = ((term * x) >> Q) / j;
        if j % 2 == 1 {
            neg += term;
        } else {
            pos += term;
        }
        j += 1;
    }
    let step = pos - neg;
    let mut table = [0u32; EXP_TABLE_LEN];
    let mut acc: u128 = one;
    let mut k = 0;
    while k < EXP_TABLE_LEN {
        let v = (acc + (1 << (Q - 31))) >> (Q - 30);
        table[k] = if v == 0 { 1 } else { v as u32 };
        acc = (acc * step) >> Q;
        k += 1;
    }
    table
}

/// `exp(-k / 64)` in Q30 (`2^30` = 1.0), from the compile-time table; `k` past the table gives
/// its last entry (1), never 0.
#[inline]
pub fn exp_neg_q30(k: usize) -> u32 {
    match EXP_TABLE.get(k) {
        Some(&v) => v,
        None => 1,
    }
}

#[inline]
fn check_shape(n_in: usize, n_out: usize, precision: u32) -> Result<(), QuantizeError> {
    if precision == 0 || precision > MAX_PRECISION {
        return Err(QuantizeError::InvalidPrecision);
    }
    if n_in != n_out {
        return Err(QuantizeError::LengthMismatch);
    }
    if n_in == 0 {
        return Err(QuantizeError::Empty);
    }
    if n_in as u64 > 1u64 << precision {
        return Err(QuantizeError::TooManySymbols);
    }
    Ok(())
}

/// Turns fixed-point logits into frequencies that sum to exactly `2^precision`, each `>= 1`.
///
/// `logits[i] / 2^frac_bits` is the logit of symbol `i` in nats (`frac_bits` in `0..=16`).
/// Integer only: `d_i = max - logits[i]` is rounded to the 1/64-nat grid (half up), mapped
/// through `exp(-d/64)` in Q30 ([`exp_neg_q30`], tails past 20.8 nats weigh 1), then
/// normalized as described in the [module docs](self).
///
/// Errors if `freqs.len() != logits.len()`, the alphabet is empty or larger than
/// `2^precision`, `precision` is not in `1..=24`, or `frac_bits > 16`.
pub fn quantize_logits(
    logits: &[i32],
    frac_bits: u32,
    precision: u32,
    freqs: &mut [u32],
) -> Result<(), QuantizeError> {
    check_shape(logits.len(), freqs.len(), precision)?;
    if frac_bits > MAX_FRAC_BITS {
        return Err(QuantizeError::InvalidFracBits);
    }
    // The most probable symbol: the largest logit, lowest index among ties (not the largest
    // weight: neighbouring logits can share a table entry, and the leftover must go to the top).
    let (best, max) = logits
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, i32::MIN),
            |acc, (i, l)| if l > acc.1 { (i, l) } else { acc },
        );
    let half = (1u64 << frac_bits) >> 1;
    for (f, &l) in freqs.iter_mut().zip(logits) {
        // 0 <= d < 2^32, so d * 64 + half < 2^39: no overflow.
        let d = (i64::from(max) - i64::from(l)) as u64;
        let k = ((d * u64::from(EXP_GRID_PER_NAT) + half) >> frac_bits).min(EXP_TABLE_LEN as u64);
        *f = exp_neg_q30(k as usize);
    }
    normalize(freqs, precision, Some(best))
}

/// Turns float probabilities into frequencies that sum to exactly `2^precision`, each `>= 1`.
///
/// The defined float-to-fixed step: each `p` must be finite and non-negative (`-0.0` is 0);
/// values above 1 count as 1; the weight is `floor(p * 2^24 + 1/2)` computed in `f64` (exact
/// for every `f32` in range). Then the integer normalization of the [module docs](self). The
/// probabilities need not sum to 1.
pub fn quantize_probs_f32(
    probs: &[f32],
    precision: u32,
    freqs: &mut [u32],
) -> Result<(), QuantizeError> {
    check_shape(probs.len(), freqs.len(), precision)?;
    for (f, &p) in freqs.iter_mut().zip(probs) {
        if !p.is_finite() {
            return Err(QuantizeError::NotFinite);
        }
        if p < 0.0 {
            return Err(QuantizeError::Negative);
        }
        let p = if p > 1.0 { 1.0 } else { f64::from(p) };
        *f = (p * f64::from(1u32 << 24) + 0.5) as u32;
    }
    normalize(freqs, precision, None)
}

/// Normalizes integer weights (in `freqs`, any `u32`, 0 allowed) in place into frequencies
/// that sum to exactly `2^precision`, each `>= 1`, as described in the [module docs](self).
///
/// For count-based models (order-n contexts, match models) that already have integer weights.
pub fn quantize_weights(freqs: &mut [u32], precision: u32) -> Result<(), QuantizeError> {
    check_shape(freqs.len(), freqs.len(), precision)?;
    normalize(freqs, precision, None)
}

/// The shared integer normalization; the shape has been checked. The leftover goes to `best`,
/// or else to the largest weight (lowest index among ties).
fn normalize(freqs: &mut [u32], precision: u32, best: Option<usize>) -> Result<(), QuantizeError> {
    let n = freqs.len() as u64;
    let total = 1u64 << precision;
    let spare = total - n; // check_shape: n <= total
    let mut sum: u64 = 0; // n <= 2^24 weights < 2^32: no overflow
    let mut best_weight = 0usize;
    let mut best_w = 0u32;
    for (i, &w) in freqs.iter().enumerate() {
        sum += u64::from(w);
        if w > best_w {
            best_w = w;
            best_weight = i;
        }
    }
    if sum == 0 {
        // All weights 0: they count as equal.
        freqs.fill(1);
        sum = n;
    }
    let mut assigned = n;
    for f in freqs.iter_mut() {
        // w < 2^32 and spare < 2^24: the product fits in u64; sum >= 1.
        let extra = u64::from(*f) * spare / sum;
        *f = 1 + extra as u32;
        assigned += extra;
    }
    let leftover = total - assigned; // sum of floors <= spare
    if let Some(f) = freqs.get_mut(best.unwrap_or(best_weight)) {
        *f += leftover as u32;
    }
    Ok(())
}

/// Converts float logits (nats) to fixed point: `round(l * 2^frac_bits)`, half away from zero,
/// saturated to the `i32` range. NaN or infinite inputs are an error.
pub fn logits_f32_to_fixed(
    logits: &[f32],
    frac_bits: u32,
    out: &mut [i32],
) -> Result<(), QuantizeError> {
    if frac_bits > MAX_FRAC_BITS {
        return Err(QuantizeError::InvalidFracBits);
    }
    if logits.len() != out.len() {
        return Err(QuantizeError::LengthMismatch);
    }
    let scale = f64::from(1u32 << frac_bits);
    for (o, &l) in out.iter_mut().zip(logits) {
        if !l.is_finite() {
            return Err(QuantizeError::NotFinite);
        }
        let x = f64::from(l) * scale; // exact: a power-of-two scaling
        let mag = (x.abs() + 0.5) as i64; // truncation of |x| + 1/2: round half up on |x|
        let v = if x < 0.0 { -mag } else { mag };
        *o = v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    }
    Ok(())
}

/// Writes the cumulative table of `freqs` into `cdf`: `cdf[0] = 0`,
/// `cdf[i + 1] = cdf[i] + freqs[i]`. Requires `cdf.len() == freqs.len() + 1` and a total
/// that fits in `u32`.
pub fn cumulative(freqs: &[u32], cdf: &mut [u32]) -> Result<(), QuantizeError> {
    if cdf.len() != freqs.len().wrapping_add(1) || freqs.len() == usize::MAX {
        return Err(QuantizeError::LengthMismatch);
    }
    let mut acc = 0u32;
    let mut out = cdf.iter_mut();
    if let Some(first) = out.next() {
        *first = 0;
    }
    for (c, &f) in out.zip(freqs) {
        acc = acc
            .checked_add(f)
            .ok_or(QuantizeError::InvalidFrequencies)?;
        *c = acc;
    }
    Ok(())
}

/// Bits kept of a cumulative weight in [`quantize_cumulative`], so `weight * 2^24` fits in `u64`.
pub const CUMULATIVE_BITS: u32 = 40;

/// The start of symbol `x`'s interval, out of `2^precision`, straight from exact cumulative
/// weights: `below` = the weight of the symbols before `x`, `total` = the weight of all `n`:
///
/// ```text
/// start(x) = x + floor(below' * (2^precision - n) / total')
/// ```
///
/// where `below'` and `total'` are both shifted right until `total'` has at most
/// [`CUMULATIVE_BITS`] bits. Every symbol gets at least 1 (`start` grows by at least 1 per
/// symbol), `start(0) = 0` and `start(n) = 2^precision` (with `below = total`), and the rest is
/// shared in proportion to the weights. Integer only.
///
/// Unlike [`quantize_weights`], which needs every symbol's weight to build a table, this gives
/// one symbol's interval from two cumulative weights, so a model that can compute cumulative
/// weights directly (a mixture of CDFs, as the circuit coder's pixels are) codes a symbol of a
/// large alphabet in O(1) weights and decodes it by bisection over `start`.
///
/// Requires `below <= total`, `total >= 1`, `x <= n <= 2^precision` and `precision` in
/// `1..=24`; outside that the result is clamped into `0..=2^precision` (still deterministic).
///
/// ```
/// use arca_coder::quantize::quantize_cumulative;
/// // Three symbols with weights 1, 2, 5 (cumulative 0, 1, 3, 8), 16-bit precision.
/// let starts: Vec<u32> = [(0, 0), (1, 1), (3, 2), (8, 3)]
///     .iter()
///     .map(|&(below, x)| quantize_cumulative(below, 8, x, 3, 16))
///     .collect();
/// assert_eq!(starts, [0, 8192, 24576, 65536]);
/// ```
#[inline]
pub fn quantize_cumulative(below: u64, total: u64, x: u32, n: u32, precision: u32) -> u32 {
    let precision = precision.clamp(1, MAX_PRECISION);
    let one = 1u64 << precision;
    let n = u64::from(n).min(one);
    let spare = one - n;
    let shift = (64 - total.leading_zeros()).saturating_sub(CUMULATIVE_BITS);
    let total = (total >> shift).max(1);
    let below = (below >> shift).min(total);
    // below < 2^40 and spare < 2^24: the product fits in u64.
    let start = u64::from(x).min(n) + below * spare / total;
    start.min(one) as u32
}

/// P(symbol in `[mid, hi)` | symbol in `[lo, hi)`) in units of 2^-16, rounded to nearest and
/// clamped to `1..=65535`: the probability of a 1 when a symbol of a CDF is coded as binary
/// decisions (e.g. a byte as 8 bits, MSB first: `lo..hi` halves at each level).
///
/// Integer only. Invalid indices (not `lo < mid < hi < cdf.len()`) or an empty `[lo, hi)`
/// give 32768.
pub fn bit_probability(cdf: &[u32], lo: usize, mid: usize, hi: usize) -> u16 {
    if !(lo < mid && mid < hi) {
        return 1 << 15;
    }
    let (Some(&a), Some(&b), Some(&c)) = (cdf.get(lo), cdf.get(mid), cdf.get(hi)) else {
        return 1 << 15;
    };
    let (Some(den), Some(num)) = (c.checked_sub(a), c.checked_sub(b)) else {
        return 1 << 15;
    };
    if den == 0 || num > den {
        return 1 << 15;
    }
    let den = u64::from(den);
    let p = ((u64::from(num) << 16) + den / 2) / den;
    p.clamp(1, 65535) as u16
}

/// A cumulative table for up to `N` symbols in a fixed buffer (no allocation).
///
/// Symbol `s` occupies `[start(s), end(s))` of `[0, 2^precision)`; every symbol has a frequency
/// of at least 1 and the total is exactly `2^precision` (checked on construction).
///
/// ```
/// use arca_coder::{quantize::Cdf, RangeDecoder, RangeEncoder, WordCursor};
///
/// let cdf = Cdf::<4>::from_logits(&[0, 100, -100, 50], 6, 12).unwrap();
/// let mut enc = RangeEncoder::new(heapless::Vec::<u32, 8>::new());
/// cdf.encode(&mut enc, 3).unwrap();
/// let words = enc.finish().unwrap();
/// let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
/// assert_eq!(cdf.decode(&mut dec).unwrap(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdf<const N: usize> {
    /// `ends[s]` = end of symbol `s`'s interval; the last one is `2^precision`.
    ends: heapless::Vec<u32, N>,
    precision: u32,
}

impl<const N: usize> Cdf<N> {
    /// From frequencies that are all `>= 1` and sum to exactly `2^precision`.
    pub fn from_freqs(freqs: &[u32], precision: u32) -> Result<Self, QuantizeError> {
        check_shape(freqs.len(), freqs.len(), precision)?;
        if freqs.len() > N {
            return Err(QuantizeError::CapacityExceeded);
        }
        let mut ends = heapless::Vec::new();
        let mut acc = 0u32;
        for &f in freqs {
            if f == 0 {
                return Err(QuantizeError::InvalidFrequencies);
            }
            acc = acc
                .checked_add(f)
                .ok_or(QuantizeError::InvalidFrequencies)?;
            ends.push(acc)
                .map_err(|_| QuantizeError::CapacityExceeded)?;
        }
        if u64::from(acc) != 1u64 << precision {
            return Err(QuantizeError::InvalidFrequencies);
        }
        Ok(Cdf { ends, precision })
    }

    /// From fixed-point logits via [`quantize_logits`].
    pub fn from_logits(
        logits: &[i32],
        frac_bits: u32,
        precision: u32,
    ) -> Result<Self, QuantizeError> {
        let mut buf = [0u32; N];
        let freqs = buf
            .get_mut(..logits.len())
            .ok_or(QuantizeError::CapacityExceeded)?;
        quantize_logits(logits, frac_bits, precision, freqs)?;
        Self::from_freqs(freqs, precision)
    }

    /// From float probabilities via [`quantize_probs_f32`].
    pub fn from_probs_f32(probs: &[f32], precision: u32) -> Result<Self, QuantizeError> {
        let mut buf = [0u32; N];
        let freqs = buf
            .get_mut(..probs.len())
            .ok_or(QuantizeError::CapacityExceeded)?;
        quantize_probs_f32(probs, precision, freqs)?;
        Self::from_freqs(freqs, precision)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Always false (a table has at least one symbol).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The precision: the total is `2^precision`.
    pub fn precision(&self) -> u32 {
        self.precision
    }

    /// `(start, freq)` of `symbol`, or `None` if it is out of range.
    pub fn interval(&self, symbol: usize) -> Option<(u32, u32)> {
        let end = *self.ends.get(symbol)?;
        let start = match symbol.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        Some((start, end - start))
    }

    /// The symbol whose interval contains `target` (`None` if `target >= 2^precision`).
    pub fn find(&self, target: u32) -> Option<usize> {
        let s = self.ends.partition_point(|&e| e <= target);
        (s < self.ends.len()).then_some(s)
    }

    /// Encodes `symbol` with this table.
    pub fn encode<W: crate::WriteWords>(
        &self,
        enc: &mut crate::RangeEncoder<W>,
        symbol: usize,
    ) -> Result<(), crate::EncodeError<W::Error>> {
        let (start, freq) = self
            .interval(symbol)
            .ok_or(crate::EncodeError::InvalidSymbol)?;
        enc.encode(start, freq, self.precision)
    }

    /// Decodes a symbol with this table.
    pub fn decode<R: crate::ReadWords>(
        &self,
        dec: &mut crate::RangeDecoder<R>,
    ) -> Result<usize, crate::DecodeError<R::Error>> {
        let target = dec.decode_target(self.precision);
        let symbol = self.find(target).ok_or(crate::DecodeError::InvalidCdf)?;
        let (start, freq) = self
            .interval(symbol)
            .ok_or(crate::DecodeError::InvalidCdf)?;
        dec.advance(start, freq, self.precision)?;
        Ok(symbol)
    }
}
