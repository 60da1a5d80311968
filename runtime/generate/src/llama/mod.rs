//! A native fast path for the Llama family: transformers' `LlamaForCausalLM` (RMSNorm,
//! rotate-half RoPE with the configuration's `rope_theta`, SwiGLU MLP, grouped-query
//! attention, tied or untied output, no biases) run without tract, its weights read in place
//! in f32, f16 or int8 with one f32 scale per output row ([`Precision`]).
//!
//! - [`LlamaConfig`] reads `config.json` and refuses by name what this forward does not
//!   compute (`rope_scaling`, biases, another activation);
//! - [`LlamaModel`] holds the configuration and the weights ([`LlamaWeights`]), from a
//!   transformers directory ([`LlamaModel::from_dir`]: `model.safetensors`) or from a bundle
//!   written by [`pack_llama`] ([`LlamaModel::from_bundle`], which maps the weights in place);
//! - [`LlamaDecoder`] runs one sequence: a KV cache, a k-token [`LlamaDecoder::forward`] whose
//!   logits are the bits of k one-token calls, and [`LlamaDecoder::truncate`] to roll back
//!   (the methods of generation's `Decoder` trait);
//! - `kernels/`: the matrix product over `[out][in]` weights in each precision for all the
//!   tokens of a call (AVX2 + FMA + F16C on x86-64, NEON on aarch64, portable loops elsewhere,
//!   all in one fixed accumulation order).
//!
//! ```no_run
//! use std::{path::Path, sync::Arc};
//! use arca_generate::{LlamaDecoder, LlamaModel, Precision, pack_llama};
//!
//! let dir = Path::new("tests/data/hf/llama");
//! std::fs::write("llama-int8.arcm", pack_llama(dir, Precision::Int8)?)?;
//! let bundle = arca_bundle::Bundle::open("llama-int8.arcm")?;
//! let mut dec = LlamaDecoder::new(Arc::new(LlamaModel::from_bundle(&bundle)?));
//! let (mut logits, mut next) = (Vec::new(), vec![500, 727, 447]);
//! for _ in 0..16 {
//!     dec.forward(&next, &mut logits)?;
//!     let last = &logits[logits.len() - dec.vocab()..];
//!     next = vec![arca_generate::argmax(last) as u32];
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod decoder;
mod error;
mod forward;
mod kernels;
mod pack;
#[cfg(test)]
mod tests;
mod weights;

pub use config::LlamaConfig;
pub use error::LlamaError;
pub use forward::{LlamaDecoder, LlamaModel};
pub use pack::pack_llama;
pub use weights::{LlamaWeights, Precision, random_safetensors};
