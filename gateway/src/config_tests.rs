// Tests may unwrap: a failed set-up should stop the test at its line.
#![allow(clippy::unwrap_used)]

use super::*;

fn try_opts(args: &[&str]) -> Result<Config, ConfigError> {
    let mut full = vec!["iotex-gateway"];
    full.extend_from_slice(args);
    load(full)
}

fn opts(args: &[&str]) -> Config {
    try_opts(args).unwrap()
}

fn err(args: &[&str]) -> String {
    try_opts(args).unwrap_err().to_string()
}

/// Loads `body` as the config file, with `args` after it.
fn with_file(body: &str, args: &[&str]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, body).unwrap();
    let mut full = vec!["--config", path.to_str().unwrap()];
    full.extend_from_slice(args);
    try_opts(&full)
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = opts(&["--upstream", "http://127.0.0.1:1"]);
    assert_eq!(c.startup.listen.to_string(), "0.0.0.0:15014");
    assert_eq!(c.startup.admin_listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.live.max_lag_blocks, 10);
    assert_eq!(c.live.readmit_lag_blocks, 5);
    assert_eq!(c.live.max_batch_size, 1000);
    assert_eq!(c.live.upstream_batch_size, 100, "IoTeX's batch cap");
    assert_eq!(c.live.busy_backoff, Duration::from_secs(1));
    assert!(c.live.discovery.is_none());
    assert!(c.startup.max_in_flight_per_upstream < 100);
    assert_eq!(c.live.tx_broadcast, 1);
    assert!(c.live.rate_limit.is_none());
    assert_eq!(c.live.upstreams[0].name, "127.0.0.1:1");
    assert!(c.live.deny_methods.iter().any(|d| d == "eth_sendTransaction"));
    assert_eq!(
        c.startup.ws,
        WsConfig { upstream_silence: Duration::from_secs(8), max_subscriptions: 32, send_queue: 1024 }
    );
    assert!(c.live.upstreams[0].ws_url.is_none());
    assert_eq!((c.live.logs_max_range_per_call, c.live.logs_max_range), (1000, 10_000));
}

#[test]
fn logs_ranges_are_validated_together() {
    let c = opts(&["--upstream", "http://x", "--logs-max-range-per-call", "20000"]);
    assert_eq!(
        (c.live.logs_max_range_per_call, c.live.logs_max_range),
        (20_000, 20_000),
        "the bound follows a larger chunk"
    );
    let c = opts(&["--upstream", "http://x", "--logs-max-range-per-call", "5", "--logs-max-range", "5"]);
    assert_eq!((c.live.logs_max_range_per_call, c.live.logs_max_range), (5, 5));
    let c =
        with_file("logs-max-range-per-call = 500\nlogs-max-range = 4000\nupstream = [\"http://x\"]\n", &[]).unwrap();
    assert_eq!((c.live.logs_max_range_per_call, c.live.logs_max_range), (500, 4000));
}

#[test]
fn ws_urls_attach_to_named_upstreams() {
    let c = opts(&["--upstream", "a=http://10.0.0.1:15014", "--upstream-ws", "a=ws://10.0.0.1:16014"]);
    assert_eq!(c.live.upstreams[0].ws_url.as_ref().map(url::Url::as_str), Some("ws://10.0.0.1:16014/"));
    // A port gives the others one; an explicit URL wins.
    let c = opts(&[
        "--upstream",
        "a=http://10.0.0.1:15014",
        "--upstream",
        "b=http://u:p@node-b:15014",
        "--upstream-ws",
        "a=ws://10.0.0.9:7000",
        "--upstream-ws-port",
        "16014",
    ]);
    assert_eq!(c.live.upstreams[0].ws_url.as_ref().map(url::Url::as_str), Some("ws://10.0.0.9:7000/"));
    assert_eq!(c.live.upstreams[1].ws_url.as_ref().map(url::Url::as_str), Some("ws://u:p@node-b:16014/"));
    assert_eq!(c.live.cache_max_bytes, 64 << 20);
    assert!(c.live.coalesce);
}

#[test]
fn cache_and_coalescing_can_be_turned_off_by_flag_file_or_env_syntax() {
    let c = opts(&["--upstream", "http://x", "--cache-max-bytes", "0", "--coalesce", "false"]);
    assert_eq!(c.live.cache_max_bytes, 0);
    assert!(!c.live.coalesce);
    let e = err(&["--upstream", "http://x", "--coalesce", "maybe"]);
    assert!(e.contains("--coalesce"), "{e}");
    let c = with_file("cache-max-bytes = 8192\ncoalesce = false\nupstream = [\"http://x\"]\n", &[]).unwrap();
    assert_eq!((c.live.cache_max_bytes, c.live.coalesce), (8192, false));
}

#[test]
fn names_urls_and_health_urls() {
    let c = opts(&[
        "--upstream",
        "a=http://u:secret@10.0.0.1:15014/?x=1",
        "--upstream",
        "b=http://10.0.0.2:15014",
        "--upstream-health",
        "b=http://10.0.0.2:8080/readiness",
    ]);
    assert_eq!(c.live.upstreams[0].name, "a");
    assert_eq!(c.live.upstreams[0].url.query(), Some("x=1"));
    assert!(!redact(&c.live.upstreams[0].url).contains("secret"));
    assert_eq!(c.live.upstreams[1].health_url.as_ref().unwrap().path(), "/readiness");
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "`upstream`"),
        (&["--upstream", "ftp://x"], "`upstream`"),
        (&["--upstream", "https://x"], "https upstreams are not supported"),
        (&["--upstream", "not a url"], "`upstream`"),
        (&["--upstream", "bad name!=http://x"], "name `bad name!`"),
        (&["--upstream", "a=http://x", "--upstream", "a=http://y"], "used twice"),
        (&["--upstream", "http://x", "--upstream-health", "zz=http://h"], "no upstream is named `zz`"),
        (&["--upstream", "http://x", "--listen", "nowhere"], "`listen`"),
        (&["--upstream", "http://x", "--health-interval", "5"], "`health-interval`"),
        (&["--upstream", "http://x", "--health-interval", "0s"], "`health-interval`"),
        (&["--upstream", "http://x", "--max-lag-blocks", "0"], "`max-lag-blocks`"),
        (&["--upstream", "http://x", "--readmit-lag-blocks", "50"], "`readmit-lag-blocks`"),
        (&["--upstream", "http://x", "--rate-limit-per-client", "0"], "`rate-limit-per-client`"),
        (&["--upstream", "http://x", "--rate-limit-burst", "5"], "`rate-limit-burst`"),
        (&["--upstream", "http://x", "--trusted-proxy", "10.0.0.0/99"], "`trusted-proxy`"),
        (&["--upstream", "http://x", "--tx-broadcast", "0"], "`tx-broadcast`"),
        (&["--upstream", "http://x", "--deny-method", "eth_[", "--"], "`deny-method`"),
        (&["--upstream", "http://x", "--log-format", "xml"], "`log-format`"),
        (&["--upstream", "http://x", "--attempt-timeout", "20s"], "`attempt-timeout`"),
        (&["--upstream", "http://x", "--admin-listen", "0.0.0.0:15014"], "`admin-listen`"),
        (&["--upstream", "http://x", "--worker-threads", "0"], "`worker-threads`"),
        (&["--upstream", "http://x", "--busy-backoff", "0s"], "`busy-backoff`"),
        (&["--upstream", "http://x", "--upstream-batch-size", "0"], "`upstream-batch-size`"),
        (&["--upstream-dns", "iotex.svc"], "needs a port"),
        (&["--upstream-dns", "iotex.svc:0"], "is not a port"),
        (&["--upstream-dns", "iotex.svc:99999"], "is not a port"),
        (&["--upstream-dns", "bad name:15014"], "is not a DNS name"),
        (&["--upstream-dns", "a..b:15014"], "is not a DNS name"),
        (&["--upstream-dns", ":15014"], "is not a DNS name"),
        (&["--upstream-dns", "x:1", "--upstream-dns-server", "dns"], "`upstream-dns-server`"),
        (&["--upstream-dns", "x:1", "--upstream-dns-interval", "0s"], "`upstream-dns-interval`"),
        (&["--upstream", "http://x", "--upstream-dns-interval", "5s"], "set without upstream-dns"),
        (&["--upstream", "http://x", "--config-poll-interval", "soon"], "`config-poll-interval`"),
        (&["--upstream", "a=http://x", "--upstream-ws", "b=ws://x"], "no upstream is named `b`"),
        (&["--upstream", "a=http://x", "--upstream-ws", "a=http://x"], "`upstream-ws`"),
        (&["--upstream", "a=http://x", "--upstream-ws", "ws://x"], "`upstream-ws`"),
        (&["--upstream", "http://x", "--ws-upstream-silence", "0s"], "`ws-upstream-silence`"),
        (&["--upstream", "http://x", "--ws-max-subscriptions", "0"], "`ws-max-subscriptions`"),
        (&["--upstream", "http://x", "--ws-send-queue", "0"], "`ws-send-queue`"),
        (&["--upstream", "http://x", "--upstream-ws-port", "0"], "`upstream-ws-port`"),
        (&["--upstream", "http://x", "--cache-max-bytes", "100"], "`cache-max-bytes`"),
        (&["--upstream", "http://x", "--logs-max-range-per-call", "0"], "`logs-max-range-per-call`"),
        (&["--upstream", "http://x", "--logs-max-range", "999"], "at least logs-max-range-per-call (1000)"),
        (&["--upstream", "http://x", "--logs-max-range-per-call", "50", "--logs-max-range", "49"], "`logs-max-range`"),
    ];
    for (args, want) in cases {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn dns_discovery_alone_is_enough_and_names_are_normalised() {
    let c = opts(&["--upstream-dns", "IoTeX-Nodes.default.svc:15014", "--upstream-dns-server", "127.0.0.1:5353"]);
    assert!(c.live.upstreams.is_empty());
    let d = c.live.discovery.unwrap();
    assert_eq!(d.names, vec![("iotex-nodes.default.svc".to_owned(), 15014)]);
    assert_eq!(d.interval, Duration::from_secs(5));
    assert_eq!(d.server, Some("127.0.0.1:5353".parse().unwrap()));
}

/// base64url has `-` in its alphabet: a key (one in 64) that starts with it is a value, not a flag.
#[test]
fn a_public_key_that_starts_with_a_hyphen_is_taken_as_the_value() {
    let pk = (0u8..=255)
        .map(|i| crate::token::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[i; 32]).verifying_key()))
        .find(|pk| pk.starts_with('-'))
        .expect("one of 256 keys starts with '-'");
    let c = opts(&["--upstream", "http://x", "--token-public-key", &pk, "--token-tier", "default=10"]);
    assert_eq!(c.live.tokens.unwrap().public_keys.len(), 1);
}

#[test]
fn token_keys_are_validated_and_named() {
    let pk = crate::token::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
    let pk2 = crate::token::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[2; 32]).verifying_key());
    let dir = tempfile_dir();
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("# rotation\n{pk2}\n{pk}\n")).unwrap();
    let list = dir.join("revoked");
    std::fs::write(&list, "t1\n").unwrap();
    let at_keys = format!("@{}", keys.display());
    let c = opts(&[
        "--upstream",
        "http://x",
        "--token-public-key",
        &pk,
        "--token-public-key",
        &at_keys,
        "--token-tier",
        "gold=100/200",
        "--token-tier",
        "free=5",
        "--require-token",
        "--token-revocation-list",
        list.to_str().unwrap(),
    ]);
    let t = c.live.tokens.unwrap();
    assert_eq!(t.public_keys.len(), 2, "a key given twice counts once");
    assert!(t.require);
    assert_eq!(
        t.tiers[1],
        TokenTier {
            name: "free".into(),
            per_second: NonZeroU32::MIN.saturating_add(4),
            burst: NonZeroU32::MIN.saturating_add(4)
        }
    );
    assert_eq!(t.revocation_reload, Duration::from_secs(5));
    assert!(opts(&["--upstream", "http://x"]).live.tokens.is_none());

    let missing = dir.join("missing").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--require-token"], "`require-token`"),
        (vec!["--token-tier", "a=1"], "`token-tier`"),
        (vec!["--token-revocation-list", "/x"], "`token-revocation-list`"),
        (vec!["--token-public-key", "short"], "`token-public-key`"),
        (vec!["--token-public-key", "@/nonexistent/keys"], "`token-public-key`"),
        (vec!["--token-public-key", &pk], "`token-tier`"),
        (vec!["--token-public-key", &pk, "--token-tier", "gold"], "`token-tier`"),
        (vec!["--token-public-key", &pk, "--token-tier", "gold=0"], "`token-tier`"),
        (vec!["--token-public-key", &pk, "--token-tier", "gold=5/x"], "`token-tier`"),
        (vec!["--token-public-key", &pk, "--token-tier", "Gold=5"], "`token-tier`"),
        (vec!["--token-public-key", &pk, "--token-tier", "a=1", "--token-tier", "a=2"], "defined twice"),
        (
            vec!["--token-public-key", &pk, "--token-tier", "a=1", "--token-revocation-list", &missing],
            "`token-revocation-list`",
        ),
        (
            vec!["--token-public-key", &pk, "--token-tier", "a=1", "--token-revocation-reload", "0s"],
            "`token-revocation-reload`",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["--upstream", "http://x"];
        args.extend(extra.iter().copied());
        let e = err(&args);
        assert!(e.contains(want), "{extra:?}: {e}");
        assert!(!e.contains(&pk), "keys are not echoed: {e}");
    }
}

#[test]
fn clap_refuses_non_numbers_with_the_flag_name() {
    let e = err(&["--max-lag-blocks", "ten"]);
    assert!(e.contains("--max-lag-blocks"), "{e}");
}

#[test]
fn toml_file_then_env_then_flags() {
    let dir = tempfile_dir();
    let path = dir.join("gw.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1000\"\nupstream = [\"a=http://127.0.0.1:1\"]\nmax-lag-blocks = 7\nhealth-interval = \"250ms\"\n",
    )
    .unwrap();
    let c = opts(&["--config", path.to_str().unwrap(), "--max-lag-blocks", "9"]);
    assert_eq!(c.startup.listen.to_string(), "127.0.0.1:1000");
    assert_eq!(c.live.max_lag_blocks, 9, "flag wins over file");
    assert_eq!(c.live.health_interval, Duration::from_millis(250));
}

#[test]
fn toml_unknown_or_mistyped_keys_are_named() {
    let dir = tempfile_dir();
    for (text, want) in [
        ("upstreams = [\"http://x\"]\n", "upstreams"),
        ("max-lag-blocks = \"ten\"\n", "max-lag-blocks"),
        ("listen = \n", "listen"),
        ("\u{0}", "config file"),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let e = err(&["--config", path.to_str().unwrap()]);
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let missing = err(&["--config", dir.join("nope.toml").to_str().unwrap()]);
    assert!(missing.contains("cannot read"), "{missing}");
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gw-config-test-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn startup_changes_are_named_and_live_ones_are_not() {
    let a = opts(&["--upstream", "http://x"]);
    let b = opts(&[
        "--upstream",
        "http://y",
        "--listen",
        "127.0.0.1:9",
        "--ws-send-queue",
        "8",
        "--cache-max-bytes",
        "0",
        "--health-interval",
        "3s",
    ]);
    assert_eq!(a.startup.changed_keys(&b.startup), ["listen", "ws-send-queue", "cache-max-bytes (on/off)"]);
    assert!(a.startup.changed_keys(&a.startup).is_empty());
    assert_ne!(a.live, b.live);
}

#[test]
fn an_empty_list_in_the_file_replaces_a_default_list_and_the_charts_file_loads() {
    let c = with_file("upstream = [\"http://x\"]\ndeny-method = []\nallow-method = []\n", &[]).unwrap();
    assert!(c.live.deny_methods.is_empty(), "an empty deny list denies nothing, as before");
    assert_eq!(c.live.allow_methods, ["*"]);
    // What k8s/iotex/templates/gateway-configmap.yaml renders from values.yaml.
    let chart = "admin-listen = \"0.0.0.0:8080\"\nhealth-interval = \"2s\"\nlisten = \"0.0.0.0:15014\"\n\
        log-format = \"json\"\nmax-lag-blocks = 10\nrate-limit-burst = 400\nrate-limit-per-client = 200\n\
        request-timeout = \"10s\"\nrequire-token = false\nshutdown-delay = \"5s\"\nshutdown-grace = \"20s\"\n\
        token-public-key = []\ntoken-tier = []\ntrusted-proxy = []\ntx-broadcast = 2\n\
        upstream-dns = [\"iotex-headless.default.svc:15014\"]\nupstream-dns-interval = \"5s\"\n\
        upstream-dns-health-port = 8080\nupstream-ws-port = 16014\n";
    let c = with_file(chart, &[]).unwrap();
    assert_eq!((c.live.tx_broadcast, c.startup.shutdown_grace), (2, Duration::from_secs(20)));
    assert!(c.live.tokens.is_none());
    let d = c.live.discovery.unwrap();
    assert_eq!((d.interval, d.health_port, d.ws_port), (Duration::from_secs(5), Some(8080), Some(16014)));
    assert!(c.startup.config_file.is_some());
}

#[test]
fn the_max_batch_size_default_is_the_one_in_use() {
    assert_eq!(opts(&["--upstream", "http://x"]).live.max_batch_size, 1000);
}

#[test]
fn the_command_line_definition_passes_clap_own_consistency_checks() {
    // Done once here so the fuzz build can turn them off in clap (fuzz/Cargo.toml), where they ran on every
    // parse of every input.
    <Cli as clap::CommandFactory>::command().debug_assert();
}

/// gRPC: every upstream gets its JSON-RPC host on `upstream-grpc-port` (14014) unless named otherwise; the
/// listener has its own address, distinct from the others.
#[test]
fn grpc_addresses_come_from_the_upstream_set_and_can_be_overridden() {
    let c = opts(&["--upstream", "a=http://user:pw@10.0.0.1:15014", "--upstream", "b=http://[::1]:15014"]);
    assert_eq!(c.startup.grpc_listen.to_string(), "0.0.0.0:14014");
    let grpc: Vec<_> = c.live.upstreams.iter().map(|u| u.grpc_url.as_ref().unwrap().as_str().to_owned()).collect();
    assert_eq!(grpc, ["http://10.0.0.1:14014/", "http://[::1]:14014/"], "no credentials carried over");
    let c = opts(&[
        "--upstream",
        "a=http://10.0.0.1:15014",
        "--upstream",
        "b=http://10.0.0.2:15014",
        "--upstream-grpc",
        "b=http://10.9.9.9:9000",
        "--upstream-grpc-port",
        "4000",
        "--grpc-listen",
        "127.0.0.1:4014",
    ]);
    let grpc: Vec<_> = c.live.upstreams.iter().map(|u| u.grpc_url.as_ref().unwrap().as_str().to_owned()).collect();
    assert_eq!(grpc, ["http://10.0.0.1:4000/", "http://10.9.9.9:9000/"]);
    assert_eq!(c.startup.grpc_listen.to_string(), "127.0.0.1:4014");
    for (args, want) in [
        (&["--upstream", "a=http://x", "--upstream-grpc", "b=http://y:1"][..], "no upstream is named `b`"),
        (&["--upstream", "a=http://x", "--upstream-grpc", "http://y:1"], "`upstream-grpc`"),
        (&["--upstream", "a=http://x", "--upstream-grpc", "a=https://y:1"], "https upstreams are not supported"),
        (&["--upstream", "a=http://x", "--upstream-grpc", "a=http://y:1/path"], "no path, query or credentials"),
        (&["--upstream", "a=http://x", "--upstream-grpc", "a=http://u:p@y:1"], "no path, query or credentials"),
        (&["--upstream", "a=http://x", "--upstream-grpc-port", "0"], "`upstream-grpc-port`"),
        (&["--upstream", "a=http://x", "--grpc-listen", "0.0.0.0:15014"], "`grpc-listen`"),
        (&["--upstream", "a=http://x", "--grpc-listen", "nonsense"], "`grpc-listen`"),
    ] {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

/// gRPC-web CORS: `*` or browser origins (scheme, host, port); anything else is refused by name.
#[test]
fn grpc_web_cors_origins_are_origins_or_a_star() {
    let c = opts(&["--upstream", "a=http://x"]);
    assert!(c.live.grpc_web_cors_origins.is_empty(), "no CORS unless asked");
    let c = opts(&[
        "--upstream",
        "a=http://x",
        "--grpc-web-cors-origin",
        "https://explorer.example.com",
        "--grpc-web-cors-origin",
        "http://localhost:3000",
    ]);
    assert_eq!(c.live.grpc_web_cors_origins, ["https://explorer.example.com", "http://localhost:3000"]);
    assert_eq!(opts(&["--upstream", "a=http://x", "--grpc-web-cors-origin", "*"]).live.grpc_web_cors_origins, ["*"]);
    for bad in [
        "explorer.example.com",
        "https://explorer.example.com/",
        "https://explorer.example.com/app",
        "https://u:p@explorer.example.com",
        "ftp://explorer.example.com",
        "https://",
        "https://explorer.example.com?x=1",
        "",
        "**",
    ] {
        let e = err(&["--upstream", "a=http://x", "--grpc-web-cors-origin", bad]);
        assert!(e.contains("`grpc-web-cors-origin`"), "{bad:?}: {e}");
    }
}

/// The gRPC listener's method globs: allow all by default, deny what is named; a bad glob is refused by name.
#[test]
fn grpc_method_globs_default_to_allow_all_and_refuse_bad_globs() {
    let c = opts(&["--upstream", "a=http://x"]);
    assert_eq!(c.live.grpc_methods, (vec!["*".to_owned()], vec![]));
    let c = opts(&["--upstream", "a=http://x", "--grpc-allow-method", "Get*", "--grpc-deny-method", "SendAction"]);
    assert_eq!(c.live.grpc_methods, (vec!["Get*".to_owned()], vec!["SendAction".to_owned()]));
    let e = err(&["--upstream", "a=http://x", "--grpc-deny-method", "Get[*"]);
    assert!(e.contains("`grpc-deny-method`"), "{e}");
}
