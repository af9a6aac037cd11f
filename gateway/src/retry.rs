//! The retrying read path: one call to any routable node, retried on another within the call's deadline
//! and a retry budget, with every attempt reported to health.
//!
//! Used by the proxy (plain reads, sub-batches, filter creation, transaction sends) and by the cache and
//! coalescing layer ([`crate::reuse`]), whose shared flights hold a [`Reader`] rather than the proxy, so the
//! two can be built one after the other.
//!
//! Retries: a read is retried on an untried upstream after a connection error, timeout, 5xx, 429 or
//! malformed answer. Not after a 4xx without a JSON-RPC body (the node refused *this request*), not past
//! the deadline, not when no untried upstream is routable, and not when the budget (tower's `TpsBudget`:
//! retries ≤ a share of recent calls plus a small floor) is spent, so a sick cluster is not hammered. A busy
//! node's 429 is moved elsewhere without spending budget: it shed the call before doing any work. A
//! JSON-RPC error from a node that answered is an answer, never retried.

use crate::error::CallError;
use crate::metrics::Metrics;
use crate::outcome::AttemptOutcome;
use crate::upstream::health::{ClusterView, Passive};
use crate::upstream::pool::{self, PickError};
use crate::upstream::{Answer, AttemptError, Upstream};
use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

/// When [`Reader::read_with`] may send a call again to another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// A read: after any failure but a 4xx or a gateway limit (as [`Reader::read`]).
    Any,
    /// An action send: only when the request provably never left (connection refused, 429).
    OnlyIfNeverSent,
}

/// What a config reload can change here, swapped as one unit.
struct Settings {
    attempt_timeout: Duration,
    retry_budget_ratio: f32,
}

/// The retrying reader, shared by every connection.
pub struct Reader {
    view: watch::Receiver<Arc<ClusterView>>,
    passive: mpsc::Sender<Passive>,
    settings: ArcSwap<Settings>,
    budget: ArcSwap<TpsBudget>,
    metrics: Arc<Metrics>,
}

fn budget(ratio: f32) -> TpsBudget {
    // 10 s window, and at least 10 retries/s so a quiet gateway can still fail over.
    TpsBudget::new(Duration::from_secs(10), 10, ratio)
}

impl Reader {
    /// A reader over running health.
    pub fn new(
        view: watch::Receiver<Arc<ClusterView>>,
        passive: mpsc::Sender<Passive>,
        metrics: Arc<Metrics>,
        attempt_timeout: Duration,
        retry_budget_ratio: f32,
    ) -> Reader {
        Reader {
            view,
            passive,
            settings: ArcSwap::from_pointee(Settings { attempt_timeout, retry_budget_ratio }),
            budget: ArcSwap::from_pointee(budget(retry_budget_ratio)),
            metrics,
        }
    }

    /// Applies reloaded settings to attempts that start from now on. The budget restarts only if its ratio
    /// changed.
    pub fn reconfigure(&self, attempt_timeout: Duration, retry_budget_ratio: f32) {
        if (retry_budget_ratio - self.settings.load().retry_budget_ratio).abs() > f32::EPSILON {
            self.budget.store(Arc::new(budget(retry_budget_ratio)));
        }
        self.settings.store(Arc::new(Settings { attempt_timeout, retry_budget_ratio }));
    }

    /// The longest one attempt may take.
    pub fn attempt_timeout(&self) -> Duration {
        self.settings.load().attempt_timeout
    }

    /// The current health snapshot (an `Arc` clone: no copy of the routable set per call).
    pub fn snapshot(&self) -> Arc<ClusterView> {
        Arc::clone(&self.view.borrow())
    }

    /// The metrics, for the paths built on this reader.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A plain read's answer.
    pub async fn read_answer(&self, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        self.read(body, deadline, false).await.map(|(_, a)| a)
    }

    /// A read (or a sub-batch of reads, `batch`): any upstream will do; retry elsewhere on failure, within
    /// deadline and budget. Returns the upstream that answered with its answer.
    pub async fn read(
        &self,
        body: Bytes,
        deadline: Instant,
        batch: bool,
    ) -> Result<(Arc<Upstream>, Answer), CallError> {
        self.budget.load().deposit();
        let mut tried: Vec<u64> = Vec::new();
        let mut last: Option<AttemptError> = None;
        loop {
            let err = match self.attempt(&body, batch, &tried, &mut last, deadline).await? {
                (upstream, Ok(answer)) => return Ok((upstream, answer)),
                (upstream, Err(e)) => {
                    tried.push(upstream.id);
                    e
                }
            };
            // The node refused this request (4xx), or its answer is too big for this gateway or has no room
            // in it: another node would answer the same.
            if err.kind == AttemptOutcome::Http4xx || err.kind.is_gateway_limit() {
                return Err(CallError::Upstream(err));
            }
            if Instant::now() >= deadline {
                return Err(CallError::Deadline);
            }
            // Spend budget only on a retry that can happen: somewhere untried must be routable.
            if !self.untried_left(&tried) {
                return Err(CallError::Upstream(err));
            }
            // A busy node (429) shed the call before doing any work: moving it elsewhere at once is what
            // IoTeX asks for, and costs the cluster nothing, so it does not spend retry budget.
            if err.kind != AttemptOutcome::Http429 && !self.budget.load().withdraw() {
                self.metrics.calls.retry_budget_exhausted.inc();
                return Err(CallError::Upstream(err));
            }
            self.metrics.calls.retry(err.kind);
            last = Some(err);
        }
    }

    /// One attempt on an upstream not in `tried` (ids): pick, call within what is left of the deadline,
    /// report the outcome to health. `Err` when no attempt could be made; `Ok((upstream, result))` otherwise.
    pub async fn attempt(
        &self,
        body: &Bytes,
        batch: bool,
        tried: &[u64],
        last: &mut Option<AttemptError>,
        deadline: Instant,
    ) -> Result<(Arc<Upstream>, Result<Answer, AttemptError>), CallError> {
        let view = self.snapshot();
        let picked = match pool::pick(&view.members, &view.routable, tried, deadline).await {
            Ok(p) => p,
            Err(PickError::NoneRoutable) => return Err(last.take().map_or(CallError::NoUpstream, CallError::Upstream)),
            Err(PickError::Saturated) => return Err(CallError::Saturated),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(CallError::Deadline);
        }
        let timeout = self.attempt_timeout().min(remaining);
        let result = if batch {
            picked.upstream.call_batch(body.clone(), timeout).await
        } else {
            picked.upstream.call(body.clone(), timeout).await
        };
        drop(picked.permit);
        self.report_attempt(&picked.upstream, &result);
        Ok((picked.upstream, result))
    }

    /// True when some routable upstream has not been tried by this call.
    fn untried_left(&self, tried: &[u64]) -> bool {
        let view = self.snapshot();
        view.routable.iter().filter_map(|i| view.members.get(*i)).any(|u| !tried.contains(&u.id))
    }

    /// Tells health what one attempt showed.
    pub fn report_attempt<T>(&self, upstream: &Upstream, r: &Result<T, AttemptError>) {
        report(&self.passive, upstream, r.as_ref().map(|_| ()));
    }

    /// [`Reader::read`] for any kind of attempt (the gRPC listener's unary calls): `call` makes one attempt on
    /// the picked upstream within the given timeout. With `resend` [`Resend::OnlyIfNeverSent`] (a gRPC
    /// `SendAction`), a failed attempt is retried only when the request provably never left.
    pub async fn read_with<T, F, Fut>(
        &self,
        deadline: Instant,
        resend: Resend,
        mut call: F,
    ) -> Result<(Arc<Upstream>, T), CallError>
    where
        F: FnMut(Arc<Upstream>, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError>>,
    {
        self.budget.load().deposit();
        let mut tried: Vec<u64> = Vec::new();
        let mut last: Option<AttemptError> = None;
        loop {
            let view = self.snapshot();
            let picked = match pool::pick(&view.members, &view.routable, &tried, deadline).await {
                Ok(p) => p,
                Err(PickError::NoneRoutable) => {
                    return Err(last.take().map_or(CallError::NoUpstream, CallError::Upstream));
                }
                Err(PickError::Saturated) => return Err(CallError::Saturated),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CallError::Deadline);
            }
            let upstream = picked.upstream;
            let result = call(Arc::clone(&upstream), self.attempt_timeout().min(remaining)).await;
            drop(picked.permit);
            self.report_attempt(&upstream, &result);
            let err = match result {
                Ok(v) => return Ok((upstream, v)),
                Err(e) => e,
            };
            tried.push(upstream.id);
            let may_resend = match resend {
                Resend::Any => err.kind != AttemptOutcome::Http4xx && !err.kind.is_gateway_limit(),
                Resend::OnlyIfNeverSent => err.never_sent(),
            };
            if !may_resend || !self.untried_left(&tried) {
                return Err(CallError::Upstream(err));
            }
            if Instant::now() >= deadline {
                return Err(CallError::Deadline);
            }
            if err.kind != AttemptOutcome::Http429 && !self.budget.load().withdraw() {
                self.metrics.calls.retry_budget_exhausted.inc();
                return Err(CallError::Upstream(err));
            }
            self.metrics.calls.retry(err.kind);
            last = Some(err);
        }
    }

    /// The channel to health, for attempts that outlive their call (a broadcast's other sends).
    pub fn passive(&self) -> mpsc::Sender<Passive> {
        self.passive.clone()
    }
}

/// What health learns from one attempt (`Ok`: the node answered, whatever the answer said).
pub fn passive_report(upstream: &Upstream, r: Result<(), &AttemptError>) -> Option<Passive> {
    match r {
        Ok(_) => Some(Passive::Success(upstream.id)),
        // A 4xx with a non-JSON body is the node refusing this request, not the node being unwell.
        Err(e) if e.kind == AttemptOutcome::Http4xx => None,
        // Too big for this gateway, or no room in it: nothing about the node's health.
        Err(e) if e.kind.is_gateway_limit() => None,
        Err(e) if e.kind == AttemptOutcome::Http429 => {
            upstream.metrics.busy.inc();
            Some(Passive::Busy(upstream.id))
        }
        Err(e) => Some(Passive::Failure(upstream.id, e.kind)),
    }
}

/// Sends health what one attempt showed, when it is news. Health keeps a failure streak per node that a
/// success resets, so a success matters only after a reported failure: a healthy node's calls send nothing.
/// That keeps the request path from waking the health task, which runs on the control runtime (another
/// thread), on every call.
pub fn report(passive: &mpsc::Sender<Passive>, upstream: &Upstream, r: Result<(), &AttemptError>) {
    let Some(p) = passive_report(upstream, r) else { return };
    // Never wait on health bookkeeping; a full channel means the supervisor is already busy with news.
    match p {
        Passive::Success(_) => {
            if upstream.take_failure_reported() && passive.try_send(p).is_err() {
                // Not delivered: the next success tries again.
                upstream.failure_reported();
            }
        }
        Passive::Failure(..) => {
            if passive.try_send(p).is_ok() {
                upstream.failure_reported();
            }
        }
        Passive::Busy(_) => {
            let _ = passive.try_send(p);
        }
    }
}

/// The id the gateway puts on a notification it forwards: the node's answer is discarded, but asking with an
/// id keeps the attempt classifiable (a node may answer a notification with anything or nothing).
pub fn notification_id() -> &'static RawValue {
    // A constant literal that is valid JSON; `from_string` on it cannot fail, but fall back to null anyway.
    static ID: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        RawValue::from_string("\"iotex-gateway-notification\"".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn upstream() -> Upstream {
        let cfg = UpstreamConfig {
            name: "u".into(),
            url: url::Url::parse("http://127.0.0.1:1").unwrap(),
            health_url: None,
            ws_url: None,
            grpc_url: None,
        };
        Upstream::new(&cfg, 4, 1, Metrics::new().unwrap().nodes.upstream("u")).unwrap()
    }

    fn ok() -> Result<Answer, AttemptError> {
        Ok(Answer { body: Bytes::from_static(b"{}"), error: None })
    }

    fn failed(u: &Upstream) -> Result<Answer, AttemptError> {
        Err(AttemptError { upstream: u.name.clone(), kind: AttemptOutcome::Timeout, detail: String::new() })
    }

    #[test]
    fn a_success_reaches_health_only_after_a_failure() {
        let u = upstream();
        let (tx, mut rx) = mpsc::channel(1);
        report(&tx, &u, ok().as_ref().map(|_| ()));
        assert!(rx.try_recv().is_err(), "a healthy node's success is not news");
        report(&tx, &u, failed(&u).as_ref().map(|_| ()));
        assert!(matches!(rx.try_recv(), Ok(Passive::Failure(..))));
        report(&tx, &u, ok().as_ref().map(|_| ()));
        assert!(matches!(rx.try_recv(), Ok(Passive::Success(_))), "the success ends the failure streak");
        report(&tx, &u, ok().as_ref().map(|_| ()));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_undelivered_success_is_sent_with_the_next_one() {
        let u = upstream();
        let (tx, mut rx) = mpsc::channel(1);
        report(&tx, &u, failed(&u).as_ref().map(|_| ()));
        // The channel is full (the failure is still in it): the success is dropped, and owed.
        report(&tx, &u, ok().as_ref().map(|_| ()));
        assert!(matches!(rx.try_recv(), Ok(Passive::Failure(..))));
        assert!(rx.try_recv().is_err());
        report(&tx, &u, ok().as_ref().map(|_| ()));
        assert!(matches!(rx.try_recv(), Ok(Passive::Success(_))));
    }
}
