//! The one shutdown signal both binaries stop on.
//!
//! Kubernetes sends SIGTERM, a terminal sends SIGINT; both mean "finish what you are doing and leave".
//! [`install`] registers the handlers at once, so a binary that installs them before it binds its listeners
//! can never be killed by the default signal action once it is reachable.

use std::future::Future;

/// Registers SIGTERM and SIGINT handlers now (call inside a tokio runtime) and returns a future that
/// resolves on the first of them.
///
/// If a handler cannot be installed (which happens only in a broken runtime), the error is logged and that
/// signal keeps its default action.
pub fn install() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let register = |kind: SignalKind, name: &'static str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, signal = name, "cannot listen for the signal");
                None
            }
        };
        let mut term = register(SignalKind::terminate(), "SIGTERM");
        let mut int = register(SignalKind::interrupt(), "SIGINT");
        async move {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => tracing::info!(signal = "SIGTERM", "shutdown requested"),
                () = int => tracing::info!(signal = "SIGINT", "shutdown requested"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!(signal = "ctrl-c", "shutdown requested");
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT received after it is first polled.
pub async fn shutdown_signal() {
    install().await;
}
