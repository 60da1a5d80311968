use super::testing::{Rng, Tables};
use super::*;

fn images(t: &Tables, n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let d = t.height * t.width;
    let mut out = Vec::new();
    for i in 0..n {
        match i % 4 {
            0 => out.extend((0..d).map(|_| rng.below(256) as u8)),
            1 => out.extend(std::iter::repeat_n(0u8, d)),
            2 => out.extend(std::iter::repeat_n(255u8, d)),
            _ => out.extend((0..d).map(|_| if rng.below(5) == 0 { 200 } else { 0 })),
        }
    }
    out
}

#[test]
fn round_trips_and_costs_what_the_model_says() -> Result<(), CircuitError> {
    for (h, w, m, seed) in [(1, 1, 2, 1), (2, 3, 3, 2), (5, 4, 7, 3), (6, 6, 32, 4)] {
        let t = Tables::random(h, w, m, seed);
        let c = Circuit::load(&t.bundle())?;
        assert_eq!((c.image_size(), c.states()), ((h, w), m));
        let pixels = images(&t, 9, seed);
        let data = c.encode(&pixels)?;
        assert_eq!(c.decode(&data, 9)?, pixels, "{h}x{w} M={m}");
        // The coder's quantized code lengths are the model's -log2 p within a hair.
        let lengths = c.code_lengths(&pixels)?;
        for (image, bits) in pixels.chunks_exact(h * w).zip(&lengths) {
            let exact = -t.log2_prob(image);
            assert!(
                (bits - exact).abs() <= 1e-3 * (h * w) as f64 + 1e-6 * exact,
                "{h}x{w} M={m}: coder {bits} bits, model {exact}"
            );
        }
        let total: f64 = lengths.iter().sum();
        assert!(
            (data.len() * 8) as f64 <= total + 64.0,
            "{} vs {total}",
            data.len()
        );
    }
    Ok(())
}

#[test]
fn order_is_a_preorder() -> Result<(), CircuitError> {
    let t = Tables::random(7, 9, 2, 11);
    let c = Circuit::load(&t.bundle())?;
    let mut seen = [false; 63];
    for v in c.order() {
        if let Ok(p) = usize::try_from(t.parent[v]) {
            assert!(seen[p], "pixel {v} before its parent {p}");
        }
        seen[v] = true;
    }
    assert!(seen.iter().all(|&s| s));
    Ok(())
}

#[test]
fn bad_tables_and_sizes_are_errors() {
    let msg = |t: &Tables| match Circuit::load(&t.bundle()) {
        Err(e) => e.to_string(),
        Ok(_) => String::from("loaded"),
    };
    let mut t = Tables::random(2, 2, 3, 5);
    t.leaves[7] += 1;
    assert!(msg(&t).contains("row 0 of `leaves`"), "{}", msg(&t));
    let mut t = Tables::random(2, 2, 3, 5);
    t.parent = vec![1, 0, -1, 2];
    assert!(msg(&t).contains("not reachable"), "{}", msg(&t));
    let mut t = Tables::random(2, 2, 3, 5);
    t.parent = vec![-1, 0, -1, 2];
    assert!(msg(&t).contains("both roots"), "{}", msg(&t));
    let mut t = Tables::random(2, 2, 3, 5);
    t.parent[1] = 9;
    assert!(msg(&t).contains("parent 9"), "{}", msg(&t));

    let c = Circuit::load(&Tables::random(2, 2, 3, 5).bundle()).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        c.encode(&[0; 5]),
        Err(CircuitError::Ragged { .. })
    ));
    assert!(c.check_size(28, 28).is_err());
    assert!(c.check_size(2, 2).is_ok());
    // Damaged data decodes to something (the container's checksum catches it), never panics.
    let data = c.encode(&[9; 40]).unwrap_or_default();
    let mut bad = data.clone();
    bad[0] ^= 0x55;
    let _ = c.decode(&bad, 10);
    let _ = c.decode(&[], 10);
}
