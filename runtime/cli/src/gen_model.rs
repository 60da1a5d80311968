//! A generation model as the CLI loads it for `generate`, `bench-generate` and `serve`: the
//! decoder factory (one cache per generation) and the tokenizer, whatever runs it.

use anyhow::{Context, Result};
use arca_generate::{self as generate, Decoder, Net, TextTokenizer, Tokenizer};
use arca_runtime::bundle::Bundle;
use arca_runtime::shipped;

/// A loaded target or draft.
pub struct GenModel {
    name: String,
    bundle: Bundle,
    net: Net,
    tokenizer: Tokenizer,
}

impl GenModel {
    /// Loads `spec`: an embedded model's name or a `.arcm` path.
    ///
    /// # Errors
    ///
    /// When it cannot be read or is not a generation model.
    pub fn load(spec: &str) -> Result<GenModel> {
        let ctx = || format!("cannot load model '{spec}'");
        let bundle = shipped::resolve(spec).with_context(ctx)?;
        let net = Net::load(&bundle).with_context(ctx)?;
        let tokenizer = Tokenizer::of(&bundle).with_context(ctx)?;
        Ok(GenModel {
            name: net.name().to_owned(),
            bundle,
            net,
            tokenizer,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh decoding state (an empty cache).
    pub fn decoder(&self) -> Box<dyn Decoder + '_> {
        Box::new(self.net.decoder())
    }

    /// Its tokenizer.
    pub fn tokenizer(&self) -> &dyn TextTokenizer {
        &self.tokenizer
    }

    /// Refuses a draft that does not share this target's tokens.
    ///
    /// # Errors
    ///
    /// Naming both models and what differs.
    pub fn check_draft(&self, draft: &GenModel) -> Result<()> {
        generate::check_pair(&self.bundle, &draft.bundle)?;
        Ok(())
    }
}
