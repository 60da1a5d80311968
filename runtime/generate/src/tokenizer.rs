//! [`Tokenizer`]: how text becomes a model's tokens (bytes, or the symbols a manifest names),
//! and [`check_pair`]: whether a draft can propose a target's tokens.

use arca_bundle::{Bundle, ModelKind};

use crate::error::GenError;
use crate::net::VOCAB;

/// How text becomes a model's tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tokenizer {
    /// A token is a byte (the prose models, 256 symbols).
    Bytes,
    /// Token `i` is the `i`-th character of the model's symbol table (manifest `arith.vocab`,
    /// the arithmetic models), and `end` (`arith.end_id`) ends an answer.
    Symbols {
        /// The symbols, by token.
        chars: Vec<char>,
        /// The end token.
        end: Option<u8>,
    },
}

impl Tokenizer {
    /// The tokenizer a generation bundle's manifest describes: bytes for a 256-symbol
    /// vocabulary, else the `arith.vocab` table.
    ///
    /// # Errors
    ///
    /// [`GenError::Contract`] when a smaller vocabulary has no symbol table of its size.
    pub fn of(bundle: &Bundle) -> Result<Tokenizer, GenError> {
        let m = bundle.manifest();
        if m.vocab_size as usize == VOCAB {
            return Ok(Tokenizer::Bytes);
        }
        let contract = |reason: String| GenError::Contract {
            model: m.name.clone(),
            reason,
        };
        let get = |key: &str| m.get(key);
        let chars: Vec<char> = get("arith.vocab")
            .ok_or_else(|| {
                contract(format!(
                    "a {}-symbol vocabulary needs its symbols in the manifest (`arith.vocab`)",
                    m.vocab_size
                ))
            })?
            .chars()
            .collect();
        if chars.len() != m.vocab_size as usize {
            return Err(contract(format!(
                "`arith.vocab` has {} symbols, the vocabulary {}",
                chars.len(),
                m.vocab_size
            )));
        }
        let end = match get("arith.end_id") {
            None => None,
            Some(v) => Some(
                v.parse::<u8>()
                    .ok()
                    .filter(|&e| usize::from(e) < chars.len())
                    .ok_or_else(|| contract(format!("`arith.end_id` {v:?} is not a token")))?,
            ),
        };
        Ok(Tokenizer::Symbols { chars, end })
    }

    /// The tokens of `text`.
    ///
    /// # Errors
    ///
    /// [`GenError::Symbol`] for text that is not UTF-8 or has a character outside the table.
    pub fn encode(&self, text: &[u8]) -> Result<Vec<u8>, GenError> {
        match self {
            Tokenizer::Bytes => Ok(text.to_vec()),
            Tokenizer::Symbols { chars, .. } => {
                let table: String = chars.iter().collect();
                let bad = |what: String| GenError::Symbol {
                    what,
                    symbols: table.clone(),
                };
                let text = std::str::from_utf8(text)
                    .map_err(|_| bad("the prompt is not UTF-8 text".into()))?;
                text.chars()
                    .map(|c| {
                        chars
                            .iter()
                            .position(|&s| s == c)
                            .map(|i| i as u8)
                            .ok_or_else(|| bad(format!("character {c:?} is not a symbol")))
                    })
                    .collect()
            }
        }
    }

    /// The text of `tokens` (UTF-8 for symbols; `?` for a token outside the table).
    pub fn decode(&self, tokens: &[u8]) -> Vec<u8> {
        match self {
            Tokenizer::Bytes => tokens.to_vec(),
            Tokenizer::Symbols { chars, .. } => tokens
                .iter()
                .map(|&t| chars.get(usize::from(t)).copied().unwrap_or('?'))
                .collect::<String>()
                .into_bytes(),
        }
    }

    /// The symbols, for messages: `the 256 bytes`, or the table as a quoted string.
    pub fn describe(&self) -> String {
        match self {
            Tokenizer::Bytes => "the 256 bytes".into(),
            Tokenizer::Symbols { chars, end } => format!(
                "{:?} (end token {})",
                chars.iter().collect::<String>(),
                end.map_or("none".into(), |e| e.to_string())
            ),
        }
    }

    /// The token that ends a generation, if the model has one.
    pub fn stop(&self) -> Option<u8> {
        match self {
            Tokenizer::Bytes => None,
            Tokenizer::Symbols { end, .. } => *end,
        }
    }
}

/// Checks that the bundle `draft` can draft for `target`: both generation models over the same
/// vocabulary (size and symbols).
///
/// # Errors
///
/// [`GenError::VocabMismatch`] when the vocabularies differ, [`GenError::Kind`] when either is
/// not a generation model.
pub fn check_pair(target: &Bundle, draft: &Bundle) -> Result<(), GenError> {
    let (t, d) = (target.manifest(), draft.manifest());
    for m in [t, d] {
        if !matches!(m.kind, ModelKind::Target | ModelKind::Draft) {
            return Err(GenError::Kind {
                model: m.name.clone(),
                kind: m.kind.as_str(),
            });
        }
    }
    if t.vocab_size != d.vocab_size {
        return Err(GenError::VocabMismatch {
            target: t.name.clone(),
            target_vocab: t.vocab_size,
            draft: d.name.clone(),
            draft_vocab: d.vocab_size,
        });
    }
    let (tt, dt) = (Tokenizer::of(target)?, Tokenizer::of(draft)?);
    if tt != dt {
        return Err(GenError::SymbolMismatch {
            target: t.name.clone(),
            draft: d.name.clone(),
            detail: format!("{} against {}", tt.describe(), dt.describe()),
        });
    }
    Ok(())
}
