use super::*;

fn cfg() -> HealthConfig {
    HealthConfig {
        interval: Duration::from_secs(1),
        probe_timeout: Duration::from_secs(1),
        max_lag: 10,
        readmit_lag: 5,
        eject_after: 3,
        backoff: Duration::from_secs(1),
        backoff_max: Duration::from_secs(8),
        busy_backoff: Duration::from_millis(500),
    }
}

fn ok(h: u64) -> Result<(u64, Duration), String> {
    Ok((h, Duration::from_millis(1)))
}

#[test]
fn best_head_ignores_one_far_ahead_node() {
    assert_eq!(best_head(&[100, 101, 1_000_000], 10), Some(101));
    assert_eq!(best_head(&[100, 101, 102, u64::MAX], 10), Some(102));
    assert_eq!(best_head(&[100, 150], 10), Some(150), "two nodes: the higher wins");
    assert_eq!(best_head(&[100, 108, 150, 151], 10), Some(151));
    assert_eq!(best_head(&[7], 10), Some(7));
    assert_eq!(best_head(&[], 10), None);
}

#[test]
fn starting_until_probed_then_up() {
    let mut s = HealthState::new(cfg(), 2);
    let v = s.view(Vec::new());
    assert!(v.routable.is_empty());
    assert_eq!(v.upstreams[0].state, State::Starting);
    s.probe(0, ok(5), Instant::now());
    let v = s.view(Vec::new());
    assert_eq!(v.routable, vec![0]);
}

#[test]
fn lagging_with_hysteresis() {
    let mut s = HealthState::new(cfg(), 3);
    let now = Instant::now();
    for (i, h) in [100, 100, 100].into_iter().enumerate() {
        s.probe(i, ok(h), now);
    }
    assert_eq!(s.view(Vec::new()).routable, vec![0, 1, 2]);
    // Two nodes move 50 blocks ahead: node 2 is 50 behind.
    s.probe(0, ok(150), now);
    s.probe(1, ok(150), now);
    let v = s.view(Vec::new());
    assert_eq!(v.upstreams[2].state, State::Lagging);
    assert_eq!(v.upstreams[2].lag, Some(50));
    // Within max-lag but above readmit-lag: still out (no flapping at the edge).
    s.probe(2, ok(142), now);
    assert_eq!(s.view(Vec::new()).upstreams[2].state, State::Lagging);
    // At readmit-lag: back.
    s.probe(2, ok(145), now);
    assert_eq!(s.view(Vec::new()).routable, vec![0, 1, 2]);
    // Just over max-lag again: out.
    s.probe(0, ok(156), now);
    s.probe(1, ok(156), now);
    assert_eq!(s.view(Vec::new()).upstreams[2].state, State::Lagging);
}

#[test]
fn a_far_ahead_liar_does_not_make_others_lag() {
    let mut s = HealthState::new(cfg(), 3);
    let now = Instant::now();
    s.probe(0, ok(100), now);
    s.probe(1, ok(101), now);
    s.probe(2, ok(10_000_000), now);
    let v = s.view(Vec::new());
    assert_eq!(v.best_head, Some(101));
    assert!(v.routable.contains(&0) && v.routable.contains(&1));
}

#[test]
fn probe_failure_is_down_and_a_good_probe_returns_it() {
    let mut s = HealthState::new(cfg(), 1);
    let now = Instant::now();
    s.probe(0, ok(1), now);
    s.probe(0, Err("connection refused".into()), now);
    let v = s.view(Vec::new());
    assert_eq!(v.upstreams[0].state, State::Down);
    assert_eq!(v.upstreams[0].last_error.as_deref(), Some("connection refused"));
    s.probe(0, ok(2), now);
    assert_eq!(s.view(Vec::new()).routable, vec![0]);
}

#[test]
fn consecutive_failures_eject_with_capped_exponential_backoff() {
    let mut s = HealthState::new(cfg(), 1);
    let t0 = Instant::now();
    s.probe(0, ok(1), t0);
    assert!(!s.passive(0, Passive::Failure(0, AttemptOutcome::Timeout), t0));
    assert!(!s.passive(0, Passive::Failure(0, AttemptOutcome::Timeout), t0));
    // A success in between resets the count.
    s.passive(0, Passive::Success(0), t0);
    assert!(!s.passive(0, Passive::Failure(0, AttemptOutcome::Connect), t0));
    assert!(!s.passive(0, Passive::Failure(0, AttemptOutcome::Connect), t0));
    assert!(s.passive(0, Passive::Failure(0, AttemptOutcome::Connect), t0));
    assert_eq!(s.view(Vec::new()).upstreams[0].state, State::Ejected);
    // A good probe before the backoff ends does not readmit.
    s.probe(0, ok(2), t0 + Duration::from_millis(500));
    assert_eq!(s.view(Vec::new()).upstreams[0].state, State::Ejected);
    // A bad probe after it extends the ejection with a doubled backoff (2 s).
    let t1 = t0 + Duration::from_secs(1);
    s.probe(0, Err("refused".into()), t1);
    s.probe(0, ok(2), t1 + Duration::from_millis(1900));
    assert_ne!(s.view(Vec::new()).upstreams[0].state, State::Up);
    // After the doubled backoff, a good probe readmits.
    s.probe(0, ok(2), t1 + Duration::from_secs(2));
    assert_eq!(s.view(Vec::new()).upstreams[0].state, State::Up);
    // The backoff keeps doubling up to the cap on repeated ejections.
    let mut now = t1 + Duration::from_secs(3);
    let mut periods = Vec::new();
    for _ in 0..5 {
        for _ in 0..3 {
            s.passive(0, Passive::Failure(0, AttemptOutcome::Http5xx), now);
        }
        let until = s.trackers[0].ejected_until.unwrap();
        periods.push(until - now);
        now = until;
        s.probe(0, ok(3), now);
    }
    assert_eq!(periods.last().copied(), Some(Duration::from_secs(8)), "{periods:?}");
    assert!(periods.windows(2).all(|w| w[1] >= w[0]), "{periods:?}");
}

#[test]
fn ejected_nodes_ignore_further_failures_and_backoff_resets_after_a_healthy_minute() {
    let mut s = HealthState::new(cfg(), 1);
    let t0 = Instant::now();
    s.probe(0, ok(1), t0);
    for _ in 0..3 {
        s.passive(0, Passive::Failure(0, AttemptOutcome::Timeout), t0);
    }
    assert!(!s.passive(0, Passive::Failure(0, AttemptOutcome::Timeout), t0));
    let back = t0 + Duration::from_secs(1);
    s.probe(0, ok(2), back);
    assert_eq!(s.trackers[0].next_backoff, Duration::from_secs(2));
    s.probe(0, ok(3), back + BACKOFF_RESET_AFTER);
    assert_eq!(s.trackers[0].next_backoff, Duration::from_secs(1));
}
