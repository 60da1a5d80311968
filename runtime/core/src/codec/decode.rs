//! One decoder for every stream: [`decompress`] reads the header, asks a [`ModelSource`] for the
//! model it names, and dispatches to the codec that wrote it.

use std::ops::Range;

use crate::circuit::{self, Circuit};
use crate::container::{Codec, Header, Stream};
use crate::engine::{LoadOptions, ModelError, TextModel};
use arca_bundle::{Bundle, ModelKind};

use super::blocks::{check_header, decode_frames};
use super::error::{CodecError, SourceError};
use super::image::ImageCodec;
use super::text::TextCodec;

/// A model ready to code with: a byte-level network (the text codecs), a circuit (images), or
/// none (context models alone).
pub enum Model {
    /// A bundle and its network, built once.
    Network {
        /// The bundle (name, id, manifest).
        bundle: Bundle,
        /// The network.
        network: Box<TextModel>,
    },
    /// A probabilistic circuit: codes images, not text.
    Circuit {
        /// The bundle (name, id, manifest).
        bundle: Bundle,
        /// The circuit, checked and ready.
        circuit: Box<Circuit>,
    },
    /// No network: the context models alone.
    None,
}

impl Model {
    /// Builds what `bundle` holds: its circuit for a circuit bundle, else its network.
    pub fn load(bundle: Bundle, options: LoadOptions) -> Result<Model, CodecError> {
        if bundle.manifest().kind == ModelKind::Circuit {
            let circuit = Circuit::load(&bundle)?;
            return Ok(Model::Circuit {
                bundle,
                circuit: Box::new(circuit),
            });
        }
        let network = TextModel::load_with(&bundle, options)?;
        Ok(Model::Network {
            bundle,
            network: Box::new(network),
        })
    }

    /// The model's bundle (`None` for no model).
    pub fn bundle(&self) -> Option<&Bundle> {
        match self {
            Model::Network { bundle, .. } | Model::Circuit { bundle, .. } => Some(bundle),
            Model::None => None,
        }
    }

    /// The model's id, as streams record it (0 for none).
    pub fn id(&self) -> u128 {
        self.bundle().map_or(0, Bundle::id)
    }

    /// The model's name, as streams record it (`none` for none).
    pub fn name(&self) -> &str {
        self.bundle().map_or("none", |b| &b.manifest().name)
    }

    /// A text codec over this model; an error for a circuit.
    pub fn text_codec(&self) -> Result<TextCodec<'_>, CodecError> {
        match self {
            Model::Network { bundle, network } => Ok(TextCodec::new(
                network.as_ref(),
                bundle.id(),
                &bundle.manifest().name,
            )),
            Model::Circuit { bundle, .. } => Err(CodecError::Options(format!(
                "model '{}' is an image model (a probabilistic circuit); it codes images only",
                bundle.manifest().name
            ))),
            Model::None => Ok(TextCodec::without_network()),
        }
    }

    /// Whether the model's manifest asks for the `text-nn` codec (`codec: text-nn`, as the
    /// models made for microcontrollers do).
    pub fn prefers_nn(&self) -> bool {
        matches!(self, Model::Network { bundle, .. } if bundle.manifest().get("codec") == Some("text-nn"))
    }
}

/// Where a decoder finds the model a stream names. The command line looks in `-m` first and
/// then among the embedded models ([`crate::shipped`]); a library user may hold one model, or
/// a map of them.
pub trait ModelSource {
    /// The model for a stream with `header` (its `model_id` and `model_name`; a stream with
    /// `model_id` 0 was coded without one: answer [`Model::None`]). A model other than the one
    /// named is refused by the codec with [`CodecError::ModelMismatch`].
    fn model_for(&mut self, header: &Header) -> Result<&Model, ModelError>;
}

/// One model is a source of itself: the codecs refuse a stream made with another.
impl ModelSource for Model {
    fn model_for(&mut self, _: &Header) -> Result<&Model, ModelError> {
        Ok(self)
    }
}

/// The same, borrowed (one model shared by several decoders).
impl ModelSource for &Model {
    fn model_for(&mut self, _: &Header) -> Result<&Model, ModelError> {
        Ok(*self)
    }
}

/// Options of [`decompress`].
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Worker threads. 0: the rayon pool this is called from (pass your own by calling inside
    /// `ThreadPool::install`), else one per core, in a pool kept for the process.
    pub threads: usize,
    /// Decode only these bytes of the original (text streams; `None` = all of it).
    pub range: Option<Range<u64>>,
}

/// The revision of `codec`'s fixed parameters that this build writes and reads.
pub fn revision(codec: Codec) -> u16 {
    match codec {
        Codec::Stored | Codec::TextCm => super::cm::REVISION,
        Codec::TextEiw => crate::eiw::REVISION,
        Codec::TextNn => arca_embedded::REVISION,
        Codec::ImagePc => circuit::REVISION,
    }
}

/// Decodes any `.arca` stream: the header says which codec made it, `models` gives the model
/// it names, and every block is checked against its CRC. `progress` gets the number of
/// original bytes just decoded (from worker threads).
///
/// ```
/// use arca_runtime::codec::{self, DecodeOptions, Model, ModelSource, Options, TextCodec};
/// use arca_runtime::container::Header;
///
/// /// No network: streams coded by the context models alone.
/// struct NoModel(Model);
/// impl ModelSource for NoModel {
///     fn model_for(&mut self, _: &Header) -> Result<&Model, arca_runtime::engine::ModelError> {
///         Ok(&self.0)
///     }
/// }
///
/// let packed = TextCodec::without_network().compress(b"to be or not to be", &Options::default(), &|_| {})?;
/// let back = codec::decompress(&packed, &mut NoModel(Model::None), &DecodeOptions::default(), &|_| {})?;
/// assert_eq!(back, b"to be or not to be");
/// # Ok::<(), codec::CodecError>(())
/// ```
///
/// `bytes` may hold several streams back to back (concatenated files, or what
/// [`crate::stream::Encoder`] writes for long inputs): they decode to the concatenation of
/// their originals, and `opts.range` counts bytes of that concatenation.
pub fn decompress(
    bytes: &[u8],
    models: &mut dyn ModelSource,
    opts: &DecodeOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, CodecError> {
    decode_frames(bytes, opts.range.clone(), |stream, range| {
        let sub = DecodeOptions {
            threads: opts.threads,
            range,
        };
        decompress_stream(stream, models, &sub, progress)
    })
}

/// [`decompress`] of a stream the caller has parsed already (to show its header first, say).
pub fn decompress_stream(
    stream: &Stream<'_>,
    models: &mut dyn ModelSource,
    opts: &DecodeOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, CodecError> {
    let header = stream.header();
    if opts.range.is_some() && header.codec == Codec::ImagePc {
        return Err(CodecError::Options(
            "a byte range reads text streams; this is an image stream".into(),
        ));
    }
    let model = models
        .model_for(header)
        .map_err(|e| CodecError::Source(SourceError(e)))?;
    match (header.codec, model) {
        (Codec::ImagePc, Model::Circuit { circuit, .. }) => {
            ImageCodec::new(circuit).decompress_stream(stream, opts.threads, progress)
        }
        (Codec::ImagePc, other) => {
            check_header(header, circuit::REVISION, other.id(), other.name())?;
            Err(CodecError::Options(
                "an image stream needs a circuit model".into(),
            ))
        }
        (codec, Model::Circuit { .. }) => Err(CodecError::Options(format!(
            "this is a {} stream, not an image stream",
            codec.name()
        ))),
        (_, model) => {
            model
                .text_codec()?
                .decode_stream(stream, opts.range.clone(), opts.threads, progress)
        }
    }
}
