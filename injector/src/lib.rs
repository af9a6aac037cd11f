//! `iotex-injector`: signed IoTeX actions at a configured rate, with numbers an operator can trust.
//!
//! Layout (one concept per file), in the order a run meets them:
//! - [`program`]: the whole command-line program as a function (`main_with`: parse → act → exit code).
//! - [`flags`]: every flag, env var and config-file key, grouped and typed at parse time; the layering.
//! - [`run_config`]: the checks across flags, validated once into [`run_config::RunConfig`].
//! - Domain values the flags name: [`mix`] (which kind of action a tick sends), [`amount`] (IOTX units),
//!   [`accounts`] (keys, key files, mnemonic derivation, funding), [`address`] (`io1…` ⇄ `0x…`),
//!   [`thresholds`] (`--fail-if`).
//! - [`mod@run`]: one run as named phases: connect, prepare, inject, drain, confirm, report.
//! - [`schedule`]: *when*: rate profiles (constant, ramp, steps) and the ticks they imply (open model);
//!   [`shard`]: one run split over N processes (`--shard I/N`): accounts and ticks modulo N, the run id.
//! - [`action`]: *how*, per tick: permit → nonce → sign → send → record, timed from the intended send time.
//! - [`signer`]: legacy EIP-155 / EIP-1559 signing and encoding; [`nonce`]: one owner per account, resync
//!   on failure, no gaps left behind.
//! - [`send`]: the hot path (hyper); [`rpc`]: control calls (jsonrpsee).
//! - [`node`]: an endpoint as web3 or native gRPC (`--api`); [`native`]: IoTeX's native actions over gRPC
//!   (hand-written protobuf in Go's byte order, signing, tonic client, block stream follower).
//! - [`setup`]: chain-id check, gas price, funding, contract deployment, gap filling.
//! - [`confirm`]: tracking to inclusion and end-of-run reconciliation.
//! - [`recorder`]: counts and HdrHistograms; [`metrics`]: every Prometheus metric.
//! - [`output`]: progress line, histogram log, plot; [`report`]: JSON report, summary, thresholds;
//!   [`histograms`]: the report's lossless HdrHistograms (encoded, and read back refusing hostile text).
//! - [`merge`]: `iotex-injector merge`: the reports of a sharded run into one, exactly.
//! - [`error`]: failure kinds and the typed errors (configuration, control calls, the run).

pub mod accounts;
pub mod action;
pub mod address;
pub mod amount;
pub mod confirm;
pub mod error;
pub mod fees;
pub mod flags;
pub mod histograms;
pub mod merge;
pub mod metrics;
pub mod mix;
pub mod native;
pub mod node;
pub mod nonce;
pub mod output;
pub mod plot;
pub mod preflight;
pub mod program;
pub mod recorder;
pub mod report;
pub mod rpc;
pub mod run;
pub mod run_config;
pub mod schedule;
pub mod send;
pub mod setup;
pub mod shard;
pub mod signer;
pub mod thresholds;

pub use run::{Outcome, run};
