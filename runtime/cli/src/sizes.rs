//! Byte counts for people: exact where a size is a whole number of units (block sizes), rounded
//! where it is not (file sizes).

/// `1048576` -> `1 MiB`; sizes that aren't whole KiB, MiB or GiB stay in bytes.
pub fn exact(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// A size rounded for humans: `1.3 MiB`, `412 KiB`, `900 B` (whole units stay exact).
pub fn approx(n: u64) -> String {
    let exact = exact(n);
    if !exact.ends_with(" B") || n < 1024 {
        return exact;
    }
    let f = n as f64;
    if n >= 1 << 20 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", f / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sizes() {
        assert_eq!(exact(1 << 20), "1 MiB");
        assert_eq!(exact(65536), "64 KiB");
        assert_eq!(exact(1000), "1000 B");
        assert_eq!(exact(3 << 30), "3 GiB");
    }

    #[test]
    fn approximate_sizes() {
        assert_eq!(approx(900), "900 B");
        assert_eq!(approx(1 << 20), "1 MiB");
        assert_eq!(approx(1_500_000), "1.4 MiB");
    }
}
