//! The kernels' one entry point: [`Matrix`], a checked view of a weight matrix (or of the key
//! cache) in place, [`Isa`], the instruction set picked once per model, and the dispatching
//! [`matmul`] and [`weighted_sum`].

use crate::llama::kernels::generic::{self, Rows};

/// The instruction set the kernels run on, detected once ([`Isa::detect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The portable loops; `fma` fuses their multiply-adds (the SIMD kernels' bits).
    Portable {
        /// Fused multiply-adds.
        fma: bool,
    },
    /// AVX2, FMA and F16C (x86-64).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// NEON (aarch64, where it is always present).
    #[cfg(target_arch = "aarch64")]
    Neon,
}

impl Isa {
    /// The fastest set this CPU has: AVX2 with FMA and F16C on x86-64, NEON on aarch64, the
    /// portable loops without fused multiply-adds elsewhere.
    pub(crate) fn detect() -> Isa {
        #[cfg(all(target_arch = "x86_64", target_endian = "little"))]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Isa::Avx2;
        }
        #[cfg(all(target_arch = "aarch64", target_endian = "little"))]
        return Isa::Neon;
        #[allow(unreachable_code)]
        Isa::Portable { fma: false }
    }

    /// Whether multiply-adds are fused: the portable loops with this flag give this set's bits.
    pub(crate) fn fma(self) -> bool {
        match self {
            Isa::Portable { fma } => fma,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => true,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
        }
    }

    /// The portable loops with this set's bits.
    pub(crate) fn portable(self) -> Isa {
        Isa::Portable { fma: self.fma() }
    }
}

/// A `[rows][cols]` matrix (rows `stride` elements apart) read in place, its length checked
/// once at construction so the kernels index it freely.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a> {
    data: Rows<'a>,
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<'a> Matrix<'a> {
    /// The view, or what is wrong with the lengths.
    pub(crate) fn new(
        data: Rows<'a>,
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Result<Matrix<'a>, String> {
        if stride < cols {
            return Err(format!("row stride {stride} under the width {cols}"));
        }
        let elements = match rows {
            0 => 0,
            _ => (rows - 1)
                .checked_mul(stride)
                .and_then(|e| e.checked_add(cols))
                .ok_or("size overflows")?,
        };
        let (have, need) = match data {
            Rows::F32(b) => (b.len(), elements.checked_mul(4)),
            Rows::F16(b) => (b.len(), elements.checked_mul(2)),
            Rows::I8 { q, scales } => {
                if scales.len() < rows * 4 {
                    return Err(format!("{} scale bytes for {rows} rows", scales.len()));
                }
                (q.len(), Some(elements))
            }
            Rows::Floats(f) => (f.len(), Some(elements)),
        };
        match need {
            Some(need) if need <= have => Ok(Matrix {
                data,
                rows,
                cols,
                stride,
            }),
            _ => Err(format!(
                "{have} elements' bytes for {rows} rows of {cols} (stride {stride})"
            )),
        }
    }

    /// Row `row` as f32 into `out` (`cols` long): an embedding lookup.
    pub(crate) fn row_f32(&self, row: usize, out: &mut [f32]) {
        assert!(row < self.rows && out.len() == self.cols);
        generic::row_f32(self.data, row, self.stride, out);
    }
}

/// `y[t][o] = sum_i x[t][i] * w[o][i]` (times `w`'s row scale for int8) for the
/// `x.len() / w.cols()` rows `t` of `x`; `y` is `[n][w.rows()]`. Every output is the dot
/// product of [`generic`]'s order, whatever the number of rows of `x` and on every [`Isa`]
/// with the same [`Isa::fma`].
pub(crate) fn matmul(isa: Isa, x: &[f32], w: &Matrix<'_>, y: &mut [f32]) {
    let k = w.cols;
    assert!(k > 0 && x.len().is_multiple_of(k));
    let n = x.len() / k;
    assert!(y.len() == n * w.rows);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if k.is_multiple_of(8) => {
            #[allow(unsafe_code)]
            // SAFETY: `Isa::Avx2` is built only when AVX2, FMA and F16C were detected
            // (`Isa::detect`); the tests build it the same way.
            unsafe {
                crate::llama::kernels::x86_64::matmul(x, k, w.data, w.rows, w.stride, y)
            }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if k.is_multiple_of(8) => {
            #[allow(unsafe_code)]
            // SAFETY: NEON is part of the aarch64 baseline (`Isa::Neon` exists only there).
            unsafe {
                crate::llama::kernels::aarch64::matmul(x, k, w.data, w.rows, w.stride, y)
            }
        }
        _ => generic::matmul(x, k, w.data, w.rows, w.stride, y, isa.fma()),
    }
}

/// `out[c] = sum_j p[j] * vals[j * stride + c]`, one chain per output over `j` in order (the
/// attention's weighted sum of values).
pub(crate) fn weighted_sum(isa: Isa, p: &[f32], vals: &[f32], stride: usize, out: &mut [f32]) {
    let hd = out.len();
    assert!(p.is_empty() || vals.len() >= (p.len() - 1) * stride + hd);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if hd.is_multiple_of(8) => {
            #[allow(unsafe_code)]
            // SAFETY: `Isa::Avx2` is built only when AVX2, FMA and F16C were detected.
            unsafe {
                crate::llama::kernels::x86_64::weighted_sum(p, vals, stride, out)
            }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if hd.is_multiple_of(8) => {
            #[allow(unsafe_code)]
            // SAFETY: NEON is part of the aarch64 baseline (`Isa::Neon` exists only there).
            unsafe {
                crate::llama::kernels::aarch64::weighted_sum(p, vals, stride, out)
            }
        }
        _ => generic::weighted_sum(p, vals, stride, out, isa.fma()),
    }
}
