//! Flags → [`RunConfig`]: what is refused and how, and the layering flags > env > file for each kind of value.

use super::*;
use crate::flags::{Command, parse_cli};
use std::process::Command as Process;

const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn run_args(extra: &[&str]) -> Result<RunConfig, ConfigError> {
    let mut args = vec!["iotex-injector", "run", "--endpoint", "http://127.0.0.1:1"];
    args.extend_from_slice(extra);
    validate(args)
}

fn validate(args: Vec<&str>) -> Result<RunConfig, ConfigError> {
    match parse_cli(args)?.command {
        Command::Run(r) => r.validate(),
        _ => unreachable!(),
    }
}

#[test]
fn a_minimal_run_validates() {
    let c = run_args(&["--key", KEY, "--rate", "50", "--duration", "2s"]).unwrap();
    assert_eq!(c.profile.total(), 100);
    assert_eq!(c.keys.len(), 1);
    assert!(c.confirm);
}

#[test]
fn malformed_flags_are_refused_clearly() {
    let cases: &[(&[&str], &str)] = &[
        (&["--key", KEY, "--rate", "x", "--duration", "2s"], "invalid value"),
        (&["--key", KEY, "--rate", "5"], "--duration"),
        (&["--key", KEY, "--rate", "5", "--duration", "5"], "write it like"),
        (&["--key", KEY, "--steps", "100@1s,oops"], "RATE@DURATION"),
        (&["--key", KEY, "--steps", "100@1s", "--rate", "5"], "not both"),
        (&["--key", "0x1234", "--rate", "5", "--duration", "1s"], "64 hex digits"),
        (&["--key", &"0".repeat(64), "--rate", "5", "--duration", "1s"], "not a valid secp256k1"),
        (&["--mnemonic", "not a real mnemonic at all", "--accounts", "2", "--rate", "5", "--duration", "1s"], "BIP-39"),
        (&["--rate", "5", "--duration", "1s"], "no accounts"),
        (&["--key", KEY, "--rate", "5", "--duration", "1s", "--to", "io1bad"], "--to"),
        (&["--key", KEY, "--rate", "5", "--duration", "1s", "--fail-if", "p99>"], "fail-if"),
        (&["--key", KEY, "--rate", "5", "--duration", "1s", "--fund-from", KEY], "--fund-amount"),
        (&["--key", KEY, "--rate", "5", "--duration", "1s", "--endpoint", "https://x:1"], "https is not supported"),
        (
            &[
                "--mnemonic",
                "test test test test test test test test test test test junk",
                "--derivation-path",
                "44/60",
                "--rate",
                "5",
                "--duration",
                "1s",
            ],
            "must start with m/",
        ),
    ];
    for (args, want) in cases {
        let e = run_args(args).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!e.contains(&KEY[2..]), "a key leaked into an error: {e}");
    }
}

#[test]
fn typed_values_are_refused_at_parse_time_with_the_flag_named() {
    let base = ["--key", KEY, "--rate", "5", "--duration", "1s"];
    let cases: &[(&[&str], &str)] = &[
        (&["--max-in-flight", "0"], "must be at least 1"),
        (&["--chain-id", "0"], "0 is not a chain id"),
        (&["--gas-limit", "0"], "must be above zero"),
        (&["--gas-price", "0"], "must be above zero"),
        (&["--gas-price", "1.5rau"], "more decimals"),
        (&["--value", "1parsec"], "unknown unit"),
        (&["--fund-amount", "1..5"], "not an amount"),
        (&["--mix", "deploy=1"], "unknown action"),
        (&["--confirm-timeout", "soon"], "write it like"),
        (&["--contract", "0x12"], "--contract"),
    ];
    for (extra, want) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let e = run_args(&args).unwrap_err();
        assert_eq!(e.kind(), "cli", "{extra:?}: {e}");
        let e = e.to_string();
        assert!(e.contains(want) && e.contains(extra[0]), "{extra:?}: {e}");
    }
}

#[test]
fn typed_values_reach_the_config() {
    let c = run_args(&[
        "--key",
        KEY,
        "--rate",
        "5",
        "--duration",
        "1s",
        "--gas-price",
        "2gwei",
        "--value",
        "0.5iotx",
        "--gas-limit",
        "50000",
        "--chain-id",
        "4690",
        "--mix",
        "transfer=1,execution=3",
        "--poll-interval",
        "1s500ms",
    ])
    .unwrap();
    assert_eq!(c.gas_price, Some(2_000_000_000));
    assert_eq!(c.value, U256::from(500_000_000_000_000_000u64));
    assert_eq!(c.gas_limit, Some(50_000));
    assert_eq!(c.chain_id, Some(4690));
    assert_eq!(c.mix, Mix { transfer: 1, execution: 3 });
    assert_eq!(c.poll_interval, Duration::from_millis(1500));
}

#[test]
fn the_defaults_are_the_flags_defaults() {
    let parsed = run_args(&["--key", KEY, "--rate", "5", "--duration", "1s"]).unwrap();
    let built = RunConfig::new("http://127.0.0.1:1", parsed.keys.clone(), 5.0, Duration::from_secs(1)).unwrap();
    assert_eq!(parsed.max_in_flight, built.max_in_flight);
    assert_eq!(parsed.account_in_flight, built.account_in_flight);
    assert_eq!(parsed.confirm_timeout, built.confirm_timeout);
    assert_eq!(parsed.drain_timeout, built.drain_timeout);
    assert_eq!(parsed.request_timeout, built.request_timeout);
    assert_eq!(parsed.poll_interval, built.poll_interval);
    assert_eq!((parsed.value, parsed.tx_type, parsed.progress), (built.value, built.tx_type, ProgressMode::Auto));
    // `new` writes the default mix as transfer=1: the same mix as the flag's transfer=100.
    assert!((0..100).all(|s| parsed.mix.pick(s) == built.mix.pick(s)));
}

#[test]
fn help_has_sections_and_prints_the_real_defaults() {
    let Err(ConfigError::Help(help)) = parse_cli(["iotex-injector", "run", "--help"]) else {
        panic!("--help is not help");
    };
    for heading in ["Endpoints:", "Rate:", "Accounts:", "Actions:", "Confirmation and shutdown:", "Output:"] {
        assert!(help.contains(heading), "{heading} missing from\n{help}");
    }
    for default in [
        "[default: 1024]",
        "[default: 30s]",
        "[default: 10s]",
        "[default: 200ms]",
        "[default: transfer=100]",
        "[default: legacy]",
        "[default: auto]",
        "[default: m/44'/60'/0'/0]",
    ] {
        assert!(help.contains(default), "{default} missing from\n{help}");
    }
    // The per-kind gas limits are prose (no single default); they must name the constants the code uses.
    for gas in [defaults::TRANSFER_GAS, defaults::EXECUTION_GAS] {
        assert!(help.contains(&gas.to_string()), "{gas} missing from\n{help}");
    }
}

#[test]
fn mnemonic_derives_the_dev_accounts() {
    let c = run_args(&[
        "--mnemonic",
        "test test test  test test test test test test test test junk",
        "--accounts",
        "2",
        "--rate",
        "1",
        "--duration",
        "1s",
    ])
    .unwrap();
    assert_eq!(c.keys[0].address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    assert_eq!(c.keys[1].address().to_string(), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
}

#[test]
fn toml_fills_what_flags_do_not_set_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inj.toml");
    std::fs::write(
        &path,
        format!(
            "key = [\"{KEY}\"]\nrate = 7.5\nduration = \"2s\"\nno_confirm = true\nmax-in-flight = 9\nmix = \"transfer=1\"\n"
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let c = run_args(&["--config", p, "--max-in-flight", "3"]).unwrap();
    assert_eq!(c.profile.total(), 15);
    assert!(!c.confirm);
    assert_eq!(c.max_in_flight, 3, "the command line wins over the file");
    std::fs::write(&path, "rate = 1\nbogus = 2\n").unwrap();
    let e = run_args(&["--config", p]).unwrap_err().to_string();
    assert!(e.contains("unknown key `bogus`"), "{e}");
}

// Layering, one test per kind of value. clap reads the process environment and `set_var` is unsafe (the
// crate forbids it), so each test re-runs itself in a child process with the env var set; the child does
// the assertions, the parent checks that it passed.

const CHILD: &str = "IOTEX_INJECTOR_TEST_LAYERING_CHILD";

/// In the parent: runs test `name` again in a child with `env` (and no other `IOTEX_INJECTOR_` variable)
/// and asserts it passed; returns false. In the child: returns true, so the caller runs its assertions.
fn in_child_with_env(name: &str, env: &[(&str, &str)]) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let mut child = Process::new(std::env::current_exe().unwrap());
    child.args([&format!("run_config::tests::{name}"), "--exact", "--nocapture"]).env(CHILD, "1");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("IOTEX_INJECTOR_")) {
        child.env_remove(k);
    }
    child.envs(env.iter().copied());
    let out = child.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    false
}

/// A run with `file` as its config file, plus `flags`, validated.
fn layered(file: &str, flags: &[&str]) -> RunConfig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layers.toml");
    std::fs::write(&path, format!("key = [\"{KEY}\"]\nrate = 1\nduration = \"1s\"\n{file}")).unwrap();
    let mut args = vec!["iotex-injector", "run", "--config", path.to_str().unwrap()];
    args.extend_from_slice(flags);
    validate(args).unwrap()
}

#[test]
fn a_string_layers_flag_over_env_over_file() {
    if !in_child_with_env("a_string_layers_flag_over_env_over_file", &[("IOTEX_INJECTOR_AUTH_TOKEN", "env")]) {
        return;
    }
    let file = "endpoint = [\"http://127.0.0.1:1\"]\nauth-token = \"file\"\n";
    assert_eq!(layered(file, &[]).auth_token.as_deref(), Some("env"), "env over file");
    assert_eq!(layered(file, &["--auth-token", "flag"]).auth_token.as_deref(), Some("flag"), "flag over env");
}

#[test]
fn a_number_layers_flag_over_env_over_file() {
    if !in_child_with_env("a_number_layers_flag_over_env_over_file", &[("IOTEX_INJECTOR_MAX_IN_FLIGHT", "20")]) {
        return;
    }
    let file = "endpoint = [\"http://127.0.0.1:1\"]\nmax-in-flight = 30\n";
    assert_eq!(layered(file, &[]).max_in_flight, 20, "env over file");
    assert_eq!(layered(file, &["--max-in-flight", "10"]).max_in_flight, 10, "flag over env");
}

#[test]
fn a_duration_layers_flag_over_env_over_file() {
    if !in_child_with_env("a_duration_layers_flag_over_env_over_file", &[("IOTEX_INJECTOR_CONFIRM_TIMEOUT", "20s")]) {
        return;
    }
    let file = "endpoint = [\"http://127.0.0.1:1\"]\nconfirm-timeout = \"30s\"\n";
    assert_eq!(layered(file, &[]).confirm_timeout, Duration::from_secs(20), "env over file");
    let c = layered(file, &["--confirm-timeout", "10s"]);
    assert_eq!(c.confirm_timeout, Duration::from_secs(10), "flag over env");
}

#[test]
fn a_list_layers_flag_over_env_over_file_as_a_whole() {
    let env = [("IOTEX_INJECTOR_ENDPOINT", "http://env:1,http://env:2")];
    if !in_child_with_env("a_list_layers_flag_over_env_over_file_as_a_whole", &env) {
        return;
    }
    let file = "endpoint = [\"http://file:1\", \"http://file:2\", \"http://file:3\"]\n";
    assert_eq!(layered(file, &[]).endpoints, ["http://env:1", "http://env:2"], "env over file, not appended");
    let c = layered(file, &["--endpoint", "http://flag:1"]);
    assert_eq!(c.endpoints, ["http://flag:1"], "flag over env, not appended");
}

#[test]
fn a_switch_in_the_env_turns_off_the_files_switch() {
    if !in_child_with_env("a_switch_in_the_env_turns_off_the_files_switch", &[("IOTEX_INJECTOR_NO_CONFIRM", "false")]) {
        return;
    }
    let file = "endpoint = [\"http://127.0.0.1:1\"]\nno-confirm = true\n";
    assert!(layered(file, &[]).confirm, "env `false` over file `true`");
    assert!(!layered(file, &["--no-confirm"]).confirm, "flag over env `false`");
}

#[test]
fn a_switch_in_the_env_turns_on_over_the_files_false() {
    if !in_child_with_env("a_switch_in_the_env_turns_on_over_the_files_false", &[("IOTEX_INJECTOR_NO_CONFIRM", "true")])
    {
        return;
    }
    let file = "endpoint = [\"http://127.0.0.1:1\"]\nno-confirm = false\n";
    assert!(!layered(file, &[]).confirm, "env `true` over file `false`");
}

#[test]
fn a_bad_file_value_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inj.toml");
    let p = path.to_str().unwrap();
    for (file, want) in [
        ("max-in-flight = 0\n", "must be at least 1"),
        ("confirm-timeout = \"5\"\n", "write it like"),
        ("no-confirm = \"yes\"\n", "is a switch"),
        ("max-in-fligth = 3\n", "did you mean `max-in-flight`"),
    ] {
        std::fs::write(&path, format!("key = [\"{KEY}\"]\nrate = 1\nduration = \"1s\"\n{file}")).unwrap();
        let e = run_args(&["--config", p]).unwrap_err();
        assert_eq!(e.kind(), "config_file", "{file}: {e}");
        let e = e.to_string();
        assert!(e.contains(p) && e.contains(want), "{file}: {e}");
        assert!(!e.contains(&KEY[2..]), "a key leaked into an error: {e}");
    }
}

#[test]
fn a_shard_takes_every_nth_account_and_tick() {
    let m = "test test test test test test test test test test test junk";
    let base = ["--mnemonic", m, "--accounts", "8", "--rate", "100", "--duration", "1s"];
    let whole = run_args(&base).unwrap();
    let mut args = base.to_vec();
    args.extend(["--shard", "1/4", "--run-id", "soak-7"]);
    let c = run_args(&args).unwrap();
    assert_eq!((c.shard.to_string(), c.run_id.as_str()), ("1/4".to_owned(), "soak-7"));
    assert_eq!(c.run_id_source, RunIdSource::Given);
    assert_eq!(c.profile.total(), 25);
    let addr = |k: &PrivateKeySigner| k.address();
    assert_eq!(c.keys.iter().map(addr).collect::<Vec<_>>(), vec![addr(&whole.keys[1]), addr(&whole.keys[5])]);
    assert_eq!(whole.shard, Shard::WHOLE);
}

#[test]
fn shards_that_cannot_work_are_refused() {
    let m = "test test test test test test test test test test test junk";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--mnemonic", m, "--accounts", "2", "--rate", "10", "--duration", "1s", "--shard", "0/4"],
            "at least one account per shard",
        ),
        (&["--mnemonic", m, "--accounts", "4", "--rate", "2", "--duration", "1s", "--shard", "3/4"], "gets no tick"),
        (
            &[
                "--fund-from",
                KEY,
                "--fund-amount",
                "1",
                "--accounts",
                "4",
                "--rate",
                "10",
                "--duration",
                "1s",
                "--shard",
                "0/2",
            ],
            "fund",
        ),
        (&["--key", KEY, "--rate", "10", "--duration", "1s", "--shard", "2/2"], "below N"),
        (&["--key", KEY, "--rate", "10", "--duration", "1s", "--shard", "x"], "I/N"),
        (&["--key", KEY, "--rate", "10", "--duration", "1s", "--run-id", "a b"], "run id"),
    ];
    for (args, want) in cases {
        let e = run_args(args).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn the_run_id_and_shard_come_from_the_environment_too() {
    let env = [("IOTEX_INJECTOR_SHARD", "1/2"), ("JOB_NAME", "load-from-job")];
    if !in_child_with_env("the_run_id_and_shard_come_from_the_environment_too", &env) {
        return;
    }
    let c = run_args(&["--key", KEY, "--key", KEY, "--rate", "10", "--duration", "1s"]).unwrap();
    assert_eq!(c.shard, Shard { index: 1, count: 2 });
    assert_eq!((c.run_id.as_str(), c.run_id_source), ("load-from-job", RunIdSource::JobName));
}
