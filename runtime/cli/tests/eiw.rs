//! `arca compress --eiw`, `arca decompress --range`, `arca tokenize` and `arca detokenize`
//! through the binary: round trips, token file layout, and one-line errors on bad input.

use std::fs;
use std::path::{Path, PathBuf};

mod common;

use arca_runtime::eiw::TokenFile;
use common::{arca, fails_with, ok};
use tempfile::TempDir;

fn text() -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/canterbury/asyoulik.txt");
    let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data[..5000].to_vec()
}

fn setup() -> (TempDir, PathBuf, Vec<u8>) {
    let dir = TempDir::new().expect("temp dir");
    let data = text();
    let path = dir.path().join("in.txt");
    fs::write(&path, &data).expect("write input");
    (dir, path, data)
}

#[test]
fn eiw_streams_round_trip_and_read_ranges() {
    let (dir, _, data) = setup();
    let d = dir.path();
    for w in ["16", "64"] {
        let stream = format!("in{w}.arca");
        ok(&arca(d, &["compress", "--eiw", w, "in.txt", "-o", &stream]));
        let out = arca(d, &["decompress", &stream, "-c"]);
        ok(&out);
        assert!(out.stdout == data, "W={w}: round trip differs");
        for (a, b) in [
            (0, 1),
            (100, 2600),
            (4095, 4097),
            (4999, 5000),
            (5000, 5000),
        ] {
            let out = arca(
                d,
                &["decompress", &stream, "-c", "--range", &format!("{a}..{b}")],
            );
            ok(&out);
            assert!(out.stdout == data[a..b], "W={w} range {a}..{b}");
        }
        let out = arca(d, &["decompress", &stream, "-c", "--range", "4500.."]);
        ok(&out);
        assert!(out.stdout == data[4500..]);
        let out = arca(d, &["list", &stream]);
        ok(&out);
        fails_with(
            &arca(d, &["decompress", &stream, "-c", "--range", "10..5001"]),
            "not within the 5000 bytes",
        );
    }
}

#[test]
fn tokens_are_u16_windows_that_detokenize() {
    let (dir, _, data) = setup();
    let d = dir.path();
    ok(&arca(
        d,
        &["tokenize", "--eiw", "16", "in.txt", "-o", "in.tok"],
    ));
    ok(&arca(
        d,
        &["compress", "--eiw", "16", "in.txt", "-o", "in.arca"],
    ));
    let file = fs::read(d.join("in.tok")).expect("tokens");
    // The header (one document), then the u16 ids.
    assert!(file.starts_with(b"ATOK"));
    let tok = &file[TokenFile::data_offset(1)..];
    assert_eq!(tok.len() % 2, 0);
    // The .arca stream holds the same windows (most significant byte first) after its header
    // and table: the token file's array is their u16 little-endian ids.
    let stream = fs::read(d.join("in.arca")).expect("stream");
    let swapped: Vec<u8> = tok.chunks_exact(2).flat_map(|c| [c[1], c[0]]).collect();
    assert!(stream.ends_with(&swapped));
    // --raw writes that array alone.
    ok(&arca(
        d,
        &[
            "tokenize", "--raw", "--eiw", "16", "in.txt", "-o", "raw.tok",
        ],
    ));
    assert!(fs::read(d.join("raw.tok")).expect("raw") == tok);
    // W comes from the header; given, it is checked.
    ok(&arca(d, &["detokenize", "in.tok", "-o", "back.txt"]));
    assert!(fs::read(d.join("back.txt")).expect("text") == data);
    ok(&arca(
        d,
        &["detokenize", "--eiw", "16", "in.tok", "-o", "back2.txt"],
    ));
    // Any run of whole tokens detokenizes on its own: windows are independent.
    let half = &tok[..tok.len() / 4 * 2];
    fs::write(d.join("half.tok"), half).expect("write");
    let out = arca(
        d,
        &["detokenize", "--raw", "--eiw", "16", "half.tok", "-o", "-"],
    );
    ok(&out);
    assert!(data.starts_with(&out.stdout) && !out.stdout.is_empty());
}

#[test]
fn token_files_say_what_made_them() {
    let (dir, _, data) = setup();
    let d = dir.path();
    fs::write(d.join("b.txt"), b"A second, short document.\n").expect("write");
    ok(&arca(
        d,
        &[
            "tokenize", "--eiw", "16", "in.txt", "b.txt", "-o", "two.tok",
        ],
    ));
    let file = TokenFile::parse(&fs::read(d.join("two.tok")).expect("read")).expect("parse");
    assert_eq!(file.doc_ends.len(), 2);
    let out = arca(d, &["detokenize", "two.tok", "-o", "-"]);
    ok(&out);
    assert!(out.stdout == [data.clone(), b"A second, short document.\n".to_vec()].concat());
    // Another W, another model, a raw file without --raw, --raw with two inputs: refused.
    fails_with(
        &arca(d, &["detokenize", "--eiw", "32", "two.tok", "-o", "x.txt"]),
        "16-bit windows, not 32-bit",
    );
    fails_with(
        &arca(
            d,
            &[
                "detokenize",
                "-m",
                "text-embedded",
                "two.tok",
                "-o",
                "x.txt",
            ],
        ),
        "was made with model id",
    );
    fs::write(d.join("bare.tok"), [1u8, 2, 3, 4]).expect("write");
    fails_with(
        &arca(d, &["detokenize", "bare.tok", "-o", "x.txt"]),
        "no ATOK header",
    );
    fails_with(
        &arca(d, &["detokenize", "--raw", "bare.tok", "-o", "x.txt"]),
        "--eiw",
    );
    fails_with(
        &arca(
            d,
            &[
                "tokenize", "--raw", "--eiw", "16", "in.txt", "b.txt", "-o", "x.tok",
            ],
        ),
        "one input",
    );
    fails_with(&arca(d, &["tokenize", "in.txt", "-o", "x.tok"]), "--eiw W");
    // A flipped header byte is caught by its checksum.
    let mut bytes = fs::read(d.join("two.tok")).expect("read");
    bytes[30] ^= 1;
    fs::write(d.join("flip.tok"), &bytes).expect("write");
    fails_with(
        &arca(d, &["detokenize", "flip.tok", "-o", "x.txt"]),
        "checksum",
    );
    assert!(!d.join("x.txt").exists() && !d.join("x.tok").exists());
}

#[test]
fn bad_window_input_is_a_clear_error() {
    let (dir, _, _) = setup();
    let d = dir.path();
    fails_with(
        &arca(d, &["compress", "--eiw", "12", "in.txt"]),
        "multiple of 8",
    );
    fails_with(
        &arca(d, &["tokenize", "--eiw", "8", "in.txt", "-o", "x.tok"]),
        "multiple of 8",
    );
    fails_with(
        &arca(
            d,
            &[
                "compress", "--eiw", "16", "-m", "none", "in.txt", "-o", "x.arca",
            ],
        ),
        "network",
    );
    assert!(!d.join("x.arca").exists());
    fs::write(d.join("odd.tok"), [1u8, 2, 3]).expect("write");
    fails_with(
        &arca(
            d,
            &[
                "detokenize",
                "--raw",
                "--eiw",
                "16",
                "odd.tok",
                "-o",
                "odd.txt",
            ],
        ),
        "whole number",
    );
    // Tokens that are not windows this model writes (which codes are depends on the model:
    // for the shipped text-small, all-ones windows decode, alternating bits do not).
    fs::write(d.join("junk.tok"), [0xaau8; 64]).expect("write");
    fails_with(
        &arca(
            d,
            &[
                "detokenize",
                "--raw",
                "--eiw",
                "16",
                "junk.tok",
                "-o",
                "junk.txt",
            ],
        ),
        "corrupted",
    );
    assert!(!d.join("odd.txt").exists() && !d.join("junk.txt").exists());
    // An image model is no network: named as such, and nothing written.
    let circuit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/pc/trained/hclt-mnist-M32.arcm");
    let circuit = circuit.to_str().expect("utf-8 path");
    fails_with(
        &arca(
            d,
            &[
                "tokenize", "--eiw", "16", "-m", circuit, "in.txt", "-o", "c.tok",
            ],
        ),
        "image model",
    );
    assert!(!d.join("c.tok").exists());
    fails_with(
        &arca(d, &["decompress", "--range", "9..3", "x.arca"]),
        "ends before",
    );
    ok(&arca(
        d,
        &["tokenize", "--eiw", "32", "in.txt", "-o", "in.tok"],
    ));
    fails_with(
        &arca(d, &["tokenize", "--eiw", "32", "in.txt", "-o", "in.tok"]),
        "exists",
    );
    // A damaged window in a stream is reported, and nothing is written.
    ok(&arca(
        d,
        &["compress", "--eiw", "32", "in.txt", "-o", "in.arca"],
    ));
    let mut s = fs::read(d.join("in.arca")).expect("stream");
    let n = s.len();
    s[n - 40] ^= 0x08;
    fs::write(d.join("bad.arca"), &s).expect("write");
    fails_with(
        &arca(d, &["decompress", "bad.arca", "-o", "bad.txt"]),
        "corrupt",
    );
    assert!(!d.join("bad.txt").exists());
}
