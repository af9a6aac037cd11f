//! The hot path: `eth_sendRawTransaction` over a pooled keep-alive HTTP/1.1 client (hyper), body built by hand.
//!
//! Why not jsonrpsee here: each send would go through `serde_json::Value` params and a generic response
//! decoder; the body is a fixed template around the hex bytes, and the answer needs only `result` or
//! `error.message`, plus the HTTP status (IoTeX answers 429 with an empty body when busy, which a JSON-RPC
//! client reports as an opaque transport error). Control calls use jsonrpsee ([`crate::rpc`]).

use crate::error::Kind;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::time::Duration;

/// How one send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The node returned a transaction hash.
    Accepted,
    /// The node refused it, or the transport failed before the node could have seen it.
    Rejected(Kind, String),
    /// The request may have reached the node but no answer came (timeout, connection cut mid-request).
    Unknown(Kind),
}

/// A sender for one endpoint.
#[derive(Clone, Debug)]
pub struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
    auth: Option<http::HeaderValue>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    result: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    error: Option<iotex_shared::jsonrpc::ErrorObject<'a>>,
}

impl Sender {
    /// A sender with its own connection pool (`pool` idle connections kept).
    pub fn new(url: &str, auth_token: Option<&str>, timeout: Duration, pool: usize) -> Result<Sender, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
        let auth = auth_token
            .map(|t| http::HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .map_err(|_| "the auth token is not a valid header value".to_owned())?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Sender { client, uri, auth, timeout })
    }

    /// Sends one prepared body.
    pub async fn send(&self, body: Vec<u8>) -> SendOutcome {
        let mut req = http::Request::post(self.uri.clone()).header(http::header::CONTENT_TYPE, "application/json");
        if let Some(a) = &self.auth {
            req = req.header(http::header::AUTHORIZATION, a.clone());
        }
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return SendOutcome::Rejected(Kind::Other, e.to_string()),
        };
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| {
                // A connect error means the node never saw the request; anything later is uncertain.
                if e.is_connect() {
                    SendOutcome::Rejected(Kind::Connection, e.to_string())
                } else {
                    SendOutcome::Unknown(Kind::Connection)
                }
            })?;
            let status = resp.status();
            let body = resp.into_body().collect().await.map_err(|_| SendOutcome::Unknown(Kind::Connection))?.to_bytes();
            Ok::<_, SendOutcome>(classify(status, &body))
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(o) | Err(o)) => o,
            Err(_) => SendOutcome::Unknown(Kind::Timeout),
        }
    }
}

/// Turns a status and body into an outcome.
pub fn classify(status: http::StatusCode, body: &[u8]) -> SendOutcome {
    if status == http::StatusCode::TOO_MANY_REQUESTS {
        return SendOutcome::Rejected(Kind::Busy, "HTTP 429".into());
    }
    match serde_json::from_slice::<Answer<'_>>(body) {
        Ok(Answer { error: Some(e), .. }) => {
            SendOutcome::Rejected(Kind::from_message(&e.message), e.message.into_owned())
        }
        Ok(Answer { result: Some(_), .. }) if status.is_success() => SendOutcome::Accepted,
        _ if status == http::StatusCode::SERVICE_UNAVAILABLE => SendOutcome::Rejected(Kind::Busy, "HTTP 503".into()),
        _ => SendOutcome::Rejected(
            Kind::Http,
            format!("HTTP {}: {}", status.as_u16(), String::from_utf8_lossy(&body[..body.len().min(200)])),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn classifies_answers() {
        assert_eq!(classify(StatusCode::OK, br#"{"jsonrpc":"2.0","id":1,"result":"0xab"}"#), SendOutcome::Accepted);
        assert!(matches!(
            classify(StatusCode::OK, br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}}"#),
            SendOutcome::Rejected(Kind::NonceTooLow, _)
        ));
        assert!(matches!(classify(StatusCode::TOO_MANY_REQUESTS, b""), SendOutcome::Rejected(Kind::Busy, _)));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, b"oops"), SendOutcome::Rejected(Kind::Http, _)));
        assert!(matches!(classify(StatusCode::OK, b"not json"), SendOutcome::Rejected(Kind::Http, _)));
    }
}
