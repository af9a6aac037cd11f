//! toxiproxy (Shopify's TCP fault proxy, built by `scripts/install-chaos-tools.sh` from its Go module) run
//! inside a [`crate::netns::Netns`]: one proxy per node port, listening on the namespace's end of the veth
//! pair and forwarding to the node on the namespace's loopback. Its toxics give the chaos test what the
//! kernel here cannot (no netem): a fixed delay and a bandwidth cap, on one node's ports at a time.

use crate::http::RawClient;
use crate::netns::Netns;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The API port inside the namespace (the namespace is the test's own, so any port is free).
const API_PORT: u16 = 8474;

/// A running toxiproxy-server; killed when dropped.
pub struct Toxiproxy {
    api: String,
    child: Child,
}

/// One proxy: `name` listens on `listen` (an address in the namespace) and forwards to `upstream`.
pub struct Proxy {
    /// The proxy's name in toxiproxy's API (toxics are added by it).
    pub name: String,
    /// `IP:PORT` it listens on.
    pub listen: String,
    /// `IP:PORT` it forwards to.
    pub upstream: String,
}

fn binary() -> anyhow::Result<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-chaos-tools.sh");
    let out = Command::new("bash").arg(script).output()?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/install-chaos-tools.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(!path.is_empty(), "scripts/install-chaos-tools.sh printed no toxiproxy-server path");
    Ok(PathBuf::from(path))
}

impl Toxiproxy {
    /// Starts toxiproxy-server in `ns` with `proxies` created at start, and waits until its API answers.
    pub async fn start(ns: &Netns, proxies: &[Proxy]) -> anyhow::Result<Toxiproxy> {
        let bin = binary()?;
        let dir = tempfile::Builder::new().prefix("toxiproxy-").tempdir()?;
        let config: Vec<serde_json::Value> = proxies
            .iter()
            .map(|p| serde_json::json!({"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": true}))
            .collect();
        let config_path = dir.path().join("proxies.json");
        std::fs::write(&config_path, serde_json::to_vec(&config)?)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(&bin)
            .args(["-host", &ns.inner_ip, "-port", &API_PORT.to_string(), "-seed", "1"])
            .arg("-config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| anyhow::anyhow!("starting toxiproxy-server in {}: {e}", ns.name))?;
        let t = Toxiproxy { api: format!("http://{}:{API_PORT}", ns.inner_ip), child };
        let c = RawClient::new();
        let want = proxies.len();
        crate::eventually(Duration::from_secs(20), "toxiproxy's API to list every proxy", || {
            let (c, url) = (c.clone(), format!("{}/proxies", t.api));
            async move {
                let r = c.get(&url).await.ok()?;
                let v = r.json();
                (r.status == 200 && v.as_object().map(|o| o.len()) == Some(want)).then_some(())
            }
        })
        .await?;
        // The config file is read at start; the directory can go.
        drop(dir);
        Ok(t)
    }

    /// Adds toxic `toxic` (a toxiproxy type: `latency`, `bandwidth`, ...) with `attributes` to proxy
    /// `proxy`, on the way back to the client (downstream), where a slow or thin link shows.
    pub async fn add(&self, proxy: &str, toxic: &str, attributes: serde_json::Value) -> anyhow::Result<()> {
        let body = serde_json::json!({"name": toxic, "type": toxic, "stream": "downstream", "toxicity": 1.0,
                                      "attributes": attributes});
        let r = RawClient::new().post(&format!("{}/proxies/{proxy}/toxics", self.api), body.to_string()).await?;
        anyhow::ensure!(r.status == 200, "toxiproxy refused toxic {toxic} on {proxy}: {} {}", r.status, r.text());
        Ok(())
    }

    /// Removes toxic `toxic` from proxy `proxy`.
    pub async fn remove(&self, proxy: &str, toxic: &str) -> anyhow::Result<()> {
        let url = format!("{}/proxies/{proxy}/toxics/{toxic}", self.api);
        let r = RawClient::new().send(http::Method::DELETE, &url, &[], bytes::Bytes::new()).await?;
        anyhow::ensure!(r.status == 204 || r.status == 200, "toxiproxy kept toxic {toxic} on {proxy}: {}", r.status);
        Ok(())
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
