//! A mock JSON-RPC upstream for faults a real node cannot produce on demand.
//!
//! It speaks just enough HTTP/1.1 by hand (keep-alive, Content-Length) to misbehave in ways a proper server
//! library would not let it: an HTTP 429 with an empty body (IoTeX's "busy"), a 200 with malformed JSON, a
//! connection reset in the middle of a response, or an answer that comes too late. Health probes
//! (`eth_blockNumber`) and other traffic can be given different behaviours, so a node can look healthy to
//! probes while failing real calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the mock answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// A proper JSON-RPC answer.
    Normal,
    /// A proper answer after a delay.
    Slow(Duration),
    /// HTTP 429 with an empty body.
    Busy429,
    /// HTTP 503.
    Unavailable503,
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Half a response, then a TCP reset.
    ResetMidResponse,
    /// A JSON-RPC error with this message (e.g. "already known").
    RpcError(String),
}

#[derive(Debug)]
struct State {
    probe: Mode,
    traffic: Mode,
    head: u64,
    seen: HashMap<String, u64>,
    authorization: Option<String>,
}

/// A running mock; stops when dropped.
pub struct MockUpstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl MockUpstream {
    /// Starts a mock answering normally, at head `head`.
    pub async fn spawn(head: u64) -> anyhow::Result<MockUpstream> {
        crate::capture::init_tracing();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            probe: Mode::Normal,
            traffic: Mode::Normal,
            head,
            seen: HashMap::new(),
            authorization: None,
        }));
        let requests = Arc::new(AtomicU64::new(0));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (st, rq, cs) = (Arc::clone(&state), Arc::clone(&requests), Arc::clone(&conns));
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let h = tokio::spawn(serve(sock, Arc::clone(&st), Arc::clone(&rq)));
                if let Ok(mut c) = cs.lock() {
                    c.push(h.abort_handle());
                }
            }
        });
        Ok(MockUpstream { url, state, requests, task, conns })
    }

    /// Sets how non-probe calls are answered.
    pub fn traffic(&self, m: Mode) {
        if let Ok(mut s) = self.state.lock() {
            s.traffic = m;
        }
    }

    /// Sets how `eth_blockNumber` probes are answered.
    pub fn probes(&self, m: Mode) {
        if let Ok(mut s) = self.state.lock() {
            s.probe = m;
        }
    }

    /// Sets the head `eth_blockNumber` reports.
    pub fn set_head(&self, h: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.head = h;
        }
    }

    /// How many calls of `method` arrived.
    pub fn seen(&self, method: &str) -> u64 {
        self.state.lock().map(|s| s.seen.get(method).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// The `Authorization` header of the last request that carried one.
    pub fn last_authorization(&self) -> Option<String> {
        self.state.lock().ok().and_then(|s| s.authorization.clone())
    }

    /// Total HTTP requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops listening and closes every open connection: new connections are refused, like a dead node.
    pub fn stop(&self) {
        self.task.abort();
        if let Ok(mut c) = self.conns.lock() {
            for h in c.drain(..) {
                h.abort();
            }
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one request; returns its `Authorization` header (if any) and body.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Option<String>, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let raw_head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let auth = raw_head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("authorization").then(|| v.trim().to_owned())
            });
            let head = raw_head.to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 8192];
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Some((auth, body));
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>, requests: Arc<AtomicU64>) {
    let mut buf = Vec::new();
    while let Some((auth, body)) = read_request(&mut sock, &mut buf).await {
        requests.fetch_add(1, Ordering::Relaxed);
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let method = req["method"].as_str().unwrap_or("").to_owned();
        let id = req.get("id").cloned().unwrap_or(serde_json::Value::Null);
        let (mode, head) = {
            let Ok(mut s) = state.lock() else { return };
            *s.seen.entry(method.clone()).or_default() += 1;
            if auth.is_some() {
                s.authorization = auth;
            }
            let mode = if method == "eth_blockNumber" { s.probe.clone() } else { s.traffic.clone() };
            (mode, s.head)
        };
        let result = if method == "eth_blockNumber" {
            serde_json::json!(format!("0x{head:x}"))
        } else {
            serde_json::json!(format!("mock:{method}"))
        };
        let ok_body = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
        let reply = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let out = match mode {
            Mode::Normal => reply("200 OK", &ok_body),
            Mode::Slow(d) => {
                tokio::time::sleep(d).await;
                reply("200 OK", &ok_body)
            }
            Mode::Busy429 => "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n".to_owned(),
            Mode::Unavailable503 => reply("503 Service Unavailable", "overloaded"),
            Mode::Malformed => reply("200 OK", "{\"jsonrpc\":\"2.0\",\"id\":"),
            Mode::RpcError(msg) => {
                let b = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": msg}});
                reply("200 OK", &b.to_string())
            }
            Mode::ResetMidResponse => {
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n{\"jsonrpc\":\"2.0\",").await;
                // Zero linger turns the close into a RST at once (it cannot block: nothing waits to be sent).
                #[allow(deprecated)]
                let _ = sock.set_linger(Some(Duration::ZERO));
                return;
            }
        };
        if sock.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
