//! Native IoTeX actions (`--api grpc`: `SendAction` over gRPC) on a real 5-node cluster: every action lands,
//! the count the injector reports equals the rise of the accounts' on-chain nonces (which IoTeX shares
//! between native and web3 actions), executions ran the Counter, a mixed-API run loads both paths at once,
//! the node's real gRPC refusals map to the failure kinds, and a chain stalled by pausing its producers keeps
//! the report's identity.

use alloy_primitives::{Address, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use iotex_injector::accounts::parse_key;
use iotex_injector::error::Kind;
use iotex_injector::mix::{ActionKind, Mix};
use iotex_injector::native::Client;
use iotex_injector::native::sign::{self, CoreParams};
use iotex_injector::node::Api;
use iotex_injector::run_config::RunConfig;
use iotex_injector::send::SendOutcome;
use iotex_injector::signer::Call;
use iotex_shared::report::Report;
use iotex_tests::inject::{counter_total_at, fees_paid, scan_blocks, tx_count_at};
use iotex_tests::iotex::{Cluster, ClusterInfo};
use std::time::Duration;

fn keys(info: &ClusterInfo, range: std::ops::Range<usize>) -> anyhow::Result<Vec<PrivateKeySigner>> {
    info.funded_keys[range].iter().map(|k| Ok(parse_key("key", k)?)).collect()
}

fn config(endpoints: &[(Api, String)], keys: Vec<PrivateKeySigner>, rate: f64, secs: u64) -> anyhow::Result<RunConfig> {
    let mut c = RunConfig::new(&endpoints[0].1, keys, rate, Duration::from_secs(secs))?;
    c.endpoints = endpoints.iter().map(|(_, e)| e.clone()).collect();
    c.apis = endpoints.iter().map(|(a, _)| *a).collect();
    c.mix = Mix { transfer: 80, execution: 20 };
    c.confirm_timeout = Duration::from_secs(60);
    c.drain_timeout = Duration::from_secs(20);
    c.poll_interval = Duration::from_millis(250);
    Ok(c)
}

/// Runs and proves: all accepted, all included, nothing rejected, nonces rose by exactly `included`, the
/// Counter counted every execution, and the fees reported are what the receipts say.
async fn run_and_prove(cluster: &Cluster, cfg: RunConfig) -> anyhow::Result<Report> {
    let info = cluster.info();
    let web3 = info.nodes[0].web3.clone();
    let mix = cfg.mix;
    let start_height = cluster.head(0).await?;
    let r = iotex_injector::run(cfg, std::future::pending()).await?.report;
    assert!(r.scheduled > 0);
    assert_eq!(r.accepted, r.scheduled, "every scheduled action accepted: {:?} {:?}", r.rejected, r.sample_errors);
    assert_eq!(r.included, r.accepted, "every accepted action included: {r:#?}");
    assert_eq!(r.pending_at_end + r.dropped, 0, "{r:#?}");
    assert!(r.rejected.is_empty(), "{:?} {:?}", r.rejected, r.sample_errors);

    cluster.wait_synced(1, Duration::from_secs(60)).await?;
    let mut rise = 0;
    for a in &r.account_nonces {
        rise += tx_count_at(&web3, &a.address, "latest").await? - a.start_nonce;
    }
    // The Counter deployments (one per endpoint) are actions of pool accounts too, sent before the first tick,
    // so they are already in the start nonces.
    assert_eq!(rise, r.included, "the on-chain nonces rose by exactly the included count");
    let executions = (0..r.scheduled).filter(|s| mix.pick(*s) == ActionKind::Execution).count() as u64;
    let mut counted = 0;
    for c in r.contracts.iter().flatten() {
        counted += counter_total_at(&web3, c).await?;
    }
    assert_eq!(counted, executions, "every Counter.bump ran");
    // The fees: native actions' receipts give gas used; the injector multiplies by the price it signed with.
    // Here each action's web3 receipt (the same chain, another API), summed exactly. Deployments (no `to`)
    // are set-up, not run actions.
    let senders = r.account_nonces.iter().map(|a| a.address.to_lowercase()).collect();
    let end_height = cluster.head(0).await?;
    let actions: Vec<serde_json::Value> = scan_blocks(&web3, start_height + 1, end_height, &senders)
        .await?
        .into_iter()
        .filter(|t| !t["to"].is_null())
        .collect();
    assert_eq!(actions.len() as u64, r.included, "blocks {start_height}..={end_height}");
    assert_eq!((r.fee.measured, r.fee.unmeasured), (r.included, 0), "every inclusion's fee read: {:?}", r.fee);
    assert_eq!(r.fee.total, fees_paid(&web3, &actions).await?.to_string(), "{:?}", r.fee);
    eprintln!(
        "{} actions included (rise of nonces {rise}, {executions} executions): submit p50/p99 {:.1}/{:.1} ms, \
         inclusion p50/p99/max {:.0}/{:.0}/{:.0} ms, achieved {:.2}/s, fee p50 {:.0} Gwei, total {} rau",
        r.included,
        r.submit_latency_ms.p50,
        r.submit_latency_ms.p99,
        r.inclusion_latency_ms.p50,
        r.inclusion_latency_ms.p99,
        r.inclusion_latency_ms.max,
        r.achieved_rate,
        r.fee.p50_gwei,
        r.fee.total
    );
    Ok(r)
}

#[tokio::test]
async fn sixty_seconds_at_50_per_second_native_all_land_and_the_nonces_agree() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let eps: Vec<(Api, String)> = info.nodes[1..3].iter().map(|n| (Api::Grpc, n.grpc.clone())).collect();
    let r = run_and_prove(cluster, config(&eps, keys(&info, 0..4)?, 50.0, 60)?).await?;
    assert_eq!(r.scheduled, 3000);
    assert_eq!(r.chain_id, info.native_chain_id, "a gRPC-only run reports the native chain id");
    assert!(r.per_endpoint.iter().all(|e| e.included > 0), "both gRPC endpoints carried actions");
    Ok(())
}

#[tokio::test]
async fn a_mixed_run_loads_the_native_and_the_web3_path_at_once() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let eps = vec![(Api::Grpc, info.nodes[1].grpc.clone()), (Api::Web3, info.nodes[2].web3.clone())];
    let r = run_and_prove(cluster, config(&eps, keys(&info, 0..4)?, 20.0, 10)?).await?;
    assert_eq!(r.chain_id, info.chain_id, "with a web3 endpoint the report keeps the EVM chain id");
    for e in &r.per_endpoint {
        assert!(e.included > 0 && e.included == e.accepted, "{e:?}");
    }
    Ok(())
}

fn transfer(to: Address) -> Call {
    Call { to, value: U256::from(1u8), input: Bytes::new(), gas_limit: 21_000 }
}

/// Signs a native transfer and sends it; the outcome as the hot path sees it.
async fn send(c: &Client, key: &PrivateKeySigner, nonce: u64, p: CoreParams) -> anyhow::Result<SendOutcome> {
    let core = sign::core_for(ActionKind::Transfer, &transfer(Address::repeat_byte(0x42)), nonce, p);
    let s = sign::seal(key, &sign::pubkey(key), core)?;
    Ok(c.send_action(s.action).await.0)
}

fn kind(o: &SendOutcome) -> Option<Kind> {
    match o {
        SendOutcome::Rejected(k, _) | SendOutcome::Unknown(k) => Some(*k),
        SendOutcome::Accepted => None,
    }
}

#[tokio::test]
async fn the_nodes_real_grpc_refusals_are_classified() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let c = Client::new(&info.nodes[1].grpc, Duration::from_secs(10))?;
    let chain = c.chain_meta().await?.chain_id;
    assert_eq!(u64::from(chain), info.native_chain_id);
    let price = c.gas_price().await?;
    let p = CoreParams { chain_id: chain, gas_price: price };
    let key = parse_key("key", &info.funded_keys[4])?;
    let n = c.pending_nonce(key.address()).await?;

    let o = send(&c, &key, n, CoreParams { chain_id: chain + 1, ..p }).await?;
    assert_eq!(kind(&o), Some(Kind::ChainId), "another chain's id: {o:?}");
    let o = send(&c, &key, n, CoreParams { gas_price: price / 10, ..p }).await?;
    assert_eq!(kind(&o), Some(Kind::Underpriced), "a tenth of the floor: {o:?}");
    let o = send(&c, &PrivateKeySigner::random(), 0, p).await?;
    assert_eq!(kind(&o), Some(Kind::InsufficientFunds), "an empty account: {o:?}");

    // Nonce too low: one action included, then its nonce again.
    let core = sign::core_for(ActionKind::Transfer, &transfer(Address::repeat_byte(0x42)), n, p);
    let ok = sign::seal(&key, &sign::pubkey(&key), core)?;
    let (o, theirs) = c.send_action(ok.action.clone()).await;
    assert_eq!(o, SendOutcome::Accepted);
    assert_eq!(theirs, Some(ok.hash), "the node hashes our bytes as we do");
    assert!(c.wait_receipt(ok.hash, Duration::from_secs(30)).await?.is_some_and(|r| r.status == 1));
    let o = send(&c, &key, n, p).await?;
    assert_eq!(kind(&o), Some(Kind::NonceTooLow), "a used nonce: {o:?}");

    // A stopped node: the request reaches its socket and no answer comes (timeout, outcome unknown).
    let slow = Client::new(&info.nodes[3].grpc, Duration::from_secs(2))?;
    slow.chain_meta().await?;
    cluster.pause(3)?;
    let o = send(&slow, &key, n + 1, p).await?;
    cluster.resume(3)?;
    assert_eq!(o, SendOutcome::Unknown(Kind::Timeout), "a stopped node");
    // Nothing listening: refused before the node could see it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let gone = Client::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2))?;
    let o = send(&gone, &key, n + 1, p).await?;
    assert!(matches!(o, SendOutcome::Rejected(Kind::Connection, _)), "no node: {o:?}");
    // Pool full cannot be provoked on demand (see iotex_injector::the_nodes_real_rejections_are_classified);
    // the node sends it with code Internal and the text the classifier maps.
    let st = tonic::Status::internal("txpool is full");
    assert_eq!(iotex_injector::native::client::classify(&st), (Kind::PoolFull, false));
    cluster.wait_synced(1, Duration::from_secs(60)).await?;
    Ok(())
}

/// Resumes the paused nodes however the test ends (the cluster is shared with the next test).
struct Resume<'a>(&'a Cluster, std::ops::Range<usize>);
impl Drop for Resume<'_> {
    fn drop(&mut self) {
        for i in self.1.clone() {
            let _ = self.0.resume(i);
        }
    }
}

/// The stall of the side-by-side benchmark, made on purpose: three of the four producers are paused with
/// SIGSTOP for 8 s mid-run, so blocks stop while the endpoint's delegate keeps taking actions into its pool,
/// and the endpoint's own node hangs for 2 s of it, so sends time out and accounts resync while earlier
/// sends of theirs are still unread. The report's identity
/// must hold, and once the chain catches up `accepted` (plus gap fillers) must be exactly the nonce rise.
#[tokio::test]
async fn a_stalled_chain_keeps_the_identity_and_accepted_is_the_nonce_rise() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    let eps = vec![(Api::Grpc, info.nodes[1].grpc.clone())];
    let mut cfg = config(&eps, keys(&info, 0..4)?, 40.0, 20)?;
    cfg.account_in_flight = 4;
    cfg.request_timeout = Duration::from_millis(500);
    cfg.confirm_timeout = Duration::from_secs(120);
    let start = cluster.head(1).await?;
    let run = tokio::spawn(iotex_injector::run(cfg, std::future::pending()));
    iotex_tests::eventually(Duration::from_secs(60), "blocks with actions before the stall", || async {
        cluster.head(1).await.ok().filter(|h| *h >= start + 3).map(|_| ())
    })
    .await?;
    let resume = Resume(cluster, 1..5);
    for i in 2..5 {
        cluster.pause(i)?;
    }
    // The faults themselves (not waits for state): 3 s of stalled blocks, then the endpoint's own node hangs
    // for 2 s, so sends time out and nonces are re-read while the node still holds unread sends, then 3 s
    // more of stalled blocks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.pause(1)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.resume(1)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(resume);
    let r = run.await??.report;
    eprintln!(
        "scheduled {} sent {} accepted {} included {} pending {} dropped {} rejected {:?} retried {:?} gap fillers {}",
        r.scheduled, r.sent, r.accepted, r.included, r.pending_at_end, r.dropped, r.rejected, r.retried, r.gap_fillers
    );
    crate::injector_stall::assert_identity(&r);
    assert_eq!(r.dropped, 0, "{r:#?}");
    cluster.wait_synced(1, Duration::from_secs(120)).await?;
    let web3 = info.nodes[1].web3.clone();
    let want = r.accepted + r.gap_fillers;
    let rise = iotex_tests::eventually(Duration::from_secs(120), "the chain to catch up", || async {
        let mut rise = 0;
        for a in &r.account_nonces {
            rise += tx_count_at(&web3, &a.address, "latest").await.ok()? - a.start_nonce;
        }
        (rise >= want).then_some(rise)
    })
    .await?;
    assert_eq!(rise, want, "accepted (plus gap fillers) is exactly the nonce rise");
    Ok(())
}
