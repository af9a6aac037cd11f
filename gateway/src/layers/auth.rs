//! Access tokens on the request path: verify the caller's token, apply its own quota, or let anonymous
//! callers through to the per-IP limit.
//!
//! The token is read from `Authorization: Bearer <token>`, else from a `token=` query parameter (for
//! WebSocket clients that cannot set headers). It is checked against every configured public key, the
//! revocation list and the tier table, then charged to a GCRA bucket keyed by the token id with its tier's
//! quota. Refuses with HTTP 401, `WWW-Authenticate: Bearer` and JSON-RPC `-32012` when the token is
//! malformed, not signed by a configured key, expired, revoked or of an unknown tier, or when there is none
//! and `require-token` is set; with HTTP 429 + `-32005` + `Retry-After` when the token is over its quota.
//! A token that is present but bad is never downgraded to anonymous. Admitted requests carry
//! [`TokenIdentity`] (the per-IP limiter skips them) and have the token removed from the header and the query,
//! so nothing further down can log or forward it. With no public key configured the layer looks at nothing.
//!
//! The state is swappable while running: [`Auth::reconfigure`] replaces the settings atomically (a tier whose
//! quota did not change keeps its buckets), and [`Auth::spawn_maintenance`] re-reads the revocation list
//! when its content changes; an unreadable or invalid file keeps the previous list, is logged and counted.
//! Requests in flight keep the snapshot they started with.

use crate::config::TokenConfig;
use crate::error::{AuthError, HttpRefusal};
use crate::metrics::Metrics;
use crate::token::{self, Claims, RevocationError};
use arc_swap::ArcSwap;
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use futures::future::{Either, Ready, ready};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{Request, Response, header};
use http_body_util::Full;
use prometheus::IntCounter;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// How often idle token buckets are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Who an admitted request belongs to; in the request's extensions after this layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity(pub Claims);

/// One tier's buckets and counters.
struct Tier {
    per_second: NonZeroU32,
    burst: NonZeroU32,
    limiter: DefaultKeyedRateLimiter<String>,
    requests: IntCounter,
    limited: IntCounter,
}

/// One consistent set of settings; replaced whole by [`Auth::reconfigure`].
struct Settings {
    keys: Vec<VerifyingKey>,
    require: bool,
    tiers: HashMap<String, Arc<Tier>>,
    revocation_list: Option<PathBuf>,
    revocation_reload: Duration,
}

#[derive(Default)]
struct ReloadState {
    /// The path and content of the list in force, to tell a change.
    last: Option<(PathBuf, Vec<u8>)>,
    /// The last error logged, so a file that stays broken is logged once, not every check.
    last_error: Option<String>,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401.
    Auth(AuthError),
    /// 429: the token is over its tier's quota; retry after the wait.
    OverQuota(Duration),
}

/// Token verification state, shared by every serving thread.
pub struct Auth {
    settings: ArcSwap<Settings>,
    revoked: ArcSwap<HashSet<Box<str>>>,
    reload: Mutex<ReloadState>,
    metrics: Arc<Metrics>,
    rejected: Vec<IntCounter>,
}

impl Auth {
    /// Auth state for `cfg` (None: tokens off). Reads the revocation list, failing if it cannot be used.
    pub fn new(cfg: Option<&TokenConfig>, metrics: Arc<Metrics>) -> Result<Arc<Auth>, RevocationError> {
        let rejected = AuthError::ALL.iter().map(|e| metrics.auth.rejected.with_label_values(&[e.reason()])).collect();
        let auth = Auth {
            settings: ArcSwap::from_pointee(Settings {
                keys: Vec::new(),
                require: false,
                tiers: HashMap::new(),
                revocation_list: None,
                revocation_reload: Duration::from_secs(5),
            }),
            revoked: ArcSwap::from_pointee(HashSet::new()),
            reload: Mutex::new(ReloadState::default()),
            metrics,
            rejected,
        };
        auth.reconfigure(cfg)?;
        Ok(Arc::new(auth))
    }

    /// Replaces the settings atomically (for a config reload). A tier whose quota is unchanged keeps its
    /// buckets; a new revocation-list path is read first and, if unusable, nothing changes.
    pub fn reconfigure(&self, cfg: Option<&TokenConfig>) -> Result<(), RevocationError> {
        let mut reload = self.reload.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = cfg.and_then(|c| c.revocation_list.clone());
        let same_path = reload.last.as_ref().map(|(p, _)| p) == path.as_ref();
        let new_list = match &path {
            Some(p) if !same_path => {
                let bytes = token::read_revocation_file(p)?;
                let ids = token::parse_revocation_bytes(p, &bytes)?;
                Some((Some((p.clone(), bytes)), ids))
            }
            Some(_) => None,
            None => Some((None, HashSet::new())),
        };
        let old = self.settings.load();
        let tiers = cfg
            .map(|c| c.tiers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let tier = match old.tiers.get(&t.name) {
                    Some(o) if o.per_second == t.per_second && o.burst == t.burst => Arc::clone(o),
                    _ => Arc::new(Tier {
                        per_second: t.per_second,
                        burst: t.burst,
                        limiter: RateLimiter::keyed(Quota::per_second(t.per_second).allow_burst(t.burst)),
                        requests: self.metrics.auth.token_requests.with_label_values(&[&t.name]),
                        limited: self.metrics.auth.token_rate_limited.with_label_values(&[&t.name]),
                    }),
                };
                (t.name.clone(), tier)
            })
            .collect();
        self.settings.store(Arc::new(Settings {
            keys: cfg.map(|c| c.public_keys.clone()).unwrap_or_default(),
            require: cfg.is_some_and(|c| c.require),
            tiers,
            revocation_list: path,
            revocation_reload: cfg.map_or(Duration::from_secs(5), |c| c.revocation_reload),
        }));
        if let Some((last, ids)) = new_list {
            self.metrics.auth.revoked_tokens.set(i64::try_from(ids.len()).unwrap_or(i64::MAX));
            self.revoked.store(Arc::new(ids));
            reload.last = last;
            reload.last_error = None;
        }
        Ok(())
    }

    /// True when at least one public key is configured.
    pub fn enabled(&self) -> bool {
        !self.settings.load().keys.is_empty()
    }

    /// Re-reads the revocation list; swaps it in if its content changed and it parses. Returns true when a
    /// new list took effect. A failure keeps the list in force, counts `result="error"` and is logged when
    /// it differs from the previous failure.
    pub fn reload_revocations(&self) -> bool {
        // Lock first, then read the path: a concurrent `reconfigure` to another list then either finishes
        // before (and this reads its path) or after (and replaces what this stores).
        let mut st = self.reload.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(path) = self.settings.load().revocation_list.clone() else { return false };
        let read = token::read_revocation_file(&path);
        if let Ok(bytes) = &read
            && st.last.as_ref().is_some_and(|(p, b)| *p == path && b == bytes)
        {
            return false;
        }
        match read.and_then(|bytes| token::parse_revocation_bytes(&path, &bytes).map(|ids| (bytes, ids))) {
            Ok((bytes, ids)) => {
                self.metrics.auth.revocation_reloads.with_label_values(&["ok"]).inc();
                self.metrics.auth.revoked_tokens.set(i64::try_from(ids.len()).unwrap_or(i64::MAX));
                tracing::info!(path = %path.display(), revoked = ids.len(), "revocation list reloaded");
                self.revoked.store(Arc::new(ids));
                st.last = Some((path, bytes));
                st.last_error = None;
                true
            }
            Err(e) => {
                self.metrics.auth.revocation_reloads.with_label_values(&["error"]).inc();
                let msg = e.to_string();
                if st.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "revocation list not reloaded; the previous list stays in force");
                    st.last_error = Some(msg);
                }
                false
            }
        }
    }

    /// Re-reads the revocation list every `token-revocation-reload` and drops idle token buckets every
    /// minute, until the returned task is aborted.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_sweep = tokio::time::Instant::now();
            loop {
                let period = me.settings.load().revocation_reload;
                tokio::time::sleep(period).await;
                let m = Arc::clone(&me);
                // File I/O off the async threads: the list may sit on a slow volume.
                let _ = tokio::task::spawn_blocking(move || m.reload_revocations()).await;
                if last_sweep.elapsed() >= SWEEP_EVERY {
                    last_sweep = tokio::time::Instant::now();
                    for t in me.settings.load().tiers.values() {
                        t.limiter.retain_recent();
                        t.limiter.shrink_to_fit();
                    }
                }
            }
        })
    }

    /// Decides one request: `Ok(None)` anonymous, `Ok(Some)` a valid token within its quota.
    pub fn admit(&self, token: Option<&str>, now: u64) -> Result<Option<TokenIdentity>, Refusal> {
        let s = self.settings.load();
        if s.keys.is_empty() {
            return Ok(None);
        }
        let Some(token) = token else {
            return if s.require { Err(self.refuse(AuthError::Missing)) } else { Ok(None) };
        };
        let claims = token::verify(token, &s.keys, now).map_err(|e| self.refuse(e.into()))?;
        self.charge(&claims)?;
        Ok(Some(TokenIdentity(claims)))
    }

    /// Charges one request to an already verified token: refused when it has been revoked or its tier
    /// removed since, or when it is over its tier's quota. Used per request by [`Auth::admit`] and per
    /// message by WebSocket sessions opened with a token.
    pub fn charge(&self, claims: &Claims) -> Result<(), Refusal> {
        if self.revoked.load().contains(claims.id.as_str()) {
            tracing::debug!(token_id = %claims.id, "revoked token refused");
            return Err(self.refuse(AuthError::Revoked));
        }
        let s = self.settings.load();
        let Some(tier) = s.tiers.get(&claims.tier) else {
            return Err(self.refuse(AuthError::UnknownTier));
        };
        if let Err(not_until) = tier.limiter.check_key(&claims.id) {
            tier.limited.inc();
            return Err(Refusal::OverQuota(not_until.wait_time_from(DefaultClock::default().now())));
        }
        tier.requests.inc();
        Ok(())
    }

    /// Whether an already verified token may still be served, without charging its quota: refused when it
    /// has been revoked, its tier removed, or it has expired since it was verified. WebSocket sessions opened
    /// with a token check this every [`Auth::recheck_every`], so a long-lived session that only receives
    /// subscription notifications (and so is never charged) still ends when its token does.
    pub fn still_valid(&self, claims: &Claims, now: u64) -> Result<(), AuthError> {
        if self.revoked.load().contains(claims.id.as_str()) {
            return Err(AuthError::Revoked);
        }
        if !self.settings.load().tiers.contains_key(&claims.tier) {
            return Err(AuthError::UnknownTier);
        }
        if now >= claims.expires_at {
            return Err(AuthError::Expired);
        }
        Ok(())
    }

    /// How often open sessions re-check their token: the revocation list's reload period, since a
    /// revocation cannot take effect sooner than the list is read.
    pub fn recheck_every(&self) -> Duration {
        self.settings.load().revocation_reload
    }

    fn refuse(&self, e: AuthError) -> Refusal {
        if let Some(c) = AuthError::ALL.iter().position(|x| *x == e).and_then(|i| self.rejected.get(i)) {
            c.inc();
        }
        Refusal::Auth(e)
    }
}

/// The bearer token of `Authorization`, if that header holds one (any other scheme is not ours).
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (scheme, rest) = v.split_at_checked(6)?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn query_token(uri: &http::Uri) -> Option<&str> {
    uri.query()?.split('&').find_map(|p| p.strip_prefix("token="))
}

/// Removes the token from the header and the query string.
fn strip_token<B>(req: &mut Request<B>) {
    if bearer(req.headers()).is_some() {
        req.headers_mut().remove(header::AUTHORIZATION);
    }
    let Some(q) = req.uri().query() else { return };
    if !q.split('&').any(|p| p.starts_with("token=")) {
        return;
    }
    let kept = q.split('&').filter(|p| !p.starts_with("token=")).collect::<Vec<_>>().join("&");
    let pq = if kept.is_empty() { req.uri().path().to_owned() } else { format!("{}?{kept}", req.uri().path()) };
    let mut parts = req.uri().clone().into_parts();
    // The path came from a valid URI and the kept pairs from its query, so this parses; if it somehow did
    // not, the whole query goes, token included.
    parts.path_and_query = Some(pq.parse().unwrap_or_else(|_| http::uri::PathAndQuery::from_static("/")));
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// Wraps a service with token checks.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Auth>,
}

impl AuthLayer {
    /// A layer over shared auth state.
    pub fn new(auth: Arc<Auth>) -> Self {
        AuthLayer { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = RequireAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireAuth { inner, auth: Arc::clone(&self.auth) }
    }
}

/// The token-checking service.
#[derive(Clone)]
pub struct RequireAuth<S> {
    inner: S,
    auth: Arc<Auth>,
}

impl<S, B> Service<Request<B>> for RequireAuth<S>
where
    S: Service<Request<B>, Response = Response<Full<Bytes>>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = S::Error;
    // Either the inner call's own future or a refusal ready at once: no box per request.
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if !self.auth.enabled() {
            return Either::Left(self.inner.call(req));
        }
        let token = bearer(req.headers()).or_else(|| query_token(req.uri()));
        match self.auth.admit(token, token::unix_now()) {
            Err(Refusal::Auth(e)) => Either::Right(ready(Ok(HttpRefusal::Unauthorized(e).response()))),
            Err(Refusal::OverQuota(wait)) => Either::Right(ready(Ok(HttpRefusal::RateLimited(wait).response()))),
            Ok(identity) => {
                strip_token(&mut req);
                if let Some(id) = identity {
                    req.extensions_mut().insert(id);
                }
                Either::Left(self.inner.call(req))
            }
        }
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
