//! The network's distributions for a window, and the lanes that step windows (encoding) or
//! windows' codes (decoding) through one batched network call at a time.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::engine::ByteModel;

use super::config::*;
use super::interval::*;

/// The window rules shared by both directions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    pub(crate) bits: u32,
    /// Precision of a window's first byte.
    pub(crate) first_precision: u32,
    pub(crate) frac_bits: u32,
}

impl Rules {
    pub(crate) fn new(bits: u32, frac_bits: u32) -> Result<Self, EiwError> {
        check_bits(bits)?;
        Ok(Rules {
            bits,
            first_precision: (bits - 4).min(PRECISION),
            frac_bits,
        })
    }

    /// The cumulative table of a byte distribution from one row of logits.
    pub(crate) fn cdf(
        &self,
        logits: &[i32],
        precision: u32,
        cdf: &mut [u32; 257],
    ) -> Result<(), EiwError> {
        let mut freqs = [0u32; 256];
        arca_coder::quantize_logits(logits, self.frac_bits, precision, &mut freqs)
            .map_err(|e| EiwError::Logits(format!("{e:?}")))?;
        arca_coder::cumulative(&freqs, cdf).map_err(|e| EiwError::Logits(format!("{e:?}")))
    }

    /// Frequency (of `2^12`) of the stop flag before the byte whose distribution is `cdf`
    /// (16-bit), when the window has spent `used` bits: the mass of the bytes that would not
    /// fit, floored so that a stop always fits while 3 bits are left.
    pub(crate) fn stop_freq(&self, cdf: &[u32; 257], used: u32) -> u32 {
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
pub(super) fn code_flag(iv: &mut Interval, stop: bool, fs: u32) -> Result<(), EiwError> {
    if stop {
        iv.narrow(0, fs, FLAG_PRECISION)
    } else {
        iv.narrow(fs, (1 << FLAG_PRECISION) - fs, FLAG_PRECISION)
    }
}

/// The symbol whose sub-interval of `[0, 2^precision)` holds the point, if any.
pub(super) fn locate(
    iv: &Interval,
    point: &[u64],
    scratch: &mut Vec<u64>,
    precision: u32,
) -> Option<u64> {
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
pub(super) trait Lane: Send {
    /// The context of the lane's next position (`out.len()` values, oldest first), or false
    /// when the lane is finished.
    fn context(&self, pad: u16, out: &mut [u16]) -> bool;
    /// Consumes the network's logits for that position.
    fn advance(&mut self, logits: &[i32]) -> Result<(), EiwError>;
}

/// Writes the last `out.len()` bytes of `window` (PAD before its start) into `out`.
pub(super) fn window_context(window: &[u8], pad: u16, out: &mut [u16]) {
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
pub(super) const CACHE_DEPTH: usize = 2;
/// Most contexts remembered per thread (1 KiB of logits each).
pub(super) const CACHE_ENTRIES: usize = 1 << 13;

/// Steps `lanes`, `batch` at a time, one network row per active lane per call. Rows for short
/// contexts seen before come from a cache instead (the logits are a pure function of the
/// context, so this changes nothing but speed).
pub(super) fn lockstep<L: Lane>(
    model: &dyn ByteModel,
    lanes: &mut [L],
    batch: usize,
) -> Result<(), EiwError> {
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
pub(super) fn run<L: Lane>(
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
    let per = lanes.len().div_ceil(threads);
    crate::pool::install(schedule.threads, || {
        lanes
            .par_chunks_mut(per)
            .try_for_each(|group| lockstep(model, group, schedule.batch))
    })
    .map_err(|_| EiwError::Threads(threads))?
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The next call gives the distribution of a window's first byte.
    First,
    /// The next call gives the distribution of the byte after the window's current end.
    Next,
    Done,
}

/// Encodes one segment into windows.
pub(super) struct EncodeLane<'a> {
    pub(crate) rules: Rules,
    pub(crate) seg: &'a [u8],
    /// Start of the current window.
    pub(crate) start: usize,
    /// End of the bytes coded into `trial`.
    pub(crate) end: usize,
    pub(crate) phase: Phase,
    /// The window with its bytes `start..end`; not yet known to fit with its stop.
    pub(crate) trial: Interval,
    /// `trial` closed with its stop (scratch for the fit test).
    pub(crate) stopped: Interval,
    /// The window one byte shorter than `trial`, closed with its stop, known to fit; `None`
    /// when `trial` holds only the window's first byte.
    pub(crate) closed: Option<Interval>,
    /// Scratch for the shortest code.
    pub(crate) point: Vec<u64>,
    pub(crate) cdf: [u32; 257],
    pub(crate) windows: Vec<u8>,
}

impl<'a> EncodeLane<'a> {
    pub(crate) fn new(rules: Rules, seg: &'a [u8]) -> Self {
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
pub(super) fn emit(
    iv: &Interval,
    bits: u32,
    point: &mut Vec<u64>,
    out: &mut Vec<u8>,
) -> Result<(), EiwError> {
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
pub(super) struct DecodeLane<'a> {
    pub(crate) rules: Rules,
    /// The windows, `W / 8` bytes each.
    pub(crate) windows: &'a [u8],
    /// Index of the first of them in the caller's numbering (for error messages).
    pub(crate) first_index: usize,
    /// The window being decoded.
    pub(crate) at: usize,
    pub(crate) point: Vec<u64>,
    pub(crate) iv: Interval,
    pub(crate) scratch: Vec<u64>,
    pub(crate) phase: Phase,
    pub(crate) cdf: [u32; 257],
    pub(crate) out: Vec<u8>,
    /// Where the current window's bytes start in `out`.
    pub(crate) window_start: usize,
}

impl<'a> DecodeLane<'a> {
    pub(crate) fn new(rules: Rules, windows: &'a [u8], first_index: usize) -> Self {
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

    pub(crate) fn width(&self) -> usize {
        self.rules.bits as usize / 8
    }

    /// Starts window `at` (or finishes when there is none).
    pub(crate) fn open(&mut self, at: usize) {
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

    pub(crate) fn corrupt(&self) -> EiwError {
        EiwError::Corrupt {
            index: self.first_index + self.at,
        }
    }

    pub(crate) fn decode_byte(&mut self, precision: u32) -> Result<(), EiwError> {
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
