//! Gateway configuration: defaults → TOML file → environment → flags, validated once into [`Config`].
//!
//! Every key is a flag (`--max-lag-blocks`), an env var (`IOTEX_GATEWAY_MAX_LAG_BLOCKS`) and a TOML key with
//! the flag's name (`max-lag-blocks = 10`), so the Helm chart's values map onto flags mechanically. Flags
//! win over env vars (clap), which win over the file. Validation names the key and what is wrong, and runs
//! before anything binds a port; after it, nothing re-checks.

use clap::{Args, Parser, Subcommand};
use iotex_shared::duration;
use iotex_shared::telemetry::LogFormat;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command line of `iotex-gateway`.
#[derive(Debug, Parser)]
#[command(name = "iotex-gateway", version, about = "Health-checked, lag-aware JSON-RPC gateway for IoTeX nodes")]
#[command(allow_negative_numbers = true)]
pub struct Cli {
    /// What to do; without a subcommand the gateway serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Serving options.
    #[command(flatten)]
    pub opts: Opts,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file (and the flags/env given with it), print the result and exit.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
}

/// Every setting, as flags/env vars and as TOML keys. All optional here: defaults apply in [`Opts::resolve`].
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Opts {
    /// TOML config file; its keys are these flags' names.
    #[arg(long, env = "IOTEX_GATEWAY_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// JSON-RPC listen address [default: 0.0.0.0:15014].
    #[arg(long, env = "IOTEX_GATEWAY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Admin listen address for /healthz, /readyz, /metrics, /status [default: 0.0.0.0:8080].
    #[arg(long, env = "IOTEX_GATEWAY_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// An upstream node's web3 JSON-RPC URL, optionally named: `[NAME=]URL`. Repeatable (env: comma-separated).
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM", value_name = "[NAME=]URL", value_delimiter = ',')]
    #[serde(default)]
    pub upstream: Vec<String>,
    /// An HTTP health URL for a named upstream, `NAME=URL` (e.g. a node's `:8080/readiness`). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_HEALTH", value_name = "NAME=URL", value_delimiter = ',')]
    #[serde(default)]
    pub upstream_health: Vec<String>,
    /// How often each upstream is probed [default: 1s].
    #[arg(long, env = "IOTEX_GATEWAY_HEALTH_INTERVAL", value_name = "DUR")]
    pub health_interval: Option<String>,
    /// Timeout of one probe [default: the health interval, at most 2s].
    #[arg(long, env = "IOTEX_GATEWAY_PROBE_TIMEOUT", value_name = "DUR")]
    pub probe_timeout: Option<String>,
    /// An upstream more than N blocks behind the best head is not routed to [default: 10].
    #[arg(long, env = "IOTEX_GATEWAY_MAX_LAG_BLOCKS", value_name = "N")]
    pub max_lag_blocks: Option<u64>,
    /// A lagging upstream returns once it is at most N blocks behind (hysteresis) [default: max-lag-blocks / 2].
    #[arg(long, env = "IOTEX_GATEWAY_READMIT_LAG_BLOCKS", value_name = "N")]
    pub readmit_lag_blocks: Option<u64>,
    /// Deadline for a whole client call, retries included [default: 10s].
    #[arg(long, env = "IOTEX_GATEWAY_REQUEST_TIMEOUT", value_name = "DUR")]
    pub request_timeout: Option<String>,
    /// Deadline for one upstream attempt [default: request-timeout / 3].
    #[arg(long, env = "IOTEX_GATEWAY_ATTEMPT_TIMEOUT", value_name = "DUR")]
    pub attempt_timeout: Option<String>,
    /// Requests per second per client IP; absent = no limit.
    #[arg(long, env = "IOTEX_GATEWAY_RATE_LIMIT_PER_CLIENT", value_name = "N")]
    pub rate_limit_per_client: Option<u32>,
    /// Burst allowed above the per-client rate [default: the rate].
    #[arg(long, env = "IOTEX_GATEWAY_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// Peers whose `X-Forwarded-For` is believed (CIDR or IP). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_TRUSTED_PROXY", value_name = "CIDR", value_delimiter = ',')]
    #[serde(default)]
    pub trusted_proxy: Vec<String>,
    /// Send each raw transaction to N routable upstreams at once; the first success answers [default: 1].
    #[arg(long, env = "IOTEX_GATEWAY_TX_BROADCAST", value_name = "N")]
    pub tx_broadcast: Option<usize>,
    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, env = "IOTEX_GATEWAY_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest batch accepted [default: 100, IoTeX's own cap].
    #[arg(long, env = "IOTEX_GATEWAY_MAX_BATCH_SIZE", value_name = "N")]
    pub max_batch_size: Option<usize>,
    /// Concurrent calls per upstream; IoTeX nodes answer 429 past 100 [default: 64].
    #[arg(long, env = "IOTEX_GATEWAY_MAX_IN_FLIGHT_PER_UPSTREAM", value_name = "N")]
    pub max_in_flight_per_upstream: Option<usize>,
    /// Consecutive failures on real traffic that eject an upstream [default: 3].
    #[arg(long, env = "IOTEX_GATEWAY_EJECT_AFTER_FAILURES", value_name = "N")]
    pub eject_after_failures: Option<u32>,
    /// First ejection period; doubles on each repeat [default: 1s].
    #[arg(long, env = "IOTEX_GATEWAY_EJECT_BACKOFF", value_name = "DUR")]
    pub eject_backoff: Option<String>,
    /// Longest ejection period [default: 30s].
    #[arg(long, env = "IOTEX_GATEWAY_EJECT_BACKOFF_MAX", value_name = "DUR")]
    pub eject_backoff_max: Option<String>,
    /// Retries allowed as a percentage of recent requests (plus 10/s) [default: 20].
    #[arg(long, env = "IOTEX_GATEWAY_RETRY_BUDGET_PERCENT", value_name = "PCT")]
    pub retry_budget_percent: Option<f32>,
    /// Methods allowed (globs) [default: `*`]. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_ALLOW_METHOD", value_name = "GLOB", value_delimiter = ',')]
    #[serde(default)]
    pub allow_method: Vec<String>,
    /// Methods denied (globs), checked before allow [default: admin_*, debug_*, personal_*, miner_*,
    /// txpool_*, anvil_*, hardhat_*, evm_*, eth_sign*, eth_sendTransaction]. Repeatable; replaces the default.
    #[arg(long, env = "IOTEX_GATEWAY_DENY_METHOD", value_name = "GLOB", value_delimiter = ',')]
    pub deny_method: Option<Vec<String>>,
    /// After SIGTERM, how long /readyz reports 503 before the listener stops accepting [default: 0s].
    #[arg(long, env = "IOTEX_GATEWAY_SHUTDOWN_DELAY", value_name = "DUR")]
    pub shutdown_delay: Option<String>,
    /// After the listener stops, how long in-flight requests get to finish [default: 10s].
    #[arg(long, env = "IOTEX_GATEWAY_SHUTDOWN_GRACE", value_name = "DUR")]
    pub shutdown_grace: Option<String>,
    /// Log format, `json` or `text` [default: json unless stdout is a terminal].
    #[arg(long, env = "IOTEX_GATEWAY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Threads serving JSON-RPC connections, each with its own event loop and upstream pools [default: one per CPU].
    #[arg(long, env = "IOTEX_GATEWAY_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<usize>,
    /// Bytes of final results (by-hash lookups, blocks and state at or below every routable node's head,
    /// chain id) kept in memory; 0 turns the cache off [default: 67108864 = 64 MiB].
    #[arg(long, env = "IOTEX_GATEWAY_CACHE_MAX_BYTES", value_name = "BYTES")]
    pub cache_max_bytes: Option<u64>,
    /// Identical concurrent read calls share one upstream call, `true` or `false` [default: true].
    #[arg(long, env = "IOTEX_GATEWAY_COALESCE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub coalesce: Option<bool>,
}

/// The methods denied by default: node administration, signing with node-held keys, dev-node controls.
pub const DEFAULT_DENY: &[&str] = &[
    "admin_*",
    "debug_*",
    "personal_*",
    "miner_*",
    "txpool_*",
    "anvil_*",
    "hardhat_*",
    "evm_*",
    "eth_sign*",
    "eth_sendTransaction",
];

/// One upstream node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Short name used in metrics, logs and /status.
    pub name: String,
    /// JSON-RPC URL (may carry credentials; never shown).
    pub url: url::Url,
    /// Optional HTTP health URL that must answer 2xx.
    pub health_url: Option<url::Url>,
}

/// Per-client rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Burst above the rate.
    pub burst: NonZeroU32,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// JSON-RPC listen address.
    pub listen: SocketAddr,
    /// Admin listen address.
    pub admin_listen: SocketAddr,
    /// Upstream nodes, in configured order.
    pub upstreams: Vec<UpstreamConfig>,
    /// Probe period.
    pub health_interval: Duration,
    /// Probe timeout.
    pub probe_timeout: Duration,
    /// Lag (blocks) beyond which an upstream is not routed to.
    pub max_lag_blocks: u64,
    /// Lag at or below which a lagging upstream returns.
    pub readmit_lag_blocks: u64,
    /// Whole-call deadline.
    pub request_timeout: Duration,
    /// One-attempt deadline.
    pub attempt_timeout: Duration,
    /// Per-client rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Peers whose X-Forwarded-For is trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// Raw transaction fan-out.
    pub tx_broadcast: usize,
    /// Body cap in bytes.
    pub max_body_bytes: usize,
    /// Batch cap in items.
    pub max_batch_size: usize,
    /// In-flight cap per upstream.
    pub max_in_flight_per_upstream: usize,
    /// Consecutive failures before ejection.
    pub eject_after_failures: u32,
    /// First ejection period.
    pub eject_backoff: Duration,
    /// Longest ejection period.
    pub eject_backoff_max: Duration,
    /// Retry budget as a fraction (0.2 = 20 %).
    pub retry_budget_ratio: f32,
    /// Allowed method globs.
    pub allow_methods: Vec<String>,
    /// Denied method globs.
    pub deny_methods: Vec<String>,
    /// Not-ready period before the listener closes.
    pub shutdown_delay: Duration,
    /// Grace period for in-flight requests.
    pub shutdown_grace: Duration,
    /// Log format (None = detect).
    pub log_format: Option<LogFormat>,
    /// Runtime worker threads (None = one per CPU).
    pub worker_threads: Option<usize>,
    /// Cache budget in bytes (0 = no cache).
    pub cache_max_bytes: u64,
    /// Coalesce identical concurrent reads.
    pub coalesce: bool,
}

/// Default cache budget: 64 MiB holds ~30,000 typical blocks or receipts.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 64 << 20;
/// Smallest non-zero cache budget: below it no realistic block fits.
pub const MIN_CACHE_MAX_BYTES: u64 = 4096;

/// A setting that cannot be used, named by its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message (it names the key and line).
        message: String,
    },
    /// A key's value is unusable.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// The key (flag name without dashes).
        key: &'static str,
        /// What is wrong and what would be right.
        problem: String,
    },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, problem: problem.into() }
}

impl Opts {
    /// Reads a TOML file into options.
    pub fn from_file(path: &Path) -> Result<Opts, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
    }

    /// Lays `self` (flags and env) over `file`: any value set here wins.
    pub fn over(self, file: Opts) -> Opts {
        fn vec_or(a: Vec<String>, b: Vec<String>) -> Vec<String> {
            if a.is_empty() { b } else { a }
        }
        Opts {
            config: self.config.or(file.config),
            listen: self.listen.or(file.listen),
            admin_listen: self.admin_listen.or(file.admin_listen),
            upstream: vec_or(self.upstream, file.upstream),
            upstream_health: vec_or(self.upstream_health, file.upstream_health),
            health_interval: self.health_interval.or(file.health_interval),
            probe_timeout: self.probe_timeout.or(file.probe_timeout),
            max_lag_blocks: self.max_lag_blocks.or(file.max_lag_blocks),
            readmit_lag_blocks: self.readmit_lag_blocks.or(file.readmit_lag_blocks),
            request_timeout: self.request_timeout.or(file.request_timeout),
            attempt_timeout: self.attempt_timeout.or(file.attempt_timeout),
            rate_limit_per_client: self.rate_limit_per_client.or(file.rate_limit_per_client),
            rate_limit_burst: self.rate_limit_burst.or(file.rate_limit_burst),
            trusted_proxy: vec_or(self.trusted_proxy, file.trusted_proxy),
            tx_broadcast: self.tx_broadcast.or(file.tx_broadcast),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes),
            max_batch_size: self.max_batch_size.or(file.max_batch_size),
            max_in_flight_per_upstream: self.max_in_flight_per_upstream.or(file.max_in_flight_per_upstream),
            eject_after_failures: self.eject_after_failures.or(file.eject_after_failures),
            eject_backoff: self.eject_backoff.or(file.eject_backoff),
            eject_backoff_max: self.eject_backoff_max.or(file.eject_backoff_max),
            retry_budget_percent: self.retry_budget_percent.or(file.retry_budget_percent),
            allow_method: vec_or(self.allow_method, file.allow_method),
            deny_method: self.deny_method.or(file.deny_method),
            shutdown_delay: self.shutdown_delay.or(file.shutdown_delay),
            shutdown_grace: self.shutdown_grace.or(file.shutdown_grace),
            log_format: self.log_format.or(file.log_format),
            worker_threads: self.worker_threads.or(file.worker_threads),
            cache_max_bytes: self.cache_max_bytes.or(file.cache_max_bytes),
            coalesce: self.coalesce.or(file.coalesce),
        }
    }

    /// Loads the file named by `--config` (if any) under these options and validates the result.
    pub fn load(self) -> Result<Config, ConfigError> {
        let merged = match &self.config {
            Some(path) => {
                let file = Opts::from_file(path)?;
                self.over(file)
            }
            None => self,
        };
        merged.resolve()
    }

    /// Applies defaults and validates every key.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen = addr("listen", self.listen.as_deref().unwrap_or("0.0.0.0:15014"))?;
        let admin_listen = addr("admin-listen", self.admin_listen.as_deref().unwrap_or("0.0.0.0:8080"))?;
        if listen == admin_listen {
            return Err(invalid("admin-listen", format!("{admin_listen} is also the JSON-RPC listen address")));
        }
        let upstreams = upstreams(&self.upstream, &self.upstream_health)?;

        let health_interval = dur("health-interval", self.health_interval.as_deref(), Duration::from_secs(1))?;
        let probe_timeout =
            dur("probe-timeout", self.probe_timeout.as_deref(), health_interval.min(Duration::from_secs(2)))?;
        let request_timeout = dur("request-timeout", self.request_timeout.as_deref(), Duration::from_secs(10))?;
        let attempt_timeout = dur("attempt-timeout", self.attempt_timeout.as_deref(), request_timeout / 3)?;
        if attempt_timeout > request_timeout {
            return Err(invalid("attempt-timeout", "must not exceed request-timeout"));
        }
        let eject_backoff = dur("eject-backoff", self.eject_backoff.as_deref(), Duration::from_secs(1))?;
        let eject_backoff_max = dur("eject-backoff-max", self.eject_backoff_max.as_deref(), Duration::from_secs(30))?;
        if eject_backoff_max < eject_backoff {
            return Err(invalid("eject-backoff-max", "must be at least eject-backoff"));
        }
        let shutdown_delay = dur_zero("shutdown-delay", self.shutdown_delay.as_deref(), Duration::ZERO)?;
        let shutdown_grace = dur_zero("shutdown-grace", self.shutdown_grace.as_deref(), Duration::from_secs(10))?;

        let max_lag_blocks = self.max_lag_blocks.unwrap_or(10);
        if max_lag_blocks == 0 {
            return Err(invalid("max-lag-blocks", "must be at least 1 (nodes are never exactly in step)"));
        }
        let readmit_lag_blocks = self.readmit_lag_blocks.unwrap_or(max_lag_blocks / 2);
        if readmit_lag_blocks > max_lag_blocks {
            return Err(invalid("readmit-lag-blocks", format!("must not exceed max-lag-blocks ({max_lag_blocks})")));
        }

        let rate_limit = match (self.rate_limit_per_client, self.rate_limit_burst) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid("rate-limit-burst", "set without rate-limit-per-client"));
            }
            (Some(rate), burst) => {
                let per_second =
                    NonZeroU32::new(rate).ok_or_else(|| invalid("rate-limit-per-client", "must be at least 1"))?;
                let burst = NonZeroU32::new(burst.unwrap_or(rate))
                    .ok_or_else(|| invalid("rate-limit-burst", "must be at least 1"))?;
                Some(RateLimit { per_second, burst })
            }
        };
        let trusted_proxies = self
            .trusted_proxy
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| invalid("trusted-proxy", format!("`{s}` is not an IP address or CIDR block")))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let tx_broadcast = self.tx_broadcast.unwrap_or(1);
        if tx_broadcast == 0 {
            return Err(invalid("tx-broadcast", "must be at least 1"));
        }
        let max_body_bytes = positive("max-body-bytes", self.max_body_bytes, 1 << 20)?;
        let max_batch_size = positive("max-batch-size", self.max_batch_size, 100)?;
        let max_in_flight_per_upstream = positive("max-in-flight-per-upstream", self.max_in_flight_per_upstream, 64)?;
        let eject_after_failures = self.eject_after_failures.unwrap_or(3);
        if eject_after_failures == 0 {
            return Err(invalid("eject-after-failures", "must be at least 1"));
        }
        let pct = self.retry_budget_percent.unwrap_or(20.0);
        if !(0.0..=1000.0).contains(&pct) || pct.is_nan() {
            return Err(invalid("retry-budget-percent", "must be between 0 and 1000"));
        }

        let allow_methods = if self.allow_method.is_empty() { vec!["*".to_owned()] } else { self.allow_method };
        let deny_methods =
            self.deny_method.unwrap_or_else(|| DEFAULT_DENY.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        for (key, globs) in [("allow-method", &allow_methods), ("deny-method", &deny_methods)] {
            for g in globs {
                globset::Glob::new(g).map_err(|e| invalid(key, format!("`{g}` is not a glob: {e}")))?;
            }
        }
        if self.worker_threads == Some(0) {
            return Err(invalid("worker-threads", "must be at least 1"));
        }
        let cache_max_bytes = self.cache_max_bytes.unwrap_or(DEFAULT_CACHE_MAX_BYTES);
        if cache_max_bytes != 0 && cache_max_bytes < MIN_CACHE_MAX_BYTES {
            return Err(invalid("cache-max-bytes", format!("must be 0 (no cache) or at least {MIN_CACHE_MAX_BYTES}")));
        }
        let log_format = self
            .log_format
            .as_deref()
            .map(str::parse::<LogFormat>)
            .transpose()
            .map_err(|e| invalid("log-format", e))?;

        Ok(Config {
            listen,
            admin_listen,
            upstreams,
            health_interval,
            probe_timeout,
            max_lag_blocks,
            readmit_lag_blocks,
            request_timeout,
            attempt_timeout,
            rate_limit,
            trusted_proxies,
            tx_broadcast,
            max_body_bytes,
            max_batch_size,
            max_in_flight_per_upstream,
            eject_after_failures,
            eject_backoff,
            eject_backoff_max,
            retry_budget_ratio: pct / 100.0,
            allow_methods,
            deny_methods,
            shutdown_delay,
            shutdown_grace,
            log_format,
            worker_threads: self.worker_threads,
            cache_max_bytes,
            coalesce: self.coalesce.unwrap_or(true),
        })
    }
}

fn addr(key: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.trim()
        .parse()
        .map_err(|_| invalid(key, format!("`{s}` is not an address; write it like 0.0.0.0:15014 or [::1]:15014")))
}

fn dur(key: &'static str, s: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    let d = dur_zero(key, s, default)?;
    if d.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(d)
}

fn dur_zero(key: &'static str, s: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match s {
        None => Ok(default),
        Some(s) => duration::parse(s).map_err(|e| invalid(key, e.to_string())),
    }
}

fn positive(key: &'static str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match v.unwrap_or(default) {
        0 => Err(invalid(key, "must be at least 1")),
        n => Ok(n),
    }
}

/// Splits `[NAME=]URL`. A `=` counts as the name separator only before the URL's scheme, so query strings
/// with `=` stay intact.
fn split_named(s: &str) -> (Option<&str>, &str) {
    match (s.find('='), s.find("://")) {
        (Some(eq), Some(scheme)) if eq < scheme => (Some(&s[..eq]), &s[eq + 1..]),
        (Some(eq), None) => (Some(&s[..eq]), &s[eq + 1..]),
        _ => (None, s),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn http_url(key: &'static str, s: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(s.trim()).map_err(|e| invalid(key, format!("`{s}` is not a URL: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(invalid(
                key,
                format!(
                    "`{}`: https upstreams are not supported; nodes' in-cluster web3 endpoints are plain http",
                    redact(&url)
                ),
            ));
        }
        other => return Err(invalid(key, format!("`{}`: scheme `{other}` is not http", redact(&url)))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(key, format!("`{}` has no host", redact(&url))));
    }
    Ok(url)
}

/// The URL without user name or password, for logs and /status.
pub fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

fn upstreams(specs: &[String], health: &[String]) -> Result<Vec<UpstreamConfig>, ConfigError> {
    if specs.is_empty() {
        return Err(invalid(
            "upstream",
            "at least one upstream is required, e.g. --upstream node0=http://127.0.0.1:15014",
        ));
    }
    let mut out: Vec<UpstreamConfig> = Vec::with_capacity(specs.len());
    for spec in specs {
        let spec = spec.trim();
        let (name, url) = split_named(spec);
        let url = http_url("upstream", url)?;
        let name = match name {
            Some(n) if valid_name(n) => n.to_owned(),
            Some(n) => {
                return Err(invalid(
                    "upstream",
                    format!("name `{n}` must be 1-64 characters of letters, digits, `-`, `_`, `.`, `:`"),
                ));
            }
            None => format!("{}:{}", url.host_str().unwrap_or("upstream"), url.port_or_known_default().unwrap_or(80)),
        };
        if out.iter().any(|u| u.name == name) {
            return Err(invalid("upstream", format!("name `{name}` is used twice; name them NAME=URL")));
        }
        out.push(UpstreamConfig { name, url, health_url: None });
    }
    for spec in health {
        let (Some(name), url) = split_named(spec.trim()) else {
            return Err(invalid("upstream-health", format!("`{spec}` must be NAME=URL, naming an upstream")));
        };
        let url = http_url("upstream-health", url)?;
        let Some(up) = out.iter_mut().find(|u| u.name == name) else {
            return Err(invalid("upstream-health", format!("no upstream is named `{name}`")));
        };
        up.health_url = Some(url);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Result<Opts, clap::Error> {
        let mut full = vec!["iotex-gateway"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).map(|c| c.opts)
    }

    fn err(args: &[&str]) -> String {
        opts(args).unwrap().resolve().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = opts(&["--upstream", "http://127.0.0.1:1"]).unwrap().resolve().unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:15014");
        assert_eq!(c.admin_listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.max_lag_blocks, 10);
        assert_eq!(c.readmit_lag_blocks, 5);
        assert_eq!(c.max_batch_size, 100);
        assert!(c.max_in_flight_per_upstream < 100);
        assert_eq!(c.tx_broadcast, 1);
        assert!(c.rate_limit.is_none());
        assert_eq!(c.upstreams[0].name, "127.0.0.1:1");
        assert!(c.deny_methods.iter().any(|d| d == "eth_sendTransaction"));
        assert_eq!(c.cache_max_bytes, 64 << 20);
        assert!(c.coalesce);
    }

    #[test]
    fn cache_and_coalescing_can_be_turned_off_by_flag_file_or_env_syntax() {
        let c = opts(&["--upstream", "http://x", "--cache-max-bytes", "0", "--coalesce", "false"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(c.cache_max_bytes, 0);
        assert!(!c.coalesce);
        let e = opts(&["--upstream", "http://x", "--coalesce", "maybe"]).unwrap_err().to_string();
        assert!(e.contains("--coalesce"), "{e}");
        let file: Opts = toml::from_str("cache-max-bytes = 8192\ncoalesce = false\n").unwrap();
        assert_eq!((file.cache_max_bytes, file.coalesce), (Some(8192), Some(false)));
    }

    #[test]
    fn names_urls_and_health_urls() {
        let c = opts(&[
            "--upstream",
            "a=http://u:secret@10.0.0.1:15014/?x=1",
            "--upstream",
            "b=http://10.0.0.2:15014",
            "--upstream-health",
            "b=http://10.0.0.2:8080/readiness",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(c.upstreams[0].name, "a");
        assert_eq!(c.upstreams[0].url.query(), Some("x=1"));
        assert!(!redact(&c.upstreams[0].url).contains("secret"));
        assert_eq!(c.upstreams[1].health_url.as_ref().unwrap().path(), "/readiness");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "`upstream`"),
            (&["--upstream", "ftp://x"], "`upstream`"),
            (&["--upstream", "https://x"], "https upstreams are not supported"),
            (&["--upstream", "not a url"], "`upstream`"),
            (&["--upstream", "bad name!=http://x"], "name `bad name!`"),
            (&["--upstream", "a=http://x", "--upstream", "a=http://y"], "used twice"),
            (&["--upstream", "http://x", "--upstream-health", "zz=http://h"], "no upstream is named `zz`"),
            (&["--upstream", "http://x", "--listen", "nowhere"], "`listen`"),
            (&["--upstream", "http://x", "--health-interval", "5"], "`health-interval`"),
            (&["--upstream", "http://x", "--health-interval", "0s"], "`health-interval`"),
            (&["--upstream", "http://x", "--max-lag-blocks", "0"], "`max-lag-blocks`"),
            (&["--upstream", "http://x", "--readmit-lag-blocks", "50"], "`readmit-lag-blocks`"),
            (&["--upstream", "http://x", "--rate-limit-per-client", "0"], "`rate-limit-per-client`"),
            (&["--upstream", "http://x", "--rate-limit-burst", "5"], "`rate-limit-burst`"),
            (&["--upstream", "http://x", "--trusted-proxy", "10.0.0.0/99"], "`trusted-proxy`"),
            (&["--upstream", "http://x", "--tx-broadcast", "0"], "`tx-broadcast`"),
            (&["--upstream", "http://x", "--deny-method", "eth_[", "--"], "`deny-method`"),
            (&["--upstream", "http://x", "--log-format", "xml"], "`log-format`"),
            (&["--upstream", "http://x", "--attempt-timeout", "20s"], "`attempt-timeout`"),
            (&["--upstream", "http://x", "--admin-listen", "0.0.0.0:15014"], "`admin-listen`"),
            (&["--upstream", "http://x", "--worker-threads", "0"], "`worker-threads`"),
            (&["--upstream", "http://x", "--cache-max-bytes", "100"], "`cache-max-bytes`"),
        ];
        for (args, want) in cases {
            let e = err(args);
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn clap_refuses_non_numbers_with_the_flag_name() {
        let e = opts(&["--max-lag-blocks", "ten"]).unwrap_err().to_string();
        assert!(e.contains("--max-lag-blocks"), "{e}");
    }

    #[test]
    fn toml_file_then_env_then_flags() {
        let dir = tempfile_dir();
        let path = dir.join("gw.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1000\"\nupstream = [\"a=http://127.0.0.1:1\"]\nmax-lag-blocks = 7\nhealth-interval = \"250ms\"\n",
        )
        .unwrap();
        let flags = opts(&["--config", path.to_str().unwrap(), "--max-lag-blocks", "9"]).unwrap();
        let c = flags.load().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1000");
        assert_eq!(c.max_lag_blocks, 9, "flag wins over file");
        assert_eq!(c.health_interval, Duration::from_millis(250));
    }

    #[test]
    fn toml_unknown_or_mistyped_keys_are_named() {
        let dir = tempfile_dir();
        for (text, want) in [
            ("upstreams = [\"http://x\"]\n", "upstreams"),
            ("max-lag-blocks = \"ten\"\n", "max-lag-blocks"),
            ("listen = \n", "listen"),
            ("\u{0}", "config file"),
        ] {
            let path = dir.join("bad.toml");
            std::fs::write(&path, text).unwrap();
            let e = Opts::from_file(&path).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let missing = Opts::from_file(&dir.join("nope.toml")).unwrap_err().to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("gw-config-test-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
