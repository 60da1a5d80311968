//! Golden streams, and streams that do not depend on the CPU's kernel tier.
//!
//! The shipped default model is integer-exact (DESIGN.md, "The determinism contract", rule 3),
//! so the bytes `arca` writes must not depend on which SIMD kernels tract picks, and every
//! machine must decode every other machine's streams. tract chooses its kernels from the CPU
//! features it probes; the environment variable `TRACT_CPU_ISA` (read once per process, a comma
//! list of `+feature`/`-feature` edits, see tract-linalg's `isa.rs`) edits that probed set, so
//! one x86-64 machine can play three kinds of CPU. The tiers tested here:
//!
//! | tier | `TRACT_CPU_ISA` | features tract sees (on an AVX2+FMA host) | matmul dispatch tiers |
//! | --- | --- | --- | --- |
//! | host | unset | `x86_64,avx,avx2,fma,f16c` | `fma > avx2 > avx > generic` |
//! | AVX | `-fma,-avx2` | `x86_64,avx,f16c` | `avx > generic` |
//! | SSE | `-fma,-f16c,-avx2,-avx` | `x86_64` (SSE2 baseline) | `generic` (portable Rust kernels) |
//!
//! How a removed feature changes the kernels: tract-linalg builds its matmul dispatch
//! (`MmmDispatch::native`) and its element-wise routine tables from `isa::native()`, the probed
//! set after `TRACT_CPU_ISA`; a kernel whose `isa(...)` requirement is not in the set leaves the
//! pool, and a dispatch tier (`MmmTier::applies`) that needs a removed feature is not asked. The
//! shipped model's matrix products are f32 MatMuls on small integers (exact in any summation
//! order), so each tier sums them with other f32 kernels and must still give the same integers.
//! tract logs both facts at debug level
//! (`ISA: ...` and `mmm tiers for ...: ...`); [`tract_sees_each_tier`] runs `arca` with
//! `RUST_LOG=debug` under each tier and checks those lines, so a tract that stopped reading the
//! variable would fail here rather than let the other tests pass vacuously. The tiers also run
//! at different speeds (on the development machine, coding 4 KB took 0.9 s native, 1.0 s AVX and
//! 1.3 s SSE).
//!
//! arca's own native integer engine (the default `--engine auto` picks it for this model) does
//! not use tract's kernels at all; it joins the tiers as a fourth way to run the model, so the
//! tests below also prove that the engines agree with each other.
//!
//! The tests:
//!
//! - [`golden_streams_decode_on_every_tier`]: each committed stream in `tests/golden/` (made by
//!   `tests/golden/regen.sh` with the embedded default model, one of them in several blocks)
//!   decodes to its original file, byte for byte, under every tier.
//! - [`streams_are_identical_across_tiers`]: a text compressed under each tier gives the same
//!   bytes, and the stream made under each tier decodes under each other tier.
//! - [`golden_streams_are_current`]: the golden streams were made with the model this binary
//!   embeds; when the model is re-exported they are stale and must be regenerated with
//!   `tests/golden/regen.sh` (the other tests check this first, so they fail with that message
//!   rather than a model mismatch).
//!
//! `TRACT_CPU_ISA` tokens belong to one architecture (tract panics on a foreign one), so the
//! tier tests run on x86-64 only; elsewhere the golden streams decode with tract on the host's
//! features and with the native engine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use arca_runtime::container::{self, Stream};
use arca_runtime::shipped;

const ARCA: &str = env!("CARGO_BIN_EXE_arca");

/// The golden streams: `tests/golden/NAME.arca` is `tests/data/canterbury/NAME` compressed.
const GOLDEN: [&str; 3] = ["grammar.lsp", "fields.c", "xargs.1"];

/// A way to run the model: a name for messages, the `--engine`, and the `TRACT_CPU_ISA` value
/// (`None`: unset).
#[derive(Debug, Clone, Copy)]
struct Tier {
    name: &'static str,
    engine: &'static str,
    isa: Option<&'static str>,
}

/// tract with every feature the host has.
const HOST: Tier = Tier {
    name: "host",
    engine: "tract",
    isa: None,
};

/// arca's native integer engine (the default), which ignores `TRACT_CPU_ISA`.
const NATIVE_ENGINE: Tier = Tier {
    name: "native engine",
    engine: "native",
    isa: None,
};

#[cfg(target_arch = "x86_64")]
const TIERS: [Tier; 4] = [
    HOST,
    Tier {
        name: "avx",
        engine: "tract",
        isa: Some("-fma,-avx2"),
    },
    Tier {
        name: "sse",
        engine: "tract",
        isa: Some("-fma,-f16c,-avx2,-avx"),
    },
    NATIVE_ENGINE,
];

#[cfg(not(target_arch = "x86_64"))]
const TIERS: [Tier; 2] = [HOST, NATIVE_ENGINE];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs `arca ARGS` under `tier`, feeding `stdin`, and returns its output (whatever the status).
fn run(tier: Tier, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(ARCA);
    cmd.args(["--engine", tier.engine])
        .args(args)
        .env_remove("TRACT_CPU_ISA")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(isa) = tier.isa {
        cmd.env("TRACT_CPU_ISA", isa);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {ARCA}: {e}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().expect("wait for arca");
    // A failed write (arca exited early) shows up in the status checked by the caller.
    let _ = writer.join();
    out
}

/// Runs `arca ARGS` under `tier` and returns its stdout; panics with stderr on failure.
fn arca(tier: Tier, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = run(tier, args, stdin, &[]);
    assert!(
        out.status.success(),
        "arca {} under the {} tier (TRACT_CPU_ISA={:?}) failed: {}",
        args.join(" "),
        tier.name,
        tier.isa,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The golden streams and their originals, after checking that they were made with the model
/// this build embeds.
fn golden_streams() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let default = shipped::default_compressor();
    let model = shipped::resolve(default).expect("the default model opens");
    let mut stale = Vec::new();
    let streams: Vec<_> = GOLDEN
        .iter()
        .map(|&name| {
            let stream = read(&root().join(format!("tests/golden/{name}.arca")));
            let original = read(&root().join(format!("tests/data/canterbury/{name}")));
            let parsed = Stream::parse(&stream)
                .unwrap_or_else(|e| panic!("tests/golden/{name}.arca does not parse: {e}"));
            let header = parsed.header();
            if header.model_id != model.id() || header.model_name != default {
                stale.push(format!(
                    "{name}.arca was made with {} {:032x}",
                    header.model_name, header.model_id
                ));
            }
            (name, stream, original)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "golden streams are stale: run tests/golden/regen.sh (the embedded model is {default} \
         {}; {})",
        model.id_hex(),
        stale.join(", ")
    );
    streams
}

#[test]
fn golden_streams_are_current() {
    let streams = golden_streams();
    let blocks: Vec<u32> = streams
        .iter()
        .map(|(name, stream, original)| {
            let parsed = Stream::parse(stream).expect("parsed above");
            assert_eq!(
                parsed.header().original_len,
                original.len() as u64,
                "{name}"
            );
            parsed.header().block_count
        })
        .collect();
    assert!(
        blocks.iter().any(|&n| n > 1),
        "one golden stream must have several blocks: {blocks:?}"
    );
}

#[test]
fn golden_streams_decode_on_every_tier() {
    for (name, stream, original) in golden_streams() {
        for tier in TIERS {
            let decoded = arca(tier, &["decompress", "-q", "-c"], &stream);
            assert!(
                decoded == original,
                "tests/golden/{name}.arca decoded under the {} tier differs from the original \
                 ({} bytes, expected {})",
                tier.name,
                decoded.len(),
                original.len()
            );
        }
    }
}

/// Streams of earlier `text-cm` revisions, written with the first text-small (books only,
/// shipped on as `text-small-v1`), decode on every tier: `fields.c.text-cm-r1.arca` is revision
/// 1 (6 blocks of 2 KiB, no profile bytes; `regen.sh` at commit 6548376),
/// `fields.c.text-cm-r2.arca` revision 2 (a profile byte per block; `arca compress` at commit
/// 4216fb3).
#[test]
fn earlier_revisions_still_decode_on_every_tier() {
    let original = read(&root().join("tests/data/canterbury/fields.c"));
    for (revision, name) in [(1, "fields.c.text-cm-r1"), (2, "fields.c.text-cm-r2")] {
        let stream = read(&root().join(format!("tests/golden/{name}.arca")));
        let header = Stream::parse(&stream).expect("parses").header().clone();
        assert_eq!(header.codec_revision, revision, "{name}");
        assert_eq!(
            header.model_name, "text-small",
            "{name}: written with the first text-small"
        );
        for tier in TIERS {
            let decoded = arca(tier, &["decompress", "-q", "-c"], &stream);
            assert!(
                decoded == original,
                "tests/golden/{name}.arca decoded under the {} tier differs from the original",
                tier.name
            );
        }
    }
}

/// Container format 2 (2026-12-05) changed how the header and table are written, not what they
/// say nor the blocks: compressing each golden stream's original now gives the same header
/// fields, table and block bytes, in the current format. (The golden streams were written in
/// format 1; after a `regen.sh` they are in format 2, and this still holds.)
#[test]
fn the_current_format_holds_the_same_blocks() {
    for (name, golden, original) in golden_streams() {
        let mut args = vec!["compress", "-q", "-c"];
        if name == "fields.c" {
            args.extend(["-B", "2K"]);
        }
        let fresh = arca(NATIVE_ENGINE, &args, &original);
        let (old, new) = (
            Stream::parse(&golden).expect("parses"),
            Stream::parse(&fresh).expect("parses"),
        );
        assert_eq!(new.version(), container::VERSION, "{name}");
        assert_eq!(old.header(), new.header(), "{name}");
        assert_eq!(old.entries(), new.entries(), "{name}");
        for i in 0..old.entries().len() {
            assert_eq!(old.block_data(i), new.block_data(i), "{name}: block {i}");
        }
        if old.version() == 1 {
            // The fields that shrank: the name, the lengths, and the table's entries.
            assert!(fresh.len() < golden.len() - 40, "{name}");
        }
    }
}

#[test]
fn streams_are_identical_across_tiers() {
    // A text none of the golden streams holds; several blocks so blocks are checked too.
    let mut text = read(&root().join("tests/data/canterbury/alice29.txt"));
    text.truncate(8 * 1024);
    let streams: Vec<(Tier, Vec<u8>)> = TIERS
        .iter()
        .map(|&tier| {
            (
                tier,
                arca(tier, &["compress", "-q", "-c", "-B", "4K"], &text),
            )
        })
        .collect();
    let (_, first) = &streams[0];
    assert!(first.len() < text.len() / 2, "{} bytes", first.len());
    for (tier, stream) in &streams[1..] {
        assert!(
            stream == first,
            "compressing under the {} tier gave other bytes than under the {} tier \
             ({} vs {} bytes)",
            tier.name,
            streams[0].0.name,
            stream.len(),
            first.len()
        );
    }
    for (a, stream) in &streams {
        for b in TIERS.iter().filter(|b| b.name != a.name) {
            let decoded = arca(*b, &["decompress", "-q", "-c"], stream);
            assert!(
                decoded == text,
                "the stream made under the {} tier does not decode under the {} tier",
                a.name,
                b.name
            );
        }
    }
}

/// tract really sees the edited feature set under each tier, and asks the dispatch tiers
/// expected for it (see the table in the module documentation).
#[cfg(target_arch = "x86_64")]
#[test]
fn tract_sees_each_tier() {
    for tier in TIERS.into_iter().filter(|t| t.engine == "tract") {
        let out = run(
            tier,
            &["compress", "-c", "-T", "1"],
            b"tier check",
            &[("RUST_LOG", "debug")],
        );
        assert!(out.status.success(), "{}", tier.name);
        let log = String::from_utf8_lossy(&out.stderr);
        let line = |prefix: &str| {
            log.lines()
                .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.trim().to_owned()))
                .unwrap_or_else(|| panic!("no '{prefix}' line from tract at debug level: {log}"))
        };
        let isa = line("ISA: ");
        let features: Vec<&str> = isa.split(',').collect();
        let tiers = line(&format!("mmm tiers for {isa}: "));
        let tiers: Vec<&str> = tiers.split(" > ").collect();
        assert_eq!(tiers.last(), Some(&"generic"), "{}: {tiers:?}", tier.name);
        let removed: Vec<&str> = tier
            .isa
            .unwrap_or_default()
            .split(',')
            .filter_map(|t| t.strip_prefix('-'))
            .collect();
        for feature in &removed {
            assert!(
                !features.contains(feature),
                "{}: tract still sees {feature} in {isa}",
                tier.name
            );
        }
        match tier.name {
            "avx" => assert!(
                !tiers.contains(&"avx2") && !tiers.contains(&"fma"),
                "avx: {tiers:?}"
            ),
            "sse" => assert_eq!(tiers, ["generic"], "sse"),
            _ => {}
        }
    }
}
