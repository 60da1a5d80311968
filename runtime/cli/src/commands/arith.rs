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
    use arca_runtime::arith::{ArithModel, Format, Op, Problem, eval_problems};
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
            let problem = Problem::parse(expr)?;
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

    /// The digit counts a model is measured on: its width for padded models, two past its
    /// training range otherwise (length extrapolation).
    fn default_digits(format: Format, max_digits: usize) -> u32 {
        match format {
            Format::PadRev { width } => width as u32,
            Format::Plain | Format::Spaces => max_digits as u32 + 2,
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
            let top = args.digits.unwrap_or_else(|| {
                of_op
                    .iter()
                    .map(|m| default_digits(m.spec().format, m.spec().max_digits))
                    .max()
                    .unwrap_or(1)
            });
            writeln!(doc, "\n### {} (a{}b)\n", op.task(), op.symbol())?;
            let mut header = String::from("| digits | n |");
            let mut rule = String::from("| ---: | ---: |");
            for m in &of_op {
                let s = m.spec();
                write!(
                    header,
                    " {} ({}, trained on 1-{} digits) |",
                    m.name(),
                    s.format,
                    s.max_digits
                )?;
                rule.push_str(" ---: |");
            }
            writeln!(doc, "{header}\n{rule}")?;
            for d in 1..=top {
                let problems = eval_problems(op, d, args.problems, args.seed);
                let mut row = format!("| {d} | {} |", problems.len());
                for m in &of_op {
                    let cell = if problems.is_empty() {
                        "n/a".to_owned()
                    } else {
                        match accuracy(m, &problems) {
                            Ok(acc) => format!("{:.1}", 100.0 * acc),
                            Err(_) => "-".to_owned(),
                        }
                    };
                    write!(row, " {cell} |")?;
                }
                writeln!(doc, "{row}")?;
                if !ui.quiet {
                    errln!(
                        "{} {d} digits: done ({:.1} s)",
                        op.task(),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
        crate::io::write_report(out.as_ref(), &doc, args.force, ui.quiet)?;
        Ok(())
    }

    /// Share of exact answers; an error if the model cannot take these problems at all.
    fn accuracy(model: &ArithModel, problems: &[Problem]) -> Result<f64> {
        let format = model.spec().format;
        let mut right = 0usize;
        for chunk in problems.chunks(256) {
            let solutions = model.solve_all(chunk)?;
            right += chunk
                .iter()
                .zip(&solutions)
                .filter(|(p, s)| s.is_exact(p, format))
                .count();
        }
        Ok(right as f64 / problems.len() as f64)
    }
}
