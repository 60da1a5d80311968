//! What the HTTP side asks of a model: complete one request, handing out text as soon as it is
//! decided.

use crate::commands::serve::api::{ApiError, CompletionRequest, Finish, Usage};

/// A served model. Shared by every request thread; each call keeps its own decoding state.
pub trait Backend: Send + Sync {
    /// The model's id in `/v1/models` and in answers.
    fn model_id(&self) -> &str;

    /// Completes `request`, passing each decided piece of text (whole UTF-8 characters) to
    /// `emit`; an `emit` error (the client went away) ends the generation.
    ///
    /// # Errors
    ///
    /// A 4xx for a request the model cannot take (a prompt it cannot encode, say), a 5xx for
    /// a model failure, and `emit`'s errors as a 499.
    fn complete(
        &self,
        request: &CompletionRequest,
        emit: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> Result<(Finish, Usage), ApiError>;
}

/// Bytes to whole UTF-8 characters: a byte-level model's token can end inside a character, so
/// its last bytes wait for the next token. Invalid sequences become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    /// Appends `bytes` and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..good]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: keep it for the next bytes.
                        None => {
                            self.pending.drain(..good);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..good + bad);
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_split_across_pushes_come_out_whole() {
        let text = "añ€😀z";
        let mut p = Utf8Pieces::default();
        let mut out = String::new();
        for b in text.as_bytes() {
            out.push_str(&p.push(std::slice::from_ref(b)));
        }
        out.push_str(&p.finish());
        assert_eq!(out, text);
        let mut p = Utf8Pieces::default();
        assert_eq!(p.push(b"a\xffb\xe2\x82"), "a\u{FFFD}b");
        assert_eq!(p.finish(), "\u{FFFD}");
    }
}
