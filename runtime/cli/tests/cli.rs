//! End-to-end tests of the `arca` binary: round trips through files and pipes, overwrite and
//! removal rules, and clean one-line errors (no panic, nothing left behind) on bad input.
//!
//! They run the real embedded model, on small inputs.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use arca_runtime::container::Stream;
use tempfile::TempDir;

const ARCA: &str = env!("CARGO_BIN_EXE_arca");

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the Canterbury corpus committed under `tests/data/canterbury`.
fn canterbury(name: &str) -> Vec<u8> {
    let path = root().join("tests/data/canterbury").join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// Inputs every round trip covers.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("one", b"x".to_vec()),
        (
            "invalid-utf8",
            b"caf\xe9 \xff\xfe\x80 na\xefve\n\xc3\x28 end".repeat(20),
        ),
        ("grammar.lsp", canterbury("grammar.lsp")),
        ("fields.c", canterbury("fields.c")),
    ]
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(ARCA);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn arca");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // A failing command may exit before reading its input: ignore a broken pipe.
        let _ = pipe.write_all(bytes);
    }
    child.wait_with_output().expect("wait for arca")
}

fn arca(dir: &Path, args: &[&str]) -> Output {
    run_in(dir, args, None)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "arca failed ({:?}): {}",
        out.status,
        stderr(out)
    );
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
}

/// Exit status 1, exactly one line on stderr starting `arca: `, no panic.
#[track_caller]
fn assert_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line: {err:?}");
    assert!(
        err.starts_with("arca: "),
        "expected `arca: ` prefix: {err:?}"
    );
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
}

/// The sorted names in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Compresses `data` through a pipe and returns the stream.
fn compress_pipe(data: &[u8], extra: &[&str]) -> Vec<u8> {
    let dir = tempdir();
    let mut args = vec!["compress"];
    args.extend_from_slice(extra);
    let out = run_in(dir.path(), &args, Some(data));
    assert_ok(&out);
    assert!(listing(dir.path()).is_empty(), "a pipe wrote files");
    out.stdout
}

#[test]
fn round_trip_through_files() {
    for (name, data) in samples() {
        let dir = tempdir();
        let d = dir.path();
        fs::write(d.join(name), &data).expect("write input");
        let out = arca(d, &["compress", name]);
        assert_ok(&out);
        assert!(d.join(name).exists(), "{name}: input was not kept");
        let packed = d.join(format!("{name}.arca"));
        assert!(packed.exists(), "{name}: no .arca written");
        // The summary line names the file and both sizes.
        let summary = stderr(&out);
        assert!(
            summary.starts_with(&format!("{name}: {} -> ", data.len())),
            "{summary}"
        );

        fs::rename(d.join(name), d.join("original")).expect("rename");
        let out = arca(d, &["decompress", &format!("{name}.arca")]);
        assert_ok(&out);
        assert_eq!(fs::read(d.join(name)).expect("read output"), data, "{name}");
        assert_eq!(
            listing(d),
            vec![name.to_owned(), format!("{name}.arca"), "original".into()]
        );
    }
}

#[test]
fn round_trip_through_pipes() {
    for (name, data) in samples() {
        let packed = compress_pipe(&data, &[]);
        assert!(packed.starts_with(b"ARCA"), "{name}");
        let dir = tempdir();
        let out = run_in(dir.path(), &["decompress"], Some(&packed));
        assert_ok(&out);
        assert_eq!(out.stdout, data, "{name}");
        // `-` names stdin explicitly; -c forces stdout.
        let out = run_in(dir.path(), &["decompress", "-c", "-"], Some(&packed));
        assert_ok(&out);
        assert_eq!(out.stdout, data, "{name}");
        assert!(listing(dir.path()).is_empty());
    }
}

#[test]
fn compresses_text() {
    let data = canterbury("fields.c");
    let packed = compress_pipe(&data, &[]);
    // Far better than stored; the model and the context mixer both help on C source.
    assert!(
        packed.len() * 3 < data.len(),
        "{} -> {}",
        data.len(),
        packed.len()
    );
}

#[test]
fn random_binary_is_stored_with_little_overhead() {
    let data = random_bytes(100_000, 0x5eed);
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("random.bin"), &data).expect("write");
    assert_ok(&arca(d, &["compress", "random.bin"]));
    let packed = fs::read(d.join("random.bin.arca")).expect("read");
    // One stored block: the header (25 fixed bytes, the model's name, four varints, a CRC),
    // one table entry of 7 bytes and the table's CRC: under 80 bytes.
    assert!(
        packed.len() < data.len() + 80,
        "{} bytes of random data became {}",
        data.len(),
        packed.len()
    );
    let out = arca(d, &["decompress", "-c", "random.bin.arca"]);
    assert_ok(&out);
    assert_eq!(out.stdout, data);
}

#[test]
fn small_blocks_threads_and_list() {
    let data = canterbury("fields.c");
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("f.c"), &data).expect("write");
    assert_ok(&arca(d, &["compress", "-B", "2K", "-T", "2", "f.c"]));
    let out = arca(d, &["list", "f.c.arca"]);
    assert_ok(&out);
    let table = stdout(&out);
    let packed_len = fs::metadata(d.join("f.c.arca")).expect("stat").len();
    assert!(table.contains("Compressed"), "{table}");
    assert!(table.contains(&data.len().to_string()), "{table}");
    assert!(table.contains(&packed_len.to_string()), "{table}");
    assert!(table.contains("text-small"), "{table}");
    assert!(table.contains("2 KiB"), "{table}");
    // 11150 bytes in blocks of 2048: 6 blocks, each listed with -v.
    let out = arca(d, &["list", "-v", "f.c.arca"]);
    assert_ok(&out);
    let verbose = stdout(&out);
    assert_eq!(
        verbose.matches("coded").count() + verbose.matches("stored").count(),
        6
    );
    assert!(verbose.contains("blocks:       6"), "{verbose}");

    let out = arca(d, &["decompress", "-T", "1", "-c", "f.c.arca"]);
    assert_ok(&out);
    assert_eq!(out.stdout, data);
}

#[test]
fn test_subcommand_and_zstd_flags() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("g.lsp"), canterbury("grammar.lsp")).expect("write");
    assert_ok(&arca(d, &["-z", "g.lsp"]));
    let out = arca(d, &["test", "g.lsp.arca"]);
    assert_ok(&out);
    assert_eq!(stderr(&out).trim(), "g.lsp.arca: OK");
    let out = arca(d, &["-t", "g.lsp.arca"]);
    assert_ok(&out);
    assert_ok(&arca(d, &["-l", "g.lsp.arca"]));
    assert_ok(&arca(d, &["-d", "-o", "copy", "g.lsp.arca"]));
    assert_eq!(
        fs::read(d.join("copy")).expect("read"),
        canterbury("grammar.lsp")
    );
    assert_ok(&arca(d, &["x", "-c", "g.lsp.arca"]));
    assert_eq!(listing(d), vec!["copy", "g.lsp", "g.lsp.arca"]);
}

#[test]
fn several_files_at_once() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("a"), b"alpha alpha alpha").expect("write");
    fs::write(d.join("b"), b"beta beta").expect("write");
    assert_ok(&arca(d, &["compress", "--rm", "a", "b"]));
    assert_eq!(listing(d), vec!["a.arca", "b.arca"]);
    // One bad input among good ones: the good ones are done, the status is 1.
    let out = arca(d, &["decompress", "-q", "a.arca", "missing.arca", "b.arca"]);
    assert_error(
        &out,
        "arca: cannot read 'missing.arca': No such file or directory",
    );
    assert_eq!(fs::read(d.join("a")).expect("a"), b"alpha alpha alpha");
    assert_eq!(fs::read(d.join("b")).expect("b"), b"beta beta");
    // -c concatenates decompressed outputs, like zcat.
    let out = arca(d, &["decompress", "-c", "a.arca", "b.arca"]);
    assert_ok(&out);
    assert_eq!(out.stdout, b"alpha alpha alphabeta beta");
}

#[test]
fn overwrite_needs_force() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("in.txt"), b"some text, some text").expect("write");
    fs::write(d.join("out.arca"), b"precious").expect("write");
    let out = arca(d, &["compress", "-o", "out.arca", "in.txt"]);
    assert_error(&out, "out.arca already exists; use -f to overwrite");
    assert_eq!(fs::read(d.join("out.arca")).expect("read"), b"precious");
    assert_eq!(listing(d), vec!["in.txt", "out.arca"]);

    assert_ok(&arca(d, &["compress", "-f", "-o", "out.arca", "in.txt"]));
    assert!(
        fs::read(d.join("out.arca"))
            .expect("read")
            .starts_with(b"ARCA")
    );

    // Decompressing onto an existing file is refused the same way.
    let out = arca(d, &["decompress", "-o", "in.txt", "out.arca"]);
    assert_error(&out, "in.txt already exists; use -f to overwrite");
    assert_ok(&arca(d, &["decompress", "-f", "-o", "in.txt", "out.arca"]));
    assert_eq!(
        fs::read(d.join("in.txt")).expect("read"),
        b"some text, some text"
    );
    assert_eq!(listing(d), vec!["in.txt", "out.arca"]);
}

#[test]
fn keep_is_default_and_rm_removes() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("k"), b"keep me").expect("write");
    assert_ok(&arca(d, &["compress", "-k", "k"]));
    assert_eq!(listing(d), vec!["k", "k.arca"]);
    fs::remove_file(d.join("k.arca")).expect("rm");
    assert_ok(&arca(d, &["compress", "--rm", "k"]));
    assert_eq!(listing(d), vec!["k.arca"]);
    assert_ok(&arca(d, &["decompress", "--rm", "k.arca"]));
    assert_eq!(listing(d), vec!["k"]);
    assert_eq!(fs::read(d.join("k")).expect("read"), b"keep me");
}

#[test]
fn no_network_model() {
    let data = canterbury("grammar.lsp");
    let packed = compress_pipe(&data, &["-m", "none"]);
    let dir = tempdir();
    // The stream records model id 0: no -m is needed to decompress it.
    let out = run_in(dir.path(), &["decompress"], Some(&packed));
    assert_ok(&out);
    assert_eq!(out.stdout, data);
}

/// Engines and devices change speed, never bytes; a device that is not there is a clear error.
#[test]
fn engines_and_devices() {
    let data = canterbury("grammar.lsp");
    let reference = compress_pipe(&data, &[]);
    for extra in [
        ["--engine", "tract"],
        ["--engine", "native"],
        ["--device", "cpu"],
        ["--device", "auto"],
    ] {
        assert_eq!(compress_pipe(&data, &extra), reference, "{extra:?}");
    }
    let dir = tempdir();
    let out = run_in(
        dir.path(),
        &["compress", "--device", "cuda", "-o", "x.arca"],
        Some(&data),
    );
    if out.status.success() {
        // A `cuda` build on a GPU host: the portable model gives the CPU's bytes.
        assert_eq!(
            fs::read(dir.path().join("x.arca")).expect("output"),
            reference
        );
    } else {
        assert_error(&out, "device `cuda` is not available");
        assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    }
    // A graph the native engine can't run: an error when asked for, tract under `auto`.
    let tiny = root().join("runtime/core/tests/data/tiny.arcm");
    let tiny = tiny.to_str().expect("utf-8 path");
    let out = run_in(
        dir.path(),
        &["compress", "-c", "-m", tiny, "--engine", "native"],
        Some(&data),
    );
    assert_error(&out, "the native engine cannot run it");
    assert_ok(&run_in(
        dir.path(),
        &["compress", "-c", "-m", tiny],
        Some(&data),
    ));
}

/// A valid stream of grammar.lsp, for the corruption tests.
fn valid_stream() -> Vec<u8> {
    compress_pipe(&canterbury("grammar.lsp"), &[])
}

/// Decompresses `stream` (written as `bad.arca`) and checks the failure is clean.
#[track_caller]
fn assert_rejected(stream: &[u8], needle: &str, extra: &[&str]) {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("bad.arca"), stream).expect("write");
    let mut args = vec!["decompress"];
    args.extend_from_slice(extra);
    args.push("bad.arca");
    let out = arca(d, &args);
    assert_error(&out, needle);
    assert!(out.stdout.is_empty());
    assert_eq!(listing(d), vec!["bad.arca"], "output left behind");
    let mut args = vec!["test"];
    args.extend_from_slice(extra);
    args.push("bad.arca");
    let out = arca(d, &args);
    assert_error(&out, needle);
}

#[test]
fn truncated_streams_are_rejected() {
    let stream = valid_stream();
    let n = stream.len();
    for cut in [0, 3, 10, 79, 80, 95, 99, n / 2, n - 1] {
        let needle = if cut < 4 {
            "not an arca stream"
        } else {
            "truncated"
        };
        assert_rejected(&stream[..cut], needle, &[]);
    }
}

#[test]
fn flipped_bytes_are_rejected() {
    let stream = valid_stream();
    let flip = |at: usize| {
        let mut s = stream.clone();
        s[at] ^= 0x20;
        s
    };
    // Header (in the model name), block table, first and middle byte of the one block (the
    // last bytes of a range-coded block may not matter to the decoded symbols).
    let data_start = Stream::parse(&stream)
        .expect("a stream")
        .block_offset(0)
        .expect("a block");
    assert!(stream.len() > data_start + 100);
    assert_rejected(&flip(30), "header is corrupted", &[]);
    // The last byte of the entry's CRC, before the table's own.
    assert_rejected(&flip(data_start - 5), "table is corrupted", &[]);
    assert_rejected(&flip(data_start), "block 0 is corrupted", &[]);
    assert_rejected(
        &flip((data_start + stream.len()) / 2),
        "block 0 is corrupted",
        &[],
    );
}

/// `stream` with its model id replaced (the header's checksum made to match).
fn with_model_id(stream: &[u8], id: u128) -> Vec<u8> {
    let s = Stream::parse(stream).expect("a stream");
    let mut header = s.header().clone();
    header.model_id = id;
    s.rewrite(&header)
}

#[test]
fn stream_of_another_model_is_rejected() {
    let other = with_model_id(&valid_stream(), 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    assert_rejected(
        &other,
        "stream needs model 'text-small' (id 0123456789abcdef",
        &[],
    );
    assert_rejected(
        &other,
        "stream was compressed with model",
        &["-m", "text-small"],
    );
}

#[test]
fn missing_and_foreign_inputs_are_rejected() {
    let dir = tempdir();
    let d = dir.path();
    let out = arca(d, &["compress", "x"]);
    assert_error(&out, "cannot read 'x': No such file or directory");
    let out = arca(d, &["decompress", "x.arca"]);
    assert_error(&out, "cannot read 'x.arca': No such file or directory");
    assert!(listing(d).is_empty());

    fs::write(d.join("notes.arca"), b"just some text, not a stream").expect("write");
    assert_rejected(b"just some text, not a stream", "not an arca stream", &[]);
    // A name without .arca needs -o or -c.
    fs::write(d.join("notes.txt"), b"text").expect("write");
    let out = arca(d, &["decompress", "notes.txt"]);
    assert_error(&out, "use -o OUT or -c");
    let out = arca(d, &["list", "notes.txt"]);
    assert_error(&out, "not an arca stream");
    assert_eq!(listing(d), vec!["notes.arca", "notes.txt"]);
}

#[test]
fn bad_bundles_are_rejected() {
    let bundle = fs::read(root().join("models/text-small.arcm")).expect("read shipped bundle");
    let mut flipped = bundle.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.arcm",
            bundle[..bundle.len() / 3].to_vec(),
            "truncated",
        ),
        ("flipped.arcm", flipped, "corrupted"),
        (
            "text.arcm",
            b"not a bundle at all".to_vec(),
            "not an arca bundle",
        ),
        ("empty.arcm", Vec::new(), "bundle"),
    ];
    for (name, bytes, needle) in cases {
        let dir = tempdir();
        let d = dir.path();
        fs::write(d.join(name), &bytes).expect("write bundle");
        fs::write(d.join("in.txt"), b"hello").expect("write input");
        let out = arca(d, &["compress", "-m", name, "in.txt"]);
        assert_error(&out, needle);
        let mut expected = vec![name.to_owned(), "in.txt".to_owned()];
        expected.sort();
        assert_eq!(listing(d), expected);
    }
    let dir = tempdir();
    let out = arca(dir.path(), &["compress", "-m", "no-such-model", "-c"]);
    assert_error(&out, "unknown model");
    let out = arca(dir.path(), &["compress", "-m", "missing.arcm", "-c"]);
    assert_error(&out, "No such file or directory");
}

#[test]
fn models_and_inspect() {
    let dir = tempdir();
    let out = arca(dir.path(), &["inspect", "text-small"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "name: text-small"), "{text}");
    assert!(text.lines().any(|l| l == "kind: compressor"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("id: ")), "{text}");
    // A bundle path works too.
    let path = root().join("models/text-small.arcm");
    let out = arca(dir.path(), &["inspect", path.to_str().expect("utf-8 path")]);
    assert_ok(&out);
    assert_eq!(stdout(&out), text);

    let out = arca(dir.path(), &["models"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("text-small"), "{text}");
    assert!(text.contains("compressor"), "{text}");

    let out = arca(dir.path(), &["inspect", "nope"]);
    assert_error(&out, "unknown model");
}

#[test]
fn help_and_usage() {
    let dir = tempdir();
    let out = arca(dir.path(), &["--help"]);
    assert_ok(&out);
    let help = stdout(&out);
    for word in ["compress", "decompress", "model", "embedded", "Examples"] {
        assert!(help.contains(word), "--help lacks {word:?}");
    }
    let out = arca(dir.path(), &["compress", "--help"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("--block-size"));
    assert_ok(&arca(dir.path(), &["--version"]));
    // Usage errors exit 1 too.
    let out = arca(dir.path(), &["compress", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(1));
    let out = arca(dir.path(), &["compress", "-B", "0", "-c"]);
    assert_eq!(out.status.code(), Some(1));
    let out = arca(dir.path(), &["compress", "--rm", "-c", "x"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn refuses_to_write_compressed_data_to_a_terminal() {
    // `script` runs a command with its stdout on a pseudo-terminal (util-linux).
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: no `script` command to make a terminal");
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("in.txt"), b"to a terminal?").expect("write");
    for cmd in [
        format!("{ARCA} compress -c in.txt"),
        format!("{ARCA} compress -f -c in.txt"),
    ] {
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(d)
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("arca: refusing to write compressed data to a terminal"),
            "{text}"
        );
        assert!(
            !text.contains("ARCA"),
            "stream bytes reached the terminal: {text}"
        );
    }
    assert_eq!(listing(d), vec!["in.txt"]);
}

#[test]
fn list_totals_several_streams() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("a"), b"one two three").expect("write");
    fs::write(d.join("b"), b"").expect("write");
    assert_ok(&arca(d, &["compress", "-q", "a", "b"]));
    let out = arca(d, &["list", "a.arca", "b.arca"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().last().is_some_and(|l| l.ends_with("2 files")),
        "{text}"
    );
    // Stream of an empty file: no blocks, ratio not defined.
    assert!(
        text.lines()
            .any(|l| l.contains("b.arca") && l.contains(" - ")),
        "{text}"
    );
}

/// `arca arith` with the embedded models: the answer alone on stdout, `--check`, clear errors,
/// and `--eval` writing its table.
#[test]
fn arith_answers_checks_and_refuses() {
    let dir = TempDir::new().expect("temp dir");
    let out = arca(dir.path(), &["arith", "12345+6789"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "19134\n");
    let out = arca(dir.path(), &["arith", "--check", "12*34", "0+0"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "408 (correct)\n0 (correct)\n"
    );
    for (args, want) in [
        (vec!["arith", "12-3"], "cannot read `12-3`"),
        (
            vec!["arith", "99999999999+1"],
            "operands have 11 digits; this model takes at most 10",
        ),
        (vec!["arith", "-m", "text-small", "1+2"], "not an arith one"),
    ] {
        let out = arca(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let table = dir.path().join("acc.md");
    let path = table.to_str().expect("utf-8 path");
    let eval = [
        "arith",
        "--eval",
        "-q",
        "-m",
        "arith-add-padrev",
        "--problems",
        "10",
        "--digits",
        "3",
        "-o",
        path,
    ];
    // An existing table is refused without -f, before any work, and left as it was.
    fs::write(&table, "keep").expect("write");
    let out = arca(dir.path(), &eval);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&table).expect("read"), "keep");
    let out = arca(dir.path(), &[&eval[..], &["-f"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&table).expect("table written");
    assert!(
        text.contains("| 1 | 0 | n/a |") && text.contains("| 3 | 10 | 100.0 |"),
        "{text}"
    );
}

/// A sentence model (`runtime/core/tests/data/arith-ctx-tiny.arcm`, barely trained: what it
/// answers does not matter) takes sentences as well as expressions; `--check` sums the
/// sentence's two numbers; what it cannot read is refused; `--eval` adds the sentence tables.
#[test]
fn arith_sentence_models() {
    let dir = TempDir::new().expect("temp dir");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/data/arith-ctx-tiny.arcm")
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    let out = arca(
        dir.path(),
        &[
            "arith",
            "--check",
            "-m",
            &model,
            "The sum of 12 and 7 is",
            "12+7",
            "what is 3 plus",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].ends_with("(correct)") || lines[0].ends_with("(wrong: 12+7 = 19)"),
        "{text}"
    );
    assert!(
        lines[1].ends_with("(correct)") || lines[1].ends_with("(wrong: 12+7 = 19)"),
        "{text}"
    );
    assert!(
        lines[2].ends_with("(cannot check: the sentence has 1 number, not 2)"),
        "{text}"
    );
    for (args, want) in [
        (
            vec!["arith", "-m", &model, "12 plus 7 is ü"],
            "is not one of this model's tokens",
        ),
        (
            vec!["arith", "-m", "arith-add-padrev", "the sum of 1 and 2 is"],
            "cannot read `the sum of 1 and 2 is`",
        ),
    ] {
        let out = arca(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let eval = ["arith", "--eval", "-q", "-m", &model, "--problems", "5"];
    let out = arca(dir.path(), &eval);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for title in [
        "### add (a+b)",
        "### add in sentences of held-out templates",
        "### add in sentences of the training templates (held-out pairs)",
    ] {
        assert!(text.contains(title), "{text}");
    }
    assert!(
        text.contains("| 3 | 5 |") && !text.contains("| 4 | 5 |"),
        "{text}"
    );
}

/// `-m text-embedded` writes `text-nn` (network and small context models, 256 KiB blocks) by default; every
/// sample round trips, `list` names the codec, and `--codec` overrides either way.
#[test]
fn text_nn_codec_for_the_embedded_model() {
    for (name, data) in samples() {
        let packed = compress_pipe(&data, &["-m", "text-embedded"]);
        let dir = tempdir();
        fs::write(dir.path().join("s.arca"), &packed).expect("write");
        let out = run_in(dir.path(), &["decompress", "-c"], Some(&packed));
        assert_ok(&out);
        assert_eq!(out.stdout, data, "{name}");
        let out = arca(dir.path(), &["list", "s.arca"]);
        assert_ok(&out);
        assert!(stdout(&out).contains("text-nn"), "{name}: {}", stdout(&out));
    }
    let alice = canterbury("alice29.txt");
    let nn = compress_pipe(&alice[..40_000], &["-m", "text-embedded"]);
    let cm = compress_pipe(&alice[..40_000], &["-m", "text-embedded", "--codec", "cm"]);
    let small_nn = compress_pipe(&alice[..40_000], &["--codec", "nn"]);
    assert_ne!(nn, cm);
    let dir = tempdir();
    for (label, s) in [("cm", &cm), ("small-nn", &small_nn)] {
        let out = run_in(dir.path(), &["decompress", "-c"], Some(s));
        assert_ok(&out);
        assert_eq!(out.stdout, &alice[..40_000], "{label}");
    }
    // 256 KiB blocks by default, -B overrides.
    let header_blocks = |s: &[u8]| Stream::parse(s).expect("a stream").header().block_count;
    assert_eq!(header_blocks(&nn), 1);
    let three = compress_pipe(&alice[..40_000], &["-m", "text-embedded", "-B", "16K"]);
    assert_eq!(header_blocks(&three), 3);
}

#[test]
fn text_nn_refusals() {
    let dir = tempdir();
    fs::write(dir.path().join("a.txt"), b"hello").expect("write");
    let out = arca(
        dir.path(),
        &["compress", "-m", "none", "--codec", "nn", "a.txt"],
    );
    assert_error(&out, "no network");
    let out = arca(
        dir.path(),
        &["compress", "--codec", "nn", "--eiw", "32", "a.txt"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    assert_eq!(listing(dir.path()), ["a.txt"]);
}

/// `-1 .. -9` and `--level N` (issue #22): every level round trips with no option on the
/// decoding side, the default is level 6, levels 1-2 run without a network, and mistakes are
/// errors that say so.
#[test]
fn every_level_round_trips() {
    let data = canterbury("xargs.1");
    let model_id = |s: &[u8]| Stream::parse(s).expect("a stream").header().model_id;
    let dir = tempdir();
    let mut sizes = Vec::new();
    for level in 1..=9 {
        let flag = format!("-{level}");
        let packed = compress_pipe(&data, &[&flag]);
        assert_eq!(
            packed,
            compress_pipe(&data, &["--level", &level.to_string()])
        );
        let out = run_in(dir.path(), &["decompress", "-c"], Some(&packed));
        assert_ok(&out);
        assert_eq!(out.stdout, data, "level {level}");
        // Levels 7-9 may keep a frame coded with another model, or none.
        if level <= 6 {
            assert_eq!(model_id(&packed) == 0, level <= 2, "level {level}");
        }
        sizes.push(packed.len());
    }
    assert_eq!(compress_pipe(&data, &["-6"]), compress_pipe(&data, &[]));
    // The fast set is larger than every model, with or without a network.
    assert!(sizes[0] > sizes[1] && sizes[4] > sizes[5], "{sizes:?}");
    fs::write(dir.path().join("a.txt"), &data).expect("write");
    for (args, needle) in [
        (&["compress", "-2", "-3", "a.txt"][..], "several levels"),
        (
            &["compress", "-3", "--codec", "nn", "a.txt"][..],
            "levels are for",
        ),
        (
            &["compress", "--level", "3", "--eiw", "32", "a.txt"][..],
            "levels are for",
        ),
    ] {
        assert_error(&arca(dir.path(), args), needle);
    }
    let circuit = root().join("models/pc/trained/hclt-mnist-M32.arcm");
    let circuit = circuit.to_str().expect("utf-8 path");
    assert_error(
        &arca(dir.path(), &["compress", "-m", circuit, "-3", "a.txt"]),
        "levels are for text models",
    );
    // Nothing was written by the refusals.
    assert!(!dir.path().join("a.txt.arca").exists());
    let out = arca(dir.path(), &["compress", "--level", "10", "a.txt"]);
    assert!(!out.status.success() && stderr(&out).contains("10"));
    // The same level twice is one level.
    assert_eq!(
        compress_pipe(&data, &["-3", "--level", "3"]),
        compress_pipe(&data, &["-3"])
    );
}
