//! `arca pack` without building the CLI:
//!
//! ```text
//! cargo run -p arca-codegen --example pack -- models/text-small.onnx models/text-small.json models/text-small.arcm
//! ```

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [onnx, spec, out] = args.as_slice() else {
        return Err("usage: pack MODEL.onnx MODEL.json OUT.arcm".into());
    };
    let report = arca_codegen::pack(Path::new(onnx), Path::new(spec), Path::new(out))?;
    println!("{report}");
    Ok(())
}
