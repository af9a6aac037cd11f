//! Before the first tick: check chain ids, pick the gas price, fund accounts, deploy the contract, read nonces.
//!
//! Funding and deployment go endpoint by endpoint and wait for receipts, so they work both on a real cluster
//! (one chain behind every endpoint) and on local dev nodes that do not gossip (one chain per endpoint).

use crate::error::RunError;
use crate::rpc::Rpc;
use crate::run_config::RunConfig;
use crate::signer::{self, Call, Fees, TxType};
use alloy_primitives::{Address, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use std::time::Duration;

/// The Counter contract's creation bytecode (`injector/contracts/Counter.sol`).
pub const COUNTER_BIN: &str = include_str!("../contracts/Counter.bin");

/// Calldata for `Counter.bump(by)`.
pub fn bump_calldata(by: u64) -> Bytes {
    let selector = &alloy_primitives::keccak256(b"bump(uint256)")[..4];
    let mut data = Vec::with_capacity(36);
    data.extend_from_slice(selector);
    data.extend_from_slice(&U256::from(by).to_be_bytes::<32>());
    Bytes::from(data)
}

/// Asks every endpoint for its chain id; they must agree with each other and with `--chain-id`.
pub async fn chain_id(cfg: &RunConfig, rpcs: &[Rpc]) -> Result<u64, RunError> {
    let ids = futures::future::join_all(rpcs.iter().map(|r| r.chain_id())).await;
    let mut seen: Option<(u64, &str)> = None;
    for (rpc, id) in rpcs.iter().zip(ids) {
        let id = id.map_err(|source| RunError::EndpointDown { endpoint: rpc.url.clone(), source })?;
        if let Some((first, url)) = seen
            && first != id
        {
            return Err(RunError::ChainId(format!("{url} reports {first} but {} reports {id}", rpc.url)));
        }
        seen.get_or_insert((id, &rpc.url));
    }
    let (id, url) = seen.ok_or_else(|| RunError::Setup("no endpoints".into()))?;
    if let Some(want) = cfg.chain_id
        && want != id
    {
        return Err(RunError::ChainId(format!("--chain-id is {want} but {url} reports {id}")));
    }
    Ok(id)
}

/// `--gas-price`, else the highest `eth_gasPrice` among endpoints.
pub async fn gas_price(cfg: &RunConfig, rpcs: &[Rpc]) -> Result<u128, RunError> {
    if let Some(p) = cfg.gas_price {
        return Ok(p);
    }
    let mut best = 0;
    for r in rpcs {
        let p = r.gas_price().await.map_err(|source| RunError::EndpointDown { endpoint: r.url.clone(), source })?;
        best = best.max(p);
    }
    Ok(best.max(1))
}

/// `eth_maxPriorityFeePerGas`, the highest among endpoints; an endpoint without the method (older dev
/// nodes) counts as suggesting the whole gas price, as EIP-1559 tips were before the method existed.
pub async fn priority_fee(rpcs: &[Rpc], gas_price: u128) -> u128 {
    let mut best = 0;
    for r in rpcs {
        best = best.max(r.max_priority_fee().await.unwrap_or(gas_price));
    }
    best
}

async fn send_and_wait(rpc: &Rpc, raw: &[u8], what: &str) -> Result<crate::rpc::Receipt, RunError> {
    let hash = rpc.send_raw(raw).await.map_err(|e| RunError::Setup(format!("{what}: {e}")))?;
    rpc.wait_receipt(hash, Duration::from_secs(60))
        .await
        .map_err(|e| RunError::Setup(format!("{what}: {e}")))?
        .ok_or_else(|| RunError::Setup(format!("{what}: {hash} not included within 60 s on {}", rpc.url)))
}

/// Sends `amount` to each account from the funder, endpoint by endpoint, and waits for every receipt.
pub async fn fund(
    rpcs: &[Rpc],
    funder: &PrivateKeySigner,
    amount: U256,
    accounts: &[(Address, usize)],
    chain_id: u64,
    gas_price: u128,
) -> Result<(), RunError> {
    for (ep, rpc) in rpcs.iter().enumerate() {
        let mine: Vec<Address> = accounts.iter().filter(|(_, e)| *e == ep).map(|(a, _)| *a).collect();
        if mine.is_empty() {
            continue;
        }
        let mut nonce = rpc
            .pending_nonce(funder.address())
            .await
            .map_err(|source| RunError::EndpointDown { endpoint: rpc.url.clone(), source })?;
        let mut hashes = Vec::with_capacity(mine.len());
        for to in mine {
            let call = Call { to, value: amount, input: Bytes::new(), gas_limit: 21_000 };
            let s = signer::sign(funder, chain_id, nonce, TxType::Legacy, Fees::flat(gas_price), &call)
                .map_err(|e| RunError::Setup(e.to_string()))?;
            let h = rpc.send_raw(&s.raw).await.map_err(|e| RunError::Setup(format!("funding {to}: {e}")))?;
            hashes.push(h);
            nonce += 1;
        }
        for h in hashes {
            let r = rpc
                .wait_receipt(h, Duration::from_secs(60))
                .await
                .map_err(|e| RunError::Setup(format!("funding: {e}")))?
                .ok_or_else(|| RunError::Setup(format!("funding transfer {h} not included within 60 s")))?;
            if !r.success {
                return Err(RunError::Setup(format!("funding transfer {h} failed")));
            }
        }
        tracing::info!(endpoint = ep, "funded pool accounts");
    }
    Ok(())
}

/// Deploys the Counter from `key` on `rpc`; returns its address.
pub async fn deploy(rpc: &Rpc, key: &PrivateKeySigner, chain_id: u64, gas_price: u128) -> Result<Address, RunError> {
    let code = alloy_primitives::hex::decode(COUNTER_BIN.trim()).map_err(|e| RunError::Setup(e.to_string()))?;
    let nonce = rpc
        .pending_nonce(key.address())
        .await
        .map_err(|source| RunError::EndpointDown { endpoint: rpc.url.clone(), source })?;
    let s = signer::sign_create(key, chain_id, nonce, Fees::flat(gas_price), Bytes::from(code), 500_000)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let r = send_and_wait(rpc, &s.raw, "deploying the Counter contract").await?;
    match (r.success, r.contract) {
        (true, Some(a)) => Ok(a),
        _ => Err(RunError::Setup(format!("deploying the Counter contract on {} failed", rpc.url))),
    }
}

/// Closes a gap an account may have left at the end: while the node's pending nonce is at or below the
/// highest nonce we handed out, sends a zero-value self-transfer with that nonce (at most 16), so queued
/// actions above the gap are not left for the node to hold until they expire. Returns the fillers sent.
pub async fn fill_gap<S: alloy_signer::SignerSync>(
    rpc: &Rpc,
    key: &S,
    address: Address,
    chain_id: u64,
    gas_price: u128,
    max_handed: u64,
) -> u64 {
    let mut sent = 0;
    for _ in 0..16 {
        let Ok(pending) = rpc.pending_nonce(address).await else { break };
        if pending > max_handed {
            break;
        }
        let call = Call { to: address, value: U256::ZERO, input: Bytes::new(), gas_limit: 21_000 };
        let Ok(s) = signer::sign(key, chain_id, pending, TxType::Legacy, Fees::flat(gas_price), &call) else { break };
        match rpc.send_raw(&s.raw).await {
            Ok(_) => sent += 1,
            Err(e) => {
                tracing::warn!(account = %address, nonce = pending, error = %e, "could not fill a nonce gap");
                break;
            }
        }
        // Let the node promote what was queued behind the gap before re-reading.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if rpc.pending_nonce(address).await.is_ok_and(|p| p > pending) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calldata_is_selector_plus_word() {
        let d = bump_calldata(1);
        assert_eq!(d.len(), 36);
        assert_eq!(d[35], 1);
        assert!(!COUNTER_BIN.trim().is_empty());
        assert!(alloy_primitives::hex::decode(COUNTER_BIN.trim()).is_ok());
    }
}
