//! The results of `arca bench` that the harness, the report and the plot share: the methods
//! measured ([`Method`]), one measurement ([`Row`]), the totals per method over every input
//! ([`Total`]), and the bits per byte and speed computed from them. A leaf: it uses no other
//! bench file.

use crate::args::Tool;

/// One way of compressing: arca plain, arca with Equal-Info Windows of `W` bits, or a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// `arca compress`.
    Arca,
    /// `arca compress --eiw W`.
    ArcaEiw(u32),
    /// A classic compressor run as a subprocess.
    Tool(Tool),
}

impl Method {
    /// The method's name in the report: `arca`, `arca eiw W=16`, `gzip -9`.
    pub(super) fn label(self) -> String {
        match self {
            Method::Arca => "arca".to_owned(),
            Method::ArcaEiw(w) => format!("arca eiw W={w}"),
            Method::Tool(t) => tool_label(t).to_owned(),
        }
    }

    pub(super) fn is_arca(self) -> bool {
        !matches!(self, Method::Tool(_))
    }
}

/// A tool's name and level, as the report shows it.
pub(super) fn tool_label(tool: Tool) -> &'static str {
    match tool {
        Tool::Gzip => "gzip -9",
        Tool::Bzip2 => "bzip2 -9",
        Tool::Xz => "xz -9e",
        Tool::Zstd => "zstd --ultra -22",
        Tool::Brotli => "brotli -q 11",
    }
}

/// The measurements of one method on one input.
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// The input's name in the table.
    pub(super) file: String,
    pub(super) method: Method,
    pub(super) original: u64,
    pub(super) compressed: u64,
    /// Median seconds to compress.
    pub(super) compress_secs: f64,
    /// Median seconds to decompress.
    pub(super) decompress_secs: f64,
    /// `None` if every run gave the input back (and every compression the same bytes), else
    /// what went wrong.
    pub(super) failure: Option<String>,
}

/// Totals of one method over every input.
#[derive(Debug, Clone)]
pub(super) struct Total {
    pub(super) method: Method,
    pub(super) original: u64,
    pub(super) compressed: u64,
    pub(super) compress_secs: f64,
    pub(super) decompress_secs: f64,
    pub(super) ok: bool,
}

impl Total {
    pub(super) fn bits_per_byte(&self) -> Option<f64> {
        bits_per_byte(self.original, self.compressed)
    }

    pub(super) fn compress_speed(&self) -> f64 {
        kb_per_sec(self.original, self.compress_secs)
    }
}

/// Sums the rows of each method, in the order the methods first appear.
pub(super) fn totals(rows: &[Row]) -> Vec<Total> {
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

pub(super) fn bits_per_byte(original: u64, compressed: u64) -> Option<f64> {
    (original > 0).then(|| 8.0 * compressed as f64 / original as f64)
}

/// Speed in KB/s (1 KB = 1000 bytes) of `bytes` of original data in `secs`.
pub(super) fn kb_per_sec(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1000.0 / secs.max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

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
