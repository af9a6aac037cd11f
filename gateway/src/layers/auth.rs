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
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{Request, Response, header};
use http_body_util::Full;
use prometheus::IntCounter;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Config validation still reads the list through this path; the reader lives in [`crate::token`] (the config
/// engineer repoints `config.rs` there, then this re-export goes).
pub use crate::token::read_revocation_list;

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

    fn refuse(&self, e: AuthError) -> Refusal {
        if let Some(c) = AuthError::ALL.iter().position(|x| *x == e).and_then(|i| self.rejected.get(i)) {
            c.inc();
        }
        Refusal::Auth(e)
    }
}

/// The bearer token of `Authorization`, if that header holds one (any other scheme is not ours).
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
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
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if !self.auth.enabled() {
            return Box::pin(self.inner.call(req));
        }
        let token = bearer(req.headers()).or_else(|| query_token(req.uri()));
        match self.auth.admit(token, token::unix_now()) {
            Err(Refusal::Auth(e)) => Box::pin(async move { Ok(HttpRefusal::Unauthorized(e).response()) }),
            Err(Refusal::OverQuota(wait)) => Box::pin(async move { Ok(HttpRefusal::RateLimited(wait).response()) }),
            Ok(identity) => {
                strip_token(&mut req);
                if let Some(id) = identity {
                    req.extensions_mut().insert(id);
                }
                Box::pin(self.inner.call(req))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenTier;
    use ed25519_dalek::SigningKey;

    fn cfg(keys: &[&SigningKey], require: bool, list: Option<PathBuf>) -> TokenConfig {
        TokenConfig {
            public_keys: keys.iter().map(|k| k.verifying_key()).collect(),
            require,
            tiers: vec![TokenTier {
                name: "gold".into(),
                per_second: NonZeroU32::new(1).unwrap(),
                burst: NonZeroU32::new(2).unwrap(),
            }],
            revocation_list: list,
            revocation_reload: Duration::from_millis(50),
        }
    }

    fn tok(k: &SigningKey, id: &str, tier: &str, exp: u64) -> String {
        token::issue(k, &Claims { id: id.into(), subject: "s".into(), tier: tier.into(), expires_at: exp }).unwrap()
    }

    fn metrics() -> Arc<Metrics> {
        Arc::new(Metrics::new().unwrap())
    }

    #[test]
    fn admits_refuses_and_limits() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let auth = Auth::new(Some(&cfg(&[&k], false, None)), metrics()).unwrap();
        assert_eq!(auth.admit(None, 0), Ok(None));
        let t = tok(&k, "a", "gold", 100);
        assert!(auth.admit(Some(&t), 10).unwrap().is_some());
        assert!(auth.admit(Some(&t), 10).unwrap().is_some());
        assert!(matches!(auth.admit(Some(&t), 10), Err(Refusal::OverQuota(_))));
        // Another token of the same tier has its own bucket.
        assert!(auth.admit(Some(&tok(&k, "b", "gold", 100)), 10).is_ok());
        assert_eq!(auth.admit(Some(&t), 100).unwrap_err(), Refusal::Auth(AuthError::Expired));
        assert_eq!(
            auth.admit(Some(&tok(&k, "c", "silver", 100)), 10).unwrap_err(),
            Refusal::Auth(AuthError::UnknownTier)
        );
        assert_eq!(auth.admit(Some("x"), 10).unwrap_err(), Refusal::Auth(AuthError::Malformed));
        let other = SigningKey::from_bytes(&[2; 32]);
        assert_eq!(
            auth.admit(Some(&tok(&other, "d", "gold", 100)), 10).unwrap_err(),
            Refusal::Auth(AuthError::UnknownKey)
        );
        // Required: anonymous is refused.
        auth.reconfigure(Some(&cfg(&[&k], true, None))).unwrap();
        assert_eq!(auth.admit(None, 0).unwrap_err(), Refusal::Auth(AuthError::Missing));
        // Reconfigured with the same quota: buckets survive, so `a` is still over its quota.
        assert!(matches!(auth.admit(Some(&t), 10), Err(Refusal::OverQuota(_))));
        // Off: nothing is looked at.
        auth.reconfigure(None).unwrap();
        assert!(!auth.enabled());
        assert_eq!(auth.admit(Some("garbage"), 0), Ok(None));
    }

    #[test]
    fn revocation_list_reloads_and_a_bad_file_keeps_the_previous_list() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("revoked");
        std::fs::write(&list, "# revoked\n").unwrap();
        let k = SigningKey::from_bytes(&[1; 32]);
        let m = metrics();
        let auth = Auth::new(Some(&cfg(&[&k], false, Some(list.clone()))), Arc::clone(&m)).unwrap();
        let t = tok(&k, "leaked-1", "gold", 100);
        assert!(auth.admit(Some(&t), 0).is_ok());
        assert!(!auth.reload_revocations(), "unchanged content is not a reload");
        std::fs::write(&list, "other\nleaked-1   # leaked in a paste\n").unwrap();
        assert!(auth.reload_revocations());
        assert_eq!(auth.admit(Some(&t), 0).unwrap_err(), Refusal::Auth(AuthError::Revoked));
        assert_eq!(m.auth.revoked_tokens.get(), 2);
        // Invalid content: previous list stays, error counted.
        std::fs::write(&list, "has space\n").unwrap();
        assert!(!auth.reload_revocations());
        std::fs::remove_file(&list).unwrap();
        assert!(!auth.reload_revocations());
        assert_eq!(auth.admit(Some(&t), 0).unwrap_err(), Refusal::Auth(AuthError::Revoked));
        assert_eq!(m.auth.revocation_reloads.with_label_values(&["error"]).get(), 2);
        assert_eq!(m.auth.revocation_reloads.with_label_values(&["ok"]).get(), 1);
        // A new path that cannot be read is refused and changes nothing.
        assert!(auth.reconfigure(Some(&cfg(&[&k], false, Some(dir.path().join("nope"))))).is_err());
        assert_eq!(auth.admit(Some(&t), 0).unwrap_err(), Refusal::Auth(AuthError::Revoked));
    }

    #[test]
    fn token_is_found_in_header_or_query_and_stripped() {
        let mut h = http::HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bEaReR  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bear".parse().unwrap());
        assert_eq!(bearer(&h), None);
        let mut req = Request::builder()
            .uri("/ws?a=1&token=secret&b=2")
            .header(header::AUTHORIZATION, "Bearer secret")
            .body(())
            .unwrap();
        assert_eq!(query_token(req.uri()), Some("secret"));
        strip_token(&mut req);
        assert_eq!(req.uri().to_string(), "/ws?a=1&b=2");
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
        let mut req = Request::builder().uri("/?token=secret").body(()).unwrap();
        strip_token(&mut req);
        assert_eq!(req.uri().to_string(), "/");
    }
}
