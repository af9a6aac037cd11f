// Tests may unwrap: a failed set-up should stop the test at its line.
#![allow(clippy::unwrap_used)]

use super::*;
use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use std::time::Duration;

fn wait(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}

/// Env names are unique to this test module; the env cases set them only in a child process.
#[derive(Debug, Parser)]
#[command(name = "t")]
struct T {
    #[arg(long, env = "LAYERED_T_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "LAYERED_T_NAME", default_value = "dflt")]
    name: String,
    #[arg(long, env = "LAYERED_T_COUNT", default_value_t = 1)]
    count: u32,
    #[arg(long, env = "LAYERED_T_WAIT", default_value = "1s", value_parser = keyed(wait))]
    wait: Duration,
    #[arg(long, env = "LAYERED_T_PEER", value_delimiter = ',')]
    peer: Vec<String>,
    #[arg(long, env = "LAYERED_T_GLOB", value_delimiter = ',', default_values = ["*"])]
    glob: Vec<String>,
    #[arg(long, env = "LAYERED_T_STRICT", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
        default_missing_value = "true", default_value = "false")]
    strict: bool,
    #[arg(long, env = "LAYERED_T_LOOSE", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
        default_missing_value = "true", default_value = "true")]
    loose: bool,
    #[arg(long)]
    verbose: bool,
    #[command(subcommand)]
    sub: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    Check { file: PathBuf },
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, required = true)]
    endpoint: Vec<String>,
    #[arg(long, default_value_t = 1)]
    rate: u32,
}

fn tmp(body: &str) -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.toml");
    std::fs::write(&p, body).unwrap();
    let s = p.to_str().unwrap().to_owned();
    (d, s)
}

fn t(args: &[&str]) -> Result<Layered<T>, LayerError> {
    let mut argv = vec!["t"];
    argv.extend_from_slice(args);
    parse::<T, _, _>(argv)
}

const FILE: &str = "name = \"file\"\ncount = 3\nwait = \"3s\"\npeer = [\"f1\", \"f2\"]\nstrict = true\nloose = false\n";

#[derive(Debug, PartialEq)]
struct Seen {
    name: String,
    count: u32,
    wait: Duration,
    peer: Vec<String>,
    strict: bool,
    loose: bool,
}

fn seen(l: &Layered<T>) -> Seen {
    let v = &l.value;
    Seen { name: v.name.clone(), count: v.count, wait: v.wait, peer: v.peer.clone(), strict: v.strict, loose: v.loose }
}

fn want(name: &str, count: u32, wait_s: u64, peer: &[&str], strict: bool, loose: bool) -> Seen {
    Seen {
        name: name.into(),
        count,
        wait: Duration::from_secs(wait_s),
        peer: peer.iter().map(|s| (*s).to_owned()).collect(),
        strict,
        loose,
    }
}

const FLAGS: &[&str] = &["--name", "flag", "--count", "5", "--wait", "5s", "--peer", "x1", "--strict=false", "--loose"];

#[test]
fn defaults_without_a_file() {
    let l = t(&[]).unwrap();
    assert_eq!(seen(&l), want("dflt", 1, 1, &[], false, true));
    assert!(l.file.is_none() && !l.is_set("name"));
    assert_eq!(l.value.glob, ["*"]);
    let l = t(&["--strict", "--loose=false"]).unwrap();
    assert!(l.value.strict && !l.value.loose, "a bare switch is on, `=false` turns it off");
}

#[test]
fn file_only_fills_every_kind() {
    let (_d, p) = tmp(FILE);
    let l = t(&["--config", &p]).unwrap();
    assert_eq!(seen(&l), want("file", 3, 3, &["f1", "f2"], true, false));
    assert!(l.is_set("count") && !l.is_set("glob"));
    assert_eq!(l.file.as_deref(), Some(Path::new(&p)));
}

#[test]
fn flags_win_over_the_file_for_every_kind() {
    let (_d, p) = tmp(FILE);
    let mut args = vec!["--config", p.as_str()];
    args.extend_from_slice(FLAGS);
    let l = t(&args).unwrap();
    assert_eq!(seen(&l), want("flag", 5, 5, &["x1"], false, true));
}

/// Runs this test binary again for `test` with `env` set (the workspace forbids `unsafe`, so a test cannot
/// `set_var`); true in the child, which then does the checks.
fn in_child_with_env(test: &str, env: &[(&str, &str)]) -> bool {
    if std::env::var_os("LAYERED_T_CHILD").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("LAYERED_T_CHILD", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child did not run the test:\n{text}");
    false
}

const ENV: &[(&str, &str)] = &[
    ("LAYERED_T_NAME", "env"),
    ("LAYERED_T_COUNT", "4"),
    ("LAYERED_T_WAIT", "4s"),
    ("LAYERED_T_PEER", "e1,e2"),
    ("LAYERED_T_STRICT", "false"),
    ("LAYERED_T_LOOSE", "true"),
];

#[test]
fn env_wins_over_the_file_and_flags_over_env_for_every_kind() {
    if !in_child_with_env("layered::tests::env_wins_over_the_file_and_flags_over_env_for_every_kind", ENV) {
        return;
    }
    let (_d, p) = tmp(FILE);
    let l = t(&["--config", &p]).unwrap();
    assert_eq!(seen(&l), want("env", 4, 4, &["e1", "e2"], false, true), "env over file");
    let mut args = vec!["--config", p.as_str()];
    args.extend_from_slice(FLAGS);
    let l = t(&args).unwrap();
    assert_eq!(seen(&l), want("flag", 5, 5, &["x1"], false, true), "flag over env over file");
    // A switch: the file turns it on, env off, a flag on again.
    let (_d2, p2) = tmp("strict = true\nloose = false\n");
    assert!(!t(&["--config", &p2]).unwrap().value.strict);
    assert!(t(&["--config", &p2, "--strict"]).unwrap().value.strict);
}

#[test]
fn the_file_may_be_named_by_env() {
    let (_d, p) = tmp("count = 9\n");
    if !in_child_with_env("layered::tests::the_file_may_be_named_by_env", &[("LAYERED_T_CONFIG", &p)]) {
        return;
    }
    assert_eq!(t(&[]).unwrap().value.count, 9);
}

#[test]
fn bad_files_name_the_file_and_the_key() {
    let cases: &[(&str, &str)] = &[
        ("cuont = 3\n", "key `cuont`: unknown key (did you mean `count`?)"),
        ("zzz = 3\n", "key `zzz`: unknown key; keys are"),
        ("config = \"x\"\n", "key `config`"),
        ("count = \"many\"\n", "key `count`: invalid value 'many' for '--count"),
        ("count = -1\n", "key `count`"),
        ("wait = \"5\"\n", "key `wait`: invalid value for --wait (config key `wait`)"),
        ("wait = 5\n", "key `wait`"),
        ("peer = \"p\"\n", "key `peer`: is a list"),
        ("peer = [[\"p\"]]\n", "key `peer`: lists do not nest"),
        ("name = [\"a\"]\n", "key `name`: takes one value"),
        ("name = { a = 1 }\n", "key `name`: must be a plain value"),
        ("name = 1979-05-27T07:32:00Z\n", "key `name`: a TOML date-time"),
        ("verbose = \"yes\"\n", "key `verbose`: is a switch"),
        ("strict = \"maybe\"\n", "key `strict`"),
        ("count = 1\ncount = 2\n", "config file"),
        ("name = \"a\"\nna_me = \"b\"\n", "config file"),
        ("count = 1\n[[[\n", "config file"),
        ("\u{0}", "config file"),
    ];
    for (body, want) in cases {
        let (_d, p) = tmp(body);
        let e = t(&["--config", &p]).unwrap_err().to_string();
        assert!(e.contains(want), "{body:?}: {e}");
        assert!(e.contains(&p), "{body:?}: names the file: {e}");
    }
}

#[test]
fn hostile_files_are_errors_not_crashes() {
    let huge = "# x\n".repeat(((MAX_FILE_BYTES / 4) + 1) as usize);
    let deep = format!("a = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let deep_tables = format!("{}\n", (0..10_000).map(|i| format!("[t{i}]")).collect::<String>());
    let inline = format!("a = {}1{}\n", "{ b = ".repeat(50_000), " }".repeat(50_000));
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    for (name, body) in [("huge", huge.into_bytes()), ("deep", deep.into_bytes()), ("tables", deep_tables.into_bytes())]
        .into_iter()
        .chain([("inline", inline.into_bytes()), ("binary", binary)])
    {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.toml");
        std::fs::write(&p, body).unwrap();
        let e = t(&["--config", p.to_str().unwrap()]).unwrap_err().to_string();
        assert!(e.contains("config file"), "{name}: {e}");
    }
    let e = t(&["--config", "/nonexistent/t.toml"]).unwrap_err().to_string();
    assert!(e.starts_with("cannot read config file /nonexistent/t.toml"), "{e}");
}

#[test]
fn command_line_errors_stay_clap_errors() {
    let e = t(&["--count", "x"]).unwrap_err();
    assert!(matches!(&e, LayerError::Cli(c) if c.kind() == clap::error::ErrorKind::ValueValidation), "{e}");
    assert!(e.to_string().contains("--count"), "{e}");
    let e = t(&["--help"]).unwrap_err();
    assert!(matches!(&e, LayerError::Cli(c) if c.kind() == clap::error::ErrorKind::DisplayHelp));
    assert!(e.to_string().contains("[default: 1s]"), "clap prints the real defaults: {e}");
}

#[test]
fn an_empty_list_replaces_a_default_list() {
    let (_d, p) = tmp("glob = []\npeer = []\n");
    let l = t(&["--config", &p]).unwrap();
    assert_eq!(l.value.glob, [""], "one empty value: the binary reads it as none");
    assert!(l.value.peer.is_empty());
}

#[test]
fn top_level_file_values_stay_top_level_before_a_subcommand() {
    let (_d, p) = tmp("count = 7\nstrict = true\n");
    let l = Source::new(["t", "--name", "n", "check", "other.toml"]).with_file(&p).parse::<T>().unwrap();
    assert_eq!((l.value.count, l.value.strict, l.value.name.as_str()), (7, true, "n"));
    assert!(matches!(l.value.sub, Some(Sub::Check { .. })));
}

#[test]
fn a_subcommand_config_fills_that_subcommand_and_required_args_may_come_from_it() {
    let (_d, p) = tmp("endpoint = [\"http://a\"]\nrate = 4\n");
    let l = parse::<T, _, _>(["t", "run", "--config", &p]).unwrap();
    let Some(Sub::Run(r)) = &l.value.sub else { panic!("{:?}", l.value.sub) };
    assert_eq!((r.endpoint.as_slice(), r.rate), (["http://a".to_owned()].as_slice(), 4));
    assert!(l.is_set("rate"));
    let e = parse::<T, _, _>(["t", "run"]).unwrap_err().to_string();
    assert!(e.contains("--endpoint"), "still required without the file: {e}");
    let (_d2, p2) = tmp("count = 1\n");
    let e = parse::<T, _, _>(["t", "run", "--config", &p2]).unwrap_err().to_string();
    assert!(e.contains("key `count`: unknown key"), "{e}");
}

#[test]
fn reparsing_the_same_source_reads_the_changed_file() {
    let (_d, p) = tmp("count = 2\n");
    let l = t(&["--config", &p, "--name", "kept"]).unwrap();
    std::fs::write(&p, "count = 8\n").unwrap();
    let again = l.source.parse::<T>().unwrap();
    assert_eq!((again.value.count, again.value.name.as_str()), (8, "kept"));
}

#[test]
fn suggestions_are_close_names_only() {
    let cmd = T::command();
    assert_eq!(suggest("cuont", &cmd), " (did you mean `count`?)");
    assert_eq!(suggest("nmae", &cmd), " (did you mean `name`?)");
    assert_eq!(suggest("entirely-unrelated", &cmd), "");
    assert!(names_flag("for '--peer <P>'", "peer"));
    assert!(!names_flag("for '--peer-x <P>'", "peer"));
}

/// A command without any `config` arg on argv's path (the injector's `keygen`) parses with no file; it used
/// to panic on the unknown id.
#[test]
fn a_path_without_a_config_arg_has_no_file() {
    #[derive(Debug, Parser)]
    #[command(name = "u")]
    struct U {
        #[command(subcommand)]
        sub: USub,
    }
    #[derive(Debug, Subcommand)]
    enum USub {
        Keygen {
            #[arg(long, default_value_t = 1)]
            count: u32,
        },
        Run {
            #[arg(long)]
            config: Option<PathBuf>,
        },
    }
    let l = parse::<U, _, _>(["u", "keygen", "--count", "3"]).unwrap();
    assert!(l.file.is_none());
    assert!(matches!(l.value.sub, USub::Keygen { count: 3 }));
    let (_d, path) = tmp("");
    let l = parse::<U, _, _>(["u", "run", "--config", &path]).unwrap();
    assert_eq!(l.file.as_deref(), Some(Path::new(&path)));
}
