//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a single connection, so they never contend for SQLite's one write lock
//! (no `SQLITE_BUSY` under load) and a claim is exclusive without row locks; reads use a pool
//! of their own. `synchronous = FULL`: an event is on disk before it is reported accepted.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Pool, Sqlite};
use tokio::sync::Notify;

use crate::sql::{Backend, SqlStore};
use crate::{Error, ErrorKind};

/// herald's store in a SQLite database.
pub type SqliteStore = SqlStore<Sqlite>;

impl Backend for Sqlite {
    const CLAIMS_IN_BATCH: bool = true;

    async fn announce(_: &mut SqliteConnection) -> Result<(), Error> {
        // One process per SQLite file: the in-process signal is enough.
        Ok(())
    }

    async fn relax_claim(_: &mut SqliteConnection) -> Result<(), Error> {
        Ok(())
    }

    async fn listen(_: &Pool<Sqlite>, _: Arc<Notify>) -> Result<(), Error> {
        Ok(())
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating it if missing) the database at `url`, e.g. `sqlite://herald.db`, and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, Error> {
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
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqlStore::new(writer, reader))
    }

    /// A private in-memory database, for tests and examples.
    pub async fn open_in_memory() -> Result<SqliteStore, Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: each in-memory connection would otherwise be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqlStore::new(pool.clone(), pool))
    }
}
