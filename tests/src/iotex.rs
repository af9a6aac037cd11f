//! A real IoTeX cluster on loopback: `scripts/iotex-cluster.sh`, i.e. 5 `iotex-server` processes (the boot
//! node and 4 delegates in ROLLDPOS) configured by the Helm chart's own rendering.
//!
//! Starting one takes a few seconds once the binary is cached (the first run of `scripts/install-iotex.sh`
//! builds it from its Go module, a few minutes). Tests of one process share one cluster through
//! [`Cluster::shared`] and take [`Cluster::exclusive`] for their whole body, so a test that kills a node
//! never overlaps a test that reads from it; a test that stops a node restarts it and waits for it to catch
//! up before it returns. Under nextest each test is a process, so each starts its own cluster (and
//! `.config/nextest.toml` runs them one at a time); under plain `cargo test` every `iotex_*` test of the
//! `it` binary is a thread of one process and they all share one cluster, one test at a time. The cluster is started with `--owner-pid` of the test process, so it stops by
//! itself when that process exits, however it exits.

use crate::http::RawClient;
use crate::nodes::parse_quantity;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

/// One node as `cluster.json` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterNode {
    /// `bootnode-0`, `delegate-0` ...
    pub name: String,
    /// `http://127.0.0.1:PORT` (web3 JSON-RPC).
    pub web3: String,
    /// `ws://127.0.0.1:PORT` (web3 over WebSocket).
    pub ws: String,
    /// `127.0.0.1:PORT` (native gRPC).
    pub grpc: String,
    /// `http://127.0.0.1:PORT` (`/readiness`, `/metrics`).
    pub stats: String,
    /// The process id (changes when a test restarts the node).
    pub pid: i32,
}

/// The contract `scripts/iotex-cluster.sh up` writes to `DIR/cluster.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterInfo {
    /// The EVM chain id (`eth_chainId`, EIP-155).
    pub chain_id: u64,
    /// The native chain id (`ActionCore.chainID`).
    pub native_chain_id: u64,
    /// Every node, boot node first.
    pub nodes: Vec<ClusterNode>,
    /// Hex private keys funded in genesis (iotex-core's public test keys: loopback only).
    pub funded_keys: Vec<String>,
}

/// A running cluster; stopped when dropped (and, failing that, when the test process exits).
pub struct Cluster {
    dir: tempfile::TempDir,
    info: std::sync::Mutex<ClusterInfo>,
    /// The command prefix the cluster script runs under (`ip netns exec NAME` for a cluster in a network
    /// namespace; empty on the test's own loopback).
    wrap: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/iotex-cluster.sh")
}

fn run_script(wrap: &[String], args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = std::process::Command::new(program);
            c.args(rest).arg("bash");
            c
        }
        None => std::process::Command::new("bash"),
    };
    let out = cmd.arg(script()).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "iotex-cluster.sh {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The low end of the kernel's ephemeral port range, from which outgoing connections take their local ports.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A base port whose 50 successors are free on 127.0.0.1 now, below the ephemeral range: a node's port inside
/// it can be taken as the local port of any outgoing connection while the node is down, and its restart then
/// fails to bind (seen in CI: a killed boot node's P2P port). Another process could still take one before the
/// nodes bind; [`Cluster::start`] then tries another range.
fn free_range() -> anyhow::Result<u16> {
    let low = u32::from(ephemeral_low());
    // 10,000 up to the ephemeral range; a machine whose range starts lower falls back to anywhere above 20,000.
    let (start, span) = if low > 10_100 { (10_000u32, low - 10_000 - 50) } else { (20_000, 40_000) };
    for _ in 0..50 {
        let probe = u32::from(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
        let base = u16::try_from(start + (probe % span) / 10 * 10)?;
        if (base..base + 50).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok(base);
        }
    }
    anyhow::bail!("no range of 50 free loopback ports found in 50 tries")
}

static SHARED: OnceCell<Cluster> = OnceCell::const_new();
static EXCLUSIVE: Mutex<()> = Mutex::const_new(());

impl Cluster {
    /// Spawns `g` as a gateway over every node: each node's web3 port (with its stats port's `/readiness` as
    /// health URL when `readiness`) and its own gRPC port. First waits until every node's gRPC port answers:
    /// a node serves web3 a moment before gRPC after a (re)start, and the gateway's health is one view of
    /// both, so calls that meet a closed gRPC port would count against the node.
    pub async fn gateway(
        &self,
        g: crate::gateway::TestGateway,
        readiness: bool,
    ) -> anyhow::Result<crate::gateway::RunningGateway> {
        for n in self.info().nodes {
            let direct = iotex_injector::native::Client::new(&n.grpc, Duration::from_secs(2))?;
            crate::eventually(Duration::from_secs(60), &format!("{}'s gRPC port answering", n.name), || async {
                direct.chain_meta().await.ok()
            })
            .await?;
        }
        let g = self.info().nodes.iter().fold(g, |g, n| {
            let g = g.upstream(&n.name, &n.web3).arg("--upstream-grpc", &format!("{}=http://{}", n.name, n.grpc));
            if readiness { g.arg("--upstream-health", &format!("{}={}/readiness", n.name, n.stats)) } else { g }
        });
        g.spawn().await
    }

    /// Starts a cluster of its own in a fresh temporary directory.
    pub async fn start() -> anyhow::Result<Cluster> {
        Self::start_wrapped(Vec::new()).await
    }

    /// Starts a cluster whose script (and so every node) runs under the command prefix `wrap`, e.g.
    /// [`crate::netns::Netns::wrap`]: the nodes then listen on that namespace's loopback, which the test's
    /// own loopback cannot reach, so [`Cluster::head`] and the other calls to nodes must not be used on it.
    pub async fn start_wrapped(wrap: Vec<String>) -> anyhow::Result<Cluster> {
        tokio::task::spawn_blocking(move || {
            let mut last = None;
            for _ in 0..3 {
                let dir = tempfile::Builder::new().prefix("iotex-cluster-").tempdir()?;
                let base = free_range()?.to_string();
                let owner = std::process::id().to_string();
                let path = dir.path().to_string_lossy().into_owned();
                let up = ["up", &path, "--base-port", &base, "--owner-pid", &owner, "--remove-on-exit"];
                match run_script(&wrap, &up) {
                    Ok(_) => {
                        let info = read_info(dir.path())?;
                        return Ok(Cluster { dir, info: std::sync::Mutex::new(info), wrap });
                    }
                    Err(e) if e.to_string().contains("in use") => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| anyhow::anyhow!("could not start a cluster")))
        })
        .await?
    }

    /// The cluster all tests of this test process share (started on first use, stopped when the process
    /// exits: a static is never dropped, so `--owner-pid` stops it).
    pub async fn shared() -> anyhow::Result<&'static Cluster> {
        SHARED.get_or_try_init(Cluster::start).await
    }

    /// Held for a test's whole body: tests on the shared cluster run one at a time.
    pub async fn exclusive() -> MutexGuard<'static, ()> {
        EXCLUSIVE.lock().await
    }

    /// What `cluster.json` says now.
    pub fn info(&self) -> ClusterInfo {
        self.info.lock().map(|i| i.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Node `i` (0 is the boot node).
    pub fn node(&self, i: usize) -> ClusterNode {
        self.info().nodes[i].clone()
    }

    /// The cluster's directory (node logs are `DIR/<node>/node.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn signal(&self, i: usize, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.node(i).pid), sig)?;
        Ok(())
    }

    /// SIGSTOP: node `i` keeps its sockets open but answers nothing (a hung node).
    pub fn pause(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, nix::sys::signal::Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, nix::sys::signal::Signal::SIGCONT)
    }

    /// SIGKILL, then waits until the process is gone.
    pub async fn kill(&self, i: usize) -> anyhow::Result<()> {
        let _ = self.signal(i, nix::sys::signal::Signal::SIGCONT);
        self.signal(i, nix::sys::signal::Signal::SIGKILL)?;
        let pid = nix::unistd::Pid::from_raw(self.node(i).pid);
        crate::eventually(Duration::from_secs(10), "the killed node's process to be gone", || async move {
            // The node is not our child (the cluster script started it), so poll for its absence.
            nix::sys::signal::kill(pid, None).is_err().then_some(())
        })
        .await
    }

    /// Starts node `i` again on its ports and data (after [`Cluster::kill`]).
    pub async fn restart(&self, i: usize) -> anyhow::Result<()> {
        let name = self.node(i).name;
        let path = self.dir.path().to_string_lossy().into_owned();
        let wrap = self.wrap.clone();
        tokio::task::spawn_blocking(move || run_script(&wrap, &["start-node", &path, &name])).await??;
        let info = read_info(self.dir.path())?;
        *self.info.lock().map_err(|_| anyhow::anyhow!("cluster info lock poisoned"))? = info;
        Ok(())
    }

    /// Node `i`'s head, straight from the node.
    pub async fn head(&self, i: usize) -> anyhow::Result<u64> {
        let v = RawClient::new().call(&self.node(i).web3, "eth_blockNumber", serde_json::json!([])).await?;
        parse_quantity(&v)
    }

    /// Every node's head (None for a node that does not answer).
    pub async fn heads(&self) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        for i in 0..self.info().nodes.len() {
            out.push(self.head(i).await.ok());
        }
        out
    }

    /// Waits until every node answers and all heads are within `lag` blocks of the best.
    pub async fn wait_synced(&self, lag: u64, within: Duration) -> anyhow::Result<()> {
        crate::eventually(within, "every node answering and within the lag of the best head", || async {
            let heads = self.heads().await;
            let known: Vec<u64> = heads.iter().flatten().copied().collect();
            let best = *known.iter().max()?;
            (known.len() == heads.len() && known.iter().all(|h| best - h <= lag)).then_some(())
        })
        .await
    }

    /// Waits for the chain to grow by `n` blocks on node `i`.
    pub async fn wait_blocks(&self, i: usize, n: u64, within: Duration) -> anyhow::Result<u64> {
        let start = self.head(i).await?;
        crate::eventually(within, "new blocks", || async { self.head(i).await.ok().filter(|h| *h >= start + n) }).await
    }
}

fn read_info(dir: &Path) -> anyhow::Result<ClusterInfo> {
    let text = std::fs::read_to_string(dir.join("cluster.json"))?;
    let info: ClusterInfo = serde_json::from_str(&text)?;
    for k in &info.funded_keys {
        crate::capture::register_secret("hex-key", k);
    }
    Ok(info)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let path = self.dir.path().to_string_lossy().into_owned();
        if let Err(e) = run_script(&self.wrap, &["down", &path]) {
            eprintln!("iotex cluster at {path} did not stop cleanly: {e}");
        }
    }
}
