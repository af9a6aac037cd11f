//! The upstream set: static upstreams from the config plus those found by DNS discovery.
//!
//! `--upstream-dns NAME:PORT` names a headless Kubernetes Service, whose DNS answer is one A/AAAA record per
//! ready pod. Every `upstream-dns-interval` each name is resolved again; each address becomes an upstream
//! named `IP:PORT` with URL `http://IP:PORT/` (and, with `upstream-dns-health-port`, the health URL
//! `http://IP:HEALTH_PORT/readiness`: an IoTeX node's stats port). The merged set (static first, then discovered, duplicates of
//! a static URL dropped) goes to the health supervisor, which keeps the state of unchanged members.
//!
//! Refusals and fallbacks:
//! - A lookup that fails (timeout, SERVFAIL, NXDOMAIN during a rollout) keeps that name's last good answer:
//!   a DNS blip must not empty the cluster. It is logged and counted (`iotex_gateway_dns_lookups_total`).
//! - A config reload replaces the static list and the discovery settings through [`Membership::spec`].
//!
//! The resolver is the system's (getaddrinfo: `/etc/resolv.conf` search domains and all), or, with
//! `--upstream-dns-server`, hickory's client asking that server directly with caching off, so a changed
//! answer is seen at the next lookup.

use crate::config::{Discovery, UpstreamConfig};
use crate::metrics::Metrics;
use crate::upstream::health::Control;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What membership is computed from; replaced on config reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Upstreams named in the config.
    pub static_upstreams: Vec<UpstreamConfig>,
    /// DNS discovery, if configured.
    pub discovery: Option<Discovery>,
}

/// The running membership task.
pub struct Membership {
    /// Replace the spec (config reload).
    pub spec: watch::Sender<Spec>,
    /// The task (aborted on shutdown).
    pub task: tokio::task::JoinHandle<()>,
}

/// Resolves a host name to addresses.
pub trait Resolve: Send + Sync {
    /// The addresses of `name`, or why there are none.
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>>;
}

/// The system resolver (getaddrinfo), as every other program in the pod sees DNS.
struct System;

impl Resolve for System {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name, 0)).await.map_err(|e| e.to_string())?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// One DNS server asked directly, without a cache.
struct Server(hickory_resolver::TokioResolver);

impl Server {
    fn new(addr: SocketAddr) -> Result<Server, String> {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = addr.port();
        let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_name_servers(vec![ns]);
        let mut builder = hickory_resolver::TokioResolver::builder_with_config(
            config,
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        );
        // Discovery wants the answer as it is now; the lookup period already bounds the query rate.
        builder.options_mut().cache_size = 0;
        builder.options_mut().timeout = Duration::from_secs(2);
        builder.options_mut().attempts = 1;
        builder.build().map(Server).map_err(|e| e.to_string())
    }
}

impl Resolve for Server {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
        Box::pin(async move {
            let fqdn = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
            let lookup = self.0.lookup_ip(fqdn.as_str()).await.map_err(|e| e.to_string())?;
            Ok(lookup.iter().collect())
        })
    }
}

/// The resolver for a discovery setting.
fn resolver_for(server: Option<SocketAddr>) -> Arc<dyn Resolve> {
    match server.map(Server::new) {
        None => Arc::new(System),
        Some(Ok(s)) => Arc::new(s),
        Some(Err(e)) => {
            // Only reachable through a bad socket setup; the system resolver is a working fallback.
            tracing::error!(error = %e, "cannot build the DNS client for upstream-dns-server; using the system resolver");
            Arc::new(System)
        }
    }
}

/// Starts the membership task with the system or configured resolver.
pub fn spawn(
    static_upstreams: Vec<UpstreamConfig>,
    discovery: Option<Discovery>,
    control: mpsc::Sender<Control>,
    metrics: Arc<Metrics>,
) -> Membership {
    spawn_with(Spec { static_upstreams, discovery }, control, metrics, resolver_for)
}

/// [`spawn`] with a chosen resolver factory (tests script DNS answers with it).
pub fn spawn_with(
    spec: Spec,
    control: mpsc::Sender<Control>,
    metrics: Arc<Metrics>,
    make_resolver: fn(Option<SocketAddr>) -> Arc<dyn Resolve>,
) -> Membership {
    let (tx, rx) = watch::channel(spec);
    let task = tokio::spawn(run(rx, control, metrics, make_resolver));
    Membership { spec: tx, task }
}

/// The URLs an address is reached at (health and WebSocket on their ports, when configured).
fn upstream_for(ip: IpAddr, port: u16, d: Option<&Discovery>) -> Option<UpstreamConfig> {
    let addr = SocketAddr::new(ip, port);
    let url = url::Url::parse(&format!("http://{addr}/")).ok()?;
    let health_url = d
        .and_then(|d| d.health_port)
        .and_then(|p| url::Url::parse(&format!("http://{}/readiness", SocketAddr::new(ip, p))).ok());
    let ws_url = d.and_then(|d| d.ws_port).and_then(|p| crate::config::derived_ws_url(&url, p));
    let grpc_url = d.and_then(|d| d.grpc_port).and_then(|p| crate::config::derived_grpc_url(&url, p));
    Some(UpstreamConfig { name: addr.to_string(), url, health_url, ws_url, grpc_url })
}

/// Static upstreams first, then discovered ones in a stable order, without repeating a URL.
pub fn merge(
    static_upstreams: &[UpstreamConfig],
    discovered: &BTreeMap<(String, u16), Vec<IpAddr>>,
    d: Option<&Discovery>,
) -> Vec<UpstreamConfig> {
    let mut out: Vec<UpstreamConfig> = static_upstreams.to_vec();
    for ((_, port), ips) in discovered {
        for ip in ips {
            if let Some(u) = upstream_for(*ip, *port, d)
                && !out.iter().any(|o| o.url == u.url || o.name == u.name)
            {
                out.push(u);
            }
        }
    }
    out
}

async fn run(
    mut spec_rx: watch::Receiver<Spec>,
    control: mpsc::Sender<Control>,
    metrics: Arc<Metrics>,
    make_resolver: fn(Option<SocketAddr>) -> Arc<dyn Resolve>,
) {
    let mut spec = spec_rx.borrow_and_update().clone();
    let mut resolver = make_resolver(spec.discovery.as_ref().and_then(|d| d.server));
    let mut discovered: BTreeMap<(String, u16), Vec<IpAddr>> = BTreeMap::new();
    let mut sent: Option<Vec<UpstreamConfig>> = None;
    loop {
        if let Some(d) = &spec.discovery {
            // Names no longer configured are forgotten; the others are looked up again.
            discovered.retain(|k, _| d.names.contains(k));
            for (name, port) in &d.names {
                match resolver.resolve(name).await {
                    Ok(mut ips) => {
                        metrics.nodes.dns_lookups.with_label_values(&["ok"]).inc();
                        ips.sort_unstable();
                        ips.dedup();
                        let key = (name.clone(), *port);
                        if discovered.get(&key) != Some(&ips) {
                            tracing::info!(name = %name, port, addresses = ?ips, "upstream DNS answer changed");
                        }
                        discovered.insert(key, ips);
                    }
                    Err(e) => {
                        metrics.nodes.dns_lookups.with_label_values(&["error"]).inc();
                        tracing::warn!(name = %name, error = %e, "upstream DNS lookup failed; keeping the last answer");
                    }
                }
            }
        } else {
            discovered.clear();
        }
        let want = merge(&spec.static_upstreams, &discovered, spec.discovery.as_ref());
        if sent.as_ref() != Some(&want) {
            if control.send(Control::SetUpstreams(want.clone())).await.is_err() {
                return;
            }
            sent = Some(want);
        }
        let period = spec.discovery.as_ref().map_or(Duration::from_secs(3600), |d| d.interval);
        tokio::select! {
            changed = spec_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let new = spec_rx.borrow_and_update().clone();
                let server = new.discovery.as_ref().and_then(|d| d.server);
                if spec.discovery.as_ref().and_then(|d| d.server) != server {
                    resolver = make_resolver(server);
                }
                spec = new;
            }
            () = tokio::time::sleep(period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static ANSWERS: Mutex<Option<Result<Vec<IpAddr>, String>>> = Mutex::new(None);

    struct Scripted;
    impl Resolve for Scripted {
        fn resolve<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
            let a = ANSWERS.lock().unwrap().clone().unwrap_or_else(|| Err("no answer scripted".into()));
            Box::pin(async move { a })
        }
    }

    fn scripted(_: Option<SocketAddr>) -> Arc<dyn Resolve> {
        Arc::new(Scripted)
    }

    fn names(c: &Control) -> Vec<String> {
        match c {
            Control::SetUpstreams(u) => u.iter().map(|u| u.name.clone()).collect(),
            Control::SetConfig(_) => Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn adds_and_removes_upstreams_as_records_change_and_keeps_them_on_lookup_errors() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        *ANSWERS.lock().unwrap() = Some(Ok(vec![ip("10.0.0.2"), ip("10.0.0.1")]));
        let (tx, mut rx) = mpsc::channel(8);
        let metrics = Arc::new(Metrics::new().unwrap());
        let fixed = UpstreamConfig {
            name: "boot".into(),
            url: url::Url::parse("http://10.9.9.9:15014/").unwrap(),
            health_url: None,
            ws_url: None,
            grpc_url: None,
        };
        let spec = Spec {
            static_upstreams: vec![fixed],
            discovery: Some(Discovery {
                names: vec![("iotex.default.svc".into(), 15014)],
                interval: Duration::from_secs(5),
                server: None,
                health_port: None,
                ws_port: None,
                grpc_port: None,
            }),
        };
        let m = spawn_with(spec.clone(), tx, Arc::clone(&metrics), scripted);
        assert_eq!(names(&rx.recv().await.unwrap()), ["boot", "10.0.0.1:15014", "10.0.0.2:15014"]);
        // A pod goes away and another arrives.
        *ANSWERS.lock().unwrap() = Some(Ok(vec![ip("10.0.0.1"), ip("10.0.0.3")]));
        assert_eq!(names(&rx.recv().await.unwrap()), ["boot", "10.0.0.1:15014", "10.0.0.3:15014"]);
        // DNS fails: nothing is sent (the set stays), and the failure is counted.
        *ANSWERS.lock().unwrap() = Some(Err("SERVFAIL".into()));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(rx.try_recv().is_err());
        assert!(metrics.nodes.dns_lookups.with_label_values(&["error"]).get() >= 3);
        // A reload that drops discovery leaves the static upstream only.
        m.spec.send_replace(Spec { discovery: None, ..spec });
        assert_eq!(names(&rx.recv().await.unwrap()), ["boot"]);
        m.task.abort();
    }

    #[test]
    fn merge_keeps_static_first_and_drops_duplicates() {
        let mut d = BTreeMap::new();
        d.insert(("a".to_owned(), 1u16), vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]);
        let s = vec![UpstreamConfig {
            name: "x".into(),
            url: url::Url::parse("http://127.0.0.1:1/").unwrap(),
            health_url: None,
            ws_url: None,
            grpc_url: None,
        }];
        let disc = Discovery {
            names: Vec::new(),
            interval: Duration::from_secs(1),
            server: None,
            health_port: Some(8080),
            ws_port: Some(16014),
            grpc_port: Some(14014),
        };
        let m = merge(&s, &d, Some(&disc));
        assert_eq!(m.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["x", "[::1]:1"]);
        assert_eq!(m[1].url.as_str(), "http://[::1]:1/");
        assert_eq!(m[1].health_url.as_ref().map(url::Url::as_str), Some("http://[::1]:8080/readiness"));
        assert_eq!(m[1].ws_url.as_ref().map(url::Url::as_str), Some("ws://[::1]:16014/"));
        assert_eq!(m[1].grpc_url.as_ref().map(url::Url::as_str), Some("http://[::1]:14014/"));
    }
}
