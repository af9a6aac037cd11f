//! *When* actions go out: a rate profile (constant, linear ramp, steps) and the ticks it implies.
//!
//! Tick `k` (0-based) is due at the moment the profile's cumulative count reaches `k`, counted from the
//! run's start, whatever the responses do (open model). A profile of rate `R` over `D` seconds emits exactly
//! `ceil(R·D)` ticks; a ramp or step profile emits the integral of its rate.

use std::time::Duration;

/// A step-profile or rate string that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// A step is not `RATE@DURATION`.
    #[error("step `{0}` is not RATE@DURATION (e.g. `100@30s`); write steps like \"100@30s,200@30s,400@1m\"")]
    Step(String),
    /// A rate is negative, not a number, or infinite.
    #[error("rate `{0}` must be a finite number of actions per second ≥ 0")]
    Rate(String),
    /// A duration could not be read.
    #[error("{0}")]
    Duration(String),
    /// The profile emits nothing or runs for no time.
    #[error("the rate profile is empty: give --rate with --duration, or --steps")]
    Empty,
}

/// One piece of the profile: the rate goes linearly from `r0` to `r1` over `len` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: f64,
    len: f64,
    r0: f64,
    r1: f64,
    /// Cumulative count at `start`.
    n0: f64,
}

impl Segment {
    fn count_at(&self, tau: f64) -> f64 {
        self.r0 * tau + (self.r1 - self.r0) * tau * tau / (2.0 * self.len)
    }
    fn count(&self) -> f64 {
        (self.r0 + self.r1) * self.len / 2.0
    }
    /// Seconds into this segment at which the cumulative count (from its start) reaches `n`.
    fn time_of(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let a = (self.r1 - self.r0) / (2.0 * self.len);
        if a.abs() < 1e-12 {
            return if self.r0 > 0.0 { n / self.r0 } else { 0.0 };
        }
        // a·τ² + r0·τ − n = 0, the positive root, written to avoid cancellation.
        let disc = (self.r0 * self.r0 + 4.0 * a * n).max(0.0);
        let denom = self.r0 + disc.sqrt();
        if denom > 0.0 { 2.0 * n / denom } else { self.len }
    }
}

/// A rate profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    segments: Vec<Segment>,
    total: u64,
}

fn check_rate(r: f64) -> Result<f64, ProfileError> {
    if r.is_finite() && r >= 0.0 { Ok(r) } else { Err(ProfileError::Rate(r.to_string())) }
}

impl Profile {
    /// Builds a profile from `(r0, r1, duration)` pieces.
    fn from_pieces(pieces: &[(f64, f64, Duration)]) -> Result<Profile, ProfileError> {
        let mut segments = Vec::with_capacity(pieces.len());
        let (mut start, mut n0) = (0.0, 0.0);
        for &(r0, r1, d) in pieces {
            let (r0, r1) = (check_rate(r0)?, check_rate(r1)?);
            let len = d.as_secs_f64();
            if len <= 0.0 {
                continue;
            }
            let s = Segment { start, len, r0, r1, n0 };
            start += len;
            n0 += s.count();
            segments.push(s);
        }
        if segments.is_empty() {
            return Err(ProfileError::Empty);
        }
        // Tolerate float dust so that 100/s × 3 s is exactly 300 ticks, not 301.
        let total = (n0 - 1e-9).ceil().max(0.0) as u64;
        Ok(Profile { segments, total })
    }

    /// Constant rate for a duration.
    pub fn constant(rate: f64, duration: Duration) -> Result<Profile, ProfileError> {
        Self::from_pieces(&[(rate, rate, duration)])
    }

    /// Linear ramp from `from` to `to` over the duration.
    pub fn ramp(from: f64, to: f64, duration: Duration) -> Result<Profile, ProfileError> {
        Self::from_pieces(&[(from, to, duration)])
    }

    /// Parses a step profile: `"100@30s,200@30s,400@1m"`.
    pub fn steps(spec: &str) -> Result<Profile, ProfileError> {
        let mut pieces = Vec::new();
        for step in spec.split(',').map(str::trim) {
            let (rate, dur) = step.split_once('@').ok_or_else(|| ProfileError::Step(step.to_owned()))?;
            let rate: f64 = rate.trim().parse().map_err(|_| ProfileError::Step(step.to_owned()))?;
            let rate = check_rate(rate)?;
            let dur = iotex_shared::duration::parse(dur).map_err(|e| ProfileError::Duration(e.to_string()))?;
            if dur.is_zero() {
                return Err(ProfileError::Step(step.to_owned()));
            }
            pieces.push((rate, rate, dur));
        }
        Self::from_pieces(&pieces)
    }

    /// The segment (a `--steps` step) that second `t` of the run falls in; `None` past the end.
    pub fn step_at(&self, t: Duration) -> Option<usize> {
        let t = t.as_secs_f64();
        self.segments.iter().position(|s| t >= s.start && t < s.start + s.len)
    }

    /// Each segment as (rate at start, rate at end, start second, length in seconds).
    pub fn segments(&self) -> Vec<(f64, f64, f64, f64)> {
        self.segments.iter().map(|s| (s.r0, s.r1, s.start, s.len)).collect()
    }

    /// How many ticks the whole profile emits.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How long the profile lasts.
    pub fn duration(&self) -> Duration {
        let last = self.segments.last().map_or(0.0, |s| s.start + s.len);
        Duration::from_secs_f64(last)
    }

    /// The offered rate at `t` (actions/s).
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        for s in &self.segments {
            if t < s.start + s.len {
                let tau = (t - s.start).max(0.0);
                return s.r0 + (s.r1 - s.r0) * tau / s.len;
            }
        }
        0.0
    }

    /// Ticks due by `t` (the cumulative integral of the rate), as a float.
    pub fn count_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        let mut n = 0.0;
        for s in &self.segments {
            if t >= s.start + s.len {
                n = s.n0 + s.count();
            } else {
                return s.n0 + s.count_at((t - s.start).max(0.0));
            }
        }
        n
    }

    /// The mean offered rate over the profile.
    pub fn mean_rate(&self) -> f64 {
        let d = self.duration().as_secs_f64();
        if d > 0.0 { self.total as f64 / d } else { 0.0 }
    }

    /// The offset from start at which tick `k` is due; `None` past the end.
    pub fn time_of(&self, k: u64) -> Option<Duration> {
        if k >= self.total {
            return None;
        }
        let n = k as f64;
        // Segments are few (a handful of steps), so a linear scan is cheaper than a search.
        let seg = self.segments.iter().find(|s| n < s.n0 + s.count()).or(self.segments.last())?;
        let t = seg.start + seg.time_of(n - seg.n0).min(seg.len);
        Some(Duration::from_secs_f64(t.max(0.0)))
    }
}

/// One scheduled action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// 0-based sequence number.
    pub seq: u64,
    /// When it should go out, as an offset from the run's start.
    pub due: Duration,
}

/// Iterates the ticks of a profile in order.
#[derive(Debug, Clone)]
pub struct Ticks {
    profile: Profile,
    next: u64,
}

impl Ticks {
    /// Starts at tick 0.
    pub fn new(profile: Profile) -> Self {
        Ticks { profile, next: 0 }
    }
}

impl Iterator for Ticks {
    type Item = Tick;
    fn next(&mut self) -> Option<Tick> {
        let due = self.profile.time_of(self.next)?;
        let t = Tick { seq: self.next, due };
        self.next += 1;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
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
}
