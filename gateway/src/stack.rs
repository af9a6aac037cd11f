//! The JSON-RPC listener's request path, outermost first.
//!
//! ```text
//! AuthLayer                   access token (if keys are set): 401 + -32012 when bad/required, per-token GCRA
//! RateLimitLayer              per-client GCRA for callers without a token: 429 + -32005 + Retry-After
//! WsLayer                     `Upgrade: websocket` becomes a WebSocket session (ws/); the rest passes on
//! RpcHttp                     POST only; body cap (413) and body read timeout (408, connection closed) before
//!                             any JSON is read; then the JSON-RPC tier
//! Proxy                       parse, policy, route, retry, broadcast, assemble (proxy.rs)
//! ```

use crate::error::{HttpRefusal, json_response};
use crate::layers::auth::{Auth, AuthLayer, RequireAuth};
use crate::layers::rate_limit::{Limiter, RateLimit, RateLimitLayer};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::ws::{Ws, WsLayer, WsUpgrade};
use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Service, ServiceBuilder};

/// The JSON-RPC listener's service as a concrete type: no boxed service to clone, and no boxed future per
/// layer, on every request (each layer's future is its inner future or a refusal ready at once).
pub type RpcStack = RequireAuth<RateLimit<WsUpgrade<RpcHttp>>>;

/// Builds the request path. It serves any body type: `hyper::body::Incoming` on the listener, in-memory
/// bodies in the instruction-count bench (`benches/instructions.rs`).
pub fn build(
    proxy: Arc<Proxy>,
    auth: Arc<Auth>,
    limiter: Arc<Limiter>,
    ws: Arc<Ws>,
    body: BodyLimits,
    metrics: Arc<Metrics>,
) -> RpcStack {
    ServiceBuilder::new()
        // First, so a valid token is charged to its own quota instead of its caller's IP; swappable at runtime.
        .layer(AuthLayer::new(auth))
        // Anonymous callers only (admitted tokens carry a TokenIdentity); refused requests are never queued.
        .layer(RateLimitLayer::new(limiter))
        // After the limits, so an upgrade is admitted like any request; a session then limits each message.
        .layer(WsLayer::new(ws))
        .service(RpcHttp(Arc::new(HttpParts {
            proxy,
            max_body: body.max_bytes,
            body_timeout: body.read_timeout,
            metrics,
        })))
}

/// What a request body may be: at most `max_bytes` (`max-body-bytes`), all in within `read_timeout` of the
/// headers (`body-read-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body.
    pub max_bytes: usize,
    /// Longest time to receive it, measured once from when the headers are in: a trickle does not extend it.
    pub read_timeout: std::time::Duration,
}

/// HTTP concerns of the JSON-RPC listener. Its parts sit behind one `Arc`: each request's future takes a
/// clone of it, and one shared count to touch is cheaper than one per part.
#[derive(Clone)]
pub struct RpcHttp(Arc<HttpParts>);

struct HttpParts {
    proxy: Arc<Proxy>,
    max_body: usize,
    body_timeout: std::time::Duration,
    metrics: Arc<Metrics>,
}

impl<B> Service<Request<B>> for RpcHttp
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = Arc::clone(&self.0);
        Box::pin(async move {
            if req.method() != Method::POST {
                this.metrics.http.body_rejected.with_label_values(&["method"]).inc();
                return Ok(HttpRefusal::NotPost.response());
            }
            let too_large = || {
                this.metrics.http.body_rejected.with_label_values(&["too_large"]).inc();
                Ok(HttpRefusal::TooLarge { max: this.max_body }.response())
            };
            // Refuse on the declared length before reading a byte.
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > this.max_body as u64) {
                return too_large();
            }
            // One deadline for the whole body, not per chunk, so a client sending a byte a second is still cut.
            // A small call's body has usually arrived with its headers: one poll reads it, and only a body
            // still on its way gets the timer (a clock read and a timer entry saved on the common call).
            let mut read = std::pin::pin!(Limited::new(req.into_body(), this.max_body).collect());
            let read = match futures::poll!(read.as_mut()) {
                Poll::Ready(r) => Ok(r),
                Poll::Pending => tokio::time::timeout(this.body_timeout, read).await,
            };
            let body = match read {
                Err(_) => {
                    this.metrics.http.body_rejected.with_label_values(&["body_timeout"]).inc();
                    return Ok(HttpRefusal::BodyTimeout(this.body_timeout).response());
                }
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
                Ok(Err(e)) => {
                    this.metrics.http.body_rejected.with_label_values(&["read"]).inc();
                    tracing::debug!(error = %e, "client body broke off");
                    return Ok(HttpRefusal::Unreadable.response());
                }
            };
            let reply = this.proxy.handle(body).await;
            Ok(match reply.body {
                Some(b) => json_response(reply.status, b),
                None => {
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = reply.status;
                    r
                }
            })
        })
    }
}
