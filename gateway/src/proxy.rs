//! The JSON-RPC tier: parse a body, apply the method policy, route each call, and assemble the answer.
//!
//! - Single calls are forwarded byte for byte and the node's answer is passed through unchanged.
//! - Batch items are routed independently and concurrently (IoTeX nodes run batch items one by one anyway),
//!   so an item that fails in the gateway gets its own error object while the rest go through; answers keep
//!   the batch's order, and notifications get no answer.
//! - Read methods are retried on another upstream after a connection error, timeout, 5xx, 429 or malformed
//!   answer, within the call's deadline and a retry budget (tower's `TpsBudget`: retries ≤ a share of recent
//!   calls plus a small floor), so a sick cluster is not hammered.
//! - `eth_sendRawTransaction` is retried only when the attempt provably never reached a node (connect
//!   failure). "already known" / "known transaction" answers are success. With `tx-broadcast N` the raw
//!   transaction goes to N routable nodes at once and the first success answers; the others still finish.
//! - A JSON-RPC error from a node that answered (e.g. execution reverted) is passed through, never retried.

use crate::error::CallError;
use crate::metrics::{AttemptOutcome, Metrics, Outcome};
use crate::policy::MethodPolicy;
use crate::upstream::health::{ClusterView, Passive};
use crate::upstream::pool::{self, PickError};
use crate::upstream::{Answer, AttemptError, Upstream};
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use iotex_shared::jsonrpc::{self, Body, BodyError, Request};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

/// Methods that change state and so must not be resent after they may have reached a node.
const SEND_RAW: &str = "eth_sendRawTransaction";

/// Settings the JSON-RPC tier needs.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Whole-call deadline.
    pub request_timeout: Duration,
    /// One-attempt deadline.
    pub attempt_timeout: Duration,
    /// Batch cap.
    pub max_batch_size: usize,
    /// Raw transaction fan-out.
    pub tx_broadcast: usize,
    /// Retry budget ratio.
    pub retry_budget_ratio: f32,
}

/// The answer to one HTTP request: a status and a body, or no body (all notifications).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body, or `None` for 204.
    pub body: Option<Bytes>,
}

/// One call's answer inside a reply.
struct ItemReply {
    body: Bytes,
    error: Option<CallError>,
}

/// The JSON-RPC tier, shared by every connection.
pub struct Proxy {
    upstreams: Vec<Arc<Upstream>>,
    view: watch::Receiver<Arc<ClusterView>>,
    passive: mpsc::Sender<Passive>,
    policy: MethodPolicy,
    budget: TpsBudget,
    metrics: Arc<Metrics>,
    settings: ProxySettings,
    /// Cache and coalescing in front of reads (`reuse.rs`); `None` in a proxy built without them.
    reuse: Option<crate::reuse::ReadReuse>,
}

impl Proxy {
    /// Builds the tier over running health.
    pub fn new(
        upstreams: Vec<Arc<Upstream>>,
        view: watch::Receiver<Arc<ClusterView>>,
        passive: mpsc::Sender<Passive>,
        policy: MethodPolicy,
        metrics: Arc<Metrics>,
        settings: ProxySettings,
    ) -> Proxy {
        // 10 s window, and at least 10 retries/s so a quiet gateway can still fail over.
        let budget = TpsBudget::new(Duration::from_secs(10), 10, settings.retry_budget_ratio);
        Proxy { upstreams, view, passive, policy, budget, metrics, settings, reuse: None }
    }

    /// Puts the finality-aware cache and in-flight coalescing in front of reads.
    pub fn with_reuse(mut self, reuse: crate::reuse::ReadReuse) -> Proxy {
        self.reuse = Some(reuse);
        self
    }

    /// Answers one HTTP body.
    pub async fn handle(&self, body: Bytes) -> Reply {
        let started = Instant::now();
        let deadline = started + self.settings.request_timeout;
        let Ok(text) = std::str::from_utf8(&body) else {
            return self.whole_error(CallError::Parse("body is not UTF-8".into()), None, started);
        };
        match Body::parse(text) {
            Err(BodyError::Parse(e)) => self.whole_error(CallError::Parse(e), None, started),
            Err(BodyError::NotObjectOrArray) => {
                self.whole_error(CallError::Invalid(jsonrpc::InvalidRequest::NotAnObject), None, started)
            }
            Ok(Body::Single(raw)) => match Request::parse(raw) {
                Err(e) => self.whole_error(CallError::Invalid(e.error), e.id, started),
                Ok(req) => {
                    // Forward the client's bytes as they are: no re-serialisation on the common path.
                    let item = self.call(&req, body.clone(), deadline, started).await;
                    match (req.is_notification(), item.error) {
                        (true, _) => Reply { status: StatusCode::NO_CONTENT, body: None },
                        (false, Some(e)) => Reply { status: e.status(), body: Some(item.body) },
                        (false, None) => Reply { status: StatusCode::OK, body: Some(item.body) },
                    }
                }
            },
            Ok(Body::Batch(items)) => self.batch(&items, deadline, started).await,
        }
    }

    fn whole_error(&self, e: CallError, id: Option<&RawValue>, started: Instant) -> Reply {
        self.metrics.observe_call("other", e.outcome(), started.elapsed().as_secs_f64());
        Reply { status: e.status(), body: Some(Bytes::from(jsonrpc::error_response(id, e.code(), &e.message()))) }
    }

    async fn batch(&self, items: &[&RawValue], deadline: Instant, started: Instant) -> Reply {
        if items.is_empty() {
            return self.whole_error(CallError::EmptyBatch, None, started);
        }
        if items.len() > self.settings.max_batch_size {
            let e = CallError::BatchTooLarge { len: items.len(), max: self.settings.max_batch_size };
            return self.whole_error(e, None, started);
        }
        let answers = futures::future::join_all(items.iter().map(|raw| async move {
            match Request::parse(raw) {
                Err(e) => {
                    let err = CallError::Invalid(e.error);
                    self.metrics.observe_call("other", err.outcome(), 0.0);
                    Some(ItemReply {
                        body: Bytes::from(jsonrpc::error_response(e.id, err.code(), &err.message())),
                        error: Some(err),
                    })
                }
                Ok(req) => {
                    let item = self.call(&req, Bytes::copy_from_slice(raw.get().as_bytes()), deadline, started).await;
                    (!req.is_notification()).then_some(item)
                }
            }
        }))
        .await;
        let answers: Vec<ItemReply> = answers.into_iter().flatten().collect();
        if answers.is_empty() {
            return Reply { status: StatusCode::NO_CONTENT, body: None };
        }
        // A batch is a 503 only when the cluster could serve none of it; otherwise the per-item errors say it.
        let all_unavailable =
            answers.iter().all(|a| matches!(a.error, Some(CallError::NoUpstream | CallError::Saturated)));
        let status = if all_unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        let mut out = BytesMut::with_capacity(answers.iter().map(|a| a.body.len() + 1).sum::<usize>() + 2);
        out.put_u8(b'[');
        for (i, a) in answers.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(a.body.trim_ascii());
        }
        out.put_u8(b']');
        Reply { status, body: Some(out.freeze()) }
    }

    /// Routes one call and counts it.
    async fn call(&self, req: &Request<'_>, forward: Bytes, deadline: Instant, started: Instant) -> ItemReply {
        let method = req.method.as_ref();
        let result = if !self.policy.allows(method) {
            Err(CallError::MethodNotAllowed(method.to_owned()))
        } else if req.is_notification() {
            // The node's answer to a notification is discarded, but asking with an id of our own keeps
            // the attempt classifiable (a node may answer a notification with anything or nothing).
            let as_call = Bytes::from(req.to_json_with_id(notification_id()));
            if method == SEND_RAW {
                self.send_raw(req, as_call, deadline).await
            } else {
                self.read(as_call, deadline).await
            }
        } else if method == SEND_RAW {
            self.send_raw(req, forward, deadline).await
        } else if let Some(reuse) = &self.reuse {
            reuse.read(self, req, forward, deadline).await
        } else {
            self.read(forward, deadline).await
        };
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            Ok(answer) => {
                let outcome = if answer.error.is_some() { Outcome::RpcError } else { Outcome::Ok };
                self.metrics.observe_call(method, outcome, elapsed);
                ItemReply { body: answer.body, error: None }
            }
            Err(e) => {
                self.metrics.observe_call(method, e.outcome(), elapsed);
                if !matches!(e, CallError::MethodNotAllowed(_)) {
                    tracing::debug!(method = crate::metrics::method_label(method), error = %e, "call failed in the gateway");
                }
                ItemReply { body: Bytes::from(jsonrpc::error_response(req.id, e.code(), &e.message())), error: Some(e) }
            }
        }
    }

    fn report(&self, p: Passive) {
        // Never wait on health bookkeeping; a full channel means the supervisor is already busy with news.
        let _ = self.passive.try_send(p);
    }

    fn report_attempt(&self, upstream: usize, r: &Result<Answer, AttemptError>) {
        match r {
            Ok(_) => self.report(Passive::Success(upstream)),
            // A 4xx with a non-JSON body is the node refusing this request, not the node being unwell.
            Err(e) if e.kind == AttemptOutcome::Http4xx => {}
            Err(e) => self.report(Passive::Failure(upstream, e.kind)),
        }
    }

    /// The current health snapshot (an `Arc` clone: no copy of the routable set per call).
    fn snapshot(&self) -> Arc<ClusterView> {
        Arc::clone(&self.view.borrow())
    }

    /// One attempt on an upstream not in `tried`: pick, call within what is left of the deadline, report
    /// the outcome to health. `Err` when no attempt could be made; `Ok((index, result))` otherwise.
    async fn attempt(
        &self,
        body: &Bytes,
        tried: &[usize],
        last: &mut Option<AttemptError>,
        deadline: Instant,
    ) -> Result<(usize, Result<Answer, AttemptError>), CallError> {
        let picked = match pool::pick(&self.upstreams, &self.snapshot().routable, tried, deadline).await {
            Ok(p) => p,
            Err(PickError::NoneRoutable) => return Err(last.take().map_or(CallError::NoUpstream, CallError::Upstream)),
            Err(PickError::Saturated) => return Err(CallError::Saturated),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(CallError::Deadline);
        }
        let index = picked.upstream.index;
        let result = picked.upstream.call(body.clone(), self.settings.attempt_timeout.min(remaining)).await;
        drop(picked.permit);
        self.report_attempt(index, &result);
        Ok((index, result))
    }

    /// A read: any upstream will do; retry elsewhere on failure, within deadline and budget.
    pub(crate) async fn read(&self, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        self.budget.deposit();
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<AttemptError> = None;
        loop {
            let err = match self.attempt(&body, &tried, &mut last, deadline).await? {
                (_, Ok(answer)) => return Ok(answer),
                (index, Err(e)) => {
                    tried.push(index);
                    e
                }
            };
            if err.kind == AttemptOutcome::Http4xx {
                return Err(CallError::Upstream(err));
            }
            if Instant::now() >= deadline {
                return Err(CallError::Deadline);
            }
            // Spend budget only on a retry that can happen: somewhere untried must be routable.
            if !self.snapshot().routable.iter().any(|i| !tried.contains(i)) {
                return Err(CallError::Upstream(err));
            }
            if !self.budget.withdraw() {
                self.metrics.retry_budget_exhausted.inc();
                return Err(CallError::Upstream(err));
            }
            self.metrics.retry(err.kind);
            last = Some(err);
        }
    }

    /// `eth_sendRawTransaction`: resend only what provably never left; broadcast when configured.
    async fn send_raw(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        if self.settings.tx_broadcast > 1 {
            return self.broadcast(req, body, deadline).await;
        }
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<AttemptError> = None;
        loop {
            match self.attempt(&body, &tried, &mut last, deadline).await? {
                (_, Ok(answer)) => return Ok(known_as_success(req, answer)),
                (index, Err(e)) if e.never_sent() => {
                    self.metrics.retry(e.kind);
                    tried.push(index);
                    last = Some(e);
                }
                (_, Err(e)) => return Err(CallError::Upstream(e)),
            }
        }
    }

    async fn broadcast(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        let view = self.snapshot();
        let routable = &view.routable;
        let mut picks = Vec::new();
        let mut chosen: Vec<usize> = Vec::new();
        while picks.len() < self.settings.tx_broadcast {
            match pool::pick(&self.upstreams, routable, &chosen, deadline).await {
                Ok(p) => {
                    chosen.push(p.upstream.index);
                    picks.push(p);
                }
                Err(PickError::NoneRoutable) if picks.is_empty() => return Err(CallError::NoUpstream),
                Err(PickError::Saturated) if picks.is_empty() => return Err(CallError::Saturated),
                Err(_) => break,
            }
        }
        let timeout = self.settings.attempt_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let (tx, mut rx) = mpsc::channel(picks.len());
        for p in picks {
            let tx = tx.clone();
            let body = body.clone();
            let passive = self.passive.clone();
            // Each send runs to completion even after the first success answers the client: the other
            // nodes must still receive the transaction (that is the point of broadcasting).
            tokio::spawn(async move {
                let index = p.upstream.index;
                let r = p.upstream.call(body, timeout).await;
                drop(p.permit);
                let report = match &r {
                    Ok(_) => Some(Passive::Success(index)),
                    Err(e) if e.kind == AttemptOutcome::Http4xx => None,
                    Err(e) => Some(Passive::Failure(index, e.kind)),
                };
                if let Some(report) = report {
                    let _ = passive.try_send(report);
                }
                let _ = tx.send(r).await;
            });
        }
        drop(tx);
        let mut rejection: Option<Answer> = None;
        let mut failure: Option<AttemptError> = None;
        while let Some(r) = rx.recv().await {
            match r {
                Ok(answer) => {
                    let answer = known_as_success(req, answer);
                    if answer.error.is_none() {
                        return Ok(answer);
                    }
                    rejection.get_or_insert(answer);
                }
                Err(e) => failure = Some(e),
            }
        }
        match (rejection, failure) {
            (Some(answer), _) => Ok(answer),
            (None, Some(e)) => Err(CallError::Upstream(e)),
            (None, None) => Err(CallError::NoUpstream),
        }
    }
}

fn notification_id() -> &'static RawValue {
    // A constant literal that is valid JSON; `from_str` on it cannot fail, but fall back to null anyway.
    static ID: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        RawValue::from_string("\"iotex-gateway-notification\"".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
    })
}

/// True for a node's answer that means "I already have this transaction".
pub fn is_already_known(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already known") || m.contains("known transaction") || m.contains("already imported")
}

/// Turns "already known" into a success carrying the transaction hash, as a client expects.
fn known_as_success(req: &Request<'_>, answer: Answer) -> Answer {
    let Some((_, message)) = &answer.error else { return answer };
    if !is_already_known(message) {
        return answer;
    }
    match req.params.and_then(tx_hash) {
        Some(hash) => {
            let body = jsonrpc::result_response(req.id, &format!("\"{hash}\""));
            Answer { body: Bytes::from(body), error: None }
        }
        None => answer,
    }
}

/// Keccak-256 of the raw transaction in `params[0]`, as `0x…`.
fn tx_hash(params: &RawValue) -> Option<String> {
    let items: Vec<&RawValue> = serde_json::from_str(params.get()).ok()?;
    let raw: String = serde_json::from_str(items.first()?.get()).ok()?;
    let bytes = alloy_primitives::hex::decode(raw.trim()).ok()?;
    Some(format!("{:#x}", alloy_primitives::keccak256(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_known_variants() {
        assert!(is_already_known("already known"));
        assert!(is_already_known("Known transaction: 0xabc"));
        assert!(is_already_known("transaction already imported"));
        assert!(!is_already_known("nonce too low"));
        assert!(!is_already_known("execution reverted"));
    }

    #[test]
    fn hash_of_a_raw_transaction() {
        let p: Box<RawValue> = RawValue::from_string("[\"0x00\"]".into()).unwrap();
        // keccak256(0x00)
        assert_eq!(tx_hash(&p).unwrap(), "0xbc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a");
        let bad: Box<RawValue> = RawValue::from_string("[\"0xzz\"]".into()).unwrap();
        assert!(tx_hash(&bad).is_none());
        let obj: Box<RawValue> = RawValue::from_string("{\"a\":1}".into()).unwrap();
        assert!(tx_hash(&obj).is_none());
    }

    #[test]
    fn known_answer_becomes_success_with_the_hash_and_the_callers_id() {
        let text = r#"{"jsonrpc":"2.0","id":"abc","method":"eth_sendRawTransaction","params":["0x00"]}"#;
        let raw: &RawValue = serde_json::from_str(text).unwrap();
        let req = Request::parse(raw).unwrap();
        let answer = Answer { body: Bytes::from_static(b"{}"), error: Some((-32000, "already known".into())) };
        let out = known_as_success(&req, answer);
        assert!(out.error.is_none());
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["id"], "abc");
        assert!(v["result"].as_str().unwrap().starts_with("0xbc36789e"));
        let other = Answer { body: Bytes::from_static(b"{}"), error: Some((-32000, "nonce too low".into())) };
        assert!(known_as_success(&req, other).error.is_some());
    }
}
