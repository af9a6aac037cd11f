//! `iotex-gateway`: makes a cluster of IoTeX nodes look like one healthy, current node.
//!
//! Layout (the request path reads top-down in [`stack`]):
//! - [`config`]: flags, env vars and TOML merged and validated once into [`config::Config`].
//! - [`server`]: accept loop and graceful shutdown for both listeners.
//! - [`stack`]: the JSON-RPC listener's layers: rate limit → HTTP checks → [`proxy`].
//! - [`layers`]: HTTP middleware ([`layers::rate_limit`]).
//! - [`proxy`]: JSON-RPC parsing, method policy, routing, retries, broadcast, batch assembly.
//! - [`reuse`]: in front of reads, the finality-aware [`cache`] and in-flight [`coalesce`]-ing.
//! - [`policy`]: allow/deny method globs.
//! - [`upstream`]: one pooled client per node; [`upstream::health`] owns health, [`upstream::pool`] picks.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/status` on their own listener.
//! - [`metrics`]: every metric, documented; [`error`]: the one mapping of errors to the wire.
//!
//! [`run`] takes already-bound listeners and a shutdown future, so tests start the real thing on port 0.

pub mod admin;
pub mod cache;
pub mod coalesce;
pub mod config;
pub mod error;
pub mod layers;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod reuse;
pub mod server;
pub mod stack;
pub mod upstream;

use crate::config::Config;
use crate::layers::rate_limit::Limiter;
use crate::metrics::Metrics;
use crate::proxy::{Proxy, ProxySettings};
use crate::upstream::Upstream;
use crate::upstream::health::{self, HealthConfig};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The two bound listeners.
pub struct Listeners {
    /// JSON-RPC.
    pub rpc: TcpListener,
    /// Admin (health, metrics, status).
    pub admin: TcpListener,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Metric registration (a programming error).
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// An upstream URL hyper cannot use.
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamUriError),
    /// A method glob.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// The serving threads could not be started.
    #[error("cannot start serving threads: {0}")]
    Threads(std::io::Error),
}

/// How the gateway stopped.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    /// JSON-RPC connections accepted in the process's life.
    pub connections: u64,
    /// True when in-flight requests were cut at the end of the grace period.
    pub cut: bool,
}

/// Runs the gateway until `shutdown` resolves, then drains: `/readyz` turns 503, after `shutdown-delay` the
/// JSON-RPC listener stops accepting, in-flight requests get `shutdown-grace` to finish.
pub async fn run(
    cfg: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ShutdownReport, GatewayError> {
    let metrics = Arc::new(Metrics::new()?);
    let serving_threads = cfg
        .worker_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
    let upstreams = cfg
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, u)| {
            Upstream::new(i, u, cfg.max_in_flight_per_upstream, serving_threads, metrics.upstream(&u.name))
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let health = health::spawn(
        upstreams.clone(),
        HealthConfig {
            interval: cfg.health_interval,
            probe_timeout: cfg.probe_timeout,
            max_lag: cfg.max_lag_blocks,
            readmit_lag: cfg.readmit_lag_blocks,
            eject_after: cfg.eject_after_failures,
            backoff: cfg.eject_backoff,
            backoff_max: cfg.eject_backoff_max,
        },
        Arc::clone(&metrics),
    );
    let policy = policy::MethodPolicy::new(&cfg.allow_methods, &cfg.deny_methods)?;
    let proxy = Proxy::new(
        upstreams.clone(),
        health.view.clone(),
        health.passive.clone(),
        policy,
        Arc::clone(&metrics),
        ProxySettings {
            request_timeout: cfg.request_timeout,
            attempt_timeout: cfg.attempt_timeout,
            max_batch_size: cfg.max_batch_size,
            tx_broadcast: cfg.tx_broadcast,
            retry_budget_ratio: cfg.retry_budget_ratio,
        },
    );
    let cache = (cfg.cache_max_bytes > 0).then(|| cache::Cache::new(cfg.cache_max_bytes, Arc::clone(&metrics)));
    let reuse = |me: &std::sync::Weak<Proxy>| {
        reuse::ReadReuse::new(me.clone(), health.view.clone(), cache, cfg.coalesce, Arc::clone(&metrics))
    };
    let proxy = Arc::new_cyclic(|me| proxy.with_reuse(reuse(me)));
    let limiter =
        cfg.rate_limit.map(|r| Limiter::new(r.per_second, r.burst, cfg.trusted_proxies.clone(), Arc::clone(&metrics)));
    let sweeper = limiter.as_ref().map(|l| l.spawn_sweeper(Duration::from_secs(60)));
    let rpc_service = stack::build(proxy, limiter, cfg.max_body_bytes, Arc::clone(&metrics));
    let draining = Arc::new(AtomicBool::new(false));
    let admin = admin::Admin {
        upstreams: upstreams.clone(),
        view: health.view.clone(),
        metrics: Arc::clone(&metrics),
        draining: Arc::clone(&draining),
    };

    let rpc_addr = listeners.rpc.local_addr().ok();
    let admin_addr = listeners.admin.local_addr().ok();
    tracing::info!(listen = ?rpc_addr, admin = ?admin_addr, upstreams = upstreams.len(), serving_threads,
        names = ?upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), "iotex-gateway serving");

    let stop_rpc = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let grace = cfg.shutdown_grace;
    let shards = server::Shards::start(serving_threads, rpc_service.clone()).map_err(GatewayError::Threads)?;
    let rpc_task = tokio::spawn({
        let stop = stop_rpc.clone();
        async move {
            let report = server::serve(listeners.rpc, rpc_service, Some(&shards), stop, grace, "rpc").await;
            shards.stop().await;
            report
        }
    });
    let admin_task =
        tokio::spawn(server::serve(listeners.admin, admin, None, stop_admin.clone(), Duration::from_secs(1), "admin"));

    shutdown.await;
    draining.store(true, Ordering::Relaxed);
    metrics.draining.set(1);
    tracing::info!(delay = ?cfg.shutdown_delay, grace = ?grace, "draining: /readyz is 503");
    tokio::time::sleep(cfg.shutdown_delay).await;
    stop_rpc.cancel();
    let rpc_report = rpc_task.await.unwrap_or_default();
    stop_admin.cancel();
    let _ = admin_task.await;
    health.task.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    tracing::info!(connections = rpc_report.connections, cut = rpc_report.cut, "iotex-gateway stopped");
    Ok(ShutdownReport { connections: rpc_report.connections, cut: rpc_report.cut })
}
