//! `arca list -v` prints where each block's bytes are: the test reads every block at the offset
//! printed for it, for text streams and for image streams (whose layout blob sits between the
//! header and the block table), and checks the bytes there against the container's own view and,
//! for stored blocks, against the original.

use std::fs;
use std::path::{Path, PathBuf};

mod common;

use arca_runtime::container::{BlockMode, Stream};
use common::{arca, fails_with, ok};
use tempfile::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One row of the block table: index, offset, compressed length, original length, mode.
struct Row {
    index: usize,
    offset: usize,
    compressed: usize,
    original: usize,
    mode: String,
}

/// The block rows of `arca list -v FILE`.
fn rows(dir: &Path, file: &str) -> Vec<Row> {
    let out = arca(dir, &["list", "-v", file]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.first() == Some(&"Block") && cells.get(1) == Some(&"Offset") {
            in_table = true;
            continue;
        }
        if !in_table || cells.len() != 8 {
            continue;
        }
        let num = |i: usize| -> usize {
            cells[i]
                .parse()
                .unwrap_or_else(|_| panic!("cell {i} of '{line}'"))
        };
        rows.push(Row {
            index: num(0),
            offset: num(1),
            compressed: num(2),
            original: num(3),
            mode: cells[6].to_owned(),
        });
    }
    assert!(!rows.is_empty(), "no block table in:\n{text}");
    rows
}

/// Reads every block at its printed offset: the bytes there are the container's block, the
/// blocks follow each other to the end of the file, and a stored block is the original's bytes
/// (`original` is what the blocks hold: the file for text, the pixels for images).
fn check(dir: &Path, file: &str, original: &[u8], want_stored: bool) {
    let bytes = fs::read(dir.join(file)).expect("read stream");
    let stream = Stream::parse(&bytes).expect("parse");
    let rows = rows(dir, file);
    assert_eq!(rows.len(), stream.entries().len(), "{file}");
    let block_size = stream.header().block_size as usize;
    let mut stored = 0;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.index, i);
        let at = &bytes[row.offset..row.offset + row.compressed];
        assert_eq!(Some(at), stream.block_data(i), "{file}: block {i}");
        if let Some(next) = rows.get(i + 1) {
            assert_eq!(
                row.offset + row.compressed,
                next.offset,
                "{file}: block {i}"
            );
        } else {
            assert_eq!(
                row.offset + row.compressed,
                bytes.len(),
                "{file}: last block"
            );
        }
        let plain = &original[i * block_size..i * block_size + row.original];
        match stream.entries()[i].mode {
            BlockMode::Stored => {
                assert_eq!(row.mode, "stored");
                assert_eq!(at, plain, "{file}: stored block {i}");
                stored += 1;
            }
            BlockMode::Coded => assert_eq!(row.mode, "coded"),
        }
    }
    assert_eq!(stored > 0, want_stored, "{file}: stored blocks");
}

#[test]
fn text_blocks_are_where_list_says() {
    let dir = TempDir::new().expect("temp dir");
    let d = dir.path();
    let text = fs::read(repo().join("tests/data/canterbury/fields.c")).expect("fields.c");
    fs::write(d.join("f.c"), &text).expect("write");
    ok(&arca(d, &["compress", "-B", "2K", "f.c"]));
    check(d, "f.c.arca", &text, false);
    // Bytes no model predicts are stored: their offsets must hold the original.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(d.join("noise"), &noise).expect("write");
    ok(&arca(d, &["compress", "-m", "none", "-B", "1K", "noise"]));
    check(d, "noise.arca", &noise, true);
    // A stream cut short has no block table to list: one line naming the file, status 1.
    let whole = fs::read(d.join("noise.arca")).expect("read");
    fs::write(d.join("cut.arca"), &whole[..whole.len() - 10]).expect("write");
    fails_with(&arca(d, &["list", "-v", "cut.arca"]), "cut.arca");
}

#[test]
fn image_blocks_are_where_list_says() {
    let dir = TempDir::new().expect("temp dir");
    let d = dir.path();
    let circuit = repo().join("models/pc/trained/hclt-mnist-M32.arcm");
    let m = circuit.to_str().expect("utf-8 path");
    let name = "t10k-first100-idx3-ubyte";
    let file = fs::read(repo().join("tests/data/mnist").join(name)).expect("mnist");
    fs::write(d.join(name), &file).expect("write");
    // 100 images of 784 pixels, 20 to a block: five coded blocks after a layout blob.
    ok(&arca(d, &["compress", "-m", m, "-B", "15680", name]));
    let pixels = arca_runtime::image::parse(&file).expect("idx").pixels;
    check(d, &format!("{name}.arca"), &pixels, false);
    // Noise images do not compress: stored blocks, one image each.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut pgm = b"P5\n28 28\n255\n".to_vec();
    for _ in 0..3 {
        for _ in 0..784 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pgm.push((x >> 32) as u8);
        }
        pgm.extend_from_slice(b"P5\n28 28\n255\n");
    }
    pgm.truncate(pgm.len() - b"P5\n28 28\n255\n".len());
    fs::write(d.join("noise.pgm"), &pgm).expect("write");
    ok(&arca(d, &["compress", "-m", m, "-B", "784", "noise.pgm"]));
    let pixels = arca_runtime::image::parse(&pgm).expect("pgm").pixels;
    check(d, "noise.pgm.arca", &pixels, true);
}
