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
    /// The revision these rules are (see [`REVISION`]).
    pub(crate) revision: u16,
    /// Whether every window starts with the raw-window flag (revision 2, `W >= RAW_MIN_BITS`).
    pub(crate) raw: bool,
}

impl Rules {
    pub(crate) fn new(bits: u32, frac_bits: u32, revision: u16) -> Result<Self, EiwError> {
        check_bits(bits)?;
        if !(OLDEST_REVISION..=REVISION).contains(&revision) {
            return Err(EiwError::Revision(revision));
        }
        Ok(Rules {
            bits,
            first_precision: (bits - 4).min(PRECISION),
            frac_bits,
            revision,
            raw: revision >= 2 && bits >= RAW_MIN_BITS,
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

/// The raw window's byte distribution: every byte `2^(precision - 8)`, exactly 8 bits.
pub(super) fn uniform_cdf(precision: u32, cdf: &mut [u32; 257]) {
    for (i, c) in cdf.iter_mut().enumerate() {
        *c = (i as u32) << (precision - 8);
    }
}

/// Narrows by the raw-window flag: raw windows take `[0, RAW_FREQ)`.
pub(super) fn code_raw_flag(iv: &mut Interval, raw: bool) -> Result<(), EiwError> {
    if raw {
        iv.narrow(0, RAW_FREQ, FLAG_PRECISION)
    } else {
        iv.narrow(RAW_FREQ, (1 << FLAG_PRECISION) - RAW_FREQ, FLAG_PRECISION)
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

/// A window being built byte by byte (the encoder's side).
pub(super) struct Builder {
    /// The window with its bytes so far; not yet known to fit with its stop.
    trial: Interval,
    /// The finished window after [`Grow::Done`]; scratch before.
    stopped: Interval,
    /// The window one byte shorter than `trial`, closed with its stop, known to fit; `None`
    /// when `trial` holds only the window's first byte.
    closed: Option<Interval>,
    /// Bytes in `trial`.
    len: usize,
    /// Scratch for the shortest code.
    point: Vec<u64>,
}

/// What offering a window one more byte did.
pub(super) enum Grow {
    /// It took the byte.
    More,
    /// It is finished, with this many bytes.
    Done(usize),
}

impl Builder {
    pub(crate) fn new(bits: u32) -> Self {
        Builder {
            trial: Interval::new(limbs_for(bits)),
            stopped: Interval::new(limbs_for(bits)),
            closed: None,
            len: 0,
            point: Vec::new(),
        }
    }

    /// Starts a window: the raw-window flag (when the rules have one) and the first byte, whose
    /// distribution `cdf` is at the first-byte precision.
    pub(crate) fn start(
        &mut self,
        rules: &Rules,
        raw: bool,
        cdf: &[u32; 257],
        byte: u8,
    ) -> Result<(), EiwError> {
        self.trial.reset();
        if rules.raw {
            code_raw_flag(&mut self.trial, raw)?;
        }
        let b = usize::from(byte);
        self.trial
            .narrow(cdf[b], cdf[b + 1] - cdf[b], rules.first_precision)?;
        self.len = 1;
        self.closed = None;
        Ok(())
    }

    /// Offers the window its next byte (`None` at the end of the segment), whose distribution
    /// `cdf` is at [`PRECISION`]: the window takes it if the window with it can still be closed
    /// by its stop within `W` bits; otherwise it is finished without it.
    pub(crate) fn grow(
        &mut self,
        rules: &Rules,
        cdf: &[u32; 257],
        next: Option<u8>,
    ) -> Result<Grow, EiwError> {
        let fs = rules.stop_freq(cdf, self.trial.used());
        self.stopped.clone_from(&self.trial);
        code_flag(&mut self.stopped, true, fs)?;
        if self.stopped.shortest(&mut self.point) > rules.bits {
            // The last byte does not fit: the window ends before it.
            self.stopped = self
                .closed
                .take()
                .ok_or(EiwError::Internal("a window's first byte did not fit"))?;
            return Ok(Grow::Done(self.len - 1));
        }
        let Some(b) = next else {
            return Ok(Grow::Done(self.len));
        };
        match &mut self.closed {
            Some(closed) => std::mem::swap(closed, &mut self.stopped),
            None => self.closed = Some(self.stopped.clone()),
        }
        code_flag(&mut self.trial, false, fs)?;
        let b = usize::from(b);
        self.trial.narrow(cdf[b], cdf[b + 1] - cdf[b], PRECISION)?;
        self.len += 1;
        Ok(Grow::More)
    }

    /// Appends the finished window's `bits`-bit code to `out`.
    pub(crate) fn emit(&mut self, bits: u32, out: &mut Vec<u8>) -> Result<(), EiwError> {
        emit(&self.stopped, bits, &mut self.point, out)
    }

    /// Builds the raw window at the start of `bytes` (uniform bytes, no network); its length.
    pub(crate) fn raw(&mut self, rules: &Rules, bytes: &[u8]) -> Result<usize, EiwError> {
        let mut cdf = [0; 257];
        uniform_cdf(rules.first_precision, &mut cdf);
        let first = *bytes
            .first()
            .ok_or(EiwError::Internal("raw window of nothing"))?;
        self.start(rules, true, &cdf, first)?;
        uniform_cdf(PRECISION, &mut cdf);
        loop {
            if let Grow::Done(n) = self.grow(rules, &cdf, bytes.get(self.len).copied())? {
                return Ok(n);
            }
        }
    }
}

/// Encodes one segment into windows.
pub(super) struct EncodeLane<'a> {
    pub(crate) rules: Rules,
    pub(crate) seg: &'a [u8],
    /// Start of the current window.
    pub(crate) start: usize,
    pub(crate) phase: Phase,
    /// The current window, coded by the network.
    pub(crate) window: Builder,
    /// The current window coded raw (with raw windows in the rules), and its length.
    pub(crate) raw: Builder,
    pub(crate) raw_len: usize,
    pub(crate) cdf: [u32; 257],
    pub(crate) windows: Vec<u8>,
}

impl<'a> EncodeLane<'a> {
    pub(crate) fn new(rules: Rules, seg: &'a [u8]) -> Self {
        EncodeLane {
            rules,
            seg,
            start: 0,
            phase: if seg.is_empty() {
                Phase::Done
            } else {
                Phase::First
            },
            window: Builder::new(rules.bits),
            raw: Builder::new(rules.bits),
            raw_len: 0,
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
            Phase::Next => {
                let end = self.start + self.window.len;
                window_context(&self.seg[self.start..end], pad, out)
            }
            Phase::Done => return false,
        }
        true
    }

    fn advance(&mut self, logits: &[i32]) -> Result<(), EiwError> {
        let rules = self.rules;
        match self.phase {
            Phase::First => {
                rules.cdf(logits, rules.first_precision, &mut self.cdf)?;
                let rest = &self.seg[self.start..];
                self.window.start(&rules, false, &self.cdf, rest[0])?;
                if rules.raw {
                    self.raw_len = self.raw.raw(&rules, rest)?;
                }
                self.phase = Phase::Next;
            }
            Phase::Next => {
                rules.cdf(logits, PRECISION, &mut self.cdf)?;
                let next = self.seg.get(self.start + self.window.len).copied();
                if let Grow::Done(len) = self.window.grow(&rules, &self.cdf, next)? {
                    // The raw window when it holds more (never on a tie).
                    let (len, done) = if rules.raw && self.raw_len > len {
                        (self.raw_len, &mut self.raw)
                    } else {
                        (len, &mut self.window)
                    };
                    done.emit(rules.bits, &mut self.windows)?;
                    self.start += len;
                    self.phase = if self.start == self.seg.len() {
                        Phase::Done
                    } else {
                        Phase::First
                    };
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
    pub(crate) fn new(
        rules: Rules,
        windows: &'a [u8],
        first_index: usize,
    ) -> Result<Self, EiwError> {
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
        lane.open(0)?;
        Ok(lane)
    }

    pub(crate) fn width(&self) -> usize {
        self.rules.bits as usize / 8
    }

    /// Starts window `at` (or finishes when there is none). Raw windows need no network: they
    /// are decoded here, and so on until a window that needs the network's first row.
    pub(crate) fn open(&mut self, mut at: usize) -> Result<(), EiwError> {
        loop {
            self.at = at;
            let w = self.width();
            let Some(bytes) = self.windows.get(at * w..(at + 1) * w) else {
                self.phase = Phase::Done;
                return Ok(());
            };
            self.point = read_window(bytes, self.iv.low.len());
            self.iv.reset();
            self.window_start = self.out.len();
            self.phase = Phase::First;
            if !self.rules.raw {
                return Ok(());
            }
            let flag = locate(&self.iv, &self.point, &mut self.scratch, FLAG_PRECISION)
                .ok_or_else(|| self.corrupt())?;
            let raw = flag < u64::from(RAW_FREQ);
            code_raw_flag(&mut self.iv, raw)?;
            if !raw {
                return Ok(());
            }
            uniform_cdf(self.rules.first_precision, &mut self.cdf);
            self.decode_byte(self.rules.first_precision)?;
            uniform_cdf(PRECISION, &mut self.cdf);
            while !self.stop_or_byte()? {}
            at += 1;
        }
    }

    /// After a byte, with the next byte's distribution in `cdf`: decodes the stop flag and,
    /// unless it stops the window, the byte. True when the window ended (its code checked).
    pub(crate) fn stop_or_byte(&mut self) -> Result<bool, EiwError> {
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
            return Ok(true);
        }
        self.decode_byte(PRECISION)?;
        if self.iv.used() > self.rules.bits + DECODE_SLACK {
            return Err(self.corrupt());
        }
        Ok(false)
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
                if self.stop_or_byte()? {
                    self.open(self.at + 1)?;
                }
            }
            Phase::Done => {}
        }
        Ok(())
    }
}
