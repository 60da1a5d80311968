//! How text becomes a model's tokens: the [`TextTokenizer`] trait, which generation uses to
//! turn tokens back into text (and another crate implements for its own tokenizers, a BPE for
//! instance), and [`Tokenizer`], the one of arca's bundles (bytes, or the symbols a manifest
//! names); [`check_pair`]: whether a draft bundle can propose a target's tokens.

use arca_bundle::{Bundle, ModelKind};

use crate::error::GenError;

/// The byte models' vocabulary.
const BYTES: usize = 256;

/// Text to tokens and back.
pub trait TextTokenizer: Send + Sync {
    /// The tokens of `text`.
    ///
    /// # Errors
    ///
    /// Text the tokenizer cannot spell ([`GenError::Symbol`] for arca's symbol tables).
    fn encode(&self, text: &[u8]) -> Result<Vec<u32>, GenError>;
    /// The bytes of `tokens`; may be partial UTF-8 (a character split over tokens), so
    /// generation decodes token by token and concatenates.
    fn decode(&self, tokens: &[u32]) -> Vec<u8>;
    /// Tokens are `0..vocab()`.
    fn vocab(&self) -> usize;
    /// The token that ends a generation, if any.
    fn eos(&self) -> Option<u32>;
    /// The symbols, for messages.
    fn describe(&self) -> String;
    /// Identity used to refuse a draft whose tokenizer differs from the target's.
    fn fingerprint(&self) -> u64;
    /// The token an empty prompt is read as ([`Options::empty_prompt`](crate::Options::empty_prompt));
    /// `None` (the default) refuses an empty prompt.
    fn empty_prompt(&self) -> Option<u32> {
        None
    }
}

/// FNV-1a, 64 bits: a fingerprint that is the same in every build.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

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
        end: Option<u32>,
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
        if m.vocab_size as usize == BYTES {
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
                v.parse::<u32>()
                    .ok()
                    .filter(|&e| (e as usize) < chars.len())
                    .ok_or_else(|| contract(format!("`arith.end_id` {v:?} is not a token")))?,
            ),
        };
        Ok(Tokenizer::Symbols { chars, end })
    }
}

impl TextTokenizer for Tokenizer {
    /// Bytes, or the table's symbols ([`GenError::Symbol`] for text that is not UTF-8 or has a
    /// character outside the table).
    fn encode(&self, text: &[u8]) -> Result<Vec<u32>, GenError> {
        match self {
            Tokenizer::Bytes => Ok(text.iter().map(|&b| u32::from(b)).collect()),
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
                            .map(|i| i as u32)
                            .ok_or_else(|| bad(format!("character {c:?} is not a symbol")))
                    })
                    .collect()
            }
        }
    }

    /// Bytes (a token past 255 is `?`), or UTF-8 symbols (`?` for a token outside the table).
    fn decode(&self, tokens: &[u32]) -> Vec<u8> {
        match self {
            Tokenizer::Bytes => tokens
                .iter()
                .map(|&t| u8::try_from(t).unwrap_or(b'?'))
                .collect(),
            Tokenizer::Symbols { chars, .. } => tokens
                .iter()
                .map(|&t| chars.get(t as usize).copied().unwrap_or('?'))
                .collect::<String>()
                .into_bytes(),
        }
    }

    fn vocab(&self) -> usize {
        match self {
            Tokenizer::Bytes => BYTES,
            Tokenizer::Symbols { chars, .. } => chars.len(),
        }
    }

    /// The arithmetic models' end token; bytes have none.
    fn eos(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes => None,
            Tokenizer::Symbols { end, .. } => *end,
        }
    }

    /// `the 256 bytes`, or the table as a quoted string and its end token.
    fn describe(&self) -> String {
        match self {
            Tokenizer::Bytes => "the 256 bytes".into(),
            Tokenizer::Symbols { chars, end } => format!(
                "{:?} (end token {})",
                chars.iter().collect::<String>(),
                end.map_or("none".into(), |e| e.to_string())
            ),
        }
    }

    fn fingerprint(&self) -> u64 {
        match self {
            Tokenizer::Bytes => fnv1a(&[b"bytes"]),
            Tokenizer::Symbols { chars, end } => {
                let table: String = chars.iter().collect();
                let end = end.map_or(u64::MAX, u64::from).to_le_bytes();
                fnv1a(&[b"symbols", table.as_bytes(), &end])
            }
        }
    }

    /// A byte model reads an empty prompt as a newline (the start of a line); a symbol table
    /// has no such start.
    fn empty_prompt(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes => Some(u32::from(b'\n')),
            Tokenizer::Symbols { .. } => None,
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
    if tt.fingerprint() != dt.fingerprint() {
        return Err(GenError::SymbolMismatch {
            target: t.name.clone(),
            draft: d.name.clone(),
            detail: format!("{} against {}", tt.describe(), dt.describe()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adder() -> Tokenizer {
        Tokenizer::Symbols {
            chars: "0123456789+*= $_".chars().collect(),
            end: Some(13),
        }
    }

    #[test]
    fn symbols_round_trip_and_refuse_what_they_cannot_spell() {
        let t = adder();
        let tokens = t.encode(b"12+3=").unwrap();
        assert_eq!(tokens, [1, 2, 10, 3, 12]);
        assert_eq!(t.decode(&tokens), b"12+3=");
        assert_eq!(t.decode(&[99]), b"?");
        assert!(matches!(t.encode(b"1a"), Err(GenError::Symbol { .. })));
        assert_eq!((t.vocab(), t.eos(), t.empty_prompt()), (16, Some(13), None));
    }

    #[test]
    fn bytes_are_tokens_and_fingerprints_tell_tokenizers_apart() {
        let b = Tokenizer::Bytes;
        assert_eq!(b.encode(b"hi\xff").unwrap(), [104, 105, 255]);
        assert_eq!(b.decode(&[104, 105, 300]), b"hi?");
        assert_eq!(b.empty_prompt(), Some(10));
        let other = Tokenizer::Symbols {
            chars: "0123456789+*= $_".chars().collect(),
            end: None,
        };
        let prints = [b.fingerprint(), adder().fingerprint(), other.fingerprint()];
        assert_ne!(prints[0], prints[1]);
        assert_ne!(prints[1], prints[2]);
        assert_eq!(adder().fingerprint(), prints[1]);
    }
}
