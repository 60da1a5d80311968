//! Puts `memory.x` where the linker finds it and links the stream named by `ARCA_STREAM`
//! (a path; unset means an empty stream, which the firmware reports as an error).
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("memory.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=ARCA_STREAM");
    let stream = match std::env::var_os("ARCA_STREAM") {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            std::fs::read(&path)
                .unwrap_or_else(|e| panic!("ARCA_STREAM={}: {e}", PathBuf::from(&path).display()))
        }
        None => Vec::new(),
    };
    std::fs::write(out.join("stream.arca"), stream).expect("OUT_DIR is writable");
}
