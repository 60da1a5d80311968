//! The `arca bench` report: the markdown document (a header with the facts of the run, a
//! table row per file and method, then the totals per method), the numbers as the tables and
//! the progress lines print them, and the facts themselves (date, machine, command line).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::results::{Row, bits_per_byte, kb_per_sec, totals};

pub(super) fn fmt_bpb(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

pub(super) fn fmt_speed(v: f64) -> String {
    format!("{v:.1}")
}

/// Facts about the run for the report's header.
pub(super) struct RunInfo {
    pub(super) date: String,
    pub(super) machine: String,
    pub(super) arca: String,
    pub(super) command: String,
    pub(super) runs: usize,
    pub(super) tools: Vec<String>,
    pub(super) missing: Vec<&'static str>,
}

/// The markdown report: header, a row per (file, method), then the totals per method.
pub(super) fn report(ctx: &RunInfo, rows: &[Row]) -> Result<String> {
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

/// The inputs' names in the table: file names, or the paths as given when two file names
/// are the same.
pub(super) fn names(files: &[PathBuf]) -> Vec<String> {
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
pub(super) fn utc_now() -> String {
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
pub(super) fn machine() -> String {
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
pub(super) fn command_line() -> String {
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
    fn quoting_and_names() {
        assert_eq!(shell_quote("a/b.txt"), "a/b.txt");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(names(&[p("x/a"), p("y/b")]), ["a", "b"]);
        assert_eq!(names(&[p("x/a"), p("y/a")]), ["x/a", "y/a"]);
    }
}
