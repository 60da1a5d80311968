//! [`StopText`]: the stop strings of a generation, watched over text that arrives a token at a
//! time, holding back only the bytes that could still begin one.

/// Text on its way to the sink, cut at the first stop string.
#[derive(Debug)]
pub(crate) struct StopText<'s> {
    stops: Vec<&'s [u8]>,
    /// Bytes that could still be the start of a stop string.
    pending: Vec<u8>,
}

impl<'s> StopText<'s> {
    /// Watches for `stops` (empty strings are skipped).
    pub(crate) fn new(stops: &'s [Vec<u8>]) -> StopText<'s> {
        StopText {
            stops: stops
                .iter()
                .filter(|s| !s.is_empty())
                .map(Vec::as_slice)
                .collect(),
            pending: Vec::new(),
        }
    }

    /// Adds `bytes` and appends to `emit` what can no longer be part of a stop string. True
    /// when a stop string is complete: `emit` then ends with the text before it, and the stop
    /// string and what came with it are dropped.
    pub(crate) fn push(&mut self, bytes: &[u8], emit: &mut Vec<u8>) -> bool {
        if self.stops.is_empty() {
            emit.extend_from_slice(bytes);
            return false;
        }
        self.pending.extend_from_slice(bytes);
        // Bytes already emitted could not begin a stop string, so any occurrence starts here.
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.pending.windows(s.len()).position(|w| w == *s))
            .min();
        if let Some(at) = found {
            emit.extend_from_slice(&self.pending[..at]);
            self.pending.clear();
            return true;
        }
        let hold = self
            .stops
            .iter()
            .map(|s| {
                (1..s.len().min(self.pending.len() + 1))
                    .rev()
                    .find(|&k| self.pending.ends_with(&s[..k]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let release = self.pending.len() - hold;
        emit.extend(self.pending.drain(..release));
        false
    }

    /// The end of the text: what was held back is emitted.
    pub(crate) fn finish(&mut self, emit: &mut Vec<u8>) {
        emit.append(&mut self.pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one at a time; returns what was emitted after each and whether it stopped.
    fn feed(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool) {
        let stops: Vec<Vec<u8>> = stops.iter().map(|s| s.as_bytes().to_vec()).collect();
        let mut t = StopText::new(&stops);
        let mut out = Vec::new();
        for p in pieces {
            let mut emit = Vec::new();
            let stop = t.push(p.as_bytes(), &mut emit);
            out.push(String::from_utf8(emit).unwrap_or_default());
            if stop {
                return (out, true);
            }
        }
        let mut emit = Vec::new();
        t.finish(&mut emit);
        out.push(String::from_utf8(emit).unwrap_or_default());
        (out, false)
    }

    #[test]
    fn holds_back_only_what_could_begin_a_stop_string() {
        // "U" could begin "User:", so it waits; "Us" then "x" frees it.
        assert_eq!(
            feed(&["User:"], &["Hi ", "U", "s", "x", "!"]),
            (
                vec![
                    "Hi ".into(),
                    "".into(),
                    "".into(),
                    "Usx".into(),
                    "!".into(),
                    "".into()
                ],
                false
            )
        );
        // Split over pieces, the stop string ends the text, with what came after it in its piece.
        assert_eq!(
            feed(&["User:"], &["ok.\nUs", "er", ": more"]),
            (vec!["ok.\n".into(), "".into(), "".into()], true)
        );
        // The stop string that starts first wins, whichever ends first; an empty one is
        // skipped.
        assert_eq!(
            feed(&["", "cd", "bcdx"], &["abcdx"]),
            (vec!["a".into()], true)
        );
        // Without stop strings everything passes at once.
        assert_eq!(
            feed(&[], &["a", "b"]),
            (vec!["a".into(), "b".into(), "".into()], false)
        );
        // A held tail is emitted at the end.
        assert_eq!(
            feed(&["END"], &["the E", "N"]),
            (vec!["the ".into(), "".into(), "EN".into()], false)
        );
    }
}
