//! The one error type of the service's Rust API: why it could not start, or could not send.

use std::fmt;

/// Why the service could not start, serve or send. [`kind`](Error::kind) says which.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// What went wrong, for callers that act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration or the declarations cannot work (a bad database URL, an app whose
    /// webhooks differ from the ones the service was opened with, a schema that does not
    /// compile).
    Config,
    /// The webhook was not declared with the app the service was opened for.
    Undeclared,
    /// The tenant id is not 1 to 64 letters, digits, `_`, `-` or `.`.
    InvalidTenant,
    /// The payload does not serialize to JSON.
    Payload,
    /// The transaction is on the other database than the service's.
    WrongDatabase,
    /// The database refused or failed.
    Database,
    /// The database did not answer in time (it is down or saturated); try again later.
    Unavailable,
    /// The HTTP server failed, or the service was started twice.
    Server,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The store's error, with `context` saying what was being done.
    pub(crate) fn store(context: &str, error: herald_store::Error) -> Error {
        let kind = match error.kind() {
            herald_store::ErrorKind::Unavailable => ErrorKind::Unavailable,
            _ => ErrorKind::Database,
        };
        Error::new(kind, format!("{context}: {error}"))
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
