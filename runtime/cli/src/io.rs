//! Reading inputs, writing outputs atomically, and naming files.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The extension of compressed streams.
pub const SUFFIX: &str = "arca";

/// Where bytes come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// The inputs named on the command line: none (or `-`) means stdin.
    pub fn from_args(files: &[OsString]) -> Vec<Input> {
        if files.is_empty() {
            return vec![Input::Stdin];
        }
        files
            .iter()
            .map(|f| {
                if f == "-" {
                    Input::Stdin
                } else {
                    Input::File(PathBuf::from(f))
                }
            })
            .collect()
    }

    /// Reads the whole input.
    pub fn read(&self) -> Result<Vec<u8>> {
        match self {
            Input::Stdin => {
                let mut buf = Vec::new();
                io::stdin()
                    .lock()
                    .read_to_end(&mut buf)
                    .context("cannot read stdin")?;
                Ok(buf)
            }
            Input::File(path) => {
                fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))
            }
        }
    }

    /// Whether this is stdin attached to a terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Stdin) && io::stdin().is_terminal()
    }

    /// The input file's permissions, to give the output.
    pub fn permissions(&self) -> Option<fs::Permissions> {
        match self {
            Input::Stdin => None,
            Input::File(path) => fs::metadata(path).ok().map(|m| m.permissions()),
        }
    }

    /// Removes the input file (for `--rm`); stdin is left alone.
    pub fn remove(&self) -> Result<()> {
        if let Input::File(path) = self {
            fs::remove_file(path).with_context(|| format!("cannot remove '{}'", path.display()))?;
        }
        Ok(())
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("stdin"),
            Input::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Where bytes go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file, written atomically.
    File(PathBuf),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Stdout => f.write_str("stdout"),
            Output::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Output {
    /// Fails early (before any work) if the output can't or shouldn't be written:
    /// binary data to a terminal, or an existing file without `force`.
    pub fn check(&self, force: bool, binary: bool) -> Result<()> {
        match self {
            Output::Stdout => {
                if binary && io::stdout().is_terminal() {
                    bail!("refusing to write compressed data to a terminal");
                }
            }
            Output::File(path) => {
                if !force && fs::symlink_metadata(path).is_ok() {
                    bail!("{} already exists; use -f to overwrite", path.display());
                }
            }
        }
        Ok(())
    }

    /// Writes `data`. A file is written to a temporary file in its folder and renamed into
    /// place only when complete; on error nothing is left behind and an existing file is
    /// untouched.
    pub fn write(
        &self,
        data: &[u8],
        force: bool,
        permissions: Option<fs::Permissions>,
    ) -> Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(data)
                    .and_then(|()| out.flush())
                    .context("cannot write to stdout")
            }
            Output::File(path) => write_atomic(path, data, force, permissions),
        }
    }
}

/// Writes `data` to `path` through a temporary file in the same folder.
fn write_atomic(
    path: &Path,
    data: &[u8],
    force: bool,
    permissions: Option<fs::Permissions>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".arca-").suffix(".tmp");
    #[cfg(unix)]
    let default_permissions = {
        use std::os::unix::fs::PermissionsExt;
        // Like any new file: 0666 less the umask.
        fs::Permissions::from_mode(0o666)
    };
    #[cfg(unix)]
    builder.permissions(permissions.unwrap_or(default_permissions));
    #[cfg(not(unix))]
    let _ = permissions;
    let mut tmp = builder
        .tempfile_in(dir)
        // tempfile's message repeats the random name; the folder is what the user named.
        .map_err(|e| e.raw_os_error().map_or(e, io::Error::from_raw_os_error))
        .with_context(|| format!("cannot create a file in '{}'", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write '{}'", path.display()))?;
    let persisted = if force {
        tmp.persist(path)
    } else {
        tmp.persist_noclobber(path)
    };
    match persisted {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            bail!("{} already exists; use -f to overwrite", path.display())
        }
        Err(e) => Err(e.error).with_context(|| format!("cannot write '{}'", path.display())),
    }
}

/// Writes a text report (a markdown table) to `out`, atomically, saying `wrote FILE` on stderr
/// unless `quiet`; with no `out`, prints it on stdout.
pub fn write_report(out: Option<&Output>, doc: &str, force: bool, quiet: bool) -> Result<()> {
    match out {
        Some(out) => {
            out.write(doc.as_bytes(), force, None)?;
            if !quiet {
                write_stderr(format_args!("wrote {out}"));
            }
            Ok(())
        }
        None => write_stdout(format_args!("{}", doc.trim_end())),
    }
}

/// Writes one line on stdout.
pub fn write_stdout(line: fmt::Arguments<'_>) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").context("cannot write to stdout")
}

/// Writes one line on stderr, ignoring errors.
pub fn write_stderr(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Whether `err` comes from writing into a closed pipe (`arca list x | head -1`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `FILE` -> `FILE.arca`.
pub fn compressed_name(path: &Path) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(".");
    name.push(SUFFIX);
    PathBuf::from(name)
}

/// `FILE.arca` -> `FILE`, or `None` if the name has no `.arca` suffix.
pub fn decompressed_name(path: &Path) -> Option<PathBuf> {
    if path.extension() != Some(OsStr::new(SUFFIX)) {
        return None;
    }
    let stem = path.file_stem()?;
    if stem.is_empty() {
        return None;
    }
    Some(path.with_file_name(stem))
}

/// Whether `path` already ends in `.arca`.
pub fn has_suffix(path: &Path) -> bool {
    path.extension() == Some(OsStr::new(SUFFIX))
}

/// Formats an error and its causes as one line, `a: b: c`, without the `(os error N)` tails
/// of I/O errors and without repeating a cause its parent already printed.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = strip_os_error(&cause.to_string());
        let text = text.trim();
        if text.is_empty() || line.ends_with(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line.replace('\n', " ")
}

/// Removes every ` (os error N)` from `text`.
fn strip_os_error(text: &str) -> String {
    const TAG: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(TAG) {
        let after = &rest[at + TAG.len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + TAG.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            compressed_name(Path::new("a/b.txt")),
            Path::new("a/b.txt.arca")
        );
        assert_eq!(
            decompressed_name(Path::new("a/b.txt.arca")),
            Some(PathBuf::from("a/b.txt"))
        );
        assert_eq!(
            decompressed_name(Path::new("b.arca")),
            Some(PathBuf::from("b"))
        );
        assert_eq!(decompressed_name(Path::new(".arca")), None);
        assert_eq!(decompressed_name(Path::new("b.zst")), None);
        assert_eq!(decompressed_name(Path::new("b")), None);
    }

    #[test]
    fn error_lines() {
        let io = io::Error::from_raw_os_error(2);
        let err = anyhow::Error::new(io).context("cannot read 'x'");
        assert_eq!(
            error_line(&err),
            "cannot read 'x': No such file or directory"
        );
        assert_eq!(
            strip_os_error("a (os error 2): b (os error x)"),
            "a: b (os error x)"
        );
    }

    #[test]
    fn atomic_write_leaves_nothing_on_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        fs::write(&path, b"old").expect("write");
        let out = Output::File(path.clone());
        assert!(out.write(b"new", false, None).is_err());
        assert_eq!(fs::read(&path).expect("read"), b"old");
        out.write(b"new", true, None).expect("forced write");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        let names: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1);
    }
}
