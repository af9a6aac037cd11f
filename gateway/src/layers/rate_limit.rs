//! Per-client rate limiting (GCRA, from governor), keyed by the client's IP address.
//!
//! Refuses with HTTP 429, a `Retry-After` header and a JSON-RPC `-32005` error; a refused request is never
//! queued. The key is the TCP peer's address; `X-Forwarded-For` is believed only when the peer is one of the
//! configured trusted proxies, and then the right-most address that is not itself a trusted proxy is used
//! (the left part of the header is whatever the client chose to write). Keys idle for a while are dropped by
//! a periodic sweep, so a flood of spoofed sources cannot grow memory without bound.
//!
//! The quota and the trusted proxies can be replaced while serving (config reload): an unchanged quota keeps
//! every client's bucket; a changed one starts fresh buckets; no quota lets every request through. Requests
//! admitted with an access token ([`crate::layers::auth`]) are not charged here: their token has its own quota.

use crate::config::RateLimit as RateLimitConfig;
use crate::error::HttpRefusal;
use crate::metrics::Metrics;
use crate::server::ClientAddr;
use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use futures::future::{Either, Ready, ready};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{Request, Response};
use http_body_util::Full;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Per-client buckets under one quota.
struct Buckets {
    quota: RateLimitConfig,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

/// Shared limiter state.
pub struct Limiter {
    buckets: ArcSwapOption<Buckets>,
    trusted: ArcSwap<Vec<IpNet>>,
    metrics: Arc<Metrics>,
}

fn buckets(quota: RateLimitConfig) -> Arc<Buckets> {
    let q = Quota::per_second(quota.per_second).allow_burst(quota.burst);
    Arc::new(Buckets { quota, limiter: RateLimiter::keyed(q) })
}

impl Limiter {
    /// A limiter of `per_second` with `burst`.
    pub fn new(
        per_second: std::num::NonZeroU32,
        burst: std::num::NonZeroU32,
        trusted: Vec<IpNet>,
        metrics: Arc<Metrics>,
    ) -> Arc<Limiter> {
        Limiter::from_config(Some(RateLimitConfig { per_second, burst }), trusted, metrics)
    }

    /// A limiter with an optional quota (`None`: let everything through until a reload sets one).
    pub fn from_config(quota: Option<RateLimitConfig>, trusted: Vec<IpNet>, metrics: Arc<Metrics>) -> Arc<Limiter> {
        Arc::new(Limiter {
            buckets: ArcSwapOption::new(quota.map(buckets)),
            trusted: ArcSwap::from_pointee(trusted),
            metrics,
        })
    }

    /// Applies a reloaded quota and trusted-proxy list.
    pub fn reconfigure(&self, quota: Option<RateLimitConfig>, trusted: Vec<IpNet>) {
        let current = self.buckets.load().as_ref().map(|b| b.quota);
        if current != quota {
            self.buckets.store(quota.map(buckets));
        }
        self.trusted.store(Arc::new(trusted));
    }

    /// Drops idle keys every `period` until the returned task is aborted.
    pub fn spawn_sweeper(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(period);
            loop {
                t.tick().await;
                if let Some(b) = me.buckets.load_full() {
                    b.limiter.retain_recent();
                    b.limiter.shrink_to_fit();
                }
            }
        })
    }

    /// The client address this request is accounted to.
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let trusted = self.trusted.load();
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
        if !is_trusted(&peer) {
            return peer;
        }
        let mut client = peer;
        // Walk the chain right to left: each hop was appended by the proxy in front of the next.
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !is_trusted(&ip) {
                        break;
                    }
                }
                // Garbage in the header: stop believing it at this point.
                Err(_) => break,
            }
        }
        client
    }

    /// `Ok` to proceed, or the wait until the client may try again.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(b) = &*self.buckets.load() else { return Ok(()) };
        b.limiter.check_key(&ip).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Wraps a service with the per-client limit.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<Limiter>,
}

impl RateLimitLayer {
    /// A layer over a shared limiter.
    pub fn new(limiter: Arc<Limiter>) -> Self {
        RateLimitLayer { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit { inner, limiter: Arc::clone(&self.limiter) }
    }
}

/// The rate-limiting service.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<Full<Bytes>>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = S::Error;
    // Either the inner call's own future or a refusal ready at once: no box per request.
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // A caller with a valid access token is charged to the token's quota instead (layers::auth).
        let anonymous = req.extensions().get::<crate::layers::auth::TokenIdentity>().is_none();
        let peer = req.extensions().get::<ClientAddr>().map(|c| c.0.ip()).filter(|_| anonymous);
        if let Some(peer) = peer {
            let ip = self.limiter.client_ip(peer, req.headers());
            if let Err(wait) = self.limiter.check(ip) {
                self.limiter.metrics.http.rate_limited.inc();
                return Either::Right(ready(Ok(HttpRefusal::RateLimited(wait).response())));
            }
        }
        Either::Left(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limiter(trusted: &[&str]) -> Arc<Limiter> {
        Limiter::new(
            NonZeroU32::new(1).unwrap(),
            NonZeroU32::new(2).unwrap(),
            trusted.iter().map(|s| s.parse().unwrap()).collect(),
            Arc::new(Metrics::new().unwrap()),
        )
    }

    fn xff(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let l = limiter(&["10.0.0.0/8"]);
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        // Untrusted peer: the header is ignored.
        assert_eq!(
            l.client_ip("198.51.100.1".parse().unwrap(), &xff("1.2.3.4")),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Trusted peer: right-most untrusted hop; a spoofed left part is ignored.
        assert_eq!(l.client_ip("10.1.1.1".parse().unwrap(), &xff("6.6.6.6, 203.0.113.9, 10.2.2.2")), client);
        // Garbage stops the walk.
        assert_eq!(l.client_ip("10.1.1.1".parse().unwrap(), &xff("not-an-ip")), "10.1.1.1".parse::<IpAddr>().unwrap());
        // No header: the proxy itself.
        assert_eq!(
            l.client_ip("10.1.1.1".parse().unwrap(), &http::HeaderMap::new()),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn burst_then_refusal_with_a_wait() {
        let l = limiter(&[]);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.check(ip).is_ok());
        assert!(l.check(ip).is_ok());
        let wait = l.check(ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another client has its own bucket.
        assert!(l.check("127.0.0.2".parse().unwrap()).is_ok());
        // The same quota on reload keeps the buckets; a new one starts fresh ones; none lets all through.
        let q = RateLimitConfig { per_second: NonZeroU32::new(1).unwrap(), burst: NonZeroU32::new(2).unwrap() };
        l.reconfigure(Some(q), Vec::new());
        assert!(l.check(ip).is_err());
        l.reconfigure(Some(RateLimitConfig { burst: NonZeroU32::new(3).unwrap(), ..q }), Vec::new());
        assert!(l.check(ip).is_ok());
        l.reconfigure(None, Vec::new());
        assert!((0..100).all(|_| l.check(ip).is_ok()));
        let r = HttpRefusal::RateLimited(Duration::from_millis(300)).response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "1");
    }
}
