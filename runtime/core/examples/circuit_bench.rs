//! Image compression with the HCLT circuit (issue #6): bits per dimension and speed of the native
//! coder against the circuit's own likelihood and against a naive per-pixel coder in tract.
//!
//! ```text
//! cargo run --release -p arca-runtime --example circuit_bench -- \
//!     MODEL.arcm IMAGES.idx[.gz] [--from 8000] [--count 2000] [--naive 1]
//! ```
//!
//! On images `from..from + count` of the idx file:
//!
//! - **theoretical**: -log2 p(x) from tract running the bundle's ONNX graph (float32), batches of
//!   500 images;
//! - **native**: [`Circuit::encode`] of all the images as one range-coded stream on one thread,
//!   then [`Circuit::decode`] (checked equal): bits per dimension of the stream and images/s both
//!   ways; also the quantized code length the coder computes ([`Circuit::code_lengths`]);
//! - **.arca**: the whole `arca compress` path ([`ImageCodec`], an idx file of those images, blocks
//!   on every core): file bits per dimension, images/s both ways, round trip checked;
//! - **per file**: each image alone as a PGM through [`ImageCodec`], the sizes of the `.arca`
//!   files summed (headers, block table and layout included, as for the image tools' files);
//! - **naive**: the first `naive` images coded with tract alone: for every pixel in the same
//!   order, one call with 256 rows (the pixels coded so far, each candidate value for this one,
//!   the rest marginalized) gives the conditional distribution, quantized by
//!   `quantize_probs_f32` at 24 bits and range coded; then decoded the same way (checked). Its
//!   images/s against the native coder's one-thread speed is the speed-up, measured in this run.

use std::time::Instant;

use arca_coder::quantize::quantize_probs_f32;
use arca_coder::{ByteWordCursor, Cdf, RangeDecoder, RangeEncoder};
use arca_runtime::Bundle;
use arca_runtime::circuit::{Circuit, Likelihood, PRECISION};
use arca_runtime::codec::{ImageCodec, ImageOptions};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn flag(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

/// The conditional distribution of pixel `v` given the pixels set in `row` (others 256), as a
/// 24-bit table, from one tract call of 256 rows.
fn naive_cdf(
    lik: &Likelihood,
    row: &mut [u16],
    v: usize,
    batch: &mut Vec<u16>,
) -> Result<Cdf<256>> {
    batch.clear();
    for y in 0..256u16 {
        row[v] = y;
        batch.extend_from_slice(row);
    }
    row[v] = Likelihood::MISSING;
    let lp = lik.log_prob(batch)?;
    let max = lp.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let probs: Vec<f32> = lp.iter().map(|&l| (l - max).exp()).collect();
    let mut freqs = [0u32; 256];
    quantize_probs_f32(&probs, PRECISION, &mut freqs)?;
    Ok(Cdf::from_freqs(&freqs, PRECISION)?)
}

fn naive_encode(lik: &Likelihood, order: &[usize], image: &[u8]) -> Result<Vec<u8>> {
    let mut row = vec![Likelihood::MISSING; image.len()];
    let mut batch = Vec::new();
    let mut enc = RangeEncoder::new(Vec::new());
    for &v in order {
        let cdf = naive_cdf(lik, &mut row, v, &mut batch)?;
        cdf.encode(&mut enc, usize::from(image[v]))
            .map_err(|e| format!("{e:?}"))?;
        row[v] = u16::from(image[v]);
    }
    let words = enc.finish().map_err(|e| format!("{e:?}"))?;
    Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

fn naive_decode(lik: &Likelihood, order: &[usize], data: &[u8], pixels: usize) -> Result<Vec<u8>> {
    let mut row = vec![Likelihood::MISSING; pixels];
    let mut batch = Vec::new();
    let mut dec = RangeDecoder::new(ByteWordCursor::new(data)).map_err(|e| format!("{e:?}"))?;
    let mut image = vec![0u8; pixels];
    for &v in order {
        let cdf = naive_cdf(lik, &mut row, v, &mut batch)?;
        let x = cdf.decode(&mut dec).map_err(|e| format!("{e:?}"))?;
        image[v] = x as u8;
        row[v] = x as u16;
    }
    Ok(image)
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: circuit_bench MODEL.arcm IMAGES.idx[.gz] [--from N] [--count N] [--naive N]";
    let (model, images) = match &args[..] {
        [m, i, ..] => (m, i),
        _ => return Err(usage.into()),
    };
    let from = flag(&args, "--from", 8000)?;
    let count = flag(&args, "--count", 2000)?;
    let naive = flag(&args, "--naive", 1)?;

    let bundle = Bundle::open(model)?;
    let circuit = Circuit::load(&bundle)?;
    let file = std::fs::read(images)?;
    let set = arca_runtime::image::parse(&file)?;
    circuit.check_size(set.height, set.width)?;
    let d = circuit.pixels();
    if from + count > set.count || count == 0 {
        return Err(format!("images {from}..{} of {}", from + count, set.count).into());
    }
    let pixels = &set.pixels[from * d..(from + count) * d];
    let dims = (count * d) as f64;
    println!(
        "model {} ({}x{}, M = {}), images {from}..{} of {images}\n",
        circuit.name(),
        set.height,
        set.width,
        circuit.states(),
        from + count
    );

    // Theoretical: tract's likelihoods.
    let t = Instant::now();
    let lik = Likelihood::load(&bundle)?;
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut theory_bits = 0f64;
    for chunk in pixels.chunks(500 * d) {
        let rows: Vec<u16> = chunk.iter().map(|&p| u16::from(p)).collect();
        for lp in lik.log_prob(&rows)? {
            theory_bits -= f64::from(lp) / std::f64::consts::LN_2;
        }
    }
    let tract_ips = count as f64 / t.elapsed().as_secs_f64();

    // Native, one stream on one thread.
    let model_bits: f64 = circuit.code_lengths(pixels)?.iter().sum();
    let t = Instant::now();
    let stream = circuit.encode(pixels)?;
    let enc_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = circuit.decode(&stream, count)?;
    let dec_s = t.elapsed().as_secs_f64();
    if back != pixels {
        return Err("native round trip FAILED".into());
    }

    // The .arca path on every core.
    let mut idx = vec![0, 0, 8, 3];
    idx.extend_from_slice(&(count as u32).to_be_bytes());
    idx.extend_from_slice(&(set.height as u32).to_be_bytes());
    idx.extend_from_slice(&(set.width as u32).to_be_bytes());
    idx.extend_from_slice(pixels);
    let codec = ImageCodec::new(&circuit);
    let opts = ImageOptions::default();
    let t = Instant::now();
    let packed = codec.compress(&idx, &opts, &|_| {})?;
    let arca_enc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let unpacked = codec.decompress(&packed, &opts, &|_| {})?;
    let arca_dec = t.elapsed().as_secs_f64();
    if unpacked != idx {
        return Err(".arca round trip FAILED".into());
    }

    // One .arca file per image, from a PGM each: what a single small image costs with the
    // container's header, block table and layout.
    let one = ImageOptions {
        images_per_block: 1,
        threads: 1,
    };
    let mut per_file = 0usize;
    for image in pixels.chunks_exact(d) {
        let mut pgm = format!("P5\n{} {}\n255\n", set.width, set.height).into_bytes();
        pgm.extend_from_slice(image);
        per_file += codec.compress(&pgm, &one, &|_| {})?.len();
    }

    // Naive per-pixel tract coding.
    let order: Vec<usize> = circuit.order().collect();
    let (mut naive_enc, mut naive_dec, mut naive_bytes) = (0f64, 0f64, 0usize);
    for image in pixels.chunks_exact(d).take(naive) {
        let t = Instant::now();
        let data = naive_encode(&lik, &order, image)?;
        naive_enc += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let back = naive_decode(&lik, &order, &data, d)?;
        naive_dec += t.elapsed().as_secs_f64();
        if back != image {
            return Err("naive round trip FAILED".into());
        }
        naive_bytes += data.len();
    }

    let bpd = |bits: f64| bits / dims;
    let ips = |secs: f64| count as f64 / secs;
    println!("| | bits/dim | encode images/s | decode images/s |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| theoretical: -log2 p(x), tract (float32) | {:.4} | {tract_ips:.0} (likelihood only) | |",
        bpd(theory_bits)
    );
    println!(
        "| native coder, quantized code length | {:.4} | | |",
        bpd(model_bits)
    );
    println!(
        "| native coder, one stream, 1 thread | {:.4} | {:.0} | {:.0} |",
        bpd(stream.len() as f64 * 8.0),
        ips(enc_s),
        ips(dec_s)
    );
    println!(
        "| `.arca` file (idx in, all cores, {} images per block) | {:.4} | {:.0} | {:.0} |",
        opts.images_per_block,
        bpd(packed.len() as f64 * 8.0),
        ips(arca_enc),
        ips(arca_dec)
    );
    println!(
        "| one `.arca` file per image (PGM in, container overhead included) | {:.4} | | |",
        bpd(per_file as f64 * 8.0)
    );
    if naive > 0 {
        let n = naive as f64;
        println!(
            "| naive per-pixel tract ({naive} image{}, 784 calls of 256 rows each way) | {:.4} | {:.4} | {:.4} |",
            if naive == 1 { "" } else { "s" },
            naive_bytes as f64 * 8.0 / (n * d as f64),
            n / naive_enc,
            n / naive_dec
        );
        println!(
            "\nnative (1 thread) vs naive: encode {:.0}x, decode {:.0}x faster",
            ips(enc_s) / (n / naive_enc),
            ips(dec_s) / (n / naive_dec)
        );
    }
    println!(
        "actual vs theoretical: stream {:+.3}%, .arca file {:+.3}%; tract load {load:.2} s",
        100.0 * (stream.len() as f64 * 8.0 / theory_bits - 1.0),
        100.0 * (packed.len() as f64 * 8.0 / theory_bits - 1.0)
    );
    Ok(())
}
