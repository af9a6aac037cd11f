//! The JSON report (schema in `iotex_shared::report`), the human summary, and `--fail-if` evaluation.

use crate::error::Kind;
use crate::recorder::{Recorder, latency};
use crate::run_config::RunConfig;
use crate::thresholds::Threshold;
use iotex_shared::report::{AccountReport, EndpointReport, Equation, Report, StepReport, ThresholdResult};
use std::collections::BTreeMap;

/// What [`build`] needs.
pub struct Inputs<'a> {
    /// The run's configuration.
    pub cfg: &'a RunConfig,
    /// The recorder after reconciliation.
    pub rec: &'a Recorder,
    /// The chain id signed for.
    pub chain_id: u64,
    /// Scheduling time.
    pub duration_s: f64,
    /// Stopped by a signal.
    pub interrupted: bool,
    /// Per-account nonces.
    pub account_nonces: Vec<AccountReport>,
    /// Unix start time.
    pub started_at_unix: f64,
    /// Contract per endpoint.
    pub contracts: Vec<Option<alloy_primitives::Address>>,
    /// The per-second series.
    pub points: &'a [crate::recorder::Point],
}

/// Mean relative error of the per-second send rate against the offered rate, over intervals that lie
/// wholly inside the schedule and last about a second (the final partial interval is skipped).
pub fn interval_rate_error(points: &[crate::recorder::Point], duration_s: f64) -> f64 {
    let mut prev = 0.0;
    let mut errs = Vec::new();
    for p in points {
        let len = p.t - prev;
        if p.t <= duration_s && (0.9..1.1).contains(&len) && p.offered > 0.0 {
            errs.push((p.sent - p.offered).abs() / p.offered);
        }
        prev = p.t;
    }
    if errs.is_empty() { 0.0 } else { errs.iter().sum::<f64>() / errs.len() as f64 }
}

fn kinds(counts: &[u64]) -> BTreeMap<String, u64> {
    Kind::ALL.iter().zip(counts).filter(|(_, n)| **n > 0).map(|(k, n)| (k.as_str().to_owned(), *n)).collect()
}

/// Builds the report from the recorder's final state.
///
/// Long (over 80 lines) because it is one struct literal with a line per report key plus the per-endpoint
/// sums that feed it: the schema reads in one place, in the order of `iotex_shared::report::Report`.
pub fn build(i: Inputs<'_>) -> Report {
    let s = i.rec.lock();
    let mut all_submit = crate::recorder::new_histogram();
    let mut all_incl = crate::recorder::new_histogram();
    let mut rejected = vec![0u64; Kind::ALL.len()];
    let mut per_endpoint = Vec::new();
    let (mut sent, mut accepted, mut included, mut reverted, mut pending, mut dropped) = (0, 0, 0, 0, 0, 0);
    for (ep, e) in s.endpoints.iter().enumerate() {
        let _ = all_submit.add(&e.submit);
        let _ = all_incl.add(&e.inclusion);
        for (t, n) in rejected.iter_mut().zip(e.rejected.iter()) {
            *t += n;
        }
        sent += e.sent;
        accepted += e.accepted;
        included += e.included;
        reverted += e.reverted;
        pending += e.pending_at_end;
        dropped += e.dropped;
        per_endpoint.push(EndpointReport {
            endpoint: i.cfg.endpoints.get(ep).cloned().unwrap_or_default(),
            accounts: i.account_nonces.iter().filter(|a| a.endpoint == ep).count() as u64,
            sent: e.sent,
            accepted: e.accepted,
            rejected: kinds(&e.rejected),
            included: e.included,
            reverted: e.reverted,
            pending_at_end: e.pending_at_end,
            dropped: e.dropped,
            submit_latency_ms: latency(&e.submit),
            inclusion_latency_ms: latency(&e.inclusion),
        });
    }
    let rejected_total: u64 = rejected.iter().sum();
    let offered_rate =
        if i.interrupted && i.duration_s > 0.0 { s.scheduled as f64 / i.duration_s } else { i.cfg.profile.mean_rate() };
    let achieved_rate = if i.duration_s > 0.0 { accepted as f64 / i.duration_s } else { 0.0 };
    Report {
        chain_id: i.chain_id,
        duration_s: i.duration_s,
        offered_rate,
        achieved_rate,
        scheduled: s.scheduled,
        sent,
        accepted,
        late: s.late,
        rejected: kinds(&rejected),
        included,
        reverted,
        pending_at_end: pending,
        dropped,
        submit_latency_ms: latency(&all_submit),
        inclusion_latency_ms: latency(&all_incl),
        per_endpoint,
        accounts: i.cfg.keys.len() as u64,
        confirmed: i.cfg.confirm,
        interrupted: i.interrupted,
        not_sent: s.not_sent,
        shed: s.shed,
        retried: kinds(&s.retried),
        nonce_resyncs: s.resyncs,
        gap_fillers: 0,
        interval_rate_error: interval_rate_error(i.points, i.duration_s),
        rate_error: if offered_rate > 0.0 { (achieved_rate - offered_rate).abs() / offered_rate } else { 0.0 },
        error_rate: if s.scheduled > 0 { (rejected_total + dropped) as f64 / s.scheduled as f64 } else { 0.0 },
        send_lag_ms: latency(&s.send_lag),
        tx_type: format!("{:?}", i.cfg.tx_type).to_lowercase(),
        sample_errors: Kind::ALL
            .iter()
            .zip(s.samples.iter())
            .filter_map(|(k, m)| m.as_ref().map(|m| (k.as_str().to_owned(), m.clone())))
            .collect(),
        account_nonces: i.account_nonces,
        thresholds: Vec::new(),
        contracts: i.contracts.iter().map(|c| c.map(|a| crate::address::to_hex(&a))).collect(),
        started_at_unix_s: i.started_at_unix,
        fee: s.fees.report(),
        steps: steps(&i.cfg.profile, &s.steps),
        ..Report::default()
    }
}

/// One entry per step of the profile, with what the run did during it.
fn steps(profile: &crate::schedule::Profile, stats: &[crate::recorder::StepStats]) -> Vec<StepReport> {
    profile
        .segments()
        .into_iter()
        .enumerate()
        .map(|(n, (rate_from, rate_to, start_s, duration_s))| {
            let per = |secs: f64, c: u64| if secs > 0.0 { c as f64 / secs } else { 0.0 };
            match stats.get(n) {
                Some(st) => StepReport {
                    rate_from,
                    rate_to,
                    start_s,
                    duration_s,
                    sent_rate: per(st.secs, st.counts.0),
                    achieved_rate: per(st.secs, st.counts.1),
                    included_rate: per(st.secs, st.counts.2),
                    submit_latency_ms: latency(&st.submit),
                    inclusion_latency_ms: latency(&st.inclusion),
                },
                // A step the run never reached (interrupted): zeros, so the table still lines up.
                None => StepReport {
                    rate_from,
                    rate_to,
                    start_s,
                    duration_s,
                    sent_rate: 0.0,
                    achieved_rate: 0.0,
                    included_rate: 0.0,
                    submit_latency_ms: Default::default(),
                    inclusion_latency_ms: Default::default(),
                },
            }
        })
        .collect()
}

/// The flat value a threshold name refers to.
pub fn value(r: &Report, name: &str) -> f64 {
    let rejected: u64 = r.rejected.values().sum();
    match name {
        "scheduled" => r.scheduled as f64,
        "sent" => r.sent as f64,
        "accepted" => r.accepted as f64,
        "late" => r.late as f64,
        "included" => r.included as f64,
        "reverted" => r.reverted as f64,
        "pending_at_end" => r.pending_at_end as f64,
        "dropped" => r.dropped as f64,
        "rejected" => rejected as f64,
        "offered_rate" => r.offered_rate,
        "achieved_rate" => r.achieved_rate,
        "rate_error" => r.rate_error,
        "error_rate" => r.error_rate,
        "late_rate" => {
            if r.scheduled > 0 {
                r.late as f64 / r.scheduled as f64
            } else {
                0.0
            }
        }
        "submit_p50_ms" => r.submit_latency_ms.p50,
        "submit_p90_ms" => r.submit_latency_ms.p90,
        "submit_p99_ms" => r.submit_latency_ms.p99,
        "submit_p999_ms" => r.submit_latency_ms.p999,
        "submit_max_ms" => r.submit_latency_ms.max,
        "inclusion_p50_ms" => r.inclusion_latency_ms.p50,
        "inclusion_p90_ms" => r.inclusion_latency_ms.p90,
        "inclusion_p99_ms" => r.inclusion_latency_ms.p99,
        "inclusion_p999_ms" => r.inclusion_latency_ms.p999,
        "inclusion_max_ms" => r.inclusion_latency_ms.max,
        "unbalanced" => r.equations.iter().filter(|e| !e.holds).count() as f64,
        "fee_p50_gwei" => r.fee.p50_gwei,
        "fee_p99_gwei" => r.fee.p99_gwei,
        "fee_max_gwei" => r.fee.max_gwei,
        "fee_mean_gwei" => r.fee.mean_gwei,
        "fee_total_coins" => r.fee.total_coins,
        "fee_unmeasured" => r.fee.unmeasured as f64,
        _ => f64::NAN,
    }
}

/// The equations the counts of `r` must satisfy (see `Report::equations`); the second only when inclusion
/// was tracked.
pub fn equations(r: &Report) -> Vec<Equation> {
    let eq = |equation: &str, left: u64, right: u64| Equation {
        equation: equation.into(),
        left,
        right,
        holds: left == right,
    };
    let mut out = vec![eq(
        "scheduled = sent + not_sent + shed",
        r.scheduled,
        r.sent.saturating_add(r.not_sent).saturating_add(r.shed),
    )];
    if r.confirmed {
        out.push(eq(
            "accepted = included + pending_at_end + dropped",
            r.accepted,
            r.included.saturating_add(r.pending_at_end).saturating_add(r.dropped),
        ));
    }
    out
}

/// The equations of `r` that do not hold, one line each, for the warning and `--fail-if`.
pub fn unbalanced(r: &Report) -> Vec<String> {
    r.equations
        .iter()
        .filter(|e| !e.holds)
        .map(|e| {
            format!("{} does not hold: {} ≠ {} ({} unaccounted)", e.equation, e.left, e.right, e.left.abs_diff(e.right))
        })
        .collect()
}

/// Evaluates `--fail-if` into the report; returns the breached expressions. With any `--fail-if`, a report
/// whose equations do not hold fails the run too: a threshold on counts that do not add up proves nothing.
pub fn thresholds(mut r: Report, ts: &[Threshold]) -> (Report, Vec<String>) {
    let mut breached = Vec::new();
    if !ts.is_empty() {
        breached.extend(unbalanced(&r));
    }
    for t in ts {
        let v = value(&r, &t.name);
        let b = t.breached(v);
        if b {
            breached.push(t.expr.clone());
        }
        r.thresholds.push(ThresholdResult { expr: t.expr.clone(), value: v, breached: b });
    }
    (r, breached)
}

/// The per-step table of the summary, for a run of more than one step.
fn steps_table(s: &mut String, r: &Report) {
    use std::fmt::Write;
    if r.steps.len() > 1 {
        // A capacity ramp: the knee is where achieved stops following offered, or inclusion p99 jumps.
        let _ = writeln!(s, "step  offered/s  achieved/s  included/s  submit p99 ms  inclusion p50/p99 ms");
        for (n, st) in r.steps.iter().enumerate() {
            let _ = writeln!(
                s,
                "{:>4}  {:>9.1}  {:>10.1}  {:>10.1}  {:>13.1}  {:>8.0}/{:<8.0}",
                n + 1,
                st.rate_to,
                st.achieved_rate,
                st.included_rate,
                st.submit_latency_ms.p99,
                st.inclusion_latency_ms.p50,
                st.inclusion_latency_ms.p99
            );
        }
    }
}

/// The fee line of the summary: per action in Gwei, the total in coins and exactly.
fn fee_line(s: &mut String, f: &iotex_shared::report::Fee) {
    use std::fmt::Write;
    if f.measured > 0 {
        let _ = write!(
            s,
            "fee per action    p50 {:.0} Gwei  p99 {:.0}  max {:.0}  mean {:.0}; total {:.6} ({} in the smallest unit)",
            f.p50_gwei, f.p99_gwei, f.max_gwei, f.mean_gwei, f.total_coins, f.total
        );
    } else {
        let _ = write!(s, "fee per action    not measured");
    }
    if f.unmeasured > 0 {
        let _ = write!(s, "  ({} included actions without a readable fee)", f.unmeasured);
    }
    let _ = writeln!(s);
}

/// The human summary printed at the end.
pub fn summary(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let l = |x: &iotex_shared::report::Latency| {
        format!("p50 {:.1} ms  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}", x.p50, x.p90, x.p99, x.p999, x.max)
    };
    let _ = writeln!(s, "── iotex-injector summary {}", if r.interrupted { "(interrupted)" } else { "" });
    for line in unbalanced(r) {
        let _ = writeln!(s, "WARNING: THE REPORT DOES NOT BALANCE: {line}");
    }
    let _ = writeln!(
        s,
        "chain {}  {} accounts  {:.1} s  offered {:.1}/s  achieved {:.1}/s  (rate error {:.2} %)",
        r.chain_id,
        r.accounts,
        r.duration_s,
        r.offered_rate,
        r.achieved_rate,
        r.rate_error * 100.0
    );
    let _ = writeln!(
        s,
        "scheduled {}  sent {}  accepted {}  late {}  not sent {}  nonce resyncs {}",
        r.scheduled, r.sent, r.accepted, r.late, r.not_sent, r.nonce_resyncs
    );
    if r.confirmed {
        let _ = writeln!(
            s,
            "included {}  reverted {}  pending at end {}  dropped {}",
            r.included, r.reverted, r.pending_at_end, r.dropped
        );
    } else {
        let _ = writeln!(s, "inclusion not tracked (--no-confirm)");
    }
    let _ = writeln!(s, "submit latency    {}", l(&r.submit_latency_ms));
    if r.confirmed {
        let _ = writeln!(s, "inclusion latency {}", l(&r.inclusion_latency_ms));
        fee_line(&mut s, &r.fee);
    }
    steps_table(&mut s, r);
    if r.rejected.is_empty() {
        let _ = writeln!(s, "rejected: none");
    } else {
        for (k, n) in &r.rejected {
            let sample = r.sample_errors.get(k).map(String::as_str).unwrap_or("");
            let _ = writeln!(s, "rejected {k}: {n}  (e.g. \"{sample}\")");
        }
    }
    if r.per_endpoint.len() > 1 {
        for (i, e) in r.per_endpoint.iter().enumerate() {
            let _ = writeln!(
                s,
                "  [{i}] {}  sent {} accepted {} included {} rejected {}",
                e.endpoint,
                e.sent,
                e.accepted,
                e.included,
                e.rejected.values().sum::<u64>()
            );
        }
    }
    for t in &r.thresholds {
        let _ =
            writeln!(s, "threshold {}: value {:.3} → {}", t.expr, t.value, if t.breached { "BREACHED" } else { "ok" });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Point;

    /// The legacy run of issue 18: 159 accepted actions in no category.
    fn counts(scheduled: u64, sent: u64, accepted: u64, included: u64, pending: u64, dropped: u64) -> Report {
        let mut r = Report {
            scheduled,
            sent,
            accepted,
            included,
            pending_at_end: pending,
            dropped,
            confirmed: true,
            ..Report::default()
        };
        r.equations = equations(&r);
        r
    }

    #[test]
    fn a_report_whose_counts_do_not_add_up_says_so_and_fails_a_run_with_fail_if() {
        let fine = counts(20_000, 20_000, 19_169, 18_685, 407, 77);
        assert!(fine.equations.iter().all(|e| e.holds), "{:?}", fine.equations);
        assert!(unbalanced(&fine).is_empty());
        assert!(!summary(&fine).contains("WARNING"));

        let lost = counts(20_000, 20_000, 19_169, 18_526, 407, 77);
        assert_eq!(lost.equations.len(), 2);
        assert!(lost.equations[0].holds, "scheduled = sent + not_sent + shed");
        assert_eq!((lost.equations[1].left, lost.equations[1].right, lost.equations[1].holds), (19_169, 19_010, false));
        let lines = unbalanced(&lost);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("159 unaccounted"), "{lines:?}");
        assert!(
            summary(&lost).contains("WARNING: THE REPORT DOES NOT BALANCE: accepted = included"),
            "{}",
            summary(&lost)
        );
        // Any --fail-if fails an unbalanced run; none leaves the exit code to the run.
        let (_, breached) = thresholds(lost.clone(), &crate::thresholds::parse("error_rate>0.5").unwrap());
        assert_eq!(breached, lines);
        assert!(thresholds(lost.clone(), &[]).1.is_empty());
        // `unbalanced` is a name --fail-if can use too.
        assert_eq!(value(&lost, "unbalanced"), 1.0);

        // Ticks must end sent, not sent or shed.
        let mut short = counts(100, 90, 90, 90, 0, 0);
        short.shed = 4;
        short.equations = equations(&short);
        assert!(!short.equations[0].holds);
        // Without inclusion tracking only the first equation applies.
        let unconfirmed = Report { confirmed: false, ..counts(10, 10, 10, 0, 0, 0) };
        assert_eq!(equations(&unconfirmed).len(), 1);
    }

    #[test]
    fn interval_rate_error_averages_whole_seconds_inside_the_schedule() {
        let p = |t: f64, sent: f64| Point { t, offered: 100.0, sent, ..Point::default() };
        let points = [p(1.0, 100.0), p(2.0, 90.0), p(3.0, 110.0), p(3.4, 5.0)];
        assert!((interval_rate_error(&points, 3.0) - 2.0 / 30.0).abs() < 1e-9);
        assert_eq!(interval_rate_error(&[], 3.0), 0.0);
    }

    #[test]
    fn threshold_values_cover_every_name() {
        let r = Report::default();
        for name in crate::thresholds::NAMES {
            assert!(value(&r, name).is_finite(), "{name}");
        }
    }
}
