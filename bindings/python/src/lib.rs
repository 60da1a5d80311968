//! `arca._arca`, the extension module under the `arca` Python package: models, whole-buffer and
//! streaming compression, and the Equal-Info Window tokenizer. Every call that codes releases
//! the GIL, so Python threads (and Ray's actors) run beside it. The Python layer
//! (`python/arca/`) adds NumPy arrays and files on top.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

use arca_runtime::codec::{self, DecodeOptions, Options};
use arca_runtime::eiw::{Schedule, TokenFile, Tokenizer as EiwTokenizer, Windows};
use arca_runtime::engine::{ByteModel, LoadOptions};
use arca_runtime::shipped;
use arca_runtime::stream::{self, Encoder, PushDecoder};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _arca,
    ArcaError,
    PyException,
    "A stream that is damaged or needs another model, a model that cannot be opened, or bad token data; the message is the library's."
);

fn arca_err(e: impl std::fmt::Display) -> PyErr {
    ArcaError::new_err(e.to_string())
}

/// The models this process opened, by the name or path they were opened with. A model is
/// opened once and kept for the life of the process (they are a few MB, read-only, and every
/// Compressor, Tokenizer or Ray task in the process shares one), which is what lets the
/// streaming objects below borrow it for `'static`.
fn open(name: &str) -> PyResult<&'static arca_runtime::Model> {
    static MODELS: OnceLock<Mutex<HashMap<String, &'static arca_runtime::Model>>> = OnceLock::new();
    let mut models = MODELS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(m) = models.get(name) {
        return Ok(m);
    }
    let model = if name == "none" {
        arca_runtime::Model::None
    } else {
        let bundle = shipped::resolve(name)
            .map_err(|e| arca_err(format!("cannot open model '{name}': {e}")))?;
        arca_runtime::Model::load(bundle, LoadOptions::default())
            .map_err(|e| arca_err(format!("cannot load model '{name}': {e}")))?
    };
    if let arca_runtime::Model::Circuit { .. } = model {
        return Err(arca_err(format!(
            "'{name}' is an image model; the Python package codes text"
        )));
    }
    let model: &'static arca_runtime::Model = Box::leak(Box::new(model));
    models.insert(name.to_owned(), model);
    Ok(model)
}

/// A model: an embedded one by name (`"text-small"`, the default), a path to a `.arcm` bundle,
/// or `"none"` (context models alone). Pickles as its name, so Ray and multiprocessing workers
/// open it again on their side.
#[pyclass(module = "arca._arca", frozen)]
struct Model {
    name: String,
    model: &'static arca_runtime::Model,
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (name = None))]
    fn new(name: Option<&str>) -> PyResult<Self> {
        let name = name.unwrap_or(shipped::default_compressor());
        Ok(Model {
            name: name.to_owned(),
            model: open(name)?,
        })
    }

    /// The name or path it was opened with.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The model's id as streams record it (32 hex digits; zeros for `none`).
    #[getter]
    fn id(&self) -> String {
        format!("{:032x}", self.model.id())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((slf.get_type().into_any(), (slf.get().name.clone(),)))
    }

    fn __repr__(&self) -> String {
        format!("arca.Model({:?})", self.name)
    }
}

/// The model of an optional argument: the default one when `None`.
fn model_or_default(model: Option<&Bound<'_, Model>>) -> PyResult<&'static arca_runtime::Model> {
    match model {
        Some(m) => Ok(m.get().model),
        None => open(shipped::default_compressor()),
    }
}

/// Compresses `data` into one `.arca` stream (what `arca compress` writes).
#[pyfunction]
#[pyo3(signature = (data, model = None, threads = 0))]
fn compress<'py>(
    py: Python<'py>,
    data: &[u8],
    model: Option<&Bound<'py, Model>>,
    threads: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let model = model_or_default(model)?;
    let codec = model.text_codec().map_err(arca_err)?;
    let opts = Options {
        threads,
        ..Options::default()
    };
    let packed = py
        .allow_threads(|| codec.compress(data, &opts, &|_| {}))
        .map_err(arca_err)?;
    Ok(PyBytes::new(py, &packed))
}

/// Decompresses one stream, or several back to back, checking every block.
#[pyfunction]
#[pyo3(signature = (data, model = None, threads = 0))]
fn decompress<'py>(
    py: Python<'py>,
    data: &[u8],
    model: Option<&Bound<'py, Model>>,
    threads: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut model = model_or_default(model)?;
    let opts = DecodeOptions {
        threads,
        range: None,
    };
    let plain = py
        .allow_threads(|| codec::decompress(data, &mut model, &opts, &|_| {}))
        .map_err(arca_err)?;
    Ok(PyBytes::new(py, &plain))
}

/// Streaming compression, as `zlib.compressobj`: `compress(chunk)` returns the frames its input
/// completed (often `b""`), `flush()` ends a frame early, `finish()` returns the rest.
#[pyclass(module = "arca._arca")]
struct Compressor {
    encoder: Option<Encoder<'static, Vec<u8>>>,
}

impl Compressor {
    fn encoder(&mut self) -> PyResult<&mut Encoder<'static, Vec<u8>>> {
        self.encoder
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("the compressor is finished"))
    }
}

/// An encoder's error: the library's message when it is one.
fn stream_err(e: std::io::Error) -> PyErr {
    match stream::codec_error(&e) {
        Some(c) => arca_err(c),
        None => arca_err(e),
    }
}

#[pymethods]
impl Compressor {
    #[new]
    #[pyo3(signature = (model = None, threads = 0))]
    fn new(model: Option<&Bound<'_, Model>>, threads: usize) -> PyResult<Self> {
        let model = model_or_default(model)?;
        let codec = model.text_codec().map_err(arca_err)?;
        let opts = Options {
            threads,
            ..Options::default()
        };
        let encoder = Encoder::new(&codec, Vec::new()).options(opts);
        Ok(Compressor {
            encoder: Some(encoder),
        })
    }

    /// Adds `data`; returns the compressed bytes of the frames it completed.
    fn compress<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let encoder = self.encoder()?;
        py.allow_threads(|| encoder.write_all(data))
            .map_err(stream_err)?;
        Ok(PyBytes::new(py, &std::mem::take(encoder.get_mut())))
    }

    /// Codes what is buffered as a frame now, so all input so far can be decoded.
    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let encoder = self.encoder()?;
        py.allow_threads(|| encoder.flush()).map_err(stream_err)?;
        Ok(PyBytes::new(py, &std::mem::take(encoder.get_mut())))
    }

    /// Ends the stream and returns its last bytes; the compressor takes nothing more.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let encoder = self
            .encoder
            .take()
            .ok_or_else(|| PyValueError::new_err("the compressor is finished"))?;
        let rest = py.allow_threads(|| encoder.finish()).map_err(stream_err)?;
        Ok(PyBytes::new(py, &rest))
    }
}

/// Streaming decompression, as `zlib.decompressobj`: `decompress(chunk)` returns the original
/// of every frame the compressed bytes so far completed (each checked before it is returned),
/// `finish()` raises if the input stopped inside a stream.
#[pyclass(module = "arca._arca")]
struct Decompressor {
    model: &'static arca_runtime::Model,
    decoder: Option<PushDecoder<'static>>,
}

#[pymethods]
impl Decompressor {
    #[new]
    #[pyo3(signature = (model = None, threads = 0))]
    fn new(model: Option<&Bound<'_, Model>>, threads: usize) -> PyResult<Self> {
        Ok(Decompressor {
            model: model_or_default(model)?,
            decoder: Some(PushDecoder::new(threads)),
        })
    }

    /// Adds compressed bytes; returns what the frames they completed decode to.
    fn decompress<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let mut model = self.model;
        let decoder = self
            .decoder
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("the decompressor is finished or failed"))?;
        let mut out = Vec::new();
        let result = py.allow_threads(|| {
            decoder.push(data, &mut model, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
        });
        if let Err(e) = result {
            self.decoder = None;
            return Err(stream_err(e));
        }
        Ok(PyBytes::new(py, &out))
    }

    /// Ends the input; raises if it stopped inside a stream or held none.
    fn finish(&mut self) -> PyResult<()> {
        let decoder = self
            .decoder
            .take()
            .ok_or_else(|| PyValueError::new_err("the decompressor is finished or failed"))?;
        decoder.finish().map_err(stream_err)
    }
}

/// The Equal-Info Window tokenizer over a network model: each document becomes windows of
/// `bits` bits. The Python class `arca.eiw.Tokenizer` wraps this one with NumPy arrays.
#[pyclass(module = "arca._arca", frozen)]
struct Tokenizer {
    name: String,
    bits: u32,
    model: &'static arca_runtime::Model,
}

impl Tokenizer {
    fn network(&self) -> &'static dyn ByteModel {
        match self.model {
            arca_runtime::Model::Network { network, .. } => network.as_ref(),
            // `new` refused the others.
            _ => unreachable!("checked in Tokenizer::new"),
        }
    }

    fn tokenizer(&self) -> PyResult<EiwTokenizer<'static>> {
        EiwTokenizer::new(self.network(), self.bits).map_err(arca_err)
    }
}

#[pymethods]
impl Tokenizer {
    #[new]
    #[pyo3(signature = (bits = 16, model = None))]
    fn new(bits: u32, model: Option<&str>) -> PyResult<Self> {
        let name = model.unwrap_or(shipped::default_compressor());
        let opened = open(name)?;
        if !matches!(opened, arca_runtime::Model::Network { .. }) {
            return Err(arca_err(format!(
                "Equal-Info Windows need a network model, not '{name}'"
            )));
        }
        arca_runtime::eiw::check_bits(bits).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Tokenizer {
            name: name.to_owned(),
            bits,
            model: opened,
        })
    }

    /// Window size in bits.
    #[getter]
    fn bits(&self) -> u32 {
        self.bits
    }

    /// The model's name or path.
    #[getter]
    fn model(&self) -> &str {
        &self.name
    }

    /// The model's id (32 hex digits), as token files record it.
    #[getter]
    fn model_id(&self) -> String {
        format!("{:032x}", self.model.id())
    }

    /// Encodes each document: the tokens of all of them back to back, in the token file's
    /// layout (little-endian u16/u32/u64 for W = 16/32/64, else W/8 bytes, most significant
    /// first), and the token offset where each document starts, plus the total at the end.
    #[pyo3(signature = (documents, threads = 0))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        documents: Vec<Vec<u8>>,
        threads: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Vec<u64>)> {
        let tok = self.tokenizer()?;
        let schedule = Schedule {
            threads,
            ..Schedule::default()
        };
        let windows = py
            .allow_threads(|| {
                let docs: Vec<&[u8]> = documents.iter().map(Vec::as_slice).collect();
                tok.encode_documents(&docs, &schedule)
            })
            .map_err(arca_err)?;
        let mut offsets = Vec::with_capacity(windows.len() + 1);
        let mut tokens = Vec::new();
        let mut at = 0u64;
        for w in &windows {
            offsets.push(at);
            at += w.len() as u64;
            tokens.extend_from_slice(&w.to_token_file());
        }
        offsets.push(at);
        Ok((PyBytes::new(py, &tokens), offsets))
    }

    /// Decodes documents from tokens in the token file's layout and the offsets
    /// `encode_batch` gave (document `i` is tokens `offsets[i]..offsets[i + 1]`).
    #[pyo3(signature = (tokens, offsets, threads = 0))]
    fn decode_batch<'py>(
        &self,
        py: Python<'py>,
        tokens: &[u8],
        offsets: Vec<u64>,
        threads: usize,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let tok = self.tokenizer()?;
        let windows = Windows::from_token_file(self.bits, tokens).map_err(arca_err)?;
        let w = self.bits as usize / 8;
        let count = windows.len() as u64;
        if offsets.windows(2).any(|p| p[0] > p[1]) || offsets.last().is_some_and(|&e| e > count) {
            return Err(PyValueError::new_err(format!(
                "offsets must be non-decreasing and at most the {count} tokens given"
            )));
        }
        let bytes = windows.as_bytes();
        let runs: Vec<(&[u8], usize)> = offsets
            .windows(2)
            .map(|p| {
                let (a, b) = (p[0] as usize, p[1] as usize);
                (&bytes[a * w..b * w], a)
            })
            .collect();
        let schedule = Schedule {
            threads,
            ..Schedule::default()
        };
        let texts = py
            .allow_threads(|| tok.decode_runs(&runs, &schedule))
            .map_err(arca_err)?;
        Ok(texts.iter().map(|t| PyBytes::new(py, t)).collect())
    }

    /// A token file (what `arca tokenize FILE... -o OUT` writes) holding `documents`.
    #[pyo3(signature = (documents, threads = 0))]
    fn token_file<'py>(
        &self,
        py: Python<'py>,
        documents: Vec<Vec<u8>>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let tok = self.tokenizer()?;
        let schedule = Schedule {
            threads,
            ..Schedule::default()
        };
        let bytes = py
            .allow_threads(|| {
                let docs: Vec<&[u8]> = documents.iter().map(Vec::as_slice).collect();
                let windows = tok.encode_documents(&docs, &schedule)?;
                TokenFile::new(self.model.id(), tok.segment(), &windows).map(|f| f.to_bytes())
            })
            .map_err(arca_err)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The documents of a token file, checked against this tokenizer's model and W.
    #[pyo3(signature = (data, threads = 0))]
    fn read_token_file<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        threads: usize,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let tok = self.tokenizer()?;
        let file = TokenFile::parse(data).map_err(arca_err)?;
        file.check(Some(self.bits), self.model.id(), &self.name)
            .map_err(arca_err)?;
        let schedule = Schedule {
            threads,
            ..Schedule::default()
        };
        let texts = py
            .allow_threads(|| tok.decode_runs(&file.documents(), &schedule))
            .map_err(arca_err)?;
        Ok(texts.iter().map(|t| PyBytes::new(py, t)).collect())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (u32, String))> {
        let me = slf.get();
        Ok((slf.get_type().into_any(), (me.bits, me.name.clone())))
    }

    fn __repr__(&self) -> String {
        format!(
            "arca.eiw.Tokenizer(bits={}, model={:?})",
            self.bits, self.name
        )
    }
}

#[pymodule]
fn _arca(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ArcaError", m.py().get_type::<ArcaError>())?;
    m.add_class::<Model>()?;
    m.add_class::<Compressor>()?;
    m.add_class::<Decompressor>()?;
    m.add_class::<Tokenizer>()?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    Ok(())
}
