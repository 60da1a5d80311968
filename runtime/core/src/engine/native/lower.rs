//! Lowering: the ONNX graph of an integer MLP pattern-matched into [`IntMlp`] layers, with the
//! interval analysis that proves every intermediate exact (see the module doc of `native`).

use std::collections::HashMap;

use crate::engine::onnx;
use arca_bundle::Bundle;

use super::kernels::*;
use super::mlp::*;

/// Largest magnitude an f32 partial sum may reach and stay exact.
const F32_EXACT: i64 = 1 << 24;

/// A constant (initializer) as exact integers, with its ONNX shape.
struct Const {
    dims: Vec<usize>,
    values: Vec<i64>,
    /// ONNX data type code of the initializer.
    dtype: i32,
}

const ONNX_FLOAT: i32 = 1;
const ONNX_INT8: i32 = 3;
const ONNX_INT32: i32 = 6;
const ONNX_INT64: i32 = 7;

fn decode_const(t: &onnx::TensorProto, bundle: &Bundle) -> Result<Const, String> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor `{}` has dim {d}", t.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("tensor `{}` is too large", t.name))?;
    let external = t.data_location == Some(onnx::DATA_LOCATION_EXTERNAL);
    let raw: &[u8] = if external {
        let key = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == k)
                .and_then(|e| e.value.parse::<usize>().ok())
        };
        let offset = key("offset").unwrap_or(0);
        let length = key("length").ok_or_else(|| format!("tensor `{}` has no length", t.name))?;
        offset
            .checked_add(length)
            .and_then(|end| bundle.payload().get(offset..end))
            .ok_or_else(|| format!("tensor `{}` lies outside the payload", t.name))?
    } else {
        &t.raw_data
    };
    let width = match t.data_type {
        ONNX_FLOAT | ONNX_INT32 => 4,
        ONNX_INT8 => 1,
        ONNX_INT64 => 8,
        other => return Err(format!("tensor `{}` has data type {other}", t.name)),
    };
    let values: Vec<i64> = if raw.is_empty() && count > 0 {
        // Typed fields (small constants written without raw_data).
        match t.data_type {
            ONNX_FLOAT => t
                .float_data
                .iter()
                .map(|&v| f32_int(v, &t.name))
                .collect::<Result<_, _>>()?,
            ONNX_INT8 | ONNX_INT32 => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
            _ => t.int64_data.clone(),
        }
    } else {
        if raw.len() != count * width {
            return Err(format!(
                "tensor `{}` has {} bytes for {count} values",
                t.name,
                raw.len()
            ));
        }
        match t.data_type {
            ONNX_FLOAT => raw
                .chunks_exact(4)
                .map(|b| f32_int(f32::from_le_bytes([b[0], b[1], b[2], b[3]]), &t.name))
                .collect::<Result<_, _>>()?,
            ONNX_INT32 => raw
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            ONNX_INT8 => raw.iter().map(|&b| i64::from(b as i8)).collect(),
            _ => raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
        }
    };
    if values.len() != count {
        return Err(format!(
            "tensor `{}` has {} values for shape {dims:?}",
            t.name,
            values.len()
        ));
    }
    Ok(Const {
        dims,
        values,
        dtype: t.data_type,
    })
}

/// An f32 carrier value as an exact integer.
fn f32_int(v: f32, name: &str) -> Result<i64, String> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 2f32.powi(31) {
        Ok(v as i64)
    } else {
        Err(format!("tensor `{name}` holds {v}, not an integer"))
    }
}

/// What the chain's current value is.
enum Cur {
    Context,
    /// Gathered embedding rows, before Flatten.
    Embedded,
    /// Activations feeding a dense layer, with per-channel value ranges and carrier type.
    Act {
        ranges: Vec<(i64, i64)>,
        f32_carrier: bool,
    },
    /// f32 accumulations (before the Cast to int32).
    AccF32 {
        ranges: Vec<(i64, i64)>,
    },
    /// int32 channels.
    Int {
        ranges: Vec<(i64, i64)>,
    },
}

fn i32_range(r: (i64, i64)) -> bool {
    r.0 >= i64::from(i32::MIN) && r.1 <= i64::from(i32::MAX)
}

fn int_attr(node: &onnx::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// Lowers a bundle's graph to an [`IntMlp`], or says why it can't be (the caller uses tract).
pub(crate) fn lower(
    bundle: &Bundle,
    proto: &onnx::ModelProto,
    input: &str,
    output: &str,
    context_len: usize,
) -> Result<IntMlp, String> {
    let graph = proto.graph.as_ref().ok_or("no graph")?;
    let inits: HashMap<&str, &onnx::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut cur = Cur::Context;
    let mut cur_name = input.to_owned();
    let (mut rows, mut dim, mut emb) = (0usize, 0usize, Vec::<i16>::new());
    let mut emb_dtype = 0;
    let mut layers: Vec<Dense> = Vec::new();
    for node in &graph.node {
        let op = node.op_type.as_str();
        let what = || format!("node `{}` ({op})", node.name);
        let [out_name] = node.output.as_slice() else {
            return Err(format!("{} has {} outputs", what(), node.output.len()));
        };
        // Exactly one input is the chain's current value; the others are constants.
        let mut position = None;
        let mut consts = Vec::new();
        for (i, name) in node.input.iter().enumerate() {
            if *name == cur_name {
                if position.replace(i).is_some() {
                    return Err(format!("{} reads the chain value twice", what()));
                }
            } else if name.is_empty() {
                consts.push(None);
            } else {
                let t = inits.get(name.as_str()).ok_or_else(|| {
                    format!("{} reads `{name}`, not a constant nor the chain", what())
                })?;
                consts.push(Some(decode_const(t, bundle)?));
            }
        }
        let position = position.ok_or_else(|| format!("{} is not on the chain", what()))?;
        let one_const = |consts: &mut Vec<Option<Const>>| match consts.as_mut_slice() {
            [Some(_)] => consts.pop().flatten().ok_or_else(what),
            _ => Err(format!("{} needs exactly one constant operand", what())),
        };
        cur = match (op, cur) {
            ("Gather", Cur::Context) => {
                let e = one_const(&mut consts)?;
                if position != 1 || int_attr(node, "axis").unwrap_or(0) != 0 || e.dims.len() != 2 {
                    return Err(format!(
                        "{}: expected Gather(table[V, D], context, axis=0)",
                        what()
                    ));
                }
                (rows, dim) = (e.dims[0], e.dims[1]);
                emb =
                    to_i16(&e.values).ok_or_else(|| format!("{}: embedding is not i16", what()))?;
                emb_dtype = e.dtype;
                Cur::Embedded
            }
            ("Flatten", Cur::Embedded) => {
                if int_attr(node, "axis").unwrap_or(1) != 1 {
                    return Err(format!("{}: expected axis 1", what()));
                }
                let col = |d: usize| {
                    let vals = emb
                        .iter()
                        .skip(d)
                        .step_by(dim.max(1))
                        .map(|&v| i64::from(v));
                    (vals.clone().min().unwrap_or(0), vals.max().unwrap_or(0))
                };
                let per_dim: Vec<(i64, i64)> = (0..dim).map(col).collect();
                let ranges = (0..context_len)
                    .flat_map(|_| per_dim.iter().copied())
                    .collect();
                Cur::Act {
                    ranges,
                    f32_carrier: emb_dtype == ONNX_FLOAT,
                }
            }
            (
                mm @ ("MatMul" | "MatMulInteger"),
                Cur::Act {
                    ranges,
                    f32_carrier,
                },
            ) => {
                let w = one_const(&mut consts)?;
                let float = mm == "MatMul";
                if position != 0 || w.dims.len() != 2 || w.dims[0] != ranges.len() {
                    return Err(format!(
                        "{}: expected x[.., {}] . W[{}, M]",
                        what(),
                        ranges.len(),
                        ranges.len()
                    ));
                }
                if float != f32_carrier
                    || (float && w.dtype != ONNX_FLOAT)
                    || (!float && w.dtype != ONNX_INT8)
                {
                    return Err(format!("{}: carrier types do not match", what()));
                }
                let (k, m) = (w.dims[0], w.dims[1]);
                let mut wt = vec![0i8; k * m];
                let mut acc = Vec::with_capacity(m);
                for j in 0..m {
                    let (mut lo, mut hi, mut abs) = (0i64, 0i64, 0i64);
                    for (kk, &(xlo, xhi)) in ranges.iter().enumerate() {
                        let v = w.values[kk * m + j];
                        wt[j * k + kk] = i8::try_from(v)
                            .map_err(|_| format!("{}: weight {v} is not i8", what()))?;
                        lo += (v * xlo).min(v * xhi);
                        hi += (v * xlo).max(v * xhi);
                        abs += v.abs() * xlo.abs().max(xhi.abs());
                    }
                    let limit = if float { F32_EXACT } else { 1 << 31 };
                    if abs >= limit {
                        return Err(format!(
                            "{}: channel {j} can reach {abs} (limit {limit})",
                            what()
                        ));
                    }
                    acc.push((lo, hi));
                }
                layers.push(Dense {
                    k,
                    m,
                    wt,
                    packed: Vec::new(),
                    ops: Vec::new(),
                    table: None,
                });
                if float {
                    Cur::AccF32 { ranges: acc }
                } else {
                    Cur::Int { ranges: acc }
                }
            }
            ("Cast", Cur::AccF32 { ranges }) => {
                if int_attr(node, "to") != Some(i64::from(ONNX_INT32)) {
                    return Err(format!("{}: only Cast to INT32 is supported", what()));
                }
                Cur::Int { ranges }
            }
            (bin @ ("Mul" | "Add" | "Sub" | "Div"), Cur::Int { ranges }) => {
                let c = one_const(&mut consts)?;
                let m = ranges.len();
                if (bin == "Sub" || bin == "Div") && position != 0 {
                    return Err(format!(
                        "{}: the chain value must be the left operand",
                        what()
                    ));
                }
                if c.dtype != ONNX_INT32 {
                    return Err(format!("{}: operand is not int32", what()));
                }
                let vals: Vec<i64> = match c.values.len() {
                    1 if c.dims.iter().all(|&d| d == 1) => vec![c.values[0]; m],
                    n if n == m && c.dims.last() == Some(&m) => c.values,
                    _ => {
                        return Err(format!(
                            "{}: operand shape {:?} does not broadcast to [{m}]",
                            what(),
                            c.dims
                        ));
                    }
                };
                let mut next = Vec::with_capacity(m);
                for (&(lo, hi), &c) in ranges.iter().zip(&vals) {
                    let r = match bin {
                        "Mul" => ((lo * c).min(hi * c), (lo * c).max(hi * c)),
                        "Add" => (lo + c, hi + c),
                        "Sub" => (lo - c, hi - c),
                        _ => {
                            if c == 0 || (c == -1 && lo == i64::from(i32::MIN)) {
                                return Err(format!("{}: division may trap", what()));
                            }
                            // Truncating division is monotone in the dividend.
                            let (a, b) = (lo / c, hi / c);
                            (a.min(b), a.max(b))
                        }
                    };
                    if !i32_range(r) {
                        return Err(format!("{}: result {r:?} may overflow int32", what()));
                    }
                    next.push(r);
                }
                let vals: Vec<i32> = vals.iter().map(|&v| v as i32).collect();
                let layer = layers.last_mut().ok_or_else(what)?;
                layer.ops.push(match bin {
                    "Mul" => LoweredOp::Mul(vals),
                    "Add" => LoweredOp::Add(vals),
                    "Sub" => LoweredOp::Sub(vals),
                    _ if vals
                        .iter()
                        .all(|&v| v > 0 && v.count_ones() == 1 && v < 1 << 30) =>
                    {
                        LoweredOp::DivPow2(vals.iter().map(|v| v.trailing_zeros()).collect())
                    }
                    _ => LoweredOp::Div(vals),
                });
                Cur::Int { ranges: next }
            }
            ("Clip", Cur::Int { ranges }) => {
                let scalar = |c: Option<&Option<Const>>, default: i64| match c {
                    None | Some(None) => Ok(default),
                    Some(Some(c)) if c.values.len() == 1 && c.dtype == ONNX_INT32 => {
                        Ok(c.values[0])
                    }
                    Some(Some(_)) => Err(format!("{}: bounds must be int32 scalars", what())),
                };
                if position != 0 {
                    return Err(format!("{}: expected Clip(x, lo, hi)", what()));
                }
                let lo = scalar(consts.first(), i64::from(i32::MIN))?;
                let hi = scalar(consts.get(1), i64::from(i32::MAX))?;
                if lo > hi {
                    return Err(format!("{}: empty clip range", what()));
                }
                let layer = layers.last_mut().ok_or_else(what)?;
                layer.ops.push(LoweredOp::Clip(lo as i32, hi as i32));
                Cur::Int {
                    ranges: ranges
                        .iter()
                        .map(|&(a, b)| (a.clamp(lo, hi), b.clamp(lo, hi)))
                        .collect(),
                }
            }
            ("Gather", Cur::Int { ranges }) => {
                let t = one_const(&mut consts)?;
                if position != 1 || int_attr(node, "axis").unwrap_or(0) != 0 || t.dims.len() != 1 {
                    return Err(format!("{}: expected Gather(table[L], x, axis=0)", what()));
                }
                let len = t.values.len() as i64;
                let table =
                    to_i16(&t.values).ok_or_else(|| format!("{}: table is not i16", what()))?;
                let mut next = Vec::with_capacity(ranges.len());
                for &(lo, hi) in &ranges {
                    if lo < 0 || hi >= len {
                        return Err(format!(
                            "{}: index range {lo}..={hi} is not inside 0..{len}",
                            what()
                        ));
                    }
                    let seen = &t.values[lo as usize..=hi as usize];
                    next.push((
                        seen.iter().copied().min().unwrap_or(0),
                        seen.iter().copied().max().unwrap_or(0),
                    ));
                }
                let layer = layers.last_mut().ok_or_else(what)?;
                layer.table = Some(table);
                Cur::Act {
                    ranges: next,
                    f32_carrier: t.dtype == ONNX_FLOAT,
                }
            }
            (_, _) => return Err(format!("{} is not supported here", what())),
        };
        cur_name.clone_from(out_name);
        if cur_name == output {
            break;
        }
    }
    if cur_name != output || !matches!(cur, Cur::Int { .. }) {
        return Err(format!("the chain does not end in int32 output `{output}`"));
    }
    if rows == 0 || layers.is_empty() {
        return Err("no embedding or no dense layer".into());
    }
    #[cfg(target_arch = "x86_64")]
    let kernel = if std::arch::is_x86_feature_detected!("avx2") {
        Kernel::Avx2
    } else {
        Kernel::Portable
    };
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = Kernel::Portable;
    if kernel != Kernel::Portable {
        for layer in &mut layers {
            layer.packed = pack_pairs(&layer.wt, layer.k, layer.m);
        }
    }
    let first = fold_first_layer(&emb, rows, dim, context_len, &layers[0]);
    Ok(IntMlp {
        context_len,
        rows,
        dim,
        emb,
        layers,
        first,
        lead: None,
        kernel,
    })
}

/// One dense layer of a [`LoweredMlp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredLayer {
    /// Inputs per output channel.
    pub inputs: usize,
    /// Output channels.
    pub outputs: usize,
    /// Weights `[outputs][inputs]`: output `j` is `sum_i x[i] * weights[j * inputs + i]`.
    pub weights: Vec<i8>,
    /// The elementwise chain on the accumulators.
    pub ops: Vec<LoweredOp>,
    /// The nonlinearity `x'[j] = table[acc[j]]` (indices proven in range), or `None` for the
    /// output layer, whose accumulators are the logits.
    pub table: Option<Vec<i16>>,
}

/// The integer MLP a bundle's graph lowers to, as plain data: what the native engine runs,
/// and what `arca-codegen emit` writes out as `no_std` Rust. A copy: changing it changes
/// nothing in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredMlp {
    /// Context bytes per prediction.
    pub context_len: usize,
    /// Rows of the embedding (context values are below this).
    pub vocab_rows: usize,
    /// Embedding width.
    pub dim: usize,
    /// Embedding `[vocab_rows][dim]`: `x[p * dim + d] = embedding[context[p] * dim + d]`.
    pub embedding: Vec<i16>,
    /// Dense layers, first to last.
    pub layers: Vec<LoweredLayer>,
}

/// Lowers a compressor bundle's graph to its integer MLP, or says why it can't be.
pub fn lower_bundle(bundle: &Bundle) -> Result<LoweredMlp, String> {
    let m = bundle.manifest();
    let proto = onnx::decode_model(bundle.onnx_graph_bytes())
        .map_err(|e| format!("bad ONNX graph: {e}"))?;
    let input = m.inputs.first().map_or("context", String::as_str);
    let output = m.outputs.first().map_or("logits", String::as_str);
    let context_len = usize::try_from(m.context_len)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("context_len {} is not positive", m.context_len))?;
    let mlp = lower(bundle, &proto, input, output, context_len)?;
    let layers = mlp
        .layers
        .iter()
        .map(|l| LoweredLayer {
            inputs: l.k,
            outputs: l.m,
            weights: l.wt.clone(),
            ops: l.ops.clone(),
            table: l.table.clone(),
        })
        .collect();
    Ok(LoweredMlp {
        context_len: mlp.context_len,
        vocab_rows: mlp.rows,
        dim: mlp.dim,
        embedding: mlp.emb,
        layers,
    })
}

/// Precomputes every position's contribution to the first dense layer (see [`IntMlp::first`]).
fn fold_first_layer(
    emb: &[i16],
    rows: usize,
    dim: usize,
    n: usize,
    layer: &Dense,
) -> Option<Vec<i32>> {
    let m = layer.m;
    let bytes = n.checked_mul(rows)?.checked_mul(m)?.checked_mul(4)?;
    if bytes > MAX_FOLDED_BYTES || layer.k != n * dim {
        return None;
    }
    let mut first = vec![0i32; n * rows * m];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: AVX2 was just detected.
        unsafe {
            fold_avx2(emb, rows, dim, n, layer, &mut first)
        };
        return Some(first);
    }
    fold_body(emb, rows, dim, n, layer, &mut first);
    Some(first)
}

/// [`fold_first_layer`]'s loops compiled for AVX2 (`vpmulld`): 67M multiply-adds for
/// text-small, most of the native engine's load time (47 ms in all, `load_bench`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fold_avx2(emb: &[i16], rows: usize, dim: usize, n: usize, layer: &Dense, first: &mut [i32]) {
    fold_body(emb, rows, dim, n, layer, first);
}

#[inline(always)]
fn fold_body(emb: &[i16], rows: usize, dim: usize, n: usize, layer: &Dense, first: &mut [i32]) {
    let m = layer.m;
    // Position p's weights transposed to [dim][m], so each byte's row is `dim` vector
    // multiply-adds over m contiguous channels.
    let mut wp = vec![0i32; dim * m];
    for p in 0..n {
        for (j, row) in layer.wt.chunks_exact(layer.k).enumerate() {
            for (d, &w) in row[p * dim..(p + 1) * dim].iter().enumerate() {
                wp[d * m + j] = i32::from(w);
            }
        }
        for (b, e) in emb.chunks_exact(dim).enumerate() {
            let out = &mut first[(p * rows + b) * m..][..m];
            for (&ed, w) in e.iter().zip(wp.chunks_exact(m)) {
                let ed = i32::from(ed);
                // Bounded by the layer's interval analysis; wrapping keeps the loop free of
                // overflow checks in debug builds, so it vectorizes there too.
                out.iter_mut()
                    .zip(w)
                    .for_each(|(o, &w)| *o = o.wrapping_add(ed.wrapping_mul(w)));
            }
        }
    }
}

fn to_i16(values: &[i64]) -> Option<Vec<i16>> {
    values.iter().map(|&v| i16::try_from(v).ok()).collect()
}
