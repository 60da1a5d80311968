//! The native Llama path against onnxruntime's reference decoding of the fixture
//! (`tests/data/hf`), against itself (k-token calls, rollback, packed bundles, precisions,
//! kernels), and on bad input.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arca_bundle::Bundle;
use serde_json::Value;

use super::kernels::{Isa, Matrix, Rows, dot, f16_to_f32, matmul, weighted_sum};
use super::*;
use crate::error::GenError;
use crate::verify::argmax;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf/llama")
}

/// `(prompt ids, greedy tokens, first logits)` of every reference prompt.
fn reference() -> Vec<(Vec<u32>, Vec<u32>, Vec<f32>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hf/reference.json");
    let json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let ints = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    json["models"]["llama"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            let logits = run["first_logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            (ints(&run["prompt_ids"]), ints(&run["greedy"]), logits)
        })
        .collect()
}

fn model(precision: Precision) -> Arc<LlamaModel> {
    Arc::new(LlamaModel::from_dir(&fixture(), precision).unwrap())
}

fn packed(precision: Precision) -> Arc<LlamaModel> {
    let bytes = pack_llama(&fixture(), precision).unwrap();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    Arc::new(LlamaModel::from_bundle(&bundle).unwrap())
}

/// Greedy decoding of `n` tokens: the prompt in one call, then one token a call. Returns the
/// tokens and the prompt call's last logits row.
fn greedy(dec: &mut LlamaDecoder, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let (mut logits, mut feed, mut out, mut first) = (Vec::new(), prompt.to_vec(), vec![], vec![]);
    for _ in 0..n {
        dec.forward(&feed, &mut logits).unwrap();
        let row = &logits[logits.len() - dec.vocab()..];
        if first.is_empty() {
            first = row.to_vec();
        }
        let next = argmax(row) as u32;
        out.push(next);
        feed = vec![next];
    }
    (out, first)
}

/// All the logits of one call over `tokens`.
fn logits_of(model: &Arc<LlamaModel>, tokens: &[u32]) -> Vec<f32> {
    let mut out = Vec::new();
    LlamaDecoder::new(Arc::clone(model))
        .forward(tokens, &mut out)
        .unwrap();
    out
}

/// A prompt and its f32 continuation: 3 + 40 tokens.
fn sequence() -> Vec<u32> {
    let (prompt, tokens, _) = reference().remove(0);
    prompt
        .into_iter()
        .chain(tokens.into_iter().take(40))
        .collect()
}

#[test]
fn f32_greedy_tokens_and_logits_match_onnxruntime() {
    let model = model(Precision::F32);
    let mut worst = 0.0f32;
    for (prompt, want, logits) in reference() {
        let mut dec = LlamaDecoder::new(Arc::clone(&model));
        let (got, first) = greedy(&mut dec, &prompt, want.len());
        assert_eq!(got, want, "prompt {prompt:?}");
        for (i, (a, b)) in first.iter().zip(&logits).enumerate() {
            assert!((a - b).abs() <= 1e-4, "logit {i}: {a} vs onnxruntime {b}");
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!(
        "f32 vs onnxruntime: 4 x 128 greedy tokens equal, largest first-logit difference {worst:.3e}"
    );
}

/// The property speculative decoding rests on, in every precision and on the SIMD and the
/// portable kernels alike: logits do not depend on how the tokens are split into calls, and
/// a rolled-back cache fed again is a fresh one.
#[test]
fn k_token_calls_give_the_bits_of_one_token_calls_and_rollback_is_exact() {
    let seq = sequence();
    for precision in Precision::ALL {
        let mut portable = LlamaModel::from_dir(&fixture(), precision).unwrap();
        portable.use_portable_kernels();
        let portable = Arc::new(portable);
        let model = model(precision);
        let whole = logits_of(&model, &seq);
        assert_eq!(
            logits_of(&portable, &seq),
            whole,
            "{precision:?}: portable kernels"
        );
        for chunk in [1, 2, 3, 5, 8, 17] {
            let mut dec = LlamaDecoder::new(Arc::clone(&model));
            let (mut got, mut part) = (Vec::new(), Vec::new());
            for c in seq.chunks(chunk) {
                dec.forward(c, &mut part).unwrap();
                got.extend_from_slice(&part);
            }
            assert_eq!(got, whole, "{precision:?}: chunks of {chunk}");
        }
        let mut dec = LlamaDecoder::new(Arc::clone(&model));
        let mut out = Vec::new();
        dec.forward(&seq[..30], &mut out).unwrap();
        dec.forward(&[7, 8, 9, 10, 11], &mut out).unwrap();
        dec.truncate(20);
        assert_eq!(dec.cached(), 20);
        dec.forward(&seq[20..], &mut out).unwrap();
        let v = dec.vocab();
        assert_eq!(out, whole[20 * v..], "{precision:?}: truncate and refeed");
    }
}

/// f16 and int8 bundles against f32: free-running greedy tokens, and with the f32 tokens fed
/// (teacher forcing) the largest logit difference and the argmax agreement. A choice may
/// differ only where f32's two best logits are closer than twice the largest difference (a
/// near-tie that any perturbation of that size can flip).
#[test]
fn f16_and_int8_bundles_follow_f32() {
    let f32_model = model(Precision::F32);
    let runs = reference();
    for precision in [Precision::F16, Precision::Int8] {
        let m = packed(precision);
        let (mut agree, mut total, mut first_split) = (0, 0, Vec::new());
        let (mut worst, mut forced_agree, mut forced, mut tie_margins) = (0.0f32, 0, 0, vec![]);
        for (prompt, want, _) in &runs {
            let (got, _) = greedy(&mut LlamaDecoder::new(Arc::clone(&m)), prompt, want.len());
            agree += got.iter().zip(want).filter(|(a, b)| a == b).count();
            total += want.len();
            first_split.push(got.iter().zip(want).position(|(a, b)| a != b));
            let seq: Vec<u32> = prompt.iter().chain(want).copied().collect();
            let (a, b) = (logits_of(&f32_model, &seq), logits_of(&m, &seq));
            worst = a
                .iter()
                .zip(&b)
                .fold(worst, |w, (x, y)| w.max((x - y).abs()));
            let v = f32_model.config().vocab_size;
            for (ra, rb) in a
                .chunks_exact(v)
                .zip(b.chunks_exact(v))
                .skip(prompt.len() - 1)
            {
                forced += 1;
                if argmax(ra) == argmax(rb) {
                    forced_agree += 1;
                } else {
                    let mut sorted = ra.to_vec();
                    sorted.sort_by(|x, y| y.total_cmp(x));
                    tie_margins.push(sorted[0] - sorted[1]);
                }
            }
        }
        eprintln!(
            "{precision:?} vs f32: free-running {agree}/{total} greedy tokens equal (first difference per prompt {first_split:?}); teacher-forced {forced_agree}/{forced} argmax equal, largest logit difference {worst:.3e}, f32 top-2 margins where they differ {tie_margins:?}"
        );
        for margin in &tie_margins {
            assert!(
                *margin < 2.0 * worst,
                "{precision:?}: a choice with margin {margin} flipped (logits within {worst})"
            );
        }
        // Measured (runtime/generate/README.md): f16 2.4e-3 and 515/516, int8 7.6e-2 and
        // 501/516; the bounds leave a margin.
        let (max_diff, min_agree) = match precision {
            Precision::F16 => (0.01, 0.98),
            _ => (0.3, 0.95),
        };
        assert!(worst < max_diff, "{precision:?} logits differ by {worst}");
        assert!(
            forced_agree as f64 >= min_agree * forced as f64,
            "{precision:?}: {forced_agree}/{forced} argmax agree"
        );
    }
}

/// A packed bundle computes the bits of the safetensors directory at its precision, in memory
/// and memory-mapped from a file.
#[test]
fn pack_then_from_bundle_equals_from_safetensors() {
    let seq = sequence();
    let dir = tempfile::tempdir().unwrap();
    for precision in Precision::ALL {
        let want = logits_of(&model(precision), &seq);
        assert_eq!(
            logits_of(&packed(precision), &seq),
            want,
            "{precision:?} in memory"
        );
        let bytes = pack_llama(&fixture(), precision).unwrap();
        assert_eq!(
            bytes,
            pack_llama(&fixture(), precision).unwrap(),
            "deterministic"
        );
        let path = dir
            .path()
            .join(format!("llama-{}.arcm", precision.as_str()));
        std::fs::write(&path, &bytes).unwrap();
        let bundle = Bundle::open(&path).unwrap();
        let mapped = LlamaModel::from_bundle(&bundle).unwrap();
        assert_eq!(mapped.precision(), precision);
        // Every matrix in place in the map, none copied.
        let total: usize = mapped.weights().bytes_in_place();
        assert!(total > 0 && total < bytes.len());
        assert_eq!(
            logits_of(&Arc::new(mapped), &seq),
            want,
            "{precision:?} mapped"
        );
        let m = bundle.manifest();
        assert_eq!((m.vocab_size, m.context_len), (1024, 256));
        assert!(bundle.tensor("hf/tokenizer.json").is_some());
        eprintln!("{precision:?} bundle: {} bytes", bytes.len());
    }
    // f32 from safetensors is in place too.
    let m = model(Precision::F32);
    assert!(m.weights().bytes_in_place() > 800_000);
}

fn config_json() -> Value {
    serde_json::from_slice(&std::fs::read(fixture().join("config.json")).unwrap()).unwrap()
}

fn load(config: &Value, weights: Vec<u8>) -> Result<LlamaModel, LlamaError> {
    LlamaModel::from_safetensors(
        "t".into(),
        &config.to_string(),
        "config.json",
        weights,
        "model.safetensors",
        Precision::F32,
    )
}

fn fixture_weights() -> Vec<u8> {
    std::fs::read(fixture().join("model.safetensors")).unwrap()
}

#[test]
fn bad_configs_weights_and_calls_are_clear_errors() {
    let msg = |r: Result<LlamaModel, LlamaError>| r.unwrap_err().to_string();
    let mut c = config_json();
    c.as_object_mut().unwrap().remove("vocab_size");
    let e = msg(load(&c, fixture_weights()));
    assert!(
        e.contains("config.json") && e.contains("`vocab_size` is missing"),
        "{e}"
    );

    let mut c = config_json();
    c["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0});
    let e = msg(load(&c, fixture_weights()));
    assert!(
        e.contains("rope_scaling") && e.contains("not supported"),
        "{e}"
    );

    let mut c = config_json();
    c["num_key_value_heads"] = serde_json::json!(3);
    let e = msg(load(&c, fixture_weights()));
    assert!(e.contains("num_key_value_heads"), "{e}");

    let mut c = config_json();
    c["hidden_size"] = serde_json::json!("64");
    let e = msg(load(&c, fixture_weights()));
    assert!(e.contains("`hidden_size` is \"64\", not a count"), "{e}");

    let e = msg(load(&config_json(), b"not safetensors".to_vec()));
    assert!(e.contains("not a safetensors file"), "{e}");

    // Weights of a tied model (no lm_head) read with the untied configuration.
    let mut cfg = LlamaConfig::from_json(&config_json().to_string(), "c").unwrap();
    cfg.tie_word_embeddings = true;
    let e = msg(load(
        &config_json(),
        random_safetensors(&cfg, 1, 1.0).unwrap(),
    ));
    assert!(e.contains("no tensor `lm_head.weight`"), "{e}");

    // Weights of another MLP width.
    let mut c = config_json();
    c["intermediate_size"] = serde_json::json!(160);
    let e = msg(load(&c, fixture_weights()));
    assert!(
        e.contains("model.layers.0.mlp.gate_proj.weight") && e.contains("[176, 64]"),
        "{e}"
    );

    // A bundle of another kind.
    let other = arca_bundle::encode(arca_bundle::Manifest::default(), b"", &[]).unwrap();
    let e = LlamaModel::from_bundle(&Bundle::from_bytes(other).unwrap()).unwrap_err();
    assert!(e.to_string().contains("not a native Llama bundle"), "{e}");

    let model = model(Precision::F32);
    let mut dec = LlamaDecoder::with_context_len(Arc::clone(&model), 10);
    let mut out = Vec::new();
    dec.forward(&[1, 2, 3], &mut out).unwrap();
    let e = dec.forward(&[4, 1024], &mut out).unwrap_err();
    assert!(matches!(e, GenError::Token { token: 1024, .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("token 1024 is outside its vocabulary of 1024"),
        "{e}"
    );
    let e = dec.forward(&[4; 8], &mut out).unwrap_err();
    assert!(
        matches!(
            e,
            GenError::Window {
                len: 11,
                context_len: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(dec.cached(), 3, "a refused call leaves the cache alone");
    dec.forward(&[4; 7], &mut out).unwrap();
    assert_eq!(dec.cached(), 10);
}

/// The SIMD kernels give the portable loops' bits (with fused multiply-adds) for every
/// precision, width, row count and token count, and a token's outputs do not depend on the
/// tokens fed with it.
#[test]
fn simd_kernels_equal_the_portable_loops_bit_for_bit() {
    let simd = Isa::detect();
    let portable = simd.portable();
    if simd == portable {
        eprintln!("no SIMD kernels on this CPU: comparing the portable loops with themselves");
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    for (k, rows) in [
        (8, 1),
        (16, 7),
        (64, 19),
        (176, 9),
        (24, 8),
        (20, 5),
        (1536, 3),
    ] {
        let stride = k + 8;
        let n_max = 9;
        let x: Vec<f32> = (0..n_max * k).map(|_| rnd()).collect();
        let wf: Vec<f32> = (0..rows * stride).map(|_| rnd()).collect();
        let f32b: Vec<u8> = wf.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16b: Vec<u8> = wf
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
            .collect();
        let i8b: Vec<u8> = wf.iter().map(|&v| (v * 127.0) as i8 as u8).collect();
        let scales: Vec<u8> = (0..rows)
            .flat_map(|_| (rnd().abs() / 100.0).to_le_bytes())
            .collect();
        let kinds = [
            ("f32", Rows::F32(&f32b)),
            ("f16", Rows::F16(&f16b)),
            (
                "i8",
                Rows::I8 {
                    q: &i8b,
                    scales: &scales,
                },
            ),
            ("floats", Rows::Floats(&wf)),
        ];
        for (kind, data) in kinds {
            let w = Matrix::new(data, rows, k, stride).unwrap();
            let mut alone = Vec::new();
            for t in 0..n_max {
                let mut y = vec![0.0; rows];
                matmul(simd, &x[t * k..][..k], &w, &mut y);
                alone.extend(y);
            }
            for n in 1..=n_max {
                let (mut a, mut b) = (vec![0.0; n * rows], vec![0.0; n * rows]);
                matmul(simd, &x[..n * k], &w, &mut a);
                matmul(portable, &x[..n * k], &w, &mut b);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{kind} k {k} rows {rows} n {n}");
                assert_eq!(
                    bits(&a),
                    bits(&alone[..n * rows]),
                    "{kind} k {k} n {n} vs alone"
                );
            }
            // The portable order is the documented one.
            if let Rows::Floats(f) = data {
                let mut y = vec![0.0; rows];
                matmul(portable, &x[..k], &w, &mut y);
                for (o, &v) in y.iter().enumerate() {
                    let want = dot(&x[..k], |i| f[o * stride + i], portable.fma());
                    assert_eq!(v.to_bits(), want.to_bits());
                    let exact: f64 = (0..k)
                        .map(|i| f64::from(x[i]) * f64::from(f[o * stride + i]))
                        .sum();
                    assert!((f64::from(v) - exact).abs() < 1e-4, "{v} vs {exact}");
                }
            }
        }
    }
    // Weighted sums: head widths with and without a SIMD path, any number of keys.
    for hd in [8, 12, 16, 24, 64, 128] {
        for keys in [1, 2, 7, 33] {
            let stride = hd + 8;
            let vals: Vec<f32> = (0..keys * stride).map(|_| rnd()).collect();
            let p: Vec<f32> = (0..keys).map(|_| rnd().abs()).collect();
            let (mut a, mut b) = (vec![0.0; hd], vec![0.0; hd]);
            weighted_sum(simd, &p, &vals, stride, &mut a);
            weighted_sum(portable, &p, &vals, stride, &mut b);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "weighted sum hd {hd} keys {keys}");
        }
    }
}

#[test]
fn f16_widening_is_exact_for_every_half() {
    for h in 0..=u16::MAX {
        let want = half::f16::from_bits(h).to_f32();
        let got = f16_to_f32(h);
        if want.is_nan() {
            assert!(got.is_nan(), "{h:#06x}");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{h:#06x}");
        }
    }
}

#[test]
fn config_defaults_and_parameter_count() {
    let cfg = LlamaConfig::from_json(&config_json().to_string(), "c").unwrap();
    // The fixture's model.safetensors holds 223,552 values (models/hf/README.md's table says
    // 223,296: 256 fewer, the four layer norms).
    assert_eq!(cfg.parameters(), 223_552);
    assert_eq!(LlamaConfig::from_json(&cfg.to_json(), "c").unwrap(), cfg);
    let mut c = config_json();
    for key in [
        "head_dim",
        "rope_theta",
        "num_key_value_heads",
        "tie_word_embeddings",
    ] {
        c.as_object_mut().unwrap().remove(key);
    }
    let d = LlamaConfig::from_json(&c.to_string(), "c").unwrap();
    assert_eq!(
        (
            d.head_dim,
            d.rope_theta,
            d.num_key_value_heads,
            d.tie_word_embeddings
        ),
        (16, 10000.0, 4, false)
    );
}

/// A tied model (no `lm_head.weight`) runs, with the embedding as the head, in each
/// precision, and packs.
#[test]
fn tied_synthetic_models_run_and_pack() {
    let mut cfg = LlamaConfig::from_json(&config_json().to_string(), "c").unwrap();
    cfg.tie_word_embeddings = true;
    cfg.num_key_value_heads = 1;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), cfg.to_json()).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        random_safetensors(&cfg, 7, 1.0).unwrap(),
    )
    .unwrap();
    for precision in Precision::ALL {
        let m = Arc::new(LlamaModel::from_dir(dir.path(), precision).unwrap());
        let out = logits_of(&m, &[1, 2, 3, 4]);
        assert!(out.iter().all(|v| v.is_finite()));
        let bundle = Bundle::from_bytes(pack_llama(dir.path(), precision).unwrap()).unwrap();
        assert!(bundle.tensor("lm_head.weight").is_none());
        assert!(bundle.tensor("hf/tokenizer.json").is_none());
        let b = Arc::new(LlamaModel::from_bundle(&bundle).unwrap());
        assert_eq!(logits_of(&b, &[1, 2, 3, 4]), out);
    }
}
