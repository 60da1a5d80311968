//! arca-runtime: model bundles, the tract engine, the text codec and the `.arca` container.
//!
//! (Module docs are completed as the modules land.)

pub mod arith;
pub mod bundle;
pub mod circuit;
pub mod cm;
pub mod codec;
pub mod container;
pub mod eiw;
pub mod engine;
pub mod generate;
pub mod image;
pub mod native;
pub mod onnx;
pub mod shipped;
pub use bundle::{Bundle, BundleError, Manifest, ModelKind};
pub use engine::{Device, Engine, EngineError, LoadOptions, TextModel};
