//! The published vectors of iotex-node.md §5, byte for byte (antenna-go `account/account_test.go`,
//! iotex-core `action/sealedenvelope_test.go` and `envelope_test.go`, go-pkgs `crypto/secp256k1_test.go`).

use super::*;
use crate::native::proto::{Action, ActionCore, Payload, Transfer};
use alloy_primitives::hex;

const TEXT: &[u8] = b"IoTeX is the auto-scalable and privacy-centric blockchain.";
const SK: &str = "0806c458b262edd333a191e92f561aff338211ee3e18ab315a074a2d82aa343f";

fn key() -> PrivateKeySigner {
    SK.parse().unwrap()
}

#[test]
fn keccak_256_is_the_legacy_one() {
    assert_eq!(hex::encode(keccak256(TEXT)), "aada23f93a5ed1829ebf1c0693988dc3d2d879f703c7d3f54dcc1b473b27d015");
}

#[test]
fn key_gives_the_published_public_key_and_io_address() {
    let pk = pubkey(&key());
    assert_eq!(
        hex::encode(pk),
        "044e18306ae9ef4ec9d07bf6e705442d4d1a75e6cdf750330ca2d880f2cc54607c9c33deb9eae9c06e06e04fe9ce3d43962cc67d5aa34fbeb71270d4bad3d648d9"
    );
    assert_eq!(crate::address::to_io(&address_of(&pk)), "io187wzp08vnhjjpkydnr97qlh8kh0dpkkytfam8j");
    assert_eq!(address_of(&pk), key().address());
}

#[test]
fn rfc6979_signature_matches_with_k256_and_libsecp256k1() {
    let want = "482da72c8faa48ee1ac2cf9a5f9ecd42ee3258be5ddd8d6b496c7171dc7bfe8e75e5d16e7129c88d99a21a912e5c082fa1baab6ba87d2688ebd7d27bb1ab090701";
    assert_eq!(hex::encode(sign_bytes(&key(), TEXT).unwrap()), want);
    assert_eq!(hex::encode(sign_bytes(&crate::signer::fast(&key()), TEXT).unwrap()), want);
}

#[test]
fn signed_message_vector() {
    let mut msg = b"\x16IoTeX Signed Message:\n5".to_vec();
    msg.extend_from_slice(b"hello");
    assert_eq!(hex::encode(keccak256(&msg)), "5077b388a631936d73d9c6c9a0bf6016843a8b594540d1d968f7ea40d1541c58");
    assert_eq!(
        hex::encode(sign_bytes(&key(), &msg).unwrap()),
        "f09c729cc8617aeda344defba6c0eb0eb3ee71732e26f22d1a9fac5beeaa86da3a368417e31779b44e3df4440dfec89a9ecb40567b60228efb67c79672288cef01"
    );
}

/// The sealed transfer of iotex-core's envelope tests: 1010 IOTX, nonce 10, gas 20010 at 11 IOTX.
fn sealed_transfer(chain_id: u32, sig: &str) -> Action {
    let iotx = |n: u128| (n * 10u128.pow(18)).to_string();
    let core = ActionCore {
        version: 1,
        nonce: 10,
        gas_limit: 20_010,
        gas_price: iotx(11),
        chain_id,
        action: Some(Payload::Transfer(Transfer {
            amount: iotx(1010),
            recipient: "io1jh0ekmccywfkmj7e8qsuzsupnlk3w5337hjjg2".into(),
            payload: Vec::new(),
        })),
        ..ActionCore::default()
    };
    Action {
        core: Some(core),
        sender_pub_key: hex::decode("04403d3c0dbd3270ddfc248c3df1f9aafd60f1d8e7456961c9ef26292262cc68f0ea9690263bef9e197a38f06026814fc70912c2b98d2e90a68f8ddc5328180a01").unwrap(),
        signature: hex::decode(sig).unwrap(),
        encoding: 0,
    }
}

#[test]
fn action_hashes_for_chain_ids_0_and_1_with_both_signatures() {
    let short = "010203040506070809";
    let long = "15e73ad521ec9e06600c59e49b127c9dee114ad64fb2fcbe5e0d9f4c8d2b766e73d708cca1dc050dd27b20f2ee607f30428bf035f45d4da8ec2fb04a90c2c30901";
    let rows = [
        (0, short, "322884fb04663019be6fb461d9453827487eafdd57b4de3bd89a7d77c9bf8395"),
        (1, short, "80af7840d73772d3022d8bdc46278fb755352e5e9d5f2a1f12ee7ec4f1ea98e9"),
        (0, long, "0562e100b057804ee3cb4fa906a897852aa8075013a02ef1e229360f1e5ee339"),
        (1, long, "405343d671c395d77835b8857cc25317e3bf02680f8c875a4fe12087b0446184"),
    ];
    for (chain, sig, want) in rows {
        let a = sealed_transfer(chain, sig);
        assert_eq!(hex::encode(keccak256(a.encode_to_vec())), want, "chain id {chain}, sig {sig}");
    }
}

#[test]
fn seal_signs_the_core_bytes_and_hashes_the_action() {
    let k = key();
    let pk = pubkey(&k);
    let core = sealed_transfer(1, "").core.unwrap();
    let s = seal(&k, &pk, core.clone()).unwrap();
    assert_eq!(s.action.signature, sign_bytes(&k, &core.encode_to_vec()).unwrap().to_vec());
    assert_eq!(s.action.sender_pub_key, pk.to_vec());
    assert_eq!(s.hash, keccak256(s.action.encode_to_vec()));
    // V is 0 or 1 and S is in the lower half of the order (go-pkgs refuses anything else).
    assert!(s.action.signature[64] <= 1);
    let half_n = hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0").unwrap();
    assert!(s.action.signature[32..64] <= half_n[..]);
    // The signature recovers the sender.
    let sig = alloy_primitives::Signature::from_raw(&s.action.signature).unwrap();
    let from = sig.recover_address_from_prehash(&keccak256(core.encode_to_vec())).unwrap();
    assert_eq!(from, k.address());
}

#[test]
fn recovery_with_v_28() {
    let hash = hex::decode("f93a97fae37fdadab6d49b74e3f3e4bee707ea2f007e08007bcc356cb283665b").unwrap();
    let sig = hex::decode("5595906a47dfc107a78cc48b500f89ab2dec545ba86578295aed4a260ce9a98b335924e86f683832e313f1a5dda7826d9b59caf40dd22ce92716420a367dfaec1c").unwrap();
    // V = 28 is V = 1 in the {0, 1} form IoTeX writes (27 is subtracted, as go-pkgs does).
    let sig = alloy_primitives::Signature::from_raw(&sig).unwrap();
    assert!(sig.v());
    let from = sig.recover_address_from_prehash(&B256::from_slice(&hash)).unwrap();
    assert_eq!(hex::encode(from), "53fbc28faf9a52dfe5f591948a23189e900381b5");
}

#[test]
fn transfer_and_execution_cores_carry_io_addresses_and_decimal_amounts() {
    let call = Call {
        to: address_of(&pubkey(&key())),
        value: alloy_primitives::U256::from(1_000_000_000_000_000_000u128),
        input: alloy_primitives::Bytes::from_static(&[1, 2]),
        gas_limit: 21_000,
    };
    let p = CoreParams { chain_id: 2, gas_price: 1_000_000_000_000 };
    let t = core_for(ActionKind::Transfer, &call, 7, p);
    assert_eq!((t.version, t.nonce, t.gas_limit, t.chain_id, t.gas_price.as_str()), (1, 7, 21_000, 2, "1000000000000"));
    match t.action {
        Some(Payload::Transfer(tr)) => {
            assert_eq!(tr.amount, "1000000000000000000");
            assert_eq!(tr.recipient, "io187wzp08vnhjjpkydnr97qlh8kh0dpkkytfam8j");
        }
        other => panic!("{other:?}"),
    }
    match core_for(ActionKind::Execution, &call, 7, p).action {
        Some(Payload::Execution(e)) => assert_eq!(
            (e.contract.as_str(), e.data.as_slice()),
            ("io187wzp08vnhjjpkydnr97qlh8kh0dpkkytfam8j", &[1u8, 2][..])
        ),
        other => panic!("{other:?}"),
    }
    match deploy_core(vec![0x60], 0, 500_000, p).action {
        Some(Payload::Execution(e)) => assert_eq!((e.contract.as_str(), e.amount.as_str()), ("", "0")),
        other => panic!("{other:?}"),
    }
}
