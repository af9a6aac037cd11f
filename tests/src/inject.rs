//! Helpers for the injector's integration tests: configs, dev keys, on-chain checks.

use crate::nodes::{DEV_KEYS, Node, parse_quantity};
use iotex_injector::config::{Mix, RunConfig, parse_key};
use serde_json::json;
use std::time::Duration;

/// The first `n` dev keys (funded on anvil and ganache).
pub fn dev_keys(n: usize) -> Vec<alloy_signer_local::PrivateKeySigner> {
    // The dev keys are valid constants; filter_map only keeps this total.
    DEV_KEYS.iter().take(n).filter_map(|k| parse_key("key", k).ok()).collect()
}

/// A constant-rate config against `url` with the first `accounts` dev keys, short timeouts for tests.
pub fn config(url: &str, accounts: usize, rate: f64, duration: Duration) -> anyhow::Result<RunConfig> {
    let mut c = RunConfig::new(url, dev_keys(accounts), rate, duration)?;
    c.confirm_timeout = Duration::from_secs(20);
    c.drain_timeout = Duration::from_secs(10);
    c.poll_interval = Duration::from_millis(100);
    Ok(c)
}

/// Sets the action mix.
pub fn with_mix(mut c: RunConfig, transfer: u32, execution: u32) -> RunConfig {
    c.mix = Mix { transfer, execution };
    c
}

/// `eth_getTransactionCount(addr, tag)`.
pub async fn tx_count(node: &Node, addr: &str, tag: &str) -> anyhow::Result<u64> {
    parse_quantity(&node.rpc("eth_getTransactionCount", json!([addr, tag])).await?)
}

/// The Counter contract's `total()` on a node.
pub async fn counter_total(node: &Node, contract: &str) -> anyhow::Result<u64> {
    let selector = &alloy_primitives::keccak256(b"total()")[..4];
    let data = format!("0x{}", alloy_primitives::hex::encode(selector));
    let v = node.rpc("eth_call", json!([{"to": contract, "data": data}, "latest"])).await?;
    let s = v.as_str().ok_or_else(|| anyhow::anyhow!("eth_call result {v}"))?;
    // A uint256 word; the count fits in its last 16 hex digits.
    Ok(u64::from_str_radix(&s[s.len().saturating_sub(16)..], 16)?)
}

/// Actions per account index for `n` scheduled over `accounts` (round-robin).
pub fn per_account(n: u64, accounts: usize, i: usize) -> u64 {
    (0..n).filter(|s| (*s % accounts as u64) as usize == i).count() as u64
}
