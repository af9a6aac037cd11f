//! Pre-flight: before the first tick, every account must be able to pay for its share of the run at the
//! worst case. Accounts that cannot are topped up from `--fund-from` when it is given; otherwise, or if
//! they are still short after that, the run refuses before sending anything, saying how many accounts are
//! short and by how much. Found one `insufficient_funds` rejection at a time instead, 54 unfunded accounts
//! of 64 turned one run into 16,870 rejections and an 84 % rate error.
//!
//! The worst case of an account: its share of the ticks (ticks go to accounts round robin, so at most
//! `ceil(ticks / accounts)`) times the dearest action the mix may send it (the gas limit times the highest
//! fee per gas it is signed with, plus a transfer's value), plus the Counter contract's deployment for the
//! account that deploys it. A gap filler or a retry reuses a nonce whose action did not land, so it adds
//! nothing to that bound.

use crate::flags::defaults;
use crate::node::Node;
use crate::run_config::RunConfig;
use crate::signer::Fees;
use alloy_primitives::{Address, U256};
use futures::StreamExt;

/// Gas limit of the Counter's deployment (`setup::deploy`).
pub const DEPLOY_GAS: u64 = 500_000;

/// An account that cannot pay for its share of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    /// Its index in the run's accounts.
    pub account: usize,
    /// Its address.
    pub address: Address,
    /// What it holds.
    pub balance: U256,
    /// What its share of the run may cost.
    pub need: U256,
}

impl Short {
    /// How much it lacks.
    pub fn missing(&self) -> U256 {
        self.need.saturating_sub(self.balance)
    }
}

/// The most one action of this run may cost, in rau.
pub fn dearest_action(cfg: &RunConfig, fees: Fees, native: bool) -> U256 {
    // Native actions pay the gas price as it is; a type-2 web3 action may pay up to its fee cap.
    let per_gas = if native { fees.gas_price } else { crate::signer::max_fee_per_gas(cfg.tx_type, fees) };
    let per_gas = U256::from(per_gas);
    let transfer = U256::from(cfg.gas_limit.unwrap_or(defaults::TRANSFER_GAS)) * per_gas + cfg.value;
    let execution = U256::from(cfg.gas_limit.unwrap_or(defaults::EXECUTION_GAS)) * per_gas;
    match (cfg.mix.transfer > 0, cfg.mix.execution > 0) {
        (true, false) => transfer,
        (false, true) => execution,
        _ => transfer.max(execution),
    }
}

/// The worst case of each account (see the module doc). `deployers` are the accounts that deploy the
/// Counter; `native[i]` tells whether account `i` sends over gRPC.
pub fn needs(cfg: &RunConfig, fees: Fees, native: &[bool], deployers: &[usize]) -> Vec<U256> {
    let accounts = native.len().max(1) as u64;
    let share = U256::from(cfg.profile.total().div_ceil(accounts));
    let deploy = U256::from(DEPLOY_GAS) * U256::from(fees.gas_price);
    native
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let run = share * dearest_action(cfg, fees, *n);
            if deployers.contains(&i) { run + deploy } else { run }
        })
        .collect()
}

/// Reads every account's balance from its endpoint (bounded concurrency).
pub async fn balances(
    nodes: &[Node],
    account_ep: &[usize],
    addresses: &[Address],
) -> Result<Vec<U256>, crate::error::RunError> {
    // Owned pairs: a stream of futures borrowing the slices would not be `Send` for `tokio::spawn(run(..))`.
    let jobs: Vec<(Node, Address)> = addresses.iter().zip(account_ep).map(|(a, ep)| (nodes[*ep].clone(), *a)).collect();
    futures::stream::iter(jobs.into_iter().map(|(node, a)| async move { node.balance(a).await }))
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|source| crate::error::RunError::EndpointDown { endpoint: source.endpoint.clone(), source })
}

/// The accounts whose balance is below their need.
pub fn shortfalls(addresses: &[Address], balances: &[U256], needs: &[U256]) -> Vec<Short> {
    addresses
        .iter()
        .zip(balances.iter().zip(needs))
        .enumerate()
        .filter(|(_, (_, (b, n)))| b < n)
        .map(|(account, (address, (balance, need)))| Short {
            account,
            address: *address,
            balance: *balance,
            need: *need,
        })
        .collect()
}

/// IOTX with up to 6 decimals (rounded down), for messages (amounts are in rau).
pub fn iotx(rau: U256) -> String {
    // 18 decimals is a fixed unit, so alloy's formatting cannot fail; fall back to rau anyway.
    let Ok(full) = alloy_primitives::utils::format_units(rau, 18) else { return format!("{rau} rau") };
    let (whole, frac) = full.split_once('.').unwrap_or((&full, ""));
    let frac = frac.get(..6).unwrap_or(frac).trim_end_matches('0');
    if frac.is_empty() { format!("{whole} IOTX") } else { format!("{whole}.{frac} IOTX") }
}

/// Why the run refuses to start: how many accounts are short, by how much, and what to do.
pub fn refusal(short: &[Short], accounts: usize, funded: bool) -> String {
    let worst = short.iter().map(Short::missing).max().unwrap_or_default();
    let total = short.iter().fold(U256::ZERO, |t, s| t.saturating_add(s.missing()));
    let need = short.iter().map(|s| s.need).max().unwrap_or_default();
    let examples: Vec<String> =
        short.iter().take(3).map(|s| format!("{} holds {} of {}", s.address, iotx(s.balance), iotx(s.need))).collect();
    let what_to_do = if funded {
        "the --fund-from account could not top them up: give it more, or lower --rate, --duration or --gas-limit"
    } else {
        "fund them (--fund-from KEY --fund-amount AMOUNT tops up the short ones), or lower --rate, --duration or --gas-limit"
    };
    format!(
        "pre-flight: {} of {accounts} accounts cannot pay for their share of the run (up to {} each at the \
         run's worst case): short by up to {}, {} in all ({}); {what_to_do}",
        short.len(),
        iotx(need),
        iotx(worst),
        iotx(total),
        examples.join("; ")
    )
}

/// Whether account `i` sends over gRPC.
pub fn native_accounts(nodes: &[Node], account_ep: &[usize]) -> Vec<bool> {
    account_ep.iter().map(|ep| matches!(nodes.get(*ep), Some(Node::Grpc(_)))).collect()
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
