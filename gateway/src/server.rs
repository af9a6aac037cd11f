//! Accept loop, serving threads and graceful shutdown.
//!
//! The JSON-RPC and gRPC listeners are served thread-per-core, the way nginx runs one event loop per worker:
//! each listener's accept loop hands each new connection to one of N serving threads (shared by both
//! listeners), each running its own single-threaded tokio runtime with its own upstream connection pools (the
//! caller's per-thread hook picks them: `upstream::use_pool`). A request then lives on one
//! thread from the client's socket to the node's socket and back, with no cross-thread wake-ups. On the 2-core
//! benchmark machine this took the gateway from 0.71× to 0.83× nginx's throughput compared with one
//! work-stealing runtime (README, Benchmarks). The admin listener is served on the control runtime.
//!
//! Each connection is served by hyper (HTTP/1.1 keep-alive, or HTTP/2 with prior knowledge) with the peer's
//! address put in the request's extensions as [`ClientAddr`]. On stop, the listener is closed at once, idle
//! keep-alive connections are told to close, and requests in flight get the grace period to finish; what is
//! still open after that is cut and reported.
//!
//! On the JSON-RPC listener, [`crate::connections`] caps the connections open (a connection past a cap is
//! closed as soon as it is accepted) and closes those whose headers are too slow or that sit idle.

use crate::connections::{Activity, ConnGuard, ConnLimits, RequestDone, Tracked};
use crate::drain::{Drain, Watcher};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

/// The TCP peer of the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// How a listener's shutdown went.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeReport {
    /// Connections accepted over the listener's life.
    pub connections: u64,
    /// True when the grace period ran out with connections still open.
    pub cut: bool,
}

/// A service a listener can serve; `B` is its response body (the gRPC listener's carries trailers).
pub trait HttpService<B = Full<Bytes>>:
    Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// What a response body must be for hyper to send it.
pub trait ResponseBody:
    hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

/// Serves one accepted connection on the current runtime until it ends, is told to close, or (with
/// `limits`) passes a connection timeout.
fn spawn_connection<S: HttpService<B>, B: ResponseBody>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    service: S,
    watcher: Watcher,
    admitted: Option<(Arc<ConnLimits>, ConnGuard)>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let (limits, guard) = admitted.map_or((None, None), |(l, g)| (Some(l), Some(g)));
    let on_request = Arc::clone(&activity);
    let own = PerConnection::new(service);
    let hyper_svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        let done = on_request.request_started();
        let call = own.call(req);
        async move {
            let out = call.await;
            Ok::<_, Infallible>(match out {
                Ok(resp) => resp.map(|body| Counted { body, done: Some(done) }),
                Err(never) => match never {},
            })
        }
    });
    // With upgrades, so a WebSocket handshake on the JSON-RPC port can take the connection over (ws/).
    let conn = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(Tracked::new(stream, Arc::clone(&activity), guard)), hyper_svc)
        .into_owned();
    let conn = watcher.watch(conn, |c| c.graceful_shutdown());
    tokio::spawn(async move {
        let result = match &limits {
            Some(l) => match crate::connections::watch(conn, &activity, l).await {
                Ok(r) => r,
                // Too slow or idle: dropping the connection closed it; the watchdog counted it.
                Err(_) => return,
            },
            None => conn.await,
        };
        // Client resets and half-closed sockets end up here; they are the client's business.
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted in flight (`connections::Activity`) until the body has
    /// been sent or dropped. A stream's response (gRPC `StreamBlocks`) is ready long before it ends, and its
    /// connection must not look idle, or slow to send a request, to the watchdog meanwhile.
    pub struct Counted<B> {
        #[pin]
        body: B,
        done: Option<RequestDone>,
    }
}

impl<B: hyper::body::Body> hyper::body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            this.done.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's own copy of the service, called in place. Serving a request through a fresh clone of the
/// stack (`clone().oneshot()`) increments and then decrements the reference count of every shared part of it,
/// on every request, and those counts are shared by all serving threads: each such write moves a cache line
/// between cores. hyper calls the service one request at a time (a call only makes the future), so the
/// connection's copy is never borrowed twice; `spare` covers that case anyway, and a service that is not
/// ready at once (none of the gateway's layers ever waits) is called through a clone as before.
/// (Public for the instruction-count bench, which serves its requests the same way.)
pub struct PerConnection<S> {
    service: std::cell::RefCell<S>,
    spare: S,
}

impl<S> PerConnection<S> {
    /// A connection's copy of `service`.
    pub fn new(service: S) -> PerConnection<S>
    where
        S: Clone,
    {
        PerConnection { service: std::cell::RefCell::new(service.clone()), spare: service }
    }

    /// Calls the service for one request: in place when it is ready at once, else through a clone.
    pub fn call<R>(&self, req: R) -> futures::future::Either<S::Future, tower::util::Oneshot<S, R>>
    where
        S: Service<R, Error = Infallible> + Clone,
    {
        use futures::future::Either;
        if let Ok(mut own) = self.service.try_borrow_mut() {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if own.poll_ready(&mut cx).is_ready() {
                return Either::Left(own.call(req));
            }
        }
        Either::Right(self.spare.clone().oneshot(req))
    }
}

/// A connection handed to a serving thread: the thread adopts the socket and serves it with the listener's
/// service. Boxed once per connection (not per request), so one set of threads serves every listener.
type Handoff = Box<dyn FnOnce() + Send>;

/// The serving threads, shared by the JSON-RPC and gRPC listeners; cloned into each listener's accept task.
/// The threads end once every clone is dropped (the listeners have drained) and [`ShardThreads::join`]
/// waits for them.
#[derive(Clone)]
pub struct Shards {
    senders: Arc<[mpsc::UnboundedSender<Handoff>]>,
}

/// The join handles of the serving threads.
pub struct ShardThreads(Vec<std::thread::JoinHandle<()>>);

impl Shards {
    /// Starts `n` serving threads. Each thread first calls `on_thread(i)` with its index (0-based), so the
    /// caller can set up per-thread state (the gateway picks an upstream client pool).
    pub fn start(
        n: usize,
        on_thread: impl Fn(usize) + Clone + Send + 'static,
    ) -> std::io::Result<(Shards, ShardThreads)> {
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<Handoff>();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let on_thread = on_thread.clone();
            let thread = std::thread::Builder::new().name(format!("gw-serve-{i}")).spawn(move || {
                on_thread(i);
                rt.block_on(async move {
                    while let Some(adopt) = rx.recv().await {
                        adopt();
                    }
                });
                // Dropping the runtime here cancels whatever the grace period did not finish.
            })?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok((Shards { senders: senders.into() }, ShardThreads(threads)))
    }
}

impl ShardThreads {
    /// Waits for the threads, which end once every [`Shards`] clone is gone.
    pub async fn join(self) {
        let threads = self.0;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// How one listener serves: its name for logs, its connection caps and timeouts (`None`: none, the admin
/// listener), and how long in-flight requests get to finish once stopped.
pub struct Listener {
    /// For logs.
    pub name: &'static str,
    /// Connection caps and timeouts.
    pub limits: Option<Arc<ConnLimits>>,
    /// Grace period after stop.
    pub grace: Duration,
}

/// Serves `service` on `listener` until `stop` is cancelled, then drains for up to `grace`. Connections go to
/// `shards` round-robin when given, else are served on the current runtime. Long because the accept loop,
/// the admission check and the hand-off read best in one piece.
pub async fn serve<S: HttpService<B>, B: ResponseBody>(
    listener: TcpListener,
    service: S,
    shards: Option<Shards>,
    stop: CancellationToken,
    how: Listener,
) -> ServeReport {
    let Listener { name, limits, grace } = how;
    let graceful = Drain::default();
    let mut report = ServeReport::default();
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually EMFILE/ENFILE: back off briefly instead of spinning on the error.
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        report.connections += 1;
        let admitted = match &limits {
            Some(l) => match l.admit(peer.ip()) {
                Ok(guard) => Some((Arc::clone(l), guard)),
                // Past a cap: dropping the stream closes it at once (counted by `admit`).
                Err(_) => continue,
            },
            None => None,
        };
        let watcher = graceful.watcher();
        match shards.as_ref().and_then(|sh| sh.senders.get(next % sh.senders.len().max(1))) {
            Some(tx) => {
                next = next.wrapping_add(1);
                match stream.into_std() {
                    Ok(std_stream) => {
                        let service = service.clone();
                        let adopt = move || match tokio::net::TcpStream::from_std(std_stream) {
                            Ok(stream) => spawn_connection(stream, peer, service, watcher, admitted),
                            Err(e) => tracing::warn!(error = %e, "cannot adopt an accepted connection"),
                        };
                        if tx.send(Box::new(adopt)).is_err() {
                            tracing::warn!(listener = name, "serving thread gone; connection dropped");
                        }
                    }
                    Err(e) => tracing::warn!(listener = name, error = %e, "cannot hand off a connection"),
                }
            }
            None => spawn_connection(stream, peer, service.clone(), watcher, admitted),
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            report.cut = true;
            tracing::warn!(listener = name, grace = ?grace, "grace period over; cutting connections still in flight");
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::PerConnection;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    /// Answers its request doubled; counts its clones; ready only from its `ready_after`-th poll on.
    struct Probe {
        clones: Arc<AtomicUsize>,
        polls: usize,
        ready_after: usize,
    }

    impl Clone for Probe {
        fn clone(&self) -> Self {
            self.clones.fetch_add(1, Ordering::SeqCst);
            Probe { clones: Arc::clone(&self.clones), polls: 0, ready_after: self.ready_after }
        }
    }

    impl tower::Service<u32> for Probe {
        type Response = u32;
        type Error = Infallible;
        type Future = std::future::Ready<Result<u32, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.polls += 1;
            if self.polls > self.ready_after {
                Poll::Ready(Ok(()))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }

        fn call(&mut self, req: u32) -> Self::Future {
            std::future::ready(Ok(req * 2))
        }
    }

    fn probe(ready_after: usize) -> (Probe, Arc<AtomicUsize>) {
        let clones = Arc::new(AtomicUsize::new(0));
        (Probe { clones: Arc::clone(&clones), polls: 0, ready_after }, clones)
    }

    #[tokio::test]
    async fn a_ready_service_is_called_in_place_with_no_clone_per_request() {
        let (svc, clones) = probe(0);
        let conn = PerConnection::new(svc);
        let at_start = clones.load(Ordering::SeqCst);
        for i in 0..5 {
            assert_eq!(conn.call(i).await, Ok(i * 2));
        }
        assert_eq!(clones.load(Ordering::SeqCst), at_start, "no clone per request");
    }

    #[tokio::test]
    async fn a_service_that_is_not_ready_is_called_through_a_clone_and_still_answers() {
        // Never ready at the first poll of a copy: every call takes the clone-and-wait path.
        let (svc, clones) = probe(1);
        let conn = PerConnection::new(svc);
        let at_start = clones.load(Ordering::SeqCst);
        assert_eq!(conn.call(21).await, Ok(42));
        assert_eq!(clones.load(Ordering::SeqCst), at_start + 1, "one clone for the waiting call");
    }
}
