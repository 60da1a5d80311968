//! The public face of Equal-Info Windows: a [`Tokenizer`] over a byte model, and the
//! [`Windows`] it writes.

use crate::engine::ByteModel;

use super::config::*;
use super::lanes::*;

/// Windows of `bits` bits each, back to back (`bits / 8` bytes per window, most significant
/// byte first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    bits: u32,
    bytes: Vec<u8>,
}

impl Windows {
    /// Wraps window bytes; they must be a whole number of windows.
    pub fn from_bytes(bits: u32, bytes: Vec<u8>) -> Result<Self, EiwError> {
        check_bits(bits)?;
        if !bytes.len().is_multiple_of(bits as usize / 8) {
            return Err(EiwError::Ragged {
                len: bytes.len(),
                bits,
            });
        }
        Ok(Windows { bits, bytes })
    }

    /// Reads a token file: little-endian `u16`, `u32` or `u64` ids for `W` = 16, 32 or 64 (as
    /// language-model data loaders read them), otherwise `W / 8` bytes per window, most
    /// significant first.
    pub fn from_token_file(bits: u32, data: &[u8]) -> Result<Self, EiwError> {
        let mut w = Windows::from_bytes(bits, data.to_vec())?;
        if matches!(bits, 16 | 32 | 64) {
            for chunk in w.bytes.chunks_exact_mut(bits as usize / 8) {
                chunk.reverse();
            }
        }
        Ok(w)
    }

    /// The token file (see [`Windows::from_token_file`]).
    pub fn to_token_file(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        if matches!(self.bits, 16 | 32 | 64) {
            for chunk in out.chunks_exact_mut(self.bits as usize / 8) {
                chunk.reverse();
            }
        }
        out
    }

    /// Window size in bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.bytes.len() / (self.bits as usize / 8)
    }

    /// True when there are no windows.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The windows' bytes, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Window `i`'s bytes.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let w = self.bits as usize / 8;
        self.bytes.get(i * w..(i + 1) * w)
    }

    /// Token ids: each window as an unsigned integer (for `W > 64`, its first 64 bits).
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        let w = (self.bits as usize / 8).min(8);
        self.bytes
            .chunks_exact(self.bits as usize / 8)
            .map(move |c| c[..w].iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }
}

/// Equal-Info Window coding with one byte model: the neural tokenizer of Lester et al.
pub struct Tokenizer<'m> {
    model: &'m dyn ByteModel,
    rules: Rules,
    segment: usize,
}

impl<'m> Tokenizer<'m> {
    /// A tokenizer with windows of `bits` bits and the default segment.
    pub fn new(model: &'m dyn ByteModel, bits: u32) -> Result<Self, EiwError> {
        Ok(Tokenizer {
            model,
            rules: Rules::new(bits, model.logit_frac_bits(), REVISION)?,
            segment: DEFAULT_SEGMENT as usize,
        })
    }

    /// The same with segments of `segment` bytes (a window never crosses a segment boundary).
    pub fn with_segment(mut self, segment: u32) -> Self {
        self.segment = segment.max(1) as usize;
        self
    }

    /// The same under window rules `revision` (to read windows an older build wrote; see
    /// [`REVISION`]).
    pub fn with_revision(mut self, revision: u16) -> Result<Self, EiwError> {
        self.rules = Rules::new(self.rules.bits, self.rules.frac_bits, revision)?;
        Ok(self)
    }

    /// Window size in bits.
    pub fn bits(&self) -> u32 {
        self.rules.bits
    }

    /// The window rules revision this tokenizer codes with.
    pub fn revision(&self) -> u16 {
        self.rules.revision
    }

    /// Encodes each segment of `text` into windows: one [`Windows`] per segment, in order.
    pub fn encode_segments(
        &self,
        text: &[u8],
        schedule: &Schedule,
    ) -> Result<Vec<Windows>, EiwError> {
        let mut lanes: Vec<EncodeLane<'_>> = text
            .chunks(self.segment)
            .map(|seg| EncodeLane::new(self.rules, seg))
            .collect();
        run(self.model, &mut lanes, schedule)?;
        Ok(lanes
            .into_iter()
            .map(|l| Windows {
                bits: self.rules.bits,
                bytes: l.windows,
            })
            .collect())
    }

    /// Encodes each of `documents` into its own windows (no window crosses from one document
    /// into the next), with every segment of every document stepped together: many short
    /// documents fill the batch as one long one does. The result is what [`Tokenizer::encode`]
    /// gives for each document alone.
    pub fn encode_documents(
        &self,
        documents: &[&[u8]],
        schedule: &Schedule,
    ) -> Result<Vec<Windows>, EiwError> {
        let mut lanes = Vec::new();
        let mut owner = Vec::new();
        for (d, doc) in documents.iter().enumerate() {
            for seg in doc.chunks(self.segment) {
                lanes.push(EncodeLane::new(self.rules, seg));
                owner.push(d);
            }
        }
        run(self.model, &mut lanes, schedule)?;
        let mut out = vec![Vec::new(); documents.len()];
        for (lane, d) in lanes.into_iter().zip(owner) {
            out[d].extend_from_slice(&lane.windows);
        }
        Ok(out
            .into_iter()
            .map(|bytes| Windows {
                bits: self.rules.bits,
                bytes,
            })
            .collect())
    }

    /// Segment length in bytes (a window never crosses a segment boundary).
    pub fn segment(&self) -> u32 {
        self.segment as u32
    }

    /// Encodes `text` into windows.
    pub fn encode(&self, text: &[u8], schedule: &Schedule) -> Result<Windows, EiwError> {
        let bytes = self
            .encode_segments(text, schedule)?
            .into_iter()
            .flat_map(|w| w.bytes)
            .collect();
        Ok(Windows {
            bits: self.rules.bits,
            bytes,
        })
    }

    /// Decodes windows back into text. Windows are independent, so they are split into runs
    /// that decode in parallel.
    pub fn decode(&self, windows: &Windows, schedule: &Schedule) -> Result<Vec<u8>, EiwError> {
        if windows.bits != self.rules.bits {
            return Err(EiwError::Bits(windows.bits));
        }
        Ok(self
            .decode_runs(&[(windows.as_bytes(), 0)], schedule)?
            .concat())
    }

    /// Decodes several runs of windows (`(bytes, index of the first window)`), one output per
    /// run. Long runs are split so every lane of the schedule has work.
    pub fn decode_runs(
        &self,
        runs: &[(&[u8], usize)],
        schedule: &Schedule,
    ) -> Result<Vec<Vec<u8>>, EiwError> {
        let bits = self.rules.bits;
        let w = bits as usize / 8;
        let total: usize = runs.iter().map(|(b, _)| b.len() / w).sum();
        let threads = if schedule.threads == 0 {
            rayon::current_num_threads()
        } else {
            schedule.threads
        };
        // Enough lanes to fill a batch on every thread, without making each lane tiny.
        let lanes_wanted = (threads * schedule.batch.max(1)).max(1);
        let per_lane = total.div_ceil(lanes_wanted).max(16);
        let mut lanes = Vec::new();
        let mut owner = Vec::new();
        for (r, &(bytes, first)) in runs.iter().enumerate() {
            if bytes.len() % w != 0 {
                return Err(EiwError::Ragged {
                    len: bytes.len(),
                    bits,
                });
            }
            for (j, chunk) in bytes.chunks(per_lane * w).enumerate() {
                lanes.push(DecodeLane::new(self.rules, chunk, first + j * per_lane)?);
                owner.push(r);
            }
        }
        run(self.model, &mut lanes, schedule)?;
        let mut outs = vec![Vec::new(); runs.len()];
        for (lane, r) in lanes.into_iter().zip(owner) {
            outs[r].extend_from_slice(&lane.out);
        }
        Ok(outs)
    }
}
