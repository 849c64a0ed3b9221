//! Opening the database a URL names, kept as its concrete store: the API and the worker use it
//! through `dyn Store`; the outbox needs to know which database a caller's transaction is on.

use std::sync::Arc;

#[cfg(feature = "postgres")]
use herald_store::postgres::PostgresStore;
use herald_store::sqlite::SqliteStore;
use herald_store::{Clock, Store, SystemClock};

use crate::config::masked_url;
use crate::error::{Error, ErrorKind};

/// The opened store, on one of the two databases. `pub` only because the sealed
/// [`Transaction`](crate::Transaction) trait names it; it is not reachable from outside.
#[derive(Clone)]
#[allow(unreachable_pub)]
pub enum Database {
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
}

impl Database {
    /// Opens the store a URL names (`sqlite:` or `postgres:`/`postgresql:`), reading the time
    /// from `clock` (`None`: the machine's, corrected to PostgreSQL's) and waiting for the
    /// database as `limits` allow.
    pub(crate) async fn open(
        url: &str,
        clock: Option<Arc<dyn Clock>>,
        limits: herald_store::Limits,
    ) -> Result<Database, Error> {
        let cannot_open =
            |e: herald_store::Error| Error::store(&format!("cannot open {}", masked_url(url)), e);
        let local: Arc<dyn Clock> = clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        if url.starts_with("sqlite:") {
            let store = SqliteStore::open_with(url, limits)
                .await
                .map_err(cannot_open)?;
            return Ok(Database::Sqlite(store.with_clock(local)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let store = PostgresStore::open_with(url, limits)
                    .await
                    .map_err(cannot_open)?;
                return Ok(Database::Postgres(match clock {
                    Some(clock) => store.with_clock(clock),
                    None => store
                        .with_database_clock(local)
                        .await
                        .map_err(cannot_open)?,
                }));
            }
            #[cfg(not(feature = "postgres"))]
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "`{}` is a PostgreSQL URL, and this build has no PostgreSQL: enable herald's \
                     `postgres` feature",
                    masked_url(url)
                ),
            ));
        }
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "unsupported database URL `{}`: use sqlite://FILE or postgres://…",
                masked_url(url)
            ),
        ))
    }

    /// The store, as the API and the worker use it.
    pub(crate) fn store(&self) -> Arc<dyn Store> {
        match self {
            Database::Sqlite(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Database::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// What this database is called in messages.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite",
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => "PostgreSQL",
        }
    }
}

/// Opens the store a URL names (`sqlite:` or `postgres:`/`postgresql:`), reading the time from
/// `clock` (`None`: the machine's, corrected to PostgreSQL's) and waiting for the database as
/// `limits` allow.
pub async fn open_store(
    url: &str,
    clock: Option<Arc<dyn Clock>>,
    limits: herald_store::Limits,
) -> Result<Arc<dyn Store>, Error> {
    Ok(Database::open(url, clock, limits).await?.store())
}
