//! `examples/c/roundtrip.c` and the README's C snippet, compiled with `cc -Wall -Werror` against
//! the committed header and this crate's static library, then run: a file compressed through
//! the streaming encoder equals `arca compress`'s output for it, decodes back through the
//! streaming decoder, and a damaged stream is refused with `ARCA_STATUS_CORRUPT` and nothing
//! handed over.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder cargo put this test's dependencies in (`target/<profile>`), where `libarca.a` is.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/c_example-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Builds the static library (and `arca`), then compiles `source` against it into `exe`.
fn compile(root: &Path, source: &Path, exe: &Path) {
    // `cargo test` builds this crate as an rlib only; the static library C links is built
    // here, in the same profile (quick when it is fresh; the first time it compiles
    // arca-runtime once more, with the features of a plain build), and `arca` with it when no
    // other test built it.
    let release = profile_dir().ends_with("release");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-q", "-p", "arca-capi"]);
    if !profile_dir().join("arca").exists() {
        build.args(["-p", "arca-cli"]);
    }
    if release {
        build.arg("--release");
    }
    let status = build.current_dir(root).status().expect("cargo build");
    assert!(status.success(), "cargo build -p arca-capi failed");
    let lib = profile_dir().join("libarca.a");
    assert!(lib.exists(), "{} was not built", lib.display());
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let built = Command::new(&cc)
        .args(["-Wall", "-Werror", "-std=c11", "-I"])
        .arg(root.join("runtime/capi/include"))
        .arg(source)
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-Wl,-z,noexecstack", "-o"])
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        built.status.success(),
        "{cc} failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&built.stderr)
    );
}

#[test]
fn the_c_example_round_trips_and_refuses_damage() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("roundtrip");
    compile(&root, &root.join("examples/c/roundtrip.c"), &exe);
    let input = root.join("tests/data/canterbury/grammar.lsp");
    let packed = dir.path().join("grammar.lsp.arca");
    let run = Command::new(&exe)
        .arg(&input)
        .arg(&packed)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    // The same stream the command line writes.
    let cli = Command::new(profile_dir().join("arca"))
        .args(["compress", "-c"])
        .arg(&input)
        .output()
        .expect("arca compress");
    assert!(cli.status.success());
    assert!(std::fs::read(&packed).expect("packed") == cli.stdout);
}

#[test]
fn the_readme_c_snippet_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme.find("```c\n").expect("a ```c block in the README") + 5;
    let len = readme[start..].find("```").expect("its end");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("hello.c");
    std::fs::write(&source, &readme[start..start + len]).expect("write hello.c");
    let exe = dir.path().join("hello");
    compile(&root, &source, &exe);
    let run = Command::new(&exe).output().expect("run hello");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.ends_with("back: Compressed by a neural network, from C.\n"),
        "{stdout}"
    );
}
