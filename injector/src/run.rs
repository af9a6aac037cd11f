//! One run, as named phases in the order they happen ([`run_with_listener`] reads as the list):
//!
//! 1. `connect`: a control client per endpoint, and the chain id they agree on.
//! 2. `serve_metrics`: `/metrics` while the run lasts (when asked for).
//! 3. `prepare`: fees, funding, the Counter contract, start nonces and start blocks.
//! 4. `inject`: the schedule loop; each tick becomes its own task ([`crate::action`]) at its intended time.
//! 5. `drain`: in-flight sends get `--drain-timeout`, then are cut (counted, never lost silently).
//! 6. `fill_gaps`: a failure after an account's last action may have left a nonce gap; fill it.
//! 7. `confirm_inclusion`: wait for inclusion (bounded), then reconcile what is left with the nodes.
//! 8. `account_nonces` and `finish`: the report, thresholds, output files.
//!
//! The schedule loop never waits on a response: a tick that finds `--max-in-flight` sends outstanding is
//! counted late and then waits for a slot in its own task; its latencies still count from the intended time
//! (see [`crate::action`] for that rule).

use crate::action::Ctx;
use crate::confirm::{self, Tracker};
use crate::error::RunError;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::nonce::Nonces;
use crate::recorder::{Point, Recorder};
use crate::run_config::RunConfig;
use crate::schedule::Ticks;
use crate::send::Sender;
use crate::setup::ChainIds;
use crate::signer::{self, Fees};
use alloy_primitives::Address;
use futures::future::FusedFuture;
use futures::{FutureExt, StreamExt};
use iotex_shared::report::{AccountReport, Report};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report (also written to `--report`).
    pub report: Report,
    /// `--fail-if` conditions that held.
    pub breached: Vec<String>,
}

/// Runs the injector until the profile ends or `shutdown` resolves; always returns a report when set-up
/// succeeded.
pub async fn run(cfg: RunConfig, shutdown: impl Future<Output = ()> + Send) -> Result<Outcome, RunError> {
    run_with_listener(cfg, None, shutdown).await
}

/// Like [`run`], with an already-bound metrics listener (tests bind port 0).
pub async fn run_with_listener(
    cfg: RunConfig,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome, RunError> {
    let mut shutdown = Box::pin(shutdown.fuse());
    let (nodes, chain) = connect(&cfg).await?;
    let chain_id = chain.report();
    let metrics = Arc::new(Metrics::new(cfg.endpoints.len()).map_err(|e| RunError::Setup(e.to_string()))?);
    let metrics_server = serve_metrics(&cfg, metrics_listener, metrics.clone()).await?;
    let prepared = prepare(&cfg, &nodes, chain).await?;
    warn_if_unmergeable(&cfg);
    let rec = Arc::new(Recorder::new(cfg.endpoints.len(), metrics).with_profile(cfg.profile.clone()));
    let start = Instant::now();
    let started_at_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let tracker = Arc::new(Tracker::new(cfg.endpoints.len(), start));
    let ctx = Arc::new(context(&cfg, &prepared, nodes, chain, tracker, rec.clone()).await?);
    let followers = Followers::start(&ctx, &prepared.start_blocks);
    let (stop_progress, progress_stopped) = watch::channel(false);
    let progress = tokio::spawn(crate::output::progress(
        cfg.clone(),
        rec.clone(),
        cfg.profile.clone(),
        start,
        started_at_unix,
        progress_stopped,
    ));
    tracing::info!(
        chain_id,
        run_id = %cfg.run_id,
        shard = %cfg.shard,
        endpoints = cfg.endpoints.len(),
        accounts = cfg.keys.len(),
        scheduled = cfg.profile.total(),
        duration = %iotex_shared::duration::format(cfg.profile.duration()),
        gas_price = prepared.fees.gas_price,
        priority_fee = prepared.fees.priority_fee,
        "injecting"
    );

    let (cancel_tx, cancel) = watch::channel(false);
    let fees = FeeRefresh::start(&ctx);
    let injected = inject(&ctx, start, cancel, &mut shutdown).await;
    drain(&ctx, cfg.drain_timeout, &cancel_tx).await;
    fees.stop().await;
    let gap_fillers = fill_gaps(&ctx, &prepared).await;
    confirm_inclusion(&ctx, followers, injected.interrupted, &mut shutdown).await;
    let _ = stop_progress.send(true);
    let series = progress.await.unwrap_or_default();
    let points = series.points;
    let account_nonces = account_nonces(&ctx, &prepared).await;

    let report = crate::report::build(crate::report::Inputs {
        cfg: &cfg,
        rec: &rec,
        chain_id,
        duration_s: injected.duration_s,
        interrupted: injected.interrupted,
        account_nonces,
        started_at_unix,
        contracts: ctx.contracts.clone(),
        points: &points,
    });
    let histograms = crate::histograms::from_state(&rec.lock(), series.intervals);
    let report = Report {
        gap_fillers,
        run_id: cfg.run_id.clone(),
        shard: iotex_shared::report::ShardInfo { index: cfg.shard.index, count: cfg.shard.count },
        histograms: Some(histograms),
        ..report
    };
    let outcome = finish(&cfg, report, &points);
    metrics_server.stop().await;
    outcome
}

/// Phase 1: one control client per endpoint (web3 or gRPC), and the chain ids they (and `--chain-id`)
/// agree on.
async fn connect(cfg: &RunConfig) -> Result<(Vec<Node>, ChainIds), RunError> {
    let nodes = cfg
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, u)| Node::new(cfg.api(i), u, cfg.auth_token.as_deref(), cfg.request_timeout))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| RunError::EndpointDown { endpoint: source.endpoint.clone(), source })?;
    let chain = crate::setup::chain_id(cfg, &nodes).await?;
    Ok((nodes, chain))
}

/// The `/metrics` server of a run, stopped after the report is written.
struct MetricsServer {
    stop: oneshot::Sender<()>,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    async fn stop(self) {
        let _ = self.stop.send(());
        if let Some(t) = self.task {
            let _ = t.await;
        }
    }
}

/// Phase 2: serve `/metrics` on the given listener, or bind `--metrics-listen`; neither means no server.
async fn serve_metrics(
    cfg: &RunConfig,
    listener: Option<tokio::net::TcpListener>,
    metrics: Arc<Metrics>,
) -> Result<MetricsServer, RunError> {
    let listener = match (listener, cfg.metrics_listen) {
        (Some(l), _) => Some(l),
        (None, Some(addr)) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Metrics { addr: addr.to_string(), source })?,
        ),
        (None, None) => None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = listener.map(|l| {
        if let Ok(a) = l.local_addr() {
            tracing::info!(addr = %a, "serving Prometheus metrics on /metrics");
        }
        tokio::spawn(crate::metrics::serve(l, metrics, async move {
            let _ = stopped.await;
        }))
    });
    Ok(MetricsServer { stop, task })
}

/// What set-up established before the first tick.
struct Prepared {
    fees: Fees,
    /// Account `i` sends through endpoint `account_ep[i]` (round robin).
    account_ep: Vec<usize>,
    addresses: Vec<Address>,
    /// The contract executions call, per endpoint (`--contract`, or a Counter deployed there).
    contracts: Vec<Option<Address>>,
    /// Each account's pending nonce at start (also the report's `start_nonce`).
    start_nonces: Vec<u64>,
    /// Each endpoint's head at start, where the block followers begin (empty without confirmation).
    start_blocks: Vec<u64>,
}

/// Phase 3: fees, funding (`--fund-from`), the Counter contract (executions without `--contract`), start
/// nonces and start blocks.
async fn prepare(cfg: &RunConfig, rpcs: &[Node], chain: ChainIds) -> Result<Prepared, RunError> {
    let fees = crate::setup::fees(cfg, rpcs).await?;
    let gas_price = fees.gas_price;
    let account_ep: Vec<usize> = (0..cfg.keys.len()).map(|i| i % rpcs.len()).collect();
    let addresses: Vec<Address> = cfg.keys.iter().map(|k| k.address()).collect();
    if let Some(f) = &cfg.fund {
        let pairs: Vec<(Address, usize)> = addresses.iter().copied().zip(account_ep.iter().copied()).collect();
        fund(rpcs, f, f.amount, &pairs, chain, gas_price).await?;
    }
    // (endpoint, account): the first account of each endpoint deploys the Counter when executions need one.
    let deployers: Vec<(usize, usize)> = if cfg.mix.execution > 0 && cfg.contract.is_none() {
        (0..rpcs.len()).filter_map(|ep| account_ep.iter().position(|x| *x == ep).map(|acct| (ep, acct))).collect()
    } else {
        Vec::new()
    };
    if cfg.preflight {
        let deploying: Vec<usize> = deployers.iter().map(|(_, acct)| *acct).collect();
        preflight(cfg, rpcs, chain, fees, (&account_ep, &addresses), &deploying).await?;
    }
    let mut contracts = vec![cfg.contract; rpcs.len()];
    for &(ep, acct) in &deployers {
        let key = &cfg.keys[acct];
        let a = match &rpcs[ep] {
            Node::Web3(r) => crate::setup::deploy(r, key, chain.evm.unwrap_or(0), gas_price).await?,
            Node::Grpc(c) => crate::native::setup::deploy(c, key, native_params(chain, gas_price)).await?,
        };
        tracing::info!(endpoint = ep, contract = %a, "deployed Counter");
        contracts[ep] = Some(a);
    }
    // Read concurrently (bounded): a large pool would otherwise spend its start-up in round trips.
    let start_nonces: Vec<u64> = futures::stream::iter((0..addresses.len()).map(|i| {
        let (rpc, a) = (rpcs[account_ep[i]].clone(), addresses[i]);
        async move { rpc.pending_nonce(a).await }
    }))
    .buffered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_, _>>()
    .map_err(|source| RunError::EndpointDown { endpoint: source.endpoint.clone(), source })?;
    let mut start_blocks = Vec::with_capacity(rpcs.len());
    if cfg.confirm {
        for r in rpcs {
            start_blocks.push(
                r.block_number()
                    .await
                    .map_err(|source| RunError::EndpointDown { endpoint: r.url().to_owned(), source })?,
            );
        }
    }
    Ok(Prepared { fees, account_ep, addresses, contracts, start_nonces, start_blocks })
}

/// Sends `amount` to each `(account, endpoint)` from the `--fund-from` key: plain transfers on web3
/// endpoints, native ones on gRPC endpoints.
async fn fund(
    rpcs: &[Node],
    f: &crate::accounts::Funding,
    amount: alloy_primitives::U256,
    pairs: &[(Address, usize)],
    chain: ChainIds,
    gas_price: u128,
) -> Result<(), RunError> {
    crate::setup::fund(rpcs, &f.key, amount, pairs, chain, gas_price).await?;
    for (ep, node) in rpcs.iter().enumerate() {
        let mine: Vec<Address> = pairs.iter().filter(|(_, e)| *e == ep).map(|(a, _)| *a).collect();
        if let (Node::Grpc(c), false) = (node, mine.is_empty()) {
            crate::native::setup::fund(c, &f.key, amount, &mine, native_params(chain, gas_price)).await?;
            tracing::info!(endpoint = ep, "funded pool accounts (native transfers)");
        }
    }
    Ok(())
}

/// The pre-flight check (`preflight.rs`): every account can pay for its share of the run at the worst case,
/// after a top-up from `--fund-from` of the ones that cannot; else the run refuses before the first tick.
/// `deployers` are the accounts that will deploy the Counter.
async fn preflight(
    cfg: &RunConfig,
    rpcs: &[Node],
    chain: ChainIds,
    fees: Fees,
    (account_ep, addresses): (&[usize], &[Address]),
    deployers: &[usize],
) -> Result<(), RunError> {
    use crate::preflight as pf;
    let needs = pf::needs(cfg, fees, &pf::native_accounts(rpcs, account_ep), deployers);
    let mut short = pf::shortfalls(addresses, &pf::balances(rpcs, account_ep, addresses).await?, &needs);
    if let (Some(f), false) = (&cfg.fund, short.is_empty()) {
        let top_up = short.iter().map(pf::Short::missing).max().unwrap_or_default();
        tracing::info!(accounts = short.len(), top_up = %pf::iotx(top_up), "pre-flight: topping up short accounts");
        let pairs: Vec<(Address, usize)> = short.iter().map(|s| (s.address, account_ep[s.account])).collect();
        fund(rpcs, f, top_up, &pairs, chain, fees.gas_price).await?;
        short = pf::shortfalls(addresses, &pf::balances(rpcs, account_ep, addresses).await?, &needs);
    }
    if !short.is_empty() {
        return Err(RunError::Setup(pf::refusal(&short, addresses.len(), cfg.fund.is_some())));
    }
    let most = needs.iter().max().copied().unwrap_or_default();
    tracing::info!(accounts = addresses.len(), worst_case_each = %pf::iotx(most), "pre-flight: every account can pay for its share");
    Ok(())
}

/// The shared state every tick's task reads: keys, clients, bounds, nonces, tracker, recorder.
async fn context(
    cfg: &RunConfig,
    p: &Prepared,
    nodes: Vec<Node>,
    chain: ChainIds,
    tracker: Arc<Tracker>,
    rec: Arc<Recorder>,
) -> Result<Ctx, RunError> {
    // The hot-path HTTP client exists for web3 endpoints only; gRPC ones send through their channel.
    let senders = nodes
        .iter()
        .map(|n| match n {
            Node::Web3(r) => {
                Sender::new(&r.url, cfg.auth_token.as_deref(), cfg.request_timeout, cfg.max_in_flight.min(4096))
                    .map(Some)
            }
            Node::Grpc(_) => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::Setup)?;
    let n = cfg.keys.len();
    let nonces = Nonces::new(n);
    for (i, start) in p.start_nonces.iter().enumerate() {
        nonces.set(i, *start).await;
    }
    Ok(Ctx {
        keys: cfg.keys.iter().map(signer::fast).collect(),
        pubkeys: if nodes.iter().any(|n| matches!(n, Node::Grpc(_))) {
            cfg.keys.iter().map(crate::native::sign::pubkey).collect()
        } else {
            Vec::new()
        },
        recipients: (0..n).map(|i| p.addresses[(i + 1) % n]).collect(),
        account_ep: p.account_ep.clone(),
        contracts: p.contracts.clone(),
        calldata: crate::setup::bump_calldata(1),
        chain_id: chain.evm.unwrap_or(0),
        native: native_params(chain, p.fees.gas_price),
        fees: crate::fees::FeeCell::new(p.fees, cfg.max_fee, cfg.tx_type, cfg.gas_price.is_none()),
        nodes,
        senders,
        nonces,
        tracker,
        rec,
        sem: Arc::new(Semaphore::new(cfg.max_in_flight)),
        account_sems: if cfg.account_in_flight > 0 {
            (0..n).map(|_| Semaphore::new(cfg.account_in_flight)).collect()
        } else {
            Vec::new()
        },
        backlog: AtomicUsize::new(0),
        tasks: AtomicUsize::new(0),
        done: tokio::sync::Notify::new(),
        cfg: cfg.clone(),
    })
}

/// One block follower per endpoint while confirming (none with `--no-confirm`).
struct Followers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Followers {
    fn start(ctx: &Ctx, start_blocks: &[u64]) -> Followers {
        let (stop, stopped) = watch::channel(false);
        let tasks = if ctx.cfg.confirm {
            ctx.nodes
                .iter()
                .enumerate()
                .map(|(ep, n)| {
                    let (tracker, rec, start, poll) =
                        (ctx.tracker.clone(), ctx.rec.clone(), start_blocks[ep], ctx.cfg.poll_interval);
                    let gas_price = ctx.native.gas_price;
                    match n {
                        Node::Web3(r) => {
                            tokio::spawn(confirm::follow(ep, r.clone(), tracker, rec, start, poll, stopped.clone()))
                        }
                        Node::Grpc(c) => tokio::spawn(crate::native::follow::follow(
                            ep,
                            c.clone(),
                            tracker,
                            rec,
                            start,
                            poll,
                            gas_price,
                            stopped.clone(),
                        )),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Followers { stop, tasks }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for f in self.tasks {
            let _ = f.await;
        }
    }
}

/// A shard with a generated run id cannot be merged with the others: said before the run, not after.
fn warn_if_unmergeable(cfg: &RunConfig) {
    if cfg.shard.count > 1 && cfg.run_id_source == crate::shard::RunIdSource::Random {
        tracing::warn!(
            run_id = %cfg.run_id,
            "sharded run with a generated run id: no other shard has it, so merge will refuse; give --run-id"
        );
    }
}

/// The fee refresher (`fees.rs`) while actions are sent; none with a fixed `--gas-price`.
struct FeeRefresh {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FeeRefresh {
    fn start(ctx: &Arc<Ctx>) -> FeeRefresh {
        let (stop, stopped) = watch::channel(false);
        let task = ctx.fees.live().then(|| {
            let c = ctx.clone();
            tokio::spawn(async move { crate::fees::refresh(&c.fees, &c.nodes, &c.cfg, stopped).await })
        });
        FeeRefresh { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task {
            let _ = t.await;
        }
    }
}

/// How the schedule loop ended.
struct Injected {
    /// A shutdown signal stopped it before the profile's end.
    interrupted: bool,
    /// Seconds the schedule ran (the profile's length, or until the signal).
    duration_s: f64,
}

/// Phase 4: the schedule loop. Each tick is dispatched at its intended time into its own task and never
/// waits on a response; a tick that finds the global bound full is counted late, and shed (counted) when
/// the backlog of waiting ticks is past a cap, so a stalled node cannot grow the task count without bound.
async fn inject<S: FusedFuture<Output = ()> + Unpin>(
    ctx: &Arc<Ctx>,
    start: Instant,
    cancel: watch::Receiver<bool>,
    shutdown: &mut S,
) -> Injected {
    let (cfg, rec) = (&ctx.cfg, &ctx.rec);
    let backlog_cap = cfg.max_in_flight.saturating_mul(4).max(1024);
    let mut interrupted = false;
    for tick in Ticks::new(cfg.profile.clone()) {
        let due = start + tick.due;
        if due > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = &mut *shutdown => { interrupted = true; break; }
            }
        } else if tick.seq % 64 == 0 && (&mut *shutdown).now_or_never().is_some() {
            // Behind schedule there is no sleep to race the signal against: look every 64 ticks.
            interrupted = true;
            break;
        }
        rec.scheduled();
        rec.metrics.target_rate.set(cfg.profile.rate_at(tick.due));
        let permit = match ctx.sem.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                rec.late();
                if ctx.backlog.load(Ordering::Acquire) >= backlog_cap {
                    rec.shed();
                    continue;
                }
                None
            }
        };
        ctx.spawn(tick.seq, due, permit, cancel.clone());
    }
    let loop_end = Instant::now();
    let sched_end = if interrupted { loop_end } else { loop_end.max(start + cfg.profile.duration()) };
    rec.metrics.target_rate.set(0.0);
    if interrupted {
        tracing::warn!("interrupted: scheduling stopped; draining in-flight sends");
    }
    Injected { interrupted, duration_s: sched_end.saturating_duration_since(start).as_secs_f64() }
}

/// Phase 5: in-flight sends get `drain_timeout`, then are cancelled (each counted as unknown or not sent).
/// After the cancel, a task can still be inside a nonce read (bounded by `--request-timeout`); it is waited
/// for too, because reconciliation must not start while a send could still be answered.
async fn drain(ctx: &Ctx, drain_timeout: Duration, cancel: &watch::Sender<bool>) {
    if tokio::time::timeout(drain_timeout, ctx.idle()).await.is_err() {
        tracing::warn!(
            outstanding = ctx.tasks.load(Ordering::Acquire),
            "drain deadline passed; cutting in-flight sends"
        );
        let _ = cancel.send(true);
        let grace = ctx.cfg.request_timeout + Duration::from_secs(5);
        if tokio::time::timeout(grace, ctx.idle()).await.is_err() {
            tracing::warn!(outstanding = ctx.tasks.load(Ordering::Acquire), "action tasks still running after the cut");
        }
    }
}

/// Phase 6: a failure after an account's last action may have left a gap with accepted actions queued
/// above it, which would never be included; fill each such gap with a zero-value self-transfer.
async fn fill_gaps(ctx: &Ctx, p: &Prepared) -> u64 {
    let mut gap_fillers = 0;
    for (acct, max_handed) in ctx.nonces.unsynced().await {
        let (ep, key, address) = (p.account_ep[acct], &ctx.keys[acct], p.addresses[acct]);
        gap_fillers += match &ctx.nodes[ep] {
            Node::Web3(rpc) => {
                // At the fee of the end of the run, which the base fee may have climbed to.
                crate::setup::fill_gap(rpc, key, address, ctx.chain_id, ctx.fees.get().gas_price, max_handed).await
            }
            Node::Grpc(c) => {
                let pk = &ctx.pubkeys[acct];
                crate::native::setup::fill_gap(c, key, pk, address, ctx.native, max_handed).await
            }
        };
    }
    if gap_fillers > 0 {
        tracing::info!(gap_fillers, "filled nonce gaps left by failed actions");
    }
    gap_fillers
}

/// Phase 7: wait for inclusion (`--confirm-timeout`, at most 5 s after a signal), stop the followers, then
/// ask the nodes about every action still unresolved.
async fn confirm_inclusion<S: FusedFuture<Output = ()> + Unpin>(
    ctx: &Ctx,
    followers: Followers,
    interrupted: bool,
    shutdown: &mut S,
) {
    if !ctx.cfg.confirm {
        return;
    }
    let wait = if interrupted { ctx.cfg.confirm_timeout.min(Duration::from_secs(5)) } else { ctx.cfg.confirm_timeout };
    let deadline = Instant::now() + wait;
    while ctx.tracker.awaiting() > 0 && Instant::now() < deadline {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = &mut *shutdown => break,
        }
    }
    followers.stop().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut unresolved = 0;
    for (ep, node) in ctx.nodes.iter().enumerate() {
        unresolved += match node {
            Node::Web3(rpc) => confirm::reconcile(ep, rpc, &ctx.tracker, &ctx.rec, deadline).await,
            Node::Grpc(c) => {
                crate::native::follow::reconcile(ep, c, ctx.native.gas_price, &ctx.tracker, &ctx.rec, deadline).await
            }
        };
    }
    if unresolved > 0 {
        tracing::warn!(unresolved, "some actions could not be looked up at the end; counted as pending");
    }
}

/// Phase 8a: each account's start nonce, and for small pools (≤ 1000) the chain's own count at the end
/// of what landed.
async fn account_nonces(ctx: &Ctx, p: &Prepared) -> Vec<AccountReport> {
    let mut reports: Vec<AccountReport> = p
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| AccountReport {
            address: crate::address::to_hex(a),
            io_address: crate::address::to_io(a),
            endpoint: p.account_ep[i],
            start_nonce: p.start_nonces[i],
            end_nonce: None,
        })
        .collect();
    if ctx.cfg.confirm && p.addresses.len() <= 1000 {
        let ends: Vec<Option<u64>> = futures::stream::iter((0..p.addresses.len()).map(|i| {
            let (rpc, a) = (ctx.nodes[p.account_ep[i]].clone(), p.addresses[i]);
            async move { rpc.latest_nonce(a).await.ok() }
        }))
        .buffered(32)
        .collect()
        .await;
        for (r, end) in reports.iter_mut().zip(ends) {
            r.end_nonce = end;
        }
    }
    reports
}

/// Phase 8b: evaluate `--fail-if` and write the report, histogram log and plot.
fn finish(cfg: &RunConfig, mut report: Report, points: &[Point]) -> Result<Outcome, RunError> {
    report.equations = crate::report::equations(&report);
    for line in crate::report::unbalanced(&report) {
        tracing::warn!("the report does not balance: {line}");
    }
    let (report, breached) = crate::report::thresholds(report, &cfg.thresholds);
    crate::output::write_all(cfg, &report, points)?;
    Ok(Outcome { report, breached })
}

/// The fee and chain fields of native actions.
fn native_params(chain: ChainIds, gas_price: u128) -> crate::native::sign::CoreParams {
    crate::native::sign::CoreParams { chain_id: chain.native.unwrap_or(0), gas_price }
}
