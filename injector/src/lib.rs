//! `iotex-injector`: signed IoTeX actions at a configured rate, with numbers an operator can trust.
//!
//! Layout (one concept per file):
//! - [`config`]: flags, env vars, TOML, validated once into [`config::RunConfig`].
//! - [`schedule`]: *when*: rate profiles (constant, ramp, steps) and the ticks they imply (open model).
//! - [`signer`]: legacy EIP-155 / EIP-1559 signing and encoding; [`address`]: `io1…` ⇄ `0x…`.
//! - [`nonce`]: one owner per account, resync on failure, no gaps left behind.
//! - [`send`]: the hot path (hyper); [`rpc`]: control calls (jsonrpsee).
//! - [`setup`]: chain-id check, gas price, funding, contract deployment.
//! - [`confirm`]: tracking to inclusion and end-of-run reconciliation.
//! - [`recorder`]: counts and HdrHistograms; [`metrics`]: every Prometheus metric.
//! - [`output`]: progress line, histogram log, plot; [`report`]: JSON report, summary, thresholds.
//! - [`mod@run`]: wires them together: `run(cfg, shutdown)`.

pub mod address;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod error;
pub mod metrics;
pub mod nonce;
pub mod output;
pub mod recorder;
pub mod report;
pub mod rpc;
pub mod run;
pub mod schedule;
pub mod send;
pub mod setup;
pub mod signer;
pub mod thresholds;

pub use run::{Outcome, run};
