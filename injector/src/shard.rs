//! One run split over N processes (`--shard I/N`, `--run-id`): which accounts and which ticks are shard I's.
//!
//! The split is by index modulo N, for both: shard I owns pool accounts I, I+N, I+2N, … (so no two shards
//! ever hand out a nonce of the same account) and ticks I, I+N, I+2N, … of the full-rate schedule (so each
//! shard offers 1/N of the rate, phase-offset by I ticks, and the union of all shards' send times is the
//! one-process schedule; see [`crate::schedule::Profile::sharded`]). The run id names the run all shards
//! belong to; `merge` refuses reports whose run ids differ.

use std::fmt;
use std::str::FromStr;

/// The environment variable the run id defaults to when `--run-id` is absent (the chart sets it to the
/// Job's name, which every pod of one Indexed Job shares).
pub const JOB_NAME_ENV: &str = "JOB_NAME";

/// Longest run id accepted (it becomes part of object-store keys and file names).
const MAX_RUN_ID: usize = 128;

/// Shard `index` of `count` (0-based, `index < count`); `0/1` is an unsharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    /// This shard's index, `0..count`.
    pub index: u64,
    /// How many shards the run has.
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl Shard {
    /// The whole run in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether item `i` of a list split over the shards (accounts, ticks) is this shard's.
    pub fn owns(&self, i: u64) -> bool {
        i % self.count == self.index
    }

    /// This shard's items of `items` (items `index`, `index + count`, …), in order.
    pub fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items.iter().enumerate().filter(|(i, _)| self.owns(*i as u64)).map(|(_, t)| t.clone()).collect()
    }

    /// How many of `total` items (numbered from 0) are this shard's.
    pub fn share(&self, total: u64) -> u64 {
        if total <= self.index { 0 } else { (total - self.index).div_ceil(self.count) }
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let form = "write it I/N: shard I (0-based) of N, e.g. 0/4 … 3/4";
        let (i, n) = s.trim().split_once('/').ok_or_else(|| format!("`{s}`: {form}"))?;
        let index: u64 = i.trim().parse().map_err(|_| format!("`{s}`: {form}"))?;
        let count: u64 = n.trim().parse().map_err(|_| format!("`{s}`: {form}"))?;
        if count == 0 {
            return Err(format!("`{s}`: N must be at least 1"));
        }
        if index >= count {
            return Err(format!("`{s}`: the index is 0-based and must be below N ({count})"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Checks a run id: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, so it is safe as a path or object-key part.
pub fn check_run_id(id: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_RUN_ID || !id.chars().all(ok) || id == "." || id == ".." {
        return Err(format!("`{id}`: a run id is 1 to {MAX_RUN_ID} characters of A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// Where a run's id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunIdSource {
    /// `--run-id` / `IOTEX_INJECTOR_RUN_ID`.
    Given,
    /// The `JOB_NAME` environment variable.
    JobName,
    /// Generated at start (no two processes share it).
    Random,
}

/// The run id: `given` when set, else `job_name` (the value of [`JOB_NAME_ENV`]) when it is a valid id,
/// else `run-<unix seconds>-<8 random hex digits>`.
pub fn resolve_run_id(given: Option<&str>, job_name: Option<&str>) -> Result<(String, RunIdSource), String> {
    if let Some(id) = given {
        check_run_id(id)?;
        return Ok((id.to_owned(), RunIdSource::Given));
    }
    if let Some(job) = job_name.map(str::trim).filter(|j| check_run_id(j).is_ok()) {
        return Ok((job.to_owned(), RunIdSource::JobName));
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok((format!("run-{secs}-{:08x}", rand::random::<u32>()), RunIdSource::Random))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shards_parse_and_refuse_clearly() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(" 0 / 1 ".parse::<Shard>(), Ok(Shard::WHOLE));
        for (bad, why) in [
            ("4/4", "below N"),
            ("1/0", "at least 1"),
            ("1", "I/N"),
            ("-1/4", "I/N"),
            ("a/b", "I/N"),
            ("", "I/N"),
            ("1/4/5", "I/N"),
            ("99999999999999999999/1", "I/N"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(Shard { index: 3, count: 8 }.to_string(), "3/8");
    }

    #[test]
    fn run_ids_come_from_the_flag_then_job_name_then_random() {
        assert_eq!(resolve_run_id(Some("soak-1"), Some("job")).unwrap(), ("soak-1".into(), RunIdSource::Given));
        assert_eq!(resolve_run_id(None, Some("load-x")).unwrap(), ("load-x".into(), RunIdSource::JobName));
        let (a, src) = resolve_run_id(None, None).unwrap();
        assert_eq!(src, RunIdSource::Random);
        assert!(a.starts_with("run-") && check_run_id(&a).is_ok(), "{a}");
        assert_ne!(a, resolve_run_id(None, Some("bad/name")).unwrap().0);
        for bad in ["", "a/b", "..", "x y", &"x".repeat(129), "é"] {
            assert!(resolve_run_id(Some(bad), None).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn shards_partition_every_list(total in 0u64..500, count in 1u64..17) {
            let items: Vec<u64> = (0..total).collect();
            let mut all: Vec<u64> = Vec::new();
            for index in 0..count {
                let s = Shard { index, count };
                let mine = s.slice(&items);
                prop_assert_eq!(mine.len() as u64, s.share(total));
                all.extend(mine);
            }
            all.sort_unstable();
            prop_assert_eq!(all, items);
        }
    }
}
