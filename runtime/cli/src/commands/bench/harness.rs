//! The `arca bench` harness: runs each method (arca in-process, the classic tools as
//! subprocesses on a scratch copy of the input), times each direction with the wall clock
//! (the median of `--runs` runs), checks every round trip byte for byte, and finds the tools
//! and their versions on `PATH`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arca_runtime::codec::{EiwOptions, Options, TextCodec};
use arca_runtime::eiw;
use arca_runtime::stats::median;

use super::results::{Method, Row};
use crate::args::Tool;
use crate::progress::Progress;

/// A tool's program and compression flags (it then reads the file named after them and writes
/// stdout).
pub(super) fn tool_compress(tool: Tool) -> (&'static str, &'static [&'static str]) {
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

/// What a method needs to run.
pub(super) struct Bench<'a> {
    pub(super) codec: Option<TextCodec<'a>>,
    pub(super) threads: usize,
    pub(super) block_size: u32,
    /// Plain arca codes with `text-nn` (the network and small context models).
    pub(super) nn: bool,
    pub(super) runs: usize,
    /// Scratch folder for the tools' inputs and outputs.
    pub(super) scratch: &'a Path,
    pub(super) progress: bool,
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
    pub(super) fn measure(&self, file: &str, method: Method, data: &[u8]) -> Result<Row> {
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
            compress_times.push(start.elapsed().as_secs_f64());
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
            decompress_times.push(start.elapsed().as_secs_f64());
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

/// Where `program` is on `PATH`, if anywhere.
pub(super) fn find_on_path(program: &str) -> Option<PathBuf> {
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
pub(super) fn tool_version(tool: Tool) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
