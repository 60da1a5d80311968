//! Generation with a target model, plain or speculative, over `u32` tokens and any vocabulary:
//! prose with the byte-level models of `models/gen`, arithmetic answers with the 16-symbol
//! models of `models/arith`, and any causal model another crate runs behind the [`Decoder`]
//! trait (a tract/ONNX export of a Llama or a GPT-2 with a 50k vocabulary, for instance).
//!
//! ```
//! use arca_generate::{Net, NetConfig, Options, Sampling, TextTokenizer, Tokenizer, generate};
//!
//! let net = Net::random(NetConfig::gpt(16, 1, 2, 32), 1); // a byte model
//! let tokenizer = Tokenizer::Bytes;
//! let options = Options {
//!     n: 20,
//!     sampling: Sampling { top_k: 40, min_p: 0.05, repeat_penalty: 1.1, ..Sampling::with_temperature(0.8, 0.95) },
//!     stop_strings: vec![b"\n\n".to_vec()],
//!     empty_prompt: tokenizer.empty_prompt(),
//!     ..Options::default()
//! };
//! let mut text = Vec::new();
//! let prompt = tokenizer.encode(b"Once upon a time")?;
//! let stats = generate(&mut net.decoder(), None, &tokenizer, &prompt, &options, &mut |bytes| {
//!     text.extend_from_slice(bytes);
//!     Ok(())
//! })?;
//! assert!(stats.decoded <= 20 && text.len() <= 20);
//! # Ok::<(), arca_generate::GenError>(())
//! ```
//!
//! Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a cheap [`Drafter`] proposes
//! up to k tokens, the target scores all of them in one call, and the exact rule of
//! [`verify_greedy`] and [`verify_sample`] keeps the target's output distribution: greedy
//! output is the target's own greedy output, sampled output follows the target's law after the
//! llama.cpp filters of [`Sampling`] (repeat penalty, top-k, top-p, min-p, temperature, in that
//! order; the penalty is applied to every verified row with the history up to that row). Two
//! drafters: a small distilled model ([`ModelDrafter`], any [`Decoder`] over the target's
//! vocabulary) and prompt lookup ([`LookupDrafter`], copying what followed the last occurrence
//! of the current suffix).
//!
//! The native models run the forward of [`Net`] with KV caches ([`NetDecoder`], made by
//! [`Net::decoder`]); after a verify call each cache keeps only the accepted tokens (rolling
//! back is [`Decoder::truncate`]). The draft length adapts ([`DraftLength`]): it starts where the
//! measured cost of a k-token target call against a one-token call ([`CallCost`]) makes drafting
//! pay best, grows when a whole draft is accepted, shrinks on an early rejection, and a model
//! draft stops early when its own top probability falls under `p_min`.
//!
//! **Text.** [`generate`] passes text to its sink, decoded token by token by a
//! [`TextTokenizer`] ([`Tokenizer`] for arca's bundles; other crates implement the trait for
//! theirs). Generation ends after `n` tokens, at a stop token ([`Options::stop`], an EOS) or at
//! a stop string ([`Options::stop_strings`], llama.cpp's reverse prompts), of which nothing is
//! emitted; only bytes that could still begin a stop string are held back.
//!
//! **Context.** The models are trained on windows of `context_len` tokens (512 bytes for prose,
//! 34 symbols for the adder, which a question and its answer fill exactly). The token at
//! position `p` is predicted from `seq[window_start(p)..p]`: the whole prefix while it fits, then
//! a window that moves in steps of half the context, so it always holds between half and all of
//! a context. Plain and speculative decoding use the same windows (a verify call never spans a
//! window change), so their greedy outputs stay identical past the context. A prompt longer than
//! the context is read through the same rule: only its last tokens (at least half a context) are
//! seen. An empty prompt is read as [`Options::empty_prompt`] (a byte model's `"\n"`, the start
//! of a line, which is not echoed); without one it is refused ([`GenError::EmptyPrompt`]).
//!
//! **Exactness.** A [`Net::forward`] call of k tokens computes every logit by the same
//! operations in the same order as k one-token calls, so verifying a draft reproduces one-token
//! decoding bit for bit: greedy speculative output equals greedy target-only output by
//! construction, not by luck of rounding. A [`Decoder`] without that property still decodes
//! correctly, but the two outputs may part where two logits tie within rounding.
//!
//! **Modules** (all private; their public items are re-exported here):
//!
//! - `decoder`: the [`Decoder`] trait, what generation asks of a model;
//! - `net`: the native model: [`NetConfig`] and [`Arch`] read from a bundle's manifest, the
//!   weights loaded from its payload ([`Net::load`]), the KV [`Cache`], the forward pass, and
//!   [`NetDecoder`];
//! - `kernels`: the f32 kernels of the forward pass behind one dispatch: the portable loops
//!   (`kernels/generic.rs`, also the aarch64 and armv7 path) and the AVX2 and FMA ones
//!   (`kernels/x86_64.rs`, the portable loops' fused multiply-adds in the same order);
//! - `verify`: sampling ([`Sampling`], [`Rng`]) and the exact verification rule;
//! - `lm`: [`Lm`], a decoder over the sliding context windows;
//! - `draft`: the drafters ([`ModelDrafter`], [`LookupDrafter`]); `length`: the draft-length
//!   controller ([`DraftLength`], [`CallCost`]); `tokenizer`: [`TextTokenizer`] and the
//!   bundles' [`Tokenizer`]; `stop`: the stop strings over streamed text;
//! - `generate`: [`generate`] itself, its [`Options`] and [`Stats`].

mod decoder;
mod draft;
mod error;
mod generate;
mod kernels;
mod length;
mod llama;
mod lm;
mod net;
mod random;
mod stop;
#[cfg(test)]
mod tests;
mod tokenizer;
mod verify;

pub use decoder::Decoder;
pub use draft::{Draft, Drafter, LookupDrafter, ModelDrafter};
pub use error::GenError;
pub use generate::{Options, Stats, generate};
pub use length::{CallCost, DECAY, DraftLength, PRIOR_ACCEPT};
pub use llama::{
    LlamaConfig, LlamaDecoder, LlamaError, LlamaModel, LlamaWeights, Precision, pack_llama,
    random_safetensors,
};
pub use lm::{Lm, window_start};
pub use net::{Arch, Cache, Net, NetConfig, NetDecoder, Norm, Positions, Scratch};
pub use tokenizer::{TextTokenizer, Tokenizer, check_pair};
pub use verify::{Rng, Sampling, Verdict, argmax, verify_greedy, verify_sample};
