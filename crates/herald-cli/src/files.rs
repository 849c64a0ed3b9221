//! The process's limit on open files. Every HTTP connection, every delivery in flight and
//! every database connection holds a file descriptor; the usual soft limit (1,024 under systemd
//! and in most shells) is less than herald's defaults can hold at once (`http.max_connections`
//! and `delivery.concurrency`), and past it an accept, a delivery's connect and a database's
//! reconnect all fail alike. As Go's runtime does, `serve` raises the soft limit to the hard
//! one, which needs no privilege.

use rustix::process::{Resource, getrlimit, setrlimit};

/// Raises the soft limit on open files to the hard limit; returns the limit now in force
/// (`None`: unlimited).
pub(crate) fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the limit on open files");
            return limit.current;
        }
    }
    limit.maximum
}

/// What the configuration may hold open at once: HTTP connections, deliveries (each with a
/// connection, and as many again kept alive in the client's pool), and a margin for the
/// database and the rest.
pub(crate) fn wanted(max_connections: usize, concurrency: usize) -> u64 {
    let n = max_connections + 2 * concurrency + 128;
    u64::try_from(n).unwrap_or(u64::MAX)
}
