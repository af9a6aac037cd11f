//! Failure kinds (the labels in reports and metrics) and the injector's typed errors: a send's [`Kind`],
//! a control call's [`RpcError`], invalid configuration ([`ConfigError`], exit 2) and a failed run ([`RunError`]).
//!
//! A node's rejection is classified once, from its JSON-RPC message or the HTTP status, into a [`Kind`];
//! everything downstream (nonce resync, report, metrics) works on the kind, never on strings.

/// Why one send did not end in an accepted action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The nonce is below the account's pending nonce (someone else used it).
    NonceTooLow,
    /// The nonce is too far above the pending nonce.
    NonceTooHigh,
    /// Another transaction with this nonce is in the pool and this one does not pay enough more.
    ReplacementUnderpriced,
    /// The gas price is below the node's minimum (or the fee cap below the base fee).
    Underpriced,
    /// The action pool is full.
    PoolFull,
    /// The account cannot pay value + gas.
    InsufficientFunds,
    /// The gas limit is below the intrinsic gas.
    IntrinsicGasTooLow,
    /// The gas limit exceeds the block gas limit.
    GasLimit,
    /// The transaction's chain id is not the node's.
    ChainId,
    /// The node already has this exact transaction.
    AlreadyKnown,
    /// HTTP 429 or "server busy".
    Busy,
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made or broke.
    Connection,
    /// A non-200 HTTP status or a body that is not a JSON-RPC answer.
    Http,
    /// Anything else.
    Other,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 15] = [
        Kind::NonceTooLow,
        Kind::NonceTooHigh,
        Kind::ReplacementUnderpriced,
        Kind::Underpriced,
        Kind::PoolFull,
        Kind::InsufficientFunds,
        Kind::IntrinsicGasTooLow,
        Kind::GasLimit,
        Kind::ChainId,
        Kind::AlreadyKnown,
        Kind::Busy,
        Kind::Timeout,
        Kind::Connection,
        Kind::Http,
        Kind::Other,
    ];

    /// The label used in reports, metrics and progress lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NonceTooLow => "nonce_too_low",
            Kind::NonceTooHigh => "nonce_too_high",
            Kind::ReplacementUnderpriced => "replacement_underpriced",
            Kind::Underpriced => "underpriced",
            Kind::PoolFull => "pool_full",
            Kind::InsufficientFunds => "insufficient_funds",
            Kind::IntrinsicGasTooLow => "intrinsic_gas_too_low",
            Kind::GasLimit => "gas_limit",
            Kind::ChainId => "chain_id",
            Kind::AlreadyKnown => "already_known",
            Kind::Busy => "busy",
            Kind::Timeout => "timeout",
            Kind::Connection => "connection",
            Kind::Http => "http",
            Kind::Other => "other",
        }
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(Kind::ALL.len() - 1)
    }

    /// True for refusals that say the action never entered the node's pool, so its nonce is still free:
    /// the price, the funds, the gas, the chain, a full pool or a busy node. Not for nonce-class answers, and
    /// not for an HTTP failure or an unknown message, which do not say.
    pub fn never_entered_pool(self) -> bool {
        matches!(
            self,
            Kind::Underpriced
                | Kind::PoolFull
                | Kind::InsufficientFunds
                | Kind::IntrinsicGasTooLow
                | Kind::GasLimit
                | Kind::ChainId
                | Kind::Busy
        )
    }

    /// Rejections that mean "our idea of this account's nonce is wrong": resync and try again.
    pub fn is_nonce_class(self) -> bool {
        matches!(self, Kind::NonceTooLow | Kind::NonceTooHigh | Kind::ReplacementUnderpriced | Kind::AlreadyKnown)
    }

    /// Classifies a node's error message (IoTeX, geth, anvil, ganache wordings).
    pub fn from_message(message: &str) -> Kind {
        let m = message.to_ascii_lowercase();
        let has = |s: &str| m.contains(s);
        if has("nonce too low") || has("nonce is too low") || has("already used") {
            Kind::NonceTooLow
        } else if has("nonce too high") || has("nonce is too high") || has("exceeds the maximum") && has("nonce") {
            Kind::NonceTooHigh
        } else if has("replacement") && has("underpriced") {
            Kind::ReplacementUnderpriced
        } else if has("underpriced")
            || has("gas price too low")
            || has("less than block base fee")
            || has("fee cap") && has("base fee")
            || has("gasprice is too low")
            || has("lower than minimal")
        {
            Kind::Underpriced
        } else if has("pool is full") || has("txpool is full") || has("pool full") || has("exceeds pool capacity") {
            Kind::PoolFull
        } else if has("insufficient funds")
            || has("insufficient balance")
            || has("not enough funds")
            || has("sender doesn't have enough funds")
        {
            Kind::InsufficientFunds
        } else if has("intrinsic gas") {
            Kind::IntrinsicGasTooLow
        } else if has("gas limit") || has("exceeds block gas") {
            Kind::GasLimit
        } else if has("chainid") || has("chain id") || has("chain-id") {
            Kind::ChainId
        } else if has("already known") || has("known transaction") || has("already imported") || has("already exists") {
            Kind::AlreadyKnown
        } else if has("server busy") || has("too many requests") || has("rate limit") {
            Kind::Busy
        } else {
            Kind::Other
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed JSON-RPC call to one endpoint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} on {endpoint}: {kind}: {message}")]
pub struct RpcError {
    /// The endpoint URL.
    pub endpoint: String,
    /// The method called.
    pub method: &'static str,
    /// Classified kind.
    pub kind: Kind,
    /// What the node or the transport said.
    pub message: String,
}

/// Invalid configuration, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// clap refused the command line (its message is already formatted).
    #[error("{0}")]
    Cli(String),
    /// `--help` or `--version`: print the text and exit 0.
    #[error("{0}")]
    Help(String),
    /// The TOML file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A flag value is invalid.
    #[error("--{flag}: {reason}")]
    Invalid {
        /// The flag (long name).
        flag: &'static str,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The rate profile is invalid.
    #[error(transparent)]
    Profile(#[from] crate::schedule::ProfileError),
    /// A `--fail-if` expression is invalid.
    #[error(transparent)]
    Threshold(#[from] crate::thresholds::ThresholdError),
}

impl ConfigError {
    /// A stable label.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigError::Cli(_) => "cli",
            ConfigError::Help(_) => "help",
            ConfigError::File { .. } => "config_file",
            ConfigError::Invalid { .. } => "invalid_flag",
            ConfigError::Profile(_) => "profile",
            ConfigError::Threshold(_) => "threshold",
        }
    }

    /// `--{flag}: {reason}`.
    pub fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { flag, reason: reason.into() }
    }
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration is invalid (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An endpoint did not answer at start.
    #[error("endpoint {endpoint} is not reachable at start ({source}); check the URL and that the node is up")]
    EndpointDown {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        source: RpcError,
    },
    /// Chain ids disagree: among endpoints, or with `--chain-id`.
    #[error("chain id mismatch: {0}; refusing to sign actions that a node would drop")]
    ChainId(String),
    /// Setting up the run failed (funding, contract deployment, initial nonces).
    #[error("set-up failed: {0}")]
    Setup(String),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The metrics listener could not be bound.
    #[error("cannot listen for metrics on {addr} ({source}); choose another with --metrics-listen")]
    Metrics {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RunError {
    /// A stable label for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::Config(_) => "config",
            RunError::EndpointDown { .. } => "endpoint_down",
            RunError::ChainId(_) => "chain_id",
            RunError::Setup(_) => "setup",
            RunError::Output { .. } => "output",
            RunError::Metrics { .. } => "metrics",
        }
    }

    /// The process exit code: 2 for bad configuration, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_node_wordings() {
        let cases = [
            ("nonce too low", Kind::NonceTooLow),
            ("Nonce too low. Expected nonce to be 5 but got 3.", Kind::NonceTooLow),
            ("nonce too high", Kind::NonceTooHigh),
            ("replacement transaction underpriced", Kind::ReplacementUnderpriced),
            ("transaction underpriced", Kind::Underpriced),
            ("max fee per gas less than block base fee", Kind::Underpriced),
            ("txpool is full", Kind::PoolFull),
            ("insufficient funds for gas * price + value", Kind::InsufficientFunds),
            ("sender doesn't have enough funds to send tx.", Kind::InsufficientFunds),
            ("intrinsic gas too low", Kind::IntrinsicGasTooLow),
            ("invalid chainID", Kind::ChainId),
            ("known transaction", Kind::AlreadyKnown),
            ("server busy", Kind::Busy),
            ("execution reverted", Kind::Other),
        ];
        for (msg, want) in cases {
            assert_eq!(Kind::from_message(msg), want, "{msg}");
        }
    }

    #[test]
    fn labels_are_unique_and_indexed() {
        let mut labels: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Kind::ALL.len());
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
