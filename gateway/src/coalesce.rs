//! In-flight coalescing ("single flight"): identical concurrent read calls share one upstream call.
//!
//! The first caller of a key (method + canonical params, [`crate::cache::CallKey`]) becomes the leader: its
//! work is spawned as its own task, so it runs to completion even if the leader's client goes away (the
//! callers that joined it still want the answer), and its output is shared through
//! [`futures::future::Shared`]. Callers that arrive while it is in flight join it instead of calling a node;
//! each still waits only until its own deadline. The key leaves the table when the work finishes, so the next
//! call after that makes a fresh upstream call: nothing here is a cache.
//!
//! Only methods the [`crate::methods`] table marks as side-effect-free reads ([`crate::methods::may_coalesce`]) are ever
//! coalesced; transaction submission, filter calls (which consume or create state in one node) and unknown
//! methods never are.

use futures::FutureExt;
use futures::future::{Map, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

/// A flight as a named type (the spawned task's handle, its result made an `Option`), so sharing it costs
/// no boxed future per call.
type Flight<T> = Shared<Map<JoinHandle<T>, fn(Result<T, JoinError>) -> Option<T>>>;

/// Whether a caller led a flight or joined one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started the shared work.
    Leader,
    /// Joined work already in flight.
    Joined,
}

/// The table of calls in flight, keyed by canonical call text.
pub struct Coalescer<T: Clone + Send + Sync + 'static> {
    flights: Arc<Mutex<HashMap<Arc<str>, Flight<T>>>>,
}

impl<T: Clone + Send + Sync + 'static> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer { flights: Arc::default() }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalescer<T> {
    /// A new, empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` for `key`, or joins the identical call already in flight. Waits until `deadline` at most:
    /// `None` when the deadline passed first (or the work's task was cancelled by a shutdown).
    pub async fn run<F, Fut>(&self, key: &str, deadline: Instant, work: F) -> (Option<T>, Role)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (flight, role) = {
            let mut flights = match self.flights.lock() {
                Ok(f) => f,
                Err(poisoned) => poisoned.into_inner(),
            };
            match flights.get(key) {
                Some(f) => (f.clone(), Role::Joined),
                None => {
                    let table = Arc::clone(&self.flights);
                    let owned_key: Arc<str> = Arc::from(key);
                    let table_key = Arc::clone(&owned_key);
                    let fut = work();
                    // Spawned, not polled by the leader: a leader whose client disconnects must not cancel
                    // the call the others are waiting for.
                    let task = tokio::spawn(async move {
                        let out = fut.await;
                        // Only this task removes its key, and a key is inserted only when absent, so the entry
                        // here is this flight's.
                        match table.lock() {
                            Ok(mut t) => t.remove(&*owned_key),
                            Err(poisoned) => poisoned.into_inner().remove(&*owned_key),
                        };
                        out
                    });
                    let done: fn(Result<T, JoinError>) -> Option<T> = Result::ok;
                    let flight: Flight<T> = task.map(done).shared();
                    flights.insert(table_key, flight.clone());
                    (flight, Role::Leader)
                }
            }
        };
        let out = tokio::time::timeout_at(deadline, flight).await.ok().flatten();
        (out, role)
    }

    /// Calls in flight now (for tests).
    pub fn in_flight(&self) -> usize {
        self.flights.lock().map(|f| f.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::may_coalesce;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn allow_list() {
        for m in ["eth_getBalance", "eth_getLogs", "eth_blockNumber", "eth_call", "eth_chainId", "net_version"] {
            assert!(may_coalesce(m), "{m}");
        }
        for m in [
            "eth_sendRawTransaction",
            "eth_sendTransaction",
            "eth_newFilter",
            "eth_newBlockFilter",
            "eth_newPendingTransactionFilter",
            "eth_getFilterChanges",
            "eth_getFilterLogs",
            "eth_uninstallFilter",
            "eth_subscribe",
            "anvil_mine",
            "personal_sign",
            "made_up",
        ] {
            assert!(!may_coalesce(m), "{m}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_identical_calls_share_one_run_and_the_next_one_runs_again() {
        let c: Arc<Coalescer<u32>> = Arc::new(Coalescer::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (c, runs, gate) = (Arc::clone(&c), Arc::clone(&runs), gate.clone());
            tasks.push(tokio::spawn(async move {
                c.run("k", deadline, move || {
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let mut gate = gate;
                        let _ = gate.wait_for(|open| *open).await;
                        7
                    }
                    .boxed()
                })
                .await
            }));
        }
        // Let every caller reach the table before the work is allowed to finish.
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        let _ = release.send(true);
        let mut leaders = 0;
        for t in tasks {
            let (out, role) = t.await.unwrap();
            assert_eq!(out, Some(7));
            leaders += usize::from(role == Role::Leader);
        }
        assert_eq!(leaders, 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(c.in_flight(), 0, "a finished flight leaves the table");
        let (out, role) = c.run("k", deadline, || async { 8 }.boxed()).await;
        assert_eq!((out, role), (Some(8), Role::Leader), "nothing is cached");
    }

    #[tokio::test(start_paused = true)]
    async fn the_work_survives_its_leader_and_each_caller_keeps_its_deadline() {
        let c: Arc<Coalescer<u32>> = Arc::new(Coalescer::new());
        let now = Instant::now();
        let leader = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                c.run("k", now + Duration::from_secs(60), || {
                    async {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        1
                    }
                    .boxed()
                })
                .await
            })
        };
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        // A follower with a short deadline gives up alone; one with a long deadline gets the answer.
        let short = c.run("k", now + Duration::from_secs(1), || async { 2 }.boxed()).await;
        assert_eq!(short, (None, Role::Joined));
        let long = c.run("k", now + Duration::from_secs(60), || async { 3 }.boxed()).await;
        assert_eq!(long, (Some(1), Role::Joined), "the aborted leader's work still finished");
    }
}
