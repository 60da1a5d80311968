//! [`TextModel`]: a byte-level bundle built once (native engine or tract) and called with any
//! batch of contexts.

use std::fmt;

use arca_bundle::Bundle;

use super::config::*;
use super::native;
use super::onnx;
#[cfg(feature = "tract")]
use super::tract_backend;

/// What a build without the `tract` feature says when a model or device needs tract.
#[cfg(not(feature = "tract"))]
const NO_TRACT: &str = "this build of arca has no tract engine (build with the `tract` feature, \
     on by default)";

enum Backend {
    /// The native integer engine (any build).
    Native(native::IntMlp),
    /// tract, on the CPU or a GPU.
    #[cfg(feature = "tract")]
    Tract(tract_backend::Plan),
}

#[cfg(feature = "tract")]
fn gpu_check() -> Result<(), String> {
    tract_backend::gpu_check()
}

#[cfg(not(feature = "tract"))]
fn gpu_check() -> Result<(), String> {
    Err(NO_TRACT.to_owned())
}

/// A byte-level predictor: N context bytes in, 256 integer logits out.
///
/// Contract of the graph: one input (`context`, int64 `[batch, N]`, bytes 0..=255 and PAD)
/// and one output (`logits`, int32 `[batch, 256]`), names taken from the manifest.
pub struct TextModel {
    backend: Backend,
    name: String,
    id: u128,
    context_len: usize,
    pad_id: u16,
    logit_frac_bits: u32,
}

impl fmt::Debug for TextModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextModel")
            .field("name", &self.name)
            .field("id", &format_args!("{:032x}", self.id))
            .field("engine", &self.engine())
            .field("context_len", &self.context_len)
            .field("pad_id", &self.pad_id)
            .field("logit_frac_bits", &self.logit_frac_bits)
            .finish()
    }
}

impl TextModel {
    /// Builds the optimized CPU plan for a bundle.
    pub fn load(bundle: &Bundle) -> Result<TextModel, EngineError> {
        TextModel::load_on(bundle, Device::Cpu)
    }

    /// Builds the model on a given device, with the default engine choice.
    /// [`Device::Cuda`] is not available in this build.
    pub fn load_on(bundle: &Bundle, device: Device) -> Result<TextModel, EngineError> {
        TextModel::load_with(
            bundle,
            LoadOptions {
                device,
                engine: Engine::Auto,
            },
        )
    }

    /// Builds the model with explicit device and engine choices.
    pub fn load_with(bundle: &Bundle, options: LoadOptions) -> Result<TextModel, EngineError> {
        let on_gpu = match options.device {
            Device::Cpu => false,
            Device::Cuda => {
                gpu_check().map_err(|reason| EngineError::DeviceUnavailable {
                    device: Device::Cuda,
                    reason,
                })?;
                true
            }
            Device::Auto => match gpu_check() {
                Ok(()) => true,
                Err(reason) => {
                    tracing::debug!(%reason, "no usable CUDA device; using the CPU");
                    false
                }
            },
        };
        let m = bundle.manifest();
        let name = m.name.as_str();
        let contract = |reason: String| EngineError::Contract {
            model: name.to_owned(),
            reason,
        };
        let context_len = usize::try_from(m.context_len)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| contract(format!("context_len {} is not positive", m.context_len)))?;
        let pad_id = u16::try_from(m.pad_id)
            .ok()
            .filter(|&p| usize::from(p) >= BYTE_SYMBOLS)
            .ok_or_else(|| contract(format!("pad_id {} is not in 256..=65535", m.pad_id)))?;
        let input = m.inputs.first().map_or("context", String::as_str);
        let output = m.outputs.first().map_or("logits", String::as_str);

        let make = |backend| TextModel {
            backend,
            name: name.to_owned(),
            id: bundle.id(),
            context_len,
            pad_id,
            logit_frac_bits: m.logit_frac_bits,
        };
        if options.engine != Engine::Tract && !on_gpu {
            let proto = onnx::decode_model(bundle.onnx_graph_bytes())
                .map_err(|e| contract(format!("bad ONNX graph: {e}")))?;
            let lowered =
                native::lower(bundle, &proto, input, output, context_len).and_then(|mlp| {
                    if mlp.outputs() != BYTE_SYMBOLS {
                        Err(format!(
                            "it has {} outputs, not {BYTE_SYMBOLS}",
                            mlp.outputs()
                        ))
                    } else if mlp.vocab_rows() <= usize::from(pad_id) {
                        Err(format!("its embedding has no row for PAD {pad_id}"))
                    } else {
                        Ok(mlp.with_lead(pad_id))
                    }
                });
            match lowered {
                Ok(mlp) => return Ok(make(Backend::Native(mlp))),
                Err(reason) if options.engine == Engine::Native => {
                    return Err(contract(format!(
                        "the native engine cannot run it: {reason}"
                    )));
                }
                Err(reason) => {
                    tracing::debug!(model = name, %reason, "native engine declined; using tract");
                }
            }
        }

        load_tract(bundle, options, on_gpu, (input, output, context_len), make)
    }
}

/// The tract part of [`TextModel::load_with`], after the native engine declined or was not
/// asked for.
#[cfg(feature = "tract")]
fn load_tract(
    bundle: &Bundle,
    options: LoadOptions,
    on_gpu: bool,
    (input, output, context_len): (&str, &str, usize),
    make: impl Fn(Backend) -> TextModel,
) -> Result<TextModel, EngineError> {
    if on_gpu {
        let gpu = make(Backend::Tract(tract_backend::load(
            bundle,
            input,
            output,
            context_len,
            true,
        )?));
        // tract-cuda prepares graphs it cannot run (an int32 MatMul, say): find out now, with a
        // full chunk of rows, rather than in the middle of a file.
        match gpu.probe() {
            Ok(()) => return Ok(gpu),
            Err(e) if options.device == Device::Cuda => {
                return Err(EngineError::DeviceUnavailable {
                    device: Device::Cuda,
                    reason: format!("tract-cuda cannot run this model: {e}"),
                });
            }
            Err(e) => {
                let model = bundle.manifest().name.as_str();
                tracing::debug!(model, error = %e, "tract-cuda cannot run it; using the CPU");
            }
        }
    }
    let plan = tract_backend::load(bundle, input, output, context_len, false)?;
    Ok(make(Backend::Tract(plan)))
}

#[cfg(not(feature = "tract"))]
fn load_tract(
    bundle: &Bundle,
    options: LoadOptions,
    _on_gpu: bool,
    _graph: (&str, &str, usize),
    _make: impl Fn(Backend) -> TextModel,
) -> Result<TextModel, EngineError> {
    let model = &bundle.manifest().name;
    Err(EngineError::NotBuilt(match options.engine {
        Engine::Tract => format!("cannot load model `{model}` with tract: {NO_TRACT}"),
        _ => format!("model `{model}` needs tract (the native engine cannot run it): {NO_TRACT}"),
    }))
}

impl TextModel {
    /// Runs one chunk of [`tract_backend::GPU_MAX_ROWS`] contexts (PAD, then bytes) through
    /// the model.
    #[cfg(feature = "tract")]
    fn probe(&self) -> Result<(), EngineError> {
        let n = self.context_len;
        let rows = tract_backend::GPU_MAX_ROWS;
        let contexts: Vec<u16> = (0..rows * n)
            .map(|i| {
                if i % n < n / 2 {
                    self.pad_id
                } else {
                    (i % 256) as u16
                }
            })
            .collect();
        self.logits(&contexts, rows, &mut Vec::new())
    }

    /// The engine that runs this model: [`Engine::Native`] or [`Engine::Tract`] (also on CUDA).
    pub fn engine(&self) -> Engine {
        match self.backend {
            Backend::Native(_) => Engine::Native,
            #[cfg(feature = "tract")]
            Backend::Tract(_) => Engine::Tract,
        }
    }

    /// Where this model runs: [`Device::Cpu`] or [`Device::Cuda`].
    pub fn device(&self) -> Device {
        match &self.backend {
            Backend::Native(_) => Device::Cpu,
            #[cfg(feature = "tract")]
            Backend::Tract(plan) => plan.device(),
        }
    }

    /// Context length N.
    pub fn context_len(&self) -> usize {
        self.context_len
    }

    /// The padding symbol (256 for byte models).
    pub fn pad_id(&self) -> u16 {
        self.pad_id
    }

    /// Fixed-point fraction bits of the logits.
    pub fn logit_frac_bits(&self) -> u32 {
        self.logit_frac_bits
    }

    /// The id of the bundle the model came from.
    pub fn model_id(&self) -> u128 {
        self.id
    }

    /// The manifest name of the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the model on `batch` contexts.
    ///
    /// `contexts` holds `batch * N` values, row-major, oldest byte first, each a byte (0..=255)
    /// or [`TextModel::pad_id`]. `out` is cleared and filled with `batch * 256` logits.
    pub fn logits(
        &self,
        contexts: &[u16],
        batch: usize,
        out: &mut Vec<i32>,
    ) -> Result<(), EngineError> {
        let n = self.context_len;
        let expected = batch
            .checked_mul(n)
            .ok_or_else(|| EngineError::Input(format!("batch {batch} is too large")))?;
        if contexts.len() != expected {
            return Err(EngineError::Input(format!(
                "{} context values for batch {batch} of context length {n}, expected {expected}",
                contexts.len()
            )));
        }
        if let Some((at, v)) = contexts
            .iter()
            .enumerate()
            .find(|&(_, &v)| usize::from(v) >= BYTE_SYMBOLS && v != self.pad_id)
        {
            return Err(EngineError::Input(format!(
                "context value {v} at index {at} is neither a byte nor PAD ({})",
                self.pad_id
            )));
        }
        out.clear();
        if batch == 0 {
            return Ok(());
        }
        match &self.backend {
            Backend::Native(mlp) => {
                out.reserve(batch * BYTE_SYMBOLS);
                let mut scratch = native::Scratch::default();
                mlp.eval_rows(contexts, &mut scratch, out);
                Ok(())
            }
            #[cfg(feature = "tract")]
            Backend::Tract(plan) => plan.run(&self.name, contexts, n, out),
        }
    }
}

#[cfg(all(test, not(feature = "tract"), feature = "models"))]
#[path = "text_model_native_tests.rs"]
mod native_only_tests;
#[cfg(all(test, feature = "tract"))]
#[path = "text_model_tests.rs"]
mod tests;
