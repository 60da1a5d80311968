//! Across formats: detection, refused and damaged input of every kind, and properties.

use proptest::prelude::*;

use super::*;

#[test]
fn unsupported_and_damaged_files_are_errors() {
    let rows = vec![0u8; 4 * 4 * 3];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty input"),
        (b"hello world".to_vec(), "unrecognized image format"),
        (idx_file(2, 2, 2, &[0; 5]), "truncated"),
        (idx_file(1, 2, 2, &[0; 6]), "2"),
        (
            [[0, 0, 8, 1].as_slice(), &10u32.to_be_bytes(), &[0; 10]].concat(),
            "idx",
        ),
        (b"P2\n2 2\n255\n0 0 0 0\n".to_vec(), "P2"),
        ([b"P5\n2 2\n65535\n".as_slice(), &[0; 8]].concat(), "65535"),
        (png_by_hand(4, 4, 8, 2, &rows, &[]), "RGB"),
        (png_by_hand(4, 4, 16, 0, &[0; 32], &[]), "16"),
        (
            png_by_hand(4, 4, 8, 3, &[0; 16], &[png_chunk(b"PLTE", &[0, 0, 0])]),
            "palette",
        ),
    ];
    for (bytes, needle) in cases {
        let msg = err(&bytes);
        assert!(msg.contains(needle), "expected '{needle}' in: {msg}");
    }
    // A PNG with a damaged CRC.
    let mut bad = png_by_hand(4, 4, 8, 0, &[0; 16], &[]);
    let at = bad.len() - 20;
    bad[at] ^= 1;
    assert!(parse(&bad).is_err());
    // gzip that is not an idx, and a truncated gzip stream.
    assert!(parse(&crate::idx::gzip(b"not an idx file").unwrap_or_default()).is_err());
    let gz = crate::idx::gzip(&idx_file(1, 2, 2, &[1, 2, 3, 4])).unwrap_or_default();
    assert!(parse(&gz[..gz.len() / 2]).is_err());
}

#[test]
fn empty_and_garbage_are_refused() {
    assert!(matches!(parse(&[]), Err(ImageError::Empty)));
    assert_eq!(message(parse(&[])), "empty input: no image data");
    assert_err_contains(
        parse(b"hello, world"),
        &["unrecognized image format", "68 65 6c 6c", "PNG"],
    );
    assert_err_contains(parse(b"P"), &["unrecognized"]);
    assert_err_contains(parse(&[0, 0, 0, 0]), &["unrecognized"]);
    assert_err_contains(
        parse(&[0xff, 0xd8, 0xff, 0xe0]),
        &["unrecognized", "ff d8 ff e0"],
    );
}

#[test]
fn format_names() {
    assert_eq!(ImageFormat::Idx.to_string(), "idx");
    assert_eq!(ImageFormat::Pgm.to_string(), "pgm");
    assert_eq!(ImageFormat::Png.to_string(), "png");
}

proptest! {
    #[test]
    fn idx_and_pgm_round_trip(count in 1u32..4, h in 1u32..6, w in 1u32..6, seed in any::<u64>()) {
        let n = (count * h * w) as usize;
        let pixels: Vec<u8> = (0..n as u64).map(|i| (i.wrapping_mul(seed | 1) >> 3) as u8).collect();
        let file = idx_file(count, h, w, &pixels);
        let images = parse(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(write(images.layout(), &images.pixels).ok(), Some(file));
        let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
        pgm.extend_from_slice(&pixels[..(h * w) as usize]);
        let images = parse(&pgm).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(write(images.layout(), &images.pixels).ok(), Some(pgm));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), prefix in 0usize..4) {
        let heads: [&[u8]; 4] = [b"", &IDX_MAGIC, b"P5 ", &PNG_SIGNATURE];
        let input = [heads[prefix], &bytes].concat();
        let _ = parse(&input);
        let _ = write(&bytes, &bytes);
        let _ = layout_dims(&bytes);
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
        for magic in [&[0x1f, 0x8b][..], &PNG_SIGNATURE, b"P5 ", &IDX_MAGIC] {
            let _ = parse(&[magic, &bytes].concat());
        }
    }

    #[test]
    fn damaged_files_never_panic(which in 0usize..3, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut file = match which {
            0 => png_by_crate(5, 4, &ramp(20), Some(("a", "b"))),
            1 => gzip(&idx_file(2, 3, 3, &ramp(18))),
            _ => [&b"P5 3 3 255\n"[..], &ramp(9), b"P5 3 3 255\n", &ramp(9)].concat(),
        };
        for (at, value) in flips {
            let at = at.index(file.len());
            file[at] = value;
        }
        if let Ok(images) = parse(&file) {
            let _ = write(images.layout(), &images.pixels).unwrap();
        }
    }
}
