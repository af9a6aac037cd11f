// Tests may unwrap: a failed set-up should stop the test at its line.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::mix::Mix;
use crate::signer::TxType;
use std::time::Duration;

fn cfg(rate: f64, secs: u64, mix: Mix, tx_type: TxType) -> RunConfig {
    let keys = (0..4).map(|_| alloy_signer_local::PrivateKeySigner::random()).collect();
    let mut c = RunConfig::new("http://127.0.0.1:1", keys, rate, Duration::from_secs(secs)).unwrap();
    c.mix = mix;
    c.tx_type = tx_type;
    c.value = U256::from(7u8);
    c
}

const GAS_PRICE: u128 = 1_000;
const FEES: Fees = Fees { gas_price: GAS_PRICE, priority_fee: 10 };

#[test]
fn the_worst_case_is_each_accounts_share_of_ticks_times_the_dearest_action() {
    // 10/s for 3 s = 30 ticks over 4 accounts: at most 8 each (ticks go round robin).
    let transfers = cfg(10.0, 3, Mix { transfer: 1, execution: 0 }, TxType::Legacy);
    let transfer = U256::from(21_000 * GAS_PRICE + 7);
    assert_eq!(dearest_action(&transfers, FEES, false), transfer);
    assert_eq!(needs(&transfers, FEES, &[false; 4], &[]), vec![transfer * U256::from(8u8); 4]);

    // A mix may send any account only executions: the dearer kind bounds every action.
    let mixed = cfg(10.0, 3, Mix { transfer: 1, execution: 1 }, TxType::Legacy);
    assert_eq!(dearest_action(&mixed, FEES, false), U256::from(100_000 * GAS_PRICE));
    // The deploying account also pays for the Counter.
    let n = needs(&mixed, FEES, &[false; 4], &[2]);
    assert_eq!(n[2] - n[0], U256::from(u128::from(DEPLOY_GAS) * GAS_PRICE));

    // Type 2 is signed with a cap of twice the gas price, which is what it may pay; native actions pay the
    // gas price itself.
    let type2 = cfg(10.0, 3, Mix { transfer: 1, execution: 0 }, TxType::Eip1559);
    assert_eq!(dearest_action(&type2, FEES, false), U256::from(21_000 * 2 * GAS_PRICE + 7));
    assert_eq!(dearest_action(&type2, FEES, true), transfer);

    // A gas limit given by the operator replaces the defaults.
    let mut limited = cfg(10.0, 3, Mix { transfer: 0, execution: 1 }, TxType::Legacy);
    limited.gas_limit = Some(50_000);
    assert_eq!(dearest_action(&limited, FEES, false), U256::from(50_000 * GAS_PRICE));
}

#[test]
fn only_accounts_below_their_need_are_short_and_the_refusal_says_how_many_and_by_how_much() {
    let addresses: Vec<Address> = (1..=4u8).map(Address::repeat_byte).collect();
    let iotx_1 = U256::from(10u128.pow(18));
    let needs = vec![iotx_1; 4];
    let balances = vec![iotx_1, U256::ZERO, iotx_1 / U256::from(4u8), iotx_1 * U256::from(2u8)];
    let short = shortfalls(&addresses, &balances, &needs);
    assert_eq!(short.iter().map(|s| s.account).collect::<Vec<_>>(), vec![1, 2], "equal to the need is enough");
    assert_eq!(short[1].missing(), iotx_1 * U256::from(3u8) / U256::from(4u8));
    let message = refusal(&short, 4, false);
    assert!(message.contains("2 of 4 accounts"), "{message}");
    assert!(message.contains("short by up to 1 IOTX, 1.75 IOTX in all"), "{message}");
    assert!(message.contains("--fund-from"), "{message}");
    assert!(message.contains(&addresses[1].to_string()), "{message}");
    assert!(refusal(&short, 4, true).contains("could not top them up"));
}

#[test]
fn amounts_read_as_iotx() {
    assert_eq!(iotx(U256::ZERO), "0 IOTX");
    assert_eq!(iotx(U256::from(10u128.pow(18))), "1 IOTX");
    assert_eq!(iotx(U256::from(1_500_000_000_000_000_000u128)), "1.5 IOTX");
    assert_eq!(iotx(U256::from(21_000_000_000_000u128)), "0.000021 IOTX");
    assert_eq!(iotx(U256::from(1u8)), "0 IOTX", "below a micro-IOTX rounds down");
    assert!(iotx(U256::MAX).len() > 60, "the largest amount formats without overflow");
}
