//! The gateway's native gRPC listener on the real 5-node cluster, driven by a tonic gRPC client (the
//! injector's native client): one HTTP/2 connection to the gateway reaches several nodes, call by call; the
//! answers are the nodes' own (chain meta, balance, gas price, a node's refusal with its status); an action
//! sent through it lands; and a node killed under a steady gRPC load costs the client nothing.

use alloy_primitives::Address;
use alloy_signer_local::PrivateKeySigner;
use iotex_injector::accounts::parse_key;
use iotex_injector::error::Kind;
use iotex_injector::mix::ActionKind;
use iotex_injector::native::Client;
use iotex_injector::native::sign::{self, CoreParams};
use iotex_injector::send::SendOutcome;
use iotex_injector::signer::Call;
use iotex_tests::eventually;
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::iotex::Cluster;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A gateway over every node, each with its stats port's `/readiness` and its own gRPC port (the cluster's
/// nodes do not use 14014, so each is named). First waits until every node's gRPC port answers: a node
/// serves web3 a moment before gRPC after a (re)start, and the gateway's health is one view of both, so
/// calls that meet a closed gRPC port count against the node.
async fn gateway(cluster: &Cluster) -> anyhow::Result<RunningGateway> {
    for n in cluster.info().nodes {
        let direct = Client::new(&n.grpc, Duration::from_secs(2))?;
        eventually(WAIT, &format!("{}'s gRPC port answering", n.name), || async { direct.chain_meta().await.ok() })
            .await?;
    }
    let g = TestGateway::new().arg("--health-interval", "250ms").arg("--probe-timeout", "1s");
    let g = cluster.info().nodes.iter().fold(g, |g, n| {
        g.upstream(&n.name, &n.web3)
            .arg("--upstream-health", &format!("{}={}/readiness", n.name, n.stats))
            .arg("--upstream-grpc", &format!("{}=http://{}", n.name, n.grpc))
    });
    g.spawn().await
}

fn client(gw: &RunningGateway, timeout: Duration) -> anyhow::Result<Client> {
    Ok(Client::new(gw.grpc.trim_start_matches("http://"), timeout)?)
}

fn transfer() -> Call {
    Call {
        to: Address::repeat_byte(0x42),
        value: alloy_primitives::U256::from(1u8),
        input: alloy_primitives::Bytes::new(),
        gas_limit: 21_000,
    }
}

async fn send(
    c: &Client,
    key: &PrivateKeySigner,
    nonce: u64,
    p: CoreParams,
) -> anyhow::Result<(SendOutcome, sign::SignedAction)> {
    let core = sign::core_for(ActionKind::Transfer, &transfer(), nonce, p);
    let s = sign::seal(key, &sign::pubkey(key), core)?;
    Ok((c.send_action(s.action.clone()).await.0, s))
}

#[tokio::test]
async fn native_calls_through_the_gateway_are_balanced_per_call_and_answer_as_a_node_does() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    cluster.wait_synced(1, WAIT).await?;
    let gw = gateway(cluster).await?;
    let c = client(&gw, Duration::from_secs(10))?;
    let direct = Client::new(&info.nodes[0].grpc, Duration::from_secs(10))?;

    // The nodes' own answers.
    let meta = c.chain_meta().await?;
    assert_eq!(u64::from(meta.chain_id), info.native_chain_id);
    let tip = direct.chain_meta().await?.height;
    assert!(meta.height.abs_diff(tip) <= 2, "gateway tip {} vs node-0's {tip}", meta.height);
    assert_eq!(c.gas_price().await?, direct.gas_price().await?);
    let key = parse_key("key", &info.funded_keys[3])?;
    assert_eq!(c.balance(key.address()).await?, direct.balance(key.address()).await?);

    // One client, one HTTP/2 connection: its calls still go to several nodes.
    let before = gw.metrics().await?;
    for _ in 0..100 {
        c.chain_meta().await?;
    }
    let after = gw.metrics().await?;
    let served = info
        .nodes
        .iter()
        .filter(|n| {
            let series = format!("iotex_gateway_upstream_requests_total{{outcome=\"ok\",upstream=\"{}\"}}", n.name);
            sample(&after, &series).unwrap_or(0.0) > sample(&before, &series).unwrap_or(0.0)
        })
        .count();
    assert!(served >= 2, "100 calls on one connection reached {served} node(s)");
    let ok = sample(&after, "iotex_gateway_grpc_requests_total{code=\"OK\",method=\"GetChainMeta\"}").unwrap_or(0.0);
    assert!(ok >= 101.0, "GetChainMeta OK counted {ok}");

    // An action sent through the gateway lands; a node's refusal reaches the client with its status.
    let p = CoreParams { chain_id: meta.chain_id, gas_price: c.gas_price().await? };
    let n = c.pending_nonce(key.address()).await?;
    let (o, action) = send(&c, &key, n, p).await?;
    assert_eq!(o, SendOutcome::Accepted);
    let receipt = c.wait_receipt(action.hash, WAIT).await?;
    assert!(receipt.is_some_and(|r| r.status == 1), "the action landed");
    let (o, _) = send(&c, &key, n, CoreParams { gas_price: p.gas_price / 10, ..p }).await?;
    assert!(matches!(o, SendOutcome::Rejected(Kind::Underpriced | Kind::NonceTooLow, _)), "{o:?}");
    let m = gw.metrics().await?;
    assert!(sample(&m, "iotex_gateway_grpc_requests_total{code=\"OK\",method=\"SendAction\"}").unwrap_or(0.0) >= 1.0);
    cluster.wait_synced(1, WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn a_node_killed_under_native_load_costs_the_client_nothing() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    cluster.wait_synced(1, WAIT).await?;
    let victim = cluster.info().nodes.len() - 1;
    let name = cluster.node(victim).name;
    let gw = gateway(cluster).await?;
    gw.wait_state(&name, "up", WAIT).await?;
    let c = client(&gw, Duration::from_secs(10))?;
    let who = parse_key("key", &cluster.info().funded_keys[3])?.address();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Four workers, reads only, each call bounded; at most 20,000 calls or until told to stop.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (c, stop) = (c.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let (mut ok, mut errors) = (0u64, Vec::new());
                for i in 0..5_000u64 {
                    if *stop.borrow() {
                        break;
                    }
                    let r =
                        if i % 2 == 0 { c.chain_meta().await.map(|_| ()) } else { c.balance(who).await.map(|_| ()) };
                    match r {
                        Ok(()) => ok += 1,
                        Err(e) => errors.push(e.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (ok, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill(victim).await?;
    gw.wait_state(&name, "down", WAIT).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(true);
    let (mut ok, mut errors) = (0, Vec::new());
    for w in workers {
        let (o, e) = w.await?;
        ok += o;
        errors.extend(e);
    }
    cluster.restart(victim).await?;
    println!("gRPC load across the kill: {ok} calls, {} errors", errors.len());
    assert!(ok > 100, "the load ran ({ok} calls)");
    assert!(errors.is_empty(), "the client saw {} errors, e.g. {:?}", errors.len(), &errors[..errors.len().min(5)]);
    cluster.wait_synced(1, Duration::from_secs(180)).await?;
    Ok(())
}
