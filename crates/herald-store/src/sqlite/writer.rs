//! SQLite's group commits, run on the committing thread itself.
//!
//! sqlx runs a SQLite connection on a thread of its own and hands each statement to it, and
//! its answer back: about 60 µs of waiting a statement on the development machine, where most
//! of herald's writer statements take 5-50 µs (`scripts/statement-hop`). The committer instead
//! borrows the connection's handle once a transaction (`herald-sqlite-handle`) and runs the
//! batch's statements through rusqlite on its own thread. The statements are the same
//! [`Query`]s the rest of the store runs through sqlx; rows are read into the same types, by
//! column name, through serde. What it buys is time: `docs/sqlite.md` has the figures.
//!
//! The statements run through [`Run`] for a borrowed handle ([`Locked`]), defined here; the
//! worker's reads of large claims on a reader connection use it too (`reader.rs`).

use std::borrow::Cow;
use std::time::Duration;

use herald_sqlite_handle::{Borrowed, Locked};
use rusqlite::ffi;
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;

use crate::group::{Write, Written};
use crate::sql::batch::{self, MadeDue};
use crate::sql::{Arg, Commit, Query, Row, Run};
use crate::{Error, ErrorKind};

impl Commit for Sqlite {
    type Held = Borrowed;
    // A `Borrowed` prepares its statements anew (their cache goes with it, before the connection
    // goes back to the pool, which may close it). Writes of a steady load come well within
    // this of each other, so the committer keeps the connection through them, giving it back
    // at the latest after `HOLD` (sql/mod.rs) so other writes get their turn; a write outside
    // the committer (an endpoint created, an outbox transaction) waits at most that long.
    const LINGER: Duration = Duration::from_millis(2);
    // A commit waits for the disk whatever it holds (about 200 µs here). At a steady rate
    // writes come a few hundred microseconds apart, so without a wait most commits would hold
    // one; waiting this long for a small batch to grow took a tenth off a delivery's CPU at
    // 1,000 events/s, for about this much on a caller's 202 (docs/sqlite.md).
    const WINDOW: Duration = Duration::from_micros(200);

    async fn hold(conn: PoolConnection<Sqlite>) -> Result<Borrowed, Error> {
        Ok(Borrowed::new(conn).await?)
    }

    async fn commit(
        writer: &mut Borrowed,
        writes: &[Write],
        _: &batch::Process<'_>,
    ) -> Result<(Vec<Written>, MadeDue), Error> {
        let relaxed = relaxed(writes);
        let mut raw = writer.lock().await?;
        if relaxed {
            timed(RELAX, || raw.execute_batch(RELAX)).map_err(failed)?;
        }
        let applied = transaction(&mut raw, writes).await;
        // Whatever happened, the connection goes on (and back to the pool) waiting for the disk.
        let restored = !relaxed || timed(STRICT, || raw.execute_batch(STRICT)).is_ok();
        if !restored || !raw.is_autocommit() {
            drop(raw);
            writer.discard();
            return Err(applied.err().unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Database,
                    "the writer could not be made durable again",
                )
            }));
        }
        applied
    }
}

/// A transaction that is only claims and leases given back need not wait for the disk: lost
/// in a crash, its leases are gone too, and an SQLite file reopened hands every lease back
/// anyway (`sqlite.rs`). The next transaction that waits for the disk makes it durable with
/// itself (one write-ahead log, synced to its end). PostgreSQL's claims do the same
/// (`Backend::BEGIN_CLAIM`). An accept or an attempt record is durable before anyone hears of it.
fn relaxed(writes: &[Write]) -> bool {
    writes
        .iter()
        .all(|write| matches!(write, Write::Claim { .. } | Write::Release { .. }))
}

/// What [`relaxed`] transactions commit under.
const RELAX: &str = "PRAGMA synchronous = NORMAL";

/// What every other transaction commits under, as the store opens the database.
const STRICT: &str = "PRAGMA synchronous = FULL";

std::thread_local! {
    /// Set while the committer commits on this thread: the commit hook (`sqlite.rs`) leaves
    /// waking the workers to the committer, which does it once the commit is done, and only
    /// if the batch made deliveries due (a second wake-up would send a worker to claim
    /// nothing).
    static COMMITTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the transaction being committed on this thread is the committer's.
pub(super) fn by_committer() -> bool {
    COMMITTING.get()
}

/// Runs `commit` with [`COMMITTING`] set.
fn as_committer<R>(commit: impl FnOnce() -> R) -> R {
    COMMITTING.set(true);
    let result = commit();
    COMMITTING.set(false);
    result
}

/// `writes` applied in one transaction, committed; rolled back if any fails.
async fn transaction(
    raw: &mut Locked<'_>,
    writes: &[Write],
) -> Result<(Vec<Written>, MadeDue), Error> {
    timed("BEGIN IMMEDIATE", || raw.execute_batch("BEGIN IMMEDIATE")).map_err(failed)?;
    let applied = batch::apply::<Sqlite>(raw, writes, &Default::default()).await;
    let end = if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = as_committer(|| timed(end, || raw.execute_batch(end)));
    if ended.is_err() && !raw.is_autocommit() {
        // A commit that failed leaves the transaction open; the caller discards the connection
        // if this does not close it.
        let _ = raw.execute_batch("ROLLBACK");
    }
    let applied = applied?;
    ended.map_err(failed)?;
    Ok(applied)
}

impl Run<Sqlite> for Locked<'_> {
    async fn execute(&mut self, query: Query<'_>) -> Result<u64, Error> {
        timed(query.sqlite_text(), || {
            let mut statement = prepare(self, &query)?;
            let mut rows = statement.raw_query();
            while rows.next().map_err(failed)?.is_some() {}
            Ok(self.changes())
        })
    }

    async fn fetch_all<T: Row>(&mut self, query: Query<'_>) -> Result<Vec<T>, Error> {
        timed(query.sqlite_text(), || {
            let mut statement = prepare(self, &query)?;
            let columns = serde_rusqlite::columns_from_statement(&statement);
            let mut rows = statement.raw_query();
            let mut read = Vec::new();
            while let Some(row) = rows.next().map_err(failed)? {
                read.push(from_row(row, &columns)?);
            }
            Ok(read)
        })
    }

    async fn fetch_optional<T: Row>(&mut self, query: Query<'_>) -> Result<Option<T>, Error> {
        timed(query.sqlite_text(), || {
            let mut statement = prepare(self, &query)?;
            let columns = serde_rusqlite::columns_from_statement(&statement);
            let mut rows = statement.raw_query();
            // The first row only, as sqlx reads it: a statement with `RETURNING` makes all its
            // changes at its first step, and the statement is reset as it goes back to the
            // cache.
            match rows.next().map_err(failed)? {
                Some(row) => Ok(Some(from_row(row, &columns)?)),
                None => Ok(None),
            }
        })
    }
}

/// Runs one statement, reported as sqlx reports its own (`db.statement`, `elapsed_secs`) at
/// `DEBUG` under the target `herald_store::statement`, when anyone listens: the benchmark
/// counts and times the writer's statements from these events.
fn timed<R>(sql: &str, run: impl FnOnce() -> R) -> R {
    if !tracing::enabled!(target: "herald_store::statement", tracing::Level::DEBUG) {
        return run();
    }
    let start = std::time::Instant::now();
    let result = run();
    let elapsed_secs = start.elapsed().as_secs_f64();
    tracing::event!(
        target: "herald_store::statement",
        tracing::Level::DEBUG,
        db.statement = sql,
        elapsed_secs
    );
    result
}

/// `query`'s statement (prepared once per connection), with its values bound. Placeholders
/// are `$1`, `$2`…, which SQLite treats as names, numbered in order of appearance: each is
/// bound by its number, as sqlx binds them.
fn prepare<'c>(
    conn: &'c rusqlite::Connection,
    query: &Query<'_>,
) -> Result<rusqlite::CachedStatement<'c>, Error> {
    let mut statement = conn.prepare_cached(query.sqlite_text()).map_err(failed)?;
    let args = query.args();
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$').or_else(|| name.strip_prefix('?')))
            .and_then(|digits| digits.parse::<usize>().ok())
            .unwrap_or(index);
        let arg = number
            .checked_sub(1)
            .and_then(|i| args.get(i))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Database,
                    format!("no value bound to placeholder {number}"),
                )
            })?;
        match arg {
            Arg::Text(text) => statement.raw_bind_parameter(index, text),
            Arg::Owned(text) => statement.raw_bind_parameter(index, text),
            Arg::Int(int) => statement.raw_bind_parameter(index, int),
            Arg::Bool(flag) => statement.raw_bind_parameter(index, flag),
        }
        .map_err(failed)?;
    }
    Ok(statement)
}

/// `row` read into `T` by the names of its `columns` (the statement's, read once for all its
/// rows: `serde_rusqlite::from_row` would read them again for every row).
fn from_row<T: Row>(row: &rusqlite::Row<'_>, columns: &[String]) -> Result<T, Error> {
    serde_rusqlite::from_row_with_columns::<T>(row, columns)
        .map_err(|e| Error::new(ErrorKind::Database, format!("cannot read a row: {e}")))
}

/// A statement that failed, as sqlx reports SQLite's errors: a unique or foreign-key
/// violation is recognised as one (`error::classify`), whichever way the statement ran.
fn failed(error: rusqlite::Error) -> Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            let message = message.unwrap_or_else(|| code.to_string());
            sqlx::Error::Database(Box::new(Failed {
                code: code.extended_code,
                message,
            }))
            .into()
        }
        other => Error::new(ErrorKind::Database, format!("database error: {other}")),
    }
}

/// SQLite's error, for sqlx's [`DatabaseError`](sqlx::error::DatabaseError).
#[derive(Debug)]
struct Failed {
    code: i32,
    message: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for Failed {}

impl sqlx::error::DatabaseError for Failed {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind as Kind;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                Kind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Kind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => Kind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => Kind::CheckViolation,
            _ => Kind::Other,
        }
    }
}
