//! One run split over 4 shards (`run --shard I/4`, each at 1/4 of the rate, all against one anvil at the
//! same time), then `merge`: the merged counts are the shards' sums and match the chain, the merged
//! histograms hold every shard's samples, and the merged p99 is the p99 of one histogram of all samples.

use hdrhistogram::Histogram;
use iotex_injector::histograms::decode;
use iotex_injector::program::main_with;
use iotex_shared::report::Report;
use iotex_tests::inject::tx_count;
use iotex_tests::nodes::{DEV_MNEMONIC, Node};

const SHARDS: u64 = 4;

fn read(path: &std::path::Path) -> anyhow::Result<Report> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

/// One histogram with every sample of every shard recorded into it, one value at a time.
fn all_samples(reports: &[Report], pick: fn(&Report) -> &str) -> anyhow::Result<Histogram<u64>> {
    let mut all = iotex_injector::recorder::new_histogram();
    for r in reports {
        for v in decode(pick(r))?.iter_recorded() {
            all.record_n(v.value_iterated_to(), v.count_at_value())?;
        }
    }
    Ok(all)
}

#[tokio::test]
async fn four_shards_merge_to_exact_sums_and_exact_percentiles() -> anyhow::Result<()> {
    let node = Node::anvil(&[]).await?;
    let dir = tempfile::tempdir()?;
    let report = |i: u64| dir.path().join(format!("shard-{i}.json"));
    // 80 actions/s for 3 s as one run: 240 ticks over 8 accounts; each shard 20/s over 2 accounts.
    let url = node.url.as_str();
    let runs = (0..SHARDS).map(|i| {
        let (shard, path) = (format!("{i}/{SHARDS}"), report(i).display().to_string());
        async move {
            let args = [
                "iotex-injector",
                "run",
                "--endpoint",
                url,
                "--mnemonic",
                DEV_MNEMONIC,
                "--accounts",
                "8",
                "--rate",
                "80",
                "--duration",
                "3s",
                "--shard",
                &shard,
                "--run-id",
                "shards-it",
                "--progress",
                "off",
                "--confirm-timeout",
                "20s",
                "--poll-interval",
                "100ms",
                "--report",
                &path,
            ];
            main_with(args, std::future::pending()).await
        }
    });
    assert_eq!(futures::future::join_all(runs).await, vec![0; SHARDS as usize]);
    let shards: Vec<Report> = (0..SHARDS).map(|i| read(&report(i))).collect::<anyhow::Result<_>>()?;
    for (i, s) in shards.iter().enumerate() {
        assert_eq!((s.shard.index, s.shard.count, s.run_id.as_str()), (i as u64, SHARDS, "shards-it"));
        assert_eq!((s.scheduled, s.accounts), (60, 2), "each shard has 1/4 of the ticks and accounts");
        assert!((s.offered_rate - 20.0).abs() < 1e-9);
    }

    let out = dir.path().join("merged.json");
    let (log, plot) = (dir.path().join("merged.hlog"), dir.path().join("merged.svg"));
    let mut args = vec!["iotex-injector".to_owned(), "merge".into(), "--out".into(), out.display().to_string()];
    args.extend(["--histogram-log".into(), log.display().to_string(), "--plot".into(), plot.display().to_string()]);
    args.extend((0..SHARDS).map(|i| report(i).display().to_string()));
    assert_eq!(main_with(args, std::future::pending()).await, 0);
    let m = read(&out)?;

    let sum = |f: fn(&Report) -> u64| shards.iter().map(f).sum::<u64>();
    assert_eq!(m.scheduled, sum(|r| r.scheduled));
    assert_eq!(m.sent, sum(|r| r.sent));
    assert_eq!(m.accepted, sum(|r| r.accepted));
    assert_eq!(m.included, sum(|r| r.included));
    assert_eq!((m.scheduled, m.accepted, m.included), (240, 240, 240), "{m:#?}");
    assert!((m.offered_rate - 80.0).abs() < 1e-9);
    assert_eq!(m.merged.as_ref().map(|f| f.shards.clone()), Some(vec![0, 1, 2, 3]));
    // Disjoint accounts: 8 in all, and each one's on-chain nonce rose by exactly its actions (30).
    assert_eq!(m.account_nonces.len(), 8);
    for a in &m.account_nonces {
        assert_eq!(tx_count(&node, &a.address, "latest").await? - a.start_nonce, 30, "{}", a.address);
    }

    let merged = m.histograms.as_ref().ok_or_else(|| anyhow::anyhow!("merged report without histograms"))?;
    for (what, pick, text, lat) in [
        (
            "submit",
            (|r: &Report| r.histograms.as_ref().map_or("", |h| &h.submit)) as fn(&Report) -> &str,
            &merged.submit,
            &m.submit_latency_ms,
        ),
        (
            "inclusion",
            |r: &Report| r.histograms.as_ref().map_or("", |h| &h.inclusion),
            &merged.inclusion,
            &m.inclusion_latency_ms,
        ),
    ] {
        let all = all_samples(&shards, pick)?;
        let merged_h = decode(text)?;
        let shard_counts: u64 = shards.iter().map(|r| decode(pick(r)).map_or(0, |h| h.len())).sum();
        assert_eq!(merged_h.len(), shard_counts, "{what}: merged count = sum of the shards' counts");
        assert_eq!(lat.count, 240);
        let (merged_p99, all_p99) = (lat.p99, all.value_at_quantile(0.99) as f64 / 1000.0);
        eprintln!("{what}: merged p99 {merged_p99} ms, p99 of one histogram of all samples {all_p99} ms");
        assert_eq!(merged_p99, all_p99, "{what} p99");
    }
    assert!(std::fs::read_to_string(&plot)?.contains("<svg"));
    assert!(std::fs::metadata(&log)?.len() > 0);

    // The same reports with one left out, or one twice, are refused (exit 2).
    let partial = ["iotex-injector", "merge", "--out", "/dev/null"].map(String::from).into_iter();
    let three: Vec<String> = partial.clone().chain((0..3).map(|i| report(i).display().to_string())).collect();
    assert_eq!(main_with(three, std::future::pending()).await, 2);
    let twice: Vec<String> = partial.chain([0, 1, 2, 3, 3].map(|i| report(i).display().to_string())).collect();
    assert_eq!(main_with(twice, std::future::pending()).await, 2);
    Ok(())
}
