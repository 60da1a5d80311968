//! `arca bench`: bits per byte and speed of arca against the classic compressors, as a
//! markdown report and an optional SVG plot.
//!
//! Every input is compressed and decompressed by every method: arca in-process (plain, and
//! Equal-Info Windows of each `--eiw` size), and each classic tool found on `PATH` as a
//! subprocess (`gzip -9`, `bzip2 -9`, `xz -9e`, `zstd --ultra -22`, `brotli -q 11`) reading a
//! temporary copy of the input. Each direction is timed with the wall clock (the median of
//! `--runs` runs) and every round trip is checked byte for byte.
//!
//! ```text
//! arca bench --eiw 16,64 --tools gzip,xz book1 book2 -o report.md --svg report.svg
//! ```
//!
//! A round trip that does not give the input back is reported in the table (`FAILED`), and the
//! command then exits with status 1.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use arca_runtime::codec::{EiwOptions, Options, TextCodec};
use arca_runtime::eiw;

use crate::Ui;
use crate::args::{BenchArgs, TextCodecChoice, Tool};
use crate::io::Output;
use crate::models::Loaded;
use crate::progress::Progress;

/// One way of compressing: arca plain, arca with Equal-Info Windows of `W` bits, or a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// `arca compress`.
    Arca,
    /// `arca compress --eiw W`.
    ArcaEiw(u32),
    /// A classic compressor run as a subprocess.
    Tool(Tool),
}

impl Method {
    /// The method's name in the report: `arca`, `arca eiw W=16`, `gzip -9`.
    fn label(self) -> String {
        match self {
            Method::Arca => "arca".to_owned(),
            Method::ArcaEiw(w) => format!("arca eiw W={w}"),
            Method::Tool(t) => tool_label(t).to_owned(),
        }
    }

    fn is_arca(self) -> bool {
        !matches!(self, Method::Tool(_))
    }
}

/// A tool's name and level, as the report shows it.
fn tool_label(tool: Tool) -> &'static str {
    match tool {
        Tool::Gzip => "gzip -9",
        Tool::Bzip2 => "bzip2 -9",
        Tool::Xz => "xz -9e",
        Tool::Zstd => "zstd --ultra -22",
        Tool::Brotli => "brotli -q 11",
    }
}

/// A tool's program and compression flags (it then reads the file named after them and writes
/// stdout).
fn tool_compress(tool: Tool) -> (&'static str, &'static [&'static str]) {
    match tool {
        Tool::Gzip => ("gzip", &["-9", "-c"]),
        Tool::Bzip2 => ("bzip2", &["-9", "-c"]),
        Tool::Xz => ("xz", &["-9e", "-c"]),
        Tool::Zstd => ("zstd", &["--ultra", "-22", "-q", "-c"]),
        Tool::Brotli => ("brotli", &["-q", "11", "-c"]),
    }
}

/// A tool's decompression flags.
fn tool_decompress(tool: Tool) -> &'static [&'static str] {
    match tool {
        Tool::Zstd => &["-d", "-q", "-c"],
        _ => &["-d", "-c"],
    }
}

/// The measurements of one method on one input.
#[derive(Debug, Clone)]
struct Row {
    /// The input's name in the table.
    file: String,
    method: Method,
    original: u64,
    compressed: u64,
    /// Median seconds to compress.
    compress_secs: f64,
    /// Median seconds to decompress.
    decompress_secs: f64,
    /// `None` if every run gave the input back (and every compression the same bytes), else
    /// what went wrong.
    failure: Option<String>,
}

/// What a method needs to run.
struct Bench<'a> {
    codec: Option<TextCodec<'a>>,
    threads: usize,
    block_size: u32,
    /// Plain arca codes with the network alone (`text-nn`).
    nn: bool,
    runs: usize,
    /// Scratch folder for the tools' inputs and outputs.
    scratch: &'a Path,
    progress: bool,
}

impl Bench<'_> {
    fn codec(&self) -> Result<&TextCodec<'_>> {
        self.codec.as_ref().context("no model loaded")
    }

    /// Compresses `data` once with `method`. `input` holds the same bytes, for tools.
    fn compress(&self, method: Method, data: &[u8], input: &Path, label: &str) -> Result<Vec<u8>> {
        let progress = Progress::new(label, data.len() as u64, self.progress && method.is_arca());
        let packed = match method {
            Method::Arca => {
                let opts = Options {
                    block_size: self.block_size,
                    threads: self.threads,
                };
                if self.nn {
                    self.codec()?
                        .compress_nn(data, &opts, &|n| progress.inc(n))?
                } else {
                    self.codec()?.compress(data, &opts, &|n| progress.inc(n))?
                }
            }
            Method::ArcaEiw(bits) => {
                let mut opts = EiwOptions::new(bits);
                opts.schedule = eiw::Schedule {
                    threads: self.threads,
                    ..eiw::Schedule::default()
                };
                self.codec()?
                    .compress_eiw(data, &opts, &|n| progress.inc(n))?
            }
            Method::Tool(tool) => {
                let (program, flags) = tool_compress(tool);
                run_tool(program, flags, input)?
            }
        };
        Ok(packed)
    }

    /// Decompresses `packed` once with `method`. `packed_path` holds the same bytes, for tools.
    fn decompress(
        &self,
        method: Method,
        packed: &[u8],
        packed_path: &Path,
        original_len: u64,
        label: &str,
    ) -> Result<Vec<u8>> {
        match method {
            Method::Arca | Method::ArcaEiw(_) => {
                let progress = Progress::new(label, original_len, self.progress);
                let opts = Options {
                    block_size: self.block_size,
                    threads: self.threads,
                };
                Ok(self
                    .codec()?
                    .decompress(packed, &opts, &|n| progress.inc(n))?)
            }
            Method::Tool(tool) => {
                let (program, _) = tool_compress(tool);
                run_tool(program, tool_decompress(tool), packed_path)
            }
        }
    }

    /// Runs `method` on `data`: `runs` compressions, then `runs` decompressions of the result.
    fn measure(&self, file: &str, method: Method, data: &[u8]) -> Result<Row> {
        let label = format!("{file} ({})", method.label());
        let input = self.scratch.join("input");
        let packed_path = self.scratch.join("input.packed");
        if !method.is_arca() {
            fs::write(&input, data).context("cannot write a scratch file")?;
        }
        let mut failure = None;
        let mut compress_times = Vec::with_capacity(self.runs);
        let mut packed: Option<Vec<u8>> = None;
        for _ in 0..self.runs {
            let start = Instant::now();
            let out = self
                .compress(method, data, &input, &label)
                .with_context(|| label.clone())?;
            compress_times.push(start.elapsed());
            match &packed {
                None => packed = Some(out),
                Some(first) if *first != out => {
                    failure = Some("two runs compressed to different bytes".to_owned());
                }
                Some(_) => {}
            }
        }
        let packed = packed.unwrap_or_default();
        if !method.is_arca() {
            fs::write(&packed_path, &packed).context("cannot write a scratch file")?;
        }
        let mut decompress_times = Vec::with_capacity(self.runs);
        for _ in 0..self.runs {
            let start = Instant::now();
            let result = self.decompress(method, &packed, &packed_path, data.len() as u64, &label);
            decompress_times.push(start.elapsed());
            match result {
                Ok(plain) if plain == data => {}
                Ok(plain) => {
                    failure = Some(format!(
                        "decompressed {} bytes that differ from the {} input bytes",
                        plain.len(),
                        data.len()
                    ));
                }
                // A stream its own codec rejects is a failed round trip, not a bad argument.
                Err(e) => failure = Some(crate::io::error_line(&e)),
            }
        }
        Ok(Row {
            file: file.to_owned(),
            method,
            original: data.len() as u64,
            compressed: packed.len() as u64,
            compress_secs: median(&compress_times),
            decompress_secs: median(&decompress_times),
            failure,
        })
    }
}

/// Runs `program flags... path` and returns its stdout; an error if it fails.
fn run_tool(program: &str, flags: &[&str], path: &Path) -> Result<Vec<u8>> {
    let out = Command::new(program)
        .args(flags)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{program} {} failed ({}): {}",
            flags.join(" "),
            out.status,
            err.trim()
        );
    }
    Ok(out.stdout)
}

/// The median of `times` in seconds (the mean of the middle two for an even count).
fn median(times: &[Duration]) -> f64 {
    let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    median_of(&secs)
}

/// The median of `values` (the mean of the middle two for an even count; 0 for none).
pub fn median_of(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Where `program` is on `PATH`, if anywhere.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// A tool's name and version (`bzip2 1.0.8`), from what it prints for `--version`; `None`
/// if it prints no version number.
fn tool_version(tool: Tool) -> Option<String> {
    let (program, _) = tool_compress(tool);
    let flag = if tool == Tool::Zstd {
        "-V"
    } else {
        "--version"
    };
    let out = Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    // bzip2 prints its version on stderr.
    let text = [out.stdout, out.stderr].concat();
    let version = version_number(&String::from_utf8_lossy(&text))?;
    Some(format!("{program} {version}"))
}

/// The first word of `text` that looks like a version number: `1.0.8` in
/// `bzip2, a block-sorting file compressor.  Version 1.0.8, 13-Jul-2019.`, `1.5.4` in
/// `*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***`.
fn version_number(text: &str) -> Option<String> {
    text.split_whitespace().find_map(|word| {
        let word = word.strip_prefix('v').unwrap_or(word);
        let word = word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let looks = word.starts_with(|c: char| c.is_ascii_digit())
            && word.contains('.')
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        looks.then(|| word.to_owned())
    })
}

/// Totals of one method over every input.
#[derive(Debug, Clone)]
struct Total {
    method: Method,
    original: u64,
    compressed: u64,
    compress_secs: f64,
    decompress_secs: f64,
    ok: bool,
}

impl Total {
    fn bits_per_byte(&self) -> Option<f64> {
        bits_per_byte(self.original, self.compressed)
    }

    fn compress_speed(&self) -> f64 {
        kb_per_sec(self.original, self.compress_secs)
    }
}

/// Sums the rows of each method, in the order the methods first appear.
fn totals(rows: &[Row]) -> Vec<Total> {
    let mut totals: Vec<Total> = Vec::new();
    for row in rows {
        let at = match totals.iter().position(|t| t.method == row.method) {
            Some(i) => i,
            None => {
                totals.push(Total {
                    method: row.method,
                    original: 0,
                    compressed: 0,
                    compress_secs: 0.0,
                    decompress_secs: 0.0,
                    ok: true,
                });
                totals.len() - 1
            }
        };
        let t = &mut totals[at];
        t.original += row.original;
        t.compressed += row.compressed;
        t.compress_secs += row.compress_secs;
        t.decompress_secs += row.decompress_secs;
        t.ok &= row.failure.is_none();
    }
    totals
}

fn bits_per_byte(original: u64, compressed: u64) -> Option<f64> {
    (original > 0).then(|| 8.0 * compressed as f64 / original as f64)
}

/// Speed in KB/s (1 KB = 1000 bytes) of `bytes` of original data in `secs`.
fn kb_per_sec(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1000.0 / secs.max(1e-9)
}

fn fmt_bpb(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn fmt_speed(v: f64) -> String {
    format!("{v:.1}")
}

/// Facts about the run for the report's header.
struct RunInfo {
    date: String,
    machine: String,
    arca: String,
    command: String,
    runs: usize,
    tools: Vec<String>,
    missing: Vec<&'static str>,
}

/// The markdown report: header, a row per (file, method), then the totals per method.
fn report(ctx: &RunInfo, rows: &[Row]) -> Result<String> {
    let mut doc = String::new();
    writeln!(doc, "# arca bench\n")?;
    writeln!(doc, "- Date: {}", ctx.date)?;
    writeln!(doc, "- Machine: {}", ctx.machine)?;
    writeln!(doc, "- {}", ctx.arca)?;
    if !ctx.tools.is_empty() {
        writeln!(doc, "- Tools: {}", ctx.tools.join(", "))?;
    }
    if !ctx.missing.is_empty() {
        writeln!(doc, "- Not installed (no rows): {}", ctx.missing.join(", "))?;
    }
    writeln!(
        doc,
        "- Times: wall clock, median of {} run{} per direction; KB/s = 1000 bytes of original \
         data per second, both directions",
        ctx.runs,
        if ctx.runs == 1 { "" } else { "s" }
    )?;
    writeln!(doc, "- Command: `{}`", ctx.command)?;
    writeln!(doc, "\n## Per file\n")?;
    writeln!(
        doc,
        "| file | method | original bytes | compressed bytes | bits/byte | compress KB/s | \
         decompress KB/s | round trip |"
    )?;
    writeln!(
        doc,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    )?;
    for r in rows {
        writeln!(
            doc,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.file,
            r.method.label(),
            r.original,
            r.compressed,
            fmt_bpb(bits_per_byte(r.original, r.compressed)),
            fmt_speed(kb_per_sec(r.original, r.compress_secs)),
            fmt_speed(kb_per_sec(r.original, r.decompress_secs)),
            if r.failure.is_none() { "ok" } else { "FAILED" }
        )?;
    }
    let files = rows
        .iter()
        .map(|r| r.file.as_str())
        .fold(Vec::<&str>::new(), |mut v, f| {
            if !v.contains(&f) {
                v.push(f);
            }
            v
        });
    writeln!(doc, "\n## All files together\n")?;
    writeln!(
        doc,
        "{} file{} ({}): sizes summed, bits/byte = 8 x total compressed / total original, speeds \
         = total original bytes / total time.\n",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        files.join(", ")
    )?;
    writeln!(
        doc,
        "| method | original bytes | compressed bytes | bits/byte | compress KB/s | \
         decompress KB/s | round trip |"
    )?;
    writeln!(doc, "| --- | ---: | ---: | ---: | ---: | ---: | --- |")?;
    for t in totals(rows) {
        writeln!(
            doc,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.method.label(),
            t.original,
            t.compressed,
            fmt_bpb(t.bits_per_byte()),
            fmt_speed(t.compress_speed()),
            fmt_speed(kb_per_sec(t.original, t.decompress_secs)),
            if t.ok { "ok" } else { "FAILED" }
        )?;
    }
    Ok(doc)
}

/// The plot: bits per byte against compression speed (log scale), one labelled point per
/// method over all files together. Methods with no data (empty inputs) are left out.
fn plot(totals: &[Total], title: &str) -> Result<String> {
    use plotters::prelude::*;

    let points: Vec<(String, f64, f64, bool)> = totals
        .iter()
        .filter_map(|t| {
            let bpb = t.bits_per_byte()?;
            Some((
                t.method.label(),
                t.compress_speed(),
                bpb,
                t.method.is_arca(),
            ))
        })
        .collect();
    let (mut lo, mut hi, mut top) = (f64::INFINITY, 0.0f64, 0.0f64);
    for (_, speed, bpb, _) in &points {
        lo = lo.min(*speed);
        hi = hi.max(*speed);
        top = top.max(*bpb);
    }
    if points.is_empty() {
        (lo, hi, top) = (1.0, 10.0, 8.0);
    }
    // The axis starts at a power of ten, so its first tick is labelled, and leaves room for
    // the labels right of the fastest point.
    let (x0, x1) = (10f64.powf((lo / 1.5).log10().floor()), hi * 4.0);
    let y1 = (top * 1.15).max(0.5);

    let arca = RGBColor(200, 40, 40);
    let tool = RGBColor(40, 80, 200);
    let font = ("sans-serif", LABEL_HEIGHT).into_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0..y1)?;
        chart
            .configure_mesh()
            .x_desc("compress speed, KB/s (log scale)")
            .y_desc("bits per byte (lower is better)")
            .x_label_formatter(&|v| format_axis(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        let anchors: Vec<(i32, i32, usize)> = points
            .iter()
            .map(|(label, x, y, _)| {
                let (px, py) = chart.backend_coord(&(*x, *y));
                (px, py, label.chars().count())
            })
            .collect();
        let label_ys = place_labels(&anchors);
        for ((label, _, _, is_arca), (&(px, py, _), &ly)) in
            points.iter().zip(anchors.iter().zip(&label_ys))
        {
            let color = if *is_arca { arca } else { tool };
            let lx = px + LABEL_GAP;
            if ly != py {
                // The label had to move away from its point: a thin leader line joins them.
                root.draw(&PathElement::new(
                    vec![(px, py), (lx - 2, ly)],
                    color.mix(0.5).stroke_width(1),
                ))?;
            }
            root.draw(&Circle::new((px, py), 5, color.filled()))?;
            root.draw(&Text::new(
                label.clone(),
                (lx, ly - LABEL_HEIGHT / 2),
                font.clone(),
            ))?;
        }
        // Legend, bottom left, below the axis.
        let (_, h) = root.dim_in_pixel();
        let y = h as i32 - 18;
        let mut x = 20;
        for (text, color) in [("arca", arca), ("classic tools", tool)] {
            root.draw(&Circle::new((x, y), 5, color.filled()))?;
            root.draw(&Text::new(
                text,
                (x + 10, y - LABEL_HEIGHT / 2),
                font.clone(),
            ))?;
            x += 30 + text.len() as i32 * LABEL_HEIGHT * 6 / 10;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Label font size in pixels; one label line is this tall.
const LABEL_HEIGHT: i32 = 14;
/// Pixels between a point and its label.
const LABEL_GAP: i32 = 9;

/// Places a label right of each point `(x, y, characters)` (pixels): returns the label's
/// vertical centre, the point's own height where that is free, else the nearest height, in
/// steps of a line, that overlaps no label placed before it (points are taken top to bottom).
fn place_labels(points: &[(i32, i32, usize)]) -> Vec<i32> {
    // A generous estimate of a sans-serif character's width at this size.
    let char_width = LABEL_HEIGHT * 6 / 10;
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].1, points[i].0));
    let mut placed: Vec<(i32, i32, i32)> = Vec::new(); // (x0, x1, centre y)
    let mut ys = vec![0; points.len()];
    for i in order {
        let (x, y, chars) = points[i];
        let x0 = x + LABEL_GAP;
        let x1 = x0 + char_width * chars as i32;
        let free = |cy: i32| {
            placed
                .iter()
                .all(|&(a0, a1, ay)| x1 < a0 || a1 < x0 || (cy - ay).abs() >= LABEL_HEIGHT + 2)
        };
        let step = LABEL_HEIGHT + 2;
        let cy = (0..)
            .flat_map(|k| [y + k * step, y - k * step])
            .find(|&cy| free(cy))
            .unwrap_or(y);
        placed.push((x0, x1, cy));
        ys[i] = cy;
    }
    ys
}

/// An axis label for a speed: no decimals from 10 up.
fn format_axis(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The inputs' names in the table: file names, or the paths as given when two file names
/// are the same.
fn names(files: &[PathBuf]) -> Vec<String> {
    let short: Vec<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
        })
        .collect();
    let unique = short
        .iter()
        .enumerate()
        .all(|(i, n)| !short[..i].contains(n));
    if unique {
        short
    } else {
        files.iter().map(|p| p.display().to_string()).collect()
    }
}

/// `2026-11-26 19:31 UTC` from the system clock.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_date(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian).
fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (H. Hinnant's algorithm), from 0000-03-01 eras of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `AMD EPYC, 2 logical CPUs (x86_64 linux)`.
fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == "model name")
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{cpu}, {cores} logical CPU{} ({} {})",
        if cores == 1 { "" } else { "s" },
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// The command line as typed, `arca` first, arguments quoted for a POSIX shell where needed.
fn command_line() -> String {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut line = String::from("arca");
    for a in &args {
        line.push(' ');
        line.push_str(&shell_quote(&a.to_string_lossy()));
    }
    line
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `arca bench`.
pub fn bench(args: &BenchArgs, ui: &Ui) -> Result<()> {
    // Everything that can be wrong with the arguments fails here, before any work.
    let report_out = (args.output.as_os_str() != "-").then(|| Output::File(args.output.clone()));
    if let Some(out) = &report_out {
        out.check(args.force, false)?;
    }
    let svg_out = match &args.svg {
        Some(p) if p.as_os_str() == "-" => bail!("--svg needs a file name (not `-`)"),
        Some(p) => Some(Output::File(p.clone())),
        None => None,
    };
    if let Some(out) = &svg_out {
        out.check(args.force, false)?;
    }
    if let (Some(report), Some(svg)) = (&report_out, &args.svg)
        && matches!(report, Output::File(p) if p == svg)
    {
        bail!("the report and the plot cannot both be '{}'", svg.display());
    }
    let mut methods = Vec::new();
    if !args.no_plain {
        methods.push(Method::Arca);
    }
    methods.extend(args.eiw.0.iter().map(|&w| Method::ArcaEiw(w)));
    let mut missing = Vec::new();
    let mut tool_versions = Vec::new();
    for &tool in &args.tools.0 {
        let (program, _) = tool_compress(tool);
        if find_on_path(program).is_some() {
            methods.push(Method::Tool(tool));
            let version =
                tool_version(tool).unwrap_or_else(|| format!("{program} (version unknown)"));
            tool_versions.push(version);
        } else {
            missing.push(program);
            if !ui.quiet {
                errln!("arca: {program} is not installed; its rows are left out");
            }
        }
    }
    if methods.is_empty() {
        bail!("nothing to measure: every method is turned off or not installed");
    }
    let data: Vec<Vec<u8>> = args
        .files
        .iter()
        .map(|p| fs::read(p).with_context(|| format!("cannot read '{}'", p.display())))
        .collect::<Result<_>>()?;

    let wants_arca = methods.iter().any(|m| m.is_arca());
    let loaded = if wants_arca {
        Some(Loaded::load(args.model.as_deref(), ui.load_options())?)
    } else {
        None
    };
    let nn = match args.codec {
        Some(choice) => choice == TextCodecChoice::Nn,
        None => loaded.as_ref().is_some_and(Loaded::prefers_nn),
    };
    if nn && matches!(loaded, Some(Loaded::None)) {
        bail!("the nn codec codes with a network alone; -m none has no network");
    }
    let block_size = args.block_size.unwrap_or(if nn {
        arca_runtime::codec::NN_BLOCK_SIZE
    } else {
        arca_runtime::codec::DEFAULT_BLOCK_SIZE
    });
    let arca = match &loaded {
        Some(Loaded::Network { bundle, model }) => format!(
            "arca {}, model {} (id {}), plain codec {}, engine {}, device {}, threads {}",
            env!("CARGO_PKG_VERSION"),
            bundle.manifest().name,
            bundle.id_hex(),
            if nn { "text-nn" } else { "text-cm" },
            model.engine(),
            model.device(),
            threads_label(args.threads)
        ),
        Some(Loaded::None) => format!(
            "arca {}, no network (context models alone), threads {}",
            env!("CARGO_PKG_VERSION"),
            threads_label(args.threads)
        ),
        Some(Loaded::Circuit { bundle, .. }) => bail!(
            "model '{}' codes images; arca bench measures text (images: tools/bench-images)",
            bundle.manifest().name
        ),
        None => format!("arca {} (no arca rows)", env!("CARGO_PKG_VERSION")),
    };
    if matches!(loaded, Some(Loaded::None))
        && methods.iter().any(|m| matches!(m, Method::ArcaEiw(_)))
    {
        bail!("Equal-Info Windows need a network model; pass --eiw none with -m none");
    }

    let scratch = tempfile::tempdir().context("cannot create a scratch folder")?;
    let bench = Bench {
        codec: loaded.as_ref().map(Loaded::codec).transpose()?,
        threads: args.threads,
        block_size,
        nn,
        runs: args.runs as usize,
        scratch: scratch.path(),
        progress: ui.progress(),
    };
    let names = names(&args.files);
    let mut rows = Vec::new();
    for (name, bytes) in names.iter().zip(&data) {
        for &method in &methods {
            let row = bench.measure(name, method, bytes)?;
            if !ui.quiet {
                errln!(
                    "{name}: {}: {} -> {} bytes, {} bits/byte, {} / {} KB/s{}",
                    method.label(),
                    row.original,
                    row.compressed,
                    fmt_bpb(bits_per_byte(row.original, row.compressed)),
                    fmt_speed(kb_per_sec(row.original, row.compress_secs)),
                    fmt_speed(kb_per_sec(row.original, row.decompress_secs)),
                    row.failure
                        .as_ref()
                        .map_or(String::new(), |f| format!(", ROUND TRIP FAILED: {f}"))
                );
            }
            rows.push(row);
        }
    }

    let ctx = RunInfo {
        date: utc_now(),
        machine: machine(),
        arca,
        command: command_line(),
        runs: bench.runs,
        tools: tool_versions,
        missing,
    };
    let doc = report(&ctx, &rows)?;
    let svg = match &svg_out {
        Some(_) => Some(plot(
            &totals(&rows),
            &format!("bits per byte vs compression speed, {}", names.join(", ")),
        )?),
        None => None,
    };
    crate::io::write_report(report_out.as_ref(), &doc, args.force, ui.quiet)?;
    if let (Some(out), Some(svg)) = (&svg_out, &svg) {
        out.write(svg.as_bytes(), args.force, None)?;
        if !ui.quiet {
            errln!("wrote {out}");
        }
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| format!("{} ({})", r.file, r.method.label()))
        .collect();
    if !failed.is_empty() {
        bail!("round trip failed: {}", failed.join(", "));
    }
    Ok(())
}

fn threads_label(threads: usize) -> String {
    if threads == 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("0 (one per core: {cores})")
    } else {
        threads.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc_date(4_107_542_399), "2100-02-28 23:59 UTC");
    }

    #[test]
    fn medians() {
        let d = Duration::from_secs;
        assert_eq!(median(&[d(3)]), 3.0);
        assert_eq!(median(&[d(5), d(1), d(3)]), 3.0);
        assert_eq!(median(&[d(4), d(1), d(2), d(100)]), 3.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn labels() {
        assert_eq!(Method::Arca.label(), "arca");
        assert_eq!(Method::ArcaEiw(16).label(), "arca eiw W=16");
        assert_eq!(Method::Tool(Tool::Gzip).label(), "gzip -9");
        assert_eq!(Method::Tool(Tool::Xz).label(), "xz -9e");
        assert_eq!(Method::Tool(Tool::Zstd).label(), "zstd --ultra -22");
        assert_eq!(Method::Tool(Tool::Brotli).label(), "brotli -q 11");
    }

    #[test]
    fn quoting_and_names() {
        assert_eq!(shell_quote("a/b.txt"), "a/b.txt");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(names(&[p("x/a"), p("y/b")]), ["a", "b"]);
        assert_eq!(names(&[p("x/a"), p("y/a")]), ["x/a", "y/a"]);
    }

    #[test]
    fn versions() {
        let v = |s: &str| version_number(s);
        assert_eq!(v("gzip 1.12\nCopyright (C) 2018").as_deref(), Some("1.12"));
        assert_eq!(
            v("bzip2, a block-sorting file compressor.  Version 1.0.8, 13-Jul-2019.").as_deref(),
            Some("1.0.8")
        );
        assert_eq!(v("xz (XZ Utils) 5.4.1").as_deref(), Some("5.4.1"));
        assert_eq!(
            v("*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***").as_deref(),
            Some("1.5.4")
        );
        assert_eq!(v("brotli 1.0.9").as_deref(), Some("1.0.9"));
        assert_eq!(v("no version here"), None);
    }

    #[test]
    fn labels_do_not_overlap() {
        // Two points at nearly the same place, and one far away.
        let ys = place_labels(&[(100, 200, 10), (102, 203, 12), (600, 200, 5)]);
        assert_eq!(ys[0], 200);
        assert!((ys[1] - ys[0]).abs() > LABEL_HEIGHT, "{ys:?}");
        assert_eq!(ys[2], 200);
    }

    #[test]
    fn totals_sum_per_method() {
        let row = |file: &str, method, original, compressed, failure: Option<&str>| Row {
            file: file.into(),
            method,
            original,
            compressed,
            compress_secs: 1.0,
            decompress_secs: 0.5,
            failure: failure.map(Into::into),
        };
        let rows = [
            row("a", Method::Arca, 1000, 250, None),
            row("a", Method::Tool(Tool::Gzip), 1000, 400, None),
            row("b", Method::Arca, 3000, 750, Some("bad")),
            row("b", Method::Tool(Tool::Gzip), 3000, 1200, None),
        ];
        let t = totals(&rows);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].original, t[0].compressed, t[0].ok),
            (4000, 1000, false)
        );
        assert_eq!(t[0].bits_per_byte(), Some(2.0));
        assert_eq!(t[0].compress_speed(), 2.0);
        assert!(t[1].ok);
    }
}
