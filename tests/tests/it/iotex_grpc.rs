//! The gateway's native gRPC listener on the real 5-node cluster, driven by a tonic gRPC client (the
//! injector's native client): one HTTP/2 connection to the gateway reaches several nodes, call by call; the
//! answers are the nodes' own (chain meta, balance, gas price, a node's refusal with its status); an action
//! sent through it lands; a node killed under a steady gRPC load costs the client nothing; and block and log
//! streams move between nodes with nothing missed or repeated.

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

/// A gateway over every node (`Cluster::gateway`, readiness URLs on), probed every 250 ms.
async fn gateway(cluster: &Cluster) -> anyhow::Result<RunningGateway> {
    gateway_probing(cluster, "250ms").await
}

/// [`gateway`] with health probes every `interval`.
async fn gateway_probing(cluster: &Cluster, interval: &str) -> anyhow::Result<RunningGateway> {
    cluster.gateway(TestGateway::new().arg("--health-interval", interval).arg("--probe-timeout", "1s"), true).await
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

/// `StreamBlocksResponse` with its block kept as bytes, to compare with what a node serves.
#[derive(Clone, PartialEq, prost::Message)]
struct Streamed {
    #[prost(bytes = "bytes", tag = "1")]
    block: bytes::Bytes,
    #[prost(message, optional, tag = "2")]
    id: Option<Identifier>,
}

/// `iotextypes.BlockIdentifier`.
#[derive(Clone, PartialEq, prost::Message)]
struct Identifier {
    #[prost(string, tag = "1")]
    hash: String,
    #[prost(uint64, tag = "2")]
    height: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

/// `GetRawBlocksRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawBlocksRequest {
    #[prost(uint64, tag = "1")]
    start: u64,
    #[prost(uint64, tag = "2")]
    count: u64,
    #[prost(bool, tag = "3")]
    with_receipts: bool,
}

/// `GetRawBlocksResponse`, each `BlockInfo` as bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawBlocks {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    blocks: Vec<bytes::Bytes>,
}

/// `iotexapi.BlockInfo`, its parts as bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct BlockInfo {
    #[prost(message, optional, tag = "1")]
    block: Option<Block>,
    #[prost(bytes = "bytes", repeated, tag = "2")]
    receipts: Vec<bytes::Bytes>,
}

/// `iotextypes.Block`, its parts as bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct Block {
    #[prost(bytes = "bytes", tag = "1")]
    header: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    body: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "3")]
    footer: bytes::Bytes,
}

/// The nodes in the order a test should take them down to hit the one a stream through `gw` is on first
/// (`iotex_gateway_upstream_grpc_streams`), waiting (bounded) until the gateway holds the stream somewhere.
async fn stream_node_first(gw: &RunningGateway, names: &[String]) -> anyhow::Result<Vec<usize>> {
    let on = eventually(WAIT, "the gateway holding the stream on a node", || async {
        for (i, n) in names.iter().enumerate() {
            let series = format!("iotex_gateway_upstream_grpc_streams{{upstream=\"{n}\"}}");
            if gw.metric(&series).await.unwrap_or(0.0) >= 1.0 {
                return Some(i);
            }
        }
        None
    })
    .await?;
    Ok((0..names.len()).map(|k| (on + k) % names.len()).collect())
}

async fn grpc_channel(url: &str) -> anyhow::Result<tonic::client::Grpc<tonic::transport::Channel>> {
    let url = if url.starts_with("http") { url.to_owned() } else { format!("http://{url}") };
    let channel = tonic::transport::Endpoint::from_shared(url)?.connect().await?;
    Ok(tonic::client::Grpc::new(channel))
}

/// Every block from `start` for `count`, as a node serves it (`GetRawBlocks` with receipts).
async fn raw_blocks(node: &str, start: u64, count: u64) -> anyhow::Result<Vec<bytes::Bytes>> {
    let mut grpc = grpc_channel(node).await?;
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<RawBlocksRequest, RawBlocks>::default();
    let path = http::uri::PathAndQuery::from_static("/iotexapi.APIService/GetRawBlocks");
    let req = RawBlocksRequest { start, count, with_receipts: true };
    Ok(grpc.unary(tonic::Request::new(req), path, codec).await?.into_inner().blocks)
}

#[tokio::test]
async fn a_block_stream_through_the_gateway_survives_its_node_dying_with_every_block_once_in_order()
-> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    cluster.wait_synced(1, WAIT).await?;
    // Probes every 3 s: a hung node stays routable for a few blocks, so the stream must notice by itself that
    // the chain went on without its node, and fill what it missed.
    let gw = gateway_probing(cluster, "3s").await?;
    let names: Vec<String> = cluster.info().nodes.iter().map(|n| n.name.clone()).collect();
    for n in &names {
        gw.wait_state(n, "up", WAIT).await?;
    }
    let mut grpc = grpc_channel(&gw.grpc).await?;
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<Empty, Streamed>::default();
    let path = http::uri::PathAndQuery::from_static("/iotexapi.APIService/StreamBlocks");
    let mut stream = grpc.server_streaming(tonic::Request::new(Empty {}), path, codec).await?.into_inner();
    // The client: every message it gets (or how its stream ended), until dropped or 600 of them (bounded).
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<Result<Streamed, String>>();
    let reader = tokio::spawn(async move {
        for _ in 0..600 {
            let m = match stream.message().await {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err("the stream ended".to_owned()),
                Err(s) => Err(format!("the stream failed: {s}")),
            };
            let end = m.is_err();
            if got_tx.send(m).is_err() || end {
                return;
            }
        }
    });
    let mut got: Vec<Streamed> = Vec::new();
    // Waits (bounded) until `n` more messages have arrived.
    async fn more(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Streamed, String>>,
        got: &mut Vec<Streamed>,
        n: usize,
    ) -> anyhow::Result<()> {
        let want = got.len() + n;
        while got.len() < want {
            match tokio::time::timeout(WAIT, rx.recv()).await {
                Ok(Some(Ok(m))) => got.push(m),
                Ok(Some(Err(e))) => anyhow::bail!("after {} blocks: {e}", got.len()),
                Ok(None) => anyhow::bail!("the client's stream stopped after {} blocks", got.len()),
                Err(_) => anyhow::bail!("no block within {WAIT:?} after {} blocks", got.len()),
            }
        }
        Ok(())
    }
    more(&mut got_rx, &mut got, 2).await?;
    // Kill nodes one at a time until the stream's own node was among them (the gateway counts the move);
    // each comes back before the next goes, so the chain keeps its quorum.
    let moves = "iotex_gateway_grpc_stream_moves_total{method=\"StreamBlocks\"}";
    for i in stream_node_first(&gw, &names).await? {
        let name = &names[i];
        cluster.kill(i).await?;
        gw.wait_state(name, "down", WAIT).await?;
        more(&mut got_rx, &mut got, 2).await?;
        cluster.restart(i).await?;
        gw.wait_state(name, "up", Duration::from_secs(120)).await?;
        if gw.metric(moves).await.unwrap_or(0.0) >= 1.0 {
            break;
        }
    }
    assert!(gw.metric(moves).await? >= 1.0, "the stream was never on a killed node");
    // Then hang the stream's node (SIGSTOP), up to once per node, until a move needed a fill: its stream goes
    // quiet and the chain goes on without it; the stream moves once the best head is a few blocks past what it
    // delivered (or health stops routing to the node), and the blocks committed meanwhile must be filled by
    // the gateway.
    let filled_series = "iotex_gateway_grpc_stream_filled_blocks_total{method=\"StreamBlocks\"}";
    for _ in 0..names.len() {
        let i = stream_node_first(&gw, &names).await?[0];
        let name = &names[i];
        cluster.pause(i)?;
        let hung = async {
            gw.wait_state(name, "down", WAIT).await?;
            more(&mut got_rx, &mut got, 2).await
        }
        .await;
        cluster.resume(i)?;
        hung?;
        gw.wait_state(name, "up", Duration::from_secs(120)).await?;
        if gw.metric(filled_series).await.unwrap_or(0.0) >= 1.0 {
            break;
        }
    }
    assert!(gw.metric(filled_series).await? >= 1.0, "no move needed a fill");
    more(&mut got_rx, &mut got, 3).await?;
    reader.abort();

    // Every block once, in order: heights consecutive from the first.
    let heights: Vec<u64> = got.iter().map(|m| m.id.as_ref().map_or(0, |i| i.height)).collect();
    let first = heights[0];
    let expected: Vec<u64> = (first..first + heights.len() as u64).collect();
    assert_eq!(heights, expected, "heights as the client got them");
    // And each is the chain's block, as a live node serves it (filled ones included), once that node (just
    // back from being killed or hung, maybe) has them all.
    let top = first + heights.len() as u64 - 1;
    eventually(WAIT, "node 0 to have every block the client got", || async {
        (cluster.head(0).await.ok()? >= top).then_some(())
    })
    .await?;
    let live = cluster.info().nodes[0].grpc.clone();
    let served = raw_blocks(&live, first, heights.len() as u64).await?;
    assert_eq!(served.len(), got.len());
    let web3 = cluster.info().nodes[0].web3.clone();
    for m in &got {
        let h = m.id.as_ref().map_or(0, |i| i.height);
        let b = iotex_tests::http::RawClient::new()
            .call(&web3, "eth_getBlockByNumber", serde_json::json!([format!("{h:#x}"), false]))
            .await?;
        let hash = b["hash"].as_str().unwrap_or("").trim_start_matches("0x").to_owned();
        assert_eq!(m.id.as_ref().map(|i| i.hash.clone()), Some(hash), "block {h}'s hash");
    }
    // Header, actions and receipts equal the node's; the footer (the endorsements a node collected when it
    // committed the block) is each node's own, so it only has to be there.
    for (m, b) in got.iter().zip(&served) {
        let h = m.id.as_ref().map_or(0, |i| i.height);
        let (mine, theirs) = (
            <BlockInfo as prost::Message>::decode(m.block.clone())?,
            <BlockInfo as prost::Message>::decode(b.clone())?,
        );
        let (mb, tb) = (mine.block.unwrap_or_default(), theirs.block.unwrap_or_default());
        assert_eq!(mb.header, tb.header, "block {h}'s header");
        assert_eq!(mb.body, tb.body, "block {h}'s actions");
        assert_eq!(mine.receipts, theirs.receipts, "block {h}'s receipts");
        assert!(!mb.footer.is_empty(), "block {h} has its endorsements");
    }
    let filled = gw.metric(filled_series).await.unwrap_or(0.0);
    println!("StreamBlocks across node kills: {} blocks ({first}..), {filled} filled by the gateway", got.len());
    cluster.wait_synced(1, Duration::from_secs(180)).await?;
    Ok(())
}

/// `iotexapi.StreamLogsRequest` / `GetLogsRequest` filter: `LogsFilter{}` matches every log.
#[derive(Clone, PartialEq, prost::Message)]
struct LogsRequest {
    #[prost(message, optional, tag = "1")]
    filter: Option<Empty>,
    #[prost(message, optional, tag = "3")]
    by_range: Option<LogsRange>,
}

/// `iotexapi.GetLogsByRange`.
#[derive(Clone, PartialEq, prost::Message)]
struct LogsRange {
    #[prost(uint64, tag = "1")]
    from: u64,
    #[prost(uint64, tag = "2")]
    to: u64,
}

/// `StreamLogsResponse`, its log as bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct StreamedLog {
    #[prost(bytes = "bytes", tag = "1")]
    log: bytes::Bytes,
}

/// `GetLogsResponse`, each log as bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct Logs {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    logs: Vec<bytes::Bytes>,
}

/// `iotextypes.Log`: where it sits.
#[derive(Clone, PartialEq, prost::Message)]
struct LogPlace {
    #[prost(uint64, tag = "4")]
    height: u64,
    #[prost(uint32, tag = "6")]
    index: u32,
}

fn place(log: &bytes::Bytes) -> (u64, u32) {
    <LogPlace as prost::Message>::decode(log.clone()).map_or((0, 0), |p| (p.height, p.index))
}

/// Every log of blocks `from..=to`, as `node` serves them (`GetLogs` by range, the empty filter).
async fn logs_in(node: &str, from: u64, to: u64) -> anyhow::Result<Vec<bytes::Bytes>> {
    let mut grpc = grpc_channel(node).await?;
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<LogsRequest, Logs>::default();
    let path = http::uri::PathAndQuery::from_static("/iotexapi.APIService/GetLogs");
    let req = LogsRequest { filter: Some(Empty {}), by_range: Some(LogsRange { from, to }) };
    Ok(grpc.unary(tonic::Request::new(req), path, codec).await?.into_inner().logs)
}

/// Every block pays its producer a reward, which logs, so a `StreamLogs` subscription with the empty filter
/// gets logs in every block: a gap would show. Nodes are killed one at a time, then hung (SIGSTOP), until the
/// stream's own node was among each; the client must get every log of every block once, in order, byte for
/// byte as a live node's `GetLogs` serves them.
#[tokio::test]
async fn a_log_stream_through_the_gateway_survives_its_node_dying_with_every_log_once_in_order() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    cluster.wait_synced(1, WAIT).await?;
    let gw = gateway_probing(cluster, "1s").await?;
    let names: Vec<String> = cluster.info().nodes.iter().map(|n| n.name.clone()).collect();
    for n in &names {
        gw.wait_state(n, "up", WAIT).await?;
    }
    let mut grpc = grpc_channel(&gw.grpc).await?;
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<LogsRequest, StreamedLog>::default();
    let path = http::uri::PathAndQuery::from_static("/iotexapi.APIService/StreamLogs");
    let req = LogsRequest { filter: Some(Empty {}), by_range: None };
    let mut stream = grpc.server_streaming(tonic::Request::new(req), path, codec).await?.into_inner();
    // The client: every log it gets (or how its stream ended), until dropped or 5,000 of them (bounded).
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<Result<bytes::Bytes, String>>();
    let reader = tokio::spawn(async move {
        for _ in 0..5_000 {
            let m = match stream.message().await {
                Ok(Some(m)) => Ok(m.log),
                Ok(None) => Err("the stream ended".to_owned()),
                Err(s) => Err(format!("the stream failed: {s}")),
            };
            let end = m.is_err();
            if got_tx.send(m).is_err() || end {
                return;
            }
        }
    });
    let mut got: Vec<bytes::Bytes> = Vec::new();
    // Waits (bounded) until logs of `n` more blocks than the last one had have arrived.
    async fn more_blocks(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<bytes::Bytes, String>>,
        got: &mut Vec<bytes::Bytes>,
        n: u64,
    ) -> anyhow::Result<()> {
        let want = got.last().map_or(0, |l| place(l).0) + n;
        while got.last().is_none_or(|l| place(l).0 < want) {
            match tokio::time::timeout(WAIT, rx.recv()).await {
                Ok(Some(Ok(m))) => got.push(m),
                Ok(Some(Err(e))) => anyhow::bail!("after {} logs: {e}", got.len()),
                Ok(None) => anyhow::bail!("the client's stream stopped after {} logs", got.len()),
                Err(_) => anyhow::bail!("no log within {WAIT:?} after {} logs", got.len()),
            }
        }
        Ok(())
    }
    more_blocks(&mut got_rx, &mut got, 1).await?;
    let moves = "iotex_gateway_grpc_stream_moves_total{method=\"StreamLogs\"}";
    // Killed, one at a time (each back before the next goes, so the chain keeps its quorum), then hung.
    for hang in [false, true] {
        let before = gw.metric(moves).await.unwrap_or(0.0);
        for i in stream_node_first(&gw, &names).await? {
            let name = &names[i];
            if hang {
                cluster.pause(i)?
            } else {
                cluster.kill(i).await?
            }
            let away = async {
                gw.wait_state(name, "down", WAIT).await?;
                more_blocks(&mut got_rx, &mut got, 2).await
            }
            .await;
            if hang {
                cluster.resume(i)?
            } else {
                cluster.restart(i).await?
            }
            away?;
            gw.wait_state(name, "up", Duration::from_secs(120)).await?;
            if gw.metric(moves).await.unwrap_or(0.0) > before {
                break;
            }
        }
        assert!(
            gw.metric(moves).await? > before,
            "the stream was never on a {} node",
            if hang { "hung" } else { "killed" }
        );
    }
    more_blocks(&mut got_rx, &mut got, 2).await?;
    reader.abort();

    // Every log of every block from the first to the one before the last (the last may be cut short by the
    // client stopping), once, in order, equal to what a live node serves for that range.
    let (first, last) = (place(&got[0]).0, got.last().map_or(0, |l| place(l).0));
    let mine: Vec<bytes::Bytes> = got.iter().filter(|l| place(l).0 < last).cloned().collect();
    eventually(WAIT, "node 0 to have every block the client got logs of", || async {
        (cluster.head(0).await.ok()? >= last).then_some(())
    })
    .await?;
    let served = logs_in(&cluster.info().nodes[0].grpc, first, last - 1).await?;
    let places = |v: &[bytes::Bytes]| v.iter().map(place).collect::<Vec<_>>();
    assert_eq!(places(&mine), places(&served), "(height, index) of every log the client got");
    assert_eq!(mine, served, "the logs' bytes");
    let filled_series = "iotex_gateway_grpc_stream_filled_blocks_total{method=\"StreamLogs\"}";
    let filled = gw.metric(filled_series).await.unwrap_or(0.0);
    let moved = gw.metric(moves).await.unwrap_or(0.0);
    println!(
        "StreamLogs across node kills and hangs: {} logs of blocks {first}..{last}, {moved} moves, {filled} blocks read by the gateway",
        got.len()
    );
    assert!(filled >= 1.0, "no move needed a read");
    cluster.wait_synced(1, Duration::from_secs(180)).await?;
    Ok(())
}

#[tokio::test]
async fn a_lagging_node_gets_no_native_calls() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    cluster.wait_synced(1, WAIT).await?;
    // The boot node (not a delegate: the chain keeps its pace without it) is stopped for a while and started
    // again; until it has caught up, it is behind the best head and must get none of the calls.
    let victim = 0;
    let name = cluster.node(victim).name;
    // No readiness URL: a catching-up node's /readiness fails (it would be `down`); here health sees only its
    // head, so it is `lagging`, the case this test is about.
    let g =
        TestGateway::new().arg("--health-interval", "250ms").arg("--probe-timeout", "1s").arg("--max-lag-blocks", "2");
    let gw = cluster.gateway(g, false).await?;
    gw.wait_state(&name, "up", WAIT).await?;
    let before = cluster.head(1).await?;
    cluster.kill(victim).await?;
    eventually(Duration::from_secs(120), "the chain 20 blocks further", || async {
        (cluster.head(1).await.ok()? >= before + 20).then_some(())
    })
    .await?;
    cluster.restart(victim).await?;
    gw.wait_state(&name, "lagging", WAIT).await?;
    let series = format!("iotex_gateway_upstream_requests_total{{outcome=\"ok\",upstream=\"{name}\"}}");
    let served_before = gw.metric(&series).await.unwrap_or(0.0);
    let c = client(&gw, Duration::from_secs(10))?;
    let mut calls = 0;
    // While it lags (checked after each batch), every call goes elsewhere: at most 6 batches of 10.
    for _ in 0..6 {
        for _ in 0..10 {
            c.chain_meta().await?;
            calls += 1;
        }
        if gw.state_of(&name).await? != "lagging" {
            break;
        }
    }
    let still = gw.state_of(&name).await?;
    let served = gw.metric(&series).await.unwrap_or(0.0) - served_before;
    println!("{calls} gRPC calls while {name} lagged ({still} at the end): {served} went to it");
    assert!(calls >= 10);
    assert_eq!(served, 0.0, "calls reached the lagging node");
    cluster.wait_synced(1, Duration::from_secs(180)).await?;
    Ok(())
}

/// The status of one `method` call (an empty request) through `url`, with `token` as bearer metadata.
async fn status_of_call(url: &str, method: &'static str, token: Option<&str>) -> anyhow::Result<tonic::Code> {
    let mut grpc = grpc_channel(url).await?;
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<Empty, Empty>::default();
    let path = http::uri::PathAndQuery::try_from(format!("/iotexapi.APIService/{method}"))?;
    let mut req = tonic::Request::new(Empty {});
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", format!("Bearer {t}").parse()?);
    }
    Ok(match grpc.unary(req, path, codec).await {
        Ok(_) => tonic::Code::Ok,
        Err(s) => s.code(),
    })
}

#[tokio::test]
async fn tokens_quotas_and_method_globs_apply_to_native_calls() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    cluster.wait_synced(1, WAIT).await?;
    let key = iotex_gateway::token::generate();
    let public = iotex_gateway::token::encode_public_key(&key.verifying_key());
    iotex_tests::capture::register_secret("hex-key", &alloy_primitives::hex::encode(key.to_bytes()));
    let mint = |id: &str, tier: &str| -> anyhow::Result<String> {
        let claims = iotex_gateway::token::Claims {
            id: id.into(),
            subject: "indexer".into(),
            tier: tier.into(),
            expires_at: iotex_gateway::token::unix_now() + 600,
        };
        let t = iotex_gateway::token::issue(&key, &claims)?;
        iotex_tests::capture::register_secret("token", &t);
        Ok(t)
    };
    let node = &cluster.info().nodes[0];
    let base = || {
        TestGateway::new()
            .upstream(&node.name, &node.web3)
            .arg("--upstream-grpc", &format!("{}=http://{}", node.name, node.grpc))
    };
    // Tokens required; SendAction denied by glob.
    let gw = base()
        .arg("--token-public-key", &public)
        .arg("--token-tier", "gold=100/100")
        .arg("--token-tier", "tiny=1/2")
        .switch("--require-token")
        .arg("--grpc-deny-method", "SendAction")
        .spawn()
        .await?;
    let (gold, tiny) = (mint("g1", "gold")?, mint("t1", "tiny")?);
    assert_eq!(status_of_call(&gw.grpc, "GetChainMeta", Some(&gold)).await?, tonic::Code::Ok);
    assert_eq!(status_of_call(&gw.grpc, "GetChainMeta", None).await?, tonic::Code::Unauthenticated);
    assert_eq!(status_of_call(&gw.grpc, "GetChainMeta", Some("not-a-token")).await?, tonic::Code::Unauthenticated);
    assert_eq!(status_of_call(&gw.grpc, "SendAction", Some(&gold)).await?, tonic::Code::PermissionDenied);
    // The tiny tier's burst of 2, then its quota refuses.
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(status_of_call(&gw.grpc, "GetChainMeta", Some(&tiny)).await?);
    }
    assert_eq!(&codes[..2], &[tonic::Code::Ok, tonic::Code::Ok]);
    assert!(codes[2..].contains(&tonic::Code::ResourceExhausted), "{codes:?}");
    // Anonymous callers under the per-client limit (burst 2).
    let open = base().arg("--rate-limit-per-client", "1").arg("--rate-limit-burst", "2").spawn().await?;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(status_of_call(&open.grpc, "GetChainMeta", None).await?);
    }
    assert_eq!(&codes[..2], &[tonic::Code::Ok, tonic::Code::Ok]);
    assert!(codes[2..].contains(&tonic::Code::ResourceExhausted), "{codes:?}");
    let m = open.metrics().await?;
    assert!(
        sample(&m, "iotex_gateway_grpc_requests_total{code=\"RESOURCE_EXHAUSTED\",method=\"GetChainMeta\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    Ok(())
}
