//! The finality-aware cache and in-flight coalescing, end to end: real anvil nodes where the chain matters
//! (receipts, mining), the counting mock where upstream traffic must be counted exactly or slowed down.
//!
//! Every cache test makes the same call again *after* the first answer, so a second upstream call can only
//! mean the answer was not cached; every coalescing test keeps the first call in flight (a slow mock) while
//! the others arrive.

use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::mock::{MockUpstream, Mode};
use iotex_tests::nodes::{DEV_ADDRESSES, Node};
use serde_json::{Value, json};
use std::time::Duration;

const ADDR: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const HASH: &str = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";

/// Makes the same call `n` times, one after another, and checks each answer carries its own id.
async fn repeat(g: &RunningGateway, n: u64, method: &str, params: Value) -> anyhow::Result<Vec<Value>> {
    let c = g.client();
    let mut out = Vec::new();
    for i in 0..n {
        let v = c.rpc(&g.url, json!(format!("call-{i}")), method, params.clone()).await?;
        assert_eq!(v["id"], json!(format!("call-{i}")), "{v}");
        out.push(v);
    }
    Ok(out)
}

async fn mock_gateway(head: u64, extra: &[(&str, &str)]) -> anyhow::Result<(MockUpstream, RunningGateway)> {
    let m = MockUpstream::spawn(head).await?;
    let mut t = TestGateway::new().upstream("a", &m.url);
    for (k, v) in extra {
        t = t.arg(k, v);
    }
    let g = t.spawn().await?;
    g.wait_state("a", "up", Duration::from_secs(10)).await?;
    Ok((m, g))
}

#[tokio::test]
async fn final_calls_reach_the_node_once_and_moving_ones_every_time() -> anyhow::Result<()> {
    let (m, g) = mock_gateway(100, &[]).await?;
    // Cacheable: chain id, by-hash lookups, by-number at or below the head, state at an explicit block.
    let cached: [(&str, Value); 6] = [
        ("eth_chainId", json!([])),
        ("net_version", json!([])),
        ("eth_getTransactionReceipt", json!([HASH])),
        ("eth_getBlockByNumber", json!(["0x10", true])),
        ("eth_getBalance", json!([ADDR, "0x5"])),
        ("eth_getLogs", json!([{"fromBlock": "0x1", "toBlock": "0x20"}])),
    ];
    for (method, params) in cached {
        let answers = repeat(&g, 5, method, params).await?;
        assert!(answers.iter().all(|a| a["result"] == json!(format!("mock:{method}"))), "{answers:?}");
        assert_eq!(m.seen(method), 1, "{method}: a final answer must be served from the cache");
    }
    // Whitespace and hex case do not make a different call.
    let c = g.client();
    let spaced = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"eth_getBalance","params":[ "{}" ,  "0x5" ]}}"#,
        ADDR.to_uppercase().replace("0X", "0x")
    );
    assert_eq!(c.post(&g.url, spaced).await?.json()["result"], "mock:eth_getBalance");
    assert_eq!(m.seen("eth_getBalance"), 1);
    let hits = g.metric("iotex_gateway_cache_hits_total{method=\"eth_getBalance\"}").await?;
    assert_eq!(hits, 5.0);
    assert_eq!(g.metric("iotex_gateway_cache_misses_total{method=\"eth_getBalance\"}").await?, 1.0);

    // Never cached: latest/pending tags, no block (means latest), head polling, gas price.
    let moving: [(&str, Value); 6] = [
        ("eth_getCode", json!([ADDR, "latest"])),
        ("eth_getStorageAt", json!([ADDR, "0x0", "pending"])),
        ("eth_getTransactionCount", json!([ADDR])),
        ("eth_getBlockTransactionCountByNumber", json!(["finalized"])),
        ("eth_blockNumber", json!([])),
        ("eth_gasPrice", json!([])),
    ];
    for (method, params) in moving {
        let before = m.seen(method);
        repeat(&g, 3, method, params).await?;
        // >=: health probes are eth_blockNumber calls too.
        assert!(m.seen(method) - before >= 3, "{method} must never be served from the cache");
    }
    let mx = g.metrics().await?;
    assert_eq!(sample(&mx, "iotex_gateway_cache_misses_total{method=\"eth_getCode\"}"), None, "latest is no miss");
    assert!(g.metric("iotex_gateway_cache_entries").await? >= 6.0);
    assert!(g.metric("iotex_gateway_cache_bytes").await? > 0.0);
    Ok(())
}

#[tokio::test]
async fn a_block_above_the_lowest_routable_head_is_not_cached() -> anyhow::Result<()> {
    let (hi, lo) = (MockUpstream::spawn(100).await?, MockUpstream::spawn(95).await?);
    let g = TestGateway::new().upstream("hi", &hi.url).upstream("lo", &lo.url).spawn().await?;
    g.wait_state("hi", "up", Duration::from_secs(10)).await?;
    g.wait_state("lo", "up", Duration::from_secs(10)).await?;
    let seen = || hi.seen("eth_getBlockByNumber") + lo.seen("eth_getBlockByNumber");
    repeat(&g, 4, "eth_getBlockByNumber", json!(["0x62", false])).await?; // 98: above lo's head
    assert_eq!(seen(), 4, "block 98 is not on every routable node yet");
    repeat(&g, 4, "eth_getBlockByNumber", json!(["0x5f", false])).await?; // 95: on both
    assert_eq!(seen(), 5, "block 95 is final on every routable node");
    // Once the lower node has it too, block 98 is cached.
    lo.set_head(100);
    iotex_tests::eventually(Duration::from_secs(10), "lo's head to be probed", || async {
        let s = g.status().await.ok()?;
        s["upstreams"].as_array()?.iter().any(|u| u["name"] == "lo" && u["head"] == 100).then_some(())
    })
    .await?;
    repeat(&g, 4, "eth_getBlockByNumber", json!(["0x62", false])).await?;
    assert_eq!(seen(), 6);
    Ok(())
}

#[tokio::test]
async fn errors_are_not_cached_and_reach_each_caller_with_its_id() -> anyhow::Result<()> {
    let (m, g) = mock_gateway(100, &[]).await?;
    m.traffic(Mode::RpcError("header not found".into()));
    let answers = repeat(&g, 3, "eth_getBlockByNumber", json!(["0x1", false])).await?;
    assert!(answers.iter().all(|a| a["error"]["message"] == "header not found"), "{answers:?}");
    assert_eq!(m.seen("eth_getBlockByNumber"), 3, "an error must not be cached");
    m.traffic(Mode::Normal);
    repeat(&g, 3, "eth_getBlockByNumber", json!(["0x1", false])).await?;
    assert_eq!(m.seen("eth_getBlockByNumber"), 4, "the first good answer is cached");
    Ok(())
}

#[tokio::test]
async fn the_byte_bound_evicts_and_counts_it() -> anyhow::Result<()> {
    let (m, g) = mock_gateway(1000, &[("--cache-max-bytes", "4096")]).await?;
    for n in 0..100u64 {
        repeat(&g, 1, "eth_getBlockByNumber", json!([format!("0x{n:x}"), false])).await?;
    }
    let mx = g.metrics().await?;
    assert!(sample(&mx, "iotex_gateway_cache_evictions_total").unwrap_or(0.0) > 0.0, "{mx}");
    let bytes = sample(&mx, "iotex_gateway_cache_bytes").unwrap_or(f64::MAX);
    assert!(bytes > 0.0 && bytes <= 4096.0, "cache holds {bytes} bytes");
    assert!(sample(&mx, "iotex_gateway_cache_entries").unwrap_or(100.0) < 100.0);
    // Asking for all 100 again: the evicted ones reach the node again, the kept ones do not.
    for n in 0..100u64 {
        repeat(&g, 1, "eth_getBlockByNumber", json!([format!("0x{n:x}"), false])).await?;
    }
    let again = m.seen("eth_getBlockByNumber") - 100;
    assert!(again > 0 && again < 100, "{again} of 100 were fetched again");
    Ok(())
}

#[tokio::test]
async fn cache_max_bytes_0_turns_the_cache_off() -> anyhow::Result<()> {
    let (m, g) = mock_gateway(100, &[("--cache-max-bytes", "0")]).await?;
    repeat(&g, 3, "eth_chainId", json!([])).await?;
    repeat(&g, 3, "eth_getTransactionReceipt", json!([HASH])).await?;
    assert_eq!(m.seen("eth_chainId"), 3);
    assert_eq!(m.seen("eth_getTransactionReceipt"), 3);
    assert!(!g.metrics().await?.contains("iotex_gateway_cache_hits_total{"));
    Ok(())
}

/// Fires `n` identical calls at once, each with its own id, and returns the answers in id order.
async fn burst(g: &RunningGateway, n: usize, method: &str, params: Value) -> anyhow::Result<Vec<Value>> {
    let c = g.client();
    let calls = (0..n).map(|i| c.rpc(&g.url, json!(i), method, params.clone()));
    futures::future::join_all(calls).await.into_iter().collect()
}

#[tokio::test]
async fn concurrent_identical_calls_share_one_upstream_call_unless_coalescing_is_off() -> anyhow::Result<()> {
    const N: usize = 16;
    for (coalesce, want) in [("true", 1), ("false", N as u64)] {
        // --cache-max-bytes 0 so that only coalescing can save calls; the mock holds each call 2 s, long
        // enough for every caller of the burst to arrive while the first is still in flight.
        let (m, g) =
            mock_gateway(100, &[("--cache-max-bytes", "0"), ("--coalesce", coalesce), ("--attempt-timeout", "4s")])
                .await?;
        m.traffic(Mode::Slow(Duration::from_secs(2)));
        let answers = burst(&g, N, "eth_getBalance", json!([ADDR, "latest"])).await?;
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(a["id"], json!(i), "each caller gets its own id: {a}");
            assert_eq!(a["result"], "mock:eth_getBalance", "{a}");
        }
        assert_eq!(m.seen("eth_getBalance"), want, "--coalesce {coalesce}");
        let joined = g.metric("iotex_gateway_coalesced_total{method=\"eth_getBalance\"}").await?;
        assert_eq!(joined, (N as u64 - want) as f64, "--coalesce {coalesce}");
        assert_eq!(g.metric("iotex_gateway_requests_total{method=\"eth_getBalance\",outcome=\"ok\"}").await?, N as f64);
    }
    Ok(())
}

#[tokio::test]
async fn a_shared_call_finishes_for_the_others_when_its_first_caller_disconnects() -> anyhow::Result<()> {
    let (m, g) = mock_gateway(100, &[("--cache-max-bytes", "0"), ("--attempt-timeout", "4s")]).await?;
    m.traffic(Mode::Slow(Duration::from_secs(2)));
    let leader = {
        let (c, url) = (g.client(), g.url.clone());
        tokio::spawn(async move { c.rpc(&url, json!("leader"), "eth_call", json!([{"to": ADDR}, "latest"])).await })
    };
    iotex_tests::eventually(Duration::from_secs(5), "the first call to reach the node", || async {
        (m.seen("eth_call") == 1).then_some(())
    })
    .await?;
    leader.abort(); // drops the client's connection mid-call
    let follower = g.client().rpc(&g.url, json!("follower"), "eth_call", json!([{"to": ADDR}, "latest"])).await?;
    assert_eq!(follower["id"], "follower");
    assert_eq!(follower["result"], "mock:eth_call");
    assert_eq!(m.seen("eth_call"), 1, "the follower joined the call its leader abandoned");
    Ok(())
}

#[tokio::test]
async fn transactions_and_filters_are_never_coalesced() -> anyhow::Result<()> {
    let (m, g) = mock_gateway(100, &[]).await?;
    m.traffic(Mode::Slow(Duration::from_millis(500)));
    // A filter id as the gateway hands it out for this node (its route tag, then the node's own id).
    let tag = iotex_gateway::filters::tag_of_url(&url::Url::parse(&m.url)?);
    let filter_id = iotex_gateway::filters::wrap(tag, "0x1").unwrap_or_default();
    for (method, params) in [
        ("eth_sendRawTransaction", json!(["0x00"])),
        ("eth_getFilterChanges", json!([filter_id])),
        ("eth_newBlockFilter", json!([])),
    ] {
        burst(&g, 4, method, params).await?;
        assert_eq!(m.seen(method), 4, "{method}");
    }
    Ok(())
}

const OK_ATTEMPTS: &str = "iotex_gateway_upstream_requests_total{outcome=\"ok\",upstream=\"a\"}";

#[tokio::test]
async fn a_receipt_is_not_cached_while_null_and_is_cached_once_mined() -> anyhow::Result<()> {
    // --no-mining: the transaction waits in the pool, so its receipt is null until the test mines.
    let node = Node::anvil(&["--no-mining"]).await?;
    let g = TestGateway::new().upstream("a", &node.url).spawn().await?;
    let hash = node.rpc("eth_sendRawTransaction", json!([node.signed_transfer(1, 0, "0x1").await?])).await?;
    let hash = hash.as_str().unwrap_or_default().to_owned();

    let before = g.metric(OK_ATTEMPTS).await?;
    for r in repeat(&g, 3, "eth_getTransactionReceipt", json!([hash])).await? {
        assert!(r["result"].is_null(), "{r}");
    }
    let tx = repeat(&g, 2, "eth_getTransactionByHash", json!([hash])).await?;
    assert!(tx[0]["result"]["blockNumber"].is_null(), "pending: {}", tx[0]);
    assert_eq!(g.metric(OK_ATTEMPTS).await? - before, 5.0, "null receipts and pending transactions are not kept");

    node.mine(1).await?;
    let mined = g.metric(OK_ATTEMPTS).await?;
    for r in repeat(&g, 10, "eth_getTransactionReceipt", json!([hash])).await? {
        assert_eq!(r["result"]["status"], "0x1", "{r}");
        assert_eq!(r["result"]["transactionHash"], json!(hash));
    }
    for r in repeat(&g, 10, "eth_getTransactionByHash", json!([hash])).await? {
        assert_eq!(r["result"]["blockNumber"], "0x1", "{r}");
    }
    assert_eq!(g.metric(OK_ATTEMPTS).await? - mined, 2.0, "each mined lookup reached the node once");
    Ok(())
}

#[tokio::test]
async fn cached_blocks_from_a_real_node_equal_the_nodes_own_answers() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    node.rpc("eth_sendRawTransaction", json!([node.signed_transfer(2, 0, "0x1").await?])).await?;
    node.mine(3).await?;
    let g = TestGateway::new().upstream("a", &node.url).spawn().await?;
    iotex_tests::eventually(Duration::from_secs(10), "the gateway to see head 4", || async {
        let s = g.status().await.ok()?;
        (s["upstreams"][0]["head"] == 4).then_some(())
    })
    .await?;
    let before = g.metric(OK_ATTEMPTS).await?;
    for (method, params) in [
        ("eth_getBlockByNumber", json!(["0x1", true])),
        ("eth_getBalance", json!([DEV_ADDRESSES[2], "0x1"])),
        ("eth_getLogs", json!([{"fromBlock": "0x0", "toBlock": "0x4"}])),
        ("eth_chainId", json!([])),
    ] {
        let direct = node.rpc(method, params.clone()).await?;
        for a in repeat(&g, 3, method, params).await? {
            assert_eq!(a["result"], direct, "{method}");
        }
    }
    assert_eq!(g.metric(OK_ATTEMPTS).await? - before, 4.0, "one upstream call per distinct final call");
    // `latest` still follows the chain.
    let latest = |g: &RunningGateway| {
        let c = g.client();
        let url = g.url.clone();
        async move { c.call(&url, "eth_getBlockByNumber", json!(["latest", false])).await }
    };
    assert_eq!(latest(&g).await?["number"], "0x4");
    node.mine(1).await?;
    assert_eq!(latest(&g).await?["number"], "0x5");
    Ok(())
}

/// Batch items take the sub-batch path to nodes; their final answers are cached and served from the cache
/// the next time, each under its own id, and a batch answered wholly from the cache sends nothing upstream.
#[tokio::test]
async fn batch_items_are_answered_from_the_cache_and_fill_it() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    node.mine(3).await?;
    // One probe at start (1 h interval): the upstream counters below count client traffic only.
    let g = TestGateway::new().upstream("a", &node.url).arg("--health-interval", "1h").spawn().await?;
    let sent = || async { g.metric(OK_ATTEMPTS).await.unwrap_or(0.0) };
    let batch = |tag: &str| {
        json!([
            {"jsonrpc": "2.0", "id": format!("{tag}-1"), "method": "eth_getBlockByNumber", "params": ["0x1", false]},
            {"jsonrpc": "2.0", "id": format!("{tag}-2"), "method": "eth_getBlockByNumber", "params": ["0x2", false]},
            {"jsonrpc": "2.0", "id": format!("{tag}-3"), "method": "eth_chainId", "params": []},
        ])
    };
    let c = g.client();
    let before = sent().await;
    let first: Vec<Value> =
        c.post(&g.url, serde_json::to_vec(&batch("a"))?).await?.json().as_array().cloned().unwrap_or_default();
    assert_eq!(sent().await - before, 1.0, "one sub-batch upstream");
    let second: Vec<Value> =
        c.post(&g.url, serde_json::to_vec(&batch("b"))?).await?.json().as_array().cloned().unwrap_or_default();
    assert_eq!(sent().await - before, 1.0, "the second batch came wholly from the cache");
    assert_eq!(second.len(), 3);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a["result"], b["result"], "cached answers equal the node's");
        assert!(b["id"].as_str().unwrap_or_default().starts_with("b-"), "each under its own id: {b}");
    }
    let hits = g.metric("iotex_gateway_cache_hits_total{method=\"eth_getBlockByNumber\"}").await?;
    assert!(hits >= 2.0, "{hits}");
    Ok(())
}

/// `coalesce` follows a config reload: switched off in the file while the gateway runs, the next burst of
/// identical calls reaches the node once per caller.
#[tokio::test]
async fn coalescing_is_switched_by_a_config_reload() -> anyhow::Result<()> {
    const N: usize = 8;
    let m = MockUpstream::spawn(100).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("gateway.toml");
    let write = |coalesce: bool| {
        let body = format!(
            "upstream = [\"a={}\"]\ncache-max-bytes = 0\nattempt-timeout = \"4s\"\ncoalesce = {coalesce}\n",
            m.url
        );
        iotex_tests::replace_file(&path, &body)
    };
    write(true)?;
    let g = TestGateway::new()
        .arg("--config", path.to_str().unwrap_or_default())
        .arg("--config-poll-interval", "100ms")
        .spawn()
        .await?;
    g.wait_state("a", "up", Duration::from_secs(10)).await?;
    m.traffic(Mode::Slow(Duration::from_secs(2)));
    burst(&g, N, "eth_getBalance", json!([ADDR, "latest"])).await?;
    assert_eq!(m.seen("eth_getBalance"), 1, "coalescing on at start");

    write(false)?;
    iotex_tests::eventually(Duration::from_secs(10), "the reload to be applied", || async {
        (g.metric("iotex_gateway_config_reloads_total{result=\"applied\"}").await.ok()? >= 1.0).then_some(())
    })
    .await?;
    burst(&g, N, "eth_getBalance", json!([ADDR, "latest"])).await?;
    assert_eq!(m.seen("eth_getBalance"), 1 + N as u64, "coalescing off after the reload");
    Ok(())
}
