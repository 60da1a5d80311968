//! Engines: turn a [`Bundle`] into one reusable model.
//!
//! [`TextModel`] is the byte-level predictor the text codec calls: contexts of N bytes (PAD for
//! positions before the start) in, 256 integer logits per context out. It is built once, with a
//! symbolic batch dimension, and is `Send + Sync`: share one model across threads by reference
//! or `Arc` and call [`TextModel::logits`] with any batch size.
//!
//! Two engines run it and give the same logits bit for bit: the native integer kernels of
//! [`crate::native`] (any build, for the integer MLPs they can lower) and tract (the `tract`
//! feature, on by default: every other graph, and CUDA through tract-cuda with `cuda`).
//!
//! # Loading weights from the map (tract)
//!
//! Bundled graphs keep their initializers in the bundle payload as ONNX external data
//! (`location "."`, offset and length into the payload). tract-onnx 0.23 reads external data
//! through a pluggable `ModelDataResolver` (the public `Onnx::provider` field), but the resolver
//! is handed a *path*: tract first joins the location to a model directory and canonicalizes it,
//! so the path must exist. The engine therefore parses with the filesystem root as model
//! directory, refuses any location other than `"."` (so the only path tract touches is the
//! root itself), and its resolver ignores the path and copies `offset..offset+length` out of
//! the mapped payload. Per tensor, tract then copies those bytes once more into its own aligned
//! tensor; the resolver's buffer is dropped right after. So weights are copied (once to a
//! transient buffer, once into tract's tensor, then possibly repacked by the optimizer), never
//! read from disk a second time. Native paths read [`Bundle::tensor`] in place instead.
//!
//! # Example
//!
//! ```
//! use arca_runtime::{engine::TextModel, shipped};
//!
//! let bundle = shipped::resolve(shipped::default_compressor())?;
//! let model = TextModel::load(&bundle)?;
//! let n = model.context_len();
//! // Two contexts: all padding, and padding then "hi".
//! let mut contexts = vec![model.pad_id(); 2 * n];
//! contexts[2 * n - 2] = u16::from(b'h');
//! contexts[2 * n - 1] = u16::from(b'i');
//! let mut logits = Vec::new();
//! model.logits(&contexts, 2, &mut logits)?;
//! assert_eq!(logits.len(), 2 * 256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use crate::bundle::Bundle;

#[cfg(feature = "tract")]
mod tract_backend;
#[cfg(feature = "tract")]
pub use tract_backend::inference_model;

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
/// graphs whose integer arithmetic it can prove exact; see [`crate::native`]), so streams do
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

/// How [`TextModel::load_with`] builds a model.
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

/// What a build without the `tract` feature says when a model or device needs tract.
#[cfg(not(feature = "tract"))]
const NO_TRACT: &str = "this build of arca has no tract engine (build with the `tract` feature, \
     on by default)";

enum Backend {
    /// The native integer engine (any build).
    Native(crate::native::IntMlp),
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
            let proto = crate::onnx::decode_model(bundle.onnx_graph_bytes())
                .map_err(|e| contract(format!("bad ONNX graph: {e}")))?;
            let lowered = crate::native::lower(bundle, &proto, input, output, context_len)
                .and_then(|mlp| {
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
                let mut scratch = crate::native::Scratch::default();
                mlp.eval_rows(contexts, &mut scratch, out);
                Ok(())
            }
            #[cfg(feature = "tract")]
            Backend::Tract(plan) => plan.run(&self.name, contexts, n, out),
        }
    }
}

/// A build without tract runs what the native engine lowers, and says what it cannot run.
#[cfg(all(test, not(feature = "tract")))]
mod native_only_tests {
    use super::*;

    #[test]
    fn text_small_runs_and_tiny_is_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
        let bundle = crate::shipped::resolve("text-small")?;
        let model = TextModel::load(&bundle)?;
        assert_eq!(
            (model.engine(), model.device()),
            (Engine::Native, Device::Cpu)
        );
        let model = TextModel::load_on(&bundle, Device::Auto)?;
        assert_eq!(model.device(), Device::Cpu);

        let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny.arcm");
        let msg = TextModel::load(&Bundle::open(tiny)?)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("needs tract") && msg.contains("no tract engine"),
            "{msg}"
        );
        for (options, want) in [
            (
                LoadOptions {
                    device: Device::Cpu,
                    engine: Engine::Tract,
                },
                "cannot load model `text-small` with tract",
            ),
            (
                LoadOptions {
                    device: Device::Cuda,
                    engine: Engine::Auto,
                },
                "device `cuda` is not available: this build of arca has no tract engine",
            ),
        ] {
            let msg = TextModel::load_with(&bundle, options)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.starts_with(want), "{msg}");
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "tract"))]
mod tests {
    use std::path::{Path, PathBuf};

    use tract_onnx::prelude::tract_data::internal::TractErrorContext;
    use tract_onnx::prelude::*;

    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    }

    fn tiny() -> Result<Bundle, Box<dyn std::error::Error>> {
        Ok(Bundle::open(fixture().join("tiny.arcm"))?)
    }

    /// Logits from tract's own loader on the original ONNX file.
    fn plain_tract(onnx: &Path, contexts: &[u16], batch: usize, n: usize) -> TractResult<Vec<i32>> {
        let mut model = tract_onnx::onnx().model_for_path(onnx)?;
        let b = model.symbols.sym("batch");
        model.set_input_fact(
            0,
            InferenceFact::dt_shape(i64::datum_type(), [b.to_dim(), n.to_dim()]),
        )?;
        let plan = model.into_optimized()?.into_runnable()?;
        let values: Vec<i64> = contexts.iter().map(|&c| i64::from(c)).collect();
        let input = tract_ndarray::Array2::from_shape_vec((batch, n), values)?.into_tensor();
        let out = plan.run(tvec!(input.into_tvalue()))?;
        let t = out.first().context("no output")?;
        Ok(t.try_as_plain_ram()?.as_slice::<i32>()?.to_vec())
    }

    fn contexts(batch: usize, n: usize) -> Vec<u16> {
        (0..batch * n)
            .map(|i| {
                if i % 7 == 3 {
                    256
                } else {
                    ((i * 37 + 11) % 256) as u16
                }
            })
            .collect()
    }

    #[test]
    fn bundle_matches_plain_tract() -> Result<(), Box<dyn std::error::Error>> {
        let model = TextModel::load(&tiny()?)?;
        let n = model.context_len();
        assert_eq!(n, 4);
        assert_eq!(model.pad_id(), 256);
        for batch in [1usize, 3, 16] {
            let ctx = contexts(batch, n);
            let mut out = vec![7; 3];
            model.logits(&ctx, batch, &mut out)?;
            assert_eq!(out.len(), batch * BYTE_SYMBOLS);
            let reference = plain_tract(&fixture().join("tiny.onnx"), &ctx, batch, n)?;
            assert_eq!(out, reference, "batch {batch}");
            // External-data ONNX gives the same numbers with tract's own resolver.
            let ext = plain_tract(&fixture().join("tiny_ext.onnx"), &ctx, batch, n)?;
            assert_eq!(out, ext, "batch {batch}");
        }
        Ok(())
    }

    /// The shipped text-small bundle computes what its committed ONNX computes (fails when the
    /// model was re-exported but not re-packed).
    #[test]
    fn shipped_text_small_matches_its_onnx() -> Result<(), Box<dyn std::error::Error>> {
        let onnx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/text-small.onnx");
        if !onnx.exists() {
            return Ok(());
        }
        let model = TextModel::load(&crate::shipped::resolve("text-small")?)?;
        let n = model.context_len();
        let batch = 6;
        let mut ctx = contexts(batch, n);
        ctx[..n].fill(model.pad_id());
        let mut out = Vec::new();
        model.logits(&ctx, batch, &mut out)?;
        assert_eq!(out, plain_tract(&onnx, &ctx, batch, n)?);
        Ok(())
    }

    #[test]
    fn rows_do_not_depend_on_batch() -> Result<(), Box<dyn std::error::Error>> {
        let model = TextModel::load(&tiny()?)?;
        let n = model.context_len();
        let ctx = contexts(5, n);
        let mut all = Vec::new();
        model.logits(&ctx, 5, &mut all)?;
        let mut one = Vec::new();
        for (row, chunk) in ctx.chunks(n).enumerate() {
            model.logits(chunk, 1, &mut one)?;
            assert_eq!(one[..], all[row * BYTE_SYMBOLS..(row + 1) * BYTE_SYMBOLS]);
        }
        Ok(())
    }

    #[test]
    fn shared_across_threads() -> Result<(), Box<dyn std::error::Error>> {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TextModel>();
        let model = Arc::new(TextModel::load(&tiny()?)?);
        let n = model.context_len();
        let mut expected = Vec::new();
        model.logits(&contexts(2, n), 2, &mut expected)?;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        model.logits(&contexts(2, n), 2, &mut out).map(|()| out)
                    })
                })
                .collect();
            for h in handles {
                let got = h.join().map_err(|_| "thread panicked")?;
                assert_eq!(got?, expected);
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors() -> Result<(), Box<dyn std::error::Error>> {
        let model = TextModel::load(&tiny()?)?;
        let mut out = vec![1, 2, 3];
        assert!(matches!(
            model.logits(&[1, 2, 3], 1, &mut out),
            Err(EngineError::Input(_))
        ));
        assert!(matches!(
            model.logits(&[1, 2, 3, 257], 1, &mut out),
            Err(EngineError::Input(_))
        ));
        assert!(matches!(
            model.logits(&[], usize::MAX, &mut out),
            Err(EngineError::Input(_))
        ));
        model.logits(&[], 0, &mut out)?;
        assert!(out.is_empty());
        Ok(())
    }

    /// On a GPU host with the `cuda` feature: the integer-exact model gives the CPU's logits on
    /// the GPU, bit for bit (targets/cuda/check.sh runs this). Skipped elsewhere.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_logits_equal_the_cpu() -> Result<(), Box<dyn std::error::Error>> {
        let bundle = crate::shipped::resolve("text-small")?;
        let gpu = match TextModel::load_on(&bundle, Device::Cuda) {
            Ok(gpu) => gpu,
            Err(e) => {
                println!("cuda_logits_equal_the_cpu skipped: {e}");
                return Ok(());
            }
        };
        assert_eq!(gpu.device(), Device::Cuda);
        let cpu = TextModel::load(&bundle)?;
        let n = cpu.context_len();
        // 300 rows: more than one GPU chunk (GPU_MAX_ROWS), and more than tract-cuda's Gather
        // could take in one call.
        for batch in [1usize, 5, 64, 300] {
            let mut ctx = contexts(batch, n);
            ctx[..n / 2].fill(cpu.pad_id());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            cpu.logits(&ctx, batch, &mut a)?;
            gpu.logits(&ctx, batch, &mut b)?;
            assert_eq!(a, b, "batch {batch}");
        }
        println!("cuda_logits_equal_the_cpu: GPU logits equal the CPU's");
        Ok(())
    }

    #[test]
    fn cuda_without_a_gpu_is_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
        match TextModel::load_on(&tiny()?, Device::Cuda) {
            // A `cuda` build on a GPU host.
            Ok(model) => assert!(cfg!(feature = "cuda") && model.device() == Device::Cuda),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("device `cuda` is not available: "), "{msg}");
                if !cfg!(feature = "cuda") {
                    assert_eq!(
                        msg,
                        "device `cuda` is not available: this build of arca has no CUDA support \
                         (build with `--features cuda`)"
                    );
                }
            }
        }
        // `auto` always loads: on the GPU if there is one, else on the CPU.
        let model = TextModel::load_on(&tiny()?, Device::Auto)?;
        let mut out = Vec::new();
        model.logits(&[1, 2, 3, 4], 1, &mut out)?;
        assert_eq!(out.len(), BYTE_SYMBOLS);
        Ok(())
    }
}
