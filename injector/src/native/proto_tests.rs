use super::*;
use proptest::prelude::*;
use prost::Message;

/// `ActionCore` as prost's derive would write it: fields by tag, so the oneof (10, 12) lands before 28/29.
#[derive(Clone, PartialEq, prost::Message)]
struct NaiveCore {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(uint64, tag = "2")]
    nonce: u64,
    #[prost(uint64, tag = "3")]
    gas_limit: u64,
    #[prost(string, tag = "4")]
    gas_price: String,
    #[prost(uint32, tag = "5")]
    chain_id: u32,
    #[prost(string, tag = "6")]
    gas_tip_cap: String,
    #[prost(string, tag = "7")]
    gas_fee_cap: String,
    #[prost(message, repeated, tag = "9")]
    access_list: Vec<AccessTuple>,
    #[prost(uint32, tag = "28")]
    tx_type: u32,
    #[prost(message, repeated, tag = "29")]
    set_code_auth_list: Vec<SetCodeAuthorization>,
    #[prost(oneof = "NaivePayload", tags = "10, 12")]
    action: Option<NaivePayload>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum NaivePayload {
    #[prost(message, tag = "10")]
    Transfer(Transfer),
    #[prost(message, tag = "12")]
    Execution(Execution),
}

fn transfer() -> Transfer {
    Transfer { amount: "1".into(), recipient: "io1jh0ekmccywfkmj7e8qsuzsupnlk3w5337hjjg2".into(), payload: vec![] }
}

fn core(tx_type: u32) -> ActionCore {
    ActionCore {
        version: 1,
        nonce: 3,
        gas_limit: 21_000,
        gas_price: "1000000000000".into(),
        chain_id: 1,
        tx_type,
        action: Some(Payload::Transfer(transfer())),
        ..ActionCore::default()
    }
}

fn naive(c: &ActionCore) -> NaiveCore {
    NaiveCore {
        version: c.version,
        nonce: c.nonce,
        gas_limit: c.gas_limit,
        gas_price: c.gas_price.clone(),
        chain_id: c.chain_id,
        gas_tip_cap: c.gas_tip_cap.clone(),
        gas_fee_cap: c.gas_fee_cap.clone(),
        access_list: c.access_list.clone(),
        tx_type: c.tx_type,
        set_code_auth_list: c.set_code_auth_list.clone(),
        action: match &c.action {
            Some(Payload::Transfer(t)) => Some(NaivePayload::Transfer(t.clone())),
            Some(Payload::Execution(e)) => Some(NaivePayload::Execution(e.clone())),
            None => None,
        },
    }
}

/// The bytes Go writes, by hand: non-oneof fields in number order, then the oneof.
fn go_order(c: &ActionCore) -> Vec<u8> {
    let mut out = Vec::new();
    encoding::uint32::encode(1, &c.version, &mut out);
    encoding::uint64::encode(2, &c.nonce, &mut out);
    encoding::uint64::encode(3, &c.gas_limit, &mut out);
    encoding::string::encode(4, &c.gas_price, &mut out);
    encoding::uint32::encode(5, &c.chain_id, &mut out);
    if c.tx_type != 0 {
        encoding::uint32::encode(28, &c.tx_type, &mut out);
    }
    if let Some(Payload::Transfer(t)) = &c.action {
        encoding::message::encode(10, t, &mut out);
    }
    out
}

#[test]
fn legacy_cores_encode_as_prost_would_but_typed_ones_put_the_oneof_last_like_go() {
    let legacy = core(0);
    assert_eq!(legacy.encode_to_vec(), naive(&legacy).encode_to_vec(), "txType 0: the orders coincide");
    assert_eq!(legacy.encode_to_vec(), go_order(&legacy));

    let typed = core(2);
    let ours = typed.encode_to_vec();
    assert_ne!(ours, naive(&typed).encode_to_vec(), "prost's tag order differs as soon as txType is set");
    assert_eq!(ours, go_order(&typed), "ours is Go's order");
    // The last field on the wire is the oneof (tag 10, length-delimited = 0x52).
    let t = transfer().encode_to_vec();
    assert_eq!(&ours[ours.len() - t.len() - 2..ours.len() - t.len()], &[0x52, t.len() as u8]);
    // Both decode to the same message: only the order differs.
    assert_eq!(ActionCore::decode(ours.as_slice()).unwrap(), typed);
    assert_eq!(ActionCore::decode(naive(&typed).encode_to_vec().as_slice()).unwrap(), typed);
    assert_eq!(typed.encoded_len(), ours.len());
}

#[test]
fn every_field_round_trips_and_unknown_ones_are_skipped() {
    let c = ActionCore {
        version: 1,
        nonce: u64::MAX,
        gas_limit: 1,
        gas_price: "1".into(),
        chain_id: u32::MAX,
        gas_tip_cap: "2".into(),
        gas_fee_cap: "3".into(),
        access_list: vec![AccessTuple { address: "0xab".into(), storage_keys: vec!["0x01".into(), "0x02".into()] }],
        tx_type: 4,
        set_code_auth_list: vec![SetCodeAuthorization {
            chain_id: 1,
            address: vec![1; 20],
            nonce: 2,
            v: 1,
            r: vec![3; 32],
            s: vec![4; 32],
        }],
        action: Some(Payload::Execution(Execution { amount: "0".into(), contract: "".into(), data: vec![0x60, 0x80] })),
    };
    let mut bytes = c.encode_to_vec();
    assert_eq!(bytes.len(), c.encoded_len());
    assert_eq!(ActionCore::decode(bytes.as_slice()).unwrap(), c);
    // Field 8 (blobTxData) and a staking oneof member (40) are not ours: skipped, not an error.
    encoding::bytes::encode(8, &vec![1u8, 2, 3], &mut bytes);
    encoding::bytes::encode(40, &vec![], &mut bytes);
    assert_eq!(ActionCore::decode(bytes.as_slice()).unwrap(), c);
    let mut cleared = c.clone();
    cleared.clear();
    assert_eq!(cleared, ActionCore::default());
}

#[test]
fn malformed_bytes_are_errors_not_panics() {
    for bad in [&[0x0a][..], &[0x52, 0x05, 0x01], &[0xff; 11], &[0x08, 0x80], &[0x22, 0x02, 0xff, 0xfe]] {
        assert!(ActionCore::decode(bad).is_err(), "{bad:?}");
    }
    // A wire type that does not match the field's is refused too.
    assert!(ActionCore::decode(&[0x0a, 0x00][..]).is_err());
    assert!(ActionCore::decode(&[0x50, 0x01][..]).is_err());
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ActionCore::decode(bytes.as_slice());
        let _ = Action::decode(bytes.as_slice());
        let _ = StreamBlocksResponse::decode(bytes.as_slice());
        let _ = GetRawBlocksResponse::decode(bytes.as_slice());
    }

    #[test]
    fn our_encoding_decodes_back(nonce: u64, gas: u64, chain: u32, tx_type in 0u32..5, exec: bool, data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let action = if exec {
            Payload::Execution(Execution { amount: "5".into(), contract: "io1x".into(), data })
        } else {
            Payload::Transfer(Transfer { amount: "5".into(), recipient: "io1x".into(), payload: data })
        };
        let c = ActionCore { version: 1, nonce, gas_limit: gas, gas_price: "7".into(), chain_id: chain, tx_type, action: Some(action), ..ActionCore::default() };
        let bytes = c.encode_to_vec();
        prop_assert_eq!(bytes.len(), c.encoded_len());
        prop_assert_eq!(ActionCore::decode(bytes.as_slice()).unwrap(), c);
    }
}
