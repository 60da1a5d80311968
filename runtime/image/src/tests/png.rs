//! PNG files: kept chunks, exact IDAT, interlacing, refused kinds and damage.

use std::io::Cursor;

use proptest::prelude::*;

use super::*;

/// Adam7 scanlines (filter 0) of an 8-bit grayscale image.
fn adam7(pixels: &[u8], width: usize, height: usize) -> Vec<u8> {
    let passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut out = Vec::new();
    for (x0, y0, dx, dy) in passes {
        if x0 >= width || y0 >= height {
            continue;
        }
        for y in (y0..height).step_by(dy) {
            out.push(0);
            for x in (x0..width).step_by(dx) {
                out.push(pixels[y * width + x]);
            }
        }
    }
    out
}

/// The chunk types of a PNG, in order.
fn chunk_kinds(file: &[u8]) -> Vec<String> {
    png_chunks(file)
        .unwrap()
        .iter()
        .map(|c| chunk_name(&c.kind))
        .collect()
}

#[test]
fn png_keeps_pixels_and_chunks_and_its_own_output_exactly() -> Result<(), ImageError> {
    let rows: Vec<u8> = (0..5 * 4).map(|i| (i * 13) as u8).collect();
    let text = png_chunk(b"tEXt", b"Comment\0hand made");
    let file = png_by_hand(5, 4, 8, 0, &rows, &[text]);
    let images = parse(&file)?;
    assert_eq!(
        (images.format, images.count, images.height, images.width),
        (ImageFormat::Png, 1, 4, 5)
    );
    assert_eq!(images.pixels, rows);
    let back = write(images.layout(), &images.pixels)?;
    let again = parse(&back)?;
    assert_eq!(again.pixels, rows);
    assert!(back.windows(17).any(|w| w == b"Comment\0hand made"));
    // What write produced comes back byte for byte.
    assert_eq!(write(again.layout(), &again.pixels)?, back);
    Ok(())
}

#[test]
fn zlib_made_png_comes_back_byte_for_byte() -> Result<(), ImageError> {
    // Rows filtered 0-4 in turn, deflated by zlib with non-default parameters, the stream
    // split over two IDAT chunks, a tEXt chunk after them.
    let (w, h) = (7usize, 5usize);
    let pixels: Vec<u8> = (0..w * h).map(|i| (i * i * 31 % 251) as u8).collect();
    let filters: Vec<u8> = (0..h as u8).map(|r| r % 5).collect();
    let params = exact::Params {
        level: 9,
        window_bits: 10,
        mem_level: 9,
        strategy: 1,
        filters,
    };
    let rows = exact::filter(&pixels, w, &params.filters);
    let stream = exact::zlib::deflate(&rows, &params).unwrap_or_default();
    let mut ihdr = (w as u32).to_be_bytes().to_vec();
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut file = PNG_SIGNATURE.to_vec();
    file.extend(png_chunk(b"IHDR", &ihdr));
    file.extend(png_chunk(b"IDAT", &stream[..10]));
    file.extend(png_chunk(b"IDAT", &stream[10..]));
    file.extend(png_chunk(b"tEXt", b"Software\0zlib by hand"));
    file.extend(png_chunk(b"IEND", b""));
    let images = parse(&file)?;
    assert_eq!(images.pixels, pixels);
    assert_eq!(write(images.layout(), &images.pixels)?, file);
    // A miniz-made PNG is not reproducible: same pixels, re-encoded.
    let other = png_by_hand(5, 4, 8, 0, &[9; 20], &[]);
    let images = parse(&other)?;
    assert_eq!(
        parse(&write(images.layout(), &images.pixels)?)?.pixels,
        vec![9; 20]
    );
    // A layout whose IDAT lengths do not add up is refused.
    let layout = parse(&file)?.layout().to_vec();
    let mut bad = layout.clone();
    let at = 14 + 1 + 4 + h + 4; // flags, parameters, filters, chunk count: the first length
    bad[at] ^= 1;
    assert!(write(&bad, &pixels).is_err());
    Ok(())
}

#[test]
fn png_round_trips_pixel_exact_then_byte_exact() {
    let (w, h) = (28, 28);
    let pixels = ramp(w * h);
    let file = png_by_crate(w as u32, h as u32, &pixels, None);
    let images = parse(&file).unwrap();
    assert_eq!(images.format, ImageFormat::Png);
    assert_eq!((images.count, images.height, images.width), (1, h, w));
    assert_eq!(images.pixels, pixels);
    // Re-encoded with the fixed settings: same pixels; and that file comes back byte for byte.
    let written = write(images.layout(), &images.pixels).unwrap();
    let again = round_trip(&written);
    assert_eq!(again.pixels, pixels);
    assert_eq!(again.layout(), images.layout());
    assert_eq!(chunk_kinds(&written), ["IHDR", "IDAT", "IEND"]);
    // Hand-made, odd sizes.
    for (w, h) in [(1, 1), (1, 9), (13, 1), (5, 3)] {
        let pixels = ramp(w * h);
        let file = png_file(
            ihdr(w as u32, h as u32, 8, 0, 0),
            &[(b"IDAT", &scanlines(&pixels, w))],
        );
        let images = parse(&file).unwrap();
        assert_eq!(images.pixels, pixels);
        round_trip(&write(images.layout(), &pixels).unwrap());
    }
}

#[test]
fn png_keeps_its_other_chunks_in_place() {
    // Chunks before and after the image data, which is split over two IDAT chunks.
    let pixels = ramp(6 * 4);
    let z = zlib(&scanlines(&pixels, 6));
    let mut file = PNG_SIGNATURE.to_vec();
    file.extend_from_slice(&ihdr(6, 4, 8, 0, 0));
    file.extend_from_slice(&png_chunk(b"gAMA", &100000u32.to_be_bytes()));
    file.extend_from_slice(&png_chunk(b"tEXt", b"Title\0a digit"));
    file.extend_from_slice(&png_chunk(b"IDAT", &z[..5]));
    file.extend_from_slice(&png_chunk(b"IDAT", &z[5..]));
    file.extend_from_slice(&png_chunk(b"tIME", &[7, 233, 1, 2, 3, 4, 5]));
    file.extend_from_slice(&png_chunk(b"tEXt", b"Comment\0after the pixels"));
    file.extend_from_slice(&png_chunk(b"IEND", &[]));
    let images = parse(&file).unwrap();
    assert_eq!(images.pixels, pixels);
    let written = write(images.layout(), &images.pixels).unwrap();
    // zlib reproduces this deflate stream, so the file comes back whole, IDAT split included.
    assert_eq!(written, file);
    assert_eq!(
        chunk_kinds(&written),
        [
            "IHDR", "gAMA", "tEXt", "IDAT", "IDAT", "tIME", "tEXt", "IEND"
        ]
    );
    for text in [&b"Title\0a digit"[..], b"Comment\0after the pixels"] {
        assert!(written.windows(text.len()).any(|w| w == text));
    }
    // The png crate reads it, text included.
    let decoder = ::png::Decoder::new(Cursor::new(written.as_slice()));
    let reader = decoder.read_info().unwrap();
    assert_eq!(reader.info().uncompressed_latin1_text[0].text, "a digit");
    round_trip(&written);

    // A tEXt chunk written by the png crate's encoder.
    let file = png_by_crate(4, 2, &ramp(8), Some(("Software", "arca test")));
    let images = parse(&file).unwrap();
    let written = round_trip(&write(images.layout(), &images.pixels).unwrap());
    assert_eq!(written.pixels, ramp(8));
    assert!(images.layout().windows(9).any(|w| w == b"arca test"));
}

#[test]
fn png_interlaced_is_read_and_written_plain() {
    for (w, h) in [(1, 1), (3, 2), (9, 11), (28, 28)] {
        let pixels = ramp(w * h);
        let file = png_file(
            ihdr(w as u32, h as u32, 8, 0, 1),
            &[(b"IDAT", &adam7(&pixels, w, h))],
        );
        let images = parse(&file).unwrap();
        assert_eq!(images.pixels, pixels, "{w}x{h}");
        let written = write(images.layout(), &images.pixels).unwrap();
        assert_eq!(written[8 + 8 + 12], 0, "written back not interlaced");
        assert_eq!(parse(&written).unwrap().pixels, pixels);
    }
}

#[test]
fn png_of_other_kinds_is_refused() {
    let idat: &[(&[u8; 4], &[u8])] = &[(b"IDAT", &[0, 0, 0, 0])];
    let cases: [(u8, u8, &str); 7] = [
        (
            8,
            2,
            "PNG is RGB (color type 2); only 8-bit grayscale is supported",
        ),
        (8, 3, "PNG is palette (indexed color) (color type 3)"),
        (8, 4, "grayscale with alpha (color type 4)"),
        (8, 6, "RGBA (color type 6)"),
        (
            16,
            0,
            "PNG is 16-bit grayscale; only 8-bit grayscale is supported",
        ),
        (4, 0, "PNG is 4-bit grayscale"),
        (1, 0, "PNG is 1-bit grayscale"),
    ];
    for (depth, color, text) in cases {
        assert_err_contains(parse(&png_file(ihdr(1, 1, depth, color, 0), idat)), &[text]);
    }
    // Made by the png crate, to be sure these are the real thing.
    let mut rgb = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut rgb, 2, 2);
    encoder.set_color(::png::ColorType::Rgb);
    encoder.set_depth(::png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[9; 12]).unwrap();
    writer.finish().unwrap();
    assert_err_contains(parse(&rgb), &["PNG is RGB (color type 2)"]);
    let mut indexed = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut indexed, 2, 2);
    encoder.set_color(::png::ColorType::Indexed);
    encoder.set_depth(::png::BitDepth::Eight);
    encoder.set_palette(vec![0, 0, 0, 255, 255, 255]);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0, 1, 1, 0]).unwrap();
    writer.finish().unwrap();
    assert_err_contains(parse(&indexed), &["palette", "color type 3"]);
    let mut deep = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut deep, 2, 2);
    encoder.set_color(::png::ColorType::Grayscale);
    encoder.set_depth(::png::BitDepth::Sixteen);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[1; 8]).unwrap();
    writer.finish().unwrap();
    assert_err_contains(parse(&deep), &["16-bit grayscale"]);
}

#[test]
fn png_damage_is_refused() {
    let good = png_file(
        ihdr(2, 2, 8, 0, 0),
        &[(b"IDAT", &scanlines(&[1, 2, 3, 4], 2))],
    );
    parse(&good).unwrap();
    let mut crc = good.clone();
    crc[8 + 8 + 13] ^= 1; // IHDR's CRC
    assert_err_contains(parse(&crc), &["IHDR", "bad CRC"]);
    let mut tail = good.clone();
    tail.extend_from_slice(b"xyz");
    assert_err_contains(parse(&tail), &["3 trailing bytes after its IEND"]);
    assert_err_contains(
        parse(&good[..good.len() - 12]),
        &["truncated PNG", "no IEND"],
    );
    assert_err_contains(
        parse(&good[..good.len() - 5]),
        &["truncated PNG", "needs 8 bytes"],
    );
    assert_err_contains(
        parse(&good[..good.len() - 14]),
        &["truncated PNG", "chunk IDAT"],
    );
    assert_err_contains(parse(&PNG_SIGNATURE), &["truncated PNG"]);
    assert_err_contains(parse(&png_file(ihdr(2, 2, 8, 0, 0), &[])), &["no IDAT"]);
    let apng = png_file(
        ihdr(2, 2, 8, 0, 0),
        &[
            (b"acTL", &[0, 0, 0, 1, 0, 0, 0, 0]),
            (b"IDAT", &scanlines(&[1, 2, 3, 4], 2)),
        ],
    );
    assert_err_contains(parse(&apng), &["animated PNG", "acTL"]);
    let plte = png_file(
        ihdr(2, 2, 8, 0, 0),
        &[
            (b"PLTE", &[0, 0, 0]),
            (b"IDAT", &scanlines(&[1, 2, 3, 4], 2)),
        ],
    );
    assert_err_contains(parse(&plte), &["PLTE"]);
    let critical = png_file(
        ihdr(2, 2, 8, 0, 0),
        &[(b"XYZW", &[]), (b"IDAT", &scanlines(&[1, 2, 3, 4], 2))],
    );
    assert_err_contains(parse(&critical), &["XYZW", "unknown critical chunk"]);
    let split = png_file(
        ihdr(2, 2, 8, 0, 0),
        &[
            (b"IDAT", &scanlines(&[1, 2, 3, 4], 2)),
            (b"tEXt", b"a\0b"),
            (b"IDAT", &[]),
        ],
    );
    assert_err_contains(parse(&split), &["not consecutive"]);
    let short = png_file(ihdr(2, 2, 8, 0, 0), &[(b"IDAT", &[0, 1, 2])]);
    assert_err_contains(parse(&short), &["malformed png"]);
    // A header promising far more pixels than the data can hold is refused before decoding.
    let huge = png_file(ihdr(30000, 30000, 8, 0, 0), &[(b"IDAT", &[0; 100])]);
    assert_err_contains(parse(&huge), &["cannot hold 30000x30000"]);
    let larger = png_file(ihdr(65536, 65536, 8, 0, 0), &[(b"IDAT", &[0; 100])]);
    assert_err_contains(parse(&larger), &["65536x65536", "limit"]);
    assert_err_contains(
        parse(&png_file(
            ihdr(0, 2, 8, 0, 0),
            &[(b"IDAT", &[0u8, 0, 0][..])],
        )),
        &["invalid size 0x2"],
    );
}

proptest! {
    #[test]
    fn png_round_trips(w in 1usize..20, h in 1usize..20, seed in any::<u64>(), interlace in any::<bool>()) {
        let pixels: Vec<u8> = (0..w * h).map(|i| ((i as u64).wrapping_mul(seed) >> 7) as u8).collect();
        let raw = if interlace { adam7(&pixels, w, h) } else { scanlines(&pixels, w) };
        let file = png_file(ihdr(w as u32, h as u32, 8, 0, u8::from(interlace)), &[(b"tEXt", b"k\0v"), (b"IDAT", &raw)]);
        let images = parse(&file).unwrap();
        prop_assert_eq!(&images.pixels, &pixels);
        let written = write(images.layout(), &pixels).unwrap();
        let again = parse(&written).unwrap();
        prop_assert_eq!(&again.pixels, &pixels);
        prop_assert_eq!(write(again.layout(), &pixels).unwrap(), written);
    }
}
