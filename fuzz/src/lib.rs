//! Helpers the fuzz targets share: the config loaders read a file and the environment, so a target writes
//! its input to a scratch file and sets env vars from it, exactly as an operator's file and pod spec would.
//!
//! Targets (`fuzz_targets/`, run by `scripts/fuzz.sh`; what each checks is in its own `//!`):
//! `jsonrpc_body`, `token`, `gateway_config`, `injector_config`, `injector_keys`, `native_action`.

use std::path::PathBuf;

/// A scratch file owned by this process (libFuzzer's `-jobs` runs several processes), rewritten for each
/// input. The targets hold it in a static, which Rust never drops, so each new one removes the files that
/// processes no longer running left behind (a crash or a `-runs` exit leaves one).
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A scratch file named for the target and the process, in `/dev/shm` when the machine has it: rewriting
    /// a file on ext4 (truncate, then write) was a sixth of `gateway_config`'s time in a perf profile, and the
    /// target ran at 1,083 executions/s with it against 1,928/s on tmpfs. Elsewhere the temp dir.
    pub fn new(target: &str) -> Scratch {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        remove_orphans(&dir);
        let path = dir.join(format!("iotex-fuzz-{target}-{}", std::process::id()));
        Scratch { path }
    }

    /// Writes `bytes` and returns the path. A write failure is the machine's fault, not the input's: panic,
    /// so the run stops instead of fuzzing a stale file.
    pub fn write(&self, bytes: &[u8]) -> &std::path::Path {
        if let Err(e) = std::fs::write(&self.path, bytes) {
            panic!("cannot write the scratch file {}: {e}", self.path.display());
        }
        &self.path
    }
}

/// Removes `iotex-fuzz-*-PID` files in `dir` whose process is gone (Linux: no `/proc/PID`; elsewhere none are
/// removed, since liveness cannot be told).
fn remove_orphans(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("iotex-fuzz-")) else { continue };
        let Some(pid) = rest.rsplit('-').next().filter(|p| p.parse::<u32>().is_ok()) else { continue };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Splits an input into a file part and an env part at the first NUL byte (a config file has no NUL; a
/// fuzzer finds the separator quickly from the seeds).
pub fn split_file_env(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Env vars set from an input's env part, removed again on drop so one input never leaks into the next.
pub struct EnvVars {
    names: Vec<String>,
}

impl EnvVars {
    /// Sets `PREFIX + NAME=VALUE` for each `NAME=VALUE` line (NAME upper-cased, `-` as `_`, the way the
    /// binaries name their env vars), so every line lands on one of the binary's own variables or a miss.
    /// Lines without `=`, empty names and names or values that the OS cannot hold are skipped.
    pub fn set(prefix: &str, env: &[u8]) -> EnvVars {
        let mut names = Vec::new();
        for line in String::from_utf8_lossy(env).lines() {
            let Some((name, value)) = line.split_once('=') else { continue };
            let name = format!("{prefix}{}", name.trim().to_ascii_uppercase().replace('-', "_"));
            let bad = |s: &str| s.contains('\0') || s.contains('=');
            if name.len() == prefix.len() || bad(&name) || value.contains('\0') {
                continue;
            }
            // SAFETY: libFuzzer runs the target on one thread and the config targets start no other thread,
            // so nothing reads the environment concurrently.
            unsafe { std::env::set_var(&name, value) };
            names.push(name);
        }
        EnvVars { names }
    }
}

impl Drop for EnvVars {
    fn drop(&mut self) {
        for name in &self.names {
            // SAFETY: as in `set`: one thread.
            unsafe { std::env::remove_var(name) };
        }
    }
}
