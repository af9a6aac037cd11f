//! A JSON-RPC request body, through the gateway's real request path: the whole tower stack
//! (`stack::build`: auth, rate limit, WebSocket check, HTTP checks) and the JSON-RPC tier built by
//! `rpc_tier` from a default config, as `server.rs` serves it. So the single-call fast path
//! (`Request::scan`, else `Request::parse_str`, → `Proxy::single`), the careful `Body::parse` path and the batch path
//! (`proxy/batch.rs`: sort, sub-batches, assembly) all run on the input.
//!
//! The cluster has no node (health runs over an empty member set), so every call that passes the policy ends
//! in the gateway's own "no healthy upstream" error: nothing leaves the process, and each input costs
//! microseconds. Checked on every input, beyond "no panic, no hang":
//! - the answer is a JSON value (or no body, for notifications only);
//! - a body the fast path accepts is also accepted, identically, by the careful path (the proxy relies on
//!   both agreeing: the fast path is only a shortcut), and a body the hand-written scan reads is read the same
//!   by serde's envelope reader;
//! - a single call with an id is answered under exactly that id, byte for byte;
//! - a batch is answered with an array of at most one answer per item.

#![no_main]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use iotex_gateway::metrics::Metrics;
use iotex_gateway::server::ClientAddr;
use iotex_gateway::upstream::health;
use iotex_gateway::{RpcTier, config, health_config, rpc_tier, stack, upstream_factory};
use iotex_shared::jsonrpc::{Body, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

struct Gateway {
    rt: tokio::runtime::Runtime,
    svc: stack::RpcStack,
    _keep: (health::Health, CancellationToken),
}

static GATEWAY: LazyLock<Gateway> = LazyLock::new(|| {
    // The defaults, as an operator who names only an upstream gets them; the upstream is never built.
    let cfg = match config::load(["iotex-gateway", "--upstream", "http://127.0.0.1:1"]) {
        Ok(c) => c,
        Err(e) => panic!("default config: {e}"),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let (svc, keep) = rt.block_on(async {
        let metrics = match Metrics::new() {
            Ok(m) => Arc::new(m),
            Err(e) => panic!("metrics: {e}"),
        };
        // The product's own factory (answer cap and buffer budget included), as `run` builds it.
        let factory = upstream_factory(&cfg, &metrics, 1);
        let health = health::spawn(Vec::new(), health_config(&cfg), factory);
        let stop = CancellationToken::new();
        let RpcTier { proxy, limiter, auth, ws } = match rpc_tier(&cfg, &health, &metrics, &stop) {
            Ok(t) => t,
            Err(e) => panic!("rpc tier: {e}"),
        };
        let body = stack::BodyLimits {
            max_bytes: cfg.startup.max_body_bytes,
            read_timeout: cfg.startup.clients.body_read_timeout,
        };
        (stack::build(proxy, auth, limiter, ws, body, metrics), (health, stop))
    });
    Gateway { rt, svc, _keep: keep }
});

/// An answer's id as written (a plain `Option<&RawValue>` would read `"id": null` as no id at all).
#[derive(serde::Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
}

fuzz_target!(|data: &[u8]| {
    let gw = &*GATEWAY;
    let (status, body) = gw.rt.block_on(async {
        let mut req = http::Request::post("/")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::copy_from_slice(data)))
            .unwrap_or_else(|e| panic!("request: {e}"));
        req.extensions_mut().insert(ClientAddr(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let Ok(resp) = gw.svc.clone().oneshot(req).await;
        let status = resp.status();
        let Ok(body) = resp.into_body().collect().await.map(|b| b.to_bytes());
        (status, body)
    });
    let text = std::str::from_utf8(data).ok();
    let scanned = text.and_then(Request::scan);
    // The hand-written scan, when it answers, must read what serde's envelope reader does.
    if let (Some(t), Some(scanned)) = (text, &scanned) {
        let Ok(serde) = Request::parse_str(t) else { panic!("the scan took a body serde's reader refuses") };
        assert_eq!(scanned.id.map(RawValue::get), serde.id.map(RawValue::get), "scan id");
        assert_eq!(scanned.method, serde.method, "scan method");
        assert_eq!(scanned.params.map(RawValue::get), serde.params.map(RawValue::get), "scan params");
    }
    // The proxy's fast path: the scan, else serde's envelope reader.
    let fast = scanned.or_else(|| text.and_then(|t| Request::parse_str(t).ok()));
    if let (Some(t), Some(fast)) = (text, &fast) {
        let Ok(Body::Single(raw)) = Body::parse(t) else { panic!("fast path took a body the careful path refuses") };
        let Ok(careful) = Request::parse(raw) else { panic!("fast path took an item the careful path refuses") };
        assert_eq!(fast.id.map(RawValue::get), careful.id.map(RawValue::get), "id");
        assert_eq!(fast.method, careful.method, "method");
        assert_eq!(fast.params.map(RawValue::get), careful.params.map(RawValue::get), "params");
    }
    if body.is_empty() {
        assert_eq!(status, http::StatusCode::NO_CONTENT, "an empty answer must be a 204");
        return;
    }
    // Checked as JSON text, not as a `Value`: an id is echoed byte for byte, and JSON sets no range on numbers,
    // so `"id":1.5e638` is a valid answer that `Value` (an f64) cannot hold (a fuzz find, kept in the corpus).
    let answer: &RawValue = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => panic!("answer is not JSON ({e}): {}", String::from_utf8_lossy(&body)),
    };
    if let Some(Request { id: Some(id), .. }) = &fast {
        let Ok(got) = serde_json::from_slice::<Answer<'_>>(&body) else { panic!("single answer is not an object") };
        assert_eq!(got.id.get(), id.get(), "single answer under another id");
    }
    if let Some(Ok(Body::Batch(items))) = text.map(Body::parse)
        && let Ok(answers) = serde_json::from_str::<Vec<&RawValue>>(answer.get())
    {
        assert!(answers.len() <= items.len(), "{} answers to {} items", answers.len(), items.len());
    }
});
