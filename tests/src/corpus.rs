//! The execution-apis request corpus (`tests/corpus/`, CC0) for differential tests: the same request sent to a
//! node directly and through the gateway must get the same answer, ids aside.

use serde_json::Value;

/// Every request of the corpus as `(case, request)`, in file order.
pub fn load() -> anyhow::Result<Vec<(String, Value)>> {
    // The corpus ships in the repository (tests/corpus/README.md says where it comes from).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/execution-apis-requests.jsonl");
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "corpus not found at {path} ({e}); it is part of the repository: restore it with `git checkout -- tests/corpus`"
        )
    })?;
    let cases = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            Ok((v["case"].as_str().unwrap_or("?").to_owned(), v["request"].clone()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(cases.len() > 200, "corpus looks truncated: {} requests", cases.len());
    Ok(cases)
}

/// An answer without its `id` (the gateway answers under the client's id, the node under its own).
pub fn without_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    v
}

/// Whether the gateway's default method policy denies `method` (it answers -32601 instead of the node).
pub fn denied_by_default(method: &str) -> bool {
    ["debug_", "admin_", "personal_", "miner_", "txpool_", "anvil_", "hardhat_", "evm_", "eth_sign"]
        .iter()
        .any(|p| method.starts_with(p))
        || method == "eth_sendTransaction"
}
