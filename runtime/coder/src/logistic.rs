//! Integer logistic-mixing primitives (`stretch`, `squash`) for context-mixing predictors.
//!
//! Probabilities are 12-bit (`0..=4095` stands for `p * 4096`); the logistic domain is
//! `ln(p / (1 - p))` scaled by 256 and clamped to `-2047..=2047` (±8 nats). Both functions are
//! table driven and integer only, so every platform computes the same values:
//!
//! * [`squash`] interpolates linearly between 65 samples of `4096 / (1 + e^(-x/256))` taken
//!   every 64 units (the samples are a committed table, checked against `f64` in the tests).
//! * [`stretch`] is the exact inverse of [`squash`] on the integer grid: a 4096-entry table
//!   built at compile time, `stretch(p)` = the smallest `x` with `squash(x) >= p`.
//!
//! ```
//! use arca_coder::logistic::{squash, stretch};
//!
//! assert_eq!(squash(0), 2048);
//! assert_eq!(stretch(2048), 0);
//! let p = 3000;
//! assert!(squash(i32::from(stretch(p))).abs_diff(p) <= 4);
//! // Mixing: average two predictions in the logistic domain.
//! let mixed = squash((i32::from(stretch(3500)) + i32::from(stretch(1000))) / 2);
//! assert!(mixed > 1000 && mixed < 3500);
//! ```

/// Largest magnitude of the logistic domain.
pub const STRETCH_MAX: i32 = 2047;

/// Largest 12-bit probability.
pub const PROB_MAX: u16 = 4095;

/// `round(4096 / (1 + exp(-x / 256)))` for `x = -2048 + 64 * i`, `i = 0..=64`
/// (checked against the formula by the `squash_table_matches_formula` test).
const SQUASH_SAMPLES: [u16; 65] = [
    1, 2, 2, 3, 4, 5, 6, 8, 10, 13, 17, 21, 27, 35, 45, 58, 74, 94, 120, 153, 194, 246, 311, 391,
    488, 606, 747, 912, 1102, 1314, 1546, 1793, 2048, 2303, 2550, 2782, 2994, 3184, 3349, 3490,
    3608, 3705, 3785, 3850, 3902, 3943, 3976, 4002, 4022, 4038, 4051, 4061, 4069, 4075, 4079, 4083,
    4086, 4088, 4090, 4091, 4092, 4093, 4094, 4094, 4095,
];

/// Logistic function: `4096 / (1 + e^(-x/256))` as a 12-bit probability in `1..=4095`;
/// `x` is clamped to `-2047..=2047`.
#[inline]
pub const fn squash(x: i32) -> u16 {
    let x = if x > STRETCH_MAX {
        STRETCH_MAX
    } else if x < -STRETCH_MAX {
        -STRETCH_MAX
    } else {
        x
    };
    let u = (x + 2048) as usize; // 1..=4095
    let i = u >> 6; // 0..=63
    let w = (u & 63) as u32;
    let a = SQUASH_SAMPLES[i] as u32;
    let b = SQUASH_SAMPLES[i + 1] as u32;
    let v = (a * (64 - w) + b * w + 32) >> 6;
    if v < 1 {
        1
    } else if v > PROB_MAX as u32 {
        PROB_MAX
    } else {
        v as u16
    }
}

static STRETCH_TABLE: [i16; 4096] = build_stretch_table();

const fn build_stretch_table() -> [i16; 4096] {
    let mut table = [STRETCH_MAX as i16; 4096];
    let mut p = 0usize;
    let mut x = -STRETCH_MAX;
    while x <= STRETCH_MAX {
        let v = squash(x) as usize;
        while p <= v {
            table[p] = x as i16;
            p += 1;
        }
        x += 1;
    }
    table
}

/// Inverse of [`squash`]: `ln(p / (1 - p)) * 256` for a 12-bit probability, in
/// `-2047..=2047`; `p` above 4095 counts as 4095.
#[inline]
pub fn stretch(p: u16) -> i16 {
    let i = usize::from(p.min(PROB_MAX));
    match STRETCH_TABLE.get(i) {
        Some(&x) => x,
        None => STRETCH_MAX as i16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_table_matches_formula() {
        for (i, &s) in SQUASH_SAMPLES.iter().enumerate() {
            let x = -2048.0 + 64.0 * i as f64;
            let want = (4096.0 / (1.0 + (-x / 256.0).exp())).round();
            assert_eq!(f64::from(s), want, "sample {i}");
        }
    }

    #[test]
    fn squash_is_monotone_and_bounded() {
        let mut prev = 0;
        for x in -3000..=3000 {
            let v = squash(x);
            assert!((1..=4095).contains(&v));
            assert!(v >= prev, "x={x}");
            prev = v;
        }
        assert_eq!(squash(i32::MIN), squash(-2047));
        assert_eq!(squash(i32::MAX), squash(2047));
    }

    #[test]
    fn squash_close_to_logistic() {
        for x in -2047..=2047 {
            let want = 4096.0 / (1.0 + (-f64::from(x) / 256.0).exp());
            let got = f64::from(squash(x));
            assert!((got - want).abs() <= 4.0, "x={x} got={got} want={want}");
        }
    }

    #[test]
    fn squash_stretch_round_trip() {
        for p in 0..=4095u16 {
            let back = squash(i32::from(stretch(p)));
            // squash(stretch(p)) >= p by construction; the gap is at most one step of squash.
            assert!(back >= p.max(1), "p={p} back={back}");
            assert!(back - p.max(1) <= 4, "p={p} back={back}");
        }
    }

    #[test]
    fn stretch_close_to_logit() {
        assert_eq!(stretch(2048), 0);
        for p in 40..=4056u16 {
            let q = f64::from(p) / 4096.0;
            let want = (q / (1.0 - q)).ln() * 256.0;
            let got = f64::from(stretch(p));
            assert!((got - want).abs() <= 12.0, "p={p} got={got} want={want}");
        }
        assert!(stretch(0) == -2047 && stretch(u16::MAX) == stretch(4095));
    }

    #[test]
    fn stretch_is_monotone_and_antisymmetric() {
        for p in 1..=4095u16 {
            assert!(stretch(p) >= stretch(p - 1));
        }
        for p in 64..=4032u16 {
            let a = i32::from(stretch(p));
            let b = i32::from(stretch(4096 - p));
            assert!((a + b).abs() <= 8, "p={p} a={a} b={b}");
        }
    }
}
