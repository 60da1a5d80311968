//! Model bundles: one `.arcm` file holding a manifest, an ONNX graph and its weights.
//!
//! A bundle is what arca ships and loads: everything a model needs in one file that is
//! memory-mapped (or embedded in the binary with [`include_bundle!`]) and checked once when it is
//! opened. Hostile bytes never panic: a truncated, corrupted or foreign file is a
//! [`BundleError`] that says what is wrong.
//!
//! # Layout (format version 1, all integers little-endian)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `b"ARCM"` |
//! | 4 | 4 | format version (`u32`, 1) |
//! | 8 | 8 | reserved, zero |
//! | 16 | 8 | manifest offset (always 80) |
//! | 24 | 8 | manifest length |
//! | 32 | 8 | graph offset (= manifest offset + manifest length) |
//! | 40 | 8 | graph length |
//! | 48 | 8 | payload offset (graph end rounded up to 64; the gap is zero) |
//! | 56 | 8 | payload length (the file ends exactly here) |
//! | 64 | 8 | xxh3-64 of the manifest bytes |
//! | 72 | 8 | xxh3-64 of header bytes 0..72 |
//! | 80 | .. | rkyv-archived [`Manifest`] (16-byte aligned), validated with bytecheck |
//! | .. | .. | ONNX `ModelProto` whose initializers point into the payload as external data |
//! | .. | .. | payload: weight tensors, each 64-byte aligned |
//!
//! Every byte is covered by a check: the header by its hash (magic and version are checked
//! first so that foreign files and newer formats get a precise message), the manifest by the
//! manifest hash, the graph and the payload by the xxh3-128 hash stored in the manifest
//! (`payload_hash`, over the graph bytes followed by the payload bytes), and the alignment gap by
//! requiring zeros. That hash is also the model's id ([`Bundle::id`]): two bundles with the same
//! graph and weights have the same id whatever their manifest says.
//!
//! In the graph, every initializer moved to the payload has `data_location = EXTERNAL` and
//! `external_data = {location: ".", offset, length}` with the offset relative to the payload
//! start; the engine resolves these from the map (see `arca_runtime::engine`).
//!
//! # Example
//!
//! ```
//! use arca_bundle::{encode, Bundle, Manifest, ModelKind};
//!
//! // Normally bundles come from `arca pack` (arca-codegen) and `Bundle::open`.
//! let manifest = Manifest { name: "demo".into(), kind: ModelKind::Compressor, ..Manifest::default() };
//! let bytes = encode(manifest, b"graph bytes", &[0u8; 64])?;
//! let bundle = Bundle::from_bytes(bytes)?;
//! assert_eq!(bundle.manifest().name, "demo");
//! assert_eq!(bundle.short_id().len(), 12);
//! assert!(Bundle::from_bytes(b"ARCM but not really".to_vec()).is_err());
//! # Ok::<(), arca_bundle::BundleError>(())
//! ```
#![allow(unsafe_code)] // Only `map_file` below: memory-mapping a file is unsafe in memmap2.

#[cfg(feature = "tract")]
pub mod tract;

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_128};

/// The four bytes every bundle starts with.
pub const MAGIC: [u8; 4] = *b"ARCM";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed header; the manifest starts right after it.
pub const HEADER_LEN: usize = 80;
/// Alignment of the manifest inside the file (enough for every archived field).
pub const MANIFEST_ALIGN: usize = 16;
/// Alignment of the payload and of every tensor inside it.
pub const TENSOR_ALIGN: usize = 64;
/// The `location` that graph initializers use to point into the payload.
pub const PAYLOAD_LOCATION: &str = ".";

/// Everything that can be wrong with a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file could not be opened or mapped.
    #[error("cannot read bundle {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with `ARCM`.
    #[error("not an arca bundle: expected magic \"ARCM\", found {found:02x?}")]
    BadMagic {
        /// The first (up to four) bytes.
        found: Vec<u8>,
    },
    /// The bundle was written by a newer (or unknown) format version.
    #[error("unsupported bundle format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The file is shorter than its header says.
    #[error("bundle is truncated: {what} says {expected} bytes, file has {actual}")]
    Truncated {
        /// Which part announced the size.
        what: &'static str,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The file is longer than its header says.
    #[error("bundle has trailing bytes: header says {expected} bytes, file has {actual}")]
    TrailingBytes {
        /// Bytes announced by the header.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The header hash does not match the header.
    #[error("bundle header is corrupted: checksum mismatch")]
    HeaderChecksum,
    /// Offsets or lengths in the header are inconsistent.
    #[error("bundle layout is invalid: {0}")]
    BadLayout(String),
    /// The manifest hash does not match the manifest.
    #[error("bundle manifest is corrupted: checksum mismatch")]
    ManifestChecksum,
    /// The manifest does not validate or is inconsistent.
    #[error("bundle manifest is invalid: {0}")]
    BadManifest(String),
    /// The graph or the weights changed since the bundle was written.
    #[error(
        "bundle graph or weights are corrupted: their hash is {actual:032x}, the manifest says {expected:032x}"
    )]
    PayloadChecksum {
        /// Hash stored in the manifest.
        expected: u128,
        /// Hash of the bytes in the file.
        actual: u128,
    },
    /// A tensor entry of the manifest does not fit the payload.
    #[error("tensor `{name}` in the bundle manifest is invalid: {reason}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A name that is neither a file nor a shipped model (see `arca_runtime::shipped::resolve`).
    #[error("unknown model `{name}`: not a file, and the shipped models are: {available}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Comma-separated shipped names.
        available: String,
    },
    /// Building a bundle failed (see [`encode`]).
    #[error("cannot encode bundle: {0}")]
    Encode(String),
}

/// What a model is for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub enum ModelKind {
    /// Byte-level predictor for the neural compressor.
    #[default]
    Compressor,
    /// Probabilistic circuit (images).
    Circuit,
    /// Target model of speculative generation.
    Target,
    /// Draft model of speculative generation.
    Draft,
    /// Arithmetic task model.
    Arith,
    /// A standard decoder export (optimum `text-generation-with-past` ONNX) with its
    /// `config.json` and `tokenizer.json`, run by `arca-hf` (appended last: the archived
    /// discriminants of the other kinds are unchanged).
    HfDecoder,
}

impl ModelKind {
    /// Every kind, in declaration order.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Compressor,
        ModelKind::Circuit,
        ModelKind::Target,
        ModelKind::Draft,
        ModelKind::Arith,
        ModelKind::HfDecoder,
    ];

    /// The lowercase word used in manifests and by `arca inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Compressor => "compressor",
            ModelKind::Circuit => "circuit",
            ModelKind::Target => "target",
            ModelKind::Draft => "draft",
            ModelKind::Arith => "arith",
            ModelKind::HfDecoder => "hf-decoder",
        }
    }

    /// Parses the lowercase word (as written by [`ModelKind::as_str`]).
    pub fn from_word(word: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Element type of a payload tensor (the ONNX types that tract loads from raw bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub enum DType {
    /// `float32`
    #[default]
    F32,
    /// `float16`
    F16,
    /// `float64`
    F64,
    /// `int8`
    I8,
    /// `int16`
    I16,
    /// `int32`
    I32,
    /// `int64`
    I64,
    /// `uint8`
    U8,
    /// `uint16`
    U16,
    /// `uint32`
    U32,
    /// `uint64`
    U64,
    /// `bool` (one byte each)
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Short name (`f32`, `i8`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
        }
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
            DType::U64 => 13,
        }
    }

    /// The type for an ONNX `TensorProto.DataType` code, if it is one a bundle can hold.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        Some(match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            9 => DType::Bool,
            10 => DType::F16,
            11 => DType::F64,
            12 => DType::U32,
            13 => DType::U64,
            _ => return None,
        })
    }
}

/// Where one weight tensor lives in the payload.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct TensorEntry {
    /// Initializer name in the graph.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Byte offset from the start of the payload (a multiple of [`TENSOR_ALIGN`]).
    pub offset: u64,
    /// Byte length (elements times element size).
    pub len: u64,
}

impl TensorEntry {
    /// Number of elements (`None` on overflow).
    pub fn elements(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }
}

/// What a bundle says about its model. Built by `arca-codegen`, stored rkyv-archived.
#[derive(Debug, Clone, PartialEq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Manifest {
    /// Short model name (`text-small`).
    pub name: String,
    /// What the model is for.
    pub kind: ModelKind,
    /// One-line description.
    pub description: String,
    /// Number of output symbols.
    pub vocab_size: u32,
    /// Context length N the graph expects.
    pub context_len: u32,
    /// Padding symbol fed for positions before the start.
    pub pad_id: u32,
    /// Fixed-point fraction bits of the integer logits.
    pub logit_frac_bits: u32,
    /// How the weights and arithmetic are quantized (free text).
    pub quantization: String,
    /// Graph input names.
    pub inputs: Vec<String>,
    /// Graph output names.
    pub outputs: Vec<String>,
    /// KV-cache input names (empty for stateless models).
    pub kv_cache_inputs: Vec<String>,
    /// KV-cache output names (empty for stateless models).
    pub kv_cache_outputs: Vec<String>,
    /// Number of parameters.
    pub parameters: u64,
    /// How the model was made: training command, data, date, tokens... (`key`, `value`).
    pub provenance: Vec<(String, String)>,
    /// Numbers measured when it was made (`key`, `value`).
    pub metrics: Vec<(String, f64)>,
    /// Payload tensors.
    pub tensors: Vec<TensorEntry>,
    /// xxh3-128 of the graph bytes (set by [`encode`]).
    pub graph_hash: u128,
    /// xxh3-128 of the graph bytes followed by the payload bytes: the model id (set by [`encode`]).
    pub payload_hash: u128,
}

impl Manifest {
    /// The value of the provenance entry `key` (the first, if the manifest repeats it).
    ///
    /// ```
    /// let m = arca_bundle::Manifest {
    ///     provenance: vec![("codec".into(), "text-nn".into())],
    ///     ..Default::default()
    /// };
    /// assert_eq!(m.get("codec"), Some("text-nn"));
    /// assert_eq!(m.get("arith.task"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.provenance
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A 64-byte aligned wrapper, used by [`include_bundle!`] so embedded bundles are aligned.
#[repr(C, align(64))]
pub struct Aligned64<B: ?Sized>(pub B);

/// Embeds a `.arcm` file in the binary, 64-byte aligned, as a `&'static [u8]` for
/// [`Bundle::from_static`]. The path is relative to the file that invokes the macro, as with
/// `include_bytes!`.
///
/// ```ignore
/// let bundle = arca_bundle::Bundle::from_static(
///     arca_bundle::include_bundle!("../models/text-small.arcm"),
/// )?;
/// ```
#[macro_export]
macro_rules! include_bundle {
    ($path:expr) => {{
        static ALIGNED: &$crate::Aligned64<[u8]> = &$crate::Aligned64(*include_bytes!($path));
        &ALIGNED.0
    }};
}

/// The bytes behind a bundle.
enum Storage {
    Mmap(Mmap),
    Static(&'static [u8]),
    Owned(AlignedVec<TENSOR_ALIGN>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Static(s) => s,
            Storage::Owned(v) => v.as_slice(),
        }
    }
}

struct Inner {
    storage: Storage,
    manifest: Manifest,
    graph: Range<usize>,
    payload: Range<usize>,
}

/// An opened, fully checked bundle. Cheap to clone (shared), `Send + Sync`.
#[derive(Clone)]
pub struct Bundle {
    inner: Arc<Inner>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("name", &self.inner.manifest.name)
            .field("kind", &self.inner.manifest.kind)
            .field("id", &self.id_hex())
            .field("bytes", &self.as_bytes().len())
            .finish()
    }
}

/// Memory-maps a whole file, read-only.
///
/// # Safety
///
/// The returned map aliases the file's pages. The caller must make sure the file is neither
/// modified nor truncated while the map (or anything borrowed from it) is alive: another process
/// writing to it changes bytes behind `&[u8]` references (undefined behaviour), and truncating it
/// makes reads past the new end fault (SIGBUS). The contract is inherited from
/// [`memmap2::Mmap::map`].
unsafe fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: forwarded to the caller, see `# Safety` above.
    unsafe { Mmap::map(file) }
}

impl Bundle {
    /// Opens and checks a bundle file, memory-mapping it (weights are not read into memory until
    /// used; the whole file is hashed once here).
    ///
    /// The file must not be modified or truncated while the bundle is alive (the usual contract
    /// of memory-mapped models, as in tract and candle). `arca pack` never rewrites a file in
    /// place: it writes a temporary file and renames it, so re-packing a model that is open is
    /// safe. Use [`Bundle::from_bytes`] with `std::fs::read` to load a private copy instead.
    pub fn open(path: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        let path = path.as_ref();
        let io = |source| BundleError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is owned by the returned bundle and the documented contract of
        // `open` (the file is not changed while it is open) is the one `map_file` requires.
        let map = unsafe { map_file(&file) }.map_err(io)?;
        Bundle::from_storage(Storage::Mmap(map))
    }

    /// Checks a bundle embedded in the binary. Bytes from [`include_bundle!`] are 64-byte
    /// aligned and used in place; an unaligned slice is copied once into an aligned buffer.
    pub fn from_static(bytes: &'static [u8]) -> Result<Bundle, BundleError> {
        if (bytes.as_ptr() as usize).is_multiple_of(TENSOR_ALIGN) {
            Bundle::from_storage(Storage::Static(bytes))
        } else {
            Bundle::from_storage(Storage::Owned(aligned_copy(bytes)))
        }
    }

    /// Checks a bundle held in memory (copied once into an aligned buffer).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Bundle, BundleError> {
        Bundle::from_storage(Storage::Owned(aligned_copy(&bytes)))
    }

    fn from_storage(storage: Storage) -> Result<Bundle, BundleError> {
        let checked = check(storage.bytes())?;
        Ok(Bundle {
            inner: Arc::new(Inner {
                storage,
                manifest: checked.manifest,
                graph: checked.graph,
                payload: checked.payload,
            }),
        })
    }

    /// The manifest (decoded once from the archived, validated copy in the file).
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The model id: the xxh3-128 hash of the graph and weights hash together with every
    /// manifest field that changes what a decoder computes (vocabulary, context length, PAD id,
    /// logit scale). Two bundles with the same id decode the same streams.
    pub fn id(&self) -> u128 {
        model_id(&self.inner.manifest)
    }

    /// The id as 32 lowercase hex digits.
    pub fn id_hex(&self) -> String {
        format!("{:032x}", self.id())
    }

    /// The first 12 hex digits of the id, for humans.
    pub fn short_id(&self) -> String {
        let mut hex = self.id_hex();
        hex.truncate(12);
        hex
    }

    /// The whole file.
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.storage.bytes()
    }

    /// The serialized ONNX `ModelProto` (initializers point into [`Bundle::payload`]).
    pub fn onnx_graph_bytes(&self) -> &[u8] {
        self.as_bytes()
            .get(self.inner.graph.clone())
            .unwrap_or_default()
    }

    /// All weight bytes (64-byte aligned in memory).
    pub fn payload(&self) -> &[u8] {
        self.as_bytes()
            .get(self.inner.payload.clone())
            .unwrap_or_default()
    }

    /// The raw little-endian bytes of the tensor called `name`, read in place from the map.
    pub fn tensor(&self, name: &str) -> Option<&[u8]> {
        let entry = self
            .inner
            .manifest
            .tensors
            .iter()
            .find(|t| t.name == name)?;
        let start = usize::try_from(entry.offset).ok()?;
        let len = usize::try_from(entry.len).ok()?;
        self.payload().get(start..start.checked_add(len)?)
    }

    /// The tensor `name` as values of at most 4 bytes each, decoded by `read` from a
    /// little-endian word (zero-padded past the element size), after checking its type and
    /// shape; the error says which check failed, for a loader's "cannot load" message.
    pub fn tensor_values<T>(
        &self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        read: impl Fn([u8; 4]) -> T,
    ) -> Result<Vec<T>, String> {
        let entry = self
            .manifest()
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| format!("it has no tensor `{name}`"))?;
        if entry.dtype != dtype || entry.shape != shape {
            return Err(format!(
                "tensor `{name}` is {} {:?}, expected {} {shape:?}",
                entry.dtype.as_str(),
                entry.shape,
                dtype.as_str()
            ));
        }
        let bytes = self
            .tensor(name)
            .ok_or_else(|| format!("tensor `{name}` lies outside the payload"))?;
        let size = dtype.size();
        debug_assert!(size <= 4, "tensor_values reads elements of at most 4 bytes");
        Ok(bytes
            .chunks_exact(size)
            .map(|c| {
                let mut word = [0u8; 4];
                word[..size].copy_from_slice(c);
                read(word)
            })
            .collect())
    }

    /// `key: value` lines for `arca inspect`: identity, shape, provenance, metrics, sizes.
    pub fn manifest_lines(&self) -> Vec<(String, String)> {
        let m = &self.inner.manifest;
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut lines: Vec<(String, String)> = vec![
            ("name".into(), m.name.clone()),
            ("kind".into(), m.kind.as_str().into()),
            ("id".into(), self.id_hex()),
            ("description".into(), m.description.clone()),
            ("parameters".into(), m.parameters.to_string()),
            ("vocab_size".into(), m.vocab_size.to_string()),
            ("context_len".into(), m.context_len.to_string()),
            ("pad_id".into(), m.pad_id.to_string()),
            ("logit_frac_bits".into(), m.logit_frac_bits.to_string()),
            ("quantization".into(), m.quantization.clone()),
            ("inputs".into(), list(&m.inputs)),
            ("outputs".into(), list(&m.outputs)),
        ];
        if !m.kv_cache_inputs.is_empty() || !m.kv_cache_outputs.is_empty() {
            lines.push(("kv_cache_inputs".into(), list(&m.kv_cache_inputs)));
            lines.push(("kv_cache_outputs".into(), list(&m.kv_cache_outputs)));
        }
        lines.extend(m.provenance.iter().cloned());
        lines.extend(
            m.metrics
                .iter()
                .map(|(k, v)| (format!("metrics.{k}"), v.to_string())),
        );
        lines.push(("tensors".into(), m.tensors.len().to_string()));
        lines.push((
            "graph_bytes".into(),
            self.onnx_graph_bytes().len().to_string(),
        ));
        lines.push(("payload_bytes".into(), self.payload().len().to_string()));
        lines.push(("file_bytes".into(), self.as_bytes().len().to_string()));
        lines
    }
}

fn aligned_copy(bytes: &[u8]) -> AlignedVec<TENSOR_ALIGN> {
    let mut v = AlignedVec::<TENSOR_ALIGN>::with_capacity(bytes.len());
    v.extend_from_slice(bytes);
    v
}

fn align_up(n: u64, align: u64) -> Option<u64> {
    n.checked_add(align - 1).map(|x| x / align * align)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = bytes.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = bytes.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

/// The model id of a manifest: see [`Bundle::id`].
pub fn model_id(m: &Manifest) -> u128 {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&m.payload_hash.to_le_bytes());
    for v in [m.vocab_size, m.context_len, m.pad_id, m.logit_frac_bits] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    xxh3_128(&bytes)
}

/// The hash stored as `payload_hash`: xxh3-128 of the graph bytes then the payload bytes.
pub fn payload_hash(graph: &[u8], payload: &[u8]) -> u128 {
    let mut h = Xxh3::new();
    h.update(graph);
    h.update(payload);
    h.digest128()
}

struct Checked {
    manifest: Manifest,
    graph: Range<usize>,
    payload: Range<usize>,
}

/// Validates every byte of a bundle; `bytes` must start at a 16-byte aligned address.
fn check(bytes: &[u8]) -> Result<Checked, BundleError> {
    let actual = bytes.len() as u64;
    let magic = bytes.get(..4).unwrap_or(bytes);
    if magic != MAGIC {
        if MAGIC.starts_with(magic) {
            return Err(BundleError::Truncated {
                what: "the format",
                expected: HEADER_LEN as u64,
                actual,
            });
        }
        return Err(BundleError::BadMagic {
            found: magic.to_vec(),
        });
    }
    if bytes.len() < 8 {
        return Err(BundleError::Truncated {
            what: "the format",
            expected: HEADER_LEN as u64,
            actual,
        });
    }
    let version = read_u32(bytes, 4);
    if version != FORMAT_VERSION {
        return Err(BundleError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(BundleError::Truncated {
            what: "the format",
            expected: HEADER_LEN as u64,
            actual,
        });
    };
    if xxh3_64(&header[..72]) != read_u64(header, 72) {
        return Err(BundleError::HeaderChecksum);
    }
    if read_u64(header, 8) != 0 {
        return Err(BundleError::BadLayout(
            "reserved header field is not zero".into(),
        ));
    }
    let manifest_off = read_u64(header, 16);
    let manifest_len = read_u64(header, 24);
    let graph_off = read_u64(header, 32);
    let graph_len = read_u64(header, 40);
    let payload_off = read_u64(header, 48);
    let payload_len = read_u64(header, 56);
    let layout = |msg: String| BundleError::BadLayout(msg);
    if manifest_off != HEADER_LEN as u64 {
        return Err(layout(format!(
            "manifest offset is {manifest_off}, expected {HEADER_LEN}"
        )));
    }
    let manifest_end = manifest_off
        .checked_add(manifest_len)
        .ok_or_else(|| layout("manifest length overflows".into()))?;
    if graph_off != manifest_end {
        return Err(layout(format!(
            "graph offset is {graph_off}, the manifest ends at {manifest_end}"
        )));
    }
    let graph_end = graph_off
        .checked_add(graph_len)
        .ok_or_else(|| layout("graph length overflows".into()))?;
    let expected_payload_off = align_up(graph_end, TENSOR_ALIGN as u64)
        .ok_or_else(|| layout("graph length overflows".into()))?;
    if payload_off != expected_payload_off {
        return Err(layout(format!(
            "payload offset is {payload_off}, expected {expected_payload_off} (graph end rounded up to {TENSOR_ALIGN})"
        )));
    }
    let total = payload_off
        .checked_add(payload_len)
        .ok_or_else(|| layout("payload length overflows".into()))?;
    if total > actual {
        return Err(BundleError::Truncated {
            what: "header",
            expected: total,
            actual,
        });
    }
    if total < actual {
        return Err(BundleError::TrailingBytes {
            expected: total,
            actual,
        });
    }
    // All offsets are now <= bytes.len(), so they fit in usize.
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| layout(format!("offset {v} too large")));
    let manifest_range = to_usize(manifest_off)?..to_usize(manifest_end)?;
    let graph = to_usize(graph_off)?..to_usize(graph_end)?;
    let payload = to_usize(payload_off)?..to_usize(total)?;
    let slice = |r: &Range<usize>| {
        bytes
            .get(r.clone())
            .ok_or_else(|| layout(format!("range {r:?} is out of bounds")))
    };
    let manifest_bytes = slice(&manifest_range)?;
    if xxh3_64(manifest_bytes) != read_u64(header, 64) {
        return Err(BundleError::ManifestChecksum);
    }
    let gap = slice(&(graph.end..payload.start))?;
    if gap.iter().any(|&b| b != 0) {
        return Err(layout(
            "alignment padding before the payload is not zero".into(),
        ));
    }
    let manifest = decode_manifest(manifest_bytes)?;
    let graph_bytes = slice(&graph)?;
    let payload_bytes = slice(&payload)?;
    let actual_hash = payload_hash(graph_bytes, payload_bytes);
    if actual_hash != manifest.payload_hash {
        return Err(BundleError::PayloadChecksum {
            expected: manifest.payload_hash,
            actual: actual_hash,
        });
    }
    if xxh3_128(graph_bytes) != manifest.graph_hash {
        return Err(BundleError::BadManifest(
            "graph hash does not match the graph".into(),
        ));
    }
    check_tensors(&manifest, payload_len)?;
    Ok(Checked {
        manifest,
        graph,
        payload,
    })
}

fn decode_manifest(bytes: &[u8]) -> Result<Manifest, BundleError> {
    let bad = |e: rancor::Error| BundleError::BadManifest(e.to_string());
    let archived = if (bytes.as_ptr() as usize).is_multiple_of(MANIFEST_ALIGN) {
        rkyv::access::<ArchivedManifest, rancor::Error>(bytes).map_err(bad)?
    } else {
        // Only reachable for storage that is not 16-byte aligned, which `Bundle` never builds.
        let copy = aligned_copy(bytes);
        let archived = rkyv::access::<ArchivedManifest, rancor::Error>(&copy).map_err(bad)?;
        return rkyv::deserialize::<Manifest, rancor::Error>(archived).map_err(bad);
    };
    rkyv::deserialize::<Manifest, rancor::Error>(archived).map_err(bad)
}

fn check_tensors(manifest: &Manifest, payload_len: u64) -> Result<(), BundleError> {
    let mut names = HashSet::new();
    for t in &manifest.tensors {
        let bad = |reason: String| BundleError::BadTensor {
            name: t.name.clone(),
            reason,
        };
        if !names.insert(t.name.as_str()) {
            return Err(bad("name appears twice".into()));
        }
        if !t.offset.is_multiple_of(TENSOR_ALIGN as u64) {
            return Err(bad(format!(
                "offset {} is not {TENSOR_ALIGN}-byte aligned",
                t.offset
            )));
        }
        let end = t
            .offset
            .checked_add(t.len)
            .ok_or_else(|| bad("length overflows".into()))?;
        if end > payload_len {
            return Err(bad(format!(
                "bytes {}..{end} are outside the {payload_len}-byte payload",
                t.offset
            )));
        }
        let expected = t
            .elements()
            .and_then(|n| n.checked_mul(t.dtype.size() as u64))
            .ok_or_else(|| bad("shape overflows".into()))?;
        if expected != t.len {
            return Err(bad(format!(
                "{} bytes for shape {:?} of {}, expected {expected}",
                t.len,
                t.shape,
                t.dtype.as_str()
            )));
        }
    }
    Ok(())
}

/// Writes a bundle: fills in `graph_hash` and `payload_hash`, archives the manifest and lays out
/// header, manifest, graph and payload. `payload` is placed at a 64-byte aligned offset, so
/// tensor offsets inside it that are multiples of 64 stay aligned in the file.
///
/// The output is a pure function of the inputs (no clock, no randomness).
pub fn encode(
    mut manifest: Manifest,
    graph: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, BundleError> {
    manifest.graph_hash = xxh3_128(graph);
    manifest.payload_hash = payload_hash(graph, payload);
    check_tensors(&manifest, payload.len() as u64)?;
    let archived = rkyv::to_bytes::<rancor::Error>(&manifest)
        .map_err(|e| BundleError::Encode(format!("archiving the manifest: {e}")))?;
    let manifest_off = HEADER_LEN as u64;
    let manifest_len = archived.len() as u64;
    let graph_off = manifest_off + manifest_len;
    let graph_len = graph.len() as u64;
    let payload_off = align_up(graph_off + graph_len, TENSOR_ALIGN as u64)
        .ok_or_else(|| BundleError::Encode("graph too large".into()))?;
    let payload_len = payload.len() as u64;
    let total = usize::try_from(payload_off + payload_len)
        .map_err(|_| BundleError::Encode("bundle too large".into()))?;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for v in [
        manifest_off,
        manifest_len,
        graph_off,
        graph_len,
        payload_off,
        payload_len,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&xxh3_64(&archived).to_le_bytes());
    let header_hash = xxh3_64(&out);
    out.extend_from_slice(&header_hash.to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&archived);
    out.extend_from_slice(graph);
    out.resize(payload_off as usize, 0);
    out.extend_from_slice(payload);
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let payload: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        let manifest = Manifest {
            name: "sample".into(),
            kind: ModelKind::Draft,
            description: "unit test".into(),
            vocab_size: 256,
            context_len: 4,
            pad_id: 256,
            logit_frac_bits: 3,
            quantization: "none".into(),
            inputs: vec!["context".into()],
            outputs: vec!["logits".into()],
            parameters: 42,
            provenance: vec![("training.date".into(), "2026-11-26".into())],
            metrics: vec![("bpb".into(), 1.5)],
            tensors: vec![
                TensorEntry {
                    name: "a".into(),
                    dtype: DType::F32,
                    shape: vec![2, 3],
                    offset: 0,
                    len: 24,
                },
                TensorEntry {
                    name: "b".into(),
                    dtype: DType::I8,
                    shape: vec![5],
                    offset: 64,
                    len: 5,
                },
            ],
            ..Manifest::default()
        };
        encode(
            manifest,
            b"not really onnx, the bundle does not care",
            &payload,
        )
        .expect("encode sample")
    }

    #[test]
    fn round_trip() -> Result<(), BundleError> {
        let bytes = sample();
        let b = Bundle::from_bytes(bytes.clone())?;
        let m = b.manifest();
        assert_eq!(m.name, "sample");
        assert_eq!(m.kind, ModelKind::Draft);
        assert_eq!(m.metrics, vec![("bpb".to_string(), 1.5)]);
        assert_eq!(
            b.onnx_graph_bytes(),
            b"not really onnx, the bundle does not care"
        );
        let expected_b: Vec<u8> = (64..69u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(b.tensor("b"), Some(&expected_b[..]));
        assert_eq!(b.tensor("a").map(<[u8]>::len), Some(24));
        assert!(b.tensor("c").is_none());
        assert_eq!(b.payload().as_ptr() as usize % TENSOR_ALIGN, 0);
        assert_eq!(
            b.manifest().payload_hash,
            payload_hash(b.onnx_graph_bytes(), b.payload())
        );
        assert_eq!(b.id(), model_id(b.manifest()));
        assert_eq!(b.short_id(), b.id_hex()[..12]);
        let lines = b.manifest_lines();
        let get = |k: &str| {
            lines
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("kind").as_deref(), Some("draft"));
        assert_eq!(get("training.date").as_deref(), Some("2026-11-26"));
        assert_eq!(get("metrics.bpb").as_deref(), Some("1.5"));
        assert_eq!(get("tensors").as_deref(), Some("2"));
        assert_eq!(get("payload_bytes").as_deref(), Some("200"));
        // Deterministic.
        assert_eq!(sample(), bytes);
        Ok(())
    }

    #[test]
    fn open_from_file_and_static() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = sample();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.arcm");
        std::fs::write(&path, &bytes)?;
        let a = Bundle::open(&path)?;
        let leaked: &'static [u8] = Box::leak(bytes.clone().into_boxed_slice());
        let b = Bundle::from_static(leaked)?;
        // An unaligned static slice is copied, not rejected.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let shifted: &'static [u8] = Box::leak(shifted.into_boxed_slice());
        let c = Bundle::from_static(&shifted[1..])?;
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id(), c.id());
        assert_eq!(c.payload().as_ptr() as usize % TENSOR_ALIGN, 0);
        let missing = Bundle::open(dir.path().join("nope.arcm"));
        assert!(matches!(missing, Err(BundleError::Io { .. })));
        let empty = dir.path().join("empty.arcm");
        std::fs::write(&empty, b"")?;
        assert!(matches!(
            Bundle::open(&empty),
            Err(BundleError::Truncated { .. })
        ));
        assert!(Bundle::open(dir.path()).is_err());
        Ok(())
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let r = Bundle::from_bytes(bytes[..len].to_vec());
            assert!(r.is_err(), "truncated to {len} bytes was accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Bundle::from_bytes(longer),
            Err(BundleError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = sample();
        for at in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[at] ^= mask;
                assert!(
                    Bundle::from_bytes(bad).is_err(),
                    "flip {mask:#x} at {at} was accepted"
                );
            }
        }
    }

    /// The committed fixture bundle (packed by arca-codegen from `runtime/core/tests/data/tiny.onnx`).
    fn fixture() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/tiny.arcm");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn fixture_every_truncation_and_flip_is_an_error() -> Result<(), BundleError> {
        let bytes = fixture();
        Bundle::from_bytes(bytes.clone())?;
        for len in 0..bytes.len() {
            assert!(
                Bundle::from_bytes(bytes[..len].to_vec()).is_err(),
                "truncated to {len}"
            );
        }
        for at in 0..bytes.len() {
            for mask in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= mask;
                assert!(
                    Bundle::from_bytes(bad).is_err(),
                    "flip {mask:#x} at {at} was accepted"
                );
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            // Behind a valid magic and version, so the parser gets past the first checks.
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            bytes.extend_from_slice(&tail);
            proptest::prop_assert!(Bundle::from_bytes(bytes).is_err());
        }

        #[test]
        fn random_splices_never_panic(
            edits in proptest::collection::vec((0usize..6000, proptest::num::u8::ANY), 1..8),
        ) {
            let mut bytes = fixture();
            let original = bytes.clone();
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let r = Bundle::from_bytes(bytes.clone());
            proptest::prop_assert_eq!(r.is_ok(), bytes == original);
        }
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let bytes = sample();
        let msg = |b: &[u8]| match Bundle::from_bytes(b.to_vec()) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        };
        assert!(msg(b"PK\x03\x04zip").contains("not an arca bundle"));
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert!(msg(&v2).contains("unsupported bundle format version 2"));
        let cut = &bytes[..bytes.len() - 10];
        assert_eq!(
            msg(cut),
            format!(
                "bundle is truncated: header says {} bytes, file has {}",
                bytes.len(),
                bytes.len() - 10
            )
        );
        let mut flip = bytes.clone();
        let last = flip.len() - 1;
        flip[last] ^= 1;
        assert!(msg(&flip).contains("graph or weights are corrupted"));
    }

    #[test]
    fn bad_tensor_tables_are_refused_at_encode() {
        let manifest = Manifest {
            tensors: vec![TensorEntry {
                name: "x".into(),
                dtype: DType::F32,
                shape: vec![4],
                offset: 0,
                len: 16,
            }],
            ..Manifest::default()
        };
        let r = encode(manifest, b"g", &[0u8; 8]);
        assert!(matches!(r, Err(BundleError::BadTensor { .. })));
    }

    #[test]
    fn kinds_round_trip_as_words() {
        for k in ModelKind::ALL {
            assert_eq!(ModelKind::from_word(k.as_str()), Some(k));
        }
        assert_eq!(ModelKind::from_word("Compressor"), None);
    }

    #[test]
    fn bundle_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Bundle>();
    }
}
