//! `arca arith`: answers and accuracy tables of the arithmetic models (issue #8).

use anyhow::Result;

use crate::Ui;
use crate::args::ArithArgs;

#[cfg(not(feature = "tract"))]
pub fn arith(_args: &ArithArgs, _ui: &Ui) -> Result<()> {
    anyhow::bail!(
        "this build of arca cannot run arithmetic models: they need tract (build with the \
         `tract` feature, on by default)"
    )
}

#[cfg(feature = "tract")]
pub fn arith(args: &ArithArgs, ui: &Ui) -> Result<()> {
    if args.eval {
        with_tract::eval(args, ui)
    } else {
        with_tract::solve(args)
    }
}

#[cfg(feature = "tract")]
mod with_tract {
    use std::collections::HashMap;
    use std::fmt::Write as _;
    use std::time::Instant;

    use anyhow::{Context, Result, bail};
    use arca_runtime::arith::{
        ArithModel, Format, Op, Phrasing, Problem, Templates, eval_problems,
    };
    use arca_runtime::shipped;

    use crate::Ui;
    use crate::args::ArithArgs;
    use crate::io::Output;

    fn load(name: &str) -> Result<ArithModel> {
        let bundle =
            shipped::resolve(name).with_context(|| format!("cannot open model '{name}'"))?;
        ArithModel::load(&bundle).with_context(|| format!("cannot load model '{name}'"))
    }

    /// Prints each expression's answer, as the model gives it.
    pub fn solve(args: &ArithArgs) -> Result<()> {
        if args.models.len() > 1 {
            bail!("give one -m MODEL to answer with (several are for --eval)");
        }
        let mut models: HashMap<Op, ArithModel> = HashMap::new();
        for expr in &args.exprs {
            let problem = match Problem::parse(expr) {
                Ok(problem) => problem,
                Err(not_an_expr) => {
                    // A sentence, for a sentence model.
                    let model = match (args.models.first(), models.entry(Op::Add)) {
                        (Some(_), std::collections::hash_map::Entry::Occupied(e)) => e.into_mut(),
                        (Some(name), std::collections::hash_map::Entry::Vacant(e)) => {
                            e.insert(load(name)?)
                        }
                        (None, _) => return Err(not_an_expr.into()),
                    };
                    if model.spec().sentences.is_none() {
                        return Err(not_an_expr.into());
                    }
                    answer_sentence(model, expr, args.check)?;
                    continue;
                }
            };
            let model = match models.entry(problem.op) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let name = match args.models.first() {
                        Some(m) => m.clone(),
                        None => shipped::default_arith(problem.op.task())
                            .with_context(|| {
                                format!(
                                    "no embedded model does {}; give one with -m",
                                    problem.op.task()
                                )
                            })?
                            .to_owned(),
                    };
                    e.insert(load(&name)?)
                }
            };
            let format = model.spec().format;
            let solution = model.solve(&problem)?;
            let value = solution.value(format).with_context(|| {
                format!(
                    "model '{}' did not answer {problem} with a number",
                    model.name()
                )
            })?;
            if !args.check {
                outln!("{value}");
            } else if solution.is_exact(&problem, format) {
                outln!("{value} (correct)");
            } else {
                outln!("{value} (wrong: {problem} = {})", problem.result());
            }
        }
        Ok(())
    }

    /// A sentence model's continuation of `sentence` (lowercased, ending with a space where
    /// the answer goes); with `check`, whether it is the sum of the sentence's two numbers.
    fn answer_sentence(model: &ArithModel, sentence: &str, check: bool) -> Result<()> {
        let text = format!("{} ", sentence.trim().to_lowercase());
        let solution = model
            .continue_text(&text)
            .with_context(|| format!("model '{}' cannot read this sentence", model.name()))?;
        let mut said = solution.answer.clone();
        if !solution.ended {
            said.push_str(" (no end: the model ran out of positions)");
        }
        if !check {
            outln!("{said}");
            return Ok(());
        }
        let numbers: Vec<&str> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .collect();
        let [a, b] = numbers[..] else {
            outln!(
                "{said} (cannot check: the sentence has {} number{}, not 2)",
                numbers.len(),
                if numbers.len() == 1 { "" } else { "s" }
            );
            return Ok(());
        };
        let (a, b) = match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => bail!("the sentence's numbers must have at most 19 digits"),
        };
        let problem = Problem { a, op: Op::Add, b };
        if solution.matches(&format!("{}.", problem.result())) {
            outln!("{said} (correct)");
        } else {
            outln!("{said} (wrong: {problem} = {})", problem.result());
        }
        Ok(())
    }

    /// The digit counts a model is measured on: its width for padded models, its training
    /// range for sentence models (their positions end there), two past its training range
    /// otherwise (length extrapolation).
    fn default_digits(model: &ArithModel) -> u32 {
        let spec = model.spec();
        match spec.format {
            Format::PadRev { width } => width as u32,
            _ if spec.sentences.is_some() => spec.max_digits as u32,
            Format::Plain | Format::Spaces => spec.max_digits as u32 + 2,
        }
    }

    /// Writes the accuracy table of every model.
    pub fn eval(args: &ArithArgs, ui: &Ui) -> Result<()> {
        let out = (args.output.as_os_str() != "-").then(|| Output::File(args.output.clone()));
        if let Some(out) = &out {
            out.check(args.force, false)?;
        }
        let names: Vec<String> = if args.models.is_empty() {
            shipped::shipped()
                .iter()
                .filter(|m| {
                    m.bundle()
                        .is_ok_and(|b| b.manifest().kind == arca_runtime::ModelKind::Arith)
                })
                .map(|m| m.name().to_owned())
                .collect()
        } else {
            args.models.clone()
        };
        if names.is_empty() {
            bail!("no arithmetic model to evaluate: give them with -m");
        }
        let models = names.iter().map(|n| load(n)).collect::<Result<Vec<_>>>()?;
        let started = Instant::now();
        let mut doc = String::new();
        writeln!(
            doc,
            "Exact match (%) of greedy answers on held-out problems (pairs never trained on), \
             {} problems per digit count (fewer where fewer exist) with both operands of exactly \
             d digits, seed {}. `n/a`: no held-out pair of that size; `-`: the model cannot take \
             it (wider than its padding, or longer than its positions). Written by `arca arith \
             --eval`.",
            args.problems, args.seed
        )?;
        for op in [Op::Add, Op::Mul] {
            let of_op: Vec<&ArithModel> = models.iter().filter(|m| m.spec().op == op).collect();
            if of_op.is_empty() {
                continue;
            }
            let top = args
                .digits
                .unwrap_or_else(|| of_op.iter().map(|m| default_digits(m)).max().unwrap_or(1));
            // Row d's problems, drawn once for every table of this operation.
            let sets: Vec<Vec<Problem>> = (1..=top)
                .map(|d| eval_problems(op, d, args.problems, args.seed))
                .collect();
            let title = format!("{} (a{}b)", op.task(), op.symbol());
            table(&mut doc, &title, &of_op, &sets, Phrasing::Symbols, ui.quiet)?;
            if op != Op::Add {
                continue;
            }
            let of_sentences: Vec<&ArithModel> = of_op
                .iter()
                .copied()
                .filter(|m| m.spec().sentences.is_some())
                .collect();
            if of_sentences.is_empty() {
                continue;
            }
            // At most `top`: the sentence models are among this operation's.
            let top = args.digits.unwrap_or_else(|| {
                of_sentences
                    .iter()
                    .map(|m| default_digits(m))
                    .max()
                    .unwrap_or(1)
            });
            let sets = &sets[..top as usize];
            for (title, templates) in [
                ("add in sentences of held-out templates", Templates::HeldOut),
                (
                    "add in sentences of the training templates (held-out pairs)",
                    Templates::Training,
                ),
            ] {
                let phrasing = Phrasing::Sentence(templates);
                table(&mut doc, title, &of_sentences, sets, phrasing, ui.quiet)?;
            }
        }
        if !ui.quiet {
            errln!("done in {:.1} s", started.elapsed().as_secs_f64());
        }
        crate::io::write_report(out.as_ref(), &doc, args.force, ui.quiet)?;
        Ok(())
    }

    /// One table: a row per digit count (`sets[d - 1]` holds its problems), a column per model.
    fn table(
        doc: &mut String,
        title: &str,
        models: &[&ArithModel],
        sets: &[Vec<Problem>],
        phrasing: Phrasing,
        quiet: bool,
    ) -> Result<()> {
        writeln!(doc, "\n### {title}\n")?;
        let mut header = String::from("| digits | n |");
        let mut rule = String::from("| ---: | ---: |");
        for m in models {
            let s = m.spec();
            let kind = if s.sentences.is_some() {
                ", sentences"
            } else {
                ""
            };
            write!(
                header,
                " {} ({}{kind}, trained on 1-{} digits) |",
                m.name(),
                s.format,
                s.max_digits
            )?;
            rule.push_str(" ---: |");
        }
        writeln!(doc, "{header}\n{rule}")?;
        for (problems, d) in sets.iter().zip(1..) {
            let mut row = format!("| {d} | {} |", problems.len());
            for m in models {
                let cell = if problems.is_empty() {
                    "n/a".to_owned()
                } else {
                    match accuracy(m, problems, phrasing) {
                        Ok(acc) => format!("{:.1}", 100.0 * acc),
                        Err(_) => "-".to_owned(),
                    }
                };
                write!(row, " {cell} |")?;
            }
            writeln!(doc, "{row}")?;
            if !quiet {
                errln!("{title}, {d} digits: done");
            }
        }
        Ok(())
    }

    /// Share of exact answers; an error if the model cannot take these problems at all.
    fn accuracy(model: &ArithModel, problems: &[Problem], phrasing: Phrasing) -> Result<f64> {
        let mut right = 0usize;
        for chunk in problems.chunks(256) {
            let solutions = model.solve_phrased(chunk, phrasing)?;
            for (p, s) in chunk.iter().zip(&solutions) {
                right += usize::from(s.matches(&model.spec().answer(p, phrasing)?));
            }
        }
        Ok(right as f64 / problems.len() as f64)
    }
}
