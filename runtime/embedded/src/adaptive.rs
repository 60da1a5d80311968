//! The adaptive half of `text-nn` (revisions 2 and 3): small context models that learn the
//! block as it is coded, mixed with the network's prediction one bit at a time.
//!
//! The network knows the language it was trained on; it does not know this file. A device's
//! logs, JSON and tables repeat themselves (the same keys, the same line prefixes) in ways no
//! byte-level network with a 24-byte window can see. So each byte is coded as 8 binary
//! decisions (most significant bit first), and for each decision these models predict
//! `P(bit = 1)`:
//!
//! - the network: the probability of this bit given the bits already coded, read off the byte
//!   distribution's integer CDF ([`arca_coder::quantize::bit_probability`]);
//! - order-0 to order-3 context models: adaptive counters indexed by the bits of the byte so
//!   far and a hash of the previous 0-3 bytes (order 0 is a direct table);
//! - a match model: the last earlier position of the block where the previous
//!   [`MATCH_MIN`] bytes occurred, and the byte that followed it there, with a counter per match
//!   length learning how often that byte is right;
//! - revision 3 only: a second match model keyed by [`LONG_MATCH_MIN`] bytes, which finds the
//!   repeat the short one misses when its 3-byte context last occurred elsewhere.
//!
//! A linear mixer in the logistic domain, one weight vector per match state and bit position,
//! learned online, combines them; revision 3 then refines the mixed probability with an
//! adaptive probability map (APM) keyed by the bits of the byte so far, and averages the two.
//! Every step is integer arithmetic on fixed-size tables, so the encoder on a PC and the
//! decoder on a Cortex-M compute the same probabilities bit for bit.
//!
//! Memory is the board's budget: [`Adaptive`] is [`Adaptive::SIZE`] bytes (the tables are
//! `u16` counters: a 12-bit probability and a 4-bit count), kept on the decoder's stack next to
//! the 16 KiB output buffer, and reset at the start of every block (blocks stay independent: the
//! PC decodes them in parallel, and a damaged block does not spoil the next). Revision 3's
//! models see only the last [`WINDOW`] bytes, what that buffer holds as a ring.
//!
//! Revision 2's constants were chosen on held-out data that is not evaluated on (48 KiB from
//! each file of `mixed/valid`, two books of `valid/`, a dpkg log and a package TSV of this build
//! machine), with the network's CDFs cached: the mixer rate and the network's starting weight
//! moved the total by 1-2%, the table sizes by under 1% per halving. Revision 3's were chosen
//! the same way, by compressing 20 held-out files (1.7 MB: 64 and 128 KiB slices of each
//! `mixed/valid` file, two `valid/` books, a Rust source, jQuery, an Emacs Lisp file, Perl
//! modules, three HTML pages, a dpkg log) in 256 KiB blocks: the second match model 1.7%
//! smaller in total (its table halved: 0.6% larger; doubled: 0.5% smaller, but over the RAM
//! budget), the APM 0.8% (keyed by bit position only it was worse than none), mixer sets per
//! long-match state 0.2%, a slower mixer rate 0.25%; a context of the byte above (same
//! column, previous line) gave 0.1-0.2% for 2-4 KiB and was left out.

use arca_coder::logistic::{squash, stretch};
use arca_coder::quantize::bit_probability;

use crate::history::{History, WINDOW};

/// Slots of the order-1, order-2 and order-3 tables (log2).
const ORDER_BITS: [u32; 3] = [12, 12, 12];
/// Slots of the match model's position table (log2).
const MATCH_BITS: u32 = 11;
/// Slots of revision 3's second match model's position table (log2).
const LONG_MATCH_BITS: u32 = 11;
/// Bytes of context that select a match candidate (and that must agree for it to be taken).
pub const MATCH_MIN: usize = 3;
/// Bytes of context of revision 3's second match model.
pub const LONG_MATCH_MIN: usize = 6;
/// Longest match length the match model tells apart (its counters are per length up to this).
const MATCH_LENGTHS: usize = 16;
/// Mixer inputs: network, order 0, orders 1-3, match, bias, and revision 3's long match (0 in
/// revision 2, where it changes nothing).
const INPUTS: usize = 8;
/// Mixer weight sets: (no match, short match, long match) of the first match model x (second
/// model matching or not; never in revision 2) x bit position.
const SETS: usize = 3 * 2 * 8;
/// Weights are 16.16 fixed point: the network's starts at 0.75, ...
const WEIGHT_NETWORK: i32 = 3 << 14;
/// ... the others' at 0.125.
const WEIGHT_OTHERS: i32 = 1 << 13;
/// Mixer learning rate: a weight moves by `input * error * MIXER_RATE / 2^16` (input in the
/// stretched domain, error in 12-bit probability units).
const MIXER_RATE: i32 = 40;
/// Revision 3's: its blocks are longer, and a slower mixer does better over them.
const MIXER_RATE_3: i32 = 24;
/// Interpolation points of the APM over the stretched domain, per context.
const APM_POINTS: usize = 12;
/// The APM's rate: a point moves by `1 / 2^APM_RATE` of its error.
const APM_RATE: u32 = 6;
/// A counter's count stops here: its rate is then `1 / (LIMIT + 1.5)`.
const COUNT_LIMIT: u16 = 15;

/// `65536 / (n + 1.5)`: the learning rate of a counter that has seen `n` bits.
const RATES: [i32; 16] = {
    let mut t = [0i32; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = 65536 * 2 / (2 * n as i32 + 3);
        n += 1;
    }
    t
};

/// An adaptive bit probability: 12 bits of `P(1)` above a 4-bit count.
#[derive(Clone, Copy)]
struct Counter(u16);

impl Counter {
    const HALF: Counter = Counter(2048 << 4);

    #[inline]
    fn p(self) -> u16 {
        self.0 >> 4
    }

    #[inline]
    fn update(&mut self, bit: bool) {
        let n = self.0 & 15;
        let p = i32::from(self.0 >> 4);
        let target = if bit { 4095 } else { 0 };
        let p = p + (((target - p) * RATES[usize::from(n)]) >> 16);
        self.0 = ((p.clamp(1, 4095) as u16) << 4) | (n + 1).min(COUNT_LIMIT);
    }
}

/// A 32-bit multiplicative hash (the encoder and decoder only need to agree on it).
#[inline]
fn hash(x: u32) -> u32 {
    (x ^ (x >> 15)).wrapping_mul(0x2C1B_3C6D) ^ 0x9E37_79B9
}

/// A match model: the last earlier position of the window where the previous `min` bytes
/// occurred, and the byte that followed it there, with a counter per match length learning how
/// often that byte is right.
struct Match<const SLOTS: usize> {
    /// Position after the last occurrence of each hashed context, plus one (0: none).
    positions: [u16; SLOTS],
    /// How often the predicted byte was right, per match length.
    hits: [Counter; MATCH_LENGTHS],
    /// Bytes of context that select a candidate (and that must agree for it to be taken).
    min: usize,
    /// Where the predicted byte is in the block, and how long the match is.
    at: usize,
    len: usize,
    /// The bit the model bets on, if it bets on this one.
    expected: Option<bool>,
}

impl<const SLOTS: usize> Match<SLOTS> {
    const fn new(min: usize) -> Self {
        Match {
            positions: [0; SLOTS],
            hits: [Counter(0); MATCH_LENGTHS],
            min,
            at: 0,
            len: 0,
            expected: None,
        }
    }

    fn reset(&mut self) {
        self.positions.fill(0);
        self.hits.fill(Counter::HALF);
        self.at = 0;
        self.len = 0;
        self.expected = None;
    }

    /// Moves a match on (a match still on has had every bit of its byte come true: a wrong bit
    /// ends it), or looks one up; then registers the current context. `windowed`: revision 3's
    /// positions (modulo 2^16, within the window).
    fn start_byte(&mut self, history: History<'_>, windowed: bool) {
        let (pos, min) = (history.pos(), self.min);
        if self.len > 0 {
            self.len += 1;
            self.at += 1;
        }
        if pos < min {
            return;
        }
        // The last `min` bytes, oldest first (in the history: pos >= min, and a window is far
        // longer).
        let key = (1..=min).rev().fold(0x811C_9DC5u32, |h, back| {
            let b = history.back(back).unwrap_or(0);
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let slot = (hash(key) >> (32 - SLOTS.trailing_zeros())) as usize;
        if self.len == 0 {
            let stored = usize::from(self.positions[slot]);
            // Where the byte after the candidate's context is, if anywhere.
            let at = if windowed {
                // Positions are kept modulo 2^16; the window is far shorter.
                let distance = pos.wrapping_sub(stored.wrapping_sub(1)) & 0xFFFF;
                (stored != 0 && distance > 0 && distance + min <= WINDOW).then(|| pos - distance)
            } else {
                (stored > min && stored <= pos).then(|| stored - 1)
            };
            // A candidate counts only if its context really agrees (hashes collide).
            if let Some(at) = at.filter(|&at| at >= min) {
                let agrees = (1..=min).all(|back| {
                    let then = history.get(at - back);
                    then.is_some() && then == history.back(back)
                });
                if agrees {
                    self.at = at;
                    self.len = 1;
                }
            }
        }
        if windowed {
            self.positions[slot] = (pos + 1) as u16;
        } else if let Ok(p) = u16::try_from(pos + 1) {
            // Revision 2: blocks past 64 KiB simply stop registering new candidates.
            self.positions[slot] = p;
        }
    }

    /// The model's input to the mixer for the next bit (0 when it has no bet): it bets on the
    /// predicted byte's bit while that byte agrees with the bits coded so far.
    fn predict(&mut self, partial: u32, bit_index: usize, history: History<'_>) -> i32 {
        self.expected = None;
        if self.len == 0 {
            return 0;
        }
        let predicted = u32::from(history.get(self.at).unwrap_or(0)) | 256;
        if predicted >> (bit_index + 1) != partial {
            self.len = 0;
            return 0;
        }
        let sure = i32::from(stretch(self.hits[self.len.min(MATCH_LENGTHS - 1)].p()));
        let expected = predicted >> bit_index & 1 == 1;
        self.expected = Some(expected);
        if expected { sure } else { -sure }
    }

    fn update(&mut self, bit: bool) {
        if let Some(expected) = self.expected {
            self.hits[self.len.min(MATCH_LENGTHS - 1)].update(expected == bit);
            if expected != bit {
                self.len = 0;
            }
        }
    }
}

/// The adaptive state of `text-nn` revisions 2 and 3 (see the module docs). Allocation-free; reset it
/// with [`Adaptive::reset`] before each block.
pub struct Adaptive {
    order0: [Counter; 256],
    order1: [Counter; 1 << ORDER_BITS[0]],
    order2: [Counter; 1 << ORDER_BITS[1]],
    order3: [Counter; 1 << ORDER_BITS[2]],
    /// The match model of [`MATCH_MIN`] bytes of context, and revision 3's of
    /// [`LONG_MATCH_MIN`].
    short: Match<{ 1 << MATCH_BITS }>,
    long: Match<{ 1 << LONG_MATCH_BITS }>,
    weights: [[i32; INPUTS]; SETS],
    /// Revision 3's APM: for each value of the bits of the byte so far, `P(1)` (16 bits) at
    /// [`APM_POINTS`] evenly spaced points of the stretched domain.
    apm: [u16; 256 * APM_POINTS],
    /// The point that learns from the current bit.
    apm_slot: usize,
    /// Revision 3: match positions wrap at 2^16 and a match must lie in the window (revision 2:
    /// a block's positions past 64 KiB are not registered); the second match model, the APM and
    /// the slower mixer are on.
    revision_3: bool,
    // Per byte:
    /// Hashes of the previous 1, 2 and 3 bytes.
    bases: [u32; 3],
    // Per bit:
    /// Table slots used for the current bit: orders 0-3.
    slots: [usize; 4],
    inputs: [i32; INPUTS],
    set: usize,
    /// The mixer's prediction (12 bits).
    mixed: u16,
}

impl Default for Adaptive {
    fn default() -> Self {
        Self::new()
    }
}

impl Adaptive {
    /// Bytes of RAM the state takes.
    pub const SIZE: usize = core::mem::size_of::<Adaptive>();

    /// A state ready for [`Adaptive::reset`] (which [`crate::code_block_adaptive`] calls before
    /// each block). All zeros, so it is built in place: a microcontroller's stack has no room
    /// for a temporary copy.
    pub const fn new() -> Self {
        Adaptive {
            order0: [Counter(0); 256],
            order1: [Counter(0); 1 << ORDER_BITS[0]],
            order2: [Counter(0); 1 << ORDER_BITS[1]],
            order3: [Counter(0); 1 << ORDER_BITS[2]],
            short: Match::new(MATCH_MIN),
            long: Match::new(LONG_MATCH_MIN),
            weights: [[0; INPUTS]; SETS],
            apm: [0; 256 * APM_POINTS],
            apm_slot: 0,
            revision_3: false,
            bases: [0; 3],
            slots: [0; 4],
            inputs: [0; INPUTS],
            set: 0,
            mixed: 2048,
        }
    }

    /// Forgets everything learned: the state at the start of a block (in place) of codec
    /// `revision` (2, or 3 and later).
    pub fn reset(&mut self, revision: u16) {
        self.revision_3 = revision >= 3;
        self.order0.fill(Counter::HALF);
        self.order1.fill(Counter::HALF);
        self.order2.fill(Counter::HALF);
        self.order3.fill(Counter::HALF);
        self.short.reset();
        self.long.reset();
        // Each point starts at the identity: P(1) = squash(its stretched value).
        for (i, a) in self.apm.iter_mut().enumerate() {
            let point = (i % APM_POINTS) as i32;
            *a = squash(point * 4094 / (APM_POINTS as i32 - 1) - 2047) << 4;
        }
        self.apm_slot = 0;
        for set in &mut self.weights {
            set.fill(WEIGHT_OTHERS);
            set[0] = WEIGHT_NETWORK;
        }
        self.bases = [0; 3];
        self.slots = [0; 4];
        self.inputs = [0; INPUTS];
        self.set = 0;
        self.mixed = 2048;
    }

    /// Prepares for the byte at `history.pos()`: the order contexts and the match model's
    /// candidate.
    pub fn start_byte(&mut self, history: History<'_>) {
        let byte = |back: usize| -> u32 { history.back(back).map_or(0, |b| u32::from(b) + 1) };
        let (c1, c2, c3) = (byte(1), byte(2), byte(3));
        self.bases = [
            hash(c1 | 1 << 24),
            hash(c1 | c2 << 9 | 2 << 24),
            hash(c1 | c2 << 9 | c3 << 18 | 3 << 27),
        ];

        self.short.start_byte(history, self.revision_3);
        if self.revision_3 {
            self.long.start_byte(history, true);
        }
    }

    /// `P(bit = 1)` in units of 2^-16 for the next bit of the byte: `partial` is the bits of the
    /// byte coded so far with a leading 1 (1 for the first bit), `cdf` the network's cumulative
    /// table of the byte (257 entries) and `history` the block before the byte.
    pub fn predict(&mut self, cdf: &[u32; 257], partial: u32, history: History<'_>) -> u16 {
        let bit_index = 7 - (31 - partial.leading_zeros()) as usize;
        // The symbols still possible: [lo, hi), split at mid.
        let depth = 8 - bit_index - 1;
        let lo = ((partial ^ (1 << depth)) << (bit_index + 1)) as usize;
        let hi = lo + (1 << (bit_index + 1));
        let mid = lo + (1 << bit_index);
        let network = (bit_probability(cdf, lo, mid, hi) >> 4).clamp(1, 4095);

        let p = partial.wrapping_mul(0x9E37_79B1);
        self.slots = [
            partial as usize & 255,
            ((self.bases[0] ^ p) >> (32 - ORDER_BITS[0])) as usize,
            ((self.bases[1] ^ p) >> (32 - ORDER_BITS[1])) as usize,
            ((self.bases[2] ^ p) >> (32 - ORDER_BITS[2])) as usize,
        ];
        let counters = [
            self.order0[self.slots[0]],
            self.order1[self.slots[1]],
            self.order2[self.slots[2]],
            self.order3[self.slots[3]],
        ];

        let matched = self.short.predict(partial, bit_index, history);
        let long = if self.revision_3 {
            self.long.predict(partial, bit_index, history)
        } else {
            0
        };

        self.inputs = [
            i32::from(stretch(network)),
            i32::from(stretch(counters[0].p())),
            i32::from(stretch(counters[1].p())),
            i32::from(stretch(counters[2].p())),
            i32::from(stretch(counters[3].p())),
            matched,
            256,
            long,
        ];
        let state = match self.short.len {
            0 => 0,
            1..16 => 1,
            _ => 2,
        } + if self.long.len > 0 { 3 } else { 0 };
        self.set = state * 8 + bit_index;
        let dot: i64 = self.weights[self.set]
            .iter()
            .zip(&self.inputs)
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        let x = (dot >> 16).clamp(-2047, 2047) as i32;
        self.mixed = squash(x).clamp(1, 4095);
        if !self.revision_3 {
            return self.mixed << 4;
        }
        // Revision 3: the APM's two points around the mixer's output, in the context of the bits
        // of the byte so far, interpolated; the nearer one learns from the bit.
        let at = (x + 2047) as u32 * (APM_POINTS as u32 - 1);
        let lo = (at / 4094).min(APM_POINTS as u32 - 2);
        let frac = at - lo * 4094;
        let base = (partial as usize & 255) * APM_POINTS + lo as usize;
        let refined = (u32::from(self.apm[base]) * (4094 - frac)
            + u32::from(self.apm[base + 1]) * frac)
            / 4094;
        self.apm_slot = if frac < 2047 { base } else { base + 1 };
        ((u32::from(self.mixed) * 16 + refined) / 2).clamp(16, 65520) as u16
    }

    /// Learns from the coded `bit` (after [`Adaptive::predict`] for it).
    pub fn update(&mut self, bit: bool) {
        let error = (if bit { 4096 } else { 0 }) - i32::from(self.mixed);
        // |x| <= 2047 and |error * MIXER_RATE| <= 163,840: the product fits in i32 (no 64-bit
        // multiply on the board's hot path). The sum wraps as release builds always did, so a
        // pathological block (every bit against a saturated prediction, in blocks far over the
        // board's 16 KiB) cannot make a debug build panic.
        let scaled = error
            * if self.revision_3 {
                MIXER_RATE_3
            } else {
                MIXER_RATE
            };
        for (w, &x) in self.weights[self.set].iter_mut().zip(&self.inputs) {
            *w = w.wrapping_add((x * scaled) >> 16);
        }
        self.order0[self.slots[0]].update(bit);
        self.order1[self.slots[1]].update(bit);
        self.order2[self.slots[2]].update(bit);
        self.order3[self.slots[3]].update(bit);
        self.short.update(bit);
        self.long.update(bit);
        if self.revision_3 {
            let point = &mut self.apm[self.apm_slot];
            let target = if bit { 65535 } else { 0 };
            *point = (i32::from(*point) + ((target - i32::from(*point)) >> APM_RATE)) as u16;
        }
    }
}
