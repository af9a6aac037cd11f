//! Schedules: tick counts and times for each profile, and sharded schedules whose union is the full one.

use super::*;

#[test]
fn step_at_names_the_segment_a_second_falls_in() {
    let p = Profile::steps("10@2s,20@3s").unwrap();
    let at = |s: f64| p.step_at(Duration::from_secs_f64(s));
    assert_eq!((at(0.0), at(1.99), at(2.0), at(4.99), at(5.0)), (Some(0), Some(0), Some(1), Some(1), None));
    assert_eq!(p.segments(), vec![(10.0, 10.0, 0.0, 2.0), (20.0, 20.0, 2.0, 3.0)]);
}
use proptest::prelude::*;

#[test]
fn constant_rate_emits_rate_times_duration_evenly() {
    let p = Profile::constant(100.0, Duration::from_secs(3)).unwrap();
    assert_eq!(p.total(), 300);
    let ticks: Vec<_> = Ticks::new(p).collect();
    assert_eq!(ticks.len(), 300);
    assert_eq!(ticks[0].due, Duration::ZERO);
    assert_eq!(ticks[1].due, Duration::from_millis(10));
    assert!(ticks[299].due < Duration::from_secs(3));
}

#[test]
fn fractional_rates_are_allowed() {
    let p = Profile::constant(0.5, Duration::from_secs(10)).unwrap();
    assert_eq!(p.total(), 5);
    assert_eq!(p.time_of(1), Some(Duration::from_secs(2)));
}

#[test]
fn ramp_emits_its_integral_and_speeds_up() {
    let p = Profile::ramp(0.0, 100.0, Duration::from_secs(10)).unwrap();
    assert_eq!(p.total(), 500);
    let t: Vec<_> = Ticks::new(p.clone()).map(|t| t.due).collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]));
    // Gaps shrink as the rate rises.
    assert!(t[10] - t[9] > t[490] - t[489]);
    assert!((p.rate_at(Duration::from_secs(5)) - 50.0).abs() < 1e-9);
}

#[test]
fn steps_parse_and_chain() {
    let p = Profile::steps("100@1s, 200@500ms,400@1s").unwrap();
    assert_eq!(p.total(), 100 + 100 + 400);
    assert_eq!(p.duration(), Duration::from_millis(2500));
    assert_eq!(p.time_of(100), Some(Duration::from_secs(1)));
    assert_eq!(p.time_of(201), Some(Duration::from_secs_f64(1.5 + 1.0 / 400.0)));
    assert_eq!(p.rate_at(Duration::from_millis(1200)), 200.0);
}

#[test]
fn malformed_steps_are_refused_with_the_form() {
    for bad in ["", "100", "100@", "@1s", "x@1s", "100@5", "-1@1s", "100@0s", "100@1s,,", "inf@1s", "NaN@1s"] {
        let e = Profile::steps(bad).unwrap_err().to_string();
        assert!(e.contains("RATE@DURATION") || e.contains("write it like") || e.contains("finite"), "{bad}: {e}");
    }
}

proptest! {
    #[test]
    fn a_constant_schedule_emits_rate_times_duration_ticks(rate in 0.1f64..5000.0, ms in 100u64..20_000) {
        let d = Duration::from_millis(ms);
        let p = Profile::constant(rate, d).unwrap();
        let want = (rate * d.as_secs_f64() - 1e-9).ceil() as u64;
        prop_assert_eq!(p.total(), want);
        let mut last = Duration::ZERO;
        let mut n = 0u64;
        for t in Ticks::new(p) {
            prop_assert!(t.due >= last && t.due <= d);
            last = t.due;
            n += 1;
        }
        prop_assert_eq!(n, want);
    }

    #[test]
    fn step_schedules_are_monotonic_and_complete(a in 1.0f64..500.0, b in 1.0f64..500.0) {
        let p = Profile::steps(&format!("{a}@1s,{b}@2s")).unwrap();
        let n = Ticks::new(p.clone()).count() as u64;
        prop_assert_eq!(n, p.total());
        let t: Vec<_> = Ticks::new(p).map(|t| t.due).collect();
        prop_assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }
}

/// The send times of all `n` shards of `p`, merged in time order (ties keep shard order).
fn union_of_shards(p: &Profile, n: u64) -> Vec<Duration> {
    let mut all: Vec<Duration> = Vec::new();
    for index in 0..n {
        let shard = p.clone().sharded(Shard { index, count: n });
        let ticks: Vec<Tick> = Ticks::new(shard.clone()).collect();
        assert_eq!(ticks.len() as u64, shard.total(), "shard {index}/{n} emits its share");
        // Local sequence numbers: each shard's accounts and mix go round-robin over its own ticks.
        assert!(ticks.iter().enumerate().all(|(i, t)| t.seq == i as u64));
        all.extend(ticks.into_iter().map(|t| t.due));
    }
    all.sort_unstable();
    all
}

/// Within 1 ns of each other, tick by tick (they are computed the same way, so in fact equal).
fn assert_same_schedule(union: &[Duration], single: &[Duration]) -> Result<(), TestCaseError> {
    prop_assert_eq!(union.len(), single.len());
    for (a, b) in union.iter().zip(single) {
        prop_assert!(a.abs_diff(*b) <= Duration::from_nanos(1), "{a:?} vs {b:?}");
    }
    Ok(())
}

#[test]
fn a_shard_offers_its_share_of_the_rate_and_phase_offset_ticks() {
    let p = Profile::constant(100.0, Duration::from_secs(1)).unwrap();
    let s1 = p.clone().sharded(Shard { index: 1, count: 4 });
    assert_eq!(s1.total(), 25);
    assert_eq!(s1.rate_at(Duration::from_millis(500)), 25.0);
    assert_eq!(s1.mean_rate(), 25.0);
    assert_eq!(s1.segments(), vec![(25.0, 25.0, 0.0, 1.0)]);
    // Full ticks 1, 5, 9, …: 10 ms after shard 0's, every 40 ms.
    assert_eq!(s1.time_of(0), Some(Duration::from_millis(10)));
    assert_eq!(s1.time_of(1), Some(Duration::from_millis(50)));
    assert_eq!(s1.time_of(25), None);
    // More shards than ticks: the last shards emit nothing (the run refuses that; see run_config).
    let tiny = Profile::constant(2.0, Duration::from_secs(1)).unwrap().sharded(Shard { index: 2, count: 3 });
    assert_eq!(tiny.total(), 0);
    assert_eq!(Ticks::new(tiny).count(), 0);
}

proptest! {
    #[test]
    fn shards_of_a_constant_schedule_union_to_it(rate in 0.5f64..3000.0, ms in 100u64..5_000, n in 1u64..9) {
        let p = Profile::constant(rate, Duration::from_millis(ms)).unwrap();
        let single: Vec<Duration> = Ticks::new(p.clone()).map(|t| t.due).collect();
        assert_same_schedule(&union_of_shards(&p, n), &single)?;
    }

    #[test]
    fn shards_of_a_ramp_union_to_it(from in 0.0f64..2000.0, to in 0.0f64..2000.0, ms in 100u64..5_000, n in 1u64..9) {
        prop_assume!(from + to > 1.0);
        let p = Profile::ramp(from, to, Duration::from_millis(ms)).unwrap();
        let single: Vec<Duration> = Ticks::new(p.clone()).map(|t| t.due).collect();
        assert_same_schedule(&union_of_shards(&p, n), &single)?;
    }

    #[test]
    fn shards_of_steps_union_to_them(a in 1.0f64..1500.0, b in 0.0f64..1500.0, c in 1.0f64..1500.0, n in 1u64..9) {
        let p = Profile::steps(&format!("{a}@700ms,{b}@1s,{c}@1300ms")).unwrap();
        let single: Vec<Duration> = Ticks::new(p.clone()).map(|t| t.due).collect();
        assert_same_schedule(&union_of_shards(&p, n), &single)?;
        // Each shard's step rates are 1/N of the profile's, and sum back to it.
        let summed: f64 = (0..n).map(|i| p.clone().sharded(Shard { index: i, count: n }).segments()[2].0).sum();
        prop_assert!((summed - c).abs() < 1e-9);
    }
}
