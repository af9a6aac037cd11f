use super::*;
use proptest::prelude::*;
use serde_json::json;

const LIMITS: LogsLimits = LogsLimits { per_call: 1000, max_range: 10_000 };

fn raw(v: Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).unwrap()
}

fn plan_of(params: Value, head: Option<u64>) -> Plan {
    plan(Some(&raw(params)), head, LIMITS)
}

fn ranges(p: &Plan) -> Vec<(u64, u64)> {
    match p {
        Plan::Split(s) => s.ranges().to_vec(),
        other => panic!("not split: {other:?}"),
    }
}

#[test]
fn ranges_within_one_call_are_forwarded_untouched() {
    for params in [
        json!([{"fromBlock": "0x1", "toBlock": "0x3e8"}]),
        json!([{"fromBlock": "0x1", "toBlock": "0x3e8", "address": "0x00"}]),
        json!([{}]),
        json!([{"fromBlock": "latest"}]),
        json!([{"fromBlock": "earliest", "toBlock": "0x3e8"}]),
        json!([{"fromBlock": "0x1", "toBlock": "latest"}]),
    ] {
        assert_eq!(plan_of(params.clone(), Some(1000)), Plan::Forward, "{params}");
    }
    // Exactly the cap is one call; one more is two.
    assert_eq!(
        ranges(&plan_of(json!([{"fromBlock": "0x1", "toBlock": "0x3e9"}]), Some(5000))),
        [(1, 1000), (1001, 1001)]
    );
}

#[test]
fn a_wide_range_becomes_consecutive_disjoint_chunks_covering_it() {
    let p = plan_of(json!([{"fromBlock": "0xa", "toBlock": "0x9c4"}]), Some(5000));
    assert_eq!(ranges(&p), [(10, 1009), (1010, 2009), (2010, 2500)]);
    // Tags: earliest is block 1; latest and a missing toBlock are the safe head.
    assert_eq!(
        ranges(&plan_of(json!([{"fromBlock": "earliest"}]), Some(2500))),
        [(1, 1000), (1001, 2000), (2001, 2500)]
    );
    assert_eq!(
        ranges(&plan_of(json!([{"fromBlock": "0x1", "toBlock": "pending"}]), Some(1500))),
        [(1, 1000), (1001, 1500)]
    );
    // A toBlock past the head is lowered to it, as a node lowers it to its tip.
    assert_eq!(
        ranges(&plan_of(json!([{"fromBlock": "0x1", "toBlock": "0xffffffff"}]), Some(1200))),
        [(1, 1000), (1001, 1200)]
    );
    // Lowered to the head, the range fits one call: forwarded as the client wrote it.
    assert_eq!(plan_of(json!([{"fromBlock": "0x1", "toBlock": "0xffffffff"}]), Some(900)), Plan::Forward);
    // Upper-case hex digits and prefix.
    assert_eq!(ranges(&plan_of(json!([{"fromBlock": "0X1", "toBlock": "0x7D0"}]), Some(5000))).len(), 2);
}

#[test]
fn chunks_cover_every_block_once_whatever_the_sizes() {
    for (from, to, per) in [(1, 1, 1), (1, 2, 1), (5, 5004, 1000), (7, 7006, 7), (1, 10_000, 3333), (1, 999, 1000)] {
        let c = chunks(from, to, per);
        assert_eq!(c.first().map(|r| r.0), Some(from));
        assert_eq!(c.last().map(|r| r.1), Some(to));
        for w in c.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0, "consecutive and disjoint: {c:?}");
        }
        assert!(c.iter().all(|(a, b)| a <= b && b - a < per), "{c:?}");
    }
    // Near u64::MAX the arithmetic saturates instead of wrapping.
    assert_eq!(chunks(u64::MAX - 1, u64::MAX, 1000), [(u64::MAX - 1, u64::MAX)]);
}

#[test]
fn wider_than_the_bound_is_refused_with_the_numbers() {
    let p = plan_of(json!([{"fromBlock": "0x1", "toBlock": "0x2711"}]), Some(20_000));
    assert_eq!(p, Plan::TooWide { blocks: 10_001, max: 10_000 });
    // Exactly the bound is served.
    assert_eq!(ranges(&plan_of(json!([{"fromBlock": "0x1", "toBlock": "0x2710"}]), Some(20_000))).len(), 10);
    // From earliest on a long chain.
    assert_eq!(
        plan_of(json!([{"fromBlock": "earliest"}]), Some(50_000)),
        Plan::TooWide { blocks: 50_000, max: 10_000 }
    );
}

#[test]
fn what_the_gateway_does_not_resolve_goes_to_the_node_as_it_is() {
    let head = Some(100_000);
    for params in [
        json!([{"blockHash": "0x01", "fromBlock": "0x1", "toBlock": "0x5000"}]),
        json!([{"fromBlock": "safe", "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x1", "toBlock": "finalized"}]),
        json!([{"fromBlock": "0x0", "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x1", "toBlock": "0x0"}]),
        json!([{"fromBlock": "1", "toBlock": "0x5000"}]),
        json!([{"fromBlock": 1, "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x", "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x+1", "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x1g", "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x10000000000000000", "toBlock": "0x5000"}]),
        json!([{"fromBlock": ["0x1"], "toBlock": "0x5000"}]),
        json!([{"fromBlock": "0x5000", "toBlock": "0x1"}]),
        json!([{"fromBlock": "0x30000", "toBlock": "latest"}]),
        json!(["0x1"]),
        json!([]),
        json!({"fromBlock": "0x1", "toBlock": "0x5000"}),
        json!("x"),
        json!(null),
    ] {
        assert_eq!(plan_of(params.clone(), head), Plan::Forward, "{params}");
    }
    assert_eq!(plan(None, head, LIMITS), Plan::Forward);
    // No known head (nothing routable, or a routable node not probed yet): nothing to split against.
    assert_eq!(plan_of(json!([{"fromBlock": "0x1", "toBlock": "0x5000"}]), None), Plan::Forward);
}

#[test]
fn chunk_params_keep_the_filter_and_replace_only_the_range() {
    let p = plan_of(
        json!([{"fromBlock": "0x1", "toBlock": "latest", "address": ["0xAb"], "topics": [null, ["0x01"]]}, 7]),
        Some(2001),
    );
    let Plan::Split(s) = p else { panic!("not split") };
    assert_eq!(s.ranges(), [(1, 1000), (1001, 2000), (2001, 2001)]);
    let v: Value = serde_json::from_str(&s.params((1001, 2000))).unwrap();
    assert_eq!(
        v,
        json!([{"fromBlock": "0x3e9", "toBlock": "0x7d0", "address": ["0xAb"], "topics": [null, ["0x01"]]}, 7])
    );
}

#[test]
fn merge_concatenates_in_range_order_and_refuses_what_is_not_a_list() {
    let a = raw(json!([{"blockNumber": "0x1", "logIndex": "0x0"}, {"blockNumber": "0x2", "logIndex": "0x0"}]));
    let b = raw(json!([]));
    let c = raw(json!([{"blockNumber": "0x3e9", "logIndex": "0x1", "data": "0x\u{1F600}"}]));
    let merged = merge([((1, 1000), &*a), ((1001, 2000), &*b), ((2001, 3000), &*c)]).unwrap();
    let v: Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    assert_eq!(v[2]["blockNumber"], "0x3e9");
    assert_eq!(merge(std::iter::empty()).unwrap(), "[]");
    assert_eq!(merge([((1, 1), &*b), ((2, 2), &*b)]).unwrap(), "[]");
    for bad in [json!(null), json!({"logs": []}), json!("[]"), json!(5)] {
        let bad = raw(bad);
        assert_eq!(merge([((1, 1000), &*a), ((1001, 2000), &*bad)]), Err(NotALogList { from: 1001, to: 2000 }));
    }
}

proptest! {
    /// Split or not, the blocks asked for are exactly the client's range (lowered to the head), each once,
    /// in order, in chunks no wider than one call, and the chunk count never exceeds the bound allows.
    #[test]
    fn a_plan_covers_the_range_exactly(
        from in 1u64..50_000,
        len in 0u64..30_000,
        head in 1u64..60_000,
        per_call in 1u64..3_000,
        extra in 0u64..20_000,
    ) {
        let limits = LogsLimits { per_call, max_range: per_call + extra };
        let to = from + len;
        let params = raw(json!([{"fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{to:x}")}]));
        let top = to.min(head);
        match plan(Some(&params), Some(head), limits) {
            Plan::Forward => prop_assert!(from > top || top - from < per_call),
            Plan::TooWide { blocks, max } => {
                prop_assert_eq!(blocks, top - from + 1);
                prop_assert!(blocks > max && max == limits.max_range);
            }
            Plan::Split(s) => {
                let r = s.ranges();
                prop_assert_eq!(r.first().map(|c| c.0), Some(from));
                prop_assert_eq!(r.last().map(|c| c.1), Some(top));
                prop_assert!(r.windows(2).all(|w| w[0].1 + 1 == w[1].0));
                prop_assert!(r.iter().all(|(a, b)| a <= b && b - a < per_call));
                prop_assert!(r.len() as u64 <= limits.max_range.div_ceil(per_call));
            }
        }
    }

    /// Whatever the client puts in the bounds, planning never panics.
    #[test]
    fn hostile_bounds_never_panic(a in ".{0,24}", b in ".{0,24}", head in any::<u64>()) {
        let params = raw(json!([{"fromBlock": a, "toBlock": b}]));
        let _ = plan(Some(&params), Some(head), LogsLimits { per_call: 1, max_range: u64::MAX });
    }
}
