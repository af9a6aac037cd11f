//! A stalled chain must not break the report's identity `accepted = included + pending_at_end + dropped`,
//! and `accepted` must not exceed what reached the node: anvil with mining off (the pool grows, no block
//! comes) and hung for a moment mid-run (SIGSTOP: sends time out, accounts resync their nonces while earlier
//! sends of theirs are still queued in the node's socket, so the same signed bytes can go out twice), then
//! mining on so the chain catches up. The IoTeX version of this is `iotex_native::a_stalled_chain_*`.

use iotex_shared::report::Report;
use iotex_tests::eventually;
use iotex_tests::inject::{config, tx_count};
use iotex_tests::nodes::Node;
use serde_json::json;
use std::time::Duration;

/// The identity, in total and per endpoint, and each step's inclusion latencies timing every inclusion.
pub fn assert_identity(r: &Report) {
    assert!(r.equations.iter().all(|e| e.holds), "the report's own equations: {:?}", r.equations);
    assert_eq!(r.accepted, r.included + r.pending_at_end + r.dropped, "accepted = included + pending + dropped");
    for e in &r.per_endpoint {
        assert_eq!(e.accepted, e.included + e.pending_at_end + e.dropped, "endpoint {}", e.endpoint);
    }
    let rejected: u64 = r.rejected.values().sum();
    assert!(r.accepted + rejected <= r.sent, "each sent tick ends counted at most once");
    let timed: u64 = r.steps.iter().map(|s| s.inclusion_latency_ms.count).sum();
    assert_eq!(timed, r.included, "every inclusion is timed in the step of its intended send time");
}

async fn pool_len(node: &Node) -> anyhow::Result<u64> {
    let s = node.rpc("txpool_status", json!([])).await?;
    Ok(iotex_tests::nodes::parse_quantity(&s["pending"])? + iotex_tests::nodes::parse_quantity(&s["queued"])?)
}

#[tokio::test]
async fn a_stalled_then_hung_anvil_keeps_the_identity_and_accepted_is_the_nonce_rise() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    node.rpc("evm_setAutomine", json!([false])).await?;
    let mut cfg = config(&node.url, 3, 100.0, Duration::from_secs(5))?;
    // Several sends per account in flight and a short timeout: the hang turns into unanswered sends and
    // nonce resyncs behind sends the node has not read yet.
    cfg.account_in_flight = 4;
    cfg.request_timeout = Duration::from_millis(300);
    cfg.confirm_timeout = Duration::from_secs(30);
    let run = tokio::spawn(iotex_injector::run(cfg, std::future::pending()));
    let stalled =
        eventually(Duration::from_secs(20), "actions piling up in the pool of a chain that stalls", || async {
            if run.is_finished() {
                return Some(false);
            }
            pool_len(&node).await.ok().filter(|n| *n >= 100).map(|_| true)
        })
        .await?;
    assert!(stalled, "the run ended before the stall: {:?}", run.await?);
    assert_eq!(node.block_number().await?, 0, "no block while mining is off");
    node.pause()?;
    // The hang itself lasts 1.5 s (this is the fault being injected, not a wait for state).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node.resume()?;
    // The chain catches up: a block a second from now on.
    node.rpc("evm_setIntervalMining", json!([1])).await?;
    let r = run.await??.report;
    eprintln!(
        "scheduled {} sent {} accepted {} included {} pending {} dropped {} rejected {:?} retried {:?} gap fillers {}",
        r.scheduled, r.sent, r.accepted, r.included, r.pending_at_end, r.dropped, r.rejected, r.retried, r.gap_fillers
    );
    assert_identity(&r);
    assert!(r.rejected.contains_key("timeout") || r.retried.values().sum::<u64>() > 0, "the hang was felt: {r:#?}");

    // Everything still in the pool gets mined; then the nonces say how many actions reached the node.
    eventually(Duration::from_secs(30), "the pool to empty", || async {
        pool_len(&node).await.ok().filter(|n| *n == 0).map(|_| ())
    })
    .await?;
    let mut rise = 0;
    for a in &r.account_nonces {
        rise += tx_count(&node, &a.address, "latest").await? - a.start_nonce;
    }
    assert_eq!(r.dropped, 0, "anvil drops nothing");
    assert_eq!(rise, r.accepted + r.gap_fillers, "accepted (plus gap fillers) is exactly the on-chain nonce rise");
    Ok(())
}
