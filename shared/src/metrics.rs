//! The workspace's one way to register Prometheus metrics: a [`Registrar`] that registers each metric and
//! remembers what it is (name, type, labels, help) as it goes.
//!
//! Why a catalog: a metric family with labels has no series until something happens, so neither `/metrics`
//! nor the registry can list it on a fresh start. The reference pages in `docs/reference/` are generated
//! from [`Registrar::catalog`] instead of being copied by hand, so they cannot drift from the code.
//! Both binaries use the `prometheus` crate (see docs/decisions.md, "One metrics library").

use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Mutex;

/// What one registered metric family is, for documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDoc {
    /// Full name as scraped (`iotex_gateway_requests_total`).
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: &'static str,
    /// Label names, in declaration order.
    pub labels: Vec<String>,
    /// The help text.
    pub help: String,
}

/// A registry that keeps a catalog of what was registered through it.
#[derive(Debug, Default)]
pub struct Registrar {
    registry: Registry,
    // A Mutex rather than RefCell so a `Registrar` can be shared (`Sync`) like the `Registry` it wraps;
    // it is only locked while registering and listing, never on the hot path.
    catalog: Mutex<Vec<MetricDoc>>,
}

impl Registrar {
    /// An empty registry.
    pub fn new() -> Registrar {
        Registrar::default()
    }

    /// Registers `m` and hands it back, so each metric is declared in one expression.
    pub fn add<T: Collector + Clone + 'static>(&self, m: T) -> prometheus::Result<T> {
        let kinds: Vec<&'static str> = m.collect().iter().map(|f| kind(f.get_field_type())).collect();
        let docs: Vec<MetricDoc> = m
            .desc()
            .iter()
            .zip(kinds.iter().chain(std::iter::repeat(&"untyped")))
            .map(|(d, k)| MetricDoc {
                name: d.fq_name.clone(),
                kind: k,
                labels: d.variable_labels.clone(),
                help: d.help.clone(),
            })
            .collect();
        self.registry.register(Box::new(m.clone()))?;
        if let Ok(mut c) = self.catalog.lock() {
            c.extend(docs);
        }
        Ok(m)
    }

    /// Registers a collector that is not documented one metric at a time (the process collector).
    pub fn add_collector(&self, c: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(c)
    }

    /// Every metric registered through [`Registrar::add`], in registration order.
    pub fn catalog(&self) -> Vec<MetricDoc> {
        self.catalog.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The underlying registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The classic Prometheus text exposition (what `promtool check metrics` reads).
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for I/O reasons; a failure would mean a malformed metric, which
        // registration already rules out. Serve what was written rather than nothing.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

fn kind(t: MetricType) -> &'static str {
    match t {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "untyped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};

    #[test]
    fn the_catalog_lists_families_without_series() {
        let r = Registrar::new();
        let _c = r.add(IntCounter::new("a_total", "A things.").unwrap()).unwrap();
        let _v = r.add(IntCounterVec::new(Opts::new("b_total", "B things."), &["x", "y"]).unwrap()).unwrap();
        let _h = r.add(Histogram::with_opts(HistogramOpts::new("c_seconds", "C time.")).unwrap()).unwrap();
        let cat = r.catalog();
        assert_eq!(cat.len(), 3);
        assert_eq!(
            cat[0],
            MetricDoc { name: "a_total".into(), kind: "counter", labels: vec![], help: "A things.".into() }
        );
        assert_eq!(cat[1].labels, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(cat[1].kind, "counter");
        assert_eq!(cat[2].kind, "histogram");
        // The labelled family has no series yet, so the exposition does not show it; the catalog does.
        let text = String::from_utf8(r.render()).unwrap();
        assert!(!text.contains("b_total"));
    }

    #[test]
    fn a_duplicate_name_is_refused_and_not_listed_twice() {
        let r = Registrar::new();
        r.add(IntCounter::new("a_total", "A.").unwrap()).unwrap();
        assert!(r.add(IntCounter::new("a_total", "A.").unwrap()).is_err());
        assert_eq!(r.catalog().len(), 1);
    }
}
