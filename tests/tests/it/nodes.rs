//! The real test peers start, answer with the IoTeX chain id, and obey the fault knobs the other tests use.

use iotex_tests::nodes::{CHAIN_ID, DEV_ADDRESSES, Node, parse_quantity};
use serde_json::json;

#[tokio::test]
async fn anvil_and_ganache_start_with_the_iotex_chain_id_and_funded_dev_accounts() -> anyhow::Result<()> {
    let (anvil, ganache) = tokio::try_join!(Node::anvil(&[]), Node::ganache(&[]))?;
    for node in [&anvil, &ganache] {
        assert_eq!(parse_quantity(&node.rpc("eth_chainId", json!([])).await?)?, CHAIN_ID);
        let bal = node.rpc("eth_getBalance", json!([DEV_ADDRESSES[0], "latest"])).await?;
        assert!(bal.as_str().is_some_and(|b| b.len() > 10), "{:?} balance {bal}", node.kind);
    }
    anvil.mine(5).await?;
    ganache.mine(2).await?;
    assert_eq!(anvil.block_number().await?, 5);
    assert_eq!(ganache.block_number().await?, 2);
    Ok(())
}
