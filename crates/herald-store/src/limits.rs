//! How long a caller waits for the database, at most: when it is down or overloaded, herald
//! answers "unavailable" quickly instead of holding requests for sqlx's 30 s default. And how
//! much one tenant may hold, so that no tenant's events become writes everyone waits behind.

use std::time::Duration;

/// Bounds on every wait for the database, and on what one tenant may hold in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Waiting for a connection from the pool, connecting included: past it, the operation
    /// fails as [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
    pub acquire_timeout: Duration,
    /// One statement on PostgreSQL (its `statement_timeout`); SQLite waits for its write lock
    /// this long at most (`busy_timeout`).
    pub statement_timeout: Duration,
    /// Endpoints one tenant may have, at most (`None`: no bound). An event is stored with a
    /// delivery for each of its tenant's endpoints in one write, which every other tenant's
    /// writes wait behind: on SQLite an event to 10,000 endpoints takes about 60 ms
    /// (docs/sqlite.md). Creating one more is refused as a
    /// [`Conflict`](crate::ErrorKind::Conflict); endpoints already there stay.
    pub max_endpoints_per_tenant: Option<u32>,
    /// On PostgreSQL, how long the connection that listens for other processes' work may hear
    /// nothing before it is checked (an announcement to itself, which it must hear within as
    /// long again, or it is replaced). A firewall or NAT that forgets an idle connection drops
    /// its packets without closing it, and nothing else would notice.
    pub listener_check: Duration,
}

impl Default for Limits {
    /// 3 s for a connection, so an API call answers 503 within 5 s when the database is
    /// gone; 30 s for a statement; 1,000 endpoints a tenant; a listener checked after 30 s
    /// of silence.
    fn default() -> Limits {
        Limits {
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
            max_endpoints_per_tenant: Some(1_000),
            listener_check: Duration::from_secs(30),
        }
    }
}
