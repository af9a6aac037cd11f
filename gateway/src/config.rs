//! Gateway configuration: defaults → TOML file → environment → flags, validated once into [`Config`].
//!
//! Every key is a flag (`--max-lag-blocks`), an env var (`IOTEX_GATEWAY_MAX_LAG_BLOCKS`) and a TOML key with
//! the flag's name (`max-lag-blocks = 10`), so the Helm chart's values map onto flags mechanically. The
//! clap definition of [`Opts`] is the one place that holds each key's name, env var, type, default and help;
//! [`iotex_shared::layered`] lays flags over env vars over the file over those defaults. Values are typed
//! at parse time (a bad one is refused naming its key); [`Opts::resolve`] checks what spans several keys.
//! Validation runs before anything binds a port; after it, nothing re-checks.
//!
//! The validated [`Config`] is split by lifecycle: [`Startup`] (read once; a change needs a restart) and
//! [`Live`] (applied by a reload), so [`crate::reload`] cannot disagree with this file about which is which.

use clap::{ArgAction, Args, Parser, Subcommand};
use iotex_shared::duration;
use iotex_shared::layered::{LayerError, Layered, Source, keyed};
use iotex_shared::telemetry::LogFormat;
use ipnet::IpNet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32, NonZeroU64, NonZeroUsize};
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
        /// Token id (what the revocation list names); without it, 16 random hex digits.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
    /// Print a token's payload as JSON, whether its signature verifies and whether it has expired.
    Inspect {
        /// The token, or `-` to read it from stdin (keeps it out of the process list).
        #[arg(allow_hyphen_values = true)]
        token: String,
        /// Public key(s) to verify with: base64url or `@FILE`. Repeatable.
        #[arg(long = "public-key", value_name = "KEY|@FILE", allow_hyphen_values = true)]
        public_key: Vec<String>,
    },
}

// `--help` sections, in the order an operator reads them.
const H_LISTEN: &str = "Listen";
const H_UPSTREAMS: &str = "Upstreams & discovery";
const H_HEALTH: &str = "Health & ejection";
const H_LIMITS: &str = "Limits, timeouts & retries";
const H_CLIENTS: &str = "Clients & methods";
const H_CACHE: &str = "Cache, coalescing & eth_getLogs";
const H_TOKENS: &str = "Access tokens";
const H_WS: &str = "WebSocket";
const H_LIFECYCLE: &str = "Config file, logs & lifecycle";

/// Every setting, as flags/env vars and as TOML keys (the flag names). Defaults are clap's; a default that
/// depends on another key is `None` here, with its rule in the help, and applied by [`Opts::resolve`].
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Opts {
    /// JSON-RPC listen address.
    #[arg(long, env = "IOTEX_GATEWAY_LISTEN", value_name = "ADDR", help_heading = H_LISTEN,
        default_value = "0.0.0.0:15014", value_parser = keyed(socket_addr))]
    pub listen: SocketAddr,
    /// Admin listen address for /healthz, /readyz, /metrics, /status.
    #[arg(long, env = "IOTEX_GATEWAY_ADMIN_LISTEN", value_name = "ADDR", help_heading = H_LISTEN,
        default_value = "0.0.0.0:8080", value_parser = keyed(socket_addr))]
    pub admin_listen: SocketAddr,
    /// Native gRPC listen address (`iotexapi.APIService`, HTTP/2 cleartext): each call goes to a routable
    /// node's gRPC port, picked like web3 calls.
    #[arg(long, env = "IOTEX_GATEWAY_GRPC_LISTEN", value_name = "ADDR", help_heading = H_LISTEN,
        default_value = "0.0.0.0:14014", value_parser = keyed(socket_addr))]
    pub grpc_listen: SocketAddr,
    /// Browser origins allowed to call the gRPC listener with gRPC-web (CORS), e.g.
    /// `https://explorer.example.com`, or `*` for any. Repeatable (env: comma-separated). Without one, gRPC-web
    /// still works for same-origin pages and non-browser clients, and no CORS headers are sent.
    #[arg(long, env = "IOTEX_GATEWAY_GRPC_WEB_CORS_ORIGIN", value_name = "ORIGIN", value_delimiter = ',',
        help_heading = H_LISTEN)]
    pub grpc_web_cors_origin: Vec<String>,
    /// gRPC methods allowed on the gRPC listener (globs over `iotexapi.APIService` method names, e.g. `Get*`).
    /// Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_GRPC_ALLOW_METHOD", value_name = "GLOB", value_delimiter = ',',
        help_heading = H_LISTEN, default_values = ["*"], value_parser = keyed(glob))]
    pub grpc_allow_method: Vec<String>,
    /// gRPC methods refused on the gRPC listener (`PERMISSION_DENIED`), e.g. `SendAction`; wins over
    /// `grpc-allow-method`. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_GRPC_DENY_METHOD", value_name = "GLOB", value_delimiter = ',',
        help_heading = H_LISTEN, value_parser = keyed(glob))]
    pub grpc_deny_method: Vec<String>,

    /// An upstream node's web3 JSON-RPC URL, optionally named: `[NAME=]URL`. Repeatable (env: comma-separated).
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM", value_name = "[NAME=]URL", value_delimiter = ',',
        help_heading = H_UPSTREAMS)]
    pub upstream: Vec<String>,
    /// An HTTP health URL for a named upstream, `NAME=URL` (e.g. a node's `:8080/readiness`). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_HEALTH", value_name = "NAME=URL", value_delimiter = ',',
        help_heading = H_UPSTREAMS)]
    pub upstream_health: Vec<String>,
    /// A WebSocket URL for a named upstream, `NAME=URL` (IoTeX serves `eth_subscribe` on port 16014). Only
    /// upstreams with one carry subscriptions. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_WS", value_name = "NAME=URL", value_delimiter = ',',
        help_heading = H_UPSTREAMS)]
    pub upstream_ws: Vec<String>,
    /// A native gRPC URL for a named upstream, `NAME=URL` (`http://HOST:PORT`, HTTP/2 cleartext), when it is
    /// not its JSON-RPC host on `upstream-grpc-port`. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_GRPC", value_name = "NAME=URL", value_delimiter = ',',
        help_heading = H_UPSTREAMS)]
    pub upstream_grpc: Vec<String>,
    /// The gRPC port of every upstream without an `upstream-grpc` URL, on the host of its JSON-RPC URL
    /// (discovered nodes too). IoTeX serves `iotexapi.APIService` on 14014.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_GRPC_PORT", value_name = "PORT", help_heading = H_UPSTREAMS,
        default_value = "14014", value_parser = keyed(port))]
    pub upstream_grpc_port: NonZeroU16,
    /// Gives every upstream without an `upstream-ws` URL `ws://HOST:PORT`, HOST from its JSON-RPC URL
    /// (IoTeX: 16014). Works for upstreams whose names are not known in advance.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_WS_PORT", value_name = "PORT", help_heading = H_UPSTREAMS,
        value_parser = keyed(port))]
    pub upstream_ws_port: Option<NonZeroU16>,
    /// Discover upstreams from a DNS name's A/AAAA records, `NAME:PORT` (a headless Service). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS", value_name = "NAME:PORT", value_delimiter = ',',
        help_heading = H_UPSTREAMS)]
    pub upstream_dns: Vec<String>,
    /// How often discovery names are resolved again (only with upstream-dns).
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS_INTERVAL", value_name = "DUR", help_heading = H_UPSTREAMS,
        default_value = "5s", value_parser = keyed(positive_duration))]
    pub upstream_dns_interval: Duration,
    /// DNS server to ask instead of the system resolver, `IP:PORT`.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS_SERVER", value_name = "ADDR", help_heading = H_UPSTREAMS,
        value_parser = keyed(socket_addr))]
    pub upstream_dns_server: Option<SocketAddr>,
    /// Port of each discovered node's HTTP health endpoint; its `/readiness` must answer 2xx (an IoTeX node's
    /// stats port, 8080). Without it, discovered nodes are probed over JSON-RPC only.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_DNS_HEALTH_PORT", value_name = "PORT", help_heading = H_UPSTREAMS,
        value_parser = keyed(port))]
    pub upstream_dns_health_port: Option<NonZeroU16>,

    /// How often each upstream is probed.
    #[arg(long, env = "IOTEX_GATEWAY_HEALTH_INTERVAL", value_name = "DUR", help_heading = H_HEALTH,
        default_value = "1s", value_parser = keyed(positive_duration))]
    pub health_interval: Duration,
    /// Timeout of one probe [default: the health interval, at most 2s].
    #[arg(long, env = "IOTEX_GATEWAY_PROBE_TIMEOUT", value_name = "DUR", help_heading = H_HEALTH,
        value_parser = keyed(positive_duration))]
    pub probe_timeout: Option<Duration>,
    /// An upstream more than N blocks behind the best head is not routed to.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_LAG_BLOCKS", value_name = "N", help_heading = H_HEALTH,
        default_value = "10", value_parser = keyed(nonzero::<NonZeroU64>))]
    pub max_lag_blocks: NonZeroU64,
    /// A lagging upstream returns once it is at most N blocks behind (hysteresis) [default: max-lag-blocks / 2].
    #[arg(long, env = "IOTEX_GATEWAY_READMIT_LAG_BLOCKS", value_name = "N", help_heading = H_HEALTH)]
    pub readmit_lag_blocks: Option<u64>,
    /// Consecutive failures on real traffic that eject an upstream.
    #[arg(long, env = "IOTEX_GATEWAY_EJECT_AFTER_FAILURES", value_name = "N", help_heading = H_HEALTH,
        default_value = "3", value_parser = keyed(nonzero::<NonZeroU32>))]
    pub eject_after_failures: NonZeroU32,
    /// First ejection period; doubles on each repeat.
    #[arg(long, env = "IOTEX_GATEWAY_EJECT_BACKOFF", value_name = "DUR", help_heading = H_HEALTH,
        default_value = "1s", value_parser = keyed(positive_duration))]
    pub eject_backoff: Duration,
    /// Longest ejection period.
    #[arg(long, env = "IOTEX_GATEWAY_EJECT_BACKOFF_MAX", value_name = "DUR", help_heading = H_HEALTH,
        default_value = "30s", value_parser = keyed(positive_duration))]
    pub eject_backoff_max: Duration,
    /// How long a node that answered HTTP 429 ("busy") sits out; not an ejection.
    #[arg(long, env = "IOTEX_GATEWAY_BUSY_BACKOFF", value_name = "DUR", help_heading = H_HEALTH,
        default_value = "1s", value_parser = keyed(positive_duration))]
    pub busy_backoff: Duration,

    /// Deadline for a whole client call, retries included.
    #[arg(long, env = "IOTEX_GATEWAY_REQUEST_TIMEOUT", value_name = "DUR", help_heading = H_LIMITS,
        default_value = "10s", value_parser = keyed(positive_duration))]
    pub request_timeout: Duration,
    /// Deadline for one upstream attempt [default: request-timeout / 3].
    #[arg(long, env = "IOTEX_GATEWAY_ATTEMPT_TIMEOUT", value_name = "DUR", help_heading = H_LIMITS,
        value_parser = keyed(positive_duration))]
    pub attempt_timeout: Option<Duration>,
    /// Retries allowed as a percentage of recent requests (plus 10/s).
    #[arg(long, env = "IOTEX_GATEWAY_RETRY_BUDGET_PERCENT", value_name = "PCT", help_heading = H_LIMITS,
        default_value = "20", value_parser = keyed(percent))]
    pub retry_budget_percent: f32,
    /// Send each raw transaction to N routable upstreams at once; the first success answers.
    #[arg(long, env = "IOTEX_GATEWAY_TX_BROADCAST", value_name = "N", help_heading = H_LIMITS,
        default_value = "1", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub tx_broadcast: NonZeroUsize,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_BODY_BYTES", value_name = "BYTES", help_heading = H_LIMITS,
        default_value = "1048576", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_body_bytes: NonZeroUsize,
    /// Largest batch accepted from a client.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_BATCH_SIZE", value_name = "N", help_heading = H_LIMITS,
        default_value = "1000", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_batch_size: NonZeroUsize,
    /// Largest batch sent to one node (IoTeX's own cap is 100); bigger client batches are split across nodes.
    #[arg(long, env = "IOTEX_GATEWAY_UPSTREAM_BATCH_SIZE", value_name = "N", help_heading = H_LIMITS,
        default_value = "100", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub upstream_batch_size: NonZeroUsize,
    /// Largest answer accepted from a node, in bytes (IoTeX answers at most 100 MiB, then an empty HTTP 500).
    /// A bigger one is refused with `-32005` and does not count against the node's health.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_RESPONSE_BYTES", value_name = "BYTES", help_heading = H_LIMITS,
        default_value_t = DEFAULT_MAX_RESPONSE_BYTES, value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_response_bytes: NonZeroUsize,
    /// Node answer bytes buffered at once across all calls; a call that would go past it waits up to 1s, then
    /// is refused with `-32002`. At least twice max-response-bytes.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_BUFFERED_RESPONSE_BYTES", value_name = "BYTES", help_heading = H_LIMITS,
        default_value_t = DEFAULT_MAX_BUFFERED_RESPONSE_BYTES, value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_buffered_response_bytes: NonZeroUsize,
    /// Concurrent calls per upstream; IoTeX nodes answer 429 past 100.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_IN_FLIGHT_PER_UPSTREAM", value_name = "N", help_heading = H_LIMITS,
        default_value = "64", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_in_flight_per_upstream: NonZeroUsize,

    /// Longest a client may take to send a request's headers, from its first byte (or from connecting,
    /// for the first request); slower connections are closed.
    #[arg(long, env = "IOTEX_GATEWAY_HEADER_READ_TIMEOUT", value_name = "DUR", help_heading = H_CLIENTS,
        default_value = "10s", value_parser = keyed(positive_duration))]
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's whole body, from when its headers are in; a slow
    /// trickle does not extend it. Past it: HTTP 408 and the connection is closed.
    #[arg(long, env = "IOTEX_GATEWAY_BODY_READ_TIMEOUT", value_name = "DUR", help_heading = H_CLIENTS,
        default_value = "30s", value_parser = keyed(positive_duration))]
    pub body_read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    #[arg(long, env = "IOTEX_GATEWAY_IDLE_TIMEOUT", value_name = "DUR", help_heading = H_CLIENTS,
        default_value = "60s", value_parser = keyed(positive_duration))]
    pub idle_timeout: Duration,
    /// Open JSON-RPC connections in total; past it, a new connection is closed at once.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_CONNECTIONS", value_name = "N", help_heading = H_CLIENTS,
        default_value = "4096", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_connections: NonZeroUsize,
    /// Open JSON-RPC connections per client IP (the TCP peer; peers in trusted-proxy are exempt, since many
    /// clients share them); past it, a new connection is closed at once.
    #[arg(long, env = "IOTEX_GATEWAY_MAX_CONNECTIONS_PER_CLIENT", value_name = "N", help_heading = H_CLIENTS,
        default_value = "256", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub max_connections_per_client: NonZeroUsize,
    /// Requests per second per client IP; absent = no limit.
    #[arg(long, env = "IOTEX_GATEWAY_RATE_LIMIT_PER_CLIENT", value_name = "N", help_heading = H_CLIENTS,
        value_parser = keyed(nonzero::<NonZeroU32>))]
    pub rate_limit_per_client: Option<NonZeroU32>,
    /// Burst allowed above the per-client rate [default: the rate].
    #[arg(long, env = "IOTEX_GATEWAY_RATE_LIMIT_BURST", value_name = "N", help_heading = H_CLIENTS,
        value_parser = keyed(nonzero::<NonZeroU32>))]
    pub rate_limit_burst: Option<NonZeroU32>,
    /// Peers whose `X-Forwarded-For` is believed (CIDR or IP). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_TRUSTED_PROXY", value_name = "CIDR", value_delimiter = ',',
        help_heading = H_CLIENTS, value_parser = keyed(ip_net))]
    pub trusted_proxy: Vec<IpNet>,
    /// Methods allowed (globs). Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_ALLOW_METHOD", value_name = "GLOB", value_delimiter = ',',
        help_heading = H_CLIENTS, default_values = ["*"], value_parser = keyed(glob))]
    pub allow_method: Vec<String>,
    /// Methods denied (globs), checked before allow: node administration, signing with node-held keys,
    /// dev-node controls. Repeatable; replaces the default (an empty list in the file denies nothing).
    #[arg(long, env = "IOTEX_GATEWAY_DENY_METHOD", value_name = "GLOB", value_delimiter = ',',
        help_heading = H_CLIENTS, default_values = DEFAULT_DENY.iter().copied(), value_parser = keyed(glob))]
    pub deny_method: Vec<String>,

    /// Bytes of final results (by-hash lookups, blocks and state at or below every routable node's head,
    /// chain id) kept in memory; 0 turns the cache off (turning it on or off needs a restart).
    #[arg(long, env = "IOTEX_GATEWAY_CACHE_MAX_BYTES", value_name = "BYTES", help_heading = H_CACHE,
        default_value_t = DEFAULT_CACHE_MAX_BYTES, value_parser = keyed(cache_bytes))]
    pub cache_max_bytes: u64,
    /// Identical concurrent read calls share one upstream call, `true` or `false`.
    #[arg(long, env = "IOTEX_GATEWAY_COALESCE", value_name = "BOOL", help_heading = H_CACHE,
        action = ArgAction::Set, default_value = "true")]
    pub coalesce: bool,
    /// Largest `eth_getLogs` block range sent to one node; wider ranges are split over the nodes and merged
    /// in block order (within every IoTeX release's cap).
    #[arg(long, env = "IOTEX_GATEWAY_LOGS_MAX_RANGE_PER_CALL", value_name = "BLOCKS", help_heading = H_CACHE,
        default_value_t = DEFAULT_LOGS_MAX_RANGE_PER_CALL, value_parser = keyed(nonzero::<NonZeroU64>))]
    pub logs_max_range_per_call: NonZeroU64,
    /// Largest `eth_getLogs` block range one client call may cover; wider gets `-32005` [default: 10000, or
    /// logs-max-range-per-call when that is larger].
    #[arg(long, env = "IOTEX_GATEWAY_LOGS_MAX_RANGE", value_name = "BLOCKS", help_heading = H_CACHE)]
    pub logs_max_range: Option<u64>,

    /// A public key whose access tokens are accepted: base64url, or `@FILE` with one key per line (`#`
    /// comments). Repeatable; several keys at once allow rotation. Absent = tokens are not looked at.
    // Hyphen values allowed: base64url has `-` in its alphabet, so one key in 64 starts with it, and clap
    // would otherwise read `--token-public-key -Q…` as an unknown flag (a test run drew such a key).
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_PUBLIC_KEY", value_name = "KEY|@FILE", value_delimiter = ',',
        allow_hyphen_values = true, help_heading = H_TOKENS)]
    pub token_public_key: Vec<String>,
    /// Refuse callers without a valid access token (HTTP 401). `--require-token` alone means true.
    #[arg(long, env = "IOTEX_GATEWAY_REQUIRE_TOKEN", value_name = "BOOL", help_heading = H_TOKENS,
        action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false")]
    pub require_token: bool,
    /// Quota of each token of a tier, `NAME=RATE[/BURST]` in requests/s. Repeatable.
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_TIER", value_name = "NAME=RATE[/BURST]", value_delimiter = ',',
        help_heading = H_TOKENS)]
    pub token_tier: Vec<String>,
    /// File of revoked token ids, one per line (`#` comments); re-read while running.
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_REVOCATION_LIST", value_name = "FILE", help_heading = H_TOKENS)]
    pub token_revocation_list: Option<PathBuf>,
    /// How often the revocation list is checked for changes.
    #[arg(long, env = "IOTEX_GATEWAY_TOKEN_REVOCATION_RELOAD", value_name = "DUR", help_heading = H_TOKENS,
        default_value = "5s", value_parser = keyed(positive_duration))]
    pub token_revocation_reload: Duration,

    /// Resubscribe elsewhere when an upstream subscription delivers no head for this long.
    #[arg(long, env = "IOTEX_GATEWAY_WS_UPSTREAM_SILENCE", value_name = "DUR", help_heading = H_WS,
        default_value = "8s", value_parser = keyed(positive_duration))]
    pub ws_upstream_silence: Duration,
    /// Subscriptions one WebSocket connection may hold.
    #[arg(long, env = "IOTEX_GATEWAY_WS_MAX_SUBSCRIPTIONS", value_name = "N", help_heading = H_WS,
        default_value = "32", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub ws_max_subscriptions: NonZeroUsize,
    /// Messages queued for one WebSocket client before it is disconnected as too slow.
    #[arg(long, env = "IOTEX_GATEWAY_WS_SEND_QUEUE", value_name = "N", help_heading = H_WS,
        default_value = "1024", value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub ws_send_queue: NonZeroUsize,

    /// TOML config file; its keys are these flags' names.
    #[arg(long, env = "IOTEX_GATEWAY_CONFIG", value_name = "FILE", help_heading = H_LIFECYCLE)]
    pub config: Option<PathBuf>,
    /// How often the config file is checked for changes (0s: only on SIGHUP).
    #[arg(long, env = "IOTEX_GATEWAY_CONFIG_POLL_INTERVAL", value_name = "DUR", help_heading = H_LIFECYCLE,
        default_value = "2s", value_parser = keyed(any_duration))]
    pub config_poll_interval: Duration,
    /// Log format, `json` or `text` [default: json unless stdout is a terminal].
    #[arg(long, env = "IOTEX_GATEWAY_LOG_FORMAT", value_name = "FORMAT", help_heading = H_LIFECYCLE,
        value_parser = keyed(|s: &str| s.trim().parse::<LogFormat>()))]
    pub log_format: Option<LogFormat>,
    /// Threads serving JSON-RPC connections, each with its own event loop and upstream pools [default: one
    /// per CPU].
    #[arg(long, env = "IOTEX_GATEWAY_WORKER_THREADS", value_name = "N", help_heading = H_LIFECYCLE,
        value_parser = keyed(nonzero::<NonZeroUsize>))]
    pub worker_threads: Option<NonZeroUsize>,
    /// After SIGTERM, how long /readyz reports 503 before the listener stops accepting.
    #[arg(long, env = "IOTEX_GATEWAY_SHUTDOWN_DELAY", value_name = "DUR", help_heading = H_LIFECYCLE,
        default_value = "0s", value_parser = keyed(any_duration))]
    pub shutdown_delay: Duration,
    /// After the listener stops, how long in-flight requests get to finish.
    #[arg(long, env = "IOTEX_GATEWAY_SHUTDOWN_GRACE", value_name = "DUR", help_heading = H_LIFECYCLE,
        default_value = "10s", value_parser = keyed(any_duration))]
    pub shutdown_grace: Duration,
}

/// The methods denied by default: node administration, signing with node-held keys, dev-node controls.
pub const DEFAULT_DENY: &[&str] = &crate::methods::DEFAULT_DENY;

// Value parsers: each refuses a bad value at parse time, naming its key (`layered::keyed`).

fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| format!("`{s}` is not an address; write it like 0.0.0.0:15014 or [::1]:15014"))
}

fn port(s: &str) -> Result<NonZeroU16, String> {
    s.trim().parse().map_err(|_| format!("`{s}` must be a port number (1-65535)"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match any_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

fn any_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

/// A whole number of at least 1 (`NonZeroU32`, `NonZeroU64`, `NonZeroUsize`).
fn nonzero<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    match s.trim().parse::<u128>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(_) => s.trim().parse().map_err(|_| format!("`{s}` is too large")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

fn percent(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(p) if (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}`: must be between 0 and 1000")),
    }
}

fn ip_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))
}

/// A method glob; the empty string is how an empty list in the file replaces the default one.
fn glob(s: &str) -> Result<String, String> {
    if !s.is_empty() {
        globset::Glob::new(s).map_err(|e| format!("`{s}` is not a glob: {e}"))?;
    }
    Ok(s.to_owned())
}

fn cache_bytes(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n == 0 || n >= MIN_CACHE_MAX_BYTES => Ok(n),
        Ok(_) => Err(format!("must be 0 (no cache) or at least {MIN_CACHE_MAX_BYTES}")),
        Err(_) => Err(format!("`{s}` is not a whole number of bytes")),
    }
}

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
    /// Native gRPC base URL, `http://HOST:PORT` (IoTeX: port 14014).
    pub grpc_url: Option<url::Url>,
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

/// The validated configuration, split by lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Read once at start; a change needs a restart.
    pub startup: Startup,
    /// Applied by a reload to calls that start from then on.
    pub live: Live,
    /// The command line this config was layered from, to layer it again on reload (`None`: not from
    /// [`load`], nothing to reload).
    pub source: Option<Source>,
}

/// Settings read once at start: a reload that changes one logs it as needing a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Startup {
    /// JSON-RPC listen address.
    pub listen: SocketAddr,
    /// Admin listen address.
    pub admin_listen: SocketAddr,
    /// Native gRPC listen address.
    pub grpc_listen: SocketAddr,
    /// Runtime worker threads (None = one per CPU).
    pub worker_threads: Option<usize>,
    /// In-flight cap per upstream (an upstream's pool is sized once).
    pub max_in_flight_per_upstream: usize,
    /// Body cap in bytes (also the WebSocket message cap).
    pub max_body_bytes: usize,
    /// Log format (None = detect).
    pub log_format: Option<LogFormat>,
    /// Not-ready period before the listener closes.
    pub shutdown_delay: Duration,
    /// Grace period for in-flight requests.
    pub shutdown_grace: Duration,
    /// The config file, when there is one (reloaded on SIGHUP and when it changes).
    pub config_file: Option<PathBuf>,
    /// How often the config file is checked (zero: SIGHUP only).
    pub config_poll_interval: Duration,
    /// WebSocket serving and subscriptions.
    pub ws: WsConfig,
    /// Whether there is a cache at all (`cache-max-bytes` > 0); its size is [`Live::cache_max_bytes`].
    pub cache: bool,
    /// Client connection timeouts and caps.
    pub clients: ClientLimits,
    /// Node answer size cap and buffer budget.
    pub answers: AnswerLimits,
}

/// Client connection timeouts and caps (README, Slow clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// Headers must be complete this long after their first byte (after connecting, for the first request).
    pub header_read_timeout: Duration,
    /// A body must be complete this long after its headers.
    pub body_read_timeout: Duration,
    /// No request for this long closes a keep-alive connection.
    pub idle_timeout: Duration,
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections per client IP (trusted proxies exempt).
    pub max_connections_per_client: usize,
}

/// Bounds on node answers held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Largest single answer.
    pub max_response_bytes: usize,
    /// Answer bytes buffered at once across all calls.
    pub max_buffered_bytes: usize,
}

impl Startup {
    /// The keys whose values differ between `self` and `new`. Destructured without `..`, so a field added
    /// to [`Startup`] does not compile until it is named here.
    pub fn changed_keys(&self, new: &Startup) -> Vec<&'static str> {
        let Startup {
            listen,
            admin_listen,
            grpc_listen,
            worker_threads,
            max_in_flight_per_upstream,
            max_body_bytes,
            log_format,
            shutdown_delay,
            shutdown_grace,
            config_file,
            config_poll_interval,
            ws: WsConfig { upstream_silence, max_subscriptions, send_queue },
            cache,
            clients,
            answers,
        } = self;
        [
            (*listen != new.listen, "listen"),
            (*admin_listen != new.admin_listen, "admin-listen"),
            (*grpc_listen != new.grpc_listen, "grpc-listen"),
            (*worker_threads != new.worker_threads, "worker-threads"),
            (*max_in_flight_per_upstream != new.max_in_flight_per_upstream, "max-in-flight-per-upstream"),
            (*max_body_bytes != new.max_body_bytes, "max-body-bytes"),
            (*log_format != new.log_format, "log-format"),
            (*shutdown_delay != new.shutdown_delay, "shutdown-delay"),
            (*shutdown_grace != new.shutdown_grace, "shutdown-grace"),
            (*config_file != new.config_file, "config"),
            (*config_poll_interval != new.config_poll_interval, "config-poll-interval"),
            (*upstream_silence != new.ws.upstream_silence, "ws-upstream-silence"),
            (*max_subscriptions != new.ws.max_subscriptions, "ws-max-subscriptions"),
            (*send_queue != new.ws.send_queue, "ws-send-queue"),
            // A cache is built at start or not at all; resizing one works live.
            (*cache != new.cache, "cache-max-bytes (on/off)"),
            (clients.header_read_timeout != new.clients.header_read_timeout, "header-read-timeout"),
            (clients.body_read_timeout != new.clients.body_read_timeout, "body-read-timeout"),
            (clients.idle_timeout != new.clients.idle_timeout, "idle-timeout"),
            (clients.max_connections != new.clients.max_connections, "max-connections"),
            (
                clients.max_connections_per_client != new.clients.max_connections_per_client,
                "max-connections-per-client",
            ),
            (answers.max_response_bytes != new.answers.max_response_bytes, "max-response-bytes"),
            (answers.max_buffered_bytes != new.answers.max_buffered_bytes, "max-buffered-response-bytes"),
        ]
        .into_iter()
        .filter_map(|(changed, key)| changed.then_some(key))
        .collect()
    }
}

/// Settings a reload applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// Upstream nodes, in configured order.
    pub upstreams: Vec<UpstreamConfig>,
    /// DNS discovery, if configured.
    pub discovery: Option<Discovery>,
    /// Probe period.
    pub health_interval: Duration,
    /// Probe timeout.
    pub probe_timeout: Duration,
    /// Lag (blocks) beyond which an upstream is not routed to.
    pub max_lag_blocks: u64,
    /// Lag at or below which a lagging upstream returns.
    pub readmit_lag_blocks: u64,
    /// Consecutive failures before ejection.
    pub eject_after_failures: u32,
    /// First ejection period.
    pub eject_backoff: Duration,
    /// Longest ejection period.
    pub eject_backoff_max: Duration,
    /// How long a node that answered 429 sits out.
    pub busy_backoff: Duration,
    /// Whole-call deadline.
    pub request_timeout: Duration,
    /// One-attempt deadline.
    pub attempt_timeout: Duration,
    /// Retry budget as a fraction (0.2 = 20 %).
    pub retry_budget_ratio: f32,
    /// Raw transaction fan-out.
    pub tx_broadcast: usize,
    /// Batch cap in items.
    pub max_batch_size: usize,
    /// Largest sub-batch sent to one node.
    pub upstream_batch_size: usize,
    /// Per-client rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Peers whose X-Forwarded-For is trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// Allowed method globs.
    pub allow_methods: Vec<String>,
    /// Denied method globs.
    pub deny_methods: Vec<String>,
    /// Access tokens (None = not configured: tokens are not looked at).
    pub tokens: Option<TokenConfig>,
    /// Cache budget in bytes (0 = no cache).
    pub cache_max_bytes: u64,
    /// Coalesce identical concurrent reads.
    pub coalesce: bool,
    /// Largest `eth_getLogs` range (blocks) sent to one node.
    pub logs_max_range_per_call: u64,
    /// Largest `eth_getLogs` range (blocks) one client call may cover.
    pub logs_max_range: u64,
    /// Origins allowed to call the gRPC listener with gRPC-web (`*`: any).
    pub grpc_web_cors_origins: Vec<String>,
    /// gRPC method globs allowed and denied on the gRPC listener.
    pub grpc_methods: (Vec<String>, Vec<String>),
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
    /// gRPC port of each discovered node (`upstream-grpc-port`).
    pub grpc_port: Option<u16>,
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
/// Default cap on one node answer: an IoTeX node answers at most 100 MiB (`pkg/util/httputil`, then an
/// empty HTTP 500), so no legitimate answer is refused.
pub const DEFAULT_MAX_RESPONSE_BYTES: NonZeroUsize = NonZeroUsize::MIN.saturating_add((100 << 20) - 1);
/// Default budget of node answer bytes buffered at once: two maximal answers and change, which fits a
/// 512 MiB pod limit next to the 64 MiB cache and a few thousand connections.
pub const DEFAULT_MAX_BUFFERED_RESPONSE_BYTES: NonZeroUsize = NonZeroUsize::MIN.saturating_add((256 << 20) - 1);
/// Smallest non-zero cache budget: below it no realistic block fits.
pub const MIN_CACHE_MAX_BYTES: u64 = 4096;
/// Default `eth_getLogs` range per node call: the `api.rangeQueryLimit` default of iotex-core v2.1.0, within
/// v2.4.4's 2,000 (which it enforces), so one setting works on every release.
pub const DEFAULT_LOGS_MAX_RANGE_PER_CALL: NonZeroU64 = NonZeroU64::MIN.saturating_add(999);
/// Default bound on one client call's `eth_getLogs` range: at most 10 node calls per client call (about
/// 7 hours of IoTeX blocks).
pub const DEFAULT_LOGS_MAX_RANGE: u64 = 10_000;

/// A setting that cannot be used, named by its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line, an env var or the config file is refused as it is parsed (the message names the
    /// flag or key, and the file).
    #[error(transparent)]
    Layer(#[from] LayerError),
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

/// Layers a command line (program name first) over env vars, its config file and the defaults, and
/// validates the result.
pub fn load<I: IntoIterator<Item = S>, S: Into<OsString>>(argv: I) -> Result<Config, ConfigError> {
    load_source(&Source::new(argv))
}

/// [`load`] from a [`Source`] (a reload layers the same one again).
pub fn load_source(source: &Source) -> Result<Config, ConfigError> {
    Opts::resolve(source.parse::<Cli>()?)
}

impl Opts {
    /// Applies the defaults that depend on other keys and validates what spans several keys.
    pub fn resolve(layered: Layered<Cli>) -> Result<Config, ConfigError> {
        let o = &layered.value.opts;
        if o.listen == o.admin_listen {
            return Err(invalid("admin-listen", format!("{} is also the JSON-RPC listen address", o.admin_listen)));
        }
        // Port 0 (any free port, as tests bind) is never a clash.
        if o.grpc_listen.port() != 0 && (o.grpc_listen == o.listen || o.grpc_listen == o.admin_listen) {
            return Err(invalid(
                "grpc-listen",
                format!("{} is also the JSON-RPC or admin listen address", o.grpc_listen),
            ));
        }
        let startup = Startup {
            listen: o.listen,
            admin_listen: o.admin_listen,
            grpc_listen: o.grpc_listen,
            worker_threads: o.worker_threads.map(NonZeroUsize::get),
            max_in_flight_per_upstream: o.max_in_flight_per_upstream.get(),
            max_body_bytes: o.max_body_bytes.get(),
            log_format: o.log_format,
            shutdown_delay: o.shutdown_delay,
            shutdown_grace: o.shutdown_grace,
            config_file: layered.file.clone(),
            config_poll_interval: o.config_poll_interval,
            ws: WsConfig {
                upstream_silence: o.ws_upstream_silence,
                max_subscriptions: o.ws_max_subscriptions.get(),
                send_queue: o.ws_send_queue.get(),
            },
            cache: o.cache_max_bytes > 0,
            clients: ClientLimits {
                header_read_timeout: o.header_read_timeout,
                body_read_timeout: o.body_read_timeout,
                idle_timeout: o.idle_timeout,
                max_connections: o.max_connections.get(),
                max_connections_per_client: o.max_connections_per_client.get(),
            },
            answers: AnswerLimits {
                max_response_bytes: o.max_response_bytes.get(),
                max_buffered_bytes: o.max_buffered_response_bytes.get(),
            },
        };
        // Twice: a buffer growing to the cap briefly holds its old and its new allocation (upstream/answer.rs).
        if startup.answers.max_buffered_bytes / 2 < startup.answers.max_response_bytes {
            return Err(invalid(
                "max-buffered-response-bytes",
                format!(
                    "must be at least twice max-response-bytes ({}), or an answer that size might never fit",
                    startup.answers.max_response_bytes
                ),
            ));
        }
        let live = o.live(&|id| layered.is_set(id))?;
        Ok(Config { startup, live, source: Some(layered.source) })
    }

    /// The live settings; `is_set(id)` tells whether a key with a default was given at all.
    fn live(&self, is_set: &dyn Fn(&str) -> bool) -> Result<Live, ConfigError> {
        let (upstreams, discovery) = self.upstream_set(is_set)?;
        let health_interval = self.health_interval;
        let request_timeout = self.request_timeout;
        let attempt_timeout = self.attempt_timeout.unwrap_or(request_timeout / 3);
        if attempt_timeout > request_timeout {
            return Err(invalid("attempt-timeout", "must not exceed request-timeout"));
        }
        if self.eject_backoff_max < self.eject_backoff {
            return Err(invalid("eject-backoff-max", "must be at least eject-backoff"));
        }
        let max_lag_blocks = self.max_lag_blocks.get();
        let readmit_lag_blocks = self.readmit_lag_blocks.unwrap_or(max_lag_blocks / 2);
        if readmit_lag_blocks > max_lag_blocks {
            return Err(invalid("readmit-lag-blocks", format!("must not exceed max-lag-blocks ({max_lag_blocks})")));
        }
        let rate_limit = match (self.rate_limit_per_client, self.rate_limit_burst) {
            (None, None) => None,
            (None, Some(_)) => return Err(invalid("rate-limit-burst", "set without rate-limit-per-client")),
            (Some(per_second), burst) => Some(RateLimit { per_second, burst: burst.unwrap_or(per_second) }),
        };
        let logs_max_range_per_call = self.logs_max_range_per_call.get();
        let logs_max_range = self.logs_max_range.unwrap_or(DEFAULT_LOGS_MAX_RANGE.max(logs_max_range_per_call));
        if logs_max_range < logs_max_range_per_call {
            return Err(invalid(
                "logs-max-range",
                format!("must be at least logs-max-range-per-call ({logs_max_range_per_call})"),
            ));
        }
        for origin in &self.grpc_web_cors_origin {
            if !valid_origin(origin) {
                return Err(invalid(
                    "grpc-web-cors-origin",
                    format!(
                        "`{origin}` is not `*` or an origin such as https://explorer.example.com (scheme://host[:port], no path)"
                    ),
                ));
            }
        }
        // One empty value (an empty list in the file) stands for "none".
        let methods = |v: &[String]| v.iter().filter(|g| !g.is_empty()).cloned().collect::<Vec<_>>();
        let all_if_none = |v: Vec<String>| if v.is_empty() { vec!["*".to_owned()] } else { v };
        let allow_methods = all_if_none(methods(&self.allow_method));
        Ok(Live {
            upstreams,
            discovery,
            health_interval,
            probe_timeout: self.probe_timeout.unwrap_or(health_interval.min(Duration::from_secs(2))),
            max_lag_blocks,
            readmit_lag_blocks,
            eject_after_failures: self.eject_after_failures.get(),
            eject_backoff: self.eject_backoff,
            eject_backoff_max: self.eject_backoff_max,
            busy_backoff: self.busy_backoff,
            request_timeout,
            attempt_timeout,
            retry_budget_ratio: self.retry_budget_percent / 100.0,
            tx_broadcast: self.tx_broadcast.get(),
            max_batch_size: self.max_batch_size.get(),
            upstream_batch_size: self.upstream_batch_size.get(),
            rate_limit,
            trusted_proxies: self.trusted_proxy.clone(),
            allow_methods,
            deny_methods: methods(&self.deny_method),
            tokens: self.tokens(is_set("token_revocation_reload"))?,
            cache_max_bytes: self.cache_max_bytes,
            coalesce: self.coalesce,
            logs_max_range_per_call,
            logs_max_range,
            grpc_web_cors_origins: self.grpc_web_cors_origin.clone(),
            grpc_methods: (all_if_none(methods(&self.grpc_allow_method)), methods(&self.grpc_deny_method)),
        })
    }

    /// Static upstreams (with their health and WebSocket URLs) and DNS discovery.
    fn upstream_set(
        &self,
        is_set: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<UpstreamConfig>, Option<Discovery>), ConfigError> {
        let mut discovery = discovery(
            &self.upstream_dns,
            (self.upstream_dns_interval, is_set("upstream_dns_interval")),
            self.upstream_dns_server,
            self.upstream_dns_health_port,
        )?;
        let mut upstreams = upstreams(&self.upstream, &self.upstream_health, discovery.is_some())?;
        ws_urls(&mut upstreams, &self.upstream_ws)?;
        grpc_urls(&mut upstreams, &self.upstream_grpc)?;
        let grpc_port = self.upstream_grpc_port.get();
        for u in upstreams.iter_mut().filter(|u| u.grpc_url.is_none()) {
            u.grpc_url = derived_grpc_url(&u.url, grpc_port);
        }
        if let Some(d) = discovery.as_mut() {
            d.grpc_port = Some(grpc_port);
        }
        if let Some(port) = self.upstream_ws_port.map(NonZeroU16::get) {
            for u in upstreams.iter_mut().filter(|u| u.ws_url.is_none()) {
                u.ws_url = derived_ws_url(&u.url, port);
            }
            // Discovered nodes have no names to attach a URL to: the port is how they get one.
            if let Some(d) = discovery.as_mut() {
                d.ws_port = Some(port);
            }
        }
        Ok((upstreams, discovery))
    }

    /// Access tokens; `reload_set`: whether `token-revocation-reload` was given (it needs a key).
    fn tokens(&self, reload_set: bool) -> Result<Option<TokenConfig>, ConfigError> {
        tokens(
            &self.token_public_key,
            self.require_token,
            &self.token_tier,
            self.token_revocation_list.clone(),
            (self.token_revocation_reload, reload_set),
        )
    }
}

/// DNS discovery; `interval.1`: whether `upstream-dns-interval` was given (it needs `upstream-dns`).
fn discovery(
    specs: &[String],
    interval: (Duration, bool),
    server: Option<SocketAddr>,
    health_port: Option<NonZeroU16>,
) -> Result<Option<Discovery>, ConfigError> {
    if specs.is_empty() {
        if health_port.is_some() {
            return Err(invalid("upstream-dns-health-port", "set without upstream-dns"));
        }
        if interval.1 {
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
    Ok(Some(Discovery {
        names,
        interval: interval.0,
        server,
        health_port: health_port.map(NonZeroU16::get),
        ws_port: None,
        grpc_port: None,
    }))
}

/// Validates the access-token keys. Key files and the revocation list are read here, so a bad path or key
/// stops the gateway (or `check-config`) before anything is bound.
fn tokens(
    keys: &[String],
    require: bool,
    tiers: &[String],
    revocation_list: Option<PathBuf>,
    reload: (Duration, bool),
) -> Result<Option<TokenConfig>, ConfigError> {
    if keys.is_empty() {
        let stray = [
            ("require-token", require),
            ("token-tier", !tiers.is_empty()),
            ("token-revocation-list", revocation_list.is_some()),
            ("token-revocation-reload", reload.1),
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
    if let Some(path) = &revocation_list {
        crate::token::read_revocation_list(path).map_err(|e| invalid("token-revocation-list", e.to_string()))?;
    }
    Ok(Some(TokenConfig { public_keys, require, tiers: out, revocation_list, revocation_reload: reload.0 }))
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
        out.push(UpstreamConfig { name, url, health_url: None, ws_url: None, grpc_url: None });
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

/// `*`, or a browser origin: `http` or `https`, a host, an optional port, nothing else (what a browser sends
/// in `Origin`).
fn valid_origin(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Ok(u) = url::Url::parse(s) else { return false };
    matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some_and(|h| !h.is_empty())
        && u.username().is_empty()
        && u.password().is_none()
        && u.query().is_none()
        && u.fragment().is_none()
        && u.path() == "/"
        && !s.trim_end_matches('/').ends_with(':')
        && !s.ends_with('/')
}

/// `http://HOST:PORT/` for an upstream's JSON-RPC URL: `upstream-grpc-port` (no credentials: an IoTeX node's
/// gRPC port has none).
pub fn derived_grpc_url(http: &url::Url, port: u16) -> Option<url::Url> {
    // `Host` writes an IPv6 address in brackets, as a URL needs.
    url::Url::parse(&format!("http://{}:{port}/", http.host()?)).ok()
}

/// Attaches `NAME=http://…` gRPC URLs to their upstreams (HTTP/2 cleartext; only the host and port count).
fn grpc_urls(out: &mut [UpstreamConfig], specs: &[String]) -> Result<(), ConfigError> {
    const KEY: &str = "upstream-grpc";
    for spec in specs {
        let (Some(name), url) = split_named(spec.trim()) else {
            return Err(invalid(KEY, format!("`{spec}` must be NAME=URL, naming an upstream")));
        };
        let url = http_url(KEY, url)?;
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(invalid(
                KEY,
                format!("`{}` must be http://HOST:PORT (no path, query or credentials)", redact(&url)),
            ));
        }
        let Some(up) = out.iter_mut().find(|u| u.name == name) else {
            return Err(invalid(KEY, format!("no upstream is named `{name}`")));
        };
        up.grpc_url = Some(url);
    }
    Ok(())
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
#[path = "config_tests.rs"]
mod tests;
