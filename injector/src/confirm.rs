//! Tracking accepted actions to inclusion, and reconciling whatever is left at the end.
//!
//! Each endpoint has a map from transaction hash to a compact [`Pending`] record (the only per-action
//! memory a run keeps; see [`RECORD_BYTES`]). A record is inserted *before* the send, so an automining node
//! that includes the action before answering cannot race the follower. One follower task per endpoint polls
//! `eth_blockNumber` and reads each new block's transaction hashes; a match is an inclusion, with latency from
//! the intended send time. At the end every remaining record is looked up: receipt → included; known to the
//! node → pending at end; unknown → dropped (or, for a send that never got an answer, a rejection).

use crate::error::Kind;
use crate::recorder::Recorder;
use crate::rpc::Rpc;
use alloy_primitives::B256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Where an action stands while tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being sent.
    InFlight,
    /// A hash came back.
    Accepted,
    /// Sent, no answer (timeout / connection cut): decided at reconciliation.
    Unknown(Kind),
}

/// A tracked action: what inclusion latency and reconciliation need, nothing else.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Intended send time, microseconds after the run's start.
    pub due_us: u64,
    /// An execution (its receipt is checked for a revert).
    pub execution: bool,
    /// Where it stands.
    pub status: Status,
}

/// Bytes per tracked action in the map: key + value (hash-table overhead comes on top; the bench measures it).
pub const RECORD_BYTES: usize = std::mem::size_of::<B256>() + std::mem::size_of::<Pending>();

/// The per-endpoint maps.
#[derive(Debug)]
pub struct Tracker {
    maps: Vec<Mutex<HashMap<B256, Pending>>>,
    start: Instant,
}

impl Tracker {
    /// Maps for `endpoints` endpoints, latencies counted from `start`.
    pub fn new(endpoints: usize, start: Instant) -> Tracker {
        Tracker { maps: (0..endpoints).map(|_| Mutex::new(HashMap::new())).collect(), start }
    }

    fn map(&self, ep: usize) -> Option<MutexGuard<'_, HashMap<B256, Pending>>> {
        self.maps.get(ep).map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Starts tracking an action about to be sent.
    pub fn insert(&self, ep: usize, hash: B256, due: Instant, execution: bool) {
        let due_us = u64::try_from(due.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX);
        if let Some(mut m) = self.map(ep) {
            m.insert(hash, Pending { due_us, execution, status: Status::InFlight });
        }
    }

    /// Updates the status; false when the record is gone (already included).
    pub fn set(&self, ep: usize, hash: &B256, status: Status) -> bool {
        self.map(ep).and_then(|mut m| m.get_mut(hash).map(|p| p.status = status)).is_some()
    }

    /// Stops tracking; `None` when the record is gone (already included).
    pub fn remove(&self, ep: usize, hash: &B256) -> Option<Pending> {
        self.map(ep).and_then(|mut m| m.remove(hash))
    }

    /// Records tracked (all endpoints).
    pub fn len(&self) -> usize {
        (0..self.maps.len()).filter_map(|ep| self.map(ep).map(|m| m.len())).sum()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accepted records not yet included (what the end of a run waits for).
    pub fn awaiting(&self) -> usize {
        (0..self.maps.len())
            .filter_map(|ep| self.map(ep).map(|m| m.values().filter(|p| p.status != Status::InFlight).count()))
            .sum()
    }

    fn latency(&self, p: &Pending) -> Duration {
        let due = self.start + Duration::from_micros(p.due_us);
        Instant::now().saturating_duration_since(due)
    }

    /// Takes every record of `ep` out of the tracker (reconciliation at the end).
    pub(crate) fn drain(&self, ep: usize) -> Vec<(B256, Pending)> {
        self.map(ep).map(|mut m| m.drain().collect()).unwrap_or_default()
    }

    /// Counts an inclusion found by the follower or by reconciliation.
    pub(crate) fn included(&self, rec: &Recorder, ep: usize, p: &Pending) {
        if let Status::Unknown(_) = p.status {
            rec.unknown_was_accepted(ep);
        }
        rec.included(ep, self.latency(p));
    }
}

/// Follows one endpoint's new blocks until `stop` flips, matching transaction hashes.
pub async fn follow(
    ep: usize,
    rpc: Rpc,
    tracker: Arc<Tracker>,
    rec: Arc<Recorder>,
    mut last: u64,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut receipts = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        match rpc.block_number().await {
            Ok(head) => {
                // Bounded catch-up per round keeps a far-behind follower responsive to `stop`.
                let upto = head.min(last + 256);
                while last < upto {
                    match rpc.block_tx_hashes(last + 1).await {
                        Ok(Some(hashes)) => {
                            for h in hashes {
                                if let Some(p) = tracker.remove(ep, &h) {
                                    tracker.included(&rec, ep, &p);
                                    if p.execution {
                                        let (rpc, rec) = (rpc.clone(), rec.clone());
                                        receipts.spawn(async move {
                                            if let Ok(Some(r)) = rpc.receipt(h).await
                                                && !r.success
                                            {
                                                rec.reverted(ep);
                                            }
                                        });
                                    }
                                }
                            }
                            last += 1;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(endpoint = ep, error = %e, "block fetch failed; retrying next poll");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(endpoint = ep, error = %e, "eth_blockNumber failed; retrying next poll"),
        }
        while receipts.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
    // Receipt checks already started are short; let them finish so `reverted` is complete.
    let _ =
        tokio::time::timeout(Duration::from_secs(10), async { while receipts.join_next().await.is_some() {} }).await;
}

/// Looks up every record still tracked on `ep` (bounded by `deadline`), settling each one.
pub async fn reconcile(ep: usize, rpc: &Rpc, tracker: &Tracker, rec: &Recorder, deadline: Instant) -> usize {
    use futures::StreamExt;
    let items = tracker.drain(ep);
    let unresolved = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(items)
        .for_each_concurrent(16, |(hash, p)| {
            let unresolved = &unresolved;
            async move {
                let lookup = async {
                    if let Some(r) = rpc.receipt(hash).await? {
                        return Ok::<_, crate::error::RpcError>((true, Some(r.success), false));
                    }
                    Ok((false, None, rpc.knows_tx(hash).await?))
                };
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, lookup).await {
                    Ok(Ok((true, success, _))) => {
                        tracker.included(rec, ep, &p);
                        if p.execution && success == Some(false) {
                            rec.reverted(ep);
                        }
                    }
                    Ok(Ok((false, _, known))) => settle(rec, ep, &p, known),
                    _ => {
                        // Could not look it up in time: it is neither known included nor known gone.
                        unresolved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        match p.status {
                            Status::Accepted => rec.settled(ep, true),
                            Status::Unknown(k) => rec.unknown_was_lost(ep, k),
                            Status::InFlight => rec.unknown_was_lost(ep, Kind::Timeout),
                        }
                    }
                }
            }
        })
        .await;
    unresolved.into_inner()
}

/// Settles a record that is not in a block: pending at the end if the node knows it, else dropped (or,
/// for a send that never got an answer, lost with the kind of its failure).
pub(crate) fn settle(rec: &Recorder, ep: usize, p: &Pending, known: bool) {
    match p.status {
        Status::Accepted => rec.settled(ep, known),
        Status::Unknown(_) | Status::InFlight if known => {
            rec.unknown_was_accepted(ep);
            rec.settled(ep, true);
        }
        Status::Unknown(k) => rec.unknown_was_lost(ep, k),
        Status::InFlight => rec.unknown_was_lost(ep, Kind::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_compact() {
        const { assert!(RECORD_BYTES <= 56) };
    }

    #[tokio::test]
    async fn insert_set_remove() {
        let t = Tracker::new(2, Instant::now());
        let h = B256::repeat_byte(1);
        t.insert(1, h, Instant::now(), false);
        assert_eq!(t.awaiting(), 0, "in flight is not awaited yet");
        assert!(t.set(1, &h, Status::Accepted));
        assert_eq!(t.awaiting(), 1);
        assert!(t.remove(0, &h).is_none());
        assert!(t.remove(1, &h).is_some());
        assert!(!t.set(1, &h, Status::Accepted));
        assert!(t.is_empty());
    }
}
