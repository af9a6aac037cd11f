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
//! - `eth_getLogs` over more blocks than `logs-max-range-per-call` is split into chunks read from several
//!   nodes and merged in block order; over `logs-max-range` it is refused with `-32005` (`logs.rs`).

use crate::error::CallError;
use crate::filters;
use crate::logs::{self, LogsLimits, Plan};
use crate::metrics::{AttemptOutcome, Metrics, Outcome};
use crate::policy::MethodPolicy;
use crate::upstream::health::{ClusterView, Passive, State};
use crate::upstream::pool::{self, PickError};
use crate::upstream::{Answer, AttemptError, Upstream};
use arc_swap::ArcSwap;
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
/// Split over several nodes when its block range is wider than one node call (`logs.rs`).
const GET_LOGS: &str = "eth_getLogs";

/// Settings the JSON-RPC tier needs.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Whole-call deadline.
    pub request_timeout: Duration,
    /// One-attempt deadline.
    pub attempt_timeout: Duration,
    /// Batch cap.
    pub max_batch_size: usize,
    /// Largest sub-batch sent to one node.
    pub upstream_batch_size: usize,
    /// Raw transaction fan-out.
    pub tx_broadcast: usize,
    /// Retry budget ratio.
    pub retry_budget_ratio: f32,
    /// `eth_getLogs` range limits (`logs.rs`).
    pub logs: LogsLimits,
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

/// What a config reload can replace, swapped as one unit so a call never sees half of a reload.
struct Conf {
    policy: MethodPolicy,
    settings: ProxySettings,
}

/// The JSON-RPC tier, shared by every connection.
pub struct Proxy {
    view: watch::Receiver<Arc<ClusterView>>,
    passive: mpsc::Sender<Passive>,
    conf: ArcSwap<Conf>,
    budget: ArcSwap<TpsBudget>,
    metrics: Arc<Metrics>,
    /// Cache and coalescing in front of reads (`reuse.rs`); `None` in a proxy built without them.
    reuse: Option<crate::reuse::ReadReuse>,
}

fn budget(ratio: f32) -> TpsBudget {
    // 10 s window, and at least 10 retries/s so a quiet gateway can still fail over.
    TpsBudget::new(Duration::from_secs(10), 10, ratio)
}

impl Proxy {
    /// Builds the tier over running health.
    pub fn new(
        view: watch::Receiver<Arc<ClusterView>>,
        passive: mpsc::Sender<Passive>,
        policy: MethodPolicy,
        metrics: Arc<Metrics>,
        settings: ProxySettings,
    ) -> Proxy {
        let budget = ArcSwap::from_pointee(budget(settings.retry_budget_ratio));
        Proxy { view, passive, conf: ArcSwap::from_pointee(Conf { policy, settings }), budget, metrics, reuse: None }
    }

    /// Applies a reloaded policy and settings to calls that start from now on; calls in flight finish
    /// under the settings they started with. The retry budget restarts only if its ratio changed.
    pub fn reconfigure(&self, policy: MethodPolicy, settings: ProxySettings) {
        if (settings.retry_budget_ratio - self.conf().settings.retry_budget_ratio).abs() > f32::EPSILON {
            self.budget.store(Arc::new(budget(settings.retry_budget_ratio)));
        }
        self.conf.store(Arc::new(Conf { policy, settings }));
    }

    fn conf(&self) -> arc_swap::Guard<Arc<Conf>> {
        self.conf.load()
    }

    /// Puts the finality-aware cache and in-flight coalescing in front of reads.
    pub fn with_reuse(mut self, reuse: crate::reuse::ReadReuse) -> Proxy {
        self.reuse = Some(reuse);
        self
    }

    /// Applies reloaded cache and coalescing settings (see `reuse.rs` for what needs a restart).
    pub fn reconfigure_reuse(&self, cache_max_bytes: u64, coalesce: bool) {
        if let Some(reuse) = &self.reuse {
            reuse.set_coalesce(coalesce);
            if let Some(cache) = reuse.cache()
                && cache_max_bytes > 0
            {
                cache.set_max_bytes(cache_max_bytes);
            }
        }
    }

    /// A plain read's answer (for the reuse layer, which does its own caching and coalescing around it).
    pub(crate) async fn read_answer(&self, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        self.read(body, deadline, false).await.map(|(_, a)| a)
    }

    /// Answers one HTTP body.
    pub async fn handle(&self, body: Bytes) -> Reply {
        let started = Instant::now();
        let deadline = started + self.conf().settings.request_timeout;
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
        let conf = self.conf();
        let (max, cap) = (conf.settings.max_batch_size, conf.settings.upstream_batch_size);
        if items.len() > max {
            return self.whole_error(CallError::BatchTooLarge { len: items.len(), max }, None, started);
        }
        // Invalid items are answered here; plain reads travel to nodes as sub-batches of at most `cap`
        // (one HTTP request per sub-batch instead of one per item); transactions, filter calls and denied
        // methods take the single-call path, which has their routing rules.
        let mut slots: Vec<Option<ItemReply>> = (0..items.len()).map(|_| None).collect();
        let mut reads: Vec<(usize, Request<'_>)> = Vec::new();
        let mut singles: Vec<(usize, Request<'_>)> = Vec::new();
        // Notifications get no answer, whatever happens to them.
        let mut notification = vec![false; items.len()];
        for (i, raw) in items.iter().enumerate() {
            match Request::parse(raw) {
                Err(e) => {
                    let err = CallError::Invalid(e.error);
                    self.metrics.observe_call("other", err.outcome(), 0.0);
                    let body = Bytes::from(jsonrpc::error_response(e.id, err.code(), &err.message()));
                    slots[i] = Some(ItemReply { body, error: Some(err) });
                }
                Ok(req) => {
                    notification[i] = req.is_notification();
                    let m = req.method.as_ref();
                    // A wide eth_getLogs is split over nodes on the single-call path, never put in a sub-batch.
                    let wide_logs = m == GET_LOGS && self.logs_plan(&req) != Plan::Forward;
                    let plain = m != SEND_RAW && !filters::creates(m) && !filters::uses(m) && !wide_logs;
                    if plain && conf.policy.allows(m) {
                        match self.reuse.as_ref().and_then(|r| r.cached(&req)) {
                            Some(body) => {
                                self.metrics.observe_call(m, Outcome::Ok, started.elapsed().as_secs_f64());
                                slots[i] = Some(ItemReply { body, error: None });
                            }
                            None => reads.push((i, req)),
                        }
                    } else {
                        singles.push((i, req));
                    }
                }
            }
        }
        drop(conf);
        if reads.len() == 1 {
            singles.append(&mut reads);
        }
        let chunks = reads.len().div_ceil(cap).max(1);
        if chunks > 1 {
            self.metrics.batch_splits.inc();
        }
        // Even sizes: 150 items with a cap of 100 go as 75 + 75 to two nodes, not 100 + 50.
        let per_chunk = reads.len().div_ceil(chunks).max(1);
        let grouped = futures::future::join_all(reads.chunks(per_chunk).map(|c| self.sub_batch(c, deadline, started)));
        let single = futures::future::join_all(singles.iter().map(|(i, req)| async move {
            let raw = items.get(*i).map_or("", |r| r.get());
            (*i, self.call(req, Bytes::copy_from_slice(raw.as_bytes()), deadline, started).await)
        }));
        let (grouped, single) = futures::future::join(grouped, single).await;
        for (i, reply) in grouped.into_iter().flatten().chain(single) {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(reply);
            }
        }
        let answers: Vec<ItemReply> =
            slots.into_iter().zip(notification).filter_map(|(slot, n)| slot.filter(|_| !n)).collect();
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
        let result = if !self.conf().policy.allows(method) {
            Err(CallError::MethodNotAllowed(method.to_owned()))
        } else if req.is_notification() {
            // The node's answer to a notification is discarded, but asking with an id of our own keeps
            // the attempt classifiable (a node may answer a notification with anything or nothing).
            let as_call = Bytes::from(req.to_json_with_id(notification_id()));
            self.route(req, as_call, deadline).await
        } else {
            self.route(req, forward, deadline).await
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

    /// Chooses the path for one allowed call.
    async fn route(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        let method = req.method.as_ref();
        if method == SEND_RAW {
            self.send_raw(req, body, deadline).await
        } else if filters::creates(method) {
            self.filter_create(req, body, deadline).await
        } else if filters::uses(method) {
            self.filter_use(req, deadline).await
        } else if method == GET_LOGS && !req.is_notification() {
            match self.logs_plan(req) {
                Plan::Forward => self.plain_read(req, body, deadline).await,
                Plan::Split(split) => self.split_logs(req, &split, deadline).await,
                Plan::TooWide { blocks, max } => Err(CallError::LogsRangeTooWide { blocks, max }),
            }
        } else {
            self.plain_read(req, body, deadline).await
        }
    }

    /// A read with no routing rule of its own: cache and coalescing first when configured.
    async fn plain_read(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        if let Some(reuse) = &self.reuse {
            reuse.read(self, req, body, deadline).await
        } else {
            self.read_answer(body, deadline).await
        }
    }

    /// How an `eth_getLogs` call is answered: against the safe head, so every chunk fits every routable node.
    fn logs_plan(&self, req: &Request<'_>) -> Plan {
        let head = crate::reuse::safe_head(&self.snapshot());
        logs::plan(req.params, head, self.conf().settings.logs)
    }

    /// A wide `eth_getLogs`: one read per chunk, as many at once as there are routable nodes (the picker
    /// spreads them by in-flight count), answers concatenated in range order. The first failure or node
    /// error answers the whole call; chunks not yet sent are not sent.
    async fn split_logs(&self, req: &Request<'_>, split: &logs::Split, deadline: Instant) -> Result<Answer, CallError> {
        use futures::{StreamExt, TryStreamExt};
        self.metrics.logs_splits.inc();
        let parallel = self.snapshot().routable.len().max(1);
        let chunk_id = RawValue::from_string("1".to_owned()).map_err(|e| CallError::Parse(e.to_string()))?;
        let chunk_id = &chunk_id;
        let chunk = |range: (u64, u64)| async move {
            self.metrics.logs_split_chunks.inc();
            let params = RawValue::from_string(split.params(range))
                .map_err(|e| ChunkStop::Failed(CallError::Parse(e.to_string())))?;
            // A number: IoTeX refuses a null id ("invalid id type").
            let id = &*chunk_id;
            let one = Request { id: Some(id), method: GET_LOGS.into(), params: Some(&params) };
            let answer = self
                .plain_read(&one, Bytes::from(one.to_json_with_id(id)), deadline)
                .await
                .map_err(ChunkStop::Failed)?;
            if answer.error.is_some() {
                // The node's own error (e.g. its range cap is below `logs-max-range-per-call`) answers the call.
                return Err(ChunkStop::NodeError(crate::reuse::rewrap(req.id, answer)));
            }
            let result = std::str::from_utf8(&answer.body)
                .ok()
                .and_then(jsonrpc::Response::parse)
                .and_then(|r| r.result)
                .map(|r| r.to_owned())
                .ok_or(ChunkStop::Failed(CallError::LogsChunkInvalid(logs::NotALogList {
                    from: range.0,
                    to: range.1,
                })))?;
            Ok::<_, ChunkStop>((range, result))
        };
        let results: Vec<((u64, u64), Box<RawValue>)> =
            match futures::stream::iter(split.ranges().iter().copied().map(chunk))
                .buffered(parallel)
                .try_collect()
                .await
            {
                Ok(r) => r,
                Err(ChunkStop::NodeError(answer)) => return Ok(answer),
                Err(ChunkStop::Failed(e)) => return Err(e),
            };
        let merged =
            logs::merge(results.iter().map(|(range, r)| (*range, &**r))).map_err(CallError::LogsChunkInvalid)?;
        Ok(Answer { body: Bytes::from(jsonrpc::result_response(req.id, &merged)), error: None })
    }

    /// Sends a run of plain reads to one node as a batch with ids of the gateway's own (client ids may
    /// repeat or be null), and gives each item its node's answer under its client id.
    async fn sub_batch(
        &self,
        items: &[(usize, Request<'_>)],
        deadline: Instant,
        started: Instant,
    ) -> Vec<(usize, ItemReply)> {
        let mut body = String::with_capacity(items.len() * 96 + 2);
        body.push('[');
        for (k, (_, req)) in items.iter().enumerate() {
            if k > 0 {
                body.push(',');
            }
            let id = RawValue::from_string(k.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned());
            body.push_str(&req.to_json_with_id(&id));
        }
        body.push(']');
        let result = self.read(Bytes::from(body), deadline, true).await;
        let elapsed = started.elapsed().as_secs_f64();
        let answers: Vec<Option<(Bytes, bool)>> = match &result {
            Ok((_, answer)) if answer.error.is_none() => match_batch(&answer.body, items),
            _ => (0..items.len()).map(|_| None).collect(),
        };
        items
            .iter()
            .zip(answers)
            .map(|((i, req), answer)| {
                let method = req.method.as_ref();
                let reply = match (answer, &result) {
                    (Some((body, rpc_error)), _) => {
                        let outcome = if rpc_error { Outcome::RpcError } else { Outcome::Ok };
                        self.metrics.observe_call(method, outcome, elapsed);
                        if !rpc_error && let Some(reuse) = &self.reuse {
                            reuse.offer(req, Answer { body: body.clone(), error: None });
                        }
                        ItemReply { body, error: None }
                    }
                    // The node refused the whole batch with one error object: each item carries it.
                    (None, Ok((_, a))) if a.error.is_some() => {
                        let (code, message) = a.error.clone().unwrap_or_default();
                        self.metrics.observe_call(method, Outcome::RpcError, elapsed);
                        ItemReply { body: Bytes::from(jsonrpc::error_response(req.id, code, &message)), error: None }
                    }
                    (None, Ok(_)) => self.item_error(req, CallError::MissingBatchAnswer, elapsed),
                    (None, Err(e)) => self.item_error(req, e.clone(), elapsed),
                };
                (*i, reply)
            })
            .collect()
    }

    fn item_error(&self, req: &Request<'_>, e: CallError, elapsed: f64) -> ItemReply {
        self.metrics.observe_call(req.method.as_ref(), e.outcome(), elapsed);
        ItemReply { body: Bytes::from(jsonrpc::error_response(req.id, e.code(), &e.message())), error: Some(e) }
    }

    /// `eth_newFilter` and friends: any node may create the filter; its id is handed out with the node's
    /// route tag in it (see [`filters`]).
    async fn filter_create(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        let (upstream, answer) = self.read(body, deadline, false).await?;
        if answer.error.is_some() {
            return Ok(answer);
        }
        let node_id = std::str::from_utf8(&answer.body)
            .ok()
            .and_then(jsonrpc::Response::parse)
            .and_then(|r| r.result.and_then(|v| serde_json::from_str::<String>(v.get()).ok()));
        match node_id.and_then(|id| filters::wrap(filters::tag(&upstream), &id)) {
            Some(id) => {
                let result = serde_json::to_string(&id).unwrap_or_default();
                Ok(Answer { body: Bytes::from(jsonrpc::result_response(req.id, &result)), error: None })
            }
            None => Ok(answer),
        }
    }

    /// `eth_getFilterChanges` and friends: only the node that created the filter can answer.
    async fn filter_use(&self, req: &Request<'_>, deadline: Instant) -> Result<Answer, CallError> {
        let params: Vec<&RawValue> = req.params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default();
        let client_id = params.first().and_then(|p| serde_json::from_str::<String>(p.get()).ok());
        let Some(client_id) = client_id else {
            // No filter id to route on: any node will explain what is wrong with the params.
            return self
                .read(Bytes::from(req.to_json_with_id(req.id.unwrap_or(RawValue::NULL))), deadline, false)
                .await
                .map(|(_, a)| a);
        };
        let Some((tag, node_id)) = filters::unwrap(&client_id) else {
            return Err(CallError::FilterUnknown(client_id));
        };
        let view = self.snapshot();
        let member = view.members.iter().enumerate().find(|(_, u)| filters::tag(u) == tag);
        let Some((pos, upstream)) = member else {
            self.metrics.filters_lost.inc();
            return Err(CallError::FilterLost(format!("route tag {tag:016x}")));
        };
        // A node whose last probe failed has most likely lost its memory; a busy or lagging one has not.
        if view.upstreams.get(pos).is_some_and(|s| s.state == State::Down) {
            self.metrics.filters_lost.inc();
            return Err(CallError::FilterLost(upstream.name.clone()));
        }
        let mut p = serde_json::to_string(&node_id).unwrap_or_default();
        for extra in params.iter().skip(1) {
            p.push(',');
            p.push_str(extra.get());
        }
        let params = RawValue::from_string(format!("[{p}]")).map_err(|e| CallError::Parse(e.to_string()))?;
        let id = req.id.unwrap_or_else(|| notification_id());
        let forwarded = Request { id: Some(id), method: req.method.clone(), params: Some(&params) };
        let body = Bytes::from(forwarded.to_json_with_id(id));
        let upstream = Arc::clone(upstream);
        drop(view);
        let permit = match tokio::time::timeout_at(deadline, upstream.acquire()).await {
            Ok(Some(p)) => p,
            _ => return Err(CallError::Saturated),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = upstream.call(body, self.conf().settings.attempt_timeout.min(remaining)).await;
        drop(permit);
        self.report_attempt(&upstream, &result);
        match result {
            Ok(answer) => Ok(answer),
            Err(e) if e.kind == AttemptOutcome::Connect => {
                self.metrics.filters_lost.inc();
                Err(CallError::FilterLost(upstream.name.clone()))
            }
            Err(e) => Err(CallError::Upstream(e)),
        }
    }

    fn report(&self, p: Passive) {
        // Never wait on health bookkeeping; a full channel means the supervisor is already busy with news.
        let _ = self.passive.try_send(p);
    }

    fn report_attempt(&self, upstream: &Upstream, r: &Result<Answer, AttemptError>) {
        if let Some(p) = passive_report(upstream, r) {
            self.report(p);
        }
    }

    /// The current health snapshot (an `Arc` clone: no copy of the routable set per call).
    fn snapshot(&self) -> Arc<ClusterView> {
        Arc::clone(&self.view.borrow())
    }

    /// One attempt on an upstream not in `tried` (ids): pick, call within what is left of the deadline,
    /// report the outcome to health. `Err` when no attempt could be made; `Ok((id, result))` otherwise.
    async fn attempt(
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
        let timeout = self.conf().settings.attempt_timeout.min(remaining);
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

    /// A read (or a sub-batch of reads): any upstream will do; retry elsewhere on failure, within deadline
    /// and budget. Returns the upstream that answered with its answer.
    async fn read(&self, body: Bytes, deadline: Instant, batch: bool) -> Result<(Arc<Upstream>, Answer), CallError> {
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
            if err.kind == AttemptOutcome::Http4xx {
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
                self.metrics.retry_budget_exhausted.inc();
                return Err(CallError::Upstream(err));
            }
            self.metrics.retry(err.kind);
            last = Some(err);
        }
    }

    /// `eth_sendRawTransaction`: resend only what provably never left; broadcast when configured.
    async fn send_raw(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        if self.conf().settings.tx_broadcast > 1 {
            return self.broadcast(req, body, deadline).await;
        }
        let mut tried: Vec<u64> = Vec::new();
        let mut last: Option<AttemptError> = None;
        loop {
            match self.attempt(&body, false, &tried, &mut last, deadline).await? {
                (_, Ok(answer)) => return Ok(known_as_success(req, answer)),
                (upstream, Err(e)) if e.never_sent() => {
                    self.metrics.retry(e.kind);
                    tried.push(upstream.id);
                    last = Some(e);
                }
                (_, Err(e)) => return Err(CallError::Upstream(e)),
            }
        }
    }

    async fn broadcast(&self, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
        let view = self.snapshot();
        let mut picks = Vec::new();
        let mut chosen: Vec<u64> = Vec::new();
        while picks.len() < self.conf().settings.tx_broadcast {
            match pool::pick(&view.members, &view.routable, &chosen, deadline).await {
                Ok(p) => {
                    chosen.push(p.upstream.id);
                    picks.push(p);
                }
                Err(PickError::NoneRoutable) if picks.is_empty() => return Err(CallError::NoUpstream),
                Err(PickError::Saturated) if picks.is_empty() => return Err(CallError::Saturated),
                Err(_) => break,
            }
        }
        let timeout = self.conf().settings.attempt_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let (tx, mut rx) = mpsc::channel(picks.len());
        for p in picks {
            let tx = tx.clone();
            let body = body.clone();
            let passive = self.passive.clone();
            // Each send runs to completion even after the first success answers the client: the other
            // nodes must still receive the transaction (that is the point of broadcasting).
            tokio::spawn(async move {
                let r = p.upstream.call(body, timeout).await;
                drop(p.permit);
                if let Some(report) = passive_report(&p.upstream, &r) {
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

/// Why a chunk of a split `eth_getLogs` gave no list of logs; either one answers the whole call.
enum ChunkStop {
    /// The node answered with a JSON-RPC error (already under the client's id).
    NodeError(Answer),
    /// The gateway could not get an answer, or the answer was not a list of logs.
    Failed(CallError),
}

/// Matches a node's batch answer to the items by the gateway's ids (`0..n`), rewriting each answer with
/// its client's id, and whether it is a JSON-RPC error. `None` for an item the node did not answer.
fn match_batch(body: &[u8], items: &[(usize, Request<'_>)]) -> Vec<Option<(Bytes, bool)>> {
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "keep_null")]
        result: Option<&'a RawValue>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    fn keep_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
    }
    let mut out: Vec<Option<(Bytes, bool)>> = (0..items.len()).map(|_| None).collect();
    let Ok(answers) = serde_json::from_slice::<Vec<Item<'_>>>(body) else { return out };
    for a in answers {
        let Some(k) = a.id.and_then(|id| id.get().parse::<usize>().ok()) else { continue };
        let (Some(slot), Some((_, req))) = (out.get_mut(k), items.get(k)) else { continue };
        let id = req.id.map_or("null", RawValue::get);
        let body = match (a.error, a.result) {
            (Some(e), _) => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{}}}", e.get()),
            (None, Some(r)) => jsonrpc::result_response(req.id, r.get()),
            (None, None) => continue,
        };
        *slot = Some((Bytes::from(body), a.error.is_some()));
    }
    out
}

/// What health learns from one attempt.
fn passive_report(upstream: &Upstream, r: &Result<Answer, AttemptError>) -> Option<Passive> {
    match r {
        Ok(_) => Some(Passive::Success(upstream.id)),
        // A 4xx with a non-JSON body is the node refusing this request, not the node being unwell.
        Err(e) if e.kind == AttemptOutcome::Http4xx => None,
        Err(e) if e.kind == AttemptOutcome::Http429 => {
            upstream.metrics.busy.inc();
            Some(Passive::Busy(upstream.id))
        }
        Err(e) => Some(Passive::Failure(upstream.id, e.kind)),
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

    #[test]
    fn batch_answers_are_matched_by_the_gateways_ids_and_given_back_the_clients_ids() {
        let texts = [
            r#"{"jsonrpc":"2.0","id":"x","method":"eth_blockNumber"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"eth_getTransactionReceipt","params":["0x1"]}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}"#,
        ];
        let raws: Vec<&RawValue> = texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let items: Vec<(usize, Request<'_>)> = raws.iter().map(|r| Request::parse(r).unwrap()).enumerate().collect();
        // Out of order, a null result, an error with data, item 3 missing, and an id the gateway never sent.
        let node = br#"[{"jsonrpc":"2.0","id":2,"error":{"code":3,"message":"reverted","data":"0x08c3"}},
            {"jsonrpc":"2.0","id":1,"result":null},{"jsonrpc":"2.0","id":0,"result":"0x10"},
            {"jsonrpc":"2.0","id":99,"result":"0x0"},{"jsonrpc":"2.0","id":"junk","result":1}]"#;
        let out = match_batch(node, &items);
        let v = |i: usize| -> serde_json::Value { serde_json::from_slice(&out[i].as_ref().unwrap().0).unwrap() };
        assert_eq!(v(0), serde_json::json!({"jsonrpc":"2.0","id":"x","result":"0x10"}));
        assert_eq!(v(1), serde_json::json!({"jsonrpc":"2.0","id":null,"result":null}));
        assert_eq!(v(2)["error"]["data"], "0x08c3", "a node's error object is passed through whole");
        assert_eq!(v(2)["id"], 7);
        assert!(out[2].as_ref().unwrap().1, "marked as a JSON-RPC error");
        assert!(out[3].is_none(), "an item the node did not answer is reported missing");
        // Not an array at all: nothing matches (the caller answers every item with an error).
        assert!(match_batch(b"{\"oops\":1}", &items).iter().all(Option::is_none));
        assert!(match_batch(b"", &items).iter().all(Option::is_none));
    }
}
