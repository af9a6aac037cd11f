//! Every guard on the JSON-RPC listener, against hostile and malformed input, in front of a real anvil.

use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::nodes::Node;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup(extra: &[(&str, &str)]) -> anyhow::Result<(Node, RunningGateway)> {
    let node = Node::anvil(&[]).await?;
    let g = extra.iter().fold(TestGateway::new().upstream("anvil", &node.url), |g, (k, v)| g.arg(k, v));
    let gw = g.spawn().await?;
    Ok((node, gw))
}

#[tokio::test]
async fn denied_methods_get_minus_32601_and_never_reach_a_node() -> anyhow::Result<()> {
    let (node, gw) = setup(&[]).await?;
    let c = gw.client();
    for m in [
        "anvil_mine",
        "evm_mine",
        "debug_traceTransaction",
        "personal_sign",
        "eth_sendTransaction",
        "eth_sign",
        "admin_peers",
    ] {
        let r = c.post(&gw.url, json!({"jsonrpc":"2.0","id":5,"method":m,"params":[]}).to_string()).await?;
        assert_eq!(r.status, 200, "{m}");
        let v = r.json();
        assert_eq!(v["error"]["code"], -32601, "{m}: {v}");
        assert_eq!(v["id"], 5);
    }
    assert_eq!(node.block_number().await?, 0, "anvil_mine/evm_mine must not have been forwarded");
    let m = gw.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_requests_total{method=\"other\",outcome=\"denied\"}"), Some(7.0));
    Ok(())
}

#[tokio::test]
async fn an_allow_list_narrows_the_methods() -> anyhow::Result<()> {
    let (_node, gw) = setup(&[("--allow-method", "eth_*")]).await?;
    let c = gw.client();
    assert!(c.call(&gw.url, "eth_chainId", json!([])).await.is_ok());
    let e = c.call(&gw.url, "net_version", json!([])).await.unwrap_err().to_string();
    assert!(e.contains("-32601"), "{e}");
    Ok(())
}

#[tokio::test]
async fn malformed_and_invalid_bodies_get_the_spec_errors() -> anyhow::Result<()> {
    let (_node, gw) = setup(&[]).await?;
    let c = gw.client();
    let deep = "[".repeat(100_000);
    let cases: Vec<(Vec<u8>, u16, i64, Value)> = vec![
        (b"{\"jsonrpc\":".to_vec(), 400, -32700, Value::Null),
        (b"not json at all".to_vec(), 400, -32700, Value::Null),
        (b"".to_vec(), 400, -32700, Value::Null),
        (vec![0xff, 0xfe, b'{'], 400, -32700, Value::Null),
        (deep.into_bytes(), 400, -32700, Value::Null),
        (b"42".to_vec(), 400, -32600, Value::Null),
        (b"\"str\"".to_vec(), 400, -32600, Value::Null),
        (br#"{"jsonrpc":"2.0","id":1}"#.to_vec(), 400, -32600, json!(1)),
        (br#"{"jsonrpc":"1.0","id":"x","method":"eth_chainId"}"#.to_vec(), 400, -32600, json!("x")),
        (br#"{"jsonrpc":"2.0","id":{"evil":1},"method":"eth_chainId"}"#.to_vec(), 400, -32600, Value::Null),
        (br#"{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":7}"#.to_vec(), 400, -32600, json!(2)),
        (b"[]".to_vec(), 400, -32600, Value::Null),
    ];
    for (body, status, code, id) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let r = c.post(&gw.url, body).await?;
        assert_eq!(r.status, status, "{shown}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{shown}: {v}");
        assert_eq!(v["id"], id, "{shown}");
    }
    // GET is not JSON-RPC.
    let r = c.get(&gw.url).await?;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "POST");
    // The gateway is still serving after all that.
    assert_eq!(c.call(&gw.url, "eth_chainId", json!([])).await?, json!("0x1251"));
    Ok(())
}

#[tokio::test]
async fn batches_mixing_allowed_denied_malformed_items_and_notifications_keep_ids_and_order() -> anyhow::Result<()> {
    let (node, gw) = setup(&[]).await?;
    let body = r#"[
        {"jsonrpc":"2.0","id":"first","method":"eth_chainId","params":[]},
        {"jsonrpc":"2.0","id":2,"method":"anvil_mine","params":["0x5"]},
        {"foo":"bar"},
        5,
        {"jsonrpc":"2.0","method":"eth_blockNumber","params":[]},
        {"jsonrpc":"2.0","id":null,"method":"net_version","params":[]},
        {"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]}
    ]"#;
    let r = gw.client().post(&gw.url, body).await?;
    assert_eq!(r.status, 200);
    let v = r.json();
    let items = v.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 6, "the notification gets no answer: {v}");
    assert_eq!(items[0]["id"], "first");
    assert_eq!(items[0]["result"], "0x1251");
    assert_eq!(items[1]["id"], 2);
    assert_eq!(items[1]["error"]["code"], -32601);
    assert_eq!(items[2]["error"]["code"], -32600);
    assert!(items[2]["id"].is_null());
    assert_eq!(items[3]["error"]["code"], -32600);
    assert!(items[4]["id"].is_null());
    assert_eq!(items[4]["result"], "4689");
    assert_eq!(items[5]["id"], 7);
    assert!(items[5]["result"].as_str().is_some_and(|s| s.starts_with("0x")));
    assert_eq!(node.block_number().await?, 0, "the denied item must not reach the node");
    // Only notifications: no body at all.
    let r = gw.client().post(&gw.url, r#"[{"jsonrpc":"2.0","method":"eth_chainId"}]"#).await?;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = gw.client().post(&gw.url, r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#).await?;
    assert_eq!(r.status, 204);
    Ok(())
}

#[tokio::test]
async fn batch_and_body_size_caps() -> anyhow::Result<()> {
    let (_node, gw) = setup(&[("--max-batch-size", "3"), ("--max-body-bytes", "2048")]).await?;
    let c = gw.client();
    let item = json!({"jsonrpc":"2.0","id":1,"method":"eth_chainId"});
    let r = c.post(&gw.url, json!([item, item, item, item]).to_string()).await?;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["code"], -32600);
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("exceeds the limit of 3"));
    assert_eq!(c.post(&gw.url, json!([item, item, item]).to_string()).await?.json().as_array().map(Vec::len), Some(3));
    // Declared too large: refused before reading.
    let big =
        format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\",\"params\":[\"{}\"]}}", "a".repeat(4000));
    let r = c.post(&gw.url, big.clone()).await?;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], -32600);
    // Chunked with no length: refused once the cap is crossed while reading.
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await?;
    let mut req = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    for chunk in big.as_bytes().chunks(500) {
        req.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), String::from_utf8_lossy(chunk)));
    }
    req.push_str("0\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await??;
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let m = gw.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_http_rejected_total{reason=\"too_large\"}"), Some(2.0));
    Ok(())
}

#[tokio::test]
async fn per_client_rate_limit_answers_429_with_retry_after_and_minus_32005() -> anyhow::Result<()> {
    let (_node, gw) = setup(&[("--rate-limit-per-client", "1"), ("--rate-limit-burst", "3")]).await?;
    let c = gw.client();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(c.post(&gw.url, body).await?.status);
    }
    // The burst passes, then refusals (a slow machine may earn back one token meanwhile).
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().filter(|s| **s == 429).count() >= 2, "{statuses:?}");
    let r = c.post(&gw.url, body).await?;
    assert_eq!(r.status, 429);
    let retry_after: u64 = r.headers["retry-after"].to_str()?.parse()?;
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(r.json()["error"]["code"], -32005);
    // X-Forwarded-For is not believed from an untrusted peer: a spoofed header does not get a new bucket.
    let spoof = c
        .send(
            http::Method::POST,
            &gw.url,
            &[("content-type", "application/json"), ("x-forwarded-for", "203.0.113.7")],
            body,
        )
        .await?;
    assert_eq!(spoof.status, 429);
    let m = gw.metrics().await?;
    assert!(sample(&m, "iotex_gateway_rate_limited_total").unwrap_or(0.0) >= 4.0);
    // Admin endpoints are not rate limited.
    for _ in 0..10 {
        assert_eq!(c.get(&format!("{}/healthz", gw.admin)).await?.status, 200);
    }
    Ok(())
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_keys_the_limit_by_the_real_client() -> anyhow::Result<()> {
    let (_node, gw) =
        setup(&[("--rate-limit-per-client", "1"), ("--rate-limit-burst", "1"), ("--trusted-proxy", "127.0.0.0/8")])
            .await?;
    let c = gw.client();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#;
    let send = |ip: &'static str| {
        let c = c.clone();
        let url = gw.url.clone();
        async move { c.send(http::Method::POST, &url, &[("x-forwarded-for", ip)], body).await.map(|r| r.status) }
    };
    assert_eq!(send("203.0.113.1").await?, 200);
    assert_eq!(send("203.0.113.1").await?, 429);
    assert_eq!(send("203.0.113.2").await?, 200, "another client behind the same proxy has its own quota");
    Ok(())
}

#[tokio::test]
async fn metrics_pass_promtool_and_carry_the_contract_names() -> anyhow::Result<()> {
    let (_node, gw) = setup(&[]).await?;
    let c = gw.client();
    c.call(&gw.url, "eth_chainId", json!([])).await?;
    let _ = c.post(&gw.url, "nonsense").await?;
    let text = gw.metrics().await?;
    for name in [
        "iotex_gateway_requests_total{method=\"eth_chainId\",outcome=\"ok\"}",
        "iotex_gateway_requests_total{method=\"other\",outcome=\"invalid\"}",
        "iotex_gateway_request_duration_seconds_bucket{method=\"eth_chainId\"",
        "iotex_gateway_upstream_requests_total{outcome=\"ok\",upstream=\"anvil\"}",
        "iotex_gateway_upstream_up{upstream=\"anvil\"} 1",
        "iotex_gateway_upstream_head_block{upstream=\"anvil\"}",
        "iotex_gateway_upstream_lag_blocks{upstream=\"anvil\"} 0",
        "iotex_gateway_best_head_block",
        "iotex_gateway_rate_limited_total 0",
        "iotex_gateway_upstream_in_flight{upstream=\"anvil\"}",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    let promtool = which("promtool").ok_or_else(|| {
        anyhow::anyhow!("promtool not found; scripts/test.sh installs it (Debian package `prometheus`)")
    })?;
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(bin)).find(|p| p.is_file())
}

#[tokio::test]
async fn admin_endpoints() -> anyhow::Result<()> {
    let (_node, gw) = setup(&[]).await?;
    let c = gw.client();
    assert_eq!(c.get(&format!("{}/healthz", gw.admin)).await?.status, 200);
    assert_eq!(c.get(&format!("{}/readyz", gw.admin)).await?.status, 200);
    assert_eq!(c.get(&format!("{}/nope", gw.admin)).await?.status, 404);
    assert_eq!(c.post(&format!("{}/status", gw.admin), "x").await?.status, 405);
    let s = gw.status().await?;
    assert_eq!(s["ready"], true);
    let u = &s["upstreams"][0];
    for key in ["name", "url", "state", "head", "lag", "latency_ms", "in_flight", "requests", "errors"] {
        assert!(!u[key].is_null(), "/status upstream lacks {key}: {u}");
    }
    Ok(())
}

#[tokio::test]
async fn upstream_credentials_are_used_but_never_shown() -> anyhow::Result<()> {
    let node = iotex_tests::mock::MockUpstream::spawn(1).await?;
    let with_creds = node.url.replace("http://", "http://ops:s3cret@");
    let gw = TestGateway::new().upstream("node", &with_creds).spawn().await?;
    gw.client().call(&gw.url, "eth_chainId", json!([])).await?;
    // Basic auth for ops:s3cret reaches the node...
    assert_eq!(node.last_authorization().as_deref(), Some("Basic b3BzOnMzY3JldA=="));
    // ...and never the operator's screens.
    let s = gw.status().await?.to_string();
    assert!(!s.contains("s3cret") && !s.contains("ops:"), "{s}");
    assert!(!gw.metrics().await?.contains("s3cret"));
    Ok(())
}
