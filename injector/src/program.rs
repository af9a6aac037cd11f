//! The whole command-line program as a function, so tests run it in process: parse → act → exit code.
//!
//! Exit codes: 0 success; 1 the run could not start or finish (endpoint down, chain-id mismatch, set-up or
//! output failure); 2 invalid flags, env or config file; 3 a `--fail-if` condition held.

use crate::error::ConfigError;
use crate::flags::{Command, parse_cli};
use alloy_signer_local::PrivateKeySigner;
use iotex_shared::telemetry::LogFormat;
use std::ffi::OsString;
use std::future::Future;

/// Exit code when a `--fail-if` threshold is breached.
pub const EXIT_THRESHOLD: i32 = 3;

/// Runs the program with `args` (`args[0]` is the program name); returns the exit code.
pub async fn main_with<I, T>(args: I, shutdown: impl Future<Output = ()> + Send) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match parse_cli(args) {
        Ok(c) => c,
        Err(ConfigError::Help(msg)) => {
            print!("{msg}");
            return 0;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match cli.command {
        Command::Keygen(k) => {
            for _ in 0..k.count.min(10_000) {
                let key = PrivateKeySigner::random();
                let a = key.address();
                println!(
                    "private_key 0x{}  address {}  io_address {}",
                    alloy_primitives::hex::encode(key.to_bytes()),
                    crate::address::to_hex(&a),
                    crate::address::to_io(&a)
                );
            }
            0
        }
        Command::Address(a) => match crate::address::parse(&a.address) {
            Ok(addr) => {
                if a.address.trim().to_ascii_lowercase().starts_with("io1") {
                    println!("{}", crate::address::to_hex(&addr));
                } else {
                    println!("{}", crate::address::to_io(&addr));
                }
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
        Command::Merge(m) => merge(&m),
        Command::Run(args) => {
            iotex_shared::telemetry::init(args.output.log_format.unwrap_or_else(LogFormat::detect));
            let cfg = match args.validate() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            match crate::run(cfg, shutdown).await {
                Ok(out) => {
                    print!("{}", crate::report::summary(&out.report));
                    if out.breached.is_empty() {
                        0
                    } else {
                        eprintln!("thresholds breached: {}", out.breached.join(", "));
                        EXIT_THRESHOLD
                    }
                }
                Err(e) => {
                    tracing::error!(kind = e.kind(), error = %e, "run failed");
                    eprintln!("error: {e}");
                    e.exit_code()
                }
            }
        }
    }
}

/// `merge`: the merged report's summary on stdout; 2 when the reports are refused, 1 when writing failed.
fn merge(m: &crate::flags::MergeArgs) -> i32 {
    let (log, plot) = (m.histogram_log.as_deref(), m.plot.as_deref());
    match crate::merge::run(&m.reports, m.allow_missing, &m.out, log, plot) {
        Ok(report) => {
            print!("{}", crate::report::summary(&report));
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
