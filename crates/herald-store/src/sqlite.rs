//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a single connection, so they never contend for SQLite's one write lock
//! (no `SQLITE_BUSY` under load) and a claim is exclusive without row locks; reads use a pool
//! of their own. `synchronous = FULL`: an event is on disk before it is reported accepted.
//! The group committer runs its batches on that connection from its own thread, through the
//! handle sqlx lends (`sqlite/writer.rs`), rather than hand sqlx each statement.

use std::str::FromStr;
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteOperation, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Pool, Sqlite};
use tokio::sync::Notify;

use crate::sql::{Backend, Query, Run, SqlStore, Workers, query};
use crate::{Clock, Error, ErrorKind, Limits, Millis, Registration};

mod reader;
mod writer;

/// Sets up the writer connection to wake the workers whenever a transaction that inserted
/// deliveries commits, whoever's transaction it was: an application's outbox transaction on
/// [`SqlStore::pool`] wakes them as the store's own writes do, without polling.
fn wake_after_commits(
    conn: &mut SqliteConnection,
    due: Arc<Notify>,
) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        let inserted = Arc::new(AtomicBool::new(false));
        let mut handle = conn.lock_handle().await?;
        let seen = Arc::clone(&inserted);
        handle.set_update_hook(move |change| {
            if change.operation == SqliteOperation::Insert && change.table == "deliveries" {
                seen.store(true, Ordering::Relaxed);
            }
        });
        let committed = Arc::clone(&inserted);
        handle.set_commit_hook(move || {
            // Runs as the commit begins; a woken worker's claim needs this very connection,
            // so it sees the commit. The committer's own commits wake the workers themselves.
            if committed.swap(false, Ordering::Relaxed) && !writer::by_committer() {
                due.notify_one();
            }
            true
        });
        handle.set_rollback_hook(move || inserted.store(false, Ordering::Relaxed));
        Ok(())
    })
}

/// Holds `<database>.lock` for as long as the store lives: one process per SQLite file, so
/// claims never need to be taken from a live process, and an earlier one's are free at start.
fn lock_file(database: &std::path::Path) -> Result<std::fs::File, Error> {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    let path = std::path::PathBuf::from(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Error::new(
                ErrorKind::Database,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "another herald process is using {} (it holds {}); SQLite serves one process, \
                 use PostgreSQL for more",
                database.display(),
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::new(
            ErrorKind::Database,
            format!("cannot lock {}: {e}", path.display()),
        )),
    }
}

/// herald's store in a SQLite database.
pub type SqliteStore = SqlStore<Sqlite>;

impl Backend for Sqlite {
    const CLAIMS_IN_BATCH: bool = true;
    const COMMIT_THREAD: bool = true;
    const ACCEPT_LANES: usize = 0;
    const ONE_STATEMENT_ENDPOINTS: usize = 0;

    async fn read_claimed(
        readers: &Pool<Sqlite>,
        ids: &[crate::sql::DeliveryKey],
        lease: &str,
        now: Millis,
    ) -> Result<Vec<crate::Claimed>, Error> {
        reader::read_claimed(readers, ids, lease, now).await
    }

    const HEARS_ITSELF: bool = false;

    const KEEPS_SUBSCRIBERS: bool = false;

    fn announcement<'q>(_: &[&str], _: &[String]) -> Option<Query<'q>> {
        // One process per SQLite file: the in-process signal is enough.
        None
    }

    const TOGETHER: bool = false;

    // Never taken: claims share the one writer's batches.
    const BEGIN_CLAIM: &'static str = "BEGIN";

    async fn prepare_partitions(_: &Pool<Sqlite>, _: Millis) -> Result<(), Error> {
        // Not partitioned: retention deletes rows, a batch at a time.
        Ok(())
    }

    async fn drop_partitions(_: &Pool<Sqlite>, _: Millis) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    async fn listen(
        _: &Pool<Sqlite>,
        _: Arc<Notify>,
        _: Workers,
        _: std::time::Duration,
    ) -> Result<(), Error> {
        Ok(())
    }

    async fn reserve_order(conn: &mut impl Run<Sqlite>, n: usize) -> Result<Vec<i64>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let (last,): (i64,) = query(
            "UPDATE counters SET value = value + $1 WHERE name = 'delivery_order' \
             RETURNING value",
        )
        .bind(n)
        .fetch_one(conn)
        .await?;
        Ok((last - n + 1..=last).collect())
    }

    async fn register(
        _: &Pool<Sqlite>,
        _: &str,
        _: crate::Millis,
    ) -> Result<Box<dyn Registration>, Error> {
        // One process per file (its lock, taken at open): the worker lives as long as it.
        Ok(Box::new(Alone))
    }

    async fn dead_workers(_: &mut SqliteConnection) -> Result<Vec<String>, Error> {
        // A worker of an earlier process had its claims handed back when the file was opened.
        Ok(Vec::new())
    }
}

/// A worker of the one process a SQLite file has.
struct Alone;

#[async_trait::async_trait]
impl Registration for Alone {
    async fn alive(&mut self) -> bool {
        true
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating it if missing) the database at `url`, e.g. `sqlite://herald.db`, and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, Error> {
        Self::open_with(url, Limits::default()).await
    }

    /// Like [`open`](Self::open), waiting for a connection or the write lock at most as long
    /// as `limits` say.
    pub async fn open_with(url: &str, limits: Limits) -> Result<SqliteStore, Error> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Database,
                    format!("`{url}` is not a SQLite URL: {e}"),
                )
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // A statement changing many rows in a transaction keeps a journal of the pages it
            // changed, to undo itself alone; past 64 KiB SQLite spilled it to a temporary file,
            // one write call per page. Held in memory, it costs a copy.
            .pragma("temp_store", "memory")
            .busy_timeout(limits.statement_timeout);
        let lock = lock_file(options.get_filename())?;
        let due: Arc<Notify> = Arc::default();
        let wake = Arc::clone(&due);
        // An embedded database's connection cannot drop away: no round trip to test it
        // before each use.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(limits.acquire_timeout)
            .test_before_acquire(false)
            .after_connect(move |conn, _| wake_after_commits(conn, Arc::clone(&wake)))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // Whatever an earlier process had claimed is due again: it is gone (the lock says so).
        let orphans: Vec<(String,)> = query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'pending' AND lease_owner IS NOT NULL RETURNING endpoint_id",
        )
        .fetch_all(&writer)
        .await?;
        if !orphans.is_empty() {
            let mut conn = writer.acquire().await?;
            let now = crate::SystemClock.now();
            crate::sql::turns::due_again::<Sqlite>(&mut *conn, &orphans, now).await?;
            tracing::info!(
                deliveries = orphans.len(),
                "claims of an earlier process are due again"
            );
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(limits.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqlStore::new(writer, reader, due)?
            .holding(lock)
            .with_max_endpoints_per_tenant(limits.max_endpoints_per_tenant))
    }

    /// A private in-memory database, for tests and examples.
    pub async fn open_in_memory() -> Result<SqliteStore, Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: each in-memory connection would otherwise be its own database.
        let due: Arc<Notify> = Arc::default();
        let wake = Arc::clone(&due);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| wake_after_commits(conn, Arc::clone(&wake)))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        SqlStore::new(pool.clone(), pool, due)
    }
}
