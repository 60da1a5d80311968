use super::kernels::*;
use super::lower::*;
use super::mlp::*;
use crate::engine::onnx;
use crate::engine::{Engine, LoadOptions, TextModel};
use arca_bundle::Bundle;

fn load(bundle: &Bundle, engine: Engine) -> Result<TextModel, crate::engine::EngineError> {
    TextModel::load_with(
        bundle,
        LoadOptions {
            engine,
            ..LoadOptions::default()
        },
    )
}

/// Contexts that exercise every input: real text, PAD-heavy starts, random bytes.
fn contexts(n: usize, pad: u16) -> Vec<u16> {
    let text = include_bytes!("../../../../../tests/data/canterbury/alice29.txt");
    let mut out = Vec::new();
    for start in (0..text.len() - n).step_by(997).take(150) {
        out.extend(text[start..start + n].iter().map(|&b| u16::from(b)));
    }
    for k in 0..=n {
        out.extend((0..n).map(|i| if i < k { pad } else { u16::from(text[i]) }));
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..n * 100 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.push((s % 257) as u16);
    }
    out
}

/// xxh3-64 of text-small's logits (little-endian i32) on [`contexts`]. tract computed it
/// on x86-64 and this test checks it on every build: with tract, both engines must give it;
/// without (the native-only ARM builds under qemu), the native kernels of that target must.
/// It changes only when text-small does.
const TEXT_SMALL_LOGITS_XXH3: u64 = 0xff82_3479_9769_6fbd;

#[test]
fn text_small_logits_match_the_golden_hash() -> Result<(), Box<dyn std::error::Error>> {
    let bundle = crate::shipped::resolve("text-small")?;
    let mut engines = vec![Engine::Native];
    if cfg!(feature = "tract") {
        engines.push(Engine::Tract);
    }
    for engine in engines {
        let model = load(&bundle, engine)?;
        assert_eq!(model.engine(), engine);
        let n = model.context_len();
        let ctx = contexts(n, model.pad_id());
        let mut logits = Vec::new();
        model.logits(&ctx, ctx.len() / n, &mut logits)?;
        let mut runs = vec![(engine.to_string(), logits)];
        if engine == Engine::Native {
            // The kernel variants too: the portable one (what ARM runs) and the unfolded
            // first layer, whatever this CPU dispatches to; each one row at a time and in
            // tiles (`model.logits` above is the dispatched kernel in tiles).
            let proto = onnx::decode_model(bundle.onnx_graph_bytes())?;
            let mlp = lower(&bundle, &proto, "context", "logits", n)?;
            let mut scratch = Scratch::default();
            for (name, kernel) in [
                ("dispatched", mlp.clone()),
                ("PAD prefix sums", mlp.clone().with_lead(model.pad_id())),
                ("portable", mlp.portable()),
                ("unfolded", mlp.unfolded()),
            ] {
                let mut out = Vec::new();
                for row in ctx.chunks_exact(n) {
                    kernel.eval_row(row, &mut scratch, &mut out);
                }
                runs.push((format!("{name} by row"), out));
                let mut out = Vec::new();
                kernel.eval_rows(&ctx, &mut scratch, &mut out);
                runs.push((format!("{name} in tiles"), out));
            }
        }
        for (name, logits) in runs {
            let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
            let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
            assert_eq!(
                hash,
                TEXT_SMALL_LOGITS_XXH3,
                "{name}: {hash:#018x} over {} logits",
                logits.len()
            );
        }
    }
    Ok(())
}

/// The native engine gives tract's logits, bit for bit, at several batch sizes, with both
/// kernels. This is the proof the engine choice does not change streams.
#[cfg(feature = "tract")]
#[test]
fn text_small_native_equals_tract() -> Result<(), Box<dyn std::error::Error>> {
    let bundle = crate::shipped::resolve("text-small")?;
    let native = load(&bundle, Engine::Native)?;
    let tract = load(&bundle, Engine::Tract)?;
    assert_eq!(native.engine(), Engine::Native);
    assert_eq!(tract.engine(), Engine::Tract);
    assert_eq!(load(&bundle, Engine::Auto)?.engine(), Engine::Native);
    let n = native.context_len();
    let ctx = contexts(n, native.pad_id());
    let rows = ctx.len() / n;
    let (mut want, mut got) = (Vec::new(), Vec::new());
    tract.logits(&ctx, rows, &mut want)?;
    native.logits(&ctx, rows, &mut got)?;
    assert_eq!(got.len(), want.len());
    let bad = (0..rows)
        .filter(|&r| got[r * 256..(r + 1) * 256] != want[r * 256..(r + 1) * 256])
        .count();
    assert_eq!(bad, 0, "{bad} of {rows} rows differ");
    for batch in [1usize, 7] {
        native.logits(&ctx[..batch * n], batch, &mut got)?;
        assert_eq!(got[..], want[..batch * 256]);
    }
    // Portable kernel vs the dispatched one.
    let proto = onnx::decode_model(bundle.onnx_graph_bytes())?;
    let mlp = lower(&bundle, &proto, "context", "logits", n)?;
    let portable = mlp.portable();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut scratch = Scratch::default();
    for row in ctx.chunks_exact(n).take(40) {
        mlp.eval_row(row, &mut scratch, &mut a);
        portable.eval_row(row, &mut scratch, &mut b);
    }
    assert_eq!(a, b);
    assert_eq!(a[..], want[..a.len()]);
    assert!(mlp.first.is_some());
    let unfolded = mlp.unfolded();
    b.clear();
    for row in ctx.chunks_exact(n).take(40) {
        unfolded.eval_row(row, &mut scratch, &mut b);
    }
    assert_eq!(a, b);
    Ok(())
}

/// Shifts replace power-of-two divisions with the same truncation toward zero, negative
/// dividends included (text-small's dividends are never negative, so its tests don't reach it).
#[test]
fn div_by_power_of_two_truncates_like_div() {
    let values: Vec<i32> = [
        i32::MIN,
        i32::MIN + 1,
        -65537,
        -1024,
        -1023,
        -7,
        -1,
        0,
        1,
        7,
        1023,
        65537,
        i32::MAX,
    ]
    .into_iter()
    .collect();
    for s in 0..30u32 {
        let mut shifted = values.clone();
        apply(&LoweredOp::DivPow2(vec![s; values.len()]), &mut shifted);
        let mut divided = values.clone();
        apply(&LoweredOp::Div(vec![1 << s; values.len()]), &mut divided);
        assert_eq!(shifted, divided, "shift {s}");
    }
}

/// Graphs outside the supported pattern fall back to tract under `Auto` and are a clear
/// error under `Native`.
#[cfg(feature = "tract")]
#[test]
fn other_graphs_fall_back_to_tract() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny.arcm");
    let bundle = Bundle::open(path)?;
    assert_eq!(load(&bundle, Engine::Auto)?.engine(), Engine::Tract);
    let err = load(&bundle, Engine::Native)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("the native engine cannot run it"), "{err}");
    Ok(())
}
