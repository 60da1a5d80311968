//! idx files, raw and gzipped.

use std::io::Read as _;

use proptest::prelude::*;

use super::*;

#[test]
fn idx_round_trips_and_gzip_comes_back_gzipped() -> Result<(), ImageError> {
    let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 7) as u8).collect();
    let file = idx_file(2, 3, 4, &pixels);
    let images = parse(&file)?;
    assert_eq!(
        (images.format, images.count, images.height, images.width),
        (ImageFormat::Idx, 2, 3, 4)
    );
    assert_eq!(images.image(1), &pixels[12..]);
    assert_eq!(write(images.layout(), &images.pixels)?, file);
    assert_eq!(layout_dims(images.layout())?, (ImageFormat::Idx, 2, 3, 4));

    let gz = crate::idx::gzip(&file)?;
    let images = parse(&gz)?;
    assert!(images.was_gzipped());
    let back = write(images.layout(), &images.pixels)?;
    assert_eq!(back, gz, "gzip with the fixed settings is reproduced");
    Ok(())
}

#[test]
fn mnist_idx_round_trips() {
    let file = mnist("t10k-first100-idx3-ubyte");
    let images = round_trip(&file);
    assert_eq!(images.format, ImageFormat::Idx);
    assert_eq!((images.count, images.height, images.width), (100, 28, 28));
    assert!(!images.was_gzipped());
    assert_eq!(images.image(0), &file[16..16 + 784]);
    assert_eq!(images.image(99), &file[file.len() - 784..]);
    assert_eq!(
        layout_dims(images.layout()).unwrap(),
        (ImageFormat::Idx, 100, 28, 28)
    );
    assert_eq!(images.layout().len(), LAYOUT_HEAD + 1);
}

#[test]
fn mnist_gzip_comes_back_gzipped() {
    let plain = mnist("t10k-first100-idx3-ubyte");
    let images = parse(&mnist("t10k-first100-idx3-ubyte.gz")).unwrap();
    assert!(images.was_gzipped());
    assert_eq!((images.count, images.height, images.width), (100, 28, 28));
    assert_eq!(images.pixels, plain[16..]);
    // Written back gzipped (fixed settings), the same idx bytes inside.
    let back = write(images.layout(), &images.pixels).unwrap();
    assert_eq!(back[..2], GZIP_MAGIC);
    let mut inside = Vec::new();
    flate2::read::GzDecoder::new(back.as_slice())
        .read_to_end(&mut inside)
        .unwrap();
    assert_eq!(inside, plain);
    // ...and that gzip file comes back byte for byte.
    round_trip(&back);
}

#[test]
fn idx_of_any_size_round_trips() {
    round_trip(&idx_file(1, 1, 1, &[7]));
    let images = round_trip(&idx_file(3, 2, 5, &ramp(30)));
    assert_eq!(images.image(1), &ramp(30)[10..20]);
    // Two gzip members back to back are one gzip file.
    let file = idx_file(2, 3, 3, &ramp(18));
    let mut two = gzip(&file[..20]);
    two.extend_from_slice(&gzip(&file[20..]));
    assert_eq!(parse(&two).unwrap().pixels, ramp(18));
}

#[test]
fn idx_length_errors_name_the_sizes() {
    let file = mnist("t10k-first100-idx3-ubyte");
    assert_err_contains(
        parse(&file[..5000]),
        &[
            "truncated idx file",
            "100 images of 28x28 (78416 bytes)",
            "file has 5000 bytes",
        ],
    );
    let mut longer = file.clone();
    longer.extend_from_slice(&[1, 2, 3]);
    assert_err_contains(
        parse(&longer),
        &["trailing bytes", "78416 bytes", "78419 bytes"],
    );
    assert_err_contains(
        parse(&file[..10]),
        &["truncated idx file", "10 bytes", "16"],
    );
    assert_err_contains(parse(&file[..3]), &["truncated idx file", "3 bytes"]);
    assert_err_contains(parse(&idx_file(0, 28, 28, &[])), &["image count of 0"]);
    assert_err_contains(parse(&idx_file(1, 0, 28, &[])), &["row count of 0"]);
    // The full MNIST header on 5000 bytes: the message of the issue.
    let mut head = idx_file(10000, 28, 28, &[]);
    head.resize(5000, 0);
    assert_eq!(
        message(parse(&head)),
        "truncated idx file: header says 10000 images of 28x28 (7840016 bytes), file has 5000 bytes"
    );
}

#[test]
fn idx_of_other_kinds_is_refused() {
    let labels = [0, 0, 8, 1, 0, 0, 0, 2, 7, 3];
    assert_err_contains(
        parse(&labels),
        &["1 dimensions", "labels file", "0x00000803"],
    );
    let floats = [
        0, 0, 0x0D, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    assert_err_contains(parse(&floats), &["0x0D", "32-bit float", "unsigned bytes"]);
    assert_err_contains(parse(&gzip(&labels)), &["gunzipped", "labels file"]);
}

#[test]
fn gzip_errors() {
    let gz = mnist("t10k-first100-idx3-ubyte.gz");
    assert_err_contains(parse(&gz[..gz.len() / 2]), &["corrupt gzip stream"]);
    assert_err_contains(parse(&gz[..5]), &["corrupt gzip stream"]);
    let mut tail = gz.clone();
    tail.extend_from_slice(b"junk after the stream");
    assert!(parse(&tail).is_err());
    // Truncated idx inside an intact gzip stream.
    let plain = mnist("t10k-first100-idx3-ubyte");
    assert_err_contains(
        parse(&gzip(&plain[..1000])),
        &[
            "truncated idx file (gunzipped)",
            "78416 bytes",
            "file has 1000 bytes",
        ],
    );
    assert_err_contains(parse(&gzip(b"P5 1 1 255\n\x00")), &["gzip", "no idx file"]);
    assert_err_contains(
        parse(&gzip(&[0, 0, 8])),
        &["truncated idx file (gunzipped)"],
    );
}

#[test]
fn gzip_bombs_stop_at_the_header_size() {
    // One 28x28 image announced, 64 MiB of zeros in the stream: read 785 bytes, refuse.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    gz.write_all(&idx_file(1, 28, 28, &[])).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    assert_err_contains(
        parse(&bomb),
        &["trailing bytes", "1 images of 28x28 (800 bytes)"],
    );
    // A header announcing more than the limit is refused before any pixel is read.
    assert_err_contains(
        parse(&gzip(&idx_file(65535, 65535, 65535, &[]))),
        &["65535 images of 65535x65535", "limit"],
    );
}

fn idx_strategy() -> impl Strategy<Value = Vec<u8>> {
    (1u32..5, 1u32..8, 1u32..8)
        .prop_flat_map(|(c, r, w)| {
            (
                Just((c, r, w)),
                prop::collection::vec(any::<u8>(), (c * r * w) as usize),
            )
        })
        .prop_map(|((c, r, w), pixels)| idx_file(c, r, w, &pixels))
}

proptest! {
    #[test]
    fn idx_round_trips(file in idx_strategy()) {
        let images = parse(&file).unwrap();
        prop_assert_eq!(write(images.layout(), &images.pixels).unwrap(), file.clone());
        let gz = parse(&gzip(&file)).unwrap();
        prop_assert_eq!(&gz.pixels, &images.pixels);
        let back = write(gz.layout(), &gz.pixels).unwrap();
        prop_assert_eq!(write(parse(&back).unwrap().layout(), &gz.pixels).unwrap(), back);
    }
}
