//! Faults a real node cannot stage on demand, from mock upstreams: slow answers, HTTP 429 with an empty
//! body, malformed JSON, a connection reset mid-response, a node that dies while still marked routable,
//! and shutdown with calls in flight.
//!
//! Calls are fired in concurrent waves: with two upstreams, power-of-two-choices compares both on every
//! pick and the in-flight counts make it use both, so the faulty one is certain to be tried.

use iotex_tests::eventually;
use iotex_tests::gateway::{TestGateway, sample};
use iotex_tests::http::RawClient;
use iotex_tests::mock::{MockUpstream, Mode};
use serde_json::json;
use std::time::Duration;

async fn wave(c: &RawClient, url: &str, method: &str, n: usize) -> Vec<anyhow::Result<serde_json::Value>> {
    futures::future::join_all((0..n).map(|_| c.call(url, method, json!(["0x0", "latest"])))).await
}

async fn pair() -> anyhow::Result<(MockUpstream, MockUpstream)> {
    Ok((MockUpstream::spawn(100).await?, MockUpstream::spawn(100).await?))
}

fn gw(a: &MockUpstream, b: &MockUpstream) -> TestGateway {
    // Waves of identical calls must each reach a node here: no answer reuse (tested in gateway_cache.rs).
    TestGateway::new()
        .upstream("a", &a.url)
        .upstream("b", &b.url)
        .arg("--attempt-timeout", "300ms")
        .arg("--coalesce", "false")
        .arg("--cache-max-bytes", "0")
}

/// For each fault: reads keep succeeding through the other upstream, and the fault is counted by kind.
#[tokio::test]
async fn reads_fail_over_on_every_kind_of_upstream_fault() -> anyhow::Result<()> {
    let cases = [
        (Mode::Slow(Duration::from_secs(3)), "timeout"),
        (Mode::Busy429, "http_429"),
        (Mode::Unavailable503, "http_5xx"),
        (Mode::Malformed, "invalid_response"),
        (Mode::ResetMidResponse, "transport"),
    ];
    for (mode, kind) in cases {
        let (a, b) = pair().await?;
        // Probes stay healthy: only real traffic fails, which is what passive health and retries are for.
        a.traffic(mode.clone());
        let g = gw(&a, &b).arg("--eject-after-failures", "1000").spawn().await?;
        let c = g.client();
        for r in wave(&c, &g.url, "eth_getBalance", 10).await {
            assert_eq!(r?, json!("mock:eth_getBalance"), "{mode:?}");
        }
        assert!(a.seen("eth_getBalance") >= 1, "{mode:?}: the faulty upstream was never tried");
        let m = g.metrics().await?;
        let attempts =
            sample(&m, &format!("iotex_gateway_upstream_requests_total{{outcome=\"{kind}\",upstream=\"a\"}}"));
        assert!(attempts.unwrap_or(0.0) >= 1.0, "{mode:?}: attempts by kind not counted\n{m}");
        let retries = sample(&m, &format!("iotex_gateway_retries_total{{reason=\"{kind}\"}}"));
        assert!(retries.unwrap_or(0.0) >= 1.0, "{mode:?}: retry not counted");
        assert_eq!(sample(&m, "iotex_gateway_requests_total{method=\"eth_getBalance\",outcome=\"ok\"}"), Some(10.0));
    }
    Ok(())
}

#[tokio::test]
async fn consecutive_failures_eject_and_a_good_probe_readmits_after_the_backoff() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    // `b` is out of the pool (its probes fail), so every call goes to `a`. With both routable, whether `a`
    // is tried twice in a row depends on timing: its first failure is charged to the balancer as a full
    // attempt timeout, which steers calls away from it for a minute unless a wave's calls were all picked
    // before that failure came back. CI once saw 50 waves in 0.26 s that never tried `a` a second time.
    b.probes(Mode::Unavailable503);
    a.traffic(Mode::Unavailable503);
    // A backoff long enough that the ejected state outlasts the status polls on two busy cores: after it, a
    // good probe readmits `a` (its probes never failed), and a short window can be missed.
    let g = gw(&a, &b).arg("--eject-after-failures", "2").arg("--eject-backoff", "3s").spawn().await?;
    g.wait_state("b", "down", Duration::from_secs(10)).await?;
    g.wait_state("a", "up", Duration::from_secs(10)).await?;
    let c = g.client();
    let call = || c.call(&g.url, "eth_call", json!(["0x0", "latest"]));
    // Health learns of outcomes over a channel: wait until it has counted each one, as its status shows.
    let streak = |n: u64| {
        let g = &g;
        eventually(Duration::from_secs(10), "a's failure streak in the status", move || async move {
            let s = g.status().await.ok()?;
            let a = s["upstreams"].as_array()?.iter().find(|u| u["name"] == "a")?.clone();
            (a["consecutive_failures"] == json!(n)).then_some(())
        })
    };
    // Failure, success, failure: two failures, but not in a row, so `a` stays in.
    assert!(call().await.is_err(), "a answers 503 and no other node is routable");
    streak(1).await?;
    a.traffic(Mode::Normal);
    assert_eq!(call().await?, json!("mock:eth_call"));
    streak(0).await?;
    a.traffic(Mode::Unavailable503);
    assert!(call().await.is_err());
    streak(1).await?;
    assert_eq!(g.state_of("a").await?, "up", "one failure since the last success");
    // The second failure in a row ejects it.
    assert!(call().await.is_err());
    let ejections = "iotex_gateway_ejections_total{upstream=\"a\"}";
    eventually(Duration::from_secs(10), "a ejected", || async {
        (g.metric(ejections).await.ok()? >= 1.0).then_some(())
    })
    .await?;
    assert_eq!(g.metric(ejections).await?, 1.0);
    assert_eq!(a.seen("eth_call"), 4, "every call went to a");
    // Out of the pool for the backoff: its `up` gauge is 0 until a good probe after it.
    let state = g.state_of("a").await?;
    assert!(state == "ejected" || state == "up", "a is {state}");
    a.traffic(Mode::Normal);
    b.probes(Mode::Normal);
    g.wait_state("a", "up", Duration::from_secs(10)).await?;
    for r in wave(&c, &g.url, "eth_call", 6).await {
        assert_eq!(r?, json!("mock:eth_call"));
    }
    Ok(())
}

#[tokio::test]
async fn a_retry_budget_stops_retry_storms() -> anyhow::Result<()> {
    // Both upstreams fail real traffic, so every call fails. With a 0 % budget only the floor remains
    // (10 retries/s over a 10 s window = 100): 300 failing calls must not turn into 300 retries.
    let (a, b) = pair().await?;
    a.traffic(Mode::Unavailable503);
    b.traffic(Mode::Unavailable503);
    let g = gw(&a, &b).arg("--eject-after-failures", "100000").arg("--retry-budget-percent", "0").spawn().await?;
    let c = g.client();
    let mut failures = 0;
    for _ in 0..30 {
        for r in wave(&c, &g.url, "eth_call", 10).await {
            failures += usize::from(r.is_err());
        }
    }
    assert_eq!(failures, 300);
    let m = g.metrics().await?;
    let retries = sample(&m, "iotex_gateway_retries_total{reason=\"http_5xx\"}").unwrap_or(0.0);
    let exhausted = sample(&m, "iotex_gateway_retry_budget_exhausted_total").unwrap_or(0.0);
    // Two upstreams: each failed call either retried once or was refused a retry.
    assert_eq!(retries + exhausted, 300.0, "retries {retries}, exhausted {exhausted}");
    assert!(retries <= 110.0, "retries {retries} exceed the budget's floor");
    assert_eq!(a.seen("eth_call") + b.seen("eth_call"), 300 + retries as u64);
    // The answer says the upstream failed, with the caller's id.
    let r = c.post(&g.url, r#"{"jsonrpc":"2.0","id":"q","method":"eth_call","params":[]}"#).await?;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], -32010);
    assert_eq!(r.json()["id"], "q");
    Ok(())
}

#[tokio::test]
async fn raw_transactions_are_not_resent_after_they_may_have_reached_a_node() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    a.traffic(Mode::ResetMidResponse);
    b.traffic(Mode::ResetMidResponse);
    let g = gw(&a, &b).arg("--eject-after-failures", "1000").spawn().await?;
    let c = g.client();
    let r = c.post(&g.url, r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x00"]}"#).await?;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(a.seen("eth_sendRawTransaction") + b.seen("eth_sendRawTransaction"), 1, "a raw tx was resent");
    // The same fault on a read is retried on the other node.
    let _ = c.post(&g.url, r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}"#).await?;
    assert_eq!(a.seen("eth_getBalance") + b.seen("eth_getBalance"), 2, "a read must be retried once elsewhere");
    Ok(())
}

#[tokio::test]
async fn raw_transactions_are_resent_when_they_provably_never_left() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    // Long probe interval: after `a` dies it stays routable, so real traffic meets the refused connection.
    let g = gw(&a, &b).arg("--health-interval", "1m").arg("--eject-after-failures", "1000").spawn().await?;
    a.stop();
    let c = g.client();
    for r in wave(&c, &g.url, "eth_sendRawTransaction", 8).await {
        assert_eq!(r?, json!("mock:eth_sendRawTransaction"));
    }
    let m = g.metrics().await?;
    assert!(sample(&m, "iotex_gateway_retries_total{reason=\"connect\"}").unwrap_or(0.0) >= 1.0, "{m}");
    assert_eq!(b.seen("eth_sendRawTransaction"), 8);
    Ok(())
}

#[tokio::test]
async fn already_known_from_a_node_is_a_success_with_the_transaction_hash() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    a.traffic(Mode::RpcError("already known".into()));
    b.traffic(Mode::RpcError("already known".into()));
    let g = gw(&a, &b).spawn().await?;
    let hash = g.client().call(&g.url, "eth_sendRawTransaction", json!(["0x00"])).await?;
    assert_eq!(hash, json!("0xbc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a"));
    Ok(())
}

#[tokio::test]
async fn a_far_ahead_node_does_not_make_the_others_look_lagging() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    let liar = MockUpstream::spawn(1_000_000_000).await?;
    let g = gw(&a, &b).upstream("liar", &liar.url).arg("--max-lag-blocks", "10").spawn().await?;
    g.wait_state("a", "up", Duration::from_secs(5)).await?;
    let s = g.status().await?;
    assert_eq!(s["best_head"], 100, "{s}");
    assert_eq!(s["routable"], 3, "{s}");
    Ok(())
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish_and_refuses_new_connections() -> anyhow::Result<()> {
    let a = MockUpstream::spawn(1).await?;
    a.traffic(Mode::Slow(Duration::from_millis(1500)));
    let mut g = TestGateway::new()
        .upstream("a", &a.url)
        .arg("--attempt-timeout", "5s")
        .arg("--shutdown-delay", "300ms")
        .arg("--shutdown-grace", "10s")
        .spawn()
        .await?;
    let c = g.client();
    let url = g.url.clone();
    let in_flight = tokio::spawn({
        let c = c.clone();
        let url = url.clone();
        async move { c.call(&url, "eth_call", json!([])).await }
    });
    iotex_tests::eventually(Duration::from_secs(5), "call in flight", || async {
        (a.seen("eth_call") >= 1).then_some(())
    })
    .await?;
    let done = g.begin_shutdown().ok_or_else(|| anyhow::anyhow!("no task"))?;
    let readyz = c.get(&format!("{}/readyz", g.admin)).await?;
    assert_eq!(readyz.status, 503, "draining must turn /readyz 503");
    assert!(readyz.text().contains("draining"));
    assert_eq!(in_flight.await??, json!("mock:eth_call"), "the call in flight must complete");
    let report = done.await??;
    assert!(!report.cut, "nothing should have been cut");
    assert!(RawClient::new().post(&url, "{}").await.is_err(), "the listener must be closed after shutdown");
    Ok(())
}

#[tokio::test]
async fn shutdown_cuts_what_outlives_the_grace_period() -> anyhow::Result<()> {
    let a = MockUpstream::spawn(1).await?;
    a.traffic(Mode::Slow(Duration::from_secs(10)));
    let mut g = TestGateway::new()
        .upstream("a", &a.url)
        .arg("--request-timeout", "20s")
        .arg("--attempt-timeout", "20s")
        .arg("--shutdown-grace", "200ms")
        .spawn()
        .await?;
    let c = g.client();
    let url = g.url.clone();
    let in_flight = tokio::spawn(async move { c.call(&url, "eth_call", json!([])).await });
    iotex_tests::eventually(Duration::from_secs(5), "call in flight", || async {
        (a.seen("eth_call") >= 1).then_some(())
    })
    .await?;
    let report = g.begin_shutdown().ok_or_else(|| anyhow::anyhow!("no task"))?.await??;
    assert!(report.cut, "a 10 s call must be cut by a 200 ms grace period");
    in_flight.abort();
    Ok(())
}

#[tokio::test]
async fn an_upstream_health_url_that_fails_takes_the_upstream_out_until_it_recovers() -> anyhow::Result<()> {
    let a = MockUpstream::spawn(5).await?;
    let readiness = MockUpstream::spawn(0).await?;
    let g = TestGateway::new()
        .upstream("a", &a.url)
        .arg("--upstream-health", &format!("a={}/readiness", readiness.url))
        .spawn()
        .await?;
    readiness.traffic(Mode::Unavailable503);
    g.wait_state("a", "down", Duration::from_secs(5)).await?;
    let s = g.status().await?;
    assert!(s["upstreams"][0]["last_error"].as_str().unwrap_or("").contains("health URL answered HTTP 503"), "{s}");
    readiness.traffic(Mode::Normal);
    g.wait_state("a", "up", Duration::from_secs(5)).await?;
    Ok(())
}

/// IoTeX's HTTP 429 with an empty body means "busy": the call moves to another node at once, the busy node
/// sits out `busy-backoff` and comes back by itself, and no number of 429s ejects it.
#[tokio::test]
async fn an_empty_body_429_is_busy_not_failing_the_node_sits_out_briefly_and_is_never_ejected() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    a.traffic(Mode::Busy429);
    let g = gw(&a, &b).arg("--eject-after-failures", "2").arg("--busy-backoff", "30s").spawn().await?;
    let c = g.client();
    for r in wave(&c, &g.url, "eth_getBalance", 10).await {
        assert_eq!(r?, json!("mock:eth_getBalance"));
    }
    assert!(a.seen("eth_getBalance") >= 1, "the busy upstream was never tried");
    g.wait_state("a", "busy", Duration::from_secs(5)).await?;
    // While it sits out, nothing more is sent to it.
    let before = a.seen("eth_getBalance");
    for r in wave(&c, &g.url, "eth_getBalance", 20).await {
        assert_eq!(r?, json!("mock:eth_getBalance"));
    }
    assert_eq!(a.seen("eth_getBalance"), before, "a busy upstream must not get calls during its backoff");
    let m = g.metrics().await?;
    assert!(sample(&m, "iotex_gateway_upstream_busy_total{upstream=\"a\"}").unwrap_or(0.0) >= 1.0, "{m}");
    assert_eq!(sample(&m, "iotex_gateway_ejections_total{upstream=\"a\"}").unwrap_or(0.0), 0.0, "{m}");
    assert_eq!(sample(&m, "iotex_gateway_upstream_up{upstream=\"a\"}"), Some(0.0));
    drop(g);

    // With a short backoff the node returns without any probe having to fail or pass differently.
    let (a, b) = pair().await?;
    a.traffic(Mode::Busy429);
    let g = gw(&a, &b).arg("--eject-after-failures", "2").arg("--busy-backoff", "200ms").spawn().await?;
    let c = g.client();
    for _ in 0..5 {
        for r in wave(&c, &g.url, "eth_getBalance", 10).await {
            assert_eq!(r?, json!("mock:eth_getBalance"));
        }
    }
    a.traffic(Mode::Normal);
    g.wait_state("a", "up", Duration::from_secs(5)).await?;
    let m = g.metrics().await?;
    assert_eq!(sample(&m, "iotex_gateway_ejections_total{upstream=\"a\"}").unwrap_or(0.0), 0.0, "{m}");
    Ok(())
}

/// A raw transaction refused with 429 was never started by the node, so it is safe to send elsewhere.
#[tokio::test]
async fn a_raw_transaction_refused_with_429_is_sent_to_another_node() -> anyhow::Result<()> {
    let (a, b) = pair().await?;
    a.traffic(Mode::Busy429);
    b.traffic(Mode::Busy429);
    let g = gw(&a, &b).arg("--busy-backoff", "50ms").spawn().await?;
    let c = g.client();
    // Both busy: the client gets a clear failure, never a hang.
    let r = c.call(&g.url, "eth_sendRawTransaction", json!(["0x00"])).await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(a.seen("eth_sendRawTransaction") + b.seen("eth_sendRawTransaction"), 2, "each node tried once");
    drop(g);

    // One busy node: a concurrent wave makes some transactions reach it first; every one still lands, on
    // the other node, exactly once.
    let (a, b) = pair().await?;
    a.traffic(Mode::Busy429);
    let g = gw(&a, &b).arg("--busy-backoff", "50ms").spawn().await?;
    let c = g.client();
    let wave =
        futures::future::join_all((0..10).map(|_| c.call(&g.url, "eth_sendRawTransaction", json!(["0x00"])))).await;
    for r in wave {
        assert_eq!(r?, json!("mock:eth_sendRawTransaction"));
    }
    assert!(a.seen("eth_sendRawTransaction") >= 1, "no transaction reached the busy node first");
    assert_eq!(b.seen("eth_sendRawTransaction"), 10, "each transaction lands once on the node that was not busy");
    Ok(())
}
