//! `eth_getLogs` over more blocks than a node answers in one call: split into chunks of at most
//! `logs-max-range-per-call` blocks, spread over the routable nodes, merged in block order.
//!
//! IoTeX nodes cap one `eth_getLogs` range (v2.4.4 refuses more than 2,000 blocks with code 3 "range exceeds
//! the limit"); a client that wants a longer history would otherwise have to learn the cap and page by hand.
//! [`plan`] decides, from the filter alone, whether the gateway splits a call:
//!
//! - **Forward** (the call goes to one node byte for byte, exactly as without this module) when the range is
//!   within one call, when the filter names a `blockHash`, when a bound is something the gateway does not
//!   resolve itself (`safe`, `finalized`, a number without `0x`, `0x0`, which IoTeX reads as "unset"), when
//!   the range is empty or starts above the cluster's head (the node explains), or when no head is known.
//! - **Split** otherwise. `latest`, `pending` and a missing bound are the *safe head* (the lowest head among
//!   routable nodes, so every chunk can go to any of them), `earliest` is block 1 (IoTeX's genesis block 0
//!   carries no logs), and a `toBlock` above the safe head is lowered to it, as a node lowers it to its tip.
//! - **Refuse** ([`Plan::TooWide`]) a range of more than `logs-max-range` blocks: the gateway answers `-32005`
//!   itself, so one client call never turns into an unbounded number of node calls.
//!
//! Chunks ask for consecutive, disjoint ranges in ascending order, and each node answers its range in block
//! order, so [`merge`] concatenates the answers as they are (no log is parsed, reordered or rewritten).

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Block-range limits for `eth_getLogs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsLimits {
    /// Largest range (blocks, inclusive) sent to one node in one call.
    pub per_call: u64,
    /// Largest range (blocks, inclusive) one client call may cover.
    pub max_range: u64,
}

/// What to do with one `eth_getLogs` call.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Send it to one node as it is.
    Forward,
    /// Ask for these ranges and concatenate the answers in order.
    Split(Split),
    /// The range is wider than `logs-max-range`.
    TooWide {
        /// Blocks the call covers (after resolving tags and lowering `toBlock` to the head).
        blocks: u64,
        /// The limit.
        max: u64,
    },
}

/// A split call: the client's filter and the ranges to ask for.
#[derive(Debug, PartialEq)]
pub struct Split {
    filter: Map<String, Value>,
    /// Params after the filter (IoTeX reads only the first; kept so nothing the client sent is dropped).
    rest: Vec<String>,
    ranges: Vec<(u64, u64)>,
}

/// One end of the range as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// `latest`, `pending`, empty or missing: the head.
    Head,
    /// An explicit block (or `earliest`).
    Number(u64),
}

/// Reads a `fromBlock`/`toBlock`; `None` for anything the gateway leaves to the node.
fn bound(v: Option<&Value>) -> Option<Bound> {
    let s = match v {
        None | Some(Value::Null) => return Some(Bound::Head),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return None,
    };
    match s {
        "" | "latest" | "pending" => Some(Bound::Head),
        "earliest" => Some(Bound::Number(1)),
        // `0x0` is left to the node: IoTeX reads it as "unset" (module doc).
        _ => match iotex_shared::hex::quantity::<u64>(s).ok()? {
            0 => None,
            n => Some(Bound::Number(n)),
        },
    }
}

/// Decides how to answer an `eth_getLogs` call with these params, given the safe head.
pub fn plan(params: Option<&RawValue>, safe_head: Option<u64>, limits: LogsLimits) -> Plan {
    let Some(params) = params else { return Plan::Forward };
    let Ok(items) = serde_json::from_str::<Vec<Box<RawValue>>>(params.get()) else { return Plan::Forward };
    let mut items = items.into_iter();
    let Some(first) = items.next() else { return Plan::Forward };
    let Ok(filter) = serde_json::from_str::<Map<String, Value>>(first.get()) else { return Plan::Forward };
    if filter.contains_key("blockHash") {
        return Plan::Forward;
    }
    let (Some(from), Some(to), Some(head)) = (bound(filter.get("fromBlock")), bound(filter.get("toBlock")), safe_head)
    else {
        return Plan::Forward;
    };
    let resolve = |b: Bound| match b {
        Bound::Head => head,
        Bound::Number(n) => n,
    };
    let (from, to) = (resolve(from), resolve(to).min(head));
    if from == 0 || from > to {
        return Plan::Forward;
    }
    let blocks = (to - from).saturating_add(1);
    if blocks <= limits.per_call.max(1) {
        return Plan::Forward;
    }
    if blocks > limits.max_range {
        return Plan::TooWide { blocks, max: limits.max_range };
    }
    Plan::Split(Split {
        filter,
        rest: items.map(|r| r.get().to_owned()).collect(),
        ranges: chunks(from, to, limits.per_call),
    })
}

/// Consecutive inclusive ranges of at most `per_call` blocks covering `from..=to` (`from <= to`).
fn chunks(from: u64, to: u64, per_call: u64) -> Vec<(u64, u64)> {
    let per_call = per_call.max(1);
    let mut out = Vec::new();
    let mut start = from;
    loop {
        let end = start.saturating_add(per_call - 1).min(to);
        out.push((start, end));
        if end >= to {
            return out;
        }
        start = end + 1;
    }
}

impl Split {
    /// The ranges, in order.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// The params of the call for one range: the client's filter with `fromBlock`/`toBlock` replaced.
    pub fn params(&self, (from, to): (u64, u64)) -> String {
        let mut filter = self.filter.clone();
        filter.insert("fromBlock".into(), Value::String(format!("0x{from:x}")));
        filter.insert("toBlock".into(), Value::String(format!("0x{to:x}")));
        // A map of JSON values always serialises.
        let mut out = format!("[{}", serde_json::to_string(&filter).unwrap_or_else(|_| "{}".into()));
        for r in &self.rest {
            out.push(',');
            out.push_str(r);
        }
        out.push(']');
        out
    }
}

/// A chunk's answer that is not a list of logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the answer for blocks {from}..={to} is not a list of logs")]
pub struct NotALogList {
    /// First block of the chunk.
    pub from: u64,
    /// Last block of the chunk.
    pub to: u64,
}

/// Concatenates the chunks' `result`s (each a JSON array, in range order) into one JSON array.
pub fn merge<'a>(results: impl IntoIterator<Item = ((u64, u64), &'a RawValue)>) -> Result<String, NotALogList> {
    let mut out = String::from("[");
    let mut first = true;
    for ((from, to), result) in results {
        let logs: Vec<&RawValue> = serde_json::from_str(result.get()).map_err(|_| NotALogList { from, to })?;
        for log in logs {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(log.get());
        }
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
