//! Steady JSON-RPC read load while a test changes something underneath (a node killed, an upstream set
//! reloaded): worker tasks call in a loop, count the calls that succeeded and keep every error a client saw,
//! so the test can wait for progress between its phases and assert at the end that no caller noticed.
//!
//! Bounded in count and time: each worker stops after [`LoadPlan::max_calls`] calls or [`LoadPlan::max_time`],
//! whichever comes first, even if the test never stops it. A test that outlives the bound sees its
//! [`Load::more`] time out, never a load that runs on.

use crate::http::RawClient;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The calls a worker makes: worker index and call index in, method and params out.
pub type Calls = fn(usize, usize) -> (&'static str, Value);

/// What the workers do.
#[derive(Clone, Copy)]
pub struct LoadPlan {
    /// Worker tasks, each with its own client (its own connections).
    pub workers: usize,
    /// The call to make next.
    pub calls: Calls,
    /// Pause between one worker's calls (zero: back to back).
    pub pause: Duration,
    /// Calls per worker at most.
    pub max_calls: u64,
    /// Time per worker at most.
    pub max_time: Duration,
}

impl LoadPlan {
    /// `workers` workers making `calls` back to back, at most 100,000 calls or 10 minutes each.
    pub fn new(workers: usize, calls: Calls) -> Self {
        LoadPlan { workers, calls, pause: Duration::ZERO, max_calls: 100_000, max_time: Duration::from_secs(600) }
    }
}

/// Running load; [`Load::stop`] ends it.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Every call's latency in microseconds (failed calls too), since the last [`Load::take_latency`].
    latency: Arc<Mutex<Latency>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Call latencies, microseconds, 1 µs to 10 min at 3 significant digits.
pub type Latency = hdrhistogram::Histogram<u64>;

fn new_latency() -> Latency {
    // Explicit bounds: `Histogram::new` starts with a tiny range that `saturating_record` clamps to.
    // 1 µs .. 600 s at 3 digits are valid bounds, so this cannot fail.
    #[allow(clippy::expect_used)]
    Latency::new_with_bounds(1, 600_000_000, 3).expect("1 µs .. 600 s at 3 digits are valid bounds")
}

impl Load {
    /// Starts the workers against `url`. A call succeeds when [`RawClient::call`] returns a result: a JSON
    /// answer with `result` and no `error`.
    pub fn start(url: &str, plan: LoadPlan) -> Load {
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let latency = Arc::new(Mutex::new(new_latency()));
        let (stop, ok) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let tasks = (0..plan.workers)
            .map(|w| {
                let (url, stop, ok, errors) = (url.to_owned(), stop.clone(), ok.clone(), Arc::clone(&errors));
                let latency = Arc::clone(&latency);
                tokio::spawn(async move {
                    let c = RawClient::new();
                    let deadline = tokio::time::Instant::now() + plan.max_time;
                    for i in 0..plan.max_calls {
                        if stop.load(Ordering::Relaxed) || tokio::time::Instant::now() > deadline {
                            break;
                        }
                        let (method, params) = (plan.calls)(w, i as usize);
                        let started = std::time::Instant::now();
                        let result = c.call(&url, method, params).await;
                        if let Ok(mut h) = latency.lock() {
                            h.saturating_record(started.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
                        }
                        match result {
                            Ok(_) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                if let Ok(mut v) = errors.lock() {
                                    v.push(e.to_string());
                                }
                            }
                        }
                        if !plan.pause.is_zero() {
                            tokio::time::sleep(plan.pause).await;
                        }
                    }
                })
            })
            .collect();
        Load { stop, ok, errors, latency, tasks }
    }

    /// The latencies recorded since the last call (or the start), and a fresh histogram from now on: one
    /// phase of a test at a time.
    pub fn take_latency(&self) -> Latency {
        match self.latency.lock() {
            Ok(mut h) => std::mem::replace(&mut *h, new_latency()),
            Err(p) => std::mem::replace(&mut *p.into_inner(), new_latency()),
        }
    }

    /// Every error a client saw so far (the load keeps running).
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|v| v.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Calls that succeeded so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits up to `within` for `n` more successful calls (so a phase of a test really ran under load).
    pub async fn more(&self, n: u64, within: Duration) -> anyhow::Result<()> {
        let target = self.ok() + n;
        crate::eventually(within, &format!("{n} more successful calls"), || async {
            (self.ok() >= target).then_some(())
        })
        .await
    }

    /// Stops the workers; the calls that succeeded and every error a client saw, in the order seen.
    pub async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let errors = self.errors.lock().map(|v| v.clone()).unwrap_or_else(|p| p.into_inner().clone());
        (self.ok.load(Ordering::Relaxed), errors)
    }
}
