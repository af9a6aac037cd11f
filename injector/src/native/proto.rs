//! The protobuf messages of IoTeX's native API, written by hand (no protoc here) with the field numbers of
//! iotex-proto (`proto/types/action.proto`, `proto/types/blockchain.proto`, `proto/api/api.proto`).
//!
//! Only the fields the injector reads or writes are declared; prost skips the others when decoding, which is
//! also why a reply can grow new fields without breaking us.
//!
//! **Byte order matters for [`ActionCore`]**: the node hashes and verifies its own Go re-marshal of what it
//! parsed, and Go (protobuf-go) writes every non-oneof field in field-number order and *then* the oneof.
//! prost's derive writes fields by tag, which would put the oneof (`transfer` = 10, `execution` = 12) before
//! `txType` = 28 and `setCodeAuthList` = 29. Legacy actions (txType 0, no authorizations) come out the same
//! either way; anything else would be signed over bytes the node never reproduces. So [`ActionCore`] has a
//! manual [`prost::Message`] impl that emits fields 1-9, then 28, 29, then the oneof.

use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};

/// `iotextypes.Transfer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Transfer {
    /// Decimal Rau ("0", never "").
    #[prost(string, tag = "1")]
    pub amount: String,
    /// `io1…` recipient.
    #[prost(string, tag = "2")]
    pub recipient: String,
    /// Free bytes (costs 100 gas per byte).
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
}

/// `iotextypes.Execution`: a contract call, or a deployment when `contract` is empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Execution {
    /// Decimal Rau.
    #[prost(string, tag = "1")]
    pub amount: String,
    /// `io1…` contract, empty to deploy `data`.
    #[prost(string, tag = "2")]
    pub contract: String,
    /// Calldata or creation code.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// `iotextypes.AccessTuple` (EIP-2930).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AccessTuple {
    /// Hex address.
    #[prost(string, tag = "1")]
    pub address: String,
    /// Hex storage keys.
    #[prost(string, repeated, tag = "2")]
    pub storage_keys: Vec<String>,
}

/// `iotextypes.SetCodeAuthorization` (EIP-7702).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetCodeAuthorization {
    /// Chain id.
    #[prost(uint32, tag = "1")]
    pub chain_id: u32,
    /// Delegate address (20 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub address: Vec<u8>,
    /// Authority nonce.
    #[prost(uint64, tag = "3")]
    pub nonce: u64,
    /// Recovery id.
    #[prost(uint64, tag = "4")]
    pub v: u64,
    /// Signature r.
    #[prost(bytes = "vec", tag = "5")]
    pub r: Vec<u8>,
    /// Signature s.
    #[prost(bytes = "vec", tag = "6")]
    pub s: Vec<u8>,
}

/// The `action` oneof of `ActionCore`: the two kinds the injector sends.
#[derive(Clone, PartialEq, Debug)]
pub enum Payload {
    /// Field 10.
    Transfer(Transfer),
    /// Field 12.
    Execution(Execution),
}

/// `iotextypes.ActionCore`, encoded in Go's field order (see the module doc).
///
/// Field 8 (`blobTxData`) is not declared: the injector never sends blob actions, and decoding skips it.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct ActionCore {
    /// 1: always 1 today.
    pub version: u32,
    /// 2.
    pub nonce: u64,
    /// 3.
    pub gas_limit: u64,
    /// 4: decimal Rau.
    pub gas_price: String,
    /// 5: the *native* chain id (`chain.id`, e.g. 1), not the EVM network id.
    pub chain_id: u32,
    /// 6: decimal Rau (dynamic-fee actions).
    pub gas_tip_cap: String,
    /// 7: decimal Rau (dynamic-fee actions).
    pub gas_fee_cap: String,
    /// 9.
    pub access_list: Vec<AccessTuple>,
    /// 28: 0 legacy, 1 access list, 2 dynamic fee, 4 set code.
    pub tx_type: u32,
    /// 29.
    pub set_code_auth_list: Vec<SetCodeAuthorization>,
    /// The oneof (10 transfer, 12 execution; other kinds are skipped when decoding).
    pub action: Option<Payload>,
}

impl prost::Message for ActionCore {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        // Go's order: every non-oneof field by number (1-9, 28, 29), then the oneof.
        if self.version != 0 {
            encoding::uint32::encode(1, &self.version, buf);
        }
        if self.nonce != 0 {
            encoding::uint64::encode(2, &self.nonce, buf);
        }
        if self.gas_limit != 0 {
            encoding::uint64::encode(3, &self.gas_limit, buf);
        }
        if !self.gas_price.is_empty() {
            encoding::string::encode(4, &self.gas_price, buf);
        }
        if self.chain_id != 0 {
            encoding::uint32::encode(5, &self.chain_id, buf);
        }
        if !self.gas_tip_cap.is_empty() {
            encoding::string::encode(6, &self.gas_tip_cap, buf);
        }
        if !self.gas_fee_cap.is_empty() {
            encoding::string::encode(7, &self.gas_fee_cap, buf);
        }
        encoding::message::encode_repeated(9, &self.access_list, buf);
        if self.tx_type != 0 {
            encoding::uint32::encode(28, &self.tx_type, buf);
        }
        encoding::message::encode_repeated(29, &self.set_code_auth_list, buf);
        match &self.action {
            Some(Payload::Transfer(t)) => encoding::message::encode(10, t, buf),
            Some(Payload::Execution(e)) => encoding::message::encode(12, e, buf),
            None => {}
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => encoding::uint32::merge(wire_type, &mut self.version, buf, ctx),
            2 => encoding::uint64::merge(wire_type, &mut self.nonce, buf, ctx),
            3 => encoding::uint64::merge(wire_type, &mut self.gas_limit, buf, ctx),
            4 => encoding::string::merge(wire_type, &mut self.gas_price, buf, ctx),
            5 => encoding::uint32::merge(wire_type, &mut self.chain_id, buf, ctx),
            6 => encoding::string::merge(wire_type, &mut self.gas_tip_cap, buf, ctx),
            7 => encoding::string::merge(wire_type, &mut self.gas_fee_cap, buf, ctx),
            9 => encoding::message::merge_repeated(wire_type, &mut self.access_list, buf, ctx),
            28 => encoding::uint32::merge(wire_type, &mut self.tx_type, buf, ctx),
            29 => encoding::message::merge_repeated(wire_type, &mut self.set_code_auth_list, buf, ctx),
            10 => {
                let mut t = match self.action.take() {
                    Some(Payload::Transfer(t)) => t,
                    _ => Transfer::default(),
                };
                encoding::message::merge(wire_type, &mut t, buf, ctx)?;
                self.action = Some(Payload::Transfer(t));
                Ok(())
            }
            12 => {
                let mut e = match self.action.take() {
                    Some(Payload::Execution(e)) => e,
                    _ => Execution::default(),
                };
                encoding::message::merge(wire_type, &mut e, buf, ctx)?;
                self.action = Some(Payload::Execution(e));
                Ok(())
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let mut n = 0;
        if self.version != 0 {
            n += encoding::uint32::encoded_len(1, &self.version);
        }
        if self.nonce != 0 {
            n += encoding::uint64::encoded_len(2, &self.nonce);
        }
        if self.gas_limit != 0 {
            n += encoding::uint64::encoded_len(3, &self.gas_limit);
        }
        if !self.gas_price.is_empty() {
            n += encoding::string::encoded_len(4, &self.gas_price);
        }
        if self.chain_id != 0 {
            n += encoding::uint32::encoded_len(5, &self.chain_id);
        }
        if !self.gas_tip_cap.is_empty() {
            n += encoding::string::encoded_len(6, &self.gas_tip_cap);
        }
        if !self.gas_fee_cap.is_empty() {
            n += encoding::string::encoded_len(7, &self.gas_fee_cap);
        }
        n += encoding::message::encoded_len_repeated(9, &self.access_list);
        if self.tx_type != 0 {
            n += encoding::uint32::encoded_len(28, &self.tx_type);
        }
        n += encoding::message::encoded_len_repeated(29, &self.set_code_auth_list);
        n + match &self.action {
            Some(Payload::Transfer(t)) => encoding::message::encoded_len(10, t),
            Some(Payload::Execution(e)) => encoding::message::encoded_len(12, e),
            None => 0,
        }
    }

    fn clear(&mut self) {
        *self = ActionCore::default();
    }
}

/// `iotextypes.Action`: the signed envelope. `encoding` 0 (protobuf) is omitted on the wire, as Go omits it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Action {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub core: Option<ActionCore>,
    /// 2: 65 bytes, 04‖X‖Y.
    #[prost(bytes = "vec", tag = "2")]
    pub sender_pub_key: Vec<u8>,
    /// 3: 65 bytes, R‖S‖V with V in {0, 1}.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    /// 4: 0 = IOTEX_PROTOBUF.
    #[prost(int32, tag = "4")]
    pub encoding: i32,
}

/// `iotexapi.SendActionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendActionRequest {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub action: Option<Action>,
}

/// `iotexapi.SendActionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendActionResponse {
    /// Hex, no 0x.
    #[prost(string, tag = "1")]
    pub action_hash: String,
}

/// `iotexapi.GetAccountRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetAccountRequest {
    /// `io1…`.
    #[prost(string, tag = "1")]
    pub address: String,
}

/// `iotextypes.AccountMeta` (the fields read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AccountMeta {
    /// 1.
    #[prost(string, tag = "1")]
    pub address: String,
    /// 2: decimal Rau.
    #[prost(string, tag = "2")]
    pub balance: String,
    /// 3: confirmed nonce.
    #[prost(uint64, tag = "3")]
    pub nonce: u64,
    /// 4: the next nonce to use, counting the pool.
    #[prost(uint64, tag = "4")]
    pub pending_nonce: u64,
}

/// `iotexapi.GetAccountResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetAccountResponse {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub account_meta: Option<AccountMeta>,
}

/// An empty request (`GetChainMetaRequest`, `SuggestGasPriceRequest`, `StreamBlocksRequest`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `iotextypes.ChainMeta` (the fields read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChainMeta {
    /// 1: tip height.
    #[prost(uint64, tag = "1")]
    pub height: u64,
    /// 6: native chain id.
    #[prost(uint32, tag = "6")]
    pub chain_id: u32,
}

/// `iotexapi.GetChainMetaResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetChainMetaResponse {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub chain_meta: Option<ChainMeta>,
}

/// `iotexapi.SuggestGasPriceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SuggestGasPriceResponse {
    /// 1: Rau.
    #[prost(uint64, tag = "1")]
    pub gas_price: u64,
}

/// `iotextypes.Receipt` (the fields read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Receipt {
    /// 1: 1 = success.
    #[prost(uint64, tag = "1")]
    pub status: u64,
    /// 2.
    #[prost(uint64, tag = "2")]
    pub blk_height: u64,
    /// 3: 32 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub act_hash: Vec<u8>,
    /// 4: gas the action used (its fee is this × the gas price it was signed with).
    #[prost(uint64, tag = "4")]
    pub gas_consumed: u64,
    /// 5: `io1…` of a deployed contract.
    #[prost(string, tag = "5")]
    pub contract_address: String,
    /// 7.
    #[prost(string, tag = "7")]
    pub execution_revert_msg: String,
}

/// `iotexapi.GetReceiptByActionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetReceiptByActionRequest {
    /// Hex, no 0x.
    #[prost(string, tag = "1")]
    pub action_hash: String,
}

/// `iotexapi.ReceiptInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReceiptInfo {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub receipt: Option<Receipt>,
}

/// `iotexapi.GetReceiptByActionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetReceiptByActionResponse {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub receipt_info: Option<ReceiptInfo>,
}

/// `iotexapi.GetActionByHashRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetActionByHashRequest {
    /// Hex, no 0x.
    #[prost(string, tag = "1")]
    pub action_hash: String,
    /// Also look in the action pool.
    #[prost(bool, tag = "2")]
    pub check_pending: bool,
}

/// `iotexapi.GetActionsRequest` with its `lookup` oneof set to `byHash` (field 2): a oneof with one member
/// set is wire-identical to an optional field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetActionsRequest {
    /// 2.
    #[prost(message, optional, tag = "2")]
    pub by_hash: Option<GetActionByHashRequest>,
}

/// `iotexapi.GetActionsResponse` (only the count is read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetActionsResponse {
    /// 2.
    #[prost(uint64, tag = "2")]
    pub total: u64,
}

/// `iotextypes.BlockIdentifier`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockIdentifier {
    /// 1: hex.
    #[prost(string, tag = "1")]
    pub hash: String,
    /// 2.
    #[prost(uint64, tag = "2")]
    pub height: u64,
}

/// `iotexapi.BlockInfo` without field 1 (the block): its receipts carry every action hash and status,
/// which is all inclusion needs, and prost skips the block's bytes without building it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockInfo {
    /// 2.
    #[prost(message, repeated, tag = "2")]
    pub receipts: Vec<Receipt>,
}

/// `iotexapi.StreamBlocksResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamBlocksResponse {
    /// 1.
    #[prost(message, optional, tag = "1")]
    pub block: Option<BlockInfo>,
    /// 2.
    #[prost(message, optional, tag = "2")]
    pub block_identifier: Option<BlockIdentifier>,
}

/// `iotexapi.GetRawBlocksRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRawBlocksRequest {
    /// 1.
    #[prost(uint64, tag = "1")]
    pub start_height: u64,
    /// 2: at most the node's `api.rangeQueryLimit`.
    #[prost(uint64, tag = "2")]
    pub count: u64,
    /// 3.
    #[prost(bool, tag = "3")]
    pub with_receipts: bool,
}

/// `iotexapi.GetRawBlocksResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRawBlocksResponse {
    /// 1: in height order from `start_height`.
    #[prost(message, repeated, tag = "1")]
    pub blocks: Vec<BlockInfo>,
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
