//! The gateway's config loader (`gateway/src/config.rs` over `shared/src/layered.rs`): a TOML file named by
//! `--config`, layered under `IOTEX_GATEWAY_*` env vars and validated into a `Config`, exactly as `main.rs`
//! and a reload do (`config::load`).
//!
//! Input: the file's bytes, then optionally a NUL and env lines `NAME=VALUE`, each set as
//! `IOTEX_GATEWAY_NAME` for this input only (`iotex_fuzz::EnvVars`). The command line names only the file,
//! so a file or env var must supply an upstream. Checked beyond "no panic, no hang": a config that loads
//! loads again to the same result (the loader reads nothing that changes between reads), which is what a
//! reload relies on to apply only what changed.

#![no_main]

use iotex_fuzz::{EnvVars, Scratch, split_file_env};
use iotex_gateway::config;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static FILE: LazyLock<Scratch> = LazyLock::new(|| Scratch::new("gateway-config"));

fuzz_target!(|data: &[u8]| {
    let (file, env) = split_file_env(data);
    let path = FILE.write(file);
    let _env = EnvVars::set("IOTEX_GATEWAY_", env);
    let argv = ["iotex-gateway".as_ref(), "--config".as_ref(), path.as_os_str()];
    let first = config::load(argv);
    if let Ok(first) = first {
        let second = match config::load(argv) {
            Ok(c) => c,
            Err(e) => panic!("a config that loaded once is refused the second time: {e}"),
        };
        assert_eq!(format!("{first:?}"), format!("{second:?}"), "the same sources load differently");
    }
});
