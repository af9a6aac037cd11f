//! Native actions as an independent decoder reads them: every action the injector can sign, encoded by our
//! hand-written protobuf (Go's field order), decoded by Google's Python `protobuf` with a descriptor built
//! from iotex-proto's field numbers, gives back exactly the fields we set, with nothing left over.

use alloy_primitives::{Address, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use iotex_injector::mix::ActionKind;
use iotex_injector::native::proto::{AccessTuple, Action, Payload};
use iotex_injector::native::sign::{self, CoreParams};
use iotex_injector::signer::Call;
use iotex_tests::protobuf_peer::Decoder;
use proptest::prelude::*;
use prost::Message;
use serde_json::{Value, json};
use std::sync::Mutex;

/// One decoder process for the whole property test.
static DECODER: Mutex<Option<Decoder>> = Mutex::new(None);

fn decode(bytes: &[u8]) -> anyhow::Result<Value> {
    let mut d = DECODER.lock().unwrap_or_else(|p| p.into_inner());
    if d.is_none() {
        *d = Some(Decoder::start()?);
    }
    d.as_mut().ok_or_else(|| anyhow::anyhow!("no decoder"))?.decode(bytes)
}

/// What the decoder must report for `a`.
fn expected(a: &Action) -> Value {
    let Some(c) = a.core.as_ref() else { return json!({"core": null}) };
    let (kind, amount, to, data) = match &c.action {
        Some(Payload::Transfer(t)) => ("transfer", &t.amount, &t.recipient, &t.payload),
        Some(Payload::Execution(e)) => ("execution", &e.amount, &e.contract, &e.data),
        None => return json!({"action": null}),
    };
    json!({
        "version": c.version, "nonce": c.nonce, "gas_limit": c.gas_limit, "gas_price": c.gas_price,
        "chain_id": c.chain_id, "gas_tip_cap": c.gas_tip_cap, "gas_fee_cap": c.gas_fee_cap, "tx_type": c.tx_type,
        "access_list": c.access_list.iter().map(|t| json!([t.address, t.storage_keys])).collect::<Vec<_>>(),
        "kind": kind, "amount": amount, "to": to, "data": alloy_primitives::hex::encode(data),
        "pubkey": alloy_primitives::hex::encode(&a.sender_pub_key),
        "signature": alloy_primitives::hex::encode(&a.signature), "encoding": 0, "unknown": 0,
    })
}

fn arb_call() -> impl Strategy<Value = (ActionKind, Call)> {
    (any::<bool>(), any::<[u8; 20]>(), any::<u128>(), proptest::collection::vec(any::<u8>(), 0..80), 1u64..30_000_000)
        .prop_map(|(exec, to, value, input, gas_limit)| {
            let kind = if exec { ActionKind::Execution } else { ActionKind::Transfer };
            (kind, Call { to: Address::from(to), value: U256::from(value), input: Bytes::from(input), gas_limit })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn python_protobuf_decodes_our_actions_to_the_same_fields(
        (kind, call) in arb_call(),
        nonce: u64,
        chain_id: u32,
        gas_price: u128,
        tx_type in prop_oneof![Just(0u32), Just(1), Just(2)],
        caps in proptest::option::of((any::<u64>(), any::<u64>())),
        access in proptest::collection::vec(("[0-9a-f]{1,40}", proptest::collection::vec("[0-9a-f]{1,64}", 0..3)), 0..3),
        seed in any::<[u8; 32]>(),
    ) {
        let Ok(key) = PrivateKeySigner::from_slice(&seed) else { return Ok(()) };
        let mut core = sign::core_for(kind, &call, nonce, CoreParams { chain_id, gas_price });
        // Typed-action fields the run does not set today, so the order after field 10 is exercised too.
        core.tx_type = tx_type;
        if let Some((tip, fee)) = caps {
            core.gas_tip_cap = tip.to_string();
            core.gas_fee_cap = fee.to_string();
        }
        core.access_list = access
            .into_iter()
            .map(|(address, storage_keys)| AccessTuple { address: format!("0x{address}"), storage_keys })
            .collect();
        let fail = |e: String| TestCaseError::fail(e);
        let signed = sign::seal(&key, &sign::pubkey(&key), core).map_err(|e| fail(e.to_string()))?;
        let got = decode(&signed.action.encode_to_vec()).map_err(|e| fail(e.to_string()))?;
        prop_assert_eq!(got, expected(&signed.action));
    }
}

#[test]
fn the_decoder_refuses_what_is_not_an_action() -> anyhow::Result<()> {
    let got = decode(&[0x0a, 0x05, 0x08])?;
    assert!(got["error"].as_str().is_some_and(|e| e.contains("DecodeError")), "{got}");
    Ok(())
}
