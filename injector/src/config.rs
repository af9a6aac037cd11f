//! Configuration: clap flags, each also an `IOTEX_INJECTOR_…` env var and a key in an optional TOML file.
//!
//! Precedence: defaults < TOML file (`--config`) < environment < command line. TOML keys are the long flag
//! names (`max-in-flight` or `max_in_flight`); lists are arrays (`endpoint = ["http://…"]`); flags are
//! booleans (`no-confirm = true`). An unknown key is refused. Everything is validated once, here, into
//! [`RunConfig`]; nothing downstream re-checks.

use crate::schedule::{Profile, ProfileError};
use crate::signer::TxType;
use crate::thresholds::{Threshold, ThresholdError};
use alloy_primitives::{Address, U256};
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource};
use iotex_shared::telemetry::LogFormat;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The ethereum BIP-44 prefix; account `i` is `{prefix}/{i}`. IoTeX wallets use `m/44'/304'/0'/0`.
pub const DEFAULT_DERIVATION_PATH: &str = "m/44'/60'/0'/0";

/// Invalid configuration, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// clap refused the command line (its message is already formatted).
    #[error("{0}")]
    Cli(String),
    /// `--help` or `--version`: print the text and exit 0.
    #[error("{0}")]
    Help(String),
    /// The TOML file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A flag value is invalid.
    #[error("--{flag}: {reason}")]
    Invalid {
        /// The flag (long name).
        flag: &'static str,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The rate profile is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A `--fail-if` expression is invalid.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
}

impl ConfigError {
    /// A stable label.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigError::Cli(_) => "cli",
            ConfigError::Help(_) => "help",
            ConfigError::File { .. } => "config_file",
            ConfigError::Invalid { .. } => "invalid_flag",
            ConfigError::Profile(_) => "profile",
            ConfigError::Threshold(_) => "threshold",
        }
    }
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { flag, reason: reason.into() }
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

/// `run` flags (raw, as typed). See [`RunConfig`] for the validated form.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// TOML file with any of these flags as keys (command line and env win over it).
    #[arg(long, env = "IOTEX_INJECTOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// JSON-RPC endpoint (repeatable; accounts are spread over endpoints).
    #[arg(long, env = "IOTEX_INJECTOR_ENDPOINT", value_delimiter = ',', value_name = "URL")]
    pub endpoint: Vec<String>,
    /// Expected EVM chain id (4689 mainnet, 4690 testnet); default: ask eth_chainId.
    #[arg(long, env = "IOTEX_INJECTOR_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Actions per second (fractional allowed).
    #[arg(long, env = "IOTEX_INJECTOR_RATE")]
    pub rate: Option<f64>,
    /// How long to schedule actions (`30s`, `5m`, `2h`).
    #[arg(long, env = "IOTEX_INJECTOR_DURATION")]
    pub duration: Option<String>,
    /// Ramp linearly from --rate to this rate over --duration.
    #[arg(long, env = "IOTEX_INJECTOR_RAMP_TO")]
    pub ramp_to: Option<f64>,
    /// Step profile: "100@30s,200@30s,400@1m" (instead of --rate/--duration).
    #[arg(long, env = "IOTEX_INJECTOR_STEPS")]
    pub steps: Option<String>,
    /// Bound on outstanding sends; a tick that finds it full is counted late.
    #[arg(long, env = "IOTEX_INJECTOR_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Bound on outstanding sends per account (0 = none). The default 1 sends each account's actions in
    /// nonce order, so no node sees a gap that a reordering on the wire made; raise it (or use more accounts)
    /// when one account must go faster than one action per round trip.
    #[arg(long, env = "IOTEX_INJECTOR_ACCOUNT_IN_FLIGHT", default_value_t = 1)]
    pub account_in_flight: usize,
    /// BIP-39 mnemonic to derive accounts from.
    #[arg(long, env = "IOTEX_INJECTOR_MNEMONIC", hide_env_values = true)]
    pub mnemonic: Option<String>,
    /// How many accounts to derive (with --mnemonic) or create (with --fund-from).
    #[arg(long, env = "IOTEX_INJECTOR_ACCOUNTS")]
    pub accounts: Option<u32>,
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
    #[arg(long, env = "IOTEX_INJECTOR_FUND_AMOUNT")]
    pub fund_amount: Option<String>,
    /// Action mix by weight: "transfer=80,execution=20".
    #[arg(long, env = "IOTEX_INJECTOR_MIX", default_value = "transfer=100")]
    pub mix: String,
    /// Transfer recipient (io1… or 0x…); default: the next pool account.
    #[arg(long, env = "IOTEX_INJECTOR_TO")]
    pub to: Option<String>,
    /// Value of each transfer (default unit rau).
    #[arg(long, env = "IOTEX_INJECTOR_VALUE", default_value = "1")]
    pub value: String,
    /// Contract to call for executions; default: deploy the bundled Counter at start.
    #[arg(long, env = "IOTEX_INJECTOR_CONTRACT")]
    pub contract: Option<String>,
    /// Transaction envelope.
    #[arg(long, env = "IOTEX_INJECTOR_TX_TYPE", value_enum, default_value = "legacy")]
    pub tx_type: TxType,
    /// Gas price (default unit rau; `1qev` = 10^12 rau); default: eth_gasPrice.
    #[arg(long, env = "IOTEX_INJECTOR_GAS_PRICE")]
    pub gas_price: Option<String>,
    /// Gas limit for every action; default: 21000 for transfers, 100000 for executions.
    #[arg(long, env = "IOTEX_INJECTOR_GAS_LIMIT")]
    pub gas_limit: Option<u64>,
    /// Measure submission only; do not track actions to inclusion.
    #[arg(long, env = "IOTEX_INJECTOR_NO_CONFIRM")]
    pub no_confirm: bool,
    /// How long to wait for inclusion after the last send before reconciling.
    #[arg(long, env = "IOTEX_INJECTOR_CONFIRM_TIMEOUT", default_value = "30s")]
    pub confirm_timeout: String,
    /// Deadline for in-flight sends when the schedule ends or a signal arrives.
    #[arg(long, env = "IOTEX_INJECTOR_DRAIN_TIMEOUT", default_value = "10s")]
    pub drain_timeout: String,
    /// Per-request timeout.
    #[arg(long, env = "IOTEX_INJECTOR_REQUEST_TIMEOUT", default_value = "10s")]
    pub request_timeout: String,
    /// How often to poll for new blocks when confirming.
    #[arg(long, env = "IOTEX_INJECTOR_POLL_INTERVAL", default_value = "200ms")]
    pub poll_interval: String,
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
    /// Sent as `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "IOTEX_INJECTOR_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Exit 3 when any holds: "inclusion_p99_ms>5000,error_rate>0.01".
    #[arg(long, env = "IOTEX_INJECTOR_FAIL_IF")]
    pub fail_if: Option<String>,
    /// Progress output: auto (bar on a TTY, log lines otherwise), bar, log, off.
    #[arg(long, env = "IOTEX_INJECTOR_PROGRESS", value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Log format: json or text (default: text on a TTY, json otherwise).
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

/// The action mix by weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of transfers.
    pub transfer: u32,
    /// Weight of executions.
    pub execution: u32,
}

/// One kind of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A value transfer.
    Transfer,
    /// A contract call.
    Execution,
}

impl Mix {
    /// Parses "transfer=80,execution=20".
    pub fn parse(s: &str) -> Result<Mix, ConfigError> {
        let mut mix = Mix { transfer: 0, execution: 0 };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = part.split_once('=').ok_or_else(|| {
                invalid("mix", format!("`{part}` is not NAME=WEIGHT; write \"transfer=80,execution=20\""))
            })?;
            let w: u32 = w.trim().parse().map_err(|_| invalid("mix", format!("weight `{w}` is not a whole number")))?;
            match name.trim() {
                "transfer" => mix.transfer = w,
                "execution" => mix.execution = w,
                other => return Err(invalid("mix", format!("unknown action `{other}`; use transfer and execution"))),
            }
        }
        if mix.transfer == 0 && mix.execution == 0 {
            return Err(invalid("mix", "all weights are zero"));
        }
        Ok(mix)
    }

    /// The kind of tick `seq`: executions spread evenly among transfers (Bresenham), deterministic.
    pub fn pick(&self, seq: u64) -> ActionKind {
        let total = u64::from(self.transfer) + u64::from(self.execution);
        let e = u64::from(self.execution);
        let s = seq % total;
        if (s + 1) * e / total > s * e / total { ActionKind::Execution } else { ActionKind::Transfer }
    }
}

/// Parses an amount with an optional unit (`rau`/`wei`, `gwei`, `qev`, `jing`, `iotx`/`eth`); decimals allowed.
pub fn parse_amount(s: &str, default_unit: &str) -> Result<U256, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let unit = if unit.is_empty() { default_unit } else { unit };
    let exp: usize = match unit {
        "rau" | "wei" => 0,
        "gwei" => 9,
        "qev" => 12,
        "jing" => 15,
        "iotx" | "eth" | "ether" => 18,
        other => return Err(format!("unknown unit `{other}` in `{s}`; use rau, gwei, qev, jing or iotx")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits_ok = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits_ok(int) || !digits_ok(frac) {
        return Err(format!("`{s}` is not an amount; write e.g. `10`, `0.5iotx`, `1000rau`"));
    }
    if frac.len() > exp {
        return Err(format!("`{s}` has more decimals than the unit allows"));
    }
    let mut digits = String::from(int);
    digits.push_str(frac);
    digits.extend(std::iter::repeat_n('0', exp - frac.len()));
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(U256::ZERO);
    }
    U256::from_str_radix(digits, 10).map_err(|_| format!("`{s}` is too large"))
}

/// Where the pool accounts come from.
#[derive(Debug, Clone)]
pub enum AccountSource {
    /// Derived from a mnemonic.
    Mnemonic,
    /// Given keys.
    Keys,
    /// Fresh random keys (funded by --fund-from).
    Fresh,
}

/// Top-up before the run.
#[derive(Debug, Clone)]
pub struct Funding {
    /// The funded key.
    pub key: PrivateKeySigner,
    /// Rau per account.
    pub amount: U256,
}

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Endpoint URLs.
    pub endpoints: Vec<String>,
    /// Expected chain id, if given.
    pub chain_id: Option<u64>,
    /// The rate profile.
    pub profile: Profile,
    /// Bound on outstanding sends.
    pub max_in_flight: usize,
    /// Bound on outstanding sends per account (0 = none).
    pub account_in_flight: usize,
    /// Pool account keys.
    pub keys: Vec<PrivateKeySigner>,
    /// Where they came from.
    pub account_source: AccountSource,
    /// Optional funding.
    pub fund: Option<Funding>,
    /// Action mix.
    pub mix: Mix,
    /// Fixed transfer recipient.
    pub to: Option<Address>,
    /// Transfer value (rau).
    pub value: U256,
    /// Contract for executions (else deployed).
    pub contract: Option<Address>,
    /// Envelope.
    pub tx_type: TxType,
    /// Fixed gas price (rau).
    pub gas_price: Option<u128>,
    /// Fixed gas limit.
    pub gas_limit: Option<u64>,
    /// Track to inclusion.
    pub confirm: bool,
    /// Wait for inclusion after the last send.
    pub confirm_timeout: Duration,
    /// Deadline for in-flight sends at the end.
    pub drain_timeout: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Block poll interval.
    pub poll_interval: Duration,
    /// JSON report path.
    pub report: Option<PathBuf>,
    /// HdrHistogram log path.
    pub histogram_log: Option<PathBuf>,
    /// SVG plot path.
    pub plot: Option<PathBuf>,
    /// Metrics address.
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token.
    pub auth_token: Option<String>,
    /// Exit-3 thresholds.
    pub thresholds: Vec<Threshold>,
    /// Progress output.
    pub progress: ProgressMode,
}

impl RunConfig {
    /// Starts a config for tests and embedding: one endpoint, the given keys, constant rate.
    pub fn new(
        endpoint: &str,
        keys: Vec<PrivateKeySigner>,
        rate: f64,
        duration: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(RunConfig {
            endpoints: vec![endpoint.to_owned()],
            chain_id: None,
            profile: Profile::constant(rate, duration)?,
            max_in_flight: 1024,
            account_in_flight: 1,
            keys,
            account_source: AccountSource::Keys,
            fund: None,
            mix: Mix { transfer: 1, execution: 0 },
            to: None,
            value: U256::from(1u8),
            contract: None,
            tx_type: TxType::Legacy,
            gas_price: None,
            gas_limit: None,
            confirm: true,
            confirm_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            report: None,
            histogram_log: None,
            plot: None,
            metrics_listen: None,
            auth_token: None,
            thresholds: Vec::new(),
            progress: ProgressMode::Off,
        })
    }
}

fn duration(flag: &'static str, s: &str) -> Result<Duration, ConfigError> {
    iotex_shared::duration::parse(s).map_err(|e| invalid(flag, e.to_string()))
}

/// Parses a hex private key (with or without 0x), never echoing it in the error.
pub fn parse_key(flag: &'static str, s: &str) -> Result<PrivateKeySigner, ConfigError> {
    let t = s.trim();
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(flag, format!("a private key is 64 hex digits (got {} characters)", hex.len())));
    }
    hex.parse::<PrivateKeySigner>()
        .map_err(|_| invalid(flag, "not a valid secp256k1 private key (zero or ≥ the curve order)"))
}

fn derive(phrase: &str, path: &str, count: u32) -> Result<Vec<PrivateKeySigner>, ConfigError> {
    let words = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    let path = path.trim().trim_end_matches('/');
    if !path.starts_with("m/") && path != "m" {
        return Err(invalid(
            "derivation-path",
            format!("`{path}` must start with m/ (e.g. {DEFAULT_DERIVATION_PATH})"),
        ));
    }
    let builder = MnemonicBuilder::<English>::default()
        .phrase(words)
        .derivation_path(format!("{path}/0"))
        .map_err(|e| invalid("derivation-path", format!("`{path}`: {e}")))?;
    let parent = builder
        .build_parent_key()
        .map_err(|e| invalid("mnemonic", format!("not a valid BIP-39 English mnemonic ({e})")))?;
    (0..count)
        .map(|i| parent.child(i).map(|k| k.signer()).map_err(|e| invalid("derivation-path", e.to_string())))
        .collect()
}

impl RunArgs {
    /// Validates raw flags into a [`RunConfig`].
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        if self.endpoint.is_empty() {
            return Err(invalid(
                "endpoint",
                "at least one endpoint is required, e.g. --endpoint http://127.0.0.1:15014",
            ));
        }
        let mut endpoints = Vec::new();
        for e in &self.endpoint {
            let u =
                url::Url::parse(e.trim()).map_err(|err| invalid("endpoint", format!("`{e}` is not a URL ({err})")))?;
            if u.scheme() == "https" {
                return Err(invalid(
                    "endpoint",
                    format!(
                        "`{e}`: https is not supported; use the node's or gateway's plain http:// endpoint (port 15014)"
                    ),
                ));
            }
            if u.scheme() != "http" || u.host_str().is_none() {
                return Err(invalid("endpoint", format!("`{e}` must be an http:// URL with a host")));
            }
            endpoints.push(e.trim().to_owned());
        }
        if let Some(0) = self.chain_id {
            return Err(invalid("chain-id", "0 is not a chain id"));
        }
        let profile = match (&self.steps, self.rate, &self.duration) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(invalid("steps", "give either --steps or --rate with --duration, not both"));
            }
            (Some(steps), None, None) => {
                if self.ramp_to.is_some() {
                    return Err(invalid("ramp-to", "--ramp-to goes with --rate and --duration, not --steps"));
                }
                Profile::steps(steps)?
            }
            (None, Some(rate), Some(d)) => {
                let d = duration("duration", d)?;
                match self.ramp_to {
                    Some(to) => Profile::ramp(rate, to, d)?,
                    None => Profile::constant(rate, d)?,
                }
            }
            (None, Some(_), None) => return Err(invalid("duration", "--rate needs --duration (e.g. --duration 60s)")),
            (None, None, _) => {
                return Err(invalid("rate", "give --rate R --duration D, or --steps \"100@30s,200@30s\""));
            }
        };
        if profile.total() == 0 {
            return Err(ProfileError::Empty.into());
        }
        if self.max_in_flight == 0 {
            return Err(invalid("max-in-flight", "must be at least 1"));
        }

        let mut keys = Vec::new();
        for k in &self.key {
            keys.push(parse_key("key", k)?);
        }
        if let Some(path) = &self.keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("keys-file", format!("cannot read {}: {e}", path.display())))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                keys.push(
                    parse_key("keys-file", line).map_err(|e| invalid("keys-file", format!("line {}: {e}", i + 1)))?,
                );
            }
        }
        let fund = match (&self.fund_from, &self.fund_amount) {
            (Some(k), Some(a)) => Some(Funding {
                key: parse_key("fund-from", k)?,
                amount: parse_amount(a, "iotx").map_err(|e| invalid("fund-amount", e))?,
            }),
            (Some(_), None) => {
                return Err(invalid("fund-amount", "--fund-from needs --fund-amount (e.g. 10 for 10 IOTX)"));
            }
            (None, Some(_)) => return Err(invalid("fund-from", "--fund-amount needs --fund-from KEY")),
            (None, None) => None,
        };
        let (keys, account_source) = match (&self.mnemonic, keys.is_empty()) {
            (Some(_), false) => {
                return Err(invalid("mnemonic", "give either --mnemonic or --key/--keys-file, not both"));
            }
            (Some(phrase), true) => {
                let n = self.accounts.unwrap_or(1);
                if n == 0 {
                    return Err(invalid("accounts", "must be at least 1"));
                }
                (derive(phrase, &self.derivation_path, n)?, AccountSource::Mnemonic)
            }
            (None, false) => {
                if self.accounts.is_some_and(|n| n as usize != keys.len()) {
                    return Err(invalid(
                        "accounts",
                        "--accounts counts derived or fresh accounts; with keys, every key is used",
                    ));
                }
                (keys, AccountSource::Keys)
            }
            (None, true) => match (&fund, self.accounts) {
                (Some(_), Some(n)) if n > 0 => {
                    ((0..n).map(|_| PrivateKeySigner::random()).collect(), AccountSource::Fresh)
                }
                _ => {
                    return Err(invalid(
                        "key",
                        "no accounts: give --key, --keys-file, --mnemonic with --accounts, or --fund-from with --accounts",
                    ));
                }
            },
        };
        let mix = Mix::parse(&self.mix)?;
        let to = self.to.as_deref().map(crate::address::parse).transpose().map_err(|e| invalid("to", e.to_string()))?;
        let contract = self
            .contract
            .as_deref()
            .map(crate::address::parse)
            .transpose()
            .map_err(|e| invalid("contract", e.to_string()))?;
        let value = parse_amount(&self.value, "rau").map_err(|e| invalid("value", e))?;
        let gas_price = self
            .gas_price
            .as_deref()
            .map(|g| {
                parse_amount(g, "rau")
                    .map_err(|e| invalid("gas-price", e))
                    .and_then(|v| u128::try_from(v).map_err(|_| invalid("gas-price", "too large")))
            })
            .transpose()?;
        if gas_price == Some(0) {
            return Err(invalid("gas-price", "must be above zero"));
        }
        if self.gas_limit == Some(0) {
            return Err(invalid("gas-limit", "must be above zero"));
        }
        let thresholds = match &self.fail_if {
            Some(s) => crate::thresholds::parse(s)?,
            None => Vec::new(),
        };
        Ok(RunConfig {
            endpoints,
            chain_id: self.chain_id,
            profile,
            max_in_flight: self.max_in_flight,
            account_in_flight: self.account_in_flight,
            keys,
            account_source,
            fund,
            mix,
            to,
            value,
            contract,
            tx_type: self.tx_type,
            gas_price,
            gas_limit: self.gas_limit,
            confirm: !self.no_confirm,
            confirm_timeout: duration("confirm-timeout", &self.confirm_timeout)?,
            drain_timeout: duration("drain-timeout", &self.drain_timeout)?,
            request_timeout: duration("request-timeout", &self.request_timeout)?,
            poll_interval: duration("poll-interval", &self.poll_interval)?,
            report: self.report.clone(),
            histogram_log: self.histogram_log.clone(),
            plot: self.plot.clone(),
            metrics_listen: self.metrics_listen,
            auth_token: self.auth_token.clone(),
            thresholds,
            progress: self.progress,
        })
    }
}

fn clap_error(e: clap::Error) -> ConfigError {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError::Help(e.render().to_string()),
        _ => ConfigError::Cli(e.render().to_string()),
    }
}

fn toml_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a command line (`args[0]` is the program name), merging `run --config FILE` under env and flags.
pub fn parse_cli<I, T>(args: I) -> Result<Cli, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cmd = Cli::command();
    let matches = cmd.clone().try_get_matches_from(&args).map_err(clap_error)?;
    let Some(("run", sub)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches).map_err(|e| ConfigError::Cli(e.render().to_string()));
    };
    let Some(path) = sub.get_one::<PathBuf>("config").cloned() else {
        return Cli::from_arg_matches(&matches).map_err(|e| ConfigError::Cli(e.render().to_string()));
    };
    let file_err = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(&path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| file_err(e.to_string()))?;
    let run_cmd = cmd.find_subcommand("run").ok_or_else(|| file_err("no run command".into()))?;
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg =
            run_cmd.get_arguments().find(|a| a.get_long() == Some(long.as_str()) && long != "config").ok_or_else(
                || file_err(format!("unknown key `{key}`; keys are the long flag names of `run` (see --help)")),
            )?;
        let id = arg.get_id().as_str();
        if matches!(sub.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let flag = OsString::from(format!("--{long}"));
        let is_switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        match value {
            toml::Value::Boolean(b) if is_switch => {
                if *b {
                    args.push(flag);
                }
            }
            toml::Value::Array(items) => {
                for item in items {
                    let s = toml_scalar(item).ok_or_else(|| file_err(format!("`{key}` must hold plain values")))?;
                    args.push(flag.clone());
                    args.push(s.into());
                }
            }
            other => {
                if is_switch {
                    return Err(file_err(format!("`{key}` is a switch: write `{key} = true` or `false`")));
                }
                let s = toml_scalar(other).ok_or_else(|| file_err(format!("`{key}` must be a plain value")))?;
                args.push(flag);
                args.push(s.into());
            }
        }
    }
    Cli::try_parse_from(&args).map_err(clap_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn run_args(extra: &[&str]) -> Result<RunConfig, ConfigError> {
        let mut args = vec!["iotex-injector", "run", "--endpoint", "http://127.0.0.1:1"];
        args.extend_from_slice(extra);
        match parse_cli(args)?.command {
            Command::Run(r) => r.validate(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn amounts_with_units() {
        assert_eq!(parse_amount("10", "iotx").unwrap(), U256::from(10u64) * U256::from(10u64).pow(U256::from(18)));
        assert_eq!(parse_amount("0.5iotx", "rau").unwrap(), U256::from(500_000_000_000_000_000u64));
        assert_eq!(parse_amount("1qev", "rau").unwrap(), U256::from(1_000_000_000_000u64));
        assert_eq!(parse_amount("2 gwei", "rau").unwrap(), U256::from(2_000_000_000u64));
        for bad in ["", "x", "1.5rau", "1parsec", "-1", "1.2.3"] {
            assert!(parse_amount(bad, "rau").is_err(), "{bad}");
        }
    }

    #[test]
    fn mix_parses_and_interleaves() {
        let m = Mix::parse("transfer=80,execution=20").unwrap();
        let execs = (0..100).filter(|s| m.pick(*s) == ActionKind::Execution).count();
        assert_eq!(execs, 20);
        // Spread out, not bunched: never two executions in a row at 20 %.
        assert!((0..99).all(|s| !(m.pick(s) == ActionKind::Execution && m.pick(s + 1) == ActionKind::Execution)));
        assert!(Mix::parse("transfer=0").is_err());
        assert!(Mix::parse("deploy=1").unwrap_err().to_string().contains("unknown action"));
        assert!(Mix::parse("transfer").is_err());
    }

    #[test]
    fn a_minimal_run_validates() {
        let c = run_args(&["--key", KEY, "--rate", "50", "--duration", "2s"]).unwrap();
        assert_eq!(c.profile.total(), 100);
        assert_eq!(c.keys.len(), 1);
        assert!(c.confirm);
    }

    #[test]
    fn malformed_flags_are_refused_clearly() {
        let cases: &[(&[&str], &str)] = &[
            (&["--key", KEY, "--rate", "x", "--duration", "2s"], "invalid value"),
            (&["--key", KEY, "--rate", "5"], "--duration"),
            (&["--key", KEY, "--rate", "5", "--duration", "5"], "write it like"),
            (&["--key", KEY, "--steps", "100@1s,oops"], "RATE@DURATION"),
            (&["--key", KEY, "--steps", "100@1s", "--rate", "5"], "not both"),
            (&["--key", "0x1234", "--rate", "5", "--duration", "1s"], "64 hex digits"),
            (&["--key", &"0".repeat(64), "--rate", "5", "--duration", "1s"], "not a valid secp256k1"),
            (
                &["--mnemonic", "not a real mnemonic at all", "--accounts", "2", "--rate", "5", "--duration", "1s"],
                "BIP-39",
            ),
            (&["--rate", "5", "--duration", "1s"], "no accounts"),
            (&["--key", KEY, "--rate", "5", "--duration", "1s", "--to", "io1bad"], "--to"),
            (&["--key", KEY, "--rate", "5", "--duration", "1s", "--fail-if", "p99>"], "fail-if"),
            (&["--key", KEY, "--rate", "5", "--duration", "1s", "--fund-from", KEY], "--fund-amount"),
            (&["--key", KEY, "--rate", "5", "--duration", "1s", "--endpoint", "https://x:1"], "https is not supported"),
            (
                &[
                    "--mnemonic",
                    "test test test test test test test test test test test junk",
                    "--derivation-path",
                    "44/60",
                    "--rate",
                    "5",
                    "--duration",
                    "1s",
                ],
                "must start with m/",
            ),
        ];
        for (args, want) in cases {
            let e = run_args(args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
            assert!(!e.contains(&KEY[2..]), "a key leaked into an error: {e}");
        }
    }

    #[test]
    fn mnemonic_derives_the_dev_accounts() {
        let c = run_args(&[
            "--mnemonic",
            "test test test  test test test test test test test test junk",
            "--accounts",
            "2",
            "--rate",
            "1",
            "--duration",
            "1s",
        ])
        .unwrap();
        assert_eq!(c.keys[0].address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert_eq!(c.keys[1].address().to_string(), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    }

    #[test]
    fn toml_fills_what_flags_do_not_set_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inj.toml");
        std::fs::write(
            &path,
            format!("key = [\"{KEY}\"]\nrate = 7.5\nduration = \"2s\"\nno_confirm = true\nmax-in-flight = 9\nmix = \"transfer=1\"\n"),
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = run_args(&["--config", p, "--max-in-flight", "3"]).unwrap();
        assert_eq!(c.profile.total(), 15);
        assert!(!c.confirm);
        assert_eq!(c.max_in_flight, 3, "the command line wins over the file");
        std::fs::write(&path, "rate = 1\nbogus = 2\n").unwrap();
        let e = run_args(&["--config", p]).unwrap_err().to_string();
        assert!(e.contains("unknown key `bogus`"), "{e}");
    }
}
