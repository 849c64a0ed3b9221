//! The store for more than one machine: PostgreSQL, shared by any number of herald processes.
//!
//! Claims use `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches without
//! waiting on each other, and a lease (not a held transaction) marks work in flight, so a
//! crashed process's deliveries come back when its lease runs out. Committed deliveries are
//! announced (`LISTEN`/`NOTIFY`) on the channel of the worker that serves their endpoint, so
//! it wakes at once in whichever process it runs (`sql/announce.rs`).

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};
use sqlx::{Connection, Pool, Postgres};
use tokio::sync::Notify;

use crate::group::{Write, Written};
use crate::sql::{
    Backend, Commit, Query, Run, SqlStore, Workers, batch, batch::MadeDue, batch::Process,
    json_rows, query, serving_worker,
};
use crate::{Claimed, Clock, Error, ErrorKind, Limits, Millis, Registration};

/// The channel on which committed deliveries are announced to every herald process (those of
/// endpoints no worker serves): a prefix and the MD5 of the schema's name, so installations
/// sharing a database stay apart and the name stays within PostgreSQL's 63 bytes whatever the
/// schema is called.
macro_rules! channel {
    () => {
        "'herald_deliveries_' || md5(current_schema())"
    };
}

/// The channel of the worker named `$worker` (an SQL expression), on which the deliveries of
/// the endpoints it serves are announced: only its process listens there.
macro_rules! worker_channel {
    ($worker:expr) => {
        concat!(
            "'herald_worker_' || md5(current_schema() || '/' || ",
            $worker,
            ")"
        )
    };
}

/// herald's store in a PostgreSQL database.
pub type PostgresStore = SqlStore<Postgres>;

/// A connection that listens on the channel of all, the channel of each of `workers` and
/// `check`; how many workers' channels that is.
async fn listener(
    pool: &Pool<Postgres>,
    workers: &Workers,
    check: &str,
) -> Result<(PgListener, usize), Error> {
    let names = workers.names();
    let (channels,): (Vec<String>,) = sqlx::query_as(concat!(
        "SELECT ARRAY[",
        channel!(),
        "] || ARRAY(SELECT ",
        worker_channel!("w"),
        " FROM unnest(CAST($1 AS TEXT[])) AS w)"
    ))
    .bind(&names)
    .fetch_one(pool)
    .await?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all(channels.iter().map(String::as_str).chain([check]))
        .await?;
    Ok((listener, names.len()))
}

/// Why a listener is replaced.
enum Replace {
    /// Its connection stopped carrying announcements.
    Silent,
    /// A worker of this process registered under a new name, whose channel it does not hear.
    NewWorker,
}

/// Passes what `listener` hears to the workers, for as long as the pool lives, and replaces it
/// when it stops hearing. A connection can go quiet without ever failing (a firewall or a NAT
/// that forgets an idle connection drops its packets rather than closing it): then nothing is
/// heard, and nothing says so. After `check_after` of silence it announces on its own `check`
/// channel through the pool; not heard within `check_after` again, the connection is dropped
/// and another made, and meanwhile commits wake their own process's workers. It is also
/// replaced when a worker of this process registers under a new name (one reaped comes back
/// so), to listen on that name's channel too.
async fn keep_hearing(
    pool: Pool<Postgres>,
    (mut listener, mut listened): (PgListener, usize),
    check: String,
    check_after: Duration,
    due: Arc<Notify>,
    workers: Workers,
) {
    loop {
        let heard = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hearing = tokio::spawn(hear(
            listener,
            Arc::clone(&heard),
            Arc::clone(&due),
            workers.clone(),
        ));
        let why = loop {
            let before = heard.load(Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(check_after) => {}
                () = workers.added() => {
                    if workers.names().len() != listened {
                        break Replace::NewWorker;
                    }
                    continue;
                }
            }
            if pool.is_closed() {
                hearing.abort();
                return;
            }
            if heard.load(Ordering::Relaxed) != before {
                continue;
            }
            // Silent: the check goes through another connection. If that fails too, the
            // database is what is away, and the listener finds out for itself.
            let sent = sqlx::query("SELECT pg_notify($1, '')")
                .bind(&check)
                .execute(&pool)
                .await;
            if sent.is_err() {
                continue;
            }
            tokio::time::sleep(check_after).await;
            if heard.load(Ordering::Relaxed) == before {
                break Replace::Silent;
            }
        };
        hearing.abort();
        workers.set_hearing(false);
        due.notify_one();
        match why {
            Replace::Silent => tracing::warn!(
                "the LISTEN connection stopped carrying announcements; making another"
            ),
            Replace::NewWorker => {
                tracing::debug!("a worker registered under a new name: listening for it too");
            }
        }
        (listener, listened) = loop {
            if pool.is_closed() {
                return;
            }
            match self::listener(&pool, &workers, &check).await {
                Ok(made) => break made,
                Err(error) => {
                    tracing::warn!(%error, "cannot make a LISTEN connection; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        // What was announced meanwhile was not heard: the worker looks once.
        workers.set_hearing(true);
        due.notify_one();
    }
}

/// Passes each announcement `listener` hears to the workers it names, counting in `heard`
/// everything it hears.
async fn hear(
    mut listener: PgListener,
    heard: Arc<std::sync::atomic::AtomicU64>,
    due: Arc<Notify>,
    workers: Workers,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                heard.fetch_add(1, Ordering::Relaxed);
                workers.set_hearing(true);
                if notification.channel().starts_with("herald_check_") {
                    continue;
                }
                if workers.wanted(notification.payload()) {
                    due.notify_one();
                }
            }
            // The connection was lost and is back: what was announced meanwhile is lost, so
            // the worker looks once.
            Ok(None) => {
                heard.fetch_add(1, Ordering::Relaxed);
                workers.set_hearing(true);
                due.notify_one();
            }
            // Away: until an announcement is heard again, this process's commits wake its
            // worker themselves, and other processes' work waits for its poll.
            Err(error) => {
                workers.set_hearing(false);
                due.notify_one();
                tracing::warn!(%error, "LISTEN connection failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Commit for Postgres {
    type Held = sqlx::pool::PoolConnection<Postgres>;
    // A connection of the pool keeps its prepared statements in the pool: nothing to keep.
    const LINGER: Duration = Duration::ZERO;
    // Its committers share the runtime, where a wait would block other tasks; and with
    // several of them, one batch's statements run while another's commit waits for the disk.
    const WINDOW: Duration = Duration::ZERO;

    async fn hold(conn: Self::Held) -> Result<Self::Held, Error> {
        Ok(conn)
    }

    async fn commit(
        conn: &mut Self::Held,
        writes: &[Write],
        process: &Process<'_>,
    ) -> Result<(Vec<Written>, MadeDue), Error> {
        // A batch accepted with subscribers another process has changed since they were kept
        // wrote nothing, and its tenants' are forgotten. Tried once more, it reads all it uses
        // afresh, which is not checked (`sql/subscribers.rs`): it cannot fail so again.
        match commit_once(conn, writes, process).await {
            Err(e) if e.is_stale_subscribers() => commit_once(conn, writes, process).await,
            applied => applied,
        }
    }
}

/// [`Commit::commit`], once.
async fn commit_once(
    conn: &mut sqlx::pool::PoolConnection<Postgres>,
    writes: &[Write],
    process: &Process<'_>,
) -> Result<(Vec<Written>, MadeDue), Error> {
    if writes.iter().all(Write::is_unkeyed_accept) {
        // Such a batch finds the endpoints subscribed (kept from the batches before, or read),
        // then writes everything with one statement (`accept::write_deliveries`), which
        // commits alone or not at all: no `BEGIN` and no `COMMIT`, two round trips fewer for
        // each event's 202 to wait on.
        return batch::apply::<Postgres>(&mut **conn, writes, process).await;
    }
    // Rolled back as it drops if anything fails.
    let mut tx = conn.begin().await?;
    let applied = batch::apply::<Postgres>(&mut *tx, writes, process).await?;
    tx.commit().await?;
    Ok(applied)
}

impl Backend for Postgres {
    const CLAIMS_IN_BATCH: bool = false;
    const COMMIT_THREAD: bool = false;
    // One: a second took 10% more events through wrk's 32 connections, but split batches so
    // that the benchmark's 64 took 5-10% fewer, at 0.10-0.17 transactions a delivery.
    const ACCEPT_LANES: usize = 1;
    // The default limit of a tenant's endpoints; 30-39 ms a page for 64 (each endpoint's newest
    // looked for in every day's partition), where a statement each took 215-280 ms.
    const ONE_STATEMENT_ENDPOINTS: usize = 1000;

    async fn read_claimed(
        readers: &Pool<Postgres>,
        ids: &[crate::sql::DeliveryKey],
        lease: &str,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error> {
        let mut reader = readers.acquire().await?;
        crate::sql::claim::read::<Postgres>(&mut *reader, ids, lease, now).await
    }

    const HEARS_ITSELF: bool = true;

    const KEEPS_SUBSCRIBERS: bool = true;

    fn announcement<'q>(endpoints: &[&str], own: &[String]) -> Option<Query<'q>> {
        // Delivered to listeners when (and only if) the transaction commits: on the channel of
        // each worker serving one of `endpoints` but `own`, and on the channel of all when one
        // has none serving it (every worker looks). Each announcement costs every listening
        // connection of the database a transaction (PostgreSQL signals them all),
        // so `own`'s are left out: about 0.04 transactions a delivery with two processes
        // (docs/scaling.md). `told` is read, so every notification is sent.
        const TOLD: &str = concat!(
            "WITH o AS (SELECT DISTINCT ",
            serving_worker!("t.value"),
            " AS worker FROM herald_texts(CAST($1 AS json)) AS t), \
             own AS (SELECT t.value AS worker FROM herald_texts(CAST($2 AS json)) AS t), \
             told AS (SELECT pg_notify(CASE WHEN o.worker IS NULL THEN ",
            channel!(),
            " ELSE ",
            worker_channel!("o.worker"),
            " END, '') FROM o \
               WHERE o.worker IS NULL OR o.worker NOT IN (SELECT worker FROM own)) \
             SELECT EXISTS (SELECT 1 FROM o JOIN own ON own.worker = o.worker) AS here \
             FROM (SELECT count(*) FROM told) AS n"
        );
        (!endpoints.is_empty()).then(|| {
            query(TOLD)
                .bind(json_rows(&endpoints))
                .bind(json_rows(&own))
        })
    }

    const TOGETHER: bool = true;

    async fn prepare_partitions(pool: &Pool<Postgres>, now: Millis) -> Result<(), Error> {
        crate::partitions::prepare(pool, now).await
    }

    async fn drop_partitions(pool: &Pool<Postgres>, cutoff: Millis) -> Result<Vec<String>, Error> {
        crate::partitions::drop_before(pool, cutoff).await
    }

    // Generic plans: by default PostgreSQL plans a prepared statement anew on each call
    // while a fresh plan looks cheaper than the kept one, and over partitions (which a kept
    // plan prunes only when it runs) it often did so for the claim's read, at more than the
    // read's own cost with a month of days kept (figures in docs/scaling.md). A claim's
    // statements bind their batches as JSON, whose contents no plan sees, so a fresh plan
    // knows nothing the kept one does not. The API's lists keep the default: their optional
    // filters (`$4 IS NULL OR d.event_id = $4`) need a plan made for the values given to use
    // an index. One simple query, so one round trip with the `BEGIN`.
    const BEGIN_CLAIM: &'static str = "BEGIN; SET LOCAL synchronous_commit = off; \
         SET LOCAL plan_cache_mode = force_generic_plan";

    async fn listen(
        pool: &Pool<Postgres>,
        due: Arc<Notify>,
        workers: Workers,
        check_after: Duration,
    ) -> Result<(), Error> {
        // A channel of this listener's own, to check, when it has heard nothing for a while,
        // that its connection still carries announcements.
        let (check,): (String,) = sqlx::query_as(
            "SELECT 'herald_check_' || md5(random()::text || clock_timestamp()::text)",
        )
        .fetch_one(pool)
        .await?;
        let listener = listener(pool, &workers, &check).await?;
        workers.set_hearing(true);
        tokio::spawn(keep_hearing(
            pool.clone(),
            listener,
            check,
            check_after,
            due,
            workers,
        ));
        Ok(())
    }

    async fn reserve_order(conn: &mut impl Run<Postgres>, n: usize) -> Result<Vec<i64>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let numbers: Vec<(i64,)> =
            query("SELECT nextval('delivery_order') FROM generate_series(1, $1) ORDER BY 1")
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .fetch_all(conn)
                .await?;
        Ok(numbers.into_iter().map(|(n,)| n).collect())
    }

    async fn register(
        pool: &Pool<Postgres>,
        name: &str,
        now: crate::Millis,
    ) -> Result<Box<dyn Registration>, Error> {
        // A session of its own holds the worker's lock: when the process goes, the server
        // sees the connection close and the lock is free for the others' reapers to find.
        let mut session = PgConnection::connect_with(&pool.connect_options()).await?;
        let key = i64::from_le_bytes(random_bytes());
        query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut session)
            .await?;
        query("INSERT INTO workers (id, lock_key, started_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(key)
            .bind(now)
            .execute(&mut session)
            .await?;
        Ok(Box::new(Session {
            session,
            name: name.to_owned(),
        }))
    }

    async fn dead_workers(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
        let workers: Vec<(String, i64)> = query("SELECT id, lock_key FROM workers")
            .fetch_all(&mut *conn)
            .await?;
        let mut dead = Vec::new();
        for (id, key) in workers {
            // Free only when no session holds it: the worker's is closed. Taken for this
            // transaction only, so it needs no letting go.
            let (free,): (bool,) = query("SELECT pg_try_advisory_xact_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
            if free {
                query("DELETE FROM workers WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                dead.push(id);
            }
        }
        Ok(dead)
    }
}

/// A worker's session, holding its advisory lock, and the worker's name.
struct Session {
    session: PgConnection,
    name: String,
}

#[async_trait::async_trait]
impl Registration for Session {
    async fn alive(&mut self) -> bool {
        // The heartbeat: a worker not seen for 5 s serves no endpoint (`claim.rs`). Its row
        // gone (reaped) means its claims may be someone else's by now.
        let seen = query("UPDATE workers SET seen_at = now() WHERE id = $1")
            .bind(&self.name)
            .execute(&mut self.session)
            .await;
        matches!(seen, Ok(1))
    }

    async fn retire(&mut self) {
        // Still registered (its claims are reaped if it dies now), but serving no endpoint.
        let retired = query("UPDATE workers SET retiring = true WHERE id = $1")
            .bind(&self.name)
            .execute(&mut self.session)
            .await;
        if let Err(error) = retired {
            tracing::warn!(%error, worker = %self.name, "cannot hand this worker's endpoints to the others; they pass when it is gone");
        }
    }
}

/// Eight random bytes, for a worker's lock key.
fn random_bytes() -> [u8; 8] {
    let id = ulid::Ulid::generate();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&id.to_bytes()[8..]);
    bytes
}

impl SqlStore<Postgres> {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<PostgresStore, Error> {
        Self::open_with(url, Limits::default()).await
    }

    /// Like [`open`](Self::open), waiting for the database at most as long as `limits` say.
    pub async fn open_with(url: &str, limits: Limits) -> Result<PostgresStore, Error> {
        Self::connect(options(url)?, limits).await
    }

    /// Like [`open`](Self::open), inside the schema `schema` (created if missing), so that
    /// several herald installations, or tests, can share one database.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PostgresStore, Error> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || schema.is_empty()
        {
            return Err(Error::new(
                ErrorKind::Database,
                format!("schema name `{schema}` must be letters, digits and `_`"),
            ));
        }
        let options = options(url)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        Self::connect(
            options.options([("search_path", schema)]),
            Limits::default(),
        )
        .await
    }

    async fn connect(options: PgConnectOptions, limits: Limits) -> Result<PostgresStore, Error> {
        let statement_timeout = limits.statement_timeout.as_millis().to_string();
        // No JIT: herald's queries are short, and over partitioned tables the planner's row
        // estimates (no statistics on a partitioned parent) pass the JIT's cost threshold, so
        // each claim spent half a second compiling a plan that runs in a millisecond.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(limits.acquire_timeout)
            .connect_with(options.options([
                ("statement_timeout", statement_timeout.as_str()),
                ("jit", "off"),
            ]))
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        crate::partitions::prepare(&pool, crate::SystemClock.now()).await?;
        Ok(SqlStore::new(pool.clone(), pool, Arc::default())?
            .with_max_endpoints_per_tenant(limits.max_endpoints_per_tenant)
            .with_listener_check(limits.listener_check))
    }
}

/// The database's time, read through a local clock: every herald process on one database
/// then agrees on now (leases, due times, acceptance order) however far the machines' clocks
/// drift apart. The offset is measured when the store opens and again every minute.
#[derive(Debug)]
pub struct DatabaseClock {
    local: Arc<dyn Clock>,
    offset: AtomicI64,
}

impl Clock for DatabaseClock {
    fn now(&self) -> Millis {
        self.local.now() + self.offset.load(Ordering::Relaxed)
    }
}

/// How often the offset to the database's clock is measured again.
const REMEASURE: Duration = Duration::from_secs(60);

impl SqlStore<Postgres> {
    /// The same store, reading the time as the database's clock tells it, through `local`
    /// (the machine's clock, in production): see [`DatabaseClock`].
    pub async fn with_database_clock(self, local: Arc<dyn Clock>) -> Result<Self, Error> {
        let measured = offset(&self.writer, &*local).await?;
        if measured.abs() > 1000 {
            tracing::warn!(
                offset_ms = measured,
                "this machine's clock is off the database's; herald keeps the database's time"
            );
        }
        let clock = Arc::new(DatabaseClock {
            local,
            offset: AtomicI64::new(measured),
        });
        let watched = Arc::downgrade(&clock);
        let pool = self.writer.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REMEASURE).await;
                let Some(clock) = Weak::upgrade(&watched) else {
                    return; // the store is gone
                };
                match offset(&pool, &*clock.local).await {
                    Ok(measured) => clock.offset.store(measured, Ordering::Relaxed),
                    Err(error) => tracing::debug!(%error, "cannot read the database's clock"),
                }
            }
        });
        Ok(self.with_clock(clock))
    }
}

/// The database's clock minus `local`, half a round trip either way.
async fn offset(pool: &Pool<Postgres>, local: &dyn Clock) -> Result<Millis, Error> {
    let before = local.now();
    let (database,): (i64,) =
        query("SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)")
            .fetch_one(pool)
            .await?;
    let after = local.now();
    Ok(database - before / 2 - after / 2)
}

fn options(url: &str) -> Result<PgConnectOptions, Error> {
    PgConnectOptions::from_str(url).map_err(|e| {
        Error::new(
            ErrorKind::Database,
            format!("`{url}` is not a PostgreSQL URL: {e}"),
        )
    })
}
