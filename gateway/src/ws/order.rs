//! The no-gap, no-duplicate rules of a topic, kept free of I/O so they are tested directly.
//!
//! - Heads: [`HeadGate`] remembers the last head number delivered. A head at or below it is a duplicate (a
//!   new upstream replaying, or a node behind the previous one) and is dropped; the next number is delivered;
//!   a larger jump is a gap that the caller fills, in order, before delivering the head. IoTeX blocks are final
//!   once produced, so a number identifies a block and "at or below" never hides a new block.
//! - Logs: [`LogDedup`] delivers each `(blockNumber, logIndex, removed)` once; keys more than a window below
//!   the newest head are forgotten, since no resubscribe backfills that far back.

use serde::Deserialize;
use std::collections::BTreeSet;

/// Largest gap filled by fetching blocks; a longer outage skips ahead (and says so in the log).
pub const MAX_GAP_FILL: u64 = 1000;

/// How far below the newest head log keys are remembered.
pub const LOG_WINDOW: u64 = 256;

/// What to do with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Deliver it.
    Deliver,
    /// Already delivered (or older): drop it.
    Duplicate,
    /// Deliver blocks `from..=to` first, then it.
    Gap {
        /// First missing block.
        from: u64,
        /// Last missing block.
        to: u64,
    },
}

/// The last head delivered to a topic's clients.
#[derive(Debug, Default, Clone)]
pub struct HeadGate {
    last: Option<u64>,
}

impl HeadGate {
    /// What to do with head `n`.
    pub fn check(&self, n: u64) -> Admit {
        match self.last {
            None => Admit::Deliver,
            Some(last) if n <= last => Admit::Duplicate,
            Some(last) if n == last + 1 => Admit::Deliver,
            Some(last) => {
                // Only the newest MAX_GAP_FILL blocks are fetched; older ones are given up on.
                let from = (last + 1).max(n.saturating_sub(MAX_GAP_FILL));
                Admit::Gap { from, to: n - 1 }
            }
        }
    }

    /// Records that head `n` was delivered (or, for a logs topic, seen).
    pub fn delivered(&mut self, n: u64) {
        self.last = Some(self.last.map_or(n, |l| l.max(n)));
    }

    /// The last head delivered.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

/// Logs already delivered.
#[derive(Debug, Default, Clone)]
pub struct LogDedup {
    seen: BTreeSet<(u64, u64, bool)>,
}

impl LogDedup {
    /// True when the log identified by `key` has not been delivered yet (and records it).
    pub fn admit(&mut self, key: LogKey) -> bool {
        self.seen.insert((key.block, key.index, key.removed))
    }

    /// Forgets keys more than [`LOG_WINDOW`] blocks below `head`.
    pub fn prune(&mut self, head: u64) {
        let floor = head.saturating_sub(LOG_WINDOW);
        self.seen = self.seen.split_off(&(floor, 0, false));
    }

    /// Keys remembered (for tests and debugging).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// What identifies a log across nodes: with instant finality, block number and index within the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKey {
    /// `blockNumber`.
    pub block: u64,
    /// `logIndex`.
    pub index: u64,
    /// `removed` (a reorg notice is a different event from the log itself).
    pub removed: bool,
}

fn quantity(s: &str) -> Option<u64> {
    iotex_shared::hex::quantity(s).ok()
}

/// The `number` of a head (a `newHeads` result or an `eth_getBlockByNumber` block).
pub fn head_number(raw: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        number: &'a str,
    }
    quantity(serde_json::from_str::<Head<'_>>(raw).ok()?.number)
}

/// The dedupe key of a log; `None` when it lacks a block number or index (then it is passed through).
pub fn log_key(raw: &str) -> Option<LogKey> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Log<'a> {
        #[serde(borrow)]
        block_number: Option<&'a str>,
        #[serde(borrow)]
        log_index: Option<&'a str>,
        #[serde(default)]
        removed: bool,
    }
    let l: Log<'_> = serde_json::from_str(raw).ok()?;
    Some(LogKey { block: quantity(l.block_number?)?, index: quantity(l.log_index?)?, removed: l.removed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn heads_are_delivered_once_and_gaps_are_named() {
        let mut g = HeadGate::default();
        assert_eq!(g.check(5), Admit::Deliver);
        g.delivered(5);
        assert_eq!(g.check(5), Admit::Duplicate);
        assert_eq!(g.check(3), Admit::Duplicate);
        assert_eq!(g.check(6), Admit::Deliver);
        assert_eq!(g.check(9), Admit::Gap { from: 6, to: 8 });
        g.delivered(9);
        assert_eq!(g.last(), Some(9));
        assert_eq!(g.check(9 + MAX_GAP_FILL + 50), Admit::Gap { from: 59, to: 9 + MAX_GAP_FILL + 49 });
    }

    #[test]
    fn parses_heads_and_log_keys() {
        assert_eq!(head_number(r#"{"number":"0x1a","hash":"0x00"}"#), Some(26));
        assert_eq!(head_number(r#"{"number":null}"#), None);
        let k = log_key(r#"{"blockNumber":"0x2","logIndex":"0x0","address":"0x00"}"#).unwrap();
        assert_eq!(k, LogKey { block: 2, index: 0, removed: false });
        assert!(log_key(r#"{"blockNumber":"0x2","logIndex":"0x1","removed":true}"#).unwrap().removed);
        assert_eq!(log_key(r#"{"logIndex":"0x1"}"#), None);
    }

    #[test]
    fn log_dedup_forgets_below_the_window() {
        let mut d = LogDedup::default();
        let k = |block| LogKey { block, index: 0, removed: false };
        assert!(d.admit(k(1)));
        assert!(!d.admit(k(1)));
        assert!(d.admit(k(1000)));
        d.prune(1000);
        assert_eq!(d.len(), 1);
        assert!(!d.admit(k(1000)));
    }

    proptest! {
        /// Whatever order and repetition heads arrive in (failover replays, lagging nodes), delivering what
        /// the gate says, filling gaps first, yields strictly consecutive numbers.
        #[test]
        fn delivered_heads_are_strictly_consecutive(arrivals in proptest::collection::vec(1u64..200, 1..80)) {
            let mut g = HeadGate::default();
            let mut out: Vec<u64> = Vec::new();
            for n in arrivals {
                match g.check(n) {
                    Admit::Duplicate => {}
                    Admit::Deliver => { out.push(n); g.delivered(n); }
                    Admit::Gap { from, to } => {
                        for b in from..=to { out.push(b); g.delivered(b); }
                        out.push(n);
                        g.delivered(n);
                    }
                }
            }
            prop_assert!(out.windows(2).all(|w| w[1] == w[0] + 1), "{out:?}");
        }
    }
}
