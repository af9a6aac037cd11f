//! Control-plane JSON-RPC calls (chain id, gas price, nonces, blocks, receipts) via jsonrpsee's HTTP client.
//!
//! The hot path (`eth_sendRawTransaction`) does not go through here: see [`crate::send`] for why.

use crate::error::{Kind, RpcError};
use alloy_primitives::{Address, B256, U256};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::time::Duration;

/// One endpoint's control client.
#[derive(Clone, Debug)]
pub struct Rpc {
    client: HttpClient,
    /// The endpoint URL.
    pub url: String,
}

/// What a receipt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// `status == 1`.
    pub success: bool,
    /// The created contract, for deployments.
    pub contract: Option<Address>,
    /// `gasUsed × effectiveGasPrice`; `None` when either is missing or unreadable (or the product overflows).
    pub fee: Option<u128>,
}

/// One receipt of a block, as the follower needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockReceipt {
    /// `transactionHash`.
    pub hash: B256,
    /// `status == 1`.
    pub success: bool,
    /// `gasUsed × effectiveGasPrice`, when both are there.
    pub fee: Option<u128>,
}

/// Reads a receipt object; `None` when it is not one (no object).
pub fn parse_receipt(v: &Value) -> Option<Receipt> {
    v.as_object()?;
    // A receipt without `status` predates Byzantium or comes from a node that omits it: not a revert.
    let success = v.get("status").and_then(quantity::<u128>).is_none_or(|s| s == 1);
    let contract = v.get("contractAddress").and_then(Value::as_str).and_then(|s| s.parse().ok());
    let fee = v
        .get("gasUsed")
        .and_then(quantity::<u128>)
        .zip(v.get("effectiveGasPrice").and_then(quantity::<u128>))
        .and_then(|(gas, price)| gas.checked_mul(price));
    Some(Receipt { success, contract, fee })
}

/// Reads an `eth_getBlockReceipts` answer; an item without a readable `transactionHash` is skipped (it
/// cannot be ours to match), so a hostile or broken answer only loses what it garbles.
pub fn parse_block_receipts(v: &Value) -> Option<Vec<BlockReceipt>> {
    let items = v.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|item| {
                let hash = item.get("transactionHash")?.as_str()?.parse().ok()?;
                let r = parse_receipt(item)?;
                Some(BlockReceipt { hash, success: r.success, fee: r.fee })
            })
            .collect(),
    )
}

/// A hex quantity in a reply. `"0x"` reads as zero: older ganache writes zero that way.
fn quantity<T: iotex_shared::hex::Quantity>(v: &Value) -> Option<T> {
    iotex_shared::hex::quantity_or_zero(v.as_str()?).ok()
}

impl Rpc {
    /// A client for `url` with an optional bearer token.
    pub fn new(url: &str, auth_token: Option<&str>, timeout: Duration) -> Result<Rpc, RpcError> {
        let mut headers = http::HeaderMap::new();
        if let Some(t) = auth_token {
            let v = http::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| RpcError {
                endpoint: url.to_owned(),
                method: "connect",
                kind: Kind::Other,
                message: "the auth token is not a valid header value".into(),
            })?;
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let client = HttpClientBuilder::default()
            .set_headers(headers)
            .request_timeout(timeout)
            .max_concurrent_requests(256)
            .build(url)
            .map_err(|e| RpcError {
                endpoint: url.to_owned(),
                method: "connect",
                kind: Kind::Other,
                message: e.to_string(),
            })?;
        Ok(Rpc { client, url: url.to_owned() })
    }

    async fn call(
        &self,
        method: &'static str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<Value, RpcError> {
        use jsonrpsee::core::ClientError as E;
        self.client.request::<Value, _>(method, params).await.map_err(|e| {
            let (kind, message) = match &e {
                E::Call(obj) => (Kind::from_message(obj.message()), obj.message().to_owned()),
                E::RequestTimeout => (Kind::Timeout, "request timed out".to_owned()),
                E::Transport(t) => {
                    let m = t.to_string();
                    let kind = if m.contains("429") {
                        Kind::Busy
                    } else if m.contains("status code") || m.contains("Rejected") {
                        Kind::Http
                    } else {
                        Kind::Connection
                    };
                    (kind, m)
                }
                other => (Kind::Other, other.to_string()),
            };
            RpcError { endpoint: self.url.clone(), method, kind, message }
        })
    }

    fn bad(&self, method: &'static str, v: &Value) -> RpcError {
        RpcError { endpoint: self.url.clone(), method, kind: Kind::Other, message: format!("unexpected result {v}") }
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, RpcError> {
        let v = self.call("eth_chainId", rpc_params![]).await?;
        quantity::<u64>(&v).ok_or_else(|| self.bad("eth_chainId", &v))
    }

    /// `eth_gasPrice`.
    pub async fn gas_price(&self) -> Result<u128, RpcError> {
        let v = self.call("eth_gasPrice", rpc_params![]).await?;
        quantity(&v).ok_or_else(|| self.bad("eth_gasPrice", &v))
    }

    /// `eth_maxPriorityFeePerGas`: the tip the node suggests for EIP-1559 transactions.
    pub async fn max_priority_fee(&self) -> Result<u128, RpcError> {
        let v = self.call("eth_maxPriorityFeePerGas", rpc_params![]).await?;
        quantity(&v).ok_or_else(|| self.bad("eth_maxPriorityFeePerGas", &v))
    }

    /// `eth_getTransactionCount(addr, "pending")` (IoTeX returns the pending nonce for every tag).
    pub async fn pending_nonce(&self, addr: Address) -> Result<u64, RpcError> {
        let v = self.call("eth_getTransactionCount", rpc_params![addr, "pending"]).await?;
        quantity::<u64>(&v).ok_or_else(|| self.bad("eth_getTransactionCount", &v))
    }

    /// `eth_getBalance(addr, "pending")` in rau (IoTeX answers every tag with the current balance).
    pub async fn balance(&self, addr: Address) -> Result<U256, RpcError> {
        let v = self.call("eth_getBalance", rpc_params![addr, "pending"]).await?;
        v.as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .and_then(|digits| U256::from_str_radix(digits, 16).ok())
            .ok_or_else(|| self.bad("eth_getBalance", &v))
    }

    /// `eth_getTransactionCount(addr, "latest")`: the confirmed nonce on nodes that distinguish it.
    pub async fn latest_nonce(&self, addr: Address) -> Result<u64, RpcError> {
        let v = self.call("eth_getTransactionCount", rpc_params![addr, "latest"]).await?;
        quantity::<u64>(&v).ok_or_else(|| self.bad("eth_getTransactionCount", &v))
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, RpcError> {
        let v = self.call("eth_blockNumber", rpc_params![]).await?;
        quantity::<u64>(&v).ok_or_else(|| self.bad("eth_blockNumber", &v))
    }

    /// The transaction hashes of block `n` (`None` if the node does not have it yet).
    pub async fn block_tx_hashes(&self, n: u64) -> Result<Option<Vec<B256>>, RpcError> {
        let v = self.call("eth_getBlockByNumber", rpc_params![format!("0x{n:x}"), false]).await?;
        if v.is_null() {
            return Ok(None);
        }
        let txs =
            v.get("transactions").and_then(Value::as_array).ok_or_else(|| self.bad("eth_getBlockByNumber", &v))?;
        Ok(Some(txs.iter().filter_map(|t| t.as_str().and_then(|s| s.parse().ok())).collect()))
    }

    /// Every receipt of block `n` (`eth_getBlockReceipts`; `None` if the node does not have the block yet).
    pub async fn block_receipts(&self, n: u64) -> Result<Option<Vec<BlockReceipt>>, RpcError> {
        let v = self.call("eth_getBlockReceipts", rpc_params![format!("0x{n:x}")]).await?;
        if v.is_null() {
            return Ok(None);
        }
        parse_block_receipts(&v).map(Some).ok_or_else(|| self.bad("eth_getBlockReceipts", &v))
    }

    /// `eth_getTransactionReceipt` (`None` while not included).
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>, RpcError> {
        let v = self.call("eth_getTransactionReceipt", rpc_params![hash]).await?;
        if v.is_null() {
            return Ok(None);
        }
        parse_receipt(&v).map(Some).ok_or_else(|| self.bad("eth_getTransactionReceipt", &v))
    }

    /// Whether the node knows the transaction at all (pool or chain).
    pub async fn knows_tx(&self, hash: B256) -> Result<bool, RpcError> {
        let v = self.call("eth_getTransactionByHash", rpc_params![hash]).await?;
        Ok(!v.is_null())
    }

    /// `eth_sendRawTransaction` through the control client (set-up only: funding, deployment).
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, RpcError> {
        let hex = format!("0x{}", alloy_primitives::hex::encode(raw));
        let v = self.call("eth_sendRawTransaction", rpc_params![hex]).await?;
        v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| self.bad("eth_sendRawTransaction", &v))
    }

    /// Polls for a receipt until `within` passes (bounded).
    pub async fn wait_receipt(&self, hash: B256, within: Duration) -> Result<Option<Receipt>, RpcError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(r) = self.receipt(hash).await? {
                return Ok(Some(r));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

    /// The fee is gas used × effective gas price; a receipt missing either (or with garbage) has no fee
    /// rather than a wrong one, and its status still counts.
    #[test]
    fn receipts_give_the_fee_only_when_both_factors_are_readable() {
        // An IoTeX transfer: 10,000 gas at the 1,000 Gwei floor.
        let r = parse_receipt(&json!({"status": "0x1", "gasUsed": "0x2710", "effectiveGasPrice": "0xe8d4a51000"}));
        assert_eq!(r, Some(Receipt { success: true, contract: None, fee: Some(10_000 * 1_000_000_000_000) }));
        for bad in [
            json!({"status": "0x0", "gasUsed": "0x5208"}),
            json!({"status": "0x0", "effectiveGasPrice": "0x1"}),
            json!({"status": "0x0", "gasUsed": 21000, "effectiveGasPrice": "0x1"}),
            json!({"status": "0x0", "gasUsed": "0xzz", "effectiveGasPrice": "0x1"}),
            json!({"status": "0x0", "gasUsed": "-0x1", "effectiveGasPrice": "0x1"}),
            // 2¹²⁸ − 1 gas × 2: the product overflows, so no fee rather than a wrapped one.
            json!({"status": "0x0", "gasUsed": format!("0x{:x}", u128::MAX), "effectiveGasPrice": "0x2"}),
            json!({"status": "0x0", "gasUsed": format!("0x1{}", "0".repeat(40)), "effectiveGasPrice": "0x1"}),
        ] {
            let r = parse_receipt(&bad).unwrap();
            assert_eq!((r.success, r.fee), (false, None), "{bad}");
        }
        assert_eq!(parse_receipt(&json!("0x1")), None);
        assert_eq!(parse_receipt(&json!([])), None);
    }

    /// A block's receipts: items without a readable hash are skipped (they cannot be matched), the rest read.
    #[test]
    fn block_receipts_skip_what_cannot_be_matched() {
        let v = json!([
            {"transactionHash": H, "status": "0x1", "gasUsed": "0x5208", "effectiveGasPrice": "0x3b9aca00"},
            {"transactionHash": "0x12", "status": "0x1"},
            {"transactionHash": 7},
            {"status": "0x1"},
            "0xabc",
            null,
        ]);
        let got = parse_block_receipts(&v).unwrap();
        assert_eq!(
            got,
            vec![BlockReceipt { hash: H.parse().unwrap(), success: true, fee: Some(21_000 * 1_000_000_000) }]
        );
        assert_eq!(parse_block_receipts(&json!([])), Some(Vec::new()));
        for not_a_list in [json!({}), json!("0x"), json!(1)] {
            assert_eq!(parse_block_receipts(&not_a_list), None, "{not_a_list}");
        }
    }
}
