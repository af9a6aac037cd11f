//! Counts and latency histograms for the whole run, per endpoint, and per one-second interval.
//!
//! Action tasks call it directly (a short uncontended lock; no per-action allocation); the progress task
//! takes an [`Interval`] each second, which swaps out the interval histograms for the progress line, the
//! HdrHistogram log and the plot. Latencies are recorded in microseconds from the *intended* send time.

use crate::error::Kind;
use crate::metrics::Metrics;
use crate::schedule::Profile;
use hdrhistogram::Histogram;
use iotex_shared::report::Latency;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const KINDS: usize = Kind::ALL.len();
/// Highest latency a histogram holds (1 h); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;
/// The plot keeps at most this many one-second points (a week).
const MAX_POINTS: usize = 7 * 24 * 3600;

/// A latency histogram: 1 µs to 1 h at 3 significant figures.
#[allow(clippy::expect_used)]
pub fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram documents as valid: this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid constant histogram bounds")
}

/// Highest fee per action a fee histogram holds, in Gwei (10¹² Gwei = 1,000 coins); larger values are clamped.
pub const MAX_FEE_GWEI: u64 = 1_000_000_000_000;
/// Smallest units (wei, rau) per Gwei.
const WEI_PER_GWEI: u128 = 1_000_000_000;

/// A fee histogram: 1 Gwei to 10¹² Gwei at 3 significant figures. Gwei, not wei: a fee per action spans
/// ~2·10⁴ Gwei (an Ethereum transfer at 1 Gwei) to ~10⁷ Gwei (an IoTeX transfer at its 1,000 Gwei floor),
/// which wei would push past what a u64 histogram holds at this precision.
#[allow(clippy::expect_used)]
pub fn new_fee_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram documents as valid: this cannot fail.
    Histogram::new_with_bounds(1, MAX_FEE_GWEI, 3).expect("valid constant histogram bounds")
}

/// Fees paid by included actions.
#[derive(Debug, Clone)]
pub struct FeeStats {
    /// Fees read from receipts.
    pub measured: u64,
    /// Included actions whose fee could not be read.
    pub unmeasured: u64,
    /// Sum of the measured fees, in the chain's smallest unit (saturating: 2¹²⁸ wei is beyond any chain).
    pub total: u128,
    /// Fee per action in Gwei (rounded up, so a fee is never shown as zero).
    pub per_action: Histogram<u64>,
}

impl FeeStats {
    /// Nothing paid yet.
    pub fn new() -> FeeStats {
        FeeStats { measured: 0, unmeasured: 0, total: 0, per_action: new_fee_histogram() }
    }

    /// One included action's fee, `None` when it could not be read.
    pub fn add(&mut self, fee: Option<u128>) {
        match fee {
            Some(f) => {
                self.measured += 1;
                self.total = self.total.saturating_add(f);
                let gwei = u64::try_from(f.div_ceil(WEI_PER_GWEI)).unwrap_or(MAX_FEE_GWEI).clamp(1, MAX_FEE_GWEI);
                let _ = self.per_action.record(gwei);
            }
            None => self.unmeasured += 1,
        }
    }

    /// The report's view.
    pub fn report(&self) -> iotex_shared::report::Fee {
        let h = &self.per_action;
        let gwei = |v: u64| if h.is_empty() { 0.0 } else { v as f64 };
        // u128 → f64 rounds, which is fine for reading; `total` keeps the exact sum.
        let mean = if self.measured == 0 { 0.0 } else { self.total as f64 / self.measured as f64 / 1e9 };
        iotex_shared::report::Fee {
            measured: self.measured,
            unmeasured: self.unmeasured,
            total: self.total.to_string(),
            total_coins: self.total as f64 / 1e18,
            p50_gwei: gwei(h.value_at_quantile(0.50)),
            p99_gwei: gwei(h.value_at_quantile(0.99)),
            max_gwei: gwei(h.max()),
            mean_gwei: mean,
        }
    }
}

impl Default for FeeStats {
    fn default() -> Self {
        FeeStats::new()
    }
}

fn hist() -> Histogram<u64> {
    new_histogram()
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(MAX_US).clamp(1, MAX_US);
    let _ = h.record(us);
}

/// Percentiles of a histogram in milliseconds.
pub fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let ms = |v: u64| v as f64 / 1000.0;
    Latency {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        count: h.len(),
    }
}

/// Per-endpoint tallies.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Sent at least once.
    pub sent: u64,
    /// Accepted.
    pub accepted: u64,
    /// Final rejections by kind index.
    pub rejected: [u64; KINDS],
    /// Sent with no answer, outcome decided at reconciliation.
    pub unknown: u64,
    /// Included.
    pub included: u64,
    /// Reverted.
    pub reverted: u64,
    /// Pending at the end.
    pub pending_at_end: u64,
    /// Dropped.
    pub dropped: u64,
    /// Submit latency.
    pub submit: Histogram<u64>,
    /// Inclusion latency.
    pub inclusion: Histogram<u64>,
}

impl EndpointStats {
    fn new() -> Self {
        EndpointStats {
            sent: 0,
            accepted: 0,
            rejected: [0; KINDS],
            unknown: 0,
            included: 0,
            reverted: 0,
            pending_at_end: 0,
            dropped: 0,
            submit: hist(),
            inclusion: hist(),
        }
    }
}

/// One second of the run, for the progress line, the histogram log and the plot.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Point {
    /// Seconds since start (end of the interval).
    pub t: f64,
    /// Offered rate at that moment.
    pub offered: f64,
    /// Sends per second in the interval.
    pub sent: f64,
    /// Acceptances per second.
    pub accepted: f64,
    /// Inclusions per second.
    pub included: f64,
    /// Submit p50 / p99 (ms) in the interval.
    pub submit_p50: f64,
    /// Submit p99 (ms).
    pub submit_p99: f64,
    /// Inclusion p50 (ms).
    pub inclusion_p50: f64,
    /// Inclusion p99 (ms).
    pub inclusion_p99: f64,
    /// Submit latencies measured in the interval: with none, its submit percentiles are not a measurement
    /// (0 by convention) and the plot leaves a gap there.
    pub submit_samples: u64,
    /// Inclusion latencies measured in the interval (none in most seconds of a chain with slower blocks).
    pub inclusion_samples: u64,
}

/// What the progress task takes each second.
#[derive(Debug)]
pub struct Interval {
    /// The point for the plot.
    pub point: Point,
    /// Interval submit histogram.
    pub submit: Histogram<u64>,
    /// Interval inclusion histogram.
    pub inclusion: Histogram<u64>,
    /// Totals so far: scheduled, accepted, included, late.
    pub totals: (u64, u64, u64, u64),
    /// Errors so far by kind (non-zero only).
    pub errors: Vec<(Kind, u64)>,
}

/// Everything counted.
#[derive(Debug)]
pub struct State {
    /// Ticks scheduled.
    pub scheduled: u64,
    /// Late ticks.
    pub late: u64,
    /// Late ticks shed.
    pub shed: u64,
    /// Ticks never sent.
    pub not_sent: u64,
    /// Retries by kind index.
    pub retried: [u64; KINDS],
    /// Nonce resyncs.
    pub resyncs: u64,
    /// First message per kind.
    pub samples: [Option<String>; KINDS],
    /// Per endpoint.
    pub endpoints: Vec<EndpointStats>,
    /// Intended → actual send.
    pub send_lag: Histogram<u64>,
    interval_submit: Histogram<u64>,
    interval_inclusion: Histogram<u64>,
    interval_counts: (u64, u64, u64),
    /// The per-second series.
    pub points: Vec<Point>,
    /// Per profile step: what its seconds saw (filled by [`Recorder::interval`]).
    pub steps: Vec<StepStats>,
    /// What the included actions paid.
    pub fees: FeeStats,
}

/// What the seconds of one profile step saw.
#[derive(Debug)]
pub struct StepStats {
    /// Seconds accounted to the step.
    pub secs: f64,
    /// Sends, acceptances, inclusions.
    pub counts: (u64, u64, u64),
    /// Submit latencies.
    pub submit: Histogram<u64>,
    /// Inclusion latencies.
    pub inclusion: Histogram<u64>,
}

/// The recorder.
#[derive(Debug)]
pub struct Recorder {
    state: Mutex<State>,
    /// Prometheus handles.
    pub metrics: Arc<Metrics>,
    /// The profile, to put each inclusion latency into the step its action was scheduled in.
    profile: Option<Profile>,
}

fn step(steps: &mut Vec<StepStats>, i: usize) -> &mut StepStats {
    while steps.len() <= i {
        steps.push(StepStats { secs: 0.0, counts: (0, 0, 0), submit: hist(), inclusion: hist() });
    }
    &mut steps[i]
}

impl Recorder {
    /// A recorder for `endpoints` endpoints.
    pub fn new(endpoints: usize, metrics: Arc<Metrics>) -> Recorder {
        Recorder {
            state: Mutex::new(State {
                scheduled: 0,
                late: 0,
                shed: 0,
                not_sent: 0,
                retried: [0; KINDS],
                resyncs: 0,
                samples: Default::default(),
                endpoints: (0..endpoints).map(|_| EndpointStats::new()).collect(),
                send_lag: hist(),
                interval_submit: hist(),
                interval_inclusion: hist(),
                interval_counts: (0, 0, 0),
                points: Vec::new(),
                steps: Vec::new(),
                fees: FeeStats::new(),
            }),
            metrics,
            profile: None,
        }
    }

    /// Attributes inclusion latencies to the profile's steps by each action's intended send time.
    pub fn with_profile(mut self, profile: Profile) -> Recorder {
        self.profile = Some(profile);
        self
    }

    /// Locks the state (a poisoned lock still holds valid counts).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A tick was scheduled.
    pub fn scheduled(&self) {
        self.metrics.scheduled.inc();
        self.lock().scheduled += 1;
    }

    /// A tick found the in-flight bound full.
    pub fn late(&self) {
        self.metrics.late.inc();
        self.lock().late += 1;
    }

    /// A late tick was given up (backlog full).
    pub fn shed(&self) {
        self.lock().shed += 1;
    }

    /// A tick was never sent (shutdown).
    pub fn not_sent(&self) {
        self.lock().not_sent += 1;
    }

    /// A nonce was re-read.
    pub fn resync(&self) {
        self.lock().resyncs += 1;
    }

    /// A nonce-class rejection is being retried.
    pub fn retried(&self, kind: Kind) {
        self.lock().retried[kind.index()] += 1;
    }

    /// First send of an action; `lag` is actual − intended send time.
    pub fn sent(&self, ep: usize, lag: Duration) {
        if let Some(m) = self.metrics.endpoints.get(ep) {
            m.sent.inc();
        }
        let mut s = self.lock();
        record(&mut s.send_lag, lag);
        s.interval_counts.0 += 1;
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.sent += 1;
        }
    }

    fn answered(s: &mut State, ep: usize, latency: Duration) {
        record(&mut s.interval_submit, latency);
        if let Some(e) = s.endpoints.get_mut(ep) {
            record(&mut e.submit, latency);
        }
    }

    /// The node answered with a hash (`latency` from the intended send time).
    pub fn accepted(&self, ep: usize, latency: Duration) {
        self.metrics.submit_latency.observe(latency.as_secs_f64());
        if let Some(m) = self.metrics.endpoints.get(ep) {
            m.accepted.inc();
        }
        let mut s = self.lock();
        Self::answered(&mut s, ep, latency);
        s.interval_counts.1 += 1;
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.accepted += 1;
        }
    }

    /// An answer for an action whose outcome was already counted (another send of the same bytes, or found
    /// in a block first): its submit latency only.
    pub fn answered_again(&self, ep: usize, latency: Duration) {
        self.metrics.submit_latency.observe(latency.as_secs_f64());
        Self::answered(&mut self.lock(), ep, latency);
    }

    /// An action whose send was not answered yet was found in a block or the pool: accepted, counted once
    /// here (its late answer counts nothing).
    pub fn found_accepted(&self, ep: usize) {
        if let Some(m) = self.metrics.endpoints.get(ep) {
            m.accepted.inc();
        }
        let mut s = self.lock();
        s.interval_counts.1 += 1;
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.accepted += 1;
        }
    }

    /// A send still unanswered at the end of the run whose action the node does not know: a timeout.
    pub fn lost_in_flight(&self, ep: usize) {
        if let Some(m) = self.metrics.endpoints.get(ep).and_then(|m| m.rejected.get(Kind::Timeout.index())) {
            m.inc();
        }
        let mut s = self.lock();
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.rejected[Kind::Timeout.index()] += 1;
        }
        if s.samples[Kind::Timeout.index()].is_none() {
            s.samples[Kind::Timeout.index()] = Some("no answer, and the node does not know the transaction".into());
        }
    }

    /// Final rejection.
    pub fn rejected(&self, ep: usize, kind: Kind, latency: Option<Duration>, message: &str) {
        if let Some(m) = self.metrics.endpoints.get(ep).and_then(|m| m.rejected.get(kind.index())) {
            m.inc();
        }
        let mut s = self.lock();
        if let Some(l) = latency {
            self.metrics.submit_latency.observe(l.as_secs_f64());
            Self::answered(&mut s, ep, l);
        }
        if s.samples[kind.index()].is_none() {
            s.samples[kind.index()] = Some(message.chars().take(300).collect());
        }
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.rejected[kind.index()] += 1;
        }
    }

    /// Sent but unanswered; reconciliation decides.
    pub fn unknown(&self, ep: usize, latency: Duration) {
        let mut s = self.lock();
        Self::answered(&mut s, ep, latency);
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.unknown += 1;
        }
    }

    /// An unanswered action turned out accepted (found on chain or in the pool).
    pub fn unknown_was_accepted(&self, ep: usize) {
        if let Some(m) = self.metrics.endpoints.get(ep) {
            m.accepted.inc();
        }
        let mut s = self.lock();
        s.interval_counts.1 += 1;
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.unknown = e.unknown.saturating_sub(1);
            e.accepted += 1;
        }
    }

    /// An unanswered action is nowhere: a rejection of its kind.
    pub fn unknown_was_lost(&self, ep: usize, kind: Kind) {
        let mut s = self.lock();
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.unknown = e.unknown.saturating_sub(1);
            e.rejected[kind.index()] += 1;
        }
        if s.samples[kind.index()].is_none() {
            s.samples[kind.index()] = Some("no answer, and the node does not know the transaction".into());
        }
    }

    /// Seen in a block; `due` is the action's intended send time after the start, which names its step
    /// (an inclusion found after its step ended, or at reconciliation, still counts for that step); `fee` is
    /// what it paid, from its receipt, `None` when that could not be read.
    pub fn included(&self, ep: usize, due: Duration, latency: Duration, fee: Option<u128>) {
        self.metrics.included.inc();
        self.metrics.inclusion_latency.observe(latency.as_secs_f64());
        let at = self.profile.as_ref().and_then(|p| p.step_at(due));
        let mut s = self.lock();
        record(&mut s.interval_inclusion, latency);
        s.interval_counts.2 += 1;
        if let Some(e) = s.endpoints.get_mut(ep) {
            e.included += 1;
            record(&mut e.inclusion, latency);
        }
        if let Some(i) = at {
            record(&mut step(&mut s.steps, i).inclusion, latency);
        }
        s.fees.add(fee);
    }

    /// The receipt of an action counted included with its fee unmeasured was read: its fee is measured
    /// after all (`None`: the receipt did not say, it stays unmeasured).
    pub fn fee_read(&self, fee: Option<u128>) {
        if fee.is_some() {
            let mut s = self.lock();
            s.fees.unmeasured = s.fees.unmeasured.saturating_sub(1);
            s.fees.add(fee);
        }
    }

    /// An included execution reverted.
    pub fn reverted(&self, ep: usize) {
        if let Some(e) = self.lock().endpoints.get_mut(ep) {
            e.reverted += 1;
        }
    }

    /// Reconciliation: still pending / dropped.
    pub fn settled(&self, ep: usize, pending: bool) {
        if let Some(e) = self.lock().endpoints.get_mut(ep) {
            if pending {
                e.pending_at_end += 1;
            } else {
                e.dropped += 1;
            }
        }
    }

    /// Takes the interval since the last call (`secs` long, ending `t` seconds into the run), and adds it
    /// to profile step `step_at` (the step its midpoint falls in) when there is one.
    pub fn interval(&self, t: f64, secs: f64, offered: f64, step_at: Option<usize>) -> Interval {
        let mut s = self.lock();
        let submit = std::mem::replace(&mut s.interval_submit, hist());
        let inclusion = std::mem::replace(&mut s.interval_inclusion, hist());
        let (sent, accepted, included) = std::mem::take(&mut s.interval_counts);
        if let Some(i) = step_at {
            // Inclusion latencies go to their action's step in `included`, not to the second they were seen.
            let st = step(&mut s.steps, i);
            st.secs += secs;
            st.counts = (st.counts.0 + sent, st.counts.1 + accepted, st.counts.2 + included);
            let _ = st.submit.add(&submit);
        }
        let per = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let (sl, il) = (latency(&submit), latency(&inclusion));
        let point = Point {
            t,
            offered,
            sent: per(sent),
            accepted: per(accepted),
            included: per(included),
            submit_p50: sl.p50,
            submit_p99: sl.p99,
            inclusion_p50: il.p50,
            inclusion_p99: il.p99,
            submit_samples: submit.len(),
            inclusion_samples: inclusion.len(),
        };
        if s.points.len() < MAX_POINTS {
            s.points.push(point);
        }
        let mut errors = [0u64; KINDS];
        let (mut acc, mut inc) = (0, 0);
        for e in &s.endpoints {
            acc += e.accepted;
            inc += e.included;
            for (i, n) in e.rejected.iter().enumerate() {
                errors[i] += n;
            }
        }
        let errors = Kind::ALL.iter().zip(errors).filter(|(_, n)| *n > 0).map(|(k, n)| (*k, n)).collect();
        Interval { point, submit, inclusion, totals: (s.scheduled, acc, inc, s.late), errors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inclusion counts for the step its action was scheduled in, even when seen after that step ended
    /// (the last step's inclusions come after the schedule; reconciliation finds some at the very end).
    #[test]
    fn inclusion_latencies_go_to_the_step_of_their_intended_time() {
        let profile = Profile::steps("10@1s,10@1s").unwrap();
        let rec = Recorder::new(1, Arc::new(Metrics::new(1).unwrap())).with_profile(profile);
        let s = Duration::from_secs_f64;
        rec.included(0, s(0.5), s(0.2), None);
        let _ = rec.interval(1.0, 1.0, 10.0, Some(0));
        let _ = rec.interval(2.0, 1.0, 10.0, Some(1));
        // Seen after the schedule ended: one of step 0, two of step 1.
        rec.included(0, s(0.9), s(3.0), None);
        rec.included(0, s(1.1), s(3.0), None);
        rec.included(0, s(1.9), s(3.0), None);
        let _ = rec.interval(3.0, 1.0, 0.0, None);
        let st = rec.lock();
        assert_eq!(st.endpoints[0].included, 4);
        let counts: Vec<u64> = st.steps.iter().map(|x| x.inclusion.len()).collect();
        assert_eq!(counts, vec![2, 2], "every inclusion timed in its step");
        assert_eq!(st.steps[0].counts.2, 1, "the step's inclusion rate still counts what its seconds saw");
    }

    /// Fees: the exact total in wei, percentiles in Gwei rounded up, unmeasured ones counted apart.
    #[test]
    fn fees_add_up_exactly_and_percentiles_are_in_gwei() {
        let mut f = FeeStats::new();
        // An IoTeX transfer at the floor: 10,000 gas × 10¹² rau.
        for _ in 0..99 {
            f.add(Some(10_000 * 1_000_000_000_000));
        }
        // An Ethereum transfer at 1.5 Gwei, and a dust fee below one Gwei (shown as 1, never 0).
        f.add(Some(21_000 * 1_500_000_000));
        f.add(Some(7));
        f.add(None);
        let r = f.report();
        assert_eq!((r.measured, r.unmeasured), (101, 1));
        let want: u128 = 99 * 10_000 * 1_000_000_000_000 + 21_000 * 1_500_000_000 + 7;
        assert_eq!(r.total, want.to_string());
        assert!((r.total_coins - want as f64 / 1e18).abs() < 1e-9);
        assert!((r.p50_gwei - 1e7).abs() / 1e7 < 1e-3, "{}", r.p50_gwei);
        assert!((r.max_gwei - 1e7).abs() / 1e7 < 1e-3);
        assert_eq!(f.per_action.min(), 1);
        assert!((r.mean_gwei - want as f64 / 101.0 / 1e9).abs() < 1e-3);
        // Past the histogram's top: clamped there, the exact total still exact.
        f.add(Some(u128::MAX / 2));
        f.add(Some(u128::MAX / 2));
        f.add(Some(u128::MAX / 2));
        assert_eq!(f.total, u128::MAX, "saturates rather than wraps");
        assert_eq!(f.per_action.max(), f.per_action.highest_equivalent(MAX_FEE_GWEI));
        // Nothing measured: zeros, not NaN.
        let empty = FeeStats::new().report();
        assert_eq!((empty.p50_gwei, empty.mean_gwei, empty.total.as_str()), (0.0, 0.0, "0"));
    }
}
