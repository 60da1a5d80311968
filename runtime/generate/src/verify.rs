//! Sampling settings, the distributions they make from logits, and the verification rule of
//! speculative decoding (Leviathan et al. 2023, Chen et al. 2023), as pure functions.
//!
//! Greedy: accept draft tokens while each equals the target's argmax; the first mismatch is
//! replaced by the target's token, and when every draft token is accepted the target's next
//! token comes free (the "bonus" token).
//!
//! Sampling: draft token `x` drawn from `q` is accepted with probability `min(1, p(x) / q(x))`;
//! on rejection the token is drawn from `max(0, p - q)` renormalized. Each emitted token is then
//! distributed exactly as `p`, whatever `q` is. A drafter without a distribution (prompt
//! lookup) proposes with `q` = a point mass on its token, so acceptance is `p(x)` and the
//! residual is `p` without `x`.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::net::VOCAB;

/// How tokens are chosen from the target's logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Temperature; 0 is greedy (argmax, ties to the lowest byte).
    pub temperature: f32,
    /// Nucleus: keep the most probable bytes until their mass reaches `top_p` (1 keeps all).
    pub top_p: f32,
}

impl Sampling {
    /// Argmax decoding.
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        top_p: 1.0,
    };

    /// True for argmax decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// The distribution to sample from: softmax of `logits / temperature`, cut to the nucleus
    /// and renormalized. For greedy settings, a point mass on the argmax.
    pub fn probs(&self, logits: &[f32], out: &mut [f64; VOCAB]) {
        if self.is_greedy() {
            out.fill(0.0);
            out[argmax(logits)] = 1.0;
            return;
        }
        let t = f64::from(self.temperature);
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for (o, &l) in out.iter_mut().zip(logits) {
            *o = (f64::from(l - max) / t).exp();
            sum += *o;
        }
        out.iter_mut().for_each(|o| *o /= sum);
        if self.top_p < 1.0 {
            let mut order: Vec<usize> = (0..VOCAB).collect();
            // Descending probability; ties by byte value so the cut is deterministic.
            order.sort_by(|&a, &b| out[b].total_cmp(&out[a]).then(a.cmp(&b)));
            let mut mass = 0.0;
            let mut keep = VOCAB;
            for (i, &b) in order.iter().enumerate() {
                mass += out[b];
                if mass >= f64::from(self.top_p) {
                    keep = i + 1;
                    break;
                }
            }
            for &b in &order[keep..] {
                out[b] = 0.0;
            }
            let kept: f64 = out.iter().sum();
            out.iter_mut().for_each(|o| *o /= kept);
        }
    }
}

/// Index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

/// The random source of sampling: ChaCha8 from a 64-bit seed, the same stream on every
/// platform.
#[derive(Clone, Debug)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A byte drawn from `probs` (which need not sum to exactly one).
    pub fn pick(&mut self, probs: &[f64; VOCAB]) -> u8 {
        let total: f64 = probs.iter().sum();
        let mut u = self.uniform() * total;
        let mut last = 0;
        for (b, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                if u < p {
                    return b as u8;
                }
                u -= p;
                last = b;
            }
        }
        // Rounding left `u` past the last nonzero entry.
        last as u8
    }
}

/// What a verify call decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Draft tokens accepted (a prefix of the draft).
    pub accepted: usize,
    /// The target's token after them: the correction, or the bonus when all were accepted.
    pub next: u8,
}

/// Greedy verification: `target` holds `draft.len() + 1` rows of logits, row `i` scoring the
/// token after the `i`-th draft token (row 0: after the context).
pub fn verify_greedy(draft: &[u8], target: &[f32]) -> Verdict {
    debug_assert_eq!(target.len(), (draft.len() + 1) * VOCAB);
    for (i, &d) in draft.iter().enumerate() {
        let best = argmax(&target[i * VOCAB..][..VOCAB]) as u8;
        if best != d {
            return Verdict {
                accepted: i,
                next: best,
            };
        }
    }
    Verdict {
        accepted: draft.len(),
        next: argmax(&target[draft.len() * VOCAB..][..VOCAB]) as u8,
    }
}

/// Sampling verification. `p` holds `draft.len() + 1` target distributions (as
/// [`Sampling::probs`] makes them); `q` holds the draft's distribution for each draft token, or
/// is empty for a drafter that proposes without one (a point mass on its token).
pub fn verify_sample(
    draft: &[u8],
    q: &[[f64; VOCAB]],
    p: &[[f64; VOCAB]],
    rng: &mut Rng,
) -> Verdict {
    debug_assert_eq!(p.len(), draft.len() + 1);
    debug_assert!(q.is_empty() || q.len() == draft.len());
    for (i, &d) in draft.iter().enumerate() {
        let x = usize::from(d);
        let pi = &p[i];
        let qx = q.get(i).map_or(1.0, |q| q[x]);
        // Accept with probability min(1, p/q): u < p/q, written without the division.
        if rng.uniform() * qx < pi[x] {
            continue;
        }
        let mut residual = [0.0; VOCAB];
        match q.get(i) {
            Some(qi) => {
                for ((r, &pv), &qv) in residual.iter_mut().zip(pi).zip(qi) {
                    *r = (pv - qv).max(0.0);
                }
            }
            None => {
                residual = *pi;
                residual[x] = 0.0;
            }
        }
        // p == q up to rounding leaves no residual mass; p itself is then the right law.
        let next = if residual.iter().sum::<f64>() > 0.0 {
            rng.pick(&residual)
        } else {
            rng.pick(pi)
        };
        return Verdict { accepted: i, next };
    }
    Verdict {
        accepted: draft.len(),
        next: rng.pick(&p[draft.len()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(weights: &[f64]) -> [f64; VOCAB] {
        let mut d = [0.0; VOCAB];
        let sum: f64 = weights.iter().sum();
        for (o, &w) in d.iter_mut().zip(weights) {
            *o = w / sum;
        }
        d
    }

    #[test]
    fn greedy_accepts_the_matching_prefix_and_corrects() {
        let mut logits = vec![0.0f32; 3 * VOCAB];
        logits[b'a' as usize] = 1.0;
        logits[VOCAB + b'c' as usize] = 1.0;
        logits[2 * VOCAB + b'z' as usize] = 1.0;
        assert_eq!(
            verify_greedy(b"ab", &logits),
            Verdict {
                accepted: 1,
                next: b'c'
            }
        );
        assert_eq!(
            verify_greedy(b"ac", &logits),
            Verdict {
                accepted: 2,
                next: b'z'
            }
        );
        assert_eq!(
            verify_greedy(b"", &logits[..VOCAB]),
            Verdict {
                accepted: 0,
                next: b'a'
            }
        );
    }

    #[test]
    fn ties_go_to_the_lowest_byte() {
        let logits = vec![2.5f32; VOCAB];
        assert_eq!(argmax(&logits), 0);
    }

    #[test]
    fn nucleus_keeps_the_smallest_head_reaching_top_p() {
        let s = Sampling {
            temperature: 1.0,
            top_p: 0.7,
        };
        let mut logits = vec![f32::NEG_INFINITY; VOCAB];
        for (b, p) in [(1usize, 0.5f32), (2, 0.3), (3, 0.2)] {
            logits[b] = p.ln();
        }
        let mut out = [0.0; VOCAB];
        s.probs(&logits, &mut out);
        assert!((out[1] - 0.625).abs() < 1e-6 && (out[2] - 0.375).abs() < 1e-6);
        assert_eq!(out[3], 0.0);
    }

    /// Pearson's statistic of `counts` against the law `p` (cells with p = 0 must be empty).
    fn chi_square(counts: &[u64], p: &[f64], n: u64) -> f64 {
        counts
            .iter()
            .zip(p)
            .map(|(&c, &pv)| {
                if pv == 0.0 {
                    assert_eq!(c, 0, "a token the target gives probability 0");
                    0.0
                } else {
                    let e = pv * n as f64;
                    (c as f64 - e).powi(2) / e
                }
            })
            .sum()
    }

    /// Emitted tokens follow the target's law, for a draft far from it, one close to it and a
    /// point-mass draft: chi-square over 6 cells (5 degrees of freedom; the 99.9% quantile is
    /// 20.5), 200,000 draws each, first and second emitted token.
    #[test]
    fn speculative_sampling_keeps_the_target_distribution() {
        let p0 = dist(&[0.30, 0.25, 0.20, 0.15, 0.07, 0.03]);
        let p1 = dist(&[0.05, 0.05, 0.40, 0.10, 0.20, 0.20]);
        let p2 = dist(&[0.10, 0.10, 0.10, 0.10, 0.10, 0.50]);
        let far = dist(&[0.02, 0.03, 0.05, 0.10, 0.30, 0.50]);
        let near = dist(&[0.28, 0.27, 0.18, 0.16, 0.08, 0.03]);
        let n = 200_000u64;
        for (label, q) in [("far", Some(far)), ("near", Some(near)), ("point", None)] {
            let mut rng = Rng::new(42);
            let mut first = [0u64; 6];
            // Second token, after an accepted first one: p1 after a 0, p2 after anything else.
            let mut second = [[0u64; 6]; 2];
            for _ in 0..n {
                // The draft proposes two tokens from q (or a fixed pair for the point mass).
                let (draft, qs): (Vec<u8>, Vec<[f64; VOCAB]>) = match q {
                    Some(q) => (vec![rng.pick(&q), rng.pick(&q)], vec![q, q]),
                    None => (vec![0, 5], vec![]),
                };
                // The target's law for the second token depends on the first, as with a real
                // model.
                let p_second = if draft[0] == 0 { p1 } else { p2 };
                let v = verify_sample(&draft, &qs, &[p0, p_second, p0], &mut rng);
                let t0 = if v.accepted >= 1 { draft[0] } else { v.next };
                first[usize::from(t0)] += 1;
                if v.accepted >= 1 {
                    let t1 = if v.accepted >= 2 { draft[1] } else { v.next };
                    second[usize::from(t0 != 0)][usize::from(t1)] += 1;
                }
            }
            let x0 = chi_square(&first, &p0[..6], n);
            assert!(
                x0 < 20.5,
                "{label}: first token chi-square {x0:.1}, counts {first:?}"
            );
            for (counts, law) in second.iter().zip([p1, p2]) {
                let m: u64 = counts.iter().sum();
                if m >= 1000 {
                    let x1 = chi_square(counts, &law[..6], m);
                    assert!(
                        x1 < 20.5,
                        "{label}: second token chi-square {x1:.1}, counts {counts:?}"
                    );
                }
            }
        }
    }
}
