//! Streams cross architectures bit-exactly: what this host compresses, an `arca` built for
//! another architecture (run under qemu-user) decompresses, and the other way round.
//!
//! The foreign binary and how to run it come from the environment, so this test is driven by
//! `targets/cross/test.sh` (which builds the binary and sets them) and skips with a message
//! otherwise:
//!
//! - `ARCA_CROSS_BIN`: absolute path of `arca` built for the foreign target;
//! - `ARCA_CROSS_RUNNER`: the command that runs it, split on spaces (e.g.
//!   `qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu`);
//! - `ARCA_CROSS_FILES` (optional): `all` (default) for every Canterbury and Calgary text file,
//!   or a number N to take only the first N bytes of each (a quick check).
//!
//! For every file, the host compresses it with the library (the default embedded model), the
//! foreign `arca` compresses it too, and the two streams must be *the same bytes*; then the
//! foreign `arca` decompresses the host's stream back to the original. (The host decoding the
//! foreign stream is then the host decoding its own stream, which `corpus.rs` checks for every
//! file.) The committed golden streams also decode on the foreign side.
//!
//! The foreign side codes with the native engine: `targets/cross/test.sh` builds it
//! native-only by default (no tract: minutes instead of most of an hour per target on 2 cores),
//! and tract's f32 kernels would run about 17x slower under qemu anyway (5 KB compressed in
//! 127 s vs 7.3 s of CPU on aarch64). That tract computes the same logits on the target is
//! checked by arca-runtime's unit tests in the tract build (`ARCA_CROSS_TRACT=1`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use arca_runtime::codec::{DEFAULT_BLOCK_SIZE, Options, TextCodec};
use arca_runtime::engine::TextModel;
use arca_runtime::shipped;
use arca_tests::{on_every_core, shared_data, workspace_root};

/// The text files of the Canterbury and Calgary corpora (binary files such as `kennedy.xls`,
/// `ptt5`, `geo`, `obj1` are left out: they exercise nothing the text files don't).
const CANTERBURY_TEXT: [&str; 8] = [
    "alice29.txt",
    "asyoulik.txt",
    "cp.html",
    "fields.c",
    "grammar.lsp",
    "lcet10.txt",
    "plrabn12.txt",
    "xargs.1",
];
const CALGARY_TEXT: [&str; 14] = [
    "bib", "book1", "book2", "news", "paper1", "paper2", "paper3", "paper4", "paper5", "paper6",
    "progc", "progl", "progp", "trans",
];

struct Foreign {
    runner: Vec<String>,
    bin: PathBuf,
}

impl Foreign {
    fn from_env() -> Option<Foreign> {
        let bin = PathBuf::from(std::env::var_os("ARCA_CROSS_BIN")?);
        // cargo runs integration tests in the package folder (tests/), so a path relative to
        // the caller's folder would silently point elsewhere.
        assert!(
            bin.is_file(),
            "ARCA_CROSS_BIN={} is not a file (give an absolute path; this test runs in {})",
            bin.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        );
        let runner = std::env::var("ARCA_CROSS_RUNNER").unwrap_or_default();
        Some(Foreign {
            runner: runner.split_whitespace().map(str::to_owned).collect(),
            bin,
        })
    }

    /// Runs the foreign `arca ARGS` with `stdin`; returns stdout or the error output.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
        let (program, pre): (&Path, &[String]) = match self.runner.split_first() {
            Some((first, rest)) => (Path::new(first), rest),
            None => (&self.bin, &[]),
        };
        let mut cmd = Command::new(program);
        cmd.args(pre);
        if !self.runner.is_empty() {
            cmd.arg(&self.bin);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {program:?}: {e}"))?;
        let mut input = child.stdin.take().ok_or("no stdin")?;
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || input.write_all(&data));
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let _ = writer.join();
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!(
                "foreign arca {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

fn text_files() -> Vec<PathBuf> {
    let canterbury = workspace_root().join("tests/data/canterbury");
    let mut files: Vec<PathBuf> = CANTERBURY_TEXT.iter().map(|f| canterbury.join(f)).collect();
    match shared_data() {
        Some(data) => files.extend(
            CALGARY_TEXT
                .iter()
                .map(|f| data.join("eval/calgary").join(f)),
        ),
        None => println!("shared data folder not found: Canterbury only"),
    }
    files
}

#[test]
fn streams_cross_architectures() {
    let Some(foreign) = Foreign::from_env() else {
        println!("ARCA_CROSS_BIN is not set: skipped (run targets/cross/test.sh)");
        return;
    };
    let limit = match std::env::var("ARCA_CROSS_FILES").as_deref() {
        Ok("all") | Err(_) => usize::MAX,
        Ok(n) => n
            .parse()
            .expect("ARCA_CROSS_FILES is `all` or a byte count"),
    };
    let bundle = shipped::resolve(shipped::default_compressor()).expect("default model");
    let model = TextModel::load(&bundle).expect("load default model");
    let codec = TextCodec::new(&model, bundle.id(), &bundle.manifest().name);

    // Golden streams.
    let golden = workspace_root().join("tests/golden");
    for name in ["grammar.lsp", "fields.c", "xargs.1"] {
        let stream = std::fs::read(golden.join(format!("{name}.arca"))).expect("golden stream");
        let original = std::fs::read(workspace_root().join("tests/data/canterbury").join(name))
            .expect("original");
        let got = foreign
            .run(&["decompress", "-q", "-c"], &stream)
            .unwrap_or_else(|e| panic!("golden {name}: {e}"));
        assert!(
            got == original,
            "golden {name} decodes wrongly on the foreign side"
        );
    }

    let files = text_files();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let results = on_every_core(&files, |path| check_file(&codec, &foreign, path, limit));
    let mut failures = Vec::new();
    let mut total = 0;
    for r in results {
        match r {
            Ok((name, bytes, seconds)) => {
                total += bytes;
                println!(
                    "{name:<14} {bytes:>8} bytes  foreign compress + decompress {seconds:.1} s"
                );
            }
            Err(e) => failures.push(e),
        }
    }
    println!(
        "{} files, {total} bytes, identical streams both ways, {:.0} s on {workers} threads",
        files.len() - failures.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The image circuit across architectures: the same stream from both sides for the committed
/// MNIST images, and the foreign side decodes the host's (its integer coder, no tract).
#[test]
fn image_streams_cross_architectures() {
    use arca_runtime::Bundle;
    use arca_runtime::circuit::Circuit;
    use arca_runtime::codec::{ImageCodec, ImageOptions};
    let Some(foreign) = Foreign::from_env() else {
        println!("ARCA_CROSS_BIN is not set: skipped (run targets/cross/test.sh)");
        return;
    };
    let model = workspace_root().join("models/pc/trained/hclt-mnist-M32.arcm");
    let circuit = Circuit::load(&Bundle::open(&model).expect("circuit bundle")).expect("circuit");
    let codec = ImageCodec::new(&circuit);
    let model = model.to_string_lossy().into_owned();
    let dir = workspace_root().join("tests/data/mnist");
    for name in ["t10k-first100-idx3-ubyte", "t10k-1.pgm"] {
        let file = std::fs::read(dir.join(name)).expect("test image");
        let start = Instant::now();
        // The blocks `arca compress` makes by default (-B 1M).
        let opts = ImageOptions::with_block_bytes(DEFAULT_BLOCK_SIZE, circuit.pixels(), 0);
        let host = codec
            .compress(&file, &opts, &|_| {})
            .expect("host compress");
        let theirs = foreign
            .run(&["compress", "-q", "-c", "-m", &model], &file)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(theirs == host, "{name}: the foreign stream differs");
        let back = foreign
            .run(&["decompress", "-q", "-c", "-m", &model], &host)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(back == file, "{name}: decodes wrongly on the foreign side");
        println!(
            "{name}: {} -> {} bytes, identical streams both ways, {:.1} s",
            file.len(),
            host.len(),
            start.elapsed().as_secs_f64()
        );
    }
}

fn check_file(
    codec: &TextCodec<'_>,
    foreign: &Foreign,
    path: &Path,
    limit: usize,
) -> Result<(String, usize, f64), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    data.truncate(limit);
    let opts = Options::default();
    let host = codec
        .compress(&data, &opts, &|_| {})
        .map_err(|e| format!("{name}: host compress: {e}"))?;
    let start = Instant::now();
    let theirs = foreign
        .run(&["compress", "-q", "-c", "-T", "1"], &data)
        .map_err(|e| format!("{name}: {e}"))?;
    if theirs != host {
        return Err(format!(
            "{name}: the foreign stream differs from the host's ({} vs {} bytes)",
            theirs.len(),
            host.len()
        ));
    }
    let back = foreign
        .run(&["decompress", "-q", "-c", "-T", "1"], &host)
        .map_err(|e| format!("{name}: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    if back != data {
        return Err(format!(
            "{name}: the foreign side decoded the host's stream wrongly"
        ));
    }
    Ok((name, data.len(), seconds))
}
