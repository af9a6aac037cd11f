//! Google's Python `protobuf` as an independent decoder of native IoTeX actions (`tests/peers/decode_action.py`,
//! a descriptor built from iotex-proto's field numbers). `scripts/install-peers.sh` installs the package,
//! pinned, into `~/.cache/iotex-toolkit/python-protobuf-VERSION`; one Python process serves a whole test,
//! a line of hex in and a line of JSON out.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The pinned version (the same as in `scripts/install-peers.sh`).
pub const PROTOBUF_VERSION: &str = "7.36.2";

fn package_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("iotex-toolkit").join(format!("python-protobuf-{PROTOBUF_VERSION}"))
}

/// A running decoder; killed when dropped.
pub struct Decoder {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Decoder {
    /// Starts the decoder, or says how to install its package.
    pub fn start() -> anyhow::Result<Decoder> {
        let dir = package_dir();
        anyhow::ensure!(
            dir.join(format!("protobuf-{PROTOBUF_VERSION}.dist-info")).is_dir(),
            "Python protobuf {PROTOBUF_VERSION} is not installed at {}; run scripts/install-peers.sh",
            dir.display()
        );
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/decode_action.py");
        let mut child = Command::new("python3")
            .arg(script)
            .env("PYTHONPATH", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?);
        Ok(Decoder { child, stdin, stdout })
    }

    /// Decodes one serialized `Action`; the fields as the decoder read them.
    pub fn decode(&mut self, action: &[u8]) -> anyhow::Result<serde_json::Value> {
        writeln!(self.stdin, "{}", alloy_primitives::hex::encode(action))?;
        self.stdin.flush()?;
        let mut line = String::new();
        anyhow::ensure!(self.stdout.read_line(&mut line)? > 0, "the decoder exited");
        Ok(serde_json::from_str(&line)?)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
