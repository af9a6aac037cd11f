//! One tick's life as its own task: permit → nonce → sign → send → record.
//!
//! **Latencies count from the intended send time** (`due`, the instant the schedule assigned to the tick), never
//! from when the action actually went out. A load generator that measured from the actual send would hide
//! exactly the stalls it exists to find: when the node slows down, sends queue behind the bound, start late,
//! and each then looks fast (coordinated omission). So every latency recorded here, the submit latency, the
//! inclusion latency (via the tracker) and the send lag, is `now - due`, and a tick that cannot go on time is
//! also *counted* late, once, by whichever bound held it back.
//!
//! The steps, each a function below:
//! 1. **permit** (`global_permit`, `account_permit`): a slot under `--max-in-flight` (taken by the
//!    scheduler when free, else awaited here) and under `--account-in-flight` (FIFO, so an account's ticks
//!    take nonces and send in order). Cancellation at the drain deadline ends the wait as "not sent".
//! 2. **nonce**: reserved from [`crate::nonce::Nonces`], read from the node on first use or after a resync.
//! 3. **sign**: [`crate::signer::sign`] with the run's fees and the mix's kind of call.
//! 4. **send**: [`crate::send::Sender`], racing the cancellation.
//! 5. **record**: accepted, rejected (nonce-class rejections resync and retry up to [`MAX_ATTEMPTS`]), or
//!    unknown (tracked to inclusion when confirming, since a lost answer is not a lost action).

use crate::confirm::{Reply, Tracker, Verdict};
use crate::error::Kind;
use crate::flags::defaults;
use crate::mix::ActionKind;
use crate::native::sign::{CoreParams, PubKey};
use crate::node::Node;
use crate::nonce::Nonces;
use crate::recorder::Recorder;
use crate::run_config::RunConfig;
use crate::send::{SendOutcome, Sender};
use crate::signer::{self, Call};
use alloy_primitives::{Address, Bytes};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit, watch};
use tokio::time::Instant;

/// Nonce-class and underpriced rejections are retried this many times (with a resynced nonce, or at a
/// refreshed fee).
pub const MAX_ATTEMPTS: u32 = 3;

/// Longest an underpriced action's retry waits for the refreshed fee (a refresh is one `eth_gasPrice` per
/// endpoint).
const FEE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything a tick's task needs, shared by all of them.
pub(crate) struct Ctx {
    pub(crate) keys: Vec<signer::FastKey>,
    /// Each account's uncompressed public key (native actions carry it); empty without gRPC endpoints.
    pub(crate) pubkeys: Vec<PubKey>,
    /// Account `i` sends through endpoint `account_ep[i]`.
    pub(crate) account_ep: Vec<usize>,
    /// Transfer recipient per account when `--to` is absent (the next pool account).
    pub(crate) recipients: Vec<Address>,
    /// The contract executions call, per endpoint.
    pub(crate) contracts: Vec<Option<Address>>,
    pub(crate) calldata: Bytes,
    /// The EVM chain id (web3 endpoints).
    pub(crate) chain_id: u64,
    /// Native chain id and gas price (gRPC endpoints).
    pub(crate) native: CoreParams,
    /// The fees to sign with, refreshed while the run goes on (`fees.rs`).
    pub(crate) fees: crate::fees::FeeCell,
    pub(crate) cfg: RunConfig,
    pub(crate) nodes: Vec<Node>,
    /// The hot-path HTTP client of each web3 endpoint (`None` for gRPC ones).
    pub(crate) senders: Vec<Option<Sender>>,
    pub(crate) nonces: Nonces,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) rec: Arc<Recorder>,
    /// The `--max-in-flight` bound.
    pub(crate) sem: Arc<Semaphore>,
    /// Per-account bounds (`--account-in-flight`); FIFO, so an account's ticks take nonces and send in order.
    pub(crate) account_sems: Vec<Semaphore>,
    /// Ticks waiting for a global permit (the scheduler sheds ticks beyond a cap instead of spawning more).
    pub(crate) backlog: AtomicUsize,
    /// Live action tasks; [`Ctx::idle`] waits for zero.
    pub(crate) tasks: AtomicUsize,
    pub(crate) done: tokio::sync::Notify,
}

impl Ctx {
    /// Resolves once no send task is outstanding. The `Notify` is armed before the count is read, so a task
    /// finishing in between still wakes it.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.done.notified();
            if self.tasks.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Spawns the task for tick `seq`; `permit` is the global slot if the scheduler found one free.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        seq: u64,
        due: Instant,
        permit: Option<OwnedSemaphorePermit>,
        cancel: watch::Receiver<bool>,
    ) {
        self.tasks.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(action(self.clone(), seq, due, permit, cancel));
    }

    fn call(&self, acct: usize, kind: ActionKind) -> Call {
        let ep = self.account_ep[acct];
        match (kind, self.contracts.get(ep).copied().flatten()) {
            (ActionKind::Execution, Some(contract)) => Call {
                to: contract,
                value: alloy_primitives::U256::ZERO,
                input: self.calldata.clone(),
                gas_limit: self.cfg.gas_limit.unwrap_or(defaults::EXECUTION_GAS),
            },
            _ => Call {
                to: self.cfg.to.unwrap_or(self.recipients[acct]),
                value: self.cfg.value,
                input: Bytes::new(),
                gas_limit: self.cfg.gas_limit.unwrap_or(defaults::TRANSFER_GAS),
            },
        }
    }
}

/// Decrements the live-task count when an action task ends, however it ends.
struct TaskGuard<'a>(&'a Ctx);
impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

/// Holds the in-flight gauge up while a send is outstanding.
struct InFlight<'a>(&'a Recorder);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight.dec();
    }
}

/// One tick, from permit to record.
async fn action(
    ctx: Arc<Ctx>,
    seq: u64,
    due: Instant,
    permit: Option<OwnedSemaphorePermit>,
    mut cancel: watch::Receiver<bool>,
) {
    let _guard = TaskGuard(&ctx);
    // Already counted late by the scheduler when the global bound was full.
    let counted_late = permit.is_none();
    let Some(_permit) = global_permit(&ctx, permit, &mut cancel).await else {
        ctx.rec.not_sent();
        return;
    };
    ctx.rec.metrics.in_flight.inc();
    let _in_flight = InFlight(&ctx.rec);

    let acct = (seq % ctx.keys.len() as u64) as usize;
    let Ok(_account_permit) = account_permit(&ctx, acct, counted_late, &mut cancel).await else {
        ctx.rec.not_sent();
        return;
    };
    send_with_retries(&ctx, seq, acct, due, &mut cancel).await;
}

/// The `--max-in-flight` slot: the one the scheduler took, or wait for one (`None` when cancelled first).
async fn global_permit(
    ctx: &Ctx,
    permit: Option<OwnedSemaphorePermit>,
    cancel: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    if permit.is_some() {
        return permit;
    }
    ctx.backlog.fetch_add(1, Ordering::AcqRel);
    let p = tokio::select! {
        p = ctx.sem.clone().acquire_owned() => p.ok(),
        _ = cancel.wait_for(|c| *c) => None,
    };
    ctx.backlog.fetch_sub(1, Ordering::AcqRel);
    p
}

/// The `--account-in-flight` slot (`Ok(None)` when unbounded; `Err` when cancelled while waiting).
async fn account_permit<'a>(
    ctx: &'a Ctx,
    acct: usize,
    counted_late: bool,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Option<SemaphorePermit<'a>>, ()> {
    let Some(s) = ctx.account_sems.get(acct) else { return Ok(None) };
    if let Ok(p) = s.try_acquire() {
        return Ok(Some(p));
    }
    // The account's previous send is still out: this tick cannot go on time either.
    if !counted_late {
        ctx.rec.late();
    }
    tokio::select! {
        p = s.acquire() => Ok(p.ok()),
        _ = cancel.wait_for(|c| *c) => Err(()),
    }
}

/// Nonce → sign → send → record, retrying nonce-class rejections with a resynced nonce.
///
/// Long because the retry loop reads as one: each attempt's reservation, signing, tracking, send and the
/// three ways it can end, with the counting rule next to each.
async fn send_with_retries(ctx: &Ctx, seq: u64, acct: usize, due: Instant, cancel: &mut watch::Receiver<bool>) {
    let ep = ctx.account_ep[acct];
    let kind = ctx.cfg.mix.pick(seq);
    let call = ctx.call(acct, kind);
    let key = &ctx.keys[acct];
    let rpc = &ctx.nodes[ep];
    let mut first = true;
    for attempt in 1..=MAX_ATTEMPTS {
        let reserved = match ctx.nonces.reserve(acct, || rpc.pending_nonce(key.address())).await {
            Ok(Some((r, synced))) => {
                if synced {
                    ctx.rec.resync();
                }
                r
            }
            Ok(None) => return,
            Err(e) => {
                if first {
                    ctx.rec.sent(ep, Instant::now().saturating_duration_since(due));
                }
                ctx.rec.rejected(ep, e.kind, None, &e.to_string());
                return;
            }
        };
        let fee_reads = ctx.fees.refreshes();
        let (hash, wire) = match ctx.sign(seq, acct, kind, &call, reserved.nonce) {
            Ok(s) => s,
            Err(e) => {
                ctx.rec.rejected(ep, Kind::Other, None, &e.to_string());
                return;
            }
        };
        if ctx.cfg.confirm && !ctx.tracker.insert(ep, hash, due, kind == ActionKind::Execution) {
            // A resync handed out a nonce whose action (same bytes) is still unsettled: this send joins it.
            tracing::debug!(endpoint = ep, hash = %hash, "resending an action still tracked");
        }
        if first {
            // The send lag: how far behind its intended time the tick actually went out.
            ctx.rec.sent(ep, Instant::now().saturating_duration_since(due));
            first = false;
        }
        let (outcome, tracked) = tokio::select! {
            // Cancellation first: once the drain deadline has passed, no new send goes out behind
            // reconciliation's back.
            biased;
            _ = cancel.wait_for(|c| *c) => (SendOutcome::Unknown(Kind::Timeout), hash),
            o = ctx.send(ep, wire, hash) => o,
        };
        let latency = Instant::now().saturating_duration_since(due);
        let verdict = verdict(ctx, ep, &tracked, &outcome, latency);
        match outcome {
            SendOutcome::Accepted => {
                if verdict.is_none() {
                    ctx.rec.accepted(ep, latency);
                }
                return;
            }
            SendOutcome::Rejected(k, msg) => {
                if verdict == Some(Verdict::AlreadySettled) {
                    // Found in a block (and counted) before this answer: it was accepted after all.
                    return;
                }
                if k.never_entered_pool() {
                    // Refused outright: the nonce goes to the next action (this one's retry, or another
                    // tick's) instead of a resync below actions already accepted above it (`nonce.rs`).
                    ctx.nonces.refused(acct, reserved).await;
                } else {
                    // Our count may be wrong: re-read it before the next use.
                    ctx.nonces.invalidate(acct, reserved).await;
                }
                // The chain's fee moved past ours: refresh, and the retry signs at the new fee (with fixed fees
                // a retry would only be refused again).
                let reprice = k == Kind::Underpriced && ctx.fees.live();
                if reprice {
                    ctx.fees.underpriced();
                }
                if (k.is_nonce_class() || reprice) && attempt < MAX_ATTEMPTS && !*cancel.borrow() {
                    if reprice {
                        ctx.fees.newer_than(fee_reads, FEE_WAIT).await;
                    }
                    ctx.rec.retried(k);
                    continue;
                }
                ctx.rec.rejected(ep, k, Some(latency), &msg);
                return;
            }
            SendOutcome::Unknown(k) => {
                ctx.nonces.invalidate(acct, reserved).await;
                if verdict.is_none() {
                    // Not confirming: nothing will decide later whether it landed.
                    ctx.rec.rejected(ep, k, Some(latency), "no answer");
                }
                return;
            }
        }
    }
}

/// A signed action in its endpoint's wire form.
pub(crate) enum Wire {
    /// The `eth_sendRawTransaction` body.
    Web3(Vec<u8>),
    /// The native action for `SendAction` (boxed: it is several times the size of the other variant).
    Grpc(Box<crate::native::proto::Action>),
}

impl Ctx {
    /// Signs the action for account `acct`'s endpoint: EIP-155/1559 RLP for web3, a native action for gRPC.
    fn sign(
        &self,
        seq: u64,
        acct: usize,
        kind: ActionKind,
        call: &Call,
        nonce: u64,
    ) -> Result<(alloy_primitives::B256, Wire), signer::SignError> {
        let key = &self.keys[acct];
        match (&self.nodes[self.account_ep[acct]], self.pubkeys.get(acct)) {
            (Node::Grpc(_), Some(pk)) => {
                let s =
                    crate::native::sign::seal(key, pk, crate::native::sign::core_for(kind, call, nonce, self.native))?;
                Ok((s.hash, Wire::Grpc(Box::new(s.action))))
            }
            _ => {
                let s = signer::sign(key, self.chain_id, nonce, self.cfg.tx_type, self.fees.get(), call)?;
                Ok((s.hash, Wire::Web3(signer::send_raw_body(seq, &s.raw))))
            }
        }
    }

    /// Sends through endpoint `ep`; returns the outcome and the hash the action is tracked under. A native
    /// action whose hash the node computes differently from ours (an encoding difference) is re-tracked under
    /// the node's hash, so inclusion still finds it, and logged: it means our bytes are not Go's.
    async fn send(&self, ep: usize, wire: Wire, ours: alloy_primitives::B256) -> (SendOutcome, alloy_primitives::B256) {
        match (wire, &self.nodes[ep], self.senders.get(ep).and_then(Option::as_ref)) {
            (Wire::Web3(body), _, Some(sender)) => (sender.send(body).await, ours),
            (Wire::Grpc(action), Node::Grpc(client), _) => {
                let (outcome, theirs) = client.send_action(*action).await;
                if let Some(theirs) = theirs.filter(|t| *t != ours) {
                    tracing::error!(ours = %ours, theirs = %theirs, "the node hashed a native action differently");
                    if self.cfg.confirm && self.tracker.rekey(ep, &ours, theirs) {
                        return (outcome, theirs);
                    }
                }
                (outcome, ours)
            }
            _ => (SendOutcome::Rejected(Kind::Other, "no sender for this endpoint's API".into()), ours),
        }
    }
}

/// When confirming, the tracker counts the answer against the action's record (it may have been found in a
/// block first, or be a resend of bytes already sent); `None` otherwise: each answer then counts as it comes.
fn verdict(
    ctx: &Ctx,
    ep: usize,
    tracked: &alloy_primitives::B256,
    outcome: &SendOutcome,
    latency: std::time::Duration,
) -> Option<Verdict> {
    ctx.cfg.confirm.then(|| {
        let reply = match outcome {
            SendOutcome::Accepted => Reply::Accepted,
            SendOutcome::Rejected(..) => Reply::Rejected,
            SendOutcome::Unknown(k) => Reply::NoAnswer(*k),
        };
        ctx.tracker.answered(&ctx.rec, ep, tracked, reply, latency)
    })
}
