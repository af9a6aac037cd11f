//! One client WebSocket connection: read messages, answer calls, hold subscriptions, write in order.
//!
//! A reader loop (this task) and a writer task share one bounded outgoing queue (`ws-send-queue` messages).
//! Nothing ever waits for room in it: a reply or notification that finds it full disconnects the client with
//! close code 1008 and a reason that says why, so one slow reader never holds up a topic's other clients.
//! Plain calls run concurrently (at most [`CALLS_IN_FLIGHT`] per connection) through
//! [`crate::proxy::Proxy::handle`], so answers may come back in a different order than the calls, as JSON-RPC
//! allows; `eth_subscribe` and `eth_unsubscribe` are answered here, and a subscription's first notification
//! always follows its answer.

use super::Ws;
use super::hub::Membership;
use super::topic::{Event, Topic};
use crate::error::{AuthError, WsClose, WsRefusal};
use crate::layers::auth::Refusal;
use crate::token::Claims;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use iotex_shared::jsonrpc::{Body, Request};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// Plain calls one connection may have in flight; the next message waits for one to finish.
pub const CALLS_IN_FLIGHT: usize = 32;
/// How long the writer gets to send what is queued and the close frame when a session ends.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Floor of the token re-check period, so a tiny `token-revocation-reload` cannot make sessions spin.
const MIN_RECHECK: Duration = Duration::from_millis(50);

type Stream = WebSocketStream<TokioIo<Upgraded>>;

/// The sending side every part of a session shares.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Message>,
    kill: mpsc::Sender<CloseFrame>,
    killed: Arc<AtomicBool>,
    ws: Arc<Ws>,
}

impl Outbox {
    /// Queues a message; a full queue disconnects the client (once) instead of waiting.
    fn push(&self, msg: Message) {
        match self.tx.try_send(msg) {
            Ok(()) => self.ws.metrics.ws.messages.with_label_values(&["out"]).inc(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.killed.swap(true, Ordering::Relaxed) {
                    self.ws.metrics.ws.slow_disconnects.inc();
                    let close = WsClose::SlowQueue { queue: self.ws.settings.send_queue };
                    let _ = self.kill.try_send(close.frame());
                }
            }
            // The session is ending; nothing to deliver to.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn text(&self, s: String) {
        self.push(Message::Text(s.into()));
    }
}

fn text_of(b: Bytes) -> Message {
    Message::Text(Utf8Bytes::try_from(b.clone()).unwrap_or_else(|_| String::from_utf8_lossy(&b).into_owned().into()))
}

/// One client subscription; dropping it stops its forwarder and leaves the topic.
struct Sub {
    forwarder: Option<AbortHandle>,
    gauge: prometheus::IntGauge,
    _membership: Membership,
}

impl Drop for Sub {
    fn drop(&mut self) {
        if let Some(f) = &self.forwarder {
            f.abort();
        }
        self.gauge.dec();
    }
}

struct Conn {
    ws: Arc<Ws>,
    out: Outbox,
    client: Option<IpAddr>,
    /// The token the session was opened with: messages are charged to it instead of the client's IP.
    identity: Option<Claims>,
    subs: HashMap<String, Sub>,
    /// Subscriptions answered but not yet forwarding: started right after their answer is queued.
    pending: Vec<(String, broadcast::Receiver<Event>)>,
    calls: Arc<Semaphore>,
}

/// Serves one upgraded connection until either side closes it.
pub async fn run(ws: Arc<Ws>, stream: Stream, client: Option<IpAddr>, identity: Option<Claims>) {
    let m = ws.metrics.ws.clone();
    m.connections.inc();
    ws.sessions.send_modify(|n| *n += 1);
    let (sink, mut incoming) = stream.split();
    let (tx, rx) = mpsc::channel::<Message>(ws.settings.send_queue);
    let (kill, mut kill_rx) = mpsc::channel::<CloseFrame>(1);
    let (close_tx, close_rx) = oneshot::channel::<Option<CloseFrame>>();
    let mut writer = tokio::spawn(write(sink, rx, close_rx));
    let out = Outbox { tx, kill, killed: Arc::new(AtomicBool::new(false)), ws: Arc::clone(&ws) };
    let mut conn = Conn {
        ws: Arc::clone(&ws),
        out,
        client,
        identity,
        subs: HashMap::new(),
        pending: Vec::new(),
        calls: Arc::new(Semaphore::new(CALLS_IN_FLIGHT)),
    };
    // A session opened with a token re-checks it on the revocation list's reload period: a client that only
    // listens to subscriptions sends nothing to be refused, so without this check a revoked or expired token
    // would keep its notifications flowing for as long as the socket stays open.
    let mut recheck = conn.identity.as_ref().map(|_| {
        let every = ws.auth.recheck_every().max(MIN_RECHECK);
        tokio::time::interval_at(tokio::time::Instant::now() + every, every)
    });
    let close = loop {
        let msg = tokio::select! {
            biased;
            () = ws.shutdown.cancelled() => break Some(WsClose::ShuttingDown.frame()),
            Some(f) = kill_rx.recv() => break Some(f),
            Some(e) = token_check(&ws, conn.identity.as_ref(), recheck.as_mut()) => {
                m.token_closes.inc();
                tracing::info!(reason = e.reason(), "WebSocket session closed: its access token is no longer valid");
                break Some(WsClose::Token(e).frame());
            }
            msg = incoming.next() => msg,
        };
        match msg {
            None | Some(Ok(Message::Close(_))) => break None,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                break Some(WsClose::MessageTooLong { size, max: max_size }.frame());
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket client connection broke");
                break None;
            }
            Some(Ok(Message::Text(t))) => {
                m.messages.with_label_values(&["in"]).inc();
                if conn.allowed(single_id(t.as_str()).as_deref()) {
                    conn.text(Bytes::from(t)).await;
                }
            }
            Some(Ok(Message::Binary(_))) => {
                m.messages.with_label_values(&["in"]).inc();
                if conn.allowed(None) {
                    conn.out.text(WsRefusal::BinaryFrame.body(None));
                }
            }
            // tungstenite answers pings itself.
            Some(Ok(_)) => {}
        }
    };
    // Leave every topic now rather than when the writer is done.
    conn.subs.clear();
    drop(conn);
    let _ = close_tx.send(close);
    if tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
        // The client stopped reading: dropping both halves closes the socket.
        writer.abort();
    }
    m.connections.dec();
    ws.sessions.send_modify(|n| *n = n.saturating_sub(1));
}

/// Waits for the next re-check tick and returns why the session's token is no longer valid; pends forever for a
/// session without a token (or while the token stays valid), so the `select!` arm never fires for those.
async fn token_check(
    ws: &Ws,
    identity: Option<&Claims>,
    recheck: Option<&mut tokio::time::Interval>,
) -> Option<AuthError> {
    let (Some(claims), Some(recheck)) = (identity, recheck) else {
        return std::future::pending().await;
    };
    loop {
        recheck.tick().await;
        if let Err(e) = ws.auth.still_valid(claims, crate::token::unix_now()) {
            return Some(e);
        }
    }
}

/// Writes queued messages in order; on the close signal, sends the close frame (if any) and ends.
async fn write(
    mut sink: futures::stream::SplitSink<Stream, Message>,
    mut rx: mpsc::Receiver<Message>,
    mut close: oneshot::Receiver<Option<CloseFrame>>,
) {
    loop {
        tokio::select! {
            biased;
            c = &mut close => {
                if let Ok(Some(f)) = c {
                    let _ = sink.send(Message::Close(Some(f))).await;
                }
                break;
            }
            m = rx.recv() => match m {
                Some(m) => {
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
        }
    }
    let _ = sink.close().await;
}

/// The id of a single call, so a refusal can be matched by the client; `None` for batches and garbage.
fn single_id(text: &str) -> Option<Box<RawValue>> {
    let Ok(Body::Single(raw)) = Body::parse(text) else { return None };
    let id = match Request::parse(raw) {
        Ok(req) => req.id,
        Err(e) => e.id,
    };
    id.map(|i| i.to_owned())
}

fn is_local(method: &str) -> bool {
    crate::methods::class(method) == crate::methods::Class::Subscribe
}

fn success(id: &RawValue, result: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{result}}}", id.get())
}

impl Conn {
    /// Applies the per-client rate limit to one message; a refused one is answered with -32005.
    fn allowed(&self, id: Option<&RawValue>) -> bool {
        if let Some(claims) = &self.identity {
            return match self.ws.auth.charge(claims) {
                Ok(()) => true,
                Err(Refusal::OverQuota(wait)) => {
                    self.out.text(WsRefusal::TokenOverQuota(wait).body(id));
                    false
                }
                // Revoked (or its tier removed) while the session was open: every later message is refused.
                Err(Refusal::Auth(e)) => {
                    self.out.text(WsRefusal::Token(e).body(id));
                    false
                }
            };
        }
        let Some(ip) = self.client else { return true };
        match self.ws.limiter.check(ip) {
            Ok(()) => true,
            Err(wait) => {
                self.ws.metrics.http.rate_limited.inc();
                self.out.text(WsRefusal::RateLimited(wait).body(id));
                false
            }
        }
    }

    async fn text(&mut self, body: Bytes) {
        // Text frames are UTF-8 by the protocol; tungstenite checked it.
        let text = std::str::from_utf8(&body).unwrap_or_default();
        match Body::parse(text) {
            Ok(Body::Single(raw)) => {
                if let Ok(req) = Request::parse(raw)
                    && is_local(&req.method)
                {
                    if let Some(reply) = self.local(&req) {
                        self.out.text(reply);
                    }
                    self.start_pending();
                    return;
                }
            }
            Ok(Body::Batch(items))
                if items.iter().any(|i| Request::parse(i).is_ok_and(|r| is_local(&r.method)))
                    && items.len() <= self.ws.settings.max_batch =>
            {
                self.mixed_batch(&items).await;
                return;
            }
            _ => {}
        }
        // Plain calls, and everything malformed: the HTTP path's parser and errors apply unchanged.
        let Ok(permit) = Arc::clone(&self.calls).acquire_owned().await else { return };
        let proxy = Arc::clone(&self.ws.proxy);
        let out = self.out.clone();
        tokio::spawn(async move {
            if let Some(b) = proxy.handle(body).await.body {
                out.push(text_of(b));
            }
            drop(permit);
        });
    }

    /// A batch with subscription calls in it: each item answered in place, in order, as one array.
    async fn mixed_batch(&mut self, items: &[&RawValue]) {
        let mut answers: Vec<String> = Vec::with_capacity(items.len());
        for raw in items {
            match Request::parse(raw) {
                Ok(req) if is_local(&req.method) => answers.extend(self.local(&req)),
                _ => {
                    let reply = self.ws.proxy.handle(Bytes::copy_from_slice(raw.get().as_bytes())).await;
                    if let Some(b) = reply.body {
                        answers.push(String::from_utf8_lossy(&b).trim().to_owned());
                    }
                }
            }
        }
        if !answers.is_empty() {
            self.out.text(format!("[{}]", answers.join(",")));
        }
        self.start_pending();
    }

    /// Answers `eth_subscribe` / `eth_unsubscribe`; `None` for a notification (no answer owed).
    fn local(&mut self, req: &Request<'_>) -> Option<String> {
        let id = req.id?;
        let params: Value = match req.params.map(|p| serde_json::from_str(p.get())) {
            None => Value::Array(Vec::new()),
            Some(Ok(v)) => v,
            Some(Err(e)) => return Some(WsRefusal::InvalidParams(e.to_string()).body(Some(id))),
        };
        let result = if req.method == "eth_subscribe" { self.subscribe(&params) } else { self.unsubscribe(&params) };
        Some(match result {
            Ok(r) => success(id, &r),
            Err(refusal) => refusal.body(Some(id)),
        })
    }

    fn subscribe(&mut self, params: &Value) -> Result<String, WsRefusal> {
        let topic = Topic::parse(params).map_err(WsRefusal::InvalidParams)?;
        let max = self.ws.settings.max_subscriptions;
        if self.subs.len() >= max {
            return Err(WsRefusal::TooManySubscriptions { max });
        }
        if !self.ws.hub.available() {
            return Err(WsRefusal::NoSubscriptions);
        }
        let gauge = self.ws.metrics.ws.subscriptions.with_label_values(&[topic.kind()]);
        let (rx, membership) = self.ws.hub.join(topic);
        let id = format!("0x{:032x}", rand::random::<u128>());
        gauge.inc();
        self.subs.insert(id.clone(), Sub { forwarder: None, gauge, _membership: membership });
        self.pending.push((id.clone(), rx));
        Ok(format!("\"{id}\""))
    }

    fn unsubscribe(&mut self, params: &Value) -> Result<String, WsRefusal> {
        let id = params.as_array().and_then(|a| a.first()).and_then(Value::as_str).ok_or_else(|| {
            WsRefusal::InvalidParams("eth_unsubscribe takes the subscription id: [\"0x…\"]".to_owned())
        })?;
        self.pending.retain(|(p, _)| p != id);
        Ok(self.subs.remove(id).is_some().to_string())
    }

    /// Starts forwarding for subscriptions whose answer is now queued.
    fn start_pending(&mut self) {
        for (id, rx) in self.pending.drain(..) {
            let Some(sub) = self.subs.get_mut(&id) else { continue };
            let task = tokio::spawn(forward(id, rx, self.out.clone()));
            sub.forwarder = Some(task.abort_handle());
        }
    }
}

/// `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":ID,"result":EVENT}}`, built
/// around the event's raw JSON so it is not parsed again per client.
fn notification(id: &str, event: &str) -> String {
    let mut n = String::with_capacity(event.len() + id.len() + 96);
    n.push_str(r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":""#);
    n.push_str(id);
    n.push_str(r#"","result":"#);
    n.push_str(event);
    n.push_str("}}");
    n
}

/// Moves a topic's events into this client's queue as `eth_subscription` notifications.
async fn forward(id: String, mut rx: broadcast::Receiver<Event>, out: Outbox) {
    loop {
        match rx.recv().await {
            Ok(ev) => out.text(notification(&id, &ev)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Only if this task itself was starved: the queue behind it never blocks it.
                if !out.killed.swap(true, Ordering::Relaxed) {
                    out.ws.metrics.ws.slow_disconnects.inc();
                    let _ = out.kill.try_send(WsClose::SlowMissed { missed: n }.frame());
                }
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
