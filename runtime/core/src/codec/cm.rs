//! Context mixing: the adaptive half of the text predictor.
//!
//! A static byte model knows the language but not the file; these models learn the file as it
//! is coded. Each byte is coded as 8 binary decisions (most significant bit first). For every
//! decision a set of models predicts `P(bit = 1)`:
//!
//! - the network's byte distribution, turned into the probability of this bit given the bits
//!   already coded (from its integer CDF),
//! - order-0 to order-6 context models and a word model (hashed contexts of the preceding bytes,
//!   each slot an adaptive probability with a count-driven learning rate),
//! - a match model that follows the longest earlier repeat of the recent bytes and predicts the
//!   byte that came next there (this is what catches repetition far beyond the network's window),
//!
//! and a gated linear mixer in the logistic domain (weights chosen by the bit position and the
//! match state, learned online) combines them; two adaptive probability maps refine the result.
//!
//! Revision 3's extended profile (what `arca compress` writes for text) adds contexts that see
//! how text is laid out, which is what logs, tables, source code and markup repeat: the byte in
//! the same column of the previous line (with the column, and with the byte left), the line's
//! indentation and first two bytes, the identifier being read, the innermost open bracket, the
//! markup tag, word pairs and the bytes two and three back; a third mixer chosen by the
//! previous byte, and a small second layer that mixes the three mixers. Chosen on held-out text
//! (`mixed/valid`, `valid/` books, source and HTML of this machine's packages), never `eval/`:
//! 6.3% smaller there with the same network (1.264 to 1.184 bits per byte over 1.7 MB).
//!
//! Everything here is integer arithmetic, updated identically by encoder and decoder, so the
//! probabilities are bit-identical on every machine. The model is reset at every block (a new
//! [`Predictor`] per block), as is the network's context.
//!
//! [`code_block`] is the coder of the `text-cm` codec: one function codes a block in both
//! directions. The encoder and decoder differ only in the [`BitCoder`] (encode the known bit,
//! or decode it) and in how the network's distributions are fetched ([`CdfSource`]): the
//! encoder knows the whole block and asks the network for many positions in one batch, the
//! decoder asks for one position at a time. That is allowed because the shipped model is
//! integer-exact: its logits do not depend on batch shape (a test proves the two paths give
//! identical distributions).

use arca_coder::logistic::{squash, stretch};
use arca_coder::{ByteWordCursor, RangeDecoder, RangeEncoder};

use crate::engine::ByteModel;

use super::blocks::ENCODE_BATCH;
use super::error::CodecError;

/// Bits of precision of the network's byte distribution.
const NN_PRECISION: u32 = 24;
/// Coder precision recorded in the header: binary decisions with 16-bit probabilities.
pub(crate) const BIT_PRECISION: u8 = 16;
/// How often (in bytes) progress is reported from inside a block.
const PROGRESS_STEP: usize = 1 << 14;

/// Bumped whenever a change here changes the coded bits; stored in each stream's header.
/// Revision 2 starts every coded block with its [`Profile`] byte; revision 1 (no such byte,
/// every block [`Profile::FULL`]) is still read. Revision 3 adds [`Profile::extended`] (a
/// revision 2 block's byte never has it).
pub const REVISION: u16 = 3;
/// The oldest revision this build reads.
pub const OLDEST_REVISION: u16 = 1;

/// Which models code a `text-cm` block: recorded in the block's first byte (revision 2), so a
/// decoder needs nothing else to know, and blocks of one stream may differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Orders 1-4 and the match model with one mixer (no orders 5 and 7, word model, second
    /// mixer or probability maps): several times faster, a few percent larger.
    pub fast: bool,
    /// Contexts for binary data in place of orders 5 and 7 and the word model: the bytes two
    /// and three back, and, once the data shows a record length (the same two bytes recurring
    /// at one distance), the bytes one and two records back (a pixel row, a table's column).
    pub binary: bool,
    /// The network's prediction is mixed in (false: the context models alone, also for a
    /// stream made with a network, where a block's bytes are not what the network knows).
    pub network: bool,
    /// Text contexts of revision 3 beside those of [`FULL`](Self::FULL): the byte above (same
    /// column of the previous line) with the column and with the byte left, word pairs, the
    /// line's indentation, the bytes two and three back; a third mixer chosen by the previous
    /// byte and a mixer of the three mixers; learning rates retuned to them. Not with `fast`;
    /// with `binary` too (1.5-7% smaller, 4.5% in total, on held-out executables, fonts and
    /// tables).
    pub extended: bool,
}

impl Profile {
    /// Every model, with the network: what revision 1 coded every block with.
    pub const FULL: Profile = Profile {
        fast: false,
        binary: false,
        network: true,
        extended: false,
    };

    /// The byte that records it.
    pub fn byte(self) -> u8 {
        u8::from(self.fast)
            | u8::from(!self.network) << 1
            | u8::from(self.binary) << 2
            | u8::from(self.extended) << 3
    }

    /// The profile a block's first byte records, if it is one (the binary contexts replace
    /// models the fast set leaves out, so the two do not go together, nor do the fast set and
    /// the extended contexts).
    pub fn from_byte(byte: u8) -> Option<Profile> {
        let profile = Profile {
            fast: byte & 1 == 1,
            network: byte & 2 == 0,
            binary: byte & 4 == 4,
            extended: byte & 8 == 8,
        };
        let alone = |a: bool, b: bool| !(a && b);
        (byte < 16 && alone(profile.fast, profile.binary) && alone(profile.extended, profile.fast))
            .then_some(profile)
    }
}

/// Orders the fast profile keeps (the first `FAST_ORDERS` of [`ORDERS`]).
const FAST_ORDERS: usize = 4;

/// Orders of the hashed context models (bytes of context). Order 0 is a direct table.
const ORDERS: [usize; 6] = [1, 2, 3, 4, 5, 7];
/// Contexts of the extended profile: word pair, column and byte above, byte above and byte
/// left, bytes two and three back, indentation and order 2, identifier, innermost open
/// bracket, the line's first two non-blank bytes, markup tag.
const EXTRA: usize = 9;
/// Open brackets the extended profile remembers (deeper ones count but are not kept).
const BRACKETS: usize = 64;
/// Inputs to the mixer: network (2), order 0, hashed orders, word, match (2), bias, the
/// extended profile's contexts (0 without it, which leaves the other weights' arithmetic as it
/// was).
const N_INPUTS: usize = 2 + 1 + ORDERS.len() + 1 + 2 + 1 + EXTRA;
/// Smallest length of an earlier repeat the match model follows.
const MATCH_MIN: usize = 6;
/// The same for binary data (shorter repeats carry there: addresses, opcodes, field values).
const BINARY_MATCH_MIN: usize = 5;
/// The same for the extended profile (its other contexts make up for a short repeat's
/// false starts).
const EXTENDED_MATCH_MIN: usize = 4;
/// Longest match length the model distinguishes.
const MATCH_MAX: usize = 65535;

/// Reciprocal table for count-driven learning rates: `65536 / (n + 1.5)`.
const fn recip_table() -> [u32; 1024] {
    let mut t = [0u32; 1024];
    let mut n = 0;
    while n < 1024 {
        t[n] = 65536 * 2 / (2 * n as u32 + 3);
        n += 1;
    }
    t
}
static RECIP: [u32; 1024] = recip_table();

/// An adaptive probability with a count: 22 bits of probability, 10 bits of count.
#[derive(Clone, Copy)]
struct Counter(u32);

impl Counter {
    const HALF: Counter = Counter(1 << 31);

    #[inline]
    fn p12(self) -> u32 {
        self.0 >> 20
    }

    #[inline]
    fn update(&mut self, bit: bool, limit: u32) {
        let n = self.0 & 1023;
        let p = i64::from(self.0 >> 10);
        let target = if bit { (1i64 << 22) - 1 } else { 0 };
        let p = p + (((target - p) * i64::from(RECIP[n as usize])) >> 16);
        let n = if n < limit { n + 1 } else { n };
        self.0 = ((p as u32) << 10) | n;
    }
}

/// A table of counters indexed by a hashed context.
struct HashedCounters {
    slots: Vec<Counter>,
    mask: usize,
}

impl HashedCounters {
    fn new(bits: u32) -> Self {
        HashedCounters {
            slots: vec![Counter::HALF; 1 << bits],
            mask: (1 << bits) - 1,
        }
    }
}

/// Adaptive probability map: refines a probability given a small context by interpolating
/// between 33 buckets of its stretched value.
struct Apm {
    t: Vec<u16>,
    index: usize,
}

impl Apm {
    fn new(contexts: usize) -> Self {
        // Every context starts as the identity map; build one row and repeat it (a block
        // creates 65,536 contexts, so squashing per context would dominate small blocks).
        let mut row = [0u16; 33];
        for (j, r) in row.iter_mut().enumerate() {
            *r = (u32::from(squash((j as i32 - 16) * 128)) * 16).min(65535) as u16;
        }
        let t = row.repeat(contexts);
        Apm { t, index: 0 }
    }

    /// Refined 12-bit probability of `p12` in context `cx`.
    fn refine(&mut self, p12: u32, cx: usize) -> u32 {
        let s = i32::from(stretch(p12 as u16)) + 2048;
        let lo = (s >> 7) as usize;
        let w = (s & 127) as u32;
        let base = cx * 33 + lo.min(31);
        self.index = if w < 64 { base } else { base + 1 };
        let a = u32::from(self.t[base]);
        let b = u32::from(self.t[base + 1]);
        ((a * (128 - w) + b * w) >> 11).clamp(1, 4095)
    }

    fn update(&mut self, bit: bool, rate: u32) {
        let g = if bit { 65535i32 } else { 0 };
        let v = i32::from(self.t[self.index]);
        self.t[self.index] = (v + ((g - v) >> rate)) as u16;
    }
}

/// A gated linear mixer in the logistic domain with `sets` weight vectors of `width` inputs.
struct Mixer {
    weights: Vec<i32>,
    width: usize,
    set: usize,
    dot: i32,
    p12: u32,
}

impl Mixer {
    /// `sets` weight vectors of `width` inputs, every weight `1 / spread`.
    fn new(sets: usize, width: usize, spread: i32) -> Self {
        Mixer {
            weights: vec![(1 << 16) / spread; sets * width],
            width,
            set: 0,
            dot: 0,
            p12: 2048,
        }
    }

    /// Mixes `inputs` (the first inputs of a set; weights of inputs left out stay as they are).
    fn mix(&mut self, inputs: &[i32], set: usize) -> u32 {
        self.set = set * self.width;
        let w = &self.weights[self.set..self.set + self.width];
        let mut dot: i64 = 0;
        for (x, w) in inputs.iter().zip(w) {
            dot += i64::from(*x) * i64::from(*w);
        }
        self.dot = ((dot >> 16) as i32).clamp(-2047, 2047);
        self.p12 = u32::from(squash(self.dot));
        self.p12
    }

    fn update(&mut self, inputs: &[i32], bit: bool, rate: i32) {
        let err = ((i32::from(bit) << 12) - self.p12 as i32) * rate;
        let w = &mut self.weights[self.set..self.set + self.width];
        for (x, w) in inputs.iter().zip(w.iter_mut()) {
            *w = w.wrapping_add((x * err + 0x8000) >> 16);
        }
    }
}

/// The adaptive predictor of one block: feed it the network's byte CDF at each byte boundary,
/// ask it for `P(bit = 1)`, tell it the bit.
pub struct Predictor {
    // Byte state.
    history: Vec<u8>,
    c0: u32,
    bit_pos: u32,
    hashes: [u32; ORDERS.len()],
    word_hash: u32,
    word_ctx: u32,
    // Models.
    order0: Vec<Counter>,
    orders: Vec<HashedCounters>,
    word: HashedCounters,
    slot_index: [usize; ORDERS.len() + 1],
    match_table: Vec<u32>,
    match_ptr: usize,
    match_len: usize,
    match_byte: u32,
    match_counters: Vec<Counter>,
    match_slot: usize,
    nn_cdf: [u32; 257],
    nn_valid: bool,
    nn_counters: Vec<Counter>,
    nn_slot: usize,
    // Mixing.
    inputs: [i32; N_INPUTS],
    /// How many of `inputs` a profile uses: without the extended contexts theirs are always 0
    /// and left out of the mixers' sums (same result, less work).
    active: usize,
    mixer: Mixer,
    mixer2: Mixer,
    apm_order0: Apm,
    apm_order1: Apm,
    p_mix: u32,
    p_final: u32,
    /// Hashed orders computed per byte: all of [`ORDERS`], or the first [`FAST_ORDERS`] (the
    /// fast profile has no others; the binary one puts its own contexts in their slots).
    active_orders: usize,
    fast: bool,
    /// The binary profile's record model, if it is on.
    records: Option<Records>,
    /// The extended profile's contexts and mixers, if it is on.
    extended: Option<Box<Extended>>,
    /// Learning rates: the mixers', the probability maps' (a shift), and the count limits of
    /// the hashed orders and word model.
    mixer_rate: i32,
    apm_rate: u32,
    order_limit: u32,
    word_limit: u32,
}

/// What the extended profile adds: contexts that see a text's layout (the byte above in the
/// previous line, the indentation) and its words in pairs, and a second mixing layer.
struct Extended {
    /// The word before the current one (hash), the line's start and the previous line's.
    prev_word: u32,
    line_start: usize,
    prev_line_start: usize,
    /// Leading blanks of the line so far, and whether only blanks have come yet.
    indent: u32,
    in_indent: bool,
    /// The identifier being read (letters, digits, `_`; case kept), hashed.
    ident: u32,
    /// Open brackets (`([{<`), innermost last, and how many are open.
    brackets: [u8; BRACKETS],
    depth: usize,
    /// The line's first two non-blank bytes, and how many of them have come.
    head: u32,
    head_len: u32,
    /// The last markup tag's name (`<name` or `</name`, hashed), whether it is still open
    /// (no `>` yet) and whether its name is still being read.
    tag: u32,
    in_tag: bool,
    tag_name: bool,
    hashes: [u32; EXTRA],
    slots: [usize; EXTRA],
    tables: Vec<HashedCounters>,
    /// Weights chosen by the previous byte and the bit position.
    mixer3: Mixer,
    /// The second layer: mixes the three mixers' outputs (stretched, and a bias), weights per
    /// bit position.
    last: Mixer,
    last_inputs: [i32; 4],
}

impl Extended {
    fn new(bits: u32) -> Self {
        Extended {
            prev_word: 0,
            line_start: 0,
            prev_line_start: 0,
            indent: 0,
            in_indent: true,
            ident: 0,
            brackets: [0; BRACKETS],
            depth: 0,
            head: 0,
            head_len: 0,
            tag: 0,
            in_tag: false,
            tag_name: false,
            hashes: [0; EXTRA],
            slots: [0; EXTRA],
            // Half the orders' size: 36 MB less per worker at 1 MiB blocks than full size, for
            // 0.35% more bits on held-out text.
            tables: (0..EXTRA).map(|_| HashedCounters::new(bits - 1)).collect(),
            mixer3: Mixer::new(256 * 8, N_INPUTS, 8),
            last: Mixer::new(8, 4, 3),
            last_inputs: [0; 4],
        }
    }

    /// Notes the byte just appended to `history`; `word` is the word model's hash after it.
    fn end_byte(&mut self, history: &[u8], word: u32) {
        let n = history.len();
        let byte = history[n - 1];
        let blank = byte == b' ' || byte == b'\t';
        if byte == b'\n' {
            self.prev_line_start = self.line_start;
            self.line_start = n;
            self.indent = 0;
            self.in_indent = true;
            self.head = 0;
            self.head_len = 0;
        } else {
            if self.in_indent && blank {
                self.indent += 1;
            } else {
                self.in_indent = false;
            }
            if self.head_len < 2 && !blank {
                self.head = self.head << 8 | u32::from(byte);
                self.head_len += 1;
            }
        }
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            self.ident = (self.ident ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        } else {
            self.ident = 0;
        }
        match byte {
            b'(' | b'[' | b'{' | b'<' => {
                if let Some(slot) = self.brackets.get_mut(self.depth) {
                    *slot = byte;
                }
                self.depth = self.depth.saturating_add(1);
            }
            b')' | b']' | b'}' | b'>' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        match byte {
            b'<' => {
                self.in_tag = true;
                self.tag_name = true;
                self.tag = 0x55;
            }
            b'>' => {
                self.in_tag = false;
                self.tag_name = false;
            }
            _ if self.tag_name => {
                if byte.is_ascii_alphanumeric() || byte == b'/' {
                    self.tag = (self.tag ^ u32::from(byte)).wrapping_mul(0x0100_0193);
                } else {
                    self.tag_name = false;
                }
            }
            _ => {}
        }
        let innermost = match self.depth {
            0 => 0,
            d => self.brackets.get(d - 1).map_or(0, |&b| u32::from(b)),
        };
        let col = n - self.line_start;
        // The byte in the same column of the previous line (its newline included), plus one;
        // 0 where there is none.
        let above = if self.line_start > 0 && col < self.line_start - self.prev_line_start {
            u32::from(history[self.prev_line_start + col]) + 1
        } else {
            0
        };
        let back = |k: usize| n.checked_sub(k).map_or(0, |i| u32::from(history[i]));
        let byte = u32::from(byte);
        self.hashes = [
            mix32(
                0x1000_0001
                    ^ word.wrapping_mul(3)
                    ^ self.prev_word.wrapping_mul(0x2F0F_1F0B)
                    ^ byte << 24,
            ),
            mix32(0x2000_0002 ^ (col.min(255) as u32) << 8 ^ above << 16),
            mix32(0x3000_0003 ^ above << 8 ^ byte << 16),
            mix32(0x4000_0004 ^ back(2) << 8 ^ back(3) << 16),
            mix32(0x5000_0005 ^ self.indent.min(63) << 20 ^ byte << 8 ^ back(2)),
            mix32(0x7000_0007 ^ self.ident ^ byte << 24),
            mix32(0x8000_0008 ^ innermost << 8 ^ (self.depth.min(15) as u32) << 16 ^ byte << 20),
            mix32(0x9000_0009 ^ self.head << 8 ^ byte),
            mix32(
                0x6600_0006 ^ self.tag ^ u32::from(self.in_tag) << 31 ^ byte << 20 ^ back(2) << 8,
            ),
        ];
    }
}

/// Finds a record length in binary data: the distance at which two-byte contexts keep
/// recurring (a bitmap's row, a table's record).
struct Records {
    /// Per two-byte context: where it last ended, and the distance before that.
    last: Vec<u32>,
    gap: Vec<u32>,
    candidate: usize,
    votes: u32,
    /// The record length in use (0: none found yet).
    length: usize,
}

impl Records {
    fn new() -> Self {
        Records {
            last: vec![0; 1 << 16],
            gap: vec![0; 1 << 16],
            candidate: 0,
            votes: 0,
            length: 0,
        }
    }

    /// Notes that `history` grew by one byte.
    fn update(&mut self, history: &[u8]) {
        let n = history.len();
        if n < 2 {
            return;
        }
        let key = usize::from(history[n - 2]) << 8 | usize::from(history[n - 1]);
        let last = self.last[key] as usize;
        if last > 0 {
            let d = n - last;
            // Two equal gaps in a row for one context vote for that length.
            if d > 1 && d as u32 == self.gap[key] {
                if d == self.candidate {
                    self.votes += 1;
                } else {
                    self.candidate = d;
                    self.votes = 1;
                }
                if self.votes >= 8 {
                    self.length = d;
                }
            }
            self.gap[key] = d as u32;
        }
        self.last[key] = n as u32;
    }
}

impl Predictor {
    /// A fresh predictor for a block of about `block_len` bytes (sizes the hash tables), with
    /// the context models of `profile` (its `network` is the caller's: the CDFs it passes).
    pub fn new(block_len: usize, profile: Profile) -> Self {
        let Profile {
            fast,
            binary,
            extended,
            ..
        } = profile;
        let bits = table_bits(block_len);
        let active_orders = if fast || binary {
            FAST_ORDERS
        } else {
            ORDERS.len()
        };
        let spread = if extended { 8 } else { 4 };
        // Models the fast profile leaves out get no memory.
        let unless_fast = |n: usize| if fast { 0 } else { n };
        Predictor {
            history: Vec::with_capacity(block_len),
            c0: 1,
            bit_pos: 0,
            hashes: [0; ORDERS.len()],
            word_hash: 0,
            word_ctx: 0,
            order0: vec![Counter::HALF; 256],
            orders: (0..if fast { FAST_ORDERS } else { ORDERS.len() })
                .map(|_| HashedCounters::new(bits))
                .collect(),
            word: HashedCounters::new(if fast { 0 } else { bits }),
            slot_index: [0; ORDERS.len() + 1],
            match_table: vec![u32::MAX; 1 << (bits - 2)],
            match_ptr: 0,
            match_len: 0,
            match_byte: 0,
            match_counters: vec![Counter::HALF; 64 * 2],
            match_slot: 0,
            nn_cdf: [0; 257],
            nn_valid: false,
            nn_counters: vec![Counter::HALF; 4096],
            nn_slot: 0,
            inputs: [0; N_INPUTS],
            active: if extended { N_INPUTS } else { N_INPUTS - EXTRA },
            mixer: Mixer::new(256, N_INPUTS, spread),
            mixer2: Mixer::new(unless_fast(64 * 8), N_INPUTS, spread),
            apm_order0: Apm::new(unless_fast(256)),
            apm_order1: Apm::new(unless_fast(256 * 256)),
            p_mix: 2048,
            p_final: 2048,
            active_orders,
            fast,
            records: binary.then(Records::new),
            extended: extended.then(|| Box::new(Extended::new(bits))),
            // Retuned with the extended contexts (held-out text): faster mixers, counters
            // that keep adapting sooner.
            mixer_rate: if extended { 60 } else { 20 },
            apm_rate: if extended { 6 } else { 7 },
            order_limit: if extended { 30 } else { 60 },
            word_limit: if extended { 60 } else { 250 },
        }
        .primed()
    }

    fn primed(mut self) -> Self {
        self.predict();
        self
    }

    /// Sets the network's cumulative distribution for the next byte: 257 entries, `cdf[0] = 0`,
    /// strictly increasing (every byte has frequency >= 1). Call at a byte boundary, before the
    /// first [`p1`](Self::p1) of the byte; `None` means no network prediction.
    pub fn set_network_cdf(&mut self, cdf: Option<&[u32; 257]>) {
        match cdf {
            Some(c) => {
                self.nn_cdf = *c;
                self.nn_valid = true;
            }
            None => self.nn_valid = false,
        }
        self.predict();
    }

    /// Probability that the next bit is 1, in units of 2^-16, in `1..=65535`.
    pub fn p1(&self) -> u16 {
        (self.p_final * 16 + 8).clamp(1, 65535) as u16
    }

    /// Network-only probability of the next bit (units of 2^-16), for diagnostics.
    fn network_p16(&self) -> u32 {
        if !self.nn_valid {
            return 32768;
        }
        // The current byte's symbols with the bits coded so far form the range [lo, hi); the
        // next bit splits it at mid.
        let depth = self.bit_pos;
        let prefix = self.c0 - (1 << depth);
        let width = 256u32 >> depth;
        let lo = (prefix * width) as usize;
        let mid = lo + (width / 2) as usize;
        let hi = lo + width as usize;
        let total = u64::from(self.nn_cdf[hi] - self.nn_cdf[lo]);
        let ones = u64::from(self.nn_cdf[hi] - self.nn_cdf[mid]);
        if total == 0 {
            return 32768;
        }
        ((ones << 16) / total).clamp(1, 65535) as u32
    }

    fn predict(&mut self) {
        let c0 = self.c0 as usize;
        let mut i = 0;

        // Network: its probability, and the same refined by an adaptive map of its confidence.
        let nn16 = self.network_p16();
        let nn12 = (nn16 >> 4).clamp(1, 4095);
        let st = i32::from(stretch(nn12 as u16));
        self.inputs[i] = st;
        i += 1;
        self.nn_slot = (((st + 2048) >> 6) as usize).min(63) * 64 + (c0 & 63);
        self.inputs[i] = i32::from(stretch(self.nn_counters[self.nn_slot].p12() as u16));
        i += 1;

        // Order 0.
        self.inputs[i] = i32::from(stretch(self.order0[c0].p12() as u16));
        i += 1;

        // Hashed orders and the word model.
        let c0h = (self.c0).wrapping_mul(0x9E37_79B1);
        for k in 0..ORDERS.len() {
            self.inputs[i] = match self.orders.get(k) {
                Some(t) => {
                    let idx = (mix32(self.hashes[k] ^ c0h) as usize) & t.mask;
                    self.slot_index[k] = idx;
                    i32::from(stretch(t.slots[idx].p12() as u16))
                }
                None => 0,
            };
            i += 1;
        }
        if !self.fast {
            let idx = (mix32(self.word_ctx ^ c0h) as usize) & self.word.mask;
            self.slot_index[ORDERS.len()] = idx;
            self.inputs[i] = i32::from(stretch(self.word.slots[idx].p12() as u16));
        }
        i += 1;

        // Match model: the bit the earlier repeat predicts, if the byte so far agrees with it.
        let expected = (self.match_byte | 0x100) >> (8 - self.bit_pos);
        if self.match_len > 0 && expected == self.c0 {
            let bit = (self.match_byte >> (7 - self.bit_pos)) & 1;
            let len_bucket = match_bucket(self.match_len);
            self.match_slot = len_bucket * 2 + bit as usize;
            let p = self.match_counters[self.match_slot].p12();
            self.inputs[i] = i32::from(stretch(p as u16));
            let sign = if bit == 1 { 1 } else { -1 };
            self.inputs[i + 1] = sign * (len_bucket as i32 * 32).min(1024);
        } else {
            self.match_slot = usize::MAX;
            self.inputs[i] = 0;
            self.inputs[i + 1] = 0;
        }
        i += 2;
        self.inputs[i] = 256;
        i += 1;
        if let Some(x) = &mut self.extended {
            for k in 0..EXTRA {
                let t = &x.tables[k];
                let idx = (mix32(x.hashes[k] ^ c0h) as usize) & t.mask;
                x.slots[k] = idx;
                self.inputs[i + k] = i32::from(stretch(t.slots[idx].p12() as u16));
            }
        }

        let m_state = if self.match_slot == usize::MAX {
            0
        } else {
            1 + match_bucket(self.match_len).min(62)
        };
        let inputs = &self.inputs[..self.active];
        let p1 = self.mixer.mix(inputs, c0);
        if self.fast {
            self.p_mix = p1;
            self.p_final = p1.clamp(1, 4095);
            return;
        }
        let p2 = self.mixer2.mix(inputs, m_state * 8 + self.bit_pos as usize);
        let c1 = self.history.last().copied().unwrap_or(0) as usize;
        self.p_mix = match &mut self.extended {
            Some(x) => {
                let p3 = x.mixer3.mix(inputs, c1 * 8 + self.bit_pos as usize);
                let st = |p: u32| i32::from(stretch(p as u16));
                x.last_inputs = [st(p1), st(p2), st(p3), 256];
                x.last.mix(&x.last_inputs, self.bit_pos as usize)
            }
            None => (p1 + p2 + 1) >> 1,
        };

        let a0 = self.apm_order0.refine(self.p_mix, c0);
        let a1 = self.apm_order1.refine(self.p_mix, c0 | (c1 << 8));
        self.p_final = ((2 * self.p_mix + a0 + a1 + 2) >> 2).clamp(1, 4095);
    }

    /// Tells the predictor the bit that was coded and prepares the next prediction.
    pub fn update(&mut self, bit: bool) {
        let c0 = self.c0 as usize;
        self.nn_counters[self.nn_slot].update(bit, 255);
        self.order0[c0].update(bit, 60);
        for (k, table) in self.orders.iter_mut().enumerate() {
            table.slots[self.slot_index[k]].update(bit, self.order_limit);
        }
        if self.match_slot != usize::MAX {
            self.match_counters[self.match_slot].update(bit, 1023);
        }
        let inputs = &self.inputs[..self.active];
        self.mixer.update(inputs, bit, self.mixer_rate);
        if !self.fast {
            let idx = self.slot_index[ORDERS.len()];
            self.word.slots[idx].update(bit, self.word_limit);
            self.mixer2.update(inputs, bit, self.mixer_rate);
            self.apm_order0.update(bit, self.apm_rate);
            self.apm_order1.update(bit, self.apm_rate);
        }
        if let Some(x) = &mut self.extended {
            for (table, &slot) in x.tables.iter_mut().zip(&x.slots) {
                table.slots[slot].update(bit, 60);
            }
            x.mixer3.update(inputs, bit, self.mixer_rate);
            x.last.update(&x.last_inputs, bit, 10);
        }

        self.c0 = (self.c0 << 1) | u32::from(bit);
        self.bit_pos += 1;
        if self.bit_pos == 8 {
            let byte = (self.c0 & 0xFF) as u8;
            self.end_byte(byte);
        }
        self.predict();
    }

    fn end_byte(&mut self, byte: u8) {
        self.history.push(byte);
        self.c0 = 1;
        self.bit_pos = 0;
        let n = self.history.len();

        // Context hashes of the last k bytes.
        for (k, &order) in ORDERS.iter().enumerate().take(self.active_orders) {
            let mut h = (order as u32 + 1).wrapping_mul(0x2545_F491);
            for &b in &self.history[n.saturating_sub(order)..] {
                h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
            self.hashes[k] = mix32(h);
        }
        // Word model: letters since the last non-letter, case folded, plus the byte before.
        if byte.is_ascii_alphabetic() {
            let lower = byte.to_ascii_lowercase();
            self.word_hash = (self.word_hash ^ u32::from(lower)).wrapping_mul(0x0100_0193);
        } else if self.word_hash != 0 {
            if let Some(x) = &mut self.extended {
                x.prev_word = self.word_hash;
            }
            self.word_hash = 0;
        }
        if let Some(x) = &mut self.extended {
            x.end_byte(&self.history, self.word_hash);
        }
        if let Some(records) = &mut self.records {
            // Binary data: orders 5 and 7 and the word model give way to sparse and record
            // contexts (their slots, other hashes).
            records.update(&self.history);
            let back = |k: usize| {
                n.checked_sub(k)
                    .map_or(0, |i| u32::from(self.history[i]) + 1)
            };
            // Until a record length shows, 4: the previous 32-bit word (numbers, instructions).
            let r = if records.length > 0 {
                records.length
            } else {
                4
            };
            let (above, above2) = (back(r), back(2 * r));
            self.hashes[4] = mix32(0x51ED_27A3 ^ back(2) << 9 ^ back(3) << 18);
            self.hashes[5] =
                mix32(0x7A5B_1C2D ^ above << 9 ^ u32::from(byte) << 18 ^ (r as u32) << 27);
            self.word_ctx = mix32(0x3C6E_F372 ^ above << 9 ^ above2 << 18 ^ back(r + 1) << 27);
        } else {
            self.word_ctx =
                mix32(self.word_hash.wrapping_add(0x7F4A_7C15) ^ (u32::from(byte) << 24));
        }

        // Match model: extend the current match or look for a new one.
        if self.match_len > 0 {
            if self.match_byte == u32::from(byte) && self.match_ptr + 1 < n {
                self.match_len = (self.match_len + 1).min(MATCH_MAX);
                self.match_ptr += 1;
            } else {
                self.match_len = 0;
            }
        }
        let match_min = if self.records.is_some() {
            BINARY_MATCH_MIN
        } else if self.extended.is_some() {
            EXTENDED_MATCH_MIN
        } else {
            MATCH_MIN
        };
        if n >= match_min {
            let mut h: u32 = 0;
            for &b in &self.history[n - match_min..] {
                h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
            let slot = (mix32(h) as usize) & (self.match_table.len() - 1);
            if self.match_len == 0 {
                let cand = self.match_table[slot];
                if cand != u32::MAX {
                    let cand = cand as usize;
                    let mut len = 0;
                    while len < 255
                        && len < cand
                        && self.history[cand - 1 - len] == self.history[n - 1 - len]
                    {
                        len += 1;
                    }
                    if len >= match_min {
                        self.match_len = len;
                        self.match_ptr = cand;
                    }
                }
            }
            self.match_table[slot] = n as u32;
        }
        self.match_byte = if self.match_len > 0 {
            u32::from(self.history[self.match_ptr])
        } else {
            0
        };
    }
}

fn match_bucket(len: usize) -> usize {
    if len < 16 {
        len
    } else {
        (16 + (len - 16) / 8).min(63)
    }
}

/// Hash table size (log2 slots) for a block of `len` bytes: about 2 slots per coded bit,
/// between 2^16 and 2^22.
fn table_bits(len: usize) -> u32 {
    let want = (len.max(1) * 2).next_power_of_two().trailing_zeros();
    want.clamp(16, 22)
}

#[inline]
fn mix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^= h >> 16;
    h
}

/// One binary decision through the range coder, in either direction.
pub(crate) trait BitCoder {
    /// Codes a bit with `P(1) = p1 / 2^16`. The encoder codes `bit` and returns it; the decoder
    /// ignores `bit` and returns the decoded one.
    fn code(&mut self, bit: bool, p1: u16) -> Result<bool, CodecError>;
}

pub(crate) struct Encoding(pub(crate) RangeEncoder<Vec<u32>>);

impl BitCoder for Encoding {
    #[inline]
    fn code(&mut self, bit: bool, p1: u16) -> Result<bool, CodecError> {
        self.0
            .encode_bit(bit, p1)
            .map_err(|e| CodecError::Options(format!("range coder: {e:?}")))?;
        Ok(bit)
    }
}

pub(crate) struct Decoding<'a>(pub(crate) RangeDecoder<ByteWordCursor<'a>>);

impl BitCoder for Decoding<'_> {
    #[inline]
    fn code(&mut self, _bit: bool, p1: u16) -> Result<bool, CodecError> {
        // A decoder error can only come from malformed data; report it as corruption of the
        // block being decoded (the caller maps the index).
        self.0
            .decode_bit(p1)
            .map_err(|_| CodecError::BlockCorrupt { index: usize::MAX })
    }
}

/// Where the network's distribution for each position of a block comes from.
pub(crate) trait CdfSource {
    /// The cumulative distribution (257 entries, total `2^24`) of the byte at `pos`, given the
    /// block's bytes before it (`history`, exactly `pos` bytes).
    fn cdf(&mut self, pos: usize, history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError>;
}

/// Writes the network context of position `pos` (the `n` bytes before it, PAD before the
/// block's start) into `out`.
fn context_at(history: &[u8], pos: usize, n: usize, pad: u16, out: &mut [u16]) {
    for (j, slot) in out.iter_mut().enumerate().take(n) {
        // Slot j holds the byte at pos - n + j.
        *slot = match (pos + j).checked_sub(n) {
            Some(i) => u16::from(history[i]),
            None => pad,
        };
    }
}

/// Turns a row of fixed-point logits into a cumulative table.
fn logits_to_cdf(logits: &[i32], frac_bits: u32, cdf: &mut [u32; 257]) -> Result<(), CodecError> {
    let mut freqs = [0u32; 256];
    arca_coder::quantize_logits(logits, frac_bits, NN_PRECISION, &mut freqs).map_err(|e| {
        CodecError::Model(format!("logits do not form a distribution: {e:?}").into())
    })?;
    arca_coder::cumulative(&freqs, cdf)
        .map_err(|e| CodecError::Model(format!("cannot build a CDF: {e:?}").into()))
}

/// The encoder's source: the whole block is known, so positions are evaluated in batches.
pub(crate) struct BatchedSource<'m, M: ByteModel + ?Sized> {
    pub(crate) model: &'m M,
    pub(crate) data: &'m [u8],
    pub(crate) start: usize,
    pub(crate) cdfs: Vec<[u32; 257]>,
    pub(crate) contexts: Vec<u16>,
    pub(crate) logits: Vec<i32>,
}

impl<M: ByteModel + ?Sized> CdfSource for BatchedSource<'_, M> {
    fn cdf(&mut self, pos: usize, _history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError> {
        if pos < self.start || pos >= self.start + self.cdfs.len() {
            let n = self.model.context_len();
            let batch = ENCODE_BATCH.min(self.data.len() - pos);
            self.contexts.resize(batch * n, 0);
            for b in 0..batch {
                let row = &mut self.contexts[b * n..(b + 1) * n];
                context_at(self.data, pos + b, n, self.model.pad_id(), row);
            }
            self.model
                .logits(&self.contexts, batch, &mut self.logits)
                .map_err(CodecError::Model)?;
            self.cdfs.resize(batch, [0; 257]);
            let frac = self.model.logit_frac_bits();
            for b in 0..batch {
                logits_to_cdf(
                    &self.logits[b * 256..(b + 1) * 256],
                    frac,
                    &mut self.cdfs[b],
                )?;
            }
            self.start = pos;
        }
        Ok(self.cdfs.get(pos - self.start))
    }
}

/// The decoder's source: one position at a time, from the bytes decoded so far.
pub(crate) struct StepSource<'m, M: ByteModel + ?Sized> {
    pub(crate) model: &'m M,
    pub(crate) cdf: [u32; 257],
    pub(crate) context: Vec<u16>,
    pub(crate) logits: Vec<i32>,
}

impl<M: ByteModel + ?Sized> CdfSource for StepSource<'_, M> {
    fn cdf(&mut self, pos: usize, history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError> {
        let n = self.model.context_len();
        self.context.resize(n, 0);
        context_at(history, pos, n, self.model.pad_id(), &mut self.context);
        self.model
            .logits(&self.context, 1, &mut self.logits)
            .map_err(CodecError::Model)?;
        logits_to_cdf(
            &self.logits[..256],
            self.model.logit_frac_bits(),
            &mut self.cdf,
        )?;
        Ok(Some(&self.cdf))
    }
}

/// A source for "no network": the context models alone.
pub(crate) struct NoNetwork;

impl CdfSource for NoNetwork {
    fn cdf(&mut self, _pos: usize, _history: &[u8]) -> Result<Option<&[u32; 257]>, CodecError> {
        Ok(None)
    }
}

/// Codes one block of `len` bytes. Encoding: `plain` is the block. Decoding: `plain` is empty
/// and the decoded bytes are returned. The same steps run in the same order either way.
pub(crate) fn code_block<C: BitCoder, S: CdfSource>(
    coder: &mut C,
    source: &mut S,
    plain: &[u8],
    len: usize,
    profile: Profile,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(len);
    let mut predictor = Predictor::new(len, profile);
    for pos in 0..len {
        let cdf = source.cdf(pos, &out)?;
        predictor.set_network_cdf(cdf);
        let byte = plain.get(pos).copied().unwrap_or(0);
        let mut c = 0u32;
        for i in (0..8).rev() {
            let bit = coder.code((byte >> i) & 1 == 1, predictor.p1())?;
            predictor.update(bit);
            c = (c << 1) | u32::from(bit);
        }
        out.push(c as u8);
        if (pos + 1) % PROGRESS_STEP == 0 {
            progress(PROGRESS_STEP as u64);
        }
    }
    progress((len % PROGRESS_STEP) as u64);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_stay_inside_the_coder_range() {
        for byte in [0, 1, 2, 3, 4, 6, 8, 10, 12, 14] {
            let profile = Profile::from_byte(byte).unwrap();
            let mut p = Predictor::new(1024, profile);
            for &bit in &[true, false, true] {
                let p1 = p.p1();
                assert!((1..=65535).contains(&p1));
                p.update(bit);
            }
        }
    }

    #[test]
    fn profiles_are_one_byte_each() {
        for byte in 0..=255u8 {
            match Profile::from_byte(byte) {
                Some(p) => assert_eq!(p.byte(), byte),
                None => assert!(![0, 1, 2, 3, 4, 6, 8, 10, 12, 14].contains(&byte)),
            }
        }
        assert_eq!(Profile::FULL.byte(), 0);
    }
}
