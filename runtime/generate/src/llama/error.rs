//! [`LlamaError`]: why a Llama model cannot be read, packed or run.

use std::path::PathBuf;

use thiserror::Error;

use crate::error::GenError;

/// Why a Llama model cannot be read, packed or run. Every message names the file, key or tensor
/// at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LlamaError {
    /// A file could not be read or written.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not JSON, lacks a key, or has a value of the wrong kind.
    #[error("{file}: {reason}")]
    Config {
        /// Where the configuration came from (`dir/config.json`, `bundle x: hf/config.json`).
        file: String,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// The configuration asks for something this forward does not compute.
    #[error("{file}: {what} is not supported by the native Llama path")]
    Unsupported {
        /// Where the configuration came from.
        file: String,
        /// What it asks for.
        what: String,
    },
    /// `model.safetensors` does not parse.
    #[error("{file}: not a safetensors file: {reason}")]
    Safetensors {
        /// The file.
        file: String,
        /// What the parser said.
        reason: String,
    },
    /// A weight the configuration needs is absent.
    #[error("{file}: it has no tensor `{name}`")]
    MissingTensor {
        /// The weights' file.
        file: String,
        /// The tensor's name.
        name: String,
    },
    /// A weight has another shape than the configuration gives it.
    #[error("{file}: tensor `{name}` has shape {found:?}, the configuration needs {expected:?}")]
    Shape {
        /// The weights' file.
        file: String,
        /// The tensor's name.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The configuration's shape.
        expected: Vec<usize>,
    },
    /// A weight has an element type this path cannot read.
    #[error("{file}: tensor `{name}` is {dtype}; the native Llama path reads {accepted}")]
    DType {
        /// The weights' file.
        file: String,
        /// The tensor's name.
        name: String,
        /// Its element type.
        dtype: String,
        /// The types it reads there.
        accepted: &'static str,
    },
    /// The bundle is not a native Llama bundle, or is broken.
    #[error("bundle '{model}': {reason}")]
    Bundle {
        /// The bundle's model name.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing a bundle failed.
    #[error("cannot write the Llama bundle: {0}")]
    Encode(#[from] arca_bundle::BundleError),
    /// A token id the model has no embedding for.
    #[error("model '{model}': token {token} is outside its vocabulary of {vocab}")]
    Token {
        /// Model name.
        model: String,
        /// The token.
        token: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// More tokens than the context holds.
    #[error("model '{model}': {len} tokens in the cache, its context is {context_len}")]
    Context {
        /// Model name.
        model: String,
        /// Tokens asked for (cached and new).
        len: usize,
        /// The context.
        context_len: usize,
    },
}

impl From<LlamaError> for GenError {
    /// Context overflow is [`GenError::Window`]; a token that fits a byte is
    /// [`GenError::Token`] (whose token is a `u8`), a larger one [`GenError::Contract`] with the
    /// same message; a load error is [`GenError::Contract`].
    fn from(e: LlamaError) -> GenError {
        match e {
            LlamaError::Context {
                model,
                len,
                context_len,
            } => GenError::Window {
                model,
                len,
                context_len,
            },
            LlamaError::Token {
                model,
                token,
                vocab,
            } => GenError::Token {
                model,
                token,
                vocab,
            },
            LlamaError::Bundle { model, reason } => GenError::Contract { model, reason },
            other => GenError::Contract {
                model: "llama".into(),
                reason: other.to_string(),
            },
        }
    }
}
