//! The embedded decoder (issue #5) against the runtime, on the host: the model emitted by
//! `arca-codegen emit` (`targets/cortex-m/src/model.rs`, the firmware's own file) computes the
//! runtime's logits bit for bit, `arca_embedded::stream::decode` with it decodes the streams
//! `TextCodec::compress_nn` writes, the batched encoder writes the stream of the one-call-per-byte
//! encoder, and the no-alloc stream reader agrees with the runtime's container parser on every
//! codec's streams. The same decode runs on the Cortex-M under qemu in `targets/cortex-m/test.sh`.

// Generated code, compared byte for byte with `arca-codegen emit`'s output: not reformatted.
#[rustfmt::skip]
#[allow(dead_code, clippy::all)]
#[path = "../../targets/cortex-m/src/model.rs"]
mod model;

use std::convert::Infallible;

use arca_embedded::Network;
use arca_embedded::stream::{self, DecodeError, Stream as EmbeddedStream};
use arca_runtime::codec::{self, EiwOptions, Options, TextCodec};
use arca_runtime::container::{BlockMode, Stream};
use arca_runtime::engine::{Engine, LoadOptions, TextModel};
use arca_runtime::shipped;
use arca_tests::workspace_root;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/data/canterbury").join(name))
        .unwrap_or_else(|e| panic!("tests/data/canterbury/{name}: {e}"))
}

fn load(engine: Engine) -> Result<(TextModel, u128)> {
    let bundle = shipped::resolve(model::MODEL_NAME)?;
    let model = TextModel::load_with(
        &bundle,
        LoadOptions {
            engine,
            ..LoadOptions::default()
        },
    )?;
    Ok((model, bundle.id()))
}

/// Contexts from prose, C source, PAD-heavy block starts and random symbols.
fn contexts(n: usize) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    for text in [read("alice29.txt"), read("fields.c"), read("xargs.1")] {
        for start in (0..text.len() - n).step_by(149).take(400) {
            out.push(
                text[start..start + n]
                    .iter()
                    .map(|&b| u16::from(b))
                    .collect(),
            );
        }
        for k in 0..=n {
            out.push(
                (0..n)
                    .map(|i| {
                        if i < k {
                            model::PAD
                        } else {
                            u16::from(text[i])
                        }
                    })
                    .collect(),
            );
        }
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        out.push(
            (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % 257) as u16
                })
                .collect(),
        );
    }
    out
}

#[test]
fn emitted_model_is_the_shipped_bundle() -> Result {
    let bundle = shipped::resolve(model::MODEL_NAME)?;
    assert_eq!(
        bundle.id(),
        model::MODEL_ID,
        "re-run `arca-codegen emit` after re-packing"
    );
    let m = bundle.manifest();
    assert_eq!(m.context_len as usize, model::CONTEXT_LEN);
    assert_eq!(m.pad_id, u32::from(model::PAD));
    assert_eq!(m.logit_frac_bits, model::FRAC_BITS);
    Ok(())
}

#[test]
fn emitted_model_gives_the_runtimes_logits_bit_for_bit() -> Result {
    let ctx = contexts(model::CONTEXT_LEN);
    let mut emitted = model::Model::new();
    let mut mine = [0i32; 256];
    for engine in [Engine::Native, Engine::Tract] {
        let (net, _) = load(engine)?;
        let flat: Vec<u16> = ctx.iter().flatten().copied().collect();
        let mut theirs = Vec::new();
        net.logits(&flat, ctx.len(), &mut theirs)?;
        for (i, c) in ctx.iter().enumerate() {
            Network::logits(&mut emitted, c, &mut mine)?;
            assert_eq!(
                &mine[..],
                &theirs[i * 256..(i + 1) * 256],
                "context {i} ({engine:?})"
            );
        }
    }
    Ok(())
}

/// Decodes `bytes` with the emitted model as the firmware does (in a buffer of one window).
fn firmware_decode(
    bytes: &[u8],
) -> std::result::Result<Vec<u8>, DecodeError<Infallible, Infallible>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; arca_embedded::WINDOW];
    stream::decode(bytes, model::MODEL_ID, model::Model::new(), &mut buf, |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn pc_streams_decode_with_the_emitted_model_and_batched_equals_stepwise() -> Result {
    let (net, id) = load(Engine::Native)?;
    let codec = TextCodec::new(&net, id, model::MODEL_NAME);
    let alice = read("alice29.txt");
    let inputs: Vec<(&str, Vec<u8>, u32)> = vec![
        ("empty", Vec::new(), codec::NN_BLOCK_SIZE),
        ("one byte", b"x".to_vec(), codec::NN_BLOCK_SIZE),
        ("grammar.lsp", read("grammar.lsp"), codec::NN_BLOCK_SIZE),
        (
            "alice29.txt[..40000]",
            alice[..40_000].to_vec(),
            codec::NN_BLOCK_SIZE,
        ),
        (
            "alice29.txt[..5000] in 777-byte blocks",
            alice[..5000].to_vec(),
            777,
        ),
        (
            "binary",
            (0..3000u32).map(|i| (i * 7919 % 256) as u8).collect(),
            1024,
        ),
    ];
    for (name, data, block) in &inputs {
        let opts = Options {
            block_size: *block,
            threads: 0,
        };
        let batched = codec.compress_nn(data, &opts, &|_| {})?;
        let stepwise = codec::compress_nn_stepwise(&net, id, model::MODEL_NAME, data, *block)?;
        assert!(
            batched == stepwise,
            "{name}: batched and stepwise streams differ"
        );
        assert_eq!(
            &codec.decompress(&batched, &opts, &|_| {})?,
            data,
            "{name}: runtime"
        );
        assert_eq!(
            &firmware_decode(&batched)?,
            data,
            "{name}: embedded decoder"
        );
    }
    Ok(())
}

/// A runtime model seen as an `arca_embedded::Network` (for models that have no emitted code).
struct Runtime<'m>(&'m TextModel);

impl Network for Runtime<'_> {
    type Error = arca_runtime::engine::ModelError;
    fn context_len(&self) -> usize {
        self.0.context_len()
    }
    fn pad(&self) -> u16 {
        self.0.pad_id()
    }
    fn frac_bits(&self) -> u32 {
        self.0.logit_frac_bits()
    }
    fn logits(
        &mut self,
        context: &[u16],
        out: &mut [i32; 256],
    ) -> std::result::Result<(), Self::Error> {
        let mut row = Vec::with_capacity(256);
        self.0.logits(context, 1, &mut row)?;
        out.copy_from_slice(&row);
        Ok(())
    }
}

/// Streams of earlier text-nn revisions still decode, with the runtime (which finds their model
/// by the stream's id) and with the embedded decoder: revision 1 (the network alone, before
/// the adaptive models of revision 2) written with the first text-embedded,
/// `tests/golden/xargs.1.text-nn-r1.arca` (`arca compress -m text-embedded` at commit 84a8a68),
/// and revision 2 (the whole block in memory), `tests/golden/fields.c.text-nn-r2.arca` (`arca
/// compress -m text-embedded -B 2K` at commit a7d7084, six blocks).
#[test]
fn earlier_revisions_still_decode_on_both_decoders() -> Result {
    earlier_revision_decodes("xargs.1", "tests/golden/xargs.1.text-nn-r1.arca", 1)?;
    earlier_revision_decodes("fields.c", "tests/golden/fields.c.text-nn-r2.arca", 2)
}

fn earlier_revision_decodes(name: &str, path: &str, revision: u16) -> Result {
    let golden = std::fs::read(workspace_root().join(path))?;
    let header = Stream::parse(&golden)?.header().clone();
    assert_eq!(header.codec_revision, revision);
    let v1 = shipped::shipped()
        .iter()
        .map(|m| m.bundle())
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .find(|b| b.id() == header.model_id)
        .ok_or("the stream's text-embedded is not shipped")?;
    assert_eq!(v1.manifest().name, "text-embedded");
    let net = TextModel::load(&v1)?;
    let codec = TextCodec::new(&net, v1.id(), "text-embedded");
    let want = read(name);
    let opts = Options {
        block_size: codec::NN_BLOCK_SIZE,
        threads: 0,
    };
    assert_eq!(codec.decompress(&golden, &opts, &|_| {})?, want);
    let mut out = Vec::new();
    // The firmware's buffer: one window, which held a revision 2 block.
    let mut buf = vec![0u8; arca_embedded::WINDOW];
    stream::decode(&golden, v1.id(), Runtime(&net), &mut buf, |b| {
        out.extend_from_slice(b);
        Ok::<(), Infallible>(())
    })
    .map_err(|e| e.to_string())?;
    assert_eq!(out, want);
    // What this build writes with the same network is a later revision, and smaller.
    let now = codec.compress_nn(&want, &opts, &|_| {})?;
    assert_eq!(
        Stream::parse(&now)?.header().codec_revision,
        arca_embedded::REVISION
    );
    assert!(
        now.len() < golden.len(),
        "{} vs {}",
        now.len(),
        golden.len()
    );
    Ok(())
}

#[test]
fn damaged_streams_are_refused_by_both_decoders() -> Result {
    let (net, id) = load(Engine::Native)?;
    let codec = TextCodec::new(&net, id, model::MODEL_NAME);
    let data = read("xargs.1");
    let opts = Options {
        block_size: 1024,
        threads: 0,
    };
    let good = codec.compress_nn(&data[..1500], &opts, &|_| {})?;
    let (mut refused, mut tried) = (0, 0);
    for i in (0..good.len()).step_by(5) {
        tried += 1;
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        let embedded = firmware_decode(&bad);
        let runtime = codec.decompress(&bad, &opts, &|_| {});
        match (&embedded, &runtime) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, &data[..1500], "byte {i}");
                assert_eq!(b, &data[..1500], "byte {i}");
            }
            (Err(_), Err(_)) => refused += 1,
            _ => panic!(
                "byte {i}: the decoders disagree: {embedded:?} vs {:?}",
                runtime.err()
            ),
        }
    }
    assert!(
        refused > tried * 3 / 4,
        "only {refused} of {tried} damaged streams refused"
    );
    // A stream for another model is refused before anything is written.
    let other = TextCodec::new(&net, id ^ 1, "other").compress_nn(&data, &opts, &|_| {})?;
    assert!(matches!(
        firmware_decode(&other),
        Err(DecodeError::Model { .. })
    ));
    Ok(())
}

#[test]
fn the_no_alloc_reader_agrees_with_the_container_parser() -> Result {
    let (net, id) = load(Engine::Native)?;
    let codec = TextCodec::new(&net, id, model::MODEL_NAME);
    let data = read("grammar.lsp");
    let opts = Options {
        block_size: 1000,
        threads: 0,
    };
    let streams = vec![
        codec.compress(&data, &opts, &|_| {})?,
        codec.compress_nn(&data, &opts, &|_| {})?,
        codec.compress_eiw(&data[..600], &EiwOptions::new(32), &|_| {})?,
        TextCodec::without_network().compress(&[7u8; 300], &opts, &|_| {})?,
        codec.compress_nn(b"", &opts, &|_| {})?,
    ];
    for bytes in &streams {
        let theirs = Stream::parse(bytes)?;
        let mine = EmbeddedStream::parse(bytes)?;
        let (h, g) = (theirs.header(), mine.header());
        assert_eq!(h.model_id, g.model_id);
        assert_eq!(h.model_name, g.model_name());
        assert_eq!(h.block_size, g.block_size);
        assert_eq!(h.original_len, g.original_len);
        assert_eq!(h.codec.name(), codec_name(g.codec));
        let blocks: Vec<_> = mine.blocks().collect();
        assert_eq!(blocks.len(), theirs.entries().len());
        for (i, (b, e)) in blocks.iter().zip(theirs.entries()).enumerate() {
            assert_eq!(b.original_len, e.original_len);
            assert_eq!(b.crc32, e.crc32);
            assert_eq!(b.stored, e.mode == BlockMode::Stored);
            assert_eq!(Some(b.data), theirs.block_data(i));
        }
        // Both refuse the same damage.
        for cut in [0, 3, 79, 80, bytes.len().saturating_sub(1)] {
            let a = Stream::parse(&bytes[..cut.min(bytes.len())]).is_ok();
            let b = EmbeddedStream::parse(&bytes[..cut.min(bytes.len())]).is_ok();
            assert_eq!(a, b, "truncated to {cut}");
        }
        for i in 0..bytes.len().min(200) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert_eq!(
                Stream::parse(&bad).is_ok(),
                EmbeddedStream::parse(&bad).is_ok(),
                "byte {i} flipped"
            );
        }
    }
    Ok(())
}

fn codec_name(id: u8) -> &'static str {
    match id {
        stream::CODEC_STORED => "stored",
        1 => "text-cm",
        stream::CODEC_TEXT_EIW => "text-eiw",
        stream::CODEC_IMAGE_PC => "image-pc",
        stream::CODEC_TEXT_NN => "text-nn",
        _ => "?",
    }
}

#[test]
fn the_emitted_model_fits_the_board() {
    // Issue #5's budget: weights at most 256 KB of flash; the scratch and the decoder's state
    // are small (the RAM figures under qemu are in targets/cortex-m/README.md).
    let source = std::fs::read_to_string(workspace_root().join("targets/cortex-m/src/model.rs"))
        .unwrap_or_default();
    let statics: usize = source
        .lines()
        .filter_map(|l| l.strip_prefix("static "))
        .filter_map(|l| {
            let (ty, n) = l.split_once(": [")?.1.split_once("; ")?;
            let n: usize = n.split(']').next()?.parse().ok()?;
            Some(
                n * match ty {
                    "i8" | "u8" => 1,
                    "i16" => 2,
                    _ => 4,
                },
            )
        })
        .sum();
    assert!(
        statics > 200_000 && statics <= 256 * 1024,
        "{statics} bytes of statics"
    );
    let _ = model::Model::new().context_len();
    // Issue #22's RAM budget is 64 KiB with the output buffer: that buffer (one window, the
    // history of revision 3) and the context models take 16 + 40.2 KiB of it; the scratch, the
    // range decoder and the stack frames about 6 more (63,784-63,840 bytes high-water under
    // qemu, targets/cortex-m/README.md; targets/cortex-m/test.sh fails above 63 KiB).
    let ram = arca_embedded::WINDOW + arca_embedded::Adaptive::SIZE;
    assert!(
        arca_embedded::Adaptive::SIZE <= 41 << 10 && ram <= 57 << 10,
        "{} bytes of context models, {ram} with the output buffer",
        arca_embedded::Adaptive::SIZE
    );
}
