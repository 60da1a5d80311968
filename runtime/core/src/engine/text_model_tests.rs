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
#[cfg(feature = "models")]
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
#[cfg(all(feature = "cuda", feature = "models"))]
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
