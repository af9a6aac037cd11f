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

    /// `eth_getTransactionReceipt` (`None` while not included).
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>, RpcError> {
        let v = self.call("eth_getTransactionReceipt", rpc_params![hash]).await?;
        if v.is_null() {
            return Ok(None);
        }
        let success = v.get("status").and_then(quantity::<u128>).is_none_or(|s| s == 1);
        let contract = v.get("contractAddress").and_then(Value::as_str).and_then(|s| s.parse().ok());
        Ok(Some(Receipt { success, contract }))
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
