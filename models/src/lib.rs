//! The trained models arca ships, compiled into the binary.
//!
//! Each model is an `.arcm` bundle embedded with [`arca_bundle::include_bundle!`]: 64-byte
//! aligned, so [`Model::bundle`] checks it once and uses the bytes in place (no copy, no file to
//! find at run time). The models are in a crate of their own so that a program using the runtime
//! as a library need not carry 10 MB of weights: `arca-runtime`'s `models` feature (on by
//! default) embeds them, and without it models are opened from files.
//!
//! | feature | models | size |
//! | --- | --- | ---: |
//! | `text` | [`TEXT_SMALL`] (the default compressor), [`TEXT_EMBEDDED`] (the Cortex-M model), [`TEXT_SMALL_V1`] and [`TEXT_EMBEDDED_V1`] (their first versions, for old streams) | 7.2 MB |
//! | `arith` | [`ARITH_ADD_PADREV`], [`ARITH_MUL_PADREV`] (need tract to run) | 6.5 MB |
//!
//! How each was trained, and what it measures, is in the model cards (`README.md`).
//!
//! ```
//! # #[cfg(feature = "text")] {
//! let bundle = arca_models::TEXT_SMALL.bundle()?;
//! assert_eq!(arca_models::TEXT_SMALL.name(), "text-small");
//! assert!(bundle.manifest().context_len > 0);
//! # }
//! # Ok::<(), arca_bundle::BundleError>(())
//! ```

use arca_bundle::{Bundle, BundleError};

/// A model compiled into the binary: its name and its `.arcm` bytes.
#[derive(Debug)]
pub struct Model {
    name: &'static str,
    bytes: &'static [u8],
}

impl Model {
    /// The model's name (`text-small`), as `arca --model` takes it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The embedded `.arcm` bytes (64-byte aligned).
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// Checks and opens the embedded bundle (no copy).
    pub fn bundle(&self) -> Result<Bundle, BundleError> {
        Bundle::from_static(self.bytes)
    }
}

/// The default text compressor: a byte-level, integer-exact MLP over the 32 previous bytes.
#[cfg(feature = "text")]
pub static TEXT_SMALL: Model = Model {
    name: "text-small",
    bytes: arca_bundle::include_bundle!("../text-small.arcm"),
};

/// The first text-small (2026-11-26, trained on books only), kept so that streams written with
/// it still decode: a decoder finds it by the model id in the stream. It is not offered for
/// compressing (`arca` writes with [`TEXT_SMALL`]).
#[cfg(feature = "text")]
pub static TEXT_SMALL_V1: Model = Model {
    name: "text-small-v1",
    bytes: arca_bundle::include_bundle!("../legacy/text-small-v1.arcm"),
};

/// The microcontroller text model (`text-nn` codec, decoded on a Cortex-M4).
#[cfg(feature = "text")]
pub static TEXT_EMBEDDED: Model = Model {
    name: "text-embedded",
    bytes: arca_bundle::include_bundle!("../text-embedded.arcm"),
};

/// The first text-embedded (2026-12-01, trained on books only), kept so that `text-nn` streams
/// written with it still decode: a decoder finds it by the model id in the stream. It is not
/// offered for compressing (`arca` writes with [`TEXT_EMBEDDED`]).
#[cfg(feature = "text")]
pub static TEXT_EMBEDDED_V1: Model = Model {
    name: "text-embedded-v1",
    bytes: arca_bundle::include_bundle!("../legacy/text-embedded-v1.arcm"),
};

/// Addition in the padded and reversed format (a float transformer; runs in tract).
#[cfg(feature = "arith")]
pub static ARITH_ADD_PADREV: Model = Model {
    name: "arith-add-padrev",
    bytes: arca_bundle::include_bundle!("../arith/trained/arith-add-padrev.arcm"),
};

/// Multiplication in the padded and reversed format (a float transformer; runs in tract).
#[cfg(feature = "arith")]
pub static ARITH_MUL_PADREV: Model = Model {
    name: "arith-mul-padrev",
    bytes: arca_bundle::include_bundle!("../arith/trained/arith-mul-padrev.arcm"),
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every model this build has.
    fn all() -> Vec<&'static Model> {
        let mut all = Vec::new();
        #[cfg(feature = "text")]
        all.extend([&TEXT_SMALL, &TEXT_EMBEDDED]);
        #[cfg(feature = "arith")]
        all.extend([&ARITH_ADD_PADREV, &ARITH_MUL_PADREV]);
        all
    }

    #[test]
    fn models_open_in_place_under_their_names() -> Result<(), BundleError> {
        for m in all() {
            assert_eq!(m.bytes().as_ptr() as usize % arca_bundle::TENSOR_ALIGN, 0);
            let b = m.bundle()?;
            assert_eq!(
                b.as_bytes().as_ptr(),
                m.bytes().as_ptr(),
                "{} was copied",
                m.name()
            );
            assert_eq!(b.manifest().name, m.name());
        }
        Ok(())
    }
}
