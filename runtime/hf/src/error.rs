//! [`HfError`]: everything that can be wrong with a model directory, a bundle made from one, or
//! a call into the decoder. Each message names the file and what is wrong with it.

use std::path::PathBuf;

/// Everything that can go wrong reading or running a standard decoder export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HfError {
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file the model needs is not there.
    #[error("{path} is missing: {what}")]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// Why it is needed, or what to do.
        what: String,
    },
    /// `config.json` is not JSON, or a key is missing or has the wrong type.
    #[error("{path}: {reason}")]
    Config {
        /// The `config.json` file (or the bundle it came from).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `model.onnx` does not have the inputs and outputs of a decoder with a KV cache, or they
    /// do not agree with `config.json`.
    #[error("{path} {reason}")]
    Graph {
        /// The `model.onnx` file (or the bundle it came from).
        path: PathBuf,
        /// What is wrong, as a predicate of the file (`has no input 'attention_mask'`).
        reason: String,
    },
    /// tract could not load, type or optimize the graph (tract's own message included).
    #[error("{path}: tract cannot {stage} the graph: {message}")]
    Tract {
        /// The `model.onnx` file (or the bundle it came from).
        path: PathBuf,
        /// `parse`, `type`, `optimize`...
        stage: &'static str,
        /// tract's error, with its causes.
        message: String,
    },
    /// `tokenizer.json` could not be loaded.
    #[error("{path}: not a tokenizer the tokenizers library can load: {reason}")]
    Tokenizer {
        /// The `tokenizer.json` file (or the bundle it came from).
        path: PathBuf,
        /// What the tokenizers library (or the JSON parser) said.
        reason: String,
    },
    /// Text to encode is not valid UTF-8.
    #[error(
        "the prompt is not valid UTF-8 (bytes from offset {valid_up_to} on); the tokenizer encodes text"
    )]
    Utf8 {
        /// Length of the valid prefix in bytes.
        valid_up_to: usize,
    },
    /// Encoding or decoding failed inside the tokenizers library.
    #[error("tokenizer: {0}")]
    Tokenize(String),
    /// A bundle could not be read or written, or is not an `hf-decoder` bundle.
    #[error("{path}: {reason}")]
    Bundle {
        /// The `.arcm` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A call into the decoder that the model cannot serve (token out of range, context full).
    #[error("{model}: {reason}")]
    Input {
        /// The model's name.
        model: String,
        /// What is wrong with the call.
        reason: String,
    },
    /// tract failed while running the graph.
    #[error("{model}: tract failed running the graph: {message}")]
    Run {
        /// The model's name.
        model: String,
        /// tract's error, with its causes.
        message: String,
    },
}

/// Reads `path`, a file a model directory must have: missing, it is [`HfError::Missing`] with
/// `what` (why it is needed); any other failure is [`HfError::Io`].
pub(crate) fn read_required(path: &std::path::Path, what: &str) -> Result<Vec<u8>, HfError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            HfError::Missing {
                path: path.to_owned(),
                what: what.into(),
            }
        } else {
            HfError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            }
        }
    })
}
