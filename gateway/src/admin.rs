//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/status`.
//!
//! Kept off the JSON-RPC port so probes and scrapes are neither rate limited nor exposed through the `iotex`
//! Service. `/readyz` is 200 only while at least one upstream is routable and the gateway is not draining,
//! which is what lets Kubernetes stop sending traffic before the listener closes.

use crate::metrics::Metrics;
use crate::upstream::health::ClusterView;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::sync::watch;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct Admin {
    /// Health snapshots (with the current members, for live counters).
    pub view: watch::Receiver<Arc<ClusterView>>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Set once shutdown begins.
    pub draining: Arc<AtomicBool>,
}

#[derive(Serialize)]
struct UpstreamJson<'a> {
    name: &'a str,
    url: &'a str,
    state: crate::upstream::health::State,
    head: Option<u64>,
    lag: Option<u64>,
    latency_ms: f64,
    probe_latency_ms: Option<f64>,
    in_flight: usize,
    requests: u64,
    errors: u64,
    consecutive_failures: u32,
    last_error: Option<&'a str>,
}

#[derive(Serialize)]
struct StatusJson<'a> {
    ready: bool,
    draining: bool,
    best_head: Option<u64>,
    routable: usize,
    upstreams: Vec<UpstreamJson<'a>>,
}

impl Admin {
    fn ready(&self, view: &ClusterView) -> bool {
        !view.routable.is_empty() && !self.draining.load(Ordering::Relaxed)
    }

    fn status(&self) -> Vec<u8> {
        let view = self.view.borrow().clone();
        let upstreams = view
            .members
            .iter()
            .zip(&view.upstreams)
            .map(|(u, s)| {
                let (requests, errors) = u.counts();
                UpstreamJson {
                    name: &u.name,
                    url: &u.display_url,
                    state: s.state,
                    head: s.head,
                    lag: s.lag,
                    latency_ms: u.latency() * 1000.0,
                    probe_latency_ms: s.probe_latency_ms,
                    in_flight: u.in_flight(),
                    requests,
                    errors,
                    consecutive_failures: s.consecutive_failures,
                    last_error: s.last_error.as_deref(),
                }
            })
            .collect();
        let body = StatusJson {
            ready: self.ready(&view),
            draining: self.draining.load(Ordering::Relaxed),
            best_head: view.best_head,
            routable: view.routable.len(),
            upstreams,
        };
        serde_json::to_vec_pretty(&body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes())
    }

    /// Answers one admin request.
    pub fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => {
                let view = self.view.borrow().clone();
                let draining = self.draining.load(Ordering::Relaxed);
                if self.ready(&view) {
                    text(StatusCode::OK, &format!("ready: {} routable upstream(s)\n", view.routable.len()))
                } else if draining {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready: draining for shutdown\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready: no routable upstream\n")
                }
            }
            "/metrics" => {
                let mut r = Response::new(Full::new(Bytes::from(self.metrics.render())));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
                r
            }
            "/status" => {
                let mut r = Response::new(Full::new(Bytes::from(self.status())));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            _ => text(StatusCode::NOT_FOUND, "not found; try /healthz, /readyz, /metrics or /status\n"),
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

impl<B> tower::Service<Request<B>> for Admin {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let resp = self.respond(req.method(), req.uri().path());
        Box::pin(async move { Ok(resp) })
    }
}
