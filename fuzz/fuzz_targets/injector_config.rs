//! The injector's config loader (`injector/src/flags.rs` over `shared/src/layered.rs`, then
//! `run_config.rs`): `iotex-injector run --config FILE` layered under `IOTEX_INJECTOR_*` env vars, parsed by
//! `parse_cli` and validated by `RunArgs::validate`, as `program.rs` does before a run.
//!
//! Input: the file's bytes, then optionally a NUL and env lines `NAME=VALUE`, each set as
//! `IOTEX_INJECTOR_NAME` for this input only. One bound that is the harness's, not the product's:
//! `accounts` is capped at 8 before validation, because deriving or generating millions of accounts is
//! slow by design (an operator asks for it), not a bug, and would only make libFuzzer report timeouts.
//! Checked beyond "no panic, no hang": no error message repeats a private key or the mnemonic given.

#![no_main]

use iotex_fuzz::{EnvVars, Scratch, split_file_env};
use iotex_injector::flags::{Command, parse_cli};
use libfuzzer_sys::fuzz_target;
use std::num::NonZeroU32;
use std::sync::LazyLock;

static FILE: LazyLock<Scratch> = LazyLock::new(|| Scratch::new("injector-config"));

/// Panics if `message` repeats `secret` (trimmed; ignored when too short to be one) more often than the
/// input's other values hold it: the fuzzer learns to write a secret's text into other fields too (an
/// `endpoint` of `CCCC…` beside a mnemonic of `CCCC…`), and an error may quote those fields. `own` is the
/// secret's own value as given, whose copy of it is the one that must never come back.
fn assert_not_echoed(message: &str, secret: &str, input: &str, own: &str) {
    let secret = secret.trim();
    let secret = secret.strip_prefix("0x").unwrap_or(secret);
    if secret.len() < 16 {
        return;
    }
    let elsewhere = input.matches(secret).count().saturating_sub(own.matches(secret).count());
    if message.matches(secret).count() > elsewhere {
        panic!("the error message repeats a secret: {message}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, env) = split_file_env(data);
    let path = FILE.write(file);
    let _env = EnvVars::set("IOTEX_INJECTOR_", env);
    let argv = ["iotex-injector".as_ref(), "run".as_ref(), "--config".as_ref(), path.as_os_str()];
    let Ok(cli) = parse_cli(argv) else { return };
    let Command::Run(mut args) = cli.command else { return };
    args.accounts.accounts = args.accounts.accounts.map(|n| n.min(NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN)));
    if let Err(e) = args.validate() {
        let message = e.to_string();
        let input = String::from_utf8_lossy(data);
        let a = &args.accounts;
        for secret in a.key.iter().chain(a.fund_from.iter()).chain(a.mnemonic.iter()) {
            assert_not_echoed(&message, secret, &input, secret);
        }
        if let Some(m) = &a.mnemonic {
            assert_not_echoed(&message, &m.split_whitespace().collect::<Vec<_>>().join(" "), &input, m);
        }
    }
});
