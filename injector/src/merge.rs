//! `iotex-injector merge`: the reports of one sharded run (`run --shard I/N`) into one report, exactly.
//!
//! Counts are summed; every percentile is read from histograms added together from the lossless copies
//! each report carries ([`crate::histograms`]), never averaged, so the merged p99 is the p99 of one
//! histogram of all the shards' samples. The shards' one-second intervals are re-binned onto one-second
//! bins from the earliest shard's start, giving the merged interval log and the plot. Merge refuses, with
//! the file and the reason: a report that is not one (unreadable, not JSON, no histograms, histograms that
//! disagree with its own counts, an already merged report), reports of different runs, chain ids, shard
//! counts, step profiles or confirmation modes, the same shard twice, shards that share an account, and
//! (without `--allow-missing`) a run with shards missing.

use crate::histograms::{self, MAX_COUNT, decode, decode_fee, encode};
use crate::recorder::{FeeStats, Point, latency, new_histogram};
use hdrhistogram::Histogram;
use iotex_shared::report::{
    EndpointReport, Histograms, IntervalHistograms, LatencyHistograms, MergedFrom, Report, ShardInfo, StepReport,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Largest report file read (a day of intervals is a few tens of MB).
const MAX_FILE: u64 = 512 << 20;
/// Most reports merged at once.
const MAX_REPORTS: usize = 4096;
/// Most intervals one report may carry (a day of seconds), and the latest second a bin may start at.
const MAX_INTERVALS: usize = 24 * 3600;
const MAX_BIN: f64 = 7.0 * 24.0 * 3600.0;

/// Why reports could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A file could not be read or is not a report.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The reports do not belong together.
    #[error("refusing to merge: {0}")]
    Refused(String),
    /// An output file could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl MergeError {
    /// 2 for bad input (like a bad flag), 1 when writing failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            MergeError::Input { .. } | MergeError::Refused(_) => 2,
            MergeError::Output { .. } => 1,
        }
    }
}

/// One shard's report, read.
#[derive(Debug, Clone)]
pub struct Input {
    /// Where it came from (for messages).
    pub path: String,
    /// The report.
    pub report: Report,
}

/// A merged run: the report, and its seconds as plot points.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged report (its `histograms.intervals` are the merged one-second bins).
    pub report: Report,
    /// One point per merged bin, for the plot.
    pub points: Vec<Point>,
}

/// Reads a report file (bounded in size).
pub fn load(path: &Path) -> Result<Input, MergeError> {
    use std::io::Read;
    let p = path.display().to_string();
    let input = |reason: String| MergeError::Input { path: p.clone(), reason };
    let f = std::fs::File::open(path).map_err(|e| input(format!("cannot read ({e})")))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|e| input(format!("cannot read ({e})")))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(input("larger than 512 MiB; not a report".into()));
    }
    let report: Report = serde_json::from_slice(&bytes).map_err(|e| input(format!("not an injector report ({e})")))?;
    Ok(Input { path: p, report })
}

/// `merge`: reads the reports, merges them, writes the report, interval log and plot.
pub fn run(
    reports: &[PathBuf],
    allow_missing: bool,
    out: &Path,
    log: Option<&Path>,
    plot: Option<&Path>,
) -> Result<Report, MergeError> {
    if reports.len() > MAX_REPORTS {
        return Err(MergeError::Refused(format!("{} reports; at most {MAX_REPORTS} are merged", reports.len())));
    }
    let inputs = reports.iter().map(|p| load(p)).collect::<Result<Vec<_>, _>>()?;
    let merged = merge(&inputs, allow_missing)?;
    fn output(p: &Path) -> impl Fn(String) -> MergeError + '_ {
        move |reason| MergeError::Output { path: p.display().to_string(), reason }
    }
    let json = serde_json::to_vec_pretty(&merged.report).map_err(|e| output(out)(e.to_string()))?;
    std::fs::write(out, json).map_err(|e| output(out)(e.to_string()))?;
    if let Some(p) = log {
        write_log(p, &merged.report).map_err(output(p))?;
    }
    if let Some(p) = plot {
        crate::plot::plot(p, &merged.points).map_err(output(p))?;
    }
    Ok(merged.report)
}

/// Merges the reports of one run's shards (see the module doc for what is refused).
pub fn merge(inputs: &[Input], allow_missing: bool) -> Result<Merged, MergeError> {
    let shards = check_together(inputs, allow_missing)?;
    let mut hists = Totals::default();
    for i in inputs {
        hists.add(i)?;
    }
    let (per_endpoint, endpoint_of) = endpoints(inputs, &hists);
    let first = &inputs[0].report;
    let start = inputs.iter().map(|i| i.report.started_at_unix_s).fold(f64::INFINITY, f64::min);
    let latest = inputs.iter().map(|i| i.report.started_at_unix_s).fold(f64::NEG_INFINITY, f64::max);
    let (intervals, points) = bins(inputs, start)?;
    let mut r = sum_counts(inputs);
    let duration_s = inputs.iter().map(|i| i.report.duration_s).fold(0.0, f64::max);
    let rejected: u64 = r.rejected.values().fold(0, |a, b| a.saturating_add(*b));
    r.chain_id = first.chain_id;
    r.run_id = first.run_id.clone();
    r.shard = ShardInfo::default();
    r.duration_s = duration_s;
    r.offered_rate = inputs.iter().map(|i| i.report.offered_rate).sum();
    r.achieved_rate = if duration_s > 0.0 { r.accepted as f64 / duration_s } else { 0.0 };
    r.rate_error = if r.offered_rate > 0.0 { (r.achieved_rate - r.offered_rate).abs() / r.offered_rate } else { 0.0 };
    r.error_rate = if r.scheduled > 0 { rejected.saturating_add(r.dropped) as f64 / r.scheduled as f64 } else { 0.0 };
    r.interval_rate_error = crate::report::interval_rate_error(&points, duration_s);
    r.submit_latency_ms = latency(&hists.submit);
    r.inclusion_latency_ms = latency(&hists.inclusion);
    r.send_lag_ms = latency(&hists.send_lag);
    r.confirmed = first.confirmed;
    r.started_at_unix_s = if start.is_finite() { start } else { 0.0 };
    r.account_nonces = inputs
        .iter()
        .flat_map(|i| {
            let map = endpoint_of.get(&i.path).cloned().unwrap_or_default();
            i.report.account_nonces.iter().cloned().map(move |mut a| {
                a.endpoint = map.get(a.endpoint).copied().unwrap_or(a.endpoint);
                a
            })
        })
        .collect();
    r.contracts = contracts(inputs, &per_endpoint);
    r.steps = steps(inputs, &hists);
    r.histograms = Some(Histograms {
        submit: encode(&hists.submit),
        inclusion: encode(&hists.inclusion),
        send_lag: encode(&hists.send_lag),
        per_endpoint: hists.per_endpoint.values().map(|(s, i)| pair(s, i)).collect(),
        steps: hists.steps.iter().map(|(s, i)| pair(s, i)).collect(),
        intervals,
        fee: encode(&hists.fees.per_action),
    });
    r.fee = hists.fees.report();
    r.per_endpoint = per_endpoint;
    r.equations = crate::report::equations(&r);
    r.merged = Some(MergedFrom {
        shard_count: first.shard.count,
        missing: (0..first.shard.count).filter(|s| !shards.contains(s)).collect(),
        shards: shards.into_iter().collect(),
        start_skew_s: if latest.is_finite() && start.is_finite() { latest - start } else { 0.0 },
    });
    Ok(Merged { report: r, points })
}

fn pair(s: &Histogram<u64>, i: &Histogram<u64>) -> LatencyHistograms {
    LatencyHistograms { submit: encode(s), inclusion: encode(i) }
}

/// The checks that the reports are shards of one run; returns the shard indexes present.
///
/// Long (about 85 lines) because it is the list of refusals, each with its own message naming the files;
/// split up, the order in which they are checked (what is reported first) would be spread over functions.
fn check_together(inputs: &[Input], allow_missing: bool) -> Result<BTreeSet<u64>, MergeError> {
    let refuse = |m: String| Err(MergeError::Refused(m));
    let Some(first) = inputs.first() else {
        return refuse("no reports given".into());
    };
    for i in inputs {
        let bad = |reason: &str| Err(MergeError::Input { path: i.path.clone(), reason: reason.to_owned() });
        if i.report.merged.is_some() {
            return bad("is already a merged report; merge the shards' own reports");
        }
        if i.report.histograms.is_none() {
            return bad(
                "carries no histograms (written by an injector without sharding support), so its percentiles cannot be merged exactly",
            );
        }
        if i.report.shard.count == 0 || i.report.shard.index >= i.report.shard.count {
            return bad("has an impossible shard (index must be below count, count at least 1)");
        }
    }
    let f = &first.report;
    for i in &inputs[1..] {
        let r = &i.report;
        let differ = |what: &str, a: String, b: String| {
            refuse(format!("{what} differ: {} has {a}, {} has {b}", first.path, i.path))
        };
        if r.run_id != f.run_id {
            return differ("run ids", format!("`{}`", f.run_id), format!("`{}`", r.run_id));
        }
        if r.chain_id != f.chain_id {
            return differ("chain ids", f.chain_id.to_string(), r.chain_id.to_string());
        }
        if r.shard.count != f.shard.count {
            return differ("shard counts", format!("N = {}", f.shard.count), format!("N = {}", r.shard.count));
        }
        if r.confirmed != f.confirmed {
            return differ("confirmation modes (--no-confirm)", f.confirmed.to_string(), r.confirmed.to_string());
        }
        let shape = |r: &Report| r.steps.iter().map(|s| (s.start_s, s.duration_s)).collect::<Vec<_>>();
        if shape(r) != shape(f) {
            return differ("rate profiles", format!("{} steps", f.steps.len()), format!("{} steps", r.steps.len()));
        }
    }
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for i in inputs {
        if let Some(other) = seen.insert(i.report.shard.index, &i.path) {
            return refuse(format!(
                "shard {}/{} appears twice ({other} and {}); the shards overlap",
                i.report.shard.index, i.report.shard.count, i.path
            ));
        }
    }
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for i in inputs {
        for a in &i.report.account_nonces {
            if let Some(other) = owner.insert(a.address.to_ascii_lowercase(), &i.path)
                && other != i.path
            {
                return refuse(format!(
                    "account {} is in two shards ({other} and {}); the shards overlap and their nonces collided",
                    a.address, i.path
                ));
            }
        }
    }
    let missing: Vec<String> = (0..f.shard.count).filter(|s| !seen.contains_key(s)).map(|s| s.to_string()).collect();
    if !missing.is_empty() && !allow_missing {
        return refuse(format!(
            "run `{}` has {} shards but shard(s) {} are missing; give every shard's report, or --allow-missing",
            f.run_id,
            f.shard.count,
            missing.join(", ")
        ));
    }
    Ok(seen.into_keys().collect())
}

/// The summed histograms of every report.
#[derive(Debug)]
struct Totals {
    submit: Histogram<u64>,
    inclusion: Histogram<u64>,
    send_lag: Histogram<u64>,
    /// By endpoint address, in first-seen order of the key.
    per_endpoint: BTreeMap<String, (Histogram<u64>, Histogram<u64>)>,
    steps: Vec<(Histogram<u64>, Histogram<u64>)>,
    /// Fees: counts and exact totals summed, per-action histograms added.
    fees: FeeStats,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            submit: new_histogram(),
            inclusion: new_histogram(),
            send_lag: new_histogram(),
            per_endpoint: BTreeMap::new(),
            steps: Vec::new(),
            fees: FeeStats::new(),
        }
    }
}

/// A report's exact fee total: decimal digits only (at most 39, which u128 holds); empty in a report that
/// measured none (or predates fees).
fn fee_total(path: &str, f: &iotex_shared::report::Fee) -> Result<u128, MergeError> {
    let bad = |why: &str| MergeError::Input { path: path.to_owned(), reason: format!("fee.total {why}") };
    if f.total.is_empty() {
        return if f.measured == 0 { Ok(0) } else { Err(bad("is empty but fee.measured is not 0")) };
    }
    if f.total.len() > 39 || !f.total.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a decimal number of at most 39 digits"));
    }
    f.total.parse().map_err(|_| bad("does not fit 128 bits"))
}

/// Decodes one of `path`'s histograms (`what` names it in the message).
fn read(path: &str, what: &str, text: &str) -> Result<Histogram<u64>, MergeError> {
    decode(text).map_err(|e| MergeError::Input { path: path.to_owned(), reason: format!("histograms.{what}: {e}") })
}

/// Adds `b` into `a`; both come from [`decode`], so they share bounds and the add cannot fail.
fn add(a: &mut Histogram<u64>, b: &Histogram<u64>) {
    let _ = a.add(b);
}

impl Totals {
    /// Adds one report's histograms, checking each against the count its report states.
    fn add(&mut self, i: &Input) -> Result<(), MergeError> {
        let (r, p) = (&i.report, i.path.as_str());
        let Some(h) = &r.histograms else { return Ok(()) };
        let matches = |what: &str, h: &Histogram<u64>, count: u64| {
            if h.len() == count {
                Ok(())
            } else {
                Err(MergeError::Input {
                    path: p.to_owned(),
                    reason: format!("histograms.{what} holds {} samples but the report counts {count}", h.len()),
                })
            }
        };
        let submit = read(p, "submit", &h.submit)?;
        matches("submit", &submit, r.submit_latency_ms.count)?;
        let inclusion = read(p, "inclusion", &h.inclusion)?;
        matches("inclusion", &inclusion, r.inclusion_latency_ms.count)?;
        let send_lag = read(p, "send_lag", &h.send_lag)?;
        matches("send_lag", &send_lag, r.send_lag_ms.count)?;
        add(&mut self.submit, &submit);
        add(&mut self.inclusion, &inclusion);
        add(&mut self.send_lag, &send_lag);
        if h.per_endpoint.len() != r.per_endpoint.len() || h.steps.len() > r.steps.len() {
            return Err(MergeError::Input {
                path: p.to_owned(),
                reason: "histograms.per_endpoint / steps do not line up with per_endpoint / steps".into(),
            });
        }
        for (e, eh) in r.per_endpoint.iter().zip(&h.per_endpoint) {
            let (s, inc) = (read(p, "per_endpoint", &eh.submit)?, read(p, "per_endpoint", &eh.inclusion)?);
            matches("per_endpoint.submit", &s, e.submit_latency_ms.count)?;
            let slot =
                self.per_endpoint.entry(e.endpoint.clone()).or_insert_with(|| (new_histogram(), new_histogram()));
            add(&mut slot.0, &s);
            add(&mut slot.1, &inc);
        }
        for (n, sh) in h.steps.iter().enumerate() {
            while self.steps.len() <= n {
                self.steps.push((new_histogram(), new_histogram()));
            }
            add(&mut self.steps[n].0, &read(p, "steps", &sh.submit)?);
            add(&mut self.steps[n].1, &read(p, "steps", &sh.inclusion)?);
        }
        let fee = decode_fee(&h.fee)
            .map_err(|e| MergeError::Input { path: p.to_owned(), reason: format!("histograms.fee: {e}") })?;
        matches("fee", &fee, r.fee.measured)?;
        let f = &mut self.fees;
        f.total = f.total.saturating_add(fee_total(p, &r.fee)?);
        f.measured = f.measured.saturating_add(r.fee.measured);
        f.unmeasured = f.unmeasured.saturating_add(r.fee.unmeasured);
        add(&mut f.per_action, &fee);
        if self.submit.len() >= MAX_COUNT || self.inclusion.len() >= MAX_COUNT {
            return Err(MergeError::Refused("more than 2^48 samples in all".into()));
        }
        Ok(())
    }
}

/// The counts that are plain sums over the shards (everything else is set by [`merge`]).
fn sum_counts(inputs: &[Input]) -> Report {
    let mut r = Report::default();
    let add_map = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
        for (k, v) in from {
            let e = into.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    };
    let mut tx_types: Vec<String> = Vec::new();
    for i in inputs {
        let s = &i.report;
        r.scheduled = r.scheduled.saturating_add(s.scheduled);
        r.sent = r.sent.saturating_add(s.sent);
        r.accepted = r.accepted.saturating_add(s.accepted);
        r.late = r.late.saturating_add(s.late);
        r.included = r.included.saturating_add(s.included);
        r.reverted = r.reverted.saturating_add(s.reverted);
        r.pending_at_end = r.pending_at_end.saturating_add(s.pending_at_end);
        r.dropped = r.dropped.saturating_add(s.dropped);
        r.accounts = r.accounts.saturating_add(s.accounts);
        r.not_sent = r.not_sent.saturating_add(s.not_sent);
        r.shed = r.shed.saturating_add(s.shed);
        r.gap_fillers = r.gap_fillers.saturating_add(s.gap_fillers);
        r.nonce_resyncs = r.nonce_resyncs.saturating_add(s.nonce_resyncs);
        r.interrupted |= s.interrupted;
        add_map(&mut r.rejected, &s.rejected);
        add_map(&mut r.retried, &s.retried);
        for (k, m) in &s.sample_errors {
            r.sample_errors.entry(k.clone()).or_insert_with(|| m.clone());
        }
        if !tx_types.contains(&s.tx_type) {
            tx_types.push(s.tx_type.clone());
        }
    }
    r.tx_type = tx_types.join(",");
    r
}

/// Per-endpoint sums, keyed by endpoint address (shards list their endpoints in any order); also each
/// report's map from its endpoint index to the merged one.
fn endpoints(inputs: &[Input], hists: &Totals) -> (Vec<EndpointReport>, BTreeMap<String, Vec<usize>>) {
    let mut order: Vec<String> = Vec::new();
    let mut sums: BTreeMap<String, EndpointReport> = BTreeMap::new();
    let mut maps = BTreeMap::new();
    for i in inputs {
        let mut map = Vec::new();
        for e in &i.report.per_endpoint {
            if !sums.contains_key(&e.endpoint) {
                order.push(e.endpoint.clone());
            }
            map.push(order.iter().position(|x| *x == e.endpoint).unwrap_or(0));
            let s = sums
                .entry(e.endpoint.clone())
                .or_insert_with(|| EndpointReport { endpoint: e.endpoint.clone(), ..EndpointReport::default() });
            s.accounts = s.accounts.saturating_add(e.accounts);
            s.sent = s.sent.saturating_add(e.sent);
            s.accepted = s.accepted.saturating_add(e.accepted);
            s.included = s.included.saturating_add(e.included);
            s.reverted = s.reverted.saturating_add(e.reverted);
            s.pending_at_end = s.pending_at_end.saturating_add(e.pending_at_end);
            s.dropped = s.dropped.saturating_add(e.dropped);
            for (k, v) in &e.rejected {
                let n = s.rejected.entry(k.clone()).or_insert(0);
                *n = n.saturating_add(*v);
            }
        }
        maps.insert(i.path.clone(), map);
    }
    let reports = order
        .iter()
        .filter_map(|ep| sums.remove(ep))
        .map(|mut e| {
            if let Some((s, i)) = hists.per_endpoint.get(&e.endpoint) {
                e.submit_latency_ms = latency(s);
                e.inclusion_latency_ms = latency(i);
            }
            e
        })
        .collect();
    (reports, maps)
}

/// For each merged endpoint, the contract the first shard that used it called there.
fn contracts(inputs: &[Input], per_endpoint: &[EndpointReport]) -> Vec<Option<String>> {
    per_endpoint
        .iter()
        .map(|e| {
            inputs.iter().find_map(|i| {
                let idx = i.report.per_endpoint.iter().position(|x| x.endpoint == e.endpoint)?;
                i.report.contracts.get(idx).cloned().flatten()
            })
        })
        .collect()
}

/// The profile's steps with every shard's rates summed and latencies from the summed step histograms.
fn steps(inputs: &[Input], hists: &Totals) -> Vec<StepReport> {
    let mut out: Vec<StepReport> = inputs[0].report.steps.clone();
    for s in &mut out {
        (s.rate_from, s.rate_to, s.sent_rate, s.achieved_rate, s.included_rate) = (0.0, 0.0, 0.0, 0.0, 0.0);
    }
    for i in inputs {
        for (m, s) in out.iter_mut().zip(&i.report.steps) {
            m.rate_from += s.rate_from;
            m.rate_to += s.rate_to;
            m.sent_rate += s.sent_rate;
            m.achieved_rate += s.achieved_rate;
            m.included_rate += s.included_rate;
        }
    }
    for (m, (s, inc)) in out.iter_mut().zip(&hists.steps) {
        m.submit_latency_ms = latency(s);
        m.inclusion_latency_ms = latency(inc);
    }
    out
}

/// Where one shard interval lands: (bin, input, interval).
type Slot = (usize, usize, usize);

/// Re-bins every shard's intervals onto one-second bins counted from `start` (the earliest shard start),
/// each interval into the bin holding its midpoint; one bin's histograms are decoded, added and encoded
/// before the next, so memory stays at one bin whatever the run's length.
fn bins(inputs: &[Input], start: f64) -> Result<(Vec<IntervalHistograms>, Vec<Point>), MergeError> {
    let mut slots: Vec<Slot> = Vec::new();
    for (n, i) in inputs.iter().enumerate() {
        let ivs = i.report.histograms.as_ref().map_or(&[][..], |h| &h.intervals[..]);
        let bad = |reason: String| MergeError::Input { path: i.path.clone(), reason };
        if ivs.len() > MAX_INTERVALS {
            return Err(bad(format!("{} intervals; a report carries at most {MAX_INTERVALS}", ivs.len())));
        }
        for (k, iv) in ivs.iter().enumerate() {
            let mid = i.report.started_at_unix_s - start + iv.t - iv.secs / 2.0;
            if !(iv.secs.is_finite() && iv.t.is_finite() && iv.secs >= 0.0 && (0.0..MAX_BIN).contains(&mid)) {
                return Err(bad(format!(
                    "histograms.intervals[{k}] has an impossible time (t {}, secs {})",
                    iv.t, iv.secs
                )));
            }
            slots.push((mid.floor() as usize, n, k));
        }
    }
    slots.sort_unstable();
    let mut intervals = Vec::new();
    let mut points = Vec::new();
    for group in slots.chunk_by(|a, b| a.0 == b.0) {
        let bin = group[0].0;
        let (mut submit, mut inclusion) = (new_histogram(), new_histogram());
        let mut m = IntervalHistograms { t: bin as f64 + 1.0, secs: 1.0, ..IntervalHistograms::default() };
        for &(_, n, k) in group {
            let (path, Some(h)) = (&inputs[n].path, &inputs[n].report.histograms) else { continue };
            let iv = &h.intervals[k];
            add(&mut submit, &read(path, "intervals.submit", &iv.submit)?);
            add(&mut inclusion, &read(path, "intervals.inclusion", &iv.inclusion)?);
            m.offered += iv.offered;
            m.sent = m.sent.saturating_add(iv.sent);
            m.accepted = m.accepted.saturating_add(iv.accepted);
            m.included = m.included.saturating_add(iv.included);
        }
        let (sl, il) = (latency(&submit), latency(&inclusion));
        points.push(Point {
            t: m.t,
            offered: m.offered,
            sent: m.sent as f64,
            accepted: m.accepted as f64,
            included: m.included as f64,
            submit_p50: sl.p50,
            submit_p99: sl.p99,
            inclusion_p50: il.p50,
            inclusion_p99: il.p99,
            submit_samples: submit.len(),
            inclusion_samples: inclusion.len(),
        });
        m.submit = encode(&submit);
        m.inclusion = encode(&inclusion);
        intervals.push(m);
    }
    Ok((intervals, points))
}

/// Writes the merged intervals as an HdrHistogram interval log (the same tags and units as a run's).
pub fn write_log(path: &Path, r: &Report) -> Result<(), String> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    use std::io::Write;
    use std::time::Duration;
    let f = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut f = std::io::BufWriter::new(f);
    let mut serializer = V2DeflateSerializer::new();
    let base = std::time::UNIX_EPOCH + Duration::from_secs_f64(r.started_at_unix_s.max(0.0));
    let mut w = IntervalLogWriterBuilder::new()
        .add_comment("iotex-injector merged interval log; tags: submit, inclusion; values in microseconds")
        .add_comment(&format!("run {}, shards merged into one-second bins from the earliest start", r.run_id))
        .with_start_time(base)
        .with_base_time(base)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut f, &mut serializer)
        .map_err(|e| e.to_string())?;
    for iv in r.histograms.iter().flat_map(|h| &h.intervals) {
        let from = Duration::from_secs_f64((iv.t - iv.secs).max(0.0));
        let d = Duration::from_secs_f64(iv.secs.max(0.0));
        for (tag, text) in [("submit", &iv.submit), ("inclusion", &iv.inclusion)] {
            let h = histograms::decode(text).map_err(|e| e.to_string())?;
            if !h.is_empty() {
                w.write_histogram(&h, from, d, Tag::new(tag)).map_err(|e| format!("{e:?}"))?;
            }
        }
    }
    drop(w);
    f.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
