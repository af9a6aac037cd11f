//! Configuration reload without a restart: on SIGHUP, and when the config file's content changes.
//!
//! A Kubernetes ConfigMap update swaps the mounted file (through a symlink) some seconds after the edit;
//! polling the content every `config-poll-interval` sees that without inotify's symlink pitfalls, and
//! comparing content (not mtime) ignores touches. The file is loaded under the same flags and env vars as at
//! start, and validated exactly as at start. Then:
//! - **rejected**: the new config is invalid. It is logged with the offending key, counted
//!   (`iotex_gateway_config_reloads_total{result="rejected"}`), and the running config stays.
//! - **applied**: everything in [`crate::config::Live`]: upstreams (static list and DNS discovery), health
//!   and lag thresholds, timeouts, retry budget, batch limits, transaction broadcast, method policy, rate
//!   limit, trusted proxies, access tokens (keys, tiers, `require-token`, revocation list), the cache size
//!   and coalescing, the gRPC listener's method globs, gRPC-web CORS origins and deadline, for calls that
//!   start from now on. Calls in flight finish as they started: nothing is
//!   drained or cut.
//! - Everything in [`crate::config::Startup`] (listen addresses, worker threads, the per-upstream in-flight
//!   cap, body cap, log format, shutdown timings, the poll interval itself, WebSocket settings, turning the
//!   cache on or off) needs a restart: a change to one of them is logged as such
//!   ([`crate::config::Startup::changed_keys`]) and the rest is applied.

use crate::config::Config;
use crate::discovery::Spec;
use crate::layers::auth::Auth;
use crate::layers::rate_limit::Limiter;
use crate::metrics::Metrics;
use crate::policy::MethodPolicy;
use crate::proxy::Proxy;
use crate::upstream::health::Control;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What a reload reconfigures.
pub struct Targets {
    /// The JSON-RPC tier (policy and settings).
    pub proxy: Arc<Proxy>,
    /// The per-client limit.
    pub limiter: Arc<Limiter>,
    /// Access tokens (keys, tiers, requirement, revocation list).
    pub auth: Arc<Auth>,
    /// Health settings.
    pub health: mpsc::Sender<Control>,
    /// Static upstreams and discovery.
    pub membership: watch::Sender<Spec>,
    /// Reload counters.
    pub metrics: Arc<Metrics>,
    /// The gRPC listener's method globs, CORS origins and deadline.
    pub grpc: Arc<crate::grpc::Guard>,
}

/// The outcome of one reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Valid and different: applied (with the settings that still need a restart).
    Applied {
        /// Keys that changed but only take effect after a restart.
        restart_needed: Vec<&'static str>,
    },
    /// Valid and identical to the running config.
    Unchanged,
    /// Invalid: the running config stays.
    Rejected(String),
}

/// Starts watching for SIGHUP and file changes (the file only when there is one).
pub fn spawn(running: Config, targets: Targets) -> tokio::task::JoinHandle<()> {
    // Registered before the task starts, so a SIGHUP from now on reloads instead of killing the process.
    let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the config file is still watched");
            None
        }
    };
    tokio::spawn(watch_loop(running, targets, hangup))
}

async fn watch_loop(mut running: Config, targets: Targets, mut hangup: Option<tokio::signal::unix::Signal>) {
    let file = running.startup.config_file.clone();
    let poll = running.startup.config_poll_interval;
    let read = |path: &Option<std::path::PathBuf>| path.as_ref().and_then(|p| std::fs::read(p).ok());
    let mut seen = read(&file);
    loop {
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        let poll_tick = async {
            if poll.is_zero() || file.is_none() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(poll).await;
        };
        let reason = tokio::select! {
            r = hup => {
                if r.is_none() {
                    return;
                }
                seen = read(&file);
                "SIGHUP"
            }
            () = poll_tick => {
                let now = read(&file);
                // An unreadable file mid-swap (ConfigMap update) is not a change; the next poll sees it.
                if now.is_none() || now == seen {
                    continue;
                }
                seen = now;
                "config file changed"
            }
        };
        let outcome = reload(&mut running, &targets);
        match &outcome {
            Outcome::Applied { restart_needed } => {
                targets.metrics.config_reloads.with_label_values(&["applied"]).inc();
                tracing::info!(reason, upstreams = running.live.upstreams.len(), "config reloaded and applied");
                if !restart_needed.is_empty() {
                    tracing::warn!(reason, keys = ?restart_needed, "these settings changed but need a restart");
                }
            }
            Outcome::Unchanged => {
                targets.metrics.config_reloads.with_label_values(&["unchanged"]).inc();
                tracing::info!(reason, "config reloaded: nothing changed");
            }
            Outcome::Rejected(e) => {
                targets.metrics.config_reloads.with_label_values(&["rejected"]).inc();
                tracing::error!(reason, error = %e, "config reload rejected; the running config stays");
            }
        }
    }
}

/// Loads the config again and applies its live part over `running`.
pub fn reload(running: &mut Config, targets: &Targets) -> Outcome {
    let Some(source) = running.source.as_ref() else {
        return Outcome::Rejected(
            "the running config was not loaded from flags/env/file, so there is nothing to reload".into(),
        );
    };
    let new = match crate::config::load_source(source) {
        Ok(c) => c,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    if new == *running {
        return Outcome::Unchanged;
    }
    let policy = match MethodPolicy::new(&new.live.allow_methods, &new.live.deny_methods) {
        Ok(p) => p,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let grpc = match crate::grpc::GrpcConf::from_config(&new) {
        Ok(g) => g,
        Err(e) => return Outcome::Rejected(format!("config key `grpc-allow-method` / `grpc-deny-method`: {e}")),
    };
    // The revocation list is read before anything changes, so an unreadable one rejects the whole reload.
    if let Err(e) = targets.auth.reconfigure(new.live.tokens.as_ref()) {
        return Outcome::Rejected(format!("config key `token-revocation-list`: {e}"));
    }
    targets.proxy.reconfigure(policy, crate::proxy_settings(&new));
    targets.proxy.reconfigure_reuse(new.live.cache_max_bytes, new.live.coalesce);
    targets.limiter.reconfigure(new.live.rate_limit, new.live.trusted_proxies.clone());
    targets.grpc.reconfigure(grpc);
    // A full control channel means the supervisor is far behind; waiting here would stall reloads, and the
    // next reload sends the whole state again anyway.
    if targets.health.try_send(Control::SetConfig(crate::health_config(&new))).is_err() {
        tracing::warn!("health supervisor busy; health settings apply at the next reload");
    }
    targets.membership.send_if_modified(|spec| {
        let want = Spec { static_upstreams: new.live.upstreams.clone(), discovery: new.live.discovery.clone() };
        let changed = *spec != want;
        *spec = want;
        changed
    });
    // What runs under the start-up values keeps them, so the next comparison and warning are right.
    let restart_needed = running.startup.changed_keys(&new.startup);
    running.live = new.live;
    Outcome::Applied { restart_needed }
}
