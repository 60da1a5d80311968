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

    /// `err`, a failed read of this input, with the input's name.
    pub fn error(&self, err: io::Error) -> anyhow::Error {
        match self {
            Input::Stdin => anyhow::Error::new(err).context("cannot read stdin"),
            Input::File(path) => {
                anyhow::Error::new(err).context(format!("cannot read '{}'", path.display()))
            }
        }
    }

    /// Opens the input for reading as it arrives (stdin is not read ahead).
    pub fn open(&self) -> Result<Box<dyn Read>> {
        match self {
            Input::Stdin => Ok(Box::new(io::stdin().lock())),
            Input::File(path) => {
                let file = fs::File::open(path)
                    .with_context(|| format!("cannot read '{}'", path.display()))?;
                Ok(Box::new(file))
            }
        }
    }

    /// The input's length, when it is a file.
    pub fn len_hint(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(path) => fs::metadata(path).ok().map(|m| m.len()),
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
        let mut sink = self.create(force, permissions)?;
        sink.write_all(data).map_err(|e| self.error(e))?;
        sink.commit()
    }

    /// `err`, a failed write into this output, with the output's name.
    pub fn error(&self, err: io::Error) -> anyhow::Error {
        match self {
            Output::Stdout => anyhow::Error::new(err).context("cannot write to stdout"),
            Output::File(path) => {
                anyhow::Error::new(err).context(format!("cannot write '{}'", path.display()))
            }
        }
    }

    /// A sink for writing as data comes: stdout, or a temporary file in the output's folder
    /// that [`Sink::commit`] renames into place (dropped uncommitted, it is removed, and an
    /// existing file is untouched).
    pub fn create(&self, force: bool, permissions: Option<fs::Permissions>) -> Result<Sink> {
        match self {
            Output::Stdout => Ok(Sink::Stdout(io::stdout().lock())),
            Output::File(path) => {
                let tmp = temp_file(path, permissions)?;
                Ok(Sink::File {
                    tmp,
                    path: path.clone(),
                    force,
                })
            }
        }
    }
}

/// Where an output is being written; see [`Output::create`].
pub enum Sink {
    /// Standard output.
    Stdout(io::StdoutLock<'static>),
    /// A temporary file, renamed to `path` on commit.
    File {
        /// The file being written.
        tmp: tempfile::NamedTempFile,
        /// Where it goes.
        path: PathBuf,
        /// Whether an existing file may be replaced.
        force: bool,
    },
}

impl Sink {
    /// Flushes stdout, or syncs the file and renames it into place.
    pub fn commit(self) -> Result<()> {
        match self {
            Sink::Stdout(mut out) => out.flush().context("cannot write to stdout"),
            Sink::File { tmp, path, force } => persist(tmp, &path, force),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(out) => out.write(buf),
            Sink::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.write_all(buf),
            Sink::File { tmp, .. } => tmp.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File { tmp, .. } => tmp.flush(),
        }
    }
}

/// A temporary file in `path`'s folder, with `permissions` (or a new file's).
fn temp_file(path: &Path, permissions: Option<fs::Permissions>) -> Result<tempfile::NamedTempFile> {
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
    builder
        .tempfile_in(dir)
        // tempfile's message repeats the random name; the folder is what the user named.
        .map_err(|e| e.raw_os_error().map_or(e, io::Error::from_raw_os_error))
        .with_context(|| format!("cannot create a file in '{}'", dir.display()))
}

/// Syncs `tmp` and renames it to `path` (not over an existing file unless `force`).
fn persist(tmp: tempfile::NamedTempFile, path: &Path, force: bool) -> Result<()> {
    tmp.as_file()
        .sync_all()
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
