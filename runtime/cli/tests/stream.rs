//! Streaming through the CLI: inputs longer than a frame are coded frame by frame from a pipe,
//! concatenated streams decode to the concatenation (as gzip and zstd members do), and damage in
//! a later frame is an error that leaves no output file.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use arca_runtime::container;
use common::{arca, fails_with, ok};

/// Runs `arca ARGS` in `dir` with `stdin` piped in.
fn piped(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(common::ARCA)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn arca");
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    // Written from another thread: arca writes frames while it reads, so the pipes must drain.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

fn canterbury(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/canterbury")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn concatenated_streams_decode_to_the_concatenation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (canterbury("grammar.lsp"), canterbury("xargs.1"));
    fs::write(dir.path().join("a"), &a).expect("write");
    fs::write(dir.path().join("b"), &b).expect("write");
    ok(&arca(dir.path(), &["compress", "-q", "a", "b"]));
    let both = [
        fs::read(dir.path().join("a.arca")).expect("a.arca"),
        fs::read(dir.path().join("b.arca")).expect("b.arca"),
    ]
    .concat();
    fs::write(dir.path().join("ab.arca"), &both).expect("write");
    let joined = [a.clone(), b.clone()].concat();

    let out = arca(dir.path(), &["decompress", "-c", "ab.arca"]);
    ok(&out);
    assert_eq!(out.stdout, joined);
    let out = piped(dir.path(), &["decompress"], &both);
    ok(&out);
    assert_eq!(out.stdout, joined);
    ok(&arca(dir.path(), &["test", "ab.arca"]));

    // A range across the boundary between the two streams.
    let range = format!("{}..{}", a.len() - 10, a.len() + 10);
    let out = arca(
        dir.path(),
        &["decompress", "-c", "--range", &range, "ab.arca"],
    );
    ok(&out);
    assert_eq!(out.stdout, &joined[a.len() - 10..a.len() + 10]);

    // `list` adds the two up and shows each stream with -v.
    let out = arca(dir.path(), &["list", "-v", "ab.arca"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("frames:       2"), "{text}");
    assert!(text.contains(&joined.len().to_string()), "{text}");
}

#[test]
fn damage_after_the_first_stream_is_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a"), canterbury("grammar.lsp")).expect("write");
    ok(&arca(dir.path(), &["compress", "-q", "a"]));
    let one = fs::read(dir.path().join("a.arca")).expect("a.arca");

    let mut junk = one.clone();
    junk.extend_from_slice(b"not arca");
    fs::write(dir.path().join("junk.arca"), &junk).expect("write");
    fails_with(
        &arca(dir.path(), &["decompress", "junk.arca"]),
        "8 unexpected trailing bytes",
    );
    assert!(!dir.path().join("junk").exists());

    let cut = [one.clone(), one[..one.len() - 5].to_vec()].concat();
    fs::write(dir.path().join("cut.arca"), &cut).expect("write");
    fails_with(&arca(dir.path(), &["decompress", "cut.arca"]), "truncated");
    assert!(!dir.path().join("cut").exists());
    fails_with(&arca(dir.path(), &["test", "cut.arca"]), "truncated");
}

#[test]
fn a_pipe_longer_than_a_frame_is_coded_frame_by_frame() {
    // A little over one frame (8 MiB) of text, through context models alone (`-m none`,
    // fast): two frames, from stdin to stdout and back.
    let line =
        b"2026-12-04 21:40:07 gateway[311]: link up, 1000 Mb/s full duplex, flow control rx/tx\n";
    let mut text = Vec::new();
    let mut i = 0u32;
    while text.len() < (8 << 20) + 300_000 {
        text.extend_from_slice(&line[..40 + (i % 40) as usize]);
        text.extend_from_slice(format!(" seq={i}\n").as_bytes());
        i += 1;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let packed = piped(dir.path(), &["compress", "-m", "none"], &text);
    ok(&packed);
    let frames = container::frames(&packed.stdout).expect("frames");
    let lens: Vec<u64> = frames.iter().map(|f| f.header().original_len).collect();
    assert_eq!(lens, [8 << 20, text.len() as u64 - (8 << 20)]);
    let back = piped(dir.path(), &["decompress", "-m", "none"], &packed.stdout);
    ok(&back);
    assert!(back.stdout == text, "round trip differs");
}
