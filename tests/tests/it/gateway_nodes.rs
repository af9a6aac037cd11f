//! The gateway in front of real, independently written nodes (anvil ×3, ganache ×1 unless said otherwise).
//!
//! Dev nodes do not gossip: each is its own chain from the same genesis. Tests that send a transaction
//! relay the same raw bytes to the other nodes themselves, as IoTeX's P2P would, or use `--tx-broadcast`.

use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::load::{Calls, Load, LoadPlan};
use iotex_tests::nodes::{DEV_ADDRESSES, Node, parse_quantity};
use serde_json::json;
use std::time::Duration;

async fn cluster(anvil_args: &[&str]) -> anyhow::Result<Vec<Node>> {
    let (a, b, c, g) = tokio::try_join!(
        Node::anvil(anvil_args),
        Node::anvil(anvil_args),
        Node::anvil(anvil_args),
        Node::ganache(&[])
    )?;
    Ok(vec![a, b, c, g])
}

fn names() -> [&'static str; 4] {
    ["anvil0", "anvil1", "anvil2", "ganache"]
}

fn gateway_over(nodes: &[Node]) -> TestGateway {
    nodes.iter().zip(names()).fold(TestGateway::new(), |g, (n, name)| g.upstream(name, &n.url))
}

#[tokio::test]
async fn calls_are_spread_across_every_real_node() -> anyhow::Result<()> {
    let nodes = cluster(&[]).await?;
    // Every call must reach a node to show the spread: no answer reuse (tested in gateway_cache.rs).
    let gw = gateway_over(&nodes).arg("--coalesce", "false").arg("--cache-max-bytes", "0").spawn().await?;
    let c = gw.client();
    // 16 concurrent callers, 25 calls each: enough that in-flight counts steer P2C onto every node.
    let results = futures::future::join_all((0..16).map(|_| {
        let c = c.clone();
        let url = gw.url.clone();
        async move {
            let mut ok = 0;
            for _ in 0..25 {
                if c.call(&url, "eth_chainId", json!([])).await.ok() == Some(json!("0x1251")) {
                    ok += 1;
                }
            }
            ok
        }
    }))
    .await;
    assert_eq!(results.iter().sum::<i32>(), 400);
    let status = gw.status().await?;
    for u in status["upstreams"].as_array().cloned().unwrap_or_default() {
        assert!(u["requests"].as_u64().unwrap_or(0) > 0, "upstream {} got no calls: {status}", u["name"]);
        assert_eq!(u["url"].as_str().map(|s| s.starts_with("http://127.0.0.1:")), Some(true));
    }
    Ok(())
}

#[tokio::test]
async fn a_node_50_blocks_behind_is_excluded_and_readmitted_when_it_catches_up() -> anyhow::Result<()> {
    let nodes = cluster(&[]).await?;
    let gw = gateway_over(&nodes).arg("--max-lag-blocks", "10").spawn().await?;
    // Everyone but anvil2 moves 60 blocks ahead.
    tokio::try_join!(nodes[0].mine(60), nodes[1].mine(60), nodes[3].mine(60))?;
    gw.wait_state("anvil2", "lagging", Duration::from_secs(15)).await?;
    let status = gw.status().await?;
    assert_eq!(status["best_head"], 60);
    let m = gw.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_upstream_up{upstream=\"anvil2\"}"), Some(0.0));
    assert_eq!(sample(&m, "iotex_gateway_upstream_lag_blocks{upstream=\"anvil2\"}"), Some(60.0));
    assert_eq!(sample(&m, "iotex_gateway_best_head_block"), Some(60.0));
    // No call is answered from the stale node.
    let c = gw.client();
    for _ in 0..40 {
        let head = parse_quantity(&c.call(&gw.url, "eth_blockNumber", json!([])).await?)?;
        assert!(head >= 60, "answered from the lagging node: {head}");
    }
    // Within max-lag but above readmit-lag (5): still out.
    nodes[2].mine(52).await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // several probe rounds at 100 ms
    assert_eq!(gw.state_of("anvil2").await?, "lagging", "hysteresis: 8 behind must not readmit");
    nodes[2].mine(6).await?;
    gw.wait_state("anvil2", "up", Duration::from_secs(15)).await?;
    Ok(())
}

#[tokio::test]
async fn a_killed_node_and_a_hung_node_cause_no_client_visible_errors() -> anyhow::Result<()> {
    let mut nodes = cluster(&[]).await?;
    let gw = gateway_over(&nodes)
        .arg("--attempt-timeout", "300ms")
        .arg("--probe-timeout", "300ms")
        .arg("--eject-after-failures", "2")
        .spawn()
        .await?;
    // 8 readers, at most 5,000 calls each and 60 s.
    let calls: Calls = |w, _| ("eth_getBalance", json!([DEV_ADDRESSES[w % 5], "latest"]));
    let load = Load::start(
        &gw.url,
        LoadPlan { max_calls: 5_000, max_time: Duration::from_secs(60), ..LoadPlan::new(8, calls) },
    );
    let more = Duration::from_secs(30);
    load.more(200, more).await?;
    nodes[0].kill();
    load.more(300, more).await?;
    nodes[1].pause()?;
    let after_pause = load.ok();
    load.more(300, more).await?;
    gw.wait_state("anvil0", "down", Duration::from_secs(10)).await?;
    iotex_tests::eventually(Duration::from_secs(10), "hung node out of rotation", || async {
        let s = gw.state_of("anvil1").await.ok()?;
        (s == "down" || s == "ejected").then_some(())
    })
    .await?;
    load.more(100, more).await?;
    let (ok, errs) = load.stop().await;
    assert_eq!(errs.len(), 0, "client-visible errors: {:?}", &errs[..errs.len().min(5)]);
    assert!(ok >= after_pause + 300);
    // The hung node resumes and comes back without a restart of anything.
    nodes[1].resume()?;
    gw.wait_state("anvil1", "up", Duration::from_secs(40)).await?;
    Ok(())
}

#[tokio::test]
async fn all_nodes_down_gives_a_prompt_503_and_recovery_needs_no_restart() -> anyhow::Result<()> {
    let (mut a, mut b) = tokio::try_join!(Node::anvil(&[]), Node::anvil(&[]))?;
    let (pa, pb) = (a.port, b.port);
    let gw =
        TestGateway::new().upstream("a", &a.url).upstream("b", &b.url).arg("--request-timeout", "3s").spawn().await?;
    a.kill();
    b.kill();
    let c = gw.client();
    let readyz = format!("{}/readyz", gw.admin);
    iotex_tests::eventually(Duration::from_secs(10), "/readyz 503", || {
        let c = c.clone();
        let u = readyz.clone();
        async move { c.get(&u).await.ok().filter(|r| r.status == 503).map(|_| ()) }
    })
    .await?;
    let started = std::time::Instant::now();
    let r = c.post(&gw.url, r#"{"jsonrpc":"2.0","id":9,"method":"eth_blockNumber","params":[]}"#).await?;
    assert!(started.elapsed() < Duration::from_secs(3), "must answer within the request timeout, never hang");
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["id"], 9);
    assert_eq!(v["error"]["code"], -32002);
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("no healthy upstream"), "{v}");
    assert!(c.get(&readyz).await?.text().contains("no routable upstream"));
    // Bring them back on the same addresses: the gateway notices by itself.
    let (_a2, _b2) = tokio::try_join!(Node::anvil_on(Some(pa), &[]), Node::anvil_on(Some(pb), &[]))?;
    gw.wait_ready().await?;
    assert_eq!(c.call(&gw.url, "eth_chainId", json!([])).await?, json!("0x1251"));
    Ok(())
}

/// 0.01 ETH: what the transfers these tests send carry.
const TRANSFER_VALUE: &str = "0x2386f26fc10000";

fn keccak_hex(raw: &str) -> anyhow::Result<String> {
    let bytes = alloy_primitives::hex::decode(raw)?;
    Ok(format!("{:#x}", alloy_primitives::keccak256(bytes)))
}

async fn receipt_everywhere(gw: &RunningGateway, hash: &str, reads: usize) -> anyhow::Result<()> {
    let c = gw.client();
    for _ in 0..reads {
        let r = iotex_tests::eventually(Duration::from_secs(10), "receipt through the gateway", || {
            let c = c.clone();
            let url = gw.url.clone();
            let hash = hash.to_owned();
            async move { c.call(&url, "eth_getTransactionReceipt", json!([hash])).await.ok().filter(|r| !r.is_null()) }
        })
        .await?;
        assert_eq!(r["status"], "0x1", "{r}");
        assert_eq!(r["transactionHash"], hash);
    }
    Ok(())
}

#[tokio::test]
async fn a_signed_transaction_through_the_gateway_is_mined_and_its_receipt_read_back() -> anyhow::Result<()> {
    let nodes = cluster(&[]).await?;
    let gw = gateway_over(&nodes).spawn().await?;
    let raw = nodes[0].signed_transfer(1, 0, TRANSFER_VALUE).await?;
    let hash = gw.client().call(&gw.url, "eth_sendRawTransaction", json!([raw])).await?;
    assert_eq!(hash.as_str(), Some(keccak_hex(&raw)?.as_str()));
    // Relay as P2P would: every other node gets the same bytes (the one that already has it says so).
    for n in &nodes {
        let _ = n.rpc("eth_sendRawTransaction", json!([raw])).await;
    }
    receipt_everywhere(&gw, hash.as_str().unwrap_or_default(), 20).await
}

#[tokio::test]
async fn tx_broadcast_sends_the_raw_transaction_to_every_node() -> anyhow::Result<()> {
    let nodes = cluster(&[]).await?;
    // Broadcast skips a node health has taken out; a slow probe on a loaded machine (ganache, 100 ms) must not
    // be what decides whether every node gets the transaction.
    let gw = gateway_over(&nodes).arg("--tx-broadcast", "4").arg("--probe-timeout", "1s").spawn().await?;
    let raw = nodes[0].signed_transfer(2, 0, TRANSFER_VALUE).await?;
    let hash = gw.client().call(&gw.url, "eth_sendRawTransaction", json!([raw])).await?;
    let hash = hash.as_str().unwrap_or_default().to_owned();
    assert_eq!(hash, keccak_hex(&raw)?);
    // No relay by the test: each node must have it from the gateway alone.
    for n in &nodes {
        let h = hash.clone();
        iotex_tests::eventually(Duration::from_secs(10), "receipt on every node", || {
            let h = h.clone();
            async move { n.rpc("eth_getTransactionReceipt", json!([h])).await.ok().filter(|r| !r.is_null()) }
        })
        .await?;
    }
    receipt_everywhere(&gw, &hash, 10).await
}

#[tokio::test]
async fn resending_a_transaction_a_node_already_has_is_a_success() -> anyhow::Result<()> {
    // --no-mining keeps the transaction in the pool, so the second send meets "already imported".
    let node = Node::anvil(&["--no-mining"]).await?;
    let gw = TestGateway::new().upstream("a", &node.url).spawn().await?;
    let raw = node.signed_transfer(3, 0, TRANSFER_VALUE).await?;
    let c = gw.client();
    let first = c.call(&gw.url, "eth_sendRawTransaction", json!([raw])).await?;
    let direct = node.rpc("eth_sendRawTransaction", json!([raw])).await;
    assert!(direct.is_err(), "the node itself refuses the duplicate: {direct:?}");
    let second = c.call(&gw.url, "eth_sendRawTransaction", json!([raw])).await?;
    assert_eq!(first, second);
    assert_eq!(first.as_str(), Some(keccak_hex(&raw)?.as_str()));
    Ok(())
}

#[tokio::test]
async fn json_rpc_errors_from_a_healthy_node_are_passed_through_not_retried() -> anyhow::Result<()> {
    let nodes = cluster(&[]).await?;
    let gw = gateway_over(&nodes).spawn().await?;
    // Calling a contract-less address with a bad selector is fine; a revert needs code, so use an
    // invalid-params call every node rejects with a JSON-RPC error instead.
    let c = gw.client();
    let before = gw.metrics().await?;
    let r = c
        .post(&gw.url, r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["not-an-address","latest"]}"#)
        .await?;
    assert_eq!(r.status, 200);
    assert!(r.json()["error"].is_object(), "{}", r.text());
    let after = gw.metrics().await?;
    let retries = |m: &str| m.lines().filter(|l| l.starts_with("iotex_gateway_retries_total")).count();
    assert_eq!(retries(&before), retries(&after), "no retry series may appear for a node's own error");
    assert_eq!(
        sample(&after, "iotex_gateway_requests_total{method=\"eth_getBalance\",outcome=\"rpc_error\"}"),
        Some(1.0)
    );
    Ok(())
}
