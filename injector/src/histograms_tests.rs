//! The report's histogram encoding: lossless round trips, and hostile text refused without a panic or a
//! large allocation.

use super::*;
use hdrhistogram::serialization::V2Serializer;
use proptest::prelude::*;
use std::io::Write;

fn sample() -> Histogram<u64> {
    let mut h = new_histogram();
    for v in [1u64, 17, 950, 12_000, 12_001, 3_599_999_999] {
        h.record_n(v, v % 7 + 1).unwrap();
    }
    h
}

#[test]
fn encoding_round_trips_exactly() {
    let h = sample();
    let back = decode(&encode(&h)).unwrap();
    assert_eq!(back, h);
    assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
    assert!(decode("").unwrap().is_empty());
    // Plain (uncompressed) V2 is read too.
    let mut plain = Vec::new();
    V2Serializer::new().serialize(&h, &mut plain).unwrap();
    assert_eq!(decode(&B64.encode(&plain)).unwrap(), h);
}

/// Fee histograms have their own bounds: each kind decodes as itself and is refused in the other's place.
#[test]
fn fee_histograms_round_trip_and_are_not_read_as_latencies() {
    let mut fee = new_fee_histogram();
    for v in [1u64, 21_000, 10_000_000, crate::recorder::MAX_FEE_GWEI] {
        fee.record(v).unwrap();
    }
    assert_eq!(decode_fee(&encode(&fee)).unwrap(), fee);
    assert!(decode_fee("").unwrap().is_empty());
    let e = decode(&encode(&fee)).unwrap_err().to_string();
    assert!(e.contains("latency bounds"), "{e}");
    let e = decode_fee(&encode(&sample())).unwrap_err().to_string();
    assert!(e.contains("fee bounds"), "{e}");
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(b).unwrap();
    let body = z.finish().unwrap();
    let mut out = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

fn v2_header(payload_len: u32, digits: u32, low: u64, high: u64) -> Vec<u8> {
    let mut b = V2_COOKIE.to_be_bytes().to_vec();
    b.extend(payload_len.to_be_bytes());
    b.extend(0u32.to_be_bytes());
    b.extend(digits.to_be_bytes());
    b.extend(low.to_be_bytes());
    b.extend(high.to_be_bytes());
    b.extend(1.0f64.to_be_bytes());
    b
}

#[test]
fn hostile_histograms_are_refused_with_a_reason() {
    let high = new_histogram().high();
    let mut lying_len = v2_header(u32::MAX, 3, 1, high);
    lying_len.extend([2, 2]);
    let mut wide = v2_header(0, 5, 1, u64::MAX / 2);
    wide.truncate(40);
    // A count that saturates the total: one huge zig-zag varint counter.
    let mut huge = v2_header(9, 3, 1, high);
    huge.extend([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let bomb = deflate(&vec![0u8; 8 << 20]);
    let cases: Vec<(String, &str)> = vec![
        ("%%%".into(), "base64"),
        (B64.encode([1u8, 2]), "header"),
        (B64.encode(b"\x00\x00\x00\x00\x00\x00\x00\x00"), "cookie"),
        (B64.encode(&lying_len), "length"),
        (B64.encode(deflate(&lying_len)), "length"),
        (B64.encode(&wide), "bounds"),
        (B64.encode(deflate(&wide)), "bounds"),
        (B64.encode(&huge), "2^48"),
        (B64.encode(&bomb), "1 MiB"),
        (B64.encode(deflate(&[7u8; 64])), "cookie"),
        ("A".repeat(MAX_B64 + 4), "2 MiB"),
    ];
    for (text, why) in cases {
        let e = decode(&text).unwrap_err().to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = decode(&s);
        let _ = decode_fee(&s);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let high = new_histogram().high();
        let mut b = v2_header(tail.len() as u32, 3, 1, high);
        b.extend(&tail);
        let _ = decode(&B64.encode(&b));
        let _ = decode(&B64.encode(deflate(&b)));
        let mut f = v2_header(tail.len() as u32, 3, 1, new_fee_histogram().high());
        f.extend(&tail);
        let _ = decode_fee(&B64.encode(&f));
    }

    #[test]
    fn any_recorded_histogram_round_trips(values in proptest::collection::vec(1u64..3_600_000_000, 0..200)) {
        let mut h = new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        prop_assert_eq!(decode(&encode(&h)).unwrap(), h);
    }
}
