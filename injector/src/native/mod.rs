//! IoTeX's native action path: `iotexapi.APIService` over gRPC (port 14014), the path native clients
//! (ioctl, antenna SDKs) and IoTeX's own actioninjector take. Selected with `--api grpc` or a `grpc=` prefix
//! on `--endpoint` (see [`crate::node`]).
//!
//! - [`proto`]: the messages, by hand with prost and iotex-proto's field numbers; `ActionCore` in Go's byte
//!   order (oneof last), because the node verifies and hashes its own Go re-marshal.
//! - [`sign`]: secp256k1 over legacy Keccak-256 of the core, V in {0, 1}, 65-byte public key; the action hash.
//! - [`client`]: tonic calls by method path; gRPC status → failure kind.
//! - [`follow`]: inclusion via `StreamBlocks` (and `GetRawBlocks` for gaps), reconciliation by hash.
//! - [`setup`]: funding, the Counter deployment and gap fillers as native actions.

pub mod client;
pub mod follow;
pub mod proto;
pub mod setup;
pub mod sign;

pub use client::Client;
