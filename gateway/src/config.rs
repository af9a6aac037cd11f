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
    /// Access tokens: create a signing key, issue a token, inspect one.
    Token {
        /// Which token command.
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `iotex-gateway token …` (README, Access tokens).
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a signing key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write the secret key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Sign a token and print it.
    Issue {
        /// Secret key file written by `token keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Who the token is for (free text, at most 128 bytes; shown by `inspect`).
        #[arg(long, value_name = "S")]
        subject: String,
        /// Quota tier (a `token-tier` name the gateways know).
        #[arg(long, value_name = "T")]
        tier: String,
        /// Lifetime, e.g. `30d`, `12h`.
        #[arg(long, value_name = "DUR")]
        ttl: String,
        /// Token id (what the revocation list names) [default: 16 random hex digits].
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
    /// Print a token's payload as JSON, whether its signature verifies and whether it has expired.
    Inspect {
        /// The token, or `-` to read it from stdin (keeps it out of the process list).
        token: String,
        /// Public key(s) to verify with: base64url or `@FILE`. Repeatable.
        #[arg(long = "public-key", value_name = "KEY|@FILE")]
        public_key: Vec<String>,
    },
}

/// Every setting, as flags/env vars and as TOML keys. All optional here: defaults apply in [`Opts::resolve`].
#[derive(Debug, Default, Clone, PartialEq, Args, Deserialize)]
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
    /// A WebSocket URL for a named upstream, `NAME=URL` (IoTeX serves `eth_subscribe` on port 16014). Only
    /// upstreams with one carry subscriptions. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_WS", value_name = "NAME=URL", value_delimiter = ',')]
    #[serde(default)]
    pub upstream_ws: Vec<String>,
    /// Gives every upstream without an `upstream-ws` URL `ws://HOST:PORT`, HOST from its JSON-RPC URL
    /// (IoTeX: 16014). Works for upstreams whose names are not known in advance.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_WS_PORT", value_name = "PORT")]
    pub upstream_ws_port: Option<u16>,
    /// Resubscribe elsewhere when an upstream subscription delivers no head for this long [default: 8s].
    #[arg(long, env = "IOTEX_GATEWAY_WS_UPSTREAM_SILENCE", value_name = "DUR")]
    pub ws_upstream_silence: Option<String>,
    /// Subscriptions one WebSocket connection may hold [default: 32].
    #[arg(long, env = "IOTEX_GATEWAY_WS_MAX_SUBSCRIPTIONS", value_name = "N")]
    pub ws_max_subscriptions: Option<usize>,
    /// Messages queued for one WebSocket client before it is disconnected as too slow [default: 1024].
    #[arg(long, env = "IOTEX_GATEWAY_WS_SEND_QUEUE", value_name = "N")]
    pub ws_send_queue: Option<usize>,
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
    /// How long a node that answered HTTP 429 ("busy") sits out; not an ejection [default: 1s].
    #[arg(long, env = "IOTEX_GATEWAY_BUSY_BACKOFF", value_name = "DUR")]
    pub busy_backoff: Option<String>,
    /// Largest batch sent to one node; bigger client batches are split across nodes [default: 100, IoTeX's cap].
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_BATCH_SIZE", value_name = "N")]
    pub upstream_batch_size: Option<usize>,
    /// Discover upstreams from a DNS name's A/AAAA records, `NAME:PORT` (a headless Service). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS", value_name = "NAME:PORT", value_delimiter = ',')]
    #[serde(default)]
    pub upstream_dns: Vec<String>,
    /// How often discovery names are resolved again [default: 5s].
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS_INTERVAL", value_name = "DUR")]
    pub upstream_dns_interval: Option<String>,
    /// DNS server to ask instead of the system resolver, `IP:PORT` [default: the system resolver].
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS_SERVER", value_name = "ADDR")]
    pub upstream_dns_server: Option<String>,
    /// Port of each discovered node's HTTP health endpoint; its `/readiness` must answer 2xx (an IoTeX node's
    /// stats port, 8080) [default: none].
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS_HEALTH_PORT", value_name = "PORT")]
    pub upstream_dns_health_port: Option<u16>,
    /// How often the config file is checked for changes (0s: only on SIGHUP) [default: 2s].
    #[arg(long, env = "IOTEX_GATEWAY_CONFIG_POLL_INTERVAL", value_name = "DUR")]
    pub config_poll_interval: Option<String>,
    /// A public key whose access tokens are accepted: base64url, or `@FILE` with one key per line (`#`
    /// comments). Repeatable; several keys at once allow rotation. Absent = tokens are not looked at.
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_PUBLIC_KEY", value_name = "KEY|@FILE", value_delimiter = ',')]
    #[serde(default)]
    pub token_public_key: Vec<String>,
    /// Refuse callers without a valid access token (HTTP 401).
    #[arg(long, env = "IOTEX_GATEWAY_REQUIRE_TOKEN")]
    #[serde(default)]
    pub require_token: bool,
    /// Quota of each token of a tier, `NAME=RATE[/BURST]` in requests/s. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_TIER", value_name = "NAME=RATE[/BURST]", value_delimiter = ',')]
    #[serde(default)]
    pub token_tier: Vec<String>,
    /// File of revoked token ids, one per line (`#` comments); re-read while running.
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_REVOCATION_LIST", value_name = "FILE")]
    pub token_revocation_list: Option<PathBuf>,
    /// How often the revocation list is checked for changes [default: 5s].
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_REVOCATION_RELOAD", value_name = "DUR")]
    pub token_revocation_reload: Option<String>,
    /// Bytes of final results (by-hash lookups, blocks and state at or below every routable node's head,
    /// chain id) kept in memory; 0 turns the cache off [default: 67108864 = 64 MiB].
    #[arg(long, env = "IOTEX_GATEWAY_CACHE_MAX_BYTES", value_name = "BYTES")]
    pub cache_max_bytes: Option<u64>,
    /// Identical concurrent read calls share one upstream call, `true` or `false` [default: true].
    #[arg(long, env = "IOTEX_GATEWAY_COALESCE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub coalesce: Option<bool>,
    /// Largest `eth_getLogs` block range sent to one node; wider ranges are split over the nodes and merged
    /// in block order [default: 1000, within every IoTeX release's cap].
    #[arg(long, env = "IOTEX_GATEWAY_LOGS_MAX_RANGE_PER_CALL", value_name = "BLOCKS")]
    pub logs_max_range_per_call: Option<u64>,
    /// Largest `eth_getLogs` block range one client call may cover; wider gets `-32005` [default: 10000].
    #[arg(long, env = "IOTEX_GATEWAY_LOGS_MAX_RANGE", value_name = "BLOCKS")]
    pub logs_max_range: Option<u64>,
}

/// The methods denied by default: node administration, signing with node-held keys, dev-node controls.
pub const DEFAULT_DENY: &[&str] = &crate::methods::DEFAULT_DENY;

/// One upstream node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Short name used in metrics, logs and /status.
    pub name: String,
    /// JSON-RPC URL (may carry credentials; never shown).
    pub url: url::Url,
    /// Optional HTTP health URL that must answer 2xx.
    pub health_url: Option<url::Url>,
    /// Optional WebSocket URL for `eth_subscribe` (IoTeX: port 16014).
    pub ws_url: Option<url::Url>,
}

/// Per-client rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Burst above the rate.
    pub burst: NonZeroU32,
}

/// One token tier's quota, applied to each token of the tier separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTier {
    /// The name tokens carry.
    pub name: String,
    /// Sustained requests per second per token.
    pub per_second: NonZeroU32,
    /// Burst above the rate.
    pub burst: NonZeroU32,
}

/// Access-token settings (present when at least one public key is configured).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// Keys whose tokens are accepted.
    pub public_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// Refuse anonymous callers.
    pub require: bool,
    /// Quota per tier.
    pub tiers: Vec<TokenTier>,
    /// Revoked token ids file.
    pub revocation_list: Option<PathBuf>,
    /// How often that file is checked.
    pub revocation_reload: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
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
    /// How long a node that answered 429 sits out.
    pub busy_backoff: Duration,
    /// Largest sub-batch sent to one node.
    pub upstream_batch_size: usize,
    /// DNS discovery, if configured.
    pub discovery: Option<Discovery>,
    /// The config file, when there is one (reloaded on SIGHUP and when it changes).
    pub config_file: Option<PathBuf>,
    /// How often the config file is checked (zero: SIGHUP only).
    pub config_poll_interval: Duration,
    /// The flags and env vars this config was loaded with, to load it again on reload (`None` when the
    /// config did not come from [`Opts::load`]).
    pub source: Option<Opts>,
    /// Access tokens (None = not configured: tokens are not looked at).
    pub tokens: Option<TokenConfig>,
    /// WebSocket serving and subscriptions.
    pub ws: WsConfig,
    /// Cache budget in bytes (0 = no cache).
    pub cache_max_bytes: u64,
    /// Coalesce identical concurrent reads.
    pub coalesce: bool,
    /// Largest `eth_getLogs` range (blocks) sent to one node.
    pub logs_max_range_per_call: u64,
    /// Largest `eth_getLogs` range (blocks) one client call may cover.
    pub logs_max_range: u64,
}

/// Upstream discovery from DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// `(name, port)` pairs to resolve.
    pub names: Vec<(String, u16)>,
    /// Resolution period.
    pub interval: Duration,
    /// A DNS server to ask instead of the system resolver.
    pub server: Option<SocketAddr>,
    /// Port of each discovered node's `/readiness` health endpoint.
    pub health_port: Option<u16>,
    /// WebSocket port of each discovered node (`upstream-ws-port`).
    pub ws_port: Option<u16>,
}

/// WebSocket settings (see the README's WebSocket section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// No head from the upstream subscription for this long ⇒ resubscribe elsewhere.
    pub upstream_silence: Duration,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// Outgoing messages queued per connection (and per topic fan-out) before a client counts as too slow.
    pub send_queue: usize,
}

/// Default cache budget: 64 MiB holds ~30,000 typical blocks or receipts.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 64 << 20;
/// Smallest non-zero cache budget: below it no realistic block fits.
pub const MIN_CACHE_MAX_BYTES: u64 = 4096;
/// Default `eth_getLogs` range per node call: the `api.rangeQueryLimit` default of iotex-core v2.1.0, within
/// v2.4.4's 2,000 (which it enforces), so one setting works on every release.
pub const DEFAULT_LOGS_MAX_RANGE_PER_CALL: u64 = 1000;
/// Default bound on one client call's `eth_getLogs` range: at most 10 node calls per client call (about
/// 7 hours of IoTeX blocks).
pub const DEFAULT_LOGS_MAX_RANGE: u64 = 10_000;

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
            upstream_ws: vec_or(self.upstream_ws, file.upstream_ws),
            upstream_ws_port: self.upstream_ws_port.or(file.upstream_ws_port),
            ws_upstream_silence: self.ws_upstream_silence.or(file.ws_upstream_silence),
            ws_max_subscriptions: self.ws_max_subscriptions.or(file.ws_max_subscriptions),
            ws_send_queue: self.ws_send_queue.or(file.ws_send_queue),
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
            busy_backoff: self.busy_backoff.or(file.busy_backoff),
            upstream_batch_size: self.upstream_batch_size.or(file.upstream_batch_size),
            upstream_dns: vec_or(self.upstream_dns, file.upstream_dns),
            upstream_dns_interval: self.upstream_dns_interval.or(file.upstream_dns_interval),
            upstream_dns_server: self.upstream_dns_server.or(file.upstream_dns_server),
            upstream_dns_health_port: self.upstream_dns_health_port.or(file.upstream_dns_health_port),
            config_poll_interval: self.config_poll_interval.or(file.config_poll_interval),
            token_public_key: vec_or(self.token_public_key, file.token_public_key),
            require_token: self.require_token || file.require_token,
            token_tier: vec_or(self.token_tier, file.token_tier),
            token_revocation_list: self.token_revocation_list.or(file.token_revocation_list),
            token_revocation_reload: self.token_revocation_reload.or(file.token_revocation_reload),
            cache_max_bytes: self.cache_max_bytes.or(file.cache_max_bytes),
            coalesce: self.coalesce.or(file.coalesce),
            logs_max_range_per_call: self.logs_max_range_per_call.or(file.logs_max_range_per_call),
            logs_max_range: self.logs_max_range.or(file.logs_max_range),
        }
    }

    /// Loads the file named by `--config` (if any) under these options and validates the result.
    pub fn load(self) -> Result<Config, ConfigError> {
        let source = self.clone();
        let merged = match &self.config {
            Some(path) => {
                let file = Opts::from_file(path)?;
                self.over(file)
            }
            None => self,
        };
        let mut cfg = merged.resolve()?;
        cfg.source = Some(source);
        Ok(cfg)
    }

    /// Applies defaults and validates every key.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen = addr("listen", self.listen.as_deref().unwrap_or("0.0.0.0:15014"))?;
        let admin_listen = addr("admin-listen", self.admin_listen.as_deref().unwrap_or("0.0.0.0:8080"))?;
        if listen == admin_listen {
            return Err(invalid("admin-listen", format!("{admin_listen} is also the JSON-RPC listen address")));
        }
        let mut discovery = discovery(
            &self.upstream_dns,
            self.upstream_dns_interval.as_deref(),
            self.upstream_dns_server.as_deref(),
            self.upstream_dns_health_port,
        )?;
        let mut upstreams = upstreams(&self.upstream, &self.upstream_health, discovery.is_some())?;
        ws_urls(&mut upstreams, &self.upstream_ws)?;
        if let Some(port) = self.upstream_ws_port {
            if port == 0 {
                return Err(invalid("upstream-ws-port", "must be a port number (1-65535)"));
            }
            for u in upstreams.iter_mut().filter(|u| u.ws_url.is_none()) {
                u.ws_url = derived_ws_url(&u.url, port);
            }
            // Discovered nodes have no names to attach a URL to: the port is how they get one.
            if let Some(d) = discovery.as_mut() {
                d.ws_port = Some(port);
            }
        }
        let ws = WsConfig {
            upstream_silence: dur("ws-upstream-silence", self.ws_upstream_silence.as_deref(), Duration::from_secs(8))?,
            max_subscriptions: positive("ws-max-subscriptions", self.ws_max_subscriptions, 32)?,
            send_queue: positive("ws-send-queue", self.ws_send_queue, 1024)?,
        };

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
        let max_batch_size = positive("max-batch-size", self.max_batch_size, 1000)?;
        let upstream_batch_size = positive("upstream-batch-size", self.upstream_batch_size, 100)?;
        let busy_backoff = dur("busy-backoff", self.busy_backoff.as_deref(), Duration::from_secs(1))?;
        let config_poll_interval =
            dur_zero("config-poll-interval", self.config_poll_interval.as_deref(), Duration::from_secs(2))?;
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
        let logs_max_range_per_call = self.logs_max_range_per_call.unwrap_or(DEFAULT_LOGS_MAX_RANGE_PER_CALL);
        if logs_max_range_per_call == 0 {
            return Err(invalid("logs-max-range-per-call", "must be at least 1 block"));
        }
        let logs_max_range = self.logs_max_range.unwrap_or(DEFAULT_LOGS_MAX_RANGE.max(logs_max_range_per_call));
        if logs_max_range < logs_max_range_per_call {
            return Err(invalid(
                "logs-max-range",
                format!("must be at least logs-max-range-per-call ({logs_max_range_per_call})"),
            ));
        }
        let log_format = self
            .log_format
            .as_deref()
            .map(str::parse::<LogFormat>)
            .transpose()
            .map_err(|e| invalid("log-format", e))?;
        let tokens = tokens(
            &self.token_public_key,
            self.require_token,
            &self.token_tier,
            self.token_revocation_list,
            self.token_revocation_reload.as_deref(),
        )?;

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
            busy_backoff,
            upstream_batch_size,
            discovery,
            config_file: self.config,
            config_poll_interval,
            source: None,
            tokens,
            ws,
            cache_max_bytes,
            coalesce: self.coalesce.unwrap_or(true),
            logs_max_range_per_call,
            logs_max_range,
        })
    }
}

fn discovery(
    specs: &[String],
    interval: Option<&str>,
    server: Option<&str>,
    health_port: Option<u16>,
) -> Result<Option<Discovery>, ConfigError> {
    if specs.is_empty() {
        if health_port.is_some() {
            return Err(invalid("upstream-dns-health-port", "set without upstream-dns"));
        }
        if interval.is_some() {
            return Err(invalid("upstream-dns-interval", "set without upstream-dns"));
        }
        if server.is_some() {
            return Err(invalid("upstream-dns-server", "set without upstream-dns"));
        }
        return Ok(None);
    }
    let mut names = Vec::with_capacity(specs.len());
    for spec in specs {
        let spec = spec.trim();
        let (name, port) = spec.rsplit_once(':').ok_or_else(|| {
            invalid("upstream-dns", format!("`{spec}` needs a port: NAME:PORT, e.g. iotex-nodes.default.svc:15014"))
        })?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("upstream-dns", format!("`{spec}`: `{port}` is not a port (1-65535)")))?;
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid {
            return Err(invalid("upstream-dns", format!("`{name}` is not a DNS name")));
        }
        names.push((name.to_ascii_lowercase(), port));
    }
    let interval = dur("upstream-dns-interval", interval, Duration::from_secs(5))?;
    let server = server.map(|s| addr("upstream-dns-server", s)).transpose()?;
    if health_port == Some(0) {
        return Err(invalid("upstream-dns-health-port", "0 is not a port"));
    }
    Ok(Some(Discovery { names, interval, server, health_port, ws_port: None }))
}

/// Validates the access-token keys. Key files and the revocation list are read here, so a bad path or key
/// stops the gateway (or `check-config`) before anything is bound.
fn tokens(
    keys: &[String],
    require: bool,
    tiers: &[String],
    revocation_list: Option<PathBuf>,
    reload: Option<&str>,
) -> Result<Option<TokenConfig>, ConfigError> {
    if keys.is_empty() {
        let stray = [
            ("require-token", require),
            ("token-tier", !tiers.is_empty()),
            ("token-revocation-list", revocation_list.is_some()),
            ("token-revocation-reload", reload.is_some()),
        ];
        if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(invalid(key, "set without token-public-key; tokens need at least one key to verify with"));
        }
        return Ok(None);
    }
    let mut public_keys: Vec<ed25519_dalek::VerifyingKey> = Vec::new();
    for k in keys {
        let k = k.trim();
        let parsed = match k.strip_prefix('@') {
            Some(path) => crate::token::read_public_keys(Path::new(path)),
            None => crate::token::parse_public_key(k).map(|k| vec![k]),
        };
        // The key text is not echoed: a secret key pasted here by mistake must not end up in a log.
        let parsed = parsed.map_err(|e| invalid("token-public-key", e.to_string()))?;
        for p in parsed {
            if !public_keys.contains(&p) {
                public_keys.push(p);
            }
        }
    }
    if tiers.is_empty() {
        return Err(invalid("token-tier", "at least one tier is needed with token-public-key, e.g. default=10/20"));
    }
    let mut out: Vec<TokenTier> = Vec::with_capacity(tiers.len());
    for spec in tiers {
        let spec = spec.trim();
        let bad = || invalid("token-tier", format!("`{spec}` must be NAME=RATE[/BURST], e.g. gold=100/200"));
        let (name, quota) = spec.split_once('=').ok_or_else(bad)?;
        if !crate::token::valid_tier(name) {
            return Err(invalid("token-tier", format!("name `{name}` must be 1-32 of a-z 0-9 _ -")));
        }
        let (rate, burst) = match quota.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (quota, None),
        };
        let nz = |s: &str| s.trim().parse::<u32>().ok().and_then(NonZeroU32::new);
        let per_second = nz(rate).ok_or_else(bad)?;
        let burst = match burst {
            Some(b) => nz(b).ok_or_else(bad)?,
            None => per_second,
        };
        if out.iter().any(|t| t.name == name) {
            return Err(invalid("token-tier", format!("tier `{name}` is defined twice")));
        }
        out.push(TokenTier { name: name.to_owned(), per_second, burst });
    }
    let revocation_reload = dur("token-revocation-reload", reload, Duration::from_secs(5))?;
    if let Some(path) = &revocation_list {
        crate::layers::auth::read_revocation_list(path).map_err(|e| invalid("token-revocation-list", e.to_string()))?;
    }
    Ok(Some(TokenConfig { public_keys, require, tiers: out, revocation_list, revocation_reload }))
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

fn upstreams(specs: &[String], health: &[String], discovered: bool) -> Result<Vec<UpstreamConfig>, ConfigError> {
    if specs.is_empty() && !discovered {
        return Err(invalid(
            "upstream",
            "at least one upstream is required, e.g. --upstream node0=http://127.0.0.1:15014 (or --upstream-dns NAME:PORT)",
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
        out.push(UpstreamConfig { name, url, health_url: None, ws_url: None });
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

/// `ws://HOST:PORT` for an upstream's JSON-RPC URL (credentials kept): `upstream-ws-port`.
pub fn derived_ws_url(http: &url::Url, port: u16) -> Option<url::Url> {
    let mut ws = url::Url::parse(&format!("ws://{}:{port}/", http.host_str()?)).ok()?;
    if !http.username().is_empty() {
        ws.set_username(http.username()).ok()?;
        ws.set_password(http.password()).ok()?;
    }
    Some(ws)
}

/// Attaches `NAME=ws://…` URLs to their upstreams. `wss` is refused like https: node endpoints are in-cluster.
fn ws_urls(out: &mut [UpstreamConfig], specs: &[String]) -> Result<(), ConfigError> {
    const KEY: &str = "upstream-ws";
    for spec in specs {
        let (Some(name), url) = split_named(spec.trim()) else {
            return Err(invalid(KEY, format!("`{spec}` must be NAME=URL, naming an upstream")));
        };
        let url = url::Url::parse(url.trim()).map_err(|e| invalid(KEY, format!("`{url}` is not a URL: {e}")))?;
        if url.scheme() != "ws" {
            return Err(invalid(
                KEY,
                format!("`{}`: scheme `{}` is not ws (e.g. ws://node:16014)", redact(&url), url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(KEY, format!("`{}` has no host", redact(&url))));
        }
        let Some(up) = out.iter_mut().find(|u| u.name == name) else {
            return Err(invalid(KEY, format!("no upstream is named `{name}`")));
        };
        up.ws_url = Some(url);
    }
    Ok(())
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
        assert_eq!(c.max_batch_size, 1000);
        assert_eq!(c.upstream_batch_size, 100, "IoTeX's batch cap");
        assert_eq!(c.busy_backoff, Duration::from_secs(1));
        assert!(c.discovery.is_none());
        assert!(c.max_in_flight_per_upstream < 100);
        assert_eq!(c.tx_broadcast, 1);
        assert!(c.rate_limit.is_none());
        assert_eq!(c.upstreams[0].name, "127.0.0.1:1");
        assert!(c.deny_methods.iter().any(|d| d == "eth_sendTransaction"));
        assert_eq!(
            c.ws,
            WsConfig { upstream_silence: Duration::from_secs(8), max_subscriptions: 32, send_queue: 1024 }
        );
        assert!(c.upstreams[0].ws_url.is_none());
        assert_eq!((c.logs_max_range_per_call, c.logs_max_range), (1000, 10_000));
    }

    #[test]
    fn logs_ranges_are_validated_together() {
        let c = opts(&["--upstream", "http://x", "--logs-max-range-per-call", "20000"]).unwrap().resolve().unwrap();
        assert_eq!((c.logs_max_range_per_call, c.logs_max_range), (20_000, 20_000), "the bound follows a larger chunk");
        let c = opts(&["--upstream", "http://x", "--logs-max-range-per-call", "5", "--logs-max-range", "5"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!((c.logs_max_range_per_call, c.logs_max_range), (5, 5));
        let file: Opts = toml::from_str("logs-max-range-per-call = 500\nlogs-max-range = 4000\n").unwrap();
        assert_eq!((file.logs_max_range_per_call, file.logs_max_range), (Some(500), Some(4000)));
    }

    #[test]
    fn ws_urls_attach_to_named_upstreams() {
        let c = opts(&["--upstream", "a=http://10.0.0.1:15014", "--upstream-ws", "a=ws://10.0.0.1:16014"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(c.upstreams[0].ws_url.as_ref().map(url::Url::as_str), Some("ws://10.0.0.1:16014/"));
        // A port gives the others one; an explicit URL wins.
        let c = opts(&[
            "--upstream",
            "a=http://10.0.0.1:15014",
            "--upstream",
            "b=http://u:p@node-b:15014",
            "--upstream-ws",
            "a=ws://10.0.0.9:7000",
            "--upstream-ws-port",
            "16014",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(c.upstreams[0].ws_url.as_ref().map(url::Url::as_str), Some("ws://10.0.0.9:7000/"));
        assert_eq!(c.upstreams[1].ws_url.as_ref().map(url::Url::as_str), Some("ws://u:p@node-b:16014/"));
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
            (&["--upstream", "http://x", "--busy-backoff", "0s"], "`busy-backoff`"),
            (&["--upstream", "http://x", "--upstream-batch-size", "0"], "`upstream-batch-size`"),
            (&["--upstream-dns", "iotex.svc"], "needs a port"),
            (&["--upstream-dns", "iotex.svc:0"], "is not a port"),
            (&["--upstream-dns", "iotex.svc:99999"], "is not a port"),
            (&["--upstream-dns", "bad name:15014"], "is not a DNS name"),
            (&["--upstream-dns", "a..b:15014"], "is not a DNS name"),
            (&["--upstream-dns", ":15014"], "is not a DNS name"),
            (&["--upstream-dns", "x:1", "--upstream-dns-server", "dns"], "`upstream-dns-server`"),
            (&["--upstream-dns", "x:1", "--upstream-dns-interval", "0s"], "`upstream-dns-interval`"),
            (&["--upstream", "http://x", "--upstream-dns-interval", "5s"], "set without upstream-dns"),
            (&["--upstream", "http://x", "--config-poll-interval", "soon"], "`config-poll-interval`"),
            (&["--upstream", "a=http://x", "--upstream-ws", "b=ws://x"], "no upstream is named `b`"),
            (&["--upstream", "a=http://x", "--upstream-ws", "a=http://x"], "`upstream-ws`"),
            (&["--upstream", "a=http://x", "--upstream-ws", "ws://x"], "`upstream-ws`"),
            (&["--upstream", "http://x", "--ws-upstream-silence", "0s"], "`ws-upstream-silence`"),
            (&["--upstream", "http://x", "--ws-max-subscriptions", "0"], "`ws-max-subscriptions`"),
            (&["--upstream", "http://x", "--ws-send-queue", "0"], "`ws-send-queue`"),
            (&["--upstream", "http://x", "--upstream-ws-port", "0"], "`upstream-ws-port`"),
            (&["--upstream", "http://x", "--cache-max-bytes", "100"], "`cache-max-bytes`"),
            (&["--upstream", "http://x", "--logs-max-range-per-call", "0"], "`logs-max-range-per-call`"),
            (&["--upstream", "http://x", "--logs-max-range", "999"], "at least logs-max-range-per-call (1000)"),
            (
                &["--upstream", "http://x", "--logs-max-range-per-call", "50", "--logs-max-range", "49"],
                "`logs-max-range`",
            ),
        ];
        for (args, want) in cases {
            let e = err(args);
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn dns_discovery_alone_is_enough_and_names_are_normalised() {
        let c = opts(&["--upstream-dns", "IoTeX-Nodes.default.svc:15014", "--upstream-dns-server", "127.0.0.1:5353"])
            .unwrap()
            .resolve()
            .unwrap();
        assert!(c.upstreams.is_empty());
        let d = c.discovery.unwrap();
        assert_eq!(d.names, vec![("iotex-nodes.default.svc".to_owned(), 15014)]);
        assert_eq!(d.interval, Duration::from_secs(5));
        assert_eq!(d.server, Some("127.0.0.1:5353".parse().unwrap()));
    }

    #[test]
    fn token_keys_are_validated_and_named() {
        let pk = crate::token::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        let pk2 = crate::token::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[2; 32]).verifying_key());
        let dir = tempfile_dir();
        let keys = dir.join("keys");
        std::fs::write(&keys, format!("# rotation\n{pk2}\n{pk}\n")).unwrap();
        let list = dir.join("revoked");
        std::fs::write(&list, "t1\n").unwrap();
        let at_keys = format!("@{}", keys.display());
        let c = opts(&[
            "--upstream",
            "http://x",
            "--token-public-key",
            &pk,
            "--token-public-key",
            &at_keys,
            "--token-tier",
            "gold=100/200",
            "--token-tier",
            "free=5",
            "--require-token",
            "--token-revocation-list",
            list.to_str().unwrap(),
        ])
        .unwrap()
        .resolve()
        .unwrap();
        let t = c.tokens.unwrap();
        assert_eq!(t.public_keys.len(), 2, "a key given twice counts once");
        assert!(t.require);
        assert_eq!(
            t.tiers[1],
            TokenTier {
                name: "free".into(),
                per_second: NonZeroU32::MIN.saturating_add(4),
                burst: NonZeroU32::MIN.saturating_add(4)
            }
        );
        assert_eq!(t.revocation_reload, Duration::from_secs(5));
        assert!(opts(&["--upstream", "http://x"]).unwrap().resolve().unwrap().tokens.is_none());

        let missing = dir.join("missing").display().to_string();
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["--require-token"], "`require-token`"),
            (vec!["--token-tier", "a=1"], "`token-tier`"),
            (vec!["--token-revocation-list", "/x"], "`token-revocation-list`"),
            (vec!["--token-public-key", "short"], "`token-public-key`"),
            (vec!["--token-public-key", "@/nonexistent/keys"], "`token-public-key`"),
            (vec!["--token-public-key", &pk], "`token-tier`"),
            (vec!["--token-public-key", &pk, "--token-tier", "gold"], "`token-tier`"),
            (vec!["--token-public-key", &pk, "--token-tier", "gold=0"], "`token-tier`"),
            (vec!["--token-public-key", &pk, "--token-tier", "gold=5/x"], "`token-tier`"),
            (vec!["--token-public-key", &pk, "--token-tier", "Gold=5"], "`token-tier`"),
            (vec!["--token-public-key", &pk, "--token-tier", "a=1", "--token-tier", "a=2"], "defined twice"),
            (
                vec!["--token-public-key", &pk, "--token-tier", "a=1", "--token-revocation-list", &missing],
                "`token-revocation-list`",
            ),
            (
                vec!["--token-public-key", &pk, "--token-tier", "a=1", "--token-revocation-reload", "0s"],
                "`token-revocation-reload`",
            ),
        ];
        for (extra, want) in cases {
            let mut args = vec!["--upstream", "http://x"];
            args.extend(extra.iter().copied());
            let e = err(&args);
            assert!(e.contains(want), "{extra:?}: {e}");
            assert!(!e.contains(&pk), "keys are not echoed: {e}");
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
