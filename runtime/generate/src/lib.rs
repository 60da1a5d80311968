//! Generation with a target model, plain or speculative: prose with the byte-level models of
//! `models/gen`, and arithmetic answers with the 16-symbol models of `models/arith` (whose
//! [`Tokenizer`] maps text to symbols and whose end token stops a generation, [`Options::stop`]).
//!
//! Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a cheap [`Drafter`] proposes
//! up to k tokens, the target scores all of them in one call, and the exact rule of
//! [`verify_greedy`] and [`verify_sample`] keeps the target's output distribution: greedy
//! output is the target's own greedy output, sampled output follows the target's (temperature,
//! top-p) law. Two drafters: a small distilled model ([`ModelDrafter`]) and prompt lookup
//! ([`LookupDrafter`], copying what followed the last occurrence of the current suffix).
//!
//! Both models run the native forward of [`Net`] with KV caches; after a verify call each cache
//! keeps only the accepted tokens (rolling back is moving a length). The draft length adapts
//! ([`DraftLength`]): it starts where the measured cost of a k-token target call against a
//! one-token call ([`CallCost`]) makes drafting pay best, grows when a whole draft is accepted,
//! shrinks on an early rejection, and a model draft stops early when its own top probability
//! falls under `p_min`.
//!
//! **Context.** The models are trained on windows of `context_len` tokens (512 bytes for prose,
//! 34 symbols for the adder, which a question and its answer fill exactly). The token at
//! position `p` is predicted from `seq[window_start(p)..p]`: the whole prefix while it fits, then
//! a window that moves in steps of half the context, so it always holds between half and all of
//! a context. Plain and speculative decoding use the same windows (a verify call never spans a
//! window change), so their greedy outputs stay identical past the context. A prompt longer than
//! the context is read through the same rule: only its last bytes (at least half a context) are
//! seen. An empty prompt is read by a byte model as a single `"\n"` (the start of a line),
//! which is not echoed; a model of other symbols has no such start and refuses it.
//!
//! **Exactness.** A [`Net::forward`] call of k tokens computes every logit by the same
//! operations in the same order as k one-token calls, so verifying a draft reproduces one-token
//! decoding bit for bit: greedy speculative output equals greedy target-only output by
//! construction, not by luck of rounding.
//!
//! **Modules** (all private; their public items are re-exported here):
//!
//! - `net`: the model: [`NetConfig`] and [`Arch`] read from a bundle's manifest, the weights
//!   loaded from its payload ([`Net::load`]), the KV [`Cache`] and the forward pass;
//! - `kernels`: the f32 kernels of the forward pass behind one dispatch: the portable loops
//!   (`kernels/generic.rs`, also the aarch64 and armv7 path) and the AVX2 and FMA ones
//!   (`kernels/x86_64.rs`, the portable loops' fused multiply-adds in the same order);
//! - `verify`: sampling ([`Sampling`], [`Rng`]) and the exact verification rule;
//! - `lm`: [`Lm`], a model and its cache over the sliding context windows;
//! - `draft`: the drafters ([`ModelDrafter`], [`LookupDrafter`]); `length`: the draft-length
//!   controller ([`DraftLength`], [`CallCost`]); `tokenizer`: the [`Tokenizer`];
//! - `generate`: [`generate`] itself, its [`Options`] and [`Stats`].

mod draft;
mod error;
mod generate;
mod kernels;
mod length;
mod llama;
mod lm;
mod net;
#[cfg(test)]
mod tests;
mod tokenizer;
mod verify;

pub use draft::{Draft, Drafter, LookupDrafter, ModelDrafter};
pub use error::GenError;
pub use generate::{Options, Stats, generate};
pub use length::{CallCost, DECAY, DraftLength, PRIOR_ACCEPT};
pub use llama::{
    LlamaConfig, LlamaDecoder, LlamaError, LlamaModel, LlamaWeights, Precision, pack_llama,
    random_safetensors,
};
pub use lm::{Lm, window_start};
pub use net::{Arch, Cache, Net, NetConfig, Norm, Positions, Scratch, VOCAB};
pub use tokenizer::{Tokenizer, check_pair};
pub use verify::{Rng, Sampling, Verdict, argmax, verify_greedy, verify_sample};
