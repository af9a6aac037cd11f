//! Set-up over gRPC, the native counterparts of [`crate::setup`]: funding transfers, the Counter deployment
//! (an `Execution` with no contract), and gap fillers at the end. Each waits for receipts like the web3 one.

use super::client::Client;
use super::sign::{self, CoreParams, PubKey};
use crate::error::RunError;
use crate::mix::ActionKind;
use crate::signer::Call;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use std::time::Duration;

fn setup_err(what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::Setup(format!("{what}: {e}"))
}

async fn wait_success(client: &Client, h: B256, what: &str) -> Result<super::proto::Receipt, RunError> {
    let r = client
        .wait_receipt(h, Duration::from_secs(60))
        .await
        .map_err(|e| setup_err(what, e))?
        .ok_or_else(|| RunError::Setup(format!("{what}: {h} not included within 60 s on {}", client.url)))?;
    if r.status != 1 {
        return Err(RunError::Setup(format!("{what}: {h} failed with status {} {}", r.status, r.execution_revert_msg)));
    }
    Ok(r)
}

/// Sends `amount` to each of `to` from `funder` as native transfers and waits for every receipt.
pub async fn fund(
    client: &Client,
    funder: &PrivateKeySigner,
    amount: U256,
    to: &[Address],
    p: CoreParams,
) -> Result<(), RunError> {
    let pk = sign::pubkey(funder);
    let mut nonce = client
        .pending_nonce(funder.address())
        .await
        .map_err(|source| RunError::EndpointDown { endpoint: client.url.clone(), source })?;
    let mut hashes = Vec::with_capacity(to.len());
    for a in to {
        let call = Call { to: *a, value: amount, input: Bytes::new(), gas_limit: 21_000 };
        let s = sign::seal(funder, &pk, sign::core_for(ActionKind::Transfer, &call, nonce, p))
            .map_err(|e| RunError::Setup(e.to_string()))?;
        hashes.push(client.send(s.action).await.map_err(|e| setup_err(&format!("funding {a}"), e))?);
        nonce += 1;
    }
    for h in hashes {
        wait_success(client, h, "funding transfer").await?;
    }
    Ok(())
}

/// Deploys the Counter from `key`; returns its address.
pub async fn deploy(client: &Client, key: &PrivateKeySigner, p: CoreParams) -> Result<Address, RunError> {
    let what = "deploying the Counter contract";
    let code = alloy_primitives::hex::decode(crate::setup::COUNTER_BIN.trim()).map_err(|e| setup_err(what, e))?;
    let nonce = client
        .pending_nonce(key.address())
        .await
        .map_err(|source| RunError::EndpointDown { endpoint: client.url.clone(), source })?;
    let s = sign::seal(key, &sign::pubkey(key), sign::deploy_core(code, nonce, 500_000, p))
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let h = client.send(s.action).await.map_err(|e| setup_err(what, e))?;
    let r = wait_success(client, h, what).await?;
    crate::address::parse(&r.contract_address)
        .map_err(|e| RunError::Setup(format!("{what}: contract address {:?}: {e}", r.contract_address)))
}

/// Native counterpart of [`crate::setup::fill_gap`]: zero-value self-transfers for the missing nonces, at
/// most 16; returns how many were sent.
pub async fn fill_gap<S: SignerSync>(
    client: &Client,
    key: &S,
    pubkey: &PubKey,
    address: Address,
    p: CoreParams,
    max_handed: u64,
) -> u64 {
    let mut sent = 0;
    for _ in 0..16 {
        let Ok(pending) = client.pending_nonce(address).await else { break };
        if pending > max_handed {
            break;
        }
        let call = Call { to: address, value: U256::ZERO, input: Bytes::new(), gas_limit: 21_000 };
        let Ok(s) = sign::seal(key, pubkey, sign::core_for(ActionKind::Transfer, &call, pending, p)) else { break };
        match client.send(s.action).await {
            Ok(_) => sent += 1,
            Err(e) => {
                tracing::warn!(account = %address, nonce = pending, error = %e, "could not fill a nonce gap");
                break;
            }
        }
        // Let the node promote what was queued behind the gap before re-reading.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if client.pending_nonce(address).await.is_ok_and(|n| n > pending) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    sent
}
