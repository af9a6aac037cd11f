//! The injector against a real IoTeX cluster (5 `iotex-server` delegates in ROLLDPOS, the chart's config),
//! through the gateway: fees from the chain, EIP-155 with the chain's id, legacy and EIP-1559 envelopes, the
//! Counter contract, exact accounting proved three ways (the injector's report, the rise of on-chain nonces,
//! and the transactions found by scanning the blocks), and the node's real rejection texts classified (all
//! provoked on the real node but "txpool is full", which v2.1.0 sends only in a race it cannot be driven to).

use alloy_primitives::{Address, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use iotex_injector::accounts::parse_key;
use iotex_injector::error::Kind;
use iotex_injector::mix::ActionKind;
use iotex_injector::run_config::RunConfig;
use iotex_injector::signer::{self, Call, Fees, TxType};
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::http::RawClient;
use iotex_tests::inject::{counter_total_at, fees_paid, scan_blocks, tx_count_at};
use iotex_tests::iotex::{Cluster, ClusterInfo};
use iotex_tests::nodes::parse_quantity;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The gateway in front of every node of the cluster, health from each node's `/readiness`.
async fn gateway(info: &ClusterInfo) -> anyhow::Result<RunningGateway> {
    // Probes every 500 ms (timeout derived from it): real nodes on a busy 2-core machine can take over the
    // test default's 100 ms to answer, and would flap.
    let mut gw = TestGateway::new().arg("--health-interval", "500ms");
    for n in &info.nodes {
        gw = gw.upstream(&n.name, &n.web3).arg("--upstream-health", &format!("{}={}/readiness", n.name, n.stats));
    }
    gw.spawn().await
}

fn keys(info: &ClusterInfo, range: std::ops::Range<usize>) -> anyhow::Result<Vec<PrivateKeySigner>> {
    info.funded_keys[range].iter().map(|k| Ok(parse_key("key", k)?)).collect()
}

fn run_config(url: &str, keys: Vec<PrivateKeySigner>, rate: f64, secs: u64) -> anyhow::Result<RunConfig> {
    let mut c = RunConfig::new(url, keys, rate, Duration::from_secs(secs))?;
    // A block every 2 s: inclusion takes a few seconds, so leave room at the end.
    c.confirm_timeout = Duration::from_secs(60);
    c.drain_timeout = Duration::from_secs(20);
    c.poll_interval = Duration::from_millis(250);
    Ok(c)
}

async fn call(url: &str, method: &str, params: Value) -> anyhow::Result<Value> {
    RawClient::new().call(url, method, params).await
}

async fn nonce(url: &str, addr: &str) -> anyhow::Result<u64> {
    tx_count_at(url, addr, "latest").await
}

/// Transactions by sender, and the envelope types seen.
fn tally(txs: &[Value]) -> (BTreeMap<String, u64>, BTreeSet<String>) {
    let mut by_sender = BTreeMap::new();
    let mut types = BTreeSet::new();
    for tx in txs {
        *by_sender.entry(tx["from"].as_str().unwrap_or_default().to_lowercase()).or_insert(0) += 1;
        types.insert(tx["type"].as_str().unwrap_or("0x0").to_owned());
    }
    (by_sender, types)
}

/// Runs the injector through the gateway and checks every count three ways. Returns the report.
async fn run_and_prove(
    cluster: &Cluster,
    gw: &RunningGateway,
    cfg: RunConfig,
) -> anyhow::Result<(iotex_shared::report::Report, u64)> {
    let info = cluster.info();
    let url = info.nodes[0].web3.clone();
    let mix = cfg.mix;
    let start_height = cluster.head(0).await?;
    let out = iotex_injector::run(cfg, std::future::pending()).await?;
    let r = out.report;
    assert_eq!(r.chain_id, info.chain_id, "signed for the chain's own EVM id (EIP-155)");
    assert!(r.scheduled > 0);
    assert_eq!(r.accepted, r.scheduled, "every scheduled action accepted: {:?} {:?}", r.rejected, r.sample_errors);
    assert_eq!(r.included, r.accepted, "every accepted action included: {r:#?}");
    assert_eq!(r.pending_at_end + r.dropped, 0, "{r:#?}");
    assert!(r.rejected.is_empty(), "{:?} {:?}", r.rejected, r.sample_errors);

    // The chain agrees: each account's nonce rose by what it had included...
    cluster.wait_synced(1, Duration::from_secs(60)).await?;
    let mut rise = 0;
    let mut senders = BTreeSet::new();
    for a in &r.account_nonces {
        let now = nonce(&url, &a.address).await?;
        rise += now - a.start_nonce;
        senders.insert(a.address.to_lowercase());
    }
    assert_eq!(rise, r.included, "the on-chain nonces rose by exactly the included count");
    // ...and the blocks hold exactly that many transactions from those accounts. Only blocks after the
    // run began: an earlier test's last actions of the same accounts can sit in the block it began on.
    let end_height = cluster.head(0).await?;
    let txs = scan_blocks(&url, start_height + 1, end_height, &senders).await?;
    let (by_sender, types) = tally(&txs);
    let in_blocks: u64 = by_sender.values().sum();
    // The Counter's deployment is a transaction of one of the accounts too, sent before the first tick.
    let deployments = r.contracts.iter().flatten().count() as u64;
    assert_eq!(in_blocks, r.included + deployments, "blocks {start_height}..={end_height} by sender: {by_sender:?}");

    if let Some(contract) = r.contracts.iter().flatten().next() {
        let executions = (0..r.scheduled).filter(|s| mix.pick(*s) == ActionKind::Execution).count() as u64;
        assert!(executions > 0);
        assert_eq!(counter_total_at(&url, contract).await?, executions, "every Counter.bump ran");
    }
    // ...and the fees the report gives are what the receipts say: the injector reads them a block at a time
    // (eth_getBlockReceipts); here each action's own receipt, summed exactly. The deployment (no `to`) is
    // set-up, not a run action.
    assert_eq!((r.fee.measured, r.fee.unmeasured), (r.included, 0), "every inclusion's fee read: {:?}", r.fee);
    let actions: Vec<Value> = txs.iter().filter(|t| !t["to"].is_null()).cloned().collect();
    let paid = fees_paid(&url, &actions).await?;
    assert_eq!(r.fee.total, paid.to_string(), "the report's total fee is the receipts' sum: {:?}", r.fee);
    let m = gw.metrics().await?;
    let sent = sample(&m, "iotex_gateway_requests_total{method=\"eth_sendRawTransaction\",outcome=\"ok\"}");
    assert!(sent.unwrap_or(0.0) >= r.accepted as f64, "the actions went through the gateway");
    eprintln!(
        "{} actions, {} tx types {types:?}: submit p99 {:.1} ms, inclusion p50/p99 {:.0}/{:.0} ms, fee p50/p99 \
         {:.0}/{:.0} Gwei, total {} rau",
        r.included,
        r.tx_type,
        r.submit_latency_ms.p99,
        r.inclusion_latency_ms.p50,
        r.inclusion_latency_ms.p99,
        r.fee.p50_gwei,
        r.fee.p99_gwei,
        r.fee.total
    );
    Ok((r, start_height))
}

#[tokio::test]
async fn sixty_seconds_at_50_per_second_through_the_gateway_all_land_and_the_blocks_agree() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let gw = gateway(&info).await?;
    let mut cfg = run_config(&gw.url, keys(&info, 0..5)?, 50.0, 60)?;
    // Transfers and Counter.bump calls, 4:1 (the injector deploys the Counter first).
    cfg.mix = iotex_injector::mix::Mix { transfer: 80, execution: 20 };
    let (r, _) = run_and_prove(cluster, &gw, cfg).await?;
    assert_eq!(r.scheduled, 3000);
    assert_eq!(r.tx_type, "legacy");
    Ok(())
}

#[tokio::test]
async fn eip1559_actions_carry_the_chains_suggested_fees_and_land() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let gw = gateway(&info).await?;
    // The chain's own quotes: IoTeX's fee floor is 1,000 Gwei (10^12 Rau).
    let gas_price = parse_quantity(&call(&gw.url, "eth_gasPrice", json!([])).await?)?;
    let tip = parse_quantity(&call(&gw.url, "eth_maxPriorityFeePerGas", json!([])).await?)?;
    assert!(gas_price >= 1_000_000_000_000, "eth_gasPrice {gas_price} is below IoTeX's floor");
    let mut cfg = run_config(&gw.url, keys(&info, 0..2)?, 10.0, 5)?;
    cfg.tx_type = TxType::Eip1559;
    let (r, run_start) = run_and_prove(cluster, &gw, cfg).await?;
    // Blocks after the run began only: tests share accounts, and an earlier test's last legacy actions
    // can sit in the block this run began on.
    let start = run_start + 1;
    assert_eq!(r.tx_type, "eip1559");
    // The blocks hold type-2 transactions with the fees the chain suggested.
    let senders: BTreeSet<String> = r.account_nonces.iter().map(|a| a.address.to_lowercase()).collect();
    let end = cluster.head(0).await?;
    let txs = scan_blocks(&info.nodes[0].web3, start, end, &senders).await?;
    assert_eq!(tally(&txs).1, BTreeSet::from(["0x2".to_owned()]), "only EIP-1559 envelopes");
    let tx = txs.first().ok_or_else(|| anyhow::anyhow!("no injector transaction in blocks {start}..={end}"))?;
    let max_fee = parse_quantity(&tx["maxFeePerGas"])?;
    let max_tip = parse_quantity(&tx["maxPriorityFeePerGas"])?;
    assert_eq!(max_fee, 2 * gas_price, "fee cap is twice the quoted gas price: {tx}");
    assert_eq!(max_tip, tip.min(2 * gas_price), "tip is the chain's eth_maxPriorityFeePerGas: {tx}");
    Ok(())
}

/// Sends one signed action straight to a node and returns its JSON-RPC error message (or the hash).
async fn send_raw(url: &str, raw: &[u8]) -> Result<String, String> {
    let hex = format!("0x{}", alloy_primitives::hex::encode(raw));
    match call(url, "eth_sendRawTransaction", json!([hex])).await {
        Ok(v) => Ok(v.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn transfer(to: Address, gas_limit: u64) -> Call {
    Call { to, value: U256::from(1u8), input: Bytes::new(), gas_limit }
}

#[tokio::test]
async fn the_nodes_real_rejections_are_classified() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let url = info.nodes[1].web3.clone();
    let chain = info.chain_id;
    let price = parse_quantity(&call(&url, "eth_gasPrice", json!([])).await?)? as u128;
    // A key of its own, so no other test's nonces move under it.
    let key = parse_key("key", &info.funded_keys[4])?;
    let me = format!("{:#x}", key.address());
    let to = Address::repeat_byte(0x42);
    // The injector classifies from the JSON-RPC message, exactly as it does on the hot path.
    let classify = Kind::from_message;

    // Wrong chain id: signed for 4689 (mainnet), sent to this chain.
    let n = nonce(&url, &me).await?;
    let wrong = signer::sign(&key, chain + 1, n, TxType::Legacy, Fees::flat(price), &transfer(to, 21_000))?;
    let msg = send_raw(&url, &wrong.raw).await.expect_err("another chain's action must be refused");
    assert_eq!(classify(&msg), Kind::ChainId, "{msg}");

    // Underpriced: a tenth of the chain's floor.
    let cheap = signer::sign(&key, chain, n, TxType::Legacy, Fees::flat(price / 10), &transfer(to, 21_000))?;
    let msg = send_raw(&url, &cheap.raw).await.expect_err("below the floor must be refused");
    assert_eq!(classify(&msg), Kind::Underpriced, "{msg}");

    // Insufficient funds: a fresh key with nothing.
    let pauper = PrivateKeySigner::random();
    let broke = signer::sign(&pauper, chain, 0, TxType::Legacy, Fees::flat(price), &transfer(to, 21_000))?;
    let msg = send_raw(&url, &broke.raw).await.expect_err("an empty account must be refused");
    assert_eq!(classify(&msg), Kind::InsufficientFunds, "{msg}");

    // Nonce too low: one action included, then its nonce again.
    let ok = signer::sign(&key, chain, n, TxType::Legacy, Fees::flat(price), &transfer(to, 21_000))?;
    send_raw(&url, &ok.raw).await.map_err(|e| anyhow::anyhow!("a valid action was refused: {e}"))?;
    // IoTeX answers eth_getTransactionCount with the pending nonce for every tag: wait for the receipt.
    let hash = format!("{:#x}", ok.hash);
    iotex_tests::eventually(Duration::from_secs(30), "the action included", || async {
        let r = call(&url, "eth_getTransactionReceipt", json!([hash])).await.ok()?;
        (!r.is_null()).then_some(())
    })
    .await?;
    let again = signer::sign(&key, chain, n, TxType::Legacy, Fees::flat(price), &transfer(Address::ZERO, 21_000))?;
    let msg = send_raw(&url, &again.raw).await.expect_err("a used nonce must be refused");
    assert_eq!(classify(&msg), Kind::NonceTooLow, "{msg}");

    // Pool full cannot be provoked on demand on v2.1.0: a full pool (320 M intrinsic gas or 32,000
    // actions) evicts its lowest-priority action and answers "txpool is full" (action.ErrTxPoolOverflow)
    // only when the evicted one is the incoming action itself. 150 queued 32,000-byte transfers (480 M
    // intrinsic gas) behind a nonce gap were all accepted. The text it sends then is that constant:
    assert_eq!(classify("txpool is full"), Kind::PoolFull);
    Ok(())
}
