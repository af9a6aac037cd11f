//! Every Prometheus metric the injector exports, registered and documented in one place.
//!
//! The reference (name, type, labels, help) is generated from [`Metrics::catalog`] into
//! `docs/reference/injector-metrics.md`.
//!
//! `endpoint` is the configured endpoint's index (`0`, `1`, …), bounded by the configuration; `kind` is one of
//! [`Kind::ALL`]. Hot-path handles are resolved once at start, not looked up per action.
//!
//! Built on the `prometheus` crate, the workspace's one metrics library (the gateway's too); names are
//! written in full, `_total` included. The exposition is the classic text format, checked by
//! `promtool check metrics` in this module's tests.

use crate::error::Kind;
pub use iotex_shared::metrics::MetricDoc;
use iotex_shared::metrics::Registrar;
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

/// Pre-resolved handles for one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointMetrics {
    /// Sends.
    pub sent: IntCounter,
    /// Accepted.
    pub accepted: IntCounter,
    /// Rejected, indexed by [`Kind::index`].
    pub rejected: Vec<IntCounter>,
}

/// The registry and its handles.
#[derive(Debug)]
pub struct Metrics {
    /// The registry to encode.
    pub registry: Registrar,
    /// Ticks scheduled.
    pub scheduled: IntCounter,
    /// Ticks late.
    pub late: IntCounter,
    /// Actions included.
    pub included: IntCounter,
    /// Sends outstanding.
    pub in_flight: IntGauge,
    /// Offered rate now.
    pub target_rate: Gauge,
    /// Submit latency.
    pub submit_latency: Histogram,
    /// Inclusion latency.
    pub inclusion_latency: Histogram,
    /// Per endpoint.
    pub endpoints: Vec<EndpointMetrics>,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registrar, m: T) -> prometheus::Result<T> {
    r.add(m)
}

/// `count` bucket bounds from `start`, each twice the last (what `exponential_buckets(start, 2, count)` gives,
/// without its `Result` for arguments that are constants here).
fn doubling(start: f64, count: i32) -> Vec<f64> {
    (0..count).map(|i| start * 2f64.powi(i)).collect()
}

impl Metrics {
    /// Registers everything for `endpoints` endpoints. Fails only on a name registered twice (a bug here).
    pub fn new(endpoints: usize) -> prometheus::Result<Metrics> {
        let r = Registrar::new();
        let counter = |name: &str, help: &str| reg(&r, IntCounter::new(name, help)?);
        let by = |name: &str, help: &str, labels: &[&str]| reg(&r, IntCounterVec::new(Opts::new(name, help), labels)?);
        let histogram = |name: &str, help: &str, buckets| {
            reg(&r, Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?)
        };

        // The action counters, in the order an action meets them.
        let scheduled = counter("iotex_injector_scheduled_total", "Actions scheduled (rate x elapsed time)")?;
        let late =
            counter("iotex_injector_late_total", "Ticks that found --max-in-flight full at their intended time")?;
        let sent = by("iotex_injector_sent_total", "Actions sent at least once, by endpoint index", &["endpoint"])?;
        let accepted =
            by("iotex_injector_accepted_total", "Actions a node accepted, by endpoint index", &["endpoint"])?;
        let rejected = by(
            "iotex_injector_rejected_total",
            "Final rejections by endpoint index and failure kind",
            &["endpoint", "kind"],
        )?;
        let included = counter("iotex_injector_included_total", "Accepted actions seen in a block")?;

        // Load right now.
        let in_flight = reg(&r, IntGauge::new("iotex_injector_in_flight", "Sends outstanding")?)?;
        let target_rate = reg(&r, Gauge::new("iotex_injector_target_rate", "Actions per second offered right now")?)?;

        // Latencies, both from the intended send time (see `crate::action`).
        let submit_latency = histogram(
            "iotex_injector_submit_latency_seconds",
            "Intended send time to the node's answer",
            doubling(0.0005, 16),
        )?;
        let inclusion_latency = histogram(
            "iotex_injector_inclusion_latency_seconds",
            "Intended send time to the action seen in a block",
            doubling(0.05, 14),
        )?;

        // Every label combination exists from the start (a scrape shows zeros, not gaps), and the hot path
        // holds plain handles instead of looking labels up per action.
        let endpoints = (0..endpoints)
            .map(|i| {
                let ep = i.to_string();
                EndpointMetrics {
                    sent: sent.with_label_values(&[ep.as_str()]),
                    accepted: accepted.with_label_values(&[ep.as_str()]),
                    rejected: Kind::ALL
                        .iter()
                        .map(|k| rejected.with_label_values(&[ep.as_str(), k.as_str()]))
                        .collect(),
                }
            })
            .collect();
        Ok(Metrics {
            registry: r,
            scheduled,
            late,
            included,
            in_flight,
            target_rate,
            submit_latency,
            inclusion_latency,
            endpoints,
        })
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        String::from_utf8(self.registry.render()).unwrap_or_default()
    }

    /// Every metric family with its type, labels and help, for the generated reference.
    pub fn catalog(&self) -> Vec<MetricDoc> {
        self.registry.catalog()
    }
}

/// Serves `GET /metrics` on a bound listener until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut stop => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (200, metrics.encode())
                    } else {
                        (404, "not found; try /metrics\n".to_owned())
                    };
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_name_is_exported() {
        let m = Metrics::new(2).unwrap();
        m.scheduled.inc();
        m.endpoints[1].rejected[Kind::Busy.index()].inc();
        m.submit_latency.observe(0.01);
        let text = m.encode();
        for name in [
            "iotex_injector_scheduled_total",
            "iotex_injector_sent_total{endpoint=\"0\"}",
            "iotex_injector_accepted_total{endpoint=\"1\"}",
            "iotex_injector_rejected_total{endpoint=\"1\",kind=\"busy\"} 1",
            "iotex_injector_late_total",
            "iotex_injector_included_total",
            "iotex_injector_in_flight",
            "iotex_injector_target_rate",
            "iotex_injector_submit_latency_seconds_bucket",
            "iotex_injector_inclusion_latency_seconds_count",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }

    #[test]
    fn every_metric_keeps_its_type() {
        let text = Metrics::new(1).unwrap().encode();
        for (name, kind) in [
            ("iotex_injector_scheduled_total", "counter"),
            ("iotex_injector_sent_total", "counter"),
            ("iotex_injector_accepted_total", "counter"),
            ("iotex_injector_rejected_total", "counter"),
            ("iotex_injector_late_total", "counter"),
            ("iotex_injector_included_total", "counter"),
            ("iotex_injector_in_flight", "gauge"),
            ("iotex_injector_target_rate", "gauge"),
            ("iotex_injector_submit_latency_seconds", "histogram"),
            ("iotex_injector_inclusion_latency_seconds", "histogram"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name} is not a {kind} in\n{text}");
        }
        assert_eq!(text.matches("# TYPE ").count(), 10, "a metric was added or lost:\n{text}");
    }

    #[test]
    fn the_exposition_passes_promtool() {
        use std::io::Write;
        let m = Metrics::new(2).unwrap();
        m.submit_latency.observe(0.01);
        m.target_rate.set(12.5);
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool not found; scripts/test.sh installs it (Debian package `prometheus`)");
        child.stdin.take().unwrap().write_all(m.encode().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}");
    }
}
