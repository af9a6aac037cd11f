//! The command line: every flag of every subcommand, grouped by area, each also an `IOTEX_INJECTOR_…` env var
//! and (for `run`) a key in an optional TOML file.
//!
//! Values are typed here, at parse time (durations, amounts, addresses, the mix, non-zero counts), so a bad
//! value is refused by clap with the flag's name, and `--help` prints the real defaults: every default is
//! written once, in the `#[arg]` that declares it, never in help prose. Secrets (`--key`, `--fund-from`,
//! `--mnemonic`) stay strings until [`crate::run_config`] reads them, because clap echoes a refused value.
//!
//! Layering: defaults < TOML file (`--config`) < environment < command line, for every kind of value,
//! switches included: [`parse_cli`] uses the workspace's one rule, [`iotex_shared::layered`]. What the
//! values must satisfy *together* (one rate profile, one source of accounts) is checked once, in
//! [`crate::run_config`].

use crate::accounts::DEFAULT_DERIVATION_PATH;
use crate::amount::parse_amount;
use crate::error::ConfigError;
use crate::mix::Mix;
use crate::node::Api;
use crate::signer::TxType;
use alloy_primitives::{Address, U256};
use clap::{Args, Parser, Subcommand};
use iotex_shared::telemetry::LogFormat;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::num::{IntErrorKind, NonZeroU32, NonZeroU64, NonZeroUsize, ParseIntError};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The defaults a [`crate::run_config::RunConfig`] built in code ([`crate::run_config::RunConfig::new`])
/// shares with the flags, so the two cannot drift.
pub mod defaults {
    use std::num::NonZeroUsize;
    use std::time::Duration;

    /// `--max-in-flight`.
    pub const MAX_IN_FLIGHT: NonZeroUsize = match NonZeroUsize::new(1024) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    };
    /// `--account-in-flight`.
    pub const ACCOUNT_IN_FLIGHT: usize = 1;
    /// `--confirm-timeout`.
    pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
    /// `--drain-timeout`.
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// `--fee-refresh`: about a block on IoTeX (and anvil's 1 s blocks), so a rising base fee is followed
    /// block by block.
    pub const FEE_REFRESH: Duration = Duration::from_secs(1);
    /// `--request-timeout`.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// `--poll-interval`.
    pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
    /// Gas limit of a transfer when `--gas-limit` is absent (the intrinsic gas of a value transfer).
    pub const TRANSFER_GAS: u64 = 21_000;
    /// Gas limit of an execution when `--gas-limit` is absent (the bundled Counter's `bump` with headroom).
    pub const EXECUTION_GAS: u64 = 100_000;
}

/// A duration as flags, env vars and the file write it (`200ms`, `2s`, `1h30m`): read by
/// [`iotex_shared::duration::parse`] and shown by [`iotex_shared::duration::format`], so `--help` prints
/// a default the way an operator would type it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = iotex_shared::duration::DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        iotex_shared::duration::parse(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&iotex_shared::duration::format(self.0))
    }
}

/// A whole number that must not be zero; `zero` is the message when it is.
fn non_zero<N: FromStr<Err = ParseIntError>>(s: &str, zero: &str) -> Result<N, String> {
    s.trim().parse::<N>().map_err(|e| if *e.kind() == IntErrorKind::Zero { zero.to_owned() } else { e.to_string() })
}

/// An amount in rau (`1000`, `2gwei`, `1qev`, `0.5iotx`).
fn rau(s: &str) -> Result<U256, String> {
    parse_amount(s, "rau").map_err(|e| e.to_string())
}

/// An amount in IOTX unless a unit is written (`10` = 10 IOTX).
fn iotx(s: &str) -> Result<U256, String> {
    parse_amount(s, "iotx").map_err(|e| e.to_string())
}

/// A gas price in rau: above zero and within `u128` (what the signer takes).
fn gas_price(s: &str) -> Result<u128, String> {
    let v = rau(s)?;
    let v = u128::try_from(v).map_err(|_| "too large".to_owned())?;
    if v == 0 { Err("must be above zero".into()) } else { Ok(v) }
}

/// The mix's own message, without the `--mix:` prefix clap already adds.
fn mix(s: &str) -> Result<Mix, String> {
    Mix::parse(s).map_err(|e| match e {
        ConfigError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// `iotex-injector`: signed IoTeX actions at a configured rate.
#[derive(Debug, Parser)]
#[command(name = "iotex-injector", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send signed actions at a rate and report what the cluster did with them.
    Run(Box<RunArgs>),
    /// Generate new private keys and print them with both address forms.
    Keygen(KeygenArgs),
    /// Convert an address between the io1… and 0x… forms.
    Address(AddressArgs),
    /// Combine the reports of a sharded run (`run --shard I/N`) into one: exact summed counts, percentiles
    /// from the merged histograms each report carries, the merged interval log and plot.
    Merge(MergeArgs),
}

/// `merge` flags.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Write the merged JSON report here.
    #[arg(long, value_name = "REPORT")]
    pub out: PathBuf,
    /// Write the merged HdrHistogram interval log here (tags `submit`, `inclusion`, one-second intervals
    /// from the earliest shard's start).
    #[arg(long, value_name = "OUT")]
    pub histogram_log: Option<PathBuf>,
    /// Write latency and rate over time, redrawn from the merged intervals, as SVG here.
    #[arg(long, value_name = "OUT")]
    pub plot: Option<PathBuf>,
    /// Merge even when some shards' reports are missing (the merged report lists the shards it holds).
    #[arg(long)]
    pub allow_missing: bool,
    /// The shard reports (`run --report`), one per shard.
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,
}

/// `keygen` flags.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// How many keys.
    #[arg(long, short = 'n', default_value_t = 1, env = "IOTEX_INJECTOR_COUNT")]
    pub count: u32,
}

/// `address` arguments.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// An address as io1… or 0x….
    pub address: String,
}

/// `run` flags (typed, not yet checked together). See [`crate::run_config::RunConfig`] for the validated form.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// TOML file with any of these flags as keys (command line and env win over it).
    #[arg(long, env = "IOTEX_INJECTOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to send.
    #[command(flatten, next_help_heading = "Endpoints")]
    pub endpoints: EndpointArgs,
    /// How fast.
    #[command(flatten, next_help_heading = "Rate")]
    pub rate: RateArgs,
    /// Whose accounts.
    #[command(flatten, next_help_heading = "Accounts")]
    pub accounts: AccountArgs,
    /// What to send.
    #[command(flatten, next_help_heading = "Actions")]
    pub actions: ActionArgs,
    /// Waiting for inclusion and for the end.
    #[command(flatten, next_help_heading = "Confirmation and shutdown")]
    pub confirm: ConfirmArgs,
    /// What to write and show.
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
    /// One run over several processes.
    #[command(flatten, next_help_heading = "Sharding")]
    pub shard: ShardArgs,
}

/// Splitting one run over N processes (pods of an Indexed Job), merged afterwards with `merge`.
#[derive(Debug, Args, Clone)]
pub struct ShardArgs {
    /// Be shard I (0-based) of N: take pool accounts I, I+N, I+2N, … and ticks I, I+N, I+2N, … of the
    /// full-rate schedule (1/N of the rate, phase-offset so N shards together send the one-process schedule).
    #[arg(long, env = "IOTEX_INJECTOR_SHARD", value_name = "I/N", value_parser = |s: &str| s.parse::<crate::shard::Shard>())]
    pub shard: Option<crate::shard::Shard>,
    /// The run this process belongs to, recorded in the report; `merge` only combines reports of one run.
    /// When absent: the `JOB_NAME` environment variable (the chart sets it to the Job's name, which every
    /// shard of one Job shares), else `run-<unix seconds>-<8 random hex digits>`, logged at start.
    #[arg(long, env = "IOTEX_INJECTOR_RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,
}

/// Endpoints and how to talk to them.
#[derive(Debug, Args, Clone)]
pub struct EndpointArgs {
    /// Endpoint (repeatable; accounts are spread over endpoints): a web3 URL (`http://HOST:15014`) or a
    /// native gRPC address (`HOST:14014`), as --api says; a `grpc=` or `web3=` prefix sets the API of one
    /// endpoint, so one run can load both paths (`--endpoint grpc=HOST:14014 --endpoint web3=http://HOST:15014`).
    #[arg(long, env = "IOTEX_INJECTOR_ENDPOINT", value_delimiter = ',', value_name = "[API=]ADDR")]
    pub endpoint: Vec<String>,
    /// API of endpoints given without a prefix: web3 (`eth_sendRawTransaction`) or grpc (IoTeX's native
    /// `SendAction`, native Transfer and Execution actions).
    #[arg(long, env = "IOTEX_INJECTOR_API", value_enum, default_value_t = Api::Web3)]
    pub api: Api,
    /// Expected EVM chain id (4689 mainnet, 4690 testnet); when absent, the endpoints' eth_chainId is used.
    #[arg(long, env = "IOTEX_INJECTOR_CHAIN_ID", value_parser = |s: &str| non_zero::<NonZeroU64>(s, "0 is not a chain id"))]
    pub chain_id: Option<NonZeroU64>,
    /// Sent as `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "IOTEX_INJECTOR_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Per-request timeout.
    #[arg(long, env = "IOTEX_INJECTOR_REQUEST_TIMEOUT", default_value_t = HumanDuration(defaults::REQUEST_TIMEOUT))]
    pub request_timeout: HumanDuration,
}

/// The rate profile and the bounds on outstanding sends.
#[derive(Debug, Args, Clone)]
pub struct RateArgs {
    /// Actions per second (fractional allowed).
    #[arg(long, env = "IOTEX_INJECTOR_RATE")]
    pub rate: Option<f64>,
    /// How long to schedule actions (`30s`, `5m`, `2h`).
    #[arg(long, env = "IOTEX_INJECTOR_DURATION")]
    pub duration: Option<HumanDuration>,
    /// Ramp linearly from --rate to this rate over --duration.
    #[arg(long, env = "IOTEX_INJECTOR_RAMP_TO")]
    pub ramp_to: Option<f64>,
    /// Step profile: "100@30s,200@30s,400@1m" (instead of --rate/--duration).
    #[arg(long, env = "IOTEX_INJECTOR_STEPS")]
    pub steps: Option<String>,
    /// Bound on outstanding sends; a tick that finds it full is counted late.
    #[arg(long, env = "IOTEX_INJECTOR_MAX_IN_FLIGHT", default_value_t = defaults::MAX_IN_FLIGHT,
          value_parser = |s: &str| non_zero::<NonZeroUsize>(s, "must be at least 1"))]
    pub max_in_flight: NonZeroUsize,
    /// Bound on outstanding sends per account (0 = none). At 1, each account's actions go out in nonce
    /// order, so no node sees a gap that a reordering on the wire made; raise it (or use more accounts) when
    /// one account must go faster than one action per round trip.
    #[arg(long, env = "IOTEX_INJECTOR_ACCOUNT_IN_FLIGHT", default_value_t = defaults::ACCOUNT_IN_FLIGHT)]
    pub account_in_flight: usize,
}

/// Where the pool accounts come from, and their funding.
#[derive(Debug, Args, Clone)]
pub struct AccountArgs {
    /// BIP-39 mnemonic to derive accounts from.
    #[arg(long, env = "IOTEX_INJECTOR_MNEMONIC", hide_env_values = true)]
    pub mnemonic: Option<String>,
    /// How many accounts to derive (with --mnemonic) or create (with --fund-from).
    #[arg(long, env = "IOTEX_INJECTOR_ACCOUNTS", value_parser = |s: &str| non_zero::<NonZeroU32>(s, "must be at least 1"))]
    pub accounts: Option<NonZeroU32>,
    /// BIP-32 path prefix; account i is PREFIX/i. IoTeX wallets use m/44'/304'/0'/0.
    #[arg(long, env = "IOTEX_INJECTOR_DERIVATION_PATH", default_value = DEFAULT_DERIVATION_PATH)]
    pub derivation_path: String,
    /// Private key in hex (repeatable).
    #[arg(long, env = "IOTEX_INJECTOR_KEY", value_delimiter = ',', hide_env_values = true)]
    pub key: Vec<String>,
    /// File with one hex private key per line (`#` comments allowed).
    #[arg(long, env = "IOTEX_INJECTOR_KEYS_FILE", value_name = "FILE")]
    pub keys_file: Option<PathBuf>,
    /// Funded key that tops up every pool account before the run.
    #[arg(long, env = "IOTEX_INJECTOR_FUND_FROM", hide_env_values = true)]
    pub fund_from: Option<String>,
    /// Amount per account for --fund-from (`10` = 10 IOTX; units rau, gwei, qev, iotx).
    #[arg(long, env = "IOTEX_INJECTOR_FUND_AMOUNT", value_parser = iotx)]
    pub fund_amount: Option<U256>,
    /// Skip the pre-flight check that every account can pay for its share of the run at the worst case
    /// (and the top-up of short accounts from --fund-from), e.g. to load a node's insufficient-funds path.
    #[arg(long, env = "IOTEX_INJECTOR_NO_PREFLIGHT")]
    pub no_preflight: bool,
}

/// What each action is: kind, recipient, value, envelope, gas.
#[derive(Debug, Args, Clone)]
pub struct ActionArgs {
    /// Action mix by weight: "transfer=80,execution=20".
    #[arg(long, env = "IOTEX_INJECTOR_MIX", default_value = "transfer=100", value_parser = mix)]
    pub mix: Mix,
    /// Transfer recipient (io1… or 0x…); when absent, the next pool account.
    #[arg(long, env = "IOTEX_INJECTOR_TO", value_parser = crate::address::parse)]
    pub to: Option<Address>,
    /// Value of each transfer (rau unless a unit is written).
    #[arg(long, env = "IOTEX_INJECTOR_VALUE", default_value = "1", value_parser = rau)]
    pub value: U256,
    /// Contract to call for executions; when absent, the bundled Counter is deployed at start.
    #[arg(long, env = "IOTEX_INJECTOR_CONTRACT", value_parser = crate::address::parse)]
    pub contract: Option<Address>,
    /// Transaction envelope.
    #[arg(long, env = "IOTEX_INJECTOR_TX_TYPE", value_enum, default_value_t = TxType::Legacy)]
    pub tx_type: TxType,
    /// Gas price (rau unless a unit is written; `1qev` = 10^12 rau); when absent, eth_gasPrice.
    #[arg(long, env = "IOTEX_INJECTOR_GAS_PRICE", value_parser = gas_price)]
    pub gas_price: Option<u128>,
    /// The highest fee per gas an action is signed with (rau unless a unit is written): the legacy gas price
    /// or the type-2 cap; refreshed fees above it are held to it.
    #[arg(long, env = "IOTEX_INJECTOR_MAX_FEE", value_parser = gas_price)]
    pub max_fee: Option<u128>,
    /// How often the fees are re-read from the nodes while running (and at once after an underpriced
    /// refusal); not with --gas-price, which is fixed.
    #[arg(long, env = "IOTEX_INJECTOR_FEE_REFRESH", value_name = "DUR", default_value_t = HumanDuration(defaults::FEE_REFRESH))]
    pub fee_refresh: HumanDuration,
    /// Gas limit for every action; when absent, 21000 for transfers and 100000 for executions.
    #[arg(long, env = "IOTEX_INJECTOR_GAS_LIMIT", value_parser = |s: &str| non_zero::<NonZeroU64>(s, "must be above zero"))]
    pub gas_limit: Option<NonZeroU64>,
}

/// Inclusion tracking and the end of the run.
#[derive(Debug, Args, Clone)]
pub struct ConfirmArgs {
    /// Measure submission only; do not track actions to inclusion.
    #[arg(long, env = "IOTEX_INJECTOR_NO_CONFIRM")]
    pub no_confirm: bool,
    /// How long to wait for inclusion after the last send before reconciling.
    #[arg(long, env = "IOTEX_INJECTOR_CONFIRM_TIMEOUT", default_value_t = HumanDuration(defaults::CONFIRM_TIMEOUT))]
    pub confirm_timeout: HumanDuration,
    /// Deadline for in-flight sends when the schedule ends or a signal arrives.
    #[arg(long, env = "IOTEX_INJECTOR_DRAIN_TIMEOUT", default_value_t = HumanDuration(defaults::DRAIN_TIMEOUT))]
    pub drain_timeout: HumanDuration,
    /// How often to poll for new blocks when confirming.
    #[arg(long, env = "IOTEX_INJECTOR_POLL_INTERVAL", default_value_t = HumanDuration(defaults::POLL_INTERVAL))]
    pub poll_interval: HumanDuration,
}

/// Files, metrics, thresholds and what the terminal shows.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Write the JSON report here.
    #[arg(long, env = "IOTEX_INJECTOR_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write an HdrHistogram interval log here (tags `submit`, `inclusion`).
    #[arg(long, env = "IOTEX_INJECTOR_HISTOGRAM_LOG", value_name = "FILE")]
    pub histogram_log: Option<PathBuf>,
    /// Write latency and rate over time as SVG here.
    #[arg(long, env = "IOTEX_INJECTOR_PLOT", value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Serve Prometheus metrics on this address while running (e.g. 0.0.0.0:9464).
    #[arg(long, env = "IOTEX_INJECTOR_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Exit 3 when any holds: "inclusion_p99_ms>5000,error_rate>0.01".
    #[arg(long, env = "IOTEX_INJECTOR_FAIL_IF")]
    pub fail_if: Option<String>,
    /// Progress output: auto (bar on a TTY, log lines otherwise), bar, log, off.
    #[arg(long, env = "IOTEX_INJECTOR_PROGRESS", value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Log format: json or text (when absent, text on a TTY and json otherwise).
    #[arg(long, env = "IOTEX_INJECTOR_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A live line on a TTY, log lines otherwise.
    Auto,
    /// A live line.
    Bar,
    /// One log line per second.
    Log,
    /// Nothing.
    Off,
}

fn clap_error(e: clap::Error) -> ConfigError {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError::Help(e.render().to_string()),
        _ => ConfigError::Cli(e.render().to_string()),
    }
}

/// Parses a command line (`args[0]` is the program name), layering flags > env > `run --config FILE` >
/// defaults with [`iotex_shared::layered`] (file keys are the long flag names of `run`).
pub fn parse_cli<I, T>(args: I) -> Result<Cli, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    use iotex_shared::layered::{self, LayerError};
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let file = |path: PathBuf, reason: String| ConfigError::File { path: path.display().to_string(), reason };
    match layered::parse::<Cli, _, _>(args) {
        Ok(l) => Ok(l.value),
        Err(LayerError::Cli(e)) => Err(clap_error(e)),
        Err(LayerError::Read { path, reason } | LayerError::File { path, message: reason }) => Err(file(path, reason)),
        Err(LayerError::Key { path, key, message }) => Err(file(
            path,
            match message.strip_prefix("unknown key") {
                Some(rest) => format!("unknown key `{key}`{rest}"),
                None => format!("key `{key}`: {message}"),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_passes_clap_own_consistency_checks() {
        // Done once here so the fuzz build can turn them off in clap (fuzz/Cargo.toml), where they ran on
        // every parse of every input.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
