//! Nonces: one owner per account, starting from the node's pending nonce, resynced after a failure.
//!
//! Each account has a slot holding the next nonce and an *epoch*. A reservation returns both. A failure that
//! may have left a gap or shows our count is wrong calls [`Nonces::invalidate`] with the epoch it reserved
//! under; only the first failure of an epoch forces a resync, so a burst of rejections costs one
//! `eth_getTransactionCount(addr, "pending")`, which returns the first missing nonce, so no gap stays open
//! for the node to queue forever.

use std::future::Future;
use tokio::sync::Mutex;

#[derive(Debug, Default)]
struct Slot {
    next: Option<u64>,
    epoch: u64,
    /// The highest nonce ever handed out: at the end, a pending nonce at or below it means a gap.
    max_handed: Option<u64>,
}

/// A reserved nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// The nonce to sign with.
    pub nonce: u64,
    /// The epoch it was handed out in.
    pub epoch: u64,
}

/// Nonce owners for every pool account.
#[derive(Debug)]
pub struct Nonces {
    slots: Vec<Mutex<Slot>>,
}

impl Nonces {
    /// `n` accounts, all needing a sync before first use.
    pub fn new(n: usize) -> Nonces {
        Nonces { slots: (0..n).map(|_| Mutex::new(Slot::default())).collect() }
    }

    /// Sets an account's next nonce (start of run).
    pub async fn set(&self, account: usize, next: u64) {
        if let Some(s) = self.slots.get(account) {
            let mut s = s.lock().await;
            s.next = Some(next);
        }
    }

    /// Hands out the next nonce, first fetching it with `fetch` if the account needs a resync. Returns
    /// `Ok(None)` for an unknown account; `Err` when the fetch fails (the slot stays unsynced).
    pub async fn reserve<F, Fut, E>(&self, account: usize, fetch: F) -> Result<Option<(Reserved, bool)>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, E>>,
    {
        let Some(slot) = self.slots.get(account) else { return Ok(None) };
        let mut s = slot.lock().await;
        let mut synced = false;
        let next = match s.next {
            Some(n) => n,
            None => {
                synced = true;
                fetch().await?
            }
        };
        s.next = Some(next + 1);
        s.max_handed = Some(s.max_handed.map_or(next, |m| m.max(next)));
        Ok(Some((Reserved { nonce: next, epoch: s.epoch }, synced)))
    }

    /// Marks the account for resync if `r` was handed out in the current epoch. Returns true if it did.
    pub async fn invalidate(&self, account: usize, r: Reserved) -> bool {
        let Some(slot) = self.slots.get(account) else { return false };
        let mut s = slot.lock().await;
        if s.epoch != r.epoch {
            return false;
        }
        s.epoch += 1;
        s.next = None;
        true
    }
}

impl Nonces {
    /// Accounts whose last failure came after their last reservation, with the highest nonce handed out:
    /// the ones that may have left a gap behind a rejected or unanswered action.
    pub async fn unsynced(&self) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let s = slot.lock().await;
            if let (None, Some(m)) = (s.next, s.max_handed) {
                out.push((i, m));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_consecutive_nonces_and_resyncs_once_per_epoch() {
        let n = Nonces::new(2);
        let ok = |v: u64| move || async move { Ok::<_, ()>(v) };
        let (a, synced) = n.reserve(0, ok(5)).await.unwrap().unwrap();
        assert!(synced);
        assert_eq!(a.nonce, 5);
        let (b, synced) = n.reserve(0, ok(99)).await.unwrap().unwrap();
        assert!(!synced, "no fetch while the count is trusted");
        assert_eq!(b.nonce, 6);
        let (c, _) = n.reserve(0, ok(99)).await.unwrap().unwrap();
        // Two failures from the same epoch: one resync.
        assert!(n.invalidate(0, b).await);
        assert!(!n.invalidate(0, c).await);
        let (d, synced) = n.reserve(0, ok(6)).await.unwrap().unwrap();
        assert!(synced);
        assert_eq!(d.nonce, 6, "the gap at 6 is filled");
        assert_eq!(n.reserve(0, ok(0)).await.unwrap().unwrap().0.nonce, 7);
        // The other account is independent.
        assert_eq!(n.reserve(1, ok(0)).await.unwrap().unwrap().0.nonce, 0);
        assert!(n.reserve(7, ok(0)).await.unwrap().is_none());
        // Account 0 was resynced and used again: nothing left to check. A failure after the last use is.
        assert!(n.unsynced().await.is_empty());
        let (e, _) = n.reserve(1, ok(0)).await.unwrap().unwrap();
        n.invalidate(1, e).await;
        assert_eq!(n.unsynced().await, vec![(1, 1)]);
    }

    #[tokio::test]
    async fn a_failed_fetch_leaves_the_slot_unsynced() {
        let n = Nonces::new(1);
        assert!(n.reserve(0, || async { Err::<u64, _>("down") }).await.is_err());
        assert_eq!(n.reserve(0, || async { Ok::<_, ()>(3) }).await.unwrap().unwrap().0.nonce, 3);
    }
}
