//! arca-runtime: learned compression on the edge. Byte-level networks and probabilistic circuits
//! from `.arcm` bundles drive a range coder; the streams are `.arca` containers of blocks that
//! code and decode in parallel and give the same bits on every machine.
//!
//! # Crate map
//!
//! | module | holds |
//! | --- | --- |
//! | [`engine`] | [`TextModel`] (a byte-level bundle on the native integer engine or tract), the [`ByteModel`](engine::ByteModel) interface the codecs call, loading options and errors |
//! | [`codec`] | the codecs (`text-cm`, `text-nn`, `text-eiw`, `image-pc`), the block driver they share, and [`decompress`], the one decoder of every stream |
//! | [`eiw`] | Equal-Info Windows: text cut into windows of exactly `W` bits, each a token for a second model |
//! | [`circuit`] | hidden Chow-Liu tree circuits: the integer image coder, and the tract likelihood it is checked against |
//! | [`arith`] | the arithmetic tasks and models of `arca arith` |
//! | [`container`] | the `.arca` stream format: header, block table, layout; frames (streams back to back) |
//! | [`stream`] | streaming: an [`Encoder`](stream::Encoder) that is a `Write` and a [`Decoder`](stream::Decoder) that is a `Read`, one frame in memory at a time |
//! | [`shipped`] | the models embedded in the binary, and name-or-path resolution |
//! | [`stats`] | the small statistics the measurement tools share |
//!
//! Sibling crates, each usable on its own:
//!
//! | crate | holds |
//! | --- | --- |
//! | `arca-bundle` (re-exported as [`bundle`]) | the `.arcm` format: manifest, ONNX graph, 64-byte-aligned weights, memory-mapped and hash-checked |
//! | `arca-image` (re-exported as [`image`]) | MNIST idx, PGM and PNG files split into pixels and a layout that rebuilds them byte for byte |
//! | `arca-coder` | the fixed-point range coder and the quantizers (`no_std`) |
//! | `arca-embedded` | the `text-nn` decoder for microcontrollers (`no_std`, no heap) |
//! | `arca-generate` | generation: the native f32 decoder, drafters, speculative decoding (not a dependency of this crate) |
//!
//! # Which codec should I use?
//!
//! The default, `text-cm` ([`TextCodec::compress`]): the network mixed with adaptive context
//! models, the best ratio. `text-nn` ([`TextCodec::compress_nn`]) when a microcontroller will
//! decode. Equal-Info Windows ([`TextCodec::compress_eiw`]) when the windows are training data
//! for another model. [`ImageCodec`] for 8-bit grayscale images, with a circuit bundle. To read
//! any stream, call [`decompress`]; the [`codec`] module has the details.
//!
//! # Features and threads
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `tract` | on | tract for graphs the native integer engine cannot lower, `Engine::Tract`, circuits and the arithmetic models; without it the crate builds in minutes for boards |
//! | `models` | on | the shipped models compiled in (the `arca-models` crate: text-small, text-embedded, and with `tract` the arithmetic models), so [`shipped::resolve`] needs no file; without it names are refused and models are opened from `.arcm` files |
//! | `cuda` | off | tract-cuda for `Device::Cuda` and `Device::Auto` |
//!
//! Every `threads` option counts workers; 0 (the default) runs on the rayon pool the call is made
//! from, so a program passes its own pool by calling inside `ThreadPool::install`, and otherwise
//! on one pool of a worker per core kept for the process. No call starts threads of its own, and
//! the output never depends on the pool.
//!
//! ```
//! use arca_runtime::{Options, TextCodec, TextModel, shipped};
//!
//! let bundle = shipped::resolve(shipped::default_compressor())?;
//! let model = TextModel::load(&bundle)?;
//! let codec = TextCodec::new(&model, bundle.id(), &bundle.manifest().name);
//! let text = b"It was the best of times, it was the worst of times.";
//! let packed = codec.compress(text, &Options::default(), &|_| {})?;
//! assert_eq!(codec.decompress(&packed, &Options::default(), &|_| {})?, text);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use arca_bundle as bundle;
pub use arca_image as image;

pub mod arith;
pub mod circuit;
pub mod codec;
pub mod container;
pub mod eiw;
pub mod engine;
mod pool;
pub mod shipped;
pub mod stats;
pub mod stream;

pub use bundle::{Bundle, BundleError, Manifest, ModelKind};
pub use codec::{
    CodecError, DecodeOptions, EiwOptions, ImageCodec, ImageOptions, Model, ModelSource, Options,
    TextCodec, decompress,
};
pub use container::{Codec, Header, Stream};
pub use engine::{Device, Engine, EngineError, LoadOptions, TextModel};
