//! One endpoint as a run sees it: web3 JSON-RPC ([`crate::rpc::Rpc`]) or IoTeX's native gRPC API
//! ([`crate::native::Client`]), chosen per endpoint (`--api`, or a `grpc=` / `web3=` prefix on `--endpoint`).
//!
//! The phases of a run call what both APIs can answer through [`Node`] (nonces, head, gas price) and
//! branch on the variant only where the two differ in kind: signing (EIP-155 RLP vs a native `Action`),
//! sending, following blocks and the end-of-run lookups.

use crate::error::RpcError;
use crate::native;
use crate::rpc::Rpc;
use alloy_primitives::Address;
use std::time::Duration;

/// Which API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Ethereum JSON-RPC (`eth_sendRawTransaction`), e.g. `http://127.0.0.1:15014`.
    #[default]
    Web3,
    /// IoTeX's native gRPC API (`iotexapi.APIService/SendAction`), e.g. `127.0.0.1:14014`.
    Grpc,
}

impl Api {
    /// The name used on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Web3 => "web3",
            Api::Grpc => "grpc",
        }
    }
}

/// Splits an `--endpoint` value into its API and address: `grpc=HOST:PORT` and `web3=URL` name their API,
/// anything else takes `default` (the `--api` flag).
pub fn split_endpoint(value: &str, default: Api) -> (Api, &str) {
    let v = value.trim();
    match v.split_once('=') {
        Some(("grpc", rest)) => (Api::Grpc, rest.trim()),
        Some(("web3", rest)) => (Api::Web3, rest.trim()),
        _ => (default, v),
    }
}

/// A connected endpoint.
#[derive(Clone, Debug)]
pub enum Node {
    /// JSON-RPC control client (the hot path has its own [`crate::send::Sender`]).
    Web3(Rpc),
    /// gRPC client (hot path and control calls share its channel).
    Grpc(native::Client),
}

impl Node {
    /// A client for `url` speaking `api`.
    pub fn new(api: Api, url: &str, auth_token: Option<&str>, timeout: Duration) -> Result<Node, RpcError> {
        Ok(match api {
            Api::Web3 => Node::Web3(Rpc::new(url, auth_token, timeout)?),
            Api::Grpc => Node::Grpc(native::Client::new(url, timeout)?),
        })
    }

    /// The endpoint as configured.
    pub fn url(&self) -> &str {
        match self {
            Node::Web3(r) => &r.url,
            Node::Grpc(c) => &c.url,
        }
    }

    /// The next nonce to use, counting the pool (IoTeX shares nonces between native and web3 actions).
    pub async fn pending_nonce(&self, a: Address) -> Result<u64, RpcError> {
        match self {
            Node::Web3(r) => r.pending_nonce(a).await,
            Node::Grpc(c) => c.pending_nonce(a).await,
        }
    }

    /// The nonce the report's `end_nonce` holds (`eth_getTransactionCount(…, "latest")`, which IoTeX answers
    /// with the pending nonce; over gRPC, `pendingNonce` for the same meaning).
    pub async fn latest_nonce(&self, a: Address) -> Result<u64, RpcError> {
        match self {
            Node::Web3(r) => r.latest_nonce(a).await,
            Node::Grpc(c) => c.pending_nonce(a).await,
        }
    }

    /// The account's balance in rau (`eth_getBalance` / `GetAccount`).
    pub async fn balance(&self, a: Address) -> Result<alloy_primitives::U256, RpcError> {
        match self {
            Node::Web3(r) => r.balance(a).await,
            Node::Grpc(c) => c.balance(a).await,
        }
    }

    /// The head height.
    pub async fn block_number(&self) -> Result<u64, RpcError> {
        match self {
            Node::Web3(r) => r.block_number().await,
            Node::Grpc(c) => c.chain_meta().await.map(|m| m.height),
        }
    }

    /// The node's gas price (`eth_gasPrice` / `SuggestGasPrice`).
    pub async fn gas_price(&self) -> Result<u128, RpcError> {
        match self {
            Node::Web3(r) => r.gas_price().await,
            Node::Grpc(c) => c.gas_price().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_prefixes_name_the_api() {
        assert_eq!(split_endpoint("grpc=127.0.0.1:14014", Api::Web3), (Api::Grpc, "127.0.0.1:14014"));
        assert_eq!(split_endpoint(" web3=http://a:15014 ", Api::Grpc), (Api::Web3, "http://a:15014"));
        assert_eq!(split_endpoint("127.0.0.1:14014", Api::Grpc), (Api::Grpc, "127.0.0.1:14014"));
        assert_eq!(split_endpoint("http://a:15014/?x=1", Api::Web3), (Api::Web3, "http://a:15014/?x=1"));
        assert_eq!(split_endpoint("http://a/?grpc=1", Api::Web3), (Api::Web3, "http://a/?grpc=1"));
        assert_eq!(split_endpoint("", Api::Web3), (Api::Web3, ""));
    }
}
