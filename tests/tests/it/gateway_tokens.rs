//! Access tokens end to end, in front of a real anvil: valid tokens are served, every kind of bad token and a
//! missing one (when required) get 401 with a JSON-RPC error, keys rotate, each token has its own quota apart
//! from the per-IP one, and a revocation list edited while the gateway runs takes effect without a restart.

// A test binary: minting a token with fixed, valid claims cannot fail; if it did, panicking there is right.
#![allow(clippy::unwrap_used)]

use iotex_gateway::token::{self, Claims, SigningKey};
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::http::{RawClient, Reply, ws_url};
use iotex_tests::nodes::Node;
use iotex_tests::{eventually, replace_file};
use std::time::Duration;

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;

/// A fresh signing key and its public key as the gateway's flag takes it.
fn keypair() -> (SigningKey, String) {
    let k = token::generate();
    let pk = token::encode_public_key(&k.verifying_key());
    // The signing key must never show in a log line or a metric label (end-of-run scan).
    iotex_tests::capture::register_secret("hex-key", &alloy_primitives::hex::encode(k.to_bytes()));
    (k, pk)
}

fn mint(key: &SigningKey, id: &str, tier: &str, ttl_s: i64) -> String {
    let expires_at = token::unix_now().saturating_add_signed(ttl_s);
    let t = token::issue(key, &Claims { id: id.into(), subject: "explorer".into(), tier: tier.into(), expires_at })
        .unwrap();
    // Tokens are bearer secrets: the end-of-run scan looks for each one minted here.
    iotex_tests::capture::register_secret("token", &t);
    t
}

async fn with_bearer(c: &RawClient, url: &str, token: &str) -> anyhow::Result<Reply> {
    let auth = format!("Bearer {token}");
    c.send(http::Method::POST, url, &[("content-type", "application/json"), ("authorization", &auth)], CALL).await
}

async fn anonymous(c: &RawClient, url: &str) -> anyhow::Result<Reply> {
    c.post(url, CALL).await
}

/// Asserts a 401 with the JSON-RPC error and a message containing `want`, without the token in it.
fn assert_401(r: &Reply, want: &str, token: &str) {
    assert_eq!(r.status, 401, "{want}: {}", r.text());
    let v = r.json();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["error"]["code"], -32012, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(want), "want {want:?} in {msg:?}");
    assert!(token.is_empty() || !r.text().contains(token), "the token is echoed: {}", r.text());
    assert!(r.headers["www-authenticate"].to_str().unwrap_or_default().starts_with("Bearer"));
}

async fn gateway(
    node: &Node,
    keys: &[&str],
    f: impl FnOnce(TestGateway) -> TestGateway,
) -> anyhow::Result<RunningGateway> {
    let g = keys.iter().fold(TestGateway::new().upstream("anvil", &node.url), |g, k| g.arg("--token-public-key", k));
    f(g.arg("--token-tier", "gold=100/100").arg("--token-tier", "tiny=1/3")).spawn().await
}

#[tokio::test]
async fn valid_tokens_are_served_and_every_bad_one_gets_401_with_a_json_rpc_error() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let (key, pk) = keypair();
    let (stranger, _) = keypair();
    let gw = gateway(&node, &[&pk], |g| g.switch("--require-token")).await?;
    let c = gw.client();

    let good = mint(&key, "good-1", "gold", 3600);
    let r = with_bearer(&c, &gw.url, &good).await?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], "0x1251");
    // WebSocket-style clients put it in the query instead.
    let r = c.post(&format!("{}/?token={good}", gw.url), CALL).await?;
    assert_eq!(r.status, 200, "{}", r.text());

    assert_401(&anonymous(&c, &gw.url).await?, "required", "");
    let expired = mint(&key, "old-1", "gold", -1);
    assert_401(&with_bearer(&c, &gw.url, &expired).await?, "expired", &expired);
    let foreign = mint(&stranger, "foreign-1", "gold", 3600);
    assert_401(&with_bearer(&c, &gw.url, &foreign).await?, "not signed by a key this gateway trusts", &foreign);
    // Same key id, tampered signature.
    let mut forged = good.clone();
    let last = forged.pop().unwrap_or('A');
    forged.push(if last == 'A' { 'Q' } else { 'A' });
    assert_401(&with_bearer(&c, &gw.url, &forged).await?, "signature is invalid", &forged);
    assert_401(&with_bearer(&c, &gw.url, "not-a-token").await?, "malformed", "not-a-token");
    let huge = "A".repeat(100_000);
    assert_401(&with_bearer(&c, &gw.url, &huge).await?, "malformed", "");
    let unknown_tier = mint(&key, "u-1", "platinum", 3600);
    assert_401(&with_bearer(&c, &gw.url, &unknown_tier).await?, "tier is not configured", &unknown_tier);
    assert_401(&c.post(&format!("{}/?token={expired}", gw.url), CALL).await?, "expired", &expired);

    let m = gw.metrics().await?;
    for (reason, n) in [
        ("missing", 1.0),
        ("expired", 2.0),
        ("unknown_key", 1.0),
        ("bad_signature", 1.0),
        ("malformed", 2.0),
        ("unknown_tier", 1.0),
    ] {
        assert_eq!(
            sample(&m, &format!("iotex_gateway_auth_rejected_total{{reason=\"{reason}\"}}")),
            Some(n),
            "{reason}"
        );
    }
    assert_eq!(sample(&m, "iotex_gateway_token_requests_total{tier=\"gold\"}"), Some(2.0));
    // Neither the tokens nor their ids or subjects become labels.
    for secret in [good.as_str(), &expired, &foreign, "good-1", "explorer"] {
        assert!(!m.contains(secret), "/metrics holds {secret}");
    }
    Ok(())
}

#[tokio::test]
async fn without_require_token_anonymous_callers_pass_but_a_bad_token_is_still_refused() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let (key, pk) = keypair();
    let gw = gateway(&node, &[&pk], |g| g).await?;
    let c = gw.client();
    assert_eq!(anonymous(&c, &gw.url).await?.status, 200);
    // Another scheme is not ours: anonymous.
    let basic = c
        .send(
            http::Method::POST,
            &gw.url,
            &[("content-type", "application/json"), ("authorization", "Basic dTpw")],
            CALL,
        )
        .await?;
    assert_eq!(basic.status, 200);
    let expired = mint(&key, "e", "gold", -10);
    assert_401(&with_bearer(&c, &gw.url, &expired).await?, "expired", &expired);
    Ok(())
}

#[tokio::test]
async fn two_keys_are_accepted_at_once_so_keys_can_rotate() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let (old, old_pk) = keypair();
    let (new, new_pk) = keypair();
    let gw = gateway(&node, &[&old_pk, &new_pk], |g| g.switch("--require-token")).await?;
    let c = gw.client();
    for (k, id) in [(&old, "from-old"), (&new, "from-new")] {
        let r = with_bearer(&c, &gw.url, &mint(k, id, "gold", 600)).await?;
        assert_eq!(r.status, 200, "{id}: {}", r.text());
    }
    drop(gw);
    // The old key retired: its tokens stop working, the new key's go on.
    let gw = gateway(&node, &[&new_pk], |g| g.switch("--require-token")).await?;
    let c = gw.client();
    assert_401(&with_bearer(&c, &gw.url, &mint(&old, "from-old", "gold", 600)).await?, "not signed", "");
    assert_eq!(with_bearer(&c, &gw.url, &mint(&new, "from-new", "gold", 600)).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn a_tokens_quota_is_its_own_and_apart_from_the_per_ip_quota() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let (key, pk) = keypair();
    let gw = gateway(&node, &[&pk], |g| g.arg("--rate-limit-per-client", "1").arg("--rate-limit-burst", "2")).await?;
    let c = gw.client();
    // Exhaust the anonymous per-IP quota.
    let mut anon = Vec::new();
    for _ in 0..4 {
        anon.push(anonymous(&c, &gw.url).await?.status);
    }
    assert!(anon.contains(&429), "{anon:?}");
    // The same IP with a token is charged to the token (tier tiny = 1/s, burst 3), not to the IP.
    let t = mint(&key, "tiny-1", "tiny", 600);
    let mut with_token = Vec::new();
    for _ in 0..6 {
        with_token.push(with_bearer(&c, &gw.url, &t).await?.status);
    }
    assert_eq!(&with_token[..3], &[200, 200, 200], "{with_token:?}");
    let limited = with_token[3..].iter().filter(|s| **s == 429).count();
    assert!(limited >= 2, "the token's own quota applies: {with_token:?}");
    let r = with_bearer(&c, &gw.url, &t).await?;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], -32005);
    assert!(r.headers.contains_key("retry-after"));
    // Another token of the same tier has its own bucket; a gold token has a larger one.
    assert_eq!(with_bearer(&c, &gw.url, &mint(&key, "tiny-2", "tiny", 600)).await?.status, 200);
    assert_eq!(with_bearer(&c, &gw.url, &mint(&key, "gold-1", "gold", 600)).await?.status, 200);
    let m = gw.metrics().await?;
    assert!(sample(&m, "iotex_gateway_token_rate_limited_total{tier=\"tiny\"}").unwrap_or(0.0) >= 3.0, "{m}");
    assert!(sample(&m, "iotex_gateway_token_requests_total{tier=\"tiny\"}").unwrap_or(0.0) >= 4.0);
    Ok(())
}

#[tokio::test]
async fn a_revocation_list_edited_while_running_refuses_the_token_without_a_restart() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let (key, pk) = keypair();
    let dir = tempfile::tempdir()?;
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "# revoked token ids\n")?;
    let path = list.to_str().unwrap_or_default().to_owned();
    let gw =
        gateway(&node, &[&pk], |g| g.arg("--token-revocation-list", &path).arg("--token-revocation-reload", "100ms"))
            .await?;
    let c = gw.client();
    let leaked = mint(&key, "leaked-7", "gold", 600);
    let kept = mint(&key, "kept-8", "gold", 600);
    assert_eq!(with_bearer(&c, &gw.url, &leaked).await?.status, 200);

    replace_file(&list, "# revoked token ids\nleaked-7  # pasted in a public chat\n")?;
    let refused = eventually(Duration::from_secs(10), "the leaked token to be refused", || {
        let (c, url, t) = (c.clone(), gw.url.clone(), leaked.clone());
        async move { with_bearer(&c, &url, &t).await.ok().filter(|r| r.status == 401) }
    })
    .await?;
    assert_401(&refused, "revoked", &leaked);
    assert_eq!(with_bearer(&c, &gw.url, &kept).await?.status, 200, "other tokens go on");
    let m = gw.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_revoked_tokens"), Some(1.0));
    assert!(sample(&m, "iotex_gateway_revocation_list_reloads_total{result=\"ok\"}").unwrap_or(0.0) >= 1.0);
    assert!(!m.contains("leaked-7"));

    // A broken file keeps the list in force and is counted.
    replace_file(&list, "this is not an id\n")?;
    eventually(Duration::from_secs(10), "a failed reload to be counted", || async {
        let m = gw.metrics().await.ok()?;
        (sample(&m, "iotex_gateway_revocation_list_reloads_total{result=\"error\"}")? >= 1.0).then_some(())
    })
    .await?;
    assert_401(&with_bearer(&c, &gw.url, &leaked).await?, "revoked", &leaked);
    // Un-revoking works the same way.
    replace_file(&list, "")?;
    eventually(Duration::from_secs(10), "the token to be accepted again", || {
        let (c, url, t) = (c.clone(), gw.url.clone(), leaked.clone());
        async move { with_bearer(&c, &url, &t).await.ok().filter(|r| r.status == 200).map(|_| ()) }
    })
    .await?;
    Ok(())
}

/// One JSON-RPC call over an open WebSocket; returns the answer object.
async fn ws_call(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> anyhow::Result<serde_json::Value> {
    use futures::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(CALL)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => return Ok(serde_json::from_str(&t)?),
            Ok(Some(Ok(_))) => continue,
            other => anyhow::bail!("no answer over the WebSocket: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_websocket_session_opened_with_a_token_is_charged_to_the_token_and_stops_when_it_is_revoked()
-> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let (key, pk) = keypair();
    let dir = tempfile::tempdir()?;
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "")?;
    let path = list.to_str().unwrap_or_default().to_owned();
    let gw = gateway(&node, &[&pk], |g| {
        g.arg("--rate-limit-per-client", "1")
            .arg("--rate-limit-burst", "2")
            .arg("--token-revocation-list", &path)
            .arg("--token-revocation-reload", "100ms")
    })
    .await?;
    let ws_url = |t: &str| format!("{}/?token={t}", ws_url(&gw.url));

    // A gold token: ten quick messages, far past the per-IP burst of 2, are all served.
    let gold = mint(&key, "ws-gold", "gold", 600);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&gold)).await?;
    for i in 0..10 {
        let v = ws_call(&mut ws).await?;
        assert!(v["result"].is_string(), "message {i} refused: {v}");
    }
    // A tiny token (1/s, burst 3): its own quota refuses the excess.
    let tiny = mint(&key, "ws-tiny", "tiny", 600);
    let (mut small, _) = tokio_tungstenite::connect_async(ws_url(&tiny)).await?;
    let mut limited = 0;
    for _ in 0..6 {
        if ws_call(&mut small).await?["error"]["code"] == -32005 {
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited} of 6 messages over the tiny quota were refused");

    // Revoked while the session is open: the next messages are refused with the token error, or the gateway,
    // re-checking the token on the list's reload period, closes the session itself (close code 1008, the
    // token error as reason). Which comes first is a race; both must name the revocation.
    replace_file(&list, "ws-gold\n")?;
    // Polled like `eventually`, but over the one open session (bounded: at most 10 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match ws_call_or_close(&mut ws).await {
            Ok(Ok(v)) if v["error"]["code"] == -32012 => {
                assert!(v["error"]["message"].as_str().unwrap_or_default().contains("revoked"), "{v}");
                break;
            }
            Ok(Ok(v)) => {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the revoked token's session is still served: {v}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(Err(reason)) => {
                assert!(reason.contains("revoked"), "closed for another reason: {reason}");
                break;
            }
            // The close came while a message was on its way: the socket was gone before its frame was read.
            Err(e) => {
                let closes = gw.metric("iotex_gateway_ws_token_closes_total").await?;
                anyhow::ensure!(closes >= 1.0, "the session broke, but not because of its token: {e}");
                break;
            }
        }
    }
    Ok(())
}

/// [`ws_call`], except that the gateway closing the session is an outcome too: `Ok(Err(close reason))`.
async fn ws_call_or_close(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> anyhow::Result<Result<serde_json::Value, String>> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let sent = ws.send(Message::text(CALL)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(Ok(serde_json::from_str(&t)?)),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Ok(Err(frame.map(|f| f.reason.to_string()).unwrap_or_default()));
            }
            Ok(Some(Ok(_))) => continue,
            other => anyhow::bail!("no answer over the WebSocket (send: {sent:?}): {other:?}"),
        }
    }
}
