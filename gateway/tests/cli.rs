//! The `iotex-gateway` binary's command line: `check-config`, env vars, precedence, and refusing bad
//! configuration before binding anything.

// A test binary: a set-up step that fails should panic with its location, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn gateway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iotex-gateway"));
    // Start from a clean slate: no IOTEX_GATEWAY_* from the environment running the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("IOTEX_GATEWAY_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn check_config_accepts_a_good_file_and_prints_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "gw.toml",
        r#"
listen = "127.0.0.1:15014"
admin-listen = "127.0.0.1:8080"
upstream = ["node0=http://10.0.0.1:15014", "node1=http://10.0.0.2:15014"]
upstream-health = ["node0=http://10.0.0.1:8080/readiness"]
health-interval = "500ms"
max-lag-blocks = 12
request-timeout = "8s"
rate-limit-per-client = 50
rate-limit-burst = 100
log-format = "json"
"#,
    );
    let o = gateway().arg("check-config").arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("configuration is valid"), "{out}");
    assert!(out.contains("node1=http://10.0.0.2:15014"), "{out}");
    assert!(out.contains("50/s per client, burst 100"), "{out}");
    assert!(out.contains("max-lag-blocks    12"), "{out}");
}

#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for (body, want) in [
        ("upstream = [\"http://x:1\"]\nmax-lag-blocks = -3\n", "max-lag-blocks"),
        ("upstream = [\"http://x:1\"]\nhealth-interval = \"soon\"\n", "health-interval"),
        ("upstream = [\"http://x:1\"]\nlisten-addr = \"x\"\n", "listen-addr"),
        ("upstream = \"http://x:1\"\n", "upstream"),
        ("upstream = [\"gopher://x\"]\n", "upstream"),
        ("[[[\n", "config file"),
    ] {
        let f = write(&dir, "bad.toml", body);
        let o = gateway().arg("check-config").arg(&f).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{body}: {}", text(&o));
        assert!(text(&o).contains(want), "{body}: {}", text(&o));
    }
    let o = gateway().arg("check-config").arg(dir.path().join("missing.toml")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("cannot read config file"));
}

#[test]
fn env_vars_fill_every_key_and_flags_win_over_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "gw.toml", "upstream = [\"a=http://10.0.0.1:15014\"]\nmax-lag-blocks = 5\n");
    let o = gateway()
        .arg("check-config")
        .arg(&f)
        .env("IOTEX_GATEWAY_MAX_LAG_BLOCKS", "7")
        .env("IOTEX_GATEWAY_UPSTREAM", "e1=http://10.0.0.9:15014,e2=http://10.0.0.10:15014")
        .env("IOTEX_GATEWAY_RATE_LIMIT_PER_CLIENT", "9")
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("max-lag-blocks    7"), "env wins over file: {out}");
    assert!(out.contains("e2=http://10.0.0.10:15014") && !out.contains("a=http"), "{out}");
    assert!(out.contains("9/s per client"), "{out}");
    let o = gateway()
        .args(["--max-lag-blocks", "8", "check-config"])
        .arg(&f)
        .env("IOTEX_GATEWAY_MAX_LAG_BLOCKS", "7")
        .output()
        .unwrap();
    assert!(text(&o).contains("max-lag-blocks    8"), "flag wins over env: {}", text(&o));
    let o = gateway().arg("check-config").arg(&f).env("IOTEX_GATEWAY_MAX_LAG_BLOCKS", "many").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("max-lag-blocks"), "{}", text(&o));
}

#[test]
fn a_bad_config_exits_before_binding_and_a_busy_port_is_named() {
    // Invalid: exits 2 and leaves the port free.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = gateway()
        .args(["--listen", &format!("127.0.0.1:{port}"), "--upstream", "http://x:1", "--request-timeout", "never"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("request-timeout"));
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "the port must not have been bound");
    // Port in use: exits 1 with a message that says what to do.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let o = gateway()
        .args(["--listen", &addr.to_string(), "--admin-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"])
        .args(["--upstream", "http://127.0.0.1:1"])
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is in use; choose another with --listen"), "{}", text(&o));
}

#[test]
fn malformed_flags_are_refused_by_name() {
    for (args, want) in [
        (vec!["--max-lag-blocks", "x"], "--max-lag-blocks"),
        (vec!["--rate-limit-per-client", "-1"], "--rate-limit-per-client"),
        (vec!["--no-such-flag"], "--no-such-flag"),
        (vec!["--upstream"], "--upstream"),
    ] {
        let o = gateway().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
}

#[test]
fn sigterm_drains_and_exits_0_with_json_log_lines_when_stdout_is_not_a_tty() {
    use std::io::Read;
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut child = gateway()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            &admin.to_string(),
            "--grpc-listen",
            "127.0.0.1:0",
            "--upstream",
            "dead=http://127.0.0.1:1",
        ])
        .args(["--shutdown-grace", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the admin listener answers, then ask the process to stop as Kubernetes does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(admin).is_err() {
        assert!(std::time::Instant::now() < deadline, "admin listener never came up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(status.code(), Some(0), "{out}");
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect();
    assert!(lines.iter().any(|l| l["message"] == "iotex-gateway serving"), "{out}");
    assert!(lines.iter().any(|l| l["message"] == "iotex-gateway stopped"), "{out}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{out}");
}

/// `--help` collapsed to single spaces: clap wraps lines at the terminal width.
fn help_text() -> String {
    let o = gateway().arg("--help").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn help_shows_the_real_defaults_in_sections() {
    let help = help_text();
    // Issue 12: the help once said 100 here while the code used 1000; clap now prints the value it uses.
    let (_, after) = help.split_once("--max-batch-size <N>").unwrap();
    let (entry, _) = after.split_once("--upstream-batch-size").unwrap();
    assert!(entry.contains("[default: 1000]"), "{entry}");
    for section in ["Listen:", "Upstreams & discovery:", "Health & ejection:", "Access tokens:", "WebSocket:"] {
        assert!(help.contains(section), "{section}: {help}");
    }
    for default in ["[default: 0.0.0.0:15014]", "[default: 8s]", "[default: 67108864]", "[default: 10]"] {
        assert!(help.contains(default), "{default}: {help}");
    }
}

fn public_key() -> String {
    iotex_gateway::token::encode_public_key(&iotex_gateway::token::SigningKey::from_bytes(&[7; 32]).verifying_key())
}

/// `check-config` of `body` with extra flags and env vars; its output.
fn check(body: &str, flags: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "gw.toml", body);
    let o = gateway().args(flags).arg("check-config").arg(&f).envs(env.iter().copied()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

#[test]
fn env_false_turns_off_a_files_require_token() {
    let body = format!(
        "upstream = [\"http://10.0.0.1:1\"]\ntoken-public-key = [\"{}\"]\ntoken-tier = [\"free=5\"]\nrequire-token = true\n",
        public_key()
    );
    assert!(check(&body, &[], &[]).contains("required"), "the file alone turns it on");
    let out = check(&body, &[], &[("IOTEX_GATEWAY_REQUIRE_TOKEN", "false")]);
    assert!(out.contains("optional") && !out.contains("required"), "env wins over the file: {out}");
}

#[test]
fn flags_win_over_env_over_file_for_every_kind_of_value() {
    let body = format!(
        "listen = \"127.0.0.1:1001\"\nmax-lag-blocks = 5\nhealth-interval = \"500ms\"\nupstream = [\"f=http://10.0.0.1:1\"]\n\
         token-public-key = [\"{}\"]\ntoken-tier = [\"free=5\"]\nrequire-token = true\n",
        public_key()
    );
    let env = [
        ("IOTEX_GATEWAY_LISTEN", "127.0.0.1:1002"),
        ("IOTEX_GATEWAY_MAX_LAG_BLOCKS", "6"),
        ("IOTEX_GATEWAY_HEALTH_INTERVAL", "600ms"),
        ("IOTEX_GATEWAY_UPSTREAM", "e=http://10.0.0.2:1"),
        ("IOTEX_GATEWAY_REQUIRE_TOKEN", "false"),
    ];
    let flags = [
        "--listen",
        "127.0.0.1:1003",
        "--max-lag-blocks",
        "7",
        "--health-interval",
        "700ms",
        "--upstream",
        "g=http://10.0.0.3:1",
        "--require-token",
    ];
    // (string, number, duration, list, switch) as printed by check-config.
    let kinds = |out: &str, want: [&str; 5]| {
        for w in want {
            assert!(out.contains(w), "{w}: {out}");
        }
    };
    let out = check(&body, &[], &[]);
    kinds(
        &out,
        ["listen            127.0.0.1:1001", "lag-blocks    5", "interval   500ms", "f=http://10.0.0.1:1", "required"],
    );
    let out = check(&body, &[], &env);
    kinds(
        &out,
        ["listen            127.0.0.1:1002", "lag-blocks    6", "interval   600ms", "e=http://10.0.0.2:1", "optional"],
    );
    assert!(!out.contains("f=http"), "env replaces the file's list: {out}");
    let out = check(&body, &flags, &env);
    kinds(
        &out,
        ["listen            127.0.0.1:1003", "lag-blocks    7", "interval   700ms", "g=http://10.0.0.3:1", "required"],
    );
    assert!(!out.contains("e=http"), "a flag replaces env's list: {out}");
    // And the switch the other way round: on by env, off by flag.
    let out = check(&body, &["--require-token=false"], &[("IOTEX_GATEWAY_REQUIRE_TOKEN", "true")]);
    assert!(out.contains("optional"), "{out}");
}
