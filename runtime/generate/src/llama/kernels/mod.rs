//! The Llama path's kernels: the matrix product over a weight matrix `[out][in]` in f32, f16
//! or int8 (one f32 scale per output row), read in place, for all the tokens of a call at
//! once, and the attention's weighted sum of values.
//!
//! Laid out as [`crate::kernels`] (tract's `linalg`): `generic.rs` holds the portable loops,
//! the reference order; `x86_64.rs` the AVX2 + FMA + F16C kernels; `aarch64.rs` the NEON ones;
//! `matrix.rs` the checked matrix view ([`Matrix`]), the instruction set picked once per model
//! ([`Isa`]) and the entry points that dispatch on it.
//!
//! **The contract.** A matrix output is a dot product over the input index in one fixed order
//! (eight lanes, each a chain of multiply-adds in input order, added pairwise in a fixed
//! order; see `generic.rs`): the weights are laid out `[out][in]` as transformers stores them,
//! so SIMD lanes run along the reduction index in a fixed blocking that is the same for one
//! token and for k. The SIMD kernels perform the portable loop's fused multiply-adds in that
//! order, so on x86-64 and aarch64 both paths give the same bits, and a k-token call gives
//! the bits of k one-token calls. A weighted sum has one chain per output lane over the keys
//! in order, lanes across outputs.
//!
//! **Cost.** The matrix product walks blocks of 8 weight rows and runs every token of the
//! call over a block while it is in L1, so a weight is read from memory once per call: when
//! the weights do not fit the cache, a k-token call costs about one token's memory traffic.

mod generic;
mod matrix;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub(crate) use generic::Rows;
#[cfg(test)]
pub(crate) use generic::{dot, f16_to_f32};
pub(crate) use matrix::{Isa, Matrix, matmul, weighted_sum};
