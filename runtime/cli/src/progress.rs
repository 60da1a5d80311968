//! The progress bar on stderr, fed by the codec's progress callback.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over `total` bytes, visible only when `enabled` and stderr is a terminal.
///
/// [`ProgressBar`] is thread-safe, so [`Progress::inc`] can be called from the codec's
/// worker threads.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for one input named `label`.
    pub fn new(label: &str, total: u64, enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(label.to_owned());
        Progress { bar }
    }

    /// A counter for an input of unknown length (a pipe): bytes so far and the rate.
    pub fn open_ended(label: &str, enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let style =
            ProgressStyle::with_template("{prefix} {spinner} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(label.to_owned());
        Progress { bar }
    }

    /// A bar over `total` bytes when it is known, else a counter.
    pub fn maybe(label: &str, total: Option<u64>, enabled: bool) -> Self {
        match total {
            Some(total) => Progress::new(label, total, enabled),
            None => Progress::open_ended(label, enabled),
        }
    }

    /// Adds `bytes` finished bytes.
    pub fn inc(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
