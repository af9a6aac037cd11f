//! Before the first tick: check chain ids, pick the gas price, fund accounts, deploy the contract, read nonces.
//! The web3 versions live here; the native ones (gRPC endpoints) in [`crate::native::setup`].
//!
//! Funding and deployment go endpoint by endpoint and wait for receipts, so they work both on a real cluster
//! (one chain behind every endpoint) and on local dev nodes that do not gossip (one chain per endpoint).

use crate::error::RunError;
use crate::node::Node;
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

/// The chain ids a run signs for: the EVM network id from the web3 endpoints (EIP-155) and the native
/// `chain.id` from the gRPC endpoints (`ActionCore.chainID`). Each is `None` when no endpoint speaks that API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainIds {
    /// `eth_chainId` of the web3 endpoints.
    pub evm: Option<u64>,
    /// `GetChainMeta.chainID` of the gRPC endpoints.
    pub native: Option<u32>,
}

impl ChainIds {
    /// The report's `chain_id`: the EVM id when any endpoint speaks web3, else the native id.
    pub fn report(&self) -> u64 {
        self.evm.or(self.native.map(u64::from)).unwrap_or(0)
    }
}

/// The one value every endpoint reported, or which two disagree.
fn agree<T: PartialEq + Copy + std::fmt::Display>(ids: &[(T, &str)], what: &str) -> Result<Option<T>, RunError> {
    let Some((first, url)) = ids.first() else { return Ok(None) };
    match ids.iter().find(|(id, _)| id != first) {
        Some((id, other)) => Err(RunError::ChainId(format!("{url} reports {what} {first} but {other} reports {id}"))),
        None => Ok(Some(*first)),
    }
}

/// Asks every endpoint for its chain id: the web3 ones must agree with each other and with `--chain-id`
/// (an EVM id), the gRPC ones with each other (the two ids differ by design: 1 and 4689 on mainnet).
pub async fn chain_id(cfg: &RunConfig, nodes: &[Node]) -> Result<ChainIds, RunError> {
    let answers = futures::future::join_all(nodes.iter().map(|n| async move {
        match n {
            Node::Web3(r) => r.chain_id().await.map(|id| (Some(id), None)),
            Node::Grpc(c) => c.chain_meta().await.map(|m| (None, Some(m.chain_id))),
        }
    }))
    .await;
    let (mut evm, mut native) = (Vec::new(), Vec::new());
    for (node, a) in nodes.iter().zip(answers) {
        match a.map_err(|source| RunError::EndpointDown { endpoint: node.url().to_owned(), source })? {
            (Some(id), _) => evm.push((id, node.url())),
            (_, Some(id)) => native.push((id, node.url())),
            (None, None) => {}
        }
    }
    let ids = ChainIds { evm: agree(&evm, "chain id")?, native: agree(&native, "native chain id")? };
    if ids.evm.is_none() && ids.native.is_none() {
        return Err(RunError::Setup("no endpoints".into()));
    }
    if let (Some(want), Some(id)) = (cfg.chain_id, ids.evm)
        && want != id
    {
        let url = evm.first().map(|(_, u)| *u).unwrap_or_default();
        return Err(RunError::ChainId(format!("--chain-id is {want} but {url} reports {id}")));
    }
    Ok(ids)
}

/// The fees to sign with: the gas price ([`gas_price`]) and, for type 2, the tip ([`priority_fee`]). Read at
/// start and by the refresher while running (`fees.rs`).
pub async fn fees(cfg: &RunConfig, nodes: &[Node]) -> Result<Fees, RunError> {
    let gas_price = gas_price(cfg, nodes).await?;
    let priority_fee = match cfg.tx_type {
        TxType::Eip1559 => priority_fee(nodes, gas_price).await,
        TxType::Legacy => gas_price,
    };
    Ok(Fees { gas_price, priority_fee })
}

/// `--gas-price`, else the highest the endpoints suggest (`eth_gasPrice`, `SuggestGasPrice`).
pub async fn gas_price(cfg: &RunConfig, nodes: &[Node]) -> Result<u128, RunError> {
    if let Some(p) = cfg.gas_price {
        return Ok(p);
    }
    let mut best = 0;
    for n in nodes {
        let p =
            n.gas_price().await.map_err(|source| RunError::EndpointDown { endpoint: n.url().to_owned(), source })?;
        best = best.max(p);
    }
    Ok(best.max(1))
}

/// `eth_maxPriorityFeePerGas`, the highest among endpoints; an endpoint without the method (older dev
/// nodes) counts as suggesting the whole gas price, as EIP-1559 tips were before the method existed.
pub async fn priority_fee(nodes: &[Node], gas_price: u128) -> u128 {
    let mut best = 0;
    for n in nodes {
        if let Node::Web3(r) = n {
            best = best.max(r.max_priority_fee().await.unwrap_or(gas_price));
        }
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

/// Sends `amount` to each account of a web3 endpoint from the funder, endpoint by endpoint, and waits for
/// every receipt.
pub async fn fund(
    nodes: &[Node],
    funder: &PrivateKeySigner,
    amount: U256,
    accounts: &[(Address, usize)],
    chain: ChainIds,
    gas_price: u128,
) -> Result<(), RunError> {
    for (ep, node) in nodes.iter().enumerate() {
        let mine: Vec<Address> = accounts.iter().filter(|(_, e)| *e == ep).map(|(a, _)| *a).collect();
        if mine.is_empty() {
            continue;
        }
        // gRPC endpoints are funded with native transfers by `crate::native::setup::fund` (see `run.rs`).
        let Node::Web3(rpc) = node else { continue };
        let chain_id = chain.evm.unwrap_or(0);
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
