//! The one place the WebSocket side reads the upstream set and its health.
//!
//! Subscriptions need "the routable upstreams that have a WebSocket URL" and a way to wait until that may
//! have changed. Keeping both behind [`Source`] means a change in how upstreams are held (a dynamic member
//! list carried by the cluster view) is a change to this file only.

use crate::upstream::Upstream;
use crate::upstream::health::ClusterView;
use std::sync::Arc;
use tokio::sync::watch;

/// An upstream that can carry a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The upstream's configured name (metrics label, logs).
    pub name: String,
    /// Its WebSocket URL (may carry credentials; never logged, see [`crate::config::redact`]).
    pub url: url::Url,
}

/// Upstreams and health, as the WebSocket side sees them.
#[derive(Clone)]
pub struct Source {
    view: watch::Receiver<Arc<ClusterView>>,
}

impl Source {
    /// Over the health supervisor's view, which carries the current members (static, reloaded, discovered).
    pub fn new(view: watch::Receiver<Arc<ClusterView>>) -> Source {
        Source { view }
    }

    fn members(&self) -> Vec<Arc<Upstream>> {
        self.view.borrow().members.clone()
    }

    /// Routable upstreams that have a WebSocket URL, now.
    pub fn routable(&self) -> Vec<Target> {
        let view = Arc::clone(&self.view.borrow());
        view.routable
            .iter()
            .filter_map(|i| view.members.get(*i))
            .filter_map(|u| u.ws_url.clone().map(|url| Target { name: u.name.clone(), url }))
            .collect()
    }

    /// True when at least one current upstream has a WebSocket URL (routable or not).
    pub fn any_configured(&self) -> bool {
        self.members().iter().any(|u| u.ws_url.is_some())
    }

    /// Names of every current upstream with a WebSocket URL (to pre-register metric series).
    pub fn configured_names(&self) -> Vec<String> {
        self.members().iter().filter(|u| u.ws_url.is_some()).map(|u| u.name.clone()).collect()
    }

    /// Waits until health publishes a new view. Never returns once the supervisor is gone (shutdown).
    pub async fn changed(&mut self) {
        if self.view.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
