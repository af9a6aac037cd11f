//! The method policy: which JSON-RPC methods may pass through the gateway.
//!
//! Deny globs are checked first, then allow globs. A refused call is answered `-32601` by the gateway and
//! never forwarded, so a node's admin, signing or dev-control methods are unreachable from outside.
//!
//! The verdict for every name in the [`crate::methods`] table is worked out once when the policy is built, so
//! a call to a known method costs a binary search instead of two glob-set matches; other names are matched
//! against the globs.

use crate::methods;
use globset::{Glob, GlobSet, GlobSetBuilder};

/// Compiled allow and deny globs.
#[derive(Debug, Clone)]
pub struct MethodPolicy {
    allow: GlobSet,
    deny: GlobSet,
    /// The verdict for each row name of [`methods::METHODS`], by position.
    known: Vec<bool>,
}

/// A glob that does not compile (config validation catches this first).
#[derive(Debug, thiserror::Error)]
#[error("method glob `{glob}`: {source}")]
pub struct PolicyError {
    glob: String,
    source: globset::Error,
}

fn build(globs: &[String]) -> Result<GlobSet, PolicyError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).map_err(|source| PolicyError { glob: g.clone(), source })?);
    }
    b.build().map_err(|source| PolicyError { glob: globs.join(","), source })
}

fn by_globs(allow: &GlobSet, deny: &GlobSet, method: &str) -> bool {
    !deny.is_match(method) && allow.is_match(method)
}

impl MethodPolicy {
    /// Compiles the policy.
    pub fn new(allow: &[String], deny: &[String]) -> Result<MethodPolicy, PolicyError> {
        let (allow, deny) = (build(allow)?, build(deny)?);
        let known = methods::METHODS.iter().map(|row| by_globs(&allow, &deny, row.name)).collect();
        Ok(MethodPolicy { allow, deny, known })
    }

    /// True when `method` may be forwarded.
    pub fn allows(&self, method: &str) -> bool {
        self.allows_known(method, &methods::known(method))
    }

    /// [`MethodPolicy::allows`] with the table lookup already made.
    pub fn allows_known(&self, method: &str, known: &methods::Known) -> bool {
        match known.position.and_then(|i| self.known.get(i)) {
            Some(verdict) => *verdict,
            None => by_globs(&self.allow, &self.deny, method),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::DEFAULT_DENY;

    fn default_policy() -> MethodPolicy {
        let deny: Vec<String> = DEFAULT_DENY.iter().map(|s| (*s).to_owned()).collect();
        MethodPolicy::new(&["*".to_owned()], &deny).unwrap()
    }

    #[test]
    fn default_denies_admin_signing_and_dev_controls() {
        let p = default_policy();
        for m in [
            "admin_peers",
            "debug_traceTransaction",
            "personal_unlockAccount",
            "miner_start",
            "txpool_content",
            "anvil_mine",
            "hardhat_reset",
            "evm_mine",
            "eth_sign",
            "eth_signTransaction",
            "eth_signTypedData_v4",
            "eth_sendTransaction",
        ] {
            assert!(!p.allows(m), "{m} must be denied");
        }
        for m in
            ["eth_call", "eth_sendRawTransaction", "eth_getLogs", "net_version", "web3_clientVersion", "eth_syncing"]
        {
            assert!(p.allows(m), "{m} must be allowed");
        }
    }

    #[test]
    fn allow_list_narrows_and_deny_wins() {
        let p = MethodPolicy::new(&["eth_*".into()], &["eth_getLogs".into()]).unwrap();
        assert!(p.allows("eth_call"));
        assert!(!p.allows("net_version"));
        assert!(!p.allows("eth_getLogs"));
        assert!(!p.allows(""));
    }
}
