//! The shipped image circuit (`models/pc/trained/hclt-mnist-M32.arcm`, issue #6): the native
//! coder against the exporter's golden conditionals and against tract's likelihoods.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use arca_runtime::Bundle;
use arca_runtime::circuit::{Circuit, Likelihood};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bundle() -> Bundle {
    Bundle::open(repo().join("models/pc/trained/hclt-mnist-M32.arcm")).unwrap()
}

/// The golden images: (pixels, -log2 p(x) in bits, per-pixel log2 conditionals in dfs order).
fn golden() -> Vec<(Vec<u8>, f64, Vec<f64>)> {
    let text = std::fs::read_to_string(repo().join("models/pc/trained/hclt-mnist-M32.golden.json"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| {
            let pixels = im["pixels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as u8)
                .collect();
            let cond = im["log2_conditional"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            (pixels, im["total_bits"].as_f64().unwrap(), cond)
        })
        .collect()
}

#[test]
fn native_code_lengths_match_the_golden_conditionals() {
    let c = Circuit::load(&bundle()).unwrap();
    assert_eq!((c.image_size(), c.states(), c.root()), ((28, 28), 32, 633));
    for (pixels, bits, _) in golden() {
        let coded = c.code_lengths(&pixels).unwrap()[0];
        println!("golden {bits:.3} bits, coder {coded:.3}");
        assert!(
            (coded - bits).abs() < 0.05 + 1e-4 * bits,
            "{coded} vs {bits}"
        );
        let data = c.encode(&pixels).unwrap();
        assert_eq!(c.decode(&data, 1).unwrap(), pixels);
    }
}

#[test]
fn tract_likelihoods_and_marginals_match() {
    let b = bundle();
    let t0 = Instant::now();
    let lik = Likelihood::load(&b).unwrap();
    println!("tract load {:?}", t0.elapsed());
    let c = Circuit::load(&b).unwrap();
    let order: Vec<usize> = c.order().collect();
    for (pixels, bits, cond) in golden() {
        let rows: Vec<u16> = pixels.iter().map(|&p| u16::from(p)).collect();
        let lp = lik.log_prob(&rows).unwrap()[0];
        let tract_bits = -f64::from(lp) / std::f64::consts::LN_2;
        println!("golden {bits:.3} tract {tract_bits:.3}");
        assert!(
            (tract_bits - bits).abs() < 1e-3 * bits,
            "{tract_bits} vs {bits}"
        );
        // Marginals: the first k pixels in coding order observed, the rest missing.
        let mut batch = Vec::new();
        for k in [0, 1, 100, 500] {
            let mut row = vec![Likelihood::MISSING; 784];
            for &v in &order[..k] {
                row[v] = u16::from(pixels[v]);
            }
            batch.extend(row);
        }
        let lp = lik.log_prob(&batch).unwrap();
        assert!(lp[0].abs() < 1e-3, "all missing: {}", lp[0]);
        for (i, k) in [1usize, 100, 500].into_iter().enumerate() {
            let want: f64 = cond[..k].iter().sum();
            let got = f64::from(lp[i + 1]) / std::f64::consts::LN_2;
            assert!(
                (got - want).abs() < 1e-2 + 1e-4 * want.abs(),
                "k={k}: {got} vs {want}"
            );
        }
    }
}

fn shared_mnist() -> Option<Vec<u8>> {
    let path = repo().join("../shared/data/mnist/t10k-images-idx3-ubyte.gz");
    match std::fs::read(&path) {
        Ok(data) => Some(data),
        Err(e) => {
            println!("skipped: {} ({e}); .ci/run has it", path.display());
            None
        }
    }
}

#[test]
fn committed_images_round_trip_byte_for_byte() {
    use arca_runtime::codec::{ImageCodec, ImageOptions};
    let c = Circuit::load(&bundle()).unwrap();
    let codec = ImageCodec::new(&c);
    let dir = repo().join("tests/data/mnist");
    for (name, per_block) in [
        ("t10k-first100-idx3-ubyte", 256),
        ("t10k-first100-idx3-ubyte", 7),
        ("t10k-1.pgm", 1),
    ] {
        let file = std::fs::read(dir.join(name)).unwrap();
        let opts = ImageOptions {
            images_per_block: per_block,
            threads: 0,
        };
        let packed = codec.compress(&file, &opts, &|_| {}).unwrap();
        assert_eq!(
            codec.decompress(&packed, &opts, &|_| {}).unwrap(),
            file,
            "{name}"
        );
    }
    // gzip in: a gzip file of the same idx bytes comes back (gzip's own bytes are not
    // reproducible: another deflate encoder made them).
    let gz = std::fs::read(dir.join("t10k-first100-idx3-ubyte.gz")).unwrap();
    let idx = std::fs::read(dir.join("t10k-first100-idx3-ubyte")).unwrap();
    let round_trip = |file: &[u8]| {
        let opts = ImageOptions::default();
        let packed = codec.compress(file, &opts, &|_| {}).unwrap();
        codec.decompress(&packed, &opts, &|_| {}).unwrap()
    };
    let back = round_trip(&gz);
    assert_eq!(back[..2], [0x1f, 0x8b]);
    let pixels = |bytes: &[u8]| arca_runtime::image::parse(bytes).unwrap().pixels;
    assert_eq!(pixels(&back), pixels(&idx));
    // PNG written with Python's zlib: zlib's parameters are found, so byte for byte.
    let png = std::fs::read(dir.join("t10k-0.png")).unwrap();
    assert_eq!(round_trip(&png), png);
}

/// All 10,000 MNIST test images round trip, and on the held-out 2,000 the stream is within 1%
/// of tract's theoretical code length (needs ../shared/data/mnist; .ci/run runs it).
#[test]
fn all_mnist_round_trip_and_match_tract_within_one_percent() {
    use arca_runtime::codec::{ImageCodec, ImageOptions};
    let Some(gz) = shared_mnist() else { return };
    let b = bundle();
    let c = Circuit::load(&b).unwrap();
    let set = arca_runtime::image::parse(&gz).unwrap();
    assert_eq!(set.count, 10_000);
    let codec = ImageCodec::new(&c);
    let t = Instant::now();
    let packed = codec
        .compress(&gz, &ImageOptions::default(), &|_| {})
        .unwrap();
    let back = codec
        .decompress(&packed, &ImageOptions::default(), &|_| {})
        .unwrap();
    assert_eq!(
        arca_runtime::image::parse(&back).unwrap().pixels,
        set.pixels
    );
    println!(
        "10,000 images: {} bytes, {:.4} bits/dim, round trip in {:.1} s",
        packed.len(),
        packed.len() as f64 * 8.0 / (10_000.0 * 784.0),
        t.elapsed().as_secs_f64()
    );

    let held = &set.pixels[8000 * 784..];
    let lik = Likelihood::load(&b).unwrap();
    let mut theory = 0f64;
    for chunk in held.chunks(500 * 784) {
        let rows: Vec<u16> = chunk.iter().map(|&p| u16::from(p)).collect();
        theory -= lik
            .log_prob(&rows)
            .unwrap()
            .iter()
            .map(|&l| f64::from(l) / std::f64::consts::LN_2)
            .sum::<f64>();
    }
    let actual = c.encode(held).unwrap().len() as f64 * 8.0;
    let dims = 2000.0 * 784.0;
    println!(
        "held-out 2,000: theoretical {:.4} bits/dim (tract), actual {:.4} ({:+.3}%)",
        theory / dims,
        actual / dims,
        100.0 * (actual / theory - 1.0)
    );
    assert!((actual / theory - 1.0).abs() < 0.01);
    assert!(actual / dims <= 1.40);
}
