//! The JSON-RPC tier: parse a body, apply the method policy, route each call, and assemble the answer.
//!
//! Layout, along the dispatch in [`Proxy::handle`]: this file parses, applies the policy and routes one call
//! by its [`methods::Class`]; `batch` answers a batch (plain reads as sub-batches to one node); `tx`
//! sends transactions; reads go through [`crate::reuse`] (cache, coalescing) to [`crate::retry`] (retries
//! and budget); filter calls to [`crate::filters`]; wide `eth_getLogs` ranges are split here (`logs.rs` plans
//! and merges).
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

use crate::cache::Cache;
use crate::error::CallError;
use crate::filters;
use crate::logs::{self, LogsLimits, Plan};
use crate::methods::{self, Class, Known};
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::policy::MethodPolicy;
use crate::retry::{Reader, notification_id};
use crate::reuse::ReadReuse;
use crate::upstream::Answer;
use crate::upstream::health::{ClusterView, Passive};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::StatusCode;
use iotex_shared::jsonrpc::{self, Body, BodyError, Request};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod batch;
mod tx;

pub use tx::is_already_known;

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
pub(crate) struct ItemReply {
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
    reader: Arc<Reader>,
    conf: ArcSwap<Conf>,
    metrics: Arc<Metrics>,
    /// Cache and coalescing in front of reads (`reuse.rs`); `None` in a proxy built without them.
    reuse: Option<ReadReuse>,
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
        let reader =
            Reader::new(view, passive, Arc::clone(&metrics), settings.attempt_timeout, settings.retry_budget_ratio);
        let conf = ArcSwap::from_pointee(Conf { policy, settings });
        Proxy { reader: Arc::new(reader), conf, metrics, reuse: None }
    }

    /// The retrying reader: the gRPC listener balances and retries over the same one (one health view,
    /// one retry budget for both APIs).
    pub fn reader(&self) -> &Arc<Reader> {
        &self.reader
    }

    /// Applies a reloaded policy and settings to calls that start from now on; calls in flight finish
    /// under the settings they started with. The retry budget restarts only if its ratio changed.
    pub fn reconfigure(&self, policy: MethodPolicy, settings: ProxySettings) {
        self.reader.reconfigure(settings.attempt_timeout, settings.retry_budget_ratio);
        self.conf.store(Arc::new(Conf { policy, settings }));
    }

    fn conf(&self) -> arc_swap::Guard<Arc<Conf>> {
        self.conf.load()
    }

    /// Puts the finality-aware cache (`None` when `cache-max-bytes` is 0) and in-flight coalescing in front
    /// of reads. Both share this proxy's retrying reader.
    pub fn with_reuse(mut self, cache: Option<Cache>, coalesce: bool) -> Proxy {
        self.reuse = Some(ReadReuse::new(Arc::clone(&self.reader), cache, coalesce, Arc::clone(&self.metrics)));
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

    /// Answers one HTTP body.
    pub async fn handle(&self, body: Bytes) -> Reply {
        let started = Instant::now();
        let deadline = started + self.conf().settings.request_timeout;
        let Ok(text) = std::str::from_utf8(&body) else {
            return self.whole_error(CallError::Parse("body is not UTF-8".into()), None, started);
        };
        // One pass for the common body, a single valid request (by hand, then by serde's envelope reader);
        // anything else takes the careful path below, which tells a parse error from an invalid request.
        if let Some(req) = Request::scan(text).or_else(|| Request::parse_str(text).ok()) {
            return self.single(&req, body.clone(), deadline, started).await;
        }
        match Body::parse(text) {
            Err(BodyError::Parse(e)) => self.whole_error(CallError::Parse(e), None, started),
            Err(BodyError::NotObjectOrArray) => {
                self.whole_error(CallError::Invalid(jsonrpc::InvalidRequest::NotAnObject), None, started)
            }
            Ok(Body::Single(raw)) => match Request::parse(raw) {
                Err(e) => self.whole_error(CallError::Invalid(e.error), e.id, started),
                Ok(req) => self.single(&req, body.clone(), deadline, started).await,
            },
            Ok(Body::Batch(items)) => self.batch(&items, deadline, started).await,
        }
    }

    /// Answers a body that is one request. `body` is forwarded as the client sent it: no re-serialisation.
    async fn single(&self, req: &Request<'_>, body: Bytes, deadline: Instant, started: Instant) -> Reply {
        let item = self.call(req, body, deadline, started).await;
        match (req.is_notification(), item.error) {
            (true, _) => Reply { status: StatusCode::NO_CONTENT, body: None },
            (false, Some(e)) => Reply { status: e.status(), body: Some(item.body) },
            (false, None) => Reply { status: StatusCode::OK, body: Some(item.body) },
        }
    }

    fn whole_error(&self, e: CallError, id: Option<&RawValue>, started: Instant) -> Reply {
        self.metrics.calls.observe("other", e.outcome(), started.elapsed().as_secs_f64());
        Reply { status: e.status(), body: Some(e.body(id)) }
    }

    /// Routes one call and counts it.
    async fn call(&self, req: &Request<'_>, forward: Bytes, deadline: Instant, started: Instant) -> ItemReply {
        let method = req.method.as_ref();
        let known = methods::known(method);
        let result = if !self.conf().policy.allows_known(method, &known) {
            Err(CallError::MethodNotAllowed(method.to_owned()))
        } else if req.is_notification() {
            // The node's answer is discarded; an id of the gateway's own keeps the attempt classifiable.
            let as_call = Bytes::from(req.to_json_with_id(notification_id()));
            self.route(req, &known, as_call, deadline).await
        } else {
            self.route(req, &known, forward, deadline).await
        };
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            Ok(answer) => {
                let outcome = if answer.error.is_some() { Outcome::RpcError } else { Outcome::Ok };
                self.metrics.calls.observe_label(known.label, outcome, elapsed);
                ItemReply { body: answer.body, error: None }
            }
            Err(e) => {
                self.metrics.calls.observe_label(known.label, e.outcome(), elapsed);
                if !matches!(e, CallError::MethodNotAllowed(_)) {
                    tracing::debug!(method = crate::methods::label(method), error = %e, "call failed in the gateway");
                }
                ItemReply { body: e.body(req.id), error: Some(e) }
            }
        }
    }

    /// Chooses the path for one allowed call by its class in the [`methods`] table (`known`, its entry).
    async fn route(
        &self,
        req: &Request<'_>,
        known: &Known,
        body: Bytes,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        match known.class() {
            Class::Tx => tx::send(&self.reader, req, body, deadline, self.conf().settings.tx_broadcast).await,
            Class::FilterCreate => filters::create(&self.reader, req, body, deadline).await,
            Class::FilterUse => filters::call(&self.reader, req, deadline).await,
            Class::Logs if !req.is_notification() => match self.logs_plan(req) {
                Plan::Forward => self.plain_read(req, known, body, deadline).await,
                Plan::Split(split) => self.split_logs(req, &split, deadline).await,
                Plan::TooWide { blocks, max } => Err(CallError::LogsRangeTooWide { blocks, max }),
            },
            Class::Read | Class::Logs | Class::Subscribe | Class::Node => {
                self.plain_read(req, known, body, deadline).await
            }
        }
    }

    /// A read with no routing rule of its own: cache and coalescing first when configured.
    async fn plain_read(
        &self,
        req: &Request<'_>,
        known: &Known,
        body: Bytes,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        if let Some(reuse) = &self.reuse {
            reuse.read(req, known, body, deadline).await
        } else {
            self.reader.read_answer(body, deadline).await
        }
    }

    /// How an `eth_getLogs` call is answered: against the safe head, so every chunk fits every routable node.
    fn logs_plan(&self, req: &Request<'_>) -> Plan {
        let head = crate::reuse::safe_head(&self.reader.snapshot());
        logs::plan(req.params, head, self.conf().settings.logs)
    }

    /// A wide `eth_getLogs`: one read per chunk, as many at once as there are routable nodes (the picker
    /// spreads them by in-flight count), answers concatenated in range order. The first failure or node
    /// error answers the whole call; chunks not yet sent are not sent.
    async fn split_logs(&self, req: &Request<'_>, split: &logs::Split, deadline: Instant) -> Result<Answer, CallError> {
        use futures::{StreamExt, TryStreamExt};
        self.metrics.calls.logs_splits.inc();
        let parallel = self.reader.snapshot().routable.len().max(1);
        let chunk_id = RawValue::from_string("1".to_owned()).map_err(|e| CallError::Parse(e.to_string()))?;
        let chunk_id = &chunk_id;
        let known = &methods::known("eth_getLogs");
        let chunk = |range: (u64, u64)| async move {
            self.metrics.calls.logs_split_chunks.inc();
            let params = RawValue::from_string(split.params(range))
                .map_err(|e| ChunkStop::Failed(CallError::Parse(e.to_string())))?;
            // A number: IoTeX refuses a null id ("invalid id type").
            let id = &*chunk_id;
            let one = Request { id: Some(id), method: "eth_getLogs".into(), params: Some(&params) };
            let answer = self
                .plain_read(&one, known, Bytes::from(one.to_json_with_id(id)), deadline)
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
}

/// Why a chunk of a split `eth_getLogs` gave no list of logs; either one answers the whole call.
enum ChunkStop {
    /// The node answered with a JSON-RPC error (already under the client's id).
    NodeError(Answer),
    /// The gateway could not get an answer, or the answer was not a list of logs.
    Failed(CallError),
}
