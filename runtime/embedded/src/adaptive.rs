//! The adaptive half of `text-nn` revision 2: small context models that learn the block as it
//! is coded, mixed with the network's prediction one bit at a time.
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
//!   length learning how often that byte is right.
//!
//! A linear mixer in the logistic domain, one weight vector per match state and bit position,
//! learned online, combines them. Every step is integer arithmetic on fixed-size tables, so the
//! encoder on a PC and the decoder on a Cortex-M compute the same probabilities bit for bit.
//!
//! Memory is the board's budget: [`Adaptive`] is [`Adaptive::SIZE`] bytes (the tables are
//! `u16` counters: a 12-bit probability and a 4-bit count), kept on the decoder's stack next to
//! the block buffer, and reset at the start of every block (blocks stay independent: the PC
//! decodes them in parallel, and a damaged block does not spoil the next).
//!
//! The constants below were chosen on held-out data that is not evaluated on (48 KiB from each
//! file of `mixed/valid`, two books of `valid/`, a dpkg log and a package TSV of this build
//! machine), with the network's CDFs cached: the mixer rate and the network's starting weight
//! moved the total by 1-2%, the table sizes by under 1% per halving.

use arca_coder::logistic::{squash, stretch};
use arca_coder::quantize::bit_probability;

use crate::{History, WINDOW};

/// Slots of the order-1, order-2 and order-3 tables (log2).
const ORDER_BITS: [u32; 3] = [12, 12, 12];
/// Slots of the match model's position table (log2).
const MATCH_BITS: u32 = 11;
/// Bytes of context that select a match candidate (and that must agree for it to be taken).
pub const MATCH_MIN: usize = 3;
/// Longest match length the match model tells apart (its counters are per length up to this).
const MATCH_LENGTHS: usize = 16;
/// Mixer inputs: network, order 0, orders 1-3, match, bias.
const INPUTS: usize = 7;
/// Mixer weight sets: (no match, short match, long match) x bit position.
const SETS: usize = 3 * 8;
/// Weights are 16.16 fixed point: the network's starts at 0.75, ...
const WEIGHT_NETWORK: i32 = 3 << 14;
/// ... the others' at 0.125.
const WEIGHT_OTHERS: i32 = 1 << 13;
/// Mixer learning rate: a weight moves by `input * error * MIXER_RATE / 2^16` (input in the
/// stretched domain, error in 12-bit probability units).
const MIXER_RATE: i32 = 40;
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

/// The adaptive state of `text-nn` revision 2 (see the module docs). Allocation-free; reset it
/// with [`Adaptive::reset`] before each block.
pub struct Adaptive {
    order0: [Counter; 256],
    order1: [Counter; 1 << ORDER_BITS[0]],
    order2: [Counter; 1 << ORDER_BITS[1]],
    order3: [Counter; 1 << ORDER_BITS[2]],
    /// Position after the last occurrence of each hashed [`MATCH_MIN`]-byte context, plus one
    /// (0: none).
    positions: [u16; 1 << MATCH_BITS],
    /// How often the predicted byte was right, per match length.
    match_hits: [Counter; MATCH_LENGTHS],
    weights: [[i32; INPUTS]; SETS],
    /// Revision 3: positions wrap at 2^16 and a match must lie in the window (revision 2: a
    /// block's positions past 64 KiB are not registered).
    windowed: bool,
    // Per byte:
    /// Hashes of the previous 1, 2 and 3 bytes.
    bases: [u32; 3],
    /// Where the match model's predicted byte is in the block, and how long the match is.
    match_at: usize,
    match_len: usize,
    // Per bit:
    /// The bit the match model bets on, if it bets on this one.
    expected: Option<bool>,
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
            positions: [0; 1 << MATCH_BITS],
            match_hits: [Counter(0); MATCH_LENGTHS],
            weights: [[0; INPUTS]; SETS],
            windowed: false,
            bases: [0; 3],
            match_at: 0,
            match_len: 0,
            expected: None,
            slots: [0; 4],
            inputs: [0; INPUTS],
            set: 0,
            mixed: 2048,
        }
    }

    /// Forgets everything learned: the state at the start of a block (in place) of codec
    /// `revision` (2, or 3 and later).
    pub fn reset(&mut self, revision: u16) {
        self.windowed = revision >= 3;
        self.order0.fill(Counter::HALF);
        self.order1.fill(Counter::HALF);
        self.order2.fill(Counter::HALF);
        self.order3.fill(Counter::HALF);
        self.positions.fill(0);
        self.match_hits.fill(Counter::HALF);
        for set in &mut self.weights {
            set.fill(WEIGHT_OTHERS);
            set[0] = WEIGHT_NETWORK;
        }
        self.bases = [0; 3];
        self.match_at = 0;
        self.match_len = 0;
        self.expected = None;
        self.slots = [0; 4];
        self.inputs = [0; INPUTS];
        self.set = 0;
        self.mixed = 2048;
    }

    /// Prepares for the byte at `history.pos()`: the order contexts and the match model's
    /// candidate.
    pub fn start_byte(&mut self, history: History<'_>) {
        let pos = history.pos();
        let byte = |back: usize| -> u32 { history.back(back).map_or(0, |b| u32::from(b) + 1) };
        let (c1, c2, c3) = (byte(1), byte(2), byte(3));
        self.bases = [
            hash(c1 | 1 << 24),
            hash(c1 | c2 << 9 | 2 << 24),
            hash(c1 | c2 << 9 | c3 << 18 | 3 << 27),
        ];

        // The match model: a match still on has had every bit of its byte come true (a wrong
        // bit ends it), so it moves on; else one is looked up.
        if self.match_len > 0 {
            self.match_len += 1;
            self.match_at += 1;
        }
        if pos >= MATCH_MIN {
            // The last MATCH_MIN bytes, oldest first (in the history: pos >= MATCH_MIN, and a
            // window is far longer).
            let key = (1..=MATCH_MIN).rev().fold(0x811C_9DC5u32, |h, back| {
                let b = history.back(back).unwrap_or(0);
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            let slot = (hash(key) >> (32 - MATCH_BITS)) as usize;
            if self.match_len == 0 {
                let stored = usize::from(self.positions[slot]);
                // Where the byte after the candidate's context is, if anywhere.
                let at = if self.windowed {
                    // Positions are kept modulo 2^16; the window is far shorter.
                    let distance = pos.wrapping_sub(stored.wrapping_sub(1)) & 0xFFFF;
                    (stored != 0 && distance > 0 && distance + MATCH_MIN <= WINDOW)
                        .then(|| pos - distance)
                } else {
                    (stored > MATCH_MIN && stored <= pos).then(|| stored - 1)
                };
                // A candidate counts only if its context really agrees (hashes collide).
                if let Some(at) = at.filter(|&at| at >= MATCH_MIN) {
                    let agrees = (1..=MATCH_MIN).all(|back| {
                        let then = history.get(at - back);
                        then.is_some() && then == history.back(back)
                    });
                    if agrees {
                        self.match_at = at;
                        self.match_len = 1;
                    }
                }
            }
            if self.windowed {
                self.positions[slot] = (pos + 1) as u16;
            } else if let Ok(p) = u16::try_from(pos + 1) {
                // Revision 2: blocks past 64 KiB simply stop registering new candidates.
                self.positions[slot] = p;
            }
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

        // The match model bets on the predicted byte's bit while that byte agrees so far.
        self.expected = None;
        let mut matched = 0;
        if self.match_len > 0 {
            let predicted = u32::from(history.get(self.match_at).unwrap_or(0)) | 256;
            if predicted >> (bit_index + 1) == partial {
                let length = self.match_len.min(MATCH_LENGTHS - 1);
                let sure = i32::from(stretch(self.match_hits[length].p()));
                let expected = predicted >> bit_index & 1 == 1;
                self.expected = Some(expected);
                matched = if expected { sure } else { -sure };
            } else {
                self.match_len = 0;
            }
        }

        self.inputs = [
            i32::from(stretch(network)),
            i32::from(stretch(counters[0].p())),
            i32::from(stretch(counters[1].p())),
            i32::from(stretch(counters[2].p())),
            i32::from(stretch(counters[3].p())),
            matched,
            256,
        ];
        let state = match self.match_len {
            0 => 0,
            1..16 => 1,
            _ => 2,
        };
        self.set = state * 8 + bit_index;
        let dot: i64 = self.weights[self.set]
            .iter()
            .zip(&self.inputs)
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        let x = (dot >> 16).clamp(-2047, 2047) as i32;
        self.mixed = squash(x).clamp(1, 4095);
        self.mixed << 4
    }

    /// Learns from the coded `bit` (after [`Adaptive::predict`] for it).
    pub fn update(&mut self, bit: bool) {
        let error = (if bit { 4096 } else { 0 }) - i32::from(self.mixed);
        // |x| <= 2047 and |error * MIXER_RATE| <= 163,840: the product fits in i32 (no 64-bit
        // multiply on the board's hot path). The sum wraps as release builds always did, so a
        // pathological block (every bit against a saturated prediction, in blocks far over the
        // board's 16 KiB) cannot make a debug build panic.
        let scaled = error * MIXER_RATE;
        for (w, &x) in self.weights[self.set].iter_mut().zip(&self.inputs) {
            *w = w.wrapping_add((x * scaled) >> 16);
        }
        self.order0[self.slots[0]].update(bit);
        self.order1[self.slots[1]].update(bit);
        self.order2[self.slots[2]].update(bit);
        self.order3[self.slots[3]].update(bit);
        if let Some(expected) = self.expected {
            let length = self.match_len.min(MATCH_LENGTHS - 1);
            self.match_hits[length].update(expected == bit);
            if expected != bit {
                self.match_len = 0;
            }
        }
    }
}
