//! Inclusion over gRPC: the same design as the web3 follower ([`crate::confirm`]): records inserted before
//! the send, one follower per endpoint matching the hashes of each new block, and a lookup of whatever is
//! left at the end; only the transport differs.
//!
//! **Why `StreamBlocks`** (with `GetRawBlocks` to fill gaps) rather than the alternatives, at 1,000 actions/s:
//! - `GetReceiptByAction` per action would be 1,000 calls a second, each an index lookup plus a receipts
//!   read on the node, and it would still need polling to know when to ask.
//! - `GetBlockMetas` gives counts, not action hashes, so it cannot match anything by itself.
//! - Polling `GetRawBlocks` works but costs a head query per poll and, like any poll, adds up to a poll
//!   interval of latency.
//! - `StreamBlocks` pushes each committed block once, with its receipts (iotex-core `api/blocklistener.go`):
//!   one message per block whatever the action rate, no idle calls, no added latency. The receipts carry
//!   each action's hash and status, so executions' reverts come with them and need no extra call; prost
//!   skips the block body itself (see [`proto::BlockInfo`]).
//!
//! A stream only carries blocks committed after it opened, so after (re)subscribing the follower reads the
//! blocks it missed with `GetRawBlocks` (also with receipts), from the last height it handled; a jump in the
//! streamed heights is filled the same way. A broken stream is reopened after `--poll-interval`.

use super::client::{Client, Lookup};
use super::proto;
use crate::confirm::{Found, Tracker};
use crate::recorder::Recorder;
use alloy_primitives::B256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Blocks read per `GetRawBlocks` call while catching up (the node's `api.rangeQueryLimit` is 1,000).
const CATCH_UP_BATCH: u64 = 64;

/// What a native action paid: its receipt's gas used × the gas price it was signed with. A native action
/// carries one gas price (no fee cap and tip), and IoTeX charges exactly that per unit of gas.
pub fn fee(r: &proto::Receipt, gas_price: u128) -> Option<u128> {
    u128::from(r.gas_consumed).checked_mul(gas_price)
}

/// Matches one block's receipts against the tracker; `gas_price` is the one the run signs with.
fn handle_receipts(ep: usize, receipts: &[proto::Receipt], gas_price: u128, tracker: &Tracker, rec: &Recorder) {
    for r in receipts {
        if r.act_hash.len() != 32 {
            continue;
        }
        let h = B256::from_slice(&r.act_hash);
        if let Some(p) = tracker.take_included(rec, ep, &h, r.status == 1, fee(r, gas_price))
            && p.execution
            && r.status != 1
        {
            rec.reverted(ep);
        }
    }
}

/// What a follower works with besides the client: the endpoint, the run's gas price, the books.
struct Books<'a> {
    ep: usize,
    gas_price: u128,
    tracker: &'a Tracker,
    rec: &'a Recorder,
}

/// Reads blocks `from..=to` with receipts and matches them; returns the last height handled.
async fn catch_up(b: &Books<'_>, client: &Client, from: u64, to: u64) -> u64 {
    let ep = b.ep;
    let mut last = from.saturating_sub(1);
    while last < to {
        let count = (to - last).min(CATCH_UP_BATCH);
        match client.raw_blocks(last + 1, count).await {
            Ok(blocks) if !blocks.is_empty() => {
                for block in &blocks {
                    handle_receipts(ep, &block.receipts, b.gas_price, b.tracker, b.rec);
                }
                last += blocks.len() as u64;
            }
            Ok(_) => break,
            Err(e) => {
                tracing::debug!(endpoint = ep, error = %e, "GetRawBlocks failed; retrying later");
                break;
            }
        }
    }
    last
}

/// Follows one gRPC endpoint's blocks from height `last + 1` until `stop` flips; `gas_price` is the one the
/// run signs native actions with (for the fee each paid).
#[allow(clippy::too_many_arguments)]
pub async fn follow(
    ep: usize,
    client: Client,
    tracker: Arc<Tracker>,
    rec: Arc<Recorder>,
    mut last: u64,
    poll: Duration,
    gas_price: u128,
    mut stop: watch::Receiver<bool>,
) {
    let b = Books { ep, gas_price, tracker: &tracker, rec: &rec };
    while !*stop.borrow() {
        let mut stream = match client.stream_blocks().await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(endpoint = ep, error = %e, "StreamBlocks failed; retrying");
                None
            }
        };
        // Blocks committed before the stream opened (or while it was down) come from GetRawBlocks.
        if let Ok(meta) = client.chain_meta().await
            && meta.height > last
        {
            last = catch_up(&b, &client, last + 1, meta.height).await;
        }
        while let Some(s) = stream.as_mut() {
            let msg = tokio::select! {
                m = s.message() => m,
                _ = stop.changed() => return,
            };
            match msg {
                Ok(Some(m)) => {
                    let height = m.block_identifier.map(|b| b.height).unwrap_or(0);
                    if height > last + 1 {
                        last = catch_up(&b, &client, last + 1, height - 1).await;
                    }
                    if height > last && height == last + 1 {
                        let receipts = m.block.map(|blk| blk.receipts).unwrap_or_default();
                        handle_receipts(ep, &receipts, gas_price, &tracker, &rec);
                        last = height;
                    }
                }
                Ok(None) | Err(_) => stream = None,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Looks up every record still tracked on `ep` (bounded by `deadline`); returns how many could not be.
/// `gas_price` is the one the run signs with.
pub async fn reconcile(
    ep: usize,
    client: &Client,
    gas_price: u128,
    tracker: &Tracker,
    rec: &Recorder,
    deadline: Instant,
) -> usize {
    use futures::StreamExt;
    let unresolved = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(tracker.drain(ep))
        .for_each_concurrent(16, |(hash, p)| {
            let unresolved = &unresolved;
            async move {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let found = match tokio::time::timeout(remaining, client.lookup(hash)).await {
                    Ok(Ok(Lookup::Included { status, gas_consumed })) => {
                        Found::Included { success: status == 1, fee: u128::from(gas_consumed).checked_mul(gas_price) }
                    }
                    Ok(Ok(Lookup::Pending)) => Found::Pending,
                    Ok(Ok(Lookup::Unknown)) => Found::Gone,
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
