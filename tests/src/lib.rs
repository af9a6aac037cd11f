//! Test support: real nodes, raw HTTP, and waiting without fixed sleeps.
//!
//! Layout:
//! - [`nodes`]: real anvil and ganache processes on loopback ports (pinned by `tools/peers`), with the fault
//!   knobs a real node offers (SIGSTOP, kill, `anvil_mine`).
//! - [`gateway`]: the real gateway in process on port 0, configured through its own flag parser.
//! - [`mock`]: a hand-rolled upstream for faults real nodes cannot stage (429 with an empty body, resets).
//! - [`inject`]: the injector run in process against real nodes; [`sink`]: a fast loopback JSON-RPC sink.
//! - [`iotex`]: a real IoTeX cluster (5 `iotex-server` processes from the chart's rendering) on loopback.
//! - [`corpus`]: the execution-apis request corpus (`tests/corpus/`) for differential tests.
//! - [`dns`]: a loopback DNS server whose records a test changes (discovery).
//! - [`protobuf_peer`]: Python `protobuf` as an independent decoder of native IoTeX actions.
//! - [`bins`]: the real gateway and injector binaries as child processes (to `kill -9`, to read their CPU time).
//! - [`capture`]: every log line and `/metrics` scrape of the run kept under `target/test-logs/<run>/`, and
//!   [`leak_scan`]: the scan that proves no test secret is in them.
//! - [`http`]: a raw HTTP/1.1 client for asserting exact statuses, headers and bodies.
//! - [`load`]: steady JSON-RPC read load that counts what succeeded, keeps what failed and times every call.
//! - [`netns`]: a network namespace of the test's own, joined by a veth pair, with loss and partition
//!   faults; [`toxiproxy`]: delay and bandwidth faults on its ports (the chaos test).
//! - [`eventually`]: poll a condition until it holds or a bounded deadline passes; [`replace_file`]: swap a
//!   watched file's content the way a ConfigMap update does.
//!
//! Every process a helper starts is killed when its handle drops, so a failing test leaves nothing behind.

pub mod bins;
pub mod capture;
pub mod corpus;
pub mod dns;
pub mod gateway;
pub mod http;
pub mod inject;
pub mod iotex;
pub mod leak_scan;
pub mod load;
pub mod mock;
pub mod netns;
pub mod nodes;
pub mod protobuf_peer;
pub mod sink;
pub mod toxiproxy;

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 50 ms until it returns `Some`, or fails after `within`.
///
/// Tests wait on a condition, never a fixed sleep: fast when the machine is fast, patient when it is busy.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces a file the way a ConfigMap update swaps it: write aside, then rename over, so a reader that polls
/// the file (config reload, revocation list) never sees half a file.
pub fn replace_file(path: &std::path::Path, body: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
