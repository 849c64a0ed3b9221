//! The store's one error type: what went wrong broadly ([`ErrorKind`]) and, for a database
//! failure, the driver's error as its source.

use std::fmt;

/// What went wrong, broadly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something it refers to does not exist.
    NotFound,
    /// It exists already, or its state forbids the change.
    Conflict,
    /// The database could not be reached in time (down, restarting, or every connection
    /// busy past [`Limits::acquire_timeout`](crate::Limits)): worth trying again later.
    Unavailable,
    /// The database failed.
    Database,
    /// Stored data does not parse.
    Corrupt,
}

/// A store error.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<sqlx::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The database did not answer in time: `what` says where.
    pub fn unavailable(what: &str) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            format!("the database is unavailable: {what}"),
        )
    }

    /// Stored data that does not parse.
    pub(crate) fn corrupt(what: &str, error: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Corrupt, format!("stored {what}: {error}"))
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        let (kind, message) = if unreachable(&error) {
            (ErrorKind::Unavailable, "the database is unavailable")
        } else {
            (ErrorKind::Database, "database error")
        };
        Error {
            kind,
            message: message.into(),
            source: Some(error),
        }
    }
}

impl Error {
    /// Whether the database ended a deadlock by failing this transaction (PostgreSQL's
    /// 40P01): trying it again can succeed.
    pub(crate) fn deadlocked(&self) -> bool {
        matches!(&self.source, Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("40P01"))
    }
}

/// Whether `error` says the database could not be reached or went away, rather than that a
/// statement failed: no connection in time, the connection broke, the server is shutting
/// down or starting (SQLSTATE class 08, 57P01-57P03), or a statement ran out of time (57014).
fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "57014")
        }),
        _ => false,
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Error {
        use sqlx::migrate::MigrateError;
        let message = match error {
            // Rolled back to an older herald after a newer one migrated the database: herald
            // never undoes a migration, so say which way out there is.
            MigrateError::VersionMissing(version) => format!(
                "the database was migrated by a newer herald (its migration {version} is \
                 unknown to this one): run that herald or a newer one, or restore a backup \
                 taken before the upgrade"
            ),
            MigrateError::VersionMismatch(version) => format!(
                "the database's migration {version} differs from this herald's: it was \
                 migrated by another build of herald; run the build that migrated it"
            ),
            error => format!("migrating the database failed: {error}"),
        };
        Error::new(ErrorKind::Database, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Maps a unique-constraint violation to [`ErrorKind::Conflict`] and a foreign-key violation
/// to [`ErrorKind::NotFound`], naming `what`.
pub(crate) fn classify(error: Error, what: &str) -> Error {
    if let Some(sqlx::Error::Database(db)) = &error.source {
        if db.is_unique_violation() {
            return Error::new(ErrorKind::Conflict, format!("{what} already exists"));
        }
        if db.is_foreign_key_violation() {
            return Error::new(
                ErrorKind::NotFound,
                format!("{what} refers to something that does not exist"),
            );
        }
    }
    error
}

impl Error {
    /// Whether a batch of events was accepted with subscribers that had changed since they
    /// were kept (PostgreSQL's `herald_subscribers_are`, SQLSTATE HR001): it wrote nothing.
    pub(crate) fn is_stale_subscribers(&self) -> bool {
        matches!(&self.source, Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("HR001"))
    }
}

/// Why work cannot be given to a disabled endpoint.
pub(crate) fn disabled_endpoint() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "its endpoint is disabled: enable the endpoint first",
    )
}
