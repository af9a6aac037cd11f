//! The one place gateway errors become wire responses: a JSON-RPC code, a message and an HTTP status.
//!
//! - [`CallError`]: why one call was answered by the gateway itself; [`CallError::body`] is its error body.
//! - [`AuthError`]: why an access token was refused (401).
//! - [`HttpRefusal`]: an HTTP request refused before any JSON-RPC is read (405, 413, 400, 429, 401), as a
//!   whole response with its headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
//! - [`WsRefusal`]: one WebSocket message refused (rate limit, token, bad frame, subscription limits), as a
//!   JSON-RPC error under the message's id; [`WsClose`]: why the gateway closes a WebSocket.
//! - [`node_error_body`] and [`readdressed`]: a node's error passed to a caller under the caller's id.

use crate::outcome::{AttemptOutcome, Outcome};
use crate::upstream::AttemptError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use iotex_shared::jsonrpc::{self, InvalidRequest, codes};
use serde_json::value::RawValue;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// JSON-RPC "invalid params" (unknown subscription topic, malformed filter).
pub const INVALID_PARAMS: i64 = -32602;

/// Why the gateway answered a call itself instead of passing a node's answer through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The body is not JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// Not a valid request object.
    #[error("invalid request: {0}")]
    Invalid(InvalidRequest),
    /// `[]`.
    #[error("invalid request: empty batch")]
    EmptyBatch,
    /// More items than `max-batch-size`.
    #[error("invalid request: batch of {len} exceeds the limit of {max}")]
    BatchTooLarge {
        /// Items sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The method policy refused the method.
    #[error("method `{0}` is not available through this gateway")]
    MethodNotAllowed(String),
    /// Nothing routable.
    #[error("no healthy upstream: every node is down, lagging or ejected; try again shortly")]
    NoUpstream,
    /// Every routable upstream stayed at its in-flight cap until the deadline.
    #[error("all upstreams are busy (at their in-flight limit); try again shortly")]
    Saturated,
    /// The attempts failed.
    #[error("upstream failed ({}) and no retry was possible", .0.kind.as_str())]
    Upstream(AttemptError),
    /// The deadline passed.
    #[error("no upstream answered within the request timeout")]
    Deadline,
    /// A filter call whose creating node is no longer in the upstream set (filters live in one node's memory).
    #[error("filter not found: the node that created it ({0}) is no longer behind this gateway; create a new filter")]
    FilterLost(String),
    /// A filter id this gateway never handed out (or mangled), which therefore names no node.
    #[error("filter not found: `{0}` is not a filter id issued by this gateway")]
    FilterUnknown(String),
    /// A node answered a sub-batch without an answer for this item.
    #[error("the node answered the batch without an answer for this item")]
    MissingBatchAnswer,
    /// An `eth_getLogs` range wider than `logs-max-range` (blocks counted after resolving tags and lowering
    /// `toBlock` to the head).
    #[error(
        "eth_getLogs over {blocks} blocks exceeds this gateway's limit of {max} blocks per call; ask for at most {max} blocks at a time"
    )]
    LogsRangeTooWide {
        /// Blocks asked for.
        blocks: u64,
        /// `logs-max-range`.
        max: u64,
    },
    /// A node answered one chunk of a split `eth_getLogs` with something other than a list of logs.
    #[error("split eth_getLogs: {0}")]
    LogsChunkInvalid(crate::logs::NotALogList),
}

impl CallError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            CallError::Parse(_) => codes::PARSE_ERROR,
            CallError::Invalid(_) | CallError::EmptyBatch | CallError::BatchTooLarge { .. } => codes::INVALID_REQUEST,
            CallError::MethodNotAllowed(_) => codes::METHOD_NOT_FOUND,
            CallError::NoUpstream | CallError::Saturated => codes::RESOURCE_UNAVAILABLE,
            // EIP-1474 "limit exceeded": the answer is bigger than this gateway passes on.
            CallError::Upstream(e) if e.kind == AttemptOutcome::TooLarge => codes::LIMIT_EXCEEDED,
            CallError::Upstream(e) if e.kind == AttemptOutcome::OverBudget => codes::RESOURCE_UNAVAILABLE,
            CallError::Upstream(_) => codes::UPSTREAM_FAILED,
            CallError::Deadline => codes::DEADLINE_EXCEEDED,
            // What geth and IoTeX answer for an unknown filter, so client libraries recreate the filter.
            CallError::FilterLost(_) | CallError::FilterUnknown(_) => codes::SERVER_ERROR,
            CallError::MissingBatchAnswer | CallError::LogsChunkInvalid(_) => codes::INTERNAL_ERROR,
            // EIP-1474 "limit exceeded", the code providers use for a too-wide log query.
            CallError::LogsRangeTooWide { .. } => codes::LIMIT_EXCEEDED,
        }
    }

    /// The HTTP status when this error is the whole answer.
    pub fn status(&self) -> StatusCode {
        match self {
            CallError::Parse(_) | CallError::Invalid(_) | CallError::EmptyBatch | CallError::BatchTooLarge { .. } => {
                StatusCode::BAD_REQUEST
            }
            CallError::MethodNotAllowed(_) => StatusCode::OK,
            CallError::NoUpstream | CallError::Saturated => StatusCode::SERVICE_UNAVAILABLE,
            // A JSON-RPC refusal of this call, like a too-wide log range: the transport worked.
            CallError::Upstream(e) if e.kind == AttemptOutcome::TooLarge => StatusCode::OK,
            CallError::Upstream(e) if e.kind == AttemptOutcome::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Upstream(_) => StatusCode::BAD_GATEWAY,
            CallError::Deadline => StatusCode::GATEWAY_TIMEOUT,
            CallError::FilterLost(_) | CallError::FilterUnknown(_) => StatusCode::OK,
            CallError::MissingBatchAnswer | CallError::LogsChunkInvalid(_) => StatusCode::BAD_GATEWAY,
            // A JSON-RPC refusal of this call, like a denied method: the transport worked.
            CallError::LogsRangeTooWide { .. } => StatusCode::OK,
        }
    }

    /// The metrics outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            CallError::Parse(_) | CallError::Invalid(_) | CallError::EmptyBatch | CallError::BatchTooLarge { .. } => {
                Outcome::Invalid
            }
            CallError::MethodNotAllowed(_) => Outcome::Denied,
            CallError::NoUpstream | CallError::Saturated => Outcome::NoUpstream,
            CallError::Upstream(_) => Outcome::UpstreamError,
            CallError::Deadline => Outcome::Timeout,
            CallError::FilterLost(_) | CallError::FilterUnknown(_) => Outcome::RpcError,
            CallError::MissingBatchAnswer | CallError::LogsChunkInvalid(_) => Outcome::UpstreamError,
            CallError::LogsRangeTooWide { .. } => Outcome::Denied,
        }
    }

    /// The message on the wire. Method names are truncated so a hostile name is not reflected at length.
    pub fn message(&self) -> String {
        match self {
            CallError::MethodNotAllowed(m) if m.len() > 64 => {
                let cut: String = m.chars().take(64).collect();
                format!("method `{cut}…` is not available through this gateway")
            }
            // The detail says which limit and what to do; it names no node (the upstream name stays in logs).
            CallError::Upstream(e) if e.kind.is_gateway_limit() => e.detail.clone(),
            CallError::FilterUnknown(id) if id.len() > 80 => {
                let cut: String = id.chars().take(80).collect();
                format!("filter not found: `{cut}…` is not a filter id issued by this gateway")
            }
            other => other.to_string(),
        }
    }

    /// The JSON-RPC error body under the caller's id.
    pub fn body(&self, id: Option<&RawValue>) -> Bytes {
        Bytes::from(jsonrpc::error_response(id, self.code(), &self.message()))
    }
}

/// A node's JSON-RPC error (code and message) under the caller's id: a node refused a whole sub-batch with
/// one error object, and each item carries it.
pub fn node_error_body(id: Option<&RawValue>, code: i64, message: &str) -> Bytes {
    Bytes::from(jsonrpc::error_response(id, code, message))
}

/// A node's whole error object (with its `data`) under another caller's id.
pub fn readdressed(id: Option<&RawValue>, error: &RawValue) -> Bytes {
    let id = id.map_or("null", RawValue::get);
    Bytes::from(format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{}}}", error.get()))
}

/// A JSON response with `status`.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An HTTP request refused before any JSON-RPC is read; the body is a JSON-RPC error with a null id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRefusal {
    /// 405: JSON-RPC over HTTP is POST only.
    NotPost,
    /// 413: the body is over `max-body-bytes`.
    TooLarge {
        /// `max-body-bytes`.
        max: usize,
    },
    /// 400: the body broke off while being read.
    Unreadable,
    /// 408: the body was not all in within `body-read-timeout`; the connection is closed.
    BodyTimeout(Duration),
    /// 400: a WebSocket upgrade request that is not a valid handshake; says what is wrong.
    BadHandshake(&'static str),
    /// 429: over the per-client rate limit or the token's quota; retry after the wait.
    RateLimited(Duration),
    /// 401: the access token was refused.
    Unauthorized(AuthError),
}

impl HttpRefusal {
    /// The whole answer.
    pub fn response(self) -> Response<Full<Bytes>> {
        let (status, code, message) = match self {
            HttpRefusal::NotPost => {
                (StatusCode::METHOD_NOT_ALLOWED, codes::INVALID_REQUEST, "JSON-RPC requests must be POSTed".into())
            }
            HttpRefusal::TooLarge { max } => {
                (StatusCode::PAYLOAD_TOO_LARGE, codes::INVALID_REQUEST, format!("request body exceeds {max} bytes"))
            }
            HttpRefusal::Unreadable => {
                (StatusCode::BAD_REQUEST, codes::PARSE_ERROR, "request body could not be read".into())
            }
            HttpRefusal::BodyTimeout(limit) => (
                StatusCode::REQUEST_TIMEOUT,
                codes::INVALID_REQUEST,
                format!("request body not received within {}s; send the whole body at once", limit.as_secs_f64()),
            ),
            HttpRefusal::BadHandshake(why) => (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, why.to_owned()),
            HttpRefusal::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                codes::LIMIT_EXCEEDED,
                "rate limit exceeded; slow down and retry after the Retry-After delay".into(),
            ),
            HttpRefusal::Unauthorized(e) => (e.status(), e.code(), e.message()),
        };
        let mut resp = json_response(status, Bytes::from(jsonrpc::error_response(None, code, &message)));
        let headers = resp.headers_mut();
        match self {
            HttpRefusal::NotPost => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            HttpRefusal::RateLimited(wait) => {
                // Whole seconds, rounded up, at least 1.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            HttpRefusal::Unauthorized(e) => {
                let challenge = match e {
                    AuthError::Missing => HeaderValue::from_static("Bearer realm=\"iotex-gateway\""),
                    _ => HeaderValue::from_static("Bearer realm=\"iotex-gateway\", error=\"invalid_token\""),
                };
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            HttpRefusal::BodyTimeout(_) => {
                // The rest of the body may still trickle in: the connection cannot carry another request.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            HttpRefusal::TooLarge { .. } | HttpRefusal::Unreadable | HttpRefusal::BadHandshake(_) => {}
        }
        resp
    }
}

/// One WebSocket message refused; answered as a JSON-RPC error under the message's id, the session stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsRefusal {
    /// The session's token is over its tier's quota.
    TokenOverQuota(Duration),
    /// The session's token was revoked (or its tier removed) while the session was open.
    Token(AuthError),
    /// The client is over the per-client rate limit.
    RateLimited(Duration),
    /// A binary frame.
    BinaryFrame,
    /// Unusable `eth_subscribe`/`eth_unsubscribe` params; says what is accepted.
    InvalidParams(String),
    /// The connection already holds `ws-max-subscriptions`.
    TooManySubscriptions {
        /// `ws-max-subscriptions`.
        max: usize,
    },
    /// No upstream has a WebSocket URL.
    NoSubscriptions,
}

impl WsRefusal {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            WsRefusal::TokenOverQuota(_) | WsRefusal::RateLimited(_) | WsRefusal::TooManySubscriptions { .. } => {
                codes::LIMIT_EXCEEDED
            }
            WsRefusal::Token(e) => e.code(),
            WsRefusal::BinaryFrame => codes::PARSE_ERROR,
            WsRefusal::InvalidParams(_) => INVALID_PARAMS,
            WsRefusal::NoSubscriptions => codes::RESOURCE_UNAVAILABLE,
        }
    }

    /// The message on the wire.
    pub fn message(&self) -> String {
        match self {
            WsRefusal::TokenOverQuota(wait) => {
                format!("token quota exceeded; retry in {} ms", wait.as_millis().max(1))
            }
            WsRefusal::Token(e) => e.message(),
            WsRefusal::RateLimited(wait) => format!("rate limit exceeded; retry in {} ms", wait.as_millis().max(1)),
            WsRefusal::BinaryFrame => {
                "binary frames are not accepted; send JSON-RPC requests as text frames".to_owned()
            }
            WsRefusal::InvalidParams(why) => why.clone(),
            WsRefusal::TooManySubscriptions { max } => {
                format!("this connection already holds {max} subscriptions (ws-max-subscriptions); unsubscribe first")
            }
            WsRefusal::NoSubscriptions => {
                "subscriptions are unavailable: no upstream has a WebSocket URL (upstream-ws)".to_owned()
            }
        }
    }

    /// The JSON-RPC error text under the message's id.
    pub fn body(&self, id: Option<&RawValue>) -> String {
        jsonrpc::error_response(id, self.code(), &self.message())
    }
}

/// Why the gateway closes a client's WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsClose {
    /// The gateway is draining (1001).
    ShuttingDown,
    /// A message over `max-body-bytes` (1009).
    MessageTooLong {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The client's outgoing queue (`ws-send-queue` messages) is full (1008).
    SlowQueue {
        /// `ws-send-queue`.
        queue: usize,
    },
    /// The client missed notifications (1008).
    SlowMissed {
        /// Notifications missed.
        missed: u64,
    },
    /// The session's access token was revoked, its tier removed, or it expired while the session was open
    /// (1008): its subscriptions stop with it.
    Token(AuthError),
}

impl WsClose {
    /// The close frame.
    pub fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            WsClose::ShuttingDown => (CloseCode::Away, "gateway shutting down; reconnect".to_owned()),
            WsClose::MessageTooLong { size, max } => {
                (CloseCode::Size, format!("message of {size} bytes exceeds the limit of {max} (max-body-bytes)"))
            }
            WsClose::SlowQueue { queue } => (
                CloseCode::Policy,
                format!(
                    "client too slow: {queue} messages waiting to be read (ws-send-queue); read faster or subscribe to less"
                ),
            ),
            WsClose::SlowMissed { missed } => (
                CloseCode::Policy,
                format!("client too slow: {missed} notifications missed; reconnect and resubscribe"),
            ),
            WsClose::Token(e) => (CloseCode::Policy, e.to_string()),
        };
        CloseFrame { code, reason: reason.into() }
    }
}

/// Why an access token was refused: always HTTP 401 with JSON-RPC `-32012` and a message that names the
/// reason but never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `require-token` is set and the call carried no token.
    #[error("an access token is required: send `Authorization: Bearer <token>` (or `?token=` on the URL)")]
    Missing,
    /// Not a token in this gateway's format.
    #[error("access token is malformed")]
    Malformed,
    /// Signed by a key this gateway does not trust (or not at all).
    #[error("access token is not signed by a key this gateway trusts")]
    UnknownKey,
    /// The signature does not match the token's content.
    #[error("access token signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("access token has expired; ask for a new one")]
    Expired,
    /// Its id is on the revocation list.
    #[error("access token has been revoked")]
    Revoked,
    /// Validly signed for a tier this gateway has no quota for.
    #[error("access token's tier is not configured on this gateway")]
    UnknownTier,
}

impl AuthError {
    /// Every value, in label order.
    pub const ALL: [AuthError; 7] = [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::UnknownKey,
        AuthError::BadSignature,
        AuthError::Expired,
        AuthError::Revoked,
        AuthError::UnknownTier,
    ];

    /// The JSON-RPC error code.
    pub fn code(self) -> i64 {
        codes::UNAUTHORIZED
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    /// The message on the wire.
    pub fn message(self) -> String {
        self.to_string()
    }

    /// `iotex_gateway_auth_rejected_total{reason}`.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::UnknownKey => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::Revoked => "revoked",
            AuthError::UnknownTier => "unknown_tier",
        }
    }

    /// RFC 6750 `error` attribute of the `WWW-Authenticate` header.
    pub fn bearer_error(self) -> &'static str {
        match self {
            AuthError::Missing => "invalid_request",
            _ => "invalid_token",
        }
    }
}

impl From<crate::token::TokenError> for AuthError {
    fn from(e: crate::token::TokenError) -> Self {
        use crate::token::TokenError;
        match e {
            TokenError::Malformed(_) => AuthError::Malformed,
            TokenError::UnknownKey => AuthError::UnknownKey,
            TokenError::BadSignature => AuthError::BadSignature,
            TokenError::Expired { .. } => AuthError::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        assert_eq!(CallError::NoUpstream.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(CallError::NoUpstream.code(), -32002);
        assert_eq!(CallError::MethodNotAllowed("x".into()).code(), -32601);
        assert_eq!(CallError::EmptyBatch.code(), -32600);
        assert_eq!(CallError::Parse("x".into()).code(), -32700);
        assert!(CallError::MethodNotAllowed("a".repeat(10_000)).message().len() < 200);
        let wide = CallError::LogsRangeTooWide { blocks: 20_000, max: 10_000 };
        assert_eq!((wide.code(), wide.status()), (-32005, StatusCode::OK));
        assert!(wide.message().contains("20000 blocks") && wide.message().contains("10000"), "{}", wide.message());
    }

    #[test]
    fn auth_errors_are_401_minus_32012_with_distinct_reasons() {
        let mut reasons = std::collections::HashSet::new();
        for e in AuthError::ALL {
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(e.code(), -32012);
            assert!(reasons.insert(e.reason()), "{e:?}");
        }
    }

    #[test]
    fn refusals_carry_their_status_and_headers() {
        let r = HttpRefusal::Unauthorized(AuthError::Revoked).response();
        assert_eq!(r.status(), 401);
        assert!(r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
        let r = HttpRefusal::RateLimited(Duration::from_millis(1300)).response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = HttpRefusal::NotPost.response();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "POST");
        assert_eq!(HttpRefusal::TooLarge { max: 10 }.response().status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
