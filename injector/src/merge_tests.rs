//! Merging: exact sums and percentiles (property-tested against one histogram of all samples), every
//! refusal, and hostile report files answered with errors, never panics.

use super::*;
use iotex_shared::report::{AccountReport, Latency};
use proptest::prelude::*;

/// A shard's report whose submit latencies are `samples` (µs), one endpoint, one account, two intervals.
fn shard(index: u64, count: u64, samples: &[u64]) -> Input {
    let mut h = new_histogram();
    for s in samples {
        h.record(*s).unwrap();
    }
    let n = samples.len() as u64;
    // Each included action paid an IoTeX transfer's fee (10,000 gas) at (index + 1) × 10¹² rau per gas.
    let mut fees = FeeStats::new();
    for _ in samples {
        fees.add(Some(10_000 * u128::from(index + 1) * 1_000_000_000_000));
    }
    let (first, second) = samples.split_at(samples.len() / 2);
    let interval = |t: f64, part: &[u64]| {
        let mut ih = new_histogram();
        for s in part {
            ih.record(*s).unwrap();
        }
        IntervalHistograms {
            t,
            secs: 1.0,
            offered: 10.0,
            sent: part.len() as u64,
            accepted: part.len() as u64,
            included: part.len() as u64,
            submit: encode(&ih),
            inclusion: encode(&ih),
        }
    };
    let report = Report {
        chain_id: 31337,
        run_id: "load-1".into(),
        shard: ShardInfo { index, count },
        duration_s: 2.0,
        offered_rate: 10.0,
        achieved_rate: n as f64 / 2.0,
        scheduled: n,
        sent: n,
        accepted: n,
        included: n,
        accounts: 1,
        confirmed: true,
        rejected: [("busy".to_owned(), index)].into_iter().filter(|(_, v)| *v > 0).collect(),
        submit_latency_ms: latency(&h),
        inclusion_latency_ms: latency(&h),
        started_at_unix_s: 1_000.0 + index as f64 * 0.25,
        tx_type: "legacy".into(),
        fee: fees.report(),
        per_endpoint: vec![EndpointReport {
            endpoint: "http://127.0.0.1:8545".into(),
            accounts: 1,
            sent: n,
            accepted: n,
            included: n,
            submit_latency_ms: latency(&h),
            inclusion_latency_ms: latency(&h),
            ..EndpointReport::default()
        }],
        account_nonces: vec![AccountReport {
            address: format!("0x{:040x}", index + 1),
            endpoint: 0,
            ..AccountReport::default()
        }],
        histograms: Some(Histograms {
            submit: encode(&h),
            inclusion: encode(&h),
            send_lag: encode(&new_histogram()),
            per_endpoint: vec![LatencyHistograms { submit: encode(&h), inclusion: encode(&h) }],
            steps: Vec::new(),
            intervals: vec![interval(1.0, first), interval(2.0, second)],
            fee: encode(&fees.per_action),
        }),
        ..Report::default()
    };
    Input { path: format!("shard-{index}.json"), report }
}

fn refusal(inputs: &[Input]) -> String {
    merge(inputs, false).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn counts_are_summed_and_percentiles_come_from_the_merged_histogram() {
    let a: Vec<u64> = (1..=990).map(|v| v * 10).collect();
    let b: Vec<u64> = (0..10).map(|_| 2_000_000).collect();
    let m = merge(&[shard(0, 2, &a), shard(1, 2, &b)], false).unwrap().report;
    assert_eq!((m.scheduled, m.sent, m.accepted, m.included), (1000, 1000, 1000, 1000));
    assert_eq!(m.rejected.get("busy"), Some(&1));
    assert_eq!(m.submit_latency_ms.count, 1000);
    // The 10 slow samples are exactly the top 1 %: the merged p99 is the 990th value (9.9 ms), while
    // averaging the shards' p99s would give about 1 s.
    assert!((m.submit_latency_ms.p99 - 9.9).abs() < 0.01, "{:?}", m.submit_latency_ms);
    assert!((m.submit_latency_ms.max - 2000.0).abs() < 2.0);
    assert_eq!(m.per_endpoint.len(), 1);
    assert_eq!(m.per_endpoint[0].accepted, 1000);
    assert_eq!(m.account_nonces.len(), 2);
    let from = m.merged.as_ref().unwrap();
    assert_eq!((from.shard_count, from.shards.clone(), from.start_skew_s), (2, vec![0, 1], 0.25));
    assert_eq!(m.shard, ShardInfo::default());
    let bins = &m.histograms.as_ref().unwrap().intervals;
    assert_eq!(bins.iter().map(|b| b.sent).sum::<u64>(), 1000);
    assert_eq!(bins.iter().map(|b| decode(&b.submit).unwrap().len()).sum::<u64>(), 1000);
    // Fees: the exact totals add (990 at 10¹⁶ rau, 10 at 2·10¹⁶), percentiles come from the added histograms.
    assert_eq!((m.fee.measured, m.fee.unmeasured), (1000, 0));
    assert_eq!(m.fee.total, (990u128 * 10_000_000_000_000_000 + 10 * 20_000_000_000_000_000).to_string());
    assert!((m.fee.p50_gwei - 1e7).abs() / 1e7 < 1e-3, "{:?}", m.fee);
    assert!((m.fee.max_gwei - 2e7).abs() / 2e7 < 1e-3, "{:?}", m.fee);
    assert_eq!(decode_fee(&m.histograms.as_ref().unwrap().fee).unwrap().len(), 1000);
}

/// A shard's fee section is checked like its latencies: bounds, counts, and an exact total that is a number.
#[test]
fn a_fee_section_that_does_not_add_up_is_refused() {
    let (one, two) = (|| shard(0, 2, &[10, 20]), || shard(1, 2, &[30]));
    let mut latency_bounds = two();
    latency_bounds.report.histograms.as_mut().unwrap().fee = encode(&new_histogram());
    let e = refusal(&[one(), latency_bounds]);
    assert!(e.contains("histograms.fee") && e.contains("fee bounds"), "{e}");
    let mut miscounted = two();
    miscounted.report.fee.measured = 5;
    assert!(refusal(&[one(), miscounted]).contains("histograms.fee holds 1 samples but the report counts 5"));
    for total in ["12x", "-1", "+1", "1e30", &"9".repeat(40), " 1"] {
        let mut bad = two();
        bad.report.fee.total = total.to_owned();
        assert!(refusal(&[one(), bad]).contains("fee.total"), "{total}");
    }
    let mut empty_total = two();
    empty_total.report.fee.total = String::new();
    assert!(refusal(&[one(), empty_total]).contains("fee.total is empty"));
    // 2¹²⁸ − 1 twice: the merged total saturates instead of wrapping.
    let (mut a, mut b) = (one(), two());
    for s in [&mut a, &mut b] {
        s.report.fee.total = u128::MAX.to_string();
    }
    assert_eq!(merge(&[a, b], false).unwrap().report.fee.total, u128::MAX.to_string());
    // A shard written before fees were measured: no fee histogram, an empty total, nothing counted.
    let mut before = two();
    before.report.fee = iotex_shared::report::Fee::default();
    before.report.histograms.as_mut().unwrap().fee = String::new();
    let m = merge(&[one(), before], false).unwrap().report;
    assert_eq!((m.fee.measured, m.fee.total.as_str()), (2, "20000000000000000"));
}

proptest! {
    // Each case encodes and decodes a few full-size histograms: 32 cases keep it to seconds.
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn the_merged_p99_is_the_p99_of_all_samples(
        samples in proptest::collection::vec(1u64..3_600_000_000, 1..400),
        n in 1u64..6,
    ) {
        let mut all = new_histogram();
        let mut parts: Vec<Vec<u64>> = vec![Vec::new(); n as usize];
        for (k, s) in samples.iter().enumerate() {
            all.record(*s).unwrap();
            parts[k % n as usize].push(*s);
        }
        let inputs: Vec<Input> = parts.iter().enumerate().map(|(i, p)| shard(i as u64, n, p)).collect();
        let m = merge(&inputs, false).unwrap().report;
        let want = latency(&all);
        prop_assert_eq!(m.submit_latency_ms.clone(), want.clone());
        prop_assert_eq!(m.submit_latency_ms.count, samples.len() as u64);
        prop_assert_eq!(decode(&m.histograms.unwrap().submit).unwrap(), all);
    }
}

#[test]
fn every_refusal_names_what_differs() {
    let one = || shard(0, 2, &[100, 200]);
    let two = || shard(1, 2, &[300]);
    let mut other_run = two();
    other_run.report.run_id = "load-2".into();
    assert!(refusal(&[one(), other_run]).contains("run ids differ"));
    let mut other_chain = two();
    other_chain.report.chain_id = 4689;
    assert!(refusal(&[one(), other_chain]).contains("chain ids differ"));
    let mut other_n = shard(1, 3, &[300]);
    other_n.report.account_nonces[0].address = "0xabc".into();
    assert!(refusal(&[one(), other_n]).contains("shard counts differ"));
    let mut dup = one();
    dup.path = "again.json".into();
    dup.report.account_nonces[0].address = "0xdef".into();
    assert!(refusal(&[one(), dup]).contains("shard 0/2 appears twice"));
    let mut overlap = two();
    overlap.report.account_nonces = one().report.account_nonces;
    assert!(refusal(&[one(), overlap]).contains("in two shards"));
    assert!(refusal(&[one()]).contains("shard(s) 1 are missing"));
    let partial = merge(&[one()], true).unwrap().report;
    assert_eq!(partial.merged.unwrap().missing, vec![1]);
    let mut unconfirmed = two();
    unconfirmed.report.confirmed = false;
    assert!(refusal(&[one(), unconfirmed]).contains("confirmation modes"));
    let mut no_hist = two();
    no_hist.report.histograms = None;
    assert!(refusal(&[one(), no_hist]).contains("carries no histograms"));
    let mut edited = two();
    edited.report.submit_latency_ms = Latency { count: 7, ..Latency::default() };
    assert!(refusal(&[one(), edited]).contains("holds 1 samples but the report counts 7"));
    let mut bad_hist = two();
    bad_hist.report.histograms.as_mut().unwrap().inclusion = "!!".into();
    assert!(refusal(&[one(), bad_hist]).contains("histograms.inclusion"));
    let mut bad_time = two();
    bad_time.report.histograms.as_mut().unwrap().intervals[0].t = -1e12;
    assert!(refusal(&[one(), bad_time]).contains("impossible time"));
    let mut impossible = two();
    impossible.report.shard = ShardInfo { index: 5, count: 2 };
    assert!(refusal(&[one(), impossible]).contains("impossible shard"));
    let merged = merge(&[one(), two()], false).unwrap().report;
    assert!(refusal(&[Input { path: "m.json".into(), report: merged }]).contains("already a merged report"));
    assert!(refusal(&[]).contains("no reports"));
}

#[test]
fn hostile_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", vec![0xff, 0x00, 0xfe, 0x7b]),
        ("array", b"[1,2,3]".to_vec()),
        ("deep", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        ("wrong types", br#"{"chain_id": "x"}"#.to_vec()),
        ("negative count", br#"{"chain_id": 1, "scheduled": -1}"#.to_vec()),
        ("huge number", br#"{"chain_id": 1e400}"#.to_vec()),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.to_string().contains("not an injector report"), "{name}: {e}");
        assert_eq!(e.exit_code(), 2);
    }
    let e = load(&dir.path().join("absent")).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
    // A report of an older injector (no run id, shard or histograms): read, then refused by merge.
    let p = dir.path().join("old.json");
    let mut old = serde_json::to_value(shard(0, 1, &[1]).report).unwrap();
    for key in ["run_id", "shard", "histograms"] {
        old.as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&p, old.to_string()).unwrap();
    let old = load(&p).unwrap();
    assert_eq!(old.report.shard, ShardInfo::default());
    assert!(refusal(&[old]).contains("carries no histograms"));
}

#[test]
fn run_writes_the_report_log_and_plot() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in [shard(0, 2, &[100, 200, 300, 400]), shard(1, 2, &[500, 600])] {
        let p = dir.path().join(&i.path);
        std::fs::write(&p, serde_json::to_vec(&i.report).unwrap()).unwrap();
        paths.push(p);
    }
    let (out, log, plot) = (dir.path().join("m.json"), dir.path().join("m.hlog"), dir.path().join("m.svg"));
    let r = run(&paths, false, &out, Some(&log), Some(&plot)).unwrap();
    assert_eq!(r.sent, 6);
    let back: Report = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(back, r);
    let text = std::fs::read(&log).unwrap();
    let mut submit = 0;
    for e in IntervalLogIterator::new(&text) {
        if let LogEntry::Interval(h) = e.unwrap()
            && h.tag().map(|t| t.as_str()) == Some("submit")
        {
            submit += decode(h.encoded_histogram()).unwrap().len();
        }
    }
    assert_eq!(submit, 6);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    let unwritable = dir.path().join("no-such-dir").join("m.json");
    assert_eq!(run(&paths, false, &unwritable, None, None).unwrap_err().exit_code(), 1);
}
