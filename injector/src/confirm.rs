//! Tracking accepted actions to inclusion, and reconciling whatever is left at the end.
//!
//! Each endpoint has a map from transaction hash to a compact [`Pending`] record (the only per-action
//! memory a run keeps; see [`RECORD_BYTES`]). A record is inserted *before* the send, so an automining node
//! that includes the action before answering cannot race the follower. One follower task per endpoint polls
//! `eth_blockNumber` and reads each new block's receipts (`eth_getBlockReceipts`; on a node without that
//! method, its transaction hashes, then each included action's own receipt); a match is an inclusion, with
//! latency from the intended send time and the fee its receipt shows. At the end every remaining record is looked up: receipt → included; known to the
//! node → pending at end; unknown → dropped (or, for a send that never got an answer, a rejection).
//!
//! **The record, not the send, owns the counts.** The report promises
//! `accepted == included + pending_at_end + dropped`, and `accepted` must count each action that reached the
//! node once. Under a stalled chain three things race: a send's answer, the follower (or end-of-run
//! reconciliation) finding the action, and a *second send of the same signed bytes* (after a timeout the
//! nonce is resynced and the next tick of the account may sign exactly the action still in flight). So every
//! count is decided here, under the map's lock, by the record's state ([`Tracker::answered`],
//! `Tracker::take_included`, `settle`):
//! - an action is counted `accepted` once, by whichever proves it first: an `Accepted` answer, or the
//!   follower / reconciliation finding it (then a later answer for it counts nothing);
//! - it is settled (included, pending at end or dropped) once, by whoever removes the record;
//! - a record is removed on a rejection only when no other send of the same bytes is out or was accepted
//!   or went unanswered, so a duplicate's "known transaction" cannot untrack an accepted action.

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
    /// Being sent; no send of these bytes has been answered yet.
    InFlight,
    /// A send of it was answered with its hash: counted accepted.
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
    /// Sends of these exact bytes not answered yet (more than one after a resync re-signed the same action).
    pub sends: u8,
}

/// Bytes per tracked action in the map: key + value (hash-table overhead comes on top; the bench measures it).
pub const RECORD_BYTES: usize = std::mem::size_of::<B256>() + std::mem::size_of::<Pending>();

/// What a send's answer is, as far as counting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The node returned the hash.
    Accepted,
    /// The node refused it (or the transport failed before the node saw it).
    Rejected,
    /// No answer.
    NoAnswer(Kind),
}

/// What [`Tracker::answered`] decided (and already counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This answer counted the action accepted (or turned an earlier unanswered send of it into accepted).
    Accepted,
    /// The action was already counted by another send of the same bytes: only the submit latency is recorded.
    AlreadyCounted,
    /// The record was already settled (found in a block or at reconciliation, and counted there): nothing
    /// more to count, nothing to retry.
    AlreadySettled,
    /// Refused: the caller retries or counts the rejection. The record was removed unless another send of
    /// the same bytes still speaks for it.
    Rejected,
    /// No answer: counted unknown, decided at reconciliation.
    Unknown,
}

/// What the end-of-run lookup found for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// In a block; `success` is the receipt's status when known.
    Included {
        /// The receipt's status (false: reverted).
        success: bool,
        /// What it paid (gas used × effective gas price), when the receipt said.
        fee: Option<u128>,
    },
    /// Known to the node, not in a block.
    Pending,
    /// Unknown to the node.
    Gone,
    /// Could not be looked up in time.
    Unresolved,
}

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

    /// Starts tracking an action about to be sent; false when the same bytes are already tracked (a resend
    /// of an action still unsettled: it joins that record, which keeps its first intended time).
    pub fn insert(&self, ep: usize, hash: B256, due: Instant, execution: bool) -> bool {
        let due_us = u64::try_from(due.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX);
        let Some(mut m) = self.map(ep) else { return false };
        match m.get_mut(&hash) {
            Some(p) => {
                p.sends = p.sends.saturating_add(1);
                false
            }
            None => {
                m.insert(hash, Pending { due_us, execution, status: Status::InFlight, sends: 1 });
                true
            }
        }
    }

    /// Counts a send's answer against its record (see the module doc for the rules); `latency` is from the
    /// tick's intended time.
    pub fn answered(&self, rec: &Recorder, ep: usize, hash: &B256, reply: Reply, latency: Duration) -> Verdict {
        let verdict = {
            let Some(mut m) = self.map(ep) else { return Verdict::AlreadySettled };
            let Some(p) = m.get_mut(hash) else {
                drop(m);
                rec.answered_again(ep, latency);
                return Verdict::AlreadySettled;
            };
            p.sends = p.sends.saturating_sub(1);
            match (reply, p.status) {
                (Reply::Accepted, Status::Accepted) | (Reply::NoAnswer(_), Status::Accepted | Status::Unknown(_)) => {
                    Verdict::AlreadyCounted
                }
                (Reply::Accepted, before) => {
                    p.status = Status::Accepted;
                    if let Status::Unknown(_) = before {
                        // An earlier send of these bytes went unanswered; this answer settles that question.
                        drop(m);
                        rec.answered_again(ep, latency);
                        rec.unknown_was_accepted(ep);
                        return Verdict::Accepted;
                    }
                    Verdict::Accepted
                }
                (Reply::Rejected, Status::InFlight) if p.sends == 0 => {
                    m.remove(hash);
                    Verdict::Rejected
                }
                // Another send of the same bytes is out, was accepted, or went unanswered: it speaks for them.
                (Reply::Rejected, _) => Verdict::Rejected,
                (Reply::NoAnswer(k), Status::InFlight) => {
                    p.status = Status::Unknown(k);
                    Verdict::Unknown
                }
            }
        };
        match verdict {
            Verdict::Accepted => rec.accepted(ep, latency),
            Verdict::AlreadyCounted => rec.answered_again(ep, latency),
            Verdict::Unknown => rec.unknown(ep, latency),
            Verdict::AlreadySettled | Verdict::Rejected => {}
        }
        verdict
    }

    /// Moves a record to the hash the node computed (it hashed our bytes differently); false if not tracked.
    pub fn rekey(&self, ep: usize, ours: &B256, theirs: B256) -> bool {
        let Some(mut m) = self.map(ep) else { return false };
        match m.remove(ours) {
            Some(p) => {
                m.entry(theirs).or_insert(p);
                true
            }
            None => false,
        }
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

    /// The follower saw `hash` in a block: settles its record as included (counting it accepted if no
    /// answer had yet), with what its receipt says when the follower read one (`success` true without).
    /// `None` when it is not ours or already settled.
    pub(crate) fn take_included(
        &self,
        rec: &Recorder,
        ep: usize,
        hash: &B256,
        success: bool,
        fee: Option<u128>,
    ) -> Option<Pending> {
        let p = self.map(ep)?.remove(hash)?;
        self.settle(rec, ep, &p, Found::Included { success, fee });
        Some(p)
    }

    /// Settles a record taken out of the tracker, exactly once: the counts for what was found.
    pub(crate) fn settle(&self, rec: &Recorder, ep: usize, p: &Pending, found: Found) {
        let found_accepted = || match p.status {
            Status::InFlight => rec.found_accepted(ep),
            Status::Unknown(_) => rec.unknown_was_accepted(ep),
            Status::Accepted => {}
        };
        match (found, p.status) {
            (Found::Included { success, fee }, _) => {
                found_accepted();
                rec.included(ep, Duration::from_micros(p.due_us), self.latency(p), fee);
                if p.execution && !success {
                    rec.reverted(ep);
                }
            }
            (Found::Pending, _) => {
                found_accepted();
                rec.settled(ep, true);
            }
            // Could not look it up: an accepted action is counted pending (not known gone).
            (Found::Unresolved, Status::Accepted) => rec.settled(ep, true),
            (Found::Gone, Status::Accepted) => rec.settled(ep, false),
            (Found::Gone | Found::Unresolved, Status::Unknown(k)) => rec.unknown_was_lost(ep, k),
            // A send still unanswered at the end (cut by the drain deadline) and nowhere on the node.
            (Found::Gone | Found::Unresolved, Status::InFlight) => rec.lost_in_flight(ep),
        }
    }
}

/// How the follower reads a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// `eth_getBlockReceipts`: every receipt of the block in one call, so inclusion, revert status and the
    /// fee paid come together, whatever the number of actions. `strikes`: blocks in a row for which it
    /// failed while `eth_getBlockByNumber` worked.
    Receipts { strikes: u8 },
    /// `eth_getBlockByNumber` hashes, for nodes without `eth_getBlockReceipts` (IoTeX before v2.4, ganache):
    /// inclusion from the block, then each included action's own receipt for its fee and status
    /// ([`ReceiptReads`]): one read per action instead of one per block.
    Hashes,
}

/// Blocks in a row whose receipts could not be read, while their hashes could, before the follower stops
/// asking for receipts. Not every node says "method not found" in words: ganache answers with an error
/// object that has an extra `stack` field, which the JSON-RPC client cannot even parse.
const MAX_STRIKES: u8 = 3;

/// Receipts read one action at a time, for blocks read by their hashes: the fee each included action paid,
/// and an execution's status. Off the follower's path (it times inclusions as blocks appear, and must not
/// wait on these), a few at a time, and bounded: past [`MAX_PENDING_READS`] outstanding, an action's fee
/// stays unmeasured rather than the backlog growing without bound.
pub(crate) struct ReceiptReads {
    tasks: tokio::task::JoinSet<()>,
    calls: Arc<tokio::sync::Semaphore>,
}

/// Receipt reads in flight at once per endpoint.
const RECEIPT_CALLS: usize = 32;
/// Receipt reads waiting or in flight per endpoint (at 1,000 actions/s, eight seconds of backlog).
const MAX_PENDING_READS: usize = 8192;
/// The pause after each unanswered receipt read (about a block time in all, on IoTeX's 5 s blocks and less).
const RECEIPT_RETRY_MS: [u64; 5] = [250, 500, 1000, 2000, 0];

impl ReceiptReads {
    fn new() -> ReceiptReads {
        ReceiptReads { tasks: tokio::task::JoinSet::new(), calls: Arc::new(tokio::sync::Semaphore::new(RECEIPT_CALLS)) }
    }

    /// Reads `hash`'s receipt: its fee moves from unmeasured to measured; an execution's revert is counted.
    fn read(&mut self, rpc: &Rpc, rec: &Arc<Recorder>, ep: usize, hash: B256, execution: bool) {
        if self.tasks.len() >= MAX_PENDING_READS {
            return;
        }
        let (rpc, rec, calls) = (rpc.clone(), rec.clone(), self.calls.clone());
        self.tasks.spawn(async move {
            // Through a gateway the read may reach a node a block behind the one that showed the block: no
            // receipt there yet. A few tries, further apart each time, before the fee is left unmeasured.
            for wait_ms in RECEIPT_RETRY_MS {
                let reply = {
                    let Ok(_slot) = calls.acquire().await else { return };
                    rpc.receipt(hash).await
                };
                if let Ok(Some(r)) = reply {
                    rec.fee_read(r.fee);
                    if execution && !r.success {
                        rec.reverted(ep);
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            }
        });
    }

    /// Forgets the reads that finished.
    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Lets the reads already started finish, for up to `within`.
    async fn finish(mut self, within: Duration) {
        let _ = tokio::time::timeout(within, async { while self.tasks.join_next().await.is_some() {} }).await;
    }
}

/// Whether an error says the node does not serve a method at all (rather than failing this once).
fn unsupported(e: &crate::error::RpcError) -> bool {
    let m = e.message.to_ascii_lowercase();
    // geth/anvil/IoTeX "method not found", ganache "does not exist/is not available", a gateway's policy.
    const SAYS_SO: [&str; 8] = [
        "method not found",
        "does not exist",
        "not available",
        "not supported",
        "unsupported",
        "unknown method",
        "unimplemented",
        "not allowed",
    ];
    SAYS_SO.iter().any(|s| m.contains(s))
}

/// Matches block `n` against the tracker; `Ok(false)` when the node does not have it yet. A block whose
/// receipts fail is read by its hashes at once, so a failing receipts call never delays an inclusion.
async fn read_block(
    ep: usize,
    n: u64,
    reading: &mut Reading,
    rpc: &Rpc,
    tracker: &Tracker,
    rec: &Arc<Recorder>,
    receipts: &mut ReceiptReads,
) -> Result<bool, crate::error::RpcError> {
    let mut failed = None;
    if let Reading::Receipts { strikes } = reading {
        match rpc.block_receipts(n).await {
            Ok(Some(receipts)) => {
                *strikes = 0;
                for r in receipts {
                    if let Some(p) = tracker.take_included(rec, ep, &r.hash, r.success, r.fee)
                        && p.execution
                        && !r.success
                    {
                        rec.reverted(ep);
                    }
                }
                return Ok(true);
            }
            Ok(None) => return Ok(false),
            Err(e) => failed = Some(e),
        }
    }
    // An error here is the node's or the network's, not the receipts': retried next poll, no strike.
    let Some(hashes) = rpc.block_tx_hashes(n).await? else { return Ok(false) };
    if let (Some(e), Reading::Receipts { strikes }) = (failed, &mut *reading) {
        *strikes += 1;
        if unsupported(&e) || *strikes >= MAX_STRIKES {
            tracing::info!(endpoint = ep, error = %e,
                "eth_getBlockReceipts fails where eth_getBlockByNumber works: following block hashes, each action's receipt read for its fee");
            *reading = Reading::Hashes;
        } else {
            tracing::debug!(endpoint = ep, block = n, error = %e, "eth_getBlockReceipts failed; block read by its hashes");
        }
    }
    for h in hashes {
        if let Some(p) = tracker.take_included(rec, ep, &h, true, None) {
            receipts.read(rpc, rec, ep, h, p.execution);
        }
    }
    Ok(true)
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
    let mut reading = Reading::Receipts { strikes: 0 };
    let mut receipts = ReceiptReads::new();
    loop {
        if *stop.borrow() {
            break;
        }
        match rpc.block_number().await {
            Ok(head) => {
                // Bounded catch-up per round keeps a far-behind follower responsive to `stop`.
                let upto = head.min(last + 256);
                while last < upto {
                    match read_block(ep, last + 1, &mut reading, &rpc, &tracker, &rec, &mut receipts).await {
                        Ok(true) => last += 1,
                        Ok(false) => break,
                        Err(e) => {
                            tracing::debug!(endpoint = ep, error = %e, "block fetch failed; retrying next poll");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(endpoint = ep, error = %e, "eth_blockNumber failed; retrying next poll"),
        }
        receipts.reap();
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
    // Receipt reads already started are short; let them finish so `reverted` and the fees are complete.
    receipts.finish(Duration::from_secs(10)).await;
}

/// Looks up every record still tracked on `ep` (bounded by `deadline`), settling each one; returns how many
/// could not be looked up in time.
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
                        return Ok::<_, crate::error::RpcError>(Found::Included { success: r.success, fee: r.fee });
                    }
                    Ok(if rpc.knows_tx(hash).await? { Found::Pending } else { Found::Gone })
                };
                let remaining = deadline.saturating_duration_since(Instant::now());
                let found = match tokio::time::timeout(remaining, lookup).await {
                    Ok(Ok(f)) => f,
                    // Could not look it up in time: it is neither known included nor known gone.
                    _ => {
                        unresolved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Found::Unresolved
                    }
                };
                tracker.settle(rec, ep, &p, found);
            }
        })
        .await;
    unresolved.into_inner()
}

#[cfg(test)]
#[path = "confirm_tests.rs"]
mod tests;
