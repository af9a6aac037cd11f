//! The outcome vocabulary: what became of a client call ([`Outcome`]) and of one upstream attempt
//! ([`AttemptOutcome`]). A leaf: metrics count these, errors map to them, upstream calls classify into them,
//! and none of those modules has to import another to agree on the words. The `as_str` values are metric
//! label values (a contract for dashboards and alerts).

/// What became of one client call (one batch item counts as one call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A node answered with a result.
    Ok,
    /// A node answered with a JSON-RPC error (e.g. execution reverted): passed through, not the gateway's fault.
    RpcError,
    /// The method policy refused it.
    Denied,
    /// Not a valid JSON-RPC request.
    Invalid,
    /// No upstream was routable.
    NoUpstream,
    /// Every attempt failed (connection, 5xx, 429, malformed answer) or the retry budget ran out.
    UpstreamError,
    /// The request deadline passed.
    Timeout,
}

impl Outcome {
    /// Every value, in label order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::RpcError,
        Outcome::Denied,
        Outcome::Invalid,
        Outcome::NoUpstream,
        Outcome::UpstreamError,
        Outcome::Timeout,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::RpcError => "rpc_error",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::NoUpstream => "no_upstream",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Timeout => "timeout",
        }
    }

    /// Index into [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What became of one upstream attempt; also the retry reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx with a result.
    Ok,
    /// 2xx with a JSON-RPC error.
    RpcError,
    /// Could not connect (the request never left).
    Connect,
    /// No complete answer within the attempt timeout.
    Timeout,
    /// HTTP 5xx.
    Http5xx,
    /// HTTP 429 (IoTeX's "busy", often with an empty body).
    Http429,
    /// Another non-2xx status without a JSON-RPC body.
    Http4xx,
    /// The connection broke while sending or reading.
    Transport,
    /// 2xx but not a JSON-RPC response.
    InvalidResponse,
    /// The answer is over `max-response-bytes`: the query's fault, not the node's.
    TooLarge,
    /// The gateway's answer buffer budget stayed full: the gateway's state, not the node's.
    OverBudget,
}

impl AttemptOutcome {
    /// Every value, in label order.
    pub const ALL: [AttemptOutcome; 11] = [
        AttemptOutcome::Ok,
        AttemptOutcome::RpcError,
        AttemptOutcome::Connect,
        AttemptOutcome::Timeout,
        AttemptOutcome::Http5xx,
        AttemptOutcome::Http429,
        AttemptOutcome::Http4xx,
        AttemptOutcome::Transport,
        AttemptOutcome::InvalidResponse,
        AttemptOutcome::TooLarge,
        AttemptOutcome::OverBudget,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::RpcError => "rpc_error",
            AttemptOutcome::Connect => "connect",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Http5xx => "http_5xx",
            AttemptOutcome::Http429 => "http_429",
            AttemptOutcome::Http4xx => "http_4xx",
            AttemptOutcome::Transport => "transport",
            AttemptOutcome::InvalidResponse => "invalid_response",
            AttemptOutcome::TooLarge => "too_large",
            AttemptOutcome::OverBudget => "over_budget",
        }
    }

    /// Index into [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// True when the upstream answered as a node should (even with a JSON-RPC error).
    pub fn is_answer(self) -> bool {
        matches!(self, AttemptOutcome::Ok | AttemptOutcome::RpcError)
    }

    /// True when the failure says nothing about the node's health (the answer was too big for this gateway,
    /// or the gateway had no room for it): not reported to health, and not retried elsewhere.
    pub fn is_gateway_limit(self) -> bool {
        matches!(self, AttemptOutcome::TooLarge | AttemptOutcome::OverBudget)
    }
}
