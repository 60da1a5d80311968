//! Command-line arguments (clap derive) and their help text.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Lossless compression driven by a small neural network";

const LONG_ABOUT: &str = "\
Lossless compression driven by a small neural network.

arca compresses with a *model*: a byte-level neural network that predicts the next byte, mixed
with context models that learn the file as it is read; a range coder turns the predictions into
bits. The better the prediction, the smaller the output. A model is a bundle file (.arcm); the
default text model is embedded in this binary, so `arca compress FILE` works with nothing else
installed. `arca models` lists the embedded models.

A .arca stream records which model made it (name and id); decompression picks that model
automatically when it is embedded, and otherwise asks for it with -m. Streams are cut into
blocks that are coded in parallel, each with a checksum of its plaintext: corruption, truncation
and a wrong model are reported as errors, never as wrong output.

Files are read whole into memory. Output is written to a temporary file beside the destination
and renamed into place only when complete, so a failed run leaves nothing behind.
zstd-style flags also work as the first argument: -d (decompress), -t (test), -l (list).

Exit status: 0 on success, 1 on any error.";

const EXAMPLES: &str = "\
Examples:
  arca compress notes.txt              writes notes.txt.arca (notes.txt is kept)
  arca compress -T 2 --rm *.log        compress several files with 2 threads, remove originals
  arca decompress notes.txt.arca       writes notes.txt
  arca -d -c notes.txt.arca | less     decompress to stdout
  tar c dir | arca compress > dir.tar.arca
  arca test *.arca                     verify streams without writing anything
  arca list -v notes.txt.arca          sizes, ratio, model, and every block
  arca models                          the models embedded in this binary
  arca inspect text-small              a model's manifest";

/// The `arca` command line.
#[derive(Debug, Parser)]
#[command(
    name = "arca",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// More output: summaries with timings, per-block rows in `list`, log messages (-vv, -vvv
    /// for more; RUST_LOG overrides the log filter)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print only errors (no summaries, no progress)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Never show a progress bar (it is shown only when stderr is a terminal)
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Engine for the network: `native` integer kernels (when the model's graph allows it),
    /// `tract`, or `auto` (native if possible). Streams are identical either way; native is
    /// 2-4x faster
    #[arg(long, global = true, value_enum, value_name = "ENGINE", default_value_t = EngineArg::Auto)]
    pub engine: EngineArg,
    /// Where the network runs: `cpu`, `cuda` (an NVIDIA GPU; needs a build with
    /// `--features cuda`), or `auto` (CUDA when usable, else the CPU). Streams are identical
    /// on every device for integer-exact models such as the default one
    #[arg(long, global = true, value_enum, value_name = "DEVICE", default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

/// `--device` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The CPU
    Cpu,
    /// An NVIDIA GPU through tract-cuda
    Cuda,
    /// CUDA when a usable GPU is present, else the CPU
    Auto,
}

impl From<DeviceArg> for arca_runtime::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => arca_runtime::Device::Cpu,
            DeviceArg::Cuda => arca_runtime::Device::Cuda,
            DeviceArg::Auto => arca_runtime::Device::Auto,
        }
    }
}

/// `--engine` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// Native when the graph allows it, else tract
    Auto,
    /// Native integer kernels; an error if the model cannot run on them
    Native,
    /// tract
    Tract,
}

impl From<EngineArg> for arca_runtime::Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Auto => arca_runtime::Engine::Auto,
            EngineArg::Native => arca_runtime::Engine::Native,
            EngineArg::Tract => arca_runtime::Engine::Tract,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compress files (FILE -> FILE.arca), or stdin to stdout
    #[command(visible_alias = "c", long_about = COMPRESS_ABOUT, after_help = COMPRESS_EXAMPLES)]
    Compress(CompressArgs),
    /// Decompress .arca files (FILE.arca -> FILE), or stdin to stdout
    #[command(
        visible_aliases = ["d", "x"],
        long_about = DECOMPRESS_ABOUT,
        after_help = DECOMPRESS_EXAMPLES
    )]
    Decompress(DecompressArgs),
    /// Check that .arca files decompress correctly, writing nothing
    #[command(visible_alias = "t")]
    Test(TestArgs),
    /// Show what is inside .arca files: sizes, ratio, model, codec, blocks
    #[command(visible_alias = "l")]
    List(ListArgs),
    /// Describe a model: an embedded model's name, a .arcm bundle, or a model directory
    /// exported by optimum (model.onnx, config.json, tokenizer.json)
    Inspect(InspectArgs),
    /// List the models embedded in this binary
    Models,
    /// Pack an ONNX model and its manifest, or an optimum model directory, into a .arcm bundle
    Pack(PackArgs),
    /// Text to Equal-Info Window tokens: the ids an LLM over compressed text trains on
    #[command(long_about = TOKENIZE_ABOUT, after_help = TOKENIZE_EXAMPLES)]
    Tokenize(TokenizeArgs),
    /// Equal-Info Window tokens back to text
    #[command(long_about = TOKENIZE_ABOUT, after_help = TOKENIZE_EXAMPLES)]
    Detokenize(TokenizeArgs),
    /// Add or multiply with a small transformer (prints the model's answer)
    #[command(long_about = ARITH_ABOUT, after_help = ARITH_EXAMPLES)]
    Arith(ArithArgs),
    /// Measure bits per byte and speed of arca and classic compressors on files
    #[command(long_about = BENCH_ABOUT, after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Generate text with a prose or arithmetic model, speculatively with a draft model or prompt lookup
    #[command(long_about = GENERATE_ABOUT, after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),
    /// Compare plain and speculative generation (each draft, prompt lookup) on fixed prompts
    #[command(long_about = BENCH_GENERATE_ABOUT, after_help = BENCH_GENERATE_EXAMPLES)]
    BenchGenerate(BenchGenerateArgs),
    /// Serve a generation model over HTTP with OpenAI's completions API
    #[command(long_about = SERVE_ABOUT, after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
}

const GENERATE_ABOUT: &str = "\
Generate text with a target model, streaming it to stdout after the prompt. A prose model's
vocabulary is the 256 byte values. An arithmetic model's is its 16 symbols (`0123456789+*= $_`):
the prompt is a question in its format (the padded adder: `0000000123+0000000045=`), and
generation stops at its end token `$` (counted as decoded, not printed). Statistics go to stderr in llama.cpp's words (`decoded N tokens in S seconds,
speed: X t/s`, `n_drafted`, `n_accept`, `accept`), so tools that parse llama.cpp parse arca.

With a draft (-md DRAFT, or --lookup for prompt lookup), decoding is speculative: the draft
proposes up to --draft-max bytes, the target checks them all in one call, and an exact rule keeps
the target's output: greedy output (--temp 0) is byte for byte the target's own greedy output,
sampled output has the target's distribution. The draft length adapts: it starts where the
measured cost of a k-byte target call against a 1-byte call makes drafting pay best, grows
while drafts are accepted whole, shrinks on early rejections, and a model draft stops early when
its top probability falls under --draft-p-min.

Sampling follows llama.cpp's chain and defaults, in its order: repeat penalty (--repeat-penalty
over the last --repeat-last-n tokens, prompt included; 1 is off), top-k (--top-k 40), top-p
(--top-p 0.95), min-p (--min-p 0.05), then temperature (--temp 0.8; 0 is greedy, which applies
only the repeat penalty). Speculative sampling keeps the distribution these make exactly, and
greedy speculative output stays the plain greedy output with a repeat penalty too. -r TEXT
(repeatable) stops when the generated text contains TEXT: the text before it is printed, nothing
after; the prompt is not searched. After the statistics, llama.cpp's perf lines (load, prompt
eval, eval with its target calls as runs, total).

Models and engines: -m takes a .arcm generation bundle (or an embedded model's name), run by
arca's native f32 decoder, or a model directory as `optimum-cli export onnx --task
text-generation-with-past` writes it (model.onnx, config.json, tokenizer.json; any vocabulary,
tokenizer.json read by the tokenizers crate), or the hf-decoder bundle `arca pack DIR` makes of
one, run by tract with its KV cache. --engine auto picks what runs the model; --engine native on
a model directory and --engine tract on a native bundle are refused with the reason. Both run on
the CPU, one thread: --device cuda is refused; -t/--threads is accepted for llama.cpp
compatibility and the statistics say what ran. A draft must share the target's tokenizer.

Edge cases: an empty prompt is read as one newline by a prose model (the start of a line; not
echoed), as the model's start token (config.json's bos_token_id) by a model directory or its
bundle, and refused by an arithmetic one and by a model without a start token; a character
outside an arithmetic model's symbols is refused, and so is a prompt that is not UTF-8 for a
tokenizer.json model; a malformed tokenizer.json is an error naming the file; -n 0 prints
the prompt and the statistics, generates nothing and exits 0; a prompt longer than the model's
context (512 bytes for prose, 34 tokens for the adder, config.json's max_position_embeddings for
a model directory) is read through its last window (at least
half a context), and generation past the context slides that window by half a context at a time
(plain and speculative alike). A draft must share the target's vocabulary (size and symbols;
for tokenizer.json models, the same vocabulary and merges).";

const GENERATE_EXAMPLES: &str = "\
Examples:
  arca generate -m models/gen/trained/gen-target.arcm -p 'The old man' -n 200
  arca generate -m models/gen/trained/gen-target.arcm -md models/gen/trained/gen-draft-adaspec.arcm \\
      -p 'The old man' -n 256 --temp 0
  arca generate -m models/gen/trained/gen-target.arcm --lookup -f notes.txt -n 100
  arca generate -m models/arith/trained/arith-add-padrev-target.arcm \\
      -md models/arith/trained/arith-add-padrev-draft-kd.arcm -p 0000000123+0000000045= --temp 0
  arca generate -m models/hf/trained/llama-target-int8.arcm \\
      -md models/hf/trained/llama-draft-adaspec-f16.arcm -p 'The old man' -n 256 --top-k 40 -r 'THE END'
  arca generate -m path/to/optimum-export-dir -p 'Hello' -n 64 --temp 0";

const BENCH_GENERATE_ABOUT: &str = "\
Measure generation speed on prompts cut from text files (by default the validation books in
../shared/data/valid), or for an arithmetic target on held-out problems (--prompts of them,
spread over its operand digit counts, each answered up to the end token): target-only decoding against speculative decoding with each --draft and
with prompt lookup, in one run, greedy, the same prompts for every method. Reports median
tokens/s over the prompts, the median per-prompt speedup over target-only, acceptance, tokens
per target call, and checks that every speculative output equals the target's. Also prints the
verify-cost curve: a k-token target call's time over a 1-token call's, k = 1..16.

Decoding is greedy, so only the repeat penalty (--repeat-penalty, --repeat-last-n) and stop
strings (-r) of `arca generate`'s controls apply. Engine, device and threads as for `arca
generate`: the native f32 decoder on the CPU, one thread (--engine tract and --device cuda are
refused).";

const BENCH_GENERATE_EXAMPLES: &str = "\
Example:
  arca bench-generate -m models/gen/trained/gen-target.arcm \\
      --draft models/gen/trained/gen-draft-kd.arcm --draft models/gen/trained/gen-draft-adaspec.arcm \\
      -n 256 --prompts 8 -o docs/bench/generate.md
  arca bench-generate -m models/arith/trained/arith-add-padrev-target.arcm \\
      --draft models/arith/trained/arith-add-padrev-draft-kd.arcm \\
      --draft models/arith/trained/arith-add-padrev-draft-adaspec.arcm --prompts 90 --runs 3
  arca bench-generate -m models/hf/trained/llama-target-int8.arcm \\
      --draft models/hf/trained/llama-draft-adaspec-f16.arcm --prompts 12 --prompt-len 256 -n 256";

const SERVE_ABOUT: &str = "\
Serve a generation model over HTTP with OpenAI's completions API.

The target (and the draft, for speculative decoding) is loaded once; every request gets its own
decoding state, and requests run concurrently. Endpoints:

  POST /v1/completions   prompt, max_tokens (default 16), temperature (0 = greedy; default 1),
                         top_p, stop (a string or up to 4), seed, stream (server-sent events)
  GET  /v1/models        the served model
  GET  /health

A malformed request gets a 4xx with a JSON error naming the field; the server keeps running.
The first line on stdout says where it listens (with --port 0, the port the system picked).";

const SERVE_EXAMPLES: &str = "\
Examples:
  arca serve -m models/gen/trained/gen-target.arcm --port 8080
  curl -s localhost:8080/v1/completions -H 'Content-Type: application/json' \\
      -d '{\"prompt\": \"The old man\", \"max_tokens\": 64, \"temperature\": 0}'";

/// `arca serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Target model: an embedded model's name or a .arcm bundle path
    #[arg(short, long, value_name = "TARGET")]
    pub model: String,
    /// Draft model for speculative decoding (same tokenizer as the target)
    #[arg(long = "model-draft", value_name = "DRAFT")]
    pub model_draft: Option<String>,
    /// Stop a model draft when its top probability falls below this (0: never)
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_unit)]
    pub draft_p_min: f64,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port, printed on the first line)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The model id clients see (default: the model's name)
    #[arg(long, value_name = "NAME")]
    pub alias: Option<String>,
}

/// `arca generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Target model: a .arcm bundle path (kind `target`), prose or arithmetic
    #[arg(short, long, value_name = "TARGET")]
    pub model: String,
    /// Draft model for speculative decoding (`-md` works too, as in llama.cpp)
    #[arg(long = "model-draft", value_name = "DRAFT", conflicts_with = "lookup")]
    pub model_draft: Option<String>,
    /// Draft by prompt lookup: copy what followed the last occurrence of the current suffix
    #[arg(long)]
    pub lookup: bool,
    /// The prompt (bytes of this UTF-8 string; for an arithmetic model, its symbols)
    #[arg(
        short,
        long,
        value_name = "PROMPT",
        conflicts_with = "file",
        default_value = ""
    )]
    pub prompt: String,
    /// Read the prompt from a file (raw bytes)
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Tokens to generate (bytes for prose; an arithmetic model also stops at its end token;
    /// 0 generates nothing and prints the statistics)
    #[arg(short, long = "n-predict", value_name = "N", default_value_t = 128)]
    pub n: usize,
    /// Sampling temperature; 0 is greedy (argmax)
    #[arg(long, value_name = "T", default_value_t = 0.8, value_parser = parse_temp)]
    pub temp: f32,
    /// Nucleus sampling: keep the most probable tokens up to this mass (1: all)
    #[arg(long, value_name = "P", default_value_t = 0.95, value_parser = parse_top_p)]
    pub top_p: f32,
    /// Keep only the K most probable tokens (0: all)
    #[arg(long, value_name = "K", default_value_t = 40)]
    pub top_k: usize,
    /// Keep tokens at least P times as probable as the most probable one (0: all)
    #[arg(long, value_name = "P", default_value_t = 0.05, value_parser = parse_unit)]
    pub min_p: f64,
    #[command(flatten)]
    pub controls: Controls,
    /// Random seed (default: from the clock; printed with the statistics)
    #[arg(short, long, value_name = "S")]
    pub seed: Option<u64>,
    /// Longest draft
    #[arg(long, value_name = "K", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub draft_max: u16,
    /// Stop a model draft when its top probability falls below this (0: never; the shipped
    /// drafts are rarely confident, and stopping them early measured slower)
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_unit)]
    pub draft_p_min: f64,
    /// Start drafting with this length instead of the one the measured costs suggest (the
    /// measured one depends on how busy the machine is: set this for sampled output that a
    /// --seed reproduces)
    #[arg(long, value_name = "K")]
    pub draft_start: Option<usize>,
    /// Keep the draft length fixed (at --draft-start, or the measured choice)
    #[arg(long)]
    pub draft_fixed: bool,
    /// Do not echo the prompt before the generated text
    #[arg(long)]
    pub no_echo: bool,
}

/// `arca bench-generate`.
#[derive(Debug, Args)]
pub struct BenchGenerateArgs {
    /// Target model (.arcm)
    #[arg(short, long, value_name = "TARGET")]
    pub model: String,
    /// Draft models to compare (repeat)
    #[arg(long = "draft", value_name = "DRAFT")]
    pub drafts: Vec<String>,
    /// Leave out prompt lookup
    #[arg(long)]
    pub no_lookup: bool,
    /// Text files (or directories of .txt files) the prompts are cut from (prose targets)
    #[arg(
        long = "from",
        value_name = "PATH",
        default_value = "../shared/data/valid"
    )]
    pub from: Vec<PathBuf>,
    /// Number of prompts (held-out problems for an arithmetic target)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one)]
    pub prompts: usize,
    /// Bytes per prompt (prose targets)
    #[arg(long, value_name = "BYTES", default_value_t = 128, value_parser = at_least_one)]
    pub prompt_len: usize,
    /// Tokens to generate per prompt (an arithmetic target stops at its end token)
    #[arg(short, long = "n-predict", value_name = "N", default_value_t = 256, value_parser = at_least_one)]
    pub n: usize,
    /// Longest draft
    #[arg(long, value_name = "K", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub draft_max: u16,
    /// Stop a model draft when its top probability falls below this (0: never; the shipped
    /// drafts are rarely confident, and stopping them early measured slower)
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_unit)]
    pub draft_p_min: f64,
    /// Keep the draft length fixed at K instead of adapting it
    #[arg(long, value_name = "K")]
    pub draft_fixed: Option<usize>,
    #[command(flatten)]
    pub controls: Controls,
    /// Runs of each (method, prompt); times are medians
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Where the markdown report goes (`-` for stdout)
    #[arg(short, long, value_name = "REPORT.md", default_value = "-")]
    pub output: PathBuf,
    /// Overwrite the report if it exists
    #[arg(short, long)]
    pub force: bool,
}

/// The repeat penalty, stop strings and threads of `arca generate` and `arca bench-generate`.
#[derive(Debug, Args)]
pub struct Controls {
    /// Repeat penalty: a token among the last --repeat-last-n has a positive logit divided by
    /// this and a negative one multiplied (1: off)
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_penalty)]
    pub repeat_penalty: f32,
    /// How many of the last tokens (prompt included) the repeat penalty looks at (0: off)
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Stop when the generated text contains TEXT (repeatable); the text before it is printed
    #[arg(short = 'r', long = "reverse-prompt", value_name = "TEXT", value_parser = parse_stop)]
    pub reverse_prompt: Vec<String>,
    /// Threads: accepted for llama.cpp compatibility; the native decoder is single-threaded,
    /// so any N runs one thread (the statistics say so)
    #[arg(short = 't', long, value_name = "N", value_parser = at_least_one)]
    pub threads: Option<usize>,
}

fn parse_penalty(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a repeat penalty (a number > 0; 1 is off)"
        )),
    }
}

fn parse_stop(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("an empty reverse prompt would stop before the first token: give some text".into())
    } else {
        Ok(s.to_owned())
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a count of at least 1")),
    }
}

fn parse_temp(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!(
            "'{s}' is not a temperature (a number >= 0; 0 is greedy)"
        )),
    }
}

fn parse_top_p(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(p),
        _ => Err(format!("'{s}' is not a top-p (a number in (0, 1])")),
    }
}

fn parse_unit(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{s}' is not a probability (a number in [0, 1])")),
    }
}

const ARITH_ABOUT: &str = "\
Add or multiply with a small transformer, in the formats of \"Positional Description Matters
for Transformers Arithmetic\" (Shen et al., 2023).

The model reads the question in its own format (plain `123+45=`, or operands zero-padded to its
width with the answer written reversed) and writes the answer token by token; arca turns the
expression into that format and the answer back into a number, printed alone on stdout. The
answer is the model's, right or wrong: --check also prints whether it is right. A problem the
model cannot take (the other operation, operands wider than it was built for) is an error.

A sentence model (trained on sums asked inside English sentences, the paper's third task; see
models/arith/README.md) also takes a sentence: arca lowercases it, ends it with a space and
prints the model's continuation (`31.`); --check then compares it with the sum of the sentence's
two numbers.

--eval measures exact-match accuracy by operand digit count on held-out problems (pairs no model
saw in training) drawn with a fixed seed, for every model given with -m (or every embedded
arithmetic model), and writes the markdown table to --output. Sentence models get two more
tables: the pairs asked in sentences of templates they never saw, and of their training
templates.";

const ARITH_EXAMPLES: &str = "\
Examples:
  arca arith 12345+6789                 prints 19134 (if the model gets it right)
  arca arith --check 123*45             prints the answer, then `correct` or `wrong (5535)`
  arca arith -m models/arith/add-plain.arcm 12+30
  arca arith -m models/arith/trained/arith-add-ctx-spaces.arcm 'ann has 12 pens and 19 cups, so'
  arca arith --eval -o docs/arith/accuracy.md";

const TOKENIZE_ABOUT: &str = "\
The neural tokenizer of \"Training LLMs over Neurally Compressed Text\" (Lester et al., 2024).

`tokenize` compresses text with the byte model into Equal-Info Windows of W bits (each window
codes as many bytes as fit in W bits, with a fresh model) and writes one token per window: an
array of little-endian u16 for W=16 (as language-model data loaders read them), u32 for W=32,
u64 for W=64, and W/8 bytes, most significant first, for other W. The array follows a header
(magic ATOK, W, the model's id, the window rules' revision, and where each input file's tokens
end: each FILE is one document, and no window crosses from one into the next); the tokens start
at byte 56 + 8 x documents, a multiple of 8. `--raw` writes the bare array instead.
`detokenize` turns a token file back into the text (the documents one after the other), and
refuses a file made with another model or W; a raw file needs --raw, --eiw and the same -m.
Windows are independent: any slice of whole tokens detokenizes on its own.";

const TOKENIZE_EXAMPLES: &str = "\
Examples:
  arca tokenize --eiw 16 book.txt -o book.tok       u16 token ids, one per 16-bit window
  arca detokenize book.tok -o book.txt              W and the model are checked from the header
  arca tokenize --eiw 16 a.txt b.txt -o shard.tok   two documents in one token file
  arca tokenize --raw --eiw 16 book.txt -o book.u16 the bare u16 array, no header
  arca compress --eiw 64 book.txt                   the same windows in a .arca stream
  arca decompress --range 1000..2000 -c book.txt.arca";

const COMPRESS_ABOUT: &str = "\
Compress files (FILE -> FILE.arca), or stdin to stdout.

Each FILE is compressed to FILE.arca beside it and kept unless --rm is given. With no FILE, or
`-`, reads stdin and writes stdout; compressed data is never written to a terminal. The model is
the embedded default (see `arca models`) unless -m names another; the stream records the
model's name and id so that `arca decompress` can find it again.

With an image model (a probabilistic circuit, e.g. models/pc/trained/hclt-mnist-M32.arcm), FILE
is an image file of the model's size: an MNIST idx file (raw or gzip), a binary PGM (P5) or an
8-bit grayscale PNG. Decompression gives idx and PGM files back byte for byte, a gzip'd idx as a
gzip file of the same idx bytes, and a PNG byte for byte when zlib wrote its pixel data (libpng,
Python, optipng), else with the same pixels and other chunks, re-encoded. -B sets how many bytes
of pixels (whole images) go in one block.

Text is streamed: it is coded in frames of 8 MiB (whole blocks) as it is read, so a pipe of any
length (`tar c dir | arca compress`) needs memory for one frame and the models, not for the
input; an input longer than a frame gives streams back to back, which every arca reader decodes
to the concatenation. Images are read whole. A one-line summary goes to stderr (for stdout output
only with -v): `FILE: 152089 -> 39012 bytes (25.65%, 2.052 bits/byte)`.";

const DECOMPRESS_ABOUT: &str = "\
Decompress .arca files (FILE.arca -> FILE), or stdin to stdout.

Each FILE.arca is decompressed to FILE beside it (other names need -o or -c). With no FILE, or
`-`, reads stdin and writes stdout. Without -m, the model is the embedded one whose id the stream
records; a stream made with a model that is not embedded needs -m PATH. Every block's checksum
is verified: corrupted or truncated streams fail with an error, and an output file is written
only when all of it decoded. Decoding streams frame by frame (one frame in memory); concatenated
.arca files decode to the concatenation of their originals, as with gzip and zstd; on stdout,
the frames before a damaged one have been written when the error comes.";

const COMPRESS_EXAMPLES: &str = "\
Examples:
  arca compress book.txt               writes book.txt.arca, prints a one-line summary
  arca compress -o out.arca -f book.txt
  arca compress -m my-model.arcm data.csv
  cat book.txt | arca compress > book.arca
  arca compress --eiw 32 book.txt      Equal-Info Windows of 32 bits (see `arca tokenize`)
  arca compress -m text-embedded log.txt   text-nn: decodes on a Cortex-M (targets/cortex-m)
  arca compress -m models/pc/trained/hclt-mnist-M32.arcm t10k-images-idx3-ubyte.gz   images";

const DECOMPRESS_EXAMPLES: &str = "\
Examples:
  arca decompress book.txt.arca        writes book.txt
  arca decompress -o copy.txt book.txt.arca
  arca decompress -m my-model.arcm data.csv.arca
  arca decompress < book.arca > book.txt
  arca decompress --range 1000..2000 -c book.txt.arca   only bytes 1000..2000";

/// Where output goes and what happens to inputs; shared by compress and decompress.
#[derive(Debug, Args)]
pub struct Transform {
    /// Input files; none, or `-`, reads stdin and writes stdout
    #[arg(value_name = "FILE")]
    pub files: Vec<OsString>,
    /// Write to OUT (only with a single input)
    #[arg(short, long, value_name = "OUT", conflicts_with = "stdout")]
    pub output: Option<PathBuf>,
    /// Write to stdout instead of a file
    #[arg(short = 'c', long)]
    pub stdout: bool,
    /// Overwrite existing output files (the old file stays until the new one is complete)
    #[arg(short, long)]
    pub force: bool,
    /// Keep input files (the default)
    #[arg(short, long, conflicts_with = "rm")]
    pub keep: bool,
    /// Remove each input file after its output is written successfully
    #[arg(long, conflicts_with = "stdout")]
    pub rm: bool,
    /// Model: an embedded model's name (see `arca models`), a .arcm bundle path, or `none`
    /// (context models alone, no network)
    #[arg(short, long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    /// Worker threads; 0 uses every core
    #[arg(short = 'T', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// `arca compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// Inputs, outputs, model and threads.
    #[command(flatten)]
    pub io: Transform,
    /// Block size: blocks are coded independently and in parallel; larger blocks compress
    /// better, smaller ones use more cores on small files. Accepts K, M and G suffixes
    /// (powers of 1024). Default 1M; 256K with the text-nn codec (a microcontroller decodes a
    /// block of any size with 16 KiB of RAM for it)
    #[arg(short = 'B', long, value_name = "SIZE", value_parser = parse_size)]
    pub block_size: Option<u32>,
    /// Text codec: `cm` mixes the network with large adaptive context models (best ratio); `nn`
    /// mixes it with small ones (40 KiB), so a decoder needs only the network, those and 16
    /// KiB of RAM for history (the codec of `targets/cortex-m`). Default: the model's own
    /// choice (`nn` for text-embedded, `cm` otherwise)
    #[arg(long, value_name = "CODEC", conflicts_with = "eiw")]
    pub codec: Option<TextCodecChoice>,
    /// Equal-Info Windows: cut the output into windows of exactly W bits (a multiple of 8 from
    /// 16 to 4096), each coded with a fresh model, so any window decodes on its own. The
    /// network alone codes (no context models), so the ratio is lower than without --eiw
    #[arg(long, value_name = "W", value_parser = parse_window_bits, conflicts_with = "block_size")]
    pub eiw: Option<u32>,
    /// The compression level.
    #[command(flatten)]
    pub level: crate::level::LevelArgs,
}

/// `--codec` of `arca compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextCodecChoice {
    /// The network mixed with context models (`text-cm`).
    Cm,
    /// The network with small context models (`text-nn`), decodable on a microcontroller.
    Nn,
}

/// `arca decompress`.
#[derive(Debug, Args)]
pub struct DecompressArgs {
    /// Inputs, outputs, model and threads. Without -m, the stream's own model is looked up
    /// among the embedded ones.
    #[command(flatten)]
    pub io: Transform,
    /// Decode only the bytes A..B of the original (byte offsets, end exclusive; `A..` runs to
    /// the end): just the blocks, or segments of windows, that cover them
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    pub range: Option<ByteRange>,
}

/// A byte range of the original, `A..B` (end exclusive) or `A..` (to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte; `None` runs to the end.
    pub end: Option<u64>,
}

/// Parses `A..B` or `A..`.
pub fn parse_range(s: &str) -> Result<ByteRange, String> {
    let bad = || format!("'{s}' is not a byte range (expected A..B, e.g. 1000..2000, or A..)");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let start = a.trim().parse::<u64>().map_err(|_| bad())?;
    let end = match b.trim() {
        "" => None,
        b => Some(b.parse::<u64>().map_err(|_| bad())?),
    };
    if end.is_some_and(|e| e < start) {
        return Err(format!("range '{s}' ends before it starts"));
    }
    Ok(ByteRange { start, end })
}

/// Parses a window size for --eiw.
pub fn parse_window_bits(s: &str) -> Result<u32, String> {
    let w: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of bits"))?;
    arca_runtime::eiw::check_bits(w).map_err(|e| e.to_string())?;
    Ok(w)
}

/// `arca tokenize` and `arca detokenize`.
#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// Input files (`-` for stdin): tokenize makes each one a document of the token file;
    /// detokenize reads one token file
    #[arg(value_name = "FILE", required = true)]
    pub input: Vec<OsString>,
    /// Window size in bits (a multiple of 8 from 16 to 4096); detokenize reads it from the
    /// token file's header and checks it when given
    #[arg(long, value_name = "W", value_parser = parse_window_bits)]
    pub eiw: Option<u32>,
    /// Bare tokens, no header (tokenize: one input; detokenize: needs --eiw and the right -m,
    /// which nothing can check)
    #[arg(long)]
    pub raw: bool,
    /// Output file (`-` for stdout)
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Overwrite OUT if it exists
    #[arg(short, long)]
    pub force: bool,
    /// Model: an embedded model's name or a .arcm bundle path (default: the default text model)
    #[arg(short, long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    /// Worker threads; 0 uses every core
    #[arg(short = 'T', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// `arca test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Streams to check; `-` reads stdin
    #[arg(value_name = "FILE.arca", required = true)]
    pub files: Vec<OsString>,
    /// Model, when the stream's model is not embedded: a name or a .arcm bundle path
    #[arg(short, long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    /// Worker threads; 0 uses every core
    #[arg(short = 'T', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// `arca list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Streams to describe; `-` reads stdin. With -v, every block is listed too.
    #[arg(value_name = "FILE.arca", required = true)]
    pub files: Vec<OsString>,
}

/// `arca inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An embedded model's name (see `arca models`), a path to a .arcm bundle, or a model
    /// directory (model.onnx, config.json, tokenizer.json, as `optimum-cli export onnx --task
    /// text-generation-with-past` writes it)
    #[arg(value_name = "MODEL")]
    pub model: String,
}

/// `arca arith`.
#[derive(Debug, Args)]
pub struct ArithArgs {
    /// Problems like 12345+6789 or 123*45 (non-negative integers); for a sentence model, also
    /// a sentence that asks for a sum (`the sum of 12 and 7 is`)
    #[arg(value_name = "EXPR", required_unless_present = "eval")]
    pub exprs: Vec<String>,
    /// Model (embedded name or .arcm path); repeat with --eval. Default: the embedded
    /// arithmetic model for the expression's operation
    #[arg(short, long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// Also print whether each answer is right
    #[arg(long, conflicts_with = "eval")]
    pub check: bool,
    /// Measure accuracy by digit count and write the markdown table
    #[arg(long)]
    pub eval: bool,
    /// With --eval: problems per digit count
    #[arg(long, value_name = "N", default_value_t = 200, requires = "eval")]
    pub problems: usize,
    /// With --eval: the random seed of the problems
    #[arg(long, value_name = "SEED", default_value_t = 0, requires = "eval")]
    pub seed: u64,
    /// With --eval: most operand digits to test (default: a padded model's width, a sentence
    /// model's training range, two past the training range for the others)
    #[arg(long, value_name = "D", requires = "eval")]
    pub digits: Option<u32>,
    /// With --eval: where the table goes (`-` for stdout only)
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "-",
        requires = "eval"
    )]
    pub output: PathBuf,
    /// Overwrite --output if it exists
    #[arg(short, long, requires = "eval")]
    pub force: bool,
}

/// `arca pack`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  arca pack text.onnx --manifest text.json -o text.arcm\n  arca pack llama-export/ -o llama.arcm      an optimum text-generation-with-past directory"
)]
pub struct PackArgs {
    /// The ONNX model (external weight data is read from beside it), or a model directory
    /// exported by optimum (model.onnx, config.json, tokenizer.json: no --manifest)
    #[arg(value_name = "MODEL.onnx|DIR")]
    pub onnx: PathBuf,
    /// The manifest: JSON describing the model (name, kind, vocabulary, context length, ...);
    /// required for an ONNX file, not taken for a model directory
    #[arg(long, value_name = "SPEC.json")]
    pub manifest: Option<PathBuf>,
    /// Where to write the bundle
    #[arg(short, long, value_name = "OUT.arcm")]
    pub output: PathBuf,
    /// For a Llama-family directory with model.safetensors: a native Llama bundle with the
    /// weights in this precision (int8: one scale per output row), run by the native path
    /// instead of tract; without it, the directory's ONNX graph is packed for tract
    #[arg(long, value_name = "f32|f16|int8", value_parser = ["f32", "f16", "int8"])]
    pub weights: Option<String>,
    /// Overwrite OUT if it exists
    #[arg(short, long)]
    pub force: bool,
}

const BENCH_ABOUT: &str = "\
Measure bits per byte and speed of arca and classic compressors on files.

Every FILE is compressed and decompressed by every method: arca in-process (plain, unless
--no-plain, and with Equal-Info Windows of each --eiw size), and each --tools compressor found on
PATH as a subprocess (gzip -9, bzip2 -9, xz -9e, zstd --ultra -22, brotli -q 11; a tool that is
not installed is left out with a note). Both directions are timed with the wall clock (median of
--runs runs) and every round trip is checked byte for byte.

The report is markdown: the date, machine, arca version and model, and the command line; a table
with a row per file and method (original and compressed bytes, bits per byte, compress and
decompress KB/s, where 1 KB = 1000 bytes of original data, and the round trip); and the totals
of each method over all files. --svg also draws bits per byte against compression speed.
A failed round trip is marked FAILED in the report and makes the exit status 1.";

const BENCH_EXAMPLES: &str = "\
Examples:
  arca bench book1 book2                         all methods, report on stdout
  arca bench --eiw 16,64 --tools gzip,xz -o bench.md --svg bench.svg book1
  arca bench --eiw none --tools none --runs 3 book1    arca alone, median of 3 runs";

/// A classic compressor `arca bench` can compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `gzip -9`
    Gzip,
    /// `bzip2 -9`
    Bzip2,
    /// `xz -9e`
    Xz,
    /// `zstd --ultra -22`
    Zstd,
    /// `brotli -q 11`
    Brotli,
}

impl Tool {
    /// Every tool, in the report's order.
    pub const ALL: [Tool; 5] = [Tool::Gzip, Tool::Bzip2, Tool::Xz, Tool::Zstd, Tool::Brotli];

    /// The program's name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Gzip => "gzip",
            Tool::Bzip2 => "bzip2",
            Tool::Xz => "xz",
            Tool::Zstd => "zstd",
            Tool::Brotli => "brotli",
        }
    }
}

/// `--tools`: a comma-separated list of tools, `all` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolList(pub Vec<Tool>);

/// Parses `gzip,xz`, `all` or `none`.
pub fn parse_tools(s: &str) -> Result<ToolList, String> {
    match s.trim() {
        "all" => return Ok(ToolList(Tool::ALL.to_vec())),
        "none" | "" => return Ok(ToolList(Vec::new())),
        _ => {}
    }
    let mut tools = Vec::new();
    for name in s.split(',').map(str::trim) {
        let tool = Tool::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "unknown tool '{name}' (expected a comma-separated list of {}, or all, or none)",
                    known.join(", ")
                )
            })?;
        if !tools.contains(&tool) {
            tools.push(tool);
        }
    }
    Ok(ToolList(tools))
}

/// `--eiw` of `arca bench`: window sizes in bits, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowList(pub Vec<u32>);

/// Parses `16,32,64` or `none`.
pub fn parse_window_list(s: &str) -> Result<WindowList, String> {
    if matches!(s.trim(), "none" | "") {
        return Ok(WindowList(Vec::new()));
    }
    let mut windows = Vec::new();
    for w in s.split(',') {
        let w = parse_window_bits(w)?;
        if !windows.contains(&w) {
            windows.push(w);
        }
    }
    Ok(WindowList(windows))
}

/// `arca bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Files to measure
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Equal-Info Window sizes in bits, comma-separated (each a multiple of 8 from 16 to
    /// 4096), or `none`
    #[arg(long, value_name = "W,...", value_parser = parse_window_list, default_value = "16,32,64,128")]
    pub eiw: WindowList,
    /// Leave out plain arca (without Equal-Info Windows)
    #[arg(long)]
    pub no_plain: bool,
    /// Classic compressors to compare with, comma-separated: gzip, bzip2, xz, zstd, brotli;
    /// or `all`, or `none`
    #[arg(long, value_name = "TOOL,...", value_parser = parse_tools, default_value = "all")]
    pub tools: ToolList,
    /// Compress and decompress each file N times with each method; times are medians
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Model: an embedded model's name (see `arca models`), a .arcm bundle path, or `none`
    #[arg(short, long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    /// Worker threads for arca; 0 uses every core (the tools run with their own defaults)
    #[arg(short = 'T', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Block size of plain arca (K, M and G suffixes). Default 1M; 256K with the text-nn codec
    #[arg(short = 'B', long, value_name = "SIZE", value_parser = parse_size)]
    pub block_size: Option<u32>,
    /// Codec of plain arca: `cm` (network and context models) or `nn` (network and small ones);
    /// default: the model's own choice, as in `arca compress`
    #[arg(long, value_name = "CODEC")]
    pub codec: Option<TextCodecChoice>,
    /// Where the markdown report goes (`-` for stdout)
    #[arg(short, long, value_name = "REPORT.md", default_value = "-")]
    pub output: PathBuf,
    /// Also draw bits per byte against compression speed, over all files, as an SVG file
    #[arg(long, value_name = "PLOT.svg")]
    pub svg: Option<PathBuf>,
    /// Overwrite the report and the plot if they exist
    #[arg(short, long)]
    pub force: bool,
}

/// Parses a size such as `4096`, `64K`, `1M`, `1MiB` or `2g` (binary multiples).
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!("'{s}' is not a size (expected e.g. 4096, 64K, 1M)"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (expected e.g. 4096, 64K, 1M)"))?;
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size suffix '{other}' (use K, M or G)")),
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))?;
    if bytes == 0 {
        return Err("size must be at least 1 byte".into());
    }
    u32::try_from(bytes).map_err(|_| format!("size '{s}' is too large (at most 4G - 1 bytes)"))
}

/// Rewrites zstd-style leading flags (`-d`, `-t`, `-l`, `-z`) into subcommands, so
/// `arca -d FILE.arca` works like `arca decompress FILE.arca`; and llama.cpp's `-md DRAFT`
/// (two letters, which clap cannot declare) into `--model-draft DRAFT` for `arca generate`.
pub fn rewrite_zstd_flags(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == "generate") {
        for a in args.iter_mut().skip(2) {
            if a == "-md" {
                *a = "--model-draft".into();
            } else if a == "--" {
                break;
            }
        }
    }
    if let Some(first) = args.get(1).and_then(|a| a.to_str()) {
        let sub = match first {
            "-d" | "--decompress" | "--uncompress" => Some("decompress"),
            "-t" | "--test" => Some("test"),
            "-l" | "--list" => Some("list"),
            "-z" | "--compress" => Some("compress"),
            _ => None,
        };
        if let Some(sub) = sub {
            args[1] = sub.into();
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("3G"), Ok(3 << 30));
        assert!(parse_size("4G").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999999").is_err());
    }

    #[test]
    fn zstd_flags() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            rewrite_zstd_flags(v(&["arca", "-d", "x.arca"])),
            v(&["arca", "decompress", "x.arca"])
        );
        assert_eq!(
            rewrite_zstd_flags(v(&["arca", "list", "-d"])),
            v(&["arca", "list", "-d"])
        );
        assert_eq!(
            rewrite_zstd_flags(v(&["arca", "generate", "-m", "t", "-md", "d"])),
            v(&["arca", "generate", "-m", "t", "--model-draft", "d"])
        );
    }
}
