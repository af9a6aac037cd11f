//! In-flight coalescing ("single flight"): identical concurrent read calls share one upstream call.
//!
//! The first caller of a key becomes the leader and polls the work itself, on its own task: no task is
//! spawned, no timer armed and no shared future built for the common case, where nobody ever joins (each of
//! those cost a few thousand instructions per call, paid by every coalescable read; see
//! `docs/benchmarks.md`). Callers that arrive while it is in flight join it instead of calling a node; each
//! waits only until its own deadline. When the work finishes the leader takes the key out of the table and,
//! only if someone joined, hands them a clone of the output. Nothing here is a cache: the next call after
//! that makes a fresh upstream call.
//!
//! A leader whose client goes away (its future dropped) must not cancel the call: others may be waiting
//! for it, and a client that gave up and retries joins it rather than asking a node again. Its drop hands
//! the unfinished work to a spawned task, which finishes it and wakes whoever waits. That is why the work
//! is boxed: a future already polled in place cannot be moved, a boxed one can.
//!
//! Only methods the [`crate::methods`] table marks as side-effect-free reads ([`crate::methods::may_coalesce`]) are ever
//! coalesced; transaction submission, filter calls (which consume or create state in one node) and unknown
//! methods never are.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Whether a caller led a flight or joined one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started the shared work.
    Leader,
    /// Joined work already in flight.
    Joined,
}

/// One call in flight: where its output goes, and who waits for it.
struct Flight<T> {
    /// Set once when the work ends: `None` when it was dropped unfinished (no runtime to finish it on).
    output: OnceLock<Option<T>>,
    /// Wakes the joiners once `output` is set.
    done: Notify,
    /// Joiners so far; raised only under the table lock, and read there by whoever removes the key, so
    /// one that sees 0 knows nobody can still join (and clones no output for nobody).
    joined: AtomicUsize,
}

/// What [`Coalescer::enter`] found.
enum Entry<T> {
    /// A flight for the key was open.
    Joined(Arc<Flight<T>>),
    /// None was: this caller leads the one just opened under this key.
    Leads(Arc<Flight<T>>, Arc<str>),
}

type Map<T> = HashMap<Arc<str>, Arc<Flight<T>>, foldhash::fast::RandomState>;
type Table<T> = Mutex<Map<T>>;

/// The table of calls in flight, keyed by call text.
pub struct Coalescer<T: Clone + Send + Sync + 'static> {
    flights: Arc<Table<T>>,
}

impl<T: Clone + Send + Sync + 'static> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer { flights: Arc::default() }
    }
}

fn lock<T>(table: &Table<T>) -> MutexGuard<'_, Map<T>> {
    // A panic elsewhere while holding the lock leaves the map itself consistent (every change is one call).
    match table.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl<T: Clone + Send + Sync + 'static> Coalescer<T> {
    /// A new, empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` for `key`, or joins the identical call already in flight. A joiner waits until `deadline`
    /// at most and gets `None` when it passed first (or the work was dropped unfinished). The leader waits
    /// for its work, so `work` must itself end by the leader's deadline (the retrying reader does); no timer
    /// is armed for it.
    pub async fn run<F, Fut>(&self, key: &str, deadline: Instant, work: F) -> (Option<T>, Role)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (flight, key) = match self.enter(key) {
            Entry::Joined(flight) => {
                let out = tokio::time::timeout_at(deadline, flight.wait()).await.ok().flatten();
                return (out, Role::Joined);
            }
            Entry::Leads(flight, key) => (flight, key),
        };
        let lead = Lead { work: Some(Box::pin(work())), flight, table: Arc::clone(&self.flights), key };
        (Some(lead.await), Role::Leader)
    }

    /// Joins the flight for `key`, or opens one (a plain function: the table's guard never lives in a future).
    fn enter(&self, key: &str) -> Entry<T> {
        let mut flights = lock(&self.flights);
        if let Some(f) = flights.get(key) {
            f.joined.fetch_add(1, Ordering::Relaxed);
            return Entry::Joined(Arc::clone(f));
        }
        let flight = Arc::new(Flight { output: OnceLock::new(), done: Notify::new(), joined: AtomicUsize::new(0) });
        let key: Arc<str> = Arc::from(key);
        flights.insert(Arc::clone(&key), Arc::clone(&flight));
        Entry::Leads(flight, key)
    }

    /// Calls in flight now (for tests).
    pub fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }
}

impl<T: Clone> Flight<T> {
    /// The output, once set.
    async fn wait(&self) -> Option<T> {
        loop {
            // Created before the check: `notify_waiters` wakes every `Notified` that exists when it is called,
            // polled or not, so an output set between the check and the await is not missed.
            let notified = self.done.notified();
            if let Some(out) = self.output.get() {
                return out.clone();
            }
            notified.await;
        }
    }
}

/// Takes `key` out of the table and, when anyone joined, gives them `out`.
fn finish<T: Clone>(table: &Table<T>, key: &str, flight: &Flight<T>, out: Option<&T>) {
    let joined = {
        let mut flights = lock(table);
        flights.remove(key);
        flight.joined.load(Ordering::Relaxed)
    };
    if joined > 0 {
        let _ = flight.output.set(out.cloned());
        flight.done.notify_waiters();
    }
}

/// The leader's side of a flight: polls the work in place; see the module doc for what its drop does.
struct Lead<T: Clone + Send + Sync + 'static, Fut: Future<Output = T> + Send + 'static> {
    /// Boxed so that an unfinished, already polled work can be moved to a task when the leader is dropped.
    work: Option<Pin<Box<Fut>>>,
    flight: Arc<Flight<T>>,
    table: Arc<Table<T>>,
    key: Arc<str>,
}

impl<T, Fut> Future for Lead<T, Fut>
where
    T: Clone + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(work) = self.work.as_mut() else { return Poll::Pending };
        let out = std::task::ready!(work.as_mut().poll(cx));
        self.work = None;
        finish(&self.table, &self.key, &self.flight, Some(&out));
        Poll::Ready(out)
    }
}

impl<T: Clone + Send + Sync + 'static, Fut: Future<Output = T> + Send + 'static> Drop for Lead<T, Fut> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else { return };
        let (flight, table, key) = (Arc::clone(&self.flight), Arc::clone(&self.table), Arc::clone(&self.key));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let out = work.await;
                    finish(&table, &key, &flight, Some(&out));
                });
            }
            // Dropped outside any runtime (a shutdown): nothing can finish the work; the joiners get `None`.
            Err(_) => finish(&table, &key, &flight, None),
        }
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
                c.run("k", deadline, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let mut gate = gate;
                    let _ = gate.wait_for(|open| *open).await;
                    7
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
        let (out, role) = c.run("k", deadline, || async { 8 }).await;
        assert_eq!((out, role), (Some(8), Role::Leader), "nothing is cached");
    }

    #[tokio::test(start_paused = true)]
    async fn the_work_survives_its_leader_while_others_wait_and_each_caller_keeps_its_deadline() {
        let c: Arc<Coalescer<u32>> = Arc::new(Coalescer::new());
        let now = Instant::now();
        let leader = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                c.run("k", now + Duration::from_secs(60), || async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    1
                })
                .await
            })
        };
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let join = |secs: u64| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.run("k", now + Duration::from_secs(secs), || async { 99 }).await })
        };
        let (short, long) = (join(1), join(60));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        // A follower with a short deadline gives up alone; one with a long deadline gets the answer.
        assert_eq!(short.await.unwrap(), (None, Role::Joined));
        assert_eq!(long.await.unwrap(), (Some(1), Role::Joined), "the aborted leader's work still finished");
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_call_still_finishes_and_a_later_identical_call_joins_it() {
        let c: Arc<Coalescer<u32>> = Arc::new(Coalescer::new());
        let finished = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(60);
        let leader = {
            let (c, finished) = (Arc::clone(&c), Arc::clone(&finished));
            tokio::spawn(async move {
                c.run("k", deadline, || async move {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    1
                })
                .await
            })
        };
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        assert_eq!(c.in_flight(), 1, "the call outlives its leader");
        assert_eq!(c.run("k", deadline, || async { 2 }).await, (Some(1), Role::Joined));
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        assert_eq!(c.in_flight(), 0);
    }
}
