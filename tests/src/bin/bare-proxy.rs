//! `bare-proxy --listen ADDR --upstream URL [--threads N]`: the floor of this stack, for
//! `scripts/bench-gateway.sh`.
//!
//! The least a hyper reverse proxy can do per call: hyper's HTTP/1.1 server, the body collected, sent
//! unchanged to the upstream through hyper-util's pooled keep-alive client, the answer collected and sent
//! back. No parsing, no policy, no metrics, no retries. Each of N threads runs its own current-thread tokio
//! runtime with its own client pool and accepts on its own `SO_REUSEPORT` socket, so a call never leaves the
//! thread that accepted it (the gateway's serving threads have the same property). Whatever the gateway costs
//! above this binary is the gateway; what this binary costs above nginx is the stack (hyper, tokio, the
//! kernel calls they make).

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;

type Pool = Client<HttpConnector, Full<Bytes>>;

#[derive(clap::Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Upstream URL every call is sent to.
    #[arg(long)]
    upstream: http::Uri,
    /// Serving threads (one runtime and one client pool each).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let threads = (0..args.threads.max(1))
        .map(|_| {
            let (listen, upstream) = (args.listen, args.upstream.clone());
            std::thread::spawn(move || serve_thread(listen, upstream))
        })
        .collect::<Vec<_>>();
    println!("listening on {}", args.listen);
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("serving thread panicked"))??;
    }
    Ok(())
}

fn serve_thread(listen: SocketAddr, upstream: http::Uri) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let socket = if listen.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseport(true)?;
        socket.set_reuseaddr(true)?;
        socket.bind(listen)?;
        let listener = socket.listen(1024)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pool: Pool = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (pool, upstream) = (pool.clone(), upstream.clone());
            let svc = hyper::service::service_fn(move |req| forward(pool.clone(), upstream.clone(), req));
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    })
}

async fn forward(pool: Pool, upstream: http::Uri, req: Request<Incoming>) -> anyhow::Result<Response<Full<Bytes>>> {
    let body = req.into_body().collect().await?.to_bytes();
    let out = Request::post(upstream).header(header::CONTENT_TYPE, "application/json").body(Full::new(body))?;
    Ok(match pool.request(out).await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            let mut r = Response::new(Full::new(body));
            *r.status_mut() = status;
            r.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            r
        }
        Err(_) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    })
}
