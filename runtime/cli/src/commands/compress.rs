//! `arca compress`, `arca decompress` and `arca test`.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arca_runtime::circuit::Circuit;
use arca_runtime::codec::{self, DecodeOptions, EiwOptions, ImageCodec, ImageOptions, Options};
use arca_runtime::container::{self, Codec};
use arca_runtime::eiw::{self, Schedule};
use arca_runtime::stream::{self, Decoder, Encoder, Method};
use arca_runtime::{CodecError, Model, TextCodec};

use crate::Ui;
use crate::args::{ByteRange, CompressArgs, DecompressArgs, TextCodecChoice, Transform};
use crate::io::{self, Input, Output};
use crate::models::{self, ModelCache};
use crate::progress::Progress;

/// An error already printed (one line per failed input); only the exit status is left to set.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("some inputs failed")
    }
}

impl std::error::Error for Reported {}

/// Runs `f` on every input, printing each failure as it happens; fails if any input failed.
pub fn for_each_input(inputs: &[Input], mut f: impl FnMut(&Input) -> Result<()>) -> Result<()> {
    if inputs.len() == 1 {
        return f(&inputs[0]);
    }
    let mut failed = false;
    for input in inputs {
        if let Err(e) = f(input) {
            errln!("arca: {}", io::error_line(&e));
            failed = true;
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// Checks the options that only make sense with a single input.
fn check_outputs(io: &Transform, inputs: &[Input], compressing: bool) -> Result<()> {
    let stdin_count = inputs.iter().filter(|i| matches!(i, Input::Stdin)).count();
    if stdin_count > 1 {
        bail!("stdin ('-') can be read only once");
    }
    if io.output.is_some() && inputs.len() > 1 {
        bail!(
            "-o names one output file, but {} inputs were given",
            inputs.len()
        );
    }
    if compressing && io.stdout && inputs.len() > 1 {
        bail!("cannot write several compressed streams to stdout; compress one input at a time");
    }
    Ok(())
}

/// Where the output of `input` goes.
fn destination(
    io: &Transform,
    input: &Input,
    name: impl FnOnce(&Path) -> Result<std::path::PathBuf>,
) -> Result<Output> {
    if io.stdout {
        return Ok(Output::Stdout);
    }
    if let Some(out) = &io.output {
        return Ok(Output::File(out.clone()));
    }
    match input {
        Input::Stdin => Ok(Output::Stdout),
        Input::File(path) => Ok(Output::File(name(path)?)),
    }
}

/// Refuses to write over the input itself.
fn check_distinct(input: &Input, out: &Output) -> Result<()> {
    if let (Input::File(i), Output::File(o)) = (input, out)
        && let (Ok(a), Ok(b)) = (i.canonicalize(), o.canonicalize())
        && a == b
    {
        bail!("'{}' is both the input and the output", i.display());
    }
    Ok(())
}

fn options(threads: usize, block_size: u32) -> Options {
    Options {
        block_size,
        threads,
    }
}

/// What `arca compress` does with the model it loaded.
enum Job<'m> {
    /// Images through a circuit.
    Image(&'m Circuit),
    /// Text through the text codec.
    Text(TextCodec<'m>),
}

/// Image blocks: as many whole images as fit in `block_size` bytes of pixels (at least one).
fn image_options(circuit: &Circuit, threads: usize, block_size: u32) -> ImageOptions {
    ImageOptions::with_block_bytes(block_size, circuit.pixels(), threads)
}

/// `FILE: 152089 -> 39012 bytes (25.65%, 2.052 bits/byte)`.
fn summary(label: &str, from: u64, to: u64, compressing: bool, ui: &Ui, start: Instant) {
    let (original, compressed) = if compressing { (from, to) } else { (to, from) };
    let mut line = format!("{label}: {from} -> {to} bytes");
    if original > 0 {
        let ratio = 100.0 * compressed as f64 / original as f64;
        let bpb = 8.0 * compressed as f64 / original as f64;
        line.push_str(&format!(" ({ratio:.2}%, {bpb:.3} bits/byte)"));
    }
    if ui.verbose > 0 {
        let secs = start.elapsed().as_secs_f64();
        let rate = original as f64 / secs.max(1e-9) / 1024.0;
        line.push_str(&format!(", {secs:.2} s, {rate:.1} KiB/s"));
    }
    errln!("{line}");
}

/// Whether to print a summary for a result written to `out`: like zstd, a summary is printed
/// when writing a file, and with -v when writing to stdout.
fn wants_summary(ui: &Ui, out: &Output) -> bool {
    !ui.quiet && (matches!(out, Output::File(_)) || ui.verbose > 0)
}

/// `arca compress`.
pub fn compress(args: &CompressArgs, ui: &Ui) -> Result<()> {
    let io = &args.io;
    let inputs = Input::from_args(&io.files);
    check_outputs(io, &inputs, true)?;
    let level = args.level.get().map_err(anyhow::Error::msg)?;
    if level.is_some() && (args.eiw.is_some() || args.codec == Some(TextCodecChoice::Nn)) {
        bail!("levels are for the default codec (cm); --eiw and --codec nn have none");
    }
    let plan = crate::level::level(level.unwrap_or(crate::level::DEFAULT));
    // -m wins over the level's model; without either, the default model (level 6's).
    let model_name = match (io.model.as_deref(), level) {
        (Some(name), _) => Some(name),
        (None, Some(_)) => Some(plan.model.unwrap_or(models::NO_NETWORK)),
        (None, None) => None,
    };
    let model = models::load(model_name, ui.load_options())?;
    // The level's other models (levels 7-9), unless -m chose the model.
    let others = if io.model.is_none() && level.is_some() {
        plan.alternatives
            .iter()
            .map(|m| models::load(Some(m.unwrap_or(models::NO_NETWORK)), ui.load_options()))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let alternatives = others
        .iter()
        .map(|m| Ok(m.text_codec()?.with_cm(plan.cm)))
        .collect::<Result<Vec<_>>>()?;
    let job = match &model {
        Model::Circuit { circuit, .. } => {
            if level.is_some() {
                bail!(
                    "levels are for text models; '{}' codes images",
                    circuit.name()
                );
            }
            if args.eiw.is_some() {
                bail!(
                    "--eiw is for text models; '{}' codes images",
                    circuit.name()
                );
            }
            Job::Image(circuit.as_ref())
        }
        _ => Job::Text(model.text_codec()?.with_cm(plan.cm)),
    };
    let nn = match (args.codec, &job) {
        (Some(_), Job::Image(circuit)) => {
            bail!(
                "--codec is for text models; '{}' codes images",
                circuit.name()
            )
        }
        (Some(choice), _) => choice == TextCodecChoice::Nn,
        // A level asks for the cm codec, whatever the model prefers.
        (None, _) => level.is_none() && model.prefers_nn(),
    };
    if nn && matches!(model, Model::None) {
        bail!("the nn codec needs a network; -m none has no network");
    }
    let block_size = args.block_size.unwrap_or(if nn {
        arca_runtime::codec::NN_BLOCK_SIZE
    } else {
        plan.block_size
    });
    let opts = options(io.threads, block_size);
    for_each_input(&inputs, |input| {
        let out = destination(io, input, |path| {
            if io::has_suffix(path) && !io.force {
                bail!(
                    "{} already has the .{} suffix; use -f to compress it again",
                    path.display(),
                    io::SUFFIX
                );
            }
            Ok(io::compressed_name(path))
        })?;
        out.check(io.force, true)?;
        check_distinct(input, &out)?;
        let start = Instant::now();
        let label = input.to_string();
        let (read, written) = match &job {
            // A circuit codes whole image files (a PNG is parsed as a whole), so they are read
            // whole; they are small.
            Job::Image(circuit) => {
                let data = input.read()?;
                let progress = Progress::new(&label, data.len() as u64, ui.progress());
                let opts = image_options(circuit, io.threads, block_size);
                let packed = ImageCodec::new(circuit)
                    .compress(&data, &opts, &|n| progress.inc(n))
                    .with_context(|| label.clone())?;
                progress.clear();
                out.write(&packed, io.force, input.permissions())
                    .with_context(|| label.clone())?;
                (data.len() as u64, packed.len() as u64)
            }
            Job::Text(codec) => {
                let method = match args.eiw {
                    Some(bits) => Method::Eiw(EiwOptions {
                        bits,
                        segment: eiw::DEFAULT_SEGMENT,
                        schedule: Schedule {
                            threads: io.threads,
                            ..Schedule::default()
                        },
                    }),
                    None if nn => Method::Nn,
                    None => Method::Cm,
                };
                let reader = input.open()?;
                let progress = Progress::maybe(&label, input.len_hint(), ui.progress());
                let code = Code {
                    codec,
                    alternatives: &alternatives,
                    method,
                    options: opts.clone(),
                    progress: &|n| progress.inc(n),
                };
                let counts = compress_stream(code, reader, input, &out, io.force)?;
                progress.clear();
                counts
            }
        };
        if io.rm && matches!(out, Output::File(_)) {
            input.remove()?;
        }
        if wants_summary(ui, &out) {
            summary(&label, read, written, true, ui, start);
        }
        Ok(())
    })
}

/// A writer that counts the bytes through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Counted { inner, bytes: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An error of an [`Encoder`] or [`Decoder`]: the library's own, named by the input's `label`
/// (so the message reads as it does for a whole-file call), else a failure of the writer or
/// reader, named by `other`.
fn stream_error(
    e: std::io::Error,
    label: &str,
    other: impl FnOnce(std::io::Error) -> anyhow::Error,
) -> anyhow::Error {
    if stream::codec_error(&e).is_none() {
        return other(e);
    }
    let codec = match e.into_inner().map(|inner| inner.downcast::<CodecError>()) {
        Some(Ok(codec)) => anyhow::Error::new(*codec),
        Some(Err(inner)) => anyhow::anyhow!("{inner}"),
        None => anyhow::anyhow!("stream error"),
    };
    codec.context(label.to_owned())
}
/// How [`compress_stream`] codes.
struct Code<'a> {
    codec: &'a TextCodec<'a>,
    /// Other codecs each frame is also coded with (levels 7-9).
    alternatives: &'a [TextCodec<'a>],
    method: Method,
    options: Options,
    progress: &'a (dyn Fn(u64) + Sync),
}

/// Reads `reader` (the open `input`) as it arrives and writes frames to `out` as they are
/// coded, so memory holds one frame, not the input; an output file appears only when complete.
/// Returns the bytes read and written.
fn compress_stream(
    code: Code<'_>,
    mut reader: Box<dyn Read>,
    input: &Input,
    out: &Output,
    force: bool,
) -> Result<(u64, u64)> {
    let label = input.to_string();
    let sink = Counted::new(out.create(force, input.permissions())?);
    let mut encoder = Encoder::new(code.codec, sink)
        .method(code.method)
        .options(code.options)
        .progress(code.progress);
    for other in code.alternatives {
        encoder = encoder.alternative(other);
    }
    let read = copy(
        &mut reader,
        &mut encoder,
        |e| input.error(e),
        |e| stream_error(e, &label, |e| out.error(e)),
    )?;
    let sink = encoder
        .finish()
        .map_err(|e| stream_error(e, &label, |e| out.error(e)))?;
    let written = sink.bytes;
    sink.inner.commit()?;
    Ok((read, written))
}

/// Copies `from` into `to` in 64 KiB pieces; errors of each side go through their own
/// function (which names the file). Returns the bytes copied.
fn copy(
    from: &mut dyn Read,
    to: &mut dyn Write,
    read_error: impl Fn(std::io::Error) -> anyhow::Error,
    write_error: impl Fn(std::io::Error) -> anyhow::Error,
) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        to.write_all(&buf[..n]).map_err(&write_error)?;
        total += n as u64;
    }
}

/// `arca decompress`.
pub fn decompress(args: &DecompressArgs, ui: &Ui) -> Result<()> {
    let io = &args.io;
    let inputs = Input::from_args(&io.files);
    check_outputs(io, &inputs, false)?;
    let mut cache = ModelCache::new(io.model.as_deref(), ui.load_options());
    for_each_input(&inputs, |input| {
        let out = destination(io, input, |path| {
            io::decompressed_name(path).with_context(|| {
                format!(
                    "{}: name does not end in .{}; use -o OUT or -c to choose the output",
                    path.display(),
                    io::SUFFIX
                )
            })
        })?;
        out.check(io.force, false)?;
        check_distinct(input, &out)?;
        if input.is_terminal() {
            bail!("refusing to read compressed data from a terminal");
        }
        let label = input.to_string();
        let start = Instant::now();
        let (read, written) = match args.range {
            // A range is random access: read the whole stream and decode the blocks it covers.
            Some(range) => {
                let data = input.read()?;
                let plain = decode(&data, &label, io.threads, Some(range), &mut cache, ui)?;
                out.write(&plain, io.force, input.permissions())
                    .with_context(|| label.clone())?;
                (data.len() as u64, plain.len() as u64)
            }
            None => {
                let reader = input.open()?;
                let mut sink = out.create(io.force, input.permissions())?;
                let counts = decompress_stream(
                    reader,
                    input,
                    &mut sink,
                    |e| out.error(e),
                    io.threads,
                    &mut cache,
                    ui,
                )?;
                sink.commit()?;
                counts
            }
        };
        if io.rm && matches!(out, Output::File(_)) {
            input.remove()?;
        }
        if wants_summary(ui, &out) {
            summary(&label, read, written, false, ui, start);
        }
        Ok(())
    })
}

/// Decodes `reader` (the open `input`) frame by frame into `sink` as it arrives: memory holds
/// one frame. Returns the compressed bytes read and the bytes written.
fn decompress_stream(
    reader: Box<dyn Read>,
    input: &Input,
    sink: &mut dyn Write,
    write_error: impl Fn(std::io::Error) -> anyhow::Error,
    threads: usize,
    cache: &mut ModelCache,
    ui: &Ui,
) -> Result<(u64, u64)> {
    let label = input.to_string();
    let progress = Progress::open_ended(&label, ui.progress());
    let inc = |n| progress.inc(n);
    let mut decoder = Decoder::new(reader, cache).threads(threads).progress(&inc);
    let written = copy(
        &mut decoder,
        sink,
        |e| stream_error(e, &label, |e| input.error(e)),
        write_error,
    )?;
    progress.clear();
    Ok((decoder.bytes_read(), written))
}

/// Decodes a whole stream, or the bytes `range` of its original, picking its model.
pub fn decode(
    data: &[u8],
    label: &str,
    threads: usize,
    range: Option<ByteRange>,
    cache: &mut ModelCache,
    ui: &Ui,
) -> Result<Vec<u8>> {
    let frames = container::frames(data).with_context(|| label.to_owned())?;
    if range.is_some() && frames.iter().any(|f| f.header().codec == Codec::ImagePc) {
        bail!("{label}: --range reads text streams; this is an image stream");
    }
    let total = frames.iter().map(|f| f.header().original_len).sum();
    let progress = Progress::new(label, total, ui.progress());
    let opts = DecodeOptions {
        threads,
        range: range.map(|r| r.start..r.end.unwrap_or(total)),
    };
    let plain = codec::decompress(data, cache, &opts, &|n| progress.inc(n))
        .with_context(|| label.to_owned())?;
    progress.clear();
    Ok(plain)
}

/// `arca test`.
pub fn test(args: &crate::args::TestArgs, ui: &Ui) -> Result<()> {
    let inputs = Input::from_args(&args.files);
    if inputs.iter().filter(|i| matches!(i, Input::Stdin)).count() > 1 {
        bail!("stdin ('-') can be read only once");
    }
    let mut cache = ModelCache::new(args.model.as_deref(), ui.load_options());
    for_each_input(&inputs, |input| {
        if input.is_terminal() {
            bail!("refusing to read compressed data from a terminal");
        }
        let label = input.to_string();
        let reader = input.open()?;
        let (read, written) = decompress_stream(
            reader,
            input,
            &mut std::io::sink(),
            anyhow::Error::new,
            args.threads,
            &mut cache,
            ui,
        )?;
        if !ui.quiet {
            if ui.verbose > 0 {
                errln!("{label}: OK ({read} -> {written} bytes)");
            } else {
                errln!("{label}: OK");
            }
        }
        Ok(())
    })
}
