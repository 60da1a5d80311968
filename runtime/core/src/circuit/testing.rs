//! Synthetic circuits for tests (here and in the codec).

use arca_bundle::{Bundle, DType, Manifest, ModelKind, TENSOR_ALIGN, TensorEntry, encode};

/// xorshift64*: deterministic test randomness.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` frequencies >= 1 summing to 2^16, peaked when `peak` (like real leaves).
pub(crate) fn row(rng: &mut Rng, n: usize, peak: bool) -> Vec<u16> {
    let mut w: Vec<u64> = (0..n).map(|_| 1 + rng.below(1000)).collect();
    if peak {
        let i = rng.below(n as u64) as usize;
        w[i] += 200_000;
    }
    let total: u64 = w.iter().sum();
    let spare = 65_536 - n as u64;
    let mut f: Vec<u16> = w.iter().map(|&x| (1 + x * spare / total) as u16).collect();
    let sum: u64 = f.iter().map(|&x| u64::from(x)).sum();
    f[0] += (65_536 - sum) as u16;
    f
}

/// The tables of a circuit, as they go into a bundle.
pub(crate) struct Tables {
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) states: usize,
    pub(crate) prior: Vec<u16>,
    pub(crate) transitions: Vec<u16>,
    pub(crate) leaves: Vec<u16>,
    pub(crate) parent: Vec<i32>,
}

impl Tables {
    /// A random circuit: random tree (each pixel's parent a random earlier pixel of a
    /// random permutation), random tables.
    pub(crate) fn random(height: usize, width: usize, states: usize, seed: u64) -> Tables {
        let mut rng = Rng(seed | 1);
        let d = height * width;
        let mut perm: Vec<usize> = (0..d).collect();
        for i in (1..d).rev() {
            perm.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut parent = vec![-1i32; d];
        for i in 1..d {
            parent[perm[i]] = perm[rng.below(i as u64) as usize] as i32;
        }
        let prior = row(&mut rng, states, false);
        let transitions = (0..d * states)
            .flat_map(|_| row(&mut rng, states, true))
            .collect();
        let leaves = (0..d * states)
            .flat_map(|_| row(&mut rng, 256, true))
            .collect();
        Tables {
            height,
            width,
            states,
            prior,
            transitions,
            leaves,
            parent,
        }
    }

    /// A bundle holding these tables (no graph: only the native coder can use it).
    pub(crate) fn bundle(&self) -> Bundle {
        let (d, m) = ((self.height * self.width) as u64, self.states as u64);
        let shape = [self.height as i32, self.width as i32];
        let parts: Vec<(&str, DType, Vec<u64>, Vec<u8>)> = vec![
            ("image_shape", DType::I32, vec![2], le32(&shape)),
            ("parent", DType::I32, vec![d], le32(&self.parent)),
            ("root_prior", DType::U16, vec![m], le16(&self.prior)),
            (
                "transitions",
                DType::U16,
                vec![d, m, m],
                le16(&self.transitions),
            ),
            ("leaves", DType::U16, vec![d, m, 256], le16(&self.leaves)),
        ];
        let mut payload = Vec::new();
        let mut tensors = Vec::new();
        for (name, dtype, shape, bytes) in parts {
            while payload.len() % TENSOR_ALIGN != 0 {
                payload.push(0);
            }
            tensors.push(TensorEntry {
                name: name.into(),
                dtype,
                shape,
                offset: payload.len() as u64,
                len: bytes.len() as u64,
            });
            payload.extend_from_slice(&bytes);
        }
        let manifest = Manifest {
            name: "test-circuit".into(),
            kind: ModelKind::Circuit,
            tensors,
            ..Manifest::default()
        };
        let bytes = encode(manifest, b"", &payload).expect("a valid test bundle");
        Bundle::from_bytes(bytes).expect("a valid test bundle")
    }

    /// log2 p(image) in float64 (the plain upward pass, scaled per message).
    pub(crate) fn log2_prob(&self, image: &[u8]) -> f64 {
        let (d, m) = (self.height * self.width, self.states);
        let mut children = vec![Vec::new(); d];
        let mut root = 0;
        for (v, &p) in self.parent.iter().enumerate() {
            match usize::try_from(p) {
                Ok(p) => children[p].push(v),
                Err(_) => root = v,
            }
        }
        // Post-order by an explicit stack.
        let mut order = vec![root];
        let mut i = 0;
        while i < order.len() {
            order.extend(children[order[i]].iter().copied());
            i += 1;
        }
        let mut lam = vec![vec![0f64; m]; d];
        let mut scale = 0f64; // log2 of the factors taken out
        for &v in order.iter().rev() {
            let x = usize::from(image[v]);
            let mut l: Vec<f64> = (0..m)
                .map(|z| f64::from(self.leaves[(v * m + z) * 256 + x]) / 65_536.0)
                .collect();
            for &c in &children[v] {
                for (a, la) in l.iter_mut().enumerate() {
                    let msg: f64 = (0..m)
                        .map(|b| {
                            f64::from(self.transitions[(c * m + a) * m + b]) / 65_536.0 * lam[c][b]
                        })
                        .sum();
                    *la *= msg;
                }
            }
            let max = l.iter().copied().fold(0f64, f64::max);
            scale += max.log2();
            lam[v] = l.iter().map(|x| x / max).collect();
        }
        let p: f64 = (0..m)
            .map(|z| f64::from(self.prior[z]) / 65_536.0 * lam[root][z])
            .sum();
        p.log2() + scale
    }
}

fn le16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn le32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
