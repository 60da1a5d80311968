//! Finding and loading models: embedded ones by name or id, bundles by path, or none.

use anyhow::{Context, Result, bail};
use arca_runtime::bundle::{Bundle, ModelKind};
use arca_runtime::circuit::Circuit;
use arca_runtime::codec::TextCodec;
use arca_runtime::container::{Codec, Header};
use arca_runtime::engine::{LoadOptions, TextModel};
use arca_runtime::shipped;

/// The `-m` value that selects no network: the context models alone.
pub const NO_NETWORK: &str = "none";

/// A model ready to code with, or no network at all.
pub enum Loaded {
    /// A bundle and its network.
    Network {
        /// The bundle (name, id).
        bundle: Bundle,
        /// The network, built once.
        model: Box<TextModel>,
    },
    /// An image model: a probabilistic circuit (codes images, not text).
    Circuit {
        /// The bundle (name, id).
        bundle: Bundle,
        /// The circuit, checked and ready.
        circuit: Box<Circuit>,
    },
    /// Context models alone.
    None,
}

impl Loaded {
    /// Loads the model named by `-m` (an embedded model's name, a bundle path, or `none`), or
    /// the default compressor when `name` is `None`.
    pub fn load(name: Option<&str>, options: LoadOptions) -> Result<Loaded> {
        let bundle = match name {
            Some(NO_NETWORK) => return Ok(Loaded::None),
            Some(name) => {
                shipped::resolve(name).with_context(|| format!("cannot load model '{name}'"))?
            }
            None => {
                let name = shipped::default_compressor();
                shipped::resolve(name)
                    .with_context(|| format!("cannot load the default model '{name}'"))?
            }
        };
        Self::from_bundle(bundle, options)
    }

    /// Builds the network of `bundle`.
    pub fn from_bundle(bundle: Bundle, options: LoadOptions) -> Result<Loaded> {
        let name = bundle.manifest().name.clone();
        if bundle.manifest().kind == ModelKind::Circuit {
            let circuit =
                Circuit::load(&bundle).with_context(|| format!("cannot load model '{name}'"))?;
            tracing::info!(model = %name, id = %bundle.id_hex(), "circuit loaded");
            return Ok(Loaded::Circuit {
                bundle,
                circuit: Box::new(circuit),
            });
        }
        let model = TextModel::load_with(&bundle, options)
            .with_context(|| format!("cannot load model '{name}'"))?;
        tracing::info!(model = %name, id = %bundle.id_hex(), engine = %model.engine(), device = %model.device(), "model loaded");
        Ok(Loaded::Network {
            bundle,
            model: Box::new(model),
        })
    }

    /// Loads the model a stream needs: `explicit` (`-m`) if given, else the embedded model whose
    /// id the stream names, else an error that says which model to pass.
    pub fn for_stream(
        header: &Header,
        explicit: Option<&str>,
        options: LoadOptions,
    ) -> Result<Loaded> {
        if let Some(name) = explicit {
            return Loaded::load(Some(name), options);
        }
        if header.codec == Codec::Stored || header.model_id == 0 {
            return Ok(Loaded::None);
        }
        for bundle in shipped_bundles()? {
            if bundle.id() == header.model_id {
                return Loaded::from_bundle(bundle, options);
            }
        }
        bail!(
            "stream needs model '{}' (id {:032x}), which is not embedded in this binary; pass -m PATH",
            header.model_name,
            header.model_id
        )
    }

    /// A text codec over this model; an error for an image model.
    pub fn codec(&self) -> Result<TextCodec<'_>> {
        match self {
            Loaded::Network { bundle, model } => Ok(TextCodec::new(
                model.as_ref(),
                bundle.id(),
                &bundle.manifest().name,
            )),
            Loaded::Circuit { bundle, .. } => bail!(
                "model '{}' is an image model (a probabilistic circuit); it codes images only",
                bundle.manifest().name
            ),
            Loaded::None => Ok(TextCodec::without_network()),
        }
    }

    /// Whether the model's manifest asks for the `text-nn` codec (provenance `codec: text-nn`,
    /// as the models made for microcontrollers do).
    pub fn prefers_nn(&self) -> bool {
        match self {
            Loaded::Network { bundle, .. } => bundle
                .manifest()
                .provenance
                .iter()
                .any(|(k, v)| k == "codec" && v == "text-nn"),
            _ => false,
        }
    }

    /// The model's id (0 for none).
    pub fn id(&self) -> u128 {
        match self {
            Loaded::Network { bundle, .. } | Loaded::Circuit { bundle, .. } => bundle.id(),
            Loaded::None => 0,
        }
    }
}

/// Every model embedded in the binary.
pub fn shipped_bundles() -> Result<Vec<Bundle>> {
    shipped::shipped()
        .iter()
        .map(|s| {
            s.bundle()
                .with_context(|| format!("embedded model '{}' is corrupted", s.name()))
        })
        .collect()
}
