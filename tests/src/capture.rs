//! What the suite's processes write, kept per run, and the scan that proves no test secret is in it.
//!
//! The gateway and the injector run inside the test processes, so their log lines are the test process's
//! tracing events: [`init_tracing`] installs a subscriber that writes them to the terminal as the product's
//! own does *and* as JSON lines to `<run dir>/<pid>.tracing.jsonl` (at `debug` for the workspace's crates, so
//! a secret logged at a level operators rarely turn on is caught too). Child processes a test starts have
//! their stdout and stderr teed with [`tee_child`]; every `/metrics` scrape made through
//! [`crate::http::RawClient`] is appended to `<run dir>/<pid>.metrics.prom` ([`tee_metrics`]).
//!
//! The run directory is `IOTEX_TEST_LOG_DIR` when set (`scripts/test.sh` sets it to
//! `target/test-logs/<run>/`), else `target/test-logs/<nextest run id>/`. Secrets known only at run time
//! (the access tokens and token signing keys tests mint, the IoTeX cluster's funded keys) are registered with
//! [`register_secret`] into `<run dir>/secrets/`, which [`crate::leak_scan`] reads and skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The run directory (created on first use); `None` when it cannot be created (nothing is captured then,
/// and the scan of that run finds its directory missing and fails).
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = match std::env::var_os("IOTEX_TEST_LOG_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let run = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| "adhoc".to_owned());
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs").join(run)
            }
        };
        std::fs::create_dir_all(d.join("secrets")).ok().map(|()| d)
    })
    .as_deref()
}

/// A file in the run directory named for this process, opened for appending.
fn own_file(suffix: &str) -> Option<std::fs::File> {
    let path = dir()?.join(format!("{}.{suffix}", std::process::id()));
    std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
}

/// Installs the test process's tracing subscriber (once; later calls do nothing): the terminal as the
/// product's `telemetry::init` writes it, plus every event as JSON into the run directory.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let term_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let term = tracing_subscriber::fmt::layer().with_writer(std::io::stdout).with_filter(term_filter);
        let file = own_file("tracing.jsonl").map(|f| {
            let filter = EnvFilter::new("info,iotex_gateway=debug,iotex_injector=debug,iotex_shared=debug");
            tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(Mutex::new(f)).with_filter(filter)
        });
        // Fails only when a subscriber is already set (e.g. a product `init` ran first): keep that one.
        let _ = tracing_subscriber::registry().with(term).with(file).try_init();
    });
}

/// Appends a `/metrics` scrape of `url` to this process's metrics file.
pub fn tee_metrics(url: &str, body: &[u8]) {
    if let Some(mut f) = own_file("metrics.prom") {
        let _ = writeln!(f, "# scrape of {url}");
        let _ = f.write_all(body);
        let _ = f.write_all(b"\n");
    }
}

/// Records a secret known only at run time (a minted token, a generated key) for the end-of-suite scan.
pub fn register_secret(kind: &str, value: &str) {
    if value.is_empty() || value.contains('\n') {
        return;
    }
    let Some(d) = dir() else { return };
    let path = d.join("secrets").join(format!("{}.txt", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{kind}\t{value}");
    }
}

/// Copies a child's output stream into `<run dir>/<pid>.<name>.log` and on to this process's stderr (so a
/// failing test still shows it), until the stream ends.
pub fn tee_child<R>(name: &str, mut stream: R) -> tokio::task::JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let mut file = own_file(&format!("{name}.log"));
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(chunk);
            }
            let _ = std::io::stderr().write_all(chunk);
        }
    })
}
