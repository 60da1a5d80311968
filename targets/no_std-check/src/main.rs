//! Bare-metal smoke test for arca-coder: quantize, encode and decode a few symbols with a fixed
//! (heapless) sink, no allocator, no std. Built for thumbv7em-none-eabihf by `build.sh`.
#![no_std]
#![no_main]

use arca_coder::logistic::{squash, stretch};
use arca_coder::{
    ByteWordCursor, Cdf, RangeDecoder, RangeEncoder, WordCursor, bit_probability, cumulative,
    logits_f32_to_fixed, quantize_probs_f32, words_to_le_bytes,
};

/// Encodes and decodes a short message; true if everything round-trips.
fn round_trip() -> bool {
    let mut logits = [0i32; 4];
    if logits_f32_to_fixed(&[1.5, -0.25, 0.0, 3.0], 8, &mut logits).is_err() {
        return false;
    }
    let Ok(cdf) = Cdf::<4>::from_logits(&logits, 8, 16) else {
        return false;
    };
    let mut freqs = [0u32; 3];
    let mut probs_cdf = [0u32; 4];
    if quantize_probs_f32(&[0.7, 0.2, 0.1], 12, &mut freqs).is_err()
        || cumulative(&freqs, &mut probs_cdf).is_err()
    {
        return false;
    }
    let p1 = bit_probability(&probs_cdf, 0, 1, 3);
    let mixed = squash((i32::from(stretch(3000)) + i32::from(stretch(1200))) / 2);

    let message = [3usize, 0, 3, 1, 2, 3, 3];
    let mut enc = RangeEncoder::new(heapless::Vec::<u32, 16>::new());
    for &s in &message {
        if cdf.encode(&mut enc, s).is_err() || enc.encode_with_cdf(&probs_cdf, s % 3, 12).is_err() {
            return false;
        }
    }
    if enc.encode_bit(true, p1).is_err() || enc.encode_bit(false, mixed << 4).is_err() {
        return false;
    }
    let Ok(words) = enc.finish() else {
        return false;
    };

    let mut dec = match RangeDecoder::new(WordCursor::new(&words)) {
        Ok(d) => d,
        Err(_) => return false,
    };
    for &s in &message {
        if cdf.decode(&mut dec) != Ok(s) || dec.decode_with_cdf(&probs_cdf, 12) != Ok(s % 3) {
            return false;
        }
    }
    if dec.decode_bit(p1) != Ok(true) || dec.decode_bit(mixed << 4) != Ok(false) {
        return false;
    }

    // The same stream from little-endian bytes.
    let mut bytes = [0u8; 64];
    let Ok(len) = words_to_le_bytes(&words, &mut bytes) else {
        return false;
    };
    let Ok(mut dec) = RangeDecoder::new(ByteWordCursor::new(bytes.get(..len).unwrap_or(&[])))
    else {
        return false;
    };
    message
        .iter()
        .all(|&s| cdf.decode(&mut dec) == Ok(s) && dec.decode_with_cdf(&probs_cdf, 12) == Ok(s % 3))
}

/// Entry point for the bare-metal link (no runtime crate: the check only needs to link).
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    let ok = core::hint::black_box(round_trip());
    loop {
        core::hint::black_box(ok);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
