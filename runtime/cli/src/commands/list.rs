//! `arca list`: what is inside a stream, from its header and block table (no decoding).

use anyhow::{Context, Result, bail};
use arca_runtime::container::{self, BlockMode, Codec, Stream};

use crate::Ui;
use crate::args::ListArgs;
use crate::commands::compress::for_each_input;
use crate::io::Input;
use crate::sizes;

/// One file's numbers, for the table and the total.
struct Row {
    compressed: u64,
    original: u64,
    blocks: u64,
    block_size: String,
    codec: String,
    model: String,
    file: String,
}

const HEAD: [&str; 9] = [
    "Compressed",
    "Original",
    "Ratio",
    "Bits/B",
    "Blocks",
    "Block",
    "Codec",
    "Model",
    "File",
];

fn ratio_cells(compressed: u64, original: u64) -> (String, String) {
    if original == 0 {
        return ("-".into(), "-".into());
    }
    let r = compressed as f64 / original as f64;
    (format!("{:.2}%", 100.0 * r), format!("{:.3}", 8.0 * r))
}

fn print_row(r: &Row) -> Result<()> {
    let (ratio, bpb) = ratio_cells(r.compressed, r.original);
    outln!(
        "{:>10}  {:>10}  {:>8}  {:>6}  {:>6}  {:>8}  {:<8}  {:<26}  {}",
        r.compressed,
        r.original,
        ratio,
        bpb,
        r.blocks,
        r.block_size,
        r.codec,
        r.model,
        r.file
    );
    Ok(())
}

/// What every frame has in common, or `mixed`.
fn common(frames: &[Stream<'_>], field: impl Fn(&Stream<'_>) -> String) -> String {
    let first = field(&frames[0]);
    if frames.iter().all(|f| field(f) == first) {
        first
    } else {
        "mixed".to_owned()
    }
}

/// A file's row: its frames (one stream, or several back to back) added up.
fn describe(frames: &[Stream<'_>], label: &str) -> Row {
    let model = |stream: &Stream<'_>| {
        let h = stream.header();
        if h.codec == Codec::Stored {
            return "-".to_owned();
        }
        let mut id = format!("{:032x}", h.model_id);
        id.truncate(12);
        format!("{} {}", h.model_name, id)
    };
    Row {
        compressed: frames.iter().map(|f| f.len() as u64).sum(),
        original: frames.iter().map(|f| f.header().original_len).sum(),
        blocks: frames
            .iter()
            .map(|f| u64::from(f.header().block_count))
            .sum(),
        block_size: common(frames, |f| sizes::exact(u64::from(f.header().block_size))),
        codec: common(frames, |f| f.header().codec.name().to_owned()),
        model: common(frames, model),
        file: label.to_owned(),
    }
}

/// The details of each frame; block offsets count from the start of the file.
fn print_frames(frames: &[Stream<'_>]) -> Result<()> {
    if let [stream] = frames {
        return print_details(stream, 0);
    }
    outln!("  frames:       {} (streams back to back)", frames.len());
    let mut at = 0;
    for (i, stream) in frames.iter().enumerate() {
        outln!("  frame {i} at offset {at}:");
        print_details(stream, at)?;
        at += stream.len();
    }
    Ok(())
}

/// One stream's header and blocks; it starts `at` bytes into the file.
fn print_details(stream: &Stream<'_>, at: usize) -> Result<()> {
    let h = stream.header();
    let (ratio, bpb) = ratio_cells(stream.len() as u64, h.original_len);
    outln!("  model:        {} (id {:032x})", h.model_name, h.model_id);
    outln!(
        "  codec:        {} (revision {}, {}-bit coder, window bits {})",
        h.codec.name(),
        h.codec_revision,
        h.precision,
        h.window_bits
    );
    outln!("  block size:   {} bytes", h.block_size);
    outln!("  original:     {} bytes", h.original_len);
    outln!(
        "  compressed:   {} bytes ({ratio}, {bpb} bits/byte)",
        stream.len()
    );
    outln!("  blocks:       {}", h.block_count);
    let blocks: u64 = stream
        .entries()
        .iter()
        .map(|e| u64::from(e.compressed_len))
        .sum();
    outln!(
        "  container:    format {}, {} bytes of header and table{}",
        stream.version(),
        stream.len() as u64 - blocks,
        if stream.layout().is_empty() {
            ""
        } else {
            " (and the image layout)"
        }
    );
    if stream.entries().is_empty() {
        return Ok(());
    }
    outln!(
        "  {:>6}  {:>10}  {:>10}  {:>10}  {:>8}  {:>6}  {:<6}  {}",
        "Block",
        "Offset",
        "Compressed",
        "Original",
        "Ratio",
        "Bits/B",
        "Mode",
        "CRC-32"
    );
    for (i, e) in stream.entries().iter().enumerate() {
        let (ratio, bpb) = ratio_cells(u64::from(e.compressed_len), u64::from(e.original_len));
        let mode = match e.mode {
            BlockMode::Coded => "coded",
            BlockMode::Stored => "stored",
        };
        // Where the block's data starts in the file: after the header, an image stream's
        // layout and the block table (the container knows; this code does not redo its sums).
        let offset = at + stream.block_offset(i).unwrap_or_default();
        outln!(
            "  {:>6}  {:>10}  {:>10}  {:>10}  {:>8}  {:>6}  {:<6}  {:08x}",
            i,
            offset,
            e.compressed_len,
            e.original_len,
            ratio,
            bpb,
            mode,
            e.crc32
        );
    }
    Ok(())
}

/// `arca list`.
pub fn list(args: &ListArgs, ui: &Ui) -> Result<()> {
    let inputs = Input::from_args(&args.files);
    if inputs.iter().filter(|i| matches!(i, Input::Stdin)).count() > 1 {
        bail!("stdin ('-') can be read only once");
    }
    let head = || -> Result<()> {
        outln!(
            "{:>10}  {:>10}  {:>8}  {:>6}  {:>6}  {:>8}  {:<8}  {:<26}  {}",
            HEAD[0],
            HEAD[1],
            HEAD[2],
            HEAD[3],
            HEAD[4],
            HEAD[5],
            HEAD[6],
            HEAD[7],
            HEAD[8]
        );
        Ok(())
    };
    let mut total = Row {
        compressed: 0,
        original: 0,
        blocks: 0,
        block_size: String::new(),
        codec: String::new(),
        model: String::new(),
        file: String::new(),
    };
    let mut listed = 0u64;
    let result = for_each_input(&inputs, |input| {
        if input.is_terminal() {
            bail!("refusing to read compressed data from a terminal");
        }
        let data = input.read()?;
        let label = input.to_string();
        let frames = container::frames(&data).with_context(|| label.clone())?;
        let row = describe(&frames, &label);
        if ui.verbose > 0 {
            if listed > 0 {
                outln!();
            }
            head()?;
            print_row(&row)?;
            print_frames(&frames)?;
        } else {
            if listed == 0 {
                head()?;
            }
            print_row(&row)?;
        }
        total.compressed += row.compressed;
        total.original += row.original;
        total.blocks += row.blocks;
        listed += 1;
        Ok(())
    });
    if listed > 1 {
        total.file = format!("{listed} files");
        if ui.verbose > 0 {
            outln!();
        }
        print_row(&total)?;
    }
    result
}
