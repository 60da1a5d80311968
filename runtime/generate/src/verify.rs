//! Sampling settings, the distributions they make from logits, and the verification rule of
//! speculative decoding (Leviathan et al. 2023, Chen et al. 2023), as pure functions.
//!
//! **Sampling** follows llama.cpp's default chain, in its order, on each row of logits:
//!
//! 1. repeat penalty: a token among the last `repeat_last_n` of the history (prompt and output)
//!    has a positive logit divided by `repeat_penalty`, a negative one multiplied by it;
//! 2. top-k: only the `top_k` largest logits stay (ties to the lowest token);
//! 3. top-p: of those, the most probable stay until their mass (softmax at temperature 1)
//!    reaches `top_p`;
//! 4. min-p: of those, a token stays when its probability is at least `min_p` times the top one;
//! 5. temperature: the kept logits over `temperature`, softmax.
//!
//! Greedy decoding (temperature 0) is the argmax after the penalty (the other steps never move
//! an argmax). The penalty depends on the history, which is known at every row a verify call
//! scores (the context, then the draft tokens before that row), so plain and speculative
//! decoding apply it alike: greedy speculative output stays the plain greedy output, and sampled
//! speculative output follows the same adjusted distribution.
//!
//! **Verification.** Greedy: accept draft tokens while each equals the target's argmax; the
//! first mismatch is replaced by the target's token, and when every draft token is accepted the
//! target's next token comes free (the "bonus" token).
//!
//! Sampling: draft token `x` drawn from `q` is accepted with probability `min(1, p(x) / q(x))`;
//! on rejection the token is drawn from `max(0, p - q)` renormalized. Each emitted token is then
//! distributed exactly as `p`, whatever `q` is. A drafter without a distribution (prompt
//! lookup) proposes with `q` = a point mass on its token, so acceptance is `p(x)` and the
//! residual is `p` without `x`.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// How tokens are chosen from the target's logits (see the module docs for the order of the
/// steps). Out-of-range values do not panic: a step whose setting means "off" is skipped, and
/// a setting that would keep nothing keeps the argmax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Temperature; 0 (or less) is greedy (argmax, ties to the lowest token).
    pub temperature: f32,
    /// Keep the `top_k` most probable tokens (0: all).
    pub top_k: usize,
    /// Nucleus: keep the most probable tokens until their mass reaches `top_p` (1 keeps all).
    pub top_p: f32,
    /// Keep tokens with probability at least `min_p` times the top one (0: all).
    pub min_p: f64,
    /// Repeat penalty (llama.cpp's `--repeat-penalty`; 1 is off, as is a value that is not
    /// positive and finite).
    pub repeat_penalty: f32,
    /// How many of the last tokens the penalty looks at (0: off; llama.cpp's default is 64).
    pub repeat_last_n: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling::GREEDY
    }
}

impl Sampling {
    /// Argmax decoding, every filter off.
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
    };

    /// Sampling at `temperature` with nucleus `top_p`, the other filters off.
    pub fn with_temperature(temperature: f32, top_p: f32) -> Sampling {
        Sampling {
            temperature,
            top_p,
            ..Sampling::GREEDY
        }
    }

    /// True for argmax decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature.is_nan() || self.temperature <= 0.0
    }

    /// True when the repeat penalty changes anything.
    pub fn penalizes(&self) -> bool {
        self.repeat_last_n > 0
            && self.repeat_penalty.is_finite()
            && self.repeat_penalty > 0.0
            && self.repeat_penalty != 1.0
    }

    /// The distinct tokens the penalty applies to after `history`.
    fn penalized(&self, history: &[u32]) -> Vec<u32> {
        let mut recent = history[history.len().saturating_sub(self.repeat_last_n)..].to_vec();
        recent.sort_unstable();
        recent.dedup();
        recent
    }

    /// One logit under the penalty (llama.cpp's rule).
    fn penalty(&self, logit: f32) -> f32 {
        if logit <= 0.0 {
            logit * self.repeat_penalty
        } else {
            logit / self.repeat_penalty
        }
    }

    /// Step 1 in place: the repeat penalty on one row of logits, for the token after
    /// `history`. Tokens outside the row are skipped.
    pub fn penalize(&self, row: &mut [f32], history: &[u32]) {
        if !self.penalizes() {
            return;
        }
        for t in self.penalized(history) {
            if let Some(l) = row.get_mut(t as usize) {
                *l = self.penalty(*l);
            }
        }
    }

    /// The greedy choice after `history`: the argmax of the penalized row (ties to the lowest
    /// token).
    pub fn greedy(&self, row: &[f32], history: &[u32]) -> u32 {
        if !self.penalizes() {
            return argmax(row) as u32;
        }
        let mut row = row.to_vec();
        self.penalize(&mut row, history);
        argmax(&row) as u32
    }

    /// The distribution to sample the token after `history` from (`out` is resized to the
    /// row): the steps of the module docs. For greedy settings, a point mass on
    /// [`Sampling::greedy`]'s token.
    pub fn probs(&self, logits: &[f32], history: &[u32], out: &mut Vec<f64>) {
        out.clear();
        if self.is_greedy() {
            out.resize(logits.len(), 0.0);
            if let Some(o) = out.get_mut(self.greedy(logits, history) as usize) {
                *o = 1.0;
            }
            return;
        }
        out.extend(logits.iter().map(|&l| f64::from(l)));
        if self.penalizes() {
            for t in self.penalized(history) {
                if let Some(&l) = logits.get(t as usize) {
                    out[t as usize] = f64::from(self.penalty(l));
                }
            }
        }
        let n = out.len();
        let cut = |out: &mut Vec<f64>, order: &[usize]| {
            for &i in order {
                out[i] = f64::NEG_INFINITY;
            }
        };
        // Descending logit; ties by token so every cut is deterministic.
        let by_logit =
            |out: &[f64], a: &usize, b: &usize| out[*b].total_cmp(&out[*a]).then(a.cmp(b));
        let mut order: Vec<usize> = Vec::new();
        if self.top_k > 0 && self.top_k < n {
            order = (0..n).collect();
            order.select_nth_unstable_by(self.top_k, |a, b| by_logit(out, a, b));
            cut(out, &order[self.top_k..]);
            order.truncate(self.top_k);
        }
        if self.top_p < 1.0 {
            if order.is_empty() {
                order = (0..n).collect();
            }
            order.sort_by(|a, b| by_logit(out, a, b));
            let max = order.first().map_or(f64::NEG_INFINITY, |&i| out[i]);
            let sum: f64 = order.iter().map(|&i| (out[i] - max).exp()).sum();
            let mut mass = 0.0;
            let mut keep = order.len();
            for (j, &i) in order.iter().enumerate() {
                mass += (out[i] - max).exp() / sum;
                if mass >= f64::from(self.top_p) {
                    keep = j + 1;
                    break;
                }
            }
            cut(out, &order[keep..]);
        }
        let max = out.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        if self.min_p > 0.0 {
            for o in out.iter_mut() {
                if (*o - max).exp() < self.min_p {
                    *o = f64::NEG_INFINITY;
                }
            }
        }
        let t = f64::from(self.temperature);
        let mut sum = 0.0;
        for o in out.iter_mut() {
            *o = ((*o - max) / t).exp();
            sum += *o;
        }
        if sum.is_finite() && sum > 0.0 {
            out.iter_mut().for_each(|o| *o /= sum);
        } else {
            // Nothing kept, or logits that are not numbers: the argmax.
            let best = self.greedy(logits, history) as usize;
            out.iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = f64::from(u8::from(i == best)));
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

    /// A token drawn from `probs` (which need not sum to exactly one; 0 when nothing has
    /// mass).
    pub fn pick(&mut self, probs: &[f64]) -> u32 {
        let total: f64 = probs.iter().filter(|p| **p > 0.0).sum();
        let mut u = self.uniform() * total;
        let mut last = 0;
        for (t, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                if u < p {
                    return t as u32;
                }
                u -= p;
                last = t;
            }
        }
        // Rounding left `u` past the last nonzero entry.
        last as u32
    }
}

/// What a verify call decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Draft tokens accepted (a prefix of the draft).
    pub accepted: usize,
    /// The target's token after them: the correction, or the bonus when all were accepted.
    pub next: u32,
}

/// Greedy verification: `target` holds `draft.len() + 1` rows of logits of one width (the
/// vocabulary), row `i` scoring the token after the `i`-th draft token (row 0: after the
/// context). A repeat penalty is applied to the rows before this call
/// ([`Sampling::penalize`]).
pub fn verify_greedy(draft: &[u32], target: &[f32]) -> Verdict {
    let vocab = target.len() / (draft.len() + 1);
    debug_assert_eq!(target.len(), (draft.len() + 1) * vocab);
    let mut rows = target.chunks_exact(vocab.max(1));
    for (i, &d) in draft.iter().enumerate() {
        let best = rows.next().map_or(0, |r| argmax(r) as u32);
        if best != d {
            return Verdict {
                accepted: i,
                next: best,
            };
        }
    }
    Verdict {
        accepted: draft.len(),
        next: rows.next().map_or(0, |r| argmax(r) as u32),
    }
}

/// Sampling verification. `p` holds `draft.len() + 1` target distributions (as
/// [`Sampling::probs`] makes them); `q` holds the draft's distribution for each draft token, or
/// is empty for a drafter that proposes without one (a point mass on its token).
pub fn verify_sample(draft: &[u32], q: &[Vec<f64>], p: &[Vec<f64>], rng: &mut Rng) -> Verdict {
    debug_assert_eq!(p.len(), draft.len() + 1);
    debug_assert!(q.is_empty() || q.len() == draft.len());
    let empty = Vec::new();
    for (i, &d) in draft.iter().enumerate() {
        let x = d as usize;
        let pi = p.get(i).unwrap_or(&empty);
        let px = pi.get(x).copied().unwrap_or(0.0);
        let qx = q.get(i).map_or(1.0, |q| q.get(x).copied().unwrap_or(0.0));
        // Accept with probability min(1, p/q): u < p/q, written without the division.
        if rng.uniform() * qx < px {
            continue;
        }
        let mut residual = pi.clone();
        match q.get(i) {
            Some(qi) => {
                for (r, &qv) in residual.iter_mut().zip(qi) {
                    *r = (*r - qv).max(0.0);
                }
            }
            None => {
                if let Some(r) = residual.get_mut(x) {
                    *r = 0.0;
                }
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
        next: rng.pick(p.get(draft.len()).unwrap_or(&empty)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOCAB: usize = 256;

    fn toks(text: &[u8]) -> Vec<u32> {
        text.iter().map(|&b| u32::from(b)).collect()
    }

    fn dist(weights: &[f64]) -> Vec<f64> {
        let mut d = vec![0.0; VOCAB];
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
            verify_greedy(&toks(b"ab"), &logits),
            Verdict {
                accepted: 1,
                next: u32::from(b'c')
            }
        );
        assert_eq!(
            verify_greedy(&toks(b"ac"), &logits),
            Verdict {
                accepted: 2,
                next: u32::from(b'z')
            }
        );
        assert_eq!(
            verify_greedy(&[], &logits[..VOCAB]),
            Verdict {
                accepted: 0,
                next: u32::from(b'a')
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
        let s = Sampling::with_temperature(1.0, 0.7);
        let mut logits = vec![f32::NEG_INFINITY; VOCAB];
        for (b, p) in [(1usize, 0.5f32), (2, 0.3), (3, 0.2)] {
            logits[b] = p.ln();
        }
        let mut out = Vec::new();
        s.probs(&logits, &[], &mut out);
        assert!((out[1] - 0.625).abs() < 1e-6 && (out[2] - 0.375).abs() < 1e-6);
        assert_eq!(out[3], 0.0);
    }

    /// llama.cpp's chain on four tokens: the penalty divides a positive logit and multiplies a
    /// negative one, top-k and min-p cut, top-p is taken at temperature 1 (before the
    /// temperature), and greedy is the argmax after the penalty.
    #[test]
    fn filters_follow_llama_cpp() {
        let logits = [2.0f32, 1.0, -1.0, 0.5];
        let s = Sampling {
            repeat_penalty: 2.0,
            ..Sampling::with_temperature(1.0, 1.0)
        };
        let mut row = logits;
        s.penalize(&mut row, &[0, 2, 0]);
        assert_eq!(row, [1.0, 1.0, -2.0, 0.5]);
        // Ties go to the lowest token; without token 0 in the last 2, no penalty on it.
        assert_eq!(s.greedy(&logits, &[0]), 0);
        let last2 = Sampling {
            repeat_last_n: 2,
            ..s
        };
        assert_eq!(last2.greedy(&[1.0, 1.5], &[1, 0, 0]), 1);
        assert_eq!(last2.greedy(&[1.0, 1.5], &[0, 1, 1]), 0);
        let mut p = Vec::new();
        Sampling { top_k: 2, ..s }.probs(&logits, &[], &mut p);
        let e = 1.0f64.exp();
        assert!(
            (p[0] - e / (e + 1.0)).abs() < 1e-12 && p[2] == 0.0 && p[3] == 0.0,
            "{p:?}"
        );
        // min-p 0.5 keeps tokens within ln 2 of the best logit.
        Sampling { min_p: 0.5, ..s }.probs(&logits, &[], &mut p);
        assert!(p[0] > 0.0 && p[1] == 0.0, "{p:?}");
        Sampling { min_p: 0.3, ..s }.probs(&logits, &[], &mut p);
        assert!(p[1] > 0.0 && p[3] == 0.0, "{p:?}");
        // top-p 0.6 at temperature 1 keeps token 0 alone (its mass is 0.61); a high
        // temperature applied first would have flattened it below 0.6.
        let hot = Sampling::with_temperature(5.0, 0.6);
        hot.probs(&logits, &[], &mut p);
        assert_eq!(p, [1.0, 0.0, 0.0, 0.0]);
        // Settings that keep nothing, or logits that are not numbers, give the argmax.
        Sampling { min_p: 2.0, ..s }.probs(&logits, &[], &mut p);
        assert_eq!(p, [1.0, 0.0, 0.0, 0.0]);
        Sampling::with_temperature(1.0, 1.0).probs(&[f32::NAN, 1.0], &[], &mut p);
        assert_eq!(p.iter().sum::<f64>(), 1.0);
        // An out-of-range history token is skipped.
        s.probs(&logits, &[99], &mut p);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
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
                let (draft, qs): (Vec<u32>, Vec<Vec<f64>>) = match &q {
                    Some(q) => (vec![rng.pick(q), rng.pick(q)], vec![q.clone(), q.clone()]),
                    None => (vec![0, 5], vec![]),
                };
                // The target's law for the second token depends on the first, as with a real
                // model.
                let p_second = if draft[0] == 0 { &p1 } else { &p2 };
                let ps = [p0.clone(), p_second.clone(), p0.clone()];
                let v = verify_sample(&draft, &qs, &ps, &mut rng);
                let t0 = if v.accepted >= 1 { draft[0] } else { v.next };
                first[t0 as usize] += 1;
                if v.accepted >= 1 {
                    let t1 = if v.accepted >= 2 { draft[1] } else { v.next };
                    second[usize::from(t0 != 0)][t1 as usize] += 1;
                }
            }
            let x0 = chi_square(&first, &p0[..6], n);
            assert!(
                x0 < 20.5,
                "{label}: first token chi-square {x0:.1}, counts {first:?}"
            );
            for (counts, law) in second.iter().zip([&p1, &p2]) {
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
