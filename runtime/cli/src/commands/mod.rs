//! One module per group of subcommands.

pub mod compress;
pub mod info;
pub mod list;
