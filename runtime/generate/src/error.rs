//! [`GenError`]: why generation cannot run.

use thiserror::Error;

/// Why generation cannot run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GenError {
    /// The bundle is not a generation model.
    #[error("model '{model}' (kind {kind}) is not a generation target or draft")]
    Kind {
        /// Model name.
        model: String,
        /// Its kind.
        kind: &'static str,
    },
    /// The model's vocabulary is empty.
    #[error(
        "model '{model}' has a vocabulary of {vocab} symbols; a generation model needs one at least"
    )]
    Vocab {
        /// Model name.
        model: String,
        /// Its vocabulary size.
        vocab: u32,
    },
    /// Target and draft do not share a vocabulary.
    #[error(
        "draft '{draft}' has a vocabulary of {draft_vocab} symbols but target '{target}' has {target_vocab}: a draft must propose the target's tokens"
    )]
    VocabMismatch {
        /// Target name.
        target: String,
        /// Target vocabulary.
        target_vocab: u32,
        /// Draft name.
        draft: String,
        /// Draft vocabulary.
        draft_vocab: u32,
    },
    /// Target and draft have vocabularies of one size but different symbols.
    #[error(
        "draft '{draft}' and target '{target}' have vocabularies of one size but different symbols ({detail}): a draft must propose the target's tokens"
    )]
    SymbolMismatch {
        /// Target name.
        target: String,
        /// Draft name.
        draft: String,
        /// The two tokenizers.
        detail: String,
    },
    /// Prompt text the model's symbols cannot spell.
    #[error("{what}; the model's symbols are {symbols:?}")]
    Symbol {
        /// What is wrong.
        what: String,
        /// The symbol table.
        symbols: String,
    },
    /// The bundle breaks the generation contract (missing tensor, wrong shape...).
    #[error("model '{model}' cannot be run: {reason}")]
    Contract {
        /// Model name.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// More tokens than the context in one window (a caller bug; [`generate`](crate::generate) never does it).
    #[error("model '{model}': {len} tokens in one window, context is {context_len}")]
    Window {
        /// Model name.
        model: String,
        /// Tokens asked for.
        len: usize,
        /// The model's context.
        context_len: usize,
    },
    /// An empty prompt, and no token to read it as ([`Options::empty_prompt`](crate::Options::empty_prompt)).
    #[error(
        "model '{model}' has no start token to read an empty prompt as, so an empty prompt has no meaning (byte models read it as a newline): give a prompt"
    )]
    EmptyPrompt {
        /// Model name.
        model: String,
    },
    /// A token the model has no embedding for (a caller bug; [`generate`](crate::generate) checks prompts).
    #[error("model '{model}': token {token} is outside its vocabulary of {vocab}")]
    Token {
        /// Model name.
        model: String,
        /// The token.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// A backend failed (built by [`Decoder`](crate::Decoder) implementations of other crates).
    #[error("model '{model}': {message}")]
    Backend {
        /// Model name.
        model: String,
        /// What failed.
        message: String,
    },
    /// The token sink failed (stdout closed...).
    #[error("cannot write the generated text: {0}")]
    Output(#[from] std::io::Error),
}
