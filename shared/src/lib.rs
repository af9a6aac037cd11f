//! What the gateway, the injector and the tests must agree on.
//!
//! Layout:
//! - [`jsonrpc`]: JSON-RPC 2.0 envelopes (borrowed, `params` kept raw) and the error codes on the wire.
//! - [`hex`]: the one reader of JSON-RPC hex quantities (`0x1a`).
//! - [`duration`]: human durations (`200ms`, `2s`, `1m`) for flags, env vars and TOML.
//! - [`layered`]: one layering rule for both binaries' settings: flags > env > config file > defaults.
//! - [`shutdown`]: the one `shutdown_signal()` both binaries stop on (SIGTERM from Kubernetes, SIGINT).
//! - [`telemetry`]: tracing set-up: JSON lines for Fluentd, readable text on a TTY.
//! - [`metrics`]: the one way both binaries register Prometheus metrics, with a catalog for the docs.
//! - [`report`]: the injector report schema (what the injector writes and tests read).
//!
//! Nothing here is either binary's configuration, health state or nonce logic.

pub mod duration;
pub mod hex;
pub mod jsonrpc;
pub mod layered;
pub mod metrics;
pub mod report;
pub mod shutdown;
pub mod telemetry;
