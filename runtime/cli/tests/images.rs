//! `arca compress -m <circuit>` and `arca decompress` on image files through the binary: round
//! trips, and one-line errors with exit status 1 and no output file on bad input.

use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::{arca, fails_with, ok};
use tempfile::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn circuit() -> String {
    repo()
        .join("models/pc/trained/hclt-mnist-M32.arcm")
        .to_string_lossy()
        .into_owned()
}

/// A temp dir holding copies of the committed test images.
fn setup() -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    for entry in fs::read_dir(repo().join("tests/data/mnist")).expect("tests/data/mnist") {
        let path = entry.expect("entry").path();
        fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

#[test]
fn idx_pgm_and_png_round_trip_byte_for_byte() {
    let dir = setup();
    let d = dir.path();
    let m = circuit();
    for name in ["t10k-first100-idx3-ubyte", "t10k-1.pgm", "t10k-0.png"] {
        ok(&arca(d, &["compress", "-m", &m, name]));
        let stream = format!("{name}.arca");
        ok(&arca(d, &["decompress", "-m", &m, &stream, "-o", "back"]));
        assert!(
            fs::read(d.join("back")).ok() == fs::read(d.join(name)).ok(),
            "{name}"
        );
        fs::remove_file(d.join("back")).expect("rm");
        // `arca test` decodes and checks every block.
        ok(&arca(d, &["test", "-m", &m, &stream]));
    }
    // Without -m the stream names its model, which is not embedded: a clear error.
    let out = arca(d, &["decompress", "t10k-1.pgm.arca", "-o", "x"]);
    fails_with(&out, "pass -m PATH");
    assert!(!d.join("x").exists());
}

#[test]
fn bad_images_and_wrong_models_are_clear_errors() {
    let dir = setup();
    let d = dir.path();
    let m = circuit();
    let cases = [
        ("rgb-28x28.png", "only 8-bit grayscale"),
        ("gray-10x10.pgm", "images are 10x10"),
        ("short.idx", "truncated idx file"),
    ];
    let full = fs::read(d.join("t10k-first100-idx3-ubyte")).expect("idx");
    fs::write(d.join("short.idx"), &full[..5000]).expect("write");
    for (name, needle) in cases {
        let out = arca(d, &["compress", "-m", &m, name, "-o", "out.arca"]);
        fails_with(&out, needle);
        assert!(!d.join("out.arca").exists(), "{name}: output left behind");
    }
    fails_with(
        &arca(d, &["compress", "-m", &m, "--eiw", "32", "t10k-1.pgm"]),
        "--eiw is for text models",
    );
    // A text stream given the circuit, and an image stream given the text model.
    ok(&arca(d, &["compress", "t10k-1.pgm", "-o", "text.arca"]));
    fails_with(
        &arca(d, &["decompress", "-m", &m, "text.arca", "-o", "a"]),
        "not an image stream",
    );
    ok(&arca(
        d,
        &["compress", "-m", &m, "t10k-1.pgm", "-o", "image.arca"],
    ));
    fails_with(
        &arca(
            d,
            &["decompress", "-m", "text-small", "image.arca", "-o", "b"],
        ),
        "stream was compressed with model 'hclt-mnist-M32'",
    );
    // A damaged image stream: an error, nothing written.
    let mut bytes = fs::read(d.join("image.arca")).expect("stream");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(d.join("bad.arca"), &bytes).expect("write");
    let out = arca(d, &["decompress", "-m", &m, "bad.arca", "-o", "c"]);
    fails_with(&out, "corrupted");
    assert!(!d.join("a").exists() && !d.join("b").exists() && !d.join("c").exists());
}
