//! The gRPC listener's parsing of what clients send: labels, `grpc-timeout`, the action inside a
//! `SendActionRequest` frame; hostile input gives `None`, never a panic.

use super::*;
use proptest::prelude::*;

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
    f.extend_from_slice(msg);
    f
}

#[test]
fn labels_are_bounded() {
    assert!(METHODS.windows(2).all(|w| w[0] < w[1]), "METHODS must stay sorted");
    assert_eq!(method_label("GetChainMeta"), "GetChainMeta");
    assert_eq!(method_label(&"x".repeat(10_000)), "other");
    assert_eq!(code_label(0), "OK");
    assert_eq!(code_label(14), "UNAVAILABLE");
    assert_eq!(code_label(17), "UNKNOWN");
    assert_eq!(code_label(u32::MAX), "UNKNOWN");
}

#[test]
fn grpc_timeouts_are_read_and_nonsense_is_ignored() {
    let t = |s: &str| grpc_timeout(&HeaderValue::from_str(s).unwrap());
    assert_eq!(t("100m"), Some(Duration::from_millis(100)));
    assert_eq!(t("2S"), Some(Duration::from_secs(2)));
    assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(t("99999999n"), Some(Duration::from_nanos(99_999_999)));
    for bad in ["", "m", "100", "123456789m", "1x", "-1S", "1.5S", "１S"] {
        assert_eq!(t(bad), None, "{bad}");
    }
}

#[test]
fn the_action_is_found_in_a_send_action_frame() {
    let action = b"\x0a\x02\x08\x01\x12\x03abc";
    // SendActionRequest { action = 1 } with an unknown varint field before it.
    let mut msg = vec![0x10, 0x96, 0x01, 0x0a, u8::try_from(action.len()).unwrap()];
    msg.extend_from_slice(action);
    assert_eq!(action_bytes(&frame(&msg)), Some(&action[..]));
    // Compressed, truncated, lying about its length, no field 1, a varint that never ends.
    let mut compressed = frame(&msg);
    compressed[0] = 1;
    assert_eq!(action_bytes(&compressed), None);
    assert_eq!(action_bytes(&frame(&msg)[..7]), None);
    let mut long = frame(&msg);
    long[4] += 1;
    assert_eq!(action_bytes(&long), None);
    assert_eq!(action_bytes(&frame(&[0x10, 0x01])), None);
    assert_eq!(action_bytes(&frame(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), None);
    assert_eq!(action_bytes(&[]), None);
}

#[test]
fn the_success_answer_for_an_action_already_there_carries_its_hash() {
    let hash = "ab".repeat(32);
    let f = send_action_response(&hash);
    // The same reader finds field 1: the hash as the node would have answered it.
    assert_eq!(action_bytes(&f), Some(hash.as_bytes()));
}

#[test]
fn messages_are_percent_encoded() {
    assert_eq!(percent_encode("no node: 100% busy\nü"), "no node: 100%25 busy%0A%C3%BC");
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = action_bytes(&bytes);
        let _ = action_bytes(&frame(&bytes));
    }
}
