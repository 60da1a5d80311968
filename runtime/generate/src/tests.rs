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

#[test]
fn sampling_is_reproducible_from_the_seed() {
    let target = net(1);
    let small = net(2);
    let o = Options {
        n: 60,
        sampling: Sampling::with_temperature(0.8, 0.95),
        seed: 7,
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
    d.propose(&toks(b"no repeats"), 4, &Sampling::GREEDY, &mut rng, &mut out)
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
