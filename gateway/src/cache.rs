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

/// True when, without building a [`CallKey`], the call clearly names a moving block (`latest`, `pending`,
/// `safe`, `finalized`, or no block argument, which means `latest`): [`cacheability`] then says no at any
/// head. `false` means "not clear from here" (a number, a hash, an object, odd JSON), never "cacheable".
/// Such calls are the bulk of uncacheable reads, and this spares them the canonical key (a `Value` tree
/// and its text, ~6,000 instructions per call). `rule` is the method's rule in the [`methods`] table.
pub fn surely_moving(rule: Rule, params: Option<&RawValue>) -> bool {
    let Rule::AtBlock(i) = rule else { return false };
    let Some(params) = params else { return true };
    use serde::Deserializer as _;
    serde_json::Deserializer::from_str(params.get()).deserialize_seq(NthMoves(i)).unwrap_or(false)
}

/// Walks a params array without collecting it: whether argument `.0` is a moving tag or absent.
struct NthMoves(usize);

impl<'de> serde::de::Visitor<'de> for NthMoves {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a params array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let (mut at, mut moving) = (0, true);
        while let Some(arg) = seq.next_element::<&'de RawValue>()? {
            if at == self.0 {
                moving = matches!(arg.get(), r#""latest""# | r#""pending""# | r#""safe""# | r#""finalized""#);
            }
            at += 1;
        }
        Ok(moving)
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
#[path = "cache_tests.rs"]
mod tests;
