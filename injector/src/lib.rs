//! probe
pub mod address;
pub mod config;
pub mod error;
pub mod schedule;
pub mod signer;
pub mod thresholds;
