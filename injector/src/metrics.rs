//! Every Prometheus metric the injector exports, registered and documented in one place.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `iotex_injector_scheduled_total` | counter | |
//! | `iotex_injector_sent_total` | counter | `endpoint` |
//! | `iotex_injector_accepted_total` | counter | `endpoint` |
//! | `iotex_injector_rejected_total` | counter | `endpoint`, `kind` |
//! | `iotex_injector_late_total` | counter | |
//! | `iotex_injector_included_total` | counter | |
//! | `iotex_injector_in_flight` | gauge | |
//! | `iotex_injector_target_rate` | gauge (actions/s offered now) | |
//! | `iotex_injector_submit_latency_seconds` | histogram | |
//! | `iotex_injector_inclusion_latency_seconds` | histogram | |
//!
//! `endpoint` is the configured endpoint's index (`0`, `1`, …), bounded by the configuration; `kind` is one of
//! [`Kind::ALL`]. Hot-path handles are resolved once at start, not looked up per action.

use crate::error::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabel {
    endpoint: String,
    kind: &'static str,
}

/// Pre-resolved handles for one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointMetrics {
    /// Sends.
    pub sent: Counter,
    /// Accepted.
    pub accepted: Counter,
    /// Rejected, indexed by [`Kind::index`].
    pub rejected: Vec<Counter>,
}

/// The registry and its handles.
#[derive(Debug)]
pub struct Metrics {
    /// The registry to encode.
    pub registry: Registry,
    /// Ticks scheduled.
    pub scheduled: Counter,
    /// Ticks late.
    pub late: Counter,
    /// Actions included.
    pub included: Counter,
    /// Sends outstanding.
    pub in_flight: Gauge,
    /// Offered rate now.
    pub target_rate: Gauge<f64, AtomicU64>,
    /// Submit latency.
    pub submit_latency: Histogram,
    /// Inclusion latency.
    pub inclusion_latency: Histogram,
    /// Per endpoint.
    pub endpoints: Vec<EndpointMetrics>,
}

impl Metrics {
    /// Registers everything for `endpoints` endpoints.
    pub fn new(endpoints: usize) -> Metrics {
        let mut registry = Registry::with_prefix("iotex_injector");
        let scheduled = Counter::default();
        registry.register("scheduled", "Actions scheduled (rate x elapsed time)", scheduled.clone());
        let sent = Family::<EndpointLabel, Counter>::default();
        registry.register("sent", "Actions sent at least once, by endpoint index", sent.clone());
        let accepted = Family::<EndpointLabel, Counter>::default();
        registry.register("accepted", "Actions a node accepted, by endpoint index", accepted.clone());
        let rejected = Family::<RejectLabel, Counter>::default();
        registry.register("rejected", "Final rejections by endpoint index and failure kind", rejected.clone());
        let late = Counter::default();
        registry.register("late", "Ticks that found --max-in-flight full at their intended time", late.clone());
        let included = Counter::default();
        registry.register("included", "Accepted actions seen in a block", included.clone());
        let in_flight = Gauge::default();
        registry.register("in_flight", "Sends outstanding", in_flight.clone());
        let target_rate = Gauge::<f64, AtomicU64>::default();
        registry.register("target_rate", "Actions per second offered right now", target_rate.clone());
        let submit_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register("submit_latency_seconds", "Intended send time to the node's answer", submit_latency.clone());
        let inclusion_latency = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "inclusion_latency_seconds",
            "Intended send time to the action seen in a block",
            inclusion_latency.clone(),
        );
        let endpoints = (0..endpoints)
            .map(|i| {
                let endpoint = i.to_string();
                EndpointMetrics {
                    sent: sent.get_or_create(&EndpointLabel { endpoint: endpoint.clone() }).clone(),
                    accepted: accepted.get_or_create(&EndpointLabel { endpoint: endpoint.clone() }).clone(),
                    rejected: Kind::ALL
                        .iter()
                        .map(|k| {
                            rejected
                                .get_or_create(&RejectLabel { endpoint: endpoint.clone(), kind: k.as_str() })
                                .clone()
                        })
                        .collect(),
                }
            })
            .collect();
        Metrics {
            registry,
            scheduled,
            late,
            included,
            in_flight,
            target_rate,
            submit_latency,
            inclusion_latency,
            endpoints,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail except on a formatter error, which String never raises.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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
        let m = Metrics::new(2);
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
}
