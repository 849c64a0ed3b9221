//! How long a caller waits for the database, at most: when it is down or overloaded, herald
//! answers "unavailable" quickly instead of holding requests for sqlx's 30 s default.

use std::time::Duration;

/// Bounds on every wait for the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Waiting for a connection from the pool, connecting included: past it, the operation
    /// fails as [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
    pub acquire_timeout: Duration,
    /// One statement on PostgreSQL (its `statement_timeout`); SQLite waits for its write lock
    /// this long at most (`busy_timeout`).
    pub statement_timeout: Duration,
}

impl Default for Limits {
    /// 3 s for a connection, so an API call answers 503 within 5 s when the database is
    /// gone; 30 s for a statement.
    fn default() -> Limits {
        Limits {
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
        }
    }
}
