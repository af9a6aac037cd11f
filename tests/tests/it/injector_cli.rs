//! The command line as an operator meets it: clear refusals (exit 2), `--fail-if` (exit 3), the report's
//! shape, the Prometheus endpoint while running, and a shutdown mid-run that still writes every output.

use iotex_injector::program::{EXIT_THRESHOLD, main_with};
use iotex_tests::eventually;
use iotex_tests::http::RawClient;
use iotex_tests::inject::config;
use iotex_tests::nodes::{DEV_KEYS, DEV_MNEMONIC, Node};
use std::time::Duration;

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["iotex-injector"];
    a.extend_from_slice(extra);
    a
}

#[tokio::test]
async fn malformed_flags_keys_mnemonics_and_steps_exit_2() {
    let ep = "http://127.0.0.1:1";
    let cases: &[&[&str]] = &[
        &["run"],
        &["run", "--endpoint", ep, "--key", DEV_KEYS[0], "--rate", "ten", "--duration", "1s"],
        &["run", "--endpoint", ep, "--key", "0xnothex", "--rate", "1", "--duration", "1s"],
        &["run", "--endpoint", ep, "--mnemonic", "apple banana", "--accounts", "2", "--rate", "1", "--duration", "1s"],
        &["run", "--endpoint", ep, "--key", DEV_KEYS[0], "--steps", "100@30s,fast@1m"],
        &["run", "--endpoint", "ftp://x", "--key", DEV_KEYS[0], "--rate", "1", "--duration", "1s"],
        &["run", "--endpoint", ep, "--key", DEV_KEYS[0], "--rate", "1", "--duration", "1s", "--mix", "transfer=x"],
        &["run", "--endpoint", ep, "--key", DEV_KEYS[0], "--rate", "1", "--duration", "1s", "--tx-type", "blob"],
        &[
            "run",
            "--endpoint",
            ep,
            "--key",
            DEV_KEYS[0],
            "--rate",
            "1",
            "--duration",
            "1s",
            "--config",
            "/nonexistent.toml",
        ],
        &["address", "io1notanaddress"],
        &["frobnicate"],
    ];
    for c in cases {
        assert_eq!(main_with(args(c), std::future::pending()).await, 2, "{c:?}");
    }
}

#[tokio::test]
async fn a_breached_threshold_exits_3_and_the_report_has_every_contract_key() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let dir = tempfile::tempdir()?;
    let report = dir.path().join("report.json");
    let hlog = dir.path().join("latency.hlog");
    let plot = dir.path().join("plot.svg");
    let (r, h, p) = (report.to_str().unwrap(), hlog.to_str().unwrap(), plot.to_str().unwrap());
    let base = [
        "run",
        "--endpoint",
        &node.url,
        "--mnemonic",
        DEV_MNEMONIC,
        "--accounts",
        "2",
        "--rate",
        "20",
        "--duration",
        "2s",
        "--mix",
        "transfer=50,execution=50",
        "--progress",
        "log",
        "--poll-interval",
        "100ms",
        "--report",
        r,
        "--histogram-log",
        h,
        "--plot",
        p,
    ];
    let mut breach = base.to_vec();
    breach.extend(["--fail-if", "accepted<1000000,error_rate>0.5"]);
    assert_eq!(main_with(args(&breach), std::future::pending()).await, EXIT_THRESHOLD);

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    for key in [
        "chain_id",
        "duration_s",
        "offered_rate",
        "achieved_rate",
        "scheduled",
        "sent",
        "accepted",
        "late",
        "included",
        "reverted",
        "pending_at_end",
        "dropped",
        "accounts",
    ] {
        assert!(v[key].is_number(), "{key} missing or not a number in {v}");
    }
    assert!(v["rejected"].is_object());
    for key in ["submit_latency_ms", "inclusion_latency_ms"] {
        for q in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v[key][q].is_number(), "{key}.{q}");
        }
    }
    let eps = v["per_endpoint"].as_array().unwrap();
    assert_eq!(eps.len(), 1);
    for key in ["sent", "accepted", "included", "reverted", "pending_at_end", "dropped"] {
        assert!(eps[0][key].is_number(), "per_endpoint.{key}");
    }
    assert!(eps[0]["rejected"].is_object() && eps[0]["submit_latency_ms"]["p99"].is_number());
    assert_eq!(v["chain_id"], 4689);
    assert_eq!(v["scheduled"], 40);
    assert_eq!(v["included"], 40);
    assert_eq!(v["thresholds"][0]["breached"], true);
    assert_eq!(v["thresholds"][1]["breached"], false);
    // The histogram log and the plot were written and look like what they claim to be.
    let log = std::fs::read_to_string(&hlog)?;
    assert!(log.contains("Tag=submit,") && log.contains("Tag=inclusion,"), "{log}");
    // The log is a standard HdrHistogram interval log: its intervals decode and merge back to the run's totals.
    use hdrhistogram::serialization::{
        Deserializer,
        interval_log::{IntervalLogIterator, LogEntry},
    };
    let mut merged = std::collections::HashMap::<String, hdrhistogram::Histogram<u64>>::new();
    for entry in IntervalLogIterator::new(log.as_bytes()) {
        if let Ok(LogEntry::Interval(ilh)) = entry {
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ilh.encoded_histogram())?;
            let h: hdrhistogram::Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice())?;
            let tag = ilh.tag().map(|t| t.as_str().to_owned()).unwrap_or_default();
            let m = merged.entry(tag).or_insert_with(|| hdrhistogram::Histogram::new(3).unwrap());
            m.add(&h)?;
        }
    }
    assert_eq!(merged["inclusion"].len(), 40, "every inclusion is in the log once");
    assert_eq!(merged["submit"].len(), 40);
    let svg = std::fs::read_to_string(&plot)?;
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));

    // The same run with a threshold that holds exits 0.
    let mut ok = base.to_vec();
    ok.extend(["--fail-if", "error_rate>0.5"]);
    assert_eq!(main_with(args(&ok), std::future::pending()).await, 0);
    Ok(())
}

#[tokio::test]
async fn metrics_are_served_while_running() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    let cfg = config(&node.url, 2, 30.0, Duration::from_secs(3))?;
    let run = tokio::spawn(iotex_injector::run::run_with_listener(cfg, Some(listener), std::future::pending()));
    let client = RawClient::new();
    let text = eventually(Duration::from_secs(20), "metrics show sends and inclusions", || async {
        let t = client.get(&url).await.ok()?.text();
        (t.contains("iotex_injector_sent_total{endpoint=\"0\"}") && !t.contains("iotex_injector_included_total 0\n"))
            .then_some(t)
    })
    .await?;
    for name in [
        "iotex_injector_scheduled_total",
        "iotex_injector_accepted_total{endpoint=\"0\"}",
        "iotex_injector_rejected_total{endpoint=\"0\",kind=\"nonce_too_low\"}",
        "iotex_injector_late_total",
        "iotex_injector_in_flight",
        "iotex_injector_target_rate 30",
        "iotex_injector_submit_latency_seconds_bucket",
        "iotex_injector_inclusion_latency_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let r = run.await??.report;
    assert_eq!(r.included, 90);
    Ok(())
}

#[tokio::test]
async fn a_shutdown_mid_run_still_writes_a_complete_report() -> anyhow::Result<()> {
    let node = Node::anvil(&["--block-time", "1"]).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.json");
    let mut cfg = config(&node.url, 2, 40.0, Duration::from_secs(60))?;
    cfg.report = Some(path.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(iotex_injector::run(cfg, async move {
        let _ = rx.await;
    }));
    eventually(Duration::from_secs(20), "a few blocks with our actions", || async {
        node.block_number().await.ok().filter(|b| *b >= 2)
    })
    .await?;
    let _ = tx.send(());
    let r = run.await??.report;
    let on_disk: iotex_shared::report::Report = serde_json::from_slice(&std::fs::read(&path)?)?;
    // JSON floats need not round-trip bit for bit; compare the counts and the shape.
    assert_eq!(
        serde_json::to_value(&on_disk)?.as_object().map(|o| o.len()),
        serde_json::to_value(&r)?.as_object().map(|o| o.len())
    );
    assert_eq!(
        (on_disk.scheduled, on_disk.accepted, on_disk.included, on_disk.interrupted),
        (r.scheduled, r.accepted, r.included, r.interrupted)
    );
    assert!(r.interrupted);
    assert!(r.scheduled > 0 && r.scheduled < 2400, "scheduling stopped early: {}", r.scheduled);
    assert_eq!(r.sent + r.not_sent, r.scheduled);
    let rejected: u64 = r.rejected.values().sum();
    assert_eq!(r.accepted + rejected + r.not_sent, r.scheduled, "{r:#?}");
    assert_eq!(r.included + r.pending_at_end + r.dropped, r.accepted, "reconciled: {r:#?}");
    Ok(())
}
