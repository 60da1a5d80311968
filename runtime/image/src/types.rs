//! The crate's types and errors, shared by every format.

use thiserror::Error;

/// Version of the layout blob this build writes and reads.
pub(crate) const LAYOUT_VERSION: u8 = 1;
/// Bytes of the layout before the format-specific part.
pub(crate) const LAYOUT_HEAD: usize = 14;

/// Most bytes of pixels that gzip or PNG input may decompress to (1 GiB): a guard against
/// decompression bombs. Uncompressed input (idx, PGM) has no such limit.
pub const MAX_DECODED_BYTES: usize = 1 << 30;

/// The file formats [`parse`](crate::parse) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// MNIST idx, unsigned bytes, 3 dimensions (raw, or gzip on input).
    Idx,
    /// Binary PGM (`P5`), maxval 255.
    Pgm,
    /// PNG, 8-bit grayscale.
    Png,
}

impl ImageFormat {
    pub(crate) fn code(self) -> u8 {
        match self {
            ImageFormat::Idx => 1,
            ImageFormat::Pgm => 2,
            ImageFormat::Png => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ImageFormat::Idx),
            2 => Some(ImageFormat::Pgm),
            3 => Some(ImageFormat::Png),
            _ => None,
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Idx => "idx",
            ImageFormat::Pgm => "pgm",
            ImageFormat::Png => "png",
        })
    }
}

/// What goes wrong reading an image file or rebuilding one. Each message names the sizes or
/// bytes involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The input has no bytes.
    #[error("empty input: no image data")]
    Empty,
    /// The first bytes are none of the formats this crate reads.
    #[error(
        "unrecognized image format (first bytes: {head}); expected an MNIST idx file (raw or \
         gzip), a binary PGM (P5) or a PNG"
    )]
    UnknownFormat {
        /// The first bytes, in hex.
        head: String,
    },
    /// A well-formed file of a kind that is not coded: color, another bit depth, ASCII PGM, an
    /// idx labels file, an animated PNG.
    #[error("{reason}")]
    Unsupported {
        /// The format detected.
        format: ImageFormat,
        /// What it is, and what is supported.
        reason: String,
    },
    /// The sizes a header announces disagree with the file's length: truncated, or bytes past
    /// the end.
    #[error("{reason}")]
    Length {
        /// The format detected.
        format: ImageFormat,
        /// The sizes involved.
        reason: String,
    },
    /// The file is damaged or not well-formed.
    #[error("malformed {format} file: {reason}")]
    Malformed {
        /// The format detected.
        format: ImageFormat,
        /// What is wrong, and where.
        reason: String,
    },
    /// Decompressed pixels would exceed [`MAX_DECODED_BYTES`].
    #[error("{what} needs {bytes} bytes, more than the limit of {MAX_DECODED_BYTES} bytes")]
    TooLarge {
        /// What is that large.
        what: String,
        /// Its size.
        bytes: u128,
    },
    /// The gzip stream is corrupt.
    #[error("corrupt gzip stream: {0}")]
    Gzip(#[source] std::io::Error),
    /// The `png` crate refused the image data.
    #[error("malformed png file: {0}")]
    PngDecode(#[source] ::png::DecodingError),
    /// The `png` crate failed to encode the pixels.
    #[error("PNG encoding failed: {0}")]
    PngEncode(#[source] ::png::EncodingError),
    /// A layout given to [`write`](fn@crate::write) or [`layout_dims`](crate::layout_dims) is not one that [`parse`](crate::parse) can
    /// produce.
    #[error("invalid image layout: {0}")]
    Layout(String),
    /// [`write`](fn@crate::write) was given another number of pixels than the layout describes.
    #[error(
        "the layout describes {count} images of {height}x{width} ({expected} pixels), but \
         {actual} pixels were given"
    )]
    PixelCount {
        /// Images in the layout.
        count: usize,
        /// Their height.
        height: usize,
        /// Their width.
        width: usize,
        /// Pixels the layout needs.
        expected: u128,
        /// Pixels given.
        actual: usize,
    },
}

/// The images of one file: their pixels and the file's layout (everything else).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// The file's format.
    pub format: ImageFormat,
    /// Rows of each image.
    pub height: usize,
    /// Columns of each image.
    pub width: usize,
    /// Number of images (at least 1; a PNG holds 1).
    pub count: usize,
    /// `count * height * width` pixels, row-major, image after image.
    pub pixels: Vec<u8>,
    pub(crate) layout: Vec<u8>,
}

impl Images {
    /// The layout to store beside the pixels, for [`write`](fn@crate::write) and [`layout_dims`](crate::layout_dims).
    pub fn layout(&self) -> &[u8] {
        &self.layout
    }

    /// The pixels of image `i`, `height * width` bytes.
    ///
    /// # Panics
    ///
    /// If `i >= count`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.count, "image {i} of {}", self.count);
        let size = self.height * self.width;
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Whether the input was a gzip'd idx file: [`write`](fn@crate::write) then gzips the idx file again.
    pub fn was_gzipped(&self) -> bool {
        self.format == ImageFormat::Idx && self.layout.get(LAYOUT_HEAD) == Some(&1)
    }
}

pub(crate) const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

pub(crate) fn png_malformed(reason: String) -> ImageError {
    ImageError::Malformed {
        format: ImageFormat::Png,
        reason,
    }
}

/// The first bytes of `bytes` in hex, for messages.
pub(crate) fn hex_head(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if head.is_empty() {
        "none".to_string()
    } else {
        head.join(" ")
    }
}
