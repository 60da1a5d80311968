//! The small statistics that the measurement tools share (`arca bench`, the examples): timings
//! on a shared machine are noisy, so they report medians.

/// The median of `values` (the mean of the middle two for an even count; 0 for none). NaNs sort
/// last.
///
/// ```
/// use arca_runtime::stats::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
/// assert_eq!(median(&[]), 0.0);
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
