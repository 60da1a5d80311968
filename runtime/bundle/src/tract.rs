//! tract reading a bundled graph's weights from the payload (feature `tract`): one resolver
//! for every crate that runs a bundle's ONNX graph in tract (arca-runtime's engine, arca-hf).
//!
//! tract joins an external data location to the model's directory and canonicalizes the result
//! before it calls the resolver, so that directory must exist. Bundled graphs therefore use
//! location [`PAYLOAD_LOCATION`](crate::PAYLOAD_LOCATION) only (each caller checks its graph
//! first), are parsed against [`anchor_dir`], and [`PayloadResolver`] ignores the path.

use std::path::{Path, PathBuf};

use tract_onnx::data_resolver::ModelDataResolver;
use tract_onnx::prelude::TractResult;
use tract_onnx::prelude::tract_data::internal::TractErrorContext;

use crate::Bundle;

/// Reads initializers' external data from a bundle's payload, by offset and length.
pub struct PayloadResolver {
    bundle: Bundle,
}

impl PayloadResolver {
    /// A resolver over `bundle`'s payload.
    pub fn new(bundle: Bundle) -> PayloadResolver {
        PayloadResolver { bundle }
    }
}

impl ModelDataResolver for PayloadResolver {
    fn read_bytes_from_path(
        &self,
        buf: &mut Vec<u8>,
        _path: &Path,
        offset: usize,
        length: Option<usize>,
    ) -> TractResult<()> {
        let payload = self.bundle.payload();
        let length = length.context("external data without a length")?;
        let end = offset
            .checked_add(length)
            .context("external data offset + length overflows")?;
        let bytes = payload.get(offset..end).with_context(|| {
            format!(
                "external data {offset}..{end} is outside the {}-byte payload",
                payload.len()
            )
        })?;
        buf.extend_from_slice(bytes);
        Ok(())
    }
}

/// The directory tract joins the payload's location to: one that always exists.
pub fn anchor_dir() -> PathBuf {
    if cfg!(unix) {
        PathBuf::from("/")
    } else {
        std::env::temp_dir()
    }
}
