//! What a model runs on and how it is loaded: [`Device`], [`Engine`], [`LoadOptions`], and the
//! errors of loading and running ([`EngineError`]).

use std::fmt;

/// Number of logits per context of a byte model.
pub const BYTE_SYMBOLS: usize = 256;

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// tract on the CPU.
    #[default]
    Cpu,
    /// tract-cuda on an NVIDIA GPU (needs the `cuda` feature, a GPU and its driver and
    /// libraries at run time).
    Cuda,
    /// CUDA when this build has it and a usable GPU is present, else the CPU.
    Auto,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Auto => "auto",
        })
    }
}

/// Which CPU engine evaluates a model.
///
/// Both give bit-identical logits for integer-exact models (the native engine only accepts
/// graphs whose integer arithmetic it can prove exact; see `engine/native`), so streams do
/// not depend on the choice; it only changes speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The native integer engine when the graph allows it, else tract.
    #[default]
    Auto,
    /// The native integer engine; loading fails if the graph is not an integer MLP it can run.
    Native,
    /// tract, always.
    Tract,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Auto => "auto",
            Engine::Native => "native",
            Engine::Tract => "tract",
        })
    }
}

/// How [`TextModel::load_with`](crate::engine::TextModel::load_with) builds a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// Where the model runs.
    pub device: Device,
    /// Which engine runs it on the CPU.
    pub engine: Engine,
}

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The device asked for is not compiled in or not present.
    #[error("device `{device}` is not available: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: Device,
        /// Why not.
        reason: String,
    },
    /// The bundle's graph or manifest does not follow the contract of the model type.
    #[error("model `{model}` does not fit: {reason}")]
    Contract {
        /// Manifest name.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// tract refused the graph or failed to run it.
    #[error("tract failed to {stage} model `{model}`: {message}")]
    Tract {
        /// Manifest name.
        model: String,
        /// What tract was doing (parse, optimize, run...).
        stage: &'static str,
        /// tract's error chain.
        message: String,
    },
    /// The caller's input does not match the model.
    #[error("bad input: {0}")]
    Input(String),
    /// This build leaves out what the request needs (the `tract` or `cuda` feature).
    #[error("{0}")]
    NotBuilt(String),
}
