//! Answer reuse on the read path: the finality-aware [`cache`] first, then in-flight
//! [`coalescing`](crate::coalesce), then an ordinary read through the retrying [`Reader`].
//!
//! The proxy calls [`ReadReuse::read`] for every read call with an id (single calls and batch items alike);
//! transactions and notifications never come here. A hit is answered without touching a node, with the
//! caller's id. A miss that may be coalesced runs as a shared flight whose answer goes to every caller that
//! joined it, each with its own id, and is offered to the cache once. Errors of a shared flight are delivered
//! to every caller too (the proxy writes them with each caller's id); a caller whose flight ran out of the
//! *leader's* deadline while its own still has time reads on its own.
//!
//! Run-time changes (for a config reload): [`ReadReuse::set_coalesce`] flips coalescing and
//! [`crate::cache::Cache::set_max_bytes`] resizes the cache; turning a cache on that was started with
//! `cache-max-bytes 0` needs a restart, since none was built.

use crate::cache::{self, Cache, CallKey};
use crate::coalesce::{Coalescer, Role};
use crate::error::{self, CallError};
use crate::methods::{Cache as CacheRule, Known};
use crate::metrics::Metrics;
use crate::retry::Reader;
use crate::upstream::Answer;
use crate::upstream::health::ClusterView;
use bytes::Bytes;
use iotex_shared::jsonrpc::{self, Request};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;

/// Cache and coalescing state shared by every connection.
pub struct ReadReuse {
    reader: Arc<Reader>,
    cache: Option<Arc<Cache>>,
    coalescer: Coalescer<Result<Answer, CallError>>,
    coalesce: AtomicBool,
    metrics: Arc<Metrics>,
}

/// The lowest head among routable upstreams: every block at or below it is on every node a call can reach.
pub fn safe_head(view: &ClusterView) -> Option<u64> {
    view.routable
        .iter()
        .map(|&i| view.upstreams.get(i).and_then(|u| u.head))
        .try_fold(None::<u64>, |low, head| head.map(|h| Some(low.map_or(h, |l| l.min(h)))))
        .flatten()
}

impl ReadReuse {
    /// Reads go through `reader` (a shared flight holds it, so it finishes even when the call that started
    /// it has gone); `cache` is `None` when `cache-max-bytes` is 0.
    pub fn new(reader: Arc<Reader>, cache: Option<Cache>, coalesce: bool, metrics: Arc<Metrics>) -> ReadReuse {
        ReadReuse {
            reader,
            cache: cache.map(Arc::new),
            coalescer: Coalescer::new(),
            coalesce: AtomicBool::new(coalesce),
            metrics,
        }
    }

    /// The cache, if one is configured (for the batch path and reloads).
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_deref()
    }

    /// Turns coalescing on or off for calls that arrive from now on.
    pub fn set_coalesce(&self, on: bool) {
        self.coalesce.store(on, Ordering::Relaxed);
    }

    /// A cached answer for this call, under the caller's id. A call no head could ever make final
    /// (`latest`, no block) is neither looked up nor counted as a miss.
    fn lookup(&self, req: &Request<'_>, key: &CallKey) -> Option<Bytes> {
        if !may_become_final(key) {
            return None;
        }
        self.lookup_final(req, key)
    }

    /// [`ReadReuse::lookup`] for a key already known to [`may_become_final`].
    fn lookup_final(&self, req: &Request<'_>, key: &CallKey) -> Option<Bytes> {
        let result = self.cache.as_deref()?.lookup(key)?;
        Some(Bytes::from(jsonrpc::result_response(req.id, std::str::from_utf8(&result).unwrap_or("null"))))
    }

    /// For the batch path, whose reads travel as sub-batches: a cached answer for one item, if any.
    pub(crate) fn cached(&self, req: &Request<'_>) -> Option<Bytes> {
        let method = req.method.as_ref();
        if self.cache.is_none() || req.is_notification() || !cache::may_cache(method) {
            return None;
        }
        self.lookup(req, &CallKey::new(method, req.params)?)
    }

    /// For the batch path: offers one item's answer from a sub-batch to the cache (its rules decide).
    pub(crate) fn offer(&self, req: &Request<'_>, answer: Answer) {
        let method = req.method.as_ref();
        if self.cache.is_none() || !cache::may_cache(method) {
            return;
        }
        if let Some(key) = CallKey::new(method, req.params)
            && may_become_final(&key)
        {
            admit(self.cache.as_deref(), &self.reader, &key, &Ok(answer));
        }
    }

    /// Answers one read call: from the cache, by joining an identical call in flight, or from a node.
    /// `known` is the method's table entry ([`crate::methods::known`]).
    pub async fn read(
        &self,
        req: &Request<'_>,
        known: &Known,
        forward: Bytes,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        let method = req.method.as_ref();
        let rule = known.cache_rule();
        let cacheable = self.cache.is_some() && rule != CacheRule::Never;
        let coalesce = self.coalesce.load(Ordering::Relaxed) && known.may_coalesce();
        if !cacheable && !coalesce {
            return self.reader.read_answer(forward, deadline).await;
        }
        if !cacheable || cache::surely_moving(rule, req.params) {
            // Never cached: only coalescing is left, and identical text is all it needs for a key (calls
            // that differ only in spelling are not merged, which costs a node call, never a wrong answer).
            return self.coalesced(req, known, forward, deadline).await;
        }
        let Some(key) = CallKey::new(method, req.params) else {
            return self.reader.read_answer(forward, deadline).await;
        };
        // A call no head could ever make final (`latest`, no block) is neither looked up nor offered to the
        // cache: its answer would be parsed for nothing.
        let cache = if cacheable && may_become_final(&key) { self.cache.clone() } else { None };
        if cache.is_some()
            && let Some(body) = self.lookup_final(req, &key)
        {
            return Ok(Answer { body, error: None });
        }
        if !coalesce {
            return self.read_and_admit(forward, deadline, &key, cache.as_deref()).await;
        }
        let key = Arc::new(key);
        let (reader, flight_key, body) = (Arc::clone(&self.reader), Arc::clone(&key), forward.clone());
        let (out, role) = self
            .coalescer
            .run(key.as_str(), deadline, move || async move {
                let answer = reader.read_answer(body, deadline).await;
                admit(cache.as_deref(), &reader, &flight_key, &answer);
                answer
            })
            .await;
        if role == Role::Joined {
            self.metrics.reuse.coalesced(method);
        }
        match (out, role) {
            (None, _) => Err(CallError::Deadline),
            (Some(Ok(answer)), Role::Leader) => Ok(answer),
            (Some(Ok(answer)), Role::Joined) => Ok(rewrap(req.id, answer)),
            (Some(Err(CallError::Deadline)), Role::Joined) if Instant::now() < deadline => {
                let cache = if cacheable && may_become_final(&key) { self.cache.as_deref() } else { None };
                self.read_and_admit(forward, deadline, &key, cache).await
            }
            (Some(Err(e)), _) => Err(e),
        }
    }

    /// A read that can only be coalesced (no cache rule can ever keep its answer), keyed by its text.
    async fn coalesced(
        &self,
        req: &Request<'_>,
        known: &Known,
        forward: Bytes,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        let method = req.method.as_ref();
        if !self.coalesce.load(Ordering::Relaxed) || !known.may_coalesce() {
            return self.reader.read_answer(forward, deadline).await;
        }
        let params = req.params.map_or("[]", |p| p.get());
        let mut key = String::with_capacity(method.len() + 1 + params.len());
        // NUL cannot appear in a JSON text, so method and params cannot run into each other.
        key.push_str(method);
        key.push('\0');
        key.push_str(params);
        let (reader, body) = (Arc::clone(&self.reader), forward.clone());
        let (out, role) =
            self.coalescer.run(&key, deadline, move || async move { reader.read_answer(body, deadline).await }).await;
        if role == Role::Joined {
            self.metrics.reuse.coalesced(method);
        }
        match (out, role) {
            (None, _) => Err(CallError::Deadline),
            (Some(Ok(answer)), Role::Leader) => Ok(answer),
            (Some(Ok(answer)), Role::Joined) => Ok(rewrap(req.id, answer)),
            (Some(Err(CallError::Deadline)), Role::Joined) if Instant::now() < deadline => {
                self.reader.read_answer(forward, deadline).await
            }
            (Some(Err(e)), _) => Err(e),
        }
    }

    /// A read of its own, offered to `cache` when given.
    async fn read_and_admit(
        &self,
        forward: Bytes,
        deadline: Instant,
        key: &CallKey,
        cache: Option<&Cache>,
    ) -> Result<Answer, CallError> {
        let answer = self.reader.read_answer(forward, deadline).await;
        admit(cache, &self.reader, key, &answer);
        answer
    }
}

/// False when no safe head could ever make this call's answer final (`latest`, `pending`, no block): such a
/// call is never in the cache and never goes into it.
fn may_become_final(key: &CallKey) -> bool {
    !matches!(cache::cacheability(key.method(), key.params(), Some(u64::MAX)), cache::Cacheability::No(_))
}

/// Offers a successful answer's `result` to the cache at the current safe head.
fn admit(cache: Option<&Cache>, reader: &Reader, key: &CallKey, answer: &Result<Answer, CallError>) {
    let (Some(cache), Ok(answer)) = (cache, answer) else { return };
    if answer.error.is_some() {
        return;
    }
    let Ok(text) = std::str::from_utf8(&answer.body) else { return };
    let Some(result) = jsonrpc::Response::parse(text).and_then(|r| r.result) else { return };
    // Read the head after the answer: a head that only rose since the call was sent is still a head every
    // routable node has reached, and the rule only needs the asked block to be at or below it.
    let head = safe_head(&reader.snapshot());
    cache.admit(key, result.get(), head);
}

/// The same answer with another caller's id.
pub(crate) fn rewrap(id: Option<&RawValue>, answer: Answer) -> Answer {
    #[derive(serde::Deserialize)]
    struct ErrorOnly<'a> {
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    let Ok(text) = std::str::from_utf8(&answer.body) else { return answer };
    let body = if answer.error.is_some() {
        match serde_json::from_str::<ErrorOnly<'_>>(text).ok().and_then(|e| e.error) {
            Some(err) => error::readdressed(id, err),
            None => return answer,
        }
    } else {
        match jsonrpc::Response::parse(text).and_then(|r| r.result) {
            Some(result) => Bytes::from(jsonrpc::result_response(id, result.get())),
            None => return answer,
        }
    };
    Answer { body, error: answer.error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::health::{State, UpstreamStatus};

    fn status(state: State, head: Option<u64>) -> UpstreamStatus {
        UpstreamStatus { state, head, lag: None, probe_latency_ms: None, consecutive_failures: 0, last_error: None }
    }

    #[test]
    fn safe_head_is_the_lowest_routable_head() {
        let view = ClusterView {
            best_head: Some(100),
            members: Vec::new(),
            upstreams: vec![
                status(State::Up, Some(100)),
                status(State::Up, Some(97)),
                status(State::Lagging, Some(3)),
                status(State::Down, None),
            ],
            routable: vec![0, 1],
        };
        assert_eq!(safe_head(&view), Some(97), "non-routable heads do not count");
        let none = ClusterView { routable: vec![], ..view.clone() };
        assert_eq!(safe_head(&none), None, "nothing routable: nothing is safe");
        let unknown = ClusterView { routable: vec![0, 3], ..view };
        assert_eq!(safe_head(&unknown), None, "a routable node with no known head: nothing is safe");
    }

    #[test]
    fn rewrap_keeps_result_or_error_and_swaps_the_id() {
        let id: Box<RawValue> = RawValue::from_string("\"mine\"".into()).unwrap();
        let ok = Answer { body: Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{"a":[1,2]}}"#), error: None };
        let v: serde_json::Value = serde_json::from_slice(&rewrap(Some(&id), ok).body).unwrap();
        assert_eq!(v, serde_json::json!({"jsonrpc":"2.0","id":"mine","result":{"a":[1,2]}}));
        let null = Answer { body: Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":null}"#), error: None };
        let v: serde_json::Value = serde_json::from_slice(&rewrap(Some(&id), null).body).unwrap();
        assert_eq!(v["id"], "mine");
        assert!(v["result"].is_null() && v.get("result").is_some());
        let err = Answer {
            body: Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"reverted","data":"0x08"}}"#,
            ),
            error: Some((3, "reverted".into())),
        };
        let out = rewrap(Some(&id), err);
        assert!(out.error.is_some());
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"jsonrpc":"2.0","id":"mine","error":{"code":3,"message":"reverted","data":"0x08"}})
        );
    }
}
