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
//! # fn demo(model: &dyn arca_runtime::engine::ByteModel) -> Result<(), arca_runtime::eiw::EiwError> {
//! use arca_runtime::eiw::{Tokenizer, Schedule};
//! let tok = Tokenizer::new(model, 16)?;
//! let windows = tok.encode(b"Alice was beginning to get very tired", &Schedule::default())?;
//! let ids: Vec<u64> = windows.ids().collect(); // one token per 16-bit window
//! assert_eq!(tok.decode(&windows, &Schedule::default())?, b"Alice was beginning to get very tired");
//! # let _ = ids; Ok(()) }
//! ```

mod config;
mod interval;
mod lanes;
mod token_file;
mod tokenizer;

#[cfg(test)]
mod tests;

pub use config::{DEFAULT_SEGMENT, EiwError, MAX_BITS, MIN_BITS, REVISION, Schedule, check_bits};
pub use token_file::{TOKEN_FILE_REVISION, TOKEN_MAGIC, TokenFile};
pub use tokenizer::{Tokenizer, Windows};
