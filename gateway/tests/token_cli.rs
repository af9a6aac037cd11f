//! `iotex-gateway token keygen|issue|inspect` as an operator runs them, including malformed input, and the
//! serving gateway never writing a token into its logs, even at trace level.

// A test binary: a set-up step that fails should panic with its location, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use iotex_gateway::token::{self, Claims};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn gateway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iotex-gateway"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IOTEX_GATEWAY_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn keygen(path: &Path) -> String {
    let o = gateway().args(["token", "keygen", "--out"]).arg(path).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    stdout(&o)
}

fn issue(key: &Path, extra: &[&str]) -> Output {
    gateway()
        .args(["token", "issue", "--key"])
        .arg(key)
        .args(["--subject", "explorer backend", "--tier", "gold", "--ttl", "30d"])
        .args(extra)
        .output()
        .unwrap()
}

fn inspect(token: &str, keys: &[&str]) -> (Option<i32>, String) {
    let mut c = gateway();
    c.args(["token", "inspect", token]);
    for k in keys {
        c.args(["--public-key", k]);
    }
    let o = c.output().unwrap();
    (o.status.code(), text(&o))
}

#[test]
fn keygen_writes_a_private_key_file_prints_the_public_key_and_never_overwrites_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.key");
    let public = keygen(&key);
    assert_eq!(public.len(), 43, "{public}");
    assert!(token::parse_public_key(&public).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let before = std::fs::read(&key).unwrap();
    let o = gateway().args(["token", "keygen", "--out"]).arg(&key).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read(&key).unwrap(), before, "refused keygen must leave the key alone");
    let o = gateway().args(["token", "keygen", "--force", "--out"]).arg(&key).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(stdout(&o), public);
    let o = gateway().args(["token", "keygen", "--out"]).arg(dir.path().join("no/such/dir/k")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn issue_then_inspect_with_the_right_key_wrong_key_and_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let public = keygen(&key);
    let o = issue(&key, &["--id", "explorer-2026"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = stdout(&o);
    let (code, out) = inspect(&t, &[&public]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], "explorer-2026");
    assert_eq!(v["subject"], "explorer backend");
    assert_eq!(v["tier"], "gold");
    assert_eq!(v["signature"], "valid");
    assert_eq!(v["expired"], false);
    let left = v["expires_in_s"].as_u64().unwrap();
    assert!((30 * 86_400 - 60..=30 * 86_400).contains(&left), "{left}");
    // Keys from a file; random ids by default.
    let keys_file = dir.path().join("keys.pub");
    std::fs::write(&keys_file, format!("# current\n{public}\n")).unwrap();
    let t2 = stdout(&issue(&key, &[]));
    let (code, out) = inspect(&t2, &[&format!("@{}", keys_file.display())]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"].as_str().unwrap().len(), 16);
    // Not checked without a key; wrong key → exit 1.
    let (code, out) = inspect(&t, &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("not_checked"), "{out}");
    let other = keygen(&dir.path().join("other"));
    let (code, out) = inspect(&t, &[&other]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unknown_key"), "{out}");
}

#[test]
fn inspect_reports_expired_and_malformed_tokens_with_exit_1() {
    let k = token::generate();
    let public = token::encode_public_key(&k.verifying_key());
    let expired =
        token::issue(&k, &Claims { id: "old".into(), subject: "s".into(), tier: "gold".into(), expires_at: 1 })
            .unwrap();
    let (code, out) = inspect(&expired, &[&public]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("\"expired\": true"), "{out}");
    for bad in ["", "abc", "!!!!", &"A".repeat(5_000)] {
        let (code, out) = inspect(bad, &[&public]);
        assert_eq!(code, Some(1), "{bad:.20}: {out}");
        assert!(out.contains("malformed"), "{out}");
    }
    // From stdin (keeps the token out of the process list).
    let mut child = gateway()
        .args(["token", "inspect", "-", "--public-key", &public])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{expired}\n").as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("\"id\": \"old\""));
}

#[test]
fn bad_key_files_durations_and_claims_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let public = keygen(&key);
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let public_only = dir.path().join("public");
    std::fs::write(&public_only, format!("{public}\n{public}\n")).unwrap();
    for (key_file, extra, want) in [
        (dir.path().join("missing"), vec![], "--key"),
        (garbage.clone(), vec![], "--key"),
        (public_only, vec![], "more than one key line"),
        (key.clone(), vec!["--ttl", "soon"], "--ttl"),
        (key.clone(), vec!["--ttl", "10"], "--ttl"),
        (key.clone(), vec!["--ttl", "0s"], "--ttl"),
        (key.clone(), vec!["--tier", "Gold!"], "--tier"),
        (key.clone(), vec!["--id", "has space"], "--id"),
        (key.clone(), vec!["--subject", &"s".repeat(500)], "subject"),
    ] {
        let o = issue(&key_file, &extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{extra:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    let (code, out) = inspect("abc", &["@/nonexistent"]);
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = inspect("abc", &["short"]);
    assert_eq!(code, Some(2), "{out}");
    let o = gateway().args(["token", "issue", "--key"]).arg(&key).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "missing required flags: {}", text(&o));
}

#[test]
fn check_config_prints_the_token_settings() {
    let dir = tempfile::tempdir().unwrap();
    let public = keygen(&dir.path().join("k"));
    let list = dir.path().join("revoked");
    std::fs::write(&list, "a\n").unwrap();
    let f = dir.path().join("gw.toml");
    std::fs::write(
        &f,
        format!(
            "upstream = [\"http://10.0.0.1:15014\"]\ntoken-public-key = [\"{public}\"]\nrequire-token = true\n\
             token-tier = [\"gold=100/200\"]\ntoken-revocation-list = \"{}\"\ntoken-revocation-reload = \"10s\"\n",
            list.display()
        ),
    )
    .unwrap();
    let o = gateway().arg("check-config").arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 key(s), tiers gold=100/200, required"), "{}", text(&o));
    assert!(text(&o).contains("checked every 10s"), "{}", text(&o));
    // Env vars work too (comma-separated lists, a boolean switch).
    let o = gateway().args(["check-config"]).arg(&f).env("IOTEX_GATEWAY_TOKEN_TIER", "a=1,b=2/4").output().unwrap();
    assert!(text(&o).contains("tiers a=1/1 b=2/4"), "{}", text(&o));
}

/// Sends one HTTP/1.1 request over a fresh connection and returns the whole response.
fn http(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn tokens_never_reach_the_logs_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let k = token::generate();
    let public = token::encode_public_key(&k.verifying_key());
    let mint = |id: &str, tier: &str, exp: u64| {
        token::issue(&k, &Claims { id: id.into(), subject: "subj".into(), tier: tier.into(), expires_at: exp }).unwrap()
    };
    let far = token::unix_now() + 3600;
    let good = mint("good", "gold", far);
    let expired = mint("old", "gold", 1);
    let unknown_tier = mint("tierless", "platinum", far);
    // Both held at once, so the OS hands out two different ports; released just before the gateway binds them.
    let held = [(); 2].map(|()| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let (rpc, admin) = (held[0].local_addr().unwrap(), held[1].local_addr().unwrap());
    drop(held);
    let log = dir.path().join("log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = gateway()
        .args(["--listen", &rpc.to_string(), "--admin-listen", &admin.to_string(), "--grpc-listen", "127.0.0.1:0"])
        .args(["--upstream", "dead=http://127.0.0.1:1", "--shutdown-grace", "1s", "--log-format", "json"])
        .args(["--token-public-key", &public, "--token-tier", "gold=100"])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    // Wait (bounded) until the JSON-RPC listener answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(rpc).is_err() {
        let exited = child.try_wait().unwrap();
        if exited.is_some() || std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("listener never came up ({exited:?}): {:.3000}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ok = http(rpc, "/", &format!("Authorization: Bearer {good}\r\n"));
    // Past the token check: the (dead) upstream answers for it.
    assert!(ok.starts_with("HTTP/1.1 503"), "{ok}");
    assert!(http(rpc, &format!("/?token={good}&x=1"), "").starts_with("HTTP/1.1 503"));
    for t in [&expired, &unknown_tier] {
        assert!(http(rpc, "/", &format!("Authorization: Bearer {t}\r\n")).starts_with("HTTP/1.1 401"));
        assert!(http(rpc, &format!("/?token={t}"), "").starts_with("HTTP/1.1 401"));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(out.contains("iotex-gateway stopped"), "the log was captured: {out:.2000}");
    for t in [&good, &expired, &unknown_tier] {
        // Any 40-character slice would be enough to replay a part; none may appear.
        assert!(!out.contains(&t[..40]), "a token reached the log");
    }
}

/// base64url has `-` in its alphabet: a token or public key starting with it is a value to `token inspect`,
/// not an unknown flag (clap's default), so it gets the token's own verdict.
#[test]
fn inspect_takes_a_token_and_a_key_that_start_with_a_hyphen_as_values() {
    let (code, out) = inspect("-not.a-token", &["-Qnot-a-key"]);
    assert!(!out.contains("unexpected argument"), "read as a flag: {out}");
    assert_ne!(code, Some(0), "{out}");
}
