//! [`TextCodec`]: one byte model (or none) and the three text codecs it drives: `text-cm` (the
//! network mixed with context models, the default), `text-nn` (the network with small ones) and
//! `text-eiw` (Equal-Info Windows).

use std::ops::Range;

use arca_coder::{ByteWordCursor, RangeDecoder, RangeEncoder};

use crate::container::{BlockEntry, Codec, Header, Stream};
use crate::engine::ByteModel;

use super::blocks::{self, check_header, decode_blocks, encode_blocks, trimmed_bytes};
use super::cm::{
    self, BatchedSource, BitCoder, Decoding, Encoding, NoNetwork, Profile, StepSource, code_block,
};
use super::eiw::{self, EiwOptions};
use super::error::CodecError;
use super::nn;

/// Default block size: large enough for the adaptive models to learn a file, small enough
/// that books split into blocks for both cores.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;

/// Coding options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Maximum bytes per block (compression only; decompression reads it from the stream).
    pub block_size: u32,
    /// Worker threads. 0: the rayon pool this is called from (pass your own by calling inside
    /// `ThreadPool::install`), else one per core, in a pool kept for the process.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            block_size: DEFAULT_BLOCK_SIZE,
            threads: 0,
        }
    }
}

/// What a block looks like, by its share of control bytes (other than tab, line feed, form
/// feed and carriage return): text has none or a few (a terminal session's escapes: trans has
/// 9%), executables, images and tables of numbers a quarter or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Looks {
    Text,
    /// Between the two: both profiles are tried and the smaller block kept.
    Either,
    Binary,
}

fn looks(block: &[u8]) -> Looks {
    let control = block
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0c | b'\r')) || b == 0x7f)
        .count();
    match control {
        c if c * 8 > block.len() => Looks::Binary,
        c if c * 64 > block.len() => Looks::Either,
        _ => Looks::Text,
    }
}

/// Compresses and decompresses with one model (or with none: context models only).
///
/// The input is cut into blocks of `block_size` bytes. Each block is coded on its own, with a
/// fresh network context (the bytes before the block's start are PAD) and fresh adaptive
/// models, so blocks code and decode in parallel and a reader can seek to any block.
#[derive(Clone)]
pub struct TextCodec<'m> {
    model: Option<&'m dyn ByteModel>,
    model_id: u128,
    model_name: String,
    cm: CmSettings,
}

/// How [`TextCodec::compress`] codes `text-cm` blocks (what `arca compress`'s levels choose
/// besides the model and the block size). Decoding needs none of it: each block's first byte
/// records its [`Profile`](super::cm::Profile).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CmSettings {
    /// The fast profile: orders 1-4 and the match model, one mixer (several times faster than
    /// every model, a few percent larger).
    pub fast: bool,
    /// Code each block with the network and without it, and keep the smaller (twice the time;
    /// wins on blocks unlike the network's training text). No effect without a network.
    pub try_without_network: bool,
}

impl<'m> TextCodec<'m> {
    /// A codec driven by `model`, whose bundle has id `model_id` and name `model_name`.
    pub fn new(model: &'m dyn ByteModel, model_id: u128, model_name: &str) -> Self {
        TextCodec {
            model: Some(model),
            model_id,
            model_name: model_name.to_owned(),
            cm: CmSettings::default(),
        }
    }

    /// The same codec, compressing `text-cm` blocks as `cm` says.
    pub fn with_cm(mut self, cm: CmSettings) -> Self {
        self.cm = cm;
        self
    }

    /// A codec with no network: context mixing alone (for comparison and tests).
    pub fn without_network() -> Self {
        TextCodec {
            model: None,
            model_id: 0,
            model_name: "none".to_owned(),
            cm: CmSettings::default(),
        }
    }

    fn id_name(&self) -> (u128, &str) {
        (self.model_id, &self.model_name)
    }

    fn code_one(
        &self,
        coder: &mut impl BitCoder,
        plain: &[u8],
        len: usize,
        batched: bool,
        profile: Profile,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        match self.model.filter(|_| profile.network) {
            None => code_block(coder, &mut NoNetwork, plain, len, profile, progress),
            Some(model) if batched => {
                let mut src = BatchedSource {
                    model,
                    data: plain,
                    start: 0,
                    cdfs: Vec::new(),
                    contexts: Vec::new(),
                    logits: Vec::new(),
                };
                code_block(coder, &mut src, plain, len, profile, progress)
            }
            Some(model) => {
                let mut src = StepSource {
                    model,
                    cdf: [0; 257],
                    context: Vec::new(),
                    logits: Vec::new(),
                };
                code_block(coder, &mut src, plain, len, profile, progress)
            }
        }
    }

    /// The profiles a block is coded with: the first, and any others tried (the smallest
    /// result is kept). Binary data gets the binary contexts and no text network (the fast set
    /// has no room for them and keeps its own), with and without the extended contexts (they
    /// gain 1.5-7% on executables, fonts and tables and lose 4% on a bitmap; the binary
    /// profile is cheap next to the network); a block that may be either is coded both ways;
    /// `try_without_network` adds the network-less twin of the first.
    ///
    /// The fast set with a network (levels 3 and 5) codes a binary block with the binary
    /// profile alone, which is both smaller and faster there (level 5 on Calgary and
    /// Canterbury's binaries: 0.747 bits per byte at 656 KB/s, against 1.105 at 89 KB/s with the
    /// fast set and the network, `docs/bench/levels-binaries.md`); the fast set without a network
    /// (level 1) looks at nothing, so that it stays the fastest on any data.
    fn profiles_for(&self, block: &[u8]) -> (Profile, Vec<Profile>) {
        let looks = match (self.cm.fast, self.model.is_some()) {
            (false, _) => looks(block),
            (true, true) if looks(block) == Looks::Binary => Looks::Binary,
            (true, _) => Looks::Text,
        };
        let binary = looks == Looks::Binary;
        let binary_plain = Profile {
            fast: false,
            binary: true,
            network: false,
            extended: false,
        };
        if binary && self.cm.fast {
            return (binary_plain, Vec::new());
        }
        let first = Profile {
            fast: self.cm.fast,
            binary,
            network: self.model.is_some() && !binary,
            extended: !self.cm.fast,
        };
        let mut others = Vec::new();
        match looks {
            Looks::Binary => others.push(binary_plain),
            Looks::Either => others.extend([
                Profile {
                    extended: true,
                    ..binary_plain
                },
                binary_plain,
            ]),
            Looks::Text => {}
        }
        if self.cm.try_without_network && first.network {
            others.push(Profile {
                network: false,
                ..first
            });
        }
        (first, others)
    }

    /// One `text-cm` block as revision 2 stores it: the profile's byte, then the coded bits.
    fn encode_cm_block(
        &self,
        block: &[u8],
        profile: Profile,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let mut enc = Encoding(RangeEncoder::new(Vec::new()));
        self.code_one(&mut enc, block, block.len(), true, profile, progress)?;
        let words = enc
            .0
            .finish()
            .map_err(|e| CodecError::Options(format!("range coder: {e:?}")))?;
        let mut out = vec![profile.byte()];
        out.extend_from_slice(&trimmed_bytes(&words));
        Ok(out)
    }

    /// Compresses `input` into a complete `.arca` stream. `progress` is called with the number
    /// of input bytes just finished (from worker threads).
    pub fn compress(
        &self,
        input: &[u8],
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let (entries, datas) = encode_blocks(input, opts.block_size, opts.threads, |block| {
            let (first, others) = self.profiles_for(block);
            let mut coded = self.encode_cm_block(block, first, progress)?;
            // Further tries are not reported as progress: the block counts once.
            for profile in others {
                let other = self.encode_cm_block(block, profile, &|_| {})?;
                if other.len() < coded.len() {
                    coded = other;
                }
            }
            Ok(coded)
        })?;
        let header = blocks::header(
            Codec::TextCm,
            cm::BIT_PRECISION,
            cm::REVISION,
            self.id_name(),
            opts.block_size,
            input.len() as u64,
        );
        Ok(Stream::write(&header, &entries, &datas))
    }

    /// The network, which `text-nn` and Equal-Info Windows cannot do without.
    fn network(&self, what: &str) -> Result<&'m dyn ByteModel, CodecError> {
        self.model
            .ok_or_else(|| CodecError::Options(format!("{what} a network model")))
    }

    /// Compresses `input` into a `text-nn` stream: the network and small adaptive models (40
    /// KiB, reset at each block, seeing the last 16 KiB) code every byte, so a decoder needs only
    /// those and a 16 KiB ring of history; that is the codec of `arca_embedded` and the Cortex-M
    /// firmware. [`NN_BLOCK_SIZE`](super::NN_BLOCK_SIZE) is the default block size.
    pub fn compress_nn(
        &self,
        input: &[u8],
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let model = self.network("the text-nn codec needs")?;
        let (entries, datas) = encode_blocks(input, opts.block_size, opts.threads, |block| {
            let r = nn::encode_block(model, block, true);
            progress(block.len() as u64);
            r
        })?;
        let header = nn::header(self.id_name(), opts.block_size, input.len());
        Ok(Stream::write(&header, &entries, &datas))
    }

    /// Compresses `input` into Equal-Info Windows of `opts.bits` bits, in a `.arca` stream
    /// whose blocks are the segments and whose block data are the windows.
    pub fn compress_eiw(
        &self,
        input: &[u8],
        opts: &EiwOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let model = self.network("Equal-Info Windows need")?;
        eiw::compress(model, self.id_name(), input, opts, progress)
    }

    /// Checks that `stream` was made for this codec's model.
    fn check_stream(&self, stream: &Stream<'_>) -> Result<(), CodecError> {
        let h = stream.header();
        if h.codec == Codec::Stored {
            return Ok(());
        }
        let revision = match h.codec {
            // Every window rules revision from the oldest on is read.
            Codec::TextEiw
                if (crate::eiw::OLDEST_REVISION..=crate::eiw::REVISION)
                    .contains(&h.codec_revision) =>
            {
                h.codec_revision
            }
            Codec::TextEiw => crate::eiw::REVISION,
            // text-nn: revision 1 (the network alone) and 2 (with adaptive models) are read.
            Codec::TextNn
                if (arca_embedded::OLDEST_REVISION..=arca_embedded::REVISION)
                    .contains(&h.codec_revision) =>
            {
                h.codec_revision
            }
            Codec::TextNn => arca_embedded::REVISION,
            // text-cm: revision 1 (every block the full profile) and 2 (a profile per block).
            _ if (cm::OLDEST_REVISION..=cm::REVISION).contains(&h.codec_revision) => {
                h.codec_revision
            }
            _ => cm::REVISION,
        };
        check_header(h, revision, self.model_id, &self.model_name)
    }

    /// Decompresses a complete stream (or several back to back, to their concatenation),
    /// checking every block's checksum.
    pub fn decompress(
        &self,
        bytes: &[u8],
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        super::blocks::decode_frames(bytes, None, |stream, range| {
            self.decode_stream(stream, range, opts.threads, progress)
        })
    }

    /// Decodes only the bytes `range` of the original (end exclusive): the blocks that cover
    /// it, checked, then cut to the range.
    pub fn decompress_range(
        &self,
        bytes: &[u8],
        range: Range<u64>,
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        super::blocks::decode_frames(bytes, Some(range), |stream, range| {
            self.decode_stream(stream, range, opts.threads, progress)
        })
    }

    /// Decodes a parsed stream made for this codec's model: all of the original, or the bytes
    /// `range` of it (the blocks that cover it, checked, then cut to the range).
    pub(crate) fn decode_stream(
        &self,
        stream: &Stream<'_>,
        range: Option<Range<u64>>,
        threads: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        self.check_stream(stream)?;
        let Some(range) = range else {
            let blocks = 0..stream.entries().len();
            return Ok(self.decode(stream, blocks, threads, progress)?.concat());
        };
        let h = stream.header();
        if range.start > range.end || range.end > h.original_len {
            return Err(CodecError::Options(format!(
                "range {}..{} is not within the {} bytes of the original",
                range.start, range.end, h.original_len
            )));
        }
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let bs = u64::from(h.block_size);
        let first = (range.start / bs) as usize;
        let last = ((range.end - 1) / bs) as usize;
        let joined = self
            .decode(stream, first..last + 1, threads, progress)?
            .concat();
        let from = (range.start - first as u64 * bs) as usize;
        let to = from + (range.end - range.start) as usize;
        joined
            .get(from..to)
            .map(<[u8]>::to_vec)
            .ok_or(CodecError::BlockCorrupt { index: first })
    }

    /// Decodes blocks `range` of a stream already checked against this codec's model, checked,
    /// in order.
    fn decode(
        &self,
        stream: &Stream<'_>,
        range: Range<usize>,
        threads: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<Vec<u8>>, CodecError> {
        if stream.header().codec == Codec::TextEiw {
            let model = self.network("Equal-Info Windows need")?;
            let plains = eiw::decode_blocks(model, stream, range, threads)?;
            progress(plains.iter().map(|p| p.len() as u64).sum());
            return Ok(plains);
        }
        decode_blocks(stream, range, threads, progress, &|entry, data| {
            self.decode_coded(stream.header(), entry, data, progress)
        })
    }

    /// Decodes one coded block of a `text-cm` or `text-nn` stream.
    fn decode_coded(
        &self,
        header: &Header,
        entry: BlockEntry,
        data: &[u8],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let codec = header.codec;
        let corrupt = CodecError::BlockCorrupt { index: usize::MAX };
        // Every binary decision costs at least -log2(65535/65536) bits, so a byte costs at
        // least 1/5680 bit (text-nn: a 24-bit distribution gives every other byte at least 1,
        // so a byte costs at least 1/45,600 bit): a block claiming far more bytes than its bits
        // can carry is corrupt (and would otherwise make us decode gigabytes from nothing).
        let per_byte: u64 = if codec == Codec::TextNn {
            1 << 19
        } else {
            1 << 16
        };
        if u64::from(entry.original_len) > (u64::from(entry.compressed_len) + 16) * per_byte {
            return Err(corrupt);
        }
        let len = entry.original_len as usize;
        if codec == Codec::TextNn {
            let network = self.network("the text-nn codec needs")?;
            nn::decode_block(network, header.codec_revision, data, len)
        } else {
            let (profile, data) = if header.codec_revision >= 2 {
                let profile = data.first().and_then(|&b| Profile::from_byte(b));
                let Some(profile) = profile else {
                    return Err(corrupt);
                };
                let rest = &data[1..];
                // A block cannot use a network the stream was not made with, nor models newer
                // than its stream.
                if profile.network && header.model_id == 0
                    || profile.extended && header.codec_revision < 3
                {
                    return Err(corrupt);
                }
                (profile, rest)
            } else {
                (Profile::FULL, data)
            };
            let decoder = RangeDecoder::new(ByteWordCursor::new(data)).map_err(|_| corrupt)?;
            self.code_one(&mut Decoding(decoder), &[], len, false, profile, progress)
        }
    }

    /// Decodes block `index` of a parsed stream (random access).
    pub fn decompress_block(
        &self,
        stream: &Stream<'_>,
        index: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        self.check_stream(stream)?;
        let codec = stream.header().codec;
        if codec == Codec::TextEiw && index < stream.entries().len() {
            let model = self.network("Equal-Info Windows need")?;
            let mut plain = eiw::decode_blocks(model, stream, index..index + 1, 0)?;
            progress(stream.entries()[index].original_len.into());
            return plain.pop().ok_or(CodecError::BlockCorrupt { index });
        }
        blocks::decode_block(stream, index, progress, &|entry, data| {
            self.decode_coded(stream.header(), entry, data, progress)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DEFAULT_BLOCK_SIZE;

    const TEXT: &[u8] = include_bytes!("../../../../tests/data/canterbury/alice29.txt");

    fn options(block_size: u32) -> Options {
        Options {
            block_size,
            threads: 0,
        }
    }

    /// The first byte of each coded block (`None` for a block stored raw).
    fn profiles(stream: &[u8]) -> Vec<Option<u8>> {
        let parsed = Stream::parse(stream).unwrap();
        assert_eq!(parsed.header().codec_revision, cm::REVISION);
        (0..parsed.entries().len())
            .map(|i| {
                let coded = parsed.entries()[i].mode == crate::container::BlockMode::Coded;
                coded.then(|| parsed.block_data(i).unwrap()[0])
            })
            .collect()
    }

    #[test]
    fn each_block_records_its_profile_and_the_fast_one_is_a_little_larger() {
        let text = &TEXT[..60_000];
        let opts = options(16 << 10);
        let full = TextCodec::without_network();
        let fast = TextCodec::without_network().with_cm(CmSettings {
            fast: true,
            try_without_network: false,
        });
        let (a, b) = (
            full.compress(text, &opts, &|_| {}).unwrap(),
            fast.compress(text, &opts, &|_| {}).unwrap(),
        );
        assert_eq!(profiles(&a), [Some(0b1010); 4]);
        assert_eq!(profiles(&b), [Some(0b11); 4]);
        assert!(
            a.len() < b.len() && b.len() < a.len() * 11 / 10,
            "{} {}",
            a.len(),
            b.len()
        );
        // Any codec decodes either: the blocks say how they were coded.
        for stream in [&a, &b] {
            assert_eq!(full.decompress(stream, &opts, &|_| {}).unwrap(), text);
            assert_eq!(fast.decompress(stream, &opts, &|_| {}).unwrap(), text);
        }
    }

    /// A table of little-endian records (a counter and a slowly moving value), then text: 16
    /// KiB of each.
    fn records_then_text() -> Vec<u8> {
        let mut data = Vec::new();
        let mut v = 1000i32;
        for i in 0..4000u32 {
            v += (i.wrapping_mul(2_654_435_761) >> 28) as i32 - 7;
            data.extend_from_slice(&v.to_le_bytes());
            data.extend_from_slice(&(i as u16).to_le_bytes());
        }
        data.truncate(16 << 10);
        data.extend_from_slice(&TEXT[..16 << 10]);
        data
    }

    #[test]
    fn binary_blocks_get_the_binary_contexts() {
        // The first block is binary, the second is not.
        let data = records_then_text();
        let codec = TextCodec::without_network();
        let opts = options(16 << 10);
        let packed = codec.compress(&data, &opts, &|_| {}).unwrap();
        assert_eq!(profiles(&packed), [Some(0b1110), Some(0b1010)]);
        assert_eq!(codec.decompress(&packed, &opts, &|_| {}).unwrap(), data);
        assert_eq!(looks(&data[..16 << 10]), Looks::Binary);
        assert_eq!(looks(&TEXT[..16 << 10]), Looks::Text);
        // A terminal session's escapes leave text looking like text, or both are tried.
        let escapes: Vec<u8> = TEXT[..4000]
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![0x1b, b'[', b'K', b]
                } else {
                    vec![b]
                }
            })
            .collect();
        assert_ne!(looks(&escapes), Looks::Binary);
    }

    #[test]
    fn a_block_with_a_bad_profile_is_corrupt() {
        let codec = TextCodec::without_network();
        let opts = options(DEFAULT_BLOCK_SIZE);
        let good = codec.compress(&TEXT[..5000], &opts, &|_| {}).unwrap();
        let at = Stream::parse(&good).unwrap().block_offset(0).unwrap();
        // 5, 7, 9 and 13 are no profiles (the fast set goes with neither the binary contexts
        // nor the extended ones), 16 and up neither; 0 and 8 ask for a network a stream made
        // without one does not have.
        for byte in [5u8, 7, 9, 13, 16, 0, 8] {
            let mut bad = good.clone();
            bad[at] = byte;
            // The block's CRC is of the plaintext, so the container still parses.
            let err = codec.decompress(&bad, &opts, &|_| {}).unwrap_err();
            assert!(
                matches!(err, CodecError::BlockCorrupt { .. }),
                "{byte}: {err}"
            );
        }
    }

    /// A revision 2 stream's blocks cannot ask for the extended contexts of revision 3: such a
    /// block is corrupt, not decoded with models its writer did not have.
    #[test]
    fn an_extended_block_in_a_revision_2_stream_is_corrupt() {
        let codec = TextCodec::without_network();
        let opts = options(DEFAULT_BLOCK_SIZE);
        let stream = codec.compress(&TEXT[..5000], &opts, &|_| {}).unwrap();
        let at = Stream::parse(&stream).unwrap().block_offset(0).unwrap();
        assert_eq!(stream[at], 0b1010, "extended, no network");
        assert_eq!(
            codec.decompress(&stream, &opts, &|_| {}).unwrap(),
            &TEXT[..5000]
        );
        // The header says revision 2 (its CRC made to match, so only the rule can refuse it).
        let parsed = Stream::parse(&stream).unwrap();
        let mut header = parsed.header().clone();
        header.codec_revision = 2;
        let stream = parsed.rewrite(&header);
        assert_eq!(Stream::parse(&stream).unwrap().header().codec_revision, 2);
        let err = codec.decompress(&stream, &opts, &|_| {}).unwrap_err();
        // The block's bytes are those that decoded above: only the revision differs.
        assert!(matches!(err, CodecError::BlockCorrupt { .. }), "{err}");
    }

    /// Levels 3 and 5 (the fast set with a network) give a binary block the binary profile;
    /// level 1 (no network) looks at nothing.
    #[cfg(feature = "models")]
    #[test]
    fn the_fast_set_with_a_network_leaves_binary_blocks_to_the_binary_contexts()
    -> Result<(), Box<dyn std::error::Error>> {
        let bundle = crate::shipped::resolve("text-small")?;
        let model = crate::engine::TextModel::load(&bundle)?;
        let fast = CmSettings {
            fast: true,
            try_without_network: false,
        };
        let data = records_then_text();
        let opts = options(16 << 10);
        let with = TextCodec::new(&model, bundle.id(), "text-small").with_cm(fast);
        let packed = with.compress(&data, &opts, &|_| {})?;
        // Binary contexts without the network; the fast set with it.
        assert_eq!(profiles(&packed), [Some(0b0110), Some(0b0001)]);
        assert_eq!(with.decompress(&packed, &opts, &|_| {})?, data);
        let without = TextCodec::without_network().with_cm(fast);
        let packed = without.compress(&data, &opts, &|_| {})?;
        assert_eq!(profiles(&packed), [Some(0b0011), Some(0b0011)]);
        Ok(())
    }

    #[cfg(feature = "models")]
    #[test]
    fn two_passes_keep_the_smaller_of_each_block() -> Result<(), Box<dyn std::error::Error>> {
        let bundle = crate::shipped::resolve("text-small")?;
        let model = crate::engine::TextModel::load(&bundle)?;
        let codec = TextCodec::new(&model, bundle.id(), "text-small");
        // English, then bytes no text model predicts (that block ends up stored raw).
        let mut data = TEXT[..16 << 10].to_vec();
        let mut s = 0x2545_f491_u32;
        data.extend((0..16 << 10).map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        }));
        let opts = options(16 << 10);
        let one = codec.compress(&data, &opts, &|_| {})?;
        let two = codec
            .clone()
            .with_cm(CmSettings {
                fast: false,
                try_without_network: true,
            })
            .compress(&data, &opts, &|_| {})?;
        let alone = TextCodec::without_network().compress(&data, &opts, &|_| {})?;
        let sizes = |s: &[u8]| {
            let p = Stream::parse(s).unwrap();
            p.entries()
                .iter()
                .map(|e| e.compressed_len)
                .collect::<Vec<_>>()
        };
        let (one_sizes, two_sizes, alone_sizes) = (sizes(&one), sizes(&two), sizes(&alone));
        for i in 0..2 {
            assert_eq!(two_sizes[i], one_sizes[i].min(alone_sizes[i]), "block {i}");
        }
        assert_eq!(
            profiles(&two)[0],
            Some(0b1000),
            "the network helps on English"
        );
        assert_eq!(codec.decompress(&two, &opts, &|_| {})?, data);
        Ok(())
    }
}
