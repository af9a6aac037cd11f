//! Builds and signs one action: EIP-155 legacy or EIP-1559, secp256k1, RLP via alloy's consensus types.
//!
//! The chain id is taken from the run's checked configuration and written into every transaction; a test
//! decodes the bytes and checks it, because anvil silently drops legacy transactions for another chain.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

/// Which transaction envelope to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TxType {
    /// Legacy transaction with EIP-155 replay protection (the default; what every IoTeX node accepts).
    Legacy,
    /// EIP-1559 dynamic-fee transaction.
    Eip1559,
}

/// What to put in a transaction besides nonce and fees.
#[derive(Debug, Clone)]
pub struct Call {
    /// Recipient (a transfer target or the contract).
    pub to: Address,
    /// Value in Rau (wei).
    pub value: U256,
    /// Calldata (empty for transfers).
    pub input: Bytes,
    /// Gas limit.
    pub gas_limit: u64,
}

/// Fee settings for a run: legacy uses `gas_price`; EIP-1559 uses `2 × gas_price` as the cap (which
/// clears the base fee the gas price was quoted against, IoTeX's 1,000 Gwei floor included) and the
/// chain's suggested priority fee as the tip, never above the cap.
#[derive(Debug, Clone, Copy)]
pub struct Fees {
    /// Gas price in Rau.
    pub gas_price: u128,
    /// EIP-1559 tip in Rau (`eth_maxPriorityFeePerGas`).
    pub priority_fee: u128,
}

/// The highest fee per gas an action of `tx_type` is signed with: the gas price (legacy), or the type-2 cap
/// of twice the gas price (what the pre-flight check budgets for).
pub fn max_fee_per_gas(tx_type: TxType, fees: Fees) -> u128 {
    match tx_type {
        TxType::Legacy => fees.gas_price,
        TxType::Eip1559 => fees.gas_price.saturating_mul(2),
    }
}

impl Fees {
    /// Legacy-style fees where the tip is the whole gas price (setup transactions, tests).
    pub fn flat(gas_price: u128) -> Fees {
        Fees { gas_price, priority_fee: gas_price }
    }
}

/// A signed action ready for `eth_sendRawTransaction`.
#[derive(Debug, Clone)]
pub struct Signed {
    /// EIP-2718 encoded bytes.
    pub raw: Vec<u8>,
    /// Transaction hash (what the node returns and the chain holds).
    pub hash: B256,
}

/// Signing failed (only on a broken key).
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(#[from] alloy_signer::Error);

/// The hot-path signing key: libsecp256k1 (via alloy's `Secp256k1Signer`), faster than pure-Rust
/// k256 per signature (see `benches/sign.rs`); keys are parsed and derived with k256 ([`PrivateKeySigner`]) and converted once.
pub type FastKey = alloy_signer_local::Secp256k1Signer;

/// Converts a parsed key for the hot path.
pub fn fast(key: &PrivateKeySigner) -> FastKey {
    key.to_secp256k1()
}

/// Signs one action.
pub fn sign<S: SignerSync>(
    key: &S,
    chain_id: u64,
    nonce: u64,
    tx_type: TxType,
    fees: Fees,
    call: &Call,
) -> Result<Signed, SignError> {
    let envelope: TxEnvelope = match tx_type {
        TxType::Legacy => {
            let tx = TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price: fees.gas_price,
                gas_limit: call.gas_limit,
                to: TxKind::Call(call.to),
                value: call.value,
                input: call.input.clone(),
            };
            let sig = key.sign_hash_sync(&tx.signature_hash())?;
            tx.into_signed(sig).into()
        }
        TxType::Eip1559 => {
            let tx = TxEip1559 {
                chain_id,
                nonce,
                gas_limit: call.gas_limit,
                max_fee_per_gas: max_fee_per_gas(TxType::Eip1559, fees),
                max_priority_fee_per_gas: fees.priority_fee.min(max_fee_per_gas(TxType::Eip1559, fees)),
                to: TxKind::Call(call.to),
                value: call.value,
                access_list: Default::default(),
                input: call.input.clone(),
            };
            let sig = key.sign_hash_sync(&tx.signature_hash())?;
            tx.into_signed(sig).into()
        }
    };
    Ok(Signed { raw: envelope.encoded_2718(), hash: *envelope.tx_hash() })
}

/// Signs a contract creation (used once per endpoint to deploy the execution target).
pub fn sign_create(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    fees: Fees,
    code: Bytes,
    gas_limit: u64,
) -> Result<Signed, SignError> {
    let tx = TxLegacy {
        chain_id: Some(chain_id),
        nonce,
        gas_price: fees.gas_price,
        gas_limit,
        to: TxKind::Create,
        value: U256::ZERO,
        input: code,
    };
    let sig = key.sign_hash_sync(&tx.signature_hash())?;
    let envelope: TxEnvelope = tx.into_signed(sig).into();
    Ok(Signed { raw: envelope.encoded_2718(), hash: *envelope.tx_hash() })
}

/// Writes `{"jsonrpc":"2.0","id":ID,"method":"eth_sendRawTransaction","params":["0x…"]}` without serde.
pub fn send_raw_body(id: u64, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + raw.len() * 2);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"method\":\"eth_sendRawTransaction\",\"params\":[\"0x");
    let start = out.len();
    out.resize(start + raw.len() * 2, 0);
    // The buffer was sized to exactly twice the input, so encoding cannot fail.
    let _ = alloy_primitives::hex::encode_to_slice(raw, &mut out[start..]);
    out.extend_from_slice(b"\"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::Transaction;
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_eips::eip2718::Decodable2718;

    const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn call() -> Call {
        Call { to: Address::repeat_byte(7), value: U256::from(1u64), input: Bytes::new(), gas_limit: 21_000 }
    }

    #[test]
    fn legacy_and_1559_carry_the_chain_id_and_recover_the_sender() {
        let key: PrivateKeySigner = DEV_KEY.parse().unwrap();
        for (ty, chain) in [(TxType::Legacy, 4689u64), (TxType::Eip1559, 4690)] {
            let s = sign(&key, chain, 5, ty, Fees::flat(1_000_000_000_000), &call()).unwrap();
            let env = TxEnvelope::decode_2718(&mut s.raw.as_slice()).unwrap();
            assert_eq!(env.chain_id(), Some(chain), "{ty:?}");
            assert_eq!(env.nonce(), 5);
            assert_eq!(*env.tx_hash(), s.hash);
            assert_eq!(env.recover_signer().unwrap(), key.address());
            assert_eq!(matches!(env, TxEnvelope::Legacy(_)), ty == TxType::Legacy);
        }
    }

    #[test]
    fn libsecp256k1_and_k256_sign_identically() {
        // RFC 6979 nonces are deterministic: both back ends must give the same bytes.
        let key: PrivateKeySigner = DEV_KEY.parse().unwrap();
        let fast = fast(&key);
        for ty in [TxType::Legacy, TxType::Eip1559] {
            let a = sign(&key, 4689, 1, ty, Fees::flat(7), &call()).unwrap();
            let b = sign(&fast, 4689, 1, ty, Fees::flat(7), &call()).unwrap();
            assert_eq!(a.raw, b.raw);
        }
    }

    #[test]
    fn eip1559_tips_what_the_chain_suggests_and_never_above_the_cap() {
        let key: PrivateKeySigner = DEV_KEY.parse().unwrap();
        let fee = |priority_fee| {
            let s = sign(&key, 4691, 0, TxType::Eip1559, Fees { gas_price: 1_000, priority_fee }, &call()).unwrap();
            let env = TxEnvelope::decode_2718(&mut s.raw.as_slice()).unwrap();
            (env.max_fee_per_gas(), env.max_priority_fee_per_gas())
        };
        assert_eq!(fee(1), (2_000, Some(1)));
        assert_eq!(fee(5_000), (2_000, Some(2_000)), "a tip above the cap is capped");
    }

    #[test]
    fn body_is_valid_json_rpc() {
        let v: serde_json::Value = serde_json::from_slice(&send_raw_body(42, &[0xde, 0xad])).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["method"], "eth_sendRawTransaction");
        assert_eq!(v["params"][0], "0xdead");
    }
}
