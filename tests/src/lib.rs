//! Shared helpers for arca's end-to-end tests: where the workspace, the committed corpora and
//! the shared evaluation data are, and a loaded default model.
//!
//! The command-line tests live beside the binary (`runtime/cli/tests/`, where Cargo exposes the
//! binary's path); this crate holds the corpus-level tests that call the library directly.
//!
//! ```no_run
//! let files = arca_tests::corpus_files(&arca_tests::workspace_root().join("tests/data/canterbury"));
//! assert!(!files.is_empty());
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The shared data folder (`../shared/data` beside the workspace), if it exists.
pub fn shared_data() -> Option<PathBuf> {
    let dir = workspace_root().join("../shared/data");
    dir.is_dir().then_some(dir)
}

/// The regular files directly inside `dir`, sorted by name; empty if `dir` is missing.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `job` on every file, largest first, one file at a time per core (the slow ones start
/// first so the cores finish together); results come back in completion order.
pub fn on_every_core<R: Send>(files: &[PathBuf], job: impl Fn(&Path) -> R + Sync) -> Vec<R> {
    let mut order: Vec<&PathBuf> = files.iter().collect();
    order.sort_by_key(|f| std::cmp::Reverse(f.metadata().map(|m| m.len()).unwrap_or(0)));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(path) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = job(path);
                    results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Bits per byte: `8 * compressed / original` (0 for an empty original).
pub fn bits_per_byte(compressed: usize, original: usize) -> f64 {
    if original == 0 {
        0.0
    } else {
        8.0 * compressed as f64 / original as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_corpus_is_there() {
        let files = corpus_files(&workspace_root().join("tests/data/canterbury"));
        assert_eq!(files.len(), 11, "{files:?}");
    }

    #[test]
    fn bpb() {
        assert_eq!(bits_per_byte(1, 8), 1.0);
        assert_eq!(bits_per_byte(5, 0), 0.0);
    }
}

/// The README's Rust snippets, run as doctests (the C snippet is compiled and run by
/// `runtime/capi/tests/c_example.rs`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;
