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
//! # Raw windows
//!
//! A network that does not know the data (bytes it has never seen, binary files) can spend more
//! than 8 bits on a byte, so windows of such data would expand it. Since window rules
//! revision 2, every window of [`RAW_MIN_BITS`] or more starts with a *raw flag* (probability
//! 1/64): a raw window codes its bytes uniformly, 8 bits each, without the network. The encoder
//! builds both the network's window and the raw one at each window start and keeps the raw one
//! when it holds more bytes (never on a tie), so no window covers fewer bytes than raw bytes
//! would: at W = 128 a raw window holds 14 bytes or more (at most 9.2 bits per byte), at
//! W = 256, 30 or more. The flag costs a network window 0.023 bits. The decoder reads the
//! flag first, so both sides agree without any side information, and a raw window is still one
//! self-contained `W`-bit token: its code starts with six zero bits (raw windows take the bottom
//! 1/64 of the interval), then the bytes almost verbatim. For a language model trained on the
//! tokens this is a distinct, learnable token family, as the paper's windows are: every token
//! is still a fixed function of the text of its own window. Revision 1 streams and token files
//! (no flag) are still read; windows under 32 bits have no flag (a raw window could not hold
//! more than the one byte a network window always holds).
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

pub use config::{
    DEFAULT_SEGMENT, EiwError, MAX_BITS, MIN_BITS, OLDEST_REVISION, RAW_MIN_BITS, REVISION,
    Schedule, check_bits,
};
pub use token_file::{TOKEN_FILE_REVISION, TOKEN_MAGIC, TokenFile};
pub use tokenizer::{Tokenizer, Windows};
