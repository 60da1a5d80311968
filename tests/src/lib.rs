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
