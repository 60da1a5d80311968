//! Writing the layout blob: its head and the length-prefixed parts every format appends.

use crate::types::{ImageError, ImageFormat, LAYOUT_VERSION};

pub(crate) fn layout_head(format: ImageFormat, count: u32, height: u32, width: u32) -> Vec<u8> {
    let mut layout = vec![LAYOUT_VERSION, format.code()];
    for n in [count, height, width] {
        push_u32(&mut layout, n);
    }
    layout
}

pub(crate) fn push_u32(layout: &mut Vec<u8>, n: u32) {
    layout.extend_from_slice(&n.to_le_bytes());
}

pub(crate) fn push_len(
    layout: &mut Vec<u8>,
    len: usize,
    format: ImageFormat,
) -> Result<(), ImageError> {
    let len = u32::try_from(len).map_err(|_| ImageError::Malformed {
        format,
        reason: format!("a part of {len} bytes is too large to store"),
    })?;
    push_u32(layout, len);
    Ok(())
}
