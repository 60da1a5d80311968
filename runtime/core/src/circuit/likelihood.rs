//! The circuit's ONNX graph in tract, the reference the integer coder is checked against.

use crate::engine::{EngineError, inference_model};
use arca_bundle::{Bundle, DType, ModelKind};

/// The circuit's ONNX graph in tract: batched log-likelihoods and marginals.
///
/// Input rows hold one value per pixel, 0..=255 for an observed pixel and 256 for a
/// marginalized one; the output is the natural log of the probability of the observed pixels
/// (float32, the graph's own arithmetic). The coder does not use it: it is the reference the
/// coder's code lengths are checked against, and the naive per-pixel coder of the image bench.
pub struct Likelihood {
    plan: std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>,
    name: String,
    pixels: usize,
}

impl Likelihood {
    /// The marginalized value of an input row.
    pub const MISSING: u16 = 256;

    /// Loads the graph of a circuit bundle (input `pixels` int64 [batch, D], output `log_prob`).
    pub fn load(bundle: &Bundle) -> Result<Likelihood, EngineError> {
        use tract_onnx::prelude::*;
        // Only the image size is needed here: the graph checks the rest when tract types it.
        let name = bundle.manifest().name.clone();
        let contract = |reason: String| EngineError::Contract {
            model: name.clone(),
            reason,
        };
        if bundle.manifest().kind != ModelKind::Circuit {
            return Err(contract(format!(
                "its kind is `{}`",
                bundle.manifest().kind
            )));
        }
        let shape = bundle
            .tensor_values("image_shape", DType::I32, &[2], i32::from_le_bytes)
            .map_err(contract)?;
        let d = match shape[..] {
            [h, w] if h >= 1 && w >= 1 => h as usize * w as usize,
            _ => return Err(contract(format!("image_shape is {shape:?}"))),
        };
        let tract = |stage: &'static str| {
            let model = name.clone();
            move |e: TractError| EngineError::Tract {
                model: model.clone(),
                stage,
                message: format!("{e:#}"),
            }
        };
        let mut model = inference_model(bundle)?;
        model
            .set_input_names(["pixels"])
            .map_err(tract("select the input of"))?;
        model
            .select_outputs_by_name(["log_prob"])
            .map_err(tract("select the output of"))?;
        let batch = model.symbols.sym("batch");
        model
            .set_input_fact(
                0,
                InferenceFact::dt_shape(i64::datum_type(), [batch.to_dim(), d.to_dim()]),
            )
            .map_err(tract("set the input shape of"))?;
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(tract("optimize"))?;
        Ok(Likelihood {
            plan,
            name,
            pixels: d,
        })
    }

    /// Natural-log probabilities of `rows` (whole rows of D values, each 0..=256).
    pub fn log_prob(&self, rows: &[u16]) -> Result<Vec<f32>, EngineError> {
        use tract_onnx::prelude::*;
        let d = self.pixels;
        if rows.is_empty() || !rows.len().is_multiple_of(d) || rows.iter().any(|&v| v > 256) {
            return Err(EngineError::Input(format!(
                "log_prob needs whole rows of {d} values in 0..=256, got {} values",
                rows.len()
            )));
        }
        let batch = rows.len() / d;
        let values: Vec<i64> = rows.iter().map(|&v| i64::from(v)).collect();
        let run = |e: TractError| EngineError::Tract {
            model: self.name.clone(),
            stage: "run",
            message: format!("{e:#}"),
        };
        let input = tract_ndarray::Array2::from_shape_vec((batch, d), values)
            .map_err(|e| EngineError::Input(e.to_string()))?
            .into_tensor();
        let out = self.plan.run(tvec!(input.into_tvalue())).map_err(run)?;
        let first = out
            .first()
            .ok_or_else(|| EngineError::Input("the graph returned nothing".into()))?;
        let view = first.to_plain_array_view::<f32>().map_err(run)?;
        if view.len() != batch {
            return Err(EngineError::Input(format!(
                "log_prob has {} values for {batch} rows",
                view.len()
            )));
        }
        Ok(view.iter().copied().collect())
    }
}
