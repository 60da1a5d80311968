//! PGM files, one image or several.

use proptest::prelude::*;

use super::*;

#[test]
fn pgm_keeps_headers_comments_and_several_images() -> Result<(), ImageError> {
    let mut file = b"P5\n# made by hand\n# two lines\n3  2\n255\n".to_vec();
    file.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    file.extend_from_slice(b"P5 3 2 255\n");
    file.extend_from_slice(&[7, 8, 9, 10, 11, 12]);
    file.extend_from_slice(b"\n");
    let images = parse(&file)?;
    assert_eq!(
        (images.format, images.count, images.height, images.width),
        (ImageFormat::Pgm, 2, 2, 3)
    );
    assert_eq!(images.pixels, (1..=12).collect::<Vec<u8>>());
    assert_eq!(write(images.layout(), &images.pixels)?, file);
    Ok(())
}

#[test]
fn pgm_round_trips_with_its_header_verbatim() {
    let mut file = b"P5\n# made by hand\n#\r  4\t\t3 # width, height\n255\n".to_vec();
    file.extend_from_slice(&ramp(12));
    let images = round_trip(&file);
    assert_eq!(images.format, ImageFormat::Pgm);
    assert_eq!((images.count, images.height, images.width), (1, 3, 4));
    assert_eq!(images.pixels, ramp(12));

    // A comment right after the maxval ends the header; CR as the delimiter.
    for header in [&b"P5 2 1 255#c\n"[..], b"P5 2 1 255\r", b"P5\n2\n1\n255 "] {
        let mut file = header.to_vec();
        file.extend_from_slice(&[10, 13]);
        assert_eq!(round_trip(&file).pixels, [10, 13]);
    }
    // Pixels that look like whitespace, and a pixel-free-looking raster.
    let mut file = b"P5 3 1 255\n".to_vec();
    file.extend_from_slice(b"\n \n");
    assert_eq!(round_trip(&file).pixels, b"\n \n");
}

#[test]
fn pgm_with_several_images() {
    let mut file = Vec::new();
    for i in 0..3u8 {
        file.extend_from_slice(b"P5\n28 28\n255\n");
        file.extend(std::iter::repeat_n(i, 784));
    }
    let images = round_trip(&file);
    assert_eq!((images.count, images.height, images.width), (3, 28, 28));
    assert_eq!(images.image(2), &[2; 784][..]);
    // Equal headers are stored once.
    assert!(images.layout().len() < LAYOUT_HEAD + 4 + 14 + 4 + 4 + 4);
    assert_eq!(
        layout_dims(images.layout()).unwrap(),
        (ImageFormat::Pgm, 3, 28, 28)
    );

    // Whitespace between images and after the last one is kept; headers may differ.
    let mut file = b"P5 2 2 255\n".to_vec();
    file.extend_from_slice(&[1, 2, 3, 4]);
    file.extend_from_slice(b"\n\nP5\n# second\n2 2\n255\n");
    file.extend_from_slice(&[5, 6, 7, 8]);
    file.extend_from_slice(b"\n");
    let images = round_trip(&file);
    assert_eq!(images.count, 2);
    assert_eq!(images.pixels, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn pgm_errors() {
    let mut sizes = b"P5 2 2 255\n\x01\x02\x03\x04".to_vec();
    sizes.extend_from_slice(b"P5 3 2 255\n\x01\x02\x03\x04\x05\x06");
    assert_err_contains(
        parse(&sizes),
        &["image 2 is 3x2", "image 1 is 2x2", "same size"],
    );
    assert_err_contains(parse(b"P2\n2 1\n255\n0 255\n"), &["ASCII", "P2", "P5"]);
    assert_err_contains(parse(b"P6\n1 1\n255\n\x00\x00\x00"), &["PPM", "P6"]);
    assert_err_contains(
        parse(b"P5\n1 1\n65535\n\x00\x00"),
        &["maxval is 65535", "16-bit", "maxval 255"],
    );
    assert_err_contains(parse(b"P5\n1 1\n15\n\x00"), &["maxval is 15"]);
    assert_err_contains(
        parse(b"P5\n28 28\n255\n\x00\x00"),
        &["truncated PGM", "28x28 (784 bytes)", "only 2 bytes"],
    );
    assert_err_contains(parse(b"P5\n28 28"), &["truncated PGM", "header"]);
    assert_err_contains(parse(b"P5 2 1 # no end"), &["truncated PGM"]);
    assert_err_contains(parse(b"P5 0 1 255\n"), &["0x1", "at least 1"]);
    assert_err_contains(parse(b"P5 x 1 255\n"), &["width", "0x78"]);
    assert_err_contains(parse(b"P528 28 255\n"), &["whitespace before the width"]);
    assert_err_contains(parse(b"P5 99999999999 1 255\n"), &["too large"]);
    assert_err_contains(parse(b"P5 1 1 255x\x00"), &["one whitespace byte"]);
    assert_err_contains(
        parse(b"P5 1 1 255\n\x00garbage"),
        &["7 unexpected bytes after image 1"],
    );
    assert_err_contains(
        parse(b"P5 1 1 255\n\x00\nP5 1 1"),
        &["truncated PGM", "image 2"],
    );
}

/// A random PGM: images of one size, headers with random whitespace and comments.
fn pgm_strategy() -> impl Strategy<Value = Vec<u8>> {
    let sep = prop::sample::select(vec![
        " ", "\n", "\t\t", "\r\n", " #x y\n", "\n#\r ", "\x0b", "\x0c",
    ]);
    let end = prop::sample::select(vec!["\n", " ", "\t", "\r", "#c\n", "# c\r"]);
    let between = between_strategy();
    let header = (prop::collection::vec(sep, 3), end, between);
    (
        1usize..6,
        1usize..6,
        prop::collection::vec(header, 1..4),
        between_strategy(),
    )
        .prop_flat_map(|(w, h, headers, trailer)| {
            let n = headers.len() * w * h;
            (
                Just((w, h, headers, trailer)),
                prop::collection::vec(any::<u8>(), n),
            )
        })
        .prop_map(|((w, h, headers, trailer), pixels)| {
            let mut file = Vec::new();
            for (i, ((seps, end, between), image)) in
                headers.iter().zip(pixels.chunks(w * h)).enumerate()
            {
                if i > 0 {
                    file.extend_from_slice(between.as_bytes());
                }
                let text = format!("P5{}{w}{}{h}{}255{end}", seps[0], seps[1], seps[2]);
                file.extend_from_slice(text.as_bytes());
                file.extend_from_slice(image);
            }
            file.extend_from_slice(trailer.as_bytes());
            file
        })
}

fn between_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "\n", " \n\t"])
}

proptest! {
    #[test]
    fn pgm_round_trips(file in pgm_strategy()) {
        let images = parse(&file).unwrap();
        let (format, count, h, w) = layout_dims(images.layout()).unwrap();
        prop_assert_eq!((format, count, h, w), (ImageFormat::Pgm, images.count, images.height, images.width));
        prop_assert_eq!(write(images.layout(), &images.pixels).unwrap(), file);
    }
}
