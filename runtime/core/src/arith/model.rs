use std::sync::Arc;

use tract_onnx::prelude::tract_data::internal::format_err;
use tract_onnx::prelude::*;

use crate::engine::inference_model;
use arca_bundle::{Bundle, ModelKind};

use super::task::*;

/// An arithmetic model on tract, decoding greedily.
///
/// The graph (see `models/arith/README.md`): input `tokens` int64 `[batch, seq]`, output
/// `logits` f32 `[batch, seq, vocab]` (16, or a sentence model's 46), causal, so right padding
/// does not change the logits of earlier positions; that is what lets problems of different
/// lengths share one call.
pub struct ArithModel {
    plan: Arc<TypedRunnableModel>,
    spec: ArithSpec,
    name: String,
    context_len: usize,
}

impl ArithModel {
    /// Builds the plan for an `arith` bundle.
    pub fn load(bundle: &Bundle) -> Result<ArithModel, ArithError> {
        let spec = ArithSpec::of(bundle)?;
        let m = bundle.manifest();
        if m.kind != ModelKind::Arith {
            return Err(ArithError::Model(format!(
                "model `{}` is a {} bundle with a KV cache, for `arca generate`; `arca arith` runs `arith` bundles",
                m.name,
                m.kind.as_str()
            )));
        }
        let err = |stage: &str, e: String| {
            ArithError::Model(format!("model `{}`: cannot {stage}: {e}", m.name))
        };
        let mut model = inference_model(bundle).map_err(|e| ArithError::Model(e.to_string()))?;
        let batch = model.symbols.sym("batch");
        let seq = model.symbols.sym("seq");
        model
            .set_input_fact(
                0,
                InferenceFact::dt_shape(i64::datum_type(), [batch.to_dim(), seq.to_dim()]),
            )
            .map_err(|e| err("set the input shape", format!("{e:#}")))?;
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| err("optimize", format!("{e:#}")))?;
        Ok(ArithModel {
            plan,
            spec,
            name: m.name.clone(),
            context_len: m.context_len as usize,
        })
    }

    /// The manifest's description of the problems this model solves.
    pub fn spec(&self) -> &ArithSpec {
        &self.spec
    }

    /// The manifest name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Solves one problem.
    pub fn solve(&self, problem: &Problem) -> Result<Solution, ArithError> {
        let mut out = self.solve_all(std::slice::from_ref(problem))?;
        Ok(out.remove(0))
    }

    /// Solves problems together: one model call per generated token for all of them.
    pub fn solve_all(&self, problems: &[Problem]) -> Result<Vec<Solution>, ArithError> {
        self.solve_phrased(problems, Phrasing::Symbols)
    }

    /// Solves problems asked in the given phrasing (sentences: sentence models only).
    pub fn solve_phrased(
        &self,
        problems: &[Problem],
        phrasing: Phrasing,
    ) -> Result<Vec<Solution>, ArithError> {
        let mut rows = Vec::with_capacity(problems.len());
        for p in problems {
            if p.op != self.spec.op {
                return Err(ArithError::Unsupported(format!(
                    "{p}: model `{}` does {}, not {}",
                    self.name,
                    self.spec.op.symbol(),
                    p.op.symbol()
                )));
            }
            let (question, answer) = self.spec.ask(p, phrasing)?;
            let q = self.spec.encode(&question)?;
            // Question, the right answer and END must fit the positions the model has.
            let needed = q.len() + answer.len() + 1;
            if needed > self.context_len {
                return Err(ArithError::Unsupported(format!(
                    "{p}: question and answer take {needed} tokens; model `{}` reads at \
                     most {}",
                    self.name, self.context_len
                )));
            }
            rows.push(q);
        }
        self.complete(rows)
    }

    /// The model's continuation of a text (a sentence model's own question), up to END or
    /// the end of its positions.
    pub fn continue_text(&self, text: &str) -> Result<Solution, ArithError> {
        let row = self.spec.encode(text)?;
        if row.is_empty() || row.len() >= self.context_len {
            return Err(ArithError::Unsupported(format!(
                "the text takes {} tokens; model `{}` reads 1 to {}",
                row.len(),
                self.name,
                self.context_len - 1
            )));
        }
        let mut out = self.complete(vec![row])?;
        Ok(out.remove(0))
    }

    /// Greedy decoding of every row until END or the end of the positions.
    fn complete(&self, mut rows: Vec<Vec<u8>>) -> Result<Vec<Solution>, ArithError> {
        let starts: Vec<usize> = rows.iter().map(Vec::len).collect();
        let mut done = vec![false; rows.len()];
        while done.iter().any(|d| !d) {
            let width = rows.iter().map(Vec::len).max().unwrap_or(0);
            let mut input =
                tract_ndarray::Array2::<i64>::from_elem((rows.len(), width), i64::from(PAD));
            for (r, row) in rows.iter().enumerate() {
                for (c, &t) in row.iter().enumerate() {
                    input[(r, c)] = i64::from(t);
                }
            }
            let next = self.next_tokens(input.into_tensor(), &rows)?;
            for (r, row) in rows.iter_mut().enumerate() {
                if done[r] {
                    continue;
                }
                row.push(next[r]);
                done[r] = next[r] == END || row.len() >= self.context_len;
            }
        }
        Ok(rows
            .iter()
            .zip(starts)
            .map(|(row, start)| {
                let answer = &row[start..];
                let end = answer.iter().position(|&t| t == END);
                Solution {
                    answer: self.spec.decode(&answer[..end.unwrap_or(answer.len())]),
                    ended: end.is_some(),
                }
            })
            .collect())
    }

    /// The argmax token after each row's last token (ties to the lowest id).
    fn next_tokens(&self, input: Tensor, rows: &[Vec<u8>]) -> Result<Vec<u8>, ArithError> {
        let run = |e: TractError| {
            ArithError::Model(format!("model `{}` failed to run: {e:#}", self.name))
        };
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(run)?;
        let logits = outputs
            .first()
            .ok_or_else(|| run(format_err!("no output")))?
            .to_plain_array_view::<f32>()
            .map_err(run)?;
        let shape = logits.shape().to_vec();
        let vocab = self.spec.vocab_size();
        if shape.len() != 3 || shape[0] != rows.len() || shape[2] != vocab {
            return Err(run(format_err!(
                "logits have shape {shape:?}, expected [{}, seq, {vocab}]",
                rows.len()
            )));
        }
        rows.iter()
            .enumerate()
            .map(|(r, row)| {
                let at = row.len() - 1;
                let mut best = (0u8, f32::NEG_INFINITY);
                for t in 0..vocab {
                    let v = logits[[r, at, t]];
                    if v.is_nan() {
                        return Err(run(format_err!("NaN logit")));
                    }
                    if v > best.1 {
                        best = (t as u8, v);
                    }
                }
                Ok(best.0)
            })
            .collect()
    }
}
