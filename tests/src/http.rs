//! A raw HTTP client for tests that assert exact statuses, headers and bodies.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// A response as the test sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// The body parsed as JSON (panics with the body text when it is not JSON: tests only).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A pooled keep-alive client, like a real caller would use.
#[derive(Clone)]
pub struct RawClient {
    inner: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Default for RawClient {
    fn default() -> Self {
        Self::new()
    }
}

impl RawClient {
    /// A new client with its own connection pool.
    pub fn new() -> Self {
        RawClient { inner: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Sends a request; fails only on transport errors or after 30 s.
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into()))?;
        let resp = tokio::time::timeout(Duration::from_secs(30), self.inner.request(req)).await??;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        if url.split('?').next().is_some_and(|p| p.ends_with("/metrics")) {
            // Every scrape is kept: metric labels must never carry a secret either.
            crate::capture::tee_metrics(url, &body);
        }
        Ok(Reply { status, headers, body })
    }

    /// POSTs a JSON body.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> anyhow::Result<Reply> {
        self.send(http::Method::POST, url, &[("content-type", "application/json")], body).await
    }

    /// GETs a URL.
    pub async fn get(&self, url: &str) -> anyhow::Result<Reply> {
        self.send(http::Method::GET, url, &[], Bytes::new()).await
    }

    /// Makes one JSON-RPC call with the given id and returns the whole answer object (`result` or `error`,
    /// and the id), for tests that assert on ids and error objects; an error only for transport failures
    /// and bodies that are not JSON.
    pub async fn rpc(
        &self,
        url: &str,
        id: serde_json::Value,
        method: &str,
        params: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let reply = self.post(url, rpc_request(id, method, params)).await?;
        serde_json::from_slice(&reply.body)
            .map_err(|e| anyhow::anyhow!("{method}: HTTP {} non-JSON body ({e}): {}", reply.status, reply.text()))
    }

    /// Makes one JSON-RPC call and returns `result`, or an error carrying the JSON-RPC error.
    pub async fn call(&self, url: &str, method: &str, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let reply = self.post(url, rpc_request(serde_json::json!(1), method, params)).await?;
        let v: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| anyhow::anyhow!("{method}: HTTP {} non-JSON body ({e}): {}", reply.status, reply.text()))?;
        if let Some(err) = v.get("error") {
            anyhow::bail!("{method}: JSON-RPC error {err} (HTTP {})", reply.status);
        }
        v.get("result").cloned().ok_or_else(|| anyhow::anyhow!("{method}: no result in {v}"))
    }
}

/// The body of one JSON-RPC 2.0 request.
pub fn rpc_request(id: serde_json::Value, method: &str, params: serde_json::Value) -> Vec<u8> {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string().into_bytes()
}

/// The WebSocket URL on the same host and port as an `http://` URL (the gateway and anvil serve both there).
pub fn ws_url(http_url: &str) -> String {
    http_url.replacen("http://", "ws://", 1)
}
