//! The arithmetic tasks: the 16-symbol vocabulary, problems and their formats, the held-out
//! split, sentences that ask for a sum, and what a model's manifest says about the problems it
//! solves.

use std::fmt;

use arca_bundle::{Bundle, ModelKind};

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
    encode_over(VOCAB, text)
        .map_err(|c| ArithError::Unsupported(format!("character {c:?} is not a token")))
}

/// Text of token ids (END as `$`, PAD as `_`); ids outside the vocabulary as `?`.
pub fn decode(ids: &[u8]) -> String {
    decode_over(VOCAB, ids)
}

/// Token ids of a text over an ASCII vocabulary (a token's id is its index); the first
/// character that is not a token is the error.
fn encode_over(vocab: &str, text: &str) -> Result<Vec<u8>, char> {
    text.chars()
        .map(|c| vocab.find(c).map(|i| i as u8).ok_or(c))
        .collect()
}

/// Text of token ids over an ASCII vocabulary; ids outside it as `?`.
fn decode_over(vocab: &str, ids: &[u8]) -> String {
    ids.iter()
        .map(|&i| {
            vocab
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArithSpec {
    /// The operation it was trained on.
    pub op: Op,
    /// Its format.
    pub format: Format,
    /// Most operand digits in training.
    pub max_digits: usize,
    /// For a model trained on sums asked inside sentences: its vocabulary and templates.
    pub sentences: Option<Sentences>,
}

/// How a problem is put to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phrasing {
    /// The model's question format (`123+45=`, or padded for `padrev`).
    Symbols,
    /// Inside a sentence of the model's templates (sentence models only).
    Sentence(Templates),
}

/// Which of a sentence model's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Templates {
    /// The sentences it was trained on (with held-out numbers).
    Training,
    /// Sentences it never saw.
    HeldOut,
}

/// A sentence model's vocabulary and the lists its sentences are made of (the manifest's
/// `arith.context.*`, from `models/arith/context.py`, which is the specification).
///
/// A template has `{a}`, `{b}`, `{n}` (a name) and `{t}` (a plural noun) and ends with a space,
/// where the answer goes: the sum, then a full stop (`the sum of 123 and 45 is ` → `168.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentences {
    /// The characters of the tokens, in id order: [`VOCAB`], then letters and punctuation.
    pub vocab: String,
    /// Names for `{n}`.
    pub names: Vec<String>,
    /// Plural nouns for `{t}`.
    pub things: Vec<String>,
    /// The training templates.
    pub training: Vec<String>,
    /// Templates never trained on.
    pub held_out: Vec<String>,
}

impl Sentences {
    /// `template` with its placeholders filled.
    pub fn render(template: &str, a: u64, b: u64, name: &str, thing: &str) -> String {
        template
            .replace("{a}", &a.to_string())
            .replace("{b}", &b.to_string())
            .replace("{n}", name)
            .replace("{t}", thing)
    }

    /// The sentence that asks `problem` in evaluation: template, name and noun are functions
    /// of the pair (as in `context.py`), so every implementation asks the same sentence.
    pub fn prompt(&self, problem: &Problem, templates: Templates) -> String {
        let h = pair_hash(problem.a, problem.b, problem.op);
        let pick = |list: &[String], k: u64| -> String {
            list[(mix64(h ^ k) % list.len() as u64) as usize].clone()
        };
        let list = match templates {
            Templates::Training => &self.training,
            Templates::HeldOut => &self.held_out,
        };
        Sentences::render(
            &pick(list, 1),
            problem.a,
            problem.b,
            &pick(&self.names, 2),
            &pick(&self.things, 3),
        )
    }

    /// The answer a perfect model writes after a sentence: the sum and a full stop.
    pub fn answer(problem: &Problem) -> String {
        format!("{}.", problem.result())
    }

    /// Token ids of a text over [`Sentences::vocab`].
    /// `$` and `_` are refused: they stand for END and PAD, which no prompt holds.
    pub fn encode(&self, text: &str) -> Result<Vec<u8>, ArithError> {
        let readable = |c: char| c != '$' && c != '_';
        encode_over(&self.vocab, text)
            .and_then(|ids| match text.chars().find(|&c| !readable(c)) {
                Some(c) => Err(c),
                None => Ok(ids),
            })
            .map_err(|c| {
                let tokens: String = self.vocab.chars().filter(|&c| readable(c)).collect();
                ArithError::Unsupported(format!(
                    "character {c:?} is not one of this model's tokens (`{tokens}`)"
                ))
            })
    }

    /// Text of token ids (END as `$`, PAD as `_`); ids outside the vocabulary as `?`.
    pub fn decode(&self, ids: &[u8]) -> String {
        decode_over(&self.vocab, ids)
    }

    fn of(m: &arca_bundle::Manifest) -> Result<Option<Sentences>, String> {
        let Some(vocab) = m.get("arith.context.vocab") else {
            return Ok(None);
        };
        if !vocab.starts_with(VOCAB)
            || !vocab.is_ascii()
            || vocab.contains('|')
            || vocab.len() > 256
        {
            return Err(format!(
                "`arith.context.vocab` must be ASCII and start with `{VOCAB}`"
            ));
        }
        let list = |k: &str| -> Result<Vec<String>, String> {
            let v = m
                .get(&format!("arith.context.{k}"))
                .ok_or_else(|| format!("its manifest has no `arith.context.{k}`"))?;
            let items: Vec<String> = v.split('|').map(str::to_owned).collect();
            if items.iter().any(String::is_empty) {
                return Err(format!("`arith.context.{k}` has an empty entry"));
            }
            let bare = ["{a}", "{b}", "{n}", "{t}"]
                .iter()
                .fold(v.to_owned(), |text, hole| text.replace(hole, ""));
            if let Some(c) = bare.chars().find(|&c| c != '|' && !vocab.contains(c)) {
                return Err(format!(
                    "`arith.context.{k}` has {c:?}, which is not a token"
                ));
            }
            Ok(items)
        };
        Ok(Some(Sentences {
            vocab: vocab.to_owned(),
            names: list("names")?,
            things: list("things")?,
            training: list("train_templates")?,
            held_out: list("heldout_templates")?,
        }))
    }
}

impl ArithSpec {
    /// Reads the spec from a bundle's manifest.
    pub fn of(bundle: &Bundle) -> Result<ArithSpec, ArithError> {
        let m = bundle.manifest();
        let model = |reason: String| ArithError::Model(format!("model `{}`: {reason}", m.name));
        // `target` and `draft` bundles of an arithmetic model (its KV-cache export for
        // speculative generation) carry the same `arith.*` keys.
        if !matches!(
            m.kind,
            ModelKind::Arith | ModelKind::Target | ModelKind::Draft
        ) || (m.kind != ModelKind::Arith && m.get("arith.task").is_none())
        {
            return Err(model(format!(
                "is a {} model, not an arith one",
                m.kind.as_str()
            )));
        }
        let sentences = Sentences::of(m).map_err(model)?;
        let tokens = sentences.as_ref().map_or(VOCAB_SIZE, |s| s.vocab.len());
        if m.vocab_size as usize != tokens {
            return Err(model(format!(
                "has {} tokens, expected {tokens}",
                m.vocab_size
            )));
        }
        let key = |k: &str| {
            m.get(&format!("arith.{k}"))
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
        if sentences.is_some() && (op != Op::Add || matches!(format, Format::PadRev { .. })) {
            return Err(model(
                "sentences are for addition in the plain or spaces format".into(),
            ));
        }
        Ok(ArithSpec {
            op,
            format,
            max_digits: number("max_digits")?,
            sentences,
        })
    }

    /// Logits per position.
    pub fn vocab_size(&self) -> usize {
        self.sentences
            .as_ref()
            .map_or(VOCAB_SIZE, |s| s.vocab.len())
    }

    /// Token ids of a text over the model's vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<u8>, ArithError> {
        match &self.sentences {
            Some(s) => s.encode(text),
            None => encode(text),
        }
    }

    /// Text of token ids over the model's vocabulary.
    pub fn decode(&self, ids: &[u8]) -> String {
        match &self.sentences {
            Some(s) => s.decode(ids),
            None => decode(ids),
        }
    }

    /// The prompt that asks `problem` and the answer a perfect model writes after it (END not
    /// included).
    pub fn ask(
        &self,
        problem: &Problem,
        phrasing: Phrasing,
    ) -> Result<(String, String), ArithError> {
        let question = match (phrasing, &self.sentences) {
            (Phrasing::Symbols, _) => problem.question(self.format)?,
            (Phrasing::Sentence(t), Some(s)) => s.prompt(problem, t),
            (Phrasing::Sentence(_), None) => {
                return Err(ArithError::Unsupported(
                    "this model was not trained on sentences".into(),
                ));
            }
        };
        Ok((question, self.answer(problem, phrasing)?))
    }

    /// The answer a perfect model writes after `problem` asked in `phrasing` (END not
    /// included), without rendering the question.
    pub fn answer(&self, problem: &Problem, phrasing: Phrasing) -> Result<String, ArithError> {
        match phrasing {
            Phrasing::Symbols => problem.answer(self.format),
            Phrasing::Sentence(_) => Ok(Sentences::answer(problem)),
        }
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

    /// Exact match against an expected answer (as [`ArithSpec::ask`] gives it), then END.
    pub fn matches(&self, expected: &str) -> bool {
        self.ended && self.answer == expected
    }
}
