//! *When* actions go out: a rate profile (constant, linear ramp, steps) and the ticks it implies.
//!
//! Tick `k` (0-based) is due at the moment the profile's cumulative count reaches `k`, counted from the
//! run's start, whatever the responses do (open model). A profile of rate `R` over `D` seconds emits exactly
//! `ceil(R·D)` ticks; a ramp or step profile emits the integral of its rate.
//!
//! A sharded profile ([`Profile::sharded`], `--shard I/N`) keeps the full-rate profile and emits only its
//! ticks `I, I+N, I+2N, …`, at the full schedule's times: N shards together send exactly the one-process
//! schedule (same times, not merely the same rate), and each reports rates of 1/N of the profile.

use crate::shard::Shard;
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
    /// Ticks of the full-rate profile (all shards together).
    total: u64,
    /// Which of the full profile's ticks this one emits.
    shard: Shard,
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
        Ok(Profile { segments, total, shard: Shard::WHOLE })
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

    /// This profile as shard `shard` of the full-rate one: ticks `index, index + count, …` of the full
    /// schedule, at the full schedule's times (the full profile's own shard is replaced, not nested).
    pub fn sharded(self, shard: Shard) -> Profile {
        Profile { shard, ..self }
    }

    /// The shard this profile emits (`0/1` when unsharded).
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Each segment as (rate at start, rate at end, start second, length in seconds); rates are this
    /// shard's share (1/N of the full profile's).
    pub fn segments(&self) -> Vec<(f64, f64, f64, f64)> {
        let n = self.shard.count as f64;
        self.segments.iter().map(|s| (s.r0 / n, s.r1 / n, s.start, s.len)).collect()
    }

    /// How many ticks this profile (this shard of it) emits.
    pub fn total(&self) -> u64 {
        self.shard.share(self.total)
    }

    /// How long the profile lasts.
    pub fn duration(&self) -> Duration {
        let last = self.segments.last().map_or(0.0, |s| s.start + s.len);
        Duration::from_secs_f64(last)
    }

    /// The offered rate at `t` (actions/s), this shard's share.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        for s in &self.segments {
            if t < s.start + s.len {
                let tau = (t - s.start).max(0.0);
                return (s.r0 + (s.r1 - s.r0) * tau / s.len) / self.shard.count as f64;
            }
        }
        0.0
    }

    /// Ticks of the full profile (all shards) due by `t` (the cumulative integral of the rate), as a float.
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
        if d > 0.0 { self.total() as f64 / d } else { 0.0 }
    }

    /// The offset from start at which this shard's tick `k` is due (tick `index + k·count` of the full
    /// profile); `None` past the end.
    pub fn time_of(&self, k: u64) -> Option<Duration> {
        let full = k.checked_mul(self.shard.count)?.checked_add(self.shard.index)?;
        self.full_time_of(full)
    }

    /// The offset at which tick `k` of the full-rate profile is due.
    fn full_time_of(&self, k: u64) -> Option<Duration> {
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
#[path = "schedule_tests.rs"]
mod tests;
