//! The error herald's library reports.

use std::fmt;

/// What went wrong, broadly; [`Error`]'s message says exactly what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Two webhooks were declared with the same name and method.
    DuplicateWebhook,
    /// Two operations (routes or webhooks) share an `operationId`.
    DuplicateOperationId,
    /// Two different schemas were registered under one component name.
    ConflictingSchema,
    /// A declared example body did not serialize to JSON.
    InvalidExample,
    /// A docs or OpenAPI URL path is not usable.
    InvalidDocsPath,
    /// An OpenAPI document given to [`spec::read`](crate::spec::read) cannot be served; the
    /// message starts with the JSON pointer at fault.
    InvalidSpec,
    /// A webhook's versions are malformed or out of order.
    InvalidVersion,
}

/// An error from declaring or documenting webhooks; found when the app is built, so a broken
/// declaration stops start-up instead of serving a wrong document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// What kind of error this is.
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
