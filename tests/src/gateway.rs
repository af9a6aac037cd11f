//! The real gateway, in process, on loopback ports chosen by the OS.
//!
//! Configured through the same command-line parser operators use, so every test also exercises the flags.

use crate::http::RawClient;
use iotex_gateway::{Listeners, ShutdownReport};
use std::time::Duration;
use tokio::sync::oneshot;

/// Builder for a gateway under test.
#[derive(Default)]
pub struct TestGateway {
    args: Vec<String>,
}

/// A running gateway; shut down (and awaited) by [`RunningGateway::shutdown`], aborted on drop.
pub struct RunningGateway {
    /// JSON-RPC URL.
    pub url: String,
    /// Admin base URL.
    pub admin: String,
    /// Native gRPC base URL (`http://127.0.0.1:PORT`, HTTP/2 cleartext).
    pub grpc: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<ShutdownReport>>>,
    client: RawClient,
}

impl TestGateway {
    /// A gateway with test-friendly timings: fast probes, short timeouts.
    pub fn new() -> Self {
        let mut g = TestGateway::default();
        g.args.extend(
            [
                "--health-interval",
                "100ms",
                "--request-timeout",
                "5s",
                "--attempt-timeout",
                "1s",
                "--log-format",
                "text",
            ]
            .map(String::from),
        );
        g
    }

    /// Adds an upstream `NAME=URL`.
    pub fn upstream(mut self, name: &str, url: &str) -> Self {
        self.args.push("--upstream".into());
        self.args.push(format!("{name}={url}"));
        self
    }

    /// Adds a flag with its value; a single-valued flag set earlier (e.g. a default above) is replaced.
    pub fn arg(mut self, flag: &str, value: &str) -> Self {
        const REPEATABLE: [&str; 10] = [
            "--upstream",
            "--upstream-health",
            "--trusted-proxy",
            "--allow-method",
            "--deny-method",
            "--token-public-key",
            "--token-tier",
            "--upstream-ws",
            "--upstream-dns",
            "--upstream-grpc",
        ];
        if !REPEATABLE.contains(&flag)
            && let Some(i) = self.args.iter().position(|a| a == flag)
        {
            self.args.drain(i..i + 2);
        }
        self.args.push(flag.into());
        self.args.push(value.into());
        self
    }

    /// Adds a switch (a flag without a value, e.g. `--require-token`).
    pub fn switch(mut self, flag: &str) -> Self {
        self.args.push(flag.into());
        self
    }

    /// Starts the gateway and waits until `/readyz` is 200 (unless `wait_ready` is false).
    pub async fn spawn_with(self, wait_ready: bool) -> anyhow::Result<RunningGateway> {
        let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", rpc.local_addr()?);
        let admin_url = format!("http://{}", admin.local_addr()?);
        let grpc_url = format!("http://{}", grpc.local_addr()?);
        let mut argv = vec!["iotex-gateway".to_owned()];
        argv.extend(self.args);
        // The real listeners are already bound; these only satisfy validation.
        argv.extend(
            ["--listen", "127.0.0.1:1", "--admin-listen", "127.0.0.1:2", "--grpc-listen", "127.0.0.1:3"]
                .map(String::from),
        );
        let cfg = iotex_gateway::config::load(&argv)?;
        // The product's text format on the terminal, plus every event kept for the end-of-run secret scan.
        crate::capture::init_tracing();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            Ok(iotex_gateway::run(cfg, Listeners { rpc, admin, grpc: Some(grpc) }, shutdown).await?)
        });
        let gw = RunningGateway {
            url,
            admin: admin_url,
            grpc: grpc_url,
            stop: Some(tx),
            task: Some(task),
            client: RawClient::new(),
        };
        if wait_ready {
            gw.wait_ready().await?;
        }
        Ok(gw)
    }

    /// Starts the gateway and waits until it is ready.
    pub async fn spawn(self) -> anyhow::Result<RunningGateway> {
        self.spawn_with(true).await
    }
}

impl RunningGateway {
    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let c = self.client.clone();
        let url = format!("{}/readyz", self.admin);
        crate::eventually(Duration::from_secs(15), "gateway ready", || {
            let c = c.clone();
            let url = url.clone();
            async move { c.get(&url).await.ok().filter(|r| r.status == 200).map(|_| ()) }
        })
        .await
    }

    /// `/status` as JSON.
    pub async fn status(&self) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.get(&format!("{}/status", self.admin)).await?.json())
    }

    /// The state (`up`, `lagging`, …) of the named upstream in `/status`.
    pub async fn state_of(&self, name: &str) -> anyhow::Result<String> {
        let s = self.status().await?;
        let ups = s["upstreams"].as_array().cloned().unwrap_or_default();
        let u = ups.iter().find(|u| u["name"] == name).ok_or_else(|| anyhow::anyhow!("no upstream {name}"))?;
        Ok(u["state"].as_str().unwrap_or("").to_owned())
    }

    /// Waits until the named upstream is in `state`.
    pub async fn wait_state(&self, name: &str, state: &str, within: Duration) -> anyhow::Result<()> {
        crate::eventually(within, &format!("{name} to be {state}"), || async move {
            (self.state_of(name).await.ok()? == state).then_some(())
        })
        .await
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self.client.get(&format!("{}/metrics", self.admin)).await?.text())
    }

    /// One series of `/metrics` (full series text, as [`sample`] takes it); 0 when the series is absent.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        Ok(sample(&self.metrics().await?, series).unwrap_or(0.0))
    }

    /// A client for this gateway.
    pub fn client(&self) -> RawClient {
        self.client.clone()
    }

    /// Signals shutdown and waits for the gateway to finish draining.
    pub async fn shutdown(mut self) -> anyhow::Result<ShutdownReport> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => anyhow::bail!("already shut down"),
        }
    }

    /// Signals shutdown without waiting; returns the task to await later.
    pub fn begin_shutdown(&mut self) -> Option<tokio::task::JoinHandle<anyhow::Result<ShutdownReport>>> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take()
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Reads one sample's value from Prometheus text (`name{labels} value`), matching the full series text.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}
