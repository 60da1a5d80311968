//! arca-coder: the entropy-coding core of arca, `no_std` and allocation-free by default.
//!
//! * [`range`]: a range coder with 64-bit state that writes and reads `u32` words, with
//!   probabilities of up to 24 bits ([`RangeEncoder`], [`RangeDecoder`]).
//! * [`words`]: where words go and come from ([`WriteWords`], [`ReadWords`], cursors).
//! * [`quantize`]: the one place where model outputs (fixed-point or float logits, float
//!   probabilities) become integer frequency tables, with integer arithmetic only after a
//!   defined float-to-fixed step, so encoder and decoder build identical CDFs everywhere.
//! * [`logistic`]: integer `stretch`/`squash` for logistic mixing of binary predictions.
//!
//! Features: `alloc` adds [`WriteWords`] for `alloc::vec::Vec<u32>`; `std` implies `alloc`.
//! The error types implement `core::error::Error` (the same trait as `std::error::Error`)
//! in every configuration. No `unsafe`, and no input makes anything here panic.
//!
//! ```
//! use arca_coder::{quantize::{cumulative, quantize_logits}, RangeDecoder, RangeEncoder, WordCursor};
//!
//! let logits = [300, -20, 0, 45]; // Q6 nats
//! let mut freqs = [0u32; 4];
//! quantize_logits(&logits, 6, 24, &mut freqs).unwrap();
//! let mut cdf = [0u32; 5];
//! cumulative(&freqs, &mut cdf).unwrap();
//!
//! let message = [0, 0, 3, 1, 0, 2];
//! let mut enc = RangeEncoder::new(heapless::Vec::<u32, 32>::new());
//! for &s in &message {
//!     enc.encode_with_cdf(&cdf, s, 24).unwrap();
//! }
//! enc.encode_bit(true, 60000).unwrap();
//! let words = enc.finish().unwrap();
//!
//! let mut dec = RangeDecoder::new(WordCursor::new(&words)).unwrap();
//! for &s in &message {
//!     assert_eq!(dec.decode_with_cdf(&cdf, 24).unwrap(), s);
//! }
//! assert!(dec.decode_bit(60000).unwrap());
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod logistic;
pub mod quantize;
pub mod range;
pub mod words;

pub use quantize::{
    Cdf, QuantizeError, bit_probability, cumulative, logits_f32_to_fixed, quantize_logits,
    quantize_probs_f32, quantize_weights,
};
pub use range::{
    BIT_PRECISION, DecodeError, EncodeError, MAX_PRECISION, RangeDecoder, RangeEncoder,
};
pub use words::{BufferFull, ByteWordCursor, ReadWords, WordCursor, WriteWords, words_to_le_bytes};
