//! The window rules' constants, the errors of window coding, and how coding is scheduled.

use thiserror::Error;

use crate::engine::ModelError;

/// Smallest window: a byte must fit with room for its stop flag.
pub const MIN_BITS: u32 = 16;
/// Largest window.
pub const MAX_BITS: u32 = 4096;
/// Bytes per segment: windows never cross a segment boundary, and segments code in parallel.
pub const DEFAULT_SEGMENT: u32 = 4096;
/// Revision of the window rules (precisions, stop-flag rule, raw windows) that this build
/// writes; recorded in `.arca` headers and token files. Revision 1 is the paper's windows;
/// revision 2 adds the raw window (windows of [`RAW_MIN_BITS`] or more start with a flag, and a
/// window the model would code worse than raw bytes is written raw). Both are read.
pub const REVISION: u16 = 2;
/// The oldest window rules revision this build reads.
pub const OLDEST_REVISION: u16 = 1;
/// Smallest window with the raw-window flag (revision 2): below it a raw window could not hold
/// more bytes than a model window's guaranteed one.
pub const RAW_MIN_BITS: u32 = 32;

/// Precision of the byte distribution after a window's first byte.
pub(super) const PRECISION: u32 = 16;
/// Precision of the stop flag and the raw-window flag.
pub(super) const FLAG_PRECISION: u32 = 12;
/// Frequency (of `2^FLAG_PRECISION`) of the raw-window flag: a raw window pays 6 bits for it, a
/// model window 0.023 bits. Raw windows take the bottom of the interval, so their codes start
/// with six zero bits.
pub(super) const RAW_FREQ: u32 = 64;
/// Rows per network call when the caller does not say.
pub(super) const DEFAULT_BATCH: usize = 256;
/// A decoder that has spent this many bits past `W` is reading a damaged window.
pub(super) const DECODE_SLACK: u32 = 32;

/// Errors of window coding.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EiwError {
    /// `W` is not a multiple of 8 in `16..=4096`.
    #[error("window size must be a multiple of 8 from {MIN_BITS} to {MAX_BITS} bits, not {0}")]
    Bits(u32),
    /// The token data is not a whole number of windows.
    #[error("{len} bytes are not a whole number of {bits}-bit windows")]
    Ragged {
        /// Length of the data.
        len: usize,
        /// Window size.
        bits: u32,
    },
    /// A window does not decode to a valid code.
    #[error("window {index} is corrupted (it is not a code this model writes)")]
    Corrupt {
        /// Index of the window in the decoded sequence.
        index: usize,
    },
    /// The model failed.
    #[error("model error: {0}")]
    Model(ModelError),
    /// The network's output is not a distribution.
    #[error("the network's logits do not form a distribution: {0}")]
    Logits(String),
    /// A rule of the coder was broken (a bug, never bad input).
    #[error("internal error in the window coder: {0}")]
    Internal(&'static str),
    /// Threads could not be started.
    #[error("cannot start {0} threads")]
    Threads(usize),
    /// A token file is malformed, or was made for another model or window size.
    #[error("{0}")]
    TokenFile(String),
    /// Windows made by window rules this build does not know.
    #[error(
        "window rules revision {0} is not one this build reads ({OLDEST_REVISION} to {REVISION})"
    )]
    Revision(u16),
}

/// How coding is spread over the machine. It changes speed, never the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Worker threads. 0: the rayon pool this is called from (pass your own by calling inside
    /// `ThreadPool::install`), else one per core, in a pool kept for the process.
    pub threads: usize,
    /// Lanes stepped together in one network call (at least 1).
    pub batch: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            threads: 0,
            batch: DEFAULT_BATCH,
        }
    }
}

impl Schedule {
    /// One lane at a time on one thread: the reference that batched coding must equal.
    pub fn one_at_a_time() -> Self {
        Schedule {
            threads: 1,
            batch: 1,
        }
    }
}

/// Checks a window size.
pub fn check_bits(bits: u32) -> Result<(), EiwError> {
    if (MIN_BITS..=MAX_BITS).contains(&bits) && bits.is_multiple_of(8) {
        Ok(())
    } else {
        Err(EiwError::Bits(bits))
    }
}
