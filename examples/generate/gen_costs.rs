//! Call costs of a generation model (`models/gen`): a k-token forward call with 64 tokens
//! cached, k = 1..=16, in the native engine of `arca_generate` and in tract running the
//! bundle's ONNX graph with symbolic sequence and past lengths (the comparison behind the native
//! engine, see `runtime/generate/src/net.rs`). Medians of 15 calls, one thread.
//!
//! ```sh
//! cargo run --release -p arca-examples --example gen_costs -- models/gen/trained/gen-target.arcm
//! ```

use std::error::Error;
use std::time::Instant;

use arca_generate::{CallCost, Net};
use arca_runtime::Bundle;
use tract_onnx::prelude::*;

const BASE: usize = 64;
const KMAX: usize = 16;
const REPS: usize = 15;

fn tract_costs(bundle: &Bundle, net: &Net) -> Result<Vec<f64>, Box<dyn Error>> {
    let m = bundle.manifest();
    let mut model = arca_runtime::engine::inference_model(bundle)?;
    let mut inputs = vec![m.inputs[0].clone()];
    inputs.extend(m.kv_cache_inputs.iter().cloned());
    let mut outputs = vec![m.outputs[0].clone()];
    outputs.extend(m.kv_cache_outputs.iter().cloned());
    model.set_input_names(&inputs)?;
    model.select_outputs_by_name(&outputs)?;
    let (s, p) = (model.symbols.sym("S"), model.symbols.sym("P"));
    let (h, d) = (net.config().n_head, net.config().head_dim());
    model.set_input_fact(
        0,
        InferenceFact::dt_shape(i64::datum_type(), [1.to_dim(), s.to_dim()]),
    )?;
    for i in 1..inputs.len() {
        let shape = [1.to_dim(), h.to_dim(), p.to_dim(), d.to_dim()];
        model.set_input_fact(i, InferenceFact::dt_shape(f32::datum_type(), shape))?;
    }
    let plan = model.into_optimized()?.into_runnable()?;
    let mut state = plan.spawn()?;
    let ids = |n: usize| -> Result<TValue, Box<dyn Error>> {
        let v: Vec<i64> = (0..n as i64).map(|i| 97 + i % 26).collect();
        Ok(tract_ndarray::Array2::from_shape_vec((1, n), v)?
            .into_tensor()
            .into_tvalue())
    };
    let mut feed: TVec<TValue> = tvec![ids(BASE)?];
    for _ in 1..inputs.len() {
        feed.push(Tensor::zero::<f32>(&[1, h, 0, d])?.into_tvalue());
    }
    let cache: Vec<TValue> = state.run(feed)?[1..].to_vec();
    let mut costs = Vec::with_capacity(KMAX);
    for k in 1..=KMAX {
        let mut times = Vec::with_capacity(REPS);
        for _ in 0..REPS {
            let mut feed: TVec<TValue> = tvec![ids(k)?];
            feed.extend(cache.iter().cloned());
            let t = Instant::now();
            state.run(feed)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        costs.push(times[REPS / 2]);
    }
    Ok(costs)
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: gen_costs MODEL.arcm")?;
    let bundle = Bundle::open(&path)?;
    let net = Net::load(&bundle)?;
    let native = CallCost::measure(&mut net.decoder(), KMAX, REPS)?;
    let tract = tract_costs(&bundle, &net)?;
    println!(
        "{}: {} parameters, {BASE} tokens cached",
        net.name(),
        net.config().parameters()
    );
    println!("|  k | native ms | native / k=1 | tract ms | tract / k=1 |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for k in 1..=KMAX {
        println!(
            "| {k:2} | {:.3} | {:.2} | {:.3} | {:.2} |",
            native.seconds[k - 1] * 1e3,
            native.ratio(k),
            tract[k - 1] * 1e3,
            tract[k - 1] / tract[0]
        );
    }
    Ok(())
}
