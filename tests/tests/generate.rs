//! The shipped generation models (issue #7): prose (`models/gen/trained`) and arithmetic
//! (`models/arith/trained/arith-add-padrev-{target,draft-*}`). The native forward against
//! tract running the same ONNX graph, greedy speculative output against greedy target-only
//! output for every draft, draft length and prompt, and the speculative sampler's first-token
//! distribution against the target's.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use arca_generate::{
    self as generate, Drafter, LookupDrafter, ModelDrafter, Net, Options, Rng, Sampling, Scratch,
    TextTokenizer, Tokenizer,
};
use arca_runtime::Bundle;
use arca_runtime::arith::ArithSpec;
use tract_onnx::prelude::*;

fn trained(name: &str) -> PathBuf {
    arca_tests::workspace_root().join(format!("models/gen/trained/{name}.arcm"))
}

fn load(name: &str) -> (Bundle, Net) {
    let path = if name.starts_with("arith-") {
        arca_tests::workspace_root().join(format!("models/arith/trained/{name}.arcm"))
    } else {
        trained(name)
    };
    let bundle = Bundle::open(path).unwrap();
    let net = Net::load(&bundle).unwrap();
    (bundle, net)
}

const DRAFTS: [&str; 3] = ["gen-draft-kd", "gen-draft-adaspec", "gen-draft-kd-onpolicy"];

const ARITH_TARGET: &str = "arith-add-padrev-target";
const ARITH_DRAFTS: [&str; 2] = [
    "arith-add-padrev-draft-kd",
    "arith-add-padrev-draft-adaspec",
];

/// Prompts from the committed Canterbury corpus: prose, verse, a play, and one longer than
/// the context (so decoding crosses window changes).
fn prompts() -> Vec<Vec<u8>> {
    let dir = arca_tests::workspace_root().join("tests/data/canterbury");
    let alice = std::fs::read(dir.join("alice29.txt")).unwrap();
    let plays = std::fs::read(dir.join("plrabn12.txt")).unwrap();
    let lear = std::fs::read(dir.join("asyoulik.txt")).unwrap();
    vec![
        alice[20_000..20_100].to_vec(),
        alice[90_000..90_040].to_vec(),
        plays[50_000..50_120].to_vec(),
        lear[30_000..30_080].to_vec(),
        b"The old man looked at the sea and said".to_vec(),
        alice[100_000..100_700].to_vec(),
    ]
}

/// The text `target` generates after `prompt` (tokens of `tokenizer`).
fn run_with(
    target: &Net,
    drafter: Option<&mut dyn Drafter>,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    o: &Options,
) -> Vec<u8> {
    let mut out = Vec::new();
    generate::generate(
        &mut target.decoder(),
        drafter,
        tokenizer,
        prompt,
        o,
        &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        },
    )
    .unwrap();
    out
}

/// [`run_with`] for a prose model: bytes in and out.
fn run(target: &Net, drafter: Option<&mut dyn Drafter>, prompt: &[u8], o: &Options) -> Vec<u8> {
    let bytes = Tokenizer::Bytes;
    run_with(target, drafter, &bytes, &bytes.encode(prompt).unwrap(), o)
}

/// tract runs the bundle's graph: logits of `text` fed in one call with an empty cache.
fn tract_logits(bundle: &Bundle, net: &Net, text: &[u32]) -> Vec<f32> {
    let m = bundle.manifest();
    let mut model = arca_runtime::engine::inference_model(bundle).unwrap();
    let mut inputs = vec![m.inputs[0].clone()];
    inputs.extend(m.kv_cache_inputs.iter().cloned());
    model.set_input_names(&inputs).unwrap();
    model.select_outputs_by_name([&m.outputs[0]]).unwrap();
    let cfg = net.config();
    let (h, d) = (cfg.n_head, cfg.head_dim());
    model
        .set_input_fact(
            0,
            InferenceFact::dt_shape(i64::datum_type(), [1, text.len()]),
        )
        .unwrap();
    for i in 1..inputs.len() {
        model
            .set_input_fact(i, InferenceFact::dt_shape(f32::datum_type(), [1, h, 0, d]))
            .unwrap();
    }
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    let ids: Vec<i64> = text.iter().map(|&b| i64::from(b)).collect();
    let mut feed: TVec<TValue> = tvec![
        tract_ndarray::Array2::from_shape_vec((1, text.len()), ids)
            .unwrap()
            .into_tensor()
            .into_tvalue()
    ];
    for _ in 1..inputs.len() {
        feed.push(Tensor::zero::<f32>(&[1, h, 0, d]).unwrap().into_tvalue());
    }
    let out = plan.run(feed).unwrap();
    out[0]
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .unwrap()
        .to_vec()
}

/// `text`'s logits from the native forward and from tract agree to 1e-3 (rows as wide as the
/// vocabulary in both).
fn check_against_tract(name: &str, text: &[u32]) {
    let (bundle, net) = load(name);
    let want = tract_logits(&bundle, &net, text);
    let mut cache = net.new_cache();
    let mut got = Vec::new();
    net.forward(&mut cache, text, &mut Scratch::default(), &mut got)
        .unwrap();
    let v = net.vocab();
    assert_eq!(got.len(), text.len() * v);
    assert_eq!(want.len(), text.len() * v);
    let mut diff = 0.0f32;
    for (a, b) in got.iter().zip(&want) {
        diff = diff.max((a - b).abs());
    }
    println!("{name}: native vs tract max |logit difference| {diff:.2e}");
    assert!(diff < 1e-3, "{name}: {diff}");
}

#[test]
fn native_forward_matches_tract_on_the_graph() {
    let text = Tokenizer::Bytes.encode(&prompts()[0]).unwrap();
    for name in ["gen-target", DRAFTS[0], DRAFTS[1], DRAFTS[2]] {
        check_against_tract(name, &text);
    }
    // A whole arithmetic problem, question and answer (the context is 34 tokens).
    let (bundle, _) = load(ARITH_TARGET);
    let (problems, tokenizer) = arith_problems(&bundle, 1);
    let answer = tokenizer.encode(&problems[0].1).unwrap();
    let text = [problems[0].0.clone(), answer].concat();
    assert!(text.len() <= 33 && tokenizer != Tokenizer::Bytes);
    for name in [ARITH_TARGET, ARITH_DRAFTS[0], ARITH_DRAFTS[1]] {
        check_against_tract(name, &text);
    }
}

/// A question (tokens) and the answer a correct model writes (text, without END).
type QA = (Vec<u32>, Vec<u8>);

/// `n` held-out problems spread over the model's digit counts (2-10 for the adder).
fn arith_problems(bundle: &Bundle, n: usize) -> (Vec<QA>, Tokenizer) {
    let spec = ArithSpec::of(bundle).unwrap();
    let tokenizer = Tokenizer::of(bundle).unwrap();
    let problems = spec
        .spread_problems(n)
        .into_iter()
        .map(|p| {
            let q = p.question(spec.format).unwrap();
            let a = p.answer(spec.format).unwrap();
            (tokenizer.encode(q.as_bytes()).unwrap(), a.into_bytes())
        })
        .collect();
    (problems, tokenizer)
}

/// The arithmetic workload: the target answers held-out problems right, and with each draft
/// (fixed lengths 1, 3, 11 and 16, and adaptive) and prompt lookup the output up to END is
/// the target's own.
#[test]
fn arithmetic_speculative_answers_are_the_targets() {
    let (bundle, target) = load(ARITH_TARGET);
    let drafts: Vec<Net> = ARITH_DRAFTS.iter().map(|d| load(d).1).collect();
    let (problems, tokenizer) = arith_problems(&bundle, 27);
    let o = Options {
        n: 64,
        stop: tokenizer.eos().into_iter().collect(),
        ..Options::default()
    };
    for (question, answer) in &problems {
        let want = run_with(&target, None, &tokenizer, question, &o);
        assert_eq!(
            &want,
            answer,
            "{}",
            String::from_utf8_lossy(&tokenizer.decode(question))
        );
        for k in [1, 3, 11, 16, 0] {
            let so = Options {
                draft_max: k.max(16),
                draft_start: (k > 0).then_some(k),
                fixed_length: k > 0,
                ..o.clone()
            };
            for d in &drafts {
                let mut drafter = ModelDrafter::new(d.decoder(), 0.0);
                let got = run_with(&target, Some(&mut drafter), &tokenizer, question, &so);
                assert_eq!(got, want, "k {k}, {}", d.name());
            }
            let mut lookup = LookupDrafter::default();
            let got = run_with(&target, Some(&mut lookup), &tokenizer, question, &so);
            assert_eq!(got, want, "k {k}, lookup");
        }
    }
}

/// Every draft length 1..=16 (fixed) on the first prompt and 3 on the others, without the
/// confidence stop, and the adaptive length with it, for both drafts; prompt lookup adaptive
/// (and at 16 on the first prompt).
#[test]
fn greedy_speculative_output_is_the_targets_greedy_output() {
    let (_, target) = load("gen-target");
    let drafts: Vec<Net> = DRAFTS.iter().map(|d| load(d).1).collect();
    for (i, prompt) in prompts().iter().enumerate() {
        // The long prompt decodes past a window change.
        let n = if prompt.len() > 512 { 200 } else { 96 };
        let o = Options {
            n,
            ..Options::default()
        };
        let want = run(&target, None, prompt, &o);
        let lengths: Vec<usize> = if i == 0 { (1..=16).collect() } else { vec![3] };
        let mut settings: Vec<(Options, f64)> = lengths
            .iter()
            .map(|&k| {
                let o = Options {
                    draft_max: k,
                    draft_start: Some(k),
                    fixed_length: true,
                    ..o.clone()
                };
                (o, 0.0)
            })
            .collect();
        settings.push((o.clone(), 0.5));
        for (so, p_min) in &settings {
            let what = format!(
                "prompt {i}, k {}, fixed {}, p_min {p_min}",
                so.draft_max, so.fixed_length
            );
            for d in &drafts {
                let mut drafter = ModelDrafter::new(d.decoder(), *p_min);
                let got = run(&target, Some(&mut drafter), prompt, so);
                assert_eq!(got, want, "{what}, {}", d.name());
            }
            if *p_min == 0.5 || so.draft_max == 16 {
                let got = run(&target, Some(&mut LookupDrafter::default()), prompt, so);
                assert_eq!(got, want, "{what}, lookup");
            }
        }
    }
}

/// The first generated byte after a prompt, sampled speculatively with each draft over many
/// seeds, follows the target's (temperature 1, top-p 0.9) distribution: chi-square over the
/// bytes the target gives at least 1% (the rest pooled), against the 99.9% quantile.
#[test]
fn speculative_sampling_follows_the_target_distribution() {
    let (_, target) = load("gen-target");
    let draft = load(DRAFTS[1]).1;
    let sampling = Sampling::with_temperature(1.0, 0.9);
    let prompt = b"It was a bright cold day in April, and the";
    let tokens = Tokenizer::Bytes.encode(prompt).unwrap();
    let mut lm = generate::Lm::new(target.decoder());
    let mut p = Vec::new();
    let logits = lm.score(&tokens, tokens.len() - 1).unwrap();
    sampling.probs(logits, &tokens, &mut p);
    let vocab = p.len();
    let draws = 1200u64;
    for drafter_kind in ["model", "lookup"] {
        let mut counts = vec![0u64; vocab];
        for seed in 0..draws {
            let o = Options {
                n: 1,
                sampling,
                seed,
                draft_max: 4,
                draft_start: Some(4),
                ..Options::default()
            };
            // n = 1 would never draft (nothing to verify past the end), so ask for 3 bytes and
            // keep the first.
            let o = Options { n: 3, ..o };
            let out = match drafter_kind {
                "model" => run(
                    &target,
                    Some(&mut ModelDrafter::new(draft.decoder(), 0.0)),
                    prompt,
                    &o,
                ),
                _ => run(&target, Some(&mut LookupDrafter::default()), prompt, &o),
            };
            counts[usize::from(out[0])] += 1;
        }
        let (mut stat, mut cells, mut rest_p, mut rest_c) = (0.0, 0, 0.0, 0u64);
        for b in 0..vocab {
            if p[b] >= 0.01 {
                let e = p[b] * draws as f64;
                stat += (counts[b] as f64 - e).powi(2) / e;
                cells += 1;
            } else {
                rest_p += p[b];
                rest_c += counts[b];
            }
        }
        if rest_p > 0.0 {
            let e = rest_p * draws as f64;
            stat += (rest_c as f64 - e).powi(2) / e;
            cells += 1;
        }
        // 99.9% quantile of chi-square with `cells - 1` degrees of freedom (Wilson-Hilferty).
        let k = f64::from(cells - 1);
        let z = 3.09;
        let q = k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3);
        println!("{drafter_kind}: chi-square {stat:.1} over {cells} cells (99.9% quantile {q:.1})");
        assert!(
            stat < q,
            "{drafter_kind}: chi-square {stat:.1} >= {q:.1}; counts {counts:?}"
        );
    }
    // The sampler itself is seeded: the same seed gives the same bytes.
    let mut a = Rng::new(3);
    let mut b = Rng::new(3);
    assert_eq!(a.pick(&p), b.pick(&p));
}
