//! tract reading a bundled graph's weights from the payload (feature `tract`): one resolver
//! for every crate that runs a bundle's ONNX graph in tract (arca-runtime's engine, arca-hf);
//! and [`ExternalFiles`], the reader of a graph's external data files that both packers
//! (arca-codegen's and arca-hf's) use.
//!
//! tract joins an external data location to the model's directory and canonicalizes the result
//! before it calls the resolver, so that directory must exist. Bundled graphs therefore use
//! location [`PAYLOAD_LOCATION`](crate::PAYLOAD_LOCATION) only (each caller checks its graph
//! first), are parsed against [`anchor_dir`], and [`PayloadResolver`] ignores the path.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use tract_onnx::data_resolver::ModelDataResolver;
use tract_onnx::pb;
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

/// The external data files an ONNX graph's tensors point to (`model.onnx_data`, or one file per
/// tensor), read from the graph's directory once each: what packing a graph into a bundle
/// (`arca pack`) reads its weights from.
pub struct ExternalFiles<'a> {
    dir: &'a Path,
    files: HashMap<String, Vec<u8>>,
}

impl<'a> ExternalFiles<'a> {
    /// The files beside a graph in `dir`.
    pub fn new(dir: &'a Path) -> Self {
        ExternalFiles {
            dir,
            files: HashMap::new(),
        }
    }

    /// The bytes of tensor `t`'s external data. Errors are predicates of the graph
    /// ("has tensor 'w' whose external data ..."), for the caller to name the file; a location
    /// outside the directory is refused.
    pub fn read(&mut self, t: &pb::TensorProto) -> Result<Vec<u8>, String> {
        let get = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
        };
        let location = get("location")
            .ok_or_else(|| format!("has tensor '{}' with external data but no location", t.name))?;
        let number = |key: &str| -> Result<Option<usize>, String> {
            get(key).map(str::parse::<usize>).transpose().map_err(|e| {
                format!(
                    "has tensor '{}' with a bad external data {key}: {e}",
                    t.name
                )
            })
        };
        let offset = number("offset")?.unwrap_or(0);
        let length = number("length")?;
        let rel = Path::new(location);
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "has tensor '{}' whose external data {location:?} is not a file inside the model directory",
                t.name
            ));
        }
        if !self.files.contains_key(location) {
            let path = self.dir.join(rel);
            let data = std::fs::read(&path).map_err(|e| {
                format!(
                    "has external data {} that cannot be read: {e}",
                    path.display()
                )
            })?;
            self.files.insert(location.to_owned(), data);
        }
        let file = self
            .files
            .get(location)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let end = match length {
            Some(len) => offset.checked_add(len),
            None => Some(file.len()),
        };
        end.and_then(|end| file.get(offset..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                format!(
                    "has tensor '{}' whose external data {offset}+{length:?} is outside {location} ({} bytes)",
                    t.name,
                    file.len()
                )
            })
    }
}
