//! Topics and fan-out: one upstream subscription per topic, shared by every client subscribed to it.
//!
//! Topics are keyed by their canonical form ([`super::topic`]), so two clients asking for the same logs in
//! different spellings share one upstream subscription. The first client of a topic starts its upstream task
//! ([`super::upstream`]); the last one to leave (unsubscribe or disconnect) stops it, which closes the
//! upstream socket. Events go to clients over a `broadcast` channel of `ws-send-queue` entries: a client that
//! falls that far behind is disconnected by its own session, and nobody else ever waits for it.

use super::source::Source;
use super::topic::{Event, Topic};
use super::upstream::{self, TopicTask};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

struct Entry {
    tx: broadcast::Sender<Event>,
    members: usize,
    stop: CancellationToken,
}

/// Every live topic.
pub struct Hub {
    topics: Mutex<HashMap<String, Entry>>,
    source: Source,
    proxy: Arc<Proxy>,
    metrics: Arc<Metrics>,
    silence: Duration,
    capacity: usize,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

/// A client's place in a topic; leaving (drop) stops the topic's upstream task when it was the last one.
pub struct Membership {
    hub: Arc<Hub>,
    key: String,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.key);
    }
}

impl Hub {
    /// A hub whose upstream tasks run on the current runtime (the control runtime, not a serving thread, so
    /// a topic outlives the connection that started it). `shutdown` stops every topic.
    pub fn new(
        source: Source,
        proxy: Arc<Proxy>,
        metrics: Arc<Metrics>,
        silence: Duration,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> Arc<Hub> {
        for name in source.configured_names() {
            metrics.ws.upstream_subscriptions.with_label_values(&[&name]);
        }
        Arc::new(Hub {
            topics: Mutex::new(HashMap::new()),
            source,
            proxy,
            metrics,
            silence,
            capacity: capacity.max(1),
            runtime: tokio::runtime::Handle::current(),
            shutdown,
        })
    }

    /// True when some upstream has a WebSocket URL, so subscriptions can be served at all.
    pub fn available(&self) -> bool {
        self.source.any_configured()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a consistent map (every update is a single insert/remove).
        self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins `topic`, starting its upstream subscription if it is new.
    pub fn join(self: &Arc<Self>, topic: Topic) -> (broadcast::Receiver<Event>, Membership) {
        let key = topic.key();
        let mut topics = self.lock();
        let entry = topics.entry(key.clone()).or_insert_with(|| {
            let (tx, _) = broadcast::channel(self.capacity);
            let stop = self.shutdown.child_token();
            let task = TopicTask {
                topic,
                tx: tx.clone(),
                source: self.source.clone(),
                proxy: Arc::clone(&self.proxy),
                metrics: Arc::clone(&self.metrics),
                silence: self.silence,
                stop: stop.clone(),
            };
            self.runtime.spawn(upstream::run(task));
            Entry { tx, members: 0, stop }
        });
        entry.members += 1;
        let rx = entry.tx.subscribe();
        (rx, Membership { hub: Arc::clone(self), key })
    }

    fn leave(&self, key: &str) {
        let mut topics = self.lock();
        let last = topics.get_mut(key).is_some_and(|e| {
            e.members = e.members.saturating_sub(1);
            e.members == 0
        });
        if last && let Some(e) = topics.remove(key) {
            e.stop.cancel();
        }
    }

    /// Live topics (for tests and `/status`-style checks).
    pub fn topics(&self) -> usize {
        self.lock().len()
    }
}
