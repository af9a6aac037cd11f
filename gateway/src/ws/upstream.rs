//! The upstream subscription of one topic, kept alive across node failures.
//!
//! The task picks a routable upstream with a WebSocket URL ([`super::source`]), opens one socket and sends
//! `eth_subscribe newHeads` (and, for a logs topic, `eth_subscribe logs FILTER` on the same socket: two
//! messages, well inside IoTeX's 5 messages/s per connection). It resubscribes on another upstream when
//! - the socket errors or closes (`closed`), or cannot be opened or subscribed (`connect`);
//! - no head arrives for `ws-upstream-silence` (`silence`);
//! - health stops routing to the node (`unroutable`);
//! - a gap could not be filled (`gap_fill`): nothing is delivered out of order, so the topic starts over on
//!   another node and fills the gap from there.
//!
//! Guarantees to clients (see [`super::order`] for the rules):
//! - `newHeads`: head numbers are strictly consecutive. Heads at or below the last delivered number are
//!   dropped; a jump is filled with `eth_getBlockByNumber` through the [`Proxy`] (the HTTP path, with its
//!   retries) before the head itself is delivered, and right after every resubscribe the topic catches up to
//!   the cluster's `eth_blockNumber`. Filled heads are blocks with the body-only fields (`transactions`,
//!   `uncles`, `withdrawals`, `size`, `totalDifficulty`) removed. A gap over [`MAX_GAP_FILL`] blocks is
//!   skipped past, with a warning.
//! - `logs`: each `(blockNumber, logIndex, removed)` is delivered at most once; after a resubscribe, logs of
//!   the blocks since the last head seen (inclusive) are fetched with `eth_getLogs` (2,000-block chunks, the
//!   IoTeX cap) and delivered before new ones.
//! - Before a topic's first upstream subscription there is nothing to fill: a client sees events from the
//!   moment it is live. A logs topic counts its coverage from the cluster's head at that moment.

use super::order::{Admit, HeadGate, LogDedup, MAX_GAP_FILL, head_number, log_key};
use super::source::{Source, Target};
use super::topic::{Event, Topic};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

/// Opening the socket and getting the `eth_subscribe` answers.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// IoTeX caps `eth_getLogs` ranges at 2,000 blocks.
const LOGS_CHUNK: u64 = 2000;
/// Waits between attempts when no upstream can be subscribed; doubles up to the max.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What a topic's upstream task needs.
pub struct TopicTask {
    /// The topic.
    pub topic: Topic,
    /// Where events go to clients.
    pub tx: broadcast::Sender<Event>,
    /// Upstreams and health.
    pub source: Source,
    /// The HTTP path, for gap filling.
    pub proxy: Arc<Proxy>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Resubscribe after this long without a head.
    pub silence: Duration,
    /// Cancelled when the last client leaves, or on shutdown.
    pub stop: CancellationToken,
}

/// Why a subscription ended.
enum End {
    Stopped,
    Failed { reason: &'static str, detail: String },
}

fn failed(reason: &'static str, detail: impl Into<String>) -> End {
    End::Failed { reason, detail: detail.into() }
}

/// The delivery side of a topic: what has been delivered and where it goes.
struct Delivery {
    topic: Topic,
    tx: broadcast::Sender<Event>,
    proxy: Arc<Proxy>,
    metrics: Arc<Metrics>,
    gate: HeadGate,
    logs: LogDedup,
}

/// Runs the topic's upstream subscription until `stop` is cancelled.
pub async fn run(task: TopicTask) {
    let TopicTask { topic, tx, mut source, proxy, metrics, silence, stop } = task;
    let mut d = Delivery { topic, tx, proxy, metrics, gate: HeadGate::default(), logs: LogDedup::default() };
    let mut avoid: Option<String> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(target) = choose(&source.routable(), avoid.as_deref()) else {
            // Nothing routable has a WebSocket URL: look again when health changes (or after a while).
            tracing::debug!(topic = d.topic.kind(), "no routable upstream with a WebSocket URL");
            tokio::select! {
                () = stop.cancelled() => return,
                () = source.changed() => {}
                () = tokio::time::sleep(BACKOFF_MAX) => {}
            }
            continue;
        };
        tracing::debug!(topic = d.topic.kind(), upstream = %target.name, "subscribing upstream");
        let started = Instant::now();
        match subscribe(&mut d, &target, &mut source, &stop, silence).await {
            End::Stopped => return,
            End::Failed { reason, detail } => {
                d.metrics.ws.resubscribes.with_label_values(&[reason]).inc();
                tracing::warn!(topic = d.topic.kind(), upstream = %target.name, reason, error = %detail,
                    "upstream subscription lost; resubscribing on another upstream");
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = BACKOFF_MIN;
                }
                avoid = Some(target.name);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// A random routable target other than `avoid` (the one that just failed), or `avoid` if it is all there is.
fn choose(candidates: &[Target], avoid: Option<&str>) -> Option<Target> {
    let others: Vec<&Target> = candidates.iter().filter(|c| Some(c.name.as_str()) != avoid).collect();
    if others.is_empty() {
        return candidates.first().cloned();
    }
    let i = rand::rng().random_range(0..others.len());
    others.get(i).map(|t| (*t).clone())
}

/// Decrements the per-upstream gauge when a subscription ends, however it ends.
struct Subscribed(prometheus::IntGauge);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.dec();
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &url::Url) -> Result<Socket, String> {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    let mut req = clean.as_str().into_client_request().map_err(|e| e.to_string())?;
    if !url.username().is_empty() {
        use base64::Engine;
        let creds = format!("{}:{}", url.username(), url.password().unwrap_or(""));
        let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(creds));
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await.map_err(|e| e.to_string())?;
    Ok(ws)
}

/// One message from the node: an answer (`id`) or a notification (`params`).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    params: Option<Notification<'a>>,
}

#[derive(Deserialize)]
struct Notification<'a> {
    #[serde(borrow)]
    subscription: Cow<'a, str>,
    #[serde(borrow)]
    result: &'a RawValue,
}

/// The upstream's subscription ids.
struct Ids {
    heads: String,
    logs: Option<String>,
}

/// One upstream subscription, from connect to failure (or stop).
async fn subscribe(
    d: &mut Delivery,
    target: &Target,
    source: &mut Source,
    stop: &CancellationToken,
    silence: Duration,
) -> End {
    let opened = tokio::select! {
        () = stop.cancelled() => return End::Stopped,
        r = tokio::time::timeout(SUBSCRIBE_TIMEOUT, open(d, target)) => r,
    };
    let (mut ws, ids, early) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return failed("connect", e),
        Err(_) => return failed("connect", format!("no eth_subscribe answer within {SUBSCRIBE_TIMEOUT:?}")),
    };
    let gauge = d.metrics.ws.upstream_subscriptions.with_label_values(&[&target.name]);
    gauge.inc();
    let _subscribed = Subscribed(gauge);
    tracing::info!(topic = d.topic.kind(), upstream = %target.name, "subscribed upstream");

    // What happened while no subscription was live is fetched before anything new is delivered.
    let catch_up = tokio::select! {
        () = stop.cancelled() => return End::Stopped,
        r = d.catch_up() => r,
    };
    if let Err(e) = catch_up {
        return failed("gap_fill", e);
    }
    let mut silence_at = Instant::now() + silence;
    for text in early {
        match d.on_message(&text, &ids).await {
            Ok(true) => silence_at = Instant::now() + silence,
            Ok(false) => {}
            Err(e) => return failed("gap_fill", e),
        }
    }
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => {
                let _ = ws.close(None).await;
                return End::Stopped;
            }
            () = tokio::time::sleep_until(silence_at) => {
                return failed("silence", format!("no head for {silence:?}"));
            }
            () = source.changed() => {
                if !source.routable().iter().any(|t| t.name == target.name) {
                    let _ = ws.close(None).await;
                    return failed("unroutable", "health stopped routing to this upstream");
                }
                continue;
            }
            m = ws.next() => m,
        };
        match msg {
            None => return failed("closed", "the node closed the socket"),
            Some(Err(e)) => return failed("closed", e.to_string()),
            Some(Ok(Message::Close(f))) => return failed("closed", format!("the node closed the socket: {f:?}")),
            Some(Ok(Message::Text(text))) => {
                let result = tokio::select! {
                    () = stop.cancelled() => return End::Stopped,
                    r = d.on_message(text.as_str(), &ids) => r,
                };
                match result {
                    Ok(true) => silence_at = Instant::now() + silence,
                    Ok(false) => {}
                    Err(e) => return failed("gap_fill", e),
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Connects and subscribes; returns the socket, the subscription ids and any notification that arrived
/// before the last answer.
async fn open(d: &Delivery, target: &Target) -> Result<(Socket, Ids, Vec<String>), String> {
    let mut ws = connect(&target.url).await?;
    let heads = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]});
    ws.send(Message::text(heads.to_string())).await.map_err(|e| e.to_string())?;
    let want_logs = match &d.topic {
        Topic::NewHeads => false,
        Topic::Logs(filter) => {
            let f: Value = serde_json::from_str(filter).map_err(|e| e.to_string())?;
            let logs = json!({"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["logs", f]});
            ws.send(Message::text(logs.to_string())).await.map_err(|e| e.to_string())?;
            true
        }
    };
    let mut heads_id: Option<String> = None;
    let mut logs_id: Option<String> = None;
    let mut early = Vec::new();
    while heads_id.is_none() || (want_logs && logs_id.is_none()) {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(f))) => return Err(format!("closed while subscribing: {f:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed while subscribing".into()),
        };
        let Ok(m) = serde_json::from_str::<Incoming<'_>>(text.as_str()) else { continue };
        if m.params.is_some() {
            early.push(text.as_str().to_owned());
            continue;
        }
        let slot = match m.id.map(RawValue::get) {
            Some("1") => &mut heads_id,
            Some("2") => &mut logs_id,
            _ => continue,
        };
        if let Some(e) = m.error {
            return Err(format!("eth_subscribe refused: {e}"));
        }
        let id = m.result.and_then(|r| serde_json::from_str::<String>(r.get()).ok());
        *slot = Some(id.ok_or("eth_subscribe answered without a subscription id")?);
    }
    let heads = heads_id.ok_or("no newHeads subscription id")?;
    Ok((ws, Ids { heads, logs: logs_id }, early))
}

impl Delivery {
    fn send(&self, raw: &str) {
        // No receiver right now (every client left a moment ago) is not an error: the topic is stopping.
        let _ = self.tx.send(Arc::from(raw));
    }

    /// Handles one upstream message; `Ok(true)` when it was a head (which resets the silence timer).
    async fn on_message(&mut self, text: &str, ids: &Ids) -> Result<bool, String> {
        let Ok(m) = serde_json::from_str::<Incoming<'_>>(text) else { return Ok(false) };
        let Some(n) = m.params else { return Ok(false) };
        if n.subscription == ids.heads {
            let Some(number) = head_number(n.result.get()) else { return Ok(false) };
            match self.topic {
                Topic::NewHeads => self.head(number, n.result.get()).await?,
                Topic::Logs(_) => {
                    self.gate.delivered(number);
                    self.logs.prune(number);
                }
            }
            return Ok(true);
        }
        if ids.logs.as_deref() == Some(n.subscription.as_ref()) {
            self.log(n.result.get());
        }
        Ok(false)
    }

    fn log(&mut self, raw: &str) -> bool {
        // A log without a block number or index cannot be deduplicated; passing it through beats dropping it.
        let fresh = log_key(raw).is_none_or(|k| self.logs.admit(k));
        if fresh {
            self.send(raw);
        }
        fresh
    }

    async fn head(&mut self, number: u64, raw: &str) -> Result<(), String> {
        match self.gate.check(number) {
            Admit::Duplicate => return Ok(()),
            Admit::Deliver => {}
            Admit::Gap { from, to } => self.fill(from, to).await?,
        }
        self.send(raw);
        self.gate.delivered(number);
        Ok(())
    }

    /// Delivers blocks `from..=to`, fetched over the HTTP path, in order.
    async fn fill(&mut self, from: u64, to: u64) -> Result<(), String> {
        if let Some(last) = self.gate.last()
            && from > last + 1
        {
            tracing::warn!(skipped_from = last + 1, skipped_to = from - 1, "gap too long to fill; skipping ahead");
        }
        for b in from..=to {
            let block = rpc_retry(&self.proxy, "eth_getBlockByNumber", json!([format!("0x{b:x}"), false])).await?;
            let mut head: serde_json::Map<String, Value> =
                serde_json::from_str(block.get()).map_err(|e| format!("block {b} is not an object: {e}"))?;
            for body_only in ["transactions", "uncles", "withdrawals", "size", "totalDifficulty"] {
                head.remove(body_only);
            }
            let text = Value::Object(head).to_string();
            if head_number(&text) != Some(b) {
                return Err(format!("eth_getBlockByNumber({b}) answered another block"));
            }
            self.send(&text);
            self.gate.delivered(b);
            self.metrics.ws.gap_filled_heads.inc();
        }
        Ok(())
    }

    /// After a (re)subscribe: heads up to the cluster's current head, or logs since the last head seen.
    async fn catch_up(&mut self) -> Result<(), String> {
        let last = self.gate.last();
        if last.is_none() && self.topic == Topic::NewHeads {
            // Nothing delivered yet, so nothing can be missing.
            return Ok(());
        }
        let head_raw = rpc(&self.proxy, "eth_blockNumber", json!([])).await?;
        let head = serde_json::from_str::<String>(head_raw.get())
            .ok()
            .and_then(|s| iotex_shared::hex::quantity::<u64>(&s).ok())
            .ok_or("eth_blockNumber is not a quantity")?;
        let Some(last) = last else {
            // A logs topic's first subscription: logs are covered from here on, so a failover before its first
            // head still backfills what it missed.
            self.gate.delivered(head);
            return Ok(());
        };
        match self.topic.clone() {
            Topic::NewHeads => {
                if head > last {
                    let from = (last + 1).max(head.saturating_sub(MAX_GAP_FILL - 1));
                    self.fill(from, head).await?;
                }
            }
            Topic::Logs(filter) => {
                // From the last head seen, inclusive: its logs may not all have arrived before the socket died.
                let from = last.max(head.saturating_sub(MAX_GAP_FILL));
                let mut start = from;
                while start <= head {
                    let end = (start + LOGS_CHUNK - 1).min(head);
                    let mut f: serde_json::Map<String, Value> =
                        serde_json::from_str(&filter).map_err(|e| e.to_string())?;
                    f.insert("fromBlock".into(), json!(format!("0x{start:x}")));
                    f.insert("toBlock".into(), json!(format!("0x{end:x}")));
                    let logs = rpc(&self.proxy, "eth_getLogs", json!([f])).await?;
                    let logs: Vec<Box<RawValue>> =
                        serde_json::from_str(logs.get()).map_err(|e| format!("eth_getLogs result: {e}"))?;
                    for l in logs {
                        if self.log(l.get()) {
                            self.metrics.ws.backfilled_logs.inc();
                        }
                    }
                    start = end + 1;
                }
                self.gate.delivered(head);
            }
        }
        Ok(())
    }
}

/// [`rpc`], tried up to three times: the node the proxy picks may be a block or two behind the one whose head
/// revealed the gap (a `null` block), and another pick usually has it.
async fn rpc_retry(proxy: &Proxy, method: &str, params: Value) -> Result<Box<RawValue>, String> {
    let mut last = String::new();
    for attempt in 1..=3u32 {
        match rpc(proxy, method, params.clone()).await {
            Ok(r) => return Ok(r),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200) * attempt).await;
    }
    Err(last)
}

/// One call through the HTTP path; the `result`, or what went wrong. A `null` result is an error here:
/// every call made is for something that must exist (a block at or below the head).
async fn rpc(proxy: &Proxy, method: &str, params: Value) -> Result<Box<RawValue>, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        result: Option<Box<RawValue>>,
        #[serde(default)]
        error: Option<Value>,
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let reply = proxy.handle(Bytes::from(body)).await;
    let body = reply.body.ok_or_else(|| format!("{method}: no answer"))?;
    let a: Answer = serde_json::from_slice(&body).map_err(|e| format!("{method}: unreadable answer: {e}"))?;
    if let Some(e) = a.error {
        return Err(format!("{method}: {e}"));
    }
    match a.result {
        Some(r) if r.get() != "null" => Ok(r),
        _ => Err(format!("{method}: no result")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Target {
        Target { name: name.into(), url: url::Url::parse("ws://127.0.0.1:1").unwrap() }
    }

    #[test]
    fn choose_avoids_the_failed_upstream_unless_it_is_alone() {
        for _ in 0..20 {
            assert_eq!(choose(&[t("a"), t("b")], Some("a")).unwrap().name, "b");
        }
        assert_eq!(choose(&[t("a")], Some("a")).unwrap().name, "a");
        assert!(choose(&[], None).is_none());
    }
}
