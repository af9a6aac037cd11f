//! `rpc-sink [ADDR]`: the bench's fast JSON-RPC sink (see `iotex_tests::sink`), one thread, loopback only.
//!
//! Prints `listening on ADDR` and serves until killed. The address must be a loopback address.

use iotex_tests::sink::{Sink, serve};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

fn main() -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into()).parse()?;
    anyhow::ensure!(addr.ip().is_loopback(), "the sink only listens on loopback, not {addr}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener, Sink::new(), Arc::new(AtomicU64::new(0))).await;
        Ok(())
    })
}
