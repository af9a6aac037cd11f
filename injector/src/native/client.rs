//! The gRPC client of `iotexapi.APIService` (tonic), for the hot path (`SendAction`) and control calls.
//!
//! There is no generated stub: each call is [`tonic::client::Grpc`] with prost's codec and the method's
//! path, which is exactly what protoc-generated code does. One [`tonic::transport::Channel`] per endpoint
//! (one HTTP/2 connection, requests multiplexed) is shared by every task; it connects lazily, so a node
//! that is down shows up as `connection` failures, not as a start-up hang.
//!
//! Failure kinds come from the status ([`classify`]): the node's actpool refuses with `Internal` and the
//! same texts as its web3 answers ("nonce too low", "insufficient funds…"), which
//! [`Kind::from_message`] already knows; the code decides the transport kinds (unavailable → connection,
//! deadline → timeout, resource exhausted → busy: the node's gRPC concurrency limit).

use super::proto::{self, Action};
use crate::error::{Kind, RpcError};
use crate::send::SendOutcome;
use alloy_primitives::{Address, B256, U256};
use http::uri::PathAndQuery;
use std::time::Duration;
use tonic::client::Grpc;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

const SVC: &str = "/iotexapi.APIService/";

/// One endpoint's gRPC client.
#[derive(Clone, Debug)]
pub struct Client {
    grpc: Grpc<Channel>,
    /// `HOST:PORT` as configured.
    pub url: String,
    timeout: Duration,
}

/// The outcome of looking an action up at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// In a block, with the receipt's status (1 = success).
    Included {
        /// Receipt status.
        status: u64,
        /// Gas the action used.
        gas_consumed: u64,
    },
    /// Known to the node but not in a block (in its pool).
    Pending,
    /// Unknown to the node.
    Unknown,
}

/// How a gRPC failure reads as a failure kind, and whether the node may have acted on the request.
pub fn classify(status: &Status) -> (Kind, bool) {
    let msg = status.message();
    match status.code() {
        // Refused before the request was written (connect error): the node never saw it.
        Code::Unavailable if msg.contains("connect") || msg.contains("Connection refused") => (Kind::Connection, false),
        Code::Unavailable | Code::Unknown if msg.contains("transport") || msg.contains("connection") => {
            (Kind::Connection, true)
        }
        Code::Unavailable => (Kind::Connection, true),
        Code::DeadlineExceeded | Code::Cancelled => (Kind::Timeout, true),
        Code::ResourceExhausted => match Kind::from_message(msg) {
            Kind::Other => (Kind::Busy, false),
            k => (k, false),
        },
        _ => (Kind::from_message(msg), false),
    }
}

impl Client {
    /// A lazily connected client for `HOST:PORT` (or `http://HOST:PORT`).
    pub fn new(addr: &str, timeout: Duration) -> Result<Client, RpcError> {
        let uri = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
        let endpoint = Endpoint::from_shared(uri).map_err(|e| RpcError {
            endpoint: addr.to_owned(),
            method: "connect",
            kind: Kind::Other,
            message: e.to_string(),
        })?;
        let channel = endpoint
            .tcp_nodelay(true)
            .connect_timeout(timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .connect_lazy();
        Ok(Client { grpc: Grpc::new(channel), url: addr.to_owned(), timeout })
    }

    fn err(&self, method: &'static str, status: &Status) -> RpcError {
        RpcError { endpoint: self.url.clone(), method, kind: classify(status).0, message: status.message().to_owned() }
    }

    /// One unary call with the per-request timeout.
    async fn unary<Req, Resp>(&self, method: &'static str, req: Req) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = self.grpc.clone();
        let path = PathAndQuery::try_from(format!("{SVC}{method}")).map_err(|e| Status::internal(e.to_string()))?;
        let call = async move {
            grpc.ready().await.map_err(|e| Status::unavailable(format!("connect: {e}")))?;
            grpc.unary(tonic::Request::new(req), path, tonic_prost::ProstCodec::<Req, Resp>::default()).await
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded("request timed out")),
        }
    }

    /// `SendAction`: the hot path.
    pub async fn send_action(&self, action: Action) -> (SendOutcome, Option<B256>) {
        let req = proto::SendActionRequest { action: Some(action) };
        match self.unary::<_, proto::SendActionResponse>("SendAction", req).await {
            Ok(r) => (SendOutcome::Accepted, parse_hash(&r.action_hash)),
            Err(s) => match classify(&s) {
                (k, true) => (SendOutcome::Unknown(k), None),
                (k, false) => (SendOutcome::Rejected(k, s.message().to_owned()), None),
            },
        }
    }

    /// `SendAction` for set-up: the action hash, or the refusal as an error.
    pub async fn send(&self, action: Action) -> Result<B256, RpcError> {
        let req = proto::SendActionRequest { action: Some(action) };
        let r = self
            .unary::<_, proto::SendActionResponse>("SendAction", req)
            .await
            .map_err(|s| self.err("SendAction", &s))?;
        parse_hash(&r.action_hash).ok_or_else(|| self.bad("SendAction", &r.action_hash))
    }

    fn bad(&self, method: &'static str, what: &str) -> RpcError {
        RpcError {
            endpoint: self.url.clone(),
            method,
            kind: Kind::Other,
            message: format!("unexpected answer {what:?}"),
        }
    }

    /// `GetChainMeta`: the native chain id and the tip height.
    pub async fn chain_meta(&self) -> Result<proto::ChainMeta, RpcError> {
        let r = self
            .unary::<_, proto::GetChainMetaResponse>("GetChainMeta", proto::Empty {})
            .await
            .map_err(|s| self.err("GetChainMeta", &s))?;
        r.chain_meta.ok_or_else(|| self.bad("GetChainMeta", "no chainMeta"))
    }

    /// `SuggestGasPrice`.
    pub async fn gas_price(&self) -> Result<u128, RpcError> {
        let r = self
            .unary::<_, proto::SuggestGasPriceResponse>("SuggestGasPrice", proto::Empty {})
            .await
            .map_err(|s| self.err("SuggestGasPrice", &s))?;
        Ok(u128::from(r.gas_price))
    }

    /// `GetAccount`: the account's meta (balance, nonces).
    async fn account(&self, a: Address) -> Result<proto::AccountMeta, RpcError> {
        let req = proto::GetAccountRequest { address: crate::address::to_io(&a) };
        let r = self
            .unary::<_, proto::GetAccountResponse>("GetAccount", req)
            .await
            .map_err(|s| self.err("GetAccount", &s))?;
        r.account_meta.ok_or_else(|| self.bad("GetAccount", "no accountMeta"))
    }

    /// `GetAccount` → `pendingNonce`, the next nonce to use (IoTeX shares it between native and web3).
    pub async fn pending_nonce(&self, a: Address) -> Result<u64, RpcError> {
        self.account(a).await.map(|m| m.pending_nonce)
    }

    /// `GetAccount` → `balance` (decimal rau).
    pub async fn balance(&self, a: Address) -> Result<U256, RpcError> {
        let meta = self.account(a).await?;
        U256::from_str_radix(&meta.balance, 10)
            .map_err(|_| self.bad("GetAccount", &format!("balance {:?} is not a decimal amount", meta.balance)))
    }

    /// `GetReceiptByAction`: `None` while the action is not in a block.
    pub async fn receipt(&self, hash: B256) -> Result<Option<proto::Receipt>, RpcError> {
        let req = proto::GetReceiptByActionRequest { action_hash: alloy_primitives::hex::encode(hash) };
        match self.unary::<_, proto::GetReceiptByActionResponse>("GetReceiptByAction", req).await {
            Ok(r) => Ok(r.receipt_info.and_then(|i| i.receipt)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.err("GetReceiptByAction", &s)),
        }
    }

    /// Included (receipt), pending (`GetActions` by hash with `checkPending`), or unknown to the node.
    pub async fn lookup(&self, hash: B256) -> Result<Lookup, RpcError> {
        if let Some(r) = self.receipt(hash).await? {
            return Ok(Lookup::Included { status: r.status, gas_consumed: r.gas_consumed });
        }
        let by_hash =
            proto::GetActionByHashRequest { action_hash: alloy_primitives::hex::encode(hash), check_pending: true };
        match self
            .unary::<_, proto::GetActionsResponse>("GetActions", proto::GetActionsRequest { by_hash: Some(by_hash) })
            .await
        {
            Ok(_) => Ok(Lookup::Pending),
            Err(s) if s.code() == Code::NotFound => Ok(Lookup::Unknown),
            Err(s) => Err(self.err("GetActions", &s)),
        }
    }

    /// Waits up to `within` for an action's receipt (set-up: funding, deployment).
    pub async fn wait_receipt(&self, hash: B256, within: Duration) -> Result<Option<proto::Receipt>, RpcError> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(r) = self.receipt(hash).await? {
                return Ok(Some(r));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(None)
    }

    /// `GetRawBlocks` with receipts: `count` blocks from `start` (fewer at the tip).
    pub async fn raw_blocks(&self, start: u64, count: u64) -> Result<Vec<proto::BlockInfo>, RpcError> {
        let req = proto::GetRawBlocksRequest { start_height: start, count, with_receipts: true };
        let r = self
            .unary::<_, proto::GetRawBlocksResponse>("GetRawBlocks", req)
            .await
            .map_err(|s| self.err("GetRawBlocks", &s))?;
        Ok(r.blocks)
    }

    /// `StreamBlocks`: every block the node commits from now on, with its receipts.
    pub async fn stream_blocks(&self) -> Result<tonic::Streaming<proto::StreamBlocksResponse>, RpcError> {
        let mut grpc = self.grpc.clone();
        let path = PathAndQuery::from_static("/iotexapi.APIService/StreamBlocks");
        let open = async move {
            grpc.ready().await.map_err(|e| Status::unavailable(format!("connect: {e}")))?;
            let codec = tonic_prost::ProstCodec::<proto::Empty, proto::StreamBlocksResponse>::default();
            grpc.server_streaming(tonic::Request::new(proto::Empty {}), path, codec).await
        };
        match tokio::time::timeout(self.timeout, open).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(self.err("StreamBlocks", &s)),
            Err(_) => Err(self.err("StreamBlocks", &Status::deadline_exceeded("request timed out"))),
        }
    }
}

/// A 32-byte hash from the node's hex (with or without 0x).
pub fn parse_hash(s: &str) -> Option<B256> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    let bytes = alloy_primitives::hex::decode(h).ok()?;
    (bytes.len() == 32).then(|| B256::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let k = |code, msg: &str| classify(&Status::new(code, msg));
        assert_eq!(k(Code::Internal, "nonce too low"), (Kind::NonceTooLow, false));
        assert_eq!(k(Code::Internal, "insufficient funds for gas * price + value"), (Kind::InsufficientFunds, false));
        assert_eq!(k(Code::Internal, "txpool is full"), (Kind::PoolFull, false));
        assert_eq!(k(Code::InvalidArgument, "ChainID does not match, expecting 1, got 2"), (Kind::ChainId, false));
        assert_eq!(k(Code::ResourceExhausted, "too many"), (Kind::Busy, false));
        assert_eq!(k(Code::Unavailable, "connect: tcp connect error"), (Kind::Connection, false));
        assert_eq!(k(Code::Unavailable, "h2 protocol error"), (Kind::Connection, true));
        assert_eq!(k(Code::DeadlineExceeded, "request timed out"), (Kind::Timeout, true));
        assert_eq!(k(Code::Internal, "something new"), (Kind::Other, false));
    }

    #[test]
    fn hashes_parse_only_when_32_bytes() {
        let h = "aa".repeat(32);
        assert_eq!(parse_hash(&h), Some(B256::repeat_byte(0xaa)));
        assert_eq!(parse_hash(&format!("0x{h}")), Some(B256::repeat_byte(0xaa)));
        assert_eq!(parse_hash("abc"), None);
        assert_eq!(parse_hash(&"aa".repeat(31)), None);
        assert_eq!(parse_hash("zz"), None);
        assert_eq!(parse_hash(""), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connection_failure_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = Client::new(&format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        let e = c.chain_meta().await.unwrap_err();
        assert_eq!(e.kind, Kind::Connection, "{e}");
        assert!(Client::new("not a uri at all", Duration::from_secs(1)).is_err());
    }
}
