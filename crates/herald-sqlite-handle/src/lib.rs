//! A rusqlite connection over the handle of an sqlx SQLite connection: herald's one call of
//! SQLite's C API that Rust cannot check, kept in a crate of its own so the rest of the
//! workspace can go on forbidding `unsafe`.
//!
//! Why: sqlx runs every SQLite connection on a thread of its own, so each statement is handed
//! to that thread and its answer handed back, two context switches and about 60 µs a statement
//! on herald's development machine, where the statement itself takes about one
//! (`scripts/statement-hop`). sqlx also lends the connection's handle to a caller
//! ([`SqliteConnection::lock_handle`](sqlx::sqlite::SqliteConnection::lock_handle)), one hand-off for as long as the caller keeps it; a
//! [`Borrowed`] runs statements through that loan, on the caller's thread: herald's committer
//! its whole transactions, and the worker's reads of large claims.

use std::ops::Deref;

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::LockedSqliteHandle;

/// How many prepared statements a [`Borrowed`] keeps.
pub const STATEMENTS: usize = 256;

/// A connection taken from an sqlx pool, with a rusqlite connection over its handle.
///
/// The rusqlite connection is only reachable through [`lock`](Borrowed::lock), which holds sqlx's
/// lock on the handle for as long as it is used, so sqlx's own thread never touches the
/// connection meanwhile. The pool connection is owned here and never handed out, so the handle
/// lives at least as long as the rusqlite connection: the fields drop in order, the rusqlite
/// connection (finalizing the statements it prepared) before the pool connection goes back.
pub struct Borrowed {
    /// Declared first: dropped first.
    raw: rusqlite::Connection,
    /// The address of the handle `raw` was made over, checked at every lock.
    handle: usize,
    conn: PoolConnection<Sqlite>,
}

impl Borrowed {
    /// Takes `conn` for good and builds a rusqlite connection over its handle.
    pub async fn new(mut conn: PoolConnection<Sqlite>) -> Result<Borrowed, sqlx::Error> {
        let mut locked = conn.lock_handle().await?;
        let handle = locked.as_raw_handle();
        // SAFETY: `handle` is an open connection, owned by `conn`, which this `Borrowed` owns and
        // drops after `raw` (field order), so the handle outlives every use `raw` makes of it.
        // `from_handle` makes a connection that never closes the handle. `raw` is used only
        // while sqlx's lock on the handle is held (`lock`), or, when dropped, while `conn` is
        // held here with no command in flight, so sqlx's thread does not use it meanwhile.
        let raw = unsafe { rusqlite::Connection::from_handle(handle.as_ptr()) }
            .map_err(|e| sqlx::Error::Protocol(format!("cannot borrow the SQLite handle: {e}")))?;
        drop(locked);
        // rusqlite keeps 16 by default; herald's committer runs a few dozen statements over and
        // over, and one evicted is prepared again at its next use.
        raw.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(Borrowed {
            raw,
            handle: handle.as_ptr().addr(),
            conn,
        })
    }

    /// Locks the handle from sqlx's thread (one hand-off) and lends the rusqlite connection
    /// until the returned guard is dropped.
    pub async fn lock(&mut self) -> Result<Locked<'_>, sqlx::Error> {
        let mut guard = self.conn.lock_handle().await?;
        if guard.as_raw_handle().as_ptr().addr() != self.handle {
            return Err(sqlx::Error::Protocol(
                "the SQLite connection changed its handle".into(),
            ));
        }
        Ok(Locked {
            raw: &mut self.raw,
            _guard: guard,
        })
    }

    /// Closes the pool connection rather than give it back: for a connection left in a state
    /// nobody should inherit (a transaction that could not be rolled back).
    pub fn discard(&mut self) {
        self.conn.close_on_drop();
    }
}

impl Drop for Borrowed {
    /// Rolls back a transaction left open (the code running it panicked) before the connection
    /// goes back to the pool, as sqlx's own `Transaction` does when dropped; a connection that
    /// cannot be rolled back is closed instead. Like the statements `raw` finalizes as it drops,
    /// this runs without sqlx's lock, while `conn` is held here with no command in flight.
    fn drop(&mut self) {
        if !self.raw.is_autocommit() && self.raw.execute_batch("ROLLBACK").is_err() {
            self.conn.close_on_drop();
        }
    }
}

/// The rusqlite connection, while sqlx's lock on its handle is held.
pub struct Locked<'a> {
    raw: &'a mut rusqlite::Connection,
    _guard: LockedSqliteHandle<'a>,
}

impl Deref for Locked<'_> {
    type Target = rusqlite::Connection;

    fn deref(&self) -> &rusqlite::Connection {
        self.raw
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;

    /// An in-memory database: one connection, or each would be a database of its own.
    async fn memory() -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").expect("an in-memory URL");
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("an in-memory database")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn statements_on_the_borrowed_handle_are_seen_by_sqlx_and_back() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.expect("its connection");
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut *conn)
            .await
            .expect("a table");
        let mut writer = Borrowed::new(conn).await.expect("a writer");
        {
            let raw = writer.lock().await.expect("the handle");
            let mut insert = raw
                .prepare_cached("INSERT INTO t VALUES (?1)")
                .expect("an insert");
            insert.execute([41]).expect("a row");
            insert.execute([1]).expect("another");
        }
        drop(writer);
        let (sum,): (i64,) = sqlx::query_as("SELECT sum(v) FROM t")
            .fetch_one(&pool)
            .await
            .expect("the rows written through the handle");
        assert_eq!(sum, 42);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_transaction_left_open_is_rolled_back_before_the_connection_goes_back() {
        let pool = memory().await;
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .expect("a table");
        let mut writer = Borrowed::new(pool.acquire().await.expect("its connection"))
            .await
            .expect("a writer");
        {
            let raw = writer.lock().await.expect("the handle");
            raw.execute_batch("BEGIN; INSERT INTO t VALUES (1)")
                .expect("a transaction, never finished");
        }
        drop(writer);
        let mut tx = pool.begin().await.expect("a transaction of sqlx's own");
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
            .fetch_one(&mut *tx)
            .await
            .expect("the table");
        assert_eq!(rows, 0, "the abandoned insert was rolled back");
    }
}
