//! Self-describing token files: the windows of one or more documents behind a small header that
//! says which model, window size and rules made them, so that `detokenize` with another model
//! or `W` is an error instead of garbage, and a training loader finds document boundaries.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "ATOK"
//! 4       2     format revision (1)
//! 6       2     window bits W
//! 8       16    model id (u128: the payload hash of the bundle, as `.arca` headers record it)
//! 24      2     window rules revision (`eiw::REVISION`)
//! 26      2     zero
//! 28      4     segment length in bytes (a window never crosses a segment)
//! 32      4     document count D
//! 36      4     zero
//! 40      8     token count N
//! 48      8*D   document ends: the index of the token after each document's last (cumulative)
//! ..      4     CRC-32 of everything above
//! ..      4     zero (the tokens start at a multiple of 8 bytes)
//! ..      N*W/8 the tokens, as the raw token file has them: little-endian u16, u32 or u64 for
//!               W = 16, 32 or 64, else W/8 bytes each, most significant first
//! ```
//!
//! All integers are little endian. A loader that wants the tokens alone maps the file and skips
//! [`TokenFile::data_offset`] bytes (`56 + 8 * D`); `arca tokenize --raw` still writes the bare
//! tokens.

use super::config::{EiwError, OLDEST_REVISION, REVISION, check_bits};
use super::tokenizer::Windows;

/// The four bytes a token file starts with.
pub const TOKEN_MAGIC: [u8; 4] = *b"ATOK";
/// The token file format revision this build writes and reads.
pub const TOKEN_FILE_REVISION: u16 = 1;
/// Fixed part of the header, before the document table.
const FIXED: usize = 48;

/// The windows of one or more documents, with what made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFile {
    /// The model's id (its bundle's payload hash).
    pub model_id: u128,
    /// Segment length the encoder used.
    pub segment: u32,
    /// The window rules revision the windows were coded with (decode with
    /// [`Tokenizer::with_revision`](super::Tokenizer::with_revision)).
    pub rules: u16,
    /// Each document's end, in tokens from the start (cumulative, non-decreasing).
    pub doc_ends: Vec<u64>,
    /// Every document's windows, back to back.
    pub windows: Windows,
}

fn err(msg: impl Into<String>) -> EiwError {
    EiwError::TokenFile(msg.into())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl TokenFile {
    /// The documents' windows (all of the same `W`) in one file.
    pub fn new(model_id: u128, segment: u32, documents: &[Windows]) -> Result<Self, EiwError> {
        let bits = documents.first().map_or(16, Windows::bits);
        let mut bytes = Vec::new();
        let mut doc_ends = Vec::with_capacity(documents.len());
        let mut end = 0u64;
        for doc in documents {
            if doc.bits() != bits {
                return Err(err(format!(
                    "documents of {} and {bits}-bit windows cannot share a token file",
                    doc.bits()
                )));
            }
            bytes.extend_from_slice(doc.as_bytes());
            end += doc.len() as u64;
            doc_ends.push(end);
        }
        Ok(TokenFile {
            model_id,
            segment,
            rules: REVISION,
            doc_ends,
            windows: Windows::from_bytes(bits, bytes)?,
        })
    }

    /// Whether `bytes` starts like a token file (its magic).
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(&TOKEN_MAGIC)
    }

    /// Where the tokens start in a file of `documents` documents.
    pub fn data_offset(documents: usize) -> usize {
        FIXED + 8 * documents + 8
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = self.doc_ends.len();
        let tokens = self.windows.to_token_file();
        let mut out = Vec::with_capacity(Self::data_offset(d) + tokens.len());
        out.extend_from_slice(&TOKEN_MAGIC);
        out.extend_from_slice(&TOKEN_FILE_REVISION.to_le_bytes());
        out.extend_from_slice(&(self.windows.bits() as u16).to_le_bytes());
        out.extend_from_slice(&self.model_id.to_le_bytes());
        out.extend_from_slice(&self.rules.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.extend_from_slice(&(d as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(self.windows.len() as u64).to_le_bytes());
        for end in &self.doc_ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&tokens);
        out
    }

    /// Reads and checks a token file (header, checksum, document table, whole windows).
    pub fn parse(bytes: &[u8]) -> Result<Self, EiwError> {
        if !Self::sniff(bytes) {
            return Err(err("not an arca token file (no ATOK header)"));
        }
        if bytes.len() < FIXED {
            return Err(err("token file is truncated (its header is cut)"));
        }
        let revision = u16::from_le_bytes([bytes[4], bytes[5]]);
        if revision != TOKEN_FILE_REVISION {
            return Err(err(format!(
                "unsupported token file revision {revision} (this build reads {TOKEN_FILE_REVISION})"
            )));
        }
        let d = u32_at(bytes, 32) as usize;
        let start = FIXED
            .checked_add(
                d.checked_mul(8)
                    .ok_or_else(|| err("document count overflows"))?,
            )
            .ok_or_else(|| err("document count overflows"))?;
        if bytes.len() < start + 8 {
            return Err(err("token file is truncated (its document table is cut)"));
        }
        if crc32fast::hash(&bytes[..start]) != u32_at(bytes, start) {
            return Err(err("token file header is corrupted (checksum mismatch)"));
        }
        let bits = u32::from(u16::from_le_bytes([bytes[6], bytes[7]]));
        check_bits(bits)?;
        let rules = u16::from_le_bytes([bytes[24], bytes[25]]);
        if !(OLDEST_REVISION..=REVISION).contains(&rules) {
            return Err(err(format!(
                "the token file was made with window rules revision {rules}; this build reads \
                 {OLDEST_REVISION} to {REVISION}"
            )));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[8..24]);
        let count = u64_at(bytes, 40);
        let doc_ends: Vec<u64> = (0..d).map(|i| u64_at(bytes, FIXED + 8 * i)).collect();
        if doc_ends.windows(2).any(|w| w[0] > w[1]) || doc_ends.last().is_some_and(|&e| e != count)
        {
            return Err(err("token file's document table does not add up"));
        }
        if d == 0 && count != 0 {
            return Err(err("token file has tokens but no document"));
        }
        let data = &bytes[start + 8..];
        let expected = count
            .checked_mul(u64::from(bits / 8))
            .ok_or_else(|| err("token count overflows"))?;
        if data.len() as u64 != expected {
            return Err(err(format!(
                "token file should hold {count} tokens ({expected} bytes) but has {} bytes",
                data.len()
            )));
        }
        Ok(TokenFile {
            model_id: u128::from_le_bytes(id),
            segment: u32_at(bytes, 28),
            rules,
            doc_ends,
            windows: Windows::from_token_file(bits, data)?,
        })
    }

    /// Refuses a file made for another model or window size: `W` and the model's id must match
    /// (`model_name` is for the message).
    pub fn check(
        &self,
        bits: Option<u32>,
        model_id: u128,
        model_name: &str,
    ) -> Result<(), EiwError> {
        if let Some(bits) = bits
            && bits != self.windows.bits()
        {
            return Err(err(format!(
                "the token file holds {}-bit windows, not {bits}-bit ones",
                self.windows.bits()
            )));
        }
        if model_id != self.model_id {
            return Err(err(format!(
                "the token file was made with model id {:032x}; '{model_name}' is {:032x}",
                self.model_id, model_id
            )));
        }
        Ok(())
    }

    /// Each document's windows, as `(window bytes, index of its first window)`: the runs
    /// [`super::Tokenizer::decode_runs`] decodes, one text per document.
    pub fn documents(&self) -> Vec<(&[u8], usize)> {
        let w = self.windows.bits() as usize / 8;
        let bytes = self.windows.as_bytes();
        let mut start = 0usize;
        self.doc_ends
            .iter()
            .map(|&end| {
                let end = end as usize;
                let run = (&bytes[start * w..end * w], start);
                start = end;
                run
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(bits: u32) -> TokenFile {
        let w = bits as usize / 8;
        let docs: Vec<Windows> = [3usize, 0, 2]
            .iter()
            .enumerate()
            .map(|(d, &n)| {
                let bytes = (0..n * w).map(|i| (d * 50 + i) as u8).collect();
                Windows::from_bytes(bits, bytes).expect("windows")
            })
            .collect();
        TokenFile::new(0xfeed_u128 << 64 | 7, 4096, &docs).expect("token file")
    }

    #[test]
    fn round_trip_with_documents() {
        for bits in [16, 24, 32, 64, 128] {
            let file = sample(bits);
            assert_eq!(file.doc_ends, [3, 3, 5]);
            let bytes = file.to_bytes();
            assert_eq!(TokenFile::data_offset(3) % 8, 0);
            assert_eq!(
                bytes.len(),
                TokenFile::data_offset(3) + 5 * bits as usize / 8
            );
            let back = TokenFile::parse(&bytes).expect("parse");
            assert_eq!(back, file);
            let runs = back.documents();
            assert_eq!(runs.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 3, 3]);
            assert_eq!(runs[1].0.len(), 0);
        }
    }

    #[test]
    fn older_window_rules_are_read_and_unknown_ones_refused() {
        let mut file = sample(32);
        file.rules = OLDEST_REVISION;
        assert_eq!(TokenFile::parse(&file.to_bytes()).expect("parse").rules, 1);
        file.rules = REVISION + 1;
        let err = TokenFile::parse(&file.to_bytes()).expect_err("a future revision");
        assert!(err.to_string().contains("rules revision 3"), "{err}");
    }

    #[test]
    fn u16_tokens_follow_the_header_as_the_raw_file_has_them() {
        let file = sample(16);
        let bytes = file.to_bytes();
        assert_eq!(
            &bytes[TokenFile::data_offset(3)..],
            file.windows.to_token_file()
        );
    }

    #[test]
    fn damage_is_an_error() {
        let bytes = sample(16).to_bytes();
        for cut in 0..bytes.len() {
            assert!(TokenFile::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..TokenFile::data_offset(3) - 4 {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(TokenFile::parse(&b).is_err(), "flip at {i}");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(TokenFile::parse(&longer).is_err());
        assert!(TokenFile::parse(b"\x34\x12\xcd\xab").is_err());
    }

    #[test]
    fn another_model_or_window_size_is_refused() {
        let file = sample(16);
        file.check(Some(16), file.model_id, "m").expect("same");
        file.check(None, file.model_id, "m").expect("no W given");
        let e = file.check(Some(32), file.model_id, "m").expect_err("W");
        assert!(e.to_string().contains("16-bit windows, not 32-bit"), "{e}");
        let e = file.check(None, 1, "text-small").expect_err("model");
        assert!(e.to_string().contains("'text-small'"), "{e}");
    }
}
