//! The image codec (`image-pc`): an image file's pixels coded by a probabilistic circuit, in
//! blocks of whole images, with the file's layout stored beside them so the same file comes
//! back. The circuit and its coder are [`crate::circuit`]; the files are `arca-image`'s.

use crate::circuit::{Circuit, PRECISION, REVISION};
use crate::container::{Codec, ContainerError, Stream};

use super::blocks::{self, check_header, decode_blocks, encode_blocks};
use super::error::CodecError;

/// Images per block by default: blocks are coded in parallel and decode independently.
pub const DEFAULT_IMAGES_PER_BLOCK: usize = 256;

/// Options of image compression.
#[derive(Debug, Clone, Copy)]
pub struct ImageOptions {
    /// Images per block (compression only; decompression reads the stream's).
    pub images_per_block: usize,
    /// Worker threads. 0: the rayon pool this is called from (pass your own by calling inside
    /// `ThreadPool::install`), else one per core, in a pool kept for the process.
    pub threads: usize,
}

impl ImageOptions {
    /// As many whole images of `pixels` pixels as fit in `block_bytes` bytes (at least one):
    /// how `arca compress -B SIZE` sizes image blocks.
    pub fn with_block_bytes(block_bytes: u32, pixels: usize, threads: usize) -> Self {
        ImageOptions {
            images_per_block: (block_bytes as usize / pixels.max(1)).max(1),
            threads,
        }
    }
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            images_per_block: DEFAULT_IMAGES_PER_BLOCK,
            threads: 0,
        }
    }
}

/// The `.arca` image codec (codec id 3, `image-pc`): an image file (MNIST idx, PGM, PNG; see
/// [`arca_image`]) in, a stream of range-coded blocks of whole images plus the file's layout
/// out, and back to the same file.
#[derive(Debug, Clone, Copy)]
pub struct ImageCodec<'c> {
    circuit: &'c Circuit,
}

impl<'c> ImageCodec<'c> {
    /// A codec for `circuit`.
    pub fn new(circuit: &'c Circuit) -> Self {
        ImageCodec { circuit }
    }

    /// Compresses an image file. `progress` gets the number of pixel bytes just coded.
    pub fn compress(
        &self,
        file: &[u8],
        opts: &ImageOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let c = self.circuit;
        let images = arca_image::parse(file)?;
        c.check_size(images.height, images.width)?;
        let d = c.pixels();
        let block_size = opts
            .images_per_block
            .checked_mul(d)
            .filter(|&b| b >= 1 && b <= u32::MAX as usize)
            .ok_or_else(|| {
                CodecError::Options(format!(
                    "{} images of {d} pixels do not make a block",
                    opts.images_per_block
                ))
            })?;
        let (entries, datas) =
            encode_blocks(&images.pixels, block_size as u32, opts.threads, |block| {
                let data = c.encode(block)?;
                progress(block.len() as u64);
                Ok(data)
            })?;
        let header = blocks::header(
            Codec::ImagePc,
            PRECISION as u8,
            REVISION,
            (c.id(), c.name()),
            block_size as u32,
            images.pixels.len() as u64,
        );
        Ok(Stream::write_with_layout(
            &header,
            &entries,
            &datas,
            images.layout(),
        ))
    }

    /// Decompresses a stream made by [`ImageCodec::compress`] with this circuit back into the
    /// image file (see [`arca_image::write`] for what comes back byte for byte).
    pub fn decompress(
        &self,
        bytes: &[u8],
        opts: &ImageOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        self.decompress_stream(&Stream::parse(bytes)?, opts.threads, progress)
    }

    /// [`ImageCodec::decompress`] of a parsed stream, on `threads` workers.
    pub(crate) fn decompress_stream(
        &self,
        stream: &Stream<'_>,
        threads: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let c = self.circuit;
        let h = stream.header();
        if h.codec != Codec::ImagePc {
            return Err(CodecError::Options(format!(
                "this is a {} stream, not an image stream",
                h.codec.name()
            )));
        }
        check_header(h, REVISION, c.id(), c.name())?;
        let (_, count, height, width) = arca_image::layout_dims(stream.layout())?;
        c.check_size(height, width)?;
        let d = c.pixels();
        let inconsistent = |what: String| CodecError::Container(ContainerError::Inconsistent(what));
        if count.checked_mul(d) != Some(h.original_len as usize) {
            return Err(inconsistent(format!(
                "the layout holds {count} images of {d} pixels, the blocks {} bytes",
                h.original_len
            )));
        }
        if !(h.block_size as usize).is_multiple_of(d) {
            return Err(inconsistent(format!(
                "blocks of {} bytes are not whole images",
                h.block_size
            )));
        }
        let n = stream.entries().len();
        let pixels = decode_blocks(stream, 0..n, threads, progress, &|entry, data| {
            let plain = c.decode(data, entry.original_len as usize / d)?;
            progress(plain.len() as u64);
            Ok(plain)
        })?
        .concat();
        Ok(arca_image::write(stream.layout(), &pixels)?)
    }
}
