//! Finding and loading models: embedded ones by name or id, bundles by path, or none. The
//! models themselves ([`Model`]) and what a stream needs of them are the library's; this file
//! only turns `-m` into a model, with the command line's messages.

use anyhow::{Context, Result, bail};
use arca_runtime::bundle::Bundle;
use arca_runtime::container::{Codec, Header};
use arca_runtime::engine::{LoadOptions, ModelError};
use arca_runtime::{Model, ModelSource, shipped};

/// The `-m` value that selects no network: the context models alone.
pub const NO_NETWORK: &str = "none";

/// Loads the model named by `-m` (an embedded model's name, a bundle path, or `none`), or the
/// default compressor when `name` is `None`.
pub fn load(name: Option<&str>, options: LoadOptions) -> Result<Model> {
    let bundle = match name {
        Some(NO_NETWORK) => return Ok(Model::None),
        Some(name) => {
            shipped::resolve(name).with_context(|| format!("cannot load model '{name}'"))?
        }
        None => {
            let name = shipped::default_compressor();
            shipped::resolve(name)
                .with_context(|| format!("cannot load the default model '{name}'"))?
        }
    };
    from_bundle(bundle, options)
}

/// Builds the network (or circuit) of `bundle`.
pub fn from_bundle(bundle: Bundle, options: LoadOptions) -> Result<Model> {
    let name = bundle.manifest().name.clone();
    let model =
        Model::load(bundle, options).with_context(|| format!("cannot load model '{name}'"))?;
    match &model {
        Model::Network { bundle, network } => {
            tracing::info!(model = %name, id = %bundle.id_hex(), engine = %network.engine(), device = %network.device(), "model loaded");
        }
        Model::Circuit { bundle, .. } => {
            tracing::info!(model = %name, id = %bundle.id_hex(), "circuit loaded");
        }
        Model::None => {}
    }
    Ok(model)
}

/// Loads the model a stream needs: `explicit` (`-m`) if given, else the embedded model whose id
/// the stream names, else an error that says which model to pass.
fn for_stream(header: &Header, explicit: Option<&str>, options: LoadOptions) -> Result<Model> {
    if let Some(name) = explicit {
        return load(Some(name), options);
    }
    if header.codec == Codec::Stored || header.model_id == 0 {
        return Ok(Model::None);
    }
    for bundle in shipped_bundles()? {
        if bundle.id() == header.model_id {
            return from_bundle(bundle, options);
        }
    }
    bail!(
        "stream needs model '{}' (id {:032x}), which is not embedded in this binary; pass -m PATH",
        header.model_name,
        header.model_id
    )
}

/// The models loaded so far, so several streams made with one model load it once: the
/// [`ModelSource`] of `arca decompress` and `arca test`.
pub struct ModelCache {
    explicit: Option<String>,
    options: LoadOptions,
    models: Vec<Model>,
}

impl ModelCache {
    /// A cache that answers with `explicit` (`-m`) for every stream if given, else with the
    /// embedded model each stream names.
    pub fn new(explicit: Option<&str>, options: LoadOptions) -> Self {
        ModelCache {
            explicit: explicit.map(str::to_owned),
            options,
            models: Vec::new(),
        }
    }
}

impl ModelCache {
    /// The model for a stream with `header`, loaded on first use.
    fn get(&mut self, header: &Header) -> Result<&Model> {
        let found = if self.explicit.is_some() {
            // One explicit model serves every stream; mismatches are the codec's to report.
            (!self.models.is_empty()).then_some(0)
        } else {
            self.models.iter().position(|m| m.id() == header.model_id)
        };
        let index = match found {
            Some(i) => i,
            None => {
                self.models
                    .push(for_stream(header, self.explicit.as_deref(), self.options)?);
                self.models.len() - 1
            }
        };
        Ok(&self.models[index])
    }
}

impl ModelSource for ModelCache {
    fn model_for(&mut self, header: &Header) -> Result<&Model, ModelError> {
        self.get(header).map_err(Into::into)
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
