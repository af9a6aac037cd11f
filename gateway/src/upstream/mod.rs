//! Upstream nodes: pooled HTTP clients, the in-flight cap, and the latency the balancer reads.
//!
//! Each upstream holds one keep-alive pool per serving thread (see `server::Shards`) plus one for the
//! control runtime (probes): a pooled connection's I/O belongs to the event loop that opened it, so sharing
//! one pool across threads would turn every call into a cross-thread hand-off.
//!
//! Layout:
//! - this file: [`Upstream`] and one attempt ([`Upstream::call`]), classified into [`AttemptOutcome`]s.
//! - [`health`]: the health supervisor that owns every upstream's state and publishes a [`health::ClusterView`].
//! - [`h1`]: one thread's keep-alive HTTP/1 connections to a node's web3 port.
//! - [`answer`]: reads an answer within `max-response-bytes` and the shared buffer budget.
//! - [`grpc`]: the node's native gRPC port, for the gateway's gRPC listener.
//! - [`pool`]: the picker: power of two choices over routable upstreams, on peak-EWMA latency × in-flight.

pub mod answer;
pub mod grpc;
pub mod h1;
pub mod health;
pub mod pool;

use crate::config::{UpstreamConfig, redact};
use crate::metrics::UpstreamMetrics;
use crate::outcome::AttemptOutcome;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use iotex_shared::jsonrpc::Response as RpcResponse;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The content type of every JSON-RPC call to a node.
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// How quickly a latency spike is forgotten: tower and linkerd use the same order of magnitude.
const EWMA_DECAY: Duration = Duration::from_secs(10);
/// The latency assumed before the first measurement, so a fresh upstream is neither favoured nor shunned.
const DEFAULT_RTT: Duration = Duration::from_millis(5);

thread_local! {
    /// Which client pool this thread uses: 0 for the control runtime, 1.. for serving threads.
    static POOL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Makes the calling thread use client pool `i` (called once by each serving thread).
pub fn use_pool(i: usize) {
    POOL.with(|p| p.set(i));
}

/// One keep-alive pool per serving thread plus one for the control runtime, all built alike; [`Pools::get`]
/// picks the calling thread's. Used for a node's web3 port ([`h1::H1Pool`]) and for its gRPC port (hyper-util's
/// HTTP/2 client).
struct Pools<T> {
    control: T,
    serving: Vec<T>,
}

impl<T> Pools<T> {
    /// `serving_threads` + 1 pools made by `build`.
    fn new(serving_threads: usize, build: impl Fn() -> T) -> Pools<T> {
        Pools { control: build(), serving: (0..serving_threads).map(|_| build()).collect() }
    }

    /// The calling thread's pool.
    fn get(&self) -> &T {
        match POOL.with(std::cell::Cell::get) {
            0 => &self.control,
            i => self.serving.get(i - 1).unwrap_or(&self.control),
        }
    }
}

/// How long a connection to a node is tried before the attempt counts as a connect failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle keep-alive connection to a node is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why one attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("upstream {upstream}: {}: {detail}", kind.as_str())]
pub struct AttemptError {
    /// The upstream's name.
    pub upstream: String,
    /// The class of failure.
    pub kind: AttemptOutcome,
    /// What happened, for logs.
    pub detail: String,
}

impl AttemptError {
    /// True when the request provably was not acted on (safe to resend even a transaction): the connection
    /// failed, or the node answered 429, which an IoTeX node does before it starts on a request.
    pub fn never_sent(&self) -> bool {
        matches!(self.kind, AttemptOutcome::Connect | AttemptOutcome::Http429)
    }
}

/// A node's answer to one attempt: the body as received, and whether it carried a JSON-RPC error.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Response body bytes, passed through unchanged.
    pub body: Bytes,
    /// `Some(message)` when the answer is a JSON-RPC error.
    pub error: Option<(i64, String)>,
}

/// Ids are never reused, so a report about an upstream that has since been replaced cannot hit its successor.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One upstream node.
pub struct Upstream {
    /// Unique for the life of the process (positions change when the set does).
    pub id: u64,
    /// What it was built from: an unchanged entry on reload keeps this upstream.
    pub config: UpstreamConfig,
    /// Name for metrics, logs and /status.
    pub name: String,
    /// URL without credentials.
    pub display_url: String,
    /// WebSocket URL for subscriptions, if configured (may carry credentials; see `ws::upstream`).
    pub ws_url: Option<url::Url>,
    auth: Option<HeaderValue>,
    /// The health URL's connection (probes run on the control runtime only): it may be another host or port.
    health: Option<h1::H1Pool>,
    pools: Pools<h1::H1Pool>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    ewma: Mutex<PeakEwma>,
    requests: AtomicU64,
    errors: AtomicU64,
    /// True from a failure reported to health until a success is: only then does health need to hear of a
    /// success (it resets the failure streak), so a healthy node's calls send it nothing (`retry::report`).
    failure_streak: AtomicBool,
    /// Pre-resolved metric handles.
    pub metrics: UpstreamMetrics,
    answers: Arc<answer::AnswerBudget>,
    /// The native gRPC side, when the upstream has a gRPC URL.
    grpc: Option<grpc::GrpcClients>,
}

/// A configuration value that is valid as a URL but not as an HTTP request target.
#[derive(Debug, thiserror::Error)]
#[error("upstream {name}: `{url}` cannot be used as a request URI: {reason}")]
pub struct UpstreamUriError {
    name: String,
    url: String,
    reason: String,
}

fn to_uri(name: &str, url: &url::Url) -> Result<Uri, UpstreamUriError> {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.as_str().parse::<Uri>().map_err(|e| UpstreamUriError {
        name: name.to_owned(),
        url: redact(url),
        reason: e.to_string(),
    })
}

impl Upstream {
    /// Builds an upstream with a keep-alive pool per serving thread (and one for probes), each sized to the
    /// in-flight cap.
    pub fn new(
        cfg: &UpstreamConfig,
        max_in_flight: usize,
        serving_threads: usize,
        metrics: UpstreamMetrics,
    ) -> Result<Upstream, UpstreamUriError> {
        let uri = to_uri(&cfg.name, &cfg.url)?;
        let health_uri = cfg.health_url.as_ref().map(|u| to_uri(&cfg.name, u)).transpose()?;
        let health = match &health_uri {
            Some(u) => Some(h1::H1Pool::new(
                h1::Target::of(u).ok_or_else(|| UpstreamUriError {
                    name: cfg.name.clone(),
                    url: cfg.health_url.as_ref().map(redact).unwrap_or_default(),
                    reason: "not a plain http URL with a host".to_owned(),
                })?,
                1,
                IDLE_TIMEOUT,
                CONNECT_TIMEOUT,
            )),
            None => None,
        };
        let auth = (!cfg.url.username().is_empty()).then(|| {
            use base64::Engine;
            let creds = format!("{}:{}", cfg.url.username(), cfg.url.password().unwrap_or(""));
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(creds));
            HeaderValue::from_str(&value).ok()
        });
        let target = h1::Target::of(&uri).ok_or_else(|| UpstreamUriError {
            name: cfg.name.clone(),
            url: redact(&cfg.url),
            reason: "not a plain http URL with a host".to_owned(),
        })?;
        // Each thread's pool has its own copy of the target: its `Host` value and path are cloned into every
        // request, and a copy shared by the serving threads would bounce its reference counts between cores.
        let pools = Pools::new(serving_threads, || {
            h1::H1Pool::new(target.clone(), max_in_flight, IDLE_TIMEOUT, CONNECT_TIMEOUT)
        });
        metrics.latency.set(DEFAULT_RTT.as_secs_f64());
        Ok(Upstream {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config: cfg.clone(),
            name: cfg.name.clone(),
            display_url: redact(&cfg.url),
            ws_url: cfg.ws_url.clone(),
            auth: auth.flatten(),
            health,
            pools,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            ewma: Mutex::new(PeakEwma::new(DEFAULT_RTT)),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failure_streak: AtomicBool::new(false),
            metrics,
            answers: answer::AnswerBudget::default_unmetered(),
            grpc: cfg.grpc_url.as_ref().and_then(|u| grpc::GrpcClients::new(u, serving_threads)),
        })
    }

    /// Reads answers within `answers` (the process-wide cap and budget) instead of the defaults.
    pub fn with_answer_budget(mut self, answers: Arc<answer::AnswerBudget>) -> Upstream {
        self.answers = answers;
        self
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight.saturating_sub(self.permits.available_permits())
    }

    /// Takes an in-flight slot if one is free.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Waits for an in-flight slot.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    /// The balancer's cost: peak-EWMA latency × (in-flight + 1), as in tower's `PeakEwma`.
    pub fn cost(&self) -> f64 {
        let ewma = self.ewma.lock().map(|e| e.current()).unwrap_or(DEFAULT_RTT.as_secs_f64());
        ewma * (self.in_flight() as f64 + 1.0)
    }

    /// Current peak-EWMA latency in seconds.
    pub fn latency(&self) -> f64 {
        self.ewma.lock().map(|e| e.current()).unwrap_or(DEFAULT_RTT.as_secs_f64())
    }

    /// Notes that a failure was reported to health (after it was sent, so a success reported later is
    /// ordered after it in health's channel).
    pub fn failure_reported(&self) {
        self.failure_streak.store(true, Ordering::Release);
    }

    /// True (once) when a failure was reported since the last reported success.
    pub fn take_failure_reported(&self) -> bool {
        self.failure_streak.swap(false, Ordering::AcqRel)
    }

    /// Total attempts and failed attempts so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }

    fn observe_latency(&self, rtt: Duration) {
        if let Ok(mut e) = self.ewma.lock() {
            e.observe(rtt);
            self.metrics.latency.set(e.current());
        }
    }

    /// Sends one JSON-RPC body and classifies the result. The caller holds an in-flight permit.
    pub async fn call(&self, body: Bytes, timeout: Duration) -> Result<Answer, AttemptError> {
        self.call_shaped(body, timeout, false).await
    }

    /// Sends a batch (a JSON array) and classifies the answer: a JSON array is an answer (its items are
    /// matched by the caller); a single error object is the node refusing the whole batch.
    pub async fn call_batch(&self, body: Bytes, timeout: Duration) -> Result<Answer, AttemptError> {
        self.call_shaped(body, timeout, true).await
    }

    async fn call_shaped(&self, body: Bytes, timeout: Duration, batch: bool) -> Result<Answer, AttemptError> {
        self.attempt(timeout, self.send(body, batch), |a: &Answer| a.error.is_some()).await
    }

    /// One attempt's bookkeeping, the same for web3 and gRPC (so the balancer sees one load per node):
    /// attempt and in-flight counts, the outcome metric (`answered_error`: the node answered with an error,
    /// counted `rpc_error`), the latency estimate, the error count. `send` runs within `timeout`.
    async fn attempt<T>(
        &self,
        timeout: Duration,
        send: impl std::future::Future<Output = Result<T, (AttemptOutcome, String)>>,
        answered_error: impl Fn(&T) -> bool,
    ) -> Result<T, AttemptError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics.in_flight.inc();
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, send).await {
            Ok(r) => r,
            Err(_) => Err((AttemptOutcome::Timeout, format!("no answer within {timeout:?}"))),
        };
        self.metrics.in_flight.dec();
        let outcome = match &result {
            Ok(a) if answered_error(a) => AttemptOutcome::RpcError,
            Ok(_) => AttemptOutcome::Ok,
            Err((kind, _)) => *kind,
        };
        if let Some(c) = self.metrics.requests.get(outcome.index()) {
            c.inc();
        }
        // A failure is charged as a full attempt timeout: a node that fails fast (connection refused, instant
        // 5xx) must not look fast to the balancer, and one that hangs must look slow before health ejects it.
        self.observe_latency(if result.is_ok() { started.elapsed() } else { timeout });
        result.map_err(|(kind, detail)| {
            self.errors.fetch_add(1, Ordering::Relaxed);
            AttemptError { upstream: self.name.clone(), kind, detail }
        })
    }

    async fn send(&self, body: Bytes, batch: bool) -> Result<Answer, (AttemptOutcome, String)> {
        // Built in place rather than through `Request::builder`, whose `.header(name, "text")` checks and
        // copies the value into a fresh allocation on every call.
        let pool = self.pools.get();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = pool.target().path.clone();
        let headers = req.headers_mut();
        headers.insert(header::HOST, pool.target().host.clone());
        headers.insert(header::CONTENT_TYPE, JSON);
        if let Some(auth) = &self.auth {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
        let (resp, lease) = pool.send(req).await?;
        let status = resp.status();
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // Bounded: an answer over max-response-bytes, or one the buffer budget has no room for, is refused
        // without being held whole (dropping the body closes that node connection).
        let body = self.answers.read(resp.into_body(), declared).await?;
        // Read to its end: the connection can carry the next call.
        lease.release();
        if batch { classify_batch(status, body) } else { classify(status, body) }
    }

    /// One health probe: `eth_blockNumber`, plus the health URL when configured. Returns the head.
    pub async fn probe(&self, timeout: Duration) -> Result<(u64, Duration), String> {
        let started = Instant::now();
        let probe = async {
            if let Some(pool) = &self.health {
                let mut req = Request::new(Full::new(Bytes::new()));
                *req.uri_mut() = pool.target().path.clone();
                req.headers_mut().insert(header::HOST, pool.target().host.clone());
                let (resp, lease) = pool.send(req).await.map_err(|(_, d)| format!("health URL: {d}"))?;
                if !resp.status().is_success() {
                    return Err(format!("health URL answered HTTP {}", resp.status().as_u16()));
                }
                if resp.into_body().collect().await.is_ok() {
                    lease.release();
                }
            }
            let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"health","method":"eth_blockNumber","params":[]}"#);
            let answer = self.send(body, false).await.map_err(|(k, d)| format!("{}: {d}", k.as_str()))?;
            if let Some((code, msg)) = answer.error {
                return Err(format!("eth_blockNumber error {code}: {msg}"));
            }
            parse_block_number(&answer.body).ok_or_else(|| "eth_blockNumber result is not a quantity".to_owned())
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(head)) => {
                let rtt = started.elapsed();
                // A probe is a real round trip: without it, a node that has had no traffic keeps the assumed
                // default latency and, under light sequential load, never wins a pick against one that has.
                self.observe_latency(rtt);
                Ok((head, rtt))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("probe timed out after {timeout:?}")),
        }
    }
}

/// Maps an HTTP answer to an [`Answer`] or a failure class.
fn classify(status: StatusCode, body: Bytes) -> Result<Answer, (AttemptOutcome, String)> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err((AttemptOutcome::Http429, format!("HTTP 429 ({} body bytes)", body.len())));
    }
    if status.is_server_error() {
        return Err((AttemptOutcome::Http5xx, format!("HTTP {}", status.as_u16())));
    }
    let text = std::str::from_utf8(&body).ok();
    let parsed = text.and_then(RpcResponse::parse);
    match parsed {
        Some(r) => {
            let error = r.error.map(|e| (e.code, e.message.into_owned()));
            Ok(Answer { body, error })
        }
        None if status.is_success() => Err((AttemptOutcome::InvalidResponse, snippet(&body))),
        None => Err((AttemptOutcome::Http4xx, format!("HTTP {}: {}", status.as_u16(), snippet(&body)))),
    }
}

/// [`classify`] for a batch: an array is the answer; anything else is classified as a single answer.
fn classify_batch(status: StatusCode, body: Bytes) -> Result<Answer, (AttemptOutcome, String)> {
    let is_array = status.is_success()
        && std::str::from_utf8(&body)
            .ok()
            .filter(|t| iotex_shared::jsonrpc::first_byte(t) == Some(b'['))
            .is_some_and(|t| serde_json::from_str::<Vec<&serde_json::value::RawValue>>(t).is_ok());
    if is_array {
        return Ok(Answer { body, error: None });
    }
    classify(status, body)
}

/// An error and its sources on one line: hyper's top-level messages ("client error (Connect)") say little.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        src = s.source();
    }
    out
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(120)]);
    format!("not a JSON-RPC response: {s:?}")
}

fn parse_block_number(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        result: &'a str,
    }
    let r: R<'_> = serde_json::from_slice(body).ok()?;
    iotex_shared::hex::quantity(r.result).ok()
}

/// Peak-sensitive exponentially weighted moving average of latency (tower's `PeakEwma` / Finagle's
/// "peak EWMA"): a slower sample replaces the estimate at once; faster samples pull it down gradually.
#[derive(Debug)]
struct PeakEwma {
    estimate: f64,
    stamp: Instant,
}

impl PeakEwma {
    fn new(initial: Duration) -> Self {
        PeakEwma { estimate: initial.as_secs_f64(), stamp: Instant::now() }
    }

    fn observe(&mut self, rtt: Duration) {
        let now = Instant::now();
        let rtt = rtt.as_secs_f64();
        if rtt > self.estimate {
            self.estimate = rtt;
        } else {
            let elapsed = now.saturating_duration_since(self.stamp).as_secs_f64();
            let w = (-elapsed / EWMA_DECAY.as_secs_f64()).exp();
            self.estimate = self.estimate * w + rtt * (1.0 - w);
        }
        self.stamp = now;
    }

    fn current(&self) -> f64 {
        self.estimate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_maps_statuses_and_bodies() {
        let ok = classify(StatusCode::OK, Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)).unwrap();
        assert!(ok.error.is_none());
        let rpc_err = classify(
            StatusCode::OK,
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}}"#),
        )
        .unwrap();
        assert_eq!(rpc_err.error.unwrap().1, "execution reverted");
        let cases = [
            (StatusCode::TOO_MANY_REQUESTS, "", AttemptOutcome::Http429),
            (StatusCode::BAD_GATEWAY, "x", AttemptOutcome::Http5xx),
            (StatusCode::OK, "{not json", AttemptOutcome::InvalidResponse),
            (StatusCode::OK, "", AttemptOutcome::InvalidResponse),
            (StatusCode::BAD_REQUEST, "bad", AttemptOutcome::Http4xx),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(status, Bytes::from(body)).unwrap_err().0, want, "{status} {body:?}");
        }
        // A node that answers a JSON-RPC error with HTTP 400 (ganache does) is still a node's answer.
        let g = classify(
            StatusCode::BAD_REQUEST,
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32700,"message":"x"}}"#),
        );
        assert!(g.is_ok());
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let mut e = PeakEwma::new(Duration::from_millis(5));
        e.observe(Duration::from_millis(100));
        assert!((e.current() - 0.1).abs() < 1e-9);
        e.observe(Duration::from_millis(1));
        assert!(e.current() <= 0.1 && e.current() > 0.001);
    }

    #[test]
    fn block_number_parsing() {
        assert_eq!(parse_block_number(br#"{"jsonrpc":"2.0","id":1,"result":"0x1a"}"#), Some(26));
        assert_eq!(parse_block_number(br#"{"result":"26"}"#), None);
        assert_eq!(parse_block_number(br#"{"result":"0xzz"}"#), None);
        assert_eq!(parse_block_number(b"garbage"), None);
    }
}
