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
