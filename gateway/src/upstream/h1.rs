//! A node's keep-alive HTTP/1.1 connections for one thread (its web3 port): checkout, connect, send, return.
//!
//! Why not hyper-util's pooled client, which the gateway used before: the gateway already keeps one pool per
//! node per thread (`super::Pools`), so the general pool's machinery is pure cost on every call. In the
//! whole-process callgrind profile (`scripts/bench-process-instructions.sh`) its checkout and return hashed
//! the `(scheme, authority)` key with SipHash three times per call, and it built the `Host` header by
//! formatting the authority on every request; together several thousand instructions per call. Here a
//! checkout is a lock (never contended: one thread uses a pool) and a `Vec::pop`.
//!
//! What it keeps from hyper-util's client, because callers depend on it:
//! - a request on a reused connection that the node closed while it sat idle is sent again on another
//!   connection, and only when hyper hands it back unsent (`try_send_request`), so an action is never sent
//!   twice; on a fresh connection that is a connect failure (`Connect`: provably never sent);
//! - connects are bounded by a timeout and use `TCP_NODELAY`;
//! - idle connections are dropped after `idle_timeout` and at most `max_idle` are kept.
//!
//! A connection goes back to the pool only through [`Lease::release`], after its answer was read to the end:
//! a lease dropped earlier (a timeout, an answer too large) drops the connection, which closes it.

use crate::outcome::AttemptOutcome;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One failed attempt to get an answer's head: the class and a description for logs.
pub type SendFailure = (AttemptOutcome, String);

/// Where a pool's connections go and what every request to that node carries.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to (DNS names are resolved at each new connection).
    pub addr: String,
    /// The `Host` header: the URL's authority without credentials.
    pub host: HeaderValue,
    /// The request target in origin form (path and query).
    pub path: Uri,
}

impl Target {
    /// The target of an absolute `http://` URI; `None` when it has no host or is not plain HTTP.
    pub fn of(uri: &Uri) -> Option<Target> {
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        let authority = uri.authority()?;
        let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        let path = match uri.path_and_query() {
            Some(pq) => Uri::try_from(pq.as_str()).ok()?,
            None => Uri::from_static("/"),
        };
        Some(Target { addr, host, path })
    }
}

/// An idle connection and when it went idle.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// One thread's keep-alive connections to one node.
pub struct H1Pool {
    target: Target,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

/// A connection lent out for one exchange; see [`Lease::release`].
pub struct Lease<'a> {
    pool: &'a H1Pool,
    sender: SendRequest<Full<Bytes>>,
}

impl Lease<'_> {
    /// Returns the connection to the pool: call only once the answer's body has been read to its end.
    pub fn release(self) {
        self.pool.put(self.sender);
    }
}

impl H1Pool {
    /// A pool for `target` keeping at most `max_idle` idle connections, each for at most `idle_timeout`.
    pub fn new(target: Target, max_idle: usize, idle_timeout: Duration, connect_timeout: Duration) -> H1Pool {
        H1Pool { target, idle: Mutex::new(Vec::new()), max_idle, idle_timeout, connect_timeout }
    }

    /// The node this pool connects to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Connections idle in the pool now.
    pub fn idle_len(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Sends `req` on an idle connection, or a new one when none is usable, and returns the answer's head
    /// with the connection lent until its body has been read. The bound on the loop: each retry has taken a
    /// different idle connection out of the pool (and dropped it), and a fresh connection is never retried.
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Result<(Response<Incoming>, Lease<'_>), SendFailure> {
        loop {
            let (mut sender, fresh) = match self.checkout() {
                Some(s) => (s, false),
                None => (self.connect().await?, true),
            };
            if let Err(e) = sender.ready().await {
                if fresh {
                    return Err((
                        AttemptOutcome::Connect,
                        format!("connection to {} closed before use: {e}", self.target.addr),
                    ));
                }
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, Lease { pool: self, sender })),
                Err(mut e) => match e.take_message() {
                    // Never written: the node had closed this idle connection. Another one gets it.
                    Some(unsent) if !fresh => req = unsent,
                    Some(_) => {
                        let err = e.into_error();
                        return Err((
                            AttemptOutcome::Connect,
                            format!("{}: {}", self.target.addr, super::error_chain(&err)),
                        ));
                    }
                    None => {
                        let err = e.into_error();
                        return Err((AttemptOutcome::Transport, super::error_chain(&err)));
                    }
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and young enough; older ones it passes are
    /// dropped (closing them).
    fn checkout(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        let now = Instant::now();
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && now.saturating_duration_since(c.since) < self.idle_timeout {
                return Some(c.sender);
            }
        }
        None
    }

    fn put(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else { return };
        let now = Instant::now();
        // The oldest idle connection sits at the bottom, where LIFO checkouts rarely reach: expire it here.
        if idle
            .first()
            .is_some_and(|c| c.sender.is_closed() || now.saturating_duration_since(c.since) >= self.idle_timeout)
        {
            idle.remove(0);
        }
        if idle.len() < self.max_idle {
            idle.push(Idle { sender, since: now });
        }
    }

    /// A new connection, its I/O driven by a task on the calling thread's runtime.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendFailure> {
        let addr = &self.target.addr;
        let stream =
            match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr.as_str())).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err((AttemptOutcome::Connect, format!("tcp connect to {addr}: {e}"))),
                Err(_) => {
                    return Err((
                        AttemptOutcome::Connect,
                        format!("tcp connect to {addr}: no answer within {:?}", self.connect_timeout),
                    ));
                }
            };
        // Requests are small and answered at once: Nagle would hold the second segment for an ACK.
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| (AttemptOutcome::Connect, format!("{addr}: {}", super::error_chain(&e))))?;
        tokio::spawn(async move {
            // A node closing an idle connection, or a reset, ends up here: the pool notices on checkout.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "node connection ended with an error");
            }
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_target_is_the_uris_address_host_and_origin_form_path() {
        let t = Target::of(&"http://node-1.iotex:15014/rpc?x=1".parse().unwrap()).unwrap();
        assert_eq!(t.addr, "node-1.iotex:15014");
        assert_eq!(t.host, "node-1.iotex:15014");
        assert_eq!(t.path, "/rpc?x=1");
        let t = Target::of(&"http://[::1]/".parse().unwrap()).unwrap();
        assert_eq!(t.addr, "[::1]:80");
        assert_eq!(t.host, "[::1]");
        assert_eq!(t.path, "/");
        assert!(Target::of(&"https://node:443/".parse().unwrap()).is_none(), "TLS is not this pool's");
        assert!(Target::of(&"/relative".parse().unwrap()).is_none());
    }

    /// A node that answers each request on a connection and closes the connection after `per_conn` answers
    /// (0: never); counts the connections it accepted and the requests it read.
    async fn node(per_conn: usize) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let conns = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (Arc::clone(&conns), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = Arc::clone(&r);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut served = 0;
                    // Bounded: a test sends a handful of requests.
                    while served < 100 {
                        let Ok(n) = s.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        served += 1;
                        let body = format!("{{\"n\":{served}}}");
                        let close = per_conn != 0 && served == per_conn;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{}\r\n",
                            body.len(),
                            if close { "connection: close\r\n" } else { "" }
                        );
                        if s.write_all(format!("{head}{body}").as_bytes()).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        (addr, conns, requests)
    }

    fn pool(addr: &str) -> H1Pool {
        let target = Target::of(&format!("http://{addr}/").parse().unwrap()).unwrap();
        H1Pool::new(target, 4, Duration::from_secs(30), Duration::from_secs(2))
    }

    fn req(pool: &H1Pool) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(Bytes::from_static(b"{}")));
        *r.method_mut() = http::Method::POST;
        *r.uri_mut() = pool.target().path.clone();
        r.headers_mut().insert(http::header::HOST, pool.target().host.clone());
        r
    }

    async fn exchange(pool: &H1Pool) -> Result<Bytes, SendFailure> {
        let (resp, lease) = pool.send(req(pool)).await?;
        let body = resp.into_body().collect().await.map_err(|e| (AttemptOutcome::Transport, e.to_string()))?.to_bytes();
        lease.release();
        Ok(body)
    }

    #[tokio::test]
    async fn a_released_connection_is_reused() {
        let (addr, conns, requests) = node(0).await;
        let p = pool(&addr);
        for _ in 0..5 {
            exchange(&p).await.unwrap();
        }
        assert_eq!(requests.load(Ordering::SeqCst), 5);
        assert_eq!(conns.load(Ordering::SeqCst), 1, "one keep-alive connection for five calls in a row");
        assert_eq!(p.idle_len(), 1);
    }

    #[tokio::test]
    async fn an_unreleased_lease_drops_its_connection() {
        let (addr, conns, _) = node(0).await;
        let p = pool(&addr);
        let (resp, lease) = p.send(req(&p)).await.unwrap();
        drop(resp);
        drop(lease);
        assert_eq!(p.idle_len(), 0);
        exchange(&p).await.unwrap();
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_node_closed_is_not_reused_and_the_call_still_succeeds() {
        // The node closes after each answer (`connection: close`): every call needs a fresh connection, and
        // none fails for having been given a dead one.
        let (addr, conns, requests) = node(1).await;
        let p = pool(&addr);
        for i in 0..4 {
            let body = exchange(&p).await.unwrap_or_else(|e| panic!("call {i}: {e:?}"));
            assert_eq!(&body[..], b"{\"n\":1}");
        }
        assert_eq!(requests.load(Ordering::SeqCst), 4);
        assert_eq!(conns.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let p = pool(&addr);
        let (kind, detail) = exchange(&p).await.unwrap_err();
        assert_eq!(kind, AttemptOutcome::Connect, "{detail}");
        assert!(detail.contains(&addr), "{detail}");
    }

    #[tokio::test]
    async fn at_most_max_idle_connections_are_kept() {
        let (addr, conns, _) = node(0).await;
        let p = pool(&addr);
        // Six exchanges at once need six connections; four of them stay.
        let mut leases = Vec::new();
        for _ in 0..6 {
            let (resp, lease) = p.send(req(&p)).await.unwrap();
            resp.into_body().collect().await.unwrap();
            leases.push(lease);
        }
        for l in leases {
            l.release();
        }
        assert_eq!(conns.load(Ordering::SeqCst), 6);
        assert_eq!(p.idle_len(), 4);
    }

    #[tokio::test]
    async fn an_idle_connection_past_the_timeout_is_not_used() {
        let (addr, conns, _) = node(0).await;
        let target = Target::of(&format!("http://{addr}/").parse().unwrap()).unwrap();
        let p = H1Pool::new(target, 4, Duration::from_millis(50), Duration::from_secs(2));
        exchange(&p).await.unwrap();
        std::thread::sleep(Duration::from_millis(80));
        exchange(&p).await.unwrap();
        assert_eq!(conns.load(Ordering::SeqCst), 2, "the first connection had been idle too long");
    }
}
