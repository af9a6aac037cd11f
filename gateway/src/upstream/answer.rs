//! Reading a node's answer into memory within bounds: one answer at most `max-response-bytes`, and all
//! answers being read at once at most `max-buffered-response-bytes` ([`AnswerBudget`]).
//!
//! Refuses an answer that is over the cap (by its `Content-Length` before reading a byte, else as soon as
//! the bytes read pass it): the connection to the node is dropped, and the attempt is `too_large`, which
//! is the query's fault, not the node's (no retry, no health penalty). Refuses an answer when the budget
//! stays full for [`BUDGET_WAIT`]: `over_budget`, again no health penalty.
//!
//! The budget is a semaphore of bytes. A read holds permits for the capacity it has allocated (not the
//! length read so far), so what the budget counts is what the allocator holds; the buffer grows by
//! doubling, capped at the answer cap, with permits taken before each growth, for the old and the new
//! allocation together while the copy is made. An answer of the full cap therefore needs up to about
//! 1.6 × the cap of budget for a moment (64 MiB + 100 MiB with the defaults), which is why
//! `max-buffered-response-bytes` must be at least twice `max-response-bytes`. The permits are returned once
//! the answer has been classified: after that an answer is on its way to its client, and what holds it
//! there is the client's connection (capped by `max-connections`).

use crate::metrics::AnswerMetrics;
use crate::outcome::AttemptOutcome;
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a read waits for budget before the call is refused: long enough to ride out another call's
/// answer being passed on, short enough that a client is not left hanging when the gateway is full.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);

/// The answer cap and the shared buffer budget.
pub struct AnswerBudget {
    max_answer: usize,
    total: usize,
    permits: Arc<Semaphore>,
    metrics: Option<AnswerMetrics>,
}

impl AnswerBudget {
    /// A budget of `total` bytes with answers of at most `max_answer` bytes (`max_answer` is lowered to half
    /// of `total` if above it: a bigger answer could not always grow its buffer within the budget).
    pub fn new(max_answer: usize, total: usize, metrics: Option<AnswerMetrics>) -> Arc<AnswerBudget> {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(AnswerBudget {
            max_answer: max_answer.min(total / 2).max(1),
            total,
            permits: Arc::new(Semaphore::new(total)),
            metrics,
        })
    }

    /// The defaults (100 MiB per answer, 256 MiB in all), not counted in metrics.
    pub fn default_unmetered() -> Arc<AnswerBudget> {
        AnswerBudget::new(
            crate::config::DEFAULT_MAX_RESPONSE_BYTES.get(),
            crate::config::DEFAULT_MAX_BUFFERED_RESPONSE_BYTES.get(),
            None,
        )
    }

    /// Bytes being held now.
    pub fn buffered(&self) -> usize {
        self.total.saturating_sub(self.permits.available_permits())
    }

    fn refused(&self, outcome: AttemptOutcome) {
        if let Some(m) = &self.metrics {
            m.refused(outcome.as_str());
        }
    }

    /// Takes `n` more bytes of budget, waiting up to [`BUDGET_WAIT`].
    async fn take(&self, n: usize, held: &mut Option<OwnedSemaphorePermit>) -> Result<(), (AttemptOutcome, String)> {
        if n == 0 {
            return Ok(());
        }
        let over = || {
            self.refused(AttemptOutcome::OverBudget);
            (
                AttemptOutcome::OverBudget,
                format!(
                    "the gateway already holds {} of {} bytes of node answers (max-buffered-response-bytes); retry shortly",
                    self.buffered(),
                    self.total
                ),
            )
        };
        let n32 = u32::try_from(n).map_err(|_| over())?;
        // The budget is almost always free: take it without the wait's timer (a clock read and a timer
        // entry per answer) unless it is not.
        let permit = match Arc::clone(&self.permits).try_acquire_many_owned(n32) {
            Ok(p) => p,
            Err(_) => {
                let acquire = Arc::clone(&self.permits).acquire_many_owned(n32);
                match tokio::time::timeout(BUDGET_WAIT, acquire).await {
                    Ok(Ok(p)) => p,
                    _ => return Err(over()),
                }
            }
        };
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        self.gauge();
        Ok(())
    }

    fn gauge(&self) {
        if let Some(m) = &self.metrics {
            m.buffered.set(i64::try_from(self.buffered()).unwrap_or(i64::MAX));
        }
    }

    fn too_large(&self, what: String) -> (AttemptOutcome, String) {
        self.refused(AttemptOutcome::TooLarge);
        (
            AttemptOutcome::TooLarge,
            format!(
                "the node's answer ({what}) exceeds this gateway's max-response-bytes ({} bytes); ask for less at a time (a smaller block range or batch)",
                self.max_answer
            ),
        )
    }

    /// Reads `body` (declared `Content-Length`: `declared`) within the cap and the budget.
    pub async fn read<B>(&self, body: B, declared: Option<u64>) -> Result<Bytes, (AttemptOutcome, String)>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::error::Error,
    {
        self.read_with_trailers(body, declared).await.map(|(data, _)| data)
    }

    /// [`AnswerBudget::read`], keeping the trailers (a gRPC answer's status travels in them).
    pub async fn read_with_trailers<B>(
        &self,
        body: B,
        declared: Option<u64>,
    ) -> Result<(Bytes, Option<http::HeaderMap>), (AttemptOutcome, String)>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::error::Error,
    {
        if let Some(n) = declared.filter(|n| *n > self.max_answer as u64) {
            return Err(self.too_large(format!("{n} bytes declared")));
        }
        let mut held: Option<OwnedSemaphorePermit> = None;
        let result = self.fill(body, declared, &mut held).await;
        drop(held);
        self.gauge();
        result
    }

    async fn fill<B>(
        &self,
        mut body: B,
        declared: Option<u64>,
        held: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(Bytes, Option<http::HeaderMap>), (AttemptOutcome, String)>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::error::Error,
    {
        // A declared length is allocated (and budgeted) once; otherwise start small and double.
        let first = declared.map_or(16 << 10, |n| usize::try_from(n).unwrap_or(usize::MAX)).min(self.max_answer);
        self.take(first, held).await?;
        let mut buf: Vec<u8> = Vec::with_capacity(first);
        let mut budgeted = first;
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| (AttemptOutcome::Transport, format!("body broke off: {}", super::error_chain(&e))))?;
            let data = match frame.into_data() {
                Ok(d) => d,
                Err(other) => {
                    trailers = other.into_trailers().ok();
                    continue;
                }
            };
            let want = buf.len() + data.len();
            if want > self.max_answer {
                return Err(self.too_large(format!("over {} bytes", self.max_answer)));
            }
            if want > budgeted {
                let grown = budgeted.saturating_mul(2).max(want).min(self.max_answer);
                // Growing copies into a new allocation while the old one still exists: budget both for that
                // moment, then give the old one's share back.
                self.take(grown, held).await?;
                // Exact, so the allocation is what was budgeted (`reserve` may double past the cap).
                buf.reserve_exact(grown - buf.len());
                if let Some(old) = held.as_mut().and_then(|h| h.split(budgeted)) {
                    drop(old);
                }
                self.gauge();
                budgeted = grown;
            }
            buf.extend_from_slice(&data);
        }
        Ok((Bytes::from(buf), trailers))
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
