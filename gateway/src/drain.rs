//! Graceful shutdown of served connections: on stop, each connection is told to finish its in-flight request
//! and close, and the listener waits until every connection has ended ([`Drain::shutdown`]).
//!
//! Why not hyper-util's `GracefulShutdown`, which does the same: its connection wrapper polls a `watch`
//! channel's `changed()` future on every wake of the connection's task, and a connection is woken several
//! times per request (socket readable, node answer in, socket writable). That poll cost ~760 instructions per
//! proxied call in the whole-process profile (`scripts/bench-process-instructions.sh`). Here the shutdown
//! signal is registered once per connection with its task's waker, which does not change for the life of a
//! task; after that a wake costs one comparison of wakers and the signal is looked at again only when it may
//! have fired (the same reasoning as `timer::Registration`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Waker;
use tokio::sync::Notify;

struct Inner {
    /// Set once, by [`Drain::shutdown`].
    closing: AtomicBool,
    /// Wakes every watched connection when `closing` is set.
    close: Notify,
    /// Watchers alive: connections being served, or handed off and not yet started.
    open: AtomicUsize,
    /// Wakes [`Drain::shutdown`] when `open` drops to zero.
    all_closed: Notify,
}

/// A listener's connections, to be closed together.
pub struct Drain {
    inner: Arc<Inner>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            inner: Arc::new(Inner {
                closing: AtomicBool::new(false),
                close: Notify::new(),
                open: AtomicUsize::new(0),
                all_closed: Notify::new(),
            }),
        }
    }
}

/// One connection's hold on its [`Drain`]: shutdown waits until it is dropped.
pub struct Watcher {
    inner: Arc<Inner>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.inner.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.all_closed.notify_waiters();
        }
    }
}

impl Drain {
    /// A watcher for one more connection.
    pub fn watcher(&self) -> Watcher {
        self.inner.open.fetch_add(1, Ordering::AcqRel);
        Watcher { inner: Arc::clone(&self.inner) }
    }

    /// Tells every watched connection to close once its in-flight request is answered, and waits until
    /// every watcher is gone (the caller bounds the wait with its grace period).
    pub async fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::Release);
        self.inner.close.notify_waiters();
        loop {
            let all_closed = self.inner.all_closed.notified();
            tokio::pin!(all_closed);
            // Registered before the count is read, so a last watcher dropped in between still wakes us.
            all_closed.as_mut().enable();
            if self.inner.open.load(Ordering::Acquire) == 0 {
                return;
            }
            all_closed.await;
        }
    }
}

impl Watcher {
    /// Serves `conn` to its end; once shutdown starts, calls `close` on it once (e.g. hyper's
    /// `graceful_shutdown`) and keeps polling it while it finishes.
    pub async fn watch<C: Future>(self, conn: C, close: impl FnOnce(Pin<&mut C>)) -> C::Output {
        let mut close = Some(close);
        let signal = self.inner.close.notified();
        tokio::pin!(conn, signal);
        // The waker the signal was registered with; while a wake comes with the same one, the signal need not
        // be polled: it will wake the task itself.
        let mut registered: Option<Waker> = None;
        std::future::poll_fn(|cx| {
            if close.is_some() {
                let fresh = registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker()));
                if fresh || self.inner.closing.load(Ordering::Acquire) {
                    if signal.as_mut().poll(cx).is_ready() || self.inner.closing.load(Ordering::Acquire) {
                        if let Some(f) = close.take() {
                            f(conn.as_mut());
                        }
                    } else if fresh {
                        registered = Some(cx.waker().clone());
                    }
                }
            }
            conn.as_mut().poll(cx)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;
    use std::time::Duration;

    /// A connection stand-in: pending until closed, then done on its next poll.
    struct Conn {
        closed: bool,
    }
    impl Future for Conn {
        type Output = &'static str;
        fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<&'static str> {
            if self.closed { Poll::Ready("closed") } else { Poll::Pending }
        }
    }

    #[tokio::test]
    async fn shutdown_closes_every_watched_connection_and_waits_for_them() {
        let drain = Drain::default();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let w = drain.watcher();
            tasks.push(tokio::spawn(w.watch(Conn { closed: false }, |mut c| c.closed = true)));
        }
        // Let every connection register before the signal.
        tokio::task::yield_now().await;
        tokio::time::timeout(Duration::from_secs(10), drain.shutdown()).await.expect("shutdown finished");
        for t in tasks {
            assert_eq!(t.await.unwrap(), "closed");
        }
    }

    #[tokio::test]
    async fn a_connection_watched_after_shutdown_began_is_closed_too() {
        let drain = Drain::default();
        let w = drain.watcher();
        let shut = tokio::spawn(async move {
            drain.shutdown().await;
        });
        tokio::task::yield_now().await;
        let out =
            tokio::time::timeout(Duration::from_secs(10), w.watch(Conn { closed: false }, |mut c| c.closed = true))
                .await
                .expect("closed");
        assert_eq!(out, "closed");
        tokio::time::timeout(Duration::from_secs(10), shut).await.expect("shutdown finished").unwrap();
    }

    #[tokio::test]
    async fn shutdown_without_connections_returns_at_once_and_a_dropped_watcher_counts_as_closed() {
        let drain = Drain::default();
        drop(drain.watcher());
        tokio::time::timeout(Duration::from_secs(10), drain.shutdown()).await.expect("nothing to wait for");
    }

    #[tokio::test]
    async fn a_connection_that_ends_by_itself_is_not_closed() {
        let drain = Drain::default();
        let mut called = false;
        let out = drain.watcher().watch(std::future::ready(7), |_| called = true).await;
        assert_eq!(out, 7);
        assert!(!called);
        tokio::time::timeout(Duration::from_secs(10), drain.shutdown()).await.expect("nothing to wait for");
    }
}
