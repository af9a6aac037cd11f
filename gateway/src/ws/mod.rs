//! WebSocket on the JSON-RPC listener: JSON-RPC calls over WebSocket and `eth_subscribe` fan-out.
//!
//! A `GET` with `Upgrade: websocket` on the JSON-RPC port becomes a WebSocket session; every other request
//! passes through to the HTTP path unchanged. Inside a session:
//! - plain calls (single or batch) are answered by [`Proxy::handle`], so policy, routing and retries apply as
//!   over HTTP, and the per-client rate limit counts each message as one request;
//! - `eth_subscribe` `newHeads` / `logs` join a topic of the [`hub::Hub`], which holds **one** upstream
//!   subscription per topic and fans it out to every client; `eth_unsubscribe` leaves it.
//!
//! Refusals: a message over `max-body-bytes` closes the connection with 1009; a client whose outgoing queue
//! (`ws-send-queue`) overflows is closed with 1008 and counted; binary frames, non-JSON, unknown topics and
//! more than `ws-max-subscriptions` subscriptions get JSON-RPC errors and the connection stays open.
//!
//! Layout: this file (the upgrade layer), [`session`] (one client connection), [`topic`] (what a client
//! subscribes to), [`hub`] (fan-out),
//! [`upstream`] (the upstream subscription of one topic, with failover and gap filling), [`order`] (the
//! no-gap/no-duplicate rules, pure), [`source`] (the one place that reads upstreams and health).

pub mod hub;
pub mod order;
pub mod session;
pub mod source;
pub mod topic;
pub mod upstream;

use crate::error::HttpRefusal;
use crate::layers::auth::{Auth, TokenIdentity};
use crate::layers::rate_limit::Limiter;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::server::ClientAddr;
use bytes::Bytes;
use futures::future::{Either, Ready, ready};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Largest client message (the HTTP body cap, `max-body-bytes`).
    pub max_message: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Outgoing messages queued per connection, and per topic fan-out, before a client counts as too slow.
    pub send_queue: usize,
    /// Largest batch (`max-batch-size`), for batches that mix subscriptions with calls.
    pub max_batch: usize,
}

/// What every WebSocket session shares.
pub struct Ws {
    proxy: Arc<Proxy>,
    hub: Arc<hub::Hub>,
    limiter: Arc<Limiter>,
    /// Sessions opened with a token are charged to the token's quota instead of the per-IP one.
    auth: Arc<Auth>,
    settings: WsSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    /// Open sessions, so shutdown can wait for their close frames before the serving threads stop.
    sessions: tokio::sync::watch::Sender<usize>,
}

impl Ws {
    /// Shared state for sessions; `shutdown` closes every session (1001) and every upstream subscription.
    pub fn new(
        proxy: Arc<Proxy>,
        hub: Arc<hub::Hub>,
        limiter: Arc<Limiter>,
        auth: Arc<Auth>,
        settings: WsSettings,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Arc<Ws> {
        let (sessions, _) = tokio::sync::watch::channel(0);
        Arc::new(Ws { proxy, hub, limiter, auth, settings, metrics, shutdown, sessions })
    }

    /// After `shutdown` was cancelled: waits (at most `within`) until every session has sent its close frame.
    pub async fn drained(&self, within: std::time::Duration) {
        let mut rx = self.sessions.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|n| *n == 0)).await;
    }

    /// Answers an upgrade request: 101 and a session task, or 400 when the handshake is malformed.
    fn accept<B>(self: &Arc<Self>, mut req: Request<B>) -> Response<Full<Bytes>> {
        let key = match handshake_key(req.method(), req.headers()) {
            Ok(k) => k,
            Err(why) => return HttpRefusal::BadHandshake(why).response(),
        };
        let client = req.extensions().get::<ClientAddr>().map(|c| self.limiter.client_ip(c.0.ip(), req.headers()));
        // Set by the access-token layer in front when the upgrade carried a valid token.
        let identity = req.extensions().get::<TokenIdentity>().map(|t| t.0.clone());
        let on_upgrade = hyper::upgrade::on(&mut req);
        let ws = Arc::clone(self);
        // The session runs on the serving thread that accepted the connection (see `server::Shards`).
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let config = WebSocketConfig::default()
                        .max_message_size(Some(ws.settings.max_message))
                        .max_frame_size(Some(ws.settings.max_message));
                    let stream =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                    session::run(ws, stream, client, identity).await;
                }
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade did not complete"),
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key)) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        r
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// True when the request asks for a WebSocket (whether or not the rest of the handshake is right).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// Checks an RFC 6455 opening handshake and returns `Sec-WebSocket-Key`, or what is wrong with it.
fn handshake_key(method: &Method, headers: &HeaderMap) -> Result<Vec<u8>, &'static str> {
    if method != Method::GET {
        return Err("a WebSocket upgrade must be a GET");
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err("a WebSocket upgrade needs `Connection: Upgrade`");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err("only WebSocket version 13 is supported (`Sec-WebSocket-Version: 13`)");
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(k) if !k.is_empty() => Ok(k.as_bytes().to_vec()),
        _ => Err("a WebSocket upgrade needs `Sec-WebSocket-Key`"),
    }
}

/// Turns WebSocket upgrade requests into sessions; everything else goes to the inner (HTTP) service.
#[derive(Clone)]
pub struct WsLayer {
    ws: Arc<Ws>,
}

impl WsLayer {
    /// A layer over shared session state.
    pub fn new(ws: Arc<Ws>) -> Self {
        WsLayer { ws }
    }
}

impl<S> Layer<S> for WsLayer {
    type Service = WsUpgrade<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WsUpgrade { inner, ws: Arc::clone(&self.ws) }
    }
}

/// The upgrade-or-pass-through service.
#[derive(Clone)]
pub struct WsUpgrade<S> {
    inner: S,
    ws: Arc<Ws>,
}

impl<S, B> Service<Request<B>> for WsUpgrade<S>
where
    S: Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    // Either the inner call's own future or the handshake answer, ready at once: no box per request.
    type Future = Either<S::Future, Ready<Result<Self::Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_upgrade(req.headers()) {
            return Either::Right(ready(Ok(self.ws.accept(req))));
        }
        Either::Left(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn handshake_checks_name_what_is_missing() {
        let good = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert!(is_upgrade(&good));
        assert_eq!(handshake_key(&Method::GET, &good).unwrap(), b"dGhlIHNhbXBsZSBub25jZQ==");
        assert!(handshake_key(&Method::POST, &good).unwrap_err().contains("GET"));
        let no_conn = headers(&[("upgrade", "websocket"), ("sec-websocket-version", "13")]);
        assert!(handshake_key(&Method::GET, &no_conn).unwrap_err().contains("Connection"));
        let old = headers(&[("connection", "upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "8")]);
        assert!(handshake_key(&Method::GET, &old).unwrap_err().contains("13"));
        assert!(!is_upgrade(&headers(&[("upgrade", "h2c")])));
    }
}
