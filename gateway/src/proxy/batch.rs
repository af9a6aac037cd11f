//! A batch: invalid items are answered at once; plain reads travel to nodes as sub-batches of at most
//! `upstream-batch-size` (one HTTP request per sub-batch instead of one per item, split evenly over nodes);
//! cached reads are answered from the cache; transactions, filter calls, wide `eth_getLogs` and denied
//! methods take the single-call path, which has their routing rules. Answers keep the batch's order;
//! notifications get none. The batch is a 503 only when the cluster could serve none of it.

use super::{ItemReply, Proxy, Reply};
use crate::error::{self, CallError};
use crate::logs::Plan;
use crate::methods::{self, Class};
use crate::outcome::Outcome;
use crate::upstream::Answer;
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use iotex_shared::jsonrpc::{self, Request};
use serde_json::value::RawValue;
use tokio::time::Instant;

/// A batch's items sorted by the path they take.
struct Sorted<'a> {
    /// Answers known without a node call (invalid items, cache hits), by position.
    slots: Vec<Option<ItemReply>>,
    /// Plain reads, for sub-batches.
    reads: Vec<(usize, Request<'a>)>,
    /// Items that take the single-call path.
    singles: Vec<(usize, Request<'a>)>,
    /// Notifications get no answer, whatever happens to them.
    notification: Vec<bool>,
}

impl Proxy {
    /// Answers a batch (see the module doc).
    pub(super) async fn batch(&self, items: &[&RawValue], deadline: Instant, started: Instant) -> Reply {
        if items.is_empty() {
            return self.whole_error(CallError::EmptyBatch, None, started);
        }
        let (max, cap) = {
            let conf = self.conf();
            (conf.settings.max_batch_size, conf.settings.upstream_batch_size)
        };
        if items.len() > max {
            return self.whole_error(CallError::BatchTooLarge { len: items.len(), max }, None, started);
        }
        let Sorted { mut slots, mut reads, mut singles, notification } = self.sort(items, started);
        if reads.len() == 1 {
            singles.append(&mut reads);
        }
        let chunks = reads.len().div_ceil(cap).max(1);
        if chunks > 1 {
            self.metrics.calls.batch_splits.inc();
        }
        // Even sizes: 150 items with a cap of 100 go as 75 + 75 to two nodes, not 100 + 50.
        let per_chunk = reads.len().div_ceil(chunks).max(1);
        let grouped = futures::future::join_all(reads.chunks(per_chunk).map(|c| self.sub_batch(c, deadline, started)));
        let single = futures::future::join_all(singles.iter().map(|(i, req)| async move {
            let raw = items.get(*i).map_or("", |r| r.get());
            (*i, self.call(req, Bytes::copy_from_slice(raw.as_bytes()), deadline, started).await)
        }));
        let (grouped, single) = futures::future::join(grouped, single).await;
        for (i, reply) in grouped.into_iter().flatten().chain(single) {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(reply);
            }
        }
        let answers: Vec<ItemReply> =
            slots.into_iter().zip(notification).filter_map(|(slot, n)| slot.filter(|_| !n)).collect();
        assemble(&answers)
    }

    /// Parses every item and sorts it by path; invalid items and cache hits are answered here.
    fn sort<'a>(&self, items: &[&'a RawValue], started: Instant) -> Sorted<'a> {
        let conf = self.conf();
        let mut out = Sorted {
            slots: (0..items.len()).map(|_| None).collect(),
            reads: Vec::new(),
            singles: Vec::new(),
            notification: vec![false; items.len()],
        };
        for (i, raw) in items.iter().enumerate() {
            let req = match Request::parse(raw) {
                Ok(req) => req,
                Err(e) => {
                    let err = CallError::Invalid(e.error);
                    self.metrics.calls.observe("other", err.outcome(), 0.0);
                    out.slots[i] = Some(ItemReply { body: err.body(e.id), error: Some(err) });
                    continue;
                }
            };
            out.notification[i] = req.is_notification();
            let m = req.method.as_ref();
            let plain = match methods::class(m) {
                Class::Tx | Class::FilterCreate | Class::FilterUse => false,
                // A wide eth_getLogs is split over nodes on the single-call path, never put in a sub-batch.
                Class::Logs => self.logs_plan(&req) == Plan::Forward,
                Class::Read | Class::Subscribe | Class::Node => true,
            };
            if !plain || !conf.policy.allows(m) {
                out.singles.push((i, req));
                continue;
            }
            match self.reuse.as_ref().and_then(|r| r.cached(&req)) {
                Some(body) => {
                    self.metrics.calls.observe(m, Outcome::Ok, started.elapsed().as_secs_f64());
                    out.slots[i] = Some(ItemReply { body, error: None });
                }
                None => out.reads.push((i, req)),
            }
        }
        out
    }

    /// Sends a run of plain reads to one node as a batch with ids of the gateway's own (client ids may
    /// repeat or be null), and gives each item its node's answer under its client id.
    async fn sub_batch(
        &self,
        items: &[(usize, Request<'_>)],
        deadline: Instant,
        started: Instant,
    ) -> Vec<(usize, ItemReply)> {
        let mut body = String::with_capacity(items.len() * 96 + 2);
        body.push('[');
        for (k, (_, req)) in items.iter().enumerate() {
            if k > 0 {
                body.push(',');
            }
            let id = RawValue::from_string(k.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned());
            body.push_str(&req.to_json_with_id(&id));
        }
        body.push(']');
        let result = self.reader.read(Bytes::from(body), deadline, true).await;
        let elapsed = started.elapsed().as_secs_f64();
        let answers: Vec<Option<(Bytes, bool)>> = match &result {
            Ok((_, answer)) if answer.error.is_none() => match_batch(&answer.body, items),
            _ => (0..items.len()).map(|_| None).collect(),
        };
        items
            .iter()
            .zip(answers)
            .map(|((i, req), answer)| {
                let method = req.method.as_ref();
                let reply = match (answer, &result) {
                    (Some((body, rpc_error)), _) => {
                        let outcome = if rpc_error { Outcome::RpcError } else { Outcome::Ok };
                        self.metrics.calls.observe(method, outcome, elapsed);
                        if !rpc_error && let Some(reuse) = &self.reuse {
                            reuse.offer(req, Answer { body: body.clone(), error: None });
                        }
                        ItemReply { body, error: None }
                    }
                    // The node refused the whole batch with one error object: each item carries it.
                    (None, Ok((_, a))) if a.error.is_some() => {
                        let (code, message) = a.error.clone().unwrap_or_default();
                        self.metrics.calls.observe(method, Outcome::RpcError, elapsed);
                        ItemReply { body: error::node_error_body(req.id, code, &message), error: None }
                    }
                    (None, Ok(_)) => self.item_error(req, CallError::MissingBatchAnswer, elapsed),
                    (None, Err(e)) => self.item_error(req, e.clone(), elapsed),
                };
                (*i, reply)
            })
            .collect()
    }

    fn item_error(&self, req: &Request<'_>, e: CallError, elapsed: f64) -> ItemReply {
        self.metrics.calls.observe(req.method.as_ref(), e.outcome(), elapsed);
        ItemReply { body: e.body(req.id), error: Some(e) }
    }
}

/// The batch's answer: the items' bodies as one JSON array, or 204 when every item was a notification.
fn assemble(answers: &[ItemReply]) -> Reply {
    if answers.is_empty() {
        return Reply { status: StatusCode::NO_CONTENT, body: None };
    }
    // A batch is a 503 only when the cluster could serve none of it; otherwise the per-item errors say it.
    let all_unavailable = answers.iter().all(|a| matches!(a.error, Some(CallError::NoUpstream | CallError::Saturated)));
    let status = if all_unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let mut out = BytesMut::with_capacity(answers.iter().map(|a| a.body.len() + 1).sum::<usize>() + 2);
    out.put_u8(b'[');
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(a.body.trim_ascii());
    }
    out.put_u8(b']');
    Reply { status, body: Some(out.freeze()) }
}

/// Matches a node's batch answer to the items by the gateway's ids (`0..n`), rewriting each answer with
/// its client's id, and whether it is a JSON-RPC error. `None` for an item the node did not answer.
fn match_batch(body: &[u8], items: &[(usize, Request<'_>)]) -> Vec<Option<(Bytes, bool)>> {
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "keep_null")]
        result: Option<&'a RawValue>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    fn keep_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
    }
    let mut out: Vec<Option<(Bytes, bool)>> = (0..items.len()).map(|_| None).collect();
    let Ok(answers) = serde_json::from_slice::<Vec<Item<'_>>>(body) else { return out };
    for a in answers {
        let Some(k) = a.id.and_then(|id| id.get().parse::<usize>().ok()) else { continue };
        let (Some(slot), Some((_, req))) = (out.get_mut(k), items.get(k)) else { continue };
        let body = match (a.error, a.result) {
            (Some(e), _) => error::readdressed(req.id, e),
            (None, Some(r)) => Bytes::from(jsonrpc::result_response(req.id, r.get())),
            (None, None) => continue,
        };
        *slot = Some((body, a.error.is_some()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_are_matched_by_the_gateways_ids_and_given_back_the_clients_ids() {
        let texts = [
            r#"{"jsonrpc":"2.0","id":"x","method":"eth_blockNumber"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"eth_getTransactionReceipt","params":["0x1"]}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}"#,
        ];
        let raws: Vec<&RawValue> = texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let items: Vec<(usize, Request<'_>)> = raws.iter().map(|r| Request::parse(r).unwrap()).enumerate().collect();
        // Out of order, a null result, an error with data, item 3 missing, and an id the gateway never sent.
        let node = br#"[{"jsonrpc":"2.0","id":2,"error":{"code":3,"message":"reverted","data":"0x08c3"}},
            {"jsonrpc":"2.0","id":1,"result":null},{"jsonrpc":"2.0","id":0,"result":"0x10"},
            {"jsonrpc":"2.0","id":99,"result":"0x0"},{"jsonrpc":"2.0","id":"junk","result":1}]"#;
        let out = match_batch(node, &items);
        let v = |i: usize| -> serde_json::Value { serde_json::from_slice(&out[i].as_ref().unwrap().0).unwrap() };
        assert_eq!(v(0), serde_json::json!({"jsonrpc":"2.0","id":"x","result":"0x10"}));
        assert_eq!(v(1), serde_json::json!({"jsonrpc":"2.0","id":null,"result":null}));
        assert_eq!(v(2)["error"]["data"], "0x08c3", "a node's error object is passed through whole");
        assert_eq!(v(2)["id"], 7);
        assert!(out[2].as_ref().unwrap().1, "marked as a JSON-RPC error");
        assert!(out[3].is_none(), "an item the node did not answer is reported missing");
        // Not an array at all: nothing matches (the caller answers every item with an error).
        assert!(match_batch(b"{\"oops\":1}", &items).iter().all(Option::is_none));
        assert!(match_batch(b"", &items).iter().all(Option::is_none));
    }
}
