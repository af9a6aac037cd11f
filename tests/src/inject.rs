//! Helpers for the injector's integration tests: configs, dev keys, on-chain checks.

use crate::http::RawClient;
use crate::nodes::{DEV_KEYS, Node, parse_quantity};
use iotex_injector::accounts::parse_key;
use iotex_injector::mix::Mix;
use iotex_injector::run_config::RunConfig;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The first `n` dev keys (funded on anvil and ganache).
pub fn dev_keys(n: usize) -> Vec<alloy_signer_local::PrivateKeySigner> {
    // The dev keys are valid constants; filter_map only keeps this total.
    DEV_KEYS.iter().take(n).filter_map(|k| parse_key("key", k).ok()).collect()
}

/// A constant-rate config against `url` with the first `accounts` dev keys, short timeouts for tests.
pub fn config(url: &str, accounts: usize, rate: f64, duration: Duration) -> anyhow::Result<RunConfig> {
    crate::capture::init_tracing();
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
    tx_count_at(&node.url, addr, tag).await
}

/// `eth_getTransactionCount(addr, tag)` at any JSON-RPC URL (a gateway, an IoTeX node).
pub async fn tx_count_at(url: &str, addr: &str, tag: &str) -> anyhow::Result<u64> {
    parse_quantity(&RawClient::new().call(url, "eth_getTransactionCount", json!([addr, tag])).await?)
}

/// The Counter contract's `total()` on a node.
pub async fn counter_total(node: &Node, contract: &str) -> anyhow::Result<u64> {
    counter_total_at(&node.url, contract).await
}

/// The Counter contract's `total()` at any JSON-RPC URL.
pub async fn counter_total_at(url: &str, contract: &str) -> anyhow::Result<u64> {
    let selector = &alloy_primitives::keccak256(b"total()")[..4];
    let data = format!("0x{}", alloy_primitives::hex::encode(selector));
    let v = RawClient::new().call(url, "eth_call", json!([{"to": contract, "data": data}, "latest"])).await?;
    // A uint256 word, `0x` and 64 digits: the quantity reader skips its leading zeros and refuses a count
    // wider than u64 instead of truncating it.
    let s = v.as_str().ok_or_else(|| anyhow::anyhow!("eth_call result {v}"))?;
    Ok(iotex_shared::hex::quantity(s)?)
}

/// Every transaction in blocks `from..=to` sent by one of `senders` (lower-case 0x addresses), in block
/// order. Scans the blocks themselves, not receipts the injector already counted.
pub async fn scan_blocks(url: &str, from: u64, to: u64, senders: &BTreeSet<String>) -> anyhow::Result<Vec<Value>> {
    let mut found = Vec::new();
    for h in from..=to {
        let b = RawClient::new().call(url, "eth_getBlockByNumber", json!([format!("0x{h:x}"), true])).await?;
        for tx in b["transactions"].as_array().into_iter().flatten() {
            if senders.contains(&tx["from"].as_str().unwrap_or_default().to_lowercase()) {
                found.push(tx.clone());
            }
        }
    }
    Ok(found)
}

/// What `txs` (transaction objects, as [`scan_blocks`] returns them) paid, each read from its own receipt
/// (`eth_getTransactionReceipt`: gas used × effective gas price) and summed exactly.
pub async fn fees_paid(url: &str, txs: &[Value]) -> anyhow::Result<u128> {
    let c = RawClient::new();
    let mut paid = 0u128;
    for tx in txs {
        let r = c.call(url, "eth_getTransactionReceipt", json!([tx["hash"]])).await?;
        let (gas, price) = (parse_quantity(&r["gasUsed"])?, parse_quantity(&r["effectiveGasPrice"])?);
        paid += u128::from(gas) * u128::from(price);
    }
    Ok(paid)
}

/// Actions per account index for `n` scheduled over `accounts` (round-robin).
pub fn per_account(n: u64, accounts: usize, i: usize) -> u64 {
    (0..n).filter(|s| (*s % accounts as u64) as usize == i).count() as u64
}
