//! `emit`: a compressor bundle as a `no_std` Rust module for microcontrollers.
//!
//! The bundle's graph is lowered by the runtime's native engine
//! ([`arca_runtime::engine::lower_bundle`]: the same analysis that proves every integer bound,
//! so the emitted code inherits its proof), and written out as:
//!
//! - the weights, embedding, per-channel constants and lookup tables as `static` arrays of the
//!   narrowest integer type that holds them (they live in flash, not RAM);
//! - one function per dense layer with its sizes as constants: the dot products, then the
//!   elementwise chain in the graph's order, then the table;
//! - `Model`, a struct of fixed scratch buffers (no heap) that implements
//!   [`arca_embedded::Network`], plus `MODEL_ID`, `MODEL_NAME` and the coding parameters.
//!
//! The arithmetic is the native engine's, operation for operation (i32 products and sums that
//! wrap, division truncating toward zero), so the emitted model computes exactly the runtime's
//! logits: `tests/tests/embedded.rs` compares them on real and PAD-heavy contexts and decodes
//! PC streams with the emitted model. The output is a pure function of the bundle, so it is
//! golden-tested (`codegen/tests/emit.rs`).
//!
//! ```no_run
//! let bundle = arca_runtime::bundle::Bundle::open(std::path::Path::new("models/text-embedded.arcm"))?;
//! let source = arca_codegen::emit::emit(&bundle)?;
//! std::fs::write("model.rs", source)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use arca_runtime::bundle::{Bundle, ModelKind};
use arca_runtime::engine::{LoweredOp, lower_bundle};

/// Why a bundle cannot be emitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// Only compressors (byte models) can be emitted.
    #[error("model '{name}' is a {kind}, not a compressor")]
    NotCompressor {
        /// The model.
        name: String,
        /// What it is.
        kind: String,
    },
    /// The graph is not an integer MLP the native engine lowers.
    #[error("model '{name}' is not an integer-exact MLP the native engine runs: {reason}")]
    NotLowerable {
        /// The model.
        name: String,
        /// Why.
        reason: String,
    },
    /// Lowered, but not a shape the emitted code supports.
    #[error("model '{name}': {reason}")]
    Unsupported {
        /// The model.
        name: String,
        /// Why.
        reason: String,
    },
}

/// What the emitted module occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmitReport {
    /// Bytes of `static` data (weights, tables, constants): flash.
    pub static_bytes: usize,
    /// Bytes of `Model`'s scratch buffers: RAM.
    pub scratch_bytes: usize,
    /// Multiply-adds per predicted byte.
    pub macs: usize,
}

fn widen(c: &[i32]) -> Vec<i64> {
    c.iter().map(|&v| i64::from(v)).collect()
}

/// The narrowest integer type of `values`.
fn int_type(values: impl Iterator<Item = i64> + Clone) -> (&'static str, usize) {
    let (lo, hi) = values
        .clone()
        .fold((0i64, 0i64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo >= i64::from(i8::MIN) && hi <= i64::from(i8::MAX) {
        ("i8", 1)
    } else if lo >= i64::from(i16::MIN) && hi <= i64::from(i16::MAX) {
        ("i16", 2)
    } else {
        ("i32", 4)
    }
}

/// A `static NAME: [T; N] = [...];` of `values`, 24 to a line. Returns the bytes it takes.
fn static_array(out: &mut String, doc: &str, name: &str, ty: &str, values: &[i64]) -> usize {
    let size = match ty {
        "i8" | "u8" => 1,
        "i16" | "u16" => 2,
        _ => 4,
    };
    let _ = writeln!(out, "/// {doc}");
    let _ = writeln!(out, "static {name}: [{ty}; {}] = [", values.len());
    for chunk in values.chunks(24) {
        let line: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let _ = writeln!(out, "    {},", line.join(", "));
    }
    let _ = writeln!(out, "];\n");
    values.len() * size
}

/// Emits the `no_std` Rust module for a compressor bundle; see the [module docs](self).
pub fn emit(bundle: &Bundle) -> Result<String, EmitError> {
    emit_with_report(bundle).map(|(s, _)| s)
}

/// [`emit`], with the sizes of what it emitted.
pub fn emit_with_report(bundle: &Bundle) -> Result<(String, EmitReport), EmitError> {
    let m = bundle.manifest();
    let name = m.name.clone();
    if m.kind != ModelKind::Compressor {
        return Err(EmitError::NotCompressor {
            name,
            kind: format!("{:?}", m.kind).to_lowercase(),
        });
    }
    let mlp = lower_bundle(bundle).map_err(|reason| EmitError::NotLowerable {
        name: name.clone(),
        reason,
    })?;
    let unsupported = |reason: String| EmitError::Unsupported {
        name: name.clone(),
        reason,
    };
    let last = mlp
        .layers
        .last()
        .ok_or_else(|| unsupported("no dense layer".into()))?;
    if last.outputs != 256 || last.table.is_some() {
        return Err(unsupported(format!(
            "the last layer has {} outputs{}; a byte model has 256 logits",
            last.outputs,
            if last.table.is_some() {
                " and a table"
            } else {
                ""
            }
        )));
    }
    let pad = u16::try_from(m.pad_id)
        .ok()
        .filter(|&p| usize::from(p) < mlp.vocab_rows && p >= 256)
        .ok_or_else(|| unsupported(format!("PAD {} has no embedding row", m.pad_id)))?;
    if m.logit_frac_bits > 16 {
        return Err(unsupported(format!(
            "{} fractional bits of logits (at most 16)",
            m.logit_frac_bits
        )));
    }
    let n = mlp.context_len;
    if n > arca_embedded::MAX_CONTEXT {
        return Err(unsupported(format!("a context of {n} bytes is too long")));
    }
    if mlp.layers[0].inputs != n * mlp.dim {
        return Err(unsupported(
            "the first layer does not read the embedded context".into(),
        ));
    }
    for w in mlp.layers.windows(2) {
        if w[1].inputs != w[0].outputs || w[0].table.is_none() {
            return Err(unsupported("layers do not chain through tables".into()));
        }
    }

    let mut out = String::new();
    let mut statics = 0usize;
    let id = bundle.id();
    let _ = writeln!(
        out,
        "// @generated by `arca-codegen emit` from the bundle '{name}' (id {id:032x}).\n\
         // Do not edit: regenerate with `arca-codegen emit BUNDLE -o FILE`.\n"
    );
    let _ = writeln!(
        out,
        "//! The integer-exact byte model `{name}` as `no_std` Rust: weights in `static` arrays\n\
         //! (flash), inference with fixed buffers (no heap), the same integers as arca's runtime.\n\
         //!\n\
         //! {}\n",
        m.description.replace('\n', " ")
    );
    let _ = writeln!(
        out,
        "#![allow(clippy::all, clippy::pedantic, missing_docs)]\n"
    );
    let _ = writeln!(out, "use core::convert::Infallible;\n");
    let _ = writeln!(
        out,
        "/// The bundle's id (`Bundle::id`): streams name it in their header."
    );
    let _ = writeln!(out, "pub const MODEL_ID: u128 = 0x{id:032x};");
    let _ = writeln!(out, "/// The model's name.");
    let _ = writeln!(out, "pub const MODEL_NAME: &str = {name:?};");
    let _ = writeln!(out, "/// Bytes of context per prediction.");
    let _ = writeln!(out, "pub const CONTEXT_LEN: usize = {n};");
    let _ = writeln!(out, "/// The context value before a block's start.");
    let _ = writeln!(out, "pub const PAD: u16 = {pad};");
    let _ = writeln!(out, "/// Fractional bits of the logits.");
    let _ = writeln!(out, "pub const FRAC_BITS: u32 = {};", m.logit_frac_bits);
    let _ = writeln!(out, "const VOCAB_ROWS: usize = {};", mlp.vocab_rows);
    let _ = writeln!(out, "const DIM: usize = {};\n", mlp.dim);

    let emb: Vec<i64> = mlp.embedding.iter().map(|&v| i64::from(v)).collect();
    let (emb_ty, _) = int_type(emb.iter().copied());
    statics += static_array(
        &mut out,
        "Embedding `[VOCAB_ROWS][DIM]`.",
        "EMBEDDING",
        emb_ty,
        &emb,
    );

    let width = mlp
        .layers
        .iter()
        .map(|l| l.inputs.max(l.outputs))
        .max()
        .unwrap_or(0);
    let mut macs = 0usize;
    let mut layer_fns = String::new();
    for (li, layer) in mlp.layers.iter().enumerate() {
        let (k, mo) = (layer.inputs, layer.outputs);
        macs += k * mo;
        let w: Vec<i64> = layer.weights.iter().map(|&v| i64::from(v)).collect();
        statics += static_array(
            &mut out,
            &format!("Layer {li} weights `[{mo}][{k}]`."),
            &format!("L{li}_W"),
            "i8",
            &w,
        );
        let mut body = String::new();
        for (oi, op) in layer.ops.iter().enumerate() {
            let cname = format!("L{li}_OP{oi}");
            // The constants (if any) and the statement, `C` standing for this channel's one.
            let (values, stmt): (Vec<i64>, &str) = match op {
                LoweredOp::Mul(c) => (widen(c), "a = a.wrapping_mul(C);"),
                LoweredOp::Add(c) => (widen(c), "a = a.wrapping_add(C);"),
                LoweredOp::Sub(c) => (widen(c), "a = a.wrapping_sub(C);"),
                // Divisors are non-zero and MIN / -1 is excluded by the lowering.
                LoweredOp::Div(c) => (widen(c), "a = a.wrapping_div(C);"),
                // Truncation toward zero: add 2^s - 1 to a negative dividend before the shift.
                LoweredOp::DivPow2(c) => (
                    c.iter().map(|&v| i64::from(v)).collect(),
                    "let s = C as u32; a = a.wrapping_add((a >> 31) & ((1i32 << s) - 1)) >> s;",
                ),
                LoweredOp::Clip(lo, hi) => {
                    let _ = writeln!(body, "        a = a.clamp({lo}, {hi});");
                    continue;
                }
                other => {
                    return Err(unsupported(format!("elementwise operation {other:?}")));
                }
            };
            if values.len() != mo {
                return Err(unsupported(format!(
                    "layer {li} operation {oi} has {} constants for {mo} channels",
                    values.len()
                )));
            }
            let (ty, _) = int_type(values.iter().copied());
            statics += static_array(
                &mut out,
                &format!("Layer {li}, operation {oi}: per-channel constants."),
                &cname,
                ty,
                &values,
            );
            let c = if ty == "i32" {
                format!("{cname}[j]")
            } else {
                format!("i32::from({cname}[j])")
            };
            let _ = writeln!(body, "        {}", stmt.replace('C', &c));
        }
        let store = match &layer.table {
            Some(t) => {
                let tv: Vec<i64> = t.iter().map(|&v| i64::from(v)).collect();
                let (tty, _) = int_type(tv.iter().copied());
                statics += static_array(
                    &mut out,
                    &format!("Layer {li} nonlinearity, indexed by the requantized accumulator."),
                    &format!("L{li}_TABLE"),
                    tty,
                    &tv,
                );
                format!(
                    "        // Indices are proven in range by the lowering; out of range would read 0.\n        \
                     y[j] = L{li}_TABLE.get(a as usize).map_or(0, |&v| i16::from(v));"
                )
            }
            None => "        y[j] = a;".to_owned(),
        };
        let (yty, yname) = if layer.table.is_some() {
            ("i16", "next layer's input")
        } else {
            ("i32", "logits")
        };
        let _ = write!(
            layer_fns,
            "/// Layer {li}: `{k}` inputs to `{mo}` outputs ({yname}).\n\
             #[inline(never)]\n\
             fn layer{li}(x: &[i16], y: &mut [{yty}]) {{\n    \
             const K: usize = {k};\n    \
             const M: usize = {mo};\n    \
             let (x, y) = (&x[..K], &mut y[..M]);\n    \
             for (j, w) in L{li}_W.chunks_exact(K).enumerate() {{\n        \
             let mut a = 0i32;\n        \
             for (&xv, &wv) in x.iter().zip(w) {{\n            \
             a = a.wrapping_add(i32::from(xv) * i32::from(wv));\n        \
             }}\n\
             {body}{store}\n    \
             }}\n\
             }}\n\n"
        );
    }
    out.push_str(&layer_fns);
    let nl = mlp.layers.len();
    let mut calls = String::new();
    for li in 0..nl {
        let (src, dst) = if li % 2 == 0 { ("x", "h") } else { ("h", "x") };
        if li + 1 == nl {
            let _ = writeln!(calls, "        layer{li}(&self.{src}, out);");
        } else {
            let _ = writeln!(calls, "        layer{li}(&self.{src}, &mut self.{dst});");
        }
    }
    let _ = write!(
        out,
        "/// The model with its scratch buffers ({scratch} bytes of RAM; no heap).\n\
         pub struct Model {{\n    \
         x: [i16; {width}],\n    \
         h: [i16; {width}],\n\
         }}\n\n\
         impl Model {{\n    \
         /// A model ready to run.\n    \
         pub const fn new() -> Self {{\n        \
         Model {{ x: [0; {width}], h: [0; {width}] }}\n    \
         }}\n\n    \
         /// Logits of the byte after `context` ([`CONTEXT_LEN`] values, oldest first; a value\n    \
         /// without an embedding row reads PAD's).\n    \
         pub fn logits(&mut self, context: &[u16], out: &mut [i32; 256]) {{\n        \
         for (p, &c) in context.iter().take(CONTEXT_LEN).enumerate() {{\n            \
         let row = if usize::from(c) < VOCAB_ROWS {{ usize::from(c) }} else {{ usize::from(PAD) }};\n            \
         for d in 0..DIM {{\n                \
         self.x[p * DIM + d] = i16::from(EMBEDDING[row * DIM + d]);\n            \
         }}\n        \
         }}\n\
         {calls}    \
         }}\n\
         }}\n\n\
         impl Default for Model {{\n    \
         fn default() -> Self {{\n        \
         Self::new()\n    \
         }}\n\
         }}\n\n\
         impl arca_embedded::Network for Model {{\n    \
         type Error = Infallible;\n    \
         fn context_len(&self) -> usize {{\n        \
         CONTEXT_LEN\n    \
         }}\n    \
         fn pad(&self) -> u16 {{\n        \
         PAD\n    \
         }}\n    \
         fn frac_bits(&self) -> u32 {{\n        \
         FRAC_BITS\n    \
         }}\n    \
         fn logits(&mut self, context: &[u16], out: &mut [i32; 256]) -> Result<(), Infallible> {{\n        \
         Model::logits(self, context, out);\n        \
         Ok(())\n    \
         }}\n\
         }}\n",
        scratch = 2 * width * 2,
    );
    let report = EmitReport {
        static_bytes: statics,
        scratch_bytes: 2 * width * 2,
        macs,
    };
    Ok((out, report))
}
