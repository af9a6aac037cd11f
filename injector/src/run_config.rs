//! The validated configuration of a run ([`RunConfig`]) and the checks that make it from the typed flags.
//!
//! [`crate::flags`] has already typed each value on its own; what is left is what values must satisfy
//! together, one validator per flag group: endpoints are plain-http URLs, exactly one rate profile, exactly
//! one source of accounts (with its funding), the `--fail-if` conditions, and a shard's share of accounts
//! and ticks (`--shard`, [`RunConfig::into_shard`]). Nothing downstream re-checks.

use crate::accounts::{self, AccountSource, Funding, parse_key};
use crate::error::ConfigError;
use crate::flags::{AccountArgs, ActionArgs, EndpointArgs, ProgressMode, RateArgs, RunArgs, defaults};
use crate::mix::Mix;
use crate::node::{Api, split_endpoint};
use crate::schedule::{Profile, ProfileError};
use crate::shard::{RunIdSource, Shard};
use crate::signer::TxType;
use crate::thresholds::Threshold;
use alloy_primitives::{Address, U256};
use alloy_signer_local::PrivateKeySigner;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Endpoint URLs (web3) or `HOST:PORT` addresses (gRPC), without their `API=` prefix.
    pub endpoints: Vec<String>,
    /// The API of each endpoint (same length as `endpoints`; a missing entry means web3).
    pub apis: Vec<Api>,
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
    /// Check before the first tick that every account can pay for its share (`preflight.rs`).
    pub preflight: bool,
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
    /// Ceiling on the fee per gas (`--max-fee`).
    pub max_fee: Option<u128>,
    /// Fee re-read interval (`--fee-refresh`).
    pub fee_refresh: std::time::Duration,
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
    /// Which shard of the run this process is (`0/1` unsharded); `profile` and `keys` are already its share.
    pub shard: Shard,
    /// The run this process belongs to (all shards of one run share it).
    pub run_id: String,
    /// Where `run_id` came from.
    pub run_id_source: RunIdSource,
}

impl RunConfig {
    /// Starts a config for tests and embedding: one endpoint, the given keys, constant rate, the flags'
    /// defaults for everything else (progress off).
    pub fn new(
        endpoint: &str,
        keys: Vec<PrivateKeySigner>,
        rate: f64,
        duration: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(RunConfig {
            endpoints: vec![endpoint.to_owned()],
            apis: vec![Api::Web3],
            chain_id: None,
            profile: Profile::constant(rate, duration)?,
            max_in_flight: defaults::MAX_IN_FLIGHT.get(),
            account_in_flight: defaults::ACCOUNT_IN_FLIGHT,
            keys,
            account_source: AccountSource::Keys,
            fund: None,
            preflight: true,
            mix: Mix { transfer: 1, execution: 0 },
            to: None,
            value: U256::from(1u8),
            contract: None,
            tx_type: TxType::Legacy,
            gas_price: None,
            max_fee: None,
            fee_refresh: defaults::FEE_REFRESH,
            gas_limit: None,
            confirm: true,
            confirm_timeout: defaults::CONFIRM_TIMEOUT,
            drain_timeout: defaults::DRAIN_TIMEOUT,
            request_timeout: defaults::REQUEST_TIMEOUT,
            poll_interval: defaults::POLL_INTERVAL,
            report: None,
            histogram_log: None,
            plot: None,
            metrics_listen: None,
            auth_token: None,
            thresholds: Vec::new(),
            progress: ProgressMode::Off,
            shard: Shard::WHOLE,
            run_id: crate::shard::resolve_run_id(None, None).map(|(id, _)| id).unwrap_or_default(),
            run_id_source: RunIdSource::Random,
        })
    }

    /// Makes this config shard `shard` of itself: every `count`-th pool account and tick of the full
    /// schedule (see [`crate::shard`]). Refuses a shard left with no account or no tick.
    pub fn into_shard(mut self, shard: Shard) -> Result<Self, ConfigError> {
        if shard == Shard::WHOLE {
            return Ok(self);
        }
        let invalid = |reason: String| ConfigError::invalid("shard", reason);
        if self.fund.is_some() {
            return Err(invalid(format!(
                "--fund-from cannot be split over {} shards: every shard would fund from the same key and their \
                 nonces would collide; fund a mnemonic pool once, then give every shard --mnemonic with --accounts",
                shard.count
            )));
        }
        if (self.keys.len() as u64) < shard.count {
            return Err(invalid(format!(
                "{} pool accounts cannot be split over {} shards: give at least one account per shard \
                 (--accounts is the whole pool; shard I takes accounts I, I+N, …)",
                self.keys.len(),
                shard.count
            )));
        }
        self.keys = shard.slice(&self.keys);
        self.profile = self.profile.sharded(shard);
        if self.profile.total() == 0 {
            return Err(invalid(format!(
                "shard {shard} gets no tick of this profile: the whole run has fewer actions than shards"
            )));
        }
        self.shard = shard;
        Ok(self)
    }
}

impl RunConfig {
    /// The API of endpoint `i`.
    pub fn api(&self, i: usize) -> Api {
        self.apis.get(i).copied().unwrap_or_default()
    }
}

impl RunArgs {
    /// Validates the typed flags into a [`RunConfig`].
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let (endpoints, apis) = self.endpoints.validate()?;
        let profile = self.rate.profile()?;
        let (keys, account_source, fund) = self.accounts.validate()?;
        let ActionArgs { mix, to, value, contract, tx_type, gas_price, max_fee, fee_refresh, gas_limit } =
            self.actions.clone();
        let thresholds = match &self.output.fail_if {
            Some(s) => crate::thresholds::parse(s)?,
            None => Vec::new(),
        };
        let (c, o) = (&self.confirm, &self.output);
        let job_name = std::env::var(crate::shard::JOB_NAME_ENV).ok();
        let (run_id, run_id_source) = crate::shard::resolve_run_id(self.shard.run_id.as_deref(), job_name.as_deref())
            .map_err(|e| ConfigError::invalid("run-id", e))?;
        RunConfig {
            endpoints,
            apis,
            chain_id: self.endpoints.chain_id.map(|c| c.get()),
            profile,
            max_in_flight: self.rate.max_in_flight.get(),
            account_in_flight: self.rate.account_in_flight,
            keys,
            account_source,
            fund,
            preflight: !self.accounts.no_preflight,
            mix,
            to,
            value,
            contract,
            tx_type,
            gas_price,
            max_fee,
            fee_refresh: fee_refresh.0,
            gas_limit: gas_limit.map(|g| g.get()),
            confirm: !c.no_confirm,
            confirm_timeout: c.confirm_timeout.0,
            drain_timeout: c.drain_timeout.0,
            request_timeout: self.endpoints.request_timeout.0,
            poll_interval: c.poll_interval.0,
            report: o.report.clone(),
            histogram_log: o.histogram_log.clone(),
            plot: o.plot.clone(),
            metrics_listen: o.metrics_listen,
            auth_token: self.endpoints.auth_token.clone(),
            thresholds,
            progress: o.progress,
            shard: Shard::WHOLE,
            run_id,
            run_id_source,
        }
        .into_shard(self.shard.shard.unwrap_or_default())
    }
}

impl EndpointArgs {
    /// At least one endpoint; web3 ones are plain `http://` URLs with a host (the injector speaks no TLS),
    /// gRPC ones `HOST:PORT` (an `http://` in front is accepted). Returns the addresses without their
    /// `API=` prefix, and each one's API.
    fn validate(&self) -> Result<(Vec<String>, Vec<Api>), ConfigError> {
        let invalid = |reason: String| ConfigError::invalid("endpoint", reason);
        if self.endpoint.is_empty() {
            return Err(invalid("at least one endpoint is required, e.g. --endpoint http://127.0.0.1:15014".into()));
        }
        let (mut endpoints, mut apis) = (Vec::new(), Vec::new());
        for e in &self.endpoint {
            let (api, addr) = split_endpoint(e, self.api);
            match api {
                Api::Web3 => check_web3(addr).map_err(invalid)?,
                Api::Grpc => check_grpc(addr).map_err(invalid)?,
            }
            endpoints.push(addr.to_owned());
            apis.push(api);
        }
        Ok((endpoints, apis))
    }
}

fn check_web3(e: &str) -> Result<(), String> {
    let u = url::Url::parse(e).map_err(|err| format!("`{e}` is not a URL ({err})"))?;
    if u.scheme() == "https" {
        return Err(format!(
            "`{e}`: https is not supported; use the node's or gateway's plain http:// endpoint (port 15014)"
        ));
    }
    if u.scheme() != "http" || u.host_str().is_none() {
        return Err(format!("`{e}` must be an http:// URL with a host"));
    }
    Ok(())
}

fn check_grpc(e: &str) -> Result<(), String> {
    let hint = "a gRPC endpoint is HOST:PORT, e.g. grpc=127.0.0.1:14014";
    if e.starts_with("https://") {
        return Err(format!("`{e}`: TLS is not supported; {hint}"));
    }
    let hostport = e.strip_prefix("http://").unwrap_or(e);
    let u = url::Url::parse(&format!("http://{hostport}")).map_err(|err| format!("`{e}`: {err}; {hint}"))?;
    if u.host_str().is_none_or(str::is_empty) || u.port().is_none() || !matches!(u.path(), "" | "/") {
        return Err(format!("`{e}`: {hint}"));
    }
    Ok(())
}

impl RateArgs {
    /// Exactly one profile: `--steps`, or `--rate` with `--duration` (and optionally `--ramp-to`).
    fn profile(&self) -> Result<Profile, ConfigError> {
        let profile = match (&self.steps, self.rate, self.duration) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ConfigError::invalid("steps", "give either --steps or --rate with --duration, not both"));
            }
            (Some(steps), None, None) => {
                if self.ramp_to.is_some() {
                    return Err(ConfigError::invalid(
                        "ramp-to",
                        "--ramp-to goes with --rate and --duration, not --steps",
                    ));
                }
                Profile::steps(steps)?
            }
            (None, Some(rate), Some(d)) => match self.ramp_to {
                Some(to) => Profile::ramp(rate, to, d.0)?,
                None => Profile::constant(rate, d.0)?,
            },
            (None, Some(_), None) => {
                return Err(ConfigError::invalid("duration", "--rate needs --duration (e.g. --duration 60s)"));
            }
            (None, None, _) => {
                return Err(ConfigError::invalid("rate", "give --rate R --duration D, or --steps \"100@30s,200@30s\""));
            }
        };
        if profile.total() == 0 {
            return Err(ProfileError::Empty.into());
        }
        Ok(profile)
    }
}

impl AccountArgs {
    /// Exactly one source of accounts (keys, a mnemonic, or fresh keys with funding), and funding flags
    /// that come as a pair.
    fn validate(&self) -> Result<(Vec<PrivateKeySigner>, AccountSource, Option<Funding>), ConfigError> {
        let mut keys = Vec::new();
        for k in &self.key {
            keys.push(parse_key("key", k)?);
        }
        if let Some(path) = &self.keys_file {
            keys.extend(accounts::read_keys_file(path)?);
        }
        let fund = match (&self.fund_from, self.fund_amount) {
            (Some(k), Some(amount)) => Some(Funding { key: parse_key("fund-from", k)?, amount }),
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "fund-amount",
                    "--fund-from needs --fund-amount (e.g. 10 for 10 IOTX)",
                ));
            }
            (None, Some(_)) => return Err(ConfigError::invalid("fund-from", "--fund-amount needs --fund-from KEY")),
            (None, None) => None,
        };
        let accounts = self.accounts.map(|n| n.get());
        let (keys, source) = match (&self.mnemonic, keys.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::invalid("mnemonic", "give either --mnemonic or --key/--keys-file, not both"));
            }
            (Some(phrase), true) => {
                (accounts::derive(phrase, &self.derivation_path, accounts.unwrap_or(1))?, AccountSource::Mnemonic)
            }
            (None, false) => {
                if accounts.is_some_and(|n| n as usize != keys.len()) {
                    return Err(ConfigError::invalid(
                        "accounts",
                        "--accounts counts derived or fresh accounts; with keys, every key is used",
                    ));
                }
                (keys, AccountSource::Keys)
            }
            (None, true) => match (&fund, accounts) {
                (Some(_), Some(n)) => ((0..n).map(|_| PrivateKeySigner::random()).collect(), AccountSource::Fresh),
                _ => {
                    return Err(ConfigError::invalid(
                        "key",
                        "no accounts: give --key, --keys-file, --mnemonic with --accounts, or --fund-from with --accounts",
                    ));
                }
            },
        };
        Ok((keys, source, fund))
    }
}

#[cfg(test)]
#[path = "run_config_tests.rs"]
mod tests;
