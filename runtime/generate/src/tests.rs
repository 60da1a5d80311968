use super::*;

fn toks(text: &[u8]) -> Vec<u32> {
    text.iter().map(|&b| u32::from(b)).collect()
}

fn net(seed: u64) -> Net {
    Net::random(
        NetConfig {
            mlp_mult: 2,
            ..NetConfig::gpt(32, 2, 2, 48)
        },
        seed,
    )
}

/// Generates with a byte model (an empty prompt read as a newline); the text and the stats.
fn text(
    target: &Net,
    drafter: Option<&mut dyn Drafter>,
    prompt: &[u8],
    o: &Options,
) -> (Vec<u8>, Stats) {
    let o = Options {
        empty_prompt: Tokenizer::Bytes.empty_prompt(),
        ..o.clone()
    };
    let mut out = Vec::new();
    let stats = generate(
        &mut target.decoder(),
        drafter,
        &Tokenizer::Bytes,
        &toks(prompt),
        &o,
        &mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        },
    )
    .unwrap();
    (out, stats)
}

/// [`text`], which must give all `n` bytes.
fn run(
    target: &Net,
    drafter: Option<&mut dyn Drafter>,
    prompt: &[u8],
    o: &Options,
) -> (Vec<u8>, Stats) {
    let (out, stats) = text(target, drafter, prompt, o);
    assert_eq!(out.len(), o.n);
    (out, stats)
}

#[test]
fn windows_hold_half_to_all_of_the_context() {
    for p in 0..2000 {
        let s = window_start(p, 512);
        assert!(p - s <= 512, "{p}");
        assert!(p <= 512 || p - s > 256, "{p}");
        assert_eq!(s % 256, 0);
    }
}

/// Greedy speculative output is the target's greedy output, for a model draft and prompt
/// lookup, fixed and adaptive lengths, across window changes (context 48, 150 bytes).
#[test]
fn greedy_speculative_equals_greedy_target() {
    let target = net(1);
    let small = net(2);
    for prompt in [&b""[..], b"a", b"abcabcabcabc", &[b'x'; 70]] {
        let o = Options {
            n: 150,
            ..Options::default()
        };
        let (want, _) = run(&target, None, prompt, &o);
        for k in [1, 2, 5, 16] {
            let o = Options {
                draft_max: k,
                draft_start: Some(k),
                fixed_length: k == 5,
                ..o.clone()
            };
            let mut d = ModelDrafter::new(small.decoder(), 0.0);
            let (got, s) = run(&target, Some(&mut d), prompt, &o);
            assert_eq!(got, want, "model draft, k {k}, prompt {prompt:?}");
            assert!(s.drafted > 0);
            let mut d = LookupDrafter::default();
            let (got, _) = run(&target, Some(&mut d), prompt, &o);
            assert_eq!(got, want, "lookup, k {k}, prompt {prompt:?}");
        }
        // The target drafting for itself is always right.
        let mut d = ModelDrafter::new(target.decoder(), 0.0);
        let (got, s) = run(&target, Some(&mut d), prompt, &o);
        assert_eq!(got, want);
        assert_eq!(s.accepted, s.drafted);
    }
}

/// Speculative decoding with a stop token (the arithmetic models' END) on the arithmetic
/// architecture: output equals target-only output, ends before the stop token, and counts
/// it as decoded.
#[test]
fn stop_token_ends_plain_and_speculative_output_alike() {
    let cfg = |seed| {
        let c = NetConfig {
            vocab: 16,
            arch: net::Arch::ARITH,
            ..NetConfig::gpt(32, 2, 2, 34)
        };
        Net::random(c, seed)
    };
    let (target, small) = (cfg(11), cfg(12));
    let symbols = Tokenizer::Symbols {
        chars: "0123456789+*= $_".chars().collect(),
        end: None,
    };
    let prompt: Vec<u32> = (0..12u32).map(|i| (i * 5 + 1) % 13).collect();
    let collect = |drafter: Option<&mut dyn Drafter>, o: &Options| {
        let mut out = Vec::new();
        let stats = generate(
            &mut target.decoder(),
            drafter,
            &symbols,
            &prompt,
            o,
            &mut |b: &[u8]| {
                out.extend_from_slice(b);
                Ok(())
            },
        )
        .unwrap();
        (out, stats)
    };
    let free = Options {
        n: 20,
        ..Options::default()
    };
    let (all, _) = collect(None, &free);
    assert_eq!(all.len(), 20);
    // Stop at the target's fourth token: its first occurrence ends the output.
    let stop = symbols.encode(&all[3..4]).unwrap()[0];
    let cut = all.iter().position(|&t| t == all[3]).unwrap();
    let o = Options {
        stop: vec![stop],
        ..free.clone()
    };
    let (want, stats) = collect(None, &o);
    assert_eq!(want, all[..cut]);
    assert_eq!(stats.decoded, cut + 1);
    assert!(stats.stopped);
    for k in [1, 3, 8] {
        let o = Options {
            draft_max: k,
            draft_start: Some(k),
            ..o.clone()
        };
        let mut d = ModelDrafter::new(small.decoder(), 0.0);
        let (got, s) = collect(Some(&mut d), &o);
        assert_eq!(got, want, "model draft, k {k}");
        assert_eq!(s.decoded, cut + 1);
        let mut d = ModelDrafter::new(target.decoder(), 0.0);
        let (got, s) = collect(Some(&mut d), &o);
        assert_eq!(got, want, "self draft, k {k}");
        assert_eq!(s.accepted, s.drafted);
    }
    // An empty prompt needs a start token; a token outside the vocabulary is refused.
    let sink = &mut |_: &[u8]| Ok(());
    let err = generate(&mut target.decoder(), None, &symbols, &[], &o, sink).unwrap_err();
    assert!(matches!(err, GenError::EmptyPrompt { .. }), "{err}");
    let err = generate(&mut target.decoder(), None, &symbols, &[1, 200], &o, sink).unwrap_err();
    assert!(matches!(err, GenError::Token { token: 200, .. }), "{err}");
    let o = Options {
        empty_prompt: Some(12),
        n: 3,
        ..o
    };
    let stats = generate(&mut target.decoder(), None, &symbols, &[], &o, sink).unwrap();
    assert_eq!(stats.prompt_tokens, 0);
}

/// With a drafter, the sampled text depends on the seed and on the draft lengths: these are
/// pinned here (`draft_start`), since the measured first length depends on how busy the machine
/// is (an unpinned run failed once, under load, in the full test suite).
#[test]
fn sampling_is_reproducible_from_the_seed() {
    let target = net(1);
    let small = net(2);
    let o = Options {
        n: 60,
        sampling: Sampling::with_temperature(0.8, 0.95),
        seed: 7,
        draft_start: Some(4),
        ..Options::default()
    };
    let mut d = ModelDrafter::new(small.decoder(), 0.0);
    let (a, _) = run(&target, Some(&mut d), b"seed", &o);
    let mut d = ModelDrafter::new(small.decoder(), 0.0);
    let (b, _) = run(&target, Some(&mut d), b"seed", &o);
    assert_eq!(a, b);
    let (c, _) = run(&target, None, b"seed", &Options { seed: 8, ..o });
    assert_ne!(a, c);
}

#[test]
fn zero_tokens_generates_nothing() {
    let target = net(1);
    let (out, s) = run(
        &target,
        None,
        b"abc",
        &Options {
            n: 0,
            ..Options::default()
        },
    );
    assert!(out.is_empty());
    assert_eq!((s.decoded, s.target_calls, s.prompt_tokens), (0, 0, 2));
}

#[test]
fn lookup_copies_what_followed_the_suffix() {
    let mut d = LookupDrafter::default();
    let mut out = Draft::default();
    let mut rng = Rng::new(0);
    let seq = toks(b"the cat sat. the cat");
    d.propose(&seq, 4, &Sampling::GREEDY, &mut rng, &mut out)
        .unwrap();
    assert_eq!(out.tokens, toks(b" sat"));
    d.propose(
        &toks(b"no repeats"),
        4,
        &Sampling::GREEDY,
        &mut rng,
        &mut out,
    )
    .unwrap();
    assert!(out.tokens.is_empty());
}

#[test]
fn draft_length_grows_and_shrinks() {
    let mut l = DraftLength::fixed(3, 5);
    l.update(3, 3, 3);
    assert_eq!(l.get(), 4);
    l.update(4, 4, 1);
    assert_eq!(l.get(), 3);
    l.update(3, 2, 2); // stopped early by confidence, all accepted: unchanged
    assert_eq!(l.get(), 3);
    let cost = CallCost {
        seconds: vec![1.0, 1.05, 1.1, 1.15, 1.2, 3.0, 6.0],
    };
    // The prior sets the start: a draft measured to agree on every token starts where the
    // cost curve caps it, one that rarely agrees at one token.
    assert_eq!(DraftLength::from_costs(&cost, 0.0, 1.0, 6).get(), 4);
    assert_eq!(DraftLength::from_costs(&cost, 0.0, 0.05, 6).get(), 1);
    let cheap = CallCost {
        seconds: vec![1.0; 7],
    };
    assert_eq!(DraftLength::from_costs(&cheap, 0.0, 1.0, 6).get(), 6);
    let mut l = DraftLength::from_costs(&cost, 0.0, PRIOR_ACCEPT, 6);
    assert_eq!(l.get(), 4);
    // Rejections pull the estimate (and the length) down, whole drafts push them up, and
    // the cost curve caps the length (a 5-draft call costs 2.5x a 4-draft one).
    for _ in 0..5 {
        l.update(4, 4, 0);
    }
    assert!(l.accept_rate().unwrap() < 0.3 && l.get() < 4, "{l:?}");
    for _ in 0..30 {
        let k = l.get();
        l.update(k, k, k);
    }
    assert!(l.accept_rate().unwrap() > 0.9, "{l:?}");
    assert_eq!(l.get(), 4);
}

/// A Markov model over a large vocabulary (logits depend on the last token only, by a hash):
/// a [`Decoder`] that is not a [`Net`], with tokens past 255 and past `u16`.
#[derive(Debug)]
struct Markov {
    seed: u64,
    vocab: usize,
    context: usize,
    cache: Vec<u32>,
    calls: usize,
}

impl Markov {
    fn new(seed: u64, vocab: usize) -> Markov {
        Markov {
            seed,
            vocab,
            context: 40,
            cache: Vec::new(),
            calls: 0,
        }
    }

    fn logit(&self, prev: u32, next: usize) -> f32 {
        let mut h = self.seed ^ (u64::from(prev) << 32) ^ next as u64;
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        // Mostly flat, about 20 favourites far ahead (the same after every token, so greedy
        // output loops): a peaked law, as a language model's.
        let u = (h >> 40) as f32 / (1u64 << 24) as f32;
        if next.is_multiple_of((self.vocab / 20).max(1)) {
            6.0 + 4.0 * u
        } else {
            4.0 * u - 2.0
        }
    }
}

impl Decoder for Markov {
    fn name(&self) -> &str {
        "markov"
    }
    fn vocab(&self) -> usize {
        self.vocab
    }
    fn context_len(&self) -> usize {
        self.context
    }
    fn cached(&self) -> usize {
        self.cache.len()
    }
    fn truncate(&mut self, len: usize) {
        self.cache.truncate(len);
    }
    fn forward(&mut self, tokens: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
        if self.cache.len() + tokens.len() > self.context {
            return Err(GenError::Window {
                model: "markov".into(),
                len: self.cache.len() + tokens.len(),
                context_len: self.context,
            });
        }
        self.calls += 1;
        out.clear();
        for &t in tokens {
            out.extend((0..self.vocab).map(|v| self.logit(t, v)));
        }
        self.cache.extend_from_slice(tokens);
        Ok(())
    }
}

/// Token `t` reads as `<t>`, so tokens are several bytes and stop strings can span them.
struct Angle;

impl TextTokenizer for Angle {
    fn encode(&self, _: &[u8]) -> Result<Vec<u32>, GenError> {
        Ok(Vec::new())
    }
    fn decode(&self, tokens: &[u32]) -> Vec<u8> {
        tokens
            .iter()
            .flat_map(|t| format!("<{t}>").into_bytes())
            .collect()
    }
    fn vocab(&self) -> usize {
        70_000
    }
    fn eos(&self) -> Option<u32> {
        None
    }
    fn describe(&self) -> String {
        "angle".into()
    }
    fn fingerprint(&self) -> u64 {
        1
    }
}

fn markov_text(
    target: &mut dyn Decoder,
    drafter: Option<&mut dyn Drafter>,
    prompt: &[u32],
    o: &Options,
) -> (String, Stats) {
    let mut out = Vec::new();
    let stats = generate(target, drafter, &Angle, prompt, o, &mut |b: &[u8]| {
        out.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

/// Any decoder, any vocabulary: a 70,000-token model (prompt tokens past `u16`) decodes
/// greedily to the same text plain
/// and speculative (a model draft of another seed, prompt lookup, itself), past window
/// changes, with and without a repeat penalty; a stop string spanning tokens cuts all of them
/// at its first occurrence.
#[test]
fn a_large_vocabulary_decoder_decodes_alike_plain_and_speculative() {
    let prompt = [69_000, 7, 300, 69_000, 7];
    for penalty in [1.0, 2.5] {
        let o = Options {
            n: 90,
            sampling: Sampling {
                repeat_penalty: penalty,
                repeat_last_n: 16,
                ..Sampling::GREEDY
            },
            ..Options::default()
        };
        let mut target = Markov::new(1, 70_000);
        let (want, s) = markov_text(&mut target, None, &prompt, &o);
        assert_eq!(s.decoded, 90);
        assert!(want.matches('<').count() == 90, "{want}");
        assert!(
            want.split(['<', '>'])
                .filter_map(|t| t.parse::<u32>().ok())
                .any(|t| t > 255),
            "{want}"
        );
        for k in [1, 3, 7] {
            let o = Options {
                draft_max: k,
                draft_start: Some(k),
                ..o.clone()
            };
            let mut draft = ModelDrafter::new(Markov::new(2, 70_000), 0.0);
            let (got, _) = markov_text(&mut target, Some(&mut draft), &prompt, &o);
            assert_eq!(got, want, "penalty {penalty}, k {k}");
            let (got, _) = markov_text(
                &mut target,
                Some(&mut LookupDrafter::default()),
                &prompt,
                &o,
            );
            assert_eq!(got, want, "lookup, penalty {penalty}, k {k}");
            let mut itself = ModelDrafter::new(Markov::new(1, 70_000), 0.0);
            let (got, s) = markov_text(&mut target, Some(&mut itself), &prompt, &o);
            assert_eq!(got, want, "self, penalty {penalty}, k {k}");
            assert_eq!(s.accepted, s.drafted, "self, penalty {penalty}, k {k}");
        }
        // A stop string across a token boundary: the end of one token and the start of the next.
        let at = want.match_indices('<').nth(30).map(|(i, _)| i).unwrap();
        let stop = &want[at - 2..at + 3];
        let first = want.find(stop).unwrap();
        let tokens = want[..first + stop.len()].matches('>').count() + 1;
        let so = Options {
            stop_strings: vec![b"never".to_vec(), stop.as_bytes().to_vec()],
            ..o.clone()
        };
        for k in [0, 4] {
            let so = Options {
                draft_start: (k > 0).then_some(k),
                ..so.clone()
            };
            let mut draft = ModelDrafter::new(Markov::new(2, 70_000), 0.0);
            let drafter: Option<&mut dyn Drafter> = if k > 0 { Some(&mut draft) } else { None };
            let (got, s) = markov_text(&mut target, drafter, &prompt, &so);
            assert_eq!(got, want[..first], "stop {stop:?}, k {k}");
            assert!(s.stopped);
            assert_eq!(s.decoded, tokens, "stop {stop:?}, k {k}");
        }
    }
    // The penalty changes greedy output (the model loops without it).
    let mut target = Markov::new(1, 70_000);
    let o = Options {
        n: 60,
        ..Options::default()
    };
    let (free, _) = markov_text(&mut target, None, &prompt, &o);
    let o = Options {
        sampling: Sampling {
            repeat_penalty: 2.5,
            repeat_last_n: 16,
            ..Sampling::GREEDY
        },
        ..o
    };
    let (penalized, _) = markov_text(&mut target, None, &prompt, &o);
    assert_ne!(free, penalized);
}

/// A backend that returns the wrong number of logits is an error, not a panic.
#[test]
fn a_decoder_with_the_wrong_row_count_is_refused() {
    struct Short;
    impl Decoder for Short {
        fn name(&self) -> &str {
            "short"
        }
        fn vocab(&self) -> usize {
            10
        }
        fn context_len(&self) -> usize {
            16
        }
        fn cached(&self) -> usize {
            0
        }
        fn truncate(&mut self, _: usize) {}
        fn forward(&mut self, _: &[u32], out: &mut Vec<f32>) -> Result<(), GenError> {
            out.clear();
            out.push(0.0);
            Ok(())
        }
    }
    let o = Options {
        n: 4,
        ..Options::default()
    };
    let err = generate(
        &mut Short,
        None,
        &Angle,
        &[1, 2],
        &o,
        &mut |_: &[u8]| Ok(()),
    )
    .unwrap_err();
    assert!(
        matches!(err, GenError::Backend { .. }) && err.to_string().starts_with("model 'short': "),
        "{err}"
    );
}

/// Degrees of freedom 1..=12: the 99.9% quantiles of chi-square.
const CHI2_999: [f64; 12] = [
    10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26, 32.91,
];

/// Pearson's statistic of `counts` against `p` over the cells `p` gives mass, and the cells.
fn chi_square(counts: &[u64], p: &[f64]) -> (f64, usize) {
    let n: u64 = counts.iter().sum();
    let mut stat = 0.0;
    let mut cells = 0;
    for (&c, &pv) in counts.iter().zip(p) {
        if pv == 0.0 {
            assert_eq!(c, 0, "a token the filters removed was emitted");
        } else {
            let e = pv * n as f64;
            stat += (c as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    (stat, cells)
}

/// Speculative sampling with top-k, min-p and a repeat penalty emits tokens distributed as the
/// target's filtered law: the first token after the prompt (the penalty at work on the
/// prompt's tokens) and the second after the most frequent first one (the penalty then covers
/// the first token too, known only inside the verify call): chi-square against the 99.9%
/// quantile, 20,000 generations each for a model draft, the target drafting for itself (so
/// the second token is nearly always verified in the call of the first) and prompt lookup.
#[test]
fn speculative_sampling_with_filters_follows_the_filtered_target() {
    let vocab = 64;
    let sampling = Sampling {
        temperature: 0.9,
        top_k: 6,
        top_p: 0.98,
        min_p: 0.02,
        repeat_penalty: 3.0,
        repeat_last_n: 8,
    };
    let mut target = Markov::new(5, vocab);
    // A prompt holding the target's favourites after its last token, so the penalty matters.
    let last = 9u32;
    let mut row: Vec<f32> = Vec::new();
    target.forward(&[last], &mut row).unwrap();
    let mut order: Vec<u32> = (0..vocab as u32).collect();
    order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
    let prompt = vec![order[0], last, order[1], 40, last];
    let mut p1 = Vec::new();
    sampling.probs(&row, &prompt, &mut p1);
    let mut unpenalized = Vec::new();
    Sampling {
        repeat_penalty: 1.0,
        ..sampling
    }
    .probs(&row, &prompt, &mut unpenalized);
    assert!(p1[order[0] as usize] < unpenalized[order[0] as usize]);
    assert!(p1.iter().filter(|&&p| p > 0.0).count() <= 6);

    let draws = 20_000u64;
    for kind in ["model", "self", "lookup"] {
        let mut first = vec![0u64; vocab];
        let mut seconds: Vec<Vec<u64>> = vec![vec![0; vocab]; vocab];
        for seed in 0..draws {
            let o = Options {
                n: 3,
                sampling,
                seed,
                draft_max: 3,
                draft_start: Some(3),
                fixed_length: true,
                ..Options::default()
            };
            let mut model = ModelDrafter::new(Markov::new(6, vocab), 0.0);
            let mut itself = ModelDrafter::new(Markov::new(5, vocab), 0.0);
            let mut lookup = LookupDrafter {
                max_ngram: 1,
                min_ngram: 1,
            };
            let drafter: &mut dyn Drafter = match kind {
                "model" => &mut model,
                "self" => &mut itself,
                _ => &mut lookup,
            };
            let (text, _) = markov_text(&mut target, Some(drafter), &prompt, &o);
            let t: Vec<usize> = text
                .split(['<', '>'])
                .filter_map(|t| t.parse().ok())
                .collect();
            first[t[0]] += 1;
            seconds[t[0]][t[1]] += 1;
        }
        let (x, cells) = chi_square(&first, &p1);
        assert!(
            x < CHI2_999[cells - 2],
            "{kind}: first token chi-square {x:.1} over {cells} cells; {first:?} against {p1:?}"
        );
        let t0 = (0..vocab).max_by_key(|&t| first[t]).unwrap();
        let mut row2 = Vec::new();
        target.truncate(0);
        target.forward(&[t0 as u32], &mut row2).unwrap();
        let mut history = prompt.clone();
        history.push(t0 as u32);
        let mut p2 = Vec::new();
        sampling.probs(&row2, &history, &mut p2);
        // The test can fail: without the first token in the history the law is another.
        let mut stale = Vec::new();
        sampling.probs(&row2, &prompt, &mut stale);
        let distance: f64 = p2.iter().zip(&stale).map(|(a, b)| (a - b).abs()).sum();
        assert!(distance > 0.2, "{distance}");
        let (x, cells) = chi_square(&seconds[t0], &p2);
        if cells >= 2 {
            assert!(
                x < CHI2_999[cells - 2],
                "{kind}: second token chi-square {x:.1} over {cells} cells"
            );
        }
    }
}
