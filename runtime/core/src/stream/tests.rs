use std::io::{self, Read, Write};

use super::*;
use crate::codec::Model;
use crate::container::{self, Header};
use crate::engine::ModelError;

/// Streams coded without a network (context models alone): no model file needed.
struct NoModel(Model);

impl ModelSource for NoModel {
    fn model_for(&mut self, _: &Header) -> Result<&Model, ModelError> {
        Ok(&self.0)
    }
}

/// Text with some repetition, `len` bytes.
fn text(len: usize) -> Vec<u8> {
    let words = ["stream ", "frame ", "block ", "arca ", "log\n", "json "];
    let mut out = Vec::with_capacity(len + 8);
    let mut x = 12345u32;
    while out.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
    }
    out.truncate(len);
    out
}

/// Small blocks and frames, so that a few KB make several frames.
fn options() -> Options {
    Options {
        block_size: 1000,
        threads: 2,
    }
}

fn encode(codec: &TextCodec<'_>, data: &[u8], frame: u64) -> Vec<u8> {
    let mut enc = Encoder::new(codec, Vec::new())
        .options(options())
        .frame_size(frame);
    // Odd write sizes, so frames fill across calls.
    for chunk in data.chunks(777) {
        enc.write_all(chunk).expect("write");
    }
    enc.finish().expect("finish")
}

fn decode(packed: impl Read) -> io::Result<Vec<u8>> {
    let mut models = NoModel(Model::None);
    let mut out = Vec::new();
    Decoder::new(packed, &mut models)
        .threads(2)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A reader that gives at most one byte per call, as a slow pipe may.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn frames_round_trip_through_every_reader() {
    let codec = TextCodec::without_network();
    let data = text(10_500);
    let packed = encode(&codec, &data, 3000);
    let frames = container::frames(&packed).expect("frames");
    // 3 blocks of 1000 bytes a frame: 3000, 3000, 3000, 1500.
    let lens: Vec<u64> = frames.iter().map(|f| f.header().original_len).collect();
    assert_eq!(lens, [3000, 3000, 3000, 1500]);
    assert_eq!(decode(&packed[..]).expect("decoder"), data);
    assert_eq!(decode(Trickle(&packed)).expect("trickle"), data);
    let mut models = NoModel(Model::None);
    let whole = codec::decompress(&packed, &mut models, &DecodeOptions::default(), &|_| {});
    assert_eq!(whole.expect("decompress"), data);
    let back = codec.decompress(&packed, &options(), &|_| {});
    assert_eq!(back.expect("TextCodec::decompress"), data);
    // Ranges inside one frame, across frames, empty, and all of it.
    for (a, b) in [
        (0, 10),
        (2990, 3010),
        (100, 9100),
        (6000, 6000),
        (0, 10_500),
    ] {
        let got = codec.decompress_range(&packed, a..b, &options(), &|_| {});
        assert_eq!(
            got.expect("range"),
            &data[a as usize..b as usize],
            "{a}..{b}"
        );
    }
    let past = codec.decompress_range(&packed, 0..10_501, &options(), &|_| {});
    assert!(past.is_err());
}

#[test]
fn one_frame_is_what_compress_writes() {
    let codec = TextCodec::without_network();
    let data = text(4000);
    let whole = codec
        .compress(&data, &options(), &|_| {})
        .expect("compress");
    assert_eq!(encode(&codec, &data, FRAME_SIZE), whole);
}

#[test]
fn the_frame_length_does_not_depend_on_threads() {
    let codec = TextCodec::without_network();
    let data = text(5000);
    let one = Encoder::new(&codec, Vec::new()).options(Options {
        block_size: 1000,
        threads: 1,
    });
    let mut one = one.frame_size(2000);
    one.write_all(&data).expect("write");
    assert_eq!(one.finish().expect("finish"), encode(&codec, &data, 2000));
}

#[test]
fn empty_input_is_one_empty_frame() {
    let codec = TextCodec::without_network();
    let packed = encode(&codec, b"", 3000);
    assert_eq!(container::frames(&packed).expect("frames").len(), 1);
    assert_eq!(decode(&packed[..]).expect("decode"), b"");
}

#[test]
fn concatenated_streams_decode_to_the_concatenation() {
    let codec = TextCodec::without_network();
    let (a, b) = (text(2500), b"and a second file".to_vec());
    let mut both = codec.compress(&a, &options(), &|_| {}).expect("a");
    both.extend(encode(&codec, b"", 3000));
    both.extend(codec.compress(&b, &options(), &|_| {}).expect("b"));
    assert_eq!(decode(&both[..]).expect("decode"), [a, b].concat());
}

#[test]
fn flush_makes_what_was_written_decodable() {
    let codec = TextCodec::without_network();
    let mut enc = Encoder::new(&codec, Vec::new()).options(options());
    enc.write_all(b"first line\n").expect("write");
    enc.flush().expect("flush");
    assert_eq!(enc.frames(), 1);
    enc.flush().expect("an empty flush writes no frame");
    assert_eq!(enc.frames(), 1);
    let so_far = decode(&enc.writer[..]).expect("decode the flushed prefix");
    assert_eq!(so_far, b"first line\n");
    enc.write_all(b"second line\n").expect("write");
    let packed = enc.finish().expect("finish");
    assert_eq!(
        decode(&packed[..]).expect("decode"),
        b"first line\nsecond line\n"
    );
}

fn decode_error(packed: &[u8]) -> ContainerError {
    let err = decode(packed).expect_err("must fail");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    match codec_error(&err) {
        Some(CodecError::Container(e)) => e.clone(),
        other => panic!("not a container error: {other:?} ({err})"),
    }
}

#[test]
fn damage_is_an_error_never_a_short_read() {
    let codec = TextCodec::without_network();
    let data = text(7000);
    let packed = encode(&codec, &data, 3000);
    let first = container::frames(&packed).expect("frames")[0].len();
    // Cut inside the first frame, at the second frame's start + 1, and inside the last one.
    for cut in [
        1,
        40,
        MIN_HEADER_LEN + 5,
        first - 1,
        first + 1,
        packed.len() - 1,
    ] {
        let err = decode(&packed[..cut]).expect_err("truncated");
        assert_eq!(
            err.kind(),
            io::ErrorKind::InvalidData,
            "cut at {cut}: {err}"
        );
    }
    assert!(matches!(
        decode_error(&packed[..packed.len() - 1]),
        ContainerError::Truncated { what: "blocks", .. }
    ));
    let mut junk = packed.clone();
    junk.extend_from_slice(b"junk after the stream");
    assert_eq!(decode_error(&junk), ContainerError::TrailingBytes(21));
    assert_eq!(decode_error(&[]), ContainerError::BadMagic);
    let frames = container::frames(&packed).expect("frames");
    let last = frames.last().expect("a frame");
    let at = packed.len() - last.len() + last.block_offset(0).expect("a block") + 5;
    assert_eq!(last.entries()[0].mode, container::BlockMode::Coded);
    let mut flipped = packed.clone();
    flipped[at] ^= 0x40;
    let err = decode(&flipped[..]).expect_err("a flipped bit");
    assert!(
        matches!(codec_error(&err), Some(CodecError::BlockCorrupt { .. })),
        "{err}"
    );
}

#[test]
fn a_push_decoder_takes_pieces_of_any_size() {
    let codec = TextCodec::without_network();
    let data = text(7000);
    let packed = encode(&codec, &data, 3000);
    for piece in [1, 7, 80, 1000, packed.len()] {
        let mut dec = PushDecoder::new(2);
        let mut back = Vec::new();
        let mut models = NoModel(Model::None);
        for chunk in packed.chunks(piece) {
            dec.push(chunk, &mut models, &mut |b| {
                back.extend_from_slice(b);
                Ok(())
            })
            .expect("push");
        }
        assert_eq!(dec.frames(), 3);
        dec.finish().expect("finish");
        assert_eq!(back, data, "pieces of {piece}");
    }
    // Cut short, garbage after, nothing at all, garbage first: errors, nothing handed over.
    let mut models = NoModel(Model::None);
    let mut sink = |_: &[u8]| -> io::Result<()> { Ok(()) };
    let mut dec = PushDecoder::new(1);
    dec.push(&packed[..packed.len() - 1], &mut models, &mut sink)
        .expect("a prefix is fine");
    assert!(dec.finish().is_err());
    let mut dec = PushDecoder::new(1);
    let junk = [&packed[..], b"xyz"].concat();
    assert!(dec.push(&junk, &mut models, &mut sink).is_err());
    assert!(PushDecoder::new(1).finish().is_err());
    let mut handed = 0;
    let mut count = |_: &[u8]| -> io::Result<()> {
        handed += 1;
        Ok(())
    };
    assert!(
        PushDecoder::new(1)
            .push(b"GZ", &mut models, &mut count)
            .is_err()
    );
    assert_eq!(handed, 0);
}
