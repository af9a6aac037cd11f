//! Sticky filters: a filter lives in the memory of the node that created it, so every later call on it
//! must reach that node.
//!
//! Instead of a table, the gateway writes the creating node into the filter id it hands out:
//! `0x` + 16 hex digits naming the node (the first 8 bytes of Keccak-256 of its URL) + the node's own id
//! without its `0x`. Calls on the id go to the node it names, with the node's own id put back. Because the
//! id carries the route, it keeps working across gateway replicas behind one Service and across gateway
//! restarts, and costs no memory; nothing has to expire.
//!
//! Refusals: an id whose node is no longer in the upstream set gets a JSON-RPC `-32000` "filter not found"
//! that names the node (client libraries recreate filters on that message); so does an id this gateway did
//! not issue. A node that forgot the filter (restarted, or the 15-minute TTL passed) answers for itself, and
//! that answer is passed through.
//!
//! Which methods create or use a filter is said in [`crate::methods`] ([`crate::methods::Class`]).

use crate::error::CallError;
use crate::outcome::AttemptOutcome;
use crate::retry::{Reader, notification_id};
use crate::upstream::health::State;
use crate::upstream::{Answer, Upstream};
use bytes::Bytes;
use iotex_shared::jsonrpc::{self, Request};
use serde_json::value::RawValue;
use std::sync::Arc;
use tokio::time::Instant;

const TAG_HEX: usize = 16;

/// The route tag of an upstream: stable for a URL, so every replica computes the same one.
pub fn tag(upstream: &Upstream) -> u64 {
    tag_of_url(&upstream.config.url)
}

/// The route tag of an upstream URL (as configured or discovered).
pub fn tag_of_url(url: &url::Url) -> u64 {
    let h = alloy_primitives::keccak256(url.as_str().as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

/// The id handed to the client for a node's filter id, or `None` when the node's id is not `0x`-hex (then
/// it is passed through as is, and calls on it are routed like any read).
pub fn wrap(tag: u64, node_id: &str) -> Option<String> {
    let hex = node_id.strip_prefix("0x")?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() > 128 {
        return None;
    }
    Some(format!("0x{tag:016x}{hex}"))
}

/// Splits a client's filter id into the node's tag and the node's own id.
pub fn unwrap(client_id: &str) -> Option<(u64, String)> {
    let hex = client_id.strip_prefix("0x")?;
    if hex.len() <= TAG_HEX || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // `0x` and the tag's 16 digits read as one quantity; the rest is the node's id.
    let (tagged, rest) = client_id.split_at(2 + TAG_HEX);
    let tag = iotex_shared::hex::quantity::<u64>(tagged).ok()?;
    Some((tag, format!("0x{rest}")))
}

/// `eth_newFilter` and friends: any node may create the filter; its id is handed out with the node's
/// route tag in it.
pub async fn create(reader: &Reader, req: &Request<'_>, body: Bytes, deadline: Instant) -> Result<Answer, CallError> {
    let (upstream, answer) = reader.read(body, deadline, false).await?;
    if answer.error.is_some() {
        return Ok(answer);
    }
    let node_id = std::str::from_utf8(&answer.body)
        .ok()
        .and_then(jsonrpc::Response::parse)
        .and_then(|r| r.result.and_then(|v| serde_json::from_str::<String>(v.get()).ok()));
    match node_id.and_then(|id| wrap(tag(&upstream), &id)) {
        Some(id) => {
            let result = serde_json::to_string(&id).unwrap_or_default();
            Ok(Answer { body: Bytes::from(jsonrpc::result_response(req.id, &result)), error: None })
        }
        None => Ok(answer),
    }
}

/// `eth_getFilterChanges` and friends: only the node that created the filter can answer.
pub async fn call(reader: &Reader, req: &Request<'_>, deadline: Instant) -> Result<Answer, CallError> {
    let params: Vec<&RawValue> = req.params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default();
    let client_id = params.first().and_then(|p| serde_json::from_str::<String>(p.get()).ok());
    let Some(client_id) = client_id else {
        // No filter id to route on: any node will explain what is wrong with the params.
        let body = Bytes::from(req.to_json_with_id(req.id.unwrap_or(RawValue::NULL)));
        return reader.read_answer(body, deadline).await;
    };
    let Some((tag, node_id)) = unwrap(&client_id) else {
        return Err(CallError::FilterUnknown(client_id));
    };
    let upstream = creator(reader, tag)?;
    let mut p = serde_json::to_string(&node_id).unwrap_or_default();
    for extra in params.iter().skip(1) {
        p.push(',');
        p.push_str(extra.get());
    }
    let params = RawValue::from_string(format!("[{p}]")).map_err(|e| CallError::Parse(e.to_string()))?;
    let id = req.id.unwrap_or_else(|| notification_id());
    let forwarded = Request { id: Some(id), method: req.method.clone(), params: Some(&params) };
    let body = Bytes::from(forwarded.to_json_with_id(id));
    let permit = match tokio::time::timeout_at(deadline, upstream.acquire()).await {
        Ok(Some(p)) => p,
        _ => return Err(CallError::Saturated),
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let result = upstream.call(body, reader.attempt_timeout().min(remaining)).await;
    drop(permit);
    reader.report_attempt(&upstream, &result);
    match result {
        Ok(answer) => Ok(answer),
        Err(e) if e.kind == AttemptOutcome::Connect => {
            reader.metrics().calls.filters_lost.inc();
            Err(CallError::FilterLost(upstream.name.clone()))
        }
        Err(e) => Err(CallError::Upstream(e)),
    }
}

/// The member that created the filter with route `tag`, or why the filter is lost.
fn creator(reader: &Reader, tag: u64) -> Result<Arc<Upstream>, CallError> {
    let view = reader.snapshot();
    let member = view.members.iter().enumerate().find(|(_, u)| self::tag(u) == tag);
    let Some((pos, upstream)) = member else {
        reader.metrics().calls.filters_lost.inc();
        return Err(CallError::FilterLost(format!("route tag {tag:016x}")));
    };
    // A node whose last probe failed has most likely lost its memory; a busy or lagging one has not.
    if view.upstreams.get(pos).is_some_and(|s| s.state == State::Down) {
        reader.metrics().calls.filters_lost.inc();
        return Err(CallError::FilterLost(upstream.name.clone()));
    }
    Ok(Arc::clone(upstream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_ids_are_refused_not_panicked_on() {
        for bad in ["", "0x", "0xzz", "0x1234", "x0123456789abcdef01", "0x0123456789abcdef", "0x\u{e9}\u{e9}"] {
            assert!(unwrap(bad).is_none(), "{bad:?}");
        }
        assert!(wrap(1, "12").is_none());
        assert!(wrap(1, "0x").is_none());
        assert!(wrap(1, &format!("0x{}", "a".repeat(200))).is_none());
    }

    proptest! {
        #[test]
        fn wrap_then_unwrap_gives_back_the_node_and_its_id(tag in any::<u64>(), id in "[0-9a-f]{1,64}") {
            let node_id = format!("0x{id}");
            let client = wrap(tag, &node_id).unwrap();
            prop_assert_eq!(unwrap(&client), Some((tag, node_id)));
        }
    }
}
