//! The tracker's counting rules, driven through each racy sequence a stalled chain produces: a send answered
//! after the follower or reconciliation found its action, a resend of the same signed bytes, an unanswered
//! send settled later. Every test ends by checking the report's identity
//! `accepted == included + pending_at_end + dropped`, with nothing left `unknown`.

use super::*;
use crate::metrics::Metrics;
use proptest::prelude::*;

fn recorder() -> Recorder {
    Recorder::new(1, Arc::new(Metrics::new(1).unwrap()))
}

const MS: Duration = Duration::from_millis(5);

/// (accepted, included, pending_at_end, dropped, rejected, unknown) of endpoint 0.
fn counts(rec: &Recorder) -> (u64, u64, u64, u64, u64, u64) {
    let s = rec.lock();
    let e = &s.endpoints[0];
    (e.accepted, e.included, e.pending_at_end, e.dropped, e.rejected.iter().sum(), e.unknown)
}

fn assert_identity(rec: &Recorder) {
    let (accepted, included, pending, dropped, _, unknown) = counts(rec);
    assert_eq!(accepted, included + pending + dropped, "accepted = included + pending_at_end + dropped");
    assert_eq!(unknown, 0, "every unanswered send was decided");
}

/// Reconciliation: settles every record still tracked as `found`.
fn reconcile(t: &Tracker, rec: &Recorder, found: Found) {
    for (_, p) in t.drain(0) {
        t.settle(rec, 0, &p, found);
    }
}

fn setup() -> (Tracker, Recorder, B256) {
    (Tracker::new(1, Instant::now()), recorder(), B256::repeat_byte(7))
}

#[test]
fn a_record_is_compact() {
    const { assert!(RECORD_BYTES <= 56) };
}

#[tokio::test]
async fn insert_answer_and_awaiting() {
    let (t, rec, h) = setup();
    assert!(t.insert(0, h, Instant::now(), false));
    assert!(!t.insert(5, h, Instant::now(), false), "no such endpoint");
    assert_eq!(t.awaiting(), 0, "in flight is not awaited yet");
    assert_eq!(t.answered(&rec, 0, &h, Reply::Accepted, MS), Verdict::Accepted);
    assert_eq!(t.awaiting(), 1);
    assert_eq!(t.answered(&rec, 3, &h, Reply::Accepted, MS), Verdict::AlreadySettled, "no such endpoint");
    assert!(t.take_included(&rec, 0, &h, true, None).is_some());
    assert!(t.take_included(&rec, 0, &h, true, None).is_none(), "settled once");
    assert!(t.is_empty());
    assert_eq!(counts(&rec), (1, 1, 0, 0, 0, 0));
}

/// The gRPC stall: reconciliation found the action in the pool while its send was still out; the late
/// `Accepted` answer used to count it a second time.
#[tokio::test]
async fn a_late_answer_after_reconciliation_found_it_pending_is_not_counted_again() {
    let (t, rec, h) = setup();
    t.insert(0, h, Instant::now(), false);
    reconcile(&t, &rec, Found::Pending);
    assert_eq!(t.answered(&rec, 0, &h, Reply::Accepted, MS), Verdict::AlreadySettled);
    assert_eq!(counts(&rec), (1, 0, 1, 0, 0, 0));
    assert_identity(&rec);
}

#[tokio::test]
async fn a_late_answer_after_reconciliation_found_it_gone_is_not_counted() {
    let (t, rec, h) = setup();
    t.insert(0, h, Instant::now(), false);
    reconcile(&t, &rec, Found::Gone);
    assert_eq!(t.answered(&rec, 0, &h, Reply::Accepted, MS), Verdict::AlreadySettled);
    assert_eq!(counts(&rec), (0, 0, 0, 0, 1, 0), "a timeout, once");
    assert_identity(&rec);
}

#[tokio::test]
async fn included_before_its_answer_counts_accepted_once_whatever_the_answer() {
    for reply in [Reply::Accepted, Reply::Rejected, Reply::NoAnswer(Kind::Timeout)] {
        let (t, rec, h) = setup();
        t.insert(0, h, Instant::now(), false);
        assert!(t.take_included(&rec, 0, &h, true, None).is_some());
        assert_eq!(t.answered(&rec, 0, &h, reply, MS), Verdict::AlreadySettled, "{reply:?}");
        assert_eq!(counts(&rec), (1, 1, 0, 0, 0, 0), "{reply:?}");
        assert_identity(&rec);
    }
}

/// A resync after a timeout re-signed the same action while it was still out: the node accepts one send
/// and answers the other "known transaction". That rejection used to untrack the accepted action.
#[tokio::test]
async fn a_duplicate_refused_as_known_does_not_untrack_the_accepted_send() {
    for accepted_first in [true, false] {
        let (t, rec, h) = setup();
        assert!(t.insert(0, h, Instant::now(), false));
        assert!(!t.insert(0, h, Instant::now(), false), "the same bytes join the record");
        let (first, second) =
            if accepted_first { (Reply::Accepted, Reply::Rejected) } else { (Reply::Rejected, Reply::Accepted) };
        t.answered(&rec, 0, &h, first, MS);
        t.answered(&rec, 0, &h, second, MS);
        assert_eq!(t.len(), 1, "still tracked");
        assert!(t.take_included(&rec, 0, &h, true, None).is_some());
        assert_eq!(counts(&rec), (1, 1, 0, 0, 0, 0));
        assert_identity(&rec);
    }
}

#[tokio::test]
async fn the_same_bytes_accepted_twice_count_once() {
    let (t, rec, h) = setup();
    t.insert(0, h, Instant::now(), false);
    t.insert(0, h, Instant::now(), false);
    assert_eq!(t.answered(&rec, 0, &h, Reply::Accepted, MS), Verdict::Accepted);
    assert_eq!(t.answered(&rec, 0, &h, Reply::Accepted, MS), Verdict::AlreadyCounted);
    reconcile(&t, &rec, Found::Pending);
    assert_eq!(counts(&rec), (1, 0, 1, 0, 0, 0));
    assert_identity(&rec);
}

#[tokio::test]
async fn an_unanswered_send_then_an_accepted_resend_count_one_action() {
    let (t, rec, h) = setup();
    t.insert(0, h, Instant::now(), false);
    assert_eq!(t.answered(&rec, 0, &h, Reply::NoAnswer(Kind::Timeout), MS), Verdict::Unknown);
    t.insert(0, h, Instant::now(), false);
    assert_eq!(t.answered(&rec, 0, &h, Reply::Accepted, MS), Verdict::Accepted);
    assert_eq!(counts(&rec).5, 0, "the unanswered send is decided by its resend");
    reconcile(&t, &rec, Found::Included { success: true, fee: None });
    assert_eq!(counts(&rec), (1, 1, 0, 0, 0, 0));
    assert_identity(&rec);
}

#[tokio::test]
async fn an_unanswered_send_is_decided_at_reconciliation() {
    for (found, want) in [
        (Found::Included { success: true, fee: None }, (1, 1, 0, 0, 0, 0)),
        (Found::Pending, (1, 0, 1, 0, 0, 0)),
        (Found::Gone, (0, 0, 0, 0, 1, 0)),
        (Found::Unresolved, (0, 0, 0, 0, 1, 0)),
    ] {
        let (t, rec, h) = setup();
        t.insert(0, h, Instant::now(), false);
        t.answered(&rec, 0, &h, Reply::NoAnswer(Kind::Connection), MS);
        // A resend of the same bytes refused as known keeps the record for reconciliation.
        t.insert(0, h, Instant::now(), false);
        assert_eq!(t.answered(&rec, 0, &h, Reply::Rejected, MS), Verdict::Rejected);
        reconcile(&t, &rec, found);
        assert_eq!(counts(&rec), want, "{found:?}");
        assert_identity(&rec);
    }
}

#[tokio::test]
async fn a_rejection_untracks_only_when_no_other_send_speaks_for_the_bytes() {
    let (t, rec, h) = setup();
    t.insert(0, h, Instant::now(), false);
    t.insert(0, h, Instant::now(), false);
    assert_eq!(t.answered(&rec, 0, &h, Reply::Rejected, MS), Verdict::Rejected);
    assert_eq!(t.len(), 1, "the other send is still out");
    assert_eq!(t.answered(&rec, 0, &h, Reply::Rejected, MS), Verdict::Rejected);
    assert!(t.is_empty());
    assert_eq!(counts(&rec), (0, 0, 0, 0, 0, 0), "the caller counts (or retries) the rejections");
}

#[tokio::test]
async fn accepted_actions_settle_by_what_reconciliation_finds() {
    for (found, want) in [
        (Found::Included { success: false, fee: None }, (1, 1, 0, 0, 0, 0)),
        (Found::Pending, (1, 0, 1, 0, 0, 0)),
        (Found::Gone, (1, 0, 0, 1, 0, 0)),
        (Found::Unresolved, (1, 0, 1, 0, 0, 0)),
    ] {
        let (t, rec, h) = setup();
        t.insert(0, h, Instant::now(), true);
        t.answered(&rec, 0, &h, Reply::Accepted, MS);
        reconcile(&t, &rec, found);
        assert_eq!(counts(&rec), want, "{found:?}");
        let reverted = rec.lock().endpoints[0].reverted;
        assert_eq!(reverted, u64::from(found == Found::Included { success: false, fee: None }));
        assert_identity(&rec);
    }
}

#[tokio::test]
async fn a_record_moved_to_the_nodes_hash_is_found_there() {
    let (t, rec, ours) = setup();
    let theirs = B256::repeat_byte(9);
    t.insert(0, ours, Instant::now(), false);
    assert!(t.rekey(0, &ours, theirs));
    assert!(!t.rekey(0, &ours, theirs), "gone from our hash");
    t.answered(&rec, 0, &theirs, Reply::Accepted, MS);
    assert!(t.take_included(&rec, 0, &theirs, true, None).is_some());
    assert_identity(&rec);
}

/// One step of an interleaving over three hashes.
#[derive(Debug, Clone)]
enum Op {
    Send(u8),
    Answer(u8, Reply),
    Include(u8),
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::Accepted),
        Just(Reply::Rejected),
        Just(Reply::NoAnswer(Kind::Timeout)),
        Just(Reply::NoAnswer(Kind::Connection)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::Send),
        ((0u8..3), reply()).prop_map(|(h, r)| Op::Answer(h, r)),
        (0u8..3).prop_map(Op::Include),
    ]
}

fn found() -> impl Strategy<Value = Found> {
    prop_oneof![
        (any::<bool>(), proptest::option::of(0u128..1 << 70))
            .prop_map(|(success, fee)| Found::Included { success, fee }),
        Just(Found::Pending),
        Just(Found::Gone),
        Just(Found::Unresolved),
    ]
}

proptest! {
    /// Any interleaving of sends (resends of the same bytes included), answers, inclusions, then
    /// reconciliation and answers arriving after it: the identity holds, nothing stays unknown, and
    /// `accepted` counts each tracked action exactly once when an answer or a lookup showed the node had it,
    /// and never otherwise.
    #[test]
    fn every_interleaving_keeps_the_identity(
        ops in proptest::collection::vec(op(), 0..40),
        founds in proptest::collection::vec(found(), 3),
        late in proptest::collection::vec(reply(), 0..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let _g = rt.enter();
        let t = Tracker::new(1, Instant::now());
        let rec = recorder();
        let hash = |i: u8| B256::repeat_byte(i + 1);
        let tracked = |i: u8| t.map(0).unwrap().contains_key(&hash(i));
        // Model, per hash: sends not answered, and whether the current record has shown the action on the
        // node (an `Accepted` answer); `expected` sums the records that end shown.
        let mut out = [0u32; 3];
        let mut shown = [false; 3];
        let mut expected = 0u64;
        // The fees the included records carried, and how many carried none.
        let (mut paid, mut unmeasured) = (0u128, 0u64);
        for o in ops {
            match o {
                Op::Send(i) => {
                    if t.insert(0, hash(i), Instant::now(), false) {
                        shown[i as usize] = false;
                    }
                    out[i as usize] += 1;
                }
                Op::Answer(i, r) if out[i as usize] > 0 => {
                    out[i as usize] -= 1;
                    let was = tracked(i);
                    let v = t.answered(&rec, 0, &hash(i), r, MS);
                    prop_assert_eq!(v == Verdict::AlreadySettled, !was);
                    if was && r == Reply::Accepted {
                        shown[i as usize] = true;
                    }
                    if was && !tracked(i) {
                        prop_assert!(!shown[i as usize], "a shown action is never untracked by a rejection");
                    }
                }
                Op::Answer(..) => {}
                Op::Include(i) => {
                    if t.take_included(&rec, 0, &hash(i), true, Some(u128::from(i))).is_some() {
                        expected += 1;
                        paid += u128::from(i);
                    }
                }
            }
        }
        for (h, p) in t.drain(0) {
            let i = (h.0[0] - 1) as usize;
            let f = founds[i];
            if shown[i] || matches!(f, Found::Included { .. } | Found::Pending) {
                expected += 1;
            }
            match f {
                Found::Included { fee: Some(fee), .. } => paid += fee,
                Found::Included { fee: None, .. } => unmeasured += 1,
                _ => {}
            }
            t.settle(&rec, 0, &p, f);
        }
        for (n, r) in late.into_iter().enumerate() {
            let i = n % 3;
            if out[i] > 0 {
                out[i] -= 1;
                prop_assert_eq!(t.answered(&rec, 0, &hash(i as u8), r, MS), Verdict::AlreadySettled);
            }
        }
        let (accepted, included, pending, dropped, _, unknown) = counts(&rec);
        prop_assert_eq!(accepted, included + pending + dropped);
        prop_assert_eq!(unknown, 0);
        prop_assert_eq!(accepted, expected);
        // Every inclusion's fee is counted once: measured or not, and the total is exactly what they paid.
        let fees = &rec.lock().fees;
        prop_assert_eq!(fees.measured + fees.unmeasured, included);
        prop_assert_eq!(fees.unmeasured, unmeasured);
        prop_assert_eq!(fees.total, paid);
    }
}
