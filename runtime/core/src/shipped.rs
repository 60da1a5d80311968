//! Models embedded in the binary, and name-or-path resolution for the command line.
//!
//! The bundles in `models/*.arcm` listed here are compiled in with [`arca_bundle::include_bundle!`]
//! (64-byte aligned, used in place), so `arca` works with no model files around.
//!
//! ```
//! use arca_runtime::shipped;
//!
//! assert!(shipped::shipped().iter().any(|m| m.name() == shipped::default_compressor()));
//! let bundle = shipped::resolve("text-small")?;
//! assert!(bundle.manifest().context_len > 0);
//! let err = shipped::resolve("no-such-model").map(|_| ()).err().map(|e| e.to_string());
//! assert!(err.is_some_and(|e| e.contains("text-small")));
//! # Ok::<(), arca_runtime::bundle::BundleError>(())
//! ```

use std::path::Path;

use arca_bundle::{Bundle, BundleError};

/// A model compiled into the binary.
#[derive(Debug)]
pub struct ShippedModel {
    name: &'static str,
    bytes: &'static [u8],
}

impl ShippedModel {
    /// The name to pass to [`resolve`] (`text-small`).
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

/// Every model this build embeds. Without tract (the native-only board builds) only what the
/// native engine runs is embedded: the arithmetic models are float transformers that need tract.
static SHIPPED: &[ShippedModel] = &[
    ShippedModel {
        name: "text-small",
        bytes: arca_bundle::include_bundle!("../../../models/text-small.arcm"),
    },
    ShippedModel {
        name: "text-embedded",
        bytes: arca_bundle::include_bundle!("../../../models/text-embedded.arcm"),
    },
    #[cfg(feature = "tract")]
    ShippedModel {
        name: "arith-add-padrev",
        bytes: arca_bundle::include_bundle!("../../../models/arith/trained/arith-add-padrev.arcm"),
    },
    #[cfg(feature = "tract")]
    ShippedModel {
        name: "arith-mul-padrev",
        bytes: arca_bundle::include_bundle!("../../../models/arith/trained/arith-mul-padrev.arcm"),
    },
];

/// Every model compiled into this build.
pub fn shipped() -> &'static [ShippedModel] {
    SHIPPED
}

/// The model `arca` compresses with when none is named.
pub fn default_compressor() -> &'static str {
    "text-small"
}

/// The embedded arithmetic model `arca arith` uses for a task (`add`, `mul`), if any.
pub fn default_arith(task: &str) -> Option<&'static str> {
    DEFAULT_ARITH
        .iter()
        .find(|(t, _)| *t == task)
        .map(|(_, name)| *name)
}

/// (task, shipped model name).
#[cfg(feature = "tract")]
const DEFAULT_ARITH: [(&str, &str); 2] = [("add", "arith-add-padrev"), ("mul", "arith-mul-padrev")];
#[cfg(not(feature = "tract"))]
const DEFAULT_ARITH: [(&str, &str); 0] = [];

/// Opens `name_or_path`: a bundle file if it exists, contains a path separator or ends with
/// `.arcm`; otherwise a shipped model by name.
pub fn resolve(name_or_path: &str) -> Result<Bundle, BundleError> {
    let path = Path::new(name_or_path);
    let looks_like_path = name_or_path.contains('/')
        || name_or_path.contains(std::path::MAIN_SEPARATOR)
        || name_or_path.ends_with(".arcm");
    if looks_like_path || path.exists() {
        return Bundle::open(path);
    }
    match SHIPPED.iter().find(|m| m.name == name_or_path) {
        Some(m) => m.bundle(),
        None => Err(BundleError::UnknownModel {
            name: name_or_path.to_owned(),
            available: SHIPPED
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_open_in_place() -> Result<(), BundleError> {
        for m in shipped() {
            assert_eq!(m.bytes().as_ptr() as usize % arca_bundle::TENSOR_ALIGN, 0);
            let b = m.bundle()?;
            assert_eq!(
                b.as_bytes().as_ptr(),
                m.bytes().as_ptr(),
                "{} was copied",
                m.name()
            );
        }
        Ok(())
    }

    #[test]
    fn resolve_names_and_paths() -> Result<(), BundleError> {
        let by_name = resolve("text-small")?;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/text-small.arcm");
        assert_eq!(resolve(path)?.id(), by_name.id());
        assert!(matches!(
            resolve("missing.arcm"),
            Err(BundleError::Io { .. })
        ));
        match resolve("text-huge") {
            Err(BundleError::UnknownModel { available, .. }) => {
                assert!(available.starts_with("text-small"), "{available}");
            }
            other => panic!("expected UnknownModel, got {other:?}"),
        }
        Ok(())
    }
}
