//! The exact interval of the window coder: `low` as a fixed-point number of a few hundred bits,
//! `range` as a 64-bit mantissa, and the shortest code inside it.

use super::config::*;

/// Adds `v << shift` to the little-endian limbs `x`; false if it overflows the top limb.
pub(super) fn add_shifted(x: &mut [u64], v: u128, shift: u32) -> bool {
    let li = (shift / 64) as usize;
    let bo = shift % 64;
    let (lo, hi) = (v as u64, (v >> 64) as u64);
    let parts = if bo == 0 {
        [lo, hi, 0]
    } else {
        [lo << bo, (lo >> (64 - bo)) | (hi << bo), hi >> (64 - bo)]
    };
    let mut carry = 0u64;
    let mut i = li;
    for p in parts {
        if i >= x.len() {
            return p == 0 && carry == 0;
        }
        let (s1, c1) = x[i].overflowing_add(p);
        let (s2, c2) = s1.overflowing_add(carry);
        x[i] = s2;
        carry = u64::from(c1) + u64::from(c2);
        i += 1;
    }
    while carry != 0 {
        if i >= x.len() {
            return false;
        }
        let (s, c) = x[i].overflowing_add(carry);
        x[i] = s;
        carry = u64::from(c);
        i += 1;
    }
    true
}

/// `x -= y`; false if `y > x` (then `x` is garbage).
pub(super) fn sub_in_place(x: &mut [u64], y: &[u64]) -> bool {
    let mut borrow = 0u64;
    for (a, &b) in x.iter_mut().zip(y) {
        let (d1, b1) = a.overflowing_sub(b);
        let (d2, b2) = d1.overflowing_sub(borrow);
        *a = d2;
        borrow = u64::from(b1) + u64::from(b2);
    }
    borrow == 0
}

/// Bits `at..at + 64` of `x` (zeros above the top), and whether any bit above them is set.
pub(super) fn bits_at(x: &[u64], at: u32) -> (u64, bool) {
    let li = (at / 64) as usize;
    let bo = at % 64;
    let get = |i: usize| x.get(i).copied().unwrap_or(0);
    let rest = |from: usize| x.iter().skip(from).any(|&w| w != 0);
    if bo == 0 {
        (get(li), rest(li + 1))
    } else {
        let v = (get(li) >> bo) | (get(li + 1) << (64 - bo));
        (v, get(li + 1) >> bo != 0 || rest(li + 2))
    }
}

/// The coder's exact interval `[low, low + range * 2^-k)`, `low` with `64 * limbs` fraction bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Interval {
    pub(crate) low: Vec<u64>,
    pub(crate) range: u64,
    pub(crate) k: u32,
}

impl Interval {
    pub(crate) fn new(limbs: usize) -> Self {
        Interval {
            low: vec![0; limbs],
            range: 1 << 63,
            k: 63,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.low.fill(0);
        self.range = 1 << 63;
        self.k = 63;
    }

    pub(crate) fn frac_bits(&self) -> u32 {
        self.low.len() as u32 * 64
    }

    /// Bits spent, rounded up: the interval is at least `2^-used` wide.
    pub(crate) fn used(&self) -> u32 {
        self.k - self.range.ilog2()
    }

    /// Narrows to the sub-interval `[cum, cum + freq)` of `2^precision`.
    pub(crate) fn narrow(&mut self, cum: u32, freq: u32, precision: u32) -> Result<(), EiwError> {
        let shift = self
            .frac_bits()
            .checked_sub(self.k)
            .ok_or(EiwError::Internal("interval narrower than its fixed point"))?;
        let r = self.range >> precision;
        if !add_shifted(&mut self.low, u128::from(r) * u128::from(cum), shift) {
            return Err(EiwError::Internal("interval left [0, 1)"));
        }
        self.range = r * u64::from(freq);
        while self.range < 1 << 32 {
            self.range <<= 8;
            self.k += 8;
        }
        Ok(())
    }

    /// Writes the shortest binary fraction in the interval into `point` (a reused buffer) and
    /// returns its length in bits.
    pub(crate) fn shortest(&self, point: &mut Vec<u64>) -> u32 {
        let f = self.frac_bits();
        // point = low + width - 1: the largest point of the interval on the fixed-point grid.
        point.clone_from(&self.low);
        add_shifted(point, u128::from(self.range), f - self.k);
        for w in point.iter_mut() {
            let (v, borrow) = w.overflowing_sub(1);
            *w = v;
            if !borrow {
                break;
            }
        }
        // d: the highest bit where low and that point differ (they do: the range is >= 2^32).
        let d = self
            .low
            .iter()
            .zip(point.iter())
            .enumerate()
            .rev()
            .find(|(_, (a, b))| a != b)
            .map_or(0, |(i, (a, b))| {
                i as u32 * 64 + 63 - (a ^ b).leading_zeros()
            });
        let (limb, bit) = ((d / 64) as usize, d % 64);
        // If low has zeros in bits 0..=d it is the shortest; otherwise the top point with bits
        // below d cleared is (it has a 1 at d, low a 0, and they agree above).
        let below_and_at = if bit == 63 {
            u64::MAX
        } else {
            (1u64 << (bit + 1)) - 1
        };
        let low_short =
            self.low[..limb].iter().all(|&w| w == 0) && self.low[limb] & below_and_at == 0;
        if low_short {
            point.copy_from_slice(&self.low);
        } else {
            point[..limb].fill(0);
            point[limb] &= !((1u64 << bit) - 1);
        }
        let tz = point
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map_or(f, |(i, w)| i as u32 * 64 + w.trailing_zeros());
        f - tz
    }
}

/// Number of 64-bit limbs for windows of `bits`: room for `W` bits, the 64-bit range and the
/// bits a decoder may spend on a damaged window before it gives up.
pub(super) fn limbs_for(bits: u32) -> usize {
    (bits as usize + 192).div_ceil(64)
}

/// Writes the top `bits` of a fixed-point fraction as `bits / 8` bytes, most significant first.
pub(super) fn write_window(point: &[u64], bits: u32, out: &mut Vec<u8>) {
    let f = point.len() as u32 * 64;
    for i in 0..bits / 8 {
        let (v, _) = bits_at(point, f - 8 * (i + 1));
        out.push(v as u8);
    }
}

/// Reads a window's bytes as the fixed-point point they name (zeros after the `W` bits).
pub(super) fn read_window(bytes: &[u8], limbs: usize) -> Vec<u64> {
    let mut x = vec![0u64; limbs];
    let f = limbs as u32 * 64;
    for (i, &b) in bytes.iter().enumerate() {
        let at = f - 8 * (i as u32 + 1);
        add_shifted(&mut x, u128::from(b), at);
    }
    x
}
