//! Upstream health: one supervisor task owns every upstream's state; the request path reads a snapshot.
//!
//! Inputs: an active probe round every `health-interval` (`eth_blockNumber`, plus an optional HTTP health URL
//! such as an IoTeX node's `:8080/readiness`), and passive outcomes reported by the request path over an
//! `mpsc` channel. Output: a [`ClusterView`] published on a `watch` channel whenever something changes.
//!
//! Rules (each has a unit test below):
//! - **Down**: the last probe failed. A good probe brings the upstream back at once.
//! - **Ejected**: `eject-after-failures` consecutive failures on real traffic (connection, timeout, 5xx, 429,
//!   malformed answer). It stays out for a backoff that starts at `eject-backoff` and doubles on each repeat up
//!   to `eject-backoff-max`; after that, the next good probe readmits it. A minute of good health resets the
//!   backoff.
//! - **Best head**: the highest head within `max-lag-blocks` of the *upper median* of the heads of upstreams
//!   whose last probe succeeded. One node (of three or more) reporting an absurd height moves the median by
//!   at most one position, so it cannot drag the best head up and make every honest node look lagging; with
//!   two nodes the higher head wins, since nothing can tell which of two is wrong.
//! - **Lagging**: more than `max-lag-blocks` behind the best head. It returns when it is at most
//!   `readmit-lag-blocks` behind (hysteresis), so a node hovering at the threshold does not flap.
//! - **Busy**: the node answered HTTP 429 (an IoTeX node does, with an empty body, when its 100 concurrent
//!   request slots are taken). That is load shedding, not sickness: the node sits out `busy-backoff` and
//!   returns by itself, and the answer does not count towards ejection.
//!
//! The set of upstreams is not fixed: [`Control::SetUpstreams`] (from config reload and DNS discovery)
//! replaces it. Upstreams whose name and URLs are unchanged keep their state, connection pools and ids;
//! new ones start in [`State::Starting`]; removed ones leave the view (and their metric series go) at once.
//! The request path never holds an index across snapshots: passive reports carry [`Upstream::id`].

use super::Upstream;
use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::outcome::AttemptOutcome;
use futures::future::join_all;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// After this long without ejection, an upstream's ejection backoff starts from the base again.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// An upstream's routing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not probed yet.
    Starting,
    /// Routable.
    Up,
    /// Too far behind the best head.
    Lagging,
    /// Out after consecutive failures on real traffic, until its backoff ends and a probe succeeds.
    Ejected,
    /// The last probe failed.
    Down,
    /// Answered HTTP 429 ("busy"); sits out a short backoff, then returns without a probe.
    Busy,
}

/// One upstream in a [`ClusterView`].
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Routing state.
    pub state: State,
    /// Head at the last good probe.
    pub head: Option<u64>,
    /// Blocks behind the best head.
    pub lag: Option<u64>,
    /// The last probe's round trip, in milliseconds.
    pub probe_latency_ms: Option<f64>,
    /// Consecutive failures on real traffic.
    pub consecutive_failures: u32,
    /// The last failure seen, for operators.
    pub last_error: Option<String>,
}

/// The snapshot the request path routes on. `members`, `upstreams` and the indices in `routable` all
/// refer to the same positions, valid within this snapshot only.
#[derive(Clone, Serialize)]
pub struct ClusterView {
    /// The best head (see the module doc for the rule).
    pub best_head: Option<u64>,
    /// The current upstreams.
    #[serde(skip)]
    pub members: Vec<Arc<Upstream>>,
    /// Per upstream, in the order of `members`.
    pub upstreams: Vec<UpstreamStatus>,
    /// Positions of routable upstreams.
    pub routable: Vec<usize>,
}

impl std::fmt::Debug for ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterView")
            .field("best_head", &self.best_head)
            .field("members", &self.members.iter().map(|u| u.name.as_str()).collect::<Vec<_>>())
            .field("upstreams", &self.upstreams)
            .field("routable", &self.routable)
            .finish()
    }
}

impl ClusterView {
    fn starting(members: Vec<Arc<Upstream>>) -> ClusterView {
        let s = UpstreamStatus {
            state: State::Starting,
            head: None,
            lag: None,
            probe_latency_ms: None,
            consecutive_failures: 0,
            last_error: None,
        };
        let upstreams = vec![s; members.len()];
        ClusterView { best_head: None, members, upstreams, routable: Vec::new() }
    }

    /// The position of the upstream with this id, if it is still a member.
    pub fn position(&self, id: u64) -> Option<usize> {
        self.members.iter().position(|u| u.id == id)
    }
}

/// An outcome of real traffic, reported by the request path; the `u64` is [`Upstream::id`].
#[derive(Debug, Clone, Copy)]
pub enum Passive {
    /// The upstream answered (a JSON-RPC error is still an answer).
    Success(u64),
    /// The attempt failed.
    Failure(u64, AttemptOutcome),
    /// The upstream answered HTTP 429: busy, not failing.
    Busy(u64),
}

/// Changes to what the supervisor manages.
#[derive(Debug)]
pub enum Control {
    /// Replace the set of upstreams (config reload, DNS discovery).
    SetUpstreams(Vec<UpstreamConfig>),
    /// Replace the health settings (config reload).
    SetConfig(HealthConfig),
}

/// Builds [`Upstream`]s for members that join after start.
pub struct UpstreamFactory {
    /// In-flight cap per upstream.
    pub max_in_flight: usize,
    /// Serving threads (one client pool each).
    pub serving_threads: usize,
    /// Where per-upstream metric handles come from.
    pub metrics: Arc<Metrics>,
    /// The answer cap and buffer budget every upstream shares.
    pub answers: Arc<super::answer::AnswerBudget>,
}

impl UpstreamFactory {
    /// A new upstream with a fresh id.
    pub fn build(&self, cfg: &UpstreamConfig) -> Result<Arc<Upstream>, super::UpstreamUriError> {
        Upstream::new(cfg, self.max_in_flight, self.serving_threads, self.metrics.nodes.upstream(&cfg.name))
            .map(|u| Arc::new(u.with_answer_budget(Arc::clone(&self.answers))))
    }
}

/// Health settings.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Probe period.
    pub interval: Duration,
    /// Probe timeout.
    pub probe_timeout: Duration,
    /// Lag that excludes.
    pub max_lag: u64,
    /// Lag that readmits.
    pub readmit_lag: u64,
    /// Consecutive passive failures that eject.
    pub eject_after: u32,
    /// First ejection period.
    pub backoff: Duration,
    /// Longest ejection period.
    pub backoff_max: Duration,
    /// How long a node that answered HTTP 429 sits out.
    pub busy_backoff: Duration,
}

#[derive(Debug, Clone)]
struct Tracker {
    probe_ok: Option<bool>,
    head: Option<u64>,
    probe_latency: Option<Duration>,
    last_error: Option<String>,
    failures: u32,
    ejected_until: Option<Instant>,
    next_backoff: Duration,
    lagging: bool,
    healthy_since: Option<Instant>,
    busy_until: Option<Instant>,
}

impl Tracker {
    fn new(base: Duration) -> Tracker {
        Tracker {
            probe_ok: None,
            head: None,
            probe_latency: None,
            last_error: None,
            failures: 0,
            ejected_until: None,
            next_backoff: base,
            lagging: false,
            healthy_since: None,
            busy_until: None,
        }
    }

    fn state(&self, now: Instant) -> State {
        let busy = self.busy_until.is_some_and(|until| now < until);
        match (self.probe_ok, self.ejected_until.is_some(), self.lagging, busy) {
            (None, _, _, _) => State::Starting,
            (Some(false), _, _, _) => State::Down,
            (Some(true), true, _, _) => State::Ejected,
            (Some(true), false, true, _) => State::Lagging,
            (Some(true), false, false, true) => State::Busy,
            (Some(true), false, false, false) => State::Up,
        }
    }
}

/// The pure state machine the supervisor drives; separate from I/O so it is tested directly.
#[derive(Debug)]
pub struct HealthState {
    cfg: HealthConfig,
    trackers: Vec<Tracker>,
}

/// The best head: highest head within `max_lag` of the upper median of `heads` (see the module doc).
pub fn best_head(heads: &[u64], max_lag: u64) -> Option<u64> {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len() / 2)?;
    let ceiling = median.saturating_add(max_lag);
    sorted.into_iter().filter(|h| *h <= ceiling).max()
}

impl HealthState {
    /// All upstreams start in [`State::Starting`].
    pub fn new(cfg: HealthConfig, n: usize) -> HealthState {
        let trackers = (0..n).map(|_| Tracker::new(cfg.backoff)).collect();
        HealthState { cfg, trackers }
    }

    /// Applies one probe result. `Ok((head, rtt))` or `Err(reason)`.
    pub fn probe(&mut self, i: usize, result: Result<(u64, Duration), String>, now: Instant) {
        let cfg = self.cfg.clone();
        let Some(t) = self.trackers.get_mut(i) else { return };
        match result {
            Ok((head, rtt)) => {
                t.probe_ok = Some(true);
                t.head = Some(head);
                t.probe_latency = Some(rtt);
                if let Some(until) = t.ejected_until
                    && now >= until
                {
                    t.ejected_until = None;
                    t.failures = 0;
                    t.healthy_since = Some(now);
                }
                if t.ejected_until.is_none() {
                    let since = *t.healthy_since.get_or_insert(now);
                    if now.saturating_duration_since(since) >= BACKOFF_RESET_AFTER {
                        t.next_backoff = cfg.backoff;
                    }
                }
            }
            Err(reason) => {
                t.probe_ok = Some(false);
                t.last_error = Some(reason);
                t.healthy_since = None;
                if let Some(until) = t.ejected_until
                    && now >= until
                {
                    // Still bad after its backoff: stay out, for longer.
                    t.ejected_until = Some(now + t.next_backoff);
                    t.next_backoff = (t.next_backoff * 2).min(cfg.backoff_max);
                }
            }
        }
    }

    /// The number of upstreams tracked.
    pub fn len(&self) -> usize {
        self.trackers.len()
    }

    /// True when no upstream is tracked.
    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    /// Replaces the settings; trackers keep their state.
    pub fn set_config(&mut self, cfg: HealthConfig) {
        self.cfg = cfg;
    }

    /// Rearranges the trackers for a new member list: `from[new] = Some(old)` keeps an upstream's state,
    /// `None` starts a new one.
    pub fn remap(&mut self, from: &[Option<usize>]) {
        let base = self.cfg.backoff;
        let old = std::mem::take(&mut self.trackers);
        self.trackers =
            from.iter().map(|o| o.and_then(|i| old.get(i).cloned()).unwrap_or_else(|| Tracker::new(base))).collect();
    }

    /// The earliest moment a busy upstream returns, so the supervisor can republish then.
    pub fn next_busy_expiry(&self, now: Instant) -> Option<Instant> {
        self.trackers.iter().filter_map(|t| t.busy_until).filter(|u| *u > now).min()
    }

    /// Applies one passive outcome for the upstream at position `i`. Returns true when the routing view
    /// changed (an ejection, or a node turning busy).
    pub fn passive(&mut self, i: usize, p: Passive, now: Instant) -> bool {
        let cfg = &self.cfg;
        match p {
            Passive::Success(_) => {
                if let Some(t) = self.trackers.get_mut(i) {
                    t.failures = 0;
                }
                false
            }
            Passive::Busy(_) => {
                let Some(t) = self.trackers.get_mut(i) else { return false };
                let was_busy = t.busy_until.is_some_and(|u| now < u);
                t.busy_until = Some(now + cfg.busy_backoff);
                t.last_error = Some("traffic: HTTP 429 (busy)".to_owned());
                !was_busy
            }
            Passive::Failure(_, kind) => {
                let Some(t) = self.trackers.get_mut(i) else { return false };
                if t.ejected_until.is_some() {
                    return false;
                }
                t.failures += 1;
                t.last_error = Some(format!("traffic: {}", kind.as_str()));
                if t.failures >= cfg.eject_after {
                    t.ejected_until = Some(now + t.next_backoff);
                    t.next_backoff = (t.next_backoff * 2).min(cfg.backoff_max);
                    t.healthy_since = None;
                    return true;
                }
                false
            }
        }
    }

    /// Recomputes the best head and lag (with hysteresis) and returns the view to publish.
    pub fn view(&mut self, members: Vec<Arc<Upstream>>) -> ClusterView {
        self.view_at(members, Instant::now())
    }

    /// [`HealthState::view`] at a given moment (busy periods are judged against `now`).
    pub fn view_at(&mut self, members: Vec<Arc<Upstream>>, now: Instant) -> ClusterView {
        let heads: Vec<u64> =
            self.trackers.iter().filter(|t| t.probe_ok == Some(true)).filter_map(|t| t.head).collect();
        let best = best_head(&heads, self.cfg.max_lag);
        let mut upstreams = Vec::with_capacity(self.trackers.len());
        let mut routable = Vec::new();
        for (i, t) in self.trackers.iter_mut().enumerate() {
            let lag = match (best, t.head) {
                (Some(b), Some(h)) => Some(b.saturating_sub(h)),
                _ => None,
            };
            if let Some(lag) = lag {
                let limit = if t.lagging { self.cfg.readmit_lag } else { self.cfg.max_lag };
                t.lagging = lag > limit;
            }
            let state = t.state(now);
            if state == State::Up {
                routable.push(i);
            }
            upstreams.push(UpstreamStatus {
                state,
                head: t.head,
                lag,
                probe_latency_ms: t.probe_latency.map(|d| d.as_secs_f64() * 1000.0),
                consecutive_failures: t.failures,
                last_error: t.last_error.clone(),
            });
        }
        ClusterView { best_head: best, members, upstreams, routable }
    }
}

/// The running supervisor's handles.
pub struct Health {
    /// Snapshots for the request path.
    pub view: watch::Receiver<Arc<ClusterView>>,
    /// Where the request path reports outcomes.
    pub passive: mpsc::Sender<Passive>,
    /// Membership and settings changes.
    pub control: mpsc::Sender<Control>,
    /// The supervisor task (aborted on shutdown).
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the supervisor over the initial members; the first probe round runs at once.
pub fn spawn(members: Vec<Arc<Upstream>>, cfg: HealthConfig, factory: UpstreamFactory) -> Health {
    let (view_tx, view_rx) = watch::channel(Arc::new(ClusterView::starting(members.clone())));
    // Passive reports are dropped rather than awaited when the channel is full: counting them is best
    // effort, and the request path must never wait on health bookkeeping.
    let (passive_tx, passive_rx) = mpsc::channel(4096);
    let (control_tx, control_rx) = mpsc::channel(16);
    let state = HealthState::new(cfg.clone(), members.len());
    let last = vec![State::Starting; members.len()];
    let sup = Supervisor { members, cfg, state, view_tx, factory, last };
    let task = tokio::spawn(sup.run(passive_rx, control_rx));
    Health { view: view_rx, passive: passive_tx, control: control_tx, task }
}

type Round = Vec<(u64, Result<(u64, Duration), String>)>;

struct Supervisor {
    members: Vec<Arc<Upstream>>,
    cfg: HealthConfig,
    state: HealthState,
    view_tx: watch::Sender<Arc<ClusterView>>,
    factory: UpstreamFactory,
    last: Vec<State>,
}

impl Supervisor {
    async fn run(mut self, mut passive_rx: mpsc::Receiver<Passive>, mut control_rx: mpsc::Receiver<Control>) {
        let mut tick = interval(self.cfg.interval);
        // Probe rounds run in their own task so a hung node's probe never delays passive ejections.
        let (round_tx, mut round_rx) = mpsc::channel::<Round>(1);
        let mut round_running = false;
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        loop {
            let busy_wake =
                self.state.next_busy_expiry(Instant::now()).map_or_else(far, tokio::time::Instant::from_std);
            tokio::select! {
                _ = tick.tick(), if !round_running => {
                    round_running = true;
                    let ups = self.members.clone();
                    let tx = round_tx.clone();
                    let timeout = self.cfg.probe_timeout;
                    tokio::spawn(async move {
                        let results = join_all(ups.iter().map(|u| async move { (u.id, u.probe(timeout).await) })).await;
                        let _ = tx.send(results).await;
                    });
                }
                Some(results) = round_rx.recv() => {
                    round_running = false;
                    let now = Instant::now();
                    for (id, r) in results {
                        // A member removed while its probe ran is simply not found.
                        if let Some(i) = self.members.iter().position(|u| u.id == id) {
                            self.state.probe(i, r, now);
                        }
                    }
                    self.publish();
                }
                msg = passive_rx.recv() => {
                    let Some(p) = msg else { return };
                    let id = match p { Passive::Success(id) | Passive::Failure(id, _) | Passive::Busy(id) => id };
                    let Some(i) = self.members.iter().position(|u| u.id == id) else { continue };
                    if self.state.passive(i, p, Instant::now()) {
                        if let Passive::Failure(..) = p && let Some(u) = self.members.get(i) {
                            self.factory.metrics.nodes.ejected(&u.name);
                        }
                        self.publish();
                    }
                }
                msg = control_rx.recv() => {
                    let Some(c) = msg else { return };
                    match c {
                        Control::SetUpstreams(want) => self.set_upstreams(&want),
                        Control::SetConfig(cfg) => {
                            if cfg.interval != self.cfg.interval {
                                tick = interval(cfg.interval);
                            }
                            self.state.set_config(cfg.clone());
                            self.cfg = cfg;
                        }
                    }
                    self.publish();
                }
                () = tokio::time::sleep_until(busy_wake) => self.publish(),
            }
        }
    }

    /// Diffs the wanted set against the members: unchanged ones (same name, same URLs) keep everything.
    fn set_upstreams(&mut self, want: &[UpstreamConfig]) {
        let mut members = Vec::with_capacity(want.len());
        let mut from = Vec::with_capacity(want.len());
        let mut last = Vec::with_capacity(want.len());
        for w in want {
            let existing = self.members.iter().position(|u| u.config == *w);
            match existing {
                Some(i) => {
                    members.push(Arc::clone(&self.members[i]));
                    from.push(Some(i));
                    last.push(self.last.get(i).copied().unwrap_or(State::Starting));
                }
                None => match self.factory.build(w) {
                    Ok(u) => {
                        tracing::info!(upstream = %u.name, url = %u.display_url, "upstream added");
                        members.push(u);
                        from.push(None);
                        last.push(State::Starting);
                    }
                    Err(e) => tracing::error!(error = %e, "upstream not added"),
                },
            }
        }
        for old in &self.members {
            if !members.iter().any(|m| m.id == old.id) {
                tracing::info!(upstream = %old.name, url = %old.display_url, "upstream removed");
                // A name that is still present (its URL changed) keeps its series.
                if !members.iter().any(|m| m.name == old.name) {
                    self.factory.metrics.nodes.forget(&old.name);
                }
            }
        }
        self.state.remap(&from);
        self.members = members;
        self.last = last;
    }

    fn publish(&mut self) {
        let view = self.state.view(self.members.clone());
        let metrics = &self.factory.metrics;
        if let Some(b) = view.best_head {
            metrics.nodes.best_head.set(i64::try_from(b).unwrap_or(i64::MAX));
        }
        metrics.nodes.upstreams.set(i64::try_from(view.members.len()).unwrap_or(i64::MAX));
        for ((u, s), prev) in view.members.iter().zip(&view.upstreams).zip(self.last.iter_mut()) {
            u.metrics.up.set(i64::from(s.state == State::Up));
            if let Some(h) = s.head {
                u.metrics.head.set(i64::try_from(h).unwrap_or(i64::MAX));
            }
            if let Some(l) = s.lag {
                u.metrics.lag.set(i64::try_from(l).unwrap_or(i64::MAX));
            }
            if *prev != s.state {
                if s.state == State::Up {
                    tracing::info!(upstream = %u.name, from = ?prev, head = ?s.head, "upstream routable");
                } else {
                    tracing::warn!(upstream = %u.name, from = ?prev, to = ?s.state, head = ?s.head, lag = ?s.lag,
                        error = s.last_error.as_deref().unwrap_or(""), "upstream not routable");
                }
                *prev = s.state;
            }
        }
        let had_routable = !self.view_tx.borrow().routable.is_empty();
        if view.routable.is_empty() && had_routable {
            tracing::error!("no routable upstream: calls are answered 503 until one recovers");
        }
        self.view_tx.send_replace(Arc::new(view));
    }
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
