//! The real `iotex-gateway` and `iotex-injector` binaries as child processes, for tests that need a process of
//! their own: to `kill -9` it, or to read its CPU time from `/proc/<pid>/stat` apart from the test's.
//!
//! [`path`] builds the binary with the cargo that runs the tests (a no-op when it is fresh, as after
//! `cargo nextest run --workspace`) into the same target directory and profile as the test binary, so a test
//! never runs a stale build. Their stdout and stderr are teed into the run directory ([`crate::capture`]).

use crate::http::RawClient;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Builds `bin` of package `package` (once per process) and returns its path.
pub fn path(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    // One build at a time in this process; cargo's own lock serializes across processes.
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().map_err(|_| anyhow::anyhow!("build lock poisoned"))?;
    // The test binary is `<target>/<profile>/deps/it-<hash>`: the binaries sit two levels up.
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|d| d.parent()).ok_or_else(|| anyhow::anyhow!("no target dir above {exe:?}"))?;
    let out = dir.join(bin);
    if !built.iter().any(|b| b == bin) {
        let profile = dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
        let target = dir.parent().ok_or_else(|| anyhow::anyhow!("no target dir above {dir:?}"))?;
        // `cargo` from PATH (rustup's proxy) in the repo, so `rust-toolchain.toml` picks the toolchain the tests
        // were built with; `$CARGO` may name another toolchain's cargo, whose build would not be reused.
        let cargo = "cargo";
        let profile_arg = if profile == "debug" { "dev" } else { profile };
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", package, "--bin", bin, "--profile", profile_arg, "--target-dir"])
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()?;
        anyhow::ensure!(status.success(), "cargo build -p {package} --bin {bin} failed: {status}");
        built.push(bin.to_owned());
    }
    anyhow::ensure!(out.exists(), "{} was not built", out.display());
    Ok(out)
}

/// A child process whose output is teed; killed (SIGKILL) when dropped.
pub struct Proc {
    child: Child,
    /// Its OS process id.
    pub pid: i32,
    tees: Vec<tokio::task::JoinHandle<()>>,
}

impl Proc {
    /// Starts `bin` with `args`, its stdout and stderr teed as `<name>.stdout` / `<name>.stderr`.
    pub fn spawn(bin: &std::path::Path, name: &str, args: &[String]) -> anyhow::Result<Proc> {
        crate::capture::init_tracing();
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let mut tees = Vec::new();
        if let Some(o) = child.stdout.take() {
            tees.push(crate::capture::tee_child(&format!("{name}.stdout"), o));
        }
        if let Some(e) = child.stderr.take() {
            tees.push(crate::capture::tee_child(&format!("{name}.stderr"), e));
        }
        Ok(Proc { child, pid, tees })
    }

    /// SIGKILL, then reaps it and waits for its output to be copied.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGKILL)?;
        self.wait().await?;
        Ok(())
    }

    /// Waits for it to exit (bounded: 5 minutes) and for its output to be copied; its exit code (None when
    /// killed by a signal).
    pub async fn wait(&mut self) -> anyhow::Result<Option<i32>> {
        let status = tokio::time::timeout(Duration::from_secs(300), self.child.wait()).await??;
        for t in self.tees.drain(..) {
            let _ = t.await;
        }
        Ok(status.code())
    }

    /// User plus system CPU time so far, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
    pub fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // The command name (field 2) is in parentheses and may hold spaces: count fields after the last `)`.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow::anyhow!("odd stat: {stat}"))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After `)`, field 3 (state) is index 0, so fields 14 and 15 are indexes 11 and 12.
        let ticks =
            |i: usize| -> anyhow::Result<u64> { Ok(f.get(i).ok_or_else(|| anyhow::anyhow!("short stat"))?.parse()?) };
        Ok(ticks(11)? + ticks(12)?)
    }
}

/// The real gateway binary on loopback ports of its own.
pub struct GatewayProc {
    /// The process.
    pub proc: Proc,
    /// `127.0.0.1:PORT` of the JSON-RPC listener.
    pub addr: String,
    /// JSON-RPC URL.
    pub url: String,
    /// Admin base URL.
    pub admin: String,
}

impl GatewayProc {
    /// Starts `iotex-gateway` with the upstreams and flags given, waiting until `/readyz` is 200.
    pub async fn spawn(args: &[&str]) -> anyhow::Result<GatewayProc> {
        let bin = path("iotex-gateway", "iotex-gateway")?;
        let mut last = None;
        for _attempt in 0..3 {
            let (rpc, admin) = (crate::nodes::free_port()?, crate::nodes::free_port()?);
            let addr = format!("127.0.0.1:{rpc}");
            let mut argv: Vec<String> =
                ["--listen", &addr, "--admin-listen", &format!("127.0.0.1:{admin}"), "--grpc-listen", "127.0.0.1:0"]
                    .into_iter()
                    .map(String::from)
                    .collect();
            argv.extend(["--health-interval", "100ms", "--log-format", "json"].map(String::from));
            argv.extend(args.iter().map(|a| (*a).to_owned()));
            let proc = Proc::spawn(&bin, "gateway", &argv)?;
            let gw =
                GatewayProc { proc, url: format!("http://{addr}"), addr, admin: format!("http://127.0.0.1:{admin}") };
            let c = RawClient::new();
            let ready = format!("{}/readyz", gw.admin);
            match crate::eventually(Duration::from_secs(20), "gateway binary ready", || {
                let (c, ready) = (c.clone(), ready.clone());
                async move { c.get(&ready).await.ok().filter(|r| r.status == 200).map(|_| ()) }
            })
            .await
            {
                Ok(()) => return Ok(gw),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("the gateway binary did not start")))
    }
}
