//! Differential test: every request of ethereum/execution-apis' test corpus, sent to a real node directly
//! and through the gateway, gets the same answer (ids aside). Denied methods are the exception by design
//! and must get -32601 from the gateway instead.
//!
//! `eth_sendRawTransaction` cases are left out: the first send changes the node's state, so the second
//! answer legitimately differs.

use iotex_tests::gateway::TestGateway;
use iotex_tests::http::RawClient;
use iotex_tests::nodes::Node;
use serde_json::Value;

fn corpus() -> anyhow::Result<Vec<(String, Value)>> {
    // The corpus ships in the repository (tests/corpus/README.md says where it comes from).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/execution-apis-requests.jsonl");
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("corpus not found at {path} ({e}); it is part of the repository: restore it with `git checkout -- tests/corpus`")
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            Ok((v["case"].as_str().unwrap_or("?").to_owned(), v["request"].clone()))
        })
        .collect()
}

fn without_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    v
}

async fn differential(node: Node) -> anyhow::Result<()> {
    let gw = TestGateway::new().upstream("node", &node.url).spawn().await?;
    let c = RawClient::new();
    let cases = corpus()?;
    assert!(cases.len() > 200, "corpus looks truncated: {}", cases.len());
    let policy_denied = |m: &str| {
        ["debug_", "admin_", "personal_", "miner_", "txpool_", "anvil_", "hardhat_", "evm_", "eth_sign"]
            .iter()
            .any(|p| m.starts_with(p))
            || m == "eth_sendTransaction"
    };
    let (mut compared, mut denied, mut mismatches) = (0, 0, Vec::new());
    for (case, req) in cases {
        let method = req["method"].as_str().unwrap_or("").to_owned();
        if method == "eth_sendRawTransaction" {
            continue;
        }
        let body = serde_json::to_vec(&req)?;
        let through = c.post(&gw.url, body.clone()).await?;
        if policy_denied(&method) {
            assert_eq!(through.json()["error"]["code"], -32601, "{case}");
            denied += 1;
            continue;
        }
        let direct = c.post(&node.url, body).await?;
        let (d, t): (Value, Value) = (
            serde_json::from_slice(&direct.body).unwrap_or(Value::String(direct.text())),
            serde_json::from_slice(&through.body).unwrap_or(Value::String(through.text())),
        );
        compared += 1;
        if without_id(d.clone()) != without_id(t.clone()) {
            mismatches.push(format!("{case}: direct {d} / through {t}"));
        }
    }
    assert!(compared > 100 && denied > 0, "compared {compared}, denied {denied}");
    assert!(mismatches.is_empty(), "{} of {compared} differ:\n{}", mismatches.len(), mismatches.join("\n"));
    Ok(())
}

#[tokio::test]
async fn anvil_answers_the_corpus_the_same_directly_and_through_the_gateway() -> anyhow::Result<()> {
    differential(Node::anvil(&[]).await?).await
}

#[tokio::test]
async fn ganache_answers_the_corpus_the_same_directly_and_through_the_gateway() -> anyhow::Result<()> {
    differential(Node::ganache(&[]).await?).await
}
