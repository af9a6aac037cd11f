use super::*;
use serde_json::json;

const H: &str = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";

fn rule(method: &str, params: Value, safe: Option<u64>) -> Cacheability {
    cacheability(method, &params, safe)
}

fn yes(c: Cacheability) -> bool {
    !matches!(c, Cacheability::No(_))
}

#[test]
fn constants_are_always_cacheable_but_not_without_a_routable_node() {
    assert_eq!(rule("eth_chainId", json!([]), Some(0)), Cacheability::NonNull);
    assert_eq!(rule("net_version", json!([]), Some(5)), Cacheability::NonNull);
    assert!(!yes(rule("eth_chainId", json!([]), None)));
}

#[test]
fn by_hash_lookups_need_a_hash_and_a_non_null_answer() {
    for m in [
        "eth_getTransactionReceipt",
        "eth_getBlockByHash",
        "eth_getBlockTransactionCountByHash",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getUncleCountByBlockHash",
        "eth_getUncleByBlockHashAndIndex",
    ] {
        assert_eq!(rule(m, json!([H, false]), Some(1)), Cacheability::NonNull, "{m}");
        assert!(!yes(rule(m, json!(["0x12", false]), Some(1))), "{m} with a non-hash");
        assert!(!yes(rule(m, json!([]), Some(1))), "{m} without params");
        assert!(may_cache(m));
    }
    assert!(!admissible(Cacheability::NonNull, "null"));
    assert!(!admissible(Cacheability::NonNull, " null "));
    assert!(admissible(Cacheability::NonNull, "{\"status\":\"0x1\"}"));
}

#[test]
fn a_transaction_by_hash_is_cached_only_once_mined() {
    assert_eq!(rule("eth_getTransactionByHash", json!([H]), Some(1)), Cacheability::Mined);
    assert!(!admissible(Cacheability::Mined, r#"{"hash":"0x1","blockNumber":null}"#));
    assert!(!admissible(Cacheability::Mined, r#"{"hash":"0x1"}"#));
    assert!(!admissible(Cacheability::Mined, "null"));
    assert!(admissible(Cacheability::Mined, r#"{"hash":"0x1","blockNumber":"0x5"}"#));
}

#[test]
fn by_number_lookups_at_or_below_the_safe_head_only() {
    for m in [
        "eth_getBlockByNumber",
        "eth_getBlockTransactionCountByNumber",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getUncleCountByBlockNumber",
        "eth_getUncleByBlockNumberAndIndex",
        "eth_getBlockReceipts",
    ] {
        assert_eq!(rule(m, json!(["0xa", false]), Some(10)), Cacheability::NonNull, "{m} at the safe head");
        assert_eq!(rule(m, json!(["0x1", false]), Some(10)), Cacheability::NonNull, "{m} below");
        assert!(!yes(rule(m, json!(["0xb", false]), Some(10))), "{m} above the safe head");
        assert_eq!(rule(m, json!(["earliest"]), Some(10)), Cacheability::NonNull, "{m} earliest");
        for tag in ["latest", "pending", "safe", "finalized", "0x", "0xzz", "12"] {
            assert!(!yes(rule(m, json!([tag, false]), Some(10))), "{m} {tag}");
        }
        assert!(!yes(rule(m, json!([]), Some(10))), "{m} without a block");
        assert!(!yes(rule(m, json!(["0x1"]), None)), "{m} with nothing routable");
    }
    assert_eq!(rule("eth_getBlockReceipts", json!([H]), Some(0)), Cacheability::NonNull, "receipts by hash");
}

#[test]
fn state_reads_at_an_explicit_block() {
    let a = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
    for (m, base) in [
        ("eth_getBalance", json!([a])),
        ("eth_getCode", json!([a])),
        ("eth_getTransactionCount", json!([a])),
        ("eth_call", json!([{"to": a, "data": "0x"}])),
        ("eth_getStorageAt", json!([a, "0x0"])),
        ("eth_getProof", json!([a, []])),
    ] {
        let with = |b: Value| {
            let mut p = base.as_array().cloned().unwrap_or_default();
            p.push(b);
            Value::Array(p)
        };
        assert!(!yes(rule(m, base.clone(), Some(10))), "{m} without a block means latest");
        assert_eq!(rule(m, with(json!("0x5")), Some(10)), Cacheability::NonNull, "{m} at 5");
        assert!(!yes(rule(m, with(json!("0x50")), Some(10))), "{m} above");
        for tag in ["latest", "pending", "safe", "finalized"] {
            assert!(!yes(rule(m, with(json!(tag)), Some(10))), "{m} {tag}");
        }
        assert_eq!(rule(m, with(json!({"blockHash": H})), Some(10)), Cacheability::NonNull, "{m} EIP-1898 hash");
        assert_eq!(rule(m, with(json!({"blockNumber": "0x3"})), Some(10)), Cacheability::NonNull, "{m} 1898 num");
        assert!(!yes(rule(m, with(json!({"blockNumber": "latest"})), Some(10))), "{m} 1898 latest");
        assert_eq!(rule(m, with(json!(H)), Some(10)), Cacheability::NonNull, "{m} at a block hash");
    }
}

#[test]
fn logs_need_a_closed_final_range_or_a_block_hash() {
    let r = |f: Value, safe| rule("eth_getLogs", json!([f]), Some(safe));
    assert_eq!(r(json!({"fromBlock": "0x1", "toBlock": "0x5"}), 5), Cacheability::NonNull);
    assert_eq!(r(json!({"fromBlock": "earliest", "toBlock": "0x5", "address": "0xab"}), 9), Cacheability::NonNull);
    assert!(!yes(r(json!({"fromBlock": "0x1", "toBlock": "0x6"}), 5)), "above the safe head");
    assert!(!yes(r(json!({"fromBlock": "0x1", "toBlock": "latest"}), 5)));
    assert!(!yes(r(json!({"fromBlock": "0x1"}), 5)), "open range means latest");
    assert!(!yes(r(json!({"toBlock": "0x1"}), 5)), "no fromBlock means latest");
    assert!(!yes(r(json!({"fromBlock": "0x4", "toBlock": "0x1"}), 5)), "inverted range");
    assert!(!yes(r(json!({"fromBlock": "pending", "toBlock": "pending"}), 5)));
    assert_eq!(r(json!({"blockHash": H}), 0), Cacheability::NonEmpty);
    assert!(!yes(rule("eth_getLogs", json!([]), Some(5))));
    assert!(!admissible(Cacheability::NonEmpty, "[]"));
    assert!(admissible(Cacheability::NonEmpty, "[{\"logIndex\":\"0x0\"}]"));
    assert!(admissible(Cacheability::NonNull, "[]"), "an empty final range is final");
}

#[test]
fn moving_and_side_effecting_methods_are_never_cached() {
    for m in [
        "eth_blockNumber",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_estimateGas",
        "eth_sendRawTransaction",
        "eth_newFilter",
        "eth_newBlockFilter",
        "eth_getFilterChanges",
        "eth_getFilterLogs",
        "eth_uninstallFilter",
        "eth_syncing",
        "net_peerCount",
        "web3_clientVersion",
        "anvil_mine",
    ] {
        assert!(!yes(rule(m, json!(["0x1", H]), Some(100))), "{m}");
        assert!(!may_cache(m), "{m}");
    }
}

#[test]
fn keys_ignore_whitespace_and_hex_case_but_not_values() {
    let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
    let a = CallKey::new("eth_getBalance", Some(&raw(r#"[ "0xABcd", "0x1" ]"#))).unwrap();
    let b = CallKey::new("eth_getBalance", Some(&raw(r#"["0xabcd","0x1"]"#))).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.method(), "eth_getBalance");
    let c = CallKey::new("eth_getBalance", Some(&raw(r#"["0xabcd","0x2"]"#))).unwrap();
    assert_ne!(a, c);
    let d = CallKey::new("eth_getCode", Some(&raw(r#"["0xabcd","0x1"]"#))).unwrap();
    assert_ne!(a.as_str(), d.as_str(), "the method is part of the key");
    assert_eq!(CallKey::new("eth_chainId", None).unwrap(), CallKey::new("eth_chainId", Some(&raw("[]"))).unwrap());
    let o1 = CallKey::new("eth_getLogs", Some(&raw(r#"[{"toBlock":"0x2","fromBlock":"0x1"}]"#))).unwrap();
    let o2 = CallKey::new("eth_getLogs", Some(&raw(r#"[{"fromBlock":"0x1","toBlock":"0x2"}]"#))).unwrap();
    assert_eq!(o1, o2, "object key order does not matter");
    let s1 = CallKey::new("web3_sha3", Some(&raw(r#"["Hello"]"#))).unwrap();
    let s2 = CallKey::new("web3_sha3", Some(&raw(r#"["hello"]"#))).unwrap();
    assert_ne!(s1, s2, "only 0x-hex strings are case-folded");
}

#[test]
fn store_admits_by_rule_and_evicts_by_bytes() {
    let m = Arc::new(Metrics::new().unwrap());
    let cache = Cache::new(4096, Arc::clone(&m));
    let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
    let key = |n: u64| CallKey::new("eth_getBlockByNumber", Some(&raw(&format!("[\"0x{n:x}\",false]")))).unwrap();
    assert!(!cache.admit(&key(5), "{}", Some(4)), "above the safe head");
    assert!(!cache.admit(&key(1), "null", Some(4)), "null");
    assert!(cache.lookup(&key(1)).is_none());
    assert!(cache.admit(&key(1), "{\"number\":\"0x1\"}", Some(4)));
    assert_eq!(cache.lookup(&key(1)).unwrap(), Bytes::from_static(b"{\"number\":\"0x1\"}"));
    let big = format!("\"{}\"", "a".repeat(400));
    for n in 0..64 {
        cache.admit(&key(n), &big, Some(100));
    }
    assert!(m.reuse.evictions.get() > 0, "a byte bound evicts");
    assert!(m.reuse.bytes.get() <= 4096, "{}", m.reuse.bytes.get());
    // A reload can shrink the budget: entries are evicted down to it at once.
    cache.set_max_bytes(1024);
    assert!(m.reuse.bytes.get() <= 1024, "{}", m.reuse.bytes.get());
    let text = String::from_utf8(m.render()).unwrap();
    assert!(text.contains("iotex_gateway_cache_hits_total{method=\"eth_getBlockByNumber\"} 1"), "{text}");
    assert!(text.contains("iotex_gateway_cache_misses_total{method=\"eth_getBlockByNumber\"} 1"), "{text}");
}

#[test]
fn surely_moving_never_contradicts_the_rule() {
    let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
    let cases: &[(&str, Option<&str>, bool)] = &[
        ("eth_getBalance", Some(r#"["0x97186a21fa8e7955c0f154f960d588c3aca44f14","latest"]"#), true),
        ("eth_getBalance", Some(r#"["0x97186a21fa8e7955c0f154f960d588c3aca44f14"]"#), true),
        ("eth_getBalance", Some(r#"[ "0x97186a21fa8e7955c0f154f960d588c3aca44f14" , "pending" ]"#), true),
        ("eth_getBalance", None, true),
        ("eth_getBlockByNumber", Some(r#"["finalized",false]"#), true),
        ("eth_call", Some(r#"[{"to":"0x00"},"safe"]"#), true),
        // Not clear without the full rule: the slow path decides.
        ("eth_getBalance", Some(r#"["0x97186a21fa8e7955c0f154f960d588c3aca44f14","0x10"]"#), false),
        ("eth_getBalance", Some(r#"["0x97186a21fa8e7955c0f154f960d588c3aca44f14","earliest"]"#), false),
        ("eth_getBalance", Some(r#"["0x97","\u006catest"]"#), false),
        ("eth_getBalance", Some(r#"["0x97",{"blockNumber":"0x1"}]"#), false),
        ("eth_getBalance", Some(r#"{"address":"0x97"}"#), false),
        ("eth_getTransactionByHash", Some(r#"["0x12"]"#), false),
        ("eth_blockNumber", None, false),
        ("eth_getLogs", Some(r#"[{}]"#), false),
    ];
    for &(method, params, want) in cases {
        let params = params.map(raw);
        let got = surely_moving(crate::methods::cache_rule(method), params.as_deref());
        assert_eq!(got, want, "{method} {params:?}");
        // The promise: "surely moving" is never cacheable, whatever the head.
        if got && let Some(key) = CallKey::new(method, params.as_deref()) {
            for head in [None, Some(0), Some(u64::MAX)] {
                assert!(
                    matches!(cacheability(key.method(), key.params(), head), Cacheability::No(_)),
                    "{method} {params:?} at {head:?}"
                );
            }
        }
    }
}
