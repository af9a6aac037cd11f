//! Nothing is lost when a process dies: the real `iotex-injector` binary killed with SIGKILL mid-run leaves
//! no nonce gap the next run on the same accounts trips over, and a node killed and restarted mid-run (its
//! chain kept by anvil's `--state`) still has every accepted action reconciled as included, pending at the
//! end or dropped, with `accepted = included + pending_at_end + dropped`.
#![allow(clippy::unwrap_used)]

use iotex_tests::bins::{self, Proc};
use iotex_tests::eventually;
use iotex_tests::inject::tx_count;
use iotex_tests::nodes::{DEV_ADDRESSES, DEV_MNEMONIC, Node};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// `run` flags for the real binary: two dev accounts from the mnemonic, against `url`.
fn run_args(url: &str, rate: &str, duration: &str, report: &Path) -> Vec<String> {
    [
        "run",
        "--endpoint",
        url,
        "--mnemonic",
        DEV_MNEMONIC,
        "--accounts",
        "2",
        "--rate",
        rate,
        "--duration",
        duration,
        "--poll-interval",
        "100ms",
        "--confirm-timeout",
        "10s",
        "--progress",
        "log",
        "--report",
        report.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn read_report(path: &Path) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The identity every report keeps, overall and per endpoint.
fn assert_identity(r: &Value) {
    for v in std::iter::once(r).chain(r["per_endpoint"].as_array().unwrap()) {
        assert_eq!(
            n(v, "accepted"),
            n(v, "included") + n(v, "pending_at_end") + n(v, "dropped"),
            "accepted = included + pending_at_end + dropped: {v}"
        );
    }
}

/// Waits until the chain settled: each account's latest nonce equals its pending nonce; returns them.
async fn settled(node: &Node) -> anyhow::Result<Vec<u64>> {
    eventually(Duration::from_secs(30), "latest = pending nonce on both accounts", || async {
        let mut out = Vec::new();
        for a in &DEV_ADDRESSES[..2] {
            let (l, p) = (tx_count(node, a, "latest").await.ok()?, tx_count(node, a, "pending").await.ok()?);
            if l != p {
                return None;
            }
            out.push(l);
        }
        Some(out)
    })
    .await
}

#[tokio::test]
async fn a_run_killed_with_sigkill_leaves_no_gap_and_the_next_run_lands_every_action() -> anyhow::Result<()> {
    // Mixed mining: anvil's instant miner can miss a transaction that becomes ready out of nonce order.
    let node = Node::anvil(&["--mixed-mining", "--block-time", "1"]).await?;
    let bin = bins::path("iotex-injector", "iotex-injector")?;
    let dir = tempfile::tempdir()?;
    let before = settled(&node).await?;

    // First run: long, killed once actions are landing.
    let mut first = Proc::spawn(&bin, "injector", &run_args(&node.url, "30", "60s", &dir.path().join("r1.json")))?;
    eventually(Duration::from_secs(60), "the first run's actions to land", || async {
        (tx_count(&node, DEV_ADDRESSES[0], "latest").await.ok()? >= before[0] + 20).then_some(())
    })
    .await?;
    first.kill9().await?;
    assert!(!dir.path().join("r1.json").exists(), "a SIGKILLed run cannot have written its report");
    let after_kill = settled(&node).await?;
    eprintln!("nonces: before {before:?}, after the killed run {after_kill:?}");

    // Second run on the same accounts: it starts from the chain's nonces and every action lands.
    let r2 = dir.path().join("r2.json");
    let mut second = Proc::spawn(&bin, "injector", &run_args(&node.url, "10", "3s", &r2))?;
    assert_eq!(second.wait().await?, Some(0), "the second run failed");
    let r = read_report(&r2)?;
    assert_identity(&r);
    assert_eq!(n(&r, "accepted"), n(&r, "scheduled"), "{r}");
    assert_eq!(n(&r, "included"), n(&r, "accepted"), "a second-run action did not land: {r}");
    assert_eq!((n(&r, "dropped"), n(&r, "pending_at_end")), (0, 0), "{r}");
    let accounts = r["account_nonces"].as_array().unwrap();
    let end = settled(&node).await?;
    let mut landed = 0;
    for (i, a) in accounts.iter().enumerate() {
        assert_eq!(a["start_nonce"].as_u64(), Some(after_kill[i]), "account {i} started at a wrong nonce: {a}");
        landed += end[i] - after_kill[i];
    }
    assert_eq!(landed, n(&r, "accepted"), "chain nonces = start + accepted");
    Ok(())
}

#[tokio::test]
async fn a_node_restarted_mid_run_leaves_every_accepted_action_reconciled() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("anvil-state.json");
    let state_s = state.to_str().unwrap().to_owned();
    // The chain is dumped every second and loaded on restart, so it survives the kill (minus the last second,
    // whose actions the injector must then count as dropped, not lose).
    let flags = ["--mixed-mining", "--block-time", "1", "--state", &state_s, "--state-interval", "1"];
    let mut node = Node::anvil(&flags).await?;
    let port = node.port;
    let bin = bins::path("iotex-injector", "iotex-injector")?;
    let start = settled(&node).await?;
    let report = dir.path().join("r.json");
    let mut run = Proc::spawn(&bin, "injector", &run_args(&node.url, "10", "12s", &report))?;
    eventually(Duration::from_secs(60), "actions to land before the restart", || async {
        (tx_count(&node, DEV_ADDRESSES[0], "latest").await.ok()? >= start[0] + 10).then_some(())
    })
    .await?;
    eventually(Duration::from_secs(10), "a state dump", || async { state.exists().then_some(()) }).await?;
    node.kill();
    let node = Node::anvil_on(Some(port), &flags).await?;
    let code = run.wait().await?;
    assert!(matches!(code, Some(0 | 3)), "the run did not finish normally: {code:?}");
    let r = read_report(&report)?;
    eprintln!(
        "node restarted mid-run: accepted {}, included {}, pending_at_end {}, dropped {}",
        n(&r, "accepted"),
        n(&r, "included"),
        n(&r, "pending_at_end"),
        n(&r, "dropped")
    );
    assert_identity(&r);
    assert!(n(&r, "accepted") > 0 && n(&r, "included") > 0, "{r}");
    // Nothing on the restarted chain is unaccounted for: every nonce it moved by is an accepted action.
    let end = settled(&node).await?;
    let moved: u64 = end.iter().zip(&start).map(|(e, s)| e - s).sum();
    assert!(moved <= n(&r, "accepted"), "{moved} nonces moved but only {} actions accepted", n(&r, "accepted"));
    // Known gap (docs/reliability.md): an action seen included in a block the node lost at its restart (after
    // its last state dump) stays counted as included; the report has no end-of-run receipt re-check yet.
    eprintln!("restarted chain holds {moved} of the {} actions reported included", n(&r, "included"));
    Ok(())
}
