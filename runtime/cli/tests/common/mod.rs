//! What the CLI test files share: running the `arca` binary and checking its outcome.

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test.
pub const ARCA: &str = env!("CARGO_BIN_EXE_arca");

/// Runs `arca ARGS` in `dir`, without the caller's `RUST_LOG`.
pub fn arca(dir: &Path, args: &[&str]) -> Output {
    Command::new(ARCA)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run arca")
}

/// Asserts success, showing stderr otherwise.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "arca failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails with status 1 and an `arca: ...` message containing `needle`, without panicking.
pub fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
