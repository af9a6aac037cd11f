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
    assert_eq!(auth.admit(Some(&tok(&k, "c", "silver", 100)), 10).unwrap_err(), Refusal::Auth(AuthError::UnknownTier));
    assert_eq!(auth.admit(Some("x"), 10).unwrap_err(), Refusal::Auth(AuthError::Malformed));
    let other = SigningKey::from_bytes(&[2; 32]);
    assert_eq!(auth.admit(Some(&tok(&other, "d", "gold", 100)), 10).unwrap_err(), Refusal::Auth(AuthError::UnknownKey));
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
