//! The real binary: env vars, `keygen`, `address`, `--help`, and SIGINT mid-run against a real anvil.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_iotex-injector");
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn injector() -> Command {
    let mut c = Command::new(BIN);
    // Keep the test independent of whatever the developer exported.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("IOTEX_INJECTOR_")) {
        c.env_remove(k);
    }
    c
}

#[test]
fn env_vars_are_flags_and_bad_values_are_refused_with_the_flag_named() {
    let out = injector()
        .args(["run", "--endpoint", "http://127.0.0.1:1", "--key", KEY, "--duration", "1s"])
        .env("IOTEX_INJECTOR_RATE", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rate") && err.contains("fast"), "{err}");

    let out = injector()
        .args(["run", "--key", KEY, "--rate", "5"])
        .env("IOTEX_INJECTOR_ENDPOINT", "http://127.0.0.1:1")
        .env("IOTEX_INJECTOR_STEPS", "5@1s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
}

#[test]
fn keygen_and_address_print_both_forms() {
    let out = injector().args(["keygen", "-n", "2"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let f: Vec<_> = l.split_whitespace().collect();
        assert_eq!(f[0], "private_key");
        assert_eq!(f[1].len(), 66);
        assert!(f[3].starts_with("0x") && f[5].starts_with("io1"));
        let back = injector().args(["address", f[5]]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&back.stdout).trim(), f[3]);
    }
    let zero = injector().args(["address", "0x0000000000000000000000000000000000000000"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&zero.stdout).trim(), "io1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqd39ym7");
    assert_eq!(injector().arg("--help").output().unwrap().status.code(), Some(0));
}

fn rpc(port: u16, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn block_number(port: u16) -> Option<u64> {
    let out = rpc(port, r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#)?;
    let hex = out.split("\"result\":\"0x").nth(1)?.split('"').next()?;
    u64::from_str_radix(hex, 16).ok()
}

fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn sigint_mid_run_still_writes_a_complete_report() {
    let anvil =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(std::path::Path::new(anvil).exists(), "run scripts/install-peers.sh first");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _node = Kill(
        Command::new(anvil)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--chain-id", "4689", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(Duration::from_secs(20), || block_number(port)).is_some(), "anvil did not start");

    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let child = injector()
        .args([
            "run",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--key",
            KEY,
            "--rate",
            "30",
            "--duration",
            "5m",
        ])
        .args(["--report", report.to_str().unwrap(), "--progress", "off", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Kill(child);
    assert!(
        wait_for(Duration::from_secs(30), || block_number(port).filter(|b| *b >= 20)).is_some(),
        "no actions mined"
    );
    let pid = guard.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = wait_for(Duration::from_secs(60), || guard.0.try_wait().ok().flatten())
        .expect("the injector exits after SIGINT");
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    guard.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert!(stdout.contains("summary (interrupted)"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    let (scheduled, accepted, included) =
        (v["scheduled"].as_u64().unwrap(), v["accepted"].as_u64().unwrap(), v["included"].as_u64().unwrap());
    assert!((20..9000).contains(&scheduled), "{v}");
    assert_eq!(included + v["pending_at_end"].as_u64().unwrap() + v["dropped"].as_u64().unwrap(), accepted, "{v}");
}
