//! Signing a native action: secp256k1 over the **legacy Keccak-256** (not SHA3-256) of the serialized
//! [`ActionCore`], RFC 6979 nonces, low S, the signature written R‖S‖V with V in {0, 1}, and the sender's
//! public key 65 bytes uncompressed (04‖X‖Y). The action hash is Keccak-256 of the whole [`Action`].
//!
//! Any [`SignerSync`] signs: the run uses libsecp256k1 ([`crate::signer::FastKey`]) like the web3 path; the
//! vectors are checked with pure-Rust k256 ([`alloy_signer_local::PrivateKeySigner`]) as well, and both
//! give the same bytes because RFC 6979 is deterministic.

use super::proto::{Action, ActionCore, Execution, Payload, Transfer};
use crate::mix::ActionKind;
use crate::signer::{Call, SignError};
use alloy_primitives::{Address, B256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use prost::Message;

/// A 65-byte uncompressed public key, 04‖X‖Y.
pub type PubKey = [u8; 65];

/// The uncompressed public key of `key`.
pub fn pubkey(key: &PrivateKeySigner) -> PubKey {
    let point = key.credential().verifying_key().to_encoded_point(false);
    let mut out = [0u8; 65];
    // An uncompressed SEC1 point is exactly 65 bytes; anything else would leave zeros the node refuses.
    if point.as_bytes().len() == 65 {
        out.copy_from_slice(point.as_bytes());
    }
    out
}

/// The address of a public key: the last 20 bytes of Keccak-256(X‖Y).
pub fn address_of(pubkey: &PubKey) -> Address {
    Address::from_slice(&keccak256(&pubkey[1..])[12..])
}

/// A signed native action and its hash.
#[derive(Debug, Clone)]
pub struct SignedAction {
    /// What `SendAction` carries.
    pub action: Action,
    /// Keccak-256 of the action's bytes: what the node returns and the receipts hold.
    pub hash: B256,
}

/// The fee and chain fields every action of a run shares.
#[derive(Debug, Clone, Copy)]
pub struct CoreParams {
    /// Native chain id (`GetChainMeta`).
    pub chain_id: u32,
    /// Rau per gas.
    pub gas_price: u128,
}

/// The core of a transfer (`kind` Transfer) or a contract call (Execution); a deployment is an Execution
/// with no contract (see [`deploy_core`]).
pub fn core_for(kind: ActionKind, call: &Call, nonce: u64, p: CoreParams) -> ActionCore {
    let payload = match kind {
        ActionKind::Transfer => Payload::Transfer(Transfer {
            amount: call.value.to_string(),
            recipient: crate::address::to_io(&call.to),
            payload: call.input.to_vec(),
        }),
        ActionKind::Execution => Payload::Execution(Execution {
            amount: call.value.to_string(),
            contract: crate::address::to_io(&call.to),
            data: call.input.to_vec(),
        }),
    };
    legacy_core(payload, nonce, call.gas_limit, p)
}

/// The core of a contract deployment (an Execution with an empty `contract`).
pub fn deploy_core(code: Vec<u8>, nonce: u64, gas_limit: u64, p: CoreParams) -> ActionCore {
    legacy_core(
        Payload::Execution(Execution { amount: "0".into(), contract: String::new(), data: code }),
        nonce,
        gas_limit,
        p,
    )
}

fn legacy_core(payload: Payload, nonce: u64, gas_limit: u64, p: CoreParams) -> ActionCore {
    ActionCore {
        version: 1,
        nonce,
        gas_limit,
        gas_price: p.gas_price.to_string(),
        chain_id: p.chain_id,
        action: Some(payload),
        ..ActionCore::default()
    }
}

/// The 65-byte R‖S‖V signature (V in {0, 1}) over Keccak-256 of `bytes`.
pub fn sign_bytes<S: SignerSync>(key: &S, bytes: &[u8]) -> Result<[u8; 65], SignError> {
    let sig = key.sign_hash_sync(&keccak256(bytes))?;
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    out[64] = u8::from(sig.v());
    Ok(out)
}

/// Seals `core`: signs its bytes, wraps it with the public key, and hashes the whole action.
pub fn seal<S: SignerSync>(key: &S, pubkey: &PubKey, core: ActionCore) -> Result<SignedAction, SignError> {
    let signature = sign_bytes(key, &core.encode_to_vec())?;
    let action =
        Action { core: Some(core), sender_pub_key: pubkey.to_vec(), signature: signature.to_vec(), encoding: 0 };
    let hash = keccak256(action.encode_to_vec());
    Ok(SignedAction { action, hash })
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
