//! Fails when any file a test run captured holds a test secret (see [`iotex_tests::leak_scan`]).
//!
//! `scan-secrets DIR`: DIR is the run directory (`target/test-logs/<run>/`). Exits 1 on a hit, listing each
//! as `FILE:LINE: KIND`, and also when DIR holds no captured file at all (a capture that silently broke
//! would otherwise pass forever).

use iotex_tests::leak_scan;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: scan-secrets DIR (the run's target/test-logs/<run>/)"))?;
    anyhow::ensure!(
        dir.is_dir(),
        "{} is not a directory: did the tests run with IOTEX_TEST_LOG_DIR set?",
        dir.display()
    );
    let secrets = leak_scan::secrets(&dir);
    let (hits, files, lines) = leak_scan::scan(&dir, &secrets)?;
    anyhow::ensure!(files > 0, "nothing was captured under {}: the log capture is broken", dir.display());
    if !hits.is_empty() {
        eprint!("{}", leak_scan::report(&hits));
        anyhow::bail!("{} test secret(s) found in {} captured file(s) under {}", hits.len(), files, dir.display());
    }
    println!(
        "no test secret in {files} captured files ({lines} lines, {} secret forms) under {}",
        secrets.len(),
        dir.display()
    );
    Ok(())
}
