//! The one error type of every codec, and the failure of a [`ModelSource`](super::ModelSource).

use std::fmt;

use arca_image::ImageError;
use thiserror::Error;

use crate::circuit::CircuitError;
use crate::container::ContainerError;
use crate::eiw::EiwError;
use crate::engine::{EngineError, ModelError};

/// Errors of compression and decompression.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The stream's header or table is bad.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The stream was made with another model.
    #[error(
        "stream was compressed with model '{stream_name}' (id {stream_id:032x}), not '{have_name}' (id {have_id:032x})"
    )]
    ModelMismatch {
        /// Model name in the stream.
        stream_name: String,
        /// Model id in the stream.
        stream_id: u128,
        /// The model we have.
        have_name: String,
        /// Its id.
        have_id: u128,
    },
    /// The stream was made by a different revision of the codec.
    #[error("stream uses codec revision {found}; this build implements revision {expected}")]
    Revision {
        /// Revision in the stream.
        found: u16,
        /// Revision of this build.
        expected: u16,
    },
    /// A block did not decode to its checksum.
    #[error("block {index} is corrupted (checksum mismatch after decoding)")]
    BlockCorrupt {
        /// Index of the block.
        index: usize,
    },
    /// The model failed.
    #[error("model error: {0}")]
    Model(ModelError),
    /// Input too large for the format.
    #[error("input too large: {0}")]
    TooLarge(String),
    /// Bad options.
    #[error("invalid option: {0}")]
    Options(String),
    /// The network could not be loaded or run.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The decoder's [`ModelSource`](super::ModelSource) has no model for the stream, or could
    /// not load it (its message and causes, unchanged).
    #[error(transparent)]
    Source(SourceError),
    /// Equal-Info Window coding failed (a damaged window, a bad window size).
    #[error(transparent)]
    Eiw(#[from] EiwError),
    /// An image file that cannot be read or written back.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Images the circuit cannot code, or damaged image data.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
}

/// What a [`ModelSource`](super::ModelSource) reported, kept whole: it displays as the source's
/// own message and keeps its chain of causes.
#[derive(Debug)]
pub struct SourceError(pub ModelError);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
