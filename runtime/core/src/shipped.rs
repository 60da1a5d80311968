//! Models embedded in the binary, and name-or-path resolution for the command line.
//!
//! The bundles come from the `arca-models` crate (compiled in with
//! [`arca_bundle::include_bundle!`], 64-byte aligned, used in place), so `arca` works with no
//! model files around. They are behind this crate's `models` feature (on by default): without
//! it [`shipped`] is empty and [`resolve`] opens files only.
//!
//! ```
//! use arca_runtime::shipped;
//!
//! # if cfg!(feature = "models") {
//! assert!(shipped::shipped().iter().any(|m| m.name() == shipped::default_compressor()));
//! let bundle = shipped::resolve("text-small")?;
//! assert!(bundle.manifest().context_len > 0);
//! # }
//! let err = shipped::resolve("no-such-model").map(|_| ()).err().map(|e| e.to_string());
//! assert!(err.is_some_and(|e| e.contains("no-such-model")));
//! # Ok::<(), arca_runtime::bundle::BundleError>(())
//! ```

use std::path::Path;

use arca_bundle::{Bundle, BundleError};

/// A model compiled into the binary (its name, its bytes, [`ShippedModel::bundle`]).
pub use arca_models::Model as ShippedModel;

/// Every model this build embeds. Without tract (the native-only board builds) only what the
/// native engine runs is listed (and linked): the arithmetic models are float transformers that
/// need tract.
static SHIPPED: &[&ShippedModel] = &[
    #[cfg(feature = "models")]
    &arca_models::TEXT_SMALL,
    #[cfg(feature = "models")]
    &arca_models::TEXT_EMBEDDED,
    #[cfg(feature = "models")]
    &arca_models::TEXT_SMALL_V1,
    #[cfg(feature = "models")]
    &arca_models::TEXT_EMBEDDED_V1,
    #[cfg(all(feature = "models", feature = "tract"))]
    &arca_models::ARITH_ADD_PADREV,
    #[cfg(all(feature = "models", feature = "tract"))]
    &arca_models::ARITH_MUL_PADREV,
];

/// Every model compiled into this build (none without the `models` feature).
pub fn shipped() -> &'static [&'static ShippedModel] {
    SHIPPED
}

/// The model `arca` compresses with when none is named.
pub fn default_compressor() -> &'static str {
    "text-small"
}

/// The embedded arithmetic model `arca arith` uses for a task (`add`, `mul`), if this build
/// embeds one.
pub fn default_arith(task: &str) -> Option<&'static str> {
    let name = match task {
        "add" => "arith-add-padrev",
        "mul" => "arith-mul-padrev",
        _ => return None,
    };
    SHIPPED.iter().any(|m| m.name() == name).then_some(name)
}

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
    match SHIPPED.iter().find(|m| m.name() == name_or_path) {
        Some(m) => m.bundle(),
        None if SHIPPED.is_empty() => Err(BundleError::UnknownModel {
            name: name_or_path.to_owned(),
            available: "none (this build embeds no models: arca-runtime's `models` feature is \
                        off)"
                .to_owned(),
        }),
        None => Err(BundleError::UnknownModel {
            name: name_or_path.to_owned(),
            available: SHIPPED
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(all(test, feature = "models"))]
mod tests {
    use super::*;

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

#[cfg(all(test, not(feature = "models")))]
mod tests_without_models {
    use super::*;

    #[test]
    fn names_are_refused_saying_why() {
        assert!(shipped().is_empty());
        assert_eq!(default_arith("add"), None);
        match resolve("text-small") {
            Err(e @ BundleError::UnknownModel { .. }) => {
                assert!(e.to_string().contains("`models` feature"), "{e}");
            }
            other => panic!("expected UnknownModel, got {other:?}"),
        }
    }
}
