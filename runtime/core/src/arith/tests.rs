use super::task::*;
#[cfg(feature = "tract")]
use super::*;

#[test]
fn spread_problems_take_each_digit_count_in_turn() {
    let spec = ArithSpec {
        op: Op::Add,
        format: Format::PadRev { width: 10 },
        max_digits: 10,
        sentences: None,
    };
    let problems = spec.spread_problems(20);
    assert_eq!(problems.len(), 20);
    let widths: Vec<usize> = problems
        .iter()
        .map(|p| digits(p.a.max(p.b).into()))
        .collect();
    // One-digit addition has no held-out pair, so each round is 2..=10.
    assert_eq!(widths[..9], [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(widths[9..18], widths[..9]);
    assert!(problems.iter().all(Problem::held_out));
    let distinct: std::collections::HashSet<_> = problems.iter().collect();
    assert_eq!(distinct.len(), 20);
}

/// `EXAMPLES` of formats.py.
#[test]
fn formats_match_the_python_examples() -> Result<(), ArithError> {
    let cases: [(u64, u64, char, Format, &str); 11] = [
        (123, 45, '+', Format::Plain, "123+45=168$"),
        (1, 0, '+', Format::Plain, "1+0=1$"),
        (123, 45, '*', Format::Plain, "123*45=5535$"),
        (0, 977, '*', Format::Plain, "0*977=0$"),
        (
            123,
            45,
            '+',
            Format::PadRev { width: 5 },
            "00123+00045=861000$",
        ),
        (
            99999,
            99999,
            '+',
            Format::PadRev { width: 5 },
            "99999+99999=899991$",
        ),
        (7, 5, '+', Format::PadRev { width: 3 }, "007+005=2100$"),
        (
            123,
            45,
            '*',
            Format::PadRev { width: 5 },
            "00123*00045=5355000000$",
        ),
        (
            99999,
            99999,
            '*',
            Format::PadRev { width: 5 },
            "99999*99999=1000089999$",
        ),
        (123, 45, '+', Format::Spaces, "123+45=168$"),
        (
            9_999_999_999,
            1,
            '+',
            Format::PadRev { width: 10 },
            "9999999999+0000000001=00000000001$",
        ),
    ];
    for (a, b, op, format, want) in cases {
        let op = Op::from_word(op.encode_utf8(&mut [0; 4])).expect("op");
        let p = Problem { a, op, b };
        let text = format!("{}{}$", p.question(format)?, p.answer(format)?);
        assert_eq!(text, want);
        assert_eq!(parse_answer(&text, format)?, p.result());
        assert_eq!(decode(&encode(&text)?), text);
    }
    Ok(())
}

/// `HASH_EXAMPLES` and `HELDOUT_EXAMPLES` of formats.py.
#[test]
fn split_matches_the_python_vectors() {
    assert_eq!(pair_hash(0, 0, Op::Add), 0x4821_8226_ff3c_d4bf);
    assert_eq!(pair_hash(123, 45, Op::Add), 0xff86_98d4_8ec5_9ce4);
    assert_eq!(pair_hash(123, 45, Op::Mul), 0xd9d3_7ae4_e711_931f);
    for (a, b, op) in [
        (4, 25, Op::Add),
        (7, 88, Op::Add),
        (12, 34, Op::Add),
        (2, 10, Op::Mul),
        (9, 4, Op::Mul),
    ] {
        assert!(held_out(a, b, op), "{a} {op:?} {b}");
    }
    assert!(!held_out(123, 45, Op::Add));
    // Counts quoted in formats.py.
    let count = |op, lo: u64, hi: u64| {
        (lo..hi)
            .flat_map(|a| (lo..hi).map(move |b| (a, b)))
            .filter(|&(a, b)| held_out(a, b, op))
            .count()
    };
    assert_eq!(count(Op::Add, 0, 10), 0);
    assert_eq!(count(Op::Mul, 0, 10), 1);
    assert_eq!(count(Op::Add, 10, 100), 97);
    assert_eq!(count(Op::Mul, 10, 100), 82);
}

#[test]
fn expressions_parse_or_say_why_not() {
    let p = Problem::parse(" 12345 + 6789 =").expect("parses");
    assert_eq!((p.a, p.op, p.b, p.result()), (12345, Op::Add, 6789, 19134));
    assert_eq!(Problem::parse("3*4").expect("parses").result(), 12);
    for bad in [
        "",
        "12",
        "1+",
        "+1",
        "-1+2",
        "1.5+2",
        "1+2+3",
        "99999999999999999999+1",
    ] {
        let err = Problem::parse(bad).expect_err(bad).to_string();
        assert!(err.starts_with(&format!("cannot read `{bad}`")), "{err}");
    }
    let wide = Problem {
        a: 123_456,
        op: Op::Add,
        b: 1,
    };
    assert!(wide.question(Format::PadRev { width: 5 }).is_err());
    assert_eq!(digits(0), 1);
    assert_eq!(digits(10), 2);
}

/// A 14k-parameter model from the training script's smoke run (`arith-tiny.arcm`, barely
/// trained): what it answers does not matter, only that the runtime decodes it consistently.
#[cfg(feature = "tract")]
#[test]
fn batched_decoding_equals_one_at_a_time() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/arith-tiny.arcm");
    let model = ArithModel::load(&arca_bundle::Bundle::open(path)?)?;
    let spec = model.spec();
    assert_eq!(
        (spec.op, spec.format, spec.max_digits),
        (Op::Add, Format::Plain, 4)
    );
    let problems: Vec<Problem> = [(1, 2), (12, 345), (9999, 9999), (0, 0), (31, 7), (4, 25)]
        .into_iter()
        .map(|(a, b)| Problem { a, op: Op::Add, b })
        .collect();
    let together = model.solve_all(&problems)?;
    for (p, got) in problems.iter().zip(&together) {
        assert_eq!(&model.solve(p)?, got, "{p}");
        assert!(!got.answer.contains('$'), "{got:?}");
    }
    // Problems it cannot take are errors, not guesses.
    for (a, op, b, want) in [
        (2, Op::Mul, 3, "does +, not *"),
        (123_456_789, Op::Add, 1, "reads at most 16"),
    ] {
        let err = model
            .solve(&Problem { a, op, b })
            .err()
            .map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains(want)), "{err:?}");
    }
    let text = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny.arcm");
    let err = ArithSpec::of(&arca_bundle::Bundle::open(text)?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("not an arith one"), "{err}");
    Ok(())
}

/// `EXAMPLES` of context.py: the placeholders filled, the sum and a full stop after.
#[test]
fn sentences_render_like_context_py() {
    let cases = [
        (
            "the sum of {a} and {b} is ",
            123,
            45,
            "ann",
            "apples",
            "the sum of 123 and 45 is 168.",
        ),
        (
            "{n} has {a} {t} and gets {b} more. how many {t} does {n} have now? ",
            7,
            5,
            "kim",
            "eggs",
            "kim has 7 eggs and gets 5 more. how many eggs does kim have now? 12.",
        ),
        (
            "after {a} {t} came {b} more, which makes ",
            999,
            1,
            "bob",
            "cards",
            "after 999 cards came 1 more, which makes 1000.",
        ),
    ];
    for (template, a, b, name, thing, want) in cases {
        let problem = Problem { a, op: Op::Add, b };
        let text = Sentences::render(template, a, b, name, thing) + &Sentences::answer(&problem);
        assert_eq!(text, want);
    }
}

/// A 21k-parameter sentence model from the training script's smoke run (`arith-ctx-tiny.arcm`:
/// `train_arith.py --task add --format spaces --context --max-digits 3 --device cpu
/// --time-budget 20 --d-model 32 --layers 1 --heads 2 --batch 64 --lr 3e-3 --warmup 20
/// --name arith-ctx-tiny`, barely trained): its manifest's lists give the sentences context.py
/// gives, and the runtime decodes it consistently.
#[cfg(feature = "tract")]
#[test]
fn sentence_models_ask_what_python_asks() -> Result<(), Box<dyn std::error::Error>> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/arith-ctx-tiny.arcm");
    let model = ArithModel::load(&arca_bundle::Bundle::open(path)?)?;
    let spec = model.spec();
    let sentences = spec.sentences.as_ref().ok_or("no sentences")?;
    assert_eq!(
        (spec.op, spec.format, spec.vocab_size()),
        (Op::Add, Format::Spaces, 46)
    );
    assert_eq!(
        (sentences.training.len(), sentences.held_out.len()),
        (16, 6)
    );
    // The vectors of test_formats.py's test_context_examples_and_eval_prompts.
    for (a, b, templates, want) in [
        (93, 52, Templates::HeldOut, "how much is 93 plus 52? it is "),
        (
            61,
            71,
            Templates::HeldOut,
            "hugo found 61 eggs and then 71 more, so hugo has ",
        ),
        (
            930,
            407,
            Templates::Training,
            "we had 930 stamps, then 407 more came. now we have ",
        ),
        (
            12345,
            67890,
            Templates::HeldOut,
            "put 12345 and 67890 together and you have ",
        ),
    ] {
        let problem = Problem { a, op: Op::Add, b };
        assert_eq!(sentences.prompt(&problem, templates), want);
    }
    let text = "the sum of 12 and 7 is ";
    assert_eq!(sentences.decode(&sentences.encode(text)?), text);
    for bad in ["The sum", "costs $5", "a_b"] {
        let err = sentences.encode(bad).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("is not one of this model's tokens")),
            "{bad}: {err:?}"
        );
    }

    let problems: Vec<Problem> = [(1, 2), (12, 345), (999, 999), (0, 0), (31, 7)]
        .into_iter()
        .map(|(a, b)| Problem { a, op: Op::Add, b })
        .collect();
    for phrasing in [
        Phrasing::Symbols,
        Phrasing::Sentence(Templates::HeldOut),
        Phrasing::Sentence(Templates::Training),
    ] {
        let together = model.solve_phrased(&problems, phrasing)?;
        for (p, got) in problems.iter().zip(&together) {
            let (question, _) = spec.ask(p, phrasing)?;
            assert_eq!(&model.continue_text(&question)?, got, "{p} {phrasing:?}");
        }
    }
    // Too long for its positions: an error, not a guess.
    let long = "a".repeat(400);
    assert!(model.continue_text(&long).is_err());
    assert!(model.continue_text("").is_err());
    // A model without sentences cannot be asked in one.
    let plain = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/arith-tiny.arcm");
    let plain = ArithModel::load(&arca_bundle::Bundle::open(plain)?)?;
    let err = plain
        .solve_phrased(&problems[..1], Phrasing::Sentence(Templates::HeldOut))
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("not trained on sentences")));
    Ok(())
}

/// Issue #8's bar for the shipped padded+reversed adder: at least 99% exact on fresh
/// (held-out) problems of 2 to 10 digits (no 1-digit pair is held out; all 100 are checked
/// as seen pairs), here on 40 problems per digit count with a seed the tables do not use.
#[cfg(all(feature = "tract", feature = "models"))]
#[test]
fn shipped_padrev_adder_is_exact() -> Result<(), Box<dyn std::error::Error>> {
    let name = crate::shipped::default_arith("add").ok_or("no shipped adder")?;
    let model = ArithModel::load(&crate::shipped::resolve(name)?)?;
    assert_eq!(model.spec().format, Format::PadRev { width: 10 });
    let (mut right, mut total) = (0, 0);
    let mut problems: Vec<Problem> = (0..100)
        .map(|i| Problem {
            a: i / 10,
            op: Op::Add,
            b: i % 10,
        })
        .collect();
    for d in 2..=10 {
        problems.extend(eval_problems(Op::Add, d, 40, 12345));
    }
    for (p, s) in problems.iter().zip(model.solve_all(&problems)?) {
        total += 1;
        if s.is_exact(p, model.spec().format) {
            right += 1;
        } else {
            eprintln!("{p}: {s:?}");
        }
    }
    assert!(right * 100 >= total * 99, "{right}/{total} exact");
    Ok(())
}

#[test]
fn eval_sets_are_held_out_and_deterministic() {
    assert!(eval_problems(Op::Add, 1, 10, 0).is_empty());
    assert_eq!(
        eval_problems(Op::Mul, 1, 10, 0),
        [Problem {
            a: 9,
            op: Op::Mul,
            b: 4
        }]
    );
    assert_eq!(eval_problems(Op::Add, 2, 500, 0).len(), 97);
    for d in [2, 3, 8, 10] {
        let set = eval_problems(Op::Add, d, 50, 7);
        assert_eq!(set.len(), 50);
        assert_eq!(set, eval_problems(Op::Add, d, 50, 7));
        for p in &set {
            assert!(p.held_out());
            assert_eq!(
                (digits(p.a.into()), digits(p.b.into())),
                (d as usize, d as usize)
            );
        }
    }
    assert_ne!(
        eval_problems(Op::Add, 5, 20, 1),
        eval_problems(Op::Add, 5, 20, 2)
    );
}

#[test]
fn answers_that_are_not_numbers_are_errors() {
    assert!(parse_answer("", Format::Plain).is_err());
    assert!(parse_answer("12+3=", Format::Plain).is_err());
    assert!(parse_answer("1 2$", Format::Plain).is_err());
    assert_eq!(parse_answer("12+3=15$__", Format::Plain), Ok(15));
    assert_eq!(parse_answer("51$", Format::PadRev { width: 2 }), Ok(15));
}
