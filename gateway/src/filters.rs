//! Sticky filters: a filter lives in the memory of the node that created it, so every later call on it
//! must reach that node.
//!
//! Instead of a table, the gateway writes the creating node into the filter id it hands out:
//! `0x` + 16 hex digits naming the node (the first 8 bytes of Keccak-256 of its URL) + the node's own id
//! without its `0x`. Calls on the id go to the node it names, with the node's own id put back. Because the
//! id carries the route, it keeps working across gateway replicas behind one Service and across gateway
//! restarts, and costs no memory; nothing has to expire.
//!
//! Refusals: an id whose node is no longer in the upstream set gets a JSON-RPC `-32000` "filter not found"
//! that names the node (client libraries recreate filters on that message); so does an id this gateway did
//! not issue. A node that forgot the filter (restarted, or the 15-minute TTL passed) answers for itself, and
//! that answer is passed through.

use crate::upstream::Upstream;

/// Methods that create a filter on the node they reach.
pub fn creates(method: &str) -> bool {
    matches!(method, "eth_newFilter" | "eth_newBlockFilter" | "eth_newPendingTransactionFilter")
}

/// Methods whose first parameter is a filter id.
pub fn uses(method: &str) -> bool {
    matches!(method, "eth_getFilterChanges" | "eth_getFilterLogs" | "eth_uninstallFilter")
}

const TAG_HEX: usize = 16;

/// The route tag of an upstream: stable for a URL, so every replica computes the same one.
pub fn tag(upstream: &Upstream) -> u64 {
    tag_of_url(&upstream.config.url)
}

/// The route tag of an upstream URL (as configured or discovered).
pub fn tag_of_url(url: &url::Url) -> u64 {
    let h = alloy_primitives::keccak256(url.as_str().as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

/// The id handed to the client for a node's filter id, or `None` when the node's id is not `0x`-hex (then
/// it is passed through as is, and calls on it are routed like any read).
pub fn wrap(tag: u64, node_id: &str) -> Option<String> {
    let hex = node_id.strip_prefix("0x")?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() > 128 {
        return None;
    }
    Some(format!("0x{tag:016x}{hex}"))
}

/// Splits a client's filter id into the node's tag and the node's own id.
pub fn unwrap(client_id: &str) -> Option<(u64, String)> {
    let hex = client_id.strip_prefix("0x")?;
    if hex.len() <= TAG_HEX || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (tag, rest) = hex.split_at(TAG_HEX);
    let tag = u64::from_str_radix(tag, 16).ok()?;
    Some((tag, format!("0x{rest}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn methods() {
        assert!(creates("eth_newFilter") && creates("eth_newBlockFilter"));
        assert!(uses("eth_getFilterChanges") && uses("eth_uninstallFilter") && uses("eth_getFilterLogs"));
        assert!(!uses("eth_getLogs") && !creates("eth_getLogs"));
    }

    #[test]
    fn hostile_ids_are_refused_not_panicked_on() {
        for bad in ["", "0x", "0xzz", "0x1234", "x0123456789abcdef01", "0x0123456789abcdef", "0x\u{e9}\u{e9}"] {
            assert!(unwrap(bad).is_none(), "{bad:?}");
        }
        assert!(wrap(1, "12").is_none());
        assert!(wrap(1, "0x").is_none());
        assert!(wrap(1, &format!("0x{}", "a".repeat(200))).is_none());
    }

    proptest! {
        #[test]
        fn wrap_then_unwrap_gives_back_the_node_and_its_id(tag in any::<u64>(), id in "[0-9a-f]{1,64}") {
            let node_id = format!("0x{id}");
            let client = wrap(tag, &node_id).unwrap();
            prop_assert_eq!(unwrap(&client), Some((tag, node_id)));
        }
    }
}
