//! The native integer engine: integer-exact MLPs evaluated with integer kernels in Rust.
//!
//! # Why hand-written
//!
//! Decoding is inherently sequential: one model call per byte, batch 1. tract runs the
//! f32-carrier graph of `text-small` at that shape in about 170 µs per call on this project's
//! 2-core reference machine, most of it per-call overhead and f32 kernels on 1-row matrices.
//! The same arithmetic as i16 x i8 dot products with i32 accumulation takes about a third of
//! that, and because every value is an integer whose sums are proven not to overflow, the
//! result is *bit-identical* to tract's on every CPU (integer addition does not depend on
//! order). That is the determinism contract's rule 3, so the engine is a pure speed-up: streams
//! do not depend on which engine wrote or reads them (tested against tract in this module and
//! end to end in `tests/`).
//!
//! # What it runs
//!
//! [`lower`] pattern-matches the ONNX graph as a chain from the `context` input to the logits:
//!
//! ```text
//! Gather(E[V, D], context) -> Flatten(axis 1)                  embedding, x: [N*D]
//! ( MatMul(x, W[K, M]) -> Cast(INT32) | MatMulInteger(x, W) )  acc = x . W (exact integers)
//!   -> { Mul | Add | Sub | Div by per-channel or scalar int constants, Clip(lo, hi) }*
//!   -> Gather(T[L], idx)                                        table nonlinearity, next x
//!   ... repeated ..., the last dense layer's int32 channels are the logits
//! ```
//!
//! which is what `models/export_text.py` emits. Lowering does an interval analysis of every
//! intermediate, channel by channel, from the actual weights: it refuses (and the caller falls
//! back to tract) unless every carrier value is an integer, every partial dot-product sum stays
//! below 2^24 for f32 carriers (so tract's f32 sums are exact in any order) and below 2^31
//! otherwise, every elementwise result fits in int32, no division can trap, and every table index
//! is in range. Under those conditions the kernels here compute exactly what ONNX semantics (and
//! tract) compute: integer `Div` truncates toward zero, as Rust's `/` does.
//!
//! Weights are converted once at load, from the mapped payload, to i8 rows laid out for dot
//! products (the f32 carrier is 4 bytes per weight; the copy is a quarter of that).

mod kernels;
mod lower;
mod mlp;
// They run the shipped text-small (a build without the `models` feature has none to run).
#[cfg(all(test, feature = "models"))]
mod tests;

pub use kernels::LoweredOp;
pub(crate) use lower::lower;
pub use lower::{LoweredLayer, LoweredMlp, lower_bundle};
pub(crate) use mlp::{IntMlp, Scratch};
