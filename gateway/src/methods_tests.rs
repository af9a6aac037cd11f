use super::*;

#[test]
fn the_table_and_the_label_set_are_sorted() {
    assert!(METHODS.windows(2).all(|w| w[0].name < w[1].name), "METHODS must stay sorted by name");
    assert!(KNOWN_METHODS.windows(2).all(|w| w[0] < w[1]), "KNOWN_METHODS must stay sorted");
}

#[test]
fn known_methods_are_the_metric_label_contract() {
    // The label values dashboards and alerts may name: only ever add to this list.
    let contract = [
        "eth_accounts",
        "eth_blobBaseFee",
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_coinbase",
        "eth_createAccessList",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getCode",
        "eth_getFilterChanges",
        "eth_getFilterLogs",
        "eth_getLogs",
        "eth_getProof",
        "eth_getStorageAt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_getUncleByBlockHashAndIndex",
        "eth_getUncleByBlockNumberAndIndex",
        "eth_getUncleCountByBlockHash",
        "eth_getUncleCountByBlockNumber",
        "eth_maxPriorityFeePerGas",
        "eth_mining",
        "eth_newBlockFilter",
        "eth_newFilter",
        "eth_newPendingTransactionFilter",
        "eth_protocolVersion",
        "eth_sendRawTransaction",
        "eth_syncing",
        "eth_uninstallFilter",
        "net_listening",
        "net_peerCount",
        "net_version",
        "web3_clientVersion",
        "web3_sha3",
    ];
    assert_eq!(KNOWN_METHODS.as_slice(), contract.as_slice());
}

#[test]
fn unknown_methods_are_other() {
    assert_eq!(label("eth_call"), "eth_call");
    assert_eq!(label("eth_call\u{0}"), "other");
    assert_eq!(label(&"x".repeat(10_000)), "other");
    assert_eq!(label("eth_sendTransaction"), "other", "denied methods have no label of their own");
    assert_eq!(label("admin_peers"), "other");
}

#[test]
fn families_match_by_prefix_after_exact_names() {
    assert_eq!(class("admin_peers"), Class::Node);
    assert_eq!(class("eth_signTypedData_v4"), Class::Node);
    assert_eq!(class("eth_getFilterChanges"), Class::FilterUse, "an exact row wins over `eth_get*`");
    assert_eq!(class("made_up"), Class::Read);
    assert!(may_coalesce("eth_getSomethingNew"), "the `eth_get*` family coalesces");
    assert!(!may_coalesce("eth_getFilterLogs") && !may_coalesce("eth_getFilterChanges"));
}

#[test]
fn coalescing_is_for_side_effect_free_reads_only() {
    for m in ["eth_getBalance", "eth_call", "eth_blockNumber", "eth_chainId", "net_version", "eth_getLogs"] {
        assert!(may_coalesce(m), "{m}");
    }
    for m in ["eth_sendRawTransaction", "eth_newFilter", "eth_uninstallFilter", "eth_accounts", "made_up"] {
        assert!(!may_coalesce(m), "{m}");
    }
}

#[test]
fn default_deny_is_node_administration_signing_and_dev_controls() {
    let mut deny = DEFAULT_DENY.to_vec();
    deny.sort_unstable();
    let mut expected = [
        "admin_*",
        "debug_*",
        "personal_*",
        "miner_*",
        "txpool_*",
        "anvil_*",
        "hardhat_*",
        "evm_*",
        "eth_sign*",
        "eth_sendTransaction",
    ];
    expected.sort_unstable();
    assert_eq!(deny, expected);
}

#[test]
fn filters_and_transactions_have_their_own_class() {
    assert_eq!(class("eth_newFilter"), Class::FilterCreate);
    assert_eq!(class("eth_newBlockFilter"), Class::FilterCreate);
    assert_eq!(class("eth_uninstallFilter"), Class::FilterUse);
    assert_eq!(class("eth_getLogs"), Class::Logs);
    assert_eq!(class("eth_sendRawTransaction"), Class::Tx);
    assert_eq!(class("eth_subscribe"), Class::Subscribe);
}
