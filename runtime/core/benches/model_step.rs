//! One model step of text-small: `TextModel::logits` on a batch of real contexts, through tract
//! and through the native integer engine, for the peer comparison with onnxruntime
//! (`tools/peers/`, issue #3).
//!
//! Contexts come from `tests/data/canterbury/alice29.txt`: for each of 256 consecutive positions
//! starting at the middle of the file (`len / 2`), the 32 bytes before it, PAD (256) where that
//! runs before the start of the file. Batch `b` uses the first `b` positions.
//! `tools/peers/ort_step.py` builds the same contexts for onnxruntime.
//!
//! ```text
//! cargo bench -p arca-runtime --bench model_step
//! ```
//!
//! Criterion ids are `model_step/{tract,native}/{1,16,64,256}`; each iteration is one call on one
//! thread (tract's default plan, the native engine's row loop). With `ARCA_PEERS_DUMP=DIR` the
//! bench also writes the 256 contexts (`contexts.u16`) and tract's logits for them
//! (`tract_logits.i32`), little-endian, for `ort_step.py --check` to compare against (cargo runs
//! benches in `runtime/core`, so give an absolute DIR).

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arca_runtime::{Bundle, Engine, LoadOptions, TextModel};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const BATCHES: [usize; 4] = [1, 16, 64, 256];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rows` contexts of `n` values for consecutive positions from the middle of `text`.
fn contexts(text: &[u8], n: usize, pad: u16, rows: usize) -> Vec<u16> {
    let start = text.len() / 2;
    let mut out = Vec::with_capacity(rows * n);
    for pos in start..start + rows {
        for i in 0..n {
            // Byte at pos - n + i, PAD before the start of the text.
            out.push(match (pos + i).checked_sub(n) {
                Some(at) => u16::from(text[at]),
                None => pad,
            });
        }
    }
    out
}

fn load(bundle: &Bundle, engine: Engine) -> TextModel {
    let options = LoadOptions {
        engine,
        ..LoadOptions::default()
    };
    TextModel::load_with(bundle, options).unwrap()
}

fn dump(dir: &Path, contexts: &[u16], logits: &[i32]) {
    std::fs::create_dir_all(dir).unwrap();
    let ctx: Vec<u8> = contexts.iter().flat_map(|v| v.to_le_bytes()).collect();
    let log: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("contexts.u16"), ctx).unwrap();
    std::fs::write(dir.join("tract_logits.i32"), log).unwrap();
}

fn model_step(c: &mut Criterion) {
    let root = repo();
    let bundle = Bundle::open(root.join("models/text-small.arcm")).unwrap();
    let text = std::fs::read(root.join("tests/data/canterbury/alice29.txt")).unwrap();
    let tract = load(&bundle, Engine::Tract);
    let native = load(&bundle, Engine::Native);
    assert_eq!(
        (tract.engine(), native.engine()),
        (Engine::Tract, Engine::Native)
    );
    let n = tract.context_len();
    let max = BATCHES[BATCHES.len() - 1];
    let all = contexts(&text, n, tract.pad_id(), max);

    // Both engines must agree bit for bit before their speed means anything.
    let (mut want, mut got) = (Vec::new(), Vec::new());
    tract.logits(&all, max, &mut want).unwrap();
    native.logits(&all, max, &mut got).unwrap();
    assert_eq!(want, got, "tract and native logits differ");
    if let Some(dir) = std::env::var_os("ARCA_PEERS_DUMP") {
        dump(Path::new(&dir), &all, &want);
    }

    let mut group = c.benchmark_group("model_step");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for batch in BATCHES {
        let ctx = &all[..batch * n];
        group.throughput(Throughput::Elements(batch as u64));
        for (name, model) in [("tract", &tract), ("native", &native)] {
            let mut out = Vec::with_capacity(batch * 256);
            group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
                b.iter(|| {
                    model.logits(black_box(ctx), batch, &mut out).unwrap();
                    black_box(&out);
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, model_step);
criterion_main!(benches);
