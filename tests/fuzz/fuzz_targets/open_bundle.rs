//! Arbitrary bytes as a `.arcm` model bundle: open it and, if it opens, print its manifest and
//! load small ones into tract. Must never panic. See `arca_fuzz::open_bundle`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| arca_fuzz::open_bundle(data));
