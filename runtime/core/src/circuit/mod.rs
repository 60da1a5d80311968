//! Lossless image coding with a probabilistic circuit: a hidden Chow-Liu tree (HCLT).
//!
//! The model (Liu, Mandt and Van den Broeck, "Lossless Compression with Probabilistic Circuits",
//! ICLR 2022) is a tree over the D pixels of an image with one latent variable of M states per
//! pixel:
//!
//! ```text
//! p(x) = sum_z p(z_root) prod_{v != root} p(z_v | z_parent(v)) prod_v p(x_v | z_v)
//! ```
//!
//! Every probability is an integer frequency out of 2^16 (the bundle's `root_prior` \[M\],
//! `transitions` [D, M, M] = p(z_v | z_parent) and `leaves` [D, M, 256] = p(x_v | z_v), each row
//! summing to exactly 65,536, each entry at least 1) and the tree is `parent` \[D\] (-1 at the root),
//! with `image_shape` \[2\] = (height, width). `models/pc/` trains and exports it.
//!
//! # Coding: one pass over the tree per image
//!
//! Pixels are coded in the depth-first pre-order of the tree (children in increasing index), so
//! a pixel's parent is always coded first and, when pixel v is reached, everything already coded
//! lies outside v's subtree. Then
//!
//! ```text
//! p(x_v = x | coded) ∝ sum_z a_v(z) p(x | z_v = z),   a_v(z) ∝ p(z_v = z, coded)
//! ```
//!
//! and `a_v` comes from the parent's running product (its prior or downward message, its own
//! leaf and the upward messages of the children already finished) through one M x M matrix; when a
//! subtree is finished its upward message (one more M x M product) is folded into the parent. So
//! each pixel costs two M x M products and O(M log 256) for its distribution, and an image about
//! one pass over the circuit: the paper's O(log D |p|)-per-pixel scheme with the messages kept on
//! a stack (the height of the tree), not recomputed.
//!
//! # Determinism
//!
//! Everything is integer arithmetic in a fixed order, so a stream decodes on any machine:
//! messages are `u32` vectors renormalized after every product by a shift that puts their largest
//! entry in `[2^30, 2^31)` (products and sums are exact in `u64`), and a pixel's coding interval
//! comes from its exact cumulative weights `P(<x) = sum_z a(z) C(x | z)` (`C` the leaf's integer
//! CDF) through [`quantize_cumulative`]. That quantizer needs two sums of M products per encoded
//! pixel instead of a 256-way table, and the decoder finds the symbol by bisection.
//!
//! The same circuit runs in tract (the bundle's ONNX graph, `Likelihood`, with the `tract` feature): it gives the
//! log-likelihood, and marginals when pixels are given as 256, which the tests and `arca`'s
//! image bench use as the theoretical code length and as the naive per-pixel coder.

use std::fmt;

use arca_coder::quantize::quantize_cumulative;
use arca_coder::{ByteWordCursor, RangeDecoder, RangeEncoder};

use arca_bundle::{Bundle, DType, ModelKind};

/// Coder precision: pixel intervals are out of 2^24.
pub const PRECISION: u32 = 24;
/// Pixel values (8-bit grayscale).
pub const VALUES: usize = 256;
/// Every row of the integer tables sums to this.
pub const ROW_SUM: u32 = 1 << 16;
/// Largest number of latent states accepted (keeps every sum below 2^64).
pub const MAX_STATES: usize = 1024;

/// A bundle that is not a usable circuit, or an image it cannot code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    /// The bundle is not a circuit, or its tables or tree are malformed.
    #[error("model '{model}' is not a usable circuit: {why}")]
    Bad {
        /// Manifest name.
        model: String,
        /// What is wrong.
        why: String,
    },
    /// Images of another size.
    #[error(
        "images are {height}x{width}; model '{model}' codes {model_height}x{model_width} images"
    )]
    WrongSize {
        /// Manifest name.
        model: String,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
        /// The model's height.
        model_height: usize,
        /// The model's width.
        model_width: usize,
    },
    /// The pixel data is not a whole number of images.
    #[error("{len} pixel bytes are not a whole number of {pixels}-pixel images")]
    Ragged {
        /// Bytes given.
        len: usize,
        /// Pixels per image.
        pixels: usize,
    },
    /// The coded data cannot be decoded.
    #[error("damaged image data: {0}")]
    Damaged(String),
}

/// A hidden Chow-Liu tree circuit, loaded from a bundle and checked.
#[derive(Clone)]
pub struct Circuit {
    name: String,
    id: u128,
    height: usize,
    width: usize,
    states: usize,
    /// Parent of each pixel; `NONE` at the root.
    parent: Vec<u32>,
    /// Pixels in coding order (depth-first pre-order).
    order: Vec<u32>,
    /// Tree height + 1: the deepest stack of open pixels.
    levels: usize,
    prior: Vec<u32>,
    /// `transitions[v][a][b]` = p(z_v = b | z_parent = a) * 2^16.
    transitions: Vec<u16>,
    /// `cdf[v][x][z]` = sum of p(y | z_v = z) * 2^16 over y < x (below 2^16 for x < 256):
    /// the states of one value side by side, so a pixel's interval reads two cache lines.
    cdf: Vec<u16>,
}

impl fmt::Debug for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Circuit")
            .field("name", &self.name)
            .field("image", &(self.height, self.width))
            .field("states", &self.states)
            .field("depth", &self.levels)
            .finish()
    }
}

const NONE: u32 = u32::MAX;

/// Checks that every row of `table` (rows of `len`) sums to [`ROW_SUM`] with entries >= 1.
fn check_rows(table: &[u32], len: usize, what: &str) -> Result<(), String> {
    for (i, row) in table.chunks_exact(len).enumerate() {
        let sum: u64 = row.iter().map(|&f| u64::from(f)).sum();
        if sum != u64::from(ROW_SUM) || row.contains(&0) {
            return Err(format!(
                "row {i} of `{what}` sums to {sum} (expected {ROW_SUM}, every entry >= 1)"
            ));
        }
    }
    Ok(())
}

impl Circuit {
    /// Loads and checks the circuit of `bundle` (manifest kind `circuit`).
    pub fn load(bundle: &Bundle) -> Result<Circuit, CircuitError> {
        let m = bundle.manifest();
        let bad = |why: String| CircuitError::Bad {
            model: m.name.clone(),
            why,
        };
        if m.kind != ModelKind::Circuit {
            return Err(bad(format!("its kind is `{}`", m.kind)));
        }
        let u16_le = |w: [u8; 4]| u32::from(u16::from_le_bytes([w[0], w[1]]));
        let i32_le = i32::from_le_bytes;
        let shape = bundle
            .tensor_values("image_shape", DType::I32, &[2], i32_le)
            .map_err(bad)?;
        let (height, width) = match shape[..] {
            [h, w] if h >= 1 && w >= 1 => (h as usize, w as usize),
            _ => return Err(bad(format!("image_shape is {shape:?}"))),
        };
        let d = height
            .checked_mul(width)
            .filter(|&d| d < NONE as usize)
            .ok_or_else(|| bad("the image is too large".into()))?;
        let prior_entry = m
            .tensors
            .iter()
            .find(|t| t.name == "root_prior")
            .ok_or_else(|| bad("it has no tensor `root_prior`".into()))?;
        let states = match prior_entry.shape[..] {
            [s] if (1..=MAX_STATES as u64).contains(&s) => s as usize,
            _ => {
                return Err(bad(format!(
                    "root_prior has shape {:?} (1 to {MAX_STATES} states)",
                    prior_entry.shape
                )));
            }
        };
        let (du, su) = (d as u64, states as u64);
        let prior = bundle
            .tensor_values("root_prior", DType::U16, &[su], u16_le)
            .map_err(bad)?;
        let transitions = bundle
            .tensor_values("transitions", DType::U16, &[du, su, su], u16_le)
            .map_err(bad)?;
        let leaves = bundle
            .tensor_values("leaves", DType::U16, &[du, su, VALUES as u64], u16_le)
            .map_err(bad)?;
        let parent = bundle
            .tensor_values("parent", DType::I32, &[du], i32_le)
            .map_err(bad)?;
        check_rows(&prior, states, "root_prior").map_err(bad)?;
        check_rows(&leaves, VALUES, "leaves").map_err(bad)?;
        let (parent, order, levels) = tree(&parent).map_err(bad)?;
        // The root's rows of `transitions` are unused (the prior takes their place).
        for (v, rows) in transitions.chunks_exact(states * states).enumerate() {
            if parent[v] != NONE {
                check_rows(rows, states, &format!("transitions[{v}]")).map_err(bad)?;
            }
        }
        let mut cdf = vec![0u16; leaves.len()];
        for (v, rows) in leaves.chunks_exact(states * VALUES).enumerate() {
            let out = &mut cdf[v * states * VALUES..(v + 1) * states * VALUES];
            for (z, row) in rows.chunks_exact(VALUES).enumerate() {
                let mut acc = 0u32;
                for (x, &f) in row.iter().enumerate() {
                    // Below 2^16: the row sums to 2^16 and its last entry is at least 1.
                    out[x * states + z] = acc as u16;
                    acc += f;
                }
            }
        }
        Ok(Circuit {
            name: m.name.clone(),
            id: bundle.id(),
            height,
            width,
            states,
            parent,
            order,
            levels,
            prior,
            transitions: transitions.into_iter().map(|t| t as u16).collect(),
            cdf,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model id (its bundle's payload hash).
    pub fn id(&self) -> u128 {
        self.id
    }

    /// Image height and width.
    pub fn image_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Latent states per pixel (M).
    pub fn states(&self) -> usize {
        self.states
    }

    /// Number of levels of the tree (its height + 1).
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// The root pixel.
    pub fn root(&self) -> usize {
        self.order[0] as usize
    }

    /// Pixels in coding order (depth-first pre-order of the tree).
    pub fn order(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().map(|&v| v as usize)
    }

    /// Checks that images of `height` x `width` are this model's size.
    pub fn check_size(&self, height: usize, width: usize) -> Result<(), CircuitError> {
        if (height, width) == (self.height, self.width) {
            return Ok(());
        }
        Err(CircuitError::WrongSize {
            model: self.name.clone(),
            height,
            width,
            model_height: self.height,
            model_width: self.width,
        })
    }

    fn images<'p>(
        &self,
        pixels: &'p [u8],
    ) -> Result<std::slice::ChunksExact<'p, u8>, CircuitError> {
        let d = self.pixels();
        if !pixels.len().is_multiple_of(d) {
            return Err(CircuitError::Ragged {
                len: pixels.len(),
                pixels: d,
            });
        }
        Ok(pixels.chunks_exact(d))
    }

    /// Codes `pixels` (whole images, row-major, one after another) into one range-coded
    /// stream; [`Circuit::decode`] inverts it given the number of images.
    pub fn encode(&self, pixels: &[u8]) -> Result<Vec<u8>, CircuitError> {
        let mut walk = Walk::new(self);
        let mut enc = RangeEncoder::new(Vec::new());
        for image in self.images(pixels)? {
            walk.run(self, &mut |dist: &Pixel<'_>, v: usize| {
                let x = usize::from(image[v]);
                let (start, end) = (dist.start(x), dist.start(x + 1));
                enc.encode(start, end - start, PRECISION)
                    .map_err(|e| CircuitError::Damaged(format!("range coder: {e:?}")))?;
                Ok(image[v])
            })?;
        }
        let words = enc
            .finish()
            .map_err(|e| CircuitError::Damaged(format!("range coder: {e:?}")))?;
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        // The decoder reads zeros past the end.
        bytes.truncate(arca_embedded::stored_len(&words));
        Ok(bytes)
    }

    /// Decodes `images` images from `data` (made by [`Circuit::encode`]). Damaged data decodes
    /// to wrong pixels or fails here; callers check a checksum.
    pub fn decode(&self, data: &[u8], images: usize) -> Result<Vec<u8>, CircuitError> {
        let d = self.pixels();
        let total = images
            .checked_mul(d)
            .ok_or_else(|| CircuitError::Damaged(format!("{images} images is too many")))?;
        let mut out = vec![0u8; total];
        let mut walk = Walk::new(self);
        let mut dec = RangeDecoder::new(ByteWordCursor::new(data))
            .map_err(|e| CircuitError::Damaged(format!("range coder: {e:?}")))?;
        for image in out.chunks_exact_mut(d) {
            walk.run(self, &mut |dist: &Pixel<'_>, v: usize| {
                let target = dec.decode_target(PRECISION);
                let (x, start, end) = dist.find(target);
                dec.advance(start, end - start, PRECISION)
                    .map_err(|e| CircuitError::Damaged(format!("range coder: {e:?}")))?;
                image[v] = x as u8;
                Ok(x as u8)
            })?;
        }
        Ok(out)
    }

    /// The code length in bits of each image under the quantized intervals the coder uses
    /// (`-log2` of each pixel's interval width over 2^24, summed): what [`Circuit::encode`]
    /// spends, up to the coder's final bytes.
    pub fn code_lengths(&self, pixels: &[u8]) -> Result<Vec<f64>, CircuitError> {
        let mut walk = Walk::new(self);
        let mut lengths = Vec::new();
        for image in self.images(pixels)? {
            let mut bits = 0f64;
            walk.run(self, &mut |dist: &Pixel<'_>, v: usize| {
                let x = usize::from(image[v]);
                let width = dist.start(x + 1) - dist.start(x);
                bits += f64::from(PRECISION) - f64::from(width).log2();
                Ok(image[v])
            })?;
            lengths.push(bits);
        }
        Ok(lengths)
    }
}

/// Parent array (-1 at the root) to checked parents, the pre-order and the number of levels.
fn tree(parent: &[i32]) -> Result<(Vec<u32>, Vec<u32>, usize), String> {
    let d = parent.len();
    let mut parents = Vec::with_capacity(d);
    let mut root = None;
    for (v, &p) in parent.iter().enumerate() {
        if p == -1 {
            if let Some(r) = root {
                return Err(format!("pixels {r} and {v} are both roots"));
            }
            root = Some(v);
            parents.push(NONE);
        } else if p >= 0 && (p as usize) < d && p as usize != v {
            parents.push(p as u32);
        } else {
            return Err(format!("pixel {v} has parent {p}"));
        }
    }
    let root = root.ok_or("the tree has no root (no parent -1)")?;
    // Children lists in increasing index: counting sort by parent.
    let mut first = vec![0usize; d + 1];
    for &p in parents.iter().filter(|&&p| p != NONE) {
        first[p as usize + 1] += 1;
    }
    for i in 0..d {
        first[i + 1] += first[i];
    }
    let mut fill = first.clone();
    let mut children = vec![0u32; d.saturating_sub(1)];
    for (v, &p) in parents.iter().enumerate() {
        if p != NONE {
            children[fill[p as usize]] = v as u32;
            fill[p as usize] += 1;
        }
    }
    let mut order = Vec::with_capacity(d);
    let mut stack = vec![(root as u32, 1usize)];
    let mut levels = 0;
    while let Some((v, depth)) = stack.pop() {
        if order.len() == d {
            return Err("the parent array has a cycle".into());
        }
        order.push(v);
        levels = levels.max(depth);
        let kids = &children[first[v as usize]..first[v as usize + 1]];
        stack.extend(kids.iter().rev().map(|&c| (c, depth + 1)));
    }
    if order.len() != d {
        return Err(format!(
            "{} of {d} pixels are not reachable from the root (a cycle)",
            d - order.len()
        ));
    }
    Ok((parents, order, levels))
}

/// One pixel's coding distribution: its latent weights and leaf CDFs.
pub struct Pixel<'a> {
    alpha: &'a [u32],
    /// `cdf[x * M + z]`.
    cdf: &'a [u16],
    /// Total weight: sum of alpha times 2^16.
    total: u64,
}

impl Pixel<'_> {
    /// Exact cumulative weight of the values below `x` (`x <= 256`).
    #[inline]
    fn below(&self, x: usize) -> u64 {
        if x >= VALUES {
            return self.total;
        }
        let m = self.alpha.len();
        self.alpha
            .iter()
            .zip(&self.cdf[x * m..(x + 1) * m])
            .map(|(&a, &c)| u64::from(a) * u64::from(c))
            .sum()
    }

    /// Start of value `x`'s interval out of 2^[`PRECISION`] (`start(256)` = 2^24).
    #[inline]
    pub fn start(&self, x: usize) -> u32 {
        quantize_cumulative(
            self.below(x),
            self.total,
            x as u32,
            VALUES as u32,
            PRECISION,
        )
    }

    /// The value whose interval holds `target` (< 2^24), with that interval's start and end:
    /// 0 if it is there (most pixels of digits are background), else bisection over the starts,
    /// which keeps the bounds it computed so none is computed twice.
    #[inline]
    pub fn find(&self, target: u32) -> (usize, u32, u32) {
        let first = self.start(1);
        if first > target {
            return (0, 0, first);
        }
        let (mut lo, mut hi) = ((1usize, first), (VALUES, 1u32 << PRECISION));
        while hi.0 - lo.0 > 1 {
            let mid = (lo.0 + hi.0) / 2;
            let at = self.start(mid);
            if at <= target {
                lo = (mid, at);
            } else {
                hi = (mid, at);
            }
        }
        (lo.0, lo.1, hi.1)
    }
}

/// Scratch of one coding walk: the messages of the open pixels, a stack as deep as the tree.
struct Walk {
    m: usize,
    /// Per open pixel (by stack depth): prior or downward message times leaf times the upward
    /// messages of its finished children.
    down: Vec<u32>,
    /// Per open pixel: leaf times the upward messages of its finished children.
    up: Vec<u32>,
    stack: Vec<u32>,
    alpha: Vec<u32>,
    wide: Vec<u64>,
}

/// Scales `wide` (not all zero) into `out` so that its largest entry is in [2^30, 2^31).
#[inline(always)]
fn normalize(wide: &[u64], out: &mut [u32]) {
    let max = wide.iter().copied().max().unwrap_or(0);
    if max == 0 {
        // Impossible with checked tables (every frequency >= 1); stay deterministic anyway.
        out.fill(1);
        return;
    }
    let bits = 64 - max.leading_zeros();
    if bits > 31 {
        let s = bits - 31;
        out.iter_mut()
            .zip(wide)
            .for_each(|(o, &w)| *o = (w >> s) as u32);
    } else {
        let s = 31 - bits;
        out.iter_mut()
            .zip(wide)
            .for_each(|(o, &w)| *o = (w << s) as u32);
    }
}

impl Walk {
    fn new(c: &Circuit) -> Walk {
        let m = c.states;
        Walk {
            m,
            down: vec![0; c.levels * m],
            up: vec![0; c.levels * m],
            stack: Vec::with_capacity(c.levels),
            alpha: vec![0; m],
            wide: vec![0; m],
        }
    }

    /// Walks one image in coding order. `pixel(dist, v)` codes pixel v with `dist` and returns
    /// its value (the encoder's known value, the decoder's decoded one).
    fn run(
        &mut self,
        c: &Circuit,
        pixel: &mut dyn FnMut(&Pixel<'_>, usize) -> Result<u8, CircuitError>,
    ) -> Result<(), CircuitError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: AVX2 was just detected.
            return unsafe { self.run_avx2(c, pixel) };
        }
        self.run_body(c, pixel)
    }

    /// [`Walk::run`] compiled for AVX2: the same integer operations, wider vectors (about 2x).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(
        &mut self,
        c: &Circuit,
        pixel: &mut dyn FnMut(&Pixel<'_>, usize) -> Result<u8, CircuitError>,
    ) -> Result<(), CircuitError> {
        self.run_body(c, pixel)
    }

    #[inline(always)]
    fn run_body(
        &mut self,
        c: &Circuit,
        pixel: &mut dyn FnMut(&Pixel<'_>, usize) -> Result<u8, CircuitError>,
    ) -> Result<(), CircuitError> {
        let m = self.m;
        self.stack.clear();
        for &v in &c.order {
            let p = c.parent[v as usize];
            // Close the finished subtrees: everything above v's parent on the stack.
            while let Some(&top) = self.stack.last() {
                if top == p {
                    break;
                }
                self.close(c);
            }
            let depth = self.stack.len();
            let vu = v as usize;
            if p == NONE {
                self.alpha.copy_from_slice(&c.prior);
            } else {
                // alpha(b) = sum_a down_parent(a) T_v[a][b]
                let parent_down = &self.down[(depth - 1) * m..depth * m];
                let t = &c.transitions[vu * m * m..(vu + 1) * m * m];
                self.wide.fill(0);
                for (&d, row) in parent_down.iter().zip(t.chunks_exact(m)) {
                    let d = u64::from(d);
                    self.wide
                        .iter_mut()
                        .zip(row)
                        .for_each(|(w, &t)| *w += d * u64::from(t));
                }
                normalize(&self.wide, &mut self.alpha);
            }
            let cdf = &c.cdf[vu * m * VALUES..(vu + 1) * m * VALUES];
            let total = self.alpha.iter().map(|&a| u64::from(a)).sum::<u64>() << 16;
            let x = pixel(
                &Pixel {
                    alpha: &self.alpha,
                    cdf,
                    total,
                },
                vu,
            )?;
            let x = usize::from(x);
            // Leaf weight of x in each state: the CDF's step there.
            let up = &mut self.up[depth * m..(depth + 1) * m];
            let here = &cdf[x * m..(x + 1) * m];
            match cdf.get((x + 1) * m..(x + 2) * m) {
                Some(next) => {
                    for ((u, &a), &b) in up.iter_mut().zip(here).zip(next) {
                        *u = u32::from(b) - u32::from(a);
                    }
                }
                None => {
                    for (u, &a) in up.iter_mut().zip(here) {
                        *u = ROW_SUM - u32::from(a);
                    }
                }
            }
            for ((w, &a), &u) in self.wide.iter_mut().zip(&self.alpha).zip(up.iter()) {
                *w = u64::from(a) * u64::from(u);
            }
            normalize(&self.wide, &mut self.down[depth * m..(depth + 1) * m]);
            self.stack.push(v);
        }
        Ok(())
    }

    /// Pops the top pixel (its subtree is complete) and folds its upward message into its
    /// parent: msg(a) = sum_b T_c[a][b] up_c(b).
    #[inline(always)]
    fn close(&mut self, c: &Circuit) {
        let m = self.m;
        let Some(child) = self.stack.pop() else {
            return;
        };
        let depth = self.stack.len();
        if depth == 0 {
            return;
        }
        let cu = child as usize;
        let t = &c.transitions[cu * m * m..(cu + 1) * m * m];
        let up_child = &self.up[depth * m..(depth + 1) * m];
        for (w, row) in self.wide.iter_mut().zip(t.chunks_exact(m)) {
            *w = row
                .iter()
                .zip(up_child)
                .map(|(&t, &u)| u64::from(t) * u64::from(u))
                .sum();
        }
        normalize(&self.wide, &mut self.alpha);
        let msg = &self.alpha;
        let parent = (depth - 1) * m..depth * m;
        for target in [&mut self.down, &mut self.up] {
            for (w, (&x, &g)) in self
                .wide
                .iter_mut()
                .zip(target[parent.clone()].iter().zip(msg))
            {
                *w = u64::from(x) * u64::from(g);
            }
            normalize(&self.wide, &mut target[parent.clone()]);
        }
    }
}

/// Revision of the image codec's fixed parameters (precision, quantizer, coding order rule,
/// message normalization); a stream from another revision is refused.
pub const REVISION: u16 = 1;

#[cfg(feature = "tract")]
mod likelihood;
#[cfg(feature = "tract")]
pub use likelihood::Likelihood;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
