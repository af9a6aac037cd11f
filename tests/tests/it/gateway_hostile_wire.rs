//! Nothing leaks through the gateway's front door: request smuggling shapes sent over raw TCP never reach the
//! node as two requests, an HTTP/2 rapid-reset burst does not pin the gateway's CPU, and a WebSocket
//! subscription opened with a token that is then revoked is closed within one reload interval.
//!
//! The smuggling and rapid-reset cases run the real `iotex-gateway` binary (its own process, so its CPU time
//! is its own) in front of a real anvil. Requests reaching the node are counted by what they do there: each
//! smuggled request is an `eth_sendRawTransaction` with the next nonce, so the account's nonce on anvil is
//! exactly the number of requests that got through.
#![allow(clippy::unwrap_used)]

use futures::{SinkExt, StreamExt};
use iotex_gateway::token::{self, Claims};
use iotex_tests::bins::GatewayProc;
use iotex_tests::gateway::TestGateway;
use iotex_tests::http::{RawClient, rpc_request, ws_url};
use iotex_tests::inject::tx_count;
use iotex_tests::nodes::{DEV_ADDRESSES, Node};
use iotex_tests::replace_file;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Builds one smuggling attempt from the first and the second request's JSON bodies.
type Shape = Box<dyn Fn(&str, &str) -> String>;

/// A `POST /` head with the given extra header lines (each ending in CRLF), then an empty line.
fn head(extra: &str) -> String {
    format!("POST / HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n{extra}\r\n")
}

/// A complete, well-formed request carrying `body`.
fn plain(body: &str) -> String {
    format!("{}{body}", head(&format!("Content-Length: {}\r\n", body.len())))
}

/// Sends `bytes` on a fresh connection and reads what comes back until the gateway closes it or is quiet for
/// 3 s (a bound on reading, not an assertion). Returns the status codes of the responses read.
async fn exchange(addr: &str, bytes: &[u8]) -> anyhow::Result<Vec<u16>> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(bytes).await?;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..1000 {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    Ok(text
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12).and_then(|c| c.parse().ok()))
        .collect())
}

#[tokio::test]
async fn request_smuggling_shapes_never_reach_the_node_as_two_requests() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let gw = GatewayProc::spawn(&["--upstream", &format!("anvil={}", node.url)]).await?;
    let from = DEV_ADDRESSES[0];
    let mut nonce = tx_count(&node, from, "pending").await?;
    let send = |raw: &str| rpc_request(json!(1), "eth_sendRawTransaction", json!([raw]));
    let cases: Vec<(&str, Shape)> = vec![
        // CL.TE: Content-Length covers the chunked body and the second request; chunked ends after the first.
        (
            "CL+TE",
            Box::new(|a, b| {
                let chunked = format!("{:x}\r\n{a}\r\n0\r\n\r\n", a.len());
                let tail = plain(b);
                let h =
                    head(&format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", chunked.len() + tail.len()));
                format!("{h}{chunked}{tail}")
            }),
        ),
        // TE.CL: the opposite disagreement (Transfer-Encoding first, a Content-Length that ends early).
        (
            "TE+CL",
            Box::new(|a, b| {
                let second = plain(b);
                let chunk = format!("{a}{second}");
                let h = head(&format!("Transfer-Encoding: chunked\r\nContent-Length: {}\r\n", a.len()));
                format!("{h}{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len())
            }),
        ),
        // Two different Content-Lengths: the short one ends at the first body, the long one takes in the second.
        (
            "duplicate Content-Length",
            Box::new(|a, b| {
                let tail = plain(b);
                let h = head(&format!("Content-Length: {}\r\nContent-Length: {}\r\n", a.len(), a.len() + tail.len()));
                format!("{h}{a}{tail}")
            }),
        ),
        // Obsolete line folding: a folded continuation that a lenient parser would read as Transfer-Encoding.
        (
            "obs-fold",
            Box::new(|a, b| {
                let tail = plain(b);
                let h = head(&format!(
                    "Content-Length: {}\r\nX-Note: x\r\n Transfer-Encoding: chunked\r\n",
                    a.len() + tail.len()
                ));
                format!("{h}{a}{tail}")
            }),
        ),
        // A space before the colon of Transfer-Encoding (RFC 9112: must be rejected).
        (
            "space before colon",
            Box::new(|a, b| {
                let chunked = format!("{:x}\r\n{a}\r\n0\r\n\r\n", a.len());
                let tail = plain(b);
                let h =
                    head(&format!("Content-Length: {}\r\nTransfer-Encoding : chunked\r\n", chunked.len() + tail.len()));
                format!("{h}{chunked}{tail}")
            }),
        ),
    ];
    for (name, shape) in cases {
        let first = String::from_utf8(send(&node.signed_transfer(0, nonce, "0x1").await?))?;
        let second = String::from_utf8(send(&node.signed_transfer(0, nonce + 1, "0x1").await?))?;
        let statuses = exchange(&gw.addr, shape(&first, &second).as_bytes()).await?;
        let after = tx_count(&node, from, "pending").await?;
        let reached = after - nonce;
        eprintln!("{name}: statuses {statuses:?}, {reached} request(s) reached the node");
        assert!(reached <= 1, "{name}: {reached} requests reached the node from one smuggling attempt");
        assert!(statuses.len() <= 1, "{name}: {} responses to one request: {statuses:?}", statuses.len());
        assert!(
            statuses.iter().all(|s| *s == 400) || (statuses == [200] && reached == 1),
            "{name}: want a 400, or one request served; got {statuses:?} with {reached} at the node"
        );
        nonce = after;
    }
    // A well-formed call still works on the same gateway.
    let ok = RawClient::new().call(&gw.url, "eth_chainId", json!([])).await?;
    assert_eq!(ok, "0x1251");
    Ok(())
}

#[tokio::test]
async fn an_http2_rapid_reset_burst_does_not_pin_the_cpu_and_calls_keep_working() -> anyhow::Result<()> {
    const RESETS: u64 = 5_000;
    let node = Node::anvil(&[]).await?;
    let gw = GatewayProc::spawn(&["--upstream", &format!("anvil={}", node.url)]).await?;
    let c = RawClient::new();
    // The gateway speaks HTTP/2 without TLS (h2c, prior knowledge): prove it before attacking it.
    let before = gw.proc.cpu_ticks()?;
    let (mut sent, mut connections, mut goaways) = (0u64, 0u64, 0u64);
    // Bounded: at most 200 connections, each until the gateway refuses more streams or sends GOAWAY.
    while sent < RESETS && connections < 200 {
        connections += 1;
        let tcp = tokio::net::TcpStream::connect(&gw.addr).await?;
        let (mut h2, conn) = h2::client::handshake(tcp).await?;
        let driver = tokio::spawn(conn);
        loop {
            if sent >= RESETS {
                break;
            }
            let ready = tokio::time::timeout(Duration::from_secs(5), h2.clone().ready()).await;
            let Ok(Ok(ready)) = ready else { break };
            h2 = ready;
            let req = http::Request::post(format!("http://{}/", gw.addr))
                .header("content-type", "application/json")
                .body(())?;
            let Ok((_resp, mut stream)) = h2.send_request(req, false) else { break };
            stream.send_reset(h2::Reason::CANCEL);
            sent += 1;
        }
        drop(h2);
        match tokio::time::timeout(Duration::from_secs(5), driver).await {
            Ok(Ok(Err(e))) if e.is_go_away() => goaways += 1,
            _ => {}
        }
    }
    let after = gw.proc.cpu_ticks()?;
    let ticks = after - before;
    // Clock ticks are 1/100 s on Linux: a generous bound of 1 ms of gateway CPU per reset (a healthy server
    // spends microseconds), so only a spin or per-reset work far out of proportion fails.
    let per_reset_us = ticks as f64 * 10_000.0 / sent.max(1) as f64;
    eprintln!(
        "{sent} HEADERS+RST_STREAM over {connections} connections ({goaways} ended by GOAWAY): {ticks} ticks of gateway CPU, {per_reset_us:.1} µs per reset"
    );
    assert!(sent >= 1_000, "only {sent} resets were sent: the burst did not happen");
    assert!(per_reset_us < 1_000.0, "{per_reset_us:.1} µs of gateway CPU per reset");
    // Normal calls keep working, over HTTP/1.1 and over HTTP/2.
    assert_eq!(c.call(&gw.url, "eth_chainId", json!([])).await?, "0x1251");
    let tcp = tokio::net::TcpStream::connect(&gw.addr).await?;
    let (h2, conn) = h2::client::handshake(tcp).await?;
    tokio::spawn(conn);
    let mut h2 = h2.ready().await?;
    let req = http::Request::post(format!("http://{}/", gw.addr)).header("content-type", "application/json").body(())?;
    let (resp, mut body) = h2.send_request(req, false)?;
    body.send_data(rpc_request(json!(7), "eth_chainId", json!([])).into(), true)?;
    let resp = resp.await?;
    assert_eq!(resp.status(), 200);
    let mut recv = resp.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        got.extend_from_slice(&chunk);
    }
    let v: serde_json::Value = serde_json::from_slice(&got)?;
    assert_eq!(v["result"], "0x1251", "{v}");
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_closes_its_open_websocket_subscription_within_one_reload_interval() -> anyhow::Result<()> {
    // Blocks every second, so the subscription has notifications flowing when the token is revoked.
    let node = Node::anvil(&["--block-time", "1"]).await?;
    let key = token::generate();
    iotex_tests::capture::register_secret("hex-key", &alloy_primitives::hex::encode(key.to_bytes()));
    let pk = token::encode_public_key(&key.verifying_key());
    let claims = Claims {
        id: "ws-sub".into(),
        subject: "explorer".into(),
        tier: "gold".into(),
        expires_at: token::unix_now() + 600,
    };
    let tok = token::issue(&key, &claims)?;
    iotex_tests::capture::register_secret("token", &tok);
    let dir = tempfile::tempdir()?;
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "")?;
    let gw = TestGateway::new()
        .upstream("anvil", &node.url)
        .arg("--upstream-ws", &format!("anvil={}", ws_url(&node.url)))
        .arg("--ws-upstream-silence", "60s")
        .arg("--token-public-key", &pk)
        .arg("--token-tier", "gold=100/100")
        .switch("--require-token")
        .arg("--token-revocation-list", list.to_str().unwrap())
        .arg("--token-revocation-reload", "200ms")
        .spawn()
        .await?;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/?token={tok}", ws_url(&gw.url))).await?;
    ws.send(Message::text(r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#)).await?;
    // The answer, then at least one head: the subscription is live.
    let mut heads = 0;
    for _ in 0..100 {
        let Some(Ok(Message::Text(t))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await? else {
            anyhow::bail!("the subscription ended before it was revoked");
        };
        if t.contains("eth_subscription") {
            heads += 1;
            break;
        }
    }
    anyhow::ensure!(heads == 1, "no head notification before the revocation");
    // Revoked; the client sends nothing from now on, so only the session's own check can end it.
    replace_file(&list, "ws-sub\n")?;
    let mut after = 0;
    let close = loop {
        anyhow::ensure!(after < 100, "the revoked token's subscription is still served after {after} heads");
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await? {
            Some(Ok(Message::Close(f))) => break f,
            Some(Ok(Message::Text(_))) => after += 1,
            Some(Ok(_)) => {}
            other => anyhow::bail!("the session ended without a close frame: {other:?}"),
        }
    };
    let close = close.ok_or_else(|| anyhow::anyhow!("close frame without a reason"))?;
    assert_eq!(u16::from(close.code), 1008, "{close:?}");
    assert!(close.reason.contains("revoked"), "{close:?}");
    // One reload interval (200 ms) plus one re-check (200 ms) is well under two blocks: a head or two may have
    // been in flight, never a stream of them.
    assert!(after <= 5, "{after} heads delivered after the revocation");
    assert!(gw.metric("iotex_gateway_ws_token_closes_total").await? >= 1.0);
    // A new session with the revoked token is refused at the door.
    assert!(tokio_tungstenite::connect_async(format!("{}/?token={tok}", ws_url(&gw.url))).await.is_err());
    Ok(())
}
