//! `StreamLogs` across nodes: one subscription per client that moves when its node dies, hangs or stops being
//! routable, with the logs it missed read with `GetLogs` (the client's own filter, by block range), so the
//! client sees every matching log once, in (block height, log index) order.
//!
//! A log stream, unlike a block stream, says nothing about the blocks in which no log matched: a quiet filter
//! and a stuck stream look the same. So the relay does not infer coverage from silence. It keeps:
//! - `through`: every matching log of every block up to this height has been delivered (blocks before the
//!   subscription count as delivered: the client did not ask for them);
//! - `last`: the last log delivered, as (height, index);
//! - `live`: whether the node's stream is known to cover every block after `through`.
//!
//! On the first node the stream is live from the start (`through` is the node's head as health saw it before
//! the request was sent, and the node subscribes at its tip, which is at or above that). A stream opened on
//! another node after a move subscribes at that node's tip at some moment the gateway cannot see, so it is
//! not live until its first log arrives: blocks up to the one before that log are read with `GetLogs` first.
//! Until then, each time health sees the node's head move, the blocks up to it are read too, so the missed
//! logs reach the client without waiting for the next matching one.
//!
//! While live, every [`CHECKPOINT_BLOCKS`] the relay reads the blocks since `through` from its own node: the
//! logs the stream already sent are dropped as repeats, the move after a long quiet spell has a short range
//! to fill, and a stream that is stuck without its node looking unwell loses nothing (its logs arrive late).
//!
//! A read always goes to the node being followed, and first asks for its last block alone: the node answers
//! `start block > tip height` while its log index has not reached that block yet, instead of silently
//! cutting the range short. A log at or below `through`, or at or below `last`, is a repeat and is dropped.

use super::{
    Left, MAX_GAP, MOVE_DEADLINE, OPEN_WAIT, OnNode, ROUTABLE_CHECK, Relay, give_up, messages_of, take_message,
};
use crate::upstream::Upstream;
use crate::upstream::grpc::frame;
use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prost::Message;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// How many blocks a live stream may go without the relay checking them with `GetLogs`.
pub const CHECKPOINT_BLOCKS: u64 = 100;
/// Blocks per `GetLogs` call while filling.
const LOG_FILL_CHUNK: u64 = 100;

/// `iotexapi.StreamLogsRequest`: the filter kept as the client's bytes (present even when empty).
#[derive(Clone, PartialEq, Message)]
struct StreamLogsRequest {
    #[prost(bytes = "bytes", optional, tag = "1")]
    filter: Option<Bytes>,
}

/// `iotexapi.StreamLogsResponse`: the `iotextypes.Log` kept as the node's bytes.
#[derive(Clone, PartialEq, Message)]
struct StreamLogsResponse {
    #[prost(bytes = "bytes", optional, tag = "1")]
    log: Option<Bytes>,
}

/// `iotextypes.Log`: only where it sits in the chain.
#[derive(Clone, PartialEq, Message)]
struct LogPlace {
    #[prost(uint64, tag = "4")]
    blk_height: u64,
    #[prost(uint32, tag = "6")]
    index: u32,
}

/// `iotexapi.GetLogsRequest` with its `byRange` lookup.
#[derive(Clone, PartialEq, Message)]
struct GetLogsRequest {
    #[prost(bytes = "bytes", optional, tag = "1")]
    filter: Option<Bytes>,
    #[prost(message, optional, tag = "3")]
    by_range: Option<GetLogsByRange>,
}

/// `iotexapi.GetLogsByRange` (no pagination: a range's logs come whole).
#[derive(Clone, PartialEq, Message)]
struct GetLogsByRange {
    #[prost(uint64, tag = "1")]
    from_block: u64,
    #[prost(uint64, tag = "2")]
    to_block: u64,
}

/// `iotexapi.GetLogsResponse`: each `iotextypes.Log` as the node's bytes.
#[derive(Clone, PartialEq, Message)]
struct GetLogsResponse {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    logs: Vec<Bytes>,
}

/// Where a log sits: (block height, index in the block).
fn place(log: &[u8]) -> Option<(u64, u32)> {
    let p = LogPlace::decode(log).ok()?;
    (p.blk_height > 0).then_some((p.blk_height, p.index))
}

/// What the client has had so far (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    through: u64,
    last: Option<(u64, u32)>,
    live: bool,
}

impl Position {
    /// Whether a log at `at` was delivered already (or comes from a block the client has had in full).
    fn repeat(&self, at: (u64, u32)) -> bool {
        at.0 <= self.through || self.last.is_some_and(|l| at <= l)
    }

    /// Records a delivered log.
    fn delivered(&mut self, at: (u64, u32)) {
        self.last = Some(at);
        self.through = self.through.max(at.0 - 1);
    }
}

/// Why a read of a block range did not happen.
enum ReadFailed {
    /// The node's log index has not reached the range's end yet: try again later.
    NotYet,
    /// The node failed; the stream moves on.
    Node(String),
    /// No node could do it: the client's stream ends.
    Give(String),
}

impl ReadFailed {
    /// What following the node comes to.
    fn left(self) -> Left {
        match self {
            ReadFailed::NotYet => Left::Node("its log index does not reach its head".into()),
            ReadFailed::Node(why) => Left::Node(why),
            ReadFailed::Give(why) => Left::Give(why),
        }
    }
}

impl Relay {
    /// Relays `StreamLogs` across nodes until the client leaves or the stream cannot go on without a gap.
    pub(super) async fn logs(self, tx: mpsc::Sender<Frame<Bytes>>) {
        let filter = match decode_filter(&self.body) {
            Ok(f) => f,
            Err(why) => return give_up(&tx, &why).await,
        };
        let mut pos: Option<Position> = None;
        let mut tried: Vec<u64> = Vec::new();
        let mut progress = Instant::now();
        let mut why = "no routable node with a gRPC address".to_owned();
        loop {
            if progress.elapsed() > MOVE_DEADLINE {
                return give_up(&tx, &format!("no node could take the log stream over: {why}")).await;
            }
            let picked = self.candidate(&mut tried).and_then(|u| self.head_of(&u).map(|h| (u, h)));
            let Some((up, head)) = picked else {
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(ROUTABLE_CHECK) => continue,
                }
            };
            tried.push(up.id);
            let p = match &mut pos {
                Some(p) => {
                    p.live = false;
                    p
                }
                None => pos.insert(Position { through: head, last: None, live: true }),
            };
            let mut useful = false;
            let left = self.follow_logs(&up, p, &filter, &mut useful, &tx).await;
            if useful {
                // The wait for the next node starts now, however long this one took to fail.
                progress = Instant::now();
            }
            match left {
                Left::ClientGone => return,
                Left::Give(w) => return give_up(&tx, &w).await,
                Left::Node(w) => {
                    let through = pos.map(|p| p.through);
                    tracing::info!(upstream = %up.name, reason = %w, ?through, "gRPC StreamLogs moves to another node");
                    self.metrics.grpc.stream_moves.with_label_values(&["StreamLogs"]).inc();
                    why = format!("upstream {}: {w}", up.name);
                }
            }
        }
    }

    /// Follows one node's log stream, filling what the client has not had, until the node is left or the
    /// client goes away. `useful` is set once health has routed to the node while it held the stream.
    async fn follow_logs(
        &self,
        up: &Arc<Upstream>,
        pos: &mut Position,
        filter: &Option<Bytes>,
        useful: &mut bool,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Left {
        let _on = OnNode::new(up);
        // Opened by a task of its own, not polled in this loop: a read below may need the HTTP/2 connection
        // the opening request is still setting up (hyper's pool lets one request connect and the others
        // wait for it), and this loop polls nothing else while it awaits a read.
        let mut opening = {
            let (up, path, meta, body) = (Arc::clone(up), self.path.clone(), self.meta.clone(), self.body.clone());
            AbortOnDropHandle::new(tokio::spawn(
                async move { up.grpc_open_stream(&path, &meta, body, OPEN_WAIT).await },
            ))
        };
        let mut node: Option<Incoming> = None;
        let mut buf = BytesMut::new();
        let mut check = tokio::time::interval(ROUTABLE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = tx.closed() => return Left::ClientGone,
                _ = check.tick() => {
                    if !self.routable(up) {
                        return Left::Node("health no longer routes to it".into());
                    }
                    *useful = true;
                    if let Some(left) = self.checkpoint(up, pos, filter, tx).await {
                        return left;
                    }
                }
                opened = &mut opening, if node.is_none() => match opened.map_err(|e| e.to_string()) {
                    Ok(Ok(resp)) => {
                        if crate::upstream::grpc::status_of(resp.headers(), None).is_some() {
                            // Trailers-only: the node refused the request (e.g. no filter); the client hears why.
                            let _ = tx.send(Frame::trailers(resp.headers().clone())).await;
                            return Left::ClientGone;
                        }
                        node = Some(resp.into_body());
                    }
                    Ok(Err(e)) => return Left::Node(e.to_string()),
                    Err(e) => return Left::Node(format!("opening its stream failed: {e}")),
                },
                f = next_frame(&mut node) => {
                    let messages = match messages_of(f, &mut buf) {
                        Ok(m) => m,
                        Err(why) => return Left::Node(why),
                    };
                    for message in messages {
                        if let Some(left) = self.deliver_streamed(up, message, pos, filter, tx).await {
                            return left;
                        }
                    }
                }
            }
        }
    }

    /// Reads the blocks since `through` from `up` when due: at every new head until the stream is live, every
    /// [`CHECKPOINT_BLOCKS`] after. `Some` when the relay must stop following `up`.
    async fn checkpoint(
        &self,
        up: &Upstream,
        pos: &mut Position,
        filter: &Option<Bytes>,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Option<Left> {
        let head = self.head_of(up)?;
        let every = if pos.live { CHECKPOINT_BLOCKS } else { 1 };
        if head < pos.through.saturating_add(every) {
            return None;
        }
        match self.fill_logs(up, head, pos, filter, tx).await {
            Ok(()) | Err(ReadFailed::NotYet) => None,
            Err(e) => Some(e.left()),
        }
    }

    /// Passes one streamed log on: dropped when a repeat; after the blocks the stream may not cover when it is
    /// the first log of a stream opened after a move.
    async fn deliver_streamed(
        &self,
        up: &Upstream,
        message: Bytes,
        pos: &mut Position,
        filter: &Option<Bytes>,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Option<Left> {
        let Some(at) = StreamLogsResponse::decode(message.clone()).ok().and_then(|m| place(&m.log?)) else {
            return Some(Left::Node("it sent a message that is not a StreamLogsResponse".into()));
        };
        if !pos.live {
            // The node subscribed below this block: everything before it comes from a read.
            if at.0 > pos.through + 1 {
                match self.fill_logs(up, at.0 - 1, pos, filter, tx).await {
                    Ok(()) => {}
                    Err(ReadFailed::NotYet) => {
                        return Some(Left::Node(format!("it streamed block {} but cannot read the one before", at.0)));
                    }
                    Err(e) => return Some(e.left()),
                }
            }
            pos.live = true;
        }
        if pos.repeat(at) {
            return None;
        }
        if tx.send(Frame::data(frame(&message))).await.is_err() {
            return Some(Left::ClientGone);
        }
        pos.delivered(at);
        None
    }

    /// Sends the client every matching log of blocks `through + 1 ..= to` it has not had, read from `up`,
    /// and moves `through` to `to`; given up as soon as health stops routing to `up` (a hung node would
    /// otherwise hold the stream for the whole read deadline). Cancelling it leaves `pos` true: a log counts
    /// as delivered only once sent, and `through` moves only at the end.
    async fn fill_logs(
        &self,
        up: &Upstream,
        to: u64,
        pos: &mut Position,
        filter: &Option<Bytes>,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Result<(), ReadFailed> {
        tokio::select! {
            r = self.fill_logs_from(up, to, pos, filter, tx) => r,
            why = self.until_stale(up, None) => Err(ReadFailed::Node(why)),
        }
    }

    async fn fill_logs_from(
        &self,
        up: &Upstream,
        to: u64,
        pos: &mut Position,
        filter: &Option<Bytes>,
        tx: &mpsc::Sender<Frame<Bytes>>,
    ) -> Result<(), ReadFailed> {
        let from = pos.through + 1;
        if to < from {
            return Ok(());
        }
        if to - from + 1 > MAX_GAP {
            // Not a node's fault: no node can fill it either.
            return Err(ReadFailed::Give(format!(
                "{} blocks of logs to read, more than this gateway fills",
                to - from + 1
            )));
        }
        let deadline = Instant::now() + MOVE_DEADLINE;
        // The last block alone first: proves the node's log index has it (a longer range would be cut short).
        let mut last_block = self.read_logs(up, to, to, filter, deadline).await?;
        let mut logs = Vec::new();
        let mut start = from;
        while start < to {
            let end = (start + LOG_FILL_CHUNK - 1).min(to - 1);
            logs.extend(self.read_logs(up, start, end, filter, deadline).await?);
            start = end + 1;
        }
        logs.append(&mut last_block);
        let mut placed: Vec<((u64, u32), Bytes)> = Vec::with_capacity(logs.len());
        for log in logs {
            match place(&log) {
                Some(at) if (from..=to).contains(&at.0) => placed.push((at, log)),
                _ => {
                    return Err(ReadFailed::Node(format!(
                        "GetLogs {from}..={to} answered a log from outside the range"
                    )));
                }
            }
        }
        placed.sort_by_key(|(at, _)| *at);
        placed.dedup_by_key(|(at, _)| *at);
        let moved = !pos.live;
        for (at, log) in placed {
            if pos.repeat(at) {
                continue;
            }
            let message = StreamLogsResponse { log: Some(log) }.encode_to_vec();
            if tx.send(Frame::data(frame(&message))).await.is_err() {
                // The client is gone; nothing else matters. (`tx.closed()` ends the relay next.)
                return Ok(());
            }
            pos.delivered(at);
        }
        pos.through = to;
        if moved {
            self.metrics.grpc.stream_filled.with_label_values(&["StreamLogs"]).inc_by(to - from + 1);
        }
        Ok(())
    }

    /// The logs of blocks `from..=to` matching `filter`, as the node's `Log` bytes, read from `up`.
    async fn read_logs(
        &self,
        up: &Upstream,
        from: u64,
        to: u64,
        filter: &Option<Bytes>,
        deadline: Instant,
    ) -> Result<Vec<Bytes>, ReadFailed> {
        let request = GetLogsRequest {
            filter: filter.clone(),
            by_range: Some(GetLogsByRange { from_block: from, to_block: to }),
        };
        let path = PathAndQuery::from_static("/iotexapi.APIService/GetLogs");
        let left = deadline.saturating_duration_since(Instant::now());
        let started = Instant::now();
        tracing::debug!(upstream = %up.name, from, to, "GetLogs for a log stream");
        let answer = up
            .grpc_call(&path, &self.meta, frame(&request.encode_to_vec()), left)
            .await
            .map_err(|e| ReadFailed::Node(e.to_string()))?;
        tracing::debug!(upstream = %up.name, from, to, code = answer.code, took = ?started.elapsed(), "GetLogs answered");
        if answer.code == INVALID_ARGUMENT && answer.message().contains("tip height") {
            return Err(ReadFailed::NotYet);
        }
        if answer.code != 0 {
            return Err(ReadFailed::Node(format!(
                "GetLogs {from}..={to}: status {} {}",
                answer.code,
                answer.message()
            )));
        }
        let mut buf = BytesMut::from(&answer.body[..]);
        let message =
            take_message(&mut buf).map_err(|w| ReadFailed::Node(format!("GetLogs: {w}")))?.unwrap_or_default();
        GetLogsResponse::decode(message)
            .map(|r| r.logs)
            .map_err(|e| ReadFailed::Node(format!("GetLogs {from}..={to}: {e}")))
    }
}

/// `grpc-status` INVALID_ARGUMENT: how a node refuses a range past its log index.
const INVALID_ARGUMENT: u32 = 3;

/// The client's filter, from its framed `StreamLogsRequest`.
fn decode_filter(body: &Bytes) -> Result<Option<Bytes>, String> {
    let mut buf = BytesMut::from(&body[..]);
    let message = take_message(&mut buf).map_err(|w| format!("the request is {w}"))?.unwrap_or_default();
    StreamLogsRequest::decode(message)
        .map(|r| r.filter)
        .map_err(|e| format!("the request is not a StreamLogsRequest: {e}"))
}

/// The next frame of the node's stream once it is open; pending until then.
async fn next_frame(node: &mut Option<Incoming>) -> Option<Result<Frame<Bytes>, hyper::Error>> {
    match node {
        Some(body) => body.frame().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(height: u64, index: u32) -> Bytes {
        // contractAddress, blkHeight, index: as a node encodes them.
        let mut out = Vec::new();
        prost::encoding::string::encode(1, &"io1reward".to_owned(), &mut out);
        prost::encoding::uint64::encode(4, &height, &mut out);
        prost::encoding::uint32::encode(6, &index, &mut out);
        Bytes::from(out)
    }

    #[test]
    fn a_log_gives_its_place_and_anything_else_none() {
        assert_eq!(place(&log(42, 3)), Some((42, 3)));
        assert_eq!(place(&log(42, 0)), Some((42, 0)), "index 0 is a place (proto3 leaves it out)");
        assert_eq!(place(b""), None, "no height");
        assert_eq!(place(b"\xff\xff\xff"), None, "not protobuf");
        assert_eq!(place(b"\x22\x01x"), None, "field 4 with the wrong wire type");
    }

    #[test]
    fn repeats_are_what_was_delivered_or_lies_in_a_block_had_in_full() {
        let mut p = Position { through: 10, last: None, live: true };
        assert!(p.repeat((10, 5)), "block 10 was had in full");
        assert!(!p.repeat((11, 0)));
        p.delivered((12, 2));
        assert_eq!(p.through, 11, "blocks before a delivered log are complete");
        assert!(p.repeat((12, 2)) && p.repeat((12, 1)) && p.repeat((11, 9)));
        assert!(!p.repeat((12, 3)) && !p.repeat((13, 0)));
    }

    #[test]
    fn the_filter_is_kept_as_sent_even_when_empty() {
        // StreamLogsRequest{filter: {}}: present and empty, which a node needs to see (absent is refused).
        let empty = frame(&[0x0a, 0x00]);
        assert_eq!(decode_filter(&empty), Ok(Some(Bytes::new())));
        let req = GetLogsRequest {
            filter: Some(Bytes::new()),
            by_range: Some(GetLogsByRange { from_block: 7, to_block: 9 }),
        };
        assert_eq!(req.encode_to_vec(), vec![0x0a, 0x00, 0x1a, 0x04, 0x08, 7, 0x10, 9]);
        let with = frame(&[0x0a, 0x02, 0x0a, 0x00]);
        assert_eq!(decode_filter(&with), Ok(Some(Bytes::from_static(&[0x0a, 0x00]))));
        assert_eq!(decode_filter(&frame(&[])), Ok(None), "no filter: the node refuses it, not the gateway");
        assert!(decode_filter(&Bytes::from_static(b"\x01\x00\x00\x00\x00")).is_err(), "compressed");
        assert!(decode_filter(&frame(b"\x0a\x05ab")).is_err(), "truncated");
    }
}
