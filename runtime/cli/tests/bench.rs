//! End-to-end tests of `arca bench`: the report's rows and round trips, the SVG plot, the
//! overwrite rule, and clean errors (exit 1, nothing written) on bad arguments.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

const ARCA: &str = env!("CARGO_BIN_EXE_arca");

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary folder holding `sample.txt`: the first 4 KB of alice29.txt.
fn sample_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = root().join("tests/data/canterbury/alice29.txt");
    let text = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    fs::write(dir.path().join("sample.txt"), &text[..4096]).expect("write sample");
    dir
}

fn arca(dir: &Path, args: &[&str]) -> Output {
    Command::new(ARCA)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run arca")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn has_gzip() -> bool {
    Command::new("gzip")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The cells of the markdown table row whose first cells are `first`.
fn row<'a>(doc: &'a str, first: &[&str]) -> Vec<&'a str> {
    doc.lines()
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.starts_with(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{doc}"))
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
#[cfg_attr(not(feature = "plot"), ignore = "--svg needs the `plot` feature")]
fn report_and_plot() {
    let dir = sample_dir();
    let tools = if has_gzip() { "gzip" } else { "none" };
    let out = arca(
        dir.path(),
        &[
            "bench",
            "--eiw",
            "32",
            "--tools",
            tools,
            "-o",
            "report.md",
            "--svg",
            "plot.svg",
            "sample.txt",
        ],
    );
    assert!(out.status.success(), "arca bench failed: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    let doc = fs::read_to_string(dir.path().join("report.md")).expect("report");
    assert!(doc.contains("- Command: `arca bench --eiw 32"), "{doc}");
    assert!(doc.contains("- Machine: "), "{doc}");

    let mut methods = vec!["arca", "arca eiw W=32"];
    if tools == "gzip" {
        methods.push("gzip -9");
    }
    for method in &methods {
        // file | method | original | compressed | bits/byte | KB/s | KB/s | round trip
        let cells = row(&doc, &["sample.txt", method]);
        assert_eq!(cells.len(), 8, "{cells:?}");
        assert_eq!(cells[2], "4096");
        let compressed: u64 = cells[3].parse().expect("compressed bytes");
        assert!(compressed > 0 && compressed < 4096, "{cells:?}");
        let bpb: f64 = cells[4].parse().expect("bits per byte");
        assert!(
            (bpb - 8.0 * compressed as f64 / 4096.0).abs() < 1e-3,
            "{cells:?}"
        );
        assert_eq!(cells[7], "ok", "{cells:?}");
        // The summary row over all files: here the same numbers.
        let total = row(&doc, &[method, "4096"]);
        assert_eq!(total[2], cells[3]);
        assert_eq!(total[6], "ok");
    }
    // arca beats gzip on English text.
    if tools == "gzip" {
        let size = |m: &str| -> u64 { row(&doc, &["sample.txt", m])[3].parse().expect("size") };
        assert!(size("arca") < size("gzip -9"));
    }
    assert!(!doc.contains("brotli"), "only the asked tools run: {doc}");

    let svg = fs::read_to_string(dir.path().join("plot.svg")).expect("plot");
    let head = svg.trim_start();
    assert!(
        head.starts_with("<svg") || head.starts_with("<?xml"),
        "{head:.80}"
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("arca eiw W=32"));

    // Both exist now: another run is refused without -f and leaves them alone.
    let again = arca(
        dir.path(),
        &[
            "bench",
            "--eiw",
            "none",
            "--tools",
            "none",
            "-o",
            "report.md",
            "sample.txt",
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("report.md")).expect("report"),
        doc
    );
}

#[test]
fn report_to_stdout() {
    let dir = sample_dir();
    let out = arca(
        dir.path(),
        &[
            "bench",
            "-q",
            "--eiw",
            "none",
            "--tools",
            "none",
            "sample.txt",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = String::from_utf8_lossy(&out.stdout);
    assert_eq!(row(&doc, &["sample.txt", "arca"])[7], "ok");
    assert!(
        stderr(&out).is_empty(),
        "-q prints nothing: {}",
        stderr(&out)
    );
    assert_eq!(listing(dir.path()), ["sample.txt"]);
}

#[test]
fn bad_arguments_fail_and_write_nothing() {
    let dir = sample_dir();
    let cases: &[&[&str]] = &[
        &["bench", "-o", "r.md", "--svg", "p.svg", "missing.txt"],
        &["bench", "-o", "r.md", "--tools", "gzip,lzma", "sample.txt"],
        &["bench", "-o", "r.md", "--eiw", "16,20", "sample.txt"],
        &["bench", "-o", "r.md", "--eiw", "8", "sample.txt"],
        &["bench", "-o", "r.md", "--runs", "0", "sample.txt"],
        &["bench", "-o", "r.md", "-m", "no-such-model", "sample.txt"],
        &[
            "bench",
            "-o",
            "r.md",
            "-m",
            "none",
            "--eiw",
            "16",
            "sample.txt",
        ],
        &["bench", "-o", "r.md"],
    ];
    for args in cases {
        let out = arca(dir.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(listing(dir.path()), ["sample.txt"], "{args:?} wrote files");
    }
    let out = arca(dir.path(), &["bench", "-o", "r.md", "missing.txt"]);
    let err = stderr(&out);
    assert!(
        err.starts_with("arca: ") && err.contains("cannot read 'missing.txt'"),
        "{err}"
    );
    let out = arca(dir.path(), &["bench", "--tools", "lzma", "sample.txt"]);
    assert!(
        stderr(&out).contains("unknown tool 'lzma'"),
        "{}",
        stderr(&out)
    );
}
