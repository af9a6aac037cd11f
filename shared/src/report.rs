//! The injector's JSON report: the schema the injector writes and tests, dashboards and CI read.
//!
//! The keys listed in the injector issue are a contract (`chain_id` … `accounts`); more may be added, none
//! renamed. Latencies are in milliseconds, measured from each action's *intended* send time.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
    /// How many samples.
    pub count: u64,
}

/// Counts for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    /// The endpoint URL.
    pub endpoint: String,
    /// Pool accounts bound to it.
    pub accounts: u64,
    /// Actions sent at least once.
    pub sent: u64,
    /// Actions the node accepted.
    pub accepted: u64,
    /// Final rejections by kind.
    pub rejected: BTreeMap<String, u64>,
    /// Accepted actions found in a block.
    pub included: u64,
    /// Included executions whose receipt has status 0.
    pub reverted: u64,
    /// Accepted, still in the pool at the end.
    pub pending_at_end: u64,
    /// Accepted, then neither in a block nor in the pool.
    pub dropped: u64,
    /// Intended send → answer.
    pub submit_latency_ms: Latency,
    /// Intended send → seen in a block.
    pub inclusion_latency_ms: Latency,
}

/// One pool account's nonces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountReport {
    /// `0x…` address.
    pub address: String,
    /// `io1…` address.
    pub io_address: String,
    /// Index of the endpoint it is bound to.
    pub endpoint: usize,
    /// Pending nonce at start.
    pub start_nonce: u64,
    /// Confirmed nonce at the end (`None` when not fetched).
    pub end_nonce: Option<u64>,
}

/// One `--fail-if` condition and how it came out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The condition as written.
    pub expr: String,
    /// The value compared.
    pub value: f64,
    /// True when it held (the run exits 3).
    pub breached: bool,
}

/// One of the equations every report must satisfy (see [`Report::equations`]), and how it came out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equation {
    /// The equation, in the report's key names (`scheduled = sent + not_sent + shed`).
    pub equation: String,
    /// The left side's value.
    pub left: u64,
    /// The right side's value.
    pub right: u64,
    /// True when both sides are equal.
    pub holds: bool,
}

/// One step of the rate profile (see [`Report::steps`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Offered rate at the step's start and end (equal for a step; a ramp changes within it).
    pub rate_from: f64,
    /// Offered rate at the step's end.
    pub rate_to: f64,
    /// Seconds into the run at which the step starts.
    pub start_s: f64,
    /// The step's length in seconds.
    pub duration_s: f64,
    /// Sends per second over the step.
    pub sent_rate: f64,
    /// Acceptances per second over the step: what the cluster took.
    pub achieved_rate: f64,
    /// Inclusions per second observed during the step.
    pub included_rate: f64,
    /// Submit latency of sends made during the step.
    pub submit_latency_ms: Latency,
    /// Inclusion latency (from the intended send time) of inclusions seen during the step.
    pub inclusion_latency_ms: Latency,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// EVM chain id the actions were signed for.
    pub chain_id: u64,
    /// Scheduling time in seconds (shorter than configured when interrupted).
    pub duration_s: f64,
    /// Mean offered rate (actions/s).
    pub offered_rate: f64,
    /// Accepted actions per second of scheduling time.
    pub achieved_rate: f64,
    /// Ticks the schedule emitted.
    pub scheduled: u64,
    /// Actions sent at least once.
    pub sent: u64,
    /// Actions a node accepted (a hash came back, or the action was found on chain or in the pool).
    pub accepted: u64,
    /// Ticks that found `--max-in-flight` (or their account's `--account-in-flight`) full at their intended time
    /// (sent late, counted here).
    pub late: u64,
    /// Final rejections by kind.
    pub rejected: BTreeMap<String, u64>,
    /// Accepted actions found in a block.
    pub included: u64,
    /// Included executions that reverted.
    pub reverted: u64,
    /// Accepted actions still pending at the end.
    pub pending_at_end: u64,
    /// Accepted actions that vanished.
    pub dropped: u64,
    /// Intended send → answer.
    pub submit_latency_ms: Latency,
    /// Intended send → seen in a block.
    pub inclusion_latency_ms: Latency,
    /// Per endpoint.
    pub per_endpoint: Vec<EndpointReport>,
    /// Pool accounts.
    pub accounts: u64,
    /// Extra: whether inclusion was tracked (`--no-confirm` makes it false).
    pub confirmed: bool,
    /// Extra: stopped by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// Extra: scheduled but never sent (cut by shutdown or drain deadline).
    pub not_sent: u64,
    /// Extra: late ticks given up because the backlog of late ticks was full.
    pub shed: u64,
    /// Extra: nonce-class rejections retried with a resynced nonce, by kind.
    pub retried: BTreeMap<String, u64>,
    /// Extra: zero-value self-transfers sent at the end to close nonce gaps left by failed actions.
    pub gap_fillers: u64,
    /// Extra: times an account's nonce was re-read from the node.
    pub nonce_resyncs: u64,
    /// Extra: |achieved − offered| / offered.
    pub rate_error: f64,
    /// Extra: mean over whole one-second intervals of |sent − offered| / offered (how evenly the rate was
    /// actually delivered, second by second; `rate_error` only compares totals).
    pub interval_rate_error: f64,
    /// Extra: (rejected + dropped) / scheduled.
    pub error_rate: f64,
    /// Extra: intended → actual send time.
    pub send_lag_ms: Latency,
    /// Extra: transaction type.
    pub tx_type: String,
    /// Extra: the first message seen for each rejection kind.
    pub sample_errors: BTreeMap<String, String>,
    /// Extra: per-account nonces.
    pub account_nonces: Vec<AccountReport>,
    /// Extra: `--fail-if` results.
    pub thresholds: Vec<ThresholdResult>,
    /// Extra: the equations that make the counts add up (every tick is sent, not sent or shed; every accepted
    /// action is included, still pending or dropped), checked at the end of every run. One that does not hold
    /// is printed as a warning, and fails a run that has `--fail-if`.
    #[serde(default)]
    pub equations: Vec<Equation>,
    /// Extra: the contract executions called, per endpoint (deployed at start unless `--contract`).
    pub contracts: Vec<Option<String>>,
    /// Extra: unix time the schedule started.
    pub started_at_unix_s: f64,
    /// Extra: what the included actions paid, read from their receipts (gas used × effective gas price).
    #[serde(default)]
    pub fee: Fee,
    /// One entry per profile segment (a `--steps` step; one for a constant rate or a ramp), so a capacity
    /// ramp reads as a table: offered vs achieved rate and latency per step. Counts and latencies are those
    /// observed during the step's seconds (an inclusion late in one step can land in the next).
    #[serde(default)]
    pub steps: Vec<StepReport>,
    /// Extra: the run this report belongs to (`--run-id`); every shard of one run has the same id.
    #[serde(default)]
    pub run_id: String,
    /// Extra: which shard of the run wrote this report (`--shard I/N`; `0/1` unsharded).
    #[serde(default)]
    pub shard: ShardInfo,
    /// Extra: the run's latency histograms, lossless, so reports of shards merge into exact percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<Histograms>,
    /// Extra, merged reports only: what was merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedFrom>,
}

/// The fee paid by the run's included actions. Each fee is gas used × effective gas price, both from the
/// action's receipt (IoTeX charges a transfer 10,000 gas, not Ethereum's 21,000, so nothing is assumed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fee {
    /// Included actions whose fee was read from a receipt.
    pub measured: u64,
    /// Included actions whose fee could not be read (a node without `eth_getBlockReceipts`, or a receipt
    /// without `gasUsed` / `effectiveGasPrice`): `measured + unmeasured = included`.
    pub unmeasured: u64,
    /// Sum of the measured fees in the chain's smallest unit (rau on IoTeX, wei on Ethereum), as a decimal
    /// string: it passes 2⁵³ (and can pass 2⁶⁴) on a long run, which a JSON number would round.
    pub total: String,
    /// The same in whole coins (IOTX, ETH: 10¹⁸ units), rounded, for reading.
    pub total_coins: f64,
    /// Median fee per action in Gwei (10⁹ units), from a histogram at 3 significant digits.
    pub p50_gwei: f64,
    /// 99th percentile fee per action in Gwei.
    pub p99_gwei: f64,
    /// Largest fee per action in Gwei.
    pub max_gwei: f64,
    /// Mean fee per action in Gwei (exact: `total / measured`).
    pub mean_gwei: f64,
}

/// A shard of a run: `index` of `count`, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard, `0..count`.
    pub index: u64,
    /// Shards in the run.
    pub count: u64,
}

impl Default for ShardInfo {
    fn default() -> Self {
        ShardInfo { index: 0, count: 1 }
    }
}

/// Every HdrHistogram of a run, each in HdrHistogram's V2 encoding (deflate-compressed, cookie
/// `0x1c849314`), base64 (standard alphabet, padded); values in microseconds, 1 µs to 1 h, 3 significant
/// digits. Adding histograms is exact, so merged percentiles equal those of one histogram of all samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Intended send → answer, whole run (the histogram behind `submit_latency_ms`).
    pub submit: String,
    /// Intended send → seen in a block (behind `inclusion_latency_ms`).
    pub inclusion: String,
    /// Intended → actual send (behind `send_lag_ms`).
    pub send_lag: String,
    /// Per endpoint, in `per_endpoint` order.
    pub per_endpoint: Vec<LatencyHistograms>,
    /// Per profile step, in `steps` order.
    pub steps: Vec<LatencyHistograms>,
    /// The run second by second (the histogram log's intervals, with their counts).
    pub intervals: Vec<IntervalHistograms>,
    /// Fee per included action in Gwei (behind `fee`): the same encoding, but values are Gwei from 1 to 10¹²
    /// (1,000 coins), 3 significant digits. Empty in reports written before fees were measured.
    #[serde(default)]
    pub fee: String,
}

/// Submit and inclusion histograms of one part of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistograms {
    /// Submit latency.
    pub submit: String,
    /// Inclusion latency.
    pub inclusion: String,
}

/// One interval (about a second) of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalHistograms {
    /// Seconds from the run's start (`started_at_unix_s`) to the interval's end.
    pub t: f64,
    /// The interval's length in seconds.
    pub secs: f64,
    /// Offered rate at its midpoint (actions/s).
    pub offered: f64,
    /// Actions first sent in it.
    pub sent: u64,
    /// Acceptances in it.
    pub accepted: u64,
    /// Inclusions seen in it.
    pub included: u64,
    /// Submit latencies answered in it.
    pub submit: String,
    /// Inclusion latencies seen in it.
    pub inclusion: String,
}

/// What a merged report (`iotex-injector merge`) was made from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergedFrom {
    /// Shards in the run.
    pub shard_count: u64,
    /// The shard indexes merged, ascending (all of `0..shard_count` unless `--allow-missing`).
    pub shards: Vec<u64>,
    /// Shard indexes whose reports were not given (empty unless `--allow-missing`).
    pub missing: Vec<u64>,
    /// Latest shard start − earliest (seconds): how far apart the shards' schedules began.
    pub start_skew_s: f64,
}
