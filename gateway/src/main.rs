//! `iotex-gateway` entry point: parse the command line, load the config, bind, run until a signal.
//!
//! Exit codes: 0 after a clean shutdown or a valid `check-config`; 1 when a listener cannot be bound or the
//! gateway fails at start; 2 for an invalid configuration (nothing is bound in that case). `token …` exits as
//! documented in [`iotex_gateway::token_cmd`].

use clap::Parser;
use iotex_gateway::config::{self, Cli, Command, Config, ConfigError};
use iotex_gateway::{Listeners, run};
use iotex_shared::duration;
use iotex_shared::layered::Source;
use iotex_shared::telemetry::{self, LogFormat};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: each proxied call allocates and frees a few dozen blocks
/// (request and answer buffers, header maps, the call's future), and glibc's malloc/free were ~10 % of a
/// call's instructions (`scripts/bench-instructions.sh`; figures in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Parsed without the config file first: `token …` must not depend on the serving config, and a bad flag
    // is clap's to report (exit 2, or 0 for --help).
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| e.exit());
    match cli.command {
        Some(Command::CheckConfig { file }) => match config::load_source(&Source::new(argv).with_file(file)) {
            Ok(cfg) => {
                print_summary(&cfg);
                ExitCode::SUCCESS
            }
            Err(e) => invalid(&e),
        },
        Some(Command::Token { command }) => {
            let code = iotex_gateway::token_cmd::run(
                command,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            ExitCode::from(code)
        }
        None => serve(&Source::new(argv)),
    }
}

fn invalid(e: &ConfigError) -> ExitCode {
    eprintln!("iotex-gateway: invalid configuration: {e}");
    ExitCode::from(2)
}

fn print_summary(cfg: &Config) {
    println!("configuration is valid");
    println!("  listen            {}", cfg.startup.listen);
    println!("  admin-listen      {}", cfg.startup.admin_listen);
    println!("  grpc-listen       {}", cfg.startup.grpc_listen);
    for u in &cfg.live.upstreams {
        let health = u.health_url.as_ref().map(config::redact).unwrap_or_default();
        let ws = u.ws_url.as_ref().map(|w| format!(" ws {}", config::redact(w))).unwrap_or_default();
        let grpc = u.grpc_url.as_ref().map(|g| format!(" grpc {g}")).unwrap_or_default();
        println!("  upstream          {}={} {}{}{}", u.name, config::redact(&u.url), health, ws, grpc);
    }
    println!("  health-interval   {}", duration::format(cfg.live.health_interval));
    println!("  max-lag-blocks    {} (readmit at {})", cfg.live.max_lag_blocks, cfg.live.readmit_lag_blocks);
    println!("  request-timeout   {}", duration::format(cfg.live.request_timeout));
    match cfg.live.rate_limit {
        Some(r) => println!("  rate-limit        {}/s per client, burst {}", r.per_second, r.burst),
        None => println!("  rate-limit        off"),
    }
    println!("  tx-broadcast      {}", cfg.live.tx_broadcast);
    match &cfg.live.tokens {
        Some(t) => {
            let tiers = t.tiers.iter().map(|t| format!("{}={}/{}", t.name, t.per_second, t.burst)).collect::<Vec<_>>();
            println!(
                "  tokens            {} key(s), tiers {}, {}",
                t.public_keys.len(),
                tiers.join(" "),
                if t.require { "required" } else { "optional" }
            );
            if let Some(p) = &t.revocation_list {
                println!(
                    "  revocation-list   {} (checked every {})",
                    p.display(),
                    duration::format(t.revocation_reload)
                );
            }
        }
        None => println!("  tokens            off"),
    }
}

fn serve(source: &Source) -> ExitCode {
    let cfg = match config::load_source(source) {
        Ok(c) => c,
        Err(e) => return invalid(&e),
    };
    telemetry::init(cfg.startup.log_format.unwrap_or_else(LogFormat::detect));
    // The control runtime: accept loops, health probes, admin. JSON-RPC and gRPC connections are served on
    // their own threads (`server::Shards`, `--worker-threads`), so one thread is plenty here.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iotex-gateway: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        // Handlers first: once a listener is reachable, SIGTERM must mean "drain", never the default "die".
        let signal = iotex_shared::shutdown::install();
        let rpc = match bind(cfg.startup.listen, "--listen").await {
            Ok(l) => l,
            Err(msg) => return fail(&msg),
        };
        let admin = match bind(cfg.startup.admin_listen, "--admin-listen").await {
            Ok(l) => l,
            Err(msg) => return fail(&msg),
        };
        let grpc = match bind(cfg.startup.grpc_listen, "--grpc-listen").await {
            Ok(l) => Some(l),
            Err(msg) => return fail(&msg),
        };
        match run(cfg, Listeners { rpc, admin, grpc }, signal).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        }
    })
}

fn fail(msg: &str) -> ExitCode {
    tracing::error!("{msg}");
    eprintln!("iotex-gateway: {msg}");
    ExitCode::from(1)
}

async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("address {addr} is in use; choose another with {flag}"),
        std::io::ErrorKind::PermissionDenied => {
            format!("no permission to bind {addr}; choose a port above 1023 with {flag}")
        }
        _ => format!("cannot bind {addr} ({flag}): {e}"),
    })
}
