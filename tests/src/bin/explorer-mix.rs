//! `explorer-mix`: the cache benchmark's chain seeder and Explorer-like read load (`scripts/bench-cache.sh`).
//!
//! `explorer-mix seed --node URL` builds a chain on a fresh anvil (directly, never through the gateway): a
//! log-emitting contract, then `--blocks` blocks of `--txs` transactions each (transfers between the ten dev
//! accounts alternating with calls that emit a log), then switches anvil to a block every `--block-secs`.
//!
//! `explorer-mix run --url GATEWAY --admin ADMIN --node URL` offers `--rate` calls/s for `--secs` seconds from
//! `--clients` concurrent clients, each on its own fixed schedule, with the weighted mix of an Explorer backend
//! (see [`Kind`]): head polling, recent blocks by number, receipts and transactions by hash, balances at
//! `latest` and at a recent block, logs over recent 10-block pages. Recent items are favoured (a page view of the
//! newest block is far more common than one of an old block), so clients repeat each other's reads. During the
//! run a writer keeps sending a transaction every 250 ms straight to the node, and a follower reads new blocks
//! straight from the node to learn fresh transaction hashes, so the chain moves as it would under an Explorer.
//! It prints one `RESULT` line: client calls and latency percentiles measured here, and the gateway's own
//! client-call and upstream-attempt counters read from its `/metrics` before and after (after a warm-up).
//! Loopback only; every loop is bounded by the run's duration.

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use iotex_tests::http::RawClient;
use iotex_tests::nodes::{DEV_ADDRESSES, parse_quantity};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// Init code of a contract whose every call emits `LOG1(topic = caller)`: runtime `CALLER PUSH1 0 PUSH1 0
/// LOG1 STOP`, copied out by `PUSH1 7 PUSH1 12 PUSH1 0 CODECOPY PUSH1 7 PUSH1 0 RETURN`.
const LOGGER_INIT: &str = "0x6007600c60003960076000f33360006000a100";

#[derive(Parser)]
#[command(about = "Explorer-like JSON-RPC read mix for the gateway cache benchmark")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Seed a fresh anvil with blocks, transfers and logs.
    Seed {
        /// The anvil node.
        #[arg(long)]
        node: String,
        /// Blocks to build.
        #[arg(long, default_value_t = 200)]
        blocks: u64,
        /// Transactions per block.
        #[arg(long, default_value_t = 4)]
        txs: u64,
        /// Block interval after seeding, whole seconds (anvil's interval mining; IoTeX's is 2.5 s).
        #[arg(long, default_value_t = 2)]
        block_secs: u64,
    },
    /// Run the read mix through a gateway.
    Run {
        /// Gateway JSON-RPC URL.
        #[arg(long)]
        url: String,
        /// Gateway admin URL (for /metrics).
        #[arg(long)]
        admin: String,
        /// The node (for the writer and the follower, not measured).
        #[arg(long)]
        node: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: u64,
        /// Offered calls per second, all clients together.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Measured seconds.
        #[arg(long, default_value_t = 20)]
        secs: u64,
        /// Unmeasured warm-up seconds before it.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Label printed on the RESULT line.
        #[arg(long, default_value = "run")]
        label: String,
    },
}

fn loopback(url: &str) -> anyhow::Result<()> {
    let authority = url.strip_prefix("http://").unwrap_or(url).split('/').next().unwrap_or("");
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let ok =
        host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(ok, "{url}: only loopback targets are allowed");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(async {
        match cli.cmd {
            Cmd::Seed { node, blocks, txs, block_secs } => {
                loopback(&node)?;
                seed(&node, blocks, txs, block_secs).await
            }
            Cmd::Run { url, admin, node, clients, rate, secs, warmup, label } => {
                for u in [&url, &admin, &node] {
                    loopback(u)?;
                }
                run(Run { url, admin, node, clients, rate, secs, warmup, label }).await
            }
        }
    })
}

async fn rpc(c: &RawClient, url: &str, method: &str, params: Value) -> anyhow::Result<Value> {
    c.call(url, method, params).await
}

/// The deployed logger's address on `node` (the first contract dev account 0 created).
async fn logger_address(c: &RawClient, node: &str) -> anyhow::Result<String> {
    let addr = alloy_primitives::Address::parse_checksummed(DEV_ADDRESSES[0], None)?.create(0);
    let code = rpc(c, node, "eth_getCode", json!([format!("{addr:#x}"), "latest"])).await?;
    anyhow::ensure!(code.as_str().is_some_and(|s| s.len() > 2), "no logger contract at {addr:#x}; run `seed` first");
    Ok(format!("{addr:#x}"))
}

fn tx(i: u64, logger: &str) -> Value {
    let from = DEV_ADDRESSES[(i % 5) as usize];
    if i.is_multiple_of(2) {
        json!({"from": from, "to": DEV_ADDRESSES[((i + 2) % 5) as usize], "value": "0x1", "gas": "0x5208"})
    } else {
        json!({"from": from, "to": logger, "gas": "0x10000"})
    }
}

async fn seed(node: &str, blocks: u64, txs: u64, block_secs: u64) -> anyhow::Result<()> {
    let c = RawClient::new();
    rpc(&c, node, "evm_setAutomine", json!([false])).await?;
    rpc(&c, node, "eth_sendTransaction", json!([{"from": DEV_ADDRESSES[0], "data": LOGGER_INIT, "gas": "0x30000"}]))
        .await?;
    rpc(&c, node, "anvil_mine", json!(["0x1"])).await?;
    let logger = logger_address(&c, node).await?;
    let mut n = 0u64;
    for _ in 0..blocks {
        for _ in 0..txs {
            rpc(&c, node, "eth_sendTransaction", json!([tx(n, &logger)])).await?;
            n += 1;
        }
        rpc(&c, node, "anvil_mine", json!(["0x1"])).await?;
    }
    // From here on the chain moves like a real one: a block every `block_secs`, with whatever the writer sent.
    rpc(&c, node, "evm_setIntervalMining", json!([block_secs])).await?;
    let head = parse_quantity(&rpc(&c, node, "eth_blockNumber", json!([])).await?)?;
    println!("seeded: head {head}, {n} transactions, logger {logger}");
    Ok(())
}

struct Run {
    url: String,
    admin: String,
    node: String,
    clients: u64,
    rate: f64,
    secs: u64,
    warmup: u64,
    label: String,
}

/// What clients share: the head they last saw through the gateway, and recent transaction hashes.
struct Chain {
    head: AtomicU64,
    hashes: Mutex<Vec<String>>,
    logger: String,
}

/// The mix, in percent (they add up to 100).
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `eth_blockNumber` (10 %).
    Head,
    /// `eth_getBlockByNumber(recent, true)` (25 %).
    Block,
    /// `eth_getTransactionReceipt(recent hash)` (25 %).
    Receipt,
    /// `eth_getTransactionByHash(recent hash)` (10 %).
    Tx,
    /// `eth_getBalance(account, "latest")` (5 %).
    BalanceLatest,
    /// `eth_getBalance(account, recent block)` (10 %).
    BalanceAt,
    /// `eth_getLogs` over a recent 10-block page of the logger (15 %).
    Logs,
}

const MIX: [(Kind, u64); 7] = [
    (Kind::Head, 10),
    (Kind::Block, 25),
    (Kind::Receipt, 25),
    (Kind::Tx, 10),
    (Kind::BalanceLatest, 5),
    (Kind::BalanceAt, 10),
    (Kind::Logs, 15),
];

/// xorshift64*: enough randomness for a load mix, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 0..n, skewed towards 0 (recent): u² × n.
    fn recent(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u) * n as f64) as u64
    }
}

fn request(kind: Kind, rng: &mut Rng, chain: &Chain) -> (String, Value) {
    let head = chain.head.load(Ordering::Relaxed);
    let back = |rng: &mut Rng| format!("0x{:x}", head.saturating_sub(rng.recent(32)));
    let account = |rng: &mut Rng| DEV_ADDRESSES[(rng.next() % 5) as usize].to_owned();
    let hash = |rng: &mut Rng| {
        let h = chain.hashes.lock().map(|h| {
            let i = rng.recent(h.len() as u64) as usize;
            h.get(h.len().saturating_sub(1 + i)).cloned()
        });
        h.ok().flatten().unwrap_or_default()
    };
    match kind {
        Kind::Head => ("eth_blockNumber".into(), json!([])),
        Kind::Block => ("eth_getBlockByNumber".into(), json!([back(rng), true])),
        Kind::Receipt => ("eth_getTransactionReceipt".into(), json!([hash(rng)])),
        Kind::Tx => ("eth_getTransactionByHash".into(), json!([hash(rng)])),
        Kind::BalanceLatest => ("eth_getBalance".into(), json!([account(rng), "latest"])),
        Kind::BalanceAt => ("eth_getBalance".into(), json!([account(rng), back(rng)])),
        Kind::Logs => {
            let page = head.saturating_sub(rng.recent(40)) / 10;
            let (from, to) = (page * 10, (page * 10 + 9).min(head));
            let filter =
                json!({"fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{to:x}"), "address": chain.logger});
            ("eth_getLogs".into(), json!([filter]))
        }
    }
}

fn pick(rng: &mut Rng) -> Kind {
    let mut r = rng.next() % 100;
    for (k, w) in MIX {
        if r < w {
            return k;
        }
        r -= w;
    }
    Kind::Head
}

/// Sums every sample of a metric family in Prometheus text.
fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn counters(c: &RawClient, admin: &str) -> anyhow::Result<(f64, f64, f64, f64)> {
    let text = c.get(&format!("{admin}/metrics")).await?.text();
    Ok((
        family_sum(&text, "iotex_gateway_requests_total"),
        family_sum(&text, "iotex_gateway_upstream_requests_total"),
        family_sum(&text, "iotex_gateway_cache_hits_total"),
        family_sum(&text, "iotex_gateway_coalesced_total"),
    ))
}

async fn follow(c: RawClient, node: String, chain: Arc<Chain>, until: Instant) {
    let mut seen = chain.head.load(Ordering::Relaxed);
    while Instant::now() < until {
        if let Ok(h) = rpc(&c, &node, "eth_blockNumber", json!([])).await.and_then(|v| parse_quantity(&v)) {
            for n in seen + 1..=h {
                if let Ok(b) = rpc(&c, &node, "eth_getBlockByNumber", json!([format!("0x{n:x}"), false])).await
                    && let (Some(txs), Ok(mut hashes)) = (b["transactions"].as_array(), chain.hashes.lock())
                {
                    hashes.extend(txs.iter().filter_map(|t| t.as_str().map(str::to_owned)));
                    let excess = hashes.len().saturating_sub(400);
                    hashes.drain(..excess);
                }
            }
            seen = seen.max(h);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn write(c: RawClient, node: String, logger: String, until: Instant) {
    let mut i = 1u64 << 20;
    while Instant::now() < until {
        let _ = rpc(&c, &node, "eth_sendTransaction", json!([tx(i, &logger)])).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Tally {
    hist: Histogram<u64>,
    calls: u64,
    errors: u64,
}

async fn client(
    id: u64,
    r: Arc<Run>,
    chain: Arc<Chain>,
    (start, measure_from, end): (Instant, Instant, Instant),
    mut tally: Tally,
) -> Tally {
    let c = RawClient::new();
    let period = Duration::from_secs_f64(r.clients as f64 / r.rate);
    // Stagger the clients over one period so the offered load is smooth.
    let first = start + period.mul_f64(id as f64 / r.clients as f64);
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    loop {
        let at = tick.tick().await;
        if at >= end {
            return tally;
        }
        let kind = pick(&mut rng);
        let (method, params) = request(kind, &mut rng, &chain);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        // Latency counts from the scheduled time (coordinated omission), like wrk2.
        let reply = c.post(&r.url, body).await;
        let us = at.elapsed().as_micros() as u64;
        let ok = match &reply {
            Ok(rep) if rep.status == 200 => {
                let v: Value = serde_json::from_slice(&rep.body).unwrap_or(Value::Null);
                if let (Kind::Head, Some(h)) = (kind, v["result"].as_str()) {
                    let h = parse_quantity(&json!(h)).unwrap_or(0);
                    chain.head.fetch_max(h, Ordering::Relaxed);
                }
                v.get("result").is_some()
            }
            _ => false,
        };
        if at >= measure_from {
            tally.calls += 1;
            tally.errors += u64::from(!ok);
            let _ = tally.hist.record(us.max(1));
        }
    }
}

async fn run(r: Run) -> anyhow::Result<()> {
    let c = RawClient::new();
    let logger = logger_address(&c, &r.node).await?;
    let head = parse_quantity(&rpc(&c, &r.node, "eth_blockNumber", json!([])).await?)?;
    let chain = Arc::new(Chain { head: AtomicU64::new(head), hashes: Mutex::new(Vec::new()), logger: logger.clone() });
    // Learn the last 100 blocks' transactions before starting.
    for n in head.saturating_sub(100)..=head {
        let b = rpc(&c, &r.node, "eth_getBlockByNumber", json!([format!("0x{n:x}"), false])).await?;
        if let (Some(txs), Ok(mut h)) = (b["transactions"].as_array(), chain.hashes.lock()) {
            h.extend(txs.iter().filter_map(|t| t.as_str().map(str::to_owned)));
        }
    }
    let r = Arc::new(r);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + Duration::from_secs(r.warmup);
    let end = measure_from + Duration::from_secs(r.secs);
    let aux = [
        tokio::spawn(follow(RawClient::new(), r.node.clone(), Arc::clone(&chain), end)),
        tokio::spawn(write(RawClient::new(), r.node.clone(), logger, end)),
    ];
    let empty = Tally { hist: Histogram::new_with_bounds(1, 60_000_000, 3)?, calls: 0, errors: 0 };
    let tasks: Vec<_> = (0..r.clients)
        .map(|id| {
            let tally = Tally { hist: empty.hist.clone(), calls: 0, errors: 0 };
            tokio::spawn(client(id, Arc::clone(&r), Arc::clone(&chain), (start, measure_from, end), tally))
        })
        .collect();
    tokio::time::sleep_until(measure_from).await;
    let before = counters(&c, &r.admin).await?;
    let mut total = empty;
    for t in tasks {
        let t = t.await?;
        total.calls += t.calls;
        total.errors += t.errors;
        let _ = total.hist.add(&t.hist);
    }
    let after = counters(&c, &r.admin).await?;
    for a in aux {
        let _ = a.await;
    }
    let h = total.hist;
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let (gw_calls, upstream, hits, joined) =
        (after.0 - before.0, after.1 - before.1, after.2 - before.2, after.3 - before.3);
    println!(
        "RESULT label={} calls={} errors={} rate={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} \
         gw_calls={:.0} upstream={:.0} hits={:.0} coalesced={:.0} upstream_pct={:.1}",
        r.label,
        total.calls,
        total.errors,
        total.calls as f64 / r.secs as f64,
        q(0.5),
        q(0.99),
        q(0.999),
        h.max() as f64 / 1000.0,
        gw_calls,
        upstream,
        hits,
        joined,
        if gw_calls > 0.0 { 100.0 * upstream / gw_calls } else { 0.0 },
    );
    Ok(())
}
