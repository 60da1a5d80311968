//! Arithmetic in the data formats of "Positional Description Matters for Transformers
//! Arithmetic" (Shen et al., 2023): the runtime side of `models/arith/formats.py`, which is the
//! specification; this module reproduces it exactly (tested against its examples and hash
//! vectors).
//!
//! A model reads a question and writes an answer, one character token at a time:
//!
//! | format | question | answer | example (`123+45`) |
//! | --- | --- | --- | --- |
//! | `plain` | `{a}{op}{b}=` | `c`, most significant digit first | `123+45=168$` |
//! | `padrev` | operands zero-padded to the width W | `c` zero-padded to R digits, reversed (R = W+1 for `+`, 2W for `*`) | W = 5: `00123+00045=861000$` |
//! | `spaces` | as `plain`; in training, random spaces between question characters | as `plain` | `123+45=168$` |
//!
//! `$` is the end token. The vocabulary is the characters of [`VOCAB`], a token's id its
//! index. [`held_out`] is the split: pairs it selects never appear in training, and evaluation
//! draws only from them.
//!
//! A sentence model (`models/arith/context.py`, the paper's third task) reads a larger
//! vocabulary (these 16 tokens, then lowercase letters and `.,?'`) and answers sums asked inside
//! sentences (`the sum of 123 and 45 is ` → `168.$`) as well as plain questions; its manifest
//! carries the templates it was trained on and those held out ([`Sentences`]).
//!
//! `ArithModel` (with the `tract` feature) runs an exported model with greedy decoding.

#[cfg(feature = "tract")]
mod model;
mod task;
#[cfg(test)]
mod tests;

#[cfg(feature = "tract")]
pub use model::ArithModel;
pub use task::{
    ArithError, ArithSpec, END, EQ, Format, Op, PAD, Phrasing, Problem, Sentences, Solution,
    Templates, VOCAB, VOCAB_SIZE, decode, digits, encode, eval_problems, held_out, pair_hash,
    parse_answer,
};
