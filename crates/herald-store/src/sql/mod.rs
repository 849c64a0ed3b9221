//! The store, written once for both databases.
//!
//! Every query is one text that SQLite and PostgreSQL both run: `$n` placeholders (which
//! sqlx's SQLite driver reads by number too), `CAST(… AS …)` rather than `::`, `FILTER`,
//! `IS DISTINCT FROM`, `RETURNING` and `UPDATE … FROM`, which both dialects have. Where the
//! dialects truly differ, a query is written with fragments (`sql!`) that each backend
//! renders in its own words, at compile time:
//!
//! - a batch of rows is bound as one JSON array and read back as a table (`json_each` on
//!   SQLite, `jsonb_array_elements` on PostgreSQL), so a statement's text is the same for any
//!   number of rows;
//! - the elements of a JSON array column (an endpoint's event types) likewise;
//! - row locks (`FOR UPDATE [SKIP LOCKED]`) exist only on PostgreSQL; on SQLite, every write
//!   goes through one connection, which makes it exclusive without them.
//!
//! What else differs (connecting, migrations, telling other processes about new work) is the
//! [`Backend`] trait, implemented in `sqlite.rs` and `postgres.rs`. Queries run through
//! `exec`, so the code here needs nothing of a database but `DB: Backend`; rows are read by
//! column name into the types of `rows`. Each role's queries live in their own file.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{Notify, OnceCell};

use crate::group::{Apply, Committer, Home, Write, Written};
use crate::{Clock, Clocked, Error, ErrorKind, Registration, SystemClock};
pub(crate) use announce::Workers;

mod accept;
mod announce;
pub(crate) mod batch;
pub(crate) mod claim;
mod endpoint_state;
mod exec;
mod finish;
mod hours;
mod log;
mod notify;
#[cfg(test)]
#[cfg(feature = "postgres")]
mod plans;
mod queue;
mod registry;
mod replays;
pub(crate) mod rows;
pub(crate) mod subscribers;
pub(crate) mod turns;
mod upkeep;

pub use exec::{Arg, Query, Row, Run, Target, query};

/// One query in both dialects; see `sql!`.
#[derive(Clone, Copy, Debug)]
pub struct Sql {
    pub(crate) sqlite: &'static str,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) postgres: &'static str,
}

/// Writes a query once, with fragments in brackets that each dialect renders its own way:
///
/// - `[rows "$1"]`: the JSON array bound at `$1` as a table whose column `value` holds one
///   element (read its fields with `value->>0`, `CAST(value->>1 AS BIGINT)`…);
/// - `[texts "expr"]`: the strings of the JSON array `expr` as a table with one column `value`;
/// - `[keys "$1"]`: the deliveries' keys bound at `$1` ([`DeliveryKey`]s) as a subquery of
///   `(endpoint_id, id)` pairs, for `(endpoint_id, id) IN [keys "$1"]`;
/// - `[lock]`, `[lock_skip]`: `FOR NO KEY UPDATE` / `FOR UPDATE SKIP LOCKED` on PostgreSQL,
///   nothing on SQLite (whose one writer connection already makes the transaction exclusive).
///   `[lock]` leaves foreign-key checks through the row (`FOR KEY SHARE`) free: a claim that
///   updates its endpoint's queue row checks the endpoint, and would wait on a retry holding
///   the endpoint while the retry waits on the claim's queue row. `[lock_skip]` conflicts with
///   them, so a purge passes over events a replay holds `FOR KEY SHARE`;
///   `[lock_of "q"]`, `[lock_skip_of "q"]` the same for the rows of table `q` of a join;
/// - `[owned_by "q" "$4"]`: on PostgreSQL, only the endpoints (rows of `q`, a queue row or
///   anything with an `endpoint_id`) that worker `$4` serves; see `claim.rs`. Nothing on
///   SQLite, whose one process has one worker;
/// - `[json_array "expr" "order"]`: the aggregate of `expr` over a group as JSON array text,
///   in `order` (`[]` for none);
/// - `[event_of "endpoint" "id"]`: joins as `e` event `id` of the tenant of endpoint
///   `endpoint` (SQL expressions of the tables joined before, a delivery's `d.endpoint_id` and
///   `d.event_id`). On PostgreSQL events are keyed by tenant and id (migration 26); joined
///   plainly, with the key's two columns coming from two tables, the planner may read the key
///   with one column and filter every event of the tenant (or every delivery of the endpoint)
///   for each row, and did with statistics out of date. This is a subquery it cannot flatten,
///   planned with both values given. SQLite keeps its key on the id and reads that;
/// - `[event_in "tenant" "id"]`: joins as `e` event `id` of tenant `tenant` (a value, or an
///   expression of the tables joined before), after them: the same plan, where the tenant is
///   known, for the same reason. SQLite's `CROSS JOIN` keeps its order;
/// - `[either "sqlite" "postgres"]`: a piece each dialect writes its own way, where no form
///   both accept plans well (keep it to the piece that differs).
macro_rules! sql {
    ($($part:tt)+) => {
        $crate::sql::Sql {
            sqlite: concat!($($crate::sql::sqlite_part!($part)),+),
            postgres: concat!($($crate::sql::postgres_part!($part)),+),
        }
    };
}
pub(crate) use sql;

macro_rules! sqlite_part {
    ([either $sqlite:literal $postgres:literal]) => {
        $sqlite
    };
    ([event_of $endpoint:literal $id:literal]) => {
        concat!(" JOIN events e ON e.id = ", $id, " ")
    };
    ([event_in $tenant:literal $id:literal]) => {
        concat!(
            " CROSS JOIN events e ON e.id = ",
            $id,
            " AND e.tenant_id = ",
            $tenant,
            " "
        )
    };
    // jsonb_each: an element that is a row comes as JSONB, so reading its fields
    // (`value->>n`) does not turn it back into text and parse that once more.
    ([rows $param:literal]) => {
        concat!("jsonb_each(", $param, ")")
    };
    ([texts $expr:literal]) => {
        concat!("json_each(", $expr, ")")
    };
    ([keys $param:literal]) => {
        concat!(
            "(SELECT k.value->>0, k.value->>1 FROM jsonb_each(",
            $param,
            ") AS k)"
        )
    };
    ([lock]) => {
        ""
    };
    ([lock_skip]) => {
        ""
    };
    ([lock_of $table:literal]) => {
        ""
    };
    ([json_array $expr:literal $order:literal]) => {
        concat!("json_group_array(", $expr, " ORDER BY ", $order, ")")
    };
    ([lock_skip_of $table:literal]) => {
        ""
    };
    ([owned_by $queue:literal $worker:literal]) => {
        ""
    };
    ($text:literal) => {
        $text
    };
}
pub(crate) use sqlite_part;

macro_rules! postgres_part {
    ([either $sqlite:literal $postgres:literal]) => {
        $postgres
    };
    ([event_of $endpoint:literal $id:literal]) => {
        concat!(
            " CROSS JOIN LATERAL (SELECT e.* FROM endpoints ep \
               JOIN events e ON e.tenant_id = ep.tenant_id \
             WHERE ep.id = ",
            $endpoint,
            " AND e.id = ",
            $id,
            " OFFSET 0) AS e "
        )
    };
    ([event_in $tenant:literal $id:literal]) => {
        concat!(
            " CROSS JOIN LATERAL (SELECT e.* FROM events e WHERE e.tenant_id = ",
            $tenant,
            " AND e.id = ",
            $id,
            " OFFSET 0) AS e "
        )
    };
    // herald_rows_jsonb and herald_texts are jsonb_array_elements and
    // json_array_elements_text with a row estimate that plans lookups by id (migrations 11
    // and 19). Rows are jsonb, parsed once however many fields are read.
    ([rows $param:literal]) => {
        concat!("herald_rows_jsonb(CAST(", $param, " AS jsonb))")
    };
    ([keys $param:literal]) => {
        concat!(
            "(SELECT k.value->>0, k.value->>1 FROM herald_rows_jsonb(CAST(",
            $param,
            " AS jsonb)) AS k)"
        )
    };
    ([texts $expr:literal]) => {
        concat!("herald_texts(CAST(", $expr, " AS json))")
    };
    ([lock]) => {
        " FOR NO KEY UPDATE"
    };
    ([lock_skip]) => {
        " FOR UPDATE SKIP LOCKED"
    };
    ([lock_of $table:literal]) => {
        concat!(" FOR NO KEY UPDATE OF ", $table)
    };
    ([json_array $expr:literal $order:literal]) => {
        concat!(
            "coalesce(CAST(json_agg(",
            $expr,
            " ORDER BY ",
            $order,
            ") AS TEXT), '[]')"
        )
    };
    ([lock_skip_of $table:literal]) => {
        concat!(" FOR UPDATE OF ", $table, " SKIP LOCKED")
    };
    // Of the serving workers (registered, not retiring, and seen within the last 5 s: each
    // beats `workers.seen_at` every second; see `claim.rs`), the one an endpoint hashes
    // highest with (rendezvous hashing) serves it. A claimer that is not a registered worker
    // (a tool, a test) takes any; a registered one that does not serve (back from a stall
    // before its next heartbeat, or stopping) takes none, so it never sends to another
    // worker's endpoint beside it.
    ([owned_by $queue:literal $worker:literal]) => {
        concat!(
            " AND (",
            $worker,
            " NOT IN (SELECT id FROM workers) OR ",
            $crate::sql::serving_worker!(concat!($queue, ".endpoint_id")),
            " = ",
            $worker,
            ")"
        )
    };
    ($text:literal) => {
        $text
    };
}
pub(crate) use postgres_part;

/// On PostgreSQL, the worker that serves the endpoint whose id is the SQL expression
/// `$endpoint`, as a scalar subquery: of the serving workers (registered, not retiring, and
/// seen within the last 5 s), the one the endpoint hashes highest with. `NULL` when none
/// serves. Claims take only their own endpoints by it (`[owned_by]`), and announcements name
/// by it the workers to wake (`postgres.rs`).
macro_rules! serving_worker {
    ($endpoint:expr) => {
        concat!(
            "(SELECT w.id FROM workers w \
               WHERE NOT w.retiring AND w.seen_at > now() - interval '5 seconds' \
               ORDER BY md5(",
            $endpoint,
            " || w.id) DESC LIMIT 1)"
        )
    };
}
pub(crate) use serving_worker;

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Sqlite {}
    #[cfg(feature = "postgres")]
    impl Sealed for sqlx::Postgres {}
}

/// What differs between the databases herald runs on, beyond the text of a query. Implemented
/// for SQLite and PostgreSQL only; their connections run [`Query`]s ([`Run`]).
pub trait Backend: Database<Connection: Run<Self>> + sealed::Sealed {
    /// Whether claims queue behind the group committer's writes. SQLite has one writer, so a
    /// claim in its own transaction would wait for the committer anyway; PostgreSQL runs
    /// claims beside the committer, each its own transaction.
    const CLAIMS_IN_BATCH: bool;

    /// Whether the main committing task runs on a thread of its own (see `group::Home`):
    /// SQLite's, whose one writer every delivery passes through twice. PostgreSQL's
    /// connections belong to the runtime that opened them, so its committer stays on it.
    const COMMIT_THREAD: bool;

    /// Group-committing tasks of their own for accepts, beside the main one (see
    /// `group.rs`). SQLite has one writer, so none; PostgreSQL commits transactions side by
    /// side and flushes them together.
    const ACCEPT_LANES: usize;

    /// The most endpoints a page of a tenant's deliveries is read from in one statement, a
    /// subquery of each endpoint's newest (`LATERAL`): 0 where the database has no such join
    /// (SQLite, whose statements cost no round trip, reads endpoint by endpoint instead). See
    /// `sql/log.rs`.
    const ONE_STATEMENT_ENDPOINTS: usize;

    /// The statement that, run inside a transaction that makes deliveries of `endpoints` due,
    /// tells the workers that serve them, in every process on the database, once (and only
    /// if) the transaction commits (`sql::announce` runs it). The workers named in `own` (this
    /// process's) are left out: its one row says whether one of them serves an endpoint, for
    /// the process to wake them itself. None where there is nobody to tell: no endpoints, or
    /// no other process (SQLite).
    fn announcement<'q>(endpoints: &[&str], own: &[String]) -> Option<Query<'q>>;

    /// Whether the subscribers that accepting reads are kept from one batch to the next
    /// (`sql/subscribers.rs`): PostgreSQL's, where the read was a round trip and a transaction
    /// of its own, and the write checks their version. SQLite reads them in the process, in
    /// the writer's transaction, for less than checking them would cost.
    const KEEPS_SUBSCRIBERS: bool;

    /// Whether several statements can run as one, in one round trip (see `exec::after`):
    /// PostgreSQL's data-modifying `WITH`. SQLite runs in the process, with no round trips to
    /// save.
    const TOGETHER: bool;

    /// Whether this process hears announcements (PostgreSQL's, by `LISTEN`), so a commit need
    /// not wake its workers itself while its listener is connected for what it announced to
    /// them: an announcement made without `own` wakes only the worker that serves the
    /// endpoints, and another process's worker may be that one.
    const HEARS_ITSELF: bool;

    /// What starts a claim's own transaction (where claims have one, see
    /// [`CLAIMS_IN_BATCH`](Backend::CLAIMS_IN_BATCH)), cheaper where the database allows it: a
    /// claim lost in a crash only makes its deliveries due again later, so it need not wait
    /// for the disk; and its statements keep their plans rather than be planned on every call.
    const BEGIN_CLAIM: &'static str;

    /// What the deliveries `ids` of the claim leased under `lease` send, read on a connection
    /// of `readers` after the claim committed (see `claim::read`).
    fn read_claimed(
        readers: &Pool<Self>,
        ids: &[DeliveryKey],
        lease: &str,
        now: crate::Millis,
    ) -> impl Future<Output = Result<Vec<crate::Claimed>, Error>> + Send;

    /// Starts passing announcements for the workers named in `workers` (this process's) to
    /// `due`, for as long as the pool lives, checking the connection after `check_after` of
    /// silence.
    fn listen(
        pool: &Pool<Self>,
        due: Arc<Notify>,
        workers: Workers,
        check_after: std::time::Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// `n` numbers, increasing, larger than any handed out before: the acceptance order of
    /// deliveries with an ordering key.
    fn reserve_order(
        conn: &mut impl Run<Self>,
        n: usize,
    ) -> impl Future<Output = Result<Vec<i64>, Error>> + Send;

    /// Registers worker `name` (see [`Queue::register`](crate::Queue::register)).
    fn register(
        pool: &Pool<Self>,
        name: &str,
        now: crate::Millis,
    ) -> impl Future<Output = Result<Box<dyn Registration>, Error>> + Send;

    /// The registered workers that are gone, forgotten as they are named.
    fn dead_workers(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// Makes the partitions the next few days' rows go to, where the database has them
    /// (PostgreSQL, see [`Upkeep::rotate_partitions`](crate::Upkeep::rotate_partitions)).
    fn prepare_partitions(
        pool: &Pool<Self>,
        now: crate::Millis,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Drops the partitions of days before `cutoff` with no pending delivery; returns them.
    fn drop_partitions(
        pool: &Pool<Self>,
        cutoff: crate::Millis,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

/// herald's store on `DB`: [`SqliteStore`](crate::sqlite::SqliteStore) or
/// [`PostgresStore`](crate::postgres::PostgresStore).
pub struct SqlStore<DB: Backend> {
    /// Where writes go: SQLite's one writer connection, or PostgreSQL's pool.
    pub(crate) writer: Pool<DB>,
    /// Where reads go: a read-only pool on SQLite, the same pool on PostgreSQL.
    pub(crate) reader: Pool<DB>,
    pub(crate) committer: Committer,
    clock: Arc<dyn Clock>,
    /// Notified after every commit that makes deliveries due.
    due: Arc<Notify>,
    /// Set once announcements are passed on to `due`.
    listening: Arc<OnceCell<()>>,
    /// This process's workers, whom the announcements it hears must name.
    pub(crate) workers: Workers,
    /// Endpoints one tenant may have, at most.
    pub(crate) max_endpoints: Option<u32>,
    /// How long the listener may hear nothing before its connection is checked.
    listener_check: std::time::Duration,
    /// A lock held for the store's life (SQLite's one-process lock file).
    _lock: Option<Arc<std::fs::File>>,
}

impl<DB: Backend> SqlStore<DB> {
    /// A store over pools already migrated, with its committing task started.
    pub(crate) fn new(writer: Pool<DB>, reader: Pool<DB>, due: Arc<Notify>) -> Result<Self, Error>
    where
        DB: Commit,
    {
        let workers = Workers::default();
        let kept = subscribers::Kept::default();
        let writes = || Writes {
            pool: writer.clone(),
            due: Arc::clone(&due),
            workers: workers.clone(),
            kept: DB::KEEPS_SUBSCRIBERS.then(|| kept.clone()),
            held: None,
        };
        let home = if DB::COMMIT_THREAD {
            Home::Thread
        } else {
            Home::Shared
        };
        let lanes = (0..DB::ACCEPT_LANES).map(|_| writes()).collect();
        let committer = Committer::start(writes(), lanes, home).map_err(|e| {
            Error::new(
                ErrorKind::Database,
                format!("cannot start the committing thread: {e}"),
            )
        })?;
        Ok(SqlStore {
            writer,
            reader,
            committer,
            clock: Arc::new(SystemClock),
            due,
            listening: Arc::new(OnceCell::new()),
            workers,
            max_endpoints: crate::Limits::default().max_endpoints_per_tenant,
            listener_check: crate::Limits::default().listener_check,
            _lock: None,
        })
    }

    /// The same store, holding `lock` for as long as any clone of it lives.
    pub(crate) fn holding(mut self, lock: std::fs::File) -> Self {
        self._lock = Some(Arc::new(lock));
        self
    }
}

/// How a database's committer applies a batch on the writer connection it holds.
///
/// PostgreSQL's runs the batch through sqlx in a transaction; SQLite's runs it on the
/// committing thread through the handle sqlx lends (`sqlite/writer.rs`), which needs a
/// connection of its own kind ([`Commit::Held`]).
pub(crate) trait Commit: Backend {
    /// What the committer keeps between batches.
    type Held: Send + 'static;

    /// How long the committer keeps its connection when no write is queued (see
    /// [`Apply::linger`]).
    const LINGER: Duration;

    /// How long the committer, on a thread of its own, waits for a small batch to grow (see
    /// [`Apply::window`]).
    const WINDOW: Duration;

    /// Makes a connection from the writer pool ready for batches.
    fn hold(conn: PoolConnection<Self>) -> impl Future<Output = Result<Self::Held, Error>> + Send;

    /// Applies `writes` in one transaction and commits it: one result per write, and what
    /// became due (announced to every worker but `process`'s own). On an error nothing of the
    /// batch is kept.
    fn commit(
        held: &mut Self::Held,
        writes: &[Write],
        process: &batch::Process<'_>,
    ) -> impl Future<Output = Result<(Vec<Written>, batch::MadeDue), Error>> + Send;
}

/// Applies the committer's batches on the writer, and wakes the workers when a batch made
/// deliveries due.
///
/// It keeps the writer connection from one batch to the next while batches come back to
/// back (taking it from the pool and giving it back costs round trips of their own, more than
/// a small batch's statements), and gives it back when nothing has been queued for
/// [`Commit::LINGER`] or after [`HOLD`], so other writes get their turn.
struct Writes<DB: Commit> {
    pool: Pool<DB>,
    due: Arc<Notify>,
    /// This process's workers: left out of its announcements, and woken by it when a batch
    /// made due what they serve; and whether it hears the announcements of other processes.
    workers: Workers,
    /// The subscribers its accepts read, kept where the database checks them
    /// ([`Backend::KEEPS_SUBSCRIBERS`]).
    kept: Option<subscribers::Kept>,
    held: Option<(DB::Held, Instant)>,
}

/// How long the committer keeps the writer connection while it has batches to apply.
const HOLD: Duration = Duration::from_millis(20);

#[async_trait]
impl<DB: Commit> Apply for Writes<DB> {
    async fn apply(&mut self, writes: &[Write]) -> Result<Vec<Written>, Error> {
        if self
            .held
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() > HOLD)
        {
            self.held = None;
        }
        let (conn, _) = match &mut self.held {
            Some(held) => held,
            None => {
                let held = DB::hold(self.pool.acquire().await?).await?;
                self.held.insert((held, Instant::now()))
            }
        };
        let own = self.workers.names();
        let process = batch::Process {
            own: &own,
            kept: self.kept.as_ref(),
        };
        let (written, due) = match DB::commit(conn, writes, &process).await {
            Ok(applied) => applied,
            Err(error) => {
                // Nothing of the batch is kept; the next batch starts afresh from the pool.
                self.held = None;
                return Err(error);
            }
        };
        if due.here || (due.any && !(DB::HEARS_ITSELF && self.workers.hearing())) {
            self.due.notify_one();
        }
        Ok(written)
    }

    async fn idle(&mut self) {
        self.held = None;
    }

    fn linger(&self) -> Duration {
        DB::LINGER
    }

    fn window(&self) -> Duration {
        DB::WINDOW
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// The same store, reading the time from `clock` (tests move a
    /// [`ManualClock`](crate::ManualClock) by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store, keeping each tenant to `max` endpoints (`None`: no bound; see
    /// [`Limits::max_endpoints_per_tenant`](crate::Limits)).
    pub fn with_max_endpoints_per_tenant(mut self, max: Option<u32>) -> Self {
        self.max_endpoints = max;
        self
    }

    /// Sets how long the listener may hear nothing before its connection is checked
    /// ([`Limits::listener_check`](crate::Limits)); before it starts listening.
    pub fn with_listener_check(mut self, after: std::time::Duration) -> Self {
        self.listener_check = after;
        self
    }

    /// The pool that writes: begin a transaction on it to store events in your own
    /// transaction ([`accept_event_in`](Self::accept_event_in)).
    pub fn pool(&self) -> &Pool<DB> {
        &self.writer
    }

    /// Wakes this process's workers: deliveries were committed that are due now.
    pub(crate) fn wake(&self) {
        self.due.notify_one();
    }

    pub(crate) async fn start_listening(&self) -> Result<Arc<Notify>, Error> {
        self.listening
            .get_or_try_init(|| {
                DB::listen(
                    &self.writer,
                    Arc::clone(&self.due),
                    self.workers.clone(),
                    self.listener_check,
                )
            })
            .await?;
        Ok(Arc::clone(&self.due))
    }
}

impl<DB: Backend> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            committer: self.committer.clone(),
            clock: Arc::clone(&self.clock),
            due: Arc::clone(&self.due),
            listening: Arc::clone(&self.listening),
            workers: self.workers.clone(),
            max_endpoints: self.max_endpoints,
            listener_check: self.listener_check,
            _lock: self._lock.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &DB::NAME)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> Clocked for SqlStore<DB> {
    fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Tells the workers serving `endpoints` that deliveries became due, once (and only if) the
/// transaction `db` is in commits ([`Backend::announcement`]).
pub(crate) async fn announce<DB: Backend>(
    db: &mut impl Run<DB>,
    endpoints: &[&str],
) -> Result<(), Error> {
    if let Some(announcement) = DB::announcement(endpoints, &[]) {
        announcement.execute(db).await?;
    }
    Ok(())
}

/// A delivery as statements find it: `(endpoint id, delivery id)`. On PostgreSQL deliveries
/// are keyed by their endpoint and id, with no index on the id alone (migration 25), so a
/// statement names both; a batch of keys is bound as rows (`k.value->>0`, `k.value->>1`).
///
/// A statement that finds deliveries by key and wants them pending says so as
/// `state = (SELECT 'pending')`, a value PostgreSQL does not see while planning. With the bare
/// literal it may read them through `deliveries_ready` (every pending delivery of the endpoint,
/// which the literal lets it use) and filter by id, and it does when a partition is young and
/// has no statistics yet: 136 ms a finish of a batch in the benchmark, 1 ms through the key.
pub(crate) type DeliveryKey = (String, String);

/// A batch of rows as the JSON array a `[rows "$n"]` fragment reads.
pub(crate) fn json_rows(rows: &impl serde::Serialize) -> String {
    // Tuples of strings, numbers, booleans and options always serialize.
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".into())
}

/// SQLite's plan of `sql` on a fresh database, step by step, with its `params` bound as NULL
/// (a plan does not depend on the values bound): what the plan tests of each role assert on.
#[cfg(test)]
pub(crate) async fn sqlite_plan(sql: &str, params: usize) -> Vec<String> {
    let store = crate::sqlite::SqliteStore::open_in_memory().await.unwrap();
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut plan = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
    for _ in 0..params {
        plan = plan.bind(Option::<String>::None);
    }
    let plan = plan.fetch_all(&store.writer).await.unwrap();
    plan.into_iter().map(|(_, _, _, step)| step).collect()
}
