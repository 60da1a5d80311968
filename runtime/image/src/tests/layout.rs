//! Layouts given to `write` and `layout_dims`: cut, altered and hostile ones.

use proptest::prelude::*;

use super::*;

fn head(format: u8, count: u32, height: u32, width: u32) -> Vec<u8> {
    let mut l = vec![LAYOUT_VERSION, format];
    for n in [count, height, width] {
        l.extend_from_slice(&n.to_le_bytes());
    }
    l
}

fn with(mut layout: Vec<u8>, tail: &[u8]) -> Vec<u8> {
    layout.extend_from_slice(tail);
    layout
}

fn len_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A real idx layout: the wrong number of pixels, every truncation, a huge count, another
/// version.
#[test]
fn cut_and_altered_idx_layouts_are_errors() -> Result<(), ImageError> {
    let file = idx_file(1, 2, 2, &[1, 2, 3, 4]);
    let layout = parse(&file)?.layout().to_vec();
    assert!(matches!(
        write(&layout, &[0; 3]),
        Err(ImageError::PixelCount { .. })
    ));
    for cut in 0..layout.len() {
        assert!(write(&layout[..cut], &[0; 4]).is_err(), "cut at {cut}");
    }
    let mut huge = layout.clone();
    huge[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(write(&huge, &[0; 4]).is_err());
    let mut version = layout;
    version[0] = 9;
    assert!(layout_dims(&version).is_err());
    Ok(())
}

/// Every field of a layout, hostile, in each format: `write` and `layout_dims` say which.
#[test]
fn hostile_layout_fields_are_errors_that_name_them() {
    let pgm_header = len_prefixed(b"P5 2 2 255\n");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "version needs 1 bytes"),
        (vec![2, 1], "version 2"),
        (vec![1, 9], "unknown format code 9"),
        (vec![1, 1, 0, 0], "image count needs 4 bytes"),
        (with(head(1, 0, 2, 2), &[0]), "0 images of 2x2"),
        (with(head(1, 1, 2, 0), &[0]), "at least 1"),
        (head(1, 1, 2, 2), "idx flags needs 1 bytes"),
        (with(head(1, 1, 2, 2), &[2]), "unknown idx flags"),
        (with(head(1, 1, 2, 2), &[0, 0]), "1 bytes after the end"),
        (
            with(head(2, 1, 2, 2), &[0, 0, 0, 0]),
            "first PGM header repeats",
        ),
        (
            with(head(2, 1, 2, 2), &[255, 255, 255, 255]),
            "PGM header needs 4294967295 bytes",
        ),
        (
            with(head(2, 1, 2, 2), &len_prefixed(b"P5 2 3 255\n")),
            "says 2x3, the layout 2x2",
        ),
        (with(head(2, 1, 2, 2), &len_prefixed(b"P2 2 2 255\n")), "P2"),
        (
            with(head(2, 1, 2, 2), &len_prefixed(b"P5 2 2 255\nX")),
            "1 bytes after its end",
        ),
        (
            with(head(2, 1, 2, 2), &len_prefixed(b" P5 2 2 255\n")),
            "starts with whitespace",
        ),
        (
            with(head(2, 1, 2, 2), &len_prefixed(b"P5 2 2")),
            "truncated",
        ),
        (
            with(head(2, 1, 2, 2), &pgm_header),
            "PGM trailer length needs 4",
        ),
        (
            with(with(head(2, 1, 2, 2), &pgm_header), &len_prefixed(b"x")),
            "trailer is not whitespace",
        ),
        (
            with(head(2, 4_000_000_000, 2, 2), &pgm_header),
            "PGM header length needs 4",
        ),
        (
            with(head(3, 2, 2, 2), &[0, 0, 0, 0, 0, 0, 0, 0, 0]),
            "a PNG with 2 images",
        ),
        (with(head(3, 1, 2, 1 << 31), &[0; 9]), "PNG"),
        (with(head(3, 1, 2, 2), &[4]), "unknown PNG flags"),
        (
            with(head(3, 1, 2, 2), &[0, 255, 255, 255, 255]),
            "chunk type needs 4",
        ),
        (
            with(
                head(3, 1, 2, 2),
                &[0, 1, 0, 0, 0, b'I', b'D', b'A', b'T', 0, 0, 0, 0],
            ),
            "IDAT chunk before IDAT",
        ),
        (
            with(
                head(3, 1, 2, 2),
                &[0, 1, 0, 0, 0, b'a', b'c', b'T', b'L', 0, 0, 0, 0],
            ),
            "animated",
        ),
        (
            with(
                head(3, 1, 2, 2),
                &[0, 1, 0, 0, 0, b't', b'E', b'X', b'1', 0, 0, 0, 0],
            ),
            "not 4 letters",
        ),
        (
            with(
                head(3, 1, 2, 2),
                &[0, 1, 0, 0, 0, b't', b'E', b'X', b't', 255, 255, 255, 127],
            ),
            "chunk data needs 2147483647",
        ),
        (
            with(
                head(3, 1, 2, 2),
                &[0, 1, 0, 0, 0, b't', b'E', b'X', b't', 255, 255, 255, 255],
            ),
            "length 4294967295",
        ),
        (
            with(head(3, 1, 2, 2), &[0, 0, 0, 0, 0]),
            "chunk count needs 4",
        ),
    ];
    for (layout, text) in cases {
        let pixels = [0u8; 4];
        let err = write(&layout, &pixels).unwrap_err().to_string();
        assert!(
            err.contains(text),
            "write({layout:?}): {err:?} lacks {text:?}"
        );
        let err = layout_dims(&layout).unwrap_err().to_string();
        assert!(
            err.contains(text),
            "layout_dims({layout:?}): {err:?} lacks {text:?}"
        );
    }
    // A valid layout with the wrong number of pixels, even a huge one.
    let layout = with(head(1, u32::MAX, u32::MAX, u32::MAX), &[0]);
    assert_err_contains(
        write(&layout, &[0; 4]),
        &[
            "4294967295 images of 4294967295x4294967295",
            "4 pixels were given",
        ],
    );
    let ok = with(head(1, 1, 2, 2), &[0]);
    assert_err_contains(write(&ok, &[0; 5]), &["(4 pixels)", "5 pixels were given"]);
    assert_eq!(
        write(&ok, &[1, 2, 3, 4]).unwrap(),
        idx_file(1, 2, 2, &[1, 2, 3, 4])
    );
}

proptest! {
    #[test]
    fn write_never_panics(layout in prop::collection::vec(any::<u8>(), 0..80), pixels in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = write(&layout, &pixels);
        let _ = layout_dims(&layout);
        // Past the version and format bytes too.
        for format in 1..=3 {
            let mut l = vec![LAYOUT_VERSION, format];
            l.extend_from_slice(&layout);
            let _ = write(&l, &pixels);
            let _ = layout_dims(&l);
        }
    }
}
