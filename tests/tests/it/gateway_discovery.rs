//! The upstream set changes while the gateway serves: DNS discovery (a loopback DNS server whose records the
//! test changes, in front of real anvil nodes sharing one port on different loopback addresses, as pods
//! behind a headless Service do) and config reload (file change and SIGHUP), with calls in flight throughout,
//! including the gRPC listener's method globs and CORS origins.

use iotex_tests::dns::TestDns;
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::load::{Load, LoadPlan};
use iotex_tests::nodes::{Node, free_port};
use iotex_tests::{eventually, replace_file};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

async fn members(g: &RunningGateway) -> Vec<(String, String)> {
    let s = g.status().await.unwrap_or_default();
    s["upstreams"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| (u["name"].as_str().unwrap_or("").to_owned(), u["state"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_members(g: &RunningGateway, want: &[&str]) -> anyhow::Result<()> {
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    eventually(WITHIN, &format!("members {want:?}, all up"), || {
        let want = want.clone();
        async move {
            let m = members(g).await;
            let mut names: Vec<String> = m.iter().map(|(n, _)| n.clone()).collect();
            names.sort();
            (names == want && m.iter().all(|(_, s)| s == "up")).then_some(())
        }
    })
    .await
}

/// Calls in a loop until stopped (one caller, back to back, at most 100,000 calls).
fn traffic(url: &str) -> Load {
    Load::start(url, LoadPlan::new(1, |_, _| ("eth_blockNumber", json!([]))))
}

/// Stops the traffic: every call must have succeeded; the number that did.
async fn finish(traffic: Load) -> anyhow::Result<u64> {
    let (ok, errors) = traffic.stop().await;
    let failed = errors.len();
    anyhow::ensure!(failed == 0, "{failed} calls failed during the change; first: {:?}", errors.first());
    Ok(ok)
}

#[tokio::test]
async fn dns_discovery_adds_and_removes_upstreams_as_records_change_without_failing_calls() -> anyhow::Result<()> {
    let port = free_port()?;
    let n1 = Node::anvil_at("127.0.0.1", Some(port), &[]).await?;
    let n2 = Node::anvil_at("127.0.0.2", Some(port), &[]).await?;
    let dns = TestDns::spawn().await?;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    dns.set("iotex-nodes.test", &[ip("127.0.0.1")]);
    let g = TestGateway::new()
        .arg("--upstream-dns", &format!("iotex-nodes.test:{port}"))
        .arg("--upstream-dns-server", &dns.addr.to_string())
        .arg("--upstream-dns-interval", "100ms")
        .spawn()
        .await?;
    let (a, b) = (format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}"));
    wait_members(&g, &[&a]).await?;
    let traffic = traffic(&g.url);

    // A pod becomes ready: its record appears and the gateway routes to it.
    dns.set("iotex-nodes.test", &[ip("127.0.0.1"), ip("127.0.0.2")]);
    wait_members(&g, &[&a, &b]).await?;
    let series = format!("iotex_gateway_upstream_requests_total{{outcome=\"ok\",upstream=\"{b}\"}}");
    eventually(WITHIN, "calls reach the discovered node", || async {
        (sample(&g.metrics().await.ok()?, &series)? > 0.0).then_some(())
    })
    .await?;

    // The first pod goes away: it leaves the set and its metric series go with it.
    dns.set("iotex-nodes.test", &[ip("127.0.0.2")]);
    wait_members(&g, &[&b]).await?;
    let m = g.metrics().await?;
    assert!(!m.contains(&format!("upstream=\"{a}\"")), "series of a removed upstream linger:\n{m}");
    assert_eq!(sample(&m, "iotex_gateway_upstreams"), Some(1.0));

    // DNS fails (NXDOMAIN mid-rollout): the last answer stays, and the failure is counted.
    let errors_before = sample(&m, "iotex_gateway_dns_lookups_total{result=\"error\"}").unwrap_or(0.0);
    dns.set("iotex-nodes.test", &[]);
    eventually(WITHIN, "a failed lookup is counted", || async {
        let m = g.metrics().await.ok()?;
        (sample(&m, "iotex_gateway_dns_lookups_total{result=\"error\"}")? > errors_before).then_some(())
    })
    .await?;
    assert_eq!(members(&g).await, vec![(b.clone(), "up".to_owned())]);

    let ok = finish(traffic).await?;
    assert!(ok > 0, "no calls went through during the changes");
    drop((n1, n2));
    Ok(())
}

/// A gateway configured by a file naming `node` as upstream `a`, polled every `poll`; ready and routing to `a`.
async fn config_gateway(path: &std::path::Path, node: &Node, poll: &str) -> anyhow::Result<RunningGateway> {
    replace_file(path, &format!("upstream = [\"a={}\"]\n", node.url))?;
    let g = TestGateway::new()
        .arg("--config", path.to_str().unwrap_or_default())
        .arg("--config-poll-interval", poll)
        .spawn()
        .await?;
    wait_members(&g, &["a"]).await?;
    Ok(g)
}

async fn reloads(g: &RunningGateway, result: &str) -> f64 {
    g.metric(&format!("iotex_gateway_config_reloads_total{{result=\"{result}\"}}")).await.unwrap_or(0.0)
}

#[tokio::test]
async fn a_changed_config_file_is_applied_live_and_an_invalid_one_is_rejected_and_the_old_kept() -> anyhow::Result<()> {
    let (n1, n2) = (Node::anvil(&[]).await?, Node::anvil(&[]).await?);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("gateway.toml");
    let g = config_gateway(&path, &n1, "100ms").await?;
    let c = g.client();
    assert!(c.call(&g.url, "eth_getBalance", json!([format!("0x{:040x}", 1), "latest"])).await.is_ok());
    let traffic = traffic(&g.url);

    // A second node and a method policy change arrive with one edit.
    replace_file(
        &path,
        &format!("upstream = [\"a={}\", \"b={}\"]\ndeny-method = [\"eth_getBalance\"]\n", n1.url, n2.url),
    )?;
    wait_members(&g, &["a", "b"]).await?;
    let denied = c.call(&g.url, "eth_getBalance", json!([format!("0x{:040x}", 1), "latest"])).await;
    assert!(denied.is_err_and(|e| e.to_string().contains("-32601")), "the reloaded deny list is not in force");
    assert!(reloads(&g, "applied").await >= 1.0);

    // An invalid edit: rejected, counted, and the running config stays in force.
    replace_file(&path, &format!("upstream = [\"a={}\"]\nmax-lag-blocks = 0\n", n1.url))?;
    eventually(WITHIN, "the invalid config is rejected", || async {
        (reloads(&g, "rejected").await >= 1.0).then_some(())
    })
    .await?;
    wait_members(&g, &["a", "b"]).await?;
    // Not TOML at all: the same.
    replace_file(&path, "upstream = [\n")?;
    eventually(WITHIN, "the unparsable config is rejected", || async {
        (reloads(&g, "rejected").await >= 2.0).then_some(())
    })
    .await?;
    wait_members(&g, &["a", "b"]).await?;

    let ok = finish(traffic).await?;
    assert!(ok > 0);
    Ok(())
}

#[tokio::test]
async fn sighup_reloads_the_config_file() -> anyhow::Result<()> {
    let (n1, n2) = (Node::anvil(&[]).await?, Node::anvil(&[]).await?);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("gateway.toml");
    // Polling off: only the signal can make the gateway notice.
    let g = config_gateway(&path, &n1, "0s").await?;
    replace_file(&path, &format!("upstream = [\"b={}\"]\n", n2.url))?;
    // The signal handler is installed once the gateway runs, so this reloads instead of killing the process.
    nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGHUP)?;
    wait_members(&g, &["b"]).await?;
    assert!(reloads(&g, "applied").await >= 1.0);
    Ok(())
}

/// An empty protobuf message, for gRPC calls whose request and answer the test does not read.
#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

/// The status of a `GetChainMeta` call through the gateway's gRPC listener (no node has a gRPC port here, so
/// an allowed call ends `UNAVAILABLE` and a denied one `PERMISSION_DENIED`, before any node is asked).
async fn chain_meta_status(g: &RunningGateway) -> anyhow::Result<tonic::Code> {
    let channel = tonic::transport::Endpoint::from_shared(g.grpc.clone())?.connect().await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<Empty, Empty>::default();
    let path = http::uri::PathAndQuery::from_static("/iotexapi.APIService/GetChainMeta");
    let mut req = tonic::Request::new(Empty {});
    req.set_timeout(Duration::from_secs(10));
    Ok(grpc.unary(req, path, codec).await.map_or_else(|s| s.code(), |_| tonic::Code::Ok))
}

/// The status line of a gRPC-web CORS preflight from `origin` (HTTP/1.1 on the gRPC listener).
async fn preflight_status(g: &RunningGateway, origin: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = g.grpc.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "OPTIONS /iotexapi.APIService/GetChainMeta HTTP/1.1\r\nhost: {addr}\r\norigin: {origin}\r\n\
         access-control-request-method: POST\r\nconnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WITHIN, s.read(&mut buf)).await??;
    Ok(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_grpc_listeners_method_globs_and_cors_origins_are_reloaded_live() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("gateway.toml");
    let g = config_gateway(&path, &node, "100ms").await?;
    let origin = "https://explorer.example.com";
    assert_eq!(chain_meta_status(&g).await?, tonic::Code::Unavailable, "allowed: it looks for a node");
    assert!(preflight_status(&g, origin).await?.contains(" 403"), "no origin is listed yet");

    // One edit denies the method and lists the origin; calls from then on see both.
    let upstream = format!("upstream = [\"a={}\"]\n", node.url);
    replace_file(
        &path,
        &format!("{upstream}grpc-deny-method = [\"GetChain*\"]\ngrpc-web-cors-origin = [\"{origin}\"]\n"),
    )?;
    eventually(WITHIN, "the reloaded globs to deny GetChainMeta", || async {
        (chain_meta_status(&g).await.ok()? == tonic::Code::PermissionDenied).then_some(())
    })
    .await?;
    assert!(preflight_status(&g, origin).await?.contains(" 204"), "the reloaded origin is allowed");
    assert!(preflight_status(&g, "https://elsewhere.example").await?.contains(" 403"));

    // A glob that does not parse: the whole reload is rejected, and what runs stays in force.
    let rejected = reloads(&g, "rejected").await;
    replace_file(&path, &format!("{upstream}grpc-deny-method = [\"[\"]\n"))?;
    eventually(WITHIN, "the bad glob to be rejected", || async {
        (reloads(&g, "rejected").await > rejected).then_some(())
    })
    .await?;
    assert_eq!(chain_meta_status(&g).await?, tonic::Code::PermissionDenied, "the running globs stay");
    assert!(preflight_status(&g, origin).await?.contains(" 204"), "the running origins stay");

    // Back to none: allowed again, and no origin.
    replace_file(&path, &upstream)?;
    eventually(WITHIN, "GetChainMeta to be allowed again", || async {
        (chain_meta_status(&g).await.ok()? == tonic::Code::Unavailable).then_some(())
    })
    .await?;
    assert!(preflight_status(&g, origin).await?.contains(" 403"));
    Ok(())
}
