//! `grpc-bench GATEWAY_BINARY [SECONDS]`: the gateway's native gRPC path against calling the node directly,
//! on loopback, in one run (`scripts/bench-grpc.sh` builds and runs it).
//!
//! The upstream is a canned gRPC sink (hyper HTTP/2, one thread): every call gets the same framed
//! `GetChainMetaResponse` and `grpc-status: 0`, fast enough that what is measured is the hop in front of it.
//! The gateway runs with one serving thread (`--worker-threads 1`; its gRPC connections are served there, as
//! web3 ones are), its gRPC upstream the sink and its web3 upstream the JSON-RPC sink (for health). The load is tonic's gRPC client, `GetChainMeta` on one HTTP/2 connection:
//! 1. maximum throughput: 32 calls in flight for SECONDS (default 8);
//! 2. latency at a fixed rate: 50 % of the gateway's maximum for SECONDS, each call's latency measured from
//!    its intended send time (no coordinated omission), p50/p99/p99.9 from an HdrHistogram.
//!
//! Both runs go once to the sink directly and once through the gateway; the gateway's CPU per call comes from
//! its `/proc/PID/stat` (utime + stime) around each run. Every call is distinct work for the gateway (unary
//! gRPC calls are never cached or coalesced). Prints a table and the ratios; asserts nothing.

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::convert::Infallible;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// A request or answer message whose fields are not read (prost skips unknown fields).
#[derive(Clone, PartialEq, prost::Message)]
struct Opaque {}

/// `GetChainMetaResponse { chainMeta { height: 123456, numActions: 789, epoch {num: 12} } }`, framed.
fn canned_answer() -> Bytes {
    let meta: &[u8] = &[0x08, 0xc0, 0xc4, 0x07, 0x10, 0x95, 0x06, 0x22, 0x02, 0x08, 0x0c];
    let mut msg = vec![0x0a, u8::try_from(meta.len()).unwrap_or(0)];
    msg.extend_from_slice(meta);
    let mut out = vec![0u8];
    out.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&msg);
    Bytes::from(out)
}

/// Serves the canned answer to every gRPC call on `listener` (HTTP/2 cleartext), on the current runtime.
async fn grpc_sink(listener: tokio::net::TcpListener) {
    let answer = canned_answer();
    // Bounded by the process: the bench kills nothing here, it exits when done.
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let answer = answer.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let frames = vec![Ok::<_, Infallible>(Frame::data(answer)), Ok(Frame::trailers(trailers))];
                    let mut resp = hyper::Response::new(StreamBody::new(futures::stream::iter(frames)));
                    resp.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// One gRPC client connection and the call the bench makes.
#[derive(Clone)]
struct Caller(tonic::client::Grpc<tonic::transport::Channel>);

impl Caller {
    async fn connect(url: &str) -> anyhow::Result<Caller> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?.connect().await?;
        Ok(Caller(tonic::client::Grpc::new(channel)))
    }

    async fn call(&mut self) -> Result<(), tonic::Status> {
        self.0.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<Opaque, Opaque>::default();
        let path = http::uri::PathAndQuery::from_static("/iotexapi.APIService/GetChainMeta");
        self.0.unary(tonic::Request::new(Opaque {}), path, codec).await.map(|_| ())
    }
}

/// What one run measured.
struct Run {
    calls: u64,
    errors: u64,
    secs: f64,
    latency: hdrhistogram::Histogram<u64>,
}

/// `concurrency` callers in a closed loop for `dur`.
async fn max_run(caller: &Caller, concurrency: usize, dur: Duration) -> anyhow::Result<Run> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut c = caller.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let (mut ok, mut err) = (0u64, 0u64);
            while start.elapsed() < dur {
                let t = Instant::now();
                match c.call().await {
                    Ok(()) => ok += 1,
                    Err(_) => err += 1,
                }
                h.saturating_record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            anyhow::Ok((ok, err, h))
        }));
    }
    let mut run =
        Run { calls: 0, errors: 0, secs: 0.0, latency: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)? };
    for t in tasks {
        let (ok, err, h) = t.await??;
        run.calls += ok;
        run.errors += err;
        run.latency.add(h)?;
    }
    run.secs = start.elapsed().as_secs_f64();
    Ok(run)
}

/// `rate` calls per second for `dur`, each timed from its intended send time; at most 1,024 in flight.
async fn fixed_run(caller: &Caller, rate: f64, dur: Duration) -> anyhow::Result<Run> {
    let total = (rate * dur.as_secs_f64()) as u64;
    let gap = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = tokio::time::Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(1024));
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        let intended = start + gap * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(intended).await;
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let mut c = caller.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.call().await;
            drop(permit);
            (r.is_ok(), intended.elapsed())
        }));
    }
    let mut run =
        Run { calls: 0, errors: 0, secs: 0.0, latency: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)? };
    for t in tasks {
        let (ok, lat) = t.await?;
        if ok {
            run.calls += 1
        } else {
            run.errors += 1
        }
        run.latency.saturating_record(u64::try_from(lat.as_micros()).unwrap_or(u64::MAX));
    }
    run.secs = start.elapsed().as_secs_f64();
    Ok(run)
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(ticks as f64 / clock_ticks() as f64)
}

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Runs `f` and returns its result with the CPU seconds `pid` spent meanwhile (0 without a pid).
async fn with_cpu<F: std::future::Future<Output = anyhow::Result<Run>>>(
    pid: Option<u32>,
    f: F,
) -> anyhow::Result<(Run, f64)> {
    let before = pid.map(cpu_secs).transpose()?.unwrap_or(0.0);
    let run = f.await?;
    let after = pid.map(cpu_secs).transpose()?.unwrap_or(0.0);
    Ok((run, after - before))
}

fn row(name: &str, max: &(Run, f64), fixed: &(Run, f64)) {
    let per_call = |r: &(Run, f64)| {
        if r.1 > 0.0 && r.0.calls > 0 { format!("{:.1}", r.1 * 1e6 / r.0.calls as f64) } else { "-".into() }
    };
    let ms = |q: f64| fixed.0.latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:10} {:>9.0} {:>11} {:>8.3} {:>8.3} {:>8.3} {:>12} {:>6}",
        max.0.calls as f64 / max.0.secs,
        per_call(max),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        per_call(fixed),
        max.0.errors + fixed.0.errors
    );
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let gateway = args.next().ok_or_else(|| anyhow::anyhow!("usage: grpc-bench GATEWAY_BINARY [SECONDS]"))?;
    let secs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    anyhow::ensure!((1..=600).contains(&secs), "SECONDS must be 1 to 600");
    let dur = Duration::from_secs(secs);
    // The sinks on a thread of their own, so the load generator's runtime does not share theirs.
    let sink_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let grpc_l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let web3_l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let (grpc_addr, web3_addr) = (grpc_l.local_addr()?, web3_l.local_addr()?);
    grpc_l.set_nonblocking(true)?;
    web3_l.set_nonblocking(true)?;
    std::thread::spawn(move || {
        sink_rt.block_on(async move {
            let (Ok(g), Ok(w)) = (tokio::net::TcpListener::from_std(grpc_l), tokio::net::TcpListener::from_std(web3_l))
            else {
                return;
            };
            tokio::spawn(iotex_tests::sink::serve(w, iotex_tests::sink::Sink::new(), Arc::new(AtomicU64::new(0))));
            grpc_sink(g).await;
        });
    });
    // Free ports for the gateway's listeners (bound and released; loopback, nothing else races for them).
    let free =
        || -> anyhow::Result<std::net::SocketAddr> { Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?) };
    let (gw_grpc, gw_web3, gw_admin) = (free()?, free()?, free()?);
    let mut child = std::process::Command::new(&gateway)
        .args(["--listen", &gw_web3.to_string(), "--admin-listen", &gw_admin.to_string(), "--worker-threads", "1"])
        .args(["--grpc-listen", &gw_grpc.to_string(), "--health-interval", "1h", "--shutdown-delay", "0s"])
        .args([
            "--upstream",
            &format!("sink=http://{web3_addr}"),
            "--upstream-grpc",
            &format!("sink=http://{grpc_addr}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(std::env::temp_dir().join("grpc-bench-gateway.log"))?)
        .spawn()?;
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let result = rt.block_on(async {
        let direct = Caller::connect(&format!("http://{grpc_addr}")).await?;
        // The gateway is up once a call through it succeeds (bounded: 100 tries, 100 ms apart).
        let mut through = None;
        for _ in 0..100 {
            if let Ok(mut c) = Caller::connect(&format!("http://{gw_grpc}")).await
                && c.call().await.is_ok()
            {
                through = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let through = through.ok_or_else(|| {
            anyhow::anyhow!("the gateway never answered a gRPC call (its log: {})", std::env::temp_dir().join("grpc-bench-gateway.log").display())
        })?;
        let d_max = with_cpu(None, max_run(&direct, 32, dur)).await?;
        let g_max = with_cpu(Some(pid), max_run(&through, 32, dur)).await?;
        let rate = (g_max.0.calls as f64 / g_max.0.secs * 0.5).max(10.0);
        let d_fixed = with_cpu(None, fixed_run(&direct, rate, dur)).await?;
        let g_fixed = with_cpu(Some(pid), fixed_run(&through, rate, dur)).await?;
        println!("== gRPC GetChainMeta, one HTTP/2 connection, canned sink upstream; the gateway with --worker-threads 1");
        println!("{:10} {:>9} {:>11} {:>8} {:>8} {:>8} {:>12} {:>6}", "target", "max_rps", "cpu_us/call", "p50_ms", "p99_ms", "p999_ms", "cpu_us@fixed", "errors");
        row("direct", &d_max, &d_fixed);
        row("gateway", &g_max, &g_fixed);
        println!("   (latency and cpu@fixed at {rate:.0} calls/s = 50% of the gateway's max, from intended send times; max with 32 in flight)");
        let r = |a: &(Run, f64)| a.0.calls as f64 / a.0.secs;
        println!(
            "ratio: gateway/direct throughput {:.2}x, p99 at the fixed rate {:.2}x",
            r(&g_max) / r(&d_max),
            g_fixed.0.latency.value_at_quantile(0.99) as f64 / d_fixed.0.latency.value_at_quantile(0.99).max(1) as f64
        );
        anyhow::Ok(())
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}
