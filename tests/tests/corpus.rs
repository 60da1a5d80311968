//! Round trips of real corpora through the text codec with the default embedded model. Every
//! file must come back exactly; bits per byte are printed per file (run with `--nocapture`).
//!
//! - `small_corpus_files_round_trip` (default): every file of at most 64 KiB of the committed
//!   Canterbury corpus and, when the shared data folder exists, of Calgary and enwik.
//! - `all_corpus_files_round_trip` (`--ignored`, run by `.ci/run`): every file of those corpora,
//!   about 6 MB; the network codes about 20 KB per second per core, so this takes about
//!   5 minutes on 2 cores: `cargo test -p arca-tests --test corpus -- --ignored --nocapture`.
//!
//! `ARCA_DATA_DIR` overrides the shared data folder (default: `../shared/data` beside the
//! workspace). Files are coded in parallel, one per core, each with the default options.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arca_runtime::codec::{Options, TextCodec};
use arca_runtime::engine::TextModel;
use arca_runtime::shipped;
use arca_tests::{bits_per_byte, corpus_files, on_every_core, shared_data, workspace_root};

/// Files of the committed Canterbury corpus, then of Calgary and enwik if the data is there.
fn corpus(max_len: u64) -> Vec<PathBuf> {
    let mut files = corpus_files(&workspace_root().join("tests/data/canterbury"));
    if files.is_empty() {
        println!("tests/data/canterbury is missing");
    }
    let data = std::env::var_os("ARCA_DATA_DIR")
        .map(PathBuf::from)
        .or_else(shared_data);
    match data {
        Some(data) => {
            for c in ["eval/calgary", "eval/enwik"] {
                files.extend(corpus_files(&data.join(c)));
            }
        }
        None => println!("shared data folder not found: Canterbury only"),
    }
    files.retain(|f| f.metadata().is_ok_and(|m| m.len() <= max_len));
    files
}

/// One file's result.
struct Row {
    name: String,
    original: usize,
    compressed: usize,
    seconds: (f64, f64),
}

fn round_trip(codec: &TextCodec<'_>, path: &Path) -> Result<Row, String> {
    let name = display(path);
    let data = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let opts = Options::default();
    let start = Instant::now();
    let packed = codec
        .compress(&data, &opts, &|_| {})
        .map_err(|e| format!("{name}: compress: {e}"))?;
    let coded = start.elapsed().as_secs_f64();
    let unpacked = codec
        .decompress(&packed, &opts, &|_| {})
        .map_err(|e| format!("{name}: decompress: {e}"))?;
    if unpacked != data {
        return Err(format!("{name}: round trip changed the data"));
    }
    Ok(Row {
        name,
        original: data.len(),
        compressed: packed.len(),
        seconds: (coded, start.elapsed().as_secs_f64() - coded),
    })
}

fn display(path: &Path) -> String {
    let part = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    format!("{}/{}", part(path.parent()), part(Some(path)))
}

/// Round-trips `files` (largest first, one per core), prints a table and fails on any error.
fn check(files: &[PathBuf]) {
    assert!(!files.is_empty(), "no corpus files found");
    let bundle = shipped::resolve(shipped::default_compressor()).expect("default model");
    let model = TextModel::load(&bundle).expect("load default model");
    let codec = TextCodec::new(&model, bundle.id(), &bundle.manifest().name);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let results = on_every_core(files, |path| round_trip(&codec, path));
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(row) => rows.push(row),
            Err(e) => failures.push(e),
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut total_in, mut total_out) = (0, 0);
    for r in &rows {
        println!(
            "{:<26} {:>9} -> {:>9} bytes  {:.3} bits/byte  (compress {:.1} s, decompress {:.1} s)",
            r.name,
            r.original,
            r.compressed,
            bits_per_byte(r.compressed, r.original),
            r.seconds.0,
            r.seconds.1
        );
        total_in += r.original;
        total_out += r.compressed;
    }
    println!(
        "{} files: {total_in} -> {total_out} bytes, {:.3} bits/byte, {:.0} s on {workers} threads",
        rows.len(),
        bits_per_byte(total_out, total_in),
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn small_corpus_files_round_trip() {
    check(&corpus(64 << 10));
}

#[test]
#[ignore = "tens of minutes on 2 cores: run with --ignored"]
fn all_corpus_files_round_trip() {
    check(&corpus(u64::MAX));
}
