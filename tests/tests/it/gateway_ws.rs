//! WebSocket through the gateway, against real anvil nodes (WebSocket on their HTTP port, `eth_subscribe`
//! `newHeads` and `logs`): calls over WebSocket, one shared upstream subscription per topic, failover with
//! no gap and no duplicate head, logs, unsubscribe, slow clients and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::http::ws_url;
use iotex_tests::nodes::{DEV_ADDRESSES, Node, parse_quantity};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(20);

/// A WebSocket JSON-RPC client that keeps notifications read while waiting for an answer.
struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    notes: VecDeque<Value>,
}

impl WsClient {
    async fn connect(gw: &RunningGateway) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url(&gw.url)).await.unwrap();
        WsClient { ws, next_id: 1, notes: VecDeque::new() }
    }

    async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next message, or `None` after `within` (or once the socket is closed).
    async fn recv(&mut self, within: Duration) -> Option<Message> {
        tokio::time::timeout(within, self.ws.next()).await.ok().flatten().and_then(Result::ok)
    }

    /// Reads past whatever was buffered to the close frame, if one comes (bounded: at most 100,000 messages,
    /// each within `WAIT`).
    async fn close_frame(&mut self) -> Option<CloseFrame> {
        for _ in 0..100_000 {
            match self.recv(WAIT).await? {
                Message::Close(f) => return f,
                _ => continue,
            }
        }
        None
    }

    /// The next JSON text message that is not a notification (notifications are kept for later).
    async fn reply(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.recv(left).await.expect("no reply in time");
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["method"] == "eth_subscription" {
                self.notes.push_back(v);
                continue;
            }
            return v;
        }
    }

    /// One call; the whole answer object.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()).await;
        let v = self.reply().await;
        assert_eq!(v["id"], id, "{v}");
        v
    }

    async fn subscribe(&mut self, params: Value) -> String {
        let v = self.call("eth_subscribe", params).await;
        v["result"].as_str().unwrap_or_else(|| panic!("subscribe failed: {v}")).to_owned()
    }

    /// The next notification for `sub`, within `within`.
    async fn note(&mut self, sub: &str, within: Duration) -> Option<Value> {
        if let Some(i) = self.notes.iter().position(|n| n["params"]["subscription"] == sub) {
            return self.notes.remove(i).map(|n| n["params"]["result"].clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Message::Text(t) = self.recv(left).await? else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["params"]["subscription"] == sub {
                return Some(v["params"]["result"].clone());
            }
            if v["method"] == "eth_subscription" {
                self.notes.push_back(v);
            }
        }
    }

    /// Head numbers of `sub` until `last` is seen (bounded by count and time).
    async fn heads_until(&mut self, sub: &str, last: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let Some(h) = self.note(sub, WAIT).await else { break };
            let n = parse_quantity(&h["number"]).unwrap();
            out.push(n);
            if n >= last {
                break;
            }
        }
        out
    }
}

fn gateway_ws(nodes: &[(&str, &Node)]) -> TestGateway {
    // One comma-separated --upstream-ws (as the env var takes it): the test builder keeps only the last value
    // of a flag it does not know to be repeatable.
    let ws: Vec<String> = nodes.iter().map(|(name, n)| format!("{name}={}", ws_url(&n.url))).collect();
    nodes
        .iter()
        .fold(TestGateway::new().arg("--ws-upstream-silence", "60s"), |g, (name, n)| g.upstream(name, &n.url))
        .arg("--upstream-ws", &ws.join(","))
}

async fn metric(gw: &RunningGateway, series: &str) -> f64 {
    gw.metric(series).await.unwrap()
}

async fn wait_metric(gw: &RunningGateway, series: &str, want: f64) {
    iotex_tests::eventually(WAIT, &format!("{series} == {want}"), || async move {
        (metric(gw, series).await == want).then_some(())
    })
    .await
    .unwrap();
}

/// The series of upstream `name`'s shared subscriptions.
fn on(name: &str) -> String {
    format!("iotex_gateway_ws_upstream_subscriptions{{upstream=\"{name}\"}}")
}

/// Which of upstreams `a` and `b` the gateway holds its one upstream subscription on, once it holds one.
async fn subscribed_upstream(gw: &RunningGateway) -> anyhow::Result<&'static str> {
    iotex_tests::eventually(WAIT, "an upstream subscription", || async move {
        if metric(gw, &on("a")).await == 1.0 {
            Some("a")
        } else if metric(gw, &on("b")).await == 1.0 {
            Some("b")
        } else {
            None
        }
    })
    .await
}

/// A WebSocket relay in front of a node that counts the `eth_subscribe` calls the node receives and the
/// sockets open to it: the upstream side's own view of how many subscriptions the gateway holds.
struct CountingRelay {
    url: String,
    subscribes: Arc<AtomicU64>,
    open: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn counting_relay(upstream: String) -> CountingRelay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let subscribes = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let (s, o) = (Arc::clone(&subscribes), Arc::clone(&open));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (s, o, upstream) = (Arc::clone(&s), Arc::clone(&o), upstream.clone());
            tokio::spawn(async move {
                let Ok(client) = tokio_tungstenite::accept_async(stream).await else { return };
                let Ok((node, _)) = tokio_tungstenite::connect_async(upstream).await else { return };
                o.fetch_add(1, Ordering::SeqCst);
                let (mut client_tx, mut client_rx) = client.split();
                let (mut node_tx, mut node_rx) = node.split();
                let up = async {
                    while let Some(Ok(m)) = client_rx.next().await {
                        if let Message::Text(t) = &m
                            && t.as_str().contains("eth_subscribe")
                        {
                            s.fetch_add(1, Ordering::SeqCst);
                        }
                        if node_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async {
                    while let Some(Ok(m)) = node_rx.next().await {
                        if client_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::select! { () = up => {}, () = down => {} }
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    CountingRelay { url, subscribes, open, task }
}

#[tokio::test]
async fn json_rpc_calls_over_websocket_are_answered_and_http_still_works() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let gw = gateway_ws(&[("a", &node)]).spawn().await?;
    let mut c = WsClient::connect(&gw).await;
    assert_eq!(c.call("eth_chainId", json!([])).await["result"], "0x1251");
    // A batch goes through the same path as over HTTP.
    c.send_text(
        json!([
            {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 8, "method": "eth_blockNumber", "params": []}
        ])
        .to_string(),
    )
    .await;
    let batch = c.reply().await;
    assert_eq!(batch.as_array().map(Vec::len), Some(2), "{batch}");
    assert_eq!(batch[0]["id"], 7);
    // A batch mixing a subscription with a call: answered in order, in one array.
    c.send_text(
        json!([
            {"jsonrpc": "2.0", "id": 9, "method": "eth_subscribe", "params": ["newHeads"]},
            {"jsonrpc": "2.0", "id": 10, "method": "eth_chainId", "params": []}
        ])
        .to_string(),
    )
    .await;
    let mixed = c.reply().await;
    assert_eq!(mixed[0]["id"], 9, "{mixed}");
    assert!(mixed[0]["result"].as_str().is_some_and(|s| s.starts_with("0x")), "{mixed}");
    assert_eq!(mixed[1]["result"], "0x1251", "{mixed}");
    // The method policy applies over WebSocket too.
    assert_eq!(c.call("evm_mine", json!([])).await["error"]["code"], -32601);
    // HTTP POST on the same port is unchanged.
    assert_eq!(gw.client().call(&gw.url, "eth_chainId", json!([])).await?, json!("0x1251"));
    assert!(metric(&gw, "iotex_gateway_ws_messages_total{direction=\"in\"}").await >= 3.0);
    assert_eq!(metric(&gw, "iotex_gateway_ws_connections").await, 1.0);
    Ok(())
}

#[tokio::test]
async fn two_clients_share_one_upstream_subscription_and_unsubscribing_the_last_closes_it() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let relay = counting_relay(ws_url(&node.url)).await;
    let gw = TestGateway::new()
        .arg("--ws-upstream-silence", "60s")
        .upstream("a", &node.url)
        .arg("--upstream-ws", &format!("a={}", relay.url))
        .spawn()
        .await?;
    let (mut c1, mut c2) = (WsClient::connect(&gw).await, WsClient::connect(&gw).await);
    let s1 = c1.subscribe(json!(["newHeads"])).await;
    let s2 = c2.subscribe(json!(["newHeads"])).await;
    assert_ne!(s1, s2, "each client gets its own subscription id");
    wait_metric(&gw, "iotex_gateway_ws_upstream_subscriptions{upstream=\"a\"}", 1.0).await;
    for _ in 0..3 {
        node.mine(1).await?;
    }
    assert_eq!(c1.heads_until(&s1, 3).await, vec![1, 2, 3]);
    assert_eq!(c2.heads_until(&s2, 3).await, vec![1, 2, 3]);
    // The node saw exactly one subscription and one socket for two clients.
    assert_eq!(relay.subscribes.load(Ordering::SeqCst), 1);
    assert_eq!(relay.open.load(Ordering::SeqCst), 1);
    assert_eq!(metric(&gw, "iotex_gateway_ws_subscriptions{kind=\"newHeads\"}").await, 2.0);

    // One leaves: the other still gets heads over the same upstream subscription.
    assert_eq!(c1.call("eth_unsubscribe", json!([s1])).await["result"], true);
    assert_eq!(c1.call("eth_unsubscribe", json!([s1])).await["result"], false);
    node.mine(1).await?;
    assert_eq!(c2.heads_until(&s2, 4).await, vec![4]);
    assert!(c1.note(&s1, Duration::from_millis(300)).await.is_none(), "unsubscribed client still notified");
    assert_eq!(relay.subscribes.load(Ordering::SeqCst), 1);

    // The last one leaves: the upstream subscription and its socket are closed.
    assert_eq!(c2.call("eth_unsubscribe", json!([s2])).await["result"], true);
    wait_metric(&gw, "iotex_gateway_ws_upstream_subscriptions{upstream=\"a\"}", 0.0).await;
    iotex_tests::eventually(WAIT, "relay socket closed", || async {
        (relay.open.load(Ordering::SeqCst) == 0).then_some(())
    })
    .await?;
    assert_eq!(metric(&gw, "iotex_gateway_ws_subscriptions{kind=\"newHeads\"}").await, 0.0);
    Ok(())
}

#[tokio::test]
async fn killing_the_subscribed_node_loses_no_head_and_repeats_none() -> anyhow::Result<()> {
    let (mut a, mut b) = tokio::try_join!(Node::anvil(&[]), Node::anvil(&[]))?;
    let gw = gateway_ws(&[("a", &a), ("b", &b)]).spawn().await?;
    // Both nodes mine in lockstep so block numbers correspond.
    tokio::try_join!(a.mine(1), b.mine(1))?;
    let mut c = WsClient::connect(&gw).await;
    let sub = c.subscribe(json!(["newHeads"])).await;
    let subscribed = subscribed_upstream(&gw).await?;
    let (victim, survivor, survivor_name) =
        if subscribed == "a" { (&mut a, &mut b, "b") } else { (&mut b, &mut a, "a") };
    for _ in 0..2 {
        tokio::try_join!(victim.mine(1), survivor.mine(1))?;
    }
    let mut seen = c.heads_until(&sub, 3).await;
    assert_eq!(seen, vec![2, 3]);
    // The survivor moves ahead (blocks 4..6) where the gateway is not subscribed, the subscribed node mines
    // one more (4, delivered live), then dies. Block 4 from the survivor is a duplicate; 5 and 6 are a gap
    // that only gap filling can deliver, since they were mined before any subscription on the survivor.
    survivor.mine(3).await?;
    victim.mine(1).await?;
    seen.extend(c.heads_until(&sub, 4).await);
    victim.kill();
    survivor.mine(1).await?;
    survivor.mine(1).await?;
    seen.extend(c.heads_until(&sub, 8).await);
    assert_eq!(seen, (2..=8).collect::<Vec<u64>>(), "heads must be strictly consecutive across the failover");
    // Nothing more (no late duplicate) arrives.
    assert!(c.note(&sub, Duration::from_millis(300)).await.is_none());
    wait_metric(&gw, &on(survivor_name), 1.0).await;
    let m = gw.metrics().await?;
    assert!(sample(&m, "iotex_gateway_ws_gap_filled_heads_total").unwrap_or(0.0) >= 2.0, "{m}");
    assert!(sample(&m, "iotex_gateway_ws_upstream_resubscribes_total{reason=\"closed\"}").unwrap_or(0.0) >= 1.0);
    Ok(())
}

#[tokio::test]
async fn logs_subscription_delivers_a_transaction_log_matching_its_filter() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    // The WebSocket URL derived from the upstream's host and a port (anvil serves both on one port).
    let gw = TestGateway::new()
        .arg("--ws-upstream-silence", "60s")
        .upstream("a", &node.url)
        .arg("--upstream-ws-port", &node.port.to_string())
        .spawn()
        .await?;
    let mut c = WsClient::connect(&gw).await;
    let topic = format!("0x{}", "ab".repeat(32));
    let other = format!("0x{}", "cd".repeat(32));
    // Upper-case spelling: the filter is canonicalised, and matches the node's lower-case log.
    let sub = c.subscribe(json!(["logs", {"topics": [topic.to_uppercase().replacen("0X", "0x", 1)]}])).await;
    let none = c.subscribe(json!(["logs", {"topics": [other]}])).await;
    wait_metric(&gw, "iotex_gateway_ws_upstream_subscriptions{upstream=\"a\"}", 2.0).await;
    // Init code that emits LOG1(topic) with no data and deploys nothing: PUSH32 topic, PUSH1 0, PUSH1 0, LOG1.
    let init = format!("0x7f{}60006000a100", "ab".repeat(32));
    let tx = node.rpc("eth_sendTransaction", json!([{"from": DEV_ADDRESSES[0], "data": init}])).await?;
    let log = c.note(&sub, WAIT).await.expect("no log notification");
    assert_eq!(log["topics"][0], topic, "{log}");
    assert_eq!(log["transactionHash"], tx, "{log}");
    assert!(c.note(&none, Duration::from_millis(300)).await.is_none(), "a non-matching filter got a log");
    assert_eq!(metric(&gw, "iotex_gateway_ws_subscriptions{kind=\"logs\"}").await, 2.0);
    Ok(())
}

#[tokio::test]
async fn a_hung_node_is_left_for_another_and_heads_stay_consecutive() -> anyhow::Result<()> {
    // Nodes that mine on their own clocks: numbers roughly agree, so the switch meets duplicates or a gap.
    let (a, b) = tokio::try_join!(Node::anvil(&["--block-time", "1"]), Node::anvil(&["--block-time", "1"]))?;
    let gw = gateway_ws(&[("a", &a), ("b", &b)]).arg("--ws-upstream-silence", "2s").spawn().await?;
    let mut c = WsClient::connect(&gw).await;
    let sub = c.subscribe(json!(["newHeads"])).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let h = c.note(&sub, WAIT).await.expect("no head");
        seen.push(parse_quantity(&h["number"])?);
    }
    let hung = if metric(&gw, &on("a")).await == 1.0 { &a } else { &b };
    // SIGSTOP: the socket stays open but nothing more comes; silence or health must move the subscription.
    hung.pause()?;
    let last = *seen.last().unwrap();
    seen.extend(c.heads_until(&sub, last + 5).await);
    hung.resume()?;
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "heads not consecutive: {seen:?}");
    assert_eq!(seen.last(), Some(&(last + 5)), "{seen:?}");
    let m = gw.metrics().await?;
    let moved: f64 = ["silence", "unroutable", "closed"]
        .iter()
        .filter_map(|r| sample(&m, &format!("iotex_gateway_ws_upstream_resubscribes_total{{reason=\"{r}\"}}")))
        .sum();
    assert!(moved >= 1.0, "{m}");
    Ok(())
}

#[tokio::test]
async fn a_log_mined_while_no_subscription_saw_it_is_backfilled_once_after_failover() -> anyhow::Result<()> {
    let (mut a, mut b) = tokio::try_join!(Node::anvil(&[]), Node::anvil(&[]))?;
    let gw = gateway_ws(&[("a", &a), ("b", &b)]).spawn().await?;
    let mut c = WsClient::connect(&gw).await;
    let topic = format!("0x{}", "ef".repeat(32));
    let sub = c.subscribe(json!(["logs", {"topics": [topic]}])).await;
    let subscribed = subscribed_upstream(&gw).await?;
    let (victim, survivor) = if subscribed == "a" { (&mut a, &mut b) } else { (&mut b, &mut a) };
    // A head both nodes share (the topic covers logs from the head it subscribed at, or a later one seen).
    tokio::try_join!(victim.mine(1), survivor.mine(1))?;
    // The log lands on the node the gateway is not subscribed to; only the backfill after failover can
    // deliver it.
    let init = format!("0x7f{}60006000a100", "ef".repeat(32));
    let tx = survivor.rpc("eth_sendTransaction", json!([{"from": DEV_ADDRESSES[0], "data": init}])).await?;
    assert!(c.note(&sub, Duration::from_millis(300)).await.is_none(), "a log from an unsubscribed node arrived");
    victim.kill();
    let log = c.note(&sub, WAIT).await.expect("the log was not backfilled");
    assert_eq!(log["transactionHash"], tx, "{log}");
    assert!(c.note(&sub, Duration::from_millis(500)).await.is_none(), "the log was delivered twice");
    assert!(metric(&gw, "iotex_gateway_ws_backfilled_logs_total").await >= 1.0);
    Ok(())
}

#[tokio::test]
async fn hostile_input_gets_clear_errors_and_never_kills_the_gateway() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let gw =
        gateway_ws(&[("a", &node)]).arg("--ws-max-subscriptions", "2").arg("--max-body-bytes", "4096").spawn().await?;
    let mut c = WsClient::connect(&gw).await;
    c.send_text("this is not json".into()).await;
    assert_eq!(c.reply().await["error"]["code"], -32700);
    c.ws.send(Message::binary(b"{\"jsonrpc\":\"2.0\"}".to_vec())).await?;
    let bin = c.reply().await;
    assert_eq!(bin["error"]["code"], -32700);
    assert!(bin["error"]["message"].as_str().unwrap().contains("text frames"), "{bin}");
    let unknown = c.call("eth_subscribe", json!(["newPendingTransactions"])).await;
    assert_eq!(unknown["error"]["code"], -32602);
    assert!(unknown["error"]["message"].as_str().unwrap().contains("newHeads"), "{unknown}");
    let bad_filter = c.call("eth_subscribe", json!(["logs", {"fromBlock": "0x0"}])).await;
    assert_eq!(bad_filter["error"]["code"], -32602);
    // Params that are not an array or object are an invalid request, as over HTTP.
    assert_eq!(c.call("eth_subscribe", json!("newHeads")).await["error"]["code"], -32600);
    c.subscribe(json!(["newHeads"])).await;
    c.subscribe(json!(["logs"])).await;
    let third = c.call("eth_subscribe", json!(["newHeads"])).await;
    assert_eq!(third["error"]["code"], -32005);
    assert!(third["error"]["message"].as_str().unwrap().contains("ws-max-subscriptions"), "{third}");
    assert_eq!(c.call("eth_unsubscribe", json!(["0xdead"])).await["result"], false);
    assert_eq!(c.call("eth_unsubscribe", json!([])).await["error"]["code"], -32602);
    // A malformed upgrade is refused over HTTP, with the reason.
    let refused = gw
        .client()
        .send(
            http::Method::GET,
            &gw.url,
            &[("connection", "upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "8")],
            bytes::Bytes::new(),
        )
        .await?;
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("13"), "{}", refused.text());
    // An oversize message closes the connection with 1009 and says why.
    c.send_text(format!("\"{}\"", "x".repeat(5000))).await;
    let close = c.close_frame().await.expect("no close frame, or one without a reason");
    assert_eq!(close.code, CloseCode::Size);
    assert!(close.reason.as_str().contains("max-body-bytes"), "{close:?}");
    // The gateway is fine: a new connection works, HTTP works, subscriptions of the dead connection are gone.
    let mut fresh = WsClient::connect(&gw).await;
    assert_eq!(fresh.call("eth_chainId", json!([])).await["result"], "0x1251");
    assert_eq!(gw.client().call(&gw.url, "eth_chainId", json!([])).await?, json!("0x1251"));
    wait_metric(&gw, "iotex_gateway_ws_subscriptions{kind=\"newHeads\"}", 0.0).await;
    wait_metric(&gw, "iotex_gateway_ws_connections", 1.0).await;
    Ok(())
}

#[tokio::test]
async fn websocket_messages_count_against_the_per_client_rate_limit() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let gw =
        gateway_ws(&[("a", &node)]).arg("--rate-limit-per-client", "1").arg("--rate-limit-burst", "3").spawn().await?;
    let mut c = WsClient::connect(&gw).await;
    let mut limited = 0;
    for _ in 0..6 {
        let v = c.call("eth_chainId", json!([])).await;
        if v["error"]["code"] == -32005 {
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited} of 6 rapid messages were limited");
    assert!(metric(&gw, "iotex_gateway_rate_limited_total").await >= 2.0);
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_without_holding_up_the_others() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let gw = gateway_ws(&[("a", &node)]).arg("--ws-send-queue", "64").spawn().await?;
    let (mut slow, mut fast) = (WsClient::connect(&gw).await, WsClient::connect(&gw).await);
    slow.subscribe(json!(["newHeads"])).await;
    let sub = fast.subscribe(json!(["newHeads"])).await;
    wait_metric(&gw, "iotex_gateway_ws_upstream_subscriptions{upstream=\"a\"}", 1.0).await;
    // Batches smaller than the queue, read in full by the fast client, until the slow one's socket buffers
    // and queue are full and it is cut off (bounded: at most 400 batches).
    let mut head = 0;
    for _ in 0..400 {
        node.mine(40).await?;
        head += 40;
        let got = fast.heads_until(&sub, head).await;
        assert_eq!(got.last(), Some(&head), "the fast client fell behind");
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
        if metric(&gw, "iotex_gateway_ws_slow_client_disconnects_total").await >= 1.0 {
            break;
        }
    }
    assert_eq!(metric(&gw, "iotex_gateway_ws_slow_client_disconnects_total").await, 1.0);
    // The slow client finds a 1008 close with the reason after what was buffered.
    let close = slow.close_frame().await.expect("no close frame for the slow client");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.as_str().contains("too slow"), "{close:?}");
    Ok(())
}

#[tokio::test]
async fn shutdown_sends_websocket_clients_a_going_away_close() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let gw = gateway_ws(&[("a", &node)]).spawn().await?;
    let mut c = WsClient::connect(&gw).await;
    c.subscribe(json!(["newHeads"])).await;
    let report = gw.shutdown().await?;
    assert!(!report.cut, "a WebSocket session must not hold up the drain");
    let close = c.close_frame().await.expect("no close frame on shutdown");
    assert_eq!(close.code, CloseCode::Away);
    assert!(close.reason.as_str().contains("shutting down"), "{close:?}");
    Ok(())
}
