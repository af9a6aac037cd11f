//! IoTeX node limits and node-local state, against real anvil nodes: client batches larger than a node's
//! cap (100) are split across nodes and reassembled in order; filters stay on the node that created them.

use iotex_tests::eventually;
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::nodes::Node;
use serde_json::{Value, json};
use std::time::Duration;

async fn upstream_requests(g: &RunningGateway, names: &[&str]) -> anyhow::Result<Vec<f64>> {
    let m = g.metrics().await?;
    Ok(names
        .iter()
        .map(|n| {
            ["ok", "rpc_error"]
                .iter()
                .filter_map(|o| {
                    sample(&m, &format!("iotex_gateway_upstream_requests_total{{outcome=\"{o}\",upstream=\"{n}\"}}"))
                })
                .sum()
        })
        .collect())
}

#[tokio::test]
async fn a_batch_over_the_node_cap_is_split_across_nodes_and_reassembled_in_order() -> anyhow::Result<()> {
    let nodes = [Node::anvil(&[]).await?, Node::anvil(&[]).await?, Node::anvil(&[]).await?];
    let names = ["n0", "n1", "n2"];
    let mut b = TestGateway::new().arg("--health-interval", "1h");
    for (n, node) in names.iter().zip(&nodes) {
        b = b.upstream(n, &node.url);
    }
    // Probes once at start (1h interval), so the request counters below count client traffic only.
    let g = b.spawn().await?;
    let before = upstream_requests(&g, &names).await?;

    // 250 items: ids of every JSON type a client may use (numbers, strings, null, repeats), one
    // notification, one invalid item and one denied method in the middle.
    let mut items = Vec::new();
    for i in 0..250u64 {
        let id = match i % 4 {
            0 => json!(i),
            1 => json!(format!("s{i}")),
            2 => json!(null),
            _ => json!(7),
        };
        let addr = format!("0x{:040x}", i + 1);
        items.push(json!({"jsonrpc": "2.0", "id": id, "method": "eth_getBalance", "params": [addr, "latest"]}));
    }
    items.insert(100, json!({"jsonrpc": "2.0", "method": "eth_chainId", "params": []}));
    items.insert(200, json!({"jsonrpc": "2.0", "id": "bad"}));
    items.insert(220, json!({"jsonrpc": "2.0", "id": "denied", "method": "evm_mine", "params": []}));
    let reply = g.client().post(&g.url, serde_json::to_vec(&items)?).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answers: Vec<Value> = serde_json::from_slice(&reply.body)?;
    let expected: Vec<&Value> = items.iter().filter(|i| i.get("id").is_some()).collect();
    assert_eq!(answers.len(), expected.len(), "one answer per non-notification, none for the notification");
    for (want, got) in expected.iter().zip(&answers) {
        assert_eq!(got["id"], want["id"], "answers keep the batch's order and ids");
        match want.get("method").and_then(Value::as_str) {
            Some("eth_getBalance") => assert_eq!(got["result"], json!("0x0"), "{got}"),
            Some("evm_mine") => assert_eq!(got["error"]["code"], json!(-32601), "{got}"),
            _ => assert_eq!(got["error"]["code"], json!(-32600), "{got}"),
        }
    }

    // 251 reads in sub-batches of at most 100: three upstream requests, not 251, over at least two nodes.
    let after = upstream_requests(&g, &names).await?;
    let sent: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(sent.iter().sum::<f64>(), 3.0, "upstream requests per node: {sent:?}");
    assert!(sent.iter().filter(|n| **n > 0.0).count() >= 2, "sub-batches all went to one node: {sent:?}");
    let m = g.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_batch_splits_total"), Some(1.0));
    assert_eq!(sample(&m, "iotex_gateway_requests_total{method=\"eth_getBalance\",outcome=\"ok\"}"), Some(250.0));

    // A batch within the cap goes to one node as one request.
    let small: Vec<Value> =
        (0..50).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": []})).collect();
    let reply = g.client().post(&g.url, serde_json::to_vec(&small)?).await?;
    let answers: Vec<Value> = serde_json::from_slice(&reply.body)?;
    assert_eq!(answers.len(), 50);
    assert!(answers.iter().enumerate().all(|(i, a)| a["id"] == json!(i) && a["result"].is_string()));
    let again = upstream_requests(&g, &names).await?;
    assert_eq!(again.iter().sum::<f64>() - after.iter().sum::<f64>(), 1.0);
    Ok(())
}

async fn rpc(g: &RunningGateway, method: &str, params: Value) -> anyhow::Result<Value> {
    g.client().rpc(&g.url, json!(1), method, params).await
}

#[tokio::test]
async fn filters_stay_on_the_node_that_created_them_and_a_lost_node_gives_a_clear_error() -> anyhow::Result<()> {
    let mut a = Node::anvil(&[]).await?;
    let b = Node::anvil(&[]).await?;
    let g = TestGateway::new().upstream("a", &a.url).upstream("b", &b.url).spawn().await?;

    // Filters until both nodes hold some (the balancer spreads creations; the route tag tells them apart).
    // Concurrent waves, so in-flight counts make the balancer use both nodes.
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..10 {
        let wave = futures::future::join_all((0..8).map(|_| rpc(&g, "eth_newBlockFilter", json!([])))).await;
        for r in wave {
            let r = r?;
            let id = r["result"].as_str().ok_or_else(|| anyhow::anyhow!("no filter id: {r}"))?.to_owned();
            assert!(id.starts_with("0x") && id.len() > 18, "the id carries the node's route tag: {id}");
            ids.push(id);
        }
        if ids.iter().any(|i| i[..18] != ids[0][..18]) {
            break;
        }
    }
    let log_filter = rpc(&g, "eth_newFilter", json!([{"fromBlock": "0x0"}])).await?["result"].clone();
    assert!(log_filter.is_string(), "{log_filter}");
    a.mine(2).await?;
    b.mine(2).await?;

    // Every call on every filter reaches its own node, however often it is asked (a wrong node would
    // answer "filter not found").
    for _ in 0..3 {
        for id in &ids {
            let r = rpc(&g, "eth_getFilterChanges", json!([id])).await?;
            let hashes = r["result"].as_array().ok_or_else(|| anyhow::anyhow!("{id}: {r}"))?;
            assert!(!hashes.is_empty() || r["error"].is_null(), "{id}: {r}");
        }
    }
    let logs = rpc(&g, "eth_getFilterLogs", json!([log_filter])).await?;
    assert!(logs["result"].is_array(), "{logs}");
    assert_eq!(rpc(&g, "eth_uninstallFilter", json!([ids[0]])).await?["result"], json!(true));

    // An id this gateway never issued names no node.
    let r = rpc(&g, "eth_getFilterChanges", json!(["0x1234"])).await?;
    assert_eq!(r["error"]["code"], json!(-32000), "{r}");
    assert!(r["error"]["message"].as_str().unwrap_or("").contains("filter not found"), "{r}");

    // The node holding some filters dies: calls on its filters say the filter is lost, by name; the
    // others keep working.
    a.kill();
    g.wait_state("a", "down", Duration::from_secs(10)).await?;
    let mut lost = 0usize;
    for id in &ids[1..] {
        let r = rpc(&g, "eth_getFilterChanges", json!([id])).await?;
        if r["result"].is_array() {
            continue;
        }
        assert_eq!(r["error"]["code"], json!(-32000), "{r}");
        let msg = r["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("filter not found") && msg.contains("(a)"), "{r}");
        lost += 1;
    }
    assert!(lost > 0 && lost < ids.len() - 1, "{lost} of {} filters lost; both nodes held some", ids.len() - 1);
    let m = g.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_filters_lost_total"), Some(lost as f64));
    Ok(())
}

#[tokio::test]
async fn a_node_that_forgot_its_filters_answers_for_itself_through_the_gateway() -> anyhow::Result<()> {
    let mut a = Node::anvil(&[]).await?;
    let port = a.port;
    let g = TestGateway::new().upstream("a", &a.url).spawn().await?;
    let id = rpc(&g, "eth_newBlockFilter", json!([])).await?["result"].clone();
    // Restarted at the same address: the same route tag, but an empty memory.
    a.kill();
    g.wait_state("a", "down", Duration::from_secs(10)).await?;
    let _a = Node::anvil_on(Some(port), &[]).await?;
    g.wait_state("a", "up", Duration::from_secs(10)).await?;
    let r = eventually(Duration::from_secs(10), "the node's own answer", || async {
        let r = rpc(&g, "eth_getFilterChanges", json!([id])).await.ok()?;
        r.get("error").is_some().then_some(r)
    })
    .await?;
    let msg = r["error"]["message"].as_str().unwrap_or("").to_ascii_lowercase();
    assert!(msg.contains("filter") && msg.contains("not found"), "{r}");
    Ok(())
}
