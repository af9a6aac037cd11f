//! Every metric the gateway exports, registered and documented in one place, grouped by subsystem: each
//! group is a struct that registers its own metrics ([`CallMetrics`], [`NodeMetrics`], [`HttpMetrics`],
//! [`AuthMetrics`], [`ReuseMetrics`], [`WsMetrics`], [`ConnMetrics`], [`AnswerMetrics`], [`GrpcMetrics`]) and [`Metrics`] holds one of each plus the process's
//! lifecycle. A metric is its field, its doc line and one registration call.
//!
//! Names are a contract for the chart's dashboards and alerts: `iotex_gateway_<subsystem>_<thing>_<unit|total>`.
//! Labels are bounded: `method` comes from [`KNOWN_METHODS`] (anything else is `other`), `upstream` from the
//! configuration, `outcome` and `reason` from fixed enums ([`crate::outcome`]); never a client address,
//! token or tx hash.
//!
//! The request path uses handles resolved once per (method, outcome) and per upstream, so counting a call is
//! an atomic add, not a label lookup. Exposition is the classic Prometheus text format, which both Prometheus
//! and `promtool check metrics` read.

use crate::methods::{KNOWN_METHODS, label_index as method_index};
use crate::outcome::{AttemptOutcome, Outcome};
pub use iotex_shared::metrics::MetricDoc;
use iotex_shared::metrics::Registrar;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use std::sync::OnceLock;

/// Registration failed: only possible through a programming error (duplicate or invalid name).
#[derive(Debug, thiserror::Error)]
#[error("metrics registration failed: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

type Made<T> = Result<T, MetricsError>;

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registrar, m: T) -> Made<T> {
    Ok(r.add(m)?)
}

fn counter(r: &Registrar, name: &str, help: &str) -> Made<IntCounter> {
    reg(r, IntCounter::new(name, help)?)
}

fn gauge(r: &Registrar, name: &str, help: &str) -> Made<IntGauge> {
    reg(r, IntGauge::new(name, help)?)
}

fn counters(r: &Registrar, name: &str, help: &str, labels: &[&str]) -> Made<IntCounterVec> {
    reg(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn gauges(r: &Registrar, name: &str, help: &str, labels: &[&str]) -> Made<IntGaugeVec> {
    reg(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

fn float_gauges(r: &Registrar, name: &str, help: &str, labels: &[&str]) -> Made<GaugeVec> {
    reg(r, GaugeVec::new(Opts::new(name, help), labels)?)
}

/// Creates the listed series at zero, so dashboards and `rate()` see zeros rather than gaps.
fn precreate<M: prometheus::core::Metric>(
    vec: &prometheus::core::MetricVec<impl prometheus::core::MetricVecBuilder<M = M>>,
    values: &[&str],
) {
    for v in values {
        vec.with_label_values(&[v]);
    }
}

/// A counter labelled by `method` only, with a handle resolved once per known method.
struct MethodCounter {
    vec: IntCounterVec,
    slots: Vec<OnceLock<IntCounter>>,
}

impl MethodCounter {
    fn new(r: &Registrar, name: &str, help: &str) -> Made<MethodCounter> {
        let vec = counters(r, name, help, &["method"])?;
        Ok(MethodCounter { vec, slots: (0..=KNOWN_METHODS.len()).map(|_| OnceLock::new()).collect() })
    }

    fn inc(&self, method: &str) {
        let m = method_index(method).unwrap_or(KNOWN_METHODS.len());
        let label = KNOWN_METHODS.get(m).copied().unwrap_or("other");
        if let Some(c) = self.slots.get(m) {
            c.get_or_init(|| self.vec.with_label_values(&[label])).inc();
        }
    }
}

/// The JSON-RPC tier (`proxy/`, `retry.rs`, `filters.rs`, `logs.rs`): client calls, retries, splits.
pub struct CallMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    request_slots: Vec<OnceLock<IntCounter>>,
    duration_slots: Vec<OnceLock<Histogram>>,
    retries: IntCounterVec,
    /// `iotex_gateway_retry_budget_exhausted_total`.
    pub retry_budget_exhausted: IntCounter,
    /// `iotex_gateway_batch_splits_total`: client batches sent upstream as more than one sub-batch.
    pub batch_splits: IntCounter,
    /// `iotex_gateway_filters_lost_total`: filter calls whose creating node is no longer a member.
    pub filters_lost: IntCounter,
    /// `iotex_gateway_logs_splits_total`: `eth_getLogs` calls answered by splitting their range (`logs.rs`).
    pub logs_splits: IntCounter,
    /// `iotex_gateway_logs_split_chunks_total`: the node calls those splits made.
    pub logs_split_chunks: IntCounter,
}

const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl CallMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<CallMetrics> {
        let duration = HistogramOpts::new(
            "iotex_gateway_request_duration_seconds",
            "Time from a call's arrival to its answer, by method, retries included.",
        );
        Ok(CallMetrics {
            requests: counters(r, "iotex_gateway_requests_total",
                "Client JSON-RPC calls (batch items count one each) by method and outcome.", &["method", "outcome"])?,
            duration: reg(r, HistogramVec::new(duration.buckets(DURATION_BUCKETS.to_vec()), &["method"])?)?,
            request_slots: (0..(KNOWN_METHODS.len() + 1) * Outcome::ALL.len()).map(|_| OnceLock::new()).collect(),
            duration_slots: (0..=KNOWN_METHODS.len()).map(|_| OnceLock::new()).collect(),
            retries: counters(r, "iotex_gateway_retries_total",
                "Calls retried on another upstream, by the failure that caused it.", &["reason"])?,
            retry_budget_exhausted: counter(r, "iotex_gateway_retry_budget_exhausted_total",
                "Retries not made because the retry budget (share of recent traffic) was spent.")?,
            batch_splits: counter(r, "iotex_gateway_batch_splits_total",
                "Client batches sent upstream as more than one sub-batch (the node cap is 100 items).")?,
            filters_lost: counter(r, "iotex_gateway_filters_lost_total",
                "Filter calls refused because the node that created the filter is gone.")?,
            logs_splits: counter(r, "iotex_gateway_logs_splits_total",
                "eth_getLogs calls whose block range was split over nodes (wider than logs-max-range-per-call).")?,
            logs_split_chunks: counter(r, "iotex_gateway_logs_split_chunks_total",
                "Node calls made for split eth_getLogs ranges (one per chunk of at most logs-max-range-per-call).")?,
        })
    }

    /// Counts one client call and its duration.
    pub fn observe(&self, method: &str, outcome: Outcome, seconds: f64) {
        self.observe_label(method_index(method), outcome, seconds);
    }

    /// [`CallMetrics::observe`] with the label already looked up ([`crate::methods::Known::label`]).
    pub fn observe_label(&self, label: Option<usize>, outcome: Outcome, seconds: f64) {
        let m = label.unwrap_or(KNOWN_METHODS.len());
        let label = KNOWN_METHODS.get(m).copied().unwrap_or("other");
        let slot = m * Outcome::ALL.len() + outcome.index();
        if let Some(c) = self.request_slots.get(slot) {
            c.get_or_init(|| self.requests.with_label_values(&[label, outcome.as_str()])).inc();
        }
        if let Some(h) = self.duration_slots.get(m) {
            h.get_or_init(|| self.duration.with_label_values(&[label])).observe(seconds);
        }
    }

    /// Counts a retry caused by `reason`.
    pub fn retry(&self, reason: AttemptOutcome) {
        self.retries.with_label_values(&[reason.as_str()]).inc();
    }
}

/// Per-upstream handles, resolved once.
#[derive(Clone)]
pub struct UpstreamMetrics {
    /// `iotex_gateway_upstream_requests_total{upstream, outcome}` by [`AttemptOutcome::index`].
    pub requests: Vec<IntCounter>,
    /// `iotex_gateway_upstream_up{upstream}`.
    pub up: IntGauge,
    /// `iotex_gateway_upstream_head_block{upstream}`.
    pub head: IntGauge,
    /// `iotex_gateway_upstream_lag_blocks{upstream}`.
    pub lag: IntGauge,
    /// `iotex_gateway_upstream_in_flight{upstream}`.
    pub in_flight: IntGauge,
    /// `iotex_gateway_upstream_latency_seconds{upstream}` (peak EWMA used for balancing).
    pub latency: Gauge,
    /// `iotex_gateway_upstream_busy_total{upstream}`.
    pub busy: IntCounter,
    /// `iotex_gateway_upstream_grpc_streams{upstream}`: gRPC server streams the gateway holds open on it.
    pub grpc_streams: IntGauge,
}

/// The upstream set (`upstream/`, `discovery.rs`): per-node health and traffic, membership, DNS.
pub struct NodeMetrics {
    requests: IntCounterVec,
    up: IntGaugeVec,
    head: IntGaugeVec,
    lag: IntGaugeVec,
    in_flight: IntGaugeVec,
    latency: GaugeVec,
    busy: IntCounterVec,
    grpc_streams: IntGaugeVec,
    ejections: IntCounterVec,
    /// `iotex_gateway_best_head_block`.
    pub best_head: IntGauge,
    /// `iotex_gateway_upstreams`: members of the upstream set (static, reloaded and discovered).
    pub upstreams: IntGauge,
    /// `iotex_gateway_dns_lookups_total{result}`: `ok` or `error` (an error keeps the last answer).
    pub dns_lookups: IntCounterVec,
}

impl NodeMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<NodeMetrics> {
        let up = &["upstream"];
        Ok(NodeMetrics {
            requests: counters(r, "iotex_gateway_upstream_requests_total",
                "Attempts sent to each upstream, by outcome.", &["upstream", "outcome"])?,
            up: gauges(r, "iotex_gateway_upstream_up", "1 if the upstream is routable, else 0.", up)?,
            head: gauges(r, "iotex_gateway_upstream_head_block",
                "The upstream's head block at its last good probe.", up)?,
            lag: gauges(r, "iotex_gateway_upstream_lag_blocks", "Blocks the upstream is behind the best head.", up)?,
            in_flight: gauges(r, "iotex_gateway_upstream_in_flight", "Calls in flight to the upstream.", up)?,
            latency: float_gauges(r, "iotex_gateway_upstream_latency_seconds",
                "Peak-EWMA latency the balancer uses for the upstream.", up)?,
            busy: counters(r, "iotex_gateway_upstream_busy_total",
                "HTTP 429 answers from an upstream; each makes it sit out busy-backoff.", up)?,
            grpc_streams: gauges(r, "iotex_gateway_upstream_grpc_streams",
                "Native gRPC server streams (StreamBlocks, StreamLogs) the gateway holds open on the upstream.", up)?,
            ejections: counters(r, "iotex_gateway_ejections_total",
                "Times an upstream was ejected after consecutive failures.", up)?,
            best_head: gauge(r, "iotex_gateway_best_head_block",
                "The best head: highest head within max-lag of the nodes' upper median.")?,
            upstreams: gauge(r, "iotex_gateway_upstreams", "Upstreams in the current set.")?,
            dns_lookups: counters(r, "iotex_gateway_dns_lookups_total",
                "Upstream DNS discovery lookups by result: ok, error.", &["result"])?,
        })
    }

    /// Resolves the handles for one upstream.
    pub fn upstream(&self, name: &str) -> UpstreamMetrics {
        UpstreamMetrics {
            requests: AttemptOutcome::ALL
                .iter()
                .map(|o| self.requests.with_label_values(&[name, o.as_str()]))
                .collect(),
            up: self.up.with_label_values(&[name]),
            head: self.head.with_label_values(&[name]),
            lag: self.lag.with_label_values(&[name]),
            in_flight: self.in_flight.with_label_values(&[name]),
            latency: self.latency.with_label_values(&[name]),
            busy: self.busy.with_label_values(&[name]),
            grpc_streams: self.grpc_streams.with_label_values(&[name]),
        }
    }

    /// Drops every series of an upstream that left the set, so dashboards do not show ghosts.
    pub fn forget(&self, name: &str) {
        for o in AttemptOutcome::ALL {
            let _ = self.requests.remove_label_values(&[name, o.as_str()]);
        }
        for v in [&self.up, &self.head, &self.lag, &self.in_flight, &self.grpc_streams] {
            let _ = v.remove_label_values(&[name]);
        }
        let _ = self.latency.remove_label_values(&[name]);
        let _ = self.ejections.remove_label_values(&[name]);
        let _ = self.busy.remove_label_values(&[name]);
    }

    /// Counts an ejection.
    pub fn ejected(&self, upstream: &str) {
        self.ejections.with_label_values(&[upstream]).inc();
    }
}

/// The HTTP tier (`stack.rs`, `layers/rate_limit.rs`, `ws/`): requests refused before JSON-RPC.
pub struct HttpMetrics {
    /// `iotex_gateway_http_rejected_total{reason}`: `method`, `too_large`, `read`, `body_timeout`.
    pub body_rejected: IntCounterVec,
    /// `iotex_gateway_rate_limited_total`.
    pub rate_limited: IntCounter,
}

impl HttpMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<HttpMetrics> {
        Ok(HttpMetrics {
            body_rejected: counters(r, "iotex_gateway_http_rejected_total",
                "HTTP requests refused before JSON-RPC parsing, by reason.", &["reason"])?,
            rate_limited: counter(r, "iotex_gateway_rate_limited_total",
                "HTTP requests refused by the per-client rate limit.")?,
        })
    }
}

/// Client connections (`connections.rs`): how many are open, refused at accept, closed by a timeout.
#[derive(Clone)]
pub struct ConnMetrics {
    /// `iotex_gateway_connections_open`.
    pub open: IntGauge,
    refused: IntCounterVec,
    closed: IntCounterVec,
}

impl ConnMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<ConnMetrics> {
        let m = ConnMetrics {
            open: gauge(r, "iotex_gateway_connections_open", "JSON-RPC client connections open now.")?,
            refused: counters(r, "iotex_gateway_connections_refused_total",
                "New JSON-RPC connections closed at once, by the cap reached: total (max-connections), \
                 per_client (max-connections-per-client).", &["reason"])?,
            closed: counters(r, "iotex_gateway_connections_closed_total",
                "JSON-RPC connections the gateway closed, by reason: header_timeout (headers slower than \
                 header-read-timeout), idle_timeout (no request within idle-timeout).", &["reason"])?,
        };
        precreate(&m.refused, &["total", "per_client"]);
        precreate(&m.closed, &["header_timeout", "idle_timeout"]);
        Ok(m)
    }

    /// Counts a connection refused at accept (`reason`: `total`, `per_client`).
    pub fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// Counts a connection closed by a timeout (`reason`: `header_timeout`, `idle_timeout`).
    pub fn closed(&self, reason: &str) {
        self.closed.with_label_values(&[reason]).inc();
    }
}

/// Node answers held in memory (`upstream/answer.rs`): the buffer budget and answers refused.
#[derive(Clone)]
pub struct AnswerMetrics {
    /// `iotex_gateway_answer_buffered_bytes`.
    pub buffered: IntGauge,
    refused: IntCounterVec,
}

impl AnswerMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<AnswerMetrics> {
        let m = AnswerMetrics {
            buffered: gauge(r, "iotex_gateway_answer_buffered_bytes",
                "Node answer bytes being read and checked now, across all calls (max-buffered-response-bytes).")?,
            refused: counters(r, "iotex_gateway_answers_refused_total",
                "Node answers not passed on, by reason: too_large (over max-response-bytes), over_budget \
                 (max-buffered-response-bytes stayed full).", &["reason"])?,
        };
        precreate(&m.refused, &["too_large", "over_budget"]);
        Ok(m)
    }

    /// Counts an answer refused for `reason` (`too_large`, `over_budget`).
    pub fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }
}

/// Access tokens (`layers/auth.rs`).
pub struct AuthMetrics {
    /// `iotex_gateway_auth_rejected_total{reason}` (reason from [`crate::error::AuthError::reason`]; the auth
    /// layer creates every reason's series).
    pub rejected: IntCounterVec,
    /// `iotex_gateway_token_requests_total{tier}` (tier names come from the configuration).
    pub token_requests: IntCounterVec,
    /// `iotex_gateway_token_rate_limited_total{tier}`.
    pub token_rate_limited: IntCounterVec,
    /// `iotex_gateway_revocation_list_reloads_total{result}` (`ok` or `error`).
    pub revocation_reloads: IntCounterVec,
    /// `iotex_gateway_revoked_tokens`.
    pub revoked_tokens: IntGauge,
}

impl AuthMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<AuthMetrics> {
        let m = AuthMetrics {
            rejected: counters(r, "iotex_gateway_auth_rejected_total",
                "HTTP requests refused with 401 for their access token, by reason.", &["reason"])?,
            token_requests: counters(r, "iotex_gateway_token_requests_total",
                "HTTP requests admitted with a valid token, by tier.", &["tier"])?,
            token_rate_limited: counters(r, "iotex_gateway_token_rate_limited_total",
                "HTTP requests with a valid token refused by the token's quota, by tier.", &["tier"])?,
            revocation_reloads: counters(r, "iotex_gateway_revocation_list_reloads_total",
                "Revocation list reads after a change: ok, or error (the previous list stays in force).", &["result"])?,
            revoked_tokens: gauge(r, "iotex_gateway_revoked_tokens", "Token ids on the revocation list in force.")?,
        };
        precreate(&m.revocation_reloads, &["ok", "error"]);
        Ok(m)
    }
}

/// Answer reuse (`cache.rs`, `coalesce.rs`, `reuse.rs`).
pub struct ReuseMetrics {
    hits: MethodCounter,
    misses: MethodCounter,
    coalesced: MethodCounter,
    /// `iotex_gateway_cache_evictions_total`.
    pub evictions: IntCounter,
    /// `iotex_gateway_cache_bytes`.
    pub bytes: IntGauge,
    /// `iotex_gateway_cache_entries`.
    pub entries: IntGauge,
}

impl ReuseMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<ReuseMetrics> {
        Ok(ReuseMetrics {
            hits: MethodCounter::new(r, "iotex_gateway_cache_hits_total",
                "Calls answered from the finality-aware cache, by method.")?,
            misses: MethodCounter::new(r, "iotex_gateway_cache_misses_total",
                "Lookups of cacheable methods that found nothing, by method.")?,
            coalesced: MethodCounter::new(r, "iotex_gateway_coalesced_total",
                "Calls that joined an identical call already in flight instead of making their own, by method.")?,
            evictions: counter(r, "iotex_gateway_cache_evictions_total",
                "Cache entries evicted to stay within cache-max-bytes (or refused as larger than a shard).")?,
            bytes: gauge(r, "iotex_gateway_cache_bytes", "Bytes of keys and results held in the cache.")?,
            entries: gauge(r, "iotex_gateway_cache_entries", "Entries held in the cache.")?,
        })
    }

    /// Counts a cache hit.
    pub fn hit(&self, method: &str) {
        self.hits.inc(method);
    }

    /// Counts a cache miss.
    pub fn miss(&self, method: &str) {
        self.misses.inc(method);
    }

    /// Counts a call that joined an identical one in flight.
    pub fn coalesced(&self, method: &str) {
        self.coalesced.inc(method);
    }
}

/// Kinds of subscription topic (the `kind` label).
pub const WS_TOPIC_KINDS: [&str; 2] = ["newHeads", "logs"];

/// Why an upstream subscription was replaced (the `reason` label).
pub const WS_RESUBSCRIBE_REASONS: [&str; 5] = ["connect", "closed", "silence", "unroutable", "gap_fill"];

/// WebSocket metrics (`ws/`). Labels: `kind` from [`WS_TOPIC_KINDS`], `direction` `in`/`out`, `reason` from
/// [`WS_RESUBSCRIBE_REASONS`], `upstream` from the configuration.
#[derive(Clone)]
pub struct WsMetrics {
    /// `iotex_gateway_ws_connections`: open client WebSocket connections.
    pub connections: IntGauge,
    /// `iotex_gateway_ws_subscriptions{kind}`: client subscriptions.
    pub subscriptions: IntGaugeVec,
    /// `iotex_gateway_ws_messages_total{direction}`: client messages received (`in`) and sent (`out`).
    pub messages: IntCounterVec,
    /// `iotex_gateway_ws_upstream_subscriptions{upstream}`: topics currently subscribed on each upstream.
    pub upstream_subscriptions: IntGaugeVec,
    /// `iotex_gateway_ws_upstream_resubscribes_total{reason}`: upstream subscriptions replaced.
    pub resubscribes: IntCounterVec,
    /// `iotex_gateway_ws_gap_filled_heads_total`: heads fetched over HTTP to close a gap.
    pub gap_filled_heads: IntCounter,
    /// `iotex_gateway_ws_backfilled_logs_total`: logs fetched with `eth_getLogs` after a resubscribe.
    pub backfilled_logs: IntCounter,
    /// `iotex_gateway_ws_slow_client_disconnects_total`: clients cut off for not reading fast enough.
    pub slow_disconnects: IntCounter,
    /// `iotex_gateway_ws_token_closes_total`: sessions closed because their access token was revoked, its tier
    /// removed, or it expired while they were open.
    pub token_closes: IntCounter,
}

impl WsMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<WsMetrics> {
        let m = WsMetrics {
            connections: gauge(r, "iotex_gateway_ws_connections", "Open client WebSocket connections.")?,
            subscriptions: gauges(r, "iotex_gateway_ws_subscriptions",
                "Client eth_subscribe subscriptions, by topic kind.", &["kind"])?,
            messages: counters(r, "iotex_gateway_ws_messages_total",
                "Client WebSocket messages received (in) and sent (out).", &["direction"])?,
            upstream_subscriptions: gauges(r, "iotex_gateway_ws_upstream_subscriptions",
                "Topics currently subscribed on each upstream (one upstream subscription per topic).", &["upstream"])?,
            resubscribes: counters(r, "iotex_gateway_ws_upstream_resubscribes_total",
                "Upstream subscriptions replaced, by reason.", &["reason"])?,
            gap_filled_heads: counter(r, "iotex_gateway_ws_gap_filled_heads_total",
                "Heads fetched with eth_getBlockByNumber to close a gap after a resubscribe.")?,
            backfilled_logs: counter(r, "iotex_gateway_ws_backfilled_logs_total",
                "Logs fetched with eth_getLogs after a resubscribe and delivered.")?,
            slow_disconnects: counter(r, "iotex_gateway_ws_slow_client_disconnects_total",
                "WebSocket clients disconnected because their outgoing queue was full.")?,
            token_closes: counter(r, "iotex_gateway_ws_token_closes_total",
                "WebSocket sessions closed because their access token was revoked, its tier removed, or it expired.")?,
        };
        precreate(&m.subscriptions, &WS_TOPIC_KINDS);
        precreate(&m.messages, &["in", "out"]);
        precreate(&m.resubscribes, &WS_RESUBSCRIBE_REASONS);
        Ok(m)
    }
}

/// `iotex_gateway_grpc_*`: the native gRPC listener. `method` is an `iotexapi.APIService` method name from
/// [`crate::grpc::METHODS`] (anything else is `other`); `code` a gRPC status name ([`crate::grpc::CODES`]).
pub struct GrpcMetrics {
    /// `iotex_gateway_grpc_requests_total{method, code}`: calls answered, by the status the client got.
    pub requests: IntCounterVec,
    /// `iotex_gateway_grpc_request_duration_seconds{method}`: arrival to answer (unary calls).
    pub duration: HistogramVec,
    /// `iotex_gateway_grpc_streams{method}`: server streams open now.
    pub streams: IntGaugeVec,
    /// `iotex_gateway_grpc_stream_moves_total{method}`: streams moved to another node.
    pub stream_moves: IntCounterVec,
    /// `iotex_gateway_grpc_stream_filled_blocks_total{method}`: blocks read to fill a moved stream's gap.
    pub stream_filled: IntCounterVec,
}

impl GrpcMetrics {
    #[rustfmt::skip] // One metric per entry: name, then help and labels, so the list reads as a table.
    fn register(r: &Registrar) -> Made<GrpcMetrics> {
        let duration = HistogramOpts::new("iotex_gateway_grpc_request_duration_seconds",
            "Native gRPC unary calls: arrival to answer, by method.")
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        Ok(GrpcMetrics {
            requests: counters(r, "iotex_gateway_grpc_requests_total",
                "Native gRPC calls answered, by method and the gRPC status the client got.", &["method", "code"])?,
            duration: reg(r, HistogramVec::new(duration, &["method"])?)?,
            streams: gauges(r, "iotex_gateway_grpc_streams",
                "Native gRPC server streams (StreamBlocks, StreamLogs) open now, by method.", &["method"])?,
            stream_moves: counters(r, "iotex_gateway_grpc_stream_moves_total",
                "Native gRPC server streams moved to another node (theirs ended, broke, or stopped being routable).", &["method"])?,
            stream_filled: counters(r, "iotex_gateway_grpc_stream_filled_blocks_total",
                "Blocks read from nodes to fill the gap of a moved stream (StreamBlocks: blocks sent; StreamLogs: blocks whose logs were read).", &["method"])?,
        })
    }
}

/// The gateway's registry: one group per subsystem, plus the process's lifecycle.
pub struct Metrics {
    registry: Registrar,
    /// The JSON-RPC tier.
    pub calls: CallMetrics,
    /// The upstream set.
    pub nodes: NodeMetrics,
    /// The HTTP tier.
    pub http: HttpMetrics,
    /// Access tokens.
    pub auth: AuthMetrics,
    /// Cache and coalescing.
    pub reuse: ReuseMetrics,
    /// `iotex_gateway_ws_*`.
    pub ws: WsMetrics,
    /// Client connections.
    pub conns: ConnMetrics,
    /// Node answers in memory.
    pub answers: AnswerMetrics,
    /// The native gRPC listener.
    pub grpc: GrpcMetrics,
    /// `iotex_gateway_draining` (1 after a shutdown signal).
    pub draining: IntGauge,
    /// `iotex_gateway_config_reloads_total{result}`: `applied`, `unchanged` or `rejected`.
    pub config_reloads: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    #[rustfmt::skip] // As the groups' `register`: one entry per metric.
    pub fn new() -> Result<Metrics, MetricsError> {
        let r = Registrar::new();
        #[cfg(target_os = "linux")]
        r.add_collector(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics {
            calls: CallMetrics::register(&r)?,
            nodes: NodeMetrics::register(&r)?,
            http: HttpMetrics::register(&r)?,
            auth: AuthMetrics::register(&r)?,
            reuse: ReuseMetrics::register(&r)?,
            ws: WsMetrics::register(&r)?,
            conns: ConnMetrics::register(&r)?,
            answers: AnswerMetrics::register(&r)?,
            grpc: GrpcMetrics::register(&r)?,
            draining: gauge(&r, "iotex_gateway_draining", "1 once shutdown has begun, else 0.")?,
            config_reloads: counters(&r, "iotex_gateway_config_reloads_total",
                "Config reloads by result: applied, unchanged, rejected.", &["result"])?,
            registry: r,
        })
    }

    /// Renders the text exposition.
    pub fn render(&self) -> Vec<u8> {
        self.registry.render()
    }

    /// Every metric family with its type, labels and help (`process_*` aside), for the generated reference.
    pub fn catalog(&self) -> Vec<MetricDoc> {
        self.registry.catalog()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_come_from_the_sorted_table() {
        assert!(KNOWN_METHODS.windows(2).all(|w| w[0] < w[1]), "KNOWN_METHODS must stay sorted");
        assert_eq!(method_index("eth_call").and_then(|i| KNOWN_METHODS.get(i)), Some(&"eth_call"));
        assert_eq!(method_index(&"x".repeat(10_000)), None);
    }

    #[test]
    fn render_has_the_contract_names() {
        let m = Metrics::new().unwrap();
        m.calls.observe("eth_blockNumber", Outcome::Ok, 0.001);
        m.calls.observe("made_up", Outcome::Denied, 0.0);
        let u = m.nodes.upstream("a");
        u.up.set(1);
        m.http.rate_limited.inc();
        m.calls.retry(AttemptOutcome::Connect);
        m.reuse.coalesced("eth_call");
        m.reuse.hit("made_up");
        let text = String::from_utf8(m.render()).unwrap();
        for name in [
            "iotex_gateway_requests_total{method=\"eth_blockNumber\",outcome=\"ok\"} 1",
            "iotex_gateway_requests_total{method=\"other\",outcome=\"denied\"} 1",
            "iotex_gateway_request_duration_seconds_bucket",
            "iotex_gateway_upstream_up{upstream=\"a\"} 1",
            "iotex_gateway_upstream_requests_total{outcome=\"ok\",upstream=\"a\"} 0",
            "iotex_gateway_best_head_block 0",
            "iotex_gateway_rate_limited_total 1",
            "iotex_gateway_retries_total{reason=\"connect\"} 1",
            "iotex_gateway_coalesced_total{method=\"eth_call\"} 1",
            "iotex_gateway_cache_hits_total{method=\"other\"} 1",
            "iotex_gateway_cache_evictions_total 0",
            "iotex_gateway_cache_bytes 0",
            "iotex_gateway_cache_entries 0",
            "iotex_gateway_connections_open 0",
            "iotex_gateway_connections_refused_total{reason=\"per_client\"} 0",
            "iotex_gateway_connections_closed_total{reason=\"header_timeout\"} 0",
            "iotex_gateway_answer_buffered_bytes 0",
            "iotex_gateway_answers_refused_total{reason=\"too_large\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
