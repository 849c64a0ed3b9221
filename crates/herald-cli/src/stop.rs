//! The signals that stop herald's long-running commands (`serve`, `listen`, `tail`).
//!
//! Each handler is installed when [`Stop::install`] returns, before the command says it is
//! listening. `tokio::signal::ctrl_c()` only installs its handler when first polled, which for
//! a shutdown future handed to axum is some time after the port is printed: a SIGINT or SIGTERM
//! in between met the default action and killed the process, so a script that started herald
//! and stopped it at once saw it die by the signal instead of exiting 0.

use std::io;

/// SIGINT and SIGTERM, listened for from the moment this is made; a signal that came before
/// [`Stop::recv`] is awaited is kept, and `recv` returns at once.
pub(crate) struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    /// Installs the handlers. Must be called inside the tokio runtime.
    pub(crate) fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere).
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
