use super::*;
use futures::stream;
use http_body_util::StreamBody;
use hyper::body::Frame;

type Chunks = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>>;

fn chunks(sizes: &[usize]) -> Chunks {
    let frames: Vec<_> = sizes.iter().map(|n| Ok(Frame::data(Bytes::from(vec![b'x'; *n])))).collect();
    StreamBody::new(stream::iter(frames))
}

#[tokio::test]
async fn an_answer_within_the_cap_is_read_whole_and_the_budget_returned() {
    let b = AnswerBudget::new(1000, 4000, None);
    let body = b.read(chunks(&[300, 300, 300]), None).await.unwrap();
    assert_eq!(body.len(), 900);
    assert_eq!(b.buffered(), 0);
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_reading() {
    let b = AnswerBudget::new(1000, 4000, None);
    let err = b.read(chunks(&[10]), Some(1001)).await.unwrap_err();
    assert_eq!(err.0, AttemptOutcome::TooLarge);
    assert!(err.1.contains("max-response-bytes (1000 bytes)"), "{}", err.1);
}

#[tokio::test]
async fn an_undeclared_answer_is_cut_as_it_passes_the_cap() {
    let b = AnswerBudget::new(1000, 4000, None);
    let err = b.read(chunks(&[600, 600, 600]), None).await.unwrap_err();
    assert_eq!(err.0, AttemptOutcome::TooLarge);
    assert_eq!(b.buffered(), 0);
}

#[tokio::test]
async fn a_lying_short_declared_length_is_still_bounded() {
    let b = AnswerBudget::new(1000, 4000, None);
    let err = b.read(chunks(&[500, 500, 500]), Some(10)).await.unwrap_err();
    assert_eq!(err.0, AttemptOutcome::TooLarge);
}

#[tokio::test(start_paused = true)]
async fn a_full_budget_refuses_after_a_short_wait_and_frees_on_return() {
    let b = AnswerBudget::new(1000, 1000, None);
    let mut held = None;
    b.take(1000, &mut held).await.unwrap();
    let err = b.read(chunks(&[10]), Some(10)).await.unwrap_err();
    assert_eq!(err.0, AttemptOutcome::OverBudget);
    drop(held);
    assert_eq!(b.read(chunks(&[10]), Some(10)).await.unwrap().len(), 10);
}

#[tokio::test]
async fn an_answer_of_the_full_cap_fits_a_budget_of_twice_the_cap() {
    let b = AnswerBudget::new(100_000, 200_000, None);
    let sizes = vec![1000; 100];
    assert_eq!(b.read(chunks(&sizes), None).await.unwrap().len(), 100_000);
    assert_eq!(b.buffered(), 0);
}

#[tokio::test]
async fn empty_and_zero_length_answers_work() {
    let b = AnswerBudget::new(1000, 1000, None);
    assert!(b.read(chunks(&[]), Some(0)).await.unwrap().is_empty());
    assert!(b.read(chunks(&[0, 0]), None).await.unwrap().is_empty());
}

#[test]
fn the_cap_never_exceeds_the_budget() {
    let b = AnswerBudget::new(5000, 1000, None);
    assert_eq!(b.max_answer, 500);
}
