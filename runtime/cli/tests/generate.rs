//! `arca generate` and `arca bench-generate` (issue #7): speculative output equals plain output,
//! llama.cpp's statistics lines, the documented edge cases and refusals.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use arca_runtime::bundle::{self, Bundle, Manifest};
use common::{arca, fails_with, ok};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model(name: &str) -> String {
    repo()
        .join(format!("models/gen/trained/{name}.arcm"))
        .display()
        .to_string()
}

/// `path` with its manifest changed by `edit`, written as `dir/name` (graph and weights kept).
fn edited_bundle(path: &str, dir: &Path, name: &str, edit: impl FnOnce(&mut Manifest)) -> PathBuf {
    let source = Bundle::open(path).unwrap();
    let mut manifest = source.manifest().clone();
    edit(&mut manifest);
    let bytes = bundle::encode(manifest, source.onnx_graph_bytes(), source.payload()).unwrap();
    let out = dir.join(name);
    std::fs::write(&out, bytes).unwrap();
    out
}

fn stdout(out: &std::process::Output) -> Vec<u8> {
    out.stdout.clone()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn speculative_greedy_output_equals_plain_greedy_output() {
    let dir = tempfile::tempdir().unwrap();
    let (t, kd, ada) = (
        model("gen-target"),
        model("gen-draft-kd"),
        model("gen-draft-adaspec"),
    );
    let base = [
        "generate",
        "-m",
        &t,
        "-p",
        "Alice was beginning to get",
        "-n",
        "80",
        "--temp",
        "0",
        "--no-echo",
    ];
    let plain = arca(dir.path(), &base);
    ok(&plain);
    assert_eq!(stdout(&plain).len(), 81, "80 bytes and a newline");
    let err = stderr(&plain);
    assert!(err.contains("decoded   80 tokens in"), "{err}");
    assert!(err.contains("n_predict = 80"), "{err}");
    assert!(!err.contains("n_drafted"), "{err}");
    for extra in [
        vec!["-md", kd.as_str()],
        vec!["--model-draft", ada.as_str(), "--draft-max", "4"],
        vec!["--lookup"],
    ] {
        let mut args = base.to_vec();
        args.extend(&extra);
        let spec = arca(dir.path(), &args);
        ok(&spec);
        assert_eq!(stdout(&spec), stdout(&plain), "{extra:?}");
        let err = stderr(&spec);
        for line in [
            "decoded   80 tokens in",
            "n_drafted = ",
            "n_accept  = ",
            "accept    = ",
        ] {
            assert!(err.contains(line), "{extra:?}: no '{line}' in {err}");
        }
        assert!(
            err.contains("mean accepted tokens per target call"),
            "{err}"
        );
    }
}

#[test]
fn edge_cases_are_defined() {
    let dir = tempfile::tempdir().unwrap();
    let t = model("gen-target");
    // -n 0: the prompt is echoed, nothing generated.
    let out = arca(
        dir.path(),
        &["generate", "-m", &t, "-p", "Hello", "-n", "0"],
    );
    ok(&out);
    assert_eq!(stdout(&out), b"Hello\n");
    assert!(
        stderr(&out).contains("decoded    0 tokens"),
        "{}",
        stderr(&out)
    );
    // An empty prompt is read as a newline, which is not echoed.
    let out = arca(
        dir.path(),
        &["generate", "-m", &t, "-n", "20", "--seed", "1"],
    );
    ok(&out);
    assert_eq!(stdout(&out).len(), 21);
    // A prompt longer than the context (from a file) is read through its last window.
    let long: Vec<u8> =
        std::fs::read(repo().join("tests/data/canterbury/alice29.txt")).unwrap()[..3000].to_vec();
    let path = dir.path().join("long.txt");
    std::fs::write(&path, &long).unwrap();
    let p = path.to_str().unwrap();
    let out = arca(
        dir.path(),
        &[
            "generate",
            "-m",
            &t,
            "-f",
            p,
            "-n",
            "30",
            "--temp",
            "0",
            "--no-echo",
        ],
    );
    ok(&out);
    assert_eq!(stdout(&out).len(), 31);
    // Same output as the prompt's last 512 bytes... (the window starts at a multiple of 256:
    // for 3000 bytes, at 2560, so the model sees the last 440).
    std::fs::write(&path, &long[2560..]).unwrap();
    let tail = arca(
        dir.path(),
        &[
            "generate",
            "-m",
            &t,
            "-f",
            p,
            "-n",
            "30",
            "--temp",
            "0",
            "--no-echo",
        ],
    );
    assert_eq!(stdout(&tail), stdout(&out));
}

#[test]
fn bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = model("gen-target");
    // A draft over another vocabulary.
    let bad = edited_bundle(&model("gen-draft-kd"), dir.path(), "bad.arcm", |m| {
        m.vocab_size = 512;
    });
    let out = arca(
        dir.path(),
        &[
            "generate",
            "-m",
            &t,
            "-md",
            bad.to_str().unwrap(),
            "-p",
            "x",
            "-n",
            "5",
        ],
    );
    fails_with(
        &out,
        "vocabulary of 512 symbols but target 'gen-target' has 256",
    );
    assert!(out.stdout.is_empty());
    // A model that is not a generation model.
    let circuit = repo().join("models/pc/trained/hclt-mnist-M32.arcm");
    let out = arca(
        dir.path(),
        &[
            "generate",
            "-m",
            circuit.to_str().unwrap(),
            "-p",
            "x",
            "-n",
            "5",
        ],
    );
    fails_with(&out, "(kind circuit) is not a generation target or draft");
    // Settings out of range, a missing prompt file.
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t, "--temp=-1"]),
        "not a temperature",
    );
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t, "--top-p", "0"]),
        "not a top-p",
    );
    fails_with(
        &arca(
            dir.path(),
            &["generate", "-m", &t, "-f", "/nonexistent/prompt.txt"],
        ),
        "cannot read prompt file",
    );
    fails_with(
        &arca(dir.path(), &["bench-generate", "-m", &t, "--prompts", "0"]),
        "not a count of at least 1",
    );
}

#[test]
fn bench_generate_reports_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let alice = repo().join("tests/data/canterbury/alice29.txt");
    let out = arca(
        dir.path(),
        &[
            "bench-generate",
            "-m",
            &model("gen-target"),
            "--draft",
            &model("gen-draft-kd"),
            "--from",
            alice.to_str().unwrap(),
            "--prompts",
            "2",
            "--prompt-len",
            "64",
            "-n",
            "48",
            "-o",
            "report.md",
        ],
    );
    ok(&out);
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for row in [
        "| target only |",
        "| draft kd |",
        "| prompt lookup |",
        "| ratio, 64 cached |",
    ] {
        assert!(report.contains(row), "no '{row}' in {report}");
    }
    assert_eq!(report.matches(" 2/2 |").count(), 3, "{report}");
}

fn arith_model(name: &str) -> String {
    repo()
        .join(format!("models/arith/trained/{name}.arcm"))
        .display()
        .to_string()
}

/// The arithmetic workload: a question in the adder's symbols, answered up to its end token
/// (not printed), the same with each draft; refusals for prompts it cannot read, a prose
/// draft for it, and the tract-only `arith` bundle.
#[test]
fn arithmetic_generation_answers_and_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = arith_model("arith-add-padrev-target");
    // 1234567890 + 987654321 = 2222222211, written reversed over 11 digits.
    let question = "1234567890+0987654321=";
    for draft in [
        None,
        Some(arith_model("arith-add-padrev-draft-kd")),
        Some(arith_model("arith-add-padrev-draft-adaspec")),
    ] {
        let mut args = vec!["generate", "-m", &t, "-p", question, "--temp", "0"];
        if let Some(d) = &draft {
            args.extend(["-md", d.as_str()]);
        }
        let out = arca(dir.path(), &args);
        ok(&out);
        assert_eq!(
            String::from_utf8_lossy(&stdout(&out)),
            format!("{question}11222222220\n")
        );
        let err = stderr(&out);
        assert!(err.contains("decoded   12 tokens"), "{err}");
        assert_eq!(err.contains("n_accept"), draft.is_some(), "{err}");
    }
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t, "-p", "12+x="]),
        "character 'x' is not a symbol",
    );
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t]),
        "an empty prompt has no meaning",
    );
    fails_with(
        &arca(
            dir.path(),
            &[
                "generate",
                "-m",
                &t,
                "-md",
                &model("gen-draft-kd"),
                "-p",
                "1+1=",
            ],
        ),
        "vocabulary of 256 symbols but target 'arith-add-padrev-target' has 16",
    );
    // A draft of the same size whose symbols are in another order.
    let draft = arith_model("arith-add-padrev-draft-kd");
    let shuffled = edited_bundle(&draft, dir.path(), "shuffled.arcm", |m| {
        for (k, v) in &mut m.provenance {
            if k == "arith.vocab" {
                *v = v.chars().rev().collect();
            }
        }
    });
    let out = arca(
        dir.path(),
        &[
            "generate",
            "-m",
            &t,
            "-md",
            shuffled.to_str().unwrap(),
            "-p",
            "1+1=",
        ],
    );
    fails_with(&out, "have vocabularies of one size but different symbols");
    assert!(out.stdout.is_empty());
    fails_with(
        &arca(
            dir.path(),
            &[
                "generate",
                "-m",
                &arith_model("arith-add-padrev"),
                "-p",
                "1+1=",
            ],
        ),
        "(kind arith) is not a generation target or draft",
    );
    let out = arca(
        dir.path(),
        &[
            "bench-generate",
            "-m",
            &t,
            "--draft",
            &arith_model("arith-add-padrev-draft-kd"),
            "--prompts",
            "9",
            "-o",
            "report.md",
        ],
    );
    ok(&out);
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        report.contains("9 held-out add problems (2-10 digit operands"),
        "{report}"
    );
    assert!(report.contains("correct for 9 of 9 problems"), "{report}");
    assert_eq!(report.matches(" 9/9 |").count(), 3, "{report}");
}

/// llama.cpp's controls: a reverse prompt cuts the output before it (plain and speculative
/// alike), a repeat penalty keeps speculative greedy output equal to plain, the perf lines and
/// the threads line are printed, and --engine tract / --device cuda are refused by name.
#[test]
fn llama_controls_stop_strings_perf_lines_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let t = model("gen-target");
    let base = [
        "generate",
        "-m",
        &t,
        "-p",
        "Alice was beginning to get",
        "-n",
        "80",
        "--temp",
        "0",
        "--no-echo",
    ];
    let free = arca(dir.path(), &base);
    ok(&free);
    let text = stdout(&free);
    let err = stderr(&free);
    for line in [
        "llama_perf: load time = ",
        "llama_perf: prompt eval time = ",
        " tokens per second)",
        "llama_perf: eval time = ",
        " runs (",
        "llama_perf: total time = ",
        "threads   = 1 (native f32 decoder, single-threaded)",
    ] {
        assert!(err.contains(line), "no '{line}' in {err}");
    }
    // Stop at three bytes of the greedy output that first occur past its start.
    let at = 20;
    let stop = String::from_utf8(text[at..at + 3].to_vec()).unwrap();
    let first = text.windows(3).position(|w| w == stop.as_bytes()).unwrap();
    let kd = model("gen-draft-kd");
    for extra in [vec![], vec!["--lookup"], vec!["-md", kd.as_str()]] {
        let mut args = base.to_vec();
        args.extend(["-r", stop.as_str(), "-t", "4"]);
        args.extend(&extra);
        let out = arca(dir.path(), &args);
        ok(&out);
        assert_eq!(
            stdout(&out),
            [&text[..first], b"\n"].concat(),
            "{extra:?}, stop {stop:?}"
        );
        let err = stderr(&out);
        assert!(
            err.contains("stopped by an end token or a reverse prompt"),
            "{err}"
        );
        assert!(err.contains("-t 4 has no effect"), "{err}");
        assert!(
            err.contains(&format!("n_predict = {}", first + 3)),
            "{extra:?}: {err}"
        );
    }
    // Greedy with a repeat penalty: another output, the same with a draft.
    let mut args = base.to_vec();
    args.extend(["--repeat-penalty", "1.5", "--repeat-last-n", "32"]);
    let plain = arca(dir.path(), &args);
    ok(&plain);
    assert_ne!(stdout(&plain), text);
    assert!(stderr(&plain).contains("sampling: greedy, repeat-penalty 1.5 (last 32)"));
    let ada = model("gen-draft-adaspec");
    args.extend(["-md", ada.as_str()]);
    let spec = arca(dir.path(), &args);
    ok(&spec);
    assert_eq!(stdout(&spec), stdout(&plain));
    // Sampling with the filters is reproducible from the seed.
    let sampled = |seed: &str| {
        let out = arca(
            dir.path(),
            &[
                "generate",
                "-m",
                &t,
                "-p",
                "The",
                "-n",
                "40",
                "--temp",
                "0.9",
                "--top-k",
                "20",
                "--min-p",
                "0.1",
                "--repeat-penalty",
                "1.2",
                "--seed",
                seed,
            ],
        );
        ok(&out);
        assert!(stderr(&out).contains("top-k 20 top-p 0.95 min-p 0.1 temp 0.9 seed"));
        stdout(&out)
    };
    assert_eq!(sampled("3"), sampled("3"));
    // What generation cannot honour is refused, by name.
    fails_with(
        &arca(
            dir.path(),
            &["--engine", "tract", "generate", "-m", &t, "-p", "x"],
        ),
        "--engine tract cannot run",
    );
    fails_with(
        &arca(
            dir.path(),
            &["--device", "cuda", "generate", "-m", &t, "-p", "x"],
        ),
        "--device cuda is not supported by generate",
    );
    fails_with(
        &arca(
            dir.path(),
            &["bench-generate", "--engine", "tract", "-m", &t],
        ),
        "--engine tract cannot run",
    );
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t, "-r", ""]),
        "an empty reverse prompt",
    );
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t, "--repeat-penalty", "0"]),
        "not a repeat penalty",
    );
    fails_with(
        &arca(dir.path(), &["generate", "-m", &t, "--min-p", "2"]),
        "not a probability",
    );
}
