//! Sign + encode per action (criterion): what one core spends before an action reaches the socket.
//!
//! `cargo bench -p iotex-injector --bench sign`; `scripts/bench-injector.sh` prints the figures next to the
//! end-to-end rates.

use alloy_primitives::{Address, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use criterion::{Criterion, criterion_group, criterion_main};
use iotex_injector::signer::{Call, Fees, TxType, send_raw_body, sign};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let Ok(key) = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80".parse::<PrivateKeySigner>() else {
        return;
    };
    let transfer = Call { to: Address::repeat_byte(7), value: U256::from(1u8), input: Bytes::new(), gas_limit: 21_000 };
    let mut nonce = 0u64;
    let fast = iotex_injector::signer::fast(&key);
    for (name, ty) in [("legacy_transfer", TxType::Legacy), ("eip1559_transfer", TxType::Eip1559)] {
        c.bench_function(&format!("sign_encode/{name}/libsecp256k1"), |b| {
            b.iter(|| {
                nonce += 1;
                let s = sign(&fast, 4689, nonce, ty, Fees::flat(1_000_000_000_000), black_box(&transfer));
                s.map(|s| send_raw_body(nonce, &s.raw)).map(|b| b.len()).unwrap_or(0)
            })
        });
    }
    c.bench_function("sign_encode/legacy_transfer/k256", |b| {
        b.iter(|| {
            nonce += 1;
            let s = sign(&key, 4689, nonce, TxType::Legacy, Fees::flat(1_000_000_000_000), black_box(&transfer));
            s.map(|s| send_raw_body(nonce, &s.raw)).map(|b| b.len()).unwrap_or(0)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
