//! Real EVM JSON-RPC nodes on loopback: anvil (foundry, Rust) and ganache (EthereumJS).
//!
//! Both are pinned in `tools/peers/package-lock.json` and installed by `scripts/install-peers.sh`. They listen
//! only on 127.0.0.1, on a port picked by the OS. They run with the IoTeX mainnet EVM chain id (4689) and the
//! well-known dev mnemonic, so the same keys are funded on every node.

use crate::http::RawClient;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// IoTeX mainnet's EVM chain id, which the dev nodes are started with.
pub const CHAIN_ID: u64 = 4689;
/// The dev mnemonic both nodes fund ten accounts from.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// The private keys of dev accounts 0..4 (funded on both nodes).
pub const DEV_KEYS: [&str; 5] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];
/// The addresses of dev accounts 0..4.
pub const DEV_ADDRESSES: [&str; 5] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
];

/// Which implementation a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// foundry's anvil.
    Anvil,
    /// Truffle's ganache.
    Ganache,
}

/// A running node; killed when dropped.
pub struct Node {
    /// Which implementation.
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The loopback port.
    pub port: u16,
    child: Option<Child>,
    pid: i32,
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/peers/node_modules")
}

fn anvil_bin() -> anyhow::Result<PathBuf> {
    let p = peers_dir().join("@foundry-rs/anvil-linux-amd64/bin/anvil");
    anyhow::ensure!(p.exists(), "anvil is not installed at {}; run scripts/install-peers.sh", p.display());
    Ok(p)
}

fn ganache_cli() -> anyhow::Result<PathBuf> {
    let p = peers_dir().join("ganache/dist/node/cli.js");
    anyhow::ensure!(p.exists(), "ganache is not installed at {}; run scripts/install-peers.sh", p.display());
    Ok(p)
}

/// Asks the OS for a free loopback port. Another process could take it before the node binds; [`Node`]
/// start-up retries on a fresh port when that happens.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Node {
    /// Starts anvil with `extra` arguments (e.g. `["--block-time", "1"]`).
    pub async fn anvil(extra: &[&str]) -> anyhow::Result<Node> {
        Self::anvil_on(None, extra).await
    }

    /// Starts anvil on a given port (to bring a killed node back at the same address), or any free port.
    pub async fn anvil_on(port: Option<u16>, extra: &[&str]) -> anyhow::Result<Node> {
        Self::anvil_at("127.0.0.1", port, extra).await
    }

    /// Starts anvil on a given loopback address (several nodes can then share one port, as pods behind a
    /// headless Service do).
    pub async fn anvil_at(host: &str, port: Option<u16>, extra: &[&str]) -> anyhow::Result<Node> {
        let bin = anvil_bin()?;
        Self::start(Kind::Anvil, host, port, |port| {
            let mut c = Command::new(&bin);
            c.args(["--host", host, "--port", &port.to_string(), "--chain-id", &CHAIN_ID.to_string()])
                .args(["--silent", "--mnemonic", DEV_MNEMONIC])
                .args(extra);
            c
        })
        .await
    }

    /// Starts ganache with `extra` arguments (e.g. `["--miner.instamine", "strict"]`).
    pub async fn ganache(extra: &[&str]) -> anyhow::Result<Node> {
        let cli = ganache_cli()?;
        Self::start(Kind::Ganache, "127.0.0.1", None, |port| {
            let mut c = Command::new("node");
            c.arg(&cli)
                .args(["--server.host", "127.0.0.1", "--server.port", &port.to_string(), "--logging.quiet"])
                .args(["--chain.chainId", &CHAIN_ID.to_string(), "--chain.networkId", &CHAIN_ID.to_string()])
                .args(["--wallet.mnemonic", DEV_MNEMONIC])
                .args(extra);
            c
        })
        .await
    }

    async fn start(
        kind: Kind,
        host: &str,
        fixed: Option<u16>,
        mut make: impl FnMut(u16) -> Command,
    ) -> anyhow::Result<Node> {
        // Every test that starts a node gets its log lines kept for the end-of-run secret scan, also when it
        // then runs the injector in process (whose own `telemetry::init` keeps this subscriber).
        crate::capture::init_tracing();
        let mut last_err = None;
        for _attempt in 0..3 {
            let port = match fixed {
                Some(p) => p,
                None => free_port()?,
            };
            let mut cmd = make(port);
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
            let child = cmd.spawn()?;
            let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
            let mut node = Node { kind, url: format!("http://{host}:{port}"), port, child: Some(child), pid };
            match node.wait_ready(Duration::from_secs(20)).await {
                Ok(()) => return Ok(node),
                Err(e) => {
                    node.kill();
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("{kind:?} did not start")))
    }

    async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let client = RawClient::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                anyhow::bail!("{:?} exited during start-up: {status}", self.kind);
            }
            if client.call(&self.url, "eth_chainId", serde_json::json!([])).await.is_ok() {
                return Ok(());
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{:?} not ready after {within:?}", self.kind);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// SIGSTOP: the node keeps its sockets open but answers nothing (a hung node).
    pub fn pause(&self) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGSTOP)?;
        Ok(())
    }

    /// SIGCONT: a paused node resumes.
    pub fn resume(&self) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGCONT)?;
        Ok(())
    }

    /// Kills the node (connections are refused afterwards).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process must be continued to die promptly on some kernels' SIGKILL delivery order.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGCONT);
            let _ = child.start_kill();
            // Reap in the background so no zombie is left; drop cannot await.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
    }

    /// One JSON-RPC call straight to this node.
    pub async fn rpc(&self, method: &str, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        RawClient::new().call(&self.url, method, params).await
    }

    /// The node's head block number.
    pub async fn block_number(&self) -> anyhow::Result<u64> {
        let v = self.rpc("eth_blockNumber", serde_json::json!([])).await?;
        parse_quantity(&v)
    }

    /// A legacy EIP-155 transfer of `value` (a hex quantity) from dev account `from` to the next one, signed by
    /// this node with the dev key it holds (anvil's `eth_signTransaction`); the raw bytes, `0x`-prefixed.
    pub async fn signed_transfer(&self, from: usize, nonce: u64, value: &str) -> anyhow::Result<String> {
        let tx = serde_json::json!({
            "from": DEV_ADDRESSES[from], "to": DEV_ADDRESSES[(from + 1) % 5], "value": value,
            "gas": "0x5208", "gasPrice": "0x3b9aca00", "nonce": format!("0x{nonce:x}"), "chainId": "0x1251",
        });
        let raw = self.rpc("eth_signTransaction", serde_json::json!([tx])).await?;
        raw.as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no raw tx: {raw}"))
    }

    /// Mines `n` blocks at once (anvil `anvil_mine`, ganache `evm_mine` per block).
    pub async fn mine(&self, n: u64) -> anyhow::Result<()> {
        match self.kind {
            Kind::Anvil => {
                self.rpc("anvil_mine", serde_json::json!([format!("0x{n:x}")])).await?;
            }
            Kind::Ganache => {
                for _ in 0..n {
                    self.rpc("evm_mine", serde_json::json!([])).await?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGCONT);
            let _ = child.start_kill();
        }
    }
}

/// Parses a JSON-RPC quantity (`"0x1a"`) with the workspace's one reader ([`iotex_shared::hex`]).
pub fn parse_quantity(v: &serde_json::Value) -> anyhow::Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow::anyhow!("quantity is not a string: {v}"))?;
    Ok(iotex_shared::hex::quantity(s)?)
}
