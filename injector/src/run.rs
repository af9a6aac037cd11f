//! One run: set-up, the schedule loop, one task per action, drain, confirm, reconcile, report.
//!
//! The schedule loop never waits on a response: each tick is dispatched at its intended time into its own
//! task. A tick that finds `--max-in-flight` sends outstanding is counted late and then waits for a slot;
//! its latencies still count from the intended time (no coordinated omission).

use crate::config::{ActionKind, RunConfig};
use crate::confirm::{self, Status, Tracker};
use crate::error::{Kind, RunError};
use crate::metrics::Metrics;
use crate::nonce::Nonces;
use crate::recorder::Recorder;
use crate::rpc::Rpc;
use crate::schedule::Ticks;
use crate::send::{SendOutcome, Sender};
use crate::signer::{self, Call, Fees};
use alloy_primitives::{Address, Bytes};
use futures::FutureExt;
use iotex_shared::report::{AccountReport, Report};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report (also written to `--report`).
    pub report: Report,
    /// `--fail-if` conditions that held.
    pub breached: Vec<String>,
}

/// Nonce-class rejections are retried this many times with a resynced nonce.
const MAX_ATTEMPTS: u32 = 3;

struct Ctx {
    keys: Vec<signer::FastKey>,
    account_ep: Vec<usize>,
    recipients: Vec<Address>,
    contracts: Vec<Option<Address>>,
    calldata: Bytes,
    chain_id: u64,
    fees: Fees,
    cfg: RunConfig,
    rpcs: Vec<Rpc>,
    senders: Vec<Sender>,
    nonces: Nonces,
    tracker: Arc<Tracker>,
    rec: Arc<Recorder>,
    sem: Arc<Semaphore>,
    /// Per-account bounds (`--account-in-flight`); FIFO, so an account's ticks take nonces and send in order.
    account_sems: Vec<Semaphore>,
    backlog: AtomicUsize,
    tasks: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Ctx {
    /// Resolves once no send task is outstanding. The `Notify` is armed before the count is read, so a task
    /// finishing in between still wakes it.
    async fn idle(&self) {
        loop {
            let notified = self.done.notified();
            if self.tasks.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    fn call(&self, acct: usize, kind: ActionKind) -> Call {
        let ep = self.account_ep[acct];
        match (kind, self.contracts.get(ep).copied().flatten()) {
            (ActionKind::Execution, Some(contract)) => Call {
                to: contract,
                value: alloy_primitives::U256::ZERO,
                input: self.calldata.clone(),
                gas_limit: self.cfg.gas_limit.unwrap_or(100_000),
            },
            _ => Call {
                to: self.cfg.to.unwrap_or(self.recipients[acct]),
                value: self.cfg.value,
                input: Bytes::new(),
                gas_limit: self.cfg.gas_limit.unwrap_or(21_000),
            },
        }
    }
}

/// Decrements the live-task count when an action task ends, however it ends.
struct TaskGuard<'a>(&'a Ctx);
impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

async fn action(
    ctx: Arc<Ctx>,
    seq: u64,
    due: Instant,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    mut cancel: watch::Receiver<bool>,
) {
    let _guard = TaskGuard(&ctx);
    // Already counted late by the scheduler when the global bound was full.
    let counted_late = permit.is_none();
    let _permit = match permit {
        Some(p) => p,
        None => {
            ctx.backlog.fetch_add(1, Ordering::AcqRel);
            let p = tokio::select! {
                p = ctx.sem.clone().acquire_owned() => p.ok(),
                _ = cancel.wait_for(|c| *c) => None,
            };
            ctx.backlog.fetch_sub(1, Ordering::AcqRel);
            match p {
                Some(p) => p,
                None => {
                    ctx.rec.not_sent();
                    return;
                }
            }
        }
    };
    ctx.rec.metrics.in_flight.inc();
    struct InFlight<'a>(&'a Recorder);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.metrics.in_flight.dec();
        }
    }
    let _in_flight = InFlight(&ctx.rec);

    let n = ctx.keys.len() as u64;
    let acct = (seq % n) as usize;
    let ep = ctx.account_ep[acct];
    let kind = ctx.cfg.mix.pick(seq);
    let call = ctx.call(acct, kind);
    let key = &ctx.keys[acct];
    let _account_permit = match ctx.account_sems.get(acct) {
        Some(s) => match s.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                // The account's previous send is still out: this tick cannot go on time either.
                if !counted_late {
                    ctx.rec.late();
                }
                tokio::select! {
                    p = s.acquire() => p.ok(),
                    _ = cancel.wait_for(|c| *c) => {
                        ctx.rec.not_sent();
                        return;
                    }
                }
            }
        },
        None => None,
    };
    let mut first = true;
    for attempt in 1..=MAX_ATTEMPTS {
        let rpc = &ctx.rpcs[ep];
        let reserved = ctx.nonces.reserve(acct, || rpc.pending_nonce(key.address())).await;
        let reserved = match reserved {
            Ok(Some((r, synced))) => {
                if synced {
                    ctx.rec.resync();
                }
                r
            }
            Ok(None) => return,
            Err(e) => {
                if first {
                    ctx.rec.sent(ep, Instant::now().saturating_duration_since(due));
                }
                ctx.rec.rejected(ep, e.kind, None, &e.to_string());
                return;
            }
        };
        let signed = match signer::sign(key, ctx.chain_id, reserved.nonce, ctx.cfg.tx_type, ctx.fees, &call) {
            Ok(s) => s,
            Err(e) => {
                ctx.rec.rejected(ep, Kind::Other, None, &e.to_string());
                return;
            }
        };
        let body = signer::send_raw_body(seq, &signed.raw);
        if ctx.cfg.confirm {
            ctx.tracker.insert(ep, signed.hash, due, kind == ActionKind::Execution);
        }
        if first {
            ctx.rec.sent(ep, Instant::now().saturating_duration_since(due));
            first = false;
        }
        let outcome = tokio::select! {
            o = ctx.senders[ep].send(body) => o,
            _ = cancel.wait_for(|c| *c) => SendOutcome::Unknown(Kind::Timeout),
        };
        let latency = Instant::now().saturating_duration_since(due);
        match outcome {
            SendOutcome::Accepted => {
                if ctx.cfg.confirm {
                    ctx.tracker.set(ep, &signed.hash, Status::Accepted);
                }
                ctx.rec.accepted(ep, latency);
                return;
            }
            SendOutcome::Rejected(k, msg) => {
                if ctx.cfg.confirm && ctx.tracker.remove(ep, &signed.hash).is_none() {
                    // The follower saw it in a block before this answer: it was accepted after all.
                    ctx.rec.accepted(ep, latency);
                    return;
                }
                // A refused nonce may leave a gap (or our count is wrong): re-read it before the next use.
                ctx.nonces.invalidate(acct, reserved).await;
                if k.is_nonce_class() && attempt < MAX_ATTEMPTS && !*cancel.borrow() {
                    ctx.rec.retried(k);
                    continue;
                }
                ctx.rec.rejected(ep, k, Some(latency), &msg);
                return;
            }
            SendOutcome::Unknown(k) => {
                ctx.nonces.invalidate(acct, reserved).await;
                if ctx.cfg.confirm {
                    if ctx.tracker.set(ep, &signed.hash, Status::Unknown(k)) {
                        ctx.rec.unknown(ep, latency);
                    } else {
                        // Already seen in a block: the answer was lost, the action was not.
                        ctx.rec.accepted(ep, latency);
                    }
                } else {
                    ctx.rec.rejected(ep, k, Some(latency), "no answer");
                }
                return;
            }
        }
    }
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
    let e = cfg.endpoints.len();
    let rpcs = cfg
        .endpoints
        .iter()
        .map(|u| Rpc::new(u, cfg.auth_token.as_deref(), cfg.request_timeout))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| RunError::EndpointDown { endpoint: source.endpoint.clone(), source })?;
    let chain_id = crate::setup::chain_id(&cfg, &rpcs).await?;

    let metrics = Arc::new(Metrics::new(e));
    let listener = match (metrics_listener, cfg.metrics_listen) {
        (Some(l), _) => Some(l),
        (None, Some(addr)) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Metrics { addr: addr.to_string(), source })?,
        ),
        (None, None) => None,
    };
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_task = listener.map(|l| {
        if let Ok(a) = l.local_addr() {
            tracing::info!(addr = %a, "serving Prometheus metrics on /metrics");
        }
        tokio::spawn(crate::metrics::serve(l, metrics.clone(), async move {
            let _ = metrics_stopped.await;
        }))
    });

    let gas_price = crate::setup::gas_price(&cfg, &rpcs).await?;
    let priority_fee = match cfg.tx_type {
        signer::TxType::Eip1559 => crate::setup::priority_fee(&rpcs, gas_price).await,
        signer::TxType::Legacy => gas_price,
    };
    let account_ep: Vec<usize> = (0..cfg.keys.len()).map(|i| i % e).collect();
    let addresses: Vec<Address> = cfg.keys.iter().map(|k| k.address()).collect();
    if let Some(f) = &cfg.fund {
        let pairs: Vec<(Address, usize)> = addresses.iter().copied().zip(account_ep.iter().copied()).collect();
        crate::setup::fund(&rpcs, &f.key, f.amount, &pairs, chain_id, gas_price).await?;
    }
    let mut contracts = vec![cfg.contract; e];
    if cfg.mix.execution > 0 && cfg.contract.is_none() {
        for (ep, rpc) in rpcs.iter().enumerate() {
            if let Some(acct) = account_ep.iter().position(|x| *x == ep) {
                let a = crate::setup::deploy(rpc, &cfg.keys[acct], chain_id, gas_price).await?;
                tracing::info!(endpoint = ep, contract = %a, "deployed Counter");
                contracts[ep] = Some(a);
            }
        }
    }

    // Start nonces, read concurrently (bounded).
    let nonces = Nonces::new(cfg.keys.len());
    let start_nonces: Vec<u64> = {
        use futures::StreamExt;
        let r: Vec<Result<u64, crate::error::RpcError>> = futures::stream::iter((0..addresses.len()).map(|i| {
            let (rpc, a) = (rpcs[account_ep[i]].clone(), addresses[i]);
            async move { rpc.pending_nonce(a).await }
        }))
        .buffered(32)
        .collect()
        .await;
        r.into_iter()
            .collect::<Result<_, _>>()
            .map_err(|source| RunError::EndpointDown { endpoint: source.endpoint.clone(), source })?
    };
    for (i, n) in start_nonces.iter().enumerate() {
        nonces.set(i, *n).await;
    }
    let mut start_blocks = Vec::with_capacity(e);
    if cfg.confirm {
        for r in &rpcs {
            start_blocks.push(
                r.block_number().await.map_err(|source| RunError::EndpointDown { endpoint: r.url.clone(), source })?,
            );
        }
    }

    let senders = cfg
        .endpoints
        .iter()
        .map(|u| Sender::new(u, cfg.auth_token.as_deref(), cfg.request_timeout, cfg.max_in_flight.min(4096)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::Setup)?;
    let rec = Arc::new(Recorder::new(e, metrics.clone()));
    let start = Instant::now();
    let started_at_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let tracker = Arc::new(Tracker::new(e, start));
    let n = cfg.keys.len();
    let ctx = Arc::new(Ctx {
        keys: cfg.keys.iter().map(signer::fast).collect(),
        recipients: (0..n).map(|i| addresses[(i + 1) % n]).collect(),
        account_ep: account_ep.clone(),
        contracts,
        calldata: crate::setup::bump_calldata(1),
        chain_id,
        fees: Fees { gas_price, priority_fee },
        rpcs: rpcs.clone(),
        senders,
        nonces,
        tracker: tracker.clone(),
        rec: rec.clone(),
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
    });

    let (stop_follow_tx, stop_follow) = watch::channel(false);
    let followers: Vec<_> = if cfg.confirm {
        rpcs.iter()
            .enumerate()
            .map(|(ep, r)| {
                tokio::spawn(confirm::follow(
                    ep,
                    r.clone(),
                    tracker.clone(),
                    rec.clone(),
                    start_blocks[ep],
                    cfg.poll_interval,
                    stop_follow.clone(),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    let (stop_progress_tx, stop_progress) = watch::channel(false);
    let progress = tokio::spawn(crate::output::progress(
        cfg.clone(),
        rec.clone(),
        cfg.profile.clone(),
        start,
        started_at_unix,
        stop_progress,
    ));
    tracing::info!(
        chain_id,
        endpoints = e,
        accounts = n,
        scheduled = cfg.profile.total(),
        duration = %iotex_shared::duration::format(cfg.profile.duration()),
        gas_price,
        priority_fee,
        "injecting"
    );

    // The schedule loop.
    let (cancel_tx, cancel) = watch::channel(false);
    let backlog_cap = cfg.max_in_flight.saturating_mul(4).max(1024);
    let mut interrupted = false;
    for tick in Ticks::new(cfg.profile.clone()) {
        let due = start + tick.due;
        if due > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = &mut shutdown => { interrupted = true; break; }
            }
        } else if tick.seq % 64 == 0 && (&mut shutdown).now_or_never().is_some() {
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
        ctx.tasks.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(action(ctx.clone(), tick.seq, due, permit, cancel.clone()));
    }
    let loop_end = Instant::now();
    let sched_end = if interrupted { loop_end } else { loop_end.max(start + cfg.profile.duration()) };
    rec.metrics.target_rate.set(0.0);
    let duration_s = sched_end.saturating_duration_since(start).as_secs_f64();
    if interrupted {
        tracing::warn!("interrupted: scheduling stopped; draining in-flight sends");
    }

    // Drain: in-flight sends get `drain_timeout`, then are cut (counted, never lost silently).
    let drained = tokio::time::timeout(cfg.drain_timeout, ctx.idle()).await;
    if drained.is_err() {
        tracing::warn!(
            outstanding = ctx.tasks.load(Ordering::Acquire),
            "drain deadline passed; cutting in-flight sends"
        );
        let _ = cancel_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), ctx.idle()).await;
    }

    // A failure after an account's last action may have left a gap with accepted actions queued above it.
    let mut gap_fillers = 0;
    for (acct, max_handed) in ctx.nonces.unsynced().await {
        let (ep, key) = (account_ep[acct], &ctx.keys[acct]);
        gap_fillers += crate::setup::fill_gap(&rpcs[ep], key, addresses[acct], chain_id, gas_price, max_handed).await;
    }
    if gap_fillers > 0 {
        tracing::info!(gap_fillers, "filled nonce gaps left by failed actions");
    }

    // Confirm: wait for inclusion (bounded), then reconcile what is left.
    let mut unresolved = 0;
    if cfg.confirm {
        let deadline = Instant::now()
            + if interrupted { cfg.confirm_timeout.min(Duration::from_secs(5)) } else { cfg.confirm_timeout };
        while tracker.awaiting() > 0 && Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = &mut shutdown => break,
            }
        }
        let _ = stop_follow_tx.send(true);
        for f in followers {
            let _ = f.await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for (ep, rpc) in rpcs.iter().enumerate() {
            unresolved += confirm::reconcile(ep, rpc, &tracker, &rec, deadline).await;
        }
        if unresolved > 0 {
            tracing::warn!(unresolved, "some actions could not be looked up at the end; counted as pending");
        }
    }
    let _ = stop_progress_tx.send(true);
    let points = progress.await.unwrap_or_default();

    // Final nonces for small pools (the chain's own count of what landed).
    let mut account_nonces: Vec<AccountReport> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| AccountReport {
            address: crate::address::to_hex(a),
            io_address: crate::address::to_io(a),
            endpoint: account_ep[i],
            start_nonce: start_nonces[i],
            end_nonce: None,
        })
        .collect();
    if cfg.confirm && n <= 1000 {
        use futures::StreamExt;
        let ends: Vec<Option<u64>> = futures::stream::iter((0..addresses.len()).map(|i| {
            let (rpc, a) = (rpcs[account_ep[i]].clone(), addresses[i]);
            async move { rpc.latest_nonce(a).await.ok() }
        }))
        .buffered(32)
        .collect()
        .await;
        for (r, end) in account_nonces.iter_mut().zip(ends) {
            r.end_nonce = end;
        }
    }

    let report = crate::report::build(crate::report::Inputs {
        cfg: &cfg,
        rec: &rec,
        chain_id,
        duration_s,
        interrupted,
        account_nonces,
        started_at_unix,
        contracts: ctx.contracts.clone(),
        points: &points,
    });
    let report = Report { gap_fillers, ..report };
    let (report, breached) = crate::report::thresholds(report, &cfg.thresholds);
    crate::output::write_all(&cfg, &report, &points)?;
    let _ = stop_metrics.send(());
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    Ok(Outcome { report, breached })
}
