//! arca-hf: standard decoder exports, as Hugging Face tools write them, run in tract.
//!
//! A model directory from `optimum-cli export onnx --task text-generation-with-past` (or
//! `torch.onnx.export` with the same names) holds `model.onnx` (inputs `input_ids`,
//! `attention_mask`, optional `position_ids`, `past_key_values.{i}.key/value`; outputs
//! `logits`, `present.{i}.key/value`), `config.json` and `tokenizer.json`. This crate reads such
//! a directory, or an `hf-decoder` bundle that [`pack`] made from one, recognising the graph's
//! inputs by name and shape:
//!
//! | module | holds |
//! | --- | --- |
//! | [`HfConfig`] | the numbers of `config.json` (Llama and GPT-2 key names) |
//! | [`GraphSpec`] | the roles of the graph's inputs and outputs; refuses graphs that are not decoders with a KV cache |
//! | [`HfModel`], [`HfDecoder`] | the optimized tract plan, shared; a session with its KV cache: `forward` k tokens, `truncate` |
//! | [`HfTokenizer`] | `tokenizer.json` through the `tokenizers` crate: encode, decode to bytes, fingerprint |
//! | [`ModelSource`] | a directory or a bundle, read the same way |
//! | [`pack`] | a directory as one `.arcm` bundle, weights 64-byte aligned |
//! | [`describe`] | what a directory or bundle holds, for `arca inspect` |
//! | [`HfError`] | every error, naming the file and what is wrong |
//!
//! ```no_run
//! use arca_hf::HfModel;
//!
//! let model = HfModel::open("tests/data/hf/llama".as_ref())?;
//! let tokenizer = model.tokenizer()?;
//! let mut decoder = model.session();
//! let mut ids = tokenizer.encode(b"The old man")?;
//! let mut logits = Vec::new();
//! let mut feed = ids.clone();
//! for _ in 0..16 {
//!     decoder.forward(&feed, &mut logits)?;
//!     let last = &logits[logits.len() - decoder.vocab()..];
//!     let next = (0..last.len()).fold(0, |b, i| if last[i] > last[b] { i } else { b }) as u32;
//!     ids.push(next);
//!     feed = vec![next];
//! }
//! println!("{}", String::from_utf8_lossy(&tokenizer.decode(&ids)?));
//! # Ok::<(), arca_hf::HfError>(())
//! ```
//!
//! This crate does not depend on `arca-runtime`: it needs tract, the tokenizers library and
//! `arca-bundle` only.

mod config;
mod decoder;
mod error;
mod generate;
mod graph;
mod inspect;
mod pack;
mod source;
mod tokenizer;

pub use config::HfConfig;
pub use decoder::{HfDecoder, HfModel};
pub use error::HfError;
pub use graph::{GraphSpec, IdType, InputRole, OutputRole};
pub use inspect::describe;
pub use pack::pack;
pub use source::{
    CONFIG_FILE, CONFIG_SECTION, GRAPH_FILE, ModelSource, TOKENIZER_FILE, TOKENIZER_SECTION,
};
pub use tokenizer::HfTokenizer;
