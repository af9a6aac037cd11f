//! An upstream's native gRPC side: HTTP/2 cleartext clients to the node's `iotexapi.APIService` port
//! (IoTeX: 14014), and one gRPC attempt ([`Upstream::grpc_call`]) classified into the same
//! [`AttemptOutcome`]s as a web3 attempt.
//!
//! A gRPC attempt shares the upstream's in-flight slots, latency estimate and attempt counters with web3
//! attempts: one node, one view of its load, whichever API the calls come in on. Like the web3 pools, there
//! is one client per serving thread plus one for the control runtime (a pooled HTTP/2 connection's I/O
//! belongs to the event loop that opened it).
//!
//! Classification: transport failures, timeouts and HTTP errors are what they are on the web3 side. An HTTP
//! 200 is an answer whatever its `grpc-status`, except `UNAVAILABLE` (14), which is gRPC's way for a node to
//! say "not now, try elsewhere": it counts as a 5xx. A 200 without any `grpc-status` is not a gRPC answer.

use super::{AttemptError, Pools, Upstream, error_chain};
use crate::outcome::AttemptOutcome;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// `grpc-status` UNAVAILABLE.
pub const UNAVAILABLE: u32 = 14;

/// An upstream's gRPC clients (HTTP/2 with prior knowledge, no TLS: node ports are in-cluster).
pub struct GrpcClients {
    /// Where calls go: `http://HOST:PORT`.
    pub display: String,
    authority: Authority,
    pools: Pools<GrpcClient>,
}

/// hyper-util's pooled client, HTTP/2 only: one connection per node multiplexes every call.
type GrpcClient = Client<HttpConnector, Full<Bytes>>;

impl GrpcClients {
    /// Clients for `url` (`http://HOST:PORT`), one per serving thread and one for the control runtime;
    /// `None` when the URL has no authority hyper can use.
    pub fn new(url: &url::Url, serving_threads: usize) -> Option<GrpcClients> {
        let uri: Uri = url.as_str().parse().ok()?;
        let authority = uri.authority()?.clone();
        let pools = Pools::new(serving_threads, || {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(super::CONNECT_TIMEOUT));
            let mut builder = Client::builder(TokioExecutor::new());
            builder.pool_timer(TokioTimer::new()).pool_idle_timeout(super::IDLE_TIMEOUT).http2_only(true);
            builder.build(connector)
        });
        Some(GrpcClients { display: format!("http://{authority}"), authority, pools })
    }

    /// A gRPC request for `path` carrying the client's `metadata` and the framed `body`.
    fn request(&self, path: &PathAndQuery, metadata: &HeaderMap, body: Bytes) -> Option<Request<Full<Bytes>>> {
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path.clone())
            .build()
            .ok()?;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri;
        *req.headers_mut() = metadata.clone();
        req.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        req.headers_mut().insert(header::TE, HeaderValue::from_static("trailers"));
        Some(req)
    }
}

/// A node's complete answer to one unary gRPC call.
#[derive(Debug, Clone)]
pub struct GrpcAnswer {
    /// Response headers (`content-type`, metadata), passed on.
    pub headers: HeaderMap,
    /// The length-prefixed message(s), as received.
    pub body: Bytes,
    /// Trailers (`grpc-status`, `grpc-message`, metadata); a trailers-only answer has its status in
    /// `headers` and none here.
    pub trailers: Option<HeaderMap>,
    /// The call's `grpc-status`.
    pub code: u32,
}

impl GrpcAnswer {
    /// `grpc-message` (percent-encoded, as sent), from the trailers or a trailers-only answer's headers.
    pub fn message(&self) -> &str {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| self.headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The `grpc-status` of an answer: trailers first, then (trailers-only) the headers.
pub fn status_of(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> Option<u32> {
    trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Classifies a complete answer.
fn classify(status: StatusCode, answer: GrpcAnswer) -> Result<GrpcAnswer, (AttemptOutcome, String)> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err((AttemptOutcome::Http429, "HTTP 429".into()));
    }
    if status.is_server_error() {
        return Err((AttemptOutcome::Http5xx, format!("HTTP {}", status.as_u16())));
    }
    if !status.is_success() {
        return Err((AttemptOutcome::Http4xx, format!("HTTP {}", status.as_u16())));
    }
    if answer.code == UNAVAILABLE {
        return Err((AttemptOutcome::Http5xx, format!("gRPC UNAVAILABLE: {}", answer.message())));
    }
    Ok(answer)
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII and `%` itself.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One uncompressed gRPC message: flag 0, the length (4 bytes, big-endian), the bytes.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

impl Upstream {
    /// True when calls on the gRPC listener can go to this upstream.
    pub fn has_grpc(&self) -> bool {
        self.grpc.is_some()
    }

    /// Where this upstream's gRPC calls go, for logs and `/status`.
    pub fn grpc_display(&self) -> Option<&str> {
        self.grpc.as_ref().map(|g| g.display.as_str())
    }

    /// Sends one unary gRPC call (`path`, the client's `metadata`, the framed request `body`) and reads the
    /// whole answer within `max-response-bytes` and the buffer budget. The caller holds an in-flight permit.
    pub async fn grpc_call(
        &self,
        path: &PathAndQuery,
        metadata: &HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<GrpcAnswer, AttemptError> {
        self.attempt(timeout, self.grpc_send(path, metadata, body), |a: &GrpcAnswer| a.code != 0).await
    }

    async fn grpc_send(
        &self,
        path: &PathAndQuery,
        metadata: &HeaderMap,
        body: Bytes,
    ) -> Result<GrpcAnswer, (AttemptOutcome, String)> {
        let Some(clients) = &self.grpc else {
            return Err((AttemptOutcome::Connect, "no gRPC address for this upstream".into()));
        };
        let req = clients
            .request(path, metadata, body)
            .ok_or_else(|| (AttemptOutcome::Http4xx, format!("bad gRPC path {path}")))?;
        let resp = clients.pools.get().request(req).await.map_err(|e| {
            let kind = if e.is_connect() { AttemptOutcome::Connect } else { AttemptOutcome::Transport };
            (kind, error_chain(&e))
        })?;
        let (parts, incoming) = resp.into_parts();
        let (body, trailers) = self.answers.read_with_trailers(incoming, None).await?;
        let code = status_of(&parts.headers, trailers.as_ref())
            .ok_or_else(|| (AttemptOutcome::InvalidResponse, "a gRPC answer without grpc-status".to_owned()))?;
        classify(parts.status, GrpcAnswer { headers: parts.headers, body, trailers, code })
    }

    /// Opens a server-streaming call (`StreamBlocks`, `StreamLogs`): the response whose body streams the
    /// node's messages and ends with its trailers. Not counted as an attempt: a stream's life is not a
    /// call's latency.
    pub async fn grpc_open_stream(
        &self,
        path: &PathAndQuery,
        metadata: &HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, AttemptError> {
        let err = |kind, detail| AttemptError { upstream: self.name.clone(), kind, detail };
        let Some(clients) = &self.grpc else {
            return Err(err(AttemptOutcome::Connect, "no gRPC address for this upstream".into()));
        };
        let req = clients
            .request(path, metadata, body)
            .ok_or_else(|| err(AttemptOutcome::Http4xx, format!("bad gRPC path {path}")))?;
        match tokio::time::timeout(timeout, clients.pools.get().request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => Ok(resp),
            Ok(Ok(resp)) => Err(err(AttemptOutcome::Http5xx, format!("HTTP {}", resp.status().as_u16()))),
            Ok(Err(e)) => {
                let kind = if e.is_connect() { AttemptOutcome::Connect } else { AttemptOutcome::Transport };
                Err(err(kind, error_chain(&e)))
            }
            Err(_) => Err(err(AttemptOutcome::Timeout, format!("no answer within {timeout:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u32) -> GrpcAnswer {
        GrpcAnswer { headers: HeaderMap::new(), body: Bytes::new(), trailers: None, code }
    }

    #[test]
    fn statuses_come_from_trailers_then_headers_and_unavailable_is_a_node_failure() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("5"));
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(status_of(&h, Some(&t)), Some(5));
        assert_eq!(status_of(&h, None), Some(0));
        h.insert("grpc-status", HeaderValue::from_static("x"));
        assert_eq!(status_of(&h, None), None);
        assert!(matches!(classify(StatusCode::OK, answer(UNAVAILABLE)), Err((AttemptOutcome::Http5xx, _))));
        assert!(matches!(classify(StatusCode::OK, answer(5)), Ok(a) if a.code == 5));
        assert!(matches!(classify(StatusCode::TOO_MANY_REQUESTS, answer(0)), Err((AttemptOutcome::Http429, _))));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, answer(0)), Err((AttemptOutcome::Http5xx, _))));
        assert!(matches!(classify(StatusCode::NOT_FOUND, answer(0)), Err((AttemptOutcome::Http4xx, _))));
    }
}
