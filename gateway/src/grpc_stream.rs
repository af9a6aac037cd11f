//! Server streams through the gateway (`StreamBlocks`, `StreamLogs`): one subscription per client that moves
//! between nodes, so the client sees every block (every matching log) once, in order, whichever node dies
//! or falls behind under it.
//!
//! The client gets its response headers at once and the stream's messages from a relay task. (A node sends
//! its headers only with its first message, which on a quiet chain may be a block interval or more away:
//! waiting for them would make opening a stream look like a node timing out.) The task opens the stream on a
//! routable node, waiting as long as that node stays routable, and without charging the wait to the node's
//! health.
//!
//! For `StreamBlocks` the task reads each message's height (`StreamBlocksResponse.blockIdentifier.height`)
//! and passes the message on unchanged, except:
//! - a height at or below the last one delivered is dropped (a new node repeating what the old one sent);
//! - a height above the next one expected first gets the missing blocks, read with `GetRawBlocks`
//!   (with receipts: what a streamed block carries) and `GetBlockMetas` (the block hash) from any routable node
//!   and composed into the same `StreamBlocksResponse` messages the node would have streamed.
//!
//! It moves to another routable node when its node's stream ends or breaks, when health stops routing to
//! that node (down, or lagging behind the best head), or when the best head gets [`STALE_BLOCKS`] past the
//! last block delivered while the node sends nothing (a node that is up but whose stream is stuck). The last height delivered starts at the node's head as health saw
//! it when the stream was opened, so a move before the first block still fills from there (a client may
//! get a block or two from just before it subscribed, never a gap).
//!
//! When no node can take the stream or fill a gap within [`MOVE_DEADLINE`], the client's stream ends with
//! `UNAVAILABLE` and a message saying why: a gap the gateway cannot fill is reported, never skipped.
//! `StreamLogs` moves between nodes too, with the logs it missed read with `GetLogs` under the client's own
//! filter: every matching log once, in (height, index) order ([`logs`] says how, since a log stream is
//! silent about the blocks in which nothing matched).
//!
//! The messages are decoded with prost derives written here (only the fields the relay reads); a block's
//! `BlockInfo` stays the node's own bytes.

use crate::metrics::Metrics;
use crate::retry::{Reader, Resend};
use crate::upstream::Upstream;
use crate::upstream::grpc::{UNAVAILABLE, frame, percent_encode, status_of};
use bytes::{Buf, Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub mod logs;

/// How long the relay keeps trying to move a stream or fill a gap before it gives up on the client.
pub const MOVE_DEADLINE: Duration = Duration::from_secs(30);
/// How often the relay checks that health still routes to its node.
const ROUTABLE_CHECK: Duration = Duration::from_millis(500);
/// How many blocks past the last one delivered the best head may get while a `StreamBlocks` node sends
/// nothing before the relay stops waiting for it: a node that is up but whose stream is stuck.
pub const STALE_BLOCKS: u64 = 3;
/// How long the relay waits for a node's first message (its headers come with it): as long as the node stays
/// routable and the chain does not move on without it; this only bounds a stream on a chain that stalls.
const OPEN_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Blocks read per `GetRawBlocks` call while filling a gap (IoTeX caps a range query at 1,000).
const FILL_CHUNK: u64 = 50;
/// The largest gap the relay fills; past it the client is better served by resubscribing and reading the
/// range itself.
const MAX_GAP: u64 = 10_000;
/// Messages buffered for a slow client before the relay waits for it.
const CLIENT_BUFFER: usize = 64;

/// `iotexapi.StreamBlocksResponse`.
#[derive(Clone, PartialEq, Message)]
struct StreamBlocksResponse {
    /// `BlockInfo`, kept as the node's bytes.
    #[prost(bytes = "bytes", tag = "1")]
    block: Bytes,
    #[prost(message, optional, tag = "2")]
    block_identifier: Option<BlockIdentifier>,
}

/// `iotextypes.BlockIdentifier`.
#[derive(Clone, PartialEq, Message)]
struct BlockIdentifier {
    #[prost(string, tag = "1")]
    hash: String,
    #[prost(uint64, tag = "2")]
    height: u64,
}

/// `iotexapi.GetRawBlocksRequest`.
#[derive(Clone, PartialEq, Message)]
struct GetRawBlocksRequest {
    #[prost(uint64, tag = "1")]
    start_height: u64,
    #[prost(uint64, tag = "2")]
    count: u64,
    #[prost(bool, tag = "3")]
    with_receipts: bool,
}

/// `iotexapi.GetRawBlocksResponse`: each `BlockInfo` as the node's bytes.
#[derive(Clone, PartialEq, Message)]
struct GetRawBlocksResponse {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    blocks: Vec<Bytes>,
}

/// `iotexapi.GetBlockMetasRequest` with its `byIndex` lookup.
#[derive(Clone, PartialEq, Message)]
struct GetBlockMetasRequest {
    #[prost(message, optional, tag = "1")]
    by_index: Option<ByIndex>,
}

/// `iotexapi.GetBlockMetasByIndexRequest`.
#[derive(Clone, PartialEq, Message)]
struct ByIndex {
    #[prost(uint64, tag = "1")]
    start: u64,
    #[prost(uint64, tag = "2")]
    count: u64,
}

/// `iotexapi.GetBlockMetasResponse` (only the metas).
#[derive(Clone, PartialEq, Message)]
struct GetBlockMetasResponse {
    #[prost(message, repeated, tag = "1")]
    blk_metas: Vec<BlockMeta>,
}

/// `iotextypes.BlockMeta` (only hash and height).
#[derive(Clone, PartialEq, Message)]
struct BlockMeta {
    #[prost(string, tag = "1")]
    hash: String,
    #[prost(uint64, tag = "2")]
    height: u64,
}

/// The height a streamed block message carries, if it is one.
fn height_of(message: &[u8]) -> Option<u64> {
    StreamBlocksResponse::decode(message).ok()?.block_identifier.map(|b| b.height)
}

/// Splits one complete gRPC message (flag, 4-byte length, bytes) off the front of `buf`. `Err` for a
/// compressed message, which the relay cannot read (it asks nodes for none).
fn take_message(buf: &mut BytesMut) -> Result<Option<Bytes>, &'static str> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err("a compressed message");
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Counts a stream as held open on a node (`iotex_gateway_upstream_grpc_streams{upstream}`) until dropped.
struct OnNode(prometheus::IntGauge);

impl OnNode {
    fn new(up: &Upstream) -> OnNode {
        up.metrics.grpc_streams.inc();
        OnNode(up.metrics.grpc_streams.clone())
    }
}

impl Drop for OnNode {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The whole messages a node's stream frame completes (appended to what `buf` held), or why the node's stream
/// is over for the client: it ended, broke, sent its trailers, or sent what the relay cannot read. Shared by
/// the block and the log relay.
fn messages_of(next: Option<Result<Frame<Bytes>, hyper::Error>>, buf: &mut BytesMut) -> Result<Vec<Bytes>, String> {
    let frame = match next {
        None => return Err("its stream ended".into()),
        Some(Err(e)) => return Err(format!("its stream broke: {e}")),
        Some(Ok(f)) => f,
    };
    let data = frame.into_data().map_err(|f| {
        let code = f.trailers_ref().and_then(|t| crate::upstream::grpc::status_of(t, None));
        format!("its stream ended with status {code:?}")
    })?;
    buf.extend_from_slice(&data);
    let mut out = Vec::new();
    while let Some(m) = take_message(buf).map_err(|why| format!("it sent {why}"))? {
        out.push(m);
    }
    Ok(out)
}

/// What ended following one node.
enum Left {
    /// The client went away: nothing more to do.
    ClientGone,
    /// The node's stream is over for this client (why, for logs); move on.
    Node(String),
    /// The stream cannot continue without breaking the guarantee.
    Give(String),
}

/// What a relay needs: the reader that picks nodes, the request as the node gets it, the method's metrics.
/// (`StreamLogs` is relayed by the [`logs`] half.)
pub struct Relay {
    /// Picks nodes and retries, over the one health view.
    pub reader: Arc<Reader>,
    /// `/iotexapi.APIService/StreamBlocks` or `…/StreamLogs`.
    pub path: PathAndQuery,
    /// The client's metadata (compression offers removed: the relay reads every message).
    pub meta: HeaderMap,
    /// The request message as received.
    pub body: Bytes,
    /// For the moves and fills counters.
    pub metrics: Arc<Metrics>,
    /// True for `StreamBlocks`, false for `StreamLogs`.
    pub blocks: bool,
}

impl Relay {
    /// Opens the stream and relays it (for `StreamBlocks`, across nodes), sending message and trailer frames
    /// to `tx` until the node or the relay ends it or the client goes away.
    pub async fn run(self, tx: mpsc::Sender<Frame<Bytes>>) {
        if !self.blocks {
            return self.logs(tx).await;
        }
        let (mut up, mut node, head) = match self.open(None, None, &tx).await {
            Ok(Some(opened)) => opened,
            Ok(None) => return,
            Err(why) => return give_up(&tx, &format!("no node could take the stream: {why}")).await,
        };
        let mut last = head;
        loop {
            let why = match self.follow(&up, &mut node, &mut last, &tx).await {
                Left::ClientGone => return,
                Left::Give(why) => return give_up(&tx, &why).await,
                Left::Node(why) => why,
            };
            tracing::info!(upstream = %up.name, reason = %why, last_height = ?last, "gRPC StreamBlocks moves to another node");
            self.metrics.grpc.stream_moves.with_label_values(&["StreamBlocks"]).inc();
            match self.open(Some(up.id), last, &tx).await {
                Ok(Some((next, body, _))) => {
                    up = next;
                    node = body;
                }
                Ok(None) => return,
                Err(why) => return give_up(&tx, &format!("no node could take the stream over: {why}")).await,
            }
        }
    }

    /// The head health last saw on `up`.
    fn head_of(&self, up: &Upstream) -> Option<u64> {
        let view = self.reader.snapshot();
        view.members.iter().position(|m| m.id == up.id).and_then(|i| view.upstreams.get(i)).and_then(|s| s.head)
    }

    fn routable(&self, up: &Upstream) -> bool {
        let view = self.reader.snapshot();
        view.routable.iter().any(|&i| view.members.get(i).is_some_and(|m| m.id == up.id))
    }

    /// Opens the stream on a routable node with a gRPC address (not `avoid` while another is there). A node
    /// sends its headers with its first message, which may be a block interval or more away, so the wait for
    /// one node is bounded by the node staying routable and (for `StreamBlocks`) by the chain not moving
    /// [`STALE_BLOCKS`] past `last` without it, not by a timer; it is not reported to health. Gives up after
    /// [`MOVE_DEADLINE`] without any node taking the request. Returns the node, its stream and its head as
    /// health saw it; `Ok(None)` when the client left or the node answered with a status only (passed on as
    /// the stream's end).
    async fn open(
        &self,
        avoid: Option<u64>,
        last: Option<u64>,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Result<Option<(Arc<Upstream>, Incoming, Option<u64>)>, String> {
        let mut deadline = Instant::now() + MOVE_DEADLINE;
        let mut tried: Vec<u64> = avoid.into_iter().collect();
        let mut why = "no routable node with a gRPC address".to_owned();
        // Bounded: the deadline is moved on only when a node took the request and the chain went past it.
        while Instant::now() < deadline {
            let Some(up) = self.candidate(&mut tried) else {
                tokio::time::sleep(ROUTABLE_CHECK).await;
                continue;
            };
            tried.push(up.id);
            let head = self.head_of(&up);
            let baseline = last.max(head);
            let opening = up.grpc_open_stream(&self.path, &self.meta, self.body.clone(), OPEN_WAIT);
            let resp = tokio::select! {
                () = tx.closed() => return Ok(None),
                stale = self.until_stale(&up, baseline) => {
                    why = format!("upstream {}: {stale}", up.name);
                    deadline = Instant::now() + MOVE_DEADLINE;
                    continue;
                }
                r = opening => r,
            };
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    why = e.to_string();
                    continue;
                }
            };
            if status_of(resp.headers(), None).is_some() {
                // Trailers-only: the node refused the stream (e.g. `StreamLogs` without a filter).
                let _ = tx.send(Frame::trailers(resp.headers().clone())).await;
                return Ok(None);
            }
            return Ok(Some((up, resp.into_body(), head)));
        }
        Err(why)
    }

    /// Why the relay should stop waiting on `up`, if it should: health no longer routes to it, or (for
    /// `StreamBlocks`) the best head is [`STALE_BLOCKS`] past `last` while `up` sent nothing.
    fn stale(&self, up: &Upstream, last: Option<u64>) -> Option<String> {
        if !self.routable(up) {
            return Some("health no longer routes to it".into());
        }
        let best = self.reader.snapshot().best_head?;
        match last {
            Some(l) if self.blocks && best >= l.saturating_add(STALE_BLOCKS) => {
                Some(format!("it sent nothing while the chain went from {l} to {best}"))
            }
            _ => None,
        }
    }

    /// Returns why once [`Relay::stale`] says so (checked every [`ROUTABLE_CHECK`]).
    async fn until_stale(&self, up: &Upstream, last: Option<u64>) -> String {
        loop {
            tokio::time::sleep(ROUTABLE_CHECK).await;
            if let Some(why) = self.stale(up, last) {
                return why;
            }
        }
    }

    /// A routable node with a gRPC address not in `tried`; when every one has been tried, starts over.
    fn candidate(&self, tried: &mut Vec<u64>) -> Option<Arc<Upstream>> {
        let view = self.reader.snapshot();
        let usable = || view.routable.iter().filter_map(|&i| view.members.get(i)).filter(|u| u.has_grpc());
        if usable().all(|u| tried.contains(&u.id)) {
            tried.clear();
        }
        let fresh: Vec<&Arc<Upstream>> = usable().filter(|u| !tried.contains(&u.id)).collect();
        // The least loaded first: streams spread over the nodes like calls do.
        fresh.into_iter().min_by(|a, b| a.cost().total_cmp(&b.cost())).cloned()
    }

    /// Relays one node's stream until it ends, breaks, stops being routable or falls behind the chain.
    async fn follow(
        &self,
        up: &Upstream,
        node: &mut Incoming,
        last: &mut Option<u64>,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Left {
        let _on = OnNode::new(up);
        let mut buf = BytesMut::new();
        let mut check = tokio::time::interval(ROUTABLE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                () = tx.closed() => return Left::ClientGone,
                _ = check.tick() => {
                    if let Some(why) = self.stale(up, *last) {
                        return Left::Node(why);
                    }
                    continue;
                }
                f = node.frame() => f,
            };
            let messages = match messages_of(next, &mut buf) {
                Ok(m) => m,
                Err(why) => return Left::Node(why),
            };
            for message in messages {
                if let Some(left) = self.deliver(message, last, tx).await {
                    return left;
                }
            }
        }
    }

    /// Passes one streamed message on in order: dropped when already delivered, after the missing blocks
    /// when it skips ahead. `Some` when the relay must stop following.
    async fn deliver(&self, message: Bytes, last: &mut Option<u64>, tx: &mpsc::Sender<Frame<Bytes>>) -> Option<Left> {
        let Some(height) = height_of(&message) else {
            return Some(Left::Node("it sent a message that is not a StreamBlocksResponse".into()));
        };
        match *last {
            Some(l) if height <= l => return None,
            Some(l) if height > l + 1 => {
                if height - l - 1 > MAX_GAP {
                    return Some(Left::Give(format!(
                        "{} blocks missing after {l}, more than this gateway fills",
                        height - l - 1
                    )));
                }
                if let Err(left) = self.fill(l + 1, height, tx).await {
                    return Some(left);
                }
            }
            _ => {}
        }
        if tx.send(Frame::data(frame(&message))).await.is_err() {
            return Some(Left::ClientGone);
        }
        *last = Some(height);
        None
    }

    /// Sends blocks `from..to` (not `to`), read from routable nodes, as streamed messages.
    async fn fill(&self, from: u64, to: u64, tx: &mpsc::Sender<Frame<Bytes>>) -> Result<(), Left> {
        let deadline = Instant::now() + MOVE_DEADLINE;
        let mut start = from;
        while start < to {
            let count = (to - start).min(FILL_CHUNK);
            let messages = self.read_blocks(start, count, deadline).await.map_err(|e| {
                Left::Give(format!("blocks {from} to {} could not be read to fill the stream: {e}", to - 1))
            })?;
            for m in messages {
                if tx.send(Frame::data(frame(&m))).await.is_err() {
                    return Err(Left::ClientGone);
                }
            }
            self.metrics.grpc.stream_filled.with_label_values(&["StreamBlocks"]).inc_by(count);
            start += count;
        }
        Ok(())
    }

    /// `count` blocks from `start` as `StreamBlocksResponse` messages, in height order.
    async fn read_blocks(&self, start: u64, count: u64, deadline: Instant) -> Result<Vec<Bytes>, String> {
        let raw = GetRawBlocksRequest { start_height: start, count, with_receipts: true };
        let raw: GetRawBlocksResponse = self.unary("GetRawBlocks", raw.encode_to_vec(), deadline).await?;
        let metas = GetBlockMetasRequest { by_index: Some(ByIndex { start, count }) };
        let metas: GetBlockMetasResponse = self.unary("GetBlockMetas", metas.encode_to_vec(), deadline).await?;
        compose(start, count, raw.blocks, metas.blk_metas)
    }

    /// One unary call over the reader, its answer decoded; a non-OK status is an error.
    async fn unary<M: Message + Default>(
        &self,
        method: &str,
        request: Vec<u8>,
        deadline: Instant,
    ) -> Result<M, String> {
        let path = PathAndQuery::try_from(format!("/iotexapi.APIService/{method}")).map_err(|e| e.to_string())?;
        let body = frame(&request);
        let (_, answer) = self
            .reader
            .read_with(deadline, Resend::Any, |u, t| {
                let body = body.clone();
                let path = &path;
                async move { u.grpc_call(path, &self.meta, body, t).await }
            })
            .await
            .map_err(|e| e.to_string())?;
        if answer.code != 0 {
            return Err(format!("{method}: status {} {}", answer.code, answer.message()));
        }
        let mut buf = BytesMut::from(&answer.body[..]);
        let message = take_message(&mut buf).map_err(|w| format!("{method}: {w}"))?.unwrap_or_default();
        M::decode(message).map_err(|e| format!("{method}: {e}"))
    }
}

/// Streamed messages for heights `start..start+count` from raw blocks and their metas (hashes), in order;
/// an error unless every height is there exactly once.
fn compose(start: u64, count: u64, blocks: Vec<Bytes>, metas: Vec<BlockMeta>) -> Result<Vec<Bytes>, String> {
    if blocks.len() as u64 != count || metas.len() as u64 != count {
        return Err(format!(
            "asked for {count} blocks from {start}, got {} blocks and {} metas",
            blocks.len(),
            metas.len()
        ));
    }
    let mut metas = metas;
    metas.sort_by_key(|m| m.height);
    // GetRawBlocks answers in height order from `start`; the metas say which height each is.
    blocks
        .into_iter()
        .zip(metas)
        .enumerate()
        .map(|(i, (block, meta))| {
            let height = start + i as u64;
            if meta.height != height {
                return Err(format!("block meta for {} where {height} was expected", meta.height));
            }
            let message =
                StreamBlocksResponse { block, block_identifier: Some(BlockIdentifier { hash: meta.hash, height }) };
            Ok(Bytes::from(message.encode_to_vec()))
        })
        .collect()
}

/// Ends the client's stream with `UNAVAILABLE` and `why`.
async fn give_up(tx: &mpsc::Sender<Frame<Bytes>>, why: &str) {
    tracing::warn!(reason = %why, "a gRPC stream ended for its client");
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(UNAVAILABLE));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(why)) {
        t.insert("grpc-message", v);
    }
    let _ = tx.send(Frame::trailers(t)).await;
}

/// A channel for a relay's frames: the body side is [`crate::grpc::GrpcBody::Relay`].
pub fn channel() -> (mpsc::Sender<Frame<Bytes>>, mpsc::Receiver<Frame<Bytes>>) {
    mpsc::channel(CLIENT_BUFFER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(height: u64, hash: &str, block: &[u8]) -> Bytes {
        let m = StreamBlocksResponse {
            block: Bytes::copy_from_slice(block),
            block_identifier: Some(BlockIdentifier { hash: hash.into(), height }),
        };
        Bytes::from(m.encode_to_vec())
    }

    #[test]
    fn a_streamed_message_gives_its_height_and_anything_else_none() {
        assert_eq!(height_of(&streamed(42, "ab", b"\x0a\x00")), Some(42));
        assert_eq!(height_of(b""), None, "no identifier");
        assert_eq!(height_of(b"\xff\xff\xff"), None, "not protobuf");
        // A wrong wire type for field 2 is refused, not misread.
        assert_eq!(height_of(b"\x10\x05"), None);
    }

    #[test]
    fn messages_are_split_off_whole_and_a_compressed_one_is_refused() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame(b"abc"));
        buf.extend_from_slice(&frame(b"de")[..4]);
        assert_eq!(take_message(&mut buf), Ok(Some(Bytes::from_static(b"abc"))));
        assert_eq!(take_message(&mut buf), Ok(None), "the second is not whole yet");
        buf.extend_from_slice(&frame(b"de")[4..]);
        assert_eq!(take_message(&mut buf), Ok(Some(Bytes::from_static(b"de"))));
        assert_eq!(take_message(&mut buf), Ok(None));
        let mut compressed = BytesMut::from(&b"\x01\x00\x00\x00\x01x"[..]);
        assert!(take_message(&mut compressed).is_err());
        // A length far past what arrived waits for more, it does not read past the buffer.
        let mut huge = BytesMut::from(&b"\x00\xff\xff\xff\xffab"[..]);
        assert_eq!(take_message(&mut huge), Ok(None));
    }

    #[test]
    fn a_frame_gives_its_whole_messages_and_an_end_or_a_bad_message_says_why() {
        let mut buf = BytesMut::new();
        let mut two = frame(b"ab").to_vec();
        two.extend_from_slice(&frame(b"cd")[..3]);
        let got = messages_of(Some(Ok(Frame::data(Bytes::from(two)))), &mut buf);
        assert_eq!(got, Ok(vec![Bytes::from_static(b"ab")]), "the second is not whole yet");
        let rest = Bytes::copy_from_slice(&frame(b"cd")[3..]);
        assert_eq!(messages_of(Some(Ok(Frame::data(rest))), &mut buf), Ok(vec![Bytes::from_static(b"cd")]));
        assert_eq!(messages_of(None, &mut buf), Err("its stream ended".to_owned()));
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from(14u32));
        assert_eq!(
            messages_of(Some(Ok(Frame::trailers(t))), &mut buf),
            Err("its stream ended with status Some(14)".into())
        );
        let compressed = Frame::data(Bytes::from_static(b"\x01\x00\x00\x00\x00"));
        assert!(messages_of(Some(Ok(compressed)), &mut buf).is_err_and(|w| w.contains("compressed")));
    }

    #[test]
    fn composed_messages_are_what_a_node_streams() {
        let block = b"\x0a\x03abc";
        let raw = vec![Bytes::from_static(block), Bytes::from_static(block)];
        let metas = vec![BlockMeta { hash: "h8".into(), height: 8 }, BlockMeta { hash: "h7".into(), height: 7 }];
        let out = compose(7, 2, raw, metas).unwrap();
        assert_eq!(out, vec![streamed(7, "h7", block), streamed(8, "h8", block)]);
        assert!(compose(7, 2, vec![Bytes::new()], vec![]).is_err(), "short answers are an error");
        let wrong = vec![BlockMeta { hash: "x".into(), height: 9 }];
        assert!(compose(7, 1, vec![Bytes::new()], wrong).is_err(), "a meta of another height is an error");
    }

    #[test]
    fn requests_encode_as_iotex_expects() {
        // GetRawBlocksRequest{startHeight: 7, count: 2, withReceipts: true}: fields 1, 2, 3 as varints.
        let r = GetRawBlocksRequest { start_height: 7, count: 2, with_receipts: true };
        assert_eq!(r.encode_to_vec(), vec![0x08, 7, 0x10, 2, 0x18, 1]);
        // GetBlockMetasRequest{byIndex: {start: 7, count: 2}}: field 1, a message of fields 1 and 2.
        let m = GetBlockMetasRequest { by_index: Some(ByIndex { start: 7, count: 2 }) };
        assert_eq!(m.encode_to_vec(), vec![0x0a, 4, 0x08, 7, 0x10, 2]);
    }
}
