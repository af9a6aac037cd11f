//! A fast JSON-RPC sink on loopback: answers what an injector asks with canned results, echoing each id.
//!
//! Used as a staged-fault node in tests (`.chain_id(1)`, `.status(429)`, `.delay(..)`) and, through the
//! `rpc-sink` binary, as the common target of the injector and wrk in `scripts/bench-injector.sh`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the sink behaves.
#[derive(Debug, Clone)]
pub struct Sink {
    chain_id: u64,
    status: u16,
    delay: Duration,
    token: Option<String>,
}

/// A running sink; stops when dropped.
pub struct RunningSink {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `eth_sendRawTransaction` calls answered.
    pub sends: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Default for Sink {
    fn default() -> Self {
        Self::new()
    }
}

/// The canned answer for one method (`None`: method not found).
pub fn answer(method: &str, chain_id: u64) -> Option<String> {
    Some(match method {
        "eth_chainId" => format!("\"0x{chain_id:x}\""),
        "eth_gasPrice" => "\"0x3b9aca00\"".into(),
        "eth_getTransactionCount" | "eth_blockNumber" => "\"0x0\"".into(),
        // Every account is rich: the sink accepts whatever it is sent, so the pre-flight check passes.
        "eth_getBalance" => "\"0xffffffffffffffffffffffffffffffff\"".into(),
        "eth_sendRawTransaction" => "\"0x1111111111111111111111111111111111111111111111111111111111111111\"".into(),
        "eth_getBlockByNumber" | "eth_getTransactionReceipt" | "eth_getTransactionByHash" => "null".into(),
        _ => return None,
    })
}

/// Answers one JSON-RPC body (single calls only; that is all an injector sends).
pub fn respond(body: &[u8], chain_id: u64) -> (bool, String) {
    use iotex_shared::jsonrpc::{Request, codes, error_response, result_response};
    let Ok(text) = std::str::from_utf8(body) else {
        return (false, error_response(None, codes::PARSE_ERROR, "not UTF-8"));
    };
    let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(text) else {
        return (false, error_response(None, codes::PARSE_ERROR, "parse error"));
    };
    match Request::parse(raw) {
        Ok(req) => {
            let send = req.method == "eth_sendRawTransaction";
            match answer(&req.method, chain_id) {
                Some(r) => (send, result_response(req.id, &r)),
                None => (false, error_response(req.id, codes::METHOD_NOT_FOUND, "method not found")),
            }
        }
        Err(e) => (false, error_response(e.id, codes::INVALID_REQUEST, &e.error.to_string())),
    }
}

impl Sink {
    /// Chain id 4689, HTTP 200, no delay.
    pub fn new() -> Self {
        Sink { chain_id: crate::nodes::CHAIN_ID, status: 200, delay: Duration::ZERO, token: None }
    }

    /// Report this chain id.
    pub fn chain_id(mut self, id: u64) -> Self {
        self.chain_id = id;
        self
    }

    /// Answer `eth_sendRawTransaction` with this HTTP status and an empty body (e.g. 429) unless 200.
    pub fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }

    /// Wait this long before answering `eth_sendRawTransaction`.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Answer 401 to any request without `Authorization: Bearer TOKEN`.
    pub fn require_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn spawn(self) -> anyhow::Result<RunningSink> {
        crate::capture::init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let sends = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, self, sends.clone()));
        Ok(RunningSink { url, sends, task })
    }
}

/// Serves on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, sink: Sink, sends: Arc<AtomicU64>) {
    let sink = Arc::new(sink);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (sink, sends) = (sink.clone(), sends.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (sink, sends) = (sink.clone(), sends.clone());
                async move {
                    if let Some(t) = &sink.token {
                        let want = format!("Bearer {t}");
                        if req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
                            != Some(want.as_str())
                        {
                            return hyper::Response::builder()
                                .status(401)
                                .body(Full::new(Bytes::from_static(b"unauthorized")));
                        }
                    }
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let (is_send, text) = respond(&body, sink.chain_id);
                    let mut status = 200;
                    let mut out = Bytes::from(text);
                    if is_send {
                        sends.fetch_add(1, Ordering::Relaxed);
                        if !sink.delay.is_zero() {
                            tokio::time::sleep(sink.delay).await;
                        }
                        if sink.status != 200 {
                            status = sink.status;
                            out = Bytes::new();
                        }
                    }
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(out))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
