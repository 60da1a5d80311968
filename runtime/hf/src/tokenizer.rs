//! [`HfTokenizer`]: a `tokenizer.json` (the Hugging Face `tokenizers` format) loaded with the
//! `tokenizers` crate: text to ids, ids to bytes, and a fingerprint of the vocabulary.
//!
//! Decoding gives bytes, not text: a byte-level BPE token (GPT-2, Llama 3, Qwen...) is mapped
//! back to the bytes it stands for, and a `<0xHH>` byte-fallback token (Llama 2, Mistral) to its
//! byte, so one token of a multi-byte character decodes to part of it and a stream of tokens
//! concatenates to the exact text. Other tokens decode to their text, with the SentencePiece
//! space marker `▁` as a space. Special tokens (BOS, EOS...) decode to nothing.
//!
//! ```no_run
//! let tok = arca_hf::HfTokenizer::from_file("model/tokenizer.json".as_ref())?;
//! let ids = tok.encode("The old man".as_bytes())?;
//! assert_eq!(tok.decode(&ids)?, b"The old man");
//! # Ok::<(), arca_hf::HfError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;
use xxhash_rust::xxh3::Xxh3;

use crate::config::HfConfig;
use crate::error::HfError;
use crate::source::{ModelSource, TOKENIZER_FILE};

/// A loaded `tokenizer.json`.
pub struct HfTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    model_type: String,
    byte_level: bool,
    /// Byte-level alphabet: the character that stands for each byte, inverted.
    char_bytes: HashMap<char, u8>,
    /// Added tokens: id -> (content, special).
    added: HashMap<u32, (String, bool)>,
    eos: Vec<u32>,
    /// The token an empty prompt is read as (the model's start token), if it has one.
    start: Option<u32>,
    fingerprint: u128,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("path", &self.path)
            .field("model_type", &self.model_type)
            .field("vocab", &self.vocab_size())
            .field("eos", &self.eos)
            .finish()
    }
}

impl HfTokenizer {
    /// Loads `path` (a `tokenizer.json`); the EOS token comes from a `tokenizer_config.json`
    /// beside it, when there is one.
    pub fn from_file(path: &Path) -> Result<HfTokenizer, HfError> {
        let bytes = crate::error::read_required(
            path,
            "a model directory needs the tokenizer.json that transformers writes",
        )?;
        let config = path
            .parent()
            .map(|d| d.join("tokenizer_config.json"))
            .and_then(|p| std::fs::read(p).ok());
        HfTokenizer::from_bytes(&bytes, config.as_deref(), path)
    }

    /// Loads a tokenizer from the bytes of `tokenizer.json` and, optionally, of
    /// `tokenizer_config.json` (for its `eos_token`); `path` names the file in messages.
    pub fn from_bytes(
        json: &[u8],
        tokenizer_config: Option<&[u8]>,
        path: &Path,
    ) -> Result<HfTokenizer, HfError> {
        let err = |reason: String| HfError::Tokenizer {
            path: path.to_owned(),
            reason,
        };
        let value: Value =
            serde_json::from_slice(json).map_err(|e| err(format!("not JSON: {e}")))?;
        let inner = Tokenizer::from_bytes(json).map_err(|e| err(e.to_string()))?;
        let model = value
            .get("model")
            .ok_or_else(|| err("no 'model' object".into()))?;
        let model_type = model
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("BPE")
            .to_owned();
        let byte_level =
            is_byte_level(value.get("decoder")) || is_byte_level(value.get("pre_tokenizer"));
        let added = inner
            .get_added_tokens_decoder()
            .into_iter()
            .map(|(id, t)| (id, (t.content, t.special)))
            .collect();
        let fingerprint = fingerprint(&value, &model_type);
        let mut tokenizer = HfTokenizer {
            inner,
            path: path.to_owned(),
            model_type,
            byte_level,
            char_bytes: byte_level_alphabet(),
            added,
            eos: Vec::new(),
            start: None,
            fingerprint,
        };
        if let Some(config) = tokenizer_config
            && let Ok(config) = serde_json::from_slice::<Value>(config)
        {
            let eos = match config.get("eos_token") {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(Value::Object(o)) => o.get("content").and_then(Value::as_str),
                _ => None,
            };
            if let Some(id) = eos.and_then(|t| tokenizer.inner.token_to_id(t)) {
                tokenizer.eos = vec![id];
            }
        }
        Ok(tokenizer)
    }

    /// The tokenizer of a model directory or bundle: its `tokenizer.json` (and
    /// `tokenizer_config.json` when there is one), with the end tokens `config` names when the
    /// tokenizer names none, and `config`'s start token for an empty prompt.
    pub fn of_source(source: &ModelSource, config: &HfConfig) -> Result<HfTokenizer, HfError> {
        let json = source.read(TOKENIZER_FILE)?;
        let tokenizer_config = source.read("tokenizer_config.json").ok();
        Ok(HfTokenizer::from_bytes(
            &json,
            tokenizer_config.as_deref(),
            &source.label(TOKENIZER_FILE),
        )?
        .or_eos(config.eos_token_ids())
        .with_start(config.bos_token_id()))
    }

    /// Uses `ids` as the end-of-sequence tokens when the tokenizer's own files named none.
    pub fn or_eos(mut self, ids: &[u32]) -> HfTokenizer {
        if self.eos.is_empty() {
            self.eos = ids.to_vec();
        }
        self
    }

    /// Sets the token an empty prompt is read as (the model's `bos_token_id`).
    pub fn with_start(mut self, start: Option<u32>) -> HfTokenizer {
        self.start = start;
        self
    }

    /// The token an empty prompt is read as, if the model has a start token.
    pub fn start(&self) -> Option<u32> {
        self.start
    }

    /// Encodes UTF-8 text (special tokens added as the tokenizer's post-processor says, as
    /// transformers does by default). Invalid UTF-8 is an error naming the offset.
    pub fn encode(&self, text: &[u8]) -> Result<Vec<u32>, HfError> {
        let text = std::str::from_utf8(text).map_err(|e| HfError::Utf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| HfError::Tokenize(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The bytes that `ids` stand for, concatenated (special tokens give none). An id outside
    /// the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>, HfError> {
        let mut out = Vec::new();
        for &id in ids {
            self.push_token_bytes(id, &mut out)?;
        }
        Ok(out)
    }

    fn push_token_bytes(&self, id: u32, out: &mut Vec<u8>) -> Result<(), HfError> {
        if let Some((content, special)) = self.added.get(&id) {
            if !special {
                out.extend_from_slice(content.as_bytes());
            }
            return Ok(());
        }
        let token = self.inner.id_to_token(id).ok_or_else(|| {
            HfError::Tokenize(format!(
                "token id {id} is outside the vocabulary of {} tokens",
                self.vocab_size()
            ))
        })?;
        if self.byte_level {
            let mut buf = [0u8; 4];
            for c in token.chars() {
                match self.char_bytes.get(&c) {
                    Some(&b) => out.push(b),
                    None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
                }
            }
        } else if let Some(b) = byte_fallback(&token) {
            out.push(b);
        } else {
            out.extend_from_slice(token.replace('\u{2581}', " ").as_bytes());
        }
        Ok(())
    }

    /// Number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The tokenizer model's type (`BPE`, `Unigram`, `WordPiece`, `WordLevel`).
    pub fn model_type(&self) -> &str {
        &self.model_type
    }

    /// End-of-sequence ids (empty when neither the tokenizer's files nor the caller named one).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The id of `token` (a token string of the vocabulary), if it has one.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// xxh3-128 of the model type, the vocabulary (token and id, in id order), the merges and
    /// the added tokens: two tokenizers with the same fingerprint map text to the same ids.
    /// Formatting of the JSON file does not change it.
    pub fn fingerprint(&self) -> u128 {
        self.fingerprint
    }
}

fn is_byte_level(v: Option<&Value>) -> bool {
    let Some(v) = v else { return false };
    match v.get("type").and_then(Value::as_str) {
        Some("ByteLevel") => true,
        Some("Sequence") => ["decoders", "pretokenizers"].iter().any(|key| {
            v.get(*key)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| is_byte_level(Some(i))))
        }),
        _ => false,
    }
}

/// GPT-2's byte-level alphabet, inverted: printable bytes stand for themselves, the others
/// (controls, space, 127..=160, 173) for the characters from U+0100 on, in byte order.
fn byte_level_alphabet() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, 33..=126 | 161..=172 | 174..=255);
        let code = if printable {
            u32::from(b)
        } else {
            let c = next;
            next += 1;
            c
        };
        if let Some(c) = char::from_u32(code) {
            map.insert(c, b);
        }
    }
    map
}

/// The byte of a SentencePiece byte-fallback token `<0xHH>`.
fn byte_fallback(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// See [`HfTokenizer::fingerprint`].
fn fingerprint(value: &Value, model_type: &str) -> u128 {
    let mut h = Xxh3::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(model_type.as_bytes());
    let model = value.get("model");
    match model.and_then(|m| m.get("vocab")) {
        Some(Value::Object(vocab)) => {
            let mut entries: Vec<(u64, &str)> = vocab
                .iter()
                .map(|(token, id)| (id.as_u64().unwrap_or(u64::MAX), token.as_str()))
                .collect();
            entries.sort_unstable();
            for (id, token) in entries {
                field(&id.to_le_bytes());
                field(token.as_bytes());
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                field(item.to_string().as_bytes());
            }
        }
        _ => {}
    }
    if let Some(Value::Array(merges)) = model.and_then(|m| m.get("merges")) {
        for merge in merges {
            // "a b" (older files) and ["a", "b"] (newer) are the same merge.
            let text = match merge {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .map(|p| p.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            field(text.as_bytes());
        }
    }
    if let Some(Value::Array(added)) = value.get("added_tokens") {
        for t in added {
            field(
                &t.get("id")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX)
                    .to_le_bytes(),
            );
            field(
                t.get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
    }
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_covers_every_byte_once() {
        let map = byte_level_alphabet();
        assert_eq!(map.len(), 256);
        assert_eq!(map.get(&'\u{120}'), Some(&b' '));
        assert_eq!(map.get(&'\u{10a}'), Some(&b'\n'));
        assert_eq!(map.get(&'A'), Some(&b'A'));
    }

    #[test]
    fn byte_fallback_tokens() {
        assert_eq!(byte_fallback("<0x0A>"), Some(b'\n'));
        assert_eq!(byte_fallback("<0xE2>"), Some(0xe2));
        assert_eq!(byte_fallback("<0x0A"), None);
        assert_eq!(byte_fallback("<0xZZ>"), None);
        assert_eq!(byte_fallback("hello"), None);
    }
}
