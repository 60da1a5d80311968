//! Should never panic on invalid input: every input the fuzzers in `tests/fuzz/` ever crashed on
//! (`tests/fuzz/regressions/<target>/`), and their seeds (`tests/fuzz/seeds/<target>/`), fed to
//! the very code paths of the fuzz targets (`tests/fuzz/src/lib.rs`, included below). Errors
//! are fine; a panic fails the test and names the file. See `tests/fuzz/README.md`.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use arca_tests::{corpus_files, workspace_root};

/// The files of `tests/fuzz/{regressions,seeds}/<target>/`, regressions first.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = workspace_root().join("tests/fuzz");
    let mut files = corpus_files(&fuzz.join("regressions").join(target));
    files.extend(corpus_files(&fuzz.join("seeds").join(target)));
    files.retain(|f| f.file_name().is_some_and(|n| n != ".gitkeep"));
    files
}

/// Feeds every input of `target` to `run`; fails naming each input that panicked.
fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for {target}");
    let panicked: Vec<String> = files
        .iter()
        .filter(|f| {
            let data = std::fs::read(f).unwrap_or_default();
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|f| rel(f))
        .collect();
    assert!(
        panicked.is_empty(),
        "{target} panicked on {} of {} inputs: {panicked:?}",
        panicked.len(),
        files.len()
    );
}

fn rel(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn decode_stream_never_panics_on_saved_inputs() {
    replay("decode_stream", harness::decode_stream);
}

#[test]
fn open_bundle_never_panics_on_saved_inputs() {
    replay("open_bundle", harness::open_bundle);
}

/// The seeds are worth fuzzing from: the network-free streams decode completely and the bundle
/// opens, so mutations start deep in the decoders rather than at a checksum.
#[test]
fn seeds_reach_the_decoders() {
    use arca_runtime::codec::{Options, TextCodec};
    let seeds = workspace_root().join("tests/fuzz/seeds");
    let streams = corpus_files(&seeds.join("decode_stream"));
    let decoded = streams
        .iter()
        .filter(|f| {
            let data = std::fs::read(f).unwrap_or_default();
            TextCodec::without_network()
                .decompress(&data, &Options::default(), &|_| {})
                .is_ok()
        })
        .count();
    assert!(
        decoded >= 3,
        "{decoded} of {} stream seeds decode",
        streams.len()
    );
    for bundle in corpus_files(&seeds.join("open_bundle")) {
        let data = std::fs::read(&bundle).unwrap_or_default();
        let opened = arca_runtime::bundle::Bundle::from_bytes(data);
        assert!(opened.is_ok(), "{}: {opened:?}", rel(&bundle));
    }
}

/// Inputs made by hand that every target must survive: empty, a lone magic, a header's worth of
/// zeros (the fix-ups then make a valid empty header of it) and of 0xff.
#[test]
fn degenerate_inputs() {
    for data in [&b""[..], b"ARCA", b"ARCM", &[0u8; 80], &[0xff; 200]] {
        harness::decode_stream(data);
        harness::open_bundle(data);
    }
}
