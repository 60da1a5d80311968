//! [`Ui`]: how chatty to be and how to load models, from the global flags.

/// How chatty to be, from the global flags.
pub struct Ui {
    /// `-v` count.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// `--no-progress`.
    pub no_progress: bool,
    /// `--engine`.
    pub engine: arca_runtime::Engine,
    /// `--device`.
    pub device: arca_runtime::Device,
}

impl Ui {
    /// How to load networks (`--engine`, `--device`).
    pub fn load_options(&self) -> arca_runtime::LoadOptions {
        arca_runtime::LoadOptions {
            device: self.device,
            engine: self.engine,
        }
    }

    /// Whether a progress bar may be shown (it still needs stderr to be a terminal).
    pub fn progress(&self) -> bool {
        !self.quiet && !self.no_progress
    }
}
