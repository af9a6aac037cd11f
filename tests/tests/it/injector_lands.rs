//! N actions at rate R land: accepted == included == N, each account's nonce advances exactly, transfers and
//! executions both land — on anvil (automine and 1 s blocks), ganache, with EIP-1559, across two endpoints,
//! and with freshly funded accounts.

use iotex_injector::mix::{ActionKind, Mix};
use iotex_injector::signer::TxType;
use iotex_tests::inject::{config, counter_total, fees_paid, per_account, scan_blocks, tx_count, with_mix};
use iotex_tests::nodes::parse_quantity;
use iotex_tests::nodes::{DEV_KEYS, Node};
use std::time::Duration;

/// Checks the report against the chain: counts, per-account nonces, executions in the contract.
async fn assert_landed(nodes: &[&Node], report: &iotex_shared::report::Report, mix: Mix) -> anyhow::Result<()> {
    anyhow::ensure!(report.equations.iter().all(|e| e.holds), "the report's own equations: {:?}", report.equations);
    let n = report.scheduled;
    assert!(n > 0);
    assert_eq!(report.sent, n, "{report:#?}");
    assert_eq!(report.accepted, n, "{report:#?}");
    assert_eq!(report.included, n, "{report:#?}");
    assert_eq!(report.pending_at_end + report.dropped, 0);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let accounts = report.account_nonces.len();
    for (i, a) in report.account_nonces.iter().enumerate() {
        let node = nodes[a.endpoint];
        let end = tx_count(node, &a.address, "latest").await?;
        let deploy = u64::from(
            mix.execution > 0 && report.account_nonces.iter().position(|x| x.endpoint == a.endpoint) == Some(i),
        );
        assert_eq!(
            end - a.start_nonce,
            per_account(n, accounts, i),
            "account {i} nonce (deploy tx before start: {deploy})"
        );
        assert_eq!(a.end_nonce, Some(end));
    }
    if mix.execution > 0 {
        let execs = (0..n).filter(|s| mix.pick(*s) == ActionKind::Execution).count() as u64;
        let mut total = 0;
        for (ep, node) in nodes.iter().enumerate() {
            let c = report.contracts[ep].as_deref().ok_or_else(|| anyhow::anyhow!("no contract deployed"))?;
            total += counter_total(node, c).await?;
        }
        assert_eq!(total, execs, "every execution ran in the contract");
        assert!(execs > 0 && execs < n, "both kinds were sent");
    }
    assert_fees(nodes, report).await
}

/// Each inclusion's fee is read or counted unmeasured; where all were read, the total is what the actions'
/// own receipts say (each chain here is fresh: every transaction of the pool accounts in it is the run's,
/// apart from the Counter deployments, which have no `to`).
async fn assert_fees(nodes: &[&Node], report: &iotex_shared::report::Report) -> anyhow::Result<()> {
    let f = &report.fee;
    assert_eq!(f.measured + f.unmeasured, report.included, "{f:?}");
    if f.unmeasured > 0 {
        return Ok(());
    }
    let senders = report.account_nonces.iter().map(|a| a.address.to_lowercase()).collect();
    let mut paid = 0u128;
    for node in nodes {
        let head = parse_quantity(&node.rpc("eth_blockNumber", serde_json::json!([])).await?)?;
        let txs = scan_blocks(&node.url, 0, head, &senders).await?;
        let actions: Vec<serde_json::Value> = txs.into_iter().filter(|t| !t["to"].is_null()).collect();
        paid += fees_paid(&node.url, &actions).await?;
    }
    assert_eq!(f.total, paid.to_string(), "{f:?}");
    assert!(paid > 0 && f.p50_gwei > 0.0 && f.p99_gwei >= f.p50_gwei, "{f:?}");
    Ok(())
}

#[tokio::test]
async fn anvil_automine_transfers_and_executions_all_land() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let cfg = with_mix(config(&node.url, 3, 60.0, Duration::from_secs(2))?, 80, 20);
    let mix = cfg.mix;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    assert_eq!(out.report.scheduled, 120);
    // anvil serves eth_getBlockReceipts: every fee is read, from one call per block.
    assert_eq!(out.report.fee.measured, 120, "{:?}", out.report.fee);
    assert_landed(&[&node], &out.report, mix).await
}

#[tokio::test]
async fn anvil_with_one_second_blocks_lands_everything_with_block_time_latency() -> anyhow::Result<()> {
    let node = Node::anvil(&["--block-time", "1"]).await?;
    let cfg = with_mix(config(&node.url, 2, 40.0, Duration::from_secs(2))?, 50, 50);
    let mix = cfg.mix;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    assert_landed(&[&node], &out.report, mix).await?;
    // With interval mining, inclusion waits for a block: it must be measured, not the submit time.
    assert!(out.report.inclusion_latency_ms.max > out.report.submit_latency_ms.p50);
    Ok(())
}

#[tokio::test]
async fn ganache_lands_everything() -> anyhow::Result<()> {
    let node = Node::ganache(&[]).await?;
    // One send in flight per account (the default) keeps nonces in order, which ganache needs; its default
    // (eager) instamine then answers every send after mining it.
    let cfg = with_mix(config(&node.url, 2, 30.0, Duration::from_secs(2))?, 80, 20);
    let mix = cfg.mix;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    // ganache has no eth_getBlockReceipts (its error object, with a `stack` field, does not even parse): the
    // follower falls back to block hashes and reads each included action's receipt for its fee.
    assert_eq!(out.report.fee.measured, out.report.included, "{:?}", out.report.fee);
    assert_landed(&[&node], &out.report, mix).await
}

#[tokio::test]
async fn eip1559_actions_land() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let mut cfg = config(&node.url, 2, 40.0, Duration::from_secs(1))?;
    cfg.tx_type = TxType::Eip1559;
    let mix = cfg.mix;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    assert_eq!(out.report.tx_type, "eip1559");
    assert_landed(&[&node], &out.report, mix).await?;
    // The node really holds a type-2 transaction.
    let block = node.rpc("eth_getBlockByNumber", serde_json::json!(["0x1", true])).await?;
    assert_eq!(block["transactions"][0]["type"], "0x2");
    Ok(())
}

#[tokio::test]
async fn two_endpoints_keep_account_affinity() -> anyhow::Result<()> {
    // Local dev nodes do not gossip: only account affinity makes a two-endpoint run land everything.
    let (a, b) = tokio::try_join!(Node::anvil(&[]), Node::anvil(&[]))?;
    let mut cfg = with_mix(config(&a.url, 4, 60.0, Duration::from_secs(2))?, 80, 20);
    cfg.endpoints.push(b.url.clone());
    let mix = cfg.mix;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    let r = &out.report;
    assert_eq!(r.per_endpoint.len(), 2);
    assert_eq!(r.per_endpoint[0].sent + r.per_endpoint[1].sent, r.scheduled);
    assert_eq!(r.per_endpoint[0].sent, r.per_endpoint[1].sent, "accounts are spread round-robin");
    assert_eq!(r.per_endpoint[0].accounts, 2);
    assert_landed(&[&a, &b], r, mix).await?;
    // Account 0 is bound to endpoint 0: it never sent anything to endpoint 1.
    let acct0 = &r.account_nonces[0].address;
    assert_eq!(tx_count(&b, acct0, "latest").await?, 0);
    Ok(())
}

#[tokio::test]
async fn fresh_accounts_are_funded_then_used() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let mut cfg = config(&node.url, 1, 30.0, Duration::from_secs(1))?;
    cfg.keys = (0..3).map(|_| alloy_signer_local::PrivateKeySigner::random()).collect();
    cfg.fund = Some(iotex_injector::accounts::Funding {
        key: iotex_injector::accounts::parse_key("fund-from", DEV_KEYS[4])?,
        amount: iotex_injector::amount::parse_amount("1", "iotx").map_err(anyhow::Error::msg)?,
    });
    let mix = cfg.mix;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    assert_landed(&[&node], &out.report, mix).await
}

#[tokio::test]
async fn transfers_to_an_io1_recipient_arrive_at_its_0x_address() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let recipient = alloy_primitives::Address::repeat_byte(0x42);
    let mut cfg = config(&node.url, 2, 40.0, Duration::from_secs(1))?;
    cfg.to = Some(iotex_injector::address::parse(&iotex_injector::address::to_io(&recipient))?);
    cfg.value = alloy_primitives::U256::from(1000u64);
    let r = iotex_injector::run(cfg, std::future::pending()).await?.report;
    assert_eq!(r.included, 40);
    let bal = node.rpc("eth_getBalance", serde_json::json!([format!("{recipient:#x}"), "latest"])).await?;
    assert_eq!(iotex_tests::nodes::parse_quantity(&bal)?, 40 * 1000);
    Ok(())
}

#[tokio::test]
async fn step_and_ramp_profiles_schedule_their_integral() -> anyhow::Result<()> {
    let sink = iotex_tests::sink::Sink::new().spawn().await?;
    let mut cfg = config(&sink.url, 4, 1.0, Duration::from_secs(1))?;
    cfg.confirm = false;
    cfg.profile = iotex_injector::schedule::Profile::steps("20@1s,60@500ms")?;
    let r = iotex_injector::run(cfg.clone(), std::future::pending()).await?.report;
    assert_eq!((r.scheduled, r.accepted), (50, 50));
    cfg.profile = iotex_injector::schedule::Profile::ramp(0.0, 80.0, Duration::from_secs(1))?;
    let r = iotex_injector::run(cfg, std::future::pending()).await?.report;
    assert_eq!((r.scheduled, r.accepted), (40, 40));
    assert_eq!(sink.sends.load(std::sync::atomic::Ordering::Relaxed), 90);
    Ok(())
}
