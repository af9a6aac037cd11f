//! Transaction submission (`eth_sendRawTransaction`): a transaction changes state, so it is resent only when
//! the attempt provably never reached a node (connect failure or a busy node's 429); "already known" /
//! "known transaction" answers are success, carrying the transaction's hash as a client expects. With
//! `tx-broadcast N` the raw transaction goes to N routable nodes at once and the first success answers;
//! the other sends still run to completion.

use crate::error::CallError;
use crate::retry::{Reader, report};
use crate::upstream::pool::{self, PickError};
use crate::upstream::{Answer, AttemptError};
use bytes::Bytes;
use iotex_shared::jsonrpc::{self, Request};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Sends one transaction: to `broadcast` nodes at once when that is above 1, else to one, resending only
/// what provably never left.
pub async fn send(
    reader: &Reader,
    req: &Request<'_>,
    body: Bytes,
    deadline: Instant,
    broadcast: usize,
) -> Result<Answer, CallError> {
    if broadcast > 1 {
        return send_to_many(reader, req, body, deadline, broadcast).await;
    }
    let mut tried: Vec<u64> = Vec::new();
    let mut last: Option<AttemptError> = None;
    loop {
        match reader.attempt(&body, false, &tried, &mut last, deadline).await? {
            (_, Ok(answer)) => return Ok(known_as_success(req, answer)),
            (upstream, Err(e)) if e.never_sent() => {
                reader.metrics().calls.retry(e.kind);
                tried.push(upstream.id);
                last = Some(e);
            }
            (_, Err(e)) => return Err(CallError::Upstream(e)),
        }
    }
}

/// Sends to up to `n` routable nodes at once; the first success answers, else the first node's refusal,
/// else the last failure.
async fn send_to_many(
    reader: &Reader,
    req: &Request<'_>,
    body: Bytes,
    deadline: Instant,
    n: usize,
) -> Result<Answer, CallError> {
    let view = reader.snapshot();
    let mut picks = Vec::new();
    let mut chosen: Vec<u64> = Vec::new();
    while picks.len() < n {
        match pool::pick(&view.members, &view.routable, &chosen, deadline).await {
            Ok(p) => {
                chosen.push(p.upstream.id);
                picks.push(p);
            }
            Err(PickError::NoneRoutable) if picks.is_empty() => return Err(CallError::NoUpstream),
            Err(PickError::Saturated) if picks.is_empty() => return Err(CallError::Saturated),
            Err(_) => break,
        }
    }
    let timeout = reader.attempt_timeout().min(deadline.saturating_duration_since(Instant::now()));
    let (tx, mut rx) = mpsc::channel(picks.len());
    for p in picks {
        let tx = tx.clone();
        let body = body.clone();
        let passive = reader.passive();
        // Each send runs to completion even after the first success answers the client: the other
        // nodes must still receive the transaction (that is the point of broadcasting).
        tokio::spawn(async move {
            let r = p.upstream.call(body, timeout).await;
            drop(p.permit);
            report(&passive, &p.upstream, r.as_ref().map(|_| ()));
            let _ = tx.send(r).await;
        });
    }
    drop(tx);
    let mut rejection: Option<Answer> = None;
    let mut failure: Option<AttemptError> = None;
    while let Some(r) = rx.recv().await {
        match r {
            Ok(answer) => {
                let answer = known_as_success(req, answer);
                if answer.error.is_none() {
                    return Ok(answer);
                }
                rejection.get_or_insert(answer);
            }
            Err(e) => failure = Some(e),
        }
    }
    match (rejection, failure) {
        (Some(answer), _) => Ok(answer),
        (None, Some(e)) => Err(CallError::Upstream(e)),
        (None, None) => Err(CallError::NoUpstream),
    }
}

/// True for a node's answer that means "I already have this transaction".
pub fn is_already_known(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already known") || m.contains("known transaction") || m.contains("already imported")
}

/// Turns "already known" into a success carrying the transaction hash, as a client expects.
fn known_as_success(req: &Request<'_>, answer: Answer) -> Answer {
    let Some((_, message)) = &answer.error else { return answer };
    if !is_already_known(message) {
        return answer;
    }
    match req.params.and_then(tx_hash) {
        Some(hash) => {
            let body = jsonrpc::result_response(req.id, &format!("\"{hash}\""));
            Answer { body: Bytes::from(body), error: None }
        }
        None => answer,
    }
}

/// Keccak-256 of the raw transaction in `params[0]`, as `0x…`.
fn tx_hash(params: &RawValue) -> Option<String> {
    let items: Vec<&RawValue> = serde_json::from_str(params.get()).ok()?;
    let raw: String = serde_json::from_str(items.first()?.get()).ok()?;
    let bytes = alloy_primitives::hex::decode(raw.trim()).ok()?;
    Some(format!("{:#x}", alloy_primitives::keccak256(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_known_variants() {
        assert!(is_already_known("already known"));
        assert!(is_already_known("Known transaction: 0xabc"));
        assert!(is_already_known("transaction already imported"));
        assert!(!is_already_known("nonce too low"));
        assert!(!is_already_known("execution reverted"));
    }

    #[test]
    fn hash_of_a_raw_transaction() {
        let p: Box<RawValue> = RawValue::from_string("[\"0x00\"]".into()).unwrap();
        // keccak256(0x00)
        assert_eq!(tx_hash(&p).unwrap(), "0xbc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a");
        let bad: Box<RawValue> = RawValue::from_string("[\"0xzz\"]".into()).unwrap();
        assert!(tx_hash(&bad).is_none());
        let obj: Box<RawValue> = RawValue::from_string("{\"a\":1}".into()).unwrap();
        assert!(tx_hash(&obj).is_none());
    }

    #[test]
    fn known_answer_becomes_success_with_the_hash_and_the_callers_id() {
        let text = r#"{"jsonrpc":"2.0","id":"abc","method":"eth_sendRawTransaction","params":["0x00"]}"#;
        let raw: &RawValue = serde_json::from_str(text).unwrap();
        let req = Request::parse(raw).unwrap();
        let answer = Answer { body: Bytes::from_static(b"{}"), error: Some((-32000, "already known".into())) };
        let out = known_as_success(&req, answer);
        assert!(out.error.is_none());
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["id"], "abc");
        assert!(v["result"].as_str().unwrap().starts_with("0xbc36789e"));
        let other = Answer { body: Bytes::from_static(b"{}"), error: Some((-32000, "nonce too low".into())) };
        assert!(known_as_success(&req, other).error.is_some());
    }
}
