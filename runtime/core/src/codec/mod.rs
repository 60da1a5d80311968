//! The codecs, and the one decoder that reads every stream they write.
//!
//! # Which codec should I use?
//!
//! | codec (header id) | writes it | the decoder needs | for |
//! | --- | --- | --- | --- |
//! | `text-cm` (1) | [`TextCodec::compress`] | the network and ~140 MB per worker for the context models (1 MiB blocks) | the default: the best ratio on text |
//! | `text-nn` (4) | [`TextCodec::compress_nn`] | the network, 40 KiB of context models and a 16 KiB ring of history, whatever the block size ([`NN_BLOCK_SIZE`] by default) | streams a microcontroller decodes (`arca-embedded`) |
//! | `text-eiw` (2) | [`TextCodec::compress_eiw`] | the network | Equal-Info Windows: every window decodes alone, and the windows are tokens for a second model ([`crate::eiw`]) |
//! | `image-pc` (3) | [`ImageCodec::compress`] | the circuit | 8-bit grayscale idx, PGM and PNG files |
//! | `stored` (0) | any codec, for empty input | nothing | |
//!
//! Every codec cuts its input into blocks that code and decode in parallel on their own; the
//! block machinery (header, stored fallback, CRC checks) is written once, in `blocks.rs`, and
//! each codec supplies only how one block is coded (`cm.rs`, `nn.rs`, `eiw.rs`, `image.rs`).
//! Decoding has one entry point, [`decompress`], which dispatches on the stream's header and
//! finds the model through a [`ModelSource`].
//!
//! ```no_run
//! use arca_runtime::codec::{Options, TextCodec};
//! # fn demo(codec: &TextCodec) -> Result<(), arca_runtime::codec::CodecError> {
//! let packed = codec.compress(b"hello hello hello", &Options::default(), &|_| {})?;
//! let unpacked = codec.decompress(&packed, &Options::default(), &|_| {})?;
//! assert_eq!(unpacked, b"hello hello hello");
//! # Ok(()) }
//! ```

mod blocks;
mod cm;
mod decode;
mod eiw;
mod error;
mod image;
mod nn;
mod text;

pub use cm::Profile;
pub use decode::{DecodeOptions, Model, ModelSource, decompress, decompress_stream, revision};
pub use eiw::EiwOptions;
pub use error::{CodecError, SourceError};
pub use image::{DEFAULT_IMAGES_PER_BLOCK, ImageCodec, ImageOptions};
pub use nn::{NN_BLOCK_SIZE, compress_nn_stepwise};
pub use text::{CmSettings, DEFAULT_BLOCK_SIZE, Options, TextCodec};
