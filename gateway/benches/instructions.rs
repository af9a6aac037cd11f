//! Instructions per proxied call, counted by callgrind (gungraun): a regression guard that machine load does
//! not move, unlike req/s.
//!
//! `scripts/bench-instructions.sh` (installs the pinned runner, then runs
//! `cargo bench -p iotex-gateway --bench instructions`).
//!
//! Each case drives the gateway's real request path in process — the whole tower stack of `stack.rs` (auth,
//! rate limit, WebSocket check, HTTP checks) and the JSON-RPC tier with its defaults (cache and coalescing
//! on) — built by `rpc_tier` from a default config, over real health probing and a real pooled client,
//! against a canned JSON-RPC upstream on loopback that runs on a thread of its own (so its work is not
//! counted). Setup (outside the count) starts everything and makes warm-up calls, so the pooled connection
//! is open and lazily initialised state exists; the counted part is one request through the stack on the
//! serving thread's current-thread runtime, the way `server.rs` serves it:
//! - `single`: `eth_getBalance` of a fresh address at `latest` (uncacheable; the distinct-call workload);
//! - `batch10`: a batch of ten such calls (one sub-batch to the node);
//! - `cache_hit`: `eth_getBalance` at a final block, answered from the cache;
//! - `denied`: `eth_sendTransaction`, refused by the default method policy;
//! - `floor`: the `single` call through what `tests/src/bin/bare-proxy.rs` does instead of the gateway (body
//!   collected, sent unchanged through a pooled hyper-util client, answer collected): the stack's own part of
//!   `single`, so `single - floor` is what the gateway adds.
//!
//! Only the benchmark function's thread is counted (the sink's thread shows 0 in the callgrind files under
//! `target/gungraun/`), and the count covers the stack from the request object on: hyper's parsing of the
//! client's bytes is not in it (the bare hyper proxy pays that too; `scripts/bench-gateway.sh` measures it).

// The gungraun macros generate public items without docs.
#![allow(missing_docs)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use iotex_gateway::config;
use iotex_gateway::metrics::Metrics;
use iotex_gateway::server::{ClientAddr, PerConnection};
use iotex_gateway::upstream::health::{self, UpstreamFactory};
use iotex_gateway::{RpcTier, health_config, rpc_tier, stack, upstream};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The gateway binary's allocator (`gateway/src/main.rs`), so the counts are the binary's. `floor` runs under
/// it too: its row is the stack with the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A fixed head the sink reports, so `cache_hit`'s block is final.
const HEAD: &str = "0x64";

/// The canned upstream: `eth_blockNumber` is the head, anything else `"0x1"`; batches item by item, ids echoed.
fn sink_answer(body: &[u8]) -> String {
    fn one(call: &serde_json::Value) -> serde_json::Value {
        let result = if call["method"] == "eth_blockNumber" { HEAD } else { "0x1" };
        serde_json::json!({"jsonrpc": "2.0", "id": call["id"], "result": result})
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => serde_json::Value::Array(items.iter().map(one).collect()).to_string(),
        Ok(call) => one(&call).to_string(),
        Err(_) => r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}"#.to_owned(),
    }
}

/// Starts the sink on its own thread and runtime; returns its address.
fn spawn_sink() -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = std_listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async move {
            let _ = std_listener.set_nonblocking(true);
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
            while let Ok((stream, _)) = listener.accept().await {
                let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    let mut resp = Response::new(Full::new(Bytes::from(sink_answer(&body))));
                    resp.headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                    Ok::<_, hyper::Error>(resp)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
                );
            }
        });
    });
    addr
}

/// A running gateway stack on the current thread, and the body of the counted call.
type Pool = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Running {
    rt: tokio::runtime::Runtime,
    /// The stack as one connection of `server.rs` holds it.
    svc: PerConnection<stack::RpcStack>,
    /// Set for the `floor` case: the bare proxy's client and the sink's URI.
    floor: Option<(Pool, http::Uri)>,
    body: Bytes,
    _keep: (health::Health, CancellationToken),
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Single,
    Batch10,
    CacheHit,
    Denied,
    Floor,
}

fn balance(id: usize, address: usize, block: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_getBalance","params":["0x{address:040x}","{block}"]}}"#)
}

fn body_for(case: Case, round: usize) -> Bytes {
    // Every round asks about other addresses, so nothing is cached or coalesced except where the case wants it.
    let base = (round + 1) * 1000;
    Bytes::from(match case {
        Case::Single | Case::Floor => balance(1, base, "latest"),
        Case::Batch10 => format!("[{}]", (0..10).map(|i| balance(i, base + i, "latest")).collect::<Vec<_>>().join(",")),
        Case::CacheHit => balance(1, 7, "0x10"),
        Case::Denied => r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[{}]}"#.to_owned(),
    })
}

impl Running {
    /// One request: through the bare proxy's forwarding for `floor`, else through the stack.
    async fn call(&self, body: Bytes) -> Response<Full<Bytes>> {
        match &self.floor {
            Some((pool, uri)) => bare_forward(pool, uri, Request::new(Full::new(body))).await,
            None => call(&self.svc, body).await,
        }
    }
}

/// One request, served the way `server.rs` serves it: the connection's copy of the stack, called in place.
async fn call(svc: &PerConnection<stack::RpcStack>, body: Bytes) -> Response<Full<Bytes>> {
    let mut req = Request::post("/").header("content-type", "application/json").body(Full::new(body));
    if let Ok(r) = req.as_mut() {
        r.extensions_mut().insert(ClientAddr(SocketAddr::from(([127, 0, 0, 1], 40000))));
    }
    let req = req.unwrap_or_else(|e| panic!("request: {e}"));
    match svc.call(req).await {
        Ok(resp) => resp,
        Err(e) => match e {},
    }
}

/// The bare proxy's forwarding of one request (tests/src/bin/bare-proxy.rs `forward`).
async fn bare_forward(pool: &Pool, upstream: &http::Uri, req: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes());
    let out = Request::post(upstream.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let resp = pool.request(out).await.unwrap_or_else(|e| panic!("floor call: {e}"));
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap_or_else(|e| panic!("floor body: {e}")).to_bytes();
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn setup(case: Case) -> Running {
    let sink = spawn_sink();
    let argv = [
        "iotex-gateway".to_owned(),
        "--upstream".to_owned(),
        format!("sink=http://{sink}"),
        "--worker-threads".to_owned(),
        "1".to_owned(),
        // The first probe round runs at once; no other round falls inside the counted call.
        "--health-interval".to_owned(),
        "1h".to_owned(),
    ];
    let cfg = config::load(argv).unwrap_or_else(|e| panic!("config: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let (svc, keep) = rt.block_on(async {
        let metrics = Arc::new(Metrics::new().unwrap_or_else(|e| panic!("metrics: {e}")));
        let factory = UpstreamFactory {
            max_in_flight: 64,
            serving_threads: 1,
            metrics: Arc::clone(&metrics),
            answers: iotex_gateway::upstream::answer::AnswerBudget::default_unmetered(),
        };
        let ups = cfg.live.upstreams.iter().filter_map(|u| factory.build(u).ok()).collect::<Vec<_>>();
        let health = health::spawn(ups, health_config(&cfg), factory);
        let mut view = health.view.clone();
        while view.borrow().routable.is_empty() {
            let _ = view.changed().await;
        }
        let stop = CancellationToken::new();
        let RpcTier { proxy, limiter, auth, ws } =
            rpc_tier(&cfg, &health, &metrics, &stop).unwrap_or_else(|e| panic!("tier: {e}"));
        (
            stack::build(
                proxy,
                auth,
                limiter,
                ws,
                stack::BodyLimits {
                    max_bytes: cfg.startup.max_body_bytes,
                    read_timeout: cfg.startup.clients.body_read_timeout,
                },
                metrics,
            ),
            (health, stop),
        )
    });
    // The serving thread's client pool, as `lib::serve` picks it.
    upstream::use_pool(1);
    let floor = matches!(case, Case::Floor).then(|| {
        let _guard = rt.enter();
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let pool = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        let uri: http::Uri = format!("http://{sink}/").parse().unwrap_or_else(|e| panic!("uri: {e}"));
        (pool, uri)
    });
    let running = Running { rt, svc: PerConnection::new(svc), floor, body: body_for(case, 3), _keep: keep };
    running.rt.block_on(async {
        for round in 0..3 {
            let resp = running.call(body_for(case, round)).await;
            assert!(resp.status().is_success() || matches!(case, Case::Denied), "warm-up: {}", resp.status());
        }
    });
    running
}

#[gungraun::library_benchmark]
#[bench::single(args = (Case::Single), setup = setup)]
#[bench::batch10(args = (Case::Batch10), setup = setup)]
#[bench::cache_hit(args = (Case::CacheHit), setup = setup)]
#[bench::denied(args = (Case::Denied), setup = setup)]
#[bench::floor(args = (Case::Floor), setup = setup)]
fn one_call(running: Running) -> (Running, Response<Full<Bytes>>) {
    let body = running.body.clone();
    let resp = running.rt.block_on(running.call(black_box(body)));
    // Returned, so dropping the runtime and the answer is not counted.
    (running, black_box(resp))
}

gungraun::library_benchmark_group!(name = proxied_call; benchmarks = one_call);
gungraun::main!(library_benchmark_groups = proxied_call);
