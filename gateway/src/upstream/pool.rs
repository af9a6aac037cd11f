//! The picker: power of two choices over routable upstreams, on peak-EWMA latency × (in-flight + 1).
//!
//! This is the algorithm of tower's `p2c::Balance` over `PeakEwma` (and linkerd's), written out here
//! because the gateway needs three things tower's `Balance` does not give: excluding upstreams already
//! tried by this call (retries must go elsewhere), routing only over the health supervisor's current
//! routable set without re-running discovery, and being shared by every connection task without a `Buffer`
//! (tower's `Balance` is `&mut self`, so concurrent use means one task serialising every pick).
//! When every candidate is at its in-flight cap, the call waits for a slot on the cheapest one until its
//! deadline; it never queues on an upstream that is not routable.

use super::Upstream;
use rand::Rng;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// A chosen upstream and the in-flight slot held for the attempt.
pub struct Picked {
    /// The upstream.
    pub upstream: Arc<Upstream>,
    /// Released when the attempt ends.
    pub permit: OwnedSemaphorePermit,
}

/// Why nothing was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickError {
    /// No routable upstream is left (after excluding those already tried).
    NoneRoutable,
    /// Every candidate stayed at its in-flight cap until the deadline.
    Saturated,
}

/// Chooses the better of two random candidates, or the only one; `None` when there are none.
pub fn choose(upstreams: &[Arc<Upstream>], candidates: &[usize], rng: &mut impl Rng) -> Option<usize> {
    match candidates.len() {
        0 => None,
        1 => Some(candidates[0]),
        n => {
            let a = rng.random_range(0..n);
            let mut b = rng.random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            let (ia, ib) = (candidates[a], candidates[b]);
            let cost = |i: usize| upstreams.get(i).map_or(f64::INFINITY, |u| u.cost());
            Some(if cost(ib) < cost(ia) { ib } else { ia })
        }
    }
}

/// Picks an upstream from `routable` (positions in `upstreams`) minus those whose [`Upstream::id`] is in
/// `exclude`, and takes an in-flight slot on it.
pub async fn pick(
    upstreams: &[Arc<Upstream>],
    routable: &[usize],
    exclude: &[u64],
    deadline: Instant,
) -> Result<Picked, PickError> {
    // The common case (no exclusions) borrows the routable set as it is; only retries build a new list.
    let filtered: Vec<usize>;
    let candidates: &[usize] = if exclude.is_empty() {
        routable
    } else {
        filtered =
            routable.iter().copied().filter(|i| upstreams.get(*i).is_some_and(|u| !exclude.contains(&u.id))).collect();
        &filtered
    };
    let first = choose(upstreams, candidates, &mut rand::rng()).ok_or(PickError::NoneRoutable)?;
    let take = |i: usize| {
        let u = upstreams.get(i)?;
        u.try_acquire().map(|permit| Picked { upstream: Arc::clone(u), permit })
    };
    if let Some(p) = take(first) {
        return Ok(p);
    }
    // The chosen one is full: take the cheapest candidate with a free slot.
    let mut by_cost: Vec<usize> = candidates.to_vec();
    by_cost.sort_by(|a, b| {
        let ca = upstreams.get(*a).map_or(f64::INFINITY, |u| u.cost());
        let cb = upstreams.get(*b).map_or(f64::INFINITY, |u| u.cost());
        ca.total_cmp(&cb)
    });
    for i in &by_cost {
        if let Some(p) = take(*i) {
            return Ok(p);
        }
    }
    // All full: wait for the first chosen one's slot, bounded by the call's deadline.
    let u = upstreams.get(first).ok_or(PickError::NoneRoutable)?;
    match tokio::time::timeout_at(deadline, u.acquire()).await {
        Ok(Some(permit)) => Ok(Picked { upstream: Arc::clone(u), permit }),
        _ => Err(PickError::Saturated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;
    use crate::metrics::Metrics;
    use proptest::prelude::*;
    use std::time::Duration;

    fn ups(n: usize, cap: usize) -> Vec<Arc<Upstream>> {
        let m = Metrics::new().unwrap();
        (0..n)
            .map(|i| {
                let name = format!("u{i}");
                let cfg = UpstreamConfig {
                    name: name.clone(),
                    url: url::Url::parse(&format!("http://127.0.0.1:{}", 1000 + i)).unwrap(),
                    health_url: None,
                    ws_url: None,
                    grpc_url: None,
                };
                Arc::new(Upstream::new(&cfg, cap, 1, m.nodes.upstream(&name)).unwrap())
            })
            .collect()
    }

    proptest! {
        #[test]
        fn never_picks_outside_routable_or_an_excluded_one(
            n in 1usize..8,
            routable_mask in 0u8..=255,
            exclude_mask in 0u8..=255,
            seed in any::<u64>(),
        ) {
            use rand::SeedableRng;
            let u = ups(n, 4);
            let routable: Vec<usize> = (0..n).filter(|i| routable_mask & (1 << i) != 0).collect();
            let candidates: Vec<usize> = routable.iter().copied().filter(|i| exclude_mask & (1 << i) == 0).collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            match choose(&u, &candidates, &mut rng) {
                None => prop_assert!(candidates.is_empty()),
                Some(i) => prop_assert!(candidates.contains(&i)),
            }
        }
    }

    #[tokio::test]
    async fn prefers_the_less_loaded_and_spills_when_one_is_full() {
        let u = ups(2, 1);
        let deadline = Instant::now() + Duration::from_millis(50);
        let a = pick(&u, &[0, 1], &[], deadline).await.unwrap();
        let b = pick(&u, &[0, 1], &[], deadline).await.unwrap();
        assert_ne!(a.upstream.id, b.upstream.id, "second pick must spill to the free upstream");
        // Both full: waits until the deadline, then reports saturation (never hangs).
        assert_eq!(pick(&u, &[0, 1], &[], deadline).await.err(), Some(PickError::Saturated));
        drop(a);
        assert!(pick(&u, &[0, 1], &[], Instant::now() + Duration::from_millis(50)).await.is_ok());
    }

    #[tokio::test]
    async fn excluded_and_unroutable_mean_none() {
        let u = ups(3, 2);
        let d = Instant::now() + Duration::from_millis(10);
        assert_eq!(pick(&u, &[], &[], d).await.err(), Some(PickError::NoneRoutable));
        assert_eq!(pick(&u, &[1], &[u[1].id], d).await.err(), Some(PickError::NoneRoutable));
        assert_eq!(pick(&u, &[0, 2], &[u[0].id], d).await.unwrap().upstream.id, u[2].id);
    }
}
