//! The cache's hot path (criterion): building a call key and looking it up, hit and miss.
//!
//! `cargo bench -p iotex-gateway --bench cache`. Every cacheable read pays the key; a hit pays the lookup
//! and re-wrapping instead of an upstream round trip (~0.3–1 ms on loopback, README benchmarks).

use criterion::{Criterion, criterion_group, criterion_main};
use iotex_gateway::cache::{Cache, CallKey};
use iotex_gateway::metrics::Metrics;
use serde_json::value::RawValue;
use std::hint::black_box;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let (Ok(metrics), Ok(params), Ok(logs)) = (
        Metrics::new(),
        RawValue::from_string(r#"["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x1a2b"]"#.to_owned()),
        RawValue::from_string(
            r#"[{"fromBlock":"0x100","toBlock":"0x109","address":"0x5FbDB2315678afecb367f032d93F642f64180aa3"}]"#
                .to_owned(),
        ),
    ) else {
        return;
    };
    let cache = Cache::new(64 << 20, Arc::new(metrics));
    c.bench_function("cache/key/eth_getBalance", |b| {
        b.iter(|| CallKey::new("eth_getBalance", Some(black_box(&params))))
    });
    c.bench_function("cache/key/eth_getLogs", |b| b.iter(|| CallKey::new("eth_getLogs", Some(black_box(&logs)))));
    let Some(key) = CallKey::new("eth_getBalance", Some(&params)) else { return };
    cache.admit(&key, "\"0xde0b6b3a7640000\"", Some(1 << 20));
    c.bench_function("cache/lookup/hit", |b| b.iter(|| cache.lookup(black_box(&key)).map(|v| v.len())));
    let Some(miss) = CallKey::new("eth_getBalance", Some(&logs)) else { return };
    c.bench_function("cache/lookup/miss", |b| b.iter(|| cache.lookup(black_box(&miss)).map(|v| v.len())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
