//! IoTeX's native action messages (`injector/src/native/proto.rs`, hand-written prost with a manual
//! `ActionCore` codec in Go's field order) and sealing (`native/sign.rs`).
//!
//! The first input byte picks what the rest is decoded as: an `Action` (what `SendAction` carries), an
//! `ActionCore`, or one of the node's replies the injector decodes (`StreamBlocksResponse`,
//! `GetRawBlocksResponse`, `GetReceiptByActionResponse`, `GetAccountResponse`, `GetChainMetaResponse`).
//! Checked beyond "no panic":
//! - whatever decodes re-encodes to bytes that decode to the same message, `encoded_len` is the length
//!   actually written, and the re-encoding is a fixed point (encode ∘ decode ∘ encode = encode);
//! - for an `Action` with a core: sealing that core with a test key gives a signature that recovers to the
//!   key's address over the core's bytes, and the hash is Keccak-256 of the sealed action's bytes.

#![no_main]

use alloy_primitives::{Signature, keccak256};
use alloy_signer_local::PrivateKeySigner;
use iotex_injector::native::proto::{
    Action, ActionCore, GetAccountResponse, GetChainMetaResponse, GetRawBlocksResponse, GetReceiptByActionResponse,
    StreamBlocksResponse,
};
use iotex_injector::native::sign;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::LazyLock;

/// iotex-node.md §5's test key (published; loopback chains only).
static KEY: LazyLock<PrivateKeySigner> =
    LazyLock::new(|| match "0806c458b262edd333a191e92f561aff338211ee3e18ab315a074a2d82aa343f".parse() {
        Ok(k) => k,
        Err(e) => panic!("test key: {e}"),
    });

/// Decodes `bytes` as `M`; if that works, checks the round trip and returns the message.
fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let enc = m.encode_to_vec();
    assert_eq!(enc.len(), m.encoded_len(), "encoded_len is not what encode writes: {m:?}");
    let again = match M::decode(enc.as_slice()) {
        Ok(a) => a,
        Err(e) => panic!("re-encoding does not decode ({e}): {m:?}"),
    };
    assert_eq!(again, m, "decode(encode(m)) != m");
    assert_eq!(again.encode_to_vec(), enc, "encoding is not a fixed point");
    Some(m)
}

fn seal_checks(core: ActionCore) {
    let key = &*KEY;
    let pubkey = sign::pubkey(key);
    let core_bytes = core.encode_to_vec();
    let sealed = match sign::seal(key, &pubkey, core) {
        Ok(s) => s,
        Err(e) => panic!("seal: {e}"),
    };
    assert_eq!(sealed.hash, keccak256(sealed.action.encode_to_vec()), "hash is not over the action's bytes");
    let sig = &sealed.action.signature;
    assert_eq!(sig.len(), 65);
    assert!(sig[64] <= 1, "V must be 0 or 1");
    let parity = sig[64] == 1;
    let s = Signature::from_bytes_and_parity(&sig[..64], parity);
    let from = match s.recover_address_from_prehash(&keccak256(&core_bytes)) {
        Ok(a) => a,
        Err(e) => panic!("signature does not recover: {e}"),
    };
    assert_eq!(from, sign::address_of(&pubkey), "signature recovers to another address");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 8 {
        0 | 1 => {
            if let Some(a) = round_trip::<Action>(rest)
                && let Some(core) = a.core
                && which % 8 == 1
            {
                seal_checks(core);
            }
        }
        2 => drop(round_trip::<ActionCore>(rest)),
        3 => drop(round_trip::<StreamBlocksResponse>(rest)),
        4 => drop(round_trip::<GetRawBlocksResponse>(rest)),
        5 => drop(round_trip::<GetReceiptByActionResponse>(rest)),
        6 => drop(round_trip::<GetAccountResponse>(rest)),
        _ => drop(round_trip::<GetChainMetaResponse>(rest)),
    }
});
