//! Arithmetic in the data formats of "Positional Description Matters for Transformers
//! Arithmetic" (Shen et al., 2023): the runtime side of `models/arith/formats.py`, which is the
//! specification; this module reproduces it exactly (tested against its examples and hash
//! vectors).
//!
//! A model reads a question and writes an answer, one character token at a time:
//!
//! | format | question | answer | example (`123+45`) |
//! | --- | --- | --- | --- |
//! | `plain` | `{a}{op}{b}=` | `c`, most significant digit first | `123+45=168$` |
//! | `padrev` | operands zero-padded to the width W | `c` zero-padded to R digits, reversed (R = W+1 for `+`, 2W for `*`) | W = 5: `00123+00045=861000$` |
//! | `spaces` | as `plain`; in training, random spaces between question characters | as `plain` | `123+45=168$` |
//!
//! `$` is the end token. The vocabulary is the characters of [`VOCAB`], a token's id its
//! index. [`held_out`] is the split: pairs it selects never appear in training, and evaluation
//! draws only from them.
//!
//! [`ArithModel`] (with the `tract` feature) runs an exported model with greedy decoding.

use std::fmt;

/// The tokens, in id order: digits, `+`, `*`, `=`, space, END (`$`), PAD (`_`).
pub const VOCAB: &str = "0123456789+*= $_";
/// Number of tokens (logits per position).
pub const VOCAB_SIZE: usize = 16;
/// Token id of `=`, the end of a question.
pub const EQ: u8 = 12;
/// Token id of the end of an answer (`$`).
pub const END: u8 = 14;
/// Token id of padding (`_`).
pub const PAD: u8 = 15;

/// What can go wrong with a question, an answer or a model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArithError {
    /// The expression is not `A+B` or `A*B` with non-negative integers.
    #[error("cannot read `{expr}`: {reason}")]
    Expr {
        /// What the user wrote.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The problem does not fit the model (wrong operation, operands too wide...).
    #[error("{0}")]
    Unsupported(String),
    /// The model's output is not an answer.
    #[error("the model's answer `{0}` is not a number")]
    BadAnswer(String),
    /// The bundle is not a usable arithmetic model.
    #[error("{0}")]
    Model(String),
}

/// The operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `+`.
    Add,
    /// `*`.
    Mul,
}

impl Op {
    /// `+` or `*`.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Mul => '*',
        }
    }

    /// The task name used by the models' manifests: `add` or `mul`.
    pub fn task(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Mul => "mul",
        }
    }

    /// From a task name (`add`, `mul`) or a symbol (`+`, `*`).
    pub fn from_word(word: &str) -> Option<Op> {
        match word {
            "add" | "+" => Some(Op::Add),
            "mul" | "*" => Some(Op::Mul),
            _ => None,
        }
    }

    fn key(self) -> u64 {
        match self {
            Op::Add => 0x9E37_79B9_7F4A_7C15,
            Op::Mul => 0x3C6E_F372_FE94_F82A,
        }
    }

    /// Most digits of a result of two operands of at most `digits` digits.
    fn result_digits(self, digits: usize) -> usize {
        match self {
            Op::Add => digits + 1,
            Op::Mul => 2 * digits,
        }
    }
}

/// How a problem is written for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `123+45=168`.
    Plain,
    /// Operands zero-padded to the model's width, result zero-padded and reversed.
    PadRev {
        /// The width W operands are padded to.
        width: usize,
    },
    /// `plain` with random spaces in training questions; questions at inference have none.
    Spaces,
}

impl Format {
    /// `plain`, `padrev` or `spaces`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::PadRev { .. } => "padrev",
            Format::Spaces => "spaces",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::PadRev { width } => write!(f, "padrev (width {width})"),
            other => f.write_str(other.name()),
        }
    }
}

/// One problem: `a op b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Problem {
    /// Left operand.
    pub a: u64,
    /// The operation.
    pub op: Op,
    /// Right operand.
    pub b: u64,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.a, self.op.symbol(), self.b)
    }
}

/// Number of decimal digits of `n` (0 has one).
pub fn digits(n: u128) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

impl Problem {
    /// Reads `A+B` or `A*B`: non-negative integers of at most 19 digits, spaces allowed around
    /// the parts (`12 + 7`), a trailing `=` ignored.
    pub fn parse(expr: &str) -> Result<Problem, ArithError> {
        let err = |reason: &str| ArithError::Expr {
            expr: expr.to_owned(),
            reason: reason.to_owned(),
        };
        let body = expr.trim();
        let body = body.strip_suffix('=').unwrap_or(body);
        let (at, op) = body
            .char_indices()
            .find_map(|(i, c)| Op::from_word(c.encode_utf8(&mut [0; 4])).map(|op| (i, op)))
            .ok_or_else(|| err("expected A+B or A*B"))?;
        let number = |s: &str| -> Result<u64, ArithError> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    "operands must be non-negative integers written with digits",
                ));
            }
            s.parse::<u64>()
                .map_err(|_| err("operands must have at most 19 digits"))
        };
        Ok(Problem {
            a: number(&body[..at])?,
            op,
            b: number(&body[at + 1..])?,
        })
    }

    /// The exact result.
    pub fn result(&self) -> u128 {
        let (a, b) = (u128::from(self.a), u128::from(self.b));
        match self.op {
            Op::Add => a + b,
            Op::Mul => a * b,
        }
    }

    /// The question text a model reads (ending with `=`; no spaces).
    pub fn question(&self, format: Format) -> Result<String, ArithError> {
        let op = self.op.symbol();
        match format {
            Format::PadRev { width } => {
                self.check_width(width)?;
                Ok(format!("{:0width$}{op}{:0width$}=", self.a, self.b))
            }
            Format::Plain | Format::Spaces => Ok(format!("{}{op}{}=", self.a, self.b)),
        }
    }

    /// The answer a perfect model writes (digits only, no END).
    pub fn answer(&self, format: Format) -> Result<String, ArithError> {
        let c = self.result();
        match format {
            Format::PadRev { width } => {
                self.check_width(width)?;
                let r = self.op.result_digits(width);
                Ok(format!("{c:0r$}").chars().rev().collect())
            }
            Format::Plain | Format::Spaces => Ok(c.to_string()),
        }
    }

    fn check_width(&self, width: usize) -> Result<(), ArithError> {
        let widest = digits(self.a.into()).max(digits(self.b.into()));
        if widest > width {
            return Err(ArithError::Unsupported(format!(
                "{self}: operands have {widest} digits; this model takes at most {width}"
            )));
        }
        Ok(())
    }

    /// Whether the pair belongs to the held-out split (never trained on).
    pub fn held_out(&self) -> bool {
        held_out(self.a, self.b, self.op)
    }
}

/// The value of an answer text: cut at the first END or PAD (`$`, `_`), digits only; `padrev`
/// answers are read reversed.
pub fn parse_answer(text: &str, format: Format) -> Result<u128, ArithError> {
    let body = text.rsplit('=').next().unwrap_or(text);
    let body = body.split(['$', '_']).next().unwrap_or("");
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArithError::BadAnswer(text.to_owned()));
    }
    let digits: String = match format {
        Format::PadRev { .. } => body.chars().rev().collect(),
        Format::Plain | Format::Spaces => body.to_owned(),
    };
    digits
        .parse::<u128>()
        .map_err(|_| ArithError::BadAnswer(text.to_owned()))
}

/// Token ids of a text over [`VOCAB`].
pub fn encode(text: &str) -> Result<Vec<u8>, ArithError> {
    text.chars()
        .map(|c| {
            VOCAB
                .find(c)
                .map(|i| i as u8)
                .ok_or_else(|| ArithError::Unsupported(format!("character {c:?} is not a token")))
        })
        .collect()
}

/// Text of token ids (END as `$`, PAD as `_`); ids outside the vocabulary as `?`.
pub fn decode(ids: &[u8]) -> String {
    ids.iter()
        .map(|&i| {
            VOCAB
                .as_bytes()
                .get(usize::from(i))
                .map_or('?', |&b| b as char)
        })
        .collect()
}

/// SplitMix64's finalizer.
fn mix64(mut z: u64) -> u64 {
    z ^= z >> 30;
    z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 27;
    z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The split's hash of an ordered pair.
pub fn pair_hash(a: u64, b: u64, op: Op) -> u64 {
    mix64(mix64(a ^ op.key()).wrapping_add(b))
}

/// About 1% of pairs: those are never trained on, and evaluation uses only them.
pub fn held_out(a: u64, b: u64, op: Op) -> bool {
    pair_hash(a, b, op).is_multiple_of(100)
}

/// Up to `n` distinct held-out problems whose operands both have exactly `d` digits (1..=19),
/// drawn with a fixed `seed`: the evaluation set of `arca arith --eval`. Where fewer exist
/// (small `d`), all of them, in order. Deterministic on every platform.
pub fn eval_problems(op: Op, d: u32, n: usize, seed: u64) -> Vec<Problem> {
    if !(1..=19).contains(&d) {
        return Vec::new();
    }
    let lo = if d == 1 { 0 } else { 10u64.pow(d - 1) };
    let hi = 10u64.pow(d);
    let span = hi - lo;
    let problem = |a, b| Problem { a, op, b };
    if span <= 1000 {
        // At most 10^6 pairs: list the held-out ones, then take an even spread.
        let all: Vec<Problem> = (lo..hi)
            .flat_map(|a| (lo..hi).map(move |b| (a, b)))
            .filter(|&(a, b)| held_out(a, b, op))
            .map(|(a, b)| problem(a, b))
            .collect();
        if all.len() <= n {
            return all;
        }
        return (0..n).map(|i| all[i * all.len() / n]).collect();
    }
    let mut state = seed ^ (u64::from(d) << 32) ^ op.key();
    let mut next = move || {
        // SplitMix64.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(state)
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (a, b) = (lo + next() % span, lo + next() % span);
        if held_out(a, b, op) && seen.insert((a, b)) {
            out.push(problem(a, b));
        }
    }
    out
}

/// What the model's manifest says about its problems (`arith.*` provenance keys written by
/// `models/arith/train_arith.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArithSpec {
    /// The operation it was trained on.
    pub op: Op,
    /// Its format.
    pub format: Format,
    /// Most operand digits in training.
    pub max_digits: usize,
}

impl ArithSpec {
    /// Reads the spec from a bundle's manifest.
    pub fn of(bundle: &crate::Bundle) -> Result<ArithSpec, ArithError> {
        let m = bundle.manifest();
        let model = |reason: String| ArithError::Model(format!("model `{}`: {reason}", m.name));
        // `target` and `draft` bundles of an arithmetic model (its KV-cache export for
        // speculative generation) carry the same `arith.*` keys.
        if !matches!(
            m.kind,
            crate::ModelKind::Arith | crate::ModelKind::Target | crate::ModelKind::Draft
        ) || (m.kind != crate::ModelKind::Arith
            && !m.provenance.iter().any(|(k, _)| k == "arith.task"))
        {
            return Err(model(format!(
                "is a {} model, not an arith one",
                m.kind.as_str()
            )));
        }
        if m.vocab_size as usize != VOCAB_SIZE {
            return Err(model(format!(
                "has {} tokens, expected {VOCAB_SIZE}",
                m.vocab_size
            )));
        }
        let key = |k: &str| {
            m.provenance
                .iter()
                .find(|(name, _)| name == &format!("arith.{k}"))
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| model(format!("its manifest has no `arith.{k}`")))
        };
        let number = |k: &str| -> Result<usize, ArithError> {
            let v = key(k)?;
            v.parse()
                .map_err(|_| model(format!("`arith.{k}` is `{v}`, not a number")))
        };
        let op = Op::from_word(key("task")?)
            .ok_or_else(|| model("`arith.task` is neither add nor mul".into()))?;
        let format = match key("format")? {
            "plain" => Format::Plain,
            "spaces" => Format::Spaces,
            "padrev" => Format::PadRev {
                width: number("width")?,
            },
            other => return Err(model(format!("unknown format `{other}`"))),
        };
        Ok(ArithSpec {
            op,
            format,
            max_digits: number("max_digits")?,
        })
    }
}

impl ArithSpec {
    /// `count` held-out problems spread evenly over the operand digit counts the model was
    /// trained on (one of each count in turn; counts without held-out pairs, such as one-digit
    /// addition, are skipped), from [`eval_problems`]'s draw with seed 0. Fewer only when the
    /// pools run out.
    pub fn spread_problems(&self, count: usize) -> Vec<Problem> {
        let max = match self.format {
            Format::PadRev { width } => width.min(self.max_digits),
            _ => self.max_digits,
        };
        let pools: Vec<Vec<Problem>> = (1..=max as u32)
            .map(|d| eval_problems(self.op, d, count, 0))
            .filter(|p| !p.is_empty())
            .collect();
        let mut out = Vec::with_capacity(count);
        for i in 0.. {
            if out.len() == count || pools.iter().all(|p| i >= p.len()) {
                break;
            }
            for pool in &pools {
                if let Some(&p) = pool.get(i).filter(|_| out.len() < count) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// What a model wrote for one problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// The answer tokens before END, as text.
    pub answer: String,
    /// Whether the model wrote END (else it ran out of context).
    pub ended: bool,
}

impl Solution {
    /// The answer's value, if it is a number.
    pub fn value(&self, format: Format) -> Result<u128, ArithError> {
        parse_answer(&self.answer, format)
    }

    /// Exact match: the answer a perfect model writes, then END.
    pub fn is_exact(&self, problem: &Problem, format: Format) -> bool {
        self.ended && problem.answer(format).is_ok_and(|want| want == self.answer)
    }
}

#[cfg(feature = "tract")]
mod model {
    use std::sync::Arc;

    use tract_onnx::prelude::tract_data::internal::format_err;
    use tract_onnx::prelude::*;

    use super::*;
    use crate::Bundle;

    /// An arithmetic model on tract, decoding greedily.
    ///
    /// The graph (see `models/arith/README.md`): input `tokens` int64 `[batch, seq]`, output
    /// `logits` f32 `[batch, seq, 16]`, causal, so right padding does not change the logits of
    /// earlier positions; that is what lets problems of different lengths share one call.
    pub struct ArithModel {
        plan: Arc<TypedRunnableModel>,
        spec: ArithSpec,
        name: String,
        context_len: usize,
    }

    impl ArithModel {
        /// Builds the plan for an `arith` bundle.
        pub fn load(bundle: &Bundle) -> Result<ArithModel, ArithError> {
            let spec = ArithSpec::of(bundle)?;
            let m = bundle.manifest();
            if m.kind != crate::ModelKind::Arith {
                return Err(ArithError::Model(format!(
                    "model `{}` is a {} bundle with a KV cache, for `arca generate`; `arca arith` runs `arith` bundles",
                    m.name,
                    m.kind.as_str()
                )));
            }
            let err = |stage: &str, e: String| {
                ArithError::Model(format!("model `{}`: cannot {stage}: {e}", m.name))
            };
            let mut model = crate::engine::inference_model(bundle)
                .map_err(|e| ArithError::Model(e.to_string()))?;
            let batch = model.symbols.sym("batch");
            let seq = model.symbols.sym("seq");
            model
                .set_input_fact(
                    0,
                    InferenceFact::dt_shape(i64::datum_type(), [batch.to_dim(), seq.to_dim()]),
                )
                .map_err(|e| err("set the input shape", format!("{e:#}")))?;
            let plan = model
                .into_optimized()
                .and_then(|m| m.into_runnable())
                .map_err(|e| err("optimize", format!("{e:#}")))?;
            Ok(ArithModel {
                plan,
                spec,
                name: m.name.clone(),
                context_len: m.context_len as usize,
            })
        }

        /// The manifest's description of the problems this model solves.
        pub fn spec(&self) -> ArithSpec {
            self.spec
        }

        /// The manifest name.
        pub fn name(&self) -> &str {
            &self.name
        }

        /// Solves one problem.
        pub fn solve(&self, problem: &Problem) -> Result<Solution, ArithError> {
            let mut out = self.solve_all(std::slice::from_ref(problem))?;
            Ok(out.remove(0))
        }

        /// Solves problems together: one model call per generated token for all of them.
        pub fn solve_all(&self, problems: &[Problem]) -> Result<Vec<Solution>, ArithError> {
            let mut rows = Vec::with_capacity(problems.len());
            for p in problems {
                if p.op != self.spec.op {
                    return Err(ArithError::Unsupported(format!(
                        "{p}: model `{}` does {}, not {}",
                        self.name,
                        self.spec.op.symbol(),
                        p.op.symbol()
                    )));
                }
                let q = encode(&p.question(self.spec.format)?)?;
                // Question, the right answer and END must fit the positions the model has.
                let needed = q.len() + p.answer(self.spec.format)?.len() + 1;
                if needed > self.context_len {
                    return Err(ArithError::Unsupported(format!(
                        "{p}: question and answer take {needed} tokens; model `{}` reads at \
                         most {}",
                        self.name, self.context_len
                    )));
                }
                rows.push(q);
            }
            let starts: Vec<usize> = rows.iter().map(Vec::len).collect();
            let mut done = vec![false; rows.len()];
            while done.iter().any(|d| !d) {
                let width = rows.iter().map(Vec::len).max().unwrap_or(0);
                let mut input =
                    tract_ndarray::Array2::<i64>::from_elem((rows.len(), width), i64::from(PAD));
                for (r, row) in rows.iter().enumerate() {
                    for (c, &t) in row.iter().enumerate() {
                        input[(r, c)] = i64::from(t);
                    }
                }
                let next = self.next_tokens(input.into_tensor(), &rows)?;
                for (r, row) in rows.iter_mut().enumerate() {
                    if done[r] {
                        continue;
                    }
                    row.push(next[r]);
                    done[r] = next[r] == END || row.len() >= self.context_len;
                }
            }
            Ok(rows
                .iter()
                .zip(starts)
                .map(|(row, start)| {
                    let answer = &row[start..];
                    let end = answer.iter().position(|&t| t == END);
                    Solution {
                        answer: decode(&answer[..end.unwrap_or(answer.len())]),
                        ended: end.is_some(),
                    }
                })
                .collect())
        }

        /// The argmax token after each row's last token (ties to the lowest id).
        fn next_tokens(&self, input: Tensor, rows: &[Vec<u8>]) -> Result<Vec<u8>, ArithError> {
            let run = |e: TractError| {
                ArithError::Model(format!("model `{}` failed to run: {e:#}", self.name))
            };
            let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(run)?;
            let logits = outputs
                .first()
                .ok_or_else(|| run(format_err!("no output")))?
                .to_plain_array_view::<f32>()
                .map_err(run)?;
            let shape = logits.shape().to_vec();
            if shape.len() != 3 || shape[0] != rows.len() || shape[2] != VOCAB_SIZE {
                return Err(run(format_err!(
                    "logits have shape {shape:?}, expected [{}, seq, {VOCAB_SIZE}]",
                    rows.len()
                )));
            }
            rows.iter()
                .enumerate()
                .map(|(r, row)| {
                    let at = row.len() - 1;
                    let mut best = (0u8, f32::NEG_INFINITY);
                    for t in 0..VOCAB_SIZE {
                        let v = logits[[r, at, t]];
                        if v.is_nan() {
                            return Err(run(format_err!("NaN logit")));
                        }
                        if v > best.1 {
                            best = (t as u8, v);
                        }
                    }
                    Ok(best.0)
                })
                .collect()
        }
    }
}

#[cfg(feature = "tract")]
pub use model::ArithModel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_problems_take_each_digit_count_in_turn() {
        let spec = ArithSpec {
            op: Op::Add,
            format: Format::PadRev { width: 10 },
            max_digits: 10,
        };
        let problems = spec.spread_problems(20);
        assert_eq!(problems.len(), 20);
        let widths: Vec<usize> = problems
            .iter()
            .map(|p| digits(p.a.max(p.b).into()))
            .collect();
        // One-digit addition has no held-out pair, so each round is 2..=10.
        assert_eq!(widths[..9], [2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(widths[9..18], widths[..9]);
        assert!(problems.iter().all(Problem::held_out));
        let distinct: std::collections::HashSet<_> = problems.iter().collect();
        assert_eq!(distinct.len(), 20);
    }

    /// `EXAMPLES` of formats.py.
    #[test]
    fn formats_match_the_python_examples() -> Result<(), ArithError> {
        let cases: [(u64, u64, char, Format, &str); 11] = [
            (123, 45, '+', Format::Plain, "123+45=168$"),
            (1, 0, '+', Format::Plain, "1+0=1$"),
            (123, 45, '*', Format::Plain, "123*45=5535$"),
            (0, 977, '*', Format::Plain, "0*977=0$"),
            (
                123,
                45,
                '+',
                Format::PadRev { width: 5 },
                "00123+00045=861000$",
            ),
            (
                99999,
                99999,
                '+',
                Format::PadRev { width: 5 },
                "99999+99999=899991$",
            ),
            (7, 5, '+', Format::PadRev { width: 3 }, "007+005=2100$"),
            (
                123,
                45,
                '*',
                Format::PadRev { width: 5 },
                "00123*00045=5355000000$",
            ),
            (
                99999,
                99999,
                '*',
                Format::PadRev { width: 5 },
                "99999*99999=1000089999$",
            ),
            (123, 45, '+', Format::Spaces, "123+45=168$"),
            (
                9_999_999_999,
                1,
                '+',
                Format::PadRev { width: 10 },
                "9999999999+0000000001=00000000001$",
            ),
        ];
        for (a, b, op, format, want) in cases {
            let op = Op::from_word(op.encode_utf8(&mut [0; 4])).expect("op");
            let p = Problem { a, op, b };
            let text = format!("{}{}$", p.question(format)?, p.answer(format)?);
            assert_eq!(text, want);
            assert_eq!(parse_answer(&text, format)?, p.result());
            assert_eq!(decode(&encode(&text)?), text);
        }
        Ok(())
    }

    /// `HASH_EXAMPLES` and `HELDOUT_EXAMPLES` of formats.py.
    #[test]
    fn split_matches_the_python_vectors() {
        assert_eq!(pair_hash(0, 0, Op::Add), 0x4821_8226_ff3c_d4bf);
        assert_eq!(pair_hash(123, 45, Op::Add), 0xff86_98d4_8ec5_9ce4);
        assert_eq!(pair_hash(123, 45, Op::Mul), 0xd9d3_7ae4_e711_931f);
        for (a, b, op) in [
            (4, 25, Op::Add),
            (7, 88, Op::Add),
            (12, 34, Op::Add),
            (2, 10, Op::Mul),
            (9, 4, Op::Mul),
        ] {
            assert!(held_out(a, b, op), "{a} {op:?} {b}");
        }
        assert!(!held_out(123, 45, Op::Add));
        // Counts quoted in formats.py.
        let count = |op, lo: u64, hi: u64| {
            (lo..hi)
                .flat_map(|a| (lo..hi).map(move |b| (a, b)))
                .filter(|&(a, b)| held_out(a, b, op))
                .count()
        };
        assert_eq!(count(Op::Add, 0, 10), 0);
        assert_eq!(count(Op::Mul, 0, 10), 1);
        assert_eq!(count(Op::Add, 10, 100), 97);
        assert_eq!(count(Op::Mul, 10, 100), 82);
    }

    #[test]
    fn expressions_parse_or_say_why_not() {
        let p = Problem::parse(" 12345 + 6789 =").expect("parses");
        assert_eq!((p.a, p.op, p.b, p.result()), (12345, Op::Add, 6789, 19134));
        assert_eq!(Problem::parse("3*4").expect("parses").result(), 12);
        for bad in [
            "",
            "12",
            "1+",
            "+1",
            "-1+2",
            "1.5+2",
            "1+2+3",
            "99999999999999999999+1",
        ] {
            let err = Problem::parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with(&format!("cannot read `{bad}`")), "{err}");
        }
        let wide = Problem {
            a: 123_456,
            op: Op::Add,
            b: 1,
        };
        assert!(wide.question(Format::PadRev { width: 5 }).is_err());
        assert_eq!(digits(0), 1);
        assert_eq!(digits(10), 2);
    }

    /// A 14k-parameter model from the training script's smoke run (`arith-tiny.arcm`, barely
    /// trained): what it answers does not matter, only that the runtime decodes it consistently.
    #[cfg(feature = "tract")]
    #[test]
    fn batched_decoding_equals_one_at_a_time() -> Result<(), Box<dyn std::error::Error>> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/arith-tiny.arcm");
        let model = ArithModel::load(&crate::Bundle::open(path)?)?;
        let spec = model.spec();
        assert_eq!(
            (spec.op, spec.format, spec.max_digits),
            (Op::Add, Format::Plain, 4)
        );
        let problems: Vec<Problem> = [(1, 2), (12, 345), (9999, 9999), (0, 0), (31, 7), (4, 25)]
            .into_iter()
            .map(|(a, b)| Problem { a, op: Op::Add, b })
            .collect();
        let together = model.solve_all(&problems)?;
        for (p, got) in problems.iter().zip(&together) {
            assert_eq!(&model.solve(p)?, got, "{p}");
            assert!(!got.answer.contains('$'), "{got:?}");
        }
        // Problems it cannot take are errors, not guesses.
        for (a, op, b, want) in [
            (2, Op::Mul, 3, "does +, not *"),
            (123_456_789, Op::Add, 1, "reads at most 16"),
        ] {
            let err = model
                .solve(&Problem { a, op, b })
                .err()
                .map(|e| e.to_string());
            assert!(err.as_deref().is_some_and(|e| e.contains(want)), "{err:?}");
        }
        let text = crate::shipped::resolve("text-small")?;
        let err = ArithSpec::of(&text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not an arith one"), "{err}");
        Ok(())
    }

    /// Issue #8's bar for the shipped padded+reversed adder: at least 99% exact on fresh
    /// (held-out) problems of 2 to 10 digits (no 1-digit pair is held out; all 100 are checked
    /// as seen pairs), here on 40 problems per digit count with a seed the tables do not use.
    #[cfg(feature = "tract")]
    #[test]
    fn shipped_padrev_adder_is_exact() -> Result<(), Box<dyn std::error::Error>> {
        let name = crate::shipped::default_arith("add").ok_or("no shipped adder")?;
        let model = ArithModel::load(&crate::shipped::resolve(name)?)?;
        assert_eq!(model.spec().format, Format::PadRev { width: 10 });
        let (mut right, mut total) = (0, 0);
        let mut problems: Vec<Problem> = (0..100)
            .map(|i| Problem {
                a: i / 10,
                op: Op::Add,
                b: i % 10,
            })
            .collect();
        for d in 2..=10 {
            problems.extend(eval_problems(Op::Add, d, 40, 12345));
        }
        for (p, s) in problems.iter().zip(model.solve_all(&problems)?) {
            total += 1;
            if s.is_exact(p, model.spec().format) {
                right += 1;
            } else {
                eprintln!("{p}: {s:?}");
            }
        }
        assert!(right * 100 >= total * 99, "{right}/{total} exact");
        Ok(())
    }

    #[test]
    fn eval_sets_are_held_out_and_deterministic() {
        assert!(eval_problems(Op::Add, 1, 10, 0).is_empty());
        assert_eq!(
            eval_problems(Op::Mul, 1, 10, 0),
            [Problem {
                a: 9,
                op: Op::Mul,
                b: 4
            }]
        );
        assert_eq!(eval_problems(Op::Add, 2, 500, 0).len(), 97);
        for d in [2, 3, 8, 10] {
            let set = eval_problems(Op::Add, d, 50, 7);
            assert_eq!(set.len(), 50);
            assert_eq!(set, eval_problems(Op::Add, d, 50, 7));
            for p in &set {
                assert!(p.held_out());
                assert_eq!(
                    (digits(p.a.into()), digits(p.b.into())),
                    (d as usize, d as usize)
                );
            }
        }
        assert_ne!(
            eval_problems(Op::Add, 5, 20, 1),
            eval_problems(Op::Add, 5, 20, 2)
        );
    }

    #[test]
    fn answers_that_are_not_numbers_are_errors() {
        assert!(parse_answer("", Format::Plain).is_err());
        assert!(parse_answer("12+3=", Format::Plain).is_err());
        assert!(parse_answer("1 2$", Format::Plain).is_err());
        assert_eq!(parse_answer("12+3=15$__", Format::Plain), Ok(15));
        assert_eq!(parse_answer("51$", Format::PadRev { width: 2 }), Ok(15));
    }
}
