//! The native gRPC listener (`--grpc-listen`, IoTeX's port 14014): `iotexapi.APIService` calls balanced per
//! call over the same health view and picker as web3 calls.
//!
//! A plain Kubernetes Service in front of 14014 would pin each gRPC client (one long-lived HTTP/2 connection)
//! to one node for good, lag and death included. Here every call is its own pick:
//! - **Unary reads** (`GetChainMeta`, `GetAccount`, `ReadContract`, …) go to a routable node's gRPC port and
//!   are retried on another after a connection error, a timeout, an HTTP error or `UNAVAILABLE`, within the
//!   call's deadline (`request-timeout`, or the client's shorter `grpc-timeout`) and the retry budget
//!   ([`crate::retry::Reader::read_with`]).
//! - **`SendAction`** follows the raw-transaction rule: sent again only if it provably never left (the
//!   connection was refused). A node's "already in the pool" answer to it is a success, with the action's
//!   hash (Keccak-256 of the `Action` message, as the node computes it).
//! - Any other answer, error statuses included, reaches the client unchanged: headers, message and trailers.
//! - **Server streams** (`StreamBlocks`, `StreamLogs`) are answered at once and relayed from a routable node
//!   by a task ([`crate::grpc_stream`]). A subscription moves to another node when its node dies, hangs or
//!   falls behind, and the gateway fills what it missed (blocks with `GetRawBlocks`, logs with `GetLogs`
//!   under the client's filter), so the client sees every block, or every matching log, once and in order.
//!
//! The gateway's own refusals are trailers-only gRPC answers (HTTP 200, `grpc-status` in the headers):
//! `UNIMPLEMENTED` for a service other than `iotexapi.APIService`, `UNAVAILABLE` with nothing routable or
//! every attempt failed, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED` for a request over `max-body-bytes`.
//! A request that is not gRPC at all gets HTTP 415, as the gRPC spec asks.

use crate::error::CallError;
use crate::grpc_web::Web;
use crate::metrics::Metrics;
use crate::outcome::AttemptOutcome;
use crate::retry::{Reader, Resend};
use crate::upstream::grpc::{GrpcAnswer, frame, percent_encode, status_of};
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The service every call must name.
const SERVICE: &str = "/iotexapi.APIService/";

/// `iotexapi.APIService`'s methods (iotex-proto v0.6.4, the version iotex-core v2.1.0 builds with), sorted:
/// the `method` label's values. Anything else is counted as `other`.
pub const METHODS: [&str; 25] = [
    "EstimateActionGasConsumption",
    "EstimateGasForAction",
    "GetAccount",
    "GetActPoolActions",
    "GetActions",
    "GetBlockMetas",
    "GetChainMeta",
    "GetElectionBuckets",
    "GetEpochMeta",
    "GetEvmTransfersByActionHash",
    "GetEvmTransfersByBlockHeight",
    "GetLogs",
    "GetRawBlocks",
    "GetReceiptByAction",
    "GetServerMeta",
    "GetTransactionLogByActionHash",
    "GetTransactionLogByBlockHeight",
    "ReadContract",
    "ReadContractStorage",
    "ReadState",
    "SendAction",
    "StreamBlocks",
    "StreamLogs",
    "SuggestGasPrice",
    "TraceTransactionStructLogs",
];

/// gRPC status names by code (0-16): the `code` label's values.
pub const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const UNIMPLEMENTED: u32 = 12;
const UNAVAILABLE: u32 = 14;
const DEADLINE_EXCEEDED: u32 = 4;
const RESOURCE_EXHAUSTED: u32 = 8;
const INTERNAL: u32 = 13;
const CANCELLED: u32 = 1;
const INVALID_ARGUMENT: u32 = 3;
const PERMISSION_DENIED: u32 = 7;
const UNAUTHENTICATED: u32 = 16;

/// The label for a method name.
pub fn method_label(name: &str) -> &'static str {
    METHODS.binary_search(&name).ok().and_then(|i| METHODS.get(i).copied()).unwrap_or("other")
}

/// The label for a status code.
pub fn code_label(code: u32) -> &'static str {
    usize::try_from(code).ok().and_then(|i| CODES.get(i).copied()).unwrap_or("UNKNOWN")
}

/// Whether a method is a server stream.
fn is_stream(method: &str) -> bool {
    matches!(method, "StreamBlocks" | "StreamLogs")
}

/// Settings of the gRPC listener read once at start.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// Largest request message accepted.
    pub max_body_bytes: usize,
    /// A request body must be complete this long after its headers.
    pub body_read_timeout: Duration,
}

/// What a config reload replaces on the gRPC listener, swapped as one unit.
pub struct GrpcConf {
    /// `grpc-allow-method` / `grpc-deny-method`.
    pub policy: crate::policy::MethodPolicy,
    /// Which browser origins may call with gRPC-web.
    pub cors: crate::grpc_web::Cors,
    /// The longest a unary call may take, all attempts included (a shorter `grpc-timeout` wins).
    pub request_timeout: Duration,
}

impl GrpcConf {
    /// The listener's reloadable settings from a config; `Err` names a bad glob.
    pub fn from_config(cfg: &crate::config::Config) -> Result<GrpcConf, crate::policy::PolicyError> {
        let (allow, deny) = &cfg.live.grpc_methods;
        Ok(GrpcConf {
            policy: crate::policy::MethodPolicy::new(allow, deny)?,
            cors: crate::grpc_web::Cors::new(cfg.live.grpc_web_cors_origins.clone()),
            request_timeout: cfg.live.request_timeout,
        })
    }
}

/// Who may call what on the gRPC listener: the web3 listener's token verification and per-client limits (one
/// quota per token or client across both APIs, reloaded with them), and this listener's own method globs,
/// CORS origins and deadline (reloaded by [`Guard::reconfigure`]).
pub struct Guard {
    /// Access tokens (`Authorization: Bearer` metadata).
    pub auth: Arc<crate::layers::auth::Auth>,
    /// Per-client GCRA for callers without a token.
    pub limiter: Arc<crate::layers::rate_limit::Limiter>,
    conf: arc_swap::ArcSwap<GrpcConf>,
}

impl Guard {
    /// A guard over the web3 listener's tokens and limits, with this listener's `conf`.
    pub fn new(
        auth: Arc<crate::layers::auth::Auth>,
        limiter: Arc<crate::layers::rate_limit::Limiter>,
        conf: GrpcConf,
    ) -> Guard {
        Guard { auth, limiter, conf: arc_swap::ArcSwap::from_pointee(conf) }
    }

    /// Applies reloaded settings to calls that start from now on.
    pub fn reconfigure(&self, conf: GrpcConf) {
        self.conf.store(Arc::new(conf));
    }
}

/// The gRPC listener's service.
#[derive(Clone)]
pub struct Grpc {
    reader: Arc<Reader>,
    metrics: Arc<Metrics>,
    settings: GrpcSettings,
    guard: Arc<Guard>,
}

/// A response body: a complete unary answer (message bytes, then trailers), or a node's stream relayed.
pub enum GrpcBody {
    /// Data then trailers, each sent once.
    Whole {
        /// The message bytes, until sent.
        data: Option<Bytes>,
        /// The trailers, until sent.
        trailers: Option<HeaderMap>,
    },
    /// An answer translated for a gRPC-web client: frames re-encoded, trailers as a last frame.
    Web(Box<GrpcBody>, Web),
    /// A server stream whose frames come from a relay task (`grpc_stream`), counted open
    /// (`iotex_gateway_grpc_streams`) until dropped; dropping it tells the task the client is gone.
    Relay(tokio::sync::mpsc::Receiver<Frame<Bytes>>, StreamGauge),
}

/// Decrements the open-streams gauge when the stream's body is dropped (ended or cut).
pub struct StreamGauge(prometheus::IntGauge);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for GrpcBody {
    fn default() -> Self {
        GrpcBody::Whole { data: None, trailers: None }
    }
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            GrpcBody::Whole { data, trailers } => {
                if let Some(d) = data.take().filter(|d| !d.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            GrpcBody::Relay(rx, _) => rx.poll_recv(cx).map(|f| f.map(Ok)),
            GrpcBody::Web(inner, web) => {
                let web = *web;
                Pin::new(inner.as_mut()).poll_frame(cx).map(|f| {
                    f.map(|f| {
                        f.map(|f| match f.into_data() {
                            Ok(d) => Frame::data(web.encode(d)),
                            Err(f) => match f.into_trailers() {
                                Ok(t) => Frame::data(web.encode(crate::grpc_web::trailer_frame(&t))),
                                Err(other) => other,
                            },
                        })
                    })
                })
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GrpcBody::Whole { data, trailers } => data.as_ref().is_none_or(Bytes::is_empty) && trailers.is_none(),
            GrpcBody::Relay(..) => false,
            GrpcBody::Web(inner, _) => inner.is_end_stream(),
        }
    }
}

/// A trailers-only answer: HTTP 200 with the status in the headers.
fn status_only(code: u32, message: &str) -> Response<GrpcBody> {
    let mut resp = Response::new(GrpcBody::Whole { data: None, trailers: None });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    resp
}

/// Headers that belong to one HTTP/2 hop or that the gateway sets itself: not passed on either way.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "te"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "content-type"
    )
}

/// A node's response headers as passed on to the client: all but this hop's, with its content type.
fn copy_answer_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (n, v) in from {
        if !hop_by_hop(n) || n == header::CONTENT_TYPE {
            to.append(n.clone(), v.clone());
        }
    }
}

/// The client's metadata as sent on to a node.
fn metadata(headers: &HeaderMap) -> HeaderMap {
    headers.iter().filter(|(n, _)| !hop_by_hop(n)).map(|(n, v)| (n.clone(), v.clone())).collect()
}

/// `grpc-timeout`: an integer of at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn grpc_timeout(v: &HeaderValue) -> Option<Duration> {
    let s = v.to_str().ok()?;
    let (digits, unit) = s.split_at(s.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The `Action` message inside a framed `SendActionRequest` (field 1), when the frame is uncompressed.
fn action_bytes(frame: &[u8]) -> Option<&[u8]> {
    let (&compressed, rest) = frame.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    if compressed != 0 || rest.len() != 4 + len {
        return None;
    }
    let mut msg = rest.get(4..)?;
    // Fields in any order; the action is field 1, wire type 2 (tag byte 0x0a).
    while !msg.is_empty() {
        let (tag, n) = varint(msg)?;
        msg = msg.get(n..)?;
        match tag & 7 {
            2 => {
                let (len, n) = varint(msg)?;
                let len = usize::try_from(len).ok()?;
                let value = msg.get(n..n.checked_add(len)?)?;
                if tag >> 3 == 1 {
                    return Some(value);
                }
                msg = msg.get(n + len..)?;
            }
            0 => msg = msg.get(varint(msg)?.1..)?,
            1 => msg = msg.get(8..)?,
            5 => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    None
}

fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A framed `SendActionResponse { actionHash = 1 }` for `hash`.
fn send_action_response(hash: &str) -> Bytes {
    let mut msg = vec![0x0a];
    msg.push(u8::try_from(hash.len()).unwrap_or(64));
    msg.extend_from_slice(hash.as_bytes());
    frame(&msg)
}

/// True when a node's refusal of `SendAction` says the action is already there.
fn already_there(answer: &GrpcAnswer) -> bool {
    let m = answer.message().to_ascii_lowercase();
    m.contains("existed in pool") || m.contains("already exist") || m.contains("already known")
}

impl Grpc {
    /// The service over the proxy's retrying reader (one health view and one retry budget for both APIs).
    pub fn new(reader: Arc<Reader>, metrics: Arc<Metrics>, settings: GrpcSettings, guard: Arc<Guard>) -> Grpc {
        Grpc { reader, metrics, settings, guard }
    }

    /// The gateway's refusal of this call, if any: a method the globs deny (`PERMISSION_DENIED`), a bad or
    /// missing token (`UNAUTHENTICATED`), a token or client over its quota (`RESOURCE_EXHAUSTED`). Strips a
    /// verified token from the metadata, so it never reaches a node.
    fn refuse(&self, method: &str, req: &mut Request<Incoming>) -> Option<Response<GrpcBody>> {
        if !self.guard.conf.load().policy.allows(method) {
            return Some(status_only(PERMISSION_DENIED, &format!("{method} is not allowed on this gateway")));
        }
        let mut anonymous = true;
        if self.guard.auth.enabled() {
            let token = crate::layers::auth::bearer(req.headers());
            match self.guard.auth.admit(token, crate::token::unix_now()) {
                Err(crate::layers::auth::Refusal::Auth(e)) => {
                    return Some(status_only(UNAUTHENTICATED, &e.to_string()));
                }
                Err(crate::layers::auth::Refusal::OverQuota(wait)) => {
                    let why = format!("the access token is over its quota; retry in {} ms", wait.as_millis());
                    return Some(status_only(RESOURCE_EXHAUSTED, &why));
                }
                Ok(identity) => anonymous = identity.is_none(),
            }
            req.headers_mut().remove(header::AUTHORIZATION);
        }
        let peer = req.extensions().get::<crate::server::ClientAddr>().map(|c| c.0.ip()).filter(|_| anonymous);
        if let Some(peer) = peer {
            let ip = self.guard.limiter.client_ip(peer, req.headers());
            if let Err(wait) = self.guard.limiter.check(ip) {
                self.metrics.http.rate_limited.inc();
                let why = format!("rate limited; retry in {} ms", wait.as_millis());
                return Some(status_only(RESOURCE_EXHAUSTED, &why));
            }
        }
        None
    }

    /// Answers one request; never fails (every failure is a gRPC status).
    pub async fn handle(&self, req: Request<Incoming>) -> Result<Response<GrpcBody>, Infallible> {
        if let Some(resp) = self.guard.conf.load().cors.preflight(&req) {
            return Ok(resp);
        }
        let started = Instant::now();
        let method = req.uri().path().strip_prefix(SERVICE).unwrap_or("").to_owned();
        let label = method_label(&method);
        let web = Web::of(req.headers().get(header::CONTENT_TYPE));
        let origin = web.and(req.headers().get(header::ORIGIN).cloned());
        let resp = self.serve(req, &method, web).await;
        let trailers = match resp.body() {
            GrpcBody::Whole { trailers, .. } => trailers.as_ref(),
            GrpcBody::Relay(..) | GrpcBody::Web(..) => None,
        };
        let code = status_of(resp.headers(), trailers);
        let code = match (resp.status(), code) {
            (_, Some(c)) => code_label(c),
            // A stream still open: its status comes at its end, from the node.
            (StatusCode::OK, None) => "OK",
            (_, None) => "UNKNOWN",
        };
        self.metrics.grpc.requests.with_label_values(&[label, code]).inc();
        if !is_stream(&method) {
            self.metrics.grpc.duration.with_label_values(&[label]).observe(started.elapsed().as_secs_f64());
        }
        Ok(match web {
            Some(w) => self.to_web(resp, w, origin),
            None => resp,
        })
    }

    /// A gRPC answer as a gRPC-web client reads it (see `grpc_web`), with CORS headers for an allowed origin.
    fn to_web(&self, resp: Response<GrpcBody>, web: Web, origin: Option<HeaderValue>) -> Response<GrpcBody> {
        let (mut parts, body) = resp.into_parts();
        if parts.status == StatusCode::OK {
            parts.headers.insert(header::CONTENT_TYPE, web.content_type());
        }
        if let Some(o) = origin {
            let mut request = HeaderMap::new();
            request.insert(header::ORIGIN, o);
            self.guard.conf.load().cors.decorate(&request, &mut parts.headers);
        }
        Response::from_parts(parts, GrpcBody::Web(Box::new(body), web))
    }

    async fn serve(&self, mut req: Request<Incoming>, method: &str, web: Option<Web>) -> Response<GrpcBody> {
        let grpc = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/grpc"));
        if !grpc || req.method() != http::Method::POST {
            let mut r = Response::new(GrpcBody::Whole { data: None, trailers: None });
            *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return r;
        }
        if method.is_empty() || method.contains('/') {
            return status_only(UNIMPLEMENTED, "only iotexapi.APIService is served here");
        }
        if let Some(refusal) = self.refuse(method, &mut req) {
            return refusal;
        }
        let Some(path) = req.uri().path_and_query().cloned() else {
            return status_only(UNIMPLEMENTED, "no path");
        };
        let timeout = self.guard.conf.load().request_timeout;
        let deadline = Instant::now()
            + req.headers().get("grpc-timeout").and_then(grpc_timeout).map_or(timeout, |t| t.min(timeout));
        let mut meta = metadata(req.headers());
        if is_stream(method) {
            // The relay reads every message (a block's height), so the node must not compress them; and a
            // stream has no deadline at the node (the client ends it).
            meta.remove("grpc-accept-encoding");
            meta.remove("grpc-timeout");
        }
        let body = match self.read_body(req.into_body()).await {
            Ok(b) => b,
            Err(resp) => return *resp,
        };
        let body = match web {
            None => body,
            Some(w) => match w.decode_request(body) {
                Some(b) => b,
                None => return status_only(INVALID_ARGUMENT, "the gRPC-web-text request body is not base64"),
            },
        };
        if is_stream(method) {
            return self.stream(&path, meta, body, method);
        }
        self.unary(&path, &meta, body, deadline, method == "SendAction").await
    }

    /// The request message, within `max-body-bytes` and the body read timeout.
    async fn read_body(&self, body: Incoming) -> Result<Bytes, Box<Response<GrpcBody>>> {
        let limited = http_body_util::Limited::new(body, self.settings.max_body_bytes);
        match tokio::time::timeout(self.settings.body_read_timeout, limited.collect()).await {
            Ok(Ok(c)) => Ok(c.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(Box::new(status_only(
                RESOURCE_EXHAUSTED,
                &format!("request over this gateway's max-body-bytes ({})", self.settings.max_body_bytes),
            ))),
            Ok(Err(_)) => Err(Box::new(status_only(CANCELLED, "the request body broke off"))),
            Err(_) => Err(Box::new(status_only(DEADLINE_EXCEEDED, "the request body did not arrive in time"))),
        }
    }

    async fn unary(
        &self,
        path: &PathAndQuery,
        meta: &HeaderMap,
        body: Bytes,
        deadline: Instant,
        send_action: bool,
    ) -> Response<GrpcBody> {
        let resend = if send_action { Resend::OnlyIfNeverSent } else { Resend::Any };
        let result = self
            .reader
            .read_with(deadline, resend, |u, t| {
                let body = body.clone();
                async move { u.grpc_call(path, meta, body, t).await }
            })
            .await;
        match result {
            Ok((_, answer)) if send_action && answer.code != 0 && already_there(&answer) => match action_bytes(&body) {
                Some(action) => {
                    let hash = alloy_primitives::hex::encode(alloy_primitives::keccak256(action));
                    let mut resp = Response::new(GrpcBody::Whole {
                        data: Some(send_action_response(&hash)),
                        trailers: Some(ok_trailers()),
                    });
                    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                    resp
                }
                None => pass_on(answer),
            },
            Ok((_, answer)) => pass_on(answer),
            Err(e) => refusal(&e),
        }
    }

    /// A server stream: answered at once with headers, its messages from a relay task (`grpc_stream`), which
    /// opens the stream on a node and, for `StreamBlocks`, moves it between nodes.
    fn stream(&self, path: &PathAndQuery, meta: HeaderMap, body: Bytes, method: &str) -> Response<GrpcBody> {
        let gauge = self.metrics.grpc.streams.with_label_values(&[method_label(method)]);
        gauge.inc();
        let (tx, rx) = crate::grpc_stream::channel();
        let relay = crate::grpc_stream::Relay {
            reader: Arc::clone(&self.reader),
            path: path.clone(),
            meta,
            body,
            metrics: Arc::clone(&self.metrics),
            blocks: method == "StreamBlocks",
        };
        tokio::spawn(relay.run(tx));
        let mut out = Response::new(GrpcBody::Relay(rx, StreamGauge(gauge)));
        out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        out
    }
}

fn ok_trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t
}

/// A node's answer, passed on: its headers (minus this hop's), message bytes and trailers.
fn pass_on(answer: GrpcAnswer) -> Response<GrpcBody> {
    let mut resp = Response::new(GrpcBody::Whole { data: Some(answer.body), trailers: answer.trailers });
    copy_answer_headers(&answer.headers, resp.headers_mut());
    resp
}

/// The gateway's own answer when no node answered.
fn refusal(e: &CallError) -> Response<GrpcBody> {
    match e {
        CallError::Deadline => status_only(DEADLINE_EXCEEDED, &e.to_string()),
        CallError::Upstream(a) if a.kind.is_gateway_limit() => status_only(RESOURCE_EXHAUSTED, &a.to_string()),
        CallError::Upstream(a) if a.kind == AttemptOutcome::Http4xx => status_only(INTERNAL, &a.to_string()),
        CallError::Upstream(a) => status_only(UNAVAILABLE, &format!("{e}: {a}")),
        _ => status_only(UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
