use super::config::*;
use super::interval::*;
use super::tokenizer::*;
use crate::engine::{ByteModel, ModelError};

/// A deterministic toy model: logits favour the byte after the previous one, more strongly
/// the longer the context, so windows vary in length.
struct Toy;

impl ByteModel for Toy {
    fn context_len(&self) -> usize {
        4
    }
    fn pad_id(&self) -> u16 {
        256
    }
    fn logit_frac_bits(&self) -> u32 {
        8
    }
    fn logits(&self, contexts: &[u16], batch: usize, out: &mut Vec<i32>) -> Result<(), ModelError> {
        out.clear();
        for row in contexts.chunks_exact(4).take(batch) {
            let known = row.iter().filter(|&&c| c != 256).count() as i32;
            let last = row[3];
            for b in 0..256u16 {
                let mut l = -((b as i32 * 37) % 11) * 64;
                if last != 256 && b == (last + 1) % 256 {
                    l += 256 * (2 + 2 * known);
                }
                if b == u16::from(b' ') || (b as u8).is_ascii_lowercase() {
                    l += 300;
                }
                out.push(l);
            }
        }
        Ok(())
    }
}

fn sample() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..3000u32 {
        v.push(match i % 29 {
            0..=20 => b'a' + ((i / 3) % 26) as u8,
            21 => b' ',
            22 => (i % 251) as u8,
            _ => b'a' + (i % 7) as u8,
        });
    }
    v
}

#[test]
fn interval_shortest_fraction_is_inside_and_short() {
    let mut iv = Interval::new(4);
    iv.narrow(5, 3, 4).unwrap();
    // [5/16, 8/16): 1/2 is outside, 3/8 = 0.011 is the shortest inside.
    let mut p = Vec::new();
    assert_eq!(iv.shortest(&mut p), 3);
    assert_eq!(bits_at(&p, 256 - 64).0, 3 << 61);
    // [8/16, 12/16): low itself, 1/2 = 0.1, is the shortest.
    let mut iv = Interval::new(4);
    iv.narrow(8, 4, 4).unwrap();
    assert_eq!(iv.shortest(&mut p), 1);
    assert_eq!(bits_at(&p, 256 - 64).0, 1 << 63);
    // [0, 1/2): zero needs no bits at all.
    let mut iv = Interval::new(4);
    iv.narrow(0, 1, 1).unwrap();
    assert_eq!(iv.shortest(&mut p), 0);
    assert!(p.iter().all(|&w| w == 0));
}

#[test]
fn windows_round_trip_at_every_size() {
    let text = sample();
    for bits in [16, 24, 32, 64, 128, 4096] {
        let tok = Tokenizer::new(&Toy, bits).unwrap().with_segment(1000);
        let w = tok.encode(&text, &Schedule::default()).unwrap();
        assert!(!w.is_empty());
        assert_eq!(
            tok.decode(&w, &Schedule::default()).unwrap(),
            text,
            "W={bits}"
        );
    }
}

#[test]
fn batched_equals_one_at_a_time() {
    let text = sample();
    let tok = Tokenizer::new(&Toy, 32).unwrap().with_segment(700);
    let one = tok.encode(&text, &Schedule::one_at_a_time()).unwrap();
    for schedule in [
        Schedule {
            threads: 2,
            batch: 3,
        },
        Schedule::default(),
    ] {
        assert_eq!(tok.encode(&text, &schedule).unwrap(), one);
        assert_eq!(tok.decode(&one, &schedule).unwrap(), text);
    }
}

#[test]
fn damaged_windows_are_errors_not_text() {
    let text = sample();
    let tok = Tokenizer::new(&Toy, 16).unwrap();
    let w = tok.encode(&text, &Schedule::default()).unwrap();
    let mut caught = 0;
    for i in (0..w.as_bytes().len()).step_by(7) {
        let mut bytes = w.as_bytes().to_vec();
        bytes[i] ^= 0x10;
        let bad = Windows::from_bytes(16, bytes).unwrap();
        match tok.decode(&bad, &Schedule::default()) {
            Err(EiwError::Corrupt { .. }) => caught += 1,
            Ok(t) => assert_ne!(t, text),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(caught > 0);
    assert!(matches!(
        Windows::from_bytes(16, vec![0; 3]),
        Err(EiwError::Ragged { .. })
    ));
    assert!(matches!(Tokenizer::new(&Toy, 12), Err(EiwError::Bits(12))));
}

#[test]
fn token_files_are_little_endian_ids() {
    let w = Windows::from_bytes(16, vec![0x12, 0x34, 0xab, 0xcd]).unwrap();
    assert_eq!(w.to_token_file(), vec![0x34, 0x12, 0xcd, 0xab]);
    assert_eq!(w.ids().collect::<Vec<_>>(), vec![0x1234, 0xabcd]);
    assert_eq!(Windows::from_token_file(16, &w.to_token_file()).unwrap(), w);
}

/// Bytes no model predicts (xorshift).
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn revision_1_windows_are_unchanged() {
    // Window counts and xxh3 digests written by the build before revision 2 (commit aa8535b):
    // the rules of revision 1 still code exactly as they did, so old windows still decode.
    let expected = [
        (16, "text", 1373, 0xaffa_9965_3c44_1727),
        (16, "noise", 1660, 0x2d38_ec5b_2673_16d7),
        (32, "text", 657, 0x94eb_f1bc_f64e_e19e),
        (32, "noise", 657, 0xd36a_7ce8_8fcf_c22d),
        (128, "text", 196, 0x6c84_f530_b26b_3a08),
        (128, "noise", 202, 0x57b7_8202_4922_f4fb),
    ];
    let (text, noise) = (sample(), noise(2000));
    for (bits, name, count, digest) in expected {
        let tok = Tokenizer::new(&Toy, bits)
            .unwrap()
            .with_segment(1000)
            .with_revision(1)
            .unwrap();
        let data = if name == "text" { &text } else { &noise };
        let w = tok.encode(data, &Schedule::default()).unwrap();
        let got = (w.len(), xxhash_rust::xxh3::xxh3_64(w.as_bytes()));
        assert_eq!(got, (count, digest), "W={bits} {name}");
        assert_eq!(&tok.decode(&w, &Schedule::default()).unwrap(), data);
    }
}

#[test]
fn raw_windows_bound_what_unpredictable_data_costs() {
    let noise = noise(4000);
    let text = sample();
    let cost = |w: &Windows, n: usize| (w.len() * w.bits() as usize) as f64 / n as f64;
    for bits in [32, 64, 128, 256] {
        let raw = Tokenizer::new(&Toy, bits).unwrap().with_segment(1000);
        let old = Tokenizer::new(&Toy, bits)
            .unwrap()
            .with_segment(1000)
            .with_revision(1)
            .unwrap();
        assert_eq!((raw.revision(), old.revision()), (REVISION, 1));
        let (w, w1) = (
            raw.encode(&noise, &Schedule::default()).unwrap(),
            old.encode(&noise, &Schedule::default()).unwrap(),
        );
        assert_eq!(raw.decode(&w, &Schedule::default()).unwrap(), noise);
        // A raw window holds (W - 6 - 8 - 1) / 8 bytes or more: its flag, the stop, the end.
        let bound = f64::from(bits) / f64::from((bits - 15) / 8);
        assert!(
            cost(&w, noise.len()) <= bound,
            "W={bits}: {} bits per byte",
            cost(&w, noise.len())
        );
        assert!(cost(&w, noise.len()) < cost(&w1, noise.len()), "W={bits}");
        // Raw windows take the bottom 1/64 of the interval: their codes start with six zeros.
        // From W = 128 on they hold more noise than the toy's windows do, so most are raw.
        let width = bits as usize / 8;
        let zeros = w.as_bytes().chunks(width).filter(|c| c[0] < 4).count();
        println!(
            "W={bits}: {:.2} bits per byte ({:.2} in revision 1), {zeros} of {} windows raw",
            cost(&w, noise.len()),
            cost(&w1, noise.len()),
            w.len()
        );
        if bits >= 128 {
            assert!(
                zeros * 10 >= w.len() * 9,
                "W={bits}: {zeros} of {}",
                w.len()
            );
        }
        // On text the model predicts, the flag costs 0.023 bits a window.
        let (t, t1) = (
            raw.encode(&text, &Schedule::default()).unwrap(),
            old.encode(&text, &Schedule::default()).unwrap(),
        );
        assert!(t.len() * 100 <= t1.len() * 101 + 100, "W={bits}");
        assert_eq!(raw.decode(&t, &Schedule::default()).unwrap(), text);
        // A damaged raw window is an error or other text, never this text.
        for i in (0..w.as_bytes().len()).step_by(11) {
            let mut bytes = w.as_bytes().to_vec();
            bytes[i] ^= 0x08;
            let bad = Windows::from_bytes(bits, bytes).unwrap();
            match raw.decode(&bad, &Schedule::default()) {
                Err(EiwError::Corrupt { .. }) => {}
                Ok(back) => assert_ne!(back, noise),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }
    assert!(matches!(
        Tokenizer::new(&Toy, 32).unwrap().with_revision(3),
        Err(EiwError::Revision(3))
    ));
}
