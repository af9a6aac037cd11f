//! The one place gateway errors become wire responses: a JSON-RPC code, a message and an HTTP status.

use crate::metrics::Outcome;
use crate::upstream::AttemptError;
use http::StatusCode;
use iotex_shared::jsonrpc::{InvalidRequest, codes};

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
            CallError::FilterUnknown(id) if id.len() > 80 => {
                let cut: String = id.chars().take(80).collect();
                format!("filter not found: `{cut}…` is not a filter id issued by this gateway")
            }
            other => other.to_string(),
        }
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
}
