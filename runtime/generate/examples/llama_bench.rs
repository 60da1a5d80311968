//! Cost of the native Llama path's forward calls, one thread: milliseconds per call of k
//! tokens after a cached prefix, for each weight precision, and the ratio to a one-token call.
//!
//! ```sh
//! cargo run --release -p arca-generate --example llama_bench             # the test fixture
//! cargo run --release -p arca-generate --example llama_bench -- synthetic # the 40M shape
//! ```
//!
//! `synthetic` is the shape of issue #21's Llama target (hidden 512, MLP 1536, 10 layers, 8
//! query and 4 key/value heads, 8,192 tokens: 39.9M parameters) with random weights, written
//! to safetensors bytes in memory and read like a real model. Medians over the repetitions.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arca_generate::{LlamaConfig, LlamaDecoder, LlamaModel, Precision, random_safetensors};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Milliseconds to read `bytes` bytes once (eight independent sums of 8-byte words): the
/// memory-bound floor of a call that reads every weight once.
fn read_floor(bytes: usize) -> f64 {
    let buf: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let mut acc = [0u64; 8];
        for c in buf.chunks_exact(8) {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a = a.wrapping_add(v);
            }
        }
        std::hint::black_box(acc);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let synthetic = std::env::args().nth(1).as_deref() == Some("synthetic");
    let prefix = 64;
    let ks = [1usize, 2, 4, 8, 16];
    let (reps, what) = if synthetic {
        (
            21,
            "synthetic 39.9M (hidden 512, MLP 1536, 10 layers, 8/4 heads, vocab 8192)",
        )
    } else {
        (301, "fixture tests/data/hf/llama (223K)")
    };
    println!("{what}: {prefix} tokens cached, one thread, median of {reps} calls");
    println!("precision | k | ms/call | ms/token | call / one-token call");
    for precision in Precision::ALL {
        let model = if synthetic {
            let cfg = LlamaConfig {
                hidden_size: 512,
                intermediate_size: 1536,
                num_hidden_layers: 10,
                num_attention_heads: 8,
                num_key_value_heads: 4,
                head_dim: 64,
                rms_norm_eps: 1e-5,
                rope_theta: 10000.0,
                max_position_embeddings: 1024,
                vocab_size: 8192,
                tie_word_embeddings: false,
            };
            let bytes = random_safetensors(&cfg, 1, 1.0)?;
            LlamaModel::from_safetensors(
                "synthetic".into(),
                &cfg.to_json(),
                "config.json",
                bytes,
                "model.safetensors",
                precision,
            )?
        } else {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf/llama");
            LlamaModel::from_dir(&dir, precision)?
        };
        let vocab = model.config().vocab_size as u32;
        let bytes = model.config().parameters()
            * match precision {
                Precision::F32 => 4,
                Precision::F16 => 2,
                Precision::Int8 => 1,
            };
        let floor = read_floor(bytes);
        println!(
            "{}: weights {:.1} MB; reading them once takes {floor:.3} ms ({:.1} GB/s)",
            precision.as_str(),
            bytes as f64 / 1e6,
            bytes as f64 / floor / 1e6
        );
        let mut dec = LlamaDecoder::new(Arc::new(model));
        let prompt: Vec<u32> = (0..prefix as u32).map(|i| (i * 37 + 11) % vocab).collect();
        let mut out = Vec::new();
        dec.forward(&prompt, &mut out)?;
        let mut one = 0.0;
        for &k in &ks {
            let tokens: Vec<u32> = (0..k as u32).map(|i| (i * 101 + 7) % vocab).collect();
            let mut times = Vec::with_capacity(reps);
            for rep in 0..reps + 3 {
                dec.truncate(prefix);
                let t = Instant::now();
                dec.forward(&tokens, &mut out)?;
                if rep >= 3 {
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let ms = median(times);
            if k == 1 {
                one = ms;
            }
            println!(
                "{} | {k} | {ms:.3} | {:.3} | {:.2}",
                precision.as_str(),
                ms / k as f64,
                ms / one
            );
        }
    }
    Ok(())
}
