//! Accept loop and graceful shutdown, shared by the JSON-RPC and admin listeners.
//!
//! Each connection is served by hyper (HTTP/1.1 keep-alive, or HTTP/2 with prior knowledge) with the peer's
//! address put in the request's extensions as [`ClientAddr`]. On stop, the listener is closed at once, idle
//! keep-alive connections are told to close, and requests in flight get the grace period to finish; what is
//! still open after that is cut and counted.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
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

/// Serves `service` on `listener` until `stop` is cancelled, then drains for up to `grace`.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    stop: CancellationToken,
    grace: Duration,
    name: &'static str,
) -> ServeReport
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut report = ServeReport::default();
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
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let hyper_svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            svc.clone().oneshot(req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), hyper_svc).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Client resets and half-closed sockets end up here; they are the client's business.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
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
