//! Equal-Info Windows: text cut into windows that each compress to exactly `W` bits.
//!
//! From "Training LLMs over Neurally Compressed Text" (Lester et al., 2024): bytes are added to a
//! window while its arithmetic code still fits in `W` bits, the code is padded to exactly `W`
//! bits, and both the coder and the network's context are reset at every window. Each window is
//! then one token (an integer below `2^W`) for a second language model, and any window decodes
//! on its own.
//!
//! # What is coded
//!
//! The network alone (no adaptive context models: they would learn nothing in a few dozen
//! bytes) gives a 256-way distribution for each byte, quantized by `arca-coder` to 16 bits. A
//! window must say where it ends, since its `W` bits are all the decoder gets; the paper leaves
//! this open. Here a binary *stop flag* is coded before every byte after the first, with a
//! probability both sides compute from what they share: the network's distribution for the next
//! byte and the bits left in the window. It is the mass of the bytes that would no longer fit
//! (at least `2^-12`), so the flag costs almost nothing while the window has room and is cheap
//! when it is nearly full, where the stop happens. The first byte of a window is coded at
//! `min(16, W - 4)` bits of precision and the stop flag after it is bounded, which proves that
//! every window holds at least one byte: coding never gets stuck, whatever the model says.
//!
//! # The window coder
//!
//! Written here rather than reused from `arca-coder` because a window needs what a streaming
//! range coder does not give: the exact interval after every byte, to know whether a byte still
//! fits, and the shortest code inside it. The interval `[low, low + range * 2^-k)` is kept
//! exactly (`low` as a fixed-point number of a few hundred bits, `range` as a 64-bit mantissa);
//! a window's code is the shortest binary fraction in its final interval, which takes at most
//! `ceil(-log2 width)` bits, zero-padded to `W`. The decoder reads the `W` bits as that point,
//! narrows the same intervals with the same integer arithmetic, and checks at the stop flag that
//! the encoder would have written exactly these bits: a damaged window is an error, not text.
//!
//! # Batching
//!
//! Windows are independent, and so are *segments* (the input is cut every
//! [`DEFAULT_SEGMENT`] bytes, which also ends a window). Encoding steps every segment in lock
//! step and decoding steps every window, so each network call evaluates one row per active lane:
//! one batched matrix product instead of many vector products, on every core. The model's
//! integer logits do not depend on batch shape, so the stream is the same for any batch size or
//! thread count (a test checks it).
//!
//! ```no_run
//! # fn demo(model: &dyn arca_runtime::codec::ByteModel) -> Result<(), arca_runtime::eiw::EiwError> {
//! use arca_runtime::eiw::{Tokenizer, Schedule};
//! let tok = Tokenizer::new(model, 16)?;
//! let windows = tok.encode(b"Alice was beginning to get very tired", &Schedule::default())?;
//! let ids: Vec<u64> = windows.ids().collect(); // one token per 16-bit window
//! assert_eq!(tok.decode(&windows, &Schedule::default())?, b"Alice was beginning to get very tired");
//! # let _ = ids; Ok(()) }
//! ```

use std::collections::HashMap;

use rayon::prelude::*;
use thiserror::Error;

use crate::codec::{ByteModel, ModelError};

/// Smallest window: a byte must fit with room for its stop flag.
pub const MIN_BITS: u32 = 16;
/// Largest window.
pub const MAX_BITS: u32 = 4096;
/// Bytes per segment: windows never cross a segment boundary, and segments code in parallel.
pub const DEFAULT_SEGMENT: u32 = 4096;
/// Revision of the window rules (precisions, stop-flag rule); recorded in `.arca` headers.
pub const REVISION: u16 = 1;

/// Precision of the byte distribution after a window's first byte.
const PRECISION: u32 = 16;
/// Precision of the stop flag.
const FLAG_PRECISION: u32 = 12;
/// Rows per network call when the caller does not say.
const DEFAULT_BATCH: usize = 256;
/// A decoder that has spent this many bits past `W` is reading a damaged window.
const DECODE_SLACK: u32 = 32;

/// Errors of window coding.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EiwError {
    /// `W` is not a multiple of 8 in `16..=4096`.
    #[error("window size must be a multiple of 8 from {MIN_BITS} to {MAX_BITS} bits, not {0}")]
    Bits(u32),
    /// The token data is not a whole number of windows.
    #[error("{len} bytes are not a whole number of {bits}-bit windows")]
    Ragged {
        /// Length of the data.
        len: usize,
        /// Window size.
        bits: u32,
    },
    /// A window does not decode to a valid code.
    #[error("window {index} is corrupted (it is not a code this model writes)")]
    Corrupt {
        /// Index of the window in the decoded sequence.
        index: usize,
    },
    /// The model failed.
    #[error("model error: {0}")]
    Model(ModelError),
    /// The network's output is not a distribution.
    #[error("the network's logits do not form a distribution: {0}")]
    Logits(String),
    /// A rule of the coder was broken (a bug, never bad input).
    #[error("internal error in the window coder: {0}")]
    Internal(&'static str),
    /// Threads could not be started.
    #[error("cannot start {0} threads")]
    Threads(usize),
}

/// How coding is spread over the machine. It changes speed, never the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Lanes stepped together in one network call (at least 1).
    pub batch: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            threads: 0,
            batch: DEFAULT_BATCH,
        }
    }
}

impl Schedule {
    /// One lane at a time on one thread: the reference that batched coding must equal.
    pub fn one_at_a_time() -> Self {
        Schedule {
            threads: 1,
            batch: 1,
        }
    }
}

/// Checks a window size.
pub fn check_bits(bits: u32) -> Result<(), EiwError> {
    if (MIN_BITS..=MAX_BITS).contains(&bits) && bits.is_multiple_of(8) {
        Ok(())
    } else {
        Err(EiwError::Bits(bits))
    }
}

// ----------------------------------------------------------------------------- exact interval

/// Adds `v << shift` to the little-endian limbs `x`; false if it overflows the top limb.
fn add_shifted(x: &mut [u64], v: u128, shift: u32) -> bool {
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
fn sub_in_place(x: &mut [u64], y: &[u64]) -> bool {
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
fn bits_at(x: &[u64], at: u32) -> (u64, bool) {
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
struct Interval {
    low: Vec<u64>,
    range: u64,
    k: u32,
}

impl Interval {
    fn new(limbs: usize) -> Self {
        Interval {
            low: vec![0; limbs],
            range: 1 << 63,
            k: 63,
        }
    }

    fn reset(&mut self) {
        self.low.fill(0);
        self.range = 1 << 63;
        self.k = 63;
    }

    fn frac_bits(&self) -> u32 {
        self.low.len() as u32 * 64
    }

    /// Bits spent, rounded up: the interval is at least `2^-used` wide.
    fn used(&self) -> u32 {
        self.k - self.range.ilog2()
    }

    /// Narrows to the sub-interval `[cum, cum + freq)` of `2^precision`.
    fn narrow(&mut self, cum: u32, freq: u32, precision: u32) -> Result<(), EiwError> {
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
    fn shortest(&self, point: &mut Vec<u64>) -> u32 {
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
fn limbs_for(bits: u32) -> usize {
    (bits as usize + 192).div_ceil(64)
}

/// Writes the top `bits` of a fixed-point fraction as `bits / 8` bytes, most significant first.
fn write_window(point: &[u64], bits: u32, out: &mut Vec<u8>) {
    let f = point.len() as u32 * 64;
    for i in 0..bits / 8 {
        let (v, _) = bits_at(point, f - 8 * (i + 1));
        out.push(v as u8);
    }
}

/// Reads a window's bytes as the fixed-point point they name (zeros after the `W` bits).
fn read_window(bytes: &[u8], limbs: usize) -> Vec<u64> {
    let mut x = vec![0u64; limbs];
    let f = limbs as u32 * 64;
    for (i, &b) in bytes.iter().enumerate() {
        let at = f - 8 * (i as u32 + 1);
        add_shifted(&mut x, u128::from(b), at);
    }
    x
}

// ------------------------------------------------------------------------- distributions

/// The window rules shared by both directions.
#[derive(Debug, Clone, Copy)]
struct Rules {
    bits: u32,
    /// Precision of a window's first byte.
    first_precision: u32,
    frac_bits: u32,
}

impl Rules {
    fn new(bits: u32, frac_bits: u32) -> Result<Self, EiwError> {
        check_bits(bits)?;
        Ok(Rules {
            bits,
            first_precision: (bits - 4).min(PRECISION),
            frac_bits,
        })
    }

    /// The cumulative table of a byte distribution from one row of logits.
    fn cdf(&self, logits: &[i32], precision: u32, cdf: &mut [u32; 257]) -> Result<(), EiwError> {
        let mut freqs = [0u32; 256];
        arca_coder::quantize_logits(logits, self.frac_bits, precision, &mut freqs)
            .map_err(|e| EiwError::Logits(format!("{e:?}")))?;
        arca_coder::cumulative(&freqs, cdf).map_err(|e| EiwError::Logits(format!("{e:?}")))
    }

    /// Frequency (of `2^12`) of the stop flag before the byte whose distribution is `cdf`
    /// (16-bit), when the window has spent `used` bits: the mass of the bytes that would not
    /// fit, floored so that a stop always fits while 3 bits are left.
    fn stop_freq(&self, cdf: &[u32; 257], used: u32) -> u32 {
        let left = i64::from(self.bits) - i64::from(used);
        let mut mass = 0u32;
        for w in cdf.windows(2) {
            let f = w[1] - w[0];
            // A byte of frequency f costs at most 16 - floor(log2 f) bits; it fits (with a
            // cheap stop after it) if that leaves a bit.
            if i64::from(PRECISION - f.ilog2()) >= left {
                mass += f;
            }
        }
        let floor = if left >= 14 {
            1
        } else {
            1u32 << (14 - left.max(3)).min(11)
        };
        (mass >> (PRECISION - FLAG_PRECISION)).clamp(floor, (1 << FLAG_PRECISION) - 1)
    }
}

/// Narrows by the stop flag (`stop`) or the continue flag.
fn code_flag(iv: &mut Interval, stop: bool, fs: u32) -> Result<(), EiwError> {
    if stop {
        iv.narrow(0, fs, FLAG_PRECISION)
    } else {
        iv.narrow(fs, (1 << FLAG_PRECISION) - fs, FLAG_PRECISION)
    }
}

/// The symbol whose sub-interval of `[0, 2^precision)` holds the point, if any.
fn locate(iv: &Interval, point: &[u64], scratch: &mut Vec<u64>, precision: u32) -> Option<u64> {
    scratch.clear();
    scratch.extend_from_slice(point);
    if !sub_in_place(scratch, &iv.low) {
        return None;
    }
    let (offset, above) = bits_at(scratch, iv.frac_bits() - iv.k);
    if above || offset >= iv.range {
        return None;
    }
    let target = offset / (iv.range >> precision);
    (target < 1 << precision).then_some(target)
}

// ------------------------------------------------------------------------------- lanes

/// One independent stream of network calls: a segment being encoded, or windows being decoded.
trait Lane: Send {
    /// The context of the lane's next position (`out.len()` values, oldest first), or false
    /// when the lane is finished.
    fn context(&self, pad: u16, out: &mut [u16]) -> bool;
    /// Consumes the network's logits for that position.
    fn advance(&mut self, logits: &[i32]) -> Result<(), EiwError>;
}

/// Writes the last `out.len()` bytes of `window` (PAD before its start) into `out`.
fn window_context(window: &[u8], pad: u16, out: &mut [u16]) {
    let n = out.len();
    let have = window.len().min(n);
    out[..n - have].fill(pad);
    for (slot, &b) in out[n - have..]
        .iter_mut()
        .zip(&window[window.len() - have..])
    {
        *slot = u16::from(b);
    }
}

/// Contexts with at most this many bytes (the first positions of a window, the rest PAD) are
/// remembered: every window starts with the same all-PAD context, and its first few bytes
/// repeat across windows, so at W = 16 most network rows are these.
const CACHE_DEPTH: usize = 2;
/// Most contexts remembered per thread (1 KiB of logits each).
const CACHE_ENTRIES: usize = 1 << 13;

/// Steps `lanes`, `batch` at a time, one network row per active lane per call. Rows for short
/// contexts seen before come from a cache instead (the logits are a pure function of the
/// context, so this changes nothing but speed).
fn lockstep<L: Lane>(model: &dyn ByteModel, lanes: &mut [L], batch: usize) -> Result<(), EiwError> {
    let n = model.context_len();
    let pad = model.pad_id();
    let mut cache: HashMap<Vec<u16>, Box<[i32]>> = HashMap::new();
    let mut contexts = Vec::new();
    let mut logits = Vec::new();
    let mut misses = Vec::new();
    let short = |ctx: &[u16]| ctx[..n - CACHE_DEPTH.min(n)].iter().all(|&c| c == pad);
    for group in lanes.chunks_mut(batch.max(1)) {
        loop {
            misses.clear();
            let mut served = false;
            contexts.resize(group.len() * n, 0);
            for (i, lane) in group.iter_mut().enumerate() {
                let at = misses.len() * n;
                let row = &mut contexts[at..at + n];
                if !lane.context(pad, row) {
                    continue;
                }
                if short(row)
                    && let Some(out) = cache.get(&row[..])
                {
                    lane.advance(out)?;
                    served = true;
                } else {
                    misses.push(i);
                }
            }
            if misses.is_empty() {
                if served {
                    continue;
                }
                break;
            }
            contexts.truncate(misses.len() * n);
            model
                .logits(&contexts, misses.len(), &mut logits)
                .map_err(EiwError::Model)?;
            for (row, &i) in misses.iter().enumerate() {
                let out = &logits[row * 256..(row + 1) * 256];
                let ctx = &contexts[row * n..(row + 1) * n];
                if short(ctx) && cache.len() < CACHE_ENTRIES {
                    cache.insert(ctx.to_vec(), out.into());
                }
                group[i].advance(out)?;
            }
        }
    }
    Ok(())
}

/// Runs every lane to its end, spread over the schedule's threads.
fn run<L: Lane>(
    model: &dyn ByteModel,
    lanes: &mut [L],
    schedule: &Schedule,
) -> Result<(), EiwError> {
    let threads = if schedule.threads == 0 {
        rayon::current_num_threads()
    } else {
        schedule.threads
    };
    if threads <= 1 || lanes.len() <= 1 {
        return lockstep(model, lanes, schedule.batch);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|_| EiwError::Threads(threads))?;
    let per = lanes.len().div_ceil(threads);
    pool.install(|| {
        lanes
            .par_chunks_mut(per)
            .try_for_each(|group| lockstep(model, group, schedule.batch))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The next call gives the distribution of a window's first byte.
    First,
    /// The next call gives the distribution of the byte after the window's current end.
    Next,
    Done,
}

/// Encodes one segment into windows.
struct EncodeLane<'a> {
    rules: Rules,
    seg: &'a [u8],
    /// Start of the current window.
    start: usize,
    /// End of the bytes coded into `trial`.
    end: usize,
    phase: Phase,
    /// The window with its bytes `start..end`; not yet known to fit with its stop.
    trial: Interval,
    /// `trial` closed with its stop (scratch for the fit test).
    stopped: Interval,
    /// The window one byte shorter than `trial`, closed with its stop, known to fit; `None`
    /// when `trial` holds only the window's first byte.
    closed: Option<Interval>,
    /// Scratch for the shortest code.
    point: Vec<u64>,
    cdf: [u32; 257],
    windows: Vec<u8>,
}

impl<'a> EncodeLane<'a> {
    fn new(rules: Rules, seg: &'a [u8]) -> Self {
        EncodeLane {
            rules,
            seg,
            start: 0,
            end: 0,
            phase: if seg.is_empty() {
                Phase::Done
            } else {
                Phase::First
            },
            trial: Interval::new(limbs_for(rules.bits)),
            stopped: Interval::new(limbs_for(rules.bits)),
            closed: None,
            point: Vec::new(),
            cdf: [0; 257],
            windows: Vec::new(),
        }
    }
}

/// Appends the `bits`-bit code of the closed window `iv` to `out`.
fn emit(iv: &Interval, bits: u32, point: &mut Vec<u64>, out: &mut Vec<u8>) -> Result<(), EiwError> {
    if iv.shortest(point) > bits {
        return Err(EiwError::Internal("emitted window does not fit"));
    }
    write_window(point, bits, out);
    Ok(())
}

impl Lane for EncodeLane<'_> {
    fn context(&self, pad: u16, out: &mut [u16]) -> bool {
        match self.phase {
            Phase::First => window_context(&[], pad, out),
            Phase::Next => window_context(&self.seg[self.start..self.end], pad, out),
            Phase::Done => return false,
        }
        true
    }

    fn advance(&mut self, logits: &[i32]) -> Result<(), EiwError> {
        match self.phase {
            Phase::First => {
                let p = self.rules.first_precision;
                self.rules.cdf(logits, p, &mut self.cdf)?;
                let b = usize::from(self.seg[self.start]);
                self.trial.reset();
                self.trial
                    .narrow(self.cdf[b], self.cdf[b + 1] - self.cdf[b], p)?;
                self.end = self.start + 1;
                self.closed = None;
                self.phase = Phase::Next;
            }
            Phase::Next => {
                self.rules.cdf(logits, PRECISION, &mut self.cdf)?;
                let fs = self.rules.stop_freq(&self.cdf, self.trial.used());
                self.stopped.clone_from(&self.trial);
                code_flag(&mut self.stopped, true, fs)?;
                if self.stopped.shortest(&mut self.point) <= self.rules.bits {
                    if self.end == self.seg.len() {
                        emit(
                            &self.stopped,
                            self.rules.bits,
                            &mut self.point,
                            &mut self.windows,
                        )?;
                        self.phase = Phase::Done;
                    } else {
                        match &mut self.closed {
                            Some(closed) => std::mem::swap(closed, &mut self.stopped),
                            None => self.closed = Some(self.stopped.clone()),
                        }
                        code_flag(&mut self.trial, false, fs)?;
                        let b = usize::from(self.seg[self.end]);
                        self.trial
                            .narrow(self.cdf[b], self.cdf[b + 1] - self.cdf[b], PRECISION)?;
                        self.end += 1;
                    }
                } else {
                    // The last byte does not fit: close the window before it, start over there.
                    let closed = self
                        .closed
                        .take()
                        .ok_or(EiwError::Internal("a window's first byte did not fit"))?;
                    emit(&closed, self.rules.bits, &mut self.point, &mut self.windows)?;
                    self.stopped = closed;
                    self.start = self.end - 1;
                    self.phase = Phase::First;
                }
            }
            Phase::Done => {}
        }
        Ok(())
    }
}

/// Decodes a run of consecutive windows.
struct DecodeLane<'a> {
    rules: Rules,
    /// The windows, `W / 8` bytes each.
    windows: &'a [u8],
    /// Index of the first of them in the caller's numbering (for error messages).
    first_index: usize,
    /// The window being decoded.
    at: usize,
    point: Vec<u64>,
    iv: Interval,
    scratch: Vec<u64>,
    phase: Phase,
    cdf: [u32; 257],
    out: Vec<u8>,
    /// Where the current window's bytes start in `out`.
    window_start: usize,
}

impl<'a> DecodeLane<'a> {
    fn new(rules: Rules, windows: &'a [u8], first_index: usize) -> Self {
        let limbs = limbs_for(rules.bits);
        let mut lane = DecodeLane {
            rules,
            windows,
            first_index,
            at: 0,
            point: Vec::new(),
            iv: Interval::new(limbs),
            scratch: Vec::with_capacity(limbs),
            phase: Phase::Done,
            cdf: [0; 257],
            out: Vec::new(),
            window_start: 0,
        };
        lane.open(0);
        lane
    }

    fn width(&self) -> usize {
        self.rules.bits as usize / 8
    }

    /// Starts window `at` (or finishes when there is none).
    fn open(&mut self, at: usize) {
        self.at = at;
        let w = self.width();
        match self.windows.get(at * w..(at + 1) * w) {
            Some(bytes) => {
                self.point = read_window(bytes, self.iv.low.len());
                self.iv.reset();
                self.window_start = self.out.len();
                self.phase = Phase::First;
            }
            None => self.phase = Phase::Done,
        }
    }

    fn corrupt(&self) -> EiwError {
        EiwError::Corrupt {
            index: self.first_index + self.at,
        }
    }

    fn decode_byte(&mut self, precision: u32) -> Result<(), EiwError> {
        let t = locate(&self.iv, &self.point, &mut self.scratch, precision)
            .ok_or_else(|| self.corrupt())?;
        // The last entry is 2^precision > t, so some symbol holds t.
        let b = self.cdf.partition_point(|&c| u64::from(c) <= t) - 1;
        self.iv
            .narrow(self.cdf[b], self.cdf[b + 1] - self.cdf[b], precision)?;
        self.out.push(b as u8);
        Ok(())
    }
}

impl Lane for DecodeLane<'_> {
    fn context(&self, pad: u16, out: &mut [u16]) -> bool {
        match self.phase {
            Phase::First => window_context(&[], pad, out),
            Phase::Next => window_context(&self.out[self.window_start..], pad, out),
            Phase::Done => return false,
        }
        true
    }

    fn advance(&mut self, logits: &[i32]) -> Result<(), EiwError> {
        match self.phase {
            Phase::First => {
                self.rules
                    .cdf(logits, self.rules.first_precision, &mut self.cdf)?;
                self.decode_byte(self.rules.first_precision)?;
                self.phase = Phase::Next;
            }
            Phase::Next => {
                self.rules.cdf(logits, PRECISION, &mut self.cdf)?;
                let fs = self.rules.stop_freq(&self.cdf, self.iv.used());
                let flag = locate(&self.iv, &self.point, &mut self.scratch, FLAG_PRECISION)
                    .ok_or_else(|| self.corrupt())?;
                let stop = flag < u64::from(fs);
                code_flag(&mut self.iv, stop, fs)?;
                if stop {
                    // The encoder writes the shortest fraction of the final interval.
                    let len = self.iv.shortest(&mut self.scratch);
                    if len > self.rules.bits || self.scratch != self.point {
                        return Err(self.corrupt());
                    }
                    self.open(self.at + 1);
                } else {
                    self.decode_byte(PRECISION)?;
                    if self.iv.used() > self.rules.bits + DECODE_SLACK {
                        return Err(self.corrupt());
                    }
                }
            }
            Phase::Done => {}
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------- public API

/// Windows of `bits` bits each, back to back (`bits / 8` bytes per window, most significant
/// byte first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    bits: u32,
    bytes: Vec<u8>,
}

impl Windows {
    /// Wraps window bytes; they must be a whole number of windows.
    pub fn from_bytes(bits: u32, bytes: Vec<u8>) -> Result<Self, EiwError> {
        check_bits(bits)?;
        if !bytes.len().is_multiple_of(bits as usize / 8) {
            return Err(EiwError::Ragged {
                len: bytes.len(),
                bits,
            });
        }
        Ok(Windows { bits, bytes })
    }

    /// Reads a token file: little-endian `u16`, `u32` or `u64` ids for `W` = 16, 32 or 64 (as
    /// language-model data loaders read them), otherwise `W / 8` bytes per window, most
    /// significant first.
    pub fn from_token_file(bits: u32, data: &[u8]) -> Result<Self, EiwError> {
        let mut w = Windows::from_bytes(bits, data.to_vec())?;
        if matches!(bits, 16 | 32 | 64) {
            for chunk in w.bytes.chunks_exact_mut(bits as usize / 8) {
                chunk.reverse();
            }
        }
        Ok(w)
    }

    /// The token file (see [`Windows::from_token_file`]).
    pub fn to_token_file(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        if matches!(self.bits, 16 | 32 | 64) {
            for chunk in out.chunks_exact_mut(self.bits as usize / 8) {
                chunk.reverse();
            }
        }
        out
    }

    /// Window size in bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.bytes.len() / (self.bits as usize / 8)
    }

    /// True when there are no windows.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The windows' bytes, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Window `i`'s bytes.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let w = self.bits as usize / 8;
        self.bytes.get(i * w..(i + 1) * w)
    }

    /// Token ids: each window as an unsigned integer (for `W > 64`, its first 64 bits).
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        let w = (self.bits as usize / 8).min(8);
        self.bytes
            .chunks_exact(self.bits as usize / 8)
            .map(move |c| c[..w].iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }
}

/// Equal-Info Window coding with one byte model: the neural tokenizer of Lester et al.
pub struct Tokenizer<'m> {
    model: &'m dyn ByteModel,
    rules: Rules,
    segment: usize,
}

impl<'m> Tokenizer<'m> {
    /// A tokenizer with windows of `bits` bits and the default segment.
    pub fn new(model: &'m dyn ByteModel, bits: u32) -> Result<Self, EiwError> {
        Ok(Tokenizer {
            model,
            rules: Rules::new(bits, model.logit_frac_bits())?,
            segment: DEFAULT_SEGMENT as usize,
        })
    }

    /// The same with segments of `segment` bytes (a window never crosses a segment boundary).
    pub fn with_segment(mut self, segment: u32) -> Self {
        self.segment = segment.max(1) as usize;
        self
    }

    /// Window size in bits.
    pub fn bits(&self) -> u32 {
        self.rules.bits
    }

    /// Encodes each segment of `text` into windows: one [`Windows`] per segment, in order.
    pub fn encode_segments(
        &self,
        text: &[u8],
        schedule: &Schedule,
    ) -> Result<Vec<Windows>, EiwError> {
        let mut lanes: Vec<EncodeLane<'_>> = text
            .chunks(self.segment)
            .map(|seg| EncodeLane::new(self.rules, seg))
            .collect();
        run(self.model, &mut lanes, schedule)?;
        Ok(lanes
            .into_iter()
            .map(|l| Windows {
                bits: self.rules.bits,
                bytes: l.windows,
            })
            .collect())
    }

    /// Encodes `text` into windows.
    pub fn encode(&self, text: &[u8], schedule: &Schedule) -> Result<Windows, EiwError> {
        let bytes = self
            .encode_segments(text, schedule)?
            .into_iter()
            .flat_map(|w| w.bytes)
            .collect();
        Ok(Windows {
            bits: self.rules.bits,
            bytes,
        })
    }

    /// Decodes windows back into text. Windows are independent, so they are split into runs
    /// that decode in parallel.
    pub fn decode(&self, windows: &Windows, schedule: &Schedule) -> Result<Vec<u8>, EiwError> {
        if windows.bits != self.rules.bits {
            return Err(EiwError::Bits(windows.bits));
        }
        Ok(self
            .decode_runs(&[(windows.as_bytes(), 0)], schedule)?
            .concat())
    }

    /// Decodes several runs of windows (`(bytes, index of the first window)`), one output per
    /// run. Long runs are split so every lane of the schedule has work.
    pub fn decode_runs(
        &self,
        runs: &[(&[u8], usize)],
        schedule: &Schedule,
    ) -> Result<Vec<Vec<u8>>, EiwError> {
        let bits = self.rules.bits;
        let w = bits as usize / 8;
        let total: usize = runs.iter().map(|(b, _)| b.len() / w).sum();
        let threads = if schedule.threads == 0 {
            rayon::current_num_threads()
        } else {
            schedule.threads
        };
        // Enough lanes to fill a batch on every thread, without making each lane tiny.
        let lanes_wanted = (threads * schedule.batch.max(1)).max(1);
        let per_lane = total.div_ceil(lanes_wanted).max(16);
        let mut lanes = Vec::new();
        let mut owner = Vec::new();
        for (r, &(bytes, first)) in runs.iter().enumerate() {
            if bytes.len() % w != 0 {
                return Err(EiwError::Ragged {
                    len: bytes.len(),
                    bits,
                });
            }
            for (j, chunk) in bytes.chunks(per_lane * w).enumerate() {
                lanes.push(DecodeLane::new(self.rules, chunk, first + j * per_lane));
                owner.push(r);
            }
        }
        run(self.model, &mut lanes, schedule)?;
        let mut outs = vec![Vec::new(); runs.len()];
        for (lane, r) in lanes.into_iter().zip(owner) {
            outs[r].extend_from_slice(&lane.out);
        }
        Ok(outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic toy model: logits favour the byte after the previous one, more strongly
    /// the longer the context, so windows vary in length.
    struct Toy;

    impl ByteModel for Toy {
        fn context_len(&self) -> usize {
            4
        }
        fn pad_id(&self) -> u16 {
            256
        }
        fn logit_frac_bits(&self) -> u32 {
            8
        }
        fn logits(
            &self,
            contexts: &[u16],
            batch: usize,
            out: &mut Vec<i32>,
        ) -> Result<(), ModelError> {
            out.clear();
            for row in contexts.chunks_exact(4).take(batch) {
                let known = row.iter().filter(|&&c| c != 256).count() as i32;
                let last = row[3];
                for b in 0..256u16 {
                    let mut l = -((b as i32 * 37) % 11) * 64;
                    if last != 256 && b == (last + 1) % 256 {
                        l += 256 * (2 + 2 * known);
                    }
                    if b == u16::from(b' ') || (b as u8).is_ascii_lowercase() {
                        l += 300;
                    }
                    out.push(l);
                }
            }
            Ok(())
        }
    }

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..3000u32 {
            v.push(match i % 29 {
                0..=20 => b'a' + ((i / 3) % 26) as u8,
                21 => b' ',
                22 => (i % 251) as u8,
                _ => b'a' + (i % 7) as u8,
            });
        }
        v
    }

    #[test]
    fn interval_shortest_fraction_is_inside_and_short() {
        let mut iv = Interval::new(4);
        iv.narrow(5, 3, 4).unwrap();
        // [5/16, 8/16): 1/2 is outside, 3/8 = 0.011 is the shortest inside.
        let mut p = Vec::new();
        assert_eq!(iv.shortest(&mut p), 3);
        assert_eq!(bits_at(&p, 256 - 64).0, 3 << 61);
        // [8/16, 12/16): low itself, 1/2 = 0.1, is the shortest.
        let mut iv = Interval::new(4);
        iv.narrow(8, 4, 4).unwrap();
        assert_eq!(iv.shortest(&mut p), 1);
        assert_eq!(bits_at(&p, 256 - 64).0, 1 << 63);
        // [0, 1/2): zero needs no bits at all.
        let mut iv = Interval::new(4);
        iv.narrow(0, 1, 1).unwrap();
        assert_eq!(iv.shortest(&mut p), 0);
        assert!(p.iter().all(|&w| w == 0));
    }

    #[test]
    fn windows_round_trip_at_every_size() {
        let text = sample();
        for bits in [16, 24, 32, 64, 128, 4096] {
            let tok = Tokenizer::new(&Toy, bits).unwrap().with_segment(1000);
            let w = tok.encode(&text, &Schedule::default()).unwrap();
            assert!(!w.is_empty());
            assert_eq!(
                tok.decode(&w, &Schedule::default()).unwrap(),
                text,
                "W={bits}"
            );
        }
    }

    #[test]
    fn batched_equals_one_at_a_time() {
        let text = sample();
        let tok = Tokenizer::new(&Toy, 32).unwrap().with_segment(700);
        let one = tok.encode(&text, &Schedule::one_at_a_time()).unwrap();
        for schedule in [
            Schedule {
                threads: 2,
                batch: 3,
            },
            Schedule::default(),
        ] {
            assert_eq!(tok.encode(&text, &schedule).unwrap(), one);
            assert_eq!(tok.decode(&one, &schedule).unwrap(), text);
        }
    }

    #[test]
    fn damaged_windows_are_errors_not_text() {
        let text = sample();
        let tok = Tokenizer::new(&Toy, 16).unwrap();
        let w = tok.encode(&text, &Schedule::default()).unwrap();
        let mut caught = 0;
        for i in (0..w.as_bytes().len()).step_by(7) {
            let mut bytes = w.as_bytes().to_vec();
            bytes[i] ^= 0x10;
            let bad = Windows::from_bytes(16, bytes).unwrap();
            match tok.decode(&bad, &Schedule::default()) {
                Err(EiwError::Corrupt { .. }) => caught += 1,
                Ok(t) => assert_ne!(t, text),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert!(caught > 0);
        assert!(matches!(
            Windows::from_bytes(16, vec![0; 3]),
            Err(EiwError::Ragged { .. })
        ));
        assert!(matches!(Tokenizer::new(&Toy, 12), Err(EiwError::Bits(12))));
    }

    #[test]
    fn token_files_are_little_endian_ids() {
        let w = Windows::from_bytes(16, vec![0x12, 0x34, 0xab, 0xcd]).unwrap();
        assert_eq!(w.to_token_file(), vec![0x34, 0x12, 0xcd, 0xab]);
        assert_eq!(w.ids().collect::<Vec<_>>(), vec![0x1234, 0xabcd]);
        assert_eq!(Windows::from_token_file(16, &w.to_token_file()).unwrap(), w);
    }
}
