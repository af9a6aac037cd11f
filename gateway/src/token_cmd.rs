//! `iotex-gateway token keygen|issue|inspect`: the operator's side of access tokens ([`crate::token`]).
//!
//! Exit codes: 0 done (for `inspect`: the token is well-formed, unexpired and, when keys are given, validly
//! signed); 1 `inspect` found the token invalid; 2 unusable input (key file, duration, claim, flag). Errors
//! never echo a token or a secret key.

use crate::config::TokenCommand;
use crate::token::{self, Claims, TokenError};
use std::io::{Read, Write};
use std::path::Path;

/// Exit code for an invalid token found by `inspect`.
pub const EXIT_INVALID: u8 = 1;
/// Exit code for unusable input.
pub const EXIT_USAGE: u8 = 2;

/// Runs one token command; output to `out`, diagnostics to `err`; returns the exit code.
pub fn run(cmd: TokenCommand, stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let result = match cmd {
        TokenCommand::Keygen { out: path, force } => keygen(&path, force, out),
        TokenCommand::Issue { key, subject, tier, ttl, id } => issue(&key, subject, tier, &ttl, id, out),
        TokenCommand::Inspect { token, public_key } => inspect(&token, &public_key, stdin, out),
    };
    match result {
        Ok(code) => code,
        Err((code, msg)) => {
            let _ = writeln!(err, "iotex-gateway token: {msg}");
            code
        }
    }
}

type CmdResult = Result<u8, (u8, String)>;

fn usage(msg: impl Into<String>) -> (u8, String) {
    (EXIT_USAGE, msg.into())
}

fn keygen(path: &Path, force: bool, out: &mut dyn Write) -> CmdResult {
    if !force && path.exists() {
        return Err(usage(format!("{} exists; pass --force to overwrite it", path.display())));
    }
    let key = token::generate();
    token::write_secret_key(path, &key, force).map_err(|e| usage(format!("cannot write the key file: {e}")))?;
    let public = token::encode_public_key(&key.verifying_key());
    let _ = writeln!(out, "{public}");
    Ok(0)
}

fn issue(path: &Path, subject: String, tier: String, ttl: &str, id: Option<String>, out: &mut dyn Write) -> CmdResult {
    let key = token::read_secret_key(path).map_err(|e| usage(format!("--key: {e}")))?;
    let ttl = iotex_shared::duration::parse(ttl).map_err(|e| usage(format!("--ttl: {e}")))?;
    if ttl.is_zero() {
        return Err(usage("--ttl must be longer than zero"));
    }
    let id = id.unwrap_or_else(token::random_id);
    if !token::valid_id(&id) {
        return Err(usage("--id must be 1-64 characters of A-Z a-z 0-9 . _ : -"));
    }
    if !token::valid_tier(&tier) {
        return Err(usage("--tier must be 1-32 characters of a-z 0-9 _ -"));
    }
    let expires_at = token::unix_now().checked_add(ttl.as_secs().max(1)).ok_or_else(|| usage("--ttl is too long"))?;
    let claims = Claims { id, subject, tier, expires_at };
    let t = token::issue(&key, &claims).map_err(|e| usage(format!("{e}")))?;
    let _ = writeln!(out, "{t}");
    Ok(0)
}

fn inspect(text: &str, keys: &[String], stdin: &mut dyn Read, out: &mut dyn Write) -> CmdResult {
    let mut keys_parsed = Vec::new();
    for k in keys {
        let parsed = match k.trim().strip_prefix('@') {
            Some(p) => token::read_public_keys(Path::new(p)),
            None => token::parse_public_key(k).map(|k| vec![k]),
        };
        keys_parsed.extend(parsed.map_err(|e| usage(format!("--public-key: {e}")))?);
    }
    let mut buf = String::new();
    let text = if text == "-" {
        // Bounded read: a token is a few hundred characters.
        stdin
            .take(token::MAX_TOKEN_CHARS as u64 * 2)
            .read_to_string(&mut buf)
            .map_err(|e| usage(format!("cannot read the token from stdin: {e}")))?;
        buf.as_str()
    } else {
        text
    };
    let decoded = match token::decode(text) {
        Ok(d) => d,
        Err(e) => return Err((EXIT_INVALID, e.to_string())),
    };
    let now = token::unix_now();
    let signature = if keys_parsed.is_empty() {
        "not_checked"
    } else {
        match decoded.verify_signature(&keys_parsed) {
            Ok(()) => "valid",
            Err(TokenError::UnknownKey) => "unknown_key",
            Err(_) => "invalid",
        }
    };
    let expired = decoded.expired_at(now);
    let c = &decoded.claims;
    let expires_utc = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(c.expires_at))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let report = serde_json::json!({
        "id": c.id,
        "subject": c.subject,
        "tier": c.tier,
        "expires_at": c.expires_at,
        "expires_at_utc": expires_utc,
        "expired": expired,
        "expires_in_s": c.expires_at.saturating_sub(now),
        "key_id": decoded.key_id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "signature": signature,
    });
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    let valid = !expired && matches!(signature, "valid" | "not_checked");
    Ok(if valid { 0 } else { EXIT_INVALID })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_cmd(cmd: TokenCommand, stdin: &str) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(cmd, &mut stdin.as_bytes(), &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn keygen_issue_inspect() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        let (code, public, _) = run_cmd(TokenCommand::Keygen { out: key.clone(), force: false }, "");
        assert_eq!(code, 0);
        let public = public.trim().to_owned();
        let issue = |ttl: &str| TokenCommand::Issue {
            key: key.clone(),
            subject: "ops".into(),
            tier: "gold".into(),
            ttl: ttl.into(),
            id: Some("t-1".into()),
        };
        let (code, tok, _) = run_cmd(issue("1h"), "");
        assert_eq!(code, 0);
        let (code, json, _) =
            run_cmd(TokenCommand::Inspect { token: "-".into(), public_key: vec![public.clone()] }, &tok);
        assert_eq!(code, 0, "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["signature"], "valid");
        assert_eq!(v["id"], "t-1");
        assert_eq!(v["tier"], "gold");
        assert_eq!(v["expired"], false);
        let other = token::encode_public_key(&token::generate().verifying_key());
        let (code, json, _) = run_cmd(TokenCommand::Inspect { token: tok.trim().into(), public_key: vec![other] }, "");
        assert_eq!(code, EXIT_INVALID);
        assert!(json.contains("unknown_key"), "{json}");
        for bad in ["0s", "soon", "5"] {
            let (code, _, err) = run_cmd(issue(bad), "");
            assert_eq!(code, EXIT_USAGE, "{bad}");
            assert!(err.contains("--ttl"), "{err}");
        }
    }
}
