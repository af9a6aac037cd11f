//! Client connections: caps on how many are open (in total and per client IP), and the timeouts that close
//! slow or idle ones. Refuses a new connection at accept time, by closing it at once, when either cap is
//! reached; closes an open one when its headers are too slow or it has been idle too long.
//!
//! - **Caps** ([`ConnLimits::admit`]): counted per TCP peer address, because at accept time that is all there
//!   is; the `X-Forwarded-For` client is known only per request, after the connection is already held. A peer
//!   in `trusted-proxy` (an ingress, a load balancer) carries many clients, so it is exempt from the per-IP
//!   cap and counts only towards the total; the per-client rate limit still sees the forwarded client.
//! - **Timeouts** ([`watch`]): one watchdog per connection. The header timeout runs from the first byte of a
//!   request's headers (for the first request, from accepting the connection, so a socket that connects and
//!   sends nothing is closed as quickly), the idle timeout from the end of the last request. The watchdog is
//!   woken by its timer only, never per request: requests just store times in atomics, and the timer checks
//!   them at least once per `min(header, idle)` timeout. A wake-up per request (it had one for each of a
//!   request's first byte, start and end) re-polled hyper's connection future and re-armed a timer three times
//!   a call, on the serving thread's hot path. hyper's own
//!   `header_read_timeout` is not used: it starts when hyper begins waiting for the next request, so it cannot
//!   tell an idle keep-alive connection from a slow header, and it does not cover HTTP/2 or the protocol
//!   sniffing before hyper picks HTTP/1 or HTTP/2. The body timeout is per request (`stack::RpcHttp`).

use crate::metrics::ConnMetrics;
use ipnet::IpNet;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Connection caps and timeouts of one listener.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// See `header-read-timeout`.
    pub header_read_timeout: Duration,
    /// See `idle-timeout`.
    pub idle_timeout: Duration,
    /// See `max-connections`.
    pub max_connections: usize,
    /// See `max-connections-per-client`.
    pub max_per_client: usize,
    /// Peers exempt from the per-client cap (`trusted-proxy`, as at start).
    pub trusted: Vec<IpNet>,
}

/// Open connections, counted in total and per peer IP.
pub struct ConnLimits {
    settings: ConnSettings,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    metrics: ConnMetrics,
}

/// Why a connection was refused at accept time (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max-connections` open already.
    Total,
    /// `max-connections-per-client` open already from this IP.
    PerClient,
}

impl Refused {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerClient => "per_client",
        }
    }
}

impl ConnLimits {
    /// Caps over nothing open yet.
    pub fn new(settings: ConnSettings, metrics: ConnMetrics) -> Arc<ConnLimits> {
        Arc::new(ConnLimits { settings, open: AtomicUsize::new(0), per_ip: Mutex::new(HashMap::new()), metrics })
    }

    /// The timeouts and caps.
    pub fn settings(&self) -> &ConnSettings {
        &self.settings
    }

    /// Counts a new connection from `peer` in, or refuses it (counted in metrics). The returned guard counts
    /// it out when dropped.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnGuard, Refused> {
        let refused = |r: Refused| {
            self.metrics.refused(r.as_str());
            Err(r)
        };
        // IPv4 clients of a dual-stack listener arrive as ::ffff:a.b.c.d; count them as the IPv4 address.
        let peer = peer.to_canonical();
        let opened = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        if opened > self.settings.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return refused(Refused::Total);
        }
        let exempt = self.settings.trusted.iter().any(|n| n.contains(&peer));
        if !exempt {
            let Ok(mut per_ip) = self.per_ip.lock() else {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return refused(Refused::Total);
            };
            let n = per_ip.entry(peer).or_insert(0);
            if *n >= self.settings.max_per_client {
                drop(per_ip);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return refused(Refused::PerClient);
            }
            *n += 1;
        }
        self.metrics.open.inc();
        Ok(ConnGuard { limits: Arc::clone(self), peer: (!exempt).then_some(peer) })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One admitted connection; dropping it counts the connection out.
pub struct ConnGuard {
    limits: Arc<ConnLimits>,
    peer: Option<IpAddr>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(peer) = self.peer
            && let Ok(mut per_ip) = self.limits.per_ip.lock()
            && let Some(n) = per_ip.get_mut(&peer)
        {
            *n = n.saturating_sub(1);
            // Entries go with their last connection, so the map holds only IPs with something open.
            if *n == 0 {
                per_ip.remove(&peer);
            }
        }
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
        self.limits.metrics.open.dec();
    }
}

/// `u64::MAX` in [`Activity::head_started`]: no request head is being read.
const NONE: u64 = u64::MAX;

/// What a connection is doing, shared by its I/O, its requests and its watchdog. Times are milliseconds
/// since the connection was accepted.
pub struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// When the first byte of the next request arrived while nothing was in flight ([`NONE`]: none yet).
    head_started: AtomicU64,
    /// When the last request ended ([`NONE`]: no request yet).
    idle_since: AtomicU64,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(NONE),
            idle_since: AtomicU64::new(NONE),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// A request's headers are in: until [`RequestDone`] drops, no connection timeout applies.
    pub fn request_started(self: &Arc<Self>) -> RequestDone {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        RequestDone(Arc::clone(self))
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_started.load(Ordering::Acquire) == NONE {
            self.head_started.store(self.now_ms(), Ordering::Release);
        }
    }

    /// When the connection should be closed if nothing changes, and why (`None`: a request is in flight).
    fn deadline(&self, s: &ConnSettings) -> Option<(Instant, Closed)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let at = |ms: u64, d: Duration| self.start + Duration::from_millis(ms) + d;
        let head = self.head_started.load(Ordering::Acquire);
        let idle = self.idle_since.load(Ordering::Acquire);
        Some(match (head, idle) {
            (NONE, NONE) => (at(0, s.header_read_timeout), Closed::HeaderTimeout),
            (NONE, idle) => (at(idle, s.idle_timeout), Closed::IdleTimeout),
            (head, _) => (at(head, s.header_read_timeout), Closed::HeaderTimeout),
        })
    }
}

/// Marks the end of a request (its response is ready) when dropped.
pub struct RequestDone(Arc<Activity>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why the gateway closed a connection (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Headers not complete within `header-read-timeout`.
    HeaderTimeout,
    /// No request within `idle-timeout`.
    IdleTimeout,
}

impl Closed {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
        }
    }
}

/// Runs `conn` (one connection's hyper future) until it ends, or until its [`Activity`] passes a timeout:
/// then the future is dropped, which closes the socket. Returns the connection's own result, or why it was
/// closed.
///
/// Exact without being told of requests: at a check at time `c` the next deadline is either the one in force
/// now or, for a request head that starts later, at least `c + header-read-timeout`, so a timer set to the
/// earlier of the current deadline and `c + min(header, idle)` never fires after a deadline has passed.
pub async fn watch<F: Future>(conn: F, activity: &Activity, limits: &ConnLimits) -> Result<F::Output, Closed> {
    let settings = &limits.settings;
    // Floored so that a tiny setting cannot turn the watchdog into a busy loop.
    let every = settings.header_read_timeout.min(settings.idle_timeout).max(Duration::from_millis(1));
    let next_check =
        |now: Instant, deadline: Option<(Instant, Closed)>| deadline.map_or(now + every, |(at, _)| at.min(now + every));
    tokio::pin!(conn);
    let timer = tokio::time::sleep_until(next_check(Instant::now(), activity.deadline(settings)));
    tokio::pin!(timer);
    // Polled only when it may have fired (`crate::timer`: a pending timer re-registers its waker on every
    // poll, and the connection is woken several times per request for other reasons).
    let mut registration = crate::timer::Registration::default();
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = conn.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if !registration.needs_poll(cx, &timer) {
            return Poll::Pending;
        }
        loop {
            match timer.as_mut().poll(cx) {
                Poll::Pending => {
                    registration.polled(cx);
                    return Poll::Pending;
                }
                Poll::Ready(()) => {
                    let now = Instant::now();
                    match activity.deadline(settings) {
                        Some((at, why)) if at <= now => {
                            limits.metrics.closed(why.as_str());
                            return Poll::Ready(Err(why));
                        }
                        // Re-armed; polled again at once so it is registered.
                        deadline => timer.as_mut().reset(next_check(now, deadline)),
                    }
                }
            }
        }
    })
    .await
}

/// A socket that tells its connection's [`Activity`] when request bytes arrive while it is idle, and holds
/// the connection's [`ConnGuard`] (so a connection upgraded to a WebSocket stays counted while it is open).
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    _guard: Option<ConnGuard>,
}

impl<T> Tracked<T> {
    /// Wraps an accepted socket.
    pub fn new(inner: T, activity: Arc<Activity>, guard: Option<ConnGuard>) -> Self {
        Tracked { inner, activity, _guard: guard }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[path = "connections_tests.rs"]
mod tests;
