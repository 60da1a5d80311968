//! A generation model as the CLI loads it for `generate`, `bench-generate` and `serve`: the
//! decoder factory (one cache per generation) and the tokenizer, whatever runs it.
//!
//! - A `.arcm` generation bundle (`target`/`draft`, an embedded model's name too) runs on
//!   arca-generate's native f32 decoder.
//! - A model directory as optimum exports it (`model.onnx`, `config.json`, `tokenizer.json`), or
//!   an `hf-decoder` bundle packed from one (`arca pack DIR`), runs in tract (arca-hf).
//! - A Llama-family directory that also holds `model.safetensors` (what `save_pretrained`
//!   writes), or a native Llama bundle (`arca pack DIR --weights f32|f16|int8`), runs on
//!   arca-generate's native Llama path, weights read in place in their precision.
//!
//! `--engine auto` takes the native path where there is one (a Llama directory with its
//! safetensors, a native Llama bundle) and tract for the other directories; `--engine tract` and
//! `--engine native` force one and are refused with the reason where it cannot run the model.
//! Directories and their bundles need the `tract` feature (their tokenizer.json is read by
//! arca-hf).

use std::path::Path;

use anyhow::{Context, Result, bail};
use arca_generate::{self as generate, Decoder, LlamaModel, Net, TextTokenizer, Tokenizer};
#[cfg(feature = "tract")]
use arca_generate::{LlamaDecoder, Precision};
use arca_runtime::Engine;
use arca_runtime::bundle::{Bundle, ModelKind};
use arca_runtime::shipped;
#[cfg(feature = "tract")]
use std::sync::Arc;

enum Runner {
    /// A native generation bundle.
    Native {
        bundle: Bundle,
        net: Box<Net>,
        tokenizer: Tokenizer,
    },
    /// A Llama on the native path (from a directory's safetensors or a native Llama bundle).
    #[cfg(feature = "tract")]
    Llama {
        model: Arc<LlamaModel>,
        tokenizer: Box<arca_hf::HfTokenizer>,
    },
    /// A standard decoder export in tract.
    #[cfg(feature = "tract")]
    Hf {
        model: arca_hf::HfModel,
        tokenizer: Box<arca_hf::HfTokenizer>,
    },
}

/// A loaded target or draft.
pub struct GenModel {
    name: String,
    runner: Runner,
}

impl GenModel {
    /// Loads `spec` (an embedded model's name, a `.arcm` path, or a model directory) for
    /// `engine`.
    ///
    /// # Errors
    ///
    /// When it cannot be read, is not a generation model, or `engine` cannot run it.
    pub fn load(spec: &str, engine: Engine) -> Result<GenModel> {
        GenModel::open(spec, engine, None)
    }

    /// Loads `spec` as a draft for this target, refusing one that does not share its tokens
    /// (for native bundles, from the two manifests, before any weight is read).
    ///
    /// # Errors
    ///
    /// As [`GenModel::load`], and naming both models and what differs.
    pub fn load_draft(&self, spec: &str, engine: Engine) -> Result<GenModel> {
        let draft =
            GenModel::open(spec, engine, Some(self)).with_context(|| format!("draft '{spec}'"))?;
        self.check_draft(&draft)?;
        Ok(draft)
    }

    fn open(spec: &str, engine: Engine, target: Option<&GenModel>) -> Result<GenModel> {
        let ctx = || format!("cannot load model '{spec}'");
        let path = Path::new(spec);
        if path.is_dir() {
            return GenModel::load_hf(path, None, engine).with_context(ctx);
        }
        let bundle = shipped::resolve(spec).with_context(ctx)?;
        if bundle.manifest().kind == ModelKind::HfDecoder || LlamaModel::is_bundle(&bundle) {
            return GenModel::load_hf(path, Some(bundle), engine).with_context(ctx);
        }
        if engine == Engine::Tract {
            bail!(
                "--engine tract cannot run '{spec}': a .arcm generation bundle runs on the native f32 decoder (tract runs model directories exported by optimum and the hf-decoder bundles `arca pack DIR` makes); use --engine native or auto"
            );
        }
        if let Some(target) = target.and_then(GenModel::bundle) {
            generate::check_pair(target, &bundle)?;
        }
        let net = Box::new(Net::load(&bundle).with_context(ctx)?);
        let tokenizer = Tokenizer::of(&bundle).with_context(ctx)?;
        Ok(GenModel {
            name: net.name().to_owned(),
            runner: Runner::Native {
                bundle,
                net,
                tokenizer,
            },
        })
    }

    /// A model directory (`bundle` None), an `hf-decoder` bundle or a native Llama bundle.
    #[cfg(feature = "tract")]
    fn load_hf(path: &Path, bundle: Option<Bundle>, engine: Engine) -> Result<GenModel> {
        let spec = path.display();
        let native_bundle = bundle.as_ref().is_some_and(LlamaModel::is_bundle);
        let native_dir = bundle.is_none()
            && path.join("model.safetensors").is_file()
            && arca_hf::HfConfig::from_file(&path.join("config.json"))
                .is_ok_and(|c| c.model_type() == "llama");
        let source = match bundle {
            Some(b) => arca_hf::ModelSource::Bundle(path.to_owned(), b),
            None => arca_hf::ModelSource::Dir(path.to_owned()),
        };
        if native_bundle || (native_dir && engine != Engine::Tract) {
            if engine == Engine::Tract {
                bail!(
                    "--engine tract cannot run '{spec}': a native Llama bundle holds no graph (tract runs the model directory, or the bundle `arca pack DIR` makes without --weights)"
                );
            }
            let model = match &source {
                arca_hf::ModelSource::Bundle(_, b) => LlamaModel::from_bundle(b)?,
                arca_hf::ModelSource::Dir(dir) => LlamaModel::from_dir(dir, Precision::F32)?,
            };
            let config = arca_hf::HfConfig::of_source(&source)?;
            let tokenizer = arca_hf::HfTokenizer::of_source(&source, &config)?;
            return Ok(GenModel {
                name: model.name().to_owned(),
                runner: Runner::Llama {
                    model: Arc::new(model),
                    tokenizer: Box::new(tokenizer),
                },
            });
        }
        if engine == Engine::Native {
            bail!(
                "--engine native runs the Llama family from a directory with model.safetensors, or a bundle packed with --weights; '{spec}' has neither (tract runs it: --engine tract or auto)"
            );
        }
        let model = arca_hf::HfModel::from_source(source)?;
        let tokenizer = Box::new(model.tokenizer()?);
        Ok(GenModel {
            name: model.name().to_owned(),
            runner: Runner::Hf { model, tokenizer },
        })
    }

    #[cfg(not(feature = "tract"))]
    fn load_hf(_path: &Path, _bundle: Option<Bundle>, _engine: Engine) -> Result<GenModel> {
        bail!(
            "this arca was built without tract (--no-default-features), which model directories, hf-decoder bundles and native Llama bundles need (their tokenizer.json is read by arca-hf); rebuild with the default features"
        )
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parameters (weights counted one by one).
    pub fn parameters(&self) -> u64 {
        match &self.runner {
            Runner::Native { net, .. } => net.config().parameters() as u64,
            #[cfg(feature = "tract")]
            Runner::Llama { model, .. } => model.config().parameters() as u64,
            #[cfg(feature = "tract")]
            Runner::Hf { model, .. } => model.spec().parameters(),
        }
    }

    /// How a draft was made (a native draft's manifest says: `kd`, `adaspec`...), else its name.
    pub fn label(&self) -> &str {
        match &self.runner {
            Runner::Native { net, .. } => net.distill().unwrap_or(&self.name),
            #[cfg(feature = "tract")]
            Runner::Llama { .. } | Runner::Hf { .. } => &self.name,
        }
    }

    /// What runs it, for statistics.
    pub fn engine(&self) -> &'static str {
        match &self.runner {
            Runner::Native { .. } => "native f32",
            #[cfg(feature = "tract")]
            Runner::Llama { model, .. } => match model.precision() {
                Precision::F32 => "native Llama f32",
                Precision::F16 => "native Llama f16",
                Precision::Int8 => "native Llama int8",
            },
            #[cfg(feature = "tract")]
            Runner::Hf { .. } => "tract",
        }
    }

    /// A fresh decoding state (an empty cache).
    pub fn decoder(&self) -> Box<dyn Decoder + '_> {
        match &self.runner {
            Runner::Native { net, .. } => Box::new(net.decoder()),
            #[cfg(feature = "tract")]
            Runner::Llama { model, .. } => Box::new(LlamaDecoder::new(Arc::clone(model))),
            #[cfg(feature = "tract")]
            Runner::Hf { model, .. } => Box::new(model.session()),
        }
    }

    /// Its tokenizer.
    pub fn tokenizer(&self) -> &dyn TextTokenizer {
        match &self.runner {
            Runner::Native { tokenizer, .. } => tokenizer,
            #[cfg(feature = "tract")]
            Runner::Llama { tokenizer, .. } => tokenizer.as_ref(),
            #[cfg(feature = "tract")]
            Runner::Hf { tokenizer, .. } => tokenizer.as_ref(),
        }
    }

    /// The native bundle, for what only those have (arithmetic specs, manifests).
    pub fn bundle(&self) -> Option<&Bundle> {
        match &self.runner {
            Runner::Native { bundle, .. } => Some(bundle),
            #[cfg(feature = "tract")]
            Runner::Llama { .. } | Runner::Hf { .. } => None,
        }
    }

    /// Refuses a draft that does not share this target's tokens (two native bundles were
    /// compared by their manifests in [`GenModel::open`]; the others by their tokenizers).
    fn check_draft(&self, draft: &GenModel) -> Result<()> {
        if self.bundle().is_some() && draft.bundle().is_some() {
            return Ok(());
        }
        let (t, d) = (self.tokenizer(), draft.tokenizer());
        if t.vocab() != d.vocab() || t.fingerprint() != d.fingerprint() {
            bail!(
                "draft '{}' ({}) does not share target '{}''s tokenizer ({}): a draft must propose the target's tokens",
                draft.name,
                d.describe(),
                self.name,
                t.describe()
            );
        }
        Ok(())
    }
}
