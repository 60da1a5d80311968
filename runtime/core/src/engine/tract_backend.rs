//! tract behind [`TextModel`](super::text_model::TextModel): parsing a bundle's graph with weights read
//! from the map, the optimized CPU plan, and tract-cuda's GPU plan (see the parent module's docs).
//!
//! Behind the `tract` feature (on by default): a build without it runs only models the native
//! engine can lower, and compiles in a fraction of the time, which is what cross builds for
//! boards want.

use std::sync::Arc;

use prost::Message;
use tract_onnx::model::ParseResult;
use tract_onnx::pb;
use tract_onnx::prelude::tract_data::internal::format_err;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::runtime::Runnable;

use super::config::{BYTE_SYMBOLS, Device, EngineError};
use arca_bundle::tract::{PayloadResolver, anchor_dir};
use arca_bundle::{Bundle, DType, PAYLOAD_LOCATION};

/// A tract plan, on the CPU or prepared by a GPU runtime (tract-cuda).
pub(super) enum Plan {
    Cpu(Arc<TypedRunnableModel>),
    Gpu(Box<dyn Runnable>),
}

impl Plan {
    pub(super) fn device(&self) -> Device {
        match self {
            Plan::Cpu(_) => Device::Cpu,
            Plan::Gpu(_) => Device::Cuda,
        }
    }

    /// Runs whole rows of `contexts` (`n` values each) and appends their logits to `out`.
    pub(super) fn run(
        &self,
        model: &str,
        contexts: &[u16],
        n: usize,
        out: &mut Vec<i32>,
    ) -> Result<(), EngineError> {
        match self {
            Plan::Cpu(plan) => run_plan(plan, model, contexts, n, out),
            Plan::Gpu(plan) => contexts
                .chunks(GPU_MAX_ROWS * n)
                .try_for_each(|chunk| run_plan(plan.as_ref(), model, chunk, n, out)),
        }
    }
}

fn run_plan(
    plan: &dyn Runnable,
    model: &str,
    contexts: &[u16],
    n: usize,
    out: &mut Vec<i32>,
) -> Result<(), EngineError> {
    let batch = contexts.len() / n;
    let run = tract_err(model, "run");
    let values: Vec<i64> = contexts.iter().map(|&c| i64::from(c)).collect();
    let input = tract_ndarray::Array2::from_shape_vec((batch, n), values)
        .map_err(|e| EngineError::Input(e.to_string()))?
        .into_tensor();
    let outputs = plan.run(tvec!(input.into_tvalue())).map_err(&run)?;
    let logits = outputs
        .first()
        .ok_or_else(|| run(format_err!("the plan returned no output")))?;
    if logits.shape() != [batch, BYTE_SYMBOLS] {
        return Err(run(format_err!(
            "logits have shape {:?}, expected [{batch}, {BYTE_SYMBOLS}]",
            logits.shape()
        )));
    }
    let values = logits
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<i32>())
        .map_err(&run)?;
    out.extend_from_slice(values);
    Ok(())
}

/// `Ok` when a GPU, its driver and the CUDA libraries tract-cuda needs are usable.
pub(super) fn gpu_check() -> Result<(), String> {
    gpu::check()
}

/// Builds a byte model's plan: `input` int64 `[batch, context_len]` with a symbolic batch,
/// `output` int32 `[batch, 256]`; prepared by tract-cuda when `on_gpu`, else optimized for the
/// CPU.
pub(super) fn load(
    bundle: &Bundle,
    input: &str,
    output: &str,
    context_len: usize,
    on_gpu: bool,
) -> Result<Plan, EngineError> {
    let name = bundle.manifest().name.as_str();
    let contract = |reason: String| EngineError::Contract {
        model: name.to_owned(),
        reason,
    };
    let stage = |s| tract_err(name, s);
    let mut model = inference_model(bundle)?;
    model
        .set_input_names([input])
        .map_err(stage("select the input of"))?;
    model
        .select_outputs_by_name([output])
        .map_err(stage("select the output of"))?;
    let batch = model.symbols.sym("batch");
    let fact = InferenceFact::dt_shape(i64::datum_type(), [batch.to_dim(), context_len.to_dim()]);
    model
        .set_input_fact(0, fact)
        .map_err(stage("set the input shape of"))?;
    if on_gpu {
        let typed = model
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(stage("type"))?;
        check_output(&typed, output).map_err(contract)?;
        return Ok(Plan::Gpu(
            gpu::prepare(typed).map_err(stage("prepare on CUDA"))?,
        ));
    }
    let typed = model.into_optimized().map_err(stage("optimize"))?;
    check_output(&typed, output).map_err(contract)?;
    Ok(Plan::Cpu(typed.into_runnable().map_err(stage("plan"))?))
}

pub(super) fn tract_err(model: &str, stage: &'static str) -> impl Fn(TractError) -> EngineError {
    let model = model.to_owned();
    move |e| EngineError::Tract {
        model: model.clone(),
        stage,
        message: format!("{e:#}"),
    }
}

/// Refuses tensors tract would read from a file or could not build from raw bytes.
fn check_tensor(t: &pb::TensorProto, model: &str) -> Result<(), EngineError> {
    let contract = |reason: String| EngineError::Contract {
        model: model.to_owned(),
        reason,
    };
    let external = t.data_location == Some(pb::tensor_proto::DataLocation::External as i32);
    if external {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key == "location")
            .map(|e| &e.value);
        if location.map(String::as_str) != Some(PAYLOAD_LOCATION) {
            return Err(contract(format!(
                "tensor `{}` points to external file {location:?}; bundled weights must be in the payload",
                t.name
            )));
        }
    }
    if (external || !t.raw_data.is_empty()) && DType::from_onnx_code(t.data_type).is_none() {
        return Err(contract(format!(
            "tensor `{}` has ONNX data type {}, which bundles do not support",
            t.name, t.data_type
        )));
    }
    Ok(())
}

fn check_graph(g: &pb::GraphProto, model: &str) -> Result<(), EngineError> {
    for t in &g.initializer {
        check_tensor(t, model)?;
    }
    for node in &g.node {
        for a in &node.attribute {
            for t in a.t.iter().chain(&a.tensors) {
                check_tensor(t, model)?;
            }
            for sub in a.g.iter().chain(&a.graphs) {
                check_graph(sub, model)?;
            }
        }
    }
    Ok(())
}

fn decode_proto(bundle: &Bundle) -> Result<pb::ModelProto, EngineError> {
    pb::ModelProto::decode(bundle.onnx_graph_bytes()).map_err(|e| EngineError::Contract {
        model: bundle.manifest().name.clone(),
        reason: format!("bad ONNX graph: {e}"),
    })
}

/// Parses a bundle's graph into a tract `InferenceModel`, weights resolved from the payload.
///
/// This is the building block for every tract-backed engine; [`TextModel::load`](crate::engine::TextModel::load) adds the
/// byte-model contract and optimizes it.
pub fn inference_model(bundle: &Bundle) -> Result<InferenceModel, EngineError> {
    let name = bundle.manifest().name.as_str();
    let proto = decode_proto(bundle)?;
    let graph = proto.graph.as_ref().ok_or_else(|| EngineError::Contract {
        model: name.to_owned(),
        reason: "the ONNX model has no graph".into(),
    })?;
    check_graph(graph, name)?;
    let mut onnx = tract_onnx::onnx();
    onnx.provider = Arc::new(PayloadResolver::new(bundle.clone()));
    let anchor = anchor_dir();
    let ParseResult {
        model,
        unresolved_inputs,
        ..
    } = onnx
        .parse(&proto, anchor.to_str())
        .map_err(tract_err(name, "parse"))?;
    if !unresolved_inputs.is_empty() {
        return Err(EngineError::Contract {
            model: name.to_owned(),
            reason: format!("graph has unresolved inputs {unresolved_inputs:?}"),
        });
    }
    Ok(model)
}

/// Rows per call on the GPU. tract-cuda 0.23.9 launches its Gather kernel with one grid row per
/// index (`grid_dim.y = n_indices`, at most 65,535), and text-small looks up 512 table entries
/// per context, so more than 127 rows in one call fail with CUDA_ERROR_INVALID_VALUE. Batches are
/// cut into chunks of this size; the probe at load time runs one full chunk.
pub(super) const GPU_MAX_ROWS: usize = 64;

/// The output must be int32 `[batch, 256]`.
fn check_output(typed: &TypedModel, output: &str) -> Result<(), String> {
    let out = typed.output_fact(0).map_err(|e| format!("{e:#}"))?;
    let vocab_ok = out.shape.len() == 2 && out.shape[1] == BYTE_SYMBOLS.to_dim();
    if out.datum_type != i32::datum_type() || !vocab_ok {
        return Err(format!(
            "output `{output}` is {out:?}, expected int32 [batch, {BYTE_SYMBOLS}]"
        ));
    }
    Ok(())
}

/// tract-cuda behind the `cuda` feature. It loads the CUDA driver and libraries at run time, so
/// a `cuda` build runs (on the CPU) on machines without them.
#[cfg(feature = "cuda")]
mod gpu {
    use tract_onnx::prelude::tract_data::internal::format_err;
    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::runtime::{Runnable, Runtime, runtime_for_name};

    fn runtime() -> Result<&'static dyn Runtime, String> {
        runtime_for_name("cuda")
            .map_err(|e| format!("{e:#}"))?
            .ok_or_else(|| "tract-cuda is not registered in this build".to_owned())
    }

    /// `Ok` when a GPU, its driver and the CUDA libraries tract-cuda needs are usable.
    pub(super) fn check() -> Result<(), String> {
        // Referencing the crate links it, so its runtime registration is present.
        tract_cuda::utils::ensure_cuda_runtime_dependencies("no usable CUDA GPU")
            .map_err(|e| format!("{e:#}"))?;
        runtime()?.check().map_err(|e| format!("{e:#}"))
    }

    pub(super) fn prepare(model: TypedModel) -> TractResult<Box<dyn Runnable>> {
        runtime().map_err(|e| format_err!("{e}"))?.prepare(model)
    }
}

#[cfg(not(feature = "cuda"))]
mod gpu {
    use tract_onnx::prelude::tract_data::internal::format_err;
    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::runtime::Runnable;

    pub(super) fn check() -> Result<(), String> {
        Err("this build of arca has no CUDA support (build with `--features cuda`)".to_owned())
    }

    pub(super) fn prepare(_model: TypedModel) -> TractResult<Box<dyn Runnable>> {
        Err(format_err!("this build of arca has no CUDA support"))
    }
}
