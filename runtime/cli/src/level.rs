//! Compression levels, `arca compress -1 .. -9`: each level is a model, a block size and the
//! context models' profile. Nothing about the level is stored: the stream's header names the
//! model and the block size, and each block's first byte its profile, so any build decodes any
//! level without being told.

use arca_runtime::codec::{CmSettings, DEFAULT_BLOCK_SIZE};
use clap::Args;

/// The level `arca compress` uses when none is given.
pub const DEFAULT: u8 = 6;

/// What one level runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// The embedded model, or `None` for the context models alone.
    pub model: Option<&'static str>,
    /// Bytes per block.
    pub block_size: u32,
    /// The context models' settings.
    pub cm: CmSettings,
    /// Other models (`None`: no network) each frame is also coded with; the smallest wins.
    pub alternatives: &'static [Option<&'static str>],
}

const FAST: CmSettings = CmSettings {
    fast: true,
    try_without_network: false,
};
const FULL: CmSettings = CmSettings {
    fast: false,
    try_without_network: false,
};
const TWO_PASS: CmSettings = CmSettings {
    fast: false,
    try_without_network: true,
};

/// The table behind `-1 .. -9` (the `--help` text and the README list the same).
pub fn level(n: u8) -> Level {
    let mib = |n: u32| n << 20;
    // The first text-small, trained on books only: still the better network on some English
    // (and shipped anyway, for the streams written with it).
    const FIRST: &[Option<&str>] = &[Some("text-small-v1")];
    const BOTH: &[Option<&str>] = &[Some("text-small-v1"), None];
    let (model, block_size, cm, alternatives) = match n {
        0 | 1 => (None, DEFAULT_BLOCK_SIZE, FAST, &[][..]),
        2 => (None, DEFAULT_BLOCK_SIZE, FULL, &[][..]),
        3 => (Some("text-embedded"), DEFAULT_BLOCK_SIZE, FAST, &[][..]),
        4 => (Some("text-embedded"), DEFAULT_BLOCK_SIZE, FULL, &[][..]),
        5 => (Some("text-small"), DEFAULT_BLOCK_SIZE, FAST, &[][..]),
        6 => (Some("text-small"), DEFAULT_BLOCK_SIZE, FULL, &[][..]),
        7 => (Some("text-small"), DEFAULT_BLOCK_SIZE, FULL, FIRST),
        8 => (Some("text-small"), mib(4), TWO_PASS, BOTH),
        _ => (Some("text-small"), mib(16), TWO_PASS, BOTH),
    };
    Level {
        model,
        block_size,
        cm,
        alternatives,
    }
}

/// `--level N` and its short forms `-1 .. -9`.
#[derive(Debug, Args, Default)]
pub struct LevelArgs {
    /// Compression level, 1 (fastest) to 9 (smallest), default 6; also -1 .. -9. 1: context
    /// models alone, fast set (no network); 2: context models alone, every model; 3, 4:
    /// text-embedded's network with the fast set or every model (binary blocks: the binary
    /// contexts without a network); 5, 6: text-small's (6 is
    /// the default); 7: each frame (8 MiB) coded with text-small and with its first version
    /// (books only), the smaller kept; 8, 9: also without a network, and each block with and
    /// without one, in blocks of 4 and 16 MiB (about twice level 6's compression time; decoding
    /// as fast). -m and -B override the level's model and block size (-m: no other models are
    /// tried). Only the default codec (cm) has levels
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
    pub level: Option<u8>,
    #[arg(short = '1', hide = true)]
    l1: bool,
    #[arg(short = '2', hide = true)]
    l2: bool,
    #[arg(short = '3', hide = true)]
    l3: bool,
    #[arg(short = '4', hide = true)]
    l4: bool,
    #[arg(short = '5', hide = true)]
    l5: bool,
    #[arg(short = '6', hide = true)]
    l6: bool,
    #[arg(short = '7', hide = true)]
    l7: bool,
    #[arg(short = '8', hide = true)]
    l8: bool,
    #[arg(short = '9', hide = true)]
    l9: bool,
}

impl LevelArgs {
    /// The level asked for, if any; an error if several were.
    pub fn get(&self) -> Result<Option<u8>, String> {
        let flags = [
            self.l1, self.l2, self.l3, self.l4, self.l5, self.l6, self.l7, self.l8, self.l9,
        ];
        let mut asked: Vec<u8> = (1..=9u8).filter(|&n| flags[usize::from(n - 1)]).collect();
        asked.extend(self.level);
        // `-3 --level 3` asks for one level.
        asked.sort_unstable();
        asked.dedup();
        match asked.as_slice() {
            [] => Ok(None),
            [n] => Ok(Some(*n)),
            _ => Err(format!(
                "several levels given ({}); give one",
                asked
                    .iter()
                    .map(|n| format!("-{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_level_is_what_arca_always_did() {
        let six = level(DEFAULT);
        assert_eq!(six.model, Some("text-small"));
        assert_eq!(six.block_size, DEFAULT_BLOCK_SIZE);
        assert_eq!(six.cm, CmSettings::default());
    }

    #[test]
    fn levels_spend_more_as_they_rise() {
        // Larger blocks, never fewer models, from 6 up; no network below 3.
        assert!(level(1).model.is_none() && level(2).model.is_none());
        assert!((3..=9).all(|n| level(n).model.is_some()));
        assert!((6..9).all(|n| level(n).block_size <= level(n + 1).block_size));
        assert!((6..9).all(|n| level(n).alternatives.len() <= level(n + 1).alternatives.len()));
        assert!(level(1).cm.fast && !level(2).cm.fast && level(9).cm.try_without_network);
    }
}
