//! One module per group of subcommands.

pub mod arith;
pub mod bench;
pub mod compress;
pub mod generate;
pub mod info;
pub mod inspect;
pub mod list;
pub mod serve;
pub mod tokenize;
