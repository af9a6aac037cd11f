//! What the gateway knows about each JSON-RPC method, in one table: its metrics label, its class (which
//! routing path it takes), when its answer may be cached, whether identical concurrent calls may share one
//! answer, and whether it is denied by default.
//!
//! Every other module asks here instead of keeping its own list: `metrics` labels by [`label_index`], the
//! proxy routes by [`class`], the cache rule reads [`cache_rule`], coalescing asks [`may_coalesce`], and
//! `config` takes [`DEFAULT_DENY`]. A row whose name ends in `*` is a family (a prefix); a method matches
//! its own row first, else the family it starts with. A method in no row is a plain read, labelled `other`,
//! never cached, never coalesced, not denied.
//!
//! Metric label values are a contract: the labelled set ([`KNOWN_METHODS`]) must only grow, and it is
//! sorted. Lookups by name go through one hash index built on first use. This module imports nothing from the
//! crate (a leaf), so `config` can read the defaults without a cycle.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The routing path a method takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Any routable node may answer; retried elsewhere on failure.
    Read,
    /// A read whose block range may be split over nodes when wide (`eth_getLogs`, `logs.rs`).
    Logs,
    /// Changes state: resent only when it provably never reached a node; may be broadcast.
    Tx,
    /// Creates a filter in one node's memory (`filters.rs`).
    FilterCreate,
    /// Acts on a filter: must reach the node that created it (`filters.rs`).
    FilterUse,
    /// `eth_subscribe`/`eth_unsubscribe`: answered by the gateway over WebSocket (`ws/`); forwarded as a read
    /// over HTTP, where a node explains that it needs a socket.
    Subscribe,
    /// Acts on the node itself: administration, signing with node-held keys, dev-node controls.
    Node,
}

/// When a method's answer may be cached (the rules in `cache.rs`'s module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Results can change: never cached.
    Never,
    /// Fixed for the life of a network: always (non-null).
    Always,
    /// Looked up by the hash in `params[0]`: when it is a hash and the result is non-null.
    ByHash,
    /// A transaction by hash: as [`Cache::ByHash`], and only once mined (`blockNumber` set).
    MinedByHash,
    /// About the block in `params[i]`: an explicit number at or below the safe head, or a block hash.
    AtBlock(usize),
    /// `eth_getLogs`: a closed numeric range at or below the safe head, or a block hash with logs.
    Logs,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The method name, or a family prefix ending in `*`.
    pub name: &'static str,
    /// True when the method is its own `method` label value (else `other`).
    pub labelled: bool,
    /// Its routing path.
    pub class: Class,
    /// When its answer may be cached.
    pub cache: Cache,
    /// True when identical concurrent calls may share one upstream call (side-effect free, not node-local).
    pub coalesce: bool,
    /// True when the default `deny-method` list refuses it.
    pub deny: bool,
}

const LABEL: bool = true;
const OTHER: bool = false;
const COALESCE: bool = true;
const ALONE: bool = false;
const DENY: bool = true;
const PASS: bool = false;

const fn m(name: &'static str, labelled: bool, class: Class, cache: Cache, coalesce: bool, deny: bool) -> Method {
    Method { name, labelled, class, cache, coalesce, deny }
}

/// The table, sorted by name (a unit test checks), so an exact name is a binary search.
#[rustfmt::skip]
pub const METHODS: &[Method] = &[
    m("admin_*",                                 OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("anvil_*",                                 OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("debug_*",                                 OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("eth_accounts",                            LABEL, Class::Read,         Cache::Never,       ALONE,    PASS),
    m("eth_blobBaseFee",                         LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_blockNumber",                         LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_call",                                LABEL, Class::Read,         Cache::AtBlock(1),  COALESCE, PASS),
    m("eth_chainId",                             LABEL, Class::Read,         Cache::Always,      COALESCE, PASS),
    m("eth_coinbase",                            LABEL, Class::Read,         Cache::Never,       ALONE,    PASS),
    m("eth_createAccessList",                    LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_estimateGas",                         LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_feeHistory",                          LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_gasPrice",                            LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_get*",                                OTHER, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_getBalance",                          LABEL, Class::Read,         Cache::AtBlock(1),  COALESCE, PASS),
    m("eth_getBlockByHash",                      LABEL, Class::Read,         Cache::ByHash,      COALESCE, PASS),
    m("eth_getBlockByNumber",                    LABEL, Class::Read,         Cache::AtBlock(0),  COALESCE, PASS),
    m("eth_getBlockReceipts",                    LABEL, Class::Read,         Cache::AtBlock(0),  COALESCE, PASS),
    m("eth_getBlockTransactionCountByHash",      LABEL, Class::Read,         Cache::ByHash,      COALESCE, PASS),
    m("eth_getBlockTransactionCountByNumber",    LABEL, Class::Read,         Cache::AtBlock(0),  COALESCE, PASS),
    m("eth_getCode",                             LABEL, Class::Read,         Cache::AtBlock(1),  COALESCE, PASS),
    m("eth_getFilterChanges",                    LABEL, Class::FilterUse,    Cache::Never,       ALONE,    PASS),
    m("eth_getFilterLogs",                       LABEL, Class::FilterUse,    Cache::Never,       ALONE,    PASS),
    m("eth_getLogs",                             LABEL, Class::Logs,         Cache::Logs,        COALESCE, PASS),
    m("eth_getProof",                            LABEL, Class::Read,         Cache::AtBlock(2),  COALESCE, PASS),
    m("eth_getStorageAt",                        LABEL, Class::Read,         Cache::AtBlock(2),  COALESCE, PASS),
    m("eth_getTransactionByBlockHashAndIndex",   LABEL, Class::Read,         Cache::ByHash,      COALESCE, PASS),
    m("eth_getTransactionByBlockNumberAndIndex", LABEL, Class::Read,         Cache::AtBlock(0),  COALESCE, PASS),
    m("eth_getTransactionByHash",                LABEL, Class::Read,         Cache::MinedByHash, COALESCE, PASS),
    m("eth_getTransactionCount",                 LABEL, Class::Read,         Cache::AtBlock(1),  COALESCE, PASS),
    m("eth_getTransactionReceipt",               LABEL, Class::Read,         Cache::ByHash,      COALESCE, PASS),
    m("eth_getUncleByBlockHashAndIndex",         LABEL, Class::Read,         Cache::ByHash,      COALESCE, PASS),
    m("eth_getUncleByBlockNumberAndIndex",       LABEL, Class::Read,         Cache::AtBlock(0),  COALESCE, PASS),
    m("eth_getUncleCountByBlockHash",            LABEL, Class::Read,         Cache::ByHash,      COALESCE, PASS),
    m("eth_getUncleCountByBlockNumber",          LABEL, Class::Read,         Cache::AtBlock(0),  COALESCE, PASS),
    m("eth_maxPriorityFeePerGas",                LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_mining",                              LABEL, Class::Read,         Cache::Never,       ALONE,    PASS),
    m("eth_newBlockFilter",                      LABEL, Class::FilterCreate, Cache::Never,       ALONE,    PASS),
    m("eth_newFilter",                           LABEL, Class::FilterCreate, Cache::Never,       ALONE,    PASS),
    m("eth_newPendingTransactionFilter",         LABEL, Class::FilterCreate, Cache::Never,       ALONE,    PASS),
    m("eth_protocolVersion",                     LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_sendRawTransaction",                  LABEL, Class::Tx,           Cache::Never,       ALONE,    PASS),
    m("eth_sendTransaction",                     OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("eth_sign*",                               OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("eth_subscribe",                           OTHER, Class::Subscribe,    Cache::Never,       ALONE,    PASS),
    m("eth_syncing",                             LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("eth_uninstallFilter",                     LABEL, Class::FilterUse,    Cache::Never,       ALONE,    PASS),
    m("eth_unsubscribe",                         OTHER, Class::Subscribe,    Cache::Never,       ALONE,    PASS),
    m("evm_*",                                   OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("hardhat_*",                               OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("miner_*",                                 OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("net_listening",                           LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("net_peerCount",                           LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("net_version",                             LABEL, Class::Read,         Cache::Always,      COALESCE, PASS),
    m("personal_*",                              OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("txpool_*",                                OTHER, Class::Node,         Cache::Never,       ALONE,    DENY),
    m("web3_clientVersion",                      LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
    m("web3_sha3",                               LABEL, Class::Read,         Cache::Never,       COALESCE, PASS),
];

/// Where an exact method name sits: its row in [`METHODS`] and its label in [`KNOWN_METHODS`].
#[derive(Clone, Copy)]
struct Slots {
    row: usize,
    label: Option<usize>,
}

/// Every row name, hashed once. Each call looks its method up several times (policy, route, cache rule,
/// coalescing, metrics); a hash probe is ~10× cheaper than a binary search of ~100 names by `memcmp`.
static INDEX: LazyLock<HashMap<&'static str, Slots, foldhash::fast::RandomState>> = LazyLock::new(|| {
    METHODS
        .iter()
        .enumerate()
        .map(|(row, m)| (m.name, Slots { row, label: KNOWN_METHODS.binary_search(&m.name).ok() }))
        .collect()
});

/// Everything a call needs from the table about its method, looked up once per call and passed down: each
/// lookup hashes the name, and a call consults the table five or six times (policy, route, cache rule,
/// coalescing, metrics).
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// The method's own row or its family's (`None`: in no row).
    pub row: Option<&'static Method>,
    /// The position of the row named exactly by the method (the policy's verdicts are kept by position).
    pub position: Option<usize>,
    /// Its `method` label's index in [`KNOWN_METHODS`] (`None`: `other`).
    pub label: Option<usize>,
}

impl Known {
    /// The routing class (a method in no row is a [`Class::Read`]).
    pub fn class(&self) -> Class {
        self.row.map_or(Class::Read, |row| row.class)
    }

    /// When the answer may be cached.
    pub fn cache_rule(&self) -> Cache {
        self.row.map_or(Cache::Never, |row| row.cache)
    }

    /// True when identical concurrent calls may share one answer.
    pub fn may_coalesce(&self) -> bool {
        self.row.is_some_and(|row| row.coalesce)
    }
}

/// Looks `method` up once: see [`Known`].
pub fn known(method: &str) -> Known {
    match INDEX.get(method) {
        Some(s) => Known { row: METHODS.get(s.row), position: Some(s.row), label: s.label },
        None => Known { row: family(method), position: None, label: None },
    }
}

/// The family row (`name*`) that `method` belongs to.
fn family(method: &str) -> Option<&'static Method> {
    METHODS.iter().find(|row| row.name.strip_suffix('*').is_some_and(|prefix| method.starts_with(prefix)))
}

/// The routing class of `method` (a method in no row is a [`Class::Read`]).
pub fn class(method: &str) -> Class {
    known(method).class()
}

/// When `method`'s answer may be cached.
pub fn cache_rule(method: &str) -> Cache {
    known(method).cache_rule()
}

/// True for methods whose identical concurrent calls may share one answer.
pub fn may_coalesce(method: &str) -> bool {
    known(method).may_coalesce()
}

const fn labelled_count() -> usize {
    let (mut i, mut n) = (0, 0);
    while i < METHODS.len() {
        if METHODS[i].labelled {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn labelled() -> [&'static str; labelled_count()] {
    let mut out = [""; labelled_count()];
    let (mut i, mut n) = (0, 0);
    while i < METHODS.len() {
        if METHODS[i].labelled {
            out[n] = METHODS[i].name;
            n += 1;
        }
        i += 1;
    }
    out
}

const fn denied_count() -> usize {
    let (mut i, mut n) = (0, 0);
    while i < METHODS.len() {
        if METHODS[i].deny {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn denied() -> [&'static str; denied_count()] {
    let mut out = [""; denied_count()];
    let (mut i, mut n) = (0, 0);
    while i < METHODS.len() {
        if METHODS[i].deny {
            out[n] = METHODS[i].name;
            n += 1;
        }
        i += 1;
    }
    out
}

/// Methods that get their own `method` label value, sorted (they come from the sorted table). Everything
/// else is `other`.
pub const KNOWN_METHODS: [&str; labelled_count()] = labelled();

/// The default `deny-method` globs: node administration, signing with node-held keys, dev-node controls.
pub const DEFAULT_DENY: [&str; denied_count()] = denied();

/// Index of `method`'s label in [`KNOWN_METHODS`]; `None` means `other`.
pub fn label_index(method: &str) -> Option<usize> {
    INDEX.get(method).and_then(|s| s.label)
}

/// The `method` label value: the method itself if labelled, else `other`.
pub fn label(method: &str) -> &'static str {
    label_index(method).and_then(|i| KNOWN_METHODS.get(i)).copied().unwrap_or("other")
}

#[cfg(test)]
#[path = "methods_tests.rs"]
mod tests;
