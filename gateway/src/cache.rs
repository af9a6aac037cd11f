//! Finality-aware response cache: answers that can never change are kept, bounded in bytes.
//!
//! IoTeX finality is instant (no reorgs: `safe` and `finalized` are the tip), so a result about a block at or
//! below the head of *every* routable node is final, and so is anything looked up by a hash once it is
//! non-null. [`cacheability`] is the one rule, a pure function with a unit test per case; which methods take
//! which row is said once, in [`crate::methods`]:
//!
//! | calls | cached when | why it is sound |
//! |---|---|---|
//! | `eth_chainId`, `net_version` | always | fixed for the life of a network |
//! | by block hash: `eth_getBlockByHash`, `eth_getBlockTransactionCountByHash`, `eth_getTransactionByBlockHashAndIndex`, `eth_getBlockReceipts`/`eth_call`/state reads at `{"blockHash": …}`, uncle lookups by hash | the result is non-null | a hash names one block's content forever; a node that has not seen the block answers null (or an error), which is never cached |
//! | `eth_getTransactionReceipt` | non-null | a receipt exists only once its transaction is mined, and mined is final on IoTeX |
//! | `eth_getTransactionByHash` | non-null **and** `blockNumber` set | a pending transaction is returned without a block and changes when mined; only the mined form is final |
//! | by number: `eth_getBlockByNumber`, `eth_getBlockTransactionCountByNumber`, `eth_getTransactionByBlockNumberAndIndex`, `eth_getBlockReceipts`, uncle lookups | explicit number ≤ safe head, non-null | every routable node already has that block, and it cannot change |
//! | state at a block: `eth_getBalance`, `eth_getCode`, `eth_getStorageAt`, `eth_getTransactionCount`, `eth_call`, `eth_getProof` | explicit block number ≤ safe head (or a block hash) | state after a final block is final |
//! | `eth_getLogs` | numeric `fromBlock` ≤ `toBlock` ≤ safe head; or `blockHash` with a non-empty answer | logs of final blocks are final; an empty answer by hash may come from a node that has not seen the block yet, so it is not kept |
//!
//! **Safe head** = the lowest head among routable upstreams in the health snapshot; with none routable,
//! nothing new is cached. Never cached: JSON-RPC errors, `null`, anything at `latest`/`pending`/`safe`/
//! `finalized` or without a block argument (which means `latest`), and every other method (head polling,
//! gas price, filters, transactions).
//!
//! The key is the method plus the params re-serialised by serde_json (whitespace-insensitive) with `0x…` hex
//! strings lower-cased (hashes, addresses and data are case-insensitive), so equivalent calls share an entry.
//! The value is the raw `result` JSON; a hit is re-wrapped with the caller's id
//! ([`iotex_shared::jsonrpc::result_response`]). Storage is `quick_cache` (sharded S3-FIFO) with a weigher
//! counting key + value bytes against `cache-max-bytes`.

use crate::methods::{self, Cache as Rule};
use crate::metrics::Metrics;
use bytes::Bytes;
use prometheus::{IntCounter, IntGauge};
use quick_cache::sync::Cache as QuickCache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Bookkeeping bytes charged per entry on top of key and value (hash-table slot, `Bytes` and `String` headers).
const ENTRY_OVERHEAD: u64 = 64;

/// A call's identity for caching and coalescing: method + canonical params.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    text: String,
    params: Value,
}

impl CallKey {
    /// Canonicalises `params` (absent params are `[]`). `None` when the params are not JSON (the node will
    /// answer that with an error, which is never reused anyway).
    pub fn new(method: &str, params: Option<&RawValue>) -> Option<CallKey> {
        let mut params: Value = match params {
            Some(p) => serde_json::from_str(p.get()).ok()?,
            None => Value::Array(Vec::new()),
        };
        lowercase_hex(&mut params);
        let mut text = String::with_capacity(method.len() + 64);
        text.push_str(method);
        // NUL cannot appear in a JSON text, so method and params cannot run into each other.
        text.push('\0');
        text.push_str(&params.to_string());
        Some(CallKey { text, params })
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.text.split('\0').next().unwrap_or("")
    }

    /// The canonical params.
    pub fn params(&self) -> &Value {
        &self.params
    }

    /// The canonical text (method, NUL, params).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn lowercase_hex(v: &mut Value) {
    match v {
        Value::String(s)
            if s.len() > 2
                && (s.starts_with("0x") || s.starts_with("0X"))
                && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
                && s.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            s.make_ascii_lowercase();
        }
        Value::Array(items) => items.iter_mut().for_each(lowercase_hex),
        Value::Object(map) => map.values_mut().for_each(lowercase_hex),
        _ => {}
    }
}

/// Whether a call's answer may be cached, and on which condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cacheability {
    /// Cache a non-null result.
    NonNull,
    /// Cache a non-null result whose `blockNumber` is set (a mined transaction).
    Mined,
    /// Cache a non-empty array (logs by block hash).
    NonEmpty,
    /// Never cache; the reason, for tests and logs.
    No(&'static str),
}

/// Which block a call refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockRef {
    Number(u64),
    Hash,
    /// A tag other than `earliest`, an absent argument (which means `latest`), or something unreadable.
    Moving,
}

fn is_hash_str(s: &str) -> bool {
    s.len() == 66 && s.starts_with("0x") && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

fn is_hash(v: &Value) -> bool {
    v.as_str().is_some_and(is_hash_str)
}

/// A block number: a hex quantity (no `"0x"`-as-zero: a request saying `"0x"` names no block).
fn quantity(s: &str) -> Option<u64> {
    iotex_shared::hex::quantity(s).ok()
}

fn block_ref(v: Option<&Value>) -> BlockRef {
    match v {
        Some(Value::String(s)) if s == "earliest" => BlockRef::Number(0),
        Some(Value::String(s)) if is_hash_str(s) => BlockRef::Hash,
        Some(Value::String(s)) => quantity(s).map_or(BlockRef::Moving, BlockRef::Number),
        // EIP-1898: {"blockNumber": n} or {"blockHash": h, "requireCanonical": b}.
        Some(Value::Object(o)) => match (o.get("blockNumber"), o.get("blockHash")) {
            (Some(n), None) => match block_ref(Some(n)) {
                BlockRef::Hash => BlockRef::Moving,
                r => r,
            },
            (None, Some(h)) if is_hash(h) => BlockRef::Hash,
            _ => BlockRef::Moving,
        },
        _ => BlockRef::Moving,
    }
}

fn at(block: BlockRef, safe_head: u64) -> Cacheability {
    match block {
        BlockRef::Hash => Cacheability::NonNull,
        BlockRef::Number(n) if n <= safe_head => Cacheability::NonNull,
        BlockRef::Number(_) => Cacheability::No("block above the safe head"),
        BlockRef::Moving => Cacheability::No("latest, pending or no explicit block"),
    }
}

/// Methods [`cacheability`] can ever say yes to (checked before a key is built).
pub fn may_cache(method: &str) -> bool {
    methods::cache_rule(method) != Rule::Never
}

/// The caching rule (see the module doc). `safe_head` is the lowest routable head; `None` caches nothing.
/// Which argument names the block, per method, is in the [`methods`] table.
pub fn cacheability(method: &str, params: &Value, safe_head: Option<u64>) -> Cacheability {
    let Some(safe) = safe_head else { return Cacheability::No("no routable upstream") };
    let arg = |i: usize| params.as_array().and_then(|a| a.get(i));
    let by_hash =
        |i: usize| if arg(i).is_some_and(is_hash) { Cacheability::NonNull } else { Cacheability::No("not a hash") };
    match methods::cache_rule(method) {
        Rule::Always => Cacheability::NonNull,
        Rule::MinedByHash => match by_hash(0) {
            Cacheability::NonNull => Cacheability::Mined,
            no => no,
        },
        Rule::ByHash => by_hash(0),
        Rule::AtBlock(i) => at(block_ref(arg(i)), safe),
        Rule::Logs => logs(arg(0), safe),
        Rule::Never => Cacheability::No("method results can change"),
    }
}

fn logs(filter: Option<&Value>, safe: u64) -> Cacheability {
    let Some(Value::Object(f)) = filter else { return Cacheability::No("no filter object") };
    if let Some(h) = f.get("blockHash") {
        return if is_hash(h) { Cacheability::NonEmpty } else { Cacheability::No("not a hash") };
    }
    let num = |k: &str| match f.get(k) {
        Some(Value::String(s)) if s == "earliest" => Some(0),
        Some(Value::String(s)) => quantity(s),
        _ => None,
    };
    match (num("fromBlock"), num("toBlock")) {
        (Some(from), Some(to)) if from <= to && to <= safe => Cacheability::NonNull,
        (Some(_), Some(to)) if to > safe => Cacheability::No("block above the safe head"),
        (Some(_), Some(_)) => Cacheability::No("empty range"),
        _ => Cacheability::No("latest, pending or no explicit block"),
    }
}

/// True when `result` (raw JSON) meets the condition `rule` sets.
fn admissible(rule: Cacheability, result: &str) -> bool {
    let result = result.trim();
    if result == "null" {
        return false;
    }
    match rule {
        Cacheability::NonNull => true,
        Cacheability::NonEmpty => {
            result.starts_with('[') && serde_json::from_str::<Vec<&RawValue>>(result).is_ok_and(|v| !v.is_empty())
        }
        Cacheability::Mined => {
            #[derive(serde::Deserialize)]
            struct Tx<'a> {
                #[serde(borrow, rename = "blockNumber")]
                block_number: Option<&'a RawValue>,
            }
            serde_json::from_str::<Tx<'_>>(result).ok().and_then(|t| t.block_number).is_some_and(|b| b.get() != "null")
        }
        Cacheability::No(_) => false,
    }
}

#[derive(Clone)]
struct ByteWeigher;

impl Weighter<String, Bytes> for ByteWeigher {
    fn weight(&self, key: &String, val: &Bytes) -> u64 {
        key.len() as u64 + val.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Counts evictions (and entries refused for being larger than a shard can hold).
#[derive(Clone)]
struct CountEvictions(IntCounter);

impl Lifecycle<String, Bytes> for CountEvictions {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn on_evict(&self, _: &mut Self::RequestState, _: String, _: Bytes) {
        self.0.inc();
    }
}

/// The cache: lookups and admissions for the request path (single calls and batch items alike).
pub struct Cache {
    store: QuickCache<String, Bytes, ByteWeigher, DefaultHashBuilder, CountEvictions>,
    metrics: Arc<Metrics>,
    bytes: IntGauge,
    entries: IntGauge,
}

impl Cache {
    /// A cache holding at most `max_bytes` of keys and results (`max_bytes` > 0).
    pub fn new(max_bytes: u64, metrics: Arc<Metrics>) -> Cache {
        // Shards bound lock contention, but each holds an equal slice of the budget; keep slices ≥ 1 MiB so a
        // large block still fits, and use one shard for small (test) budgets.
        let shards = usize::try_from(max_bytes >> 20).unwrap_or(usize::MAX).clamp(1, 16).next_power_of_two().min(16);
        let options = OptionsBuilder::new()
            .weight_capacity(max_bytes)
            .estimated_items_capacity(usize::try_from(max_bytes / 1024).unwrap_or(1 << 16).clamp(16, 1 << 20))
            .shards(shards)
            .build();
        let evictions = CountEvictions(metrics.reuse.evictions.clone());
        let store = match options {
            Ok(o) => QuickCache::with_options(o, ByteWeigher, DefaultHashBuilder::default(), evictions),
            // Only reachable with nonsensical options, which the values above rule out; fall back to defaults.
            Err(_) => QuickCache::with(1024, max_bytes, ByteWeigher, DefaultHashBuilder::default(), evictions),
        };
        let (bytes, entries) = (metrics.reuse.bytes.clone(), metrics.reuse.entries.clone());
        Cache { store, metrics, bytes, entries }
    }

    /// The cached raw `result` JSON for this call, counting a hit or a miss.
    pub fn lookup(&self, key: &CallKey) -> Option<Bytes> {
        let method = key.method();
        let found = self.store.get(key.as_str());
        match found {
            Some(_) => self.metrics.reuse.hit(method),
            None => self.metrics.reuse.miss(method),
        }
        found
    }

    /// Keeps `result` (the raw `result` JSON of a successful answer) if the rule allows it at `safe_head`.
    /// Returns whether it was stored.
    pub fn admit(&self, key: &CallKey, result: &str, safe_head: Option<u64>) -> bool {
        let rule = cacheability(key.method(), key.params(), safe_head);
        if !admissible(rule, result) {
            return false;
        }
        self.store.insert(key.as_str().to_owned(), Bytes::copy_from_slice(result.trim().as_bytes()));
        self.bytes.set(i64::try_from(self.store.weight()).unwrap_or(i64::MAX));
        self.entries.set(i64::try_from(self.store.len()).unwrap_or(i64::MAX));
        true
    }

    /// Changes the byte budget at run time (evicting down to it); for a future config reload.
    pub fn set_max_bytes(&self, max_bytes: u64) {
        self.store.set_capacity(max_bytes);
        self.bytes.set(i64::try_from(self.store.weight()).unwrap_or(i64::MAX));
        self.entries.set(i64::try_from(self.store.len()).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
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
}
