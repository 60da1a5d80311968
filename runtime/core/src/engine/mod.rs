//! Engines: turn a [`Bundle`](arca_bundle::Bundle) into one reusable model.
//!
//! [`TextModel`] is the byte-level predictor the text codec calls: contexts of N bytes (PAD for
//! positions before the start) in, 256 integer logits per context out. It is built once, with a
//! symbolic batch dimension, and is `Send + Sync`: share one model across threads by reference
//! or `Arc` and call [`TextModel::logits`] with any batch size.
//!
//! Two engines run it and give the same logits bit for bit: the native integer kernels of
//! `engine/native` (any build, for the integer MLPs they can lower; [`lower_bundle`] shows what
//! they make of a bundle) and tract (the `tract` feature, on by default: every other graph, and
//! CUDA through tract-cuda with `cuda`). [`ByteModel`] is the interface the codecs call, so they
//! do not know which engine (or which test network) answers.
//!
//! # Loading weights from the map (tract)
//!
//! Bundled graphs keep their initializers in the bundle payload as ONNX external data
//! (`location "."`, offset and length into the payload). tract-onnx 0.23 reads external data
//! through a pluggable `ModelDataResolver` (the public `Onnx::provider` field), but the resolver
//! is handed a *path*: tract first joins the location to a model directory and canonicalizes it,
//! so the path must exist. The engine therefore parses with the filesystem root as model
//! directory, refuses any location other than `"."` (so the only path tract touches is the
//! root itself), and its resolver ignores the path and copies `offset..offset+length` out of
//! the mapped payload. Per tensor, tract then copies those bytes once more into its own aligned
//! tensor; the resolver's buffer is dropped right after. So weights are copied (once to a
//! transient buffer, once into tract's tensor, then possibly repacked by the optimizer), never
//! read from disk a second time. Native paths read [`Bundle::tensor`](arca_bundle::Bundle::tensor) in place instead.
//!
//! # Example
//!
//! ```
//! use arca_runtime::{engine::TextModel, shipped};
//!
//! let bundle = shipped::resolve(shipped::default_compressor())?;
//! let model = TextModel::load(&bundle)?;
//! let n = model.context_len();
//! // Two contexts: all padding, and padding then "hi".
//! let mut contexts = vec![model.pad_id(); 2 * n];
//! contexts[2 * n - 2] = u16::from(b'h');
//! contexts[2 * n - 1] = u16::from(b'i');
//! let mut logits = Vec::new();
//! model.logits(&contexts, 2, &mut logits)?;
//! assert_eq!(logits.len(), 2 * 256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod byte_model;
mod config;
mod native;
mod onnx;
mod text_model;
#[cfg(feature = "tract")]
mod tract_backend;

pub use byte_model::{ByteModel, ModelError};
pub use config::{BYTE_SYMBOLS, Device, Engine, EngineError, LoadOptions};
pub use native::{LoweredLayer, LoweredMlp, LoweredOp, lower_bundle};
pub use text_model::TextModel;
/// The bundle's graph as a tract `InferenceModel`, weights resolved from the map: for code that
/// runs a graph arca has no engine for (the arithmetic models, the circuit's likelihood, and the
/// tests that hold the generation engine against tract). It exposes a tract type, so it is not
/// part of the stable API.
#[cfg(feature = "tract")]
#[doc(hidden)]
pub use tract_backend::inference_model;
