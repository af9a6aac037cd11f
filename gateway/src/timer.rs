//! Timers for futures that are woken many times: a pending tokio `Sleep` re-registers its waker on every poll
//! (an atomic swap in the timer entry and its bookkeeping, ~800 instructions per wake in the whole-process
//! profile), and a connection's task is woken several times per request (socket readable, node answer in,
//! socket writable) for reasons that have nothing to do with its watchdog timer (`connections::watch`).
//! (Tried for the upstream attempt's timeout too: a future woken only twice per call saved less than a
//! wrapper of its own cost, +1,100 instructions per call, so that one stays `tokio::time::timeout`.)
//!
//! A registered timer keeps the waker of its last poll, and a task's waker stays the same for its life. So
//! [`Registration::needs_poll`] lets a caller skip the timer while the waker is the one it was registered with
//! and the timer has not fired (`Sleep::is_elapsed`, one atomic load): it will wake the task itself when it
//! does.

use std::task::{Context, Waker};
use tokio::time::Sleep;

/// The waker a timer was last polled with.
#[derive(Default)]
pub struct Registration(Option<Waker>);

impl Registration {
    /// True when `timer` must be polled on this wake: never polled, polled with another waker, or fired.
    pub fn needs_poll(&self, cx: &Context<'_>, timer: &Sleep) -> bool {
        !self.holds(cx) || timer.is_elapsed()
    }

    /// Notes that the timer was just polled (and left pending) with `cx`'s waker.
    pub fn polled(&mut self, cx: &Context<'_>) {
        if !self.holds(cx) {
            self.0 = Some(cx.waker().clone());
        }
    }

    /// True when the timer was last polled with a waker that wakes `cx`'s task.
    fn holds(&self, cx: &Context<'_>) -> bool {
        self.0.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_timer_is_skipped_only_while_registered_with_this_waker_and_not_fired() {
        let mut sleep = std::pin::pin!(tokio::time::sleep(Duration::from_millis(100)));
        let mut registration = Registration::default();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(registration.needs_poll(&cx, &sleep), "never polled");
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        registration.polled(&cx);
        assert!(!registration.needs_poll(&cx, &sleep), "registered with this waker, not fired");
        // Another task's waker (a different waker): the timer must be polled to take it.
        let other = futures::task::waker(std::sync::Arc::new(Flag));
        assert!(registration.needs_poll(&Context::from_waker(&other), &sleep));
        // Fired: polled, whatever the waker.
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(registration.needs_poll(&cx, &sleep), "fired");
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
    }

    struct Flag;
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(_: &std::sync::Arc<Self>) {}
    }
}
