//! Arbitrary bytes as a `.arca` stream: parse it and, if it parses, decode it with the
//! network-free text codec. Must never panic. See `arca_fuzz::decode_stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| arca_fuzz::decode_stream(data));
