//! `iotex-gateway`: makes a cluster of IoTeX nodes look like one healthy, current node.
//!
//! Layout (the request path reads top-down in [`stack`]):
//! - [`config`]: flags, env vars and TOML merged and validated once into [`config::Config`].
//! - [`server`]: accept loop and graceful shutdown for both listeners ([`drain`]: telling connections to
//!   close); [`connections`]: caps on open client connections and the timeouts that close slow or idle ones.
//! - [`stack`]: the JSON-RPC listener's layers: access token → rate limit → WebSocket upgrade → HTTP checks →
//!   [`proxy`].
//! - [`layers`]: HTTP middleware ([`layers::auth`], [`layers::rate_limit`]).
//! - [`token`]: the access-token format (sign, verify, key files); [`token_cmd`]: `iotex-gateway token …`.
//! - [`ws`]: JSON-RPC over WebSocket and `eth_subscribe` fan-out with upstream failover.
//! - [`proxy`]: JSON-RPC parsing, method policy and routing by method class; batches (`proxy::batch`),
//!   transaction send and broadcast (`proxy::tx`).
//! - [`methods`]: the one table of what the gateway knows per method (label, class, cacheability,
//!   coalescing, default deny).
//! - [`retry`]: the retrying read path (retries within deadline and retry budget), shared by the proxy and
//!   [`reuse`].
//! - [`filters`]: sticky filters: the creating node's route tag travels inside the filter id; filter calls
//!   are routed there.
//! - [`logs`]: `eth_getLogs` ranges wider than one node call, split over the nodes and merged in order.
//! - [`reuse`]: in front of reads, the finality-aware [`cache`] and in-flight [`coalesce`]-ing.
//! - [`policy`]: allow/deny method globs.
//! - [`upstream`]: one node, its keep-alive connections per serving thread ([`upstream::h1`]);
//!   [`upstream::health`] owns health, [`upstream::pool`] picks.
//! - [`discovery`]: the upstream set: static upstreams plus DNS-discovered ones, handed to health.
//! - [`reload`]: re-reads the config on SIGHUP and when the file changes; applies what can change live.
//! - [`grpc`]: the native gRPC listener (`iotexapi.APIService`), balanced per call over the same picker;
//!   [`grpc_stream`]: its server streams, `StreamBlocks` moved between nodes with gaps filled;
//!   [`grpc_web`]: gRPC-web for browsers, translated to gRPC.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/status` on their own listener.
//! - [`metrics`]: every metric, documented; [`outcome`]: the outcome vocabulary metrics count; [`error`]: the
//!   one mapping of errors and refusals to the wire.
//!
//! [`run`] takes already-bound listeners and a shutdown future, so tests start the real thing on port 0.

pub mod admin;
pub mod cache;
pub mod coalesce;
pub mod config;
pub mod connections;
pub mod discovery;
pub mod drain;
pub mod error;
pub mod filters;
pub mod grpc;
pub mod grpc_stream;
pub mod grpc_web;
pub mod layers;
pub mod logs;
pub mod methods;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod retry;
pub mod reuse;
pub mod server;
pub mod stack;
pub mod timer;
pub mod token;
pub mod token_cmd;
pub mod upstream;
pub mod ws;

use crate::config::Config;
use crate::layers::auth::Auth;
use crate::layers::rate_limit::Limiter;
use crate::metrics::Metrics;
use crate::proxy::{Proxy, ProxySettings};
use crate::upstream::health::{self, HealthConfig, UpstreamFactory};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The bound listeners.
pub struct Listeners {
    /// JSON-RPC.
    pub rpc: TcpListener,
    /// Admin (health, metrics, status).
    pub admin: TcpListener,
    /// Native gRPC (`None`: not served).
    pub grpc: Option<TcpListener>,
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
    /// The token revocation list cannot be used.
    #[error("config key `token-revocation-list`: {0}")]
    Revocation(#[from] token::RevocationError),
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

/// Health settings from a config.
pub fn health_config(cfg: &Config) -> HealthConfig {
    HealthConfig {
        interval: cfg.live.health_interval,
        probe_timeout: cfg.live.probe_timeout,
        max_lag: cfg.live.max_lag_blocks,
        readmit_lag: cfg.live.readmit_lag_blocks,
        eject_after: cfg.live.eject_after_failures,
        backoff: cfg.live.eject_backoff,
        backoff_max: cfg.live.eject_backoff_max,
        busy_backoff: cfg.live.busy_backoff,
    }
}

/// What builds each upstream: its pools, in-flight cap and the answer cap and buffer budget they all share.
pub fn upstream_factory(cfg: &Config, metrics: &Arc<Metrics>, serving_threads: usize) -> UpstreamFactory {
    let answers = cfg.startup.answers;
    UpstreamFactory {
        max_in_flight: cfg.startup.max_in_flight_per_upstream,
        serving_threads,
        metrics: Arc::clone(metrics),
        answers: upstream::answer::AnswerBudget::new(
            answers.max_response_bytes,
            answers.max_buffered_bytes,
            Some(metrics.answers.clone()),
        ),
    }
}

/// Client connection caps and timeouts from a config.
pub fn conn_settings(cfg: &Config) -> connections::ConnSettings {
    let c = &cfg.startup.clients;
    connections::ConnSettings {
        header_read_timeout: c.header_read_timeout,
        idle_timeout: c.idle_timeout,
        max_connections: c.max_connections,
        max_per_client: c.max_connections_per_client,
        trusted: cfg.live.trusted_proxies.clone(),
    }
}

/// JSON-RPC tier settings from a config.
pub fn proxy_settings(cfg: &Config) -> ProxySettings {
    ProxySettings {
        request_timeout: cfg.live.request_timeout,
        attempt_timeout: cfg.live.attempt_timeout,
        max_batch_size: cfg.live.max_batch_size,
        upstream_batch_size: cfg.live.upstream_batch_size,
        tx_broadcast: cfg.live.tx_broadcast,
        retry_budget_ratio: cfg.live.retry_budget_ratio,
        logs: logs::LogsLimits { per_call: cfg.live.logs_max_range_per_call, max_range: cfg.live.logs_max_range },
    }
}

/// Runs the gateway until `shutdown` resolves, then drains: `/readyz` turns 503, after `shutdown-delay` the
/// JSON-RPC listener stops accepting, in-flight requests get `shutdown-grace` to finish. Long because the
/// start-up and the drain's order (what stops before what) read best as one sequence.
pub async fn run(
    cfg: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ShutdownReport, GatewayError> {
    let metrics = Arc::new(Metrics::new()?);
    let serving_threads = cfg.startup.worker_threads.unwrap_or_else(available_cores);
    let factory = upstream_factory(&cfg, &metrics, serving_threads);
    let upstreams = cfg.live.upstreams.iter().map(|u| factory.build(u)).collect::<Result<Vec<_>, _>>()?;
    let health = health::spawn(upstreams.clone(), health_config(&cfg), factory);
    let stop_ws = CancellationToken::new();
    let RpcTier { proxy, limiter, auth, ws } = rpc_tier(&cfg, &health, &metrics, &stop_ws)?;
    let sweeper = limiter.spawn_sweeper(Duration::from_secs(60));
    let auth_maintenance = auth.spawn_maintenance();
    let rpc_service = stack::build(
        Arc::clone(&proxy),
        Arc::clone(&auth),
        Arc::clone(&limiter),
        Arc::clone(&ws),
        stack::BodyLimits {
            max_bytes: cfg.startup.max_body_bytes,
            read_timeout: cfg.startup.clients.body_read_timeout,
        },
        Arc::clone(&metrics),
    );
    let conn_limits = connections::ConnLimits::new(conn_settings(&cfg), metrics.conns.clone());
    let draining = Arc::new(AtomicBool::new(false));
    let admin =
        admin::Admin { view: health.view.clone(), metrics: Arc::clone(&metrics), draining: Arc::clone(&draining) };
    // Membership: static upstreams plus whatever DNS discovery finds, handed to health as one set.
    let membership = discovery::spawn(
        cfg.live.upstreams.clone(),
        cfg.live.discovery.clone(),
        health.control.clone(),
        Arc::clone(&metrics),
    );
    let guard = grpc_guard(&cfg, &auth, &limiter)?;
    let reloader = reload::spawn(
        cfg.clone(),
        reload::Targets {
            proxy: Arc::clone(&proxy),
            limiter: Arc::clone(&limiter),
            auth: Arc::clone(&auth),
            health: health.control.clone(),
            membership: membership.spec.clone(),
            metrics: Arc::clone(&metrics),
            grpc: Arc::clone(&guard),
        },
    );
    log_start(&cfg, &listeners, &upstreams, serving_threads);
    let stop_rpc = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let grace = cfg.startup.shutdown_grace;
    let Listeners { rpc: rpc_listener, admin: admin_listener, grpc: grpc_listener } = listeners;
    // Serving thread `i` uses upstream client pool `i + 1` (pool 0 belongs to the control runtime's probes).
    let (shards, shard_threads) =
        server::Shards::start(serving_threads, |i| upstream::use_pool(i + 1)).map_err(GatewayError::Threads)?;
    let grpc_task =
        grpc_listener.map(|l| serve_grpc(l, &cfg, (&proxy, guard), &metrics, (shards.clone(), stop_rpc.clone())));
    let rpc = server::Listener { name: "rpc", limits: Some(conn_limits), grace };
    let (rpc_task, admin_task) =
        serve((rpc_listener, admin_listener), rpc_service, admin, ws, shards, rpc, (&stop_rpc, &stop_admin));
    shutdown.await;
    draining.store(true, Ordering::Relaxed);
    metrics.draining.set(1);
    tracing::info!(delay = ?cfg.startup.shutdown_delay, grace = ?grace, "draining: /readyz is 503");
    reloader.abort();
    tokio::time::sleep(cfg.startup.shutdown_delay).await;
    stop_rpc.cancel();
    // WebSocket sessions outlive their HTTP connection: tell them (close 1001) and stop upstream subscriptions.
    stop_ws.cancel();
    let rpc_report = rpc_task.await.unwrap_or_default();
    if let Some(t) = grpc_task {
        let _ = t.await;
    }
    // Both listeners have drained and let go of the serving threads.
    shard_threads.join().await;
    stop_admin.cancel();
    let _ = admin_task.await;
    membership.task.abort();
    health.task.abort();
    sweeper.abort();
    auth_maintenance.abort();
    tracing::info!(connections = rpc_report.connections, cut = rpc_report.cut, "iotex-gateway stopped");
    Ok(ShutdownReport { connections: rpc_report.connections, cut: rpc_report.cut })
}

/// What the JSON-RPC listener's stack ([`stack::build`]) is made of.
pub struct RpcTier {
    /// The JSON-RPC tier.
    pub proxy: Arc<Proxy>,
    /// Per-client rate limits (always in the stack, so a reload can turn the limit on, change it or off).
    pub limiter: Arc<Limiter>,
    /// Access tokens.
    pub auth: Arc<Auth>,
    /// WebSocket sessions and the subscription hub.
    pub ws: Arc<ws::Ws>,
}

/// Builds the JSON-RPC listener's parts from a config over running health. Used by [`run`], and by the
/// instruction-count bench (`benches/instructions.rs`), which drives the same stack in process.
pub fn rpc_tier(
    cfg: &Config,
    health: &health::Health,
    metrics: &Arc<Metrics>,
    stop_ws: &CancellationToken,
) -> Result<RpcTier, GatewayError> {
    let proxy = json_rpc_tier(cfg, health, metrics)?;
    let limiter = Limiter::from_config(cfg.live.rate_limit, cfg.live.trusted_proxies.clone(), Arc::clone(metrics));
    let auth = Auth::new(cfg.live.tokens.as_ref(), Arc::clone(metrics))?;
    let ws = websocket(cfg, &proxy, &limiter, &auth, health.view.clone(), metrics, stop_ws);
    Ok(RpcTier { proxy, limiter, auth, ws })
}

/// The JSON-RPC tier: method policy, the proxy and its answer reuse (cache and coalescing) in front of reads.
fn json_rpc_tier(cfg: &Config, health: &health::Health, metrics: &Arc<Metrics>) -> Result<Arc<Proxy>, GatewayError> {
    let policy = policy::MethodPolicy::new(&cfg.live.allow_methods, &cfg.live.deny_methods)?;
    let cache =
        (cfg.live.cache_max_bytes > 0).then(|| cache::Cache::new(cfg.live.cache_max_bytes, Arc::clone(metrics)));
    let proxy =
        Proxy::new(health.view.clone(), health.passive.clone(), policy, Arc::clone(metrics), proxy_settings(cfg));
    Ok(Arc::new(proxy.with_reuse(cache, cfg.live.coalesce)))
}

/// One serving thread per core when `worker-threads` is not set.
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn log_start(cfg: &Config, listeners: &Listeners, upstreams: &[Arc<upstream::Upstream>], serving_threads: usize) {
    let rpc_addr = listeners.rpc.local_addr().ok();
    let admin_addr = listeners.admin.local_addr().ok();
    let grpc_addr = listeners.grpc.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(listen = ?rpc_addr, admin = ?admin_addr, grpc = ?grpc_addr, upstreams = upstreams.len(), serving_threads,
        names = ?upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        dns = ?cfg.live.discovery.as_ref().map(|d| &d.names), "iotex-gateway serving");
}

/// The WebSocket side of the JSON-RPC listener: the subscription hub and the session settings.
fn websocket(
    cfg: &Config,
    proxy: &Arc<Proxy>,
    limiter: &Arc<Limiter>,
    auth: &Arc<Auth>,
    view: tokio::sync::watch::Receiver<Arc<health::ClusterView>>,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> Arc<ws::Ws> {
    let hub = ws::hub::Hub::new(
        ws::source::Source::new(view),
        Arc::clone(proxy),
        Arc::clone(metrics),
        cfg.startup.ws.upstream_silence,
        cfg.startup.ws.send_queue,
        stop.clone(),
    );
    let settings = ws::WsSettings {
        max_message: cfg.startup.max_body_bytes,
        max_subscriptions: cfg.startup.ws.max_subscriptions,
        send_queue: cfg.startup.ws.send_queue,
        max_batch: cfg.live.max_batch_size,
    };
    ws::Ws::new(
        Arc::clone(proxy),
        hub,
        Arc::clone(limiter),
        Arc::clone(auth),
        settings,
        Arc::clone(metrics),
        stop.clone(),
    )
}

type ServeTask = tokio::task::JoinHandle<server::ServeReport>;

/// Who may call what on the gRPC listener: the web3 listener's tokens and per-client limits, its own globs.
fn grpc_guard(cfg: &Config, auth: &Arc<Auth>, limiter: &Arc<Limiter>) -> Result<Arc<grpc::Guard>, GatewayError> {
    Ok(Arc::new(grpc::Guard::new(Arc::clone(auth), Arc::clone(limiter), grpc::GrpcConf::from_config(cfg)?)))
}

/// Serves the native gRPC listener on the serving threads until `stop`, with its own connection caps and
/// timeouts (the same settings as the JSON-RPC listener's). A call then lives on one thread from the
/// client's socket to the node's and back, as a web3 call does, and uses that thread's gRPC client pool.
fn serve_grpc(
    listener: TcpListener,
    cfg: &Config,
    (proxy, guard): (&Arc<Proxy>, Arc<grpc::Guard>),
    metrics: &Arc<Metrics>,
    (shards, stop): (server::Shards, CancellationToken),
) -> ServeTask {
    let service = Arc::new(grpc::Grpc::new(
        Arc::clone(proxy.reader()),
        Arc::clone(metrics),
        grpc::GrpcSettings {
            max_body_bytes: cfg.startup.max_body_bytes,
            body_read_timeout: cfg.startup.clients.body_read_timeout,
        },
        guard,
    ));
    let svc = tower::service_fn(move |req| {
        let service = Arc::clone(&service);
        async move { service.handle(req).await }
    });
    let limits = connections::ConnLimits::new(conn_settings(cfg), metrics.conns.clone());
    let how = server::Listener { name: "grpc", limits: Some(limits), grace: cfg.startup.shutdown_grace };
    tokio::spawn(server::serve(listener, svc, Some(shards), stop, how))
}

/// Starts serving both listeners: JSON-RPC on the serving threads, admin on the control runtime. Each task
/// drains its listener for `grace` once its stop token (rpc, admin) is cancelled.
fn serve(
    (rpc_listener, admin_listener): (TcpListener, TcpListener),
    rpc_service: impl server::HttpService,
    admin: admin::Admin,
    ws: Arc<ws::Ws>,
    shards: server::Shards,
    rpc: server::Listener,
    (stop_rpc, stop_admin): (&CancellationToken, &CancellationToken),
) -> (ServeTask, ServeTask) {
    let rpc_task = tokio::spawn({
        let stop = stop_rpc.clone();
        async move {
            let grace = rpc.grace;
            let report = server::serve(rpc_listener, rpc_service, Some(shards.clone()), stop, rpc).await;
            // WebSocket sessions live on the serving threads: let them send their close frames before this
            // listener lets go of the threads.
            ws.drained(grace.min(Duration::from_secs(3))).await;
            drop(shards);
            report
        }
    });
    let admin_how = server::Listener { name: "admin", limits: None, grace: Duration::from_secs(1) };
    let admin_task = tokio::spawn(server::serve(admin_listener, admin, None, stop_admin.clone(), admin_how));
    (rpc_task, admin_task)
}
