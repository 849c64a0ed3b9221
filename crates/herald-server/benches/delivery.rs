//! End-to-end durable delivery, measured: `cargo bench -p herald-server --bench delivery`.
//!
//! One process holds the receiver, herald (HTTP API, store, worker, client) and the load, on
//! loopback, sharing the machine's cores. Each row sends events through herald's HTTP API (as
//! another process would) or with typed in-process `Sender::send`, from 64 concurrent tasks (or
//! at a steady rate), and reports deliveries per second (first send to last arrival), the
//! latency from the event being committed (the 202, or `send` returning) to its request
//! arriving at the receiver (`p50`, `p99`) and from the event's request starting (`req p50`,
//! `req p99`: what a caller waits for its 202 counts there, and only there), the caller's wait
//! for that 202 (`202 p50`, `202 p99`), and the process's highest resident memory during the
//! row. The
//! first row is the baseline, run in the same process: the same HTTP client posting the same
//! bodies to the same receiver, with no herald in between.
//!
//! What a delivery costs the database, machine-independently, is printed beside each row:
//! statements per delivery (every statement sqlx runs, `BEGIN` and `COMMIT` included, counted
//! from its `sqlx::query` events; each is one round trip; and those SQLite's committing thread
//! runs itself, from its `herald_store::statement` events), and on PostgreSQL the transactions
//! (`pg_stat_database`), those of them that wrote (`commits`: each was given a transaction id,
//! read from `pg_current_snapshot()` for the whole server, so run nothing else on it
//! meanwhile; a commit that wrote is one that waits for the disk) and the bytes of WAL
//! (`pg_current_wal_lsn()`) per delivery, from just
//! before the clock starts to after herald has stopped (so its backends have reported), and
//! the CPU time the PostgreSQL server spent per delivery (every `postgres` process's user and
//! system time from `/proc`, the postmaster's reaped children included), which says how many
//! deliveries a second one PostgreSQL core carries.
//!
//! After the PostgreSQL drain, a row measures retention on what it left: every event deleted
//! with its delivery and attempt, the way herald's retention does it (per event, not per
//! delivery), after a checkpoint, as month-old rows would be.
//!
//! The rows `postgres-api-1x2` and `postgres-api-50x2` run two herald services on one database,
//! each with its own pool, worker and HTTP listener, as two `herald serve` processes would be;
//! the load alternates between them. Compare them with `postgres-api-1` and `postgres-api-50`:
//! run with them, each is printed as a ratio to its row of one process, round by round.
//! `HERALD_BENCH_ROUNDS=3` runs the chosen rows three times, alternating, for that comparison.
//!
//! `HERALD_BENCH=sqlite-api-1,postgres-api-1` runs only the rows with those keys.
//! `HERALD_BENCH_STATEMENTS=1` prints, after each row, where its statement time went: each
//! statement's calls and microseconds per delivery, the costliest first (sqlx's own timing,
//! from a statement's start to its last row; on SQLite the writer's statements run one at a
//! time, so their sum is the writer's busy time). `HERALD_BENCH_WAL=1` does the same for
//! PostgreSQL's WAL, by kind of record and by the table or index written (the server must keep
//! the row's WAL: raise `wal_keep_size` on a server of your own). `HERALD_BENCH_KEEP=DIR` keeps each SQLite row's
//! database and whole write-ahead log in DIR, for `scripts/sqlite-wal-pages.py`.
//! `HERALD_BENCH_IDLE_ENDPOINTS=100000` adds that many endpoints with nothing due to every
//! row's database; `HERALD_BENCH_PAST_DAYS=30` adds a month of empty days (PostgreSQL).
//! `HERALD_BENCH_SCALE=5` sends five times each row's events (the steady rows excepted: their
//! length is in their label): a row of one endpoint lasts about a second, which its start
//! (connections opened, the heap grown, the first accepts) weighs on;
//! a longer row is closer to a steady state and varies less.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot unwrap should stop

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use herald_example_seed::{Money, RenewalV2, Subscription, new_subscription, subscription_renewed};
use herald_server::{Config, Service};
use herald_store::NewEndpoint;
use tokio::sync::Semaphore;

/// The allocator the `herald` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 64;

/// Statements sqlx has run in this process.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Counts sqlx's per-statement events (the only ones its filter lets through).
struct CountStatements;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        if !TIMING.load(Ordering::Relaxed) {
            return;
        }
        if let Some(times) = STATEMENT_TIMES.lock().unwrap().as_mut() {
            let mut timed = Timed::default();
            event.record(&mut timed);
            let sql = if timed.sql.is_empty() {
                timed.summary
            } else {
                timed.sql
            };
            let key: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let entry = times.entry(key).or_default();
            entry.0 += 1;
            entry.1 += timed.secs;
        }
    }
}

/// With `HERALD_BENCH_STATEMENTS=1`: each statement's calls and time (sqlx's measure, from
/// its start to its last row), summed over the row being run.
static STATEMENT_TIMES: Mutex<Option<HashMap<String, (u64, f64)>>> = Mutex::new(None);

/// Whether [`STATEMENT_TIMES`] is kept: read on every statement, so the rows that do not
/// keep it take no lock for it.
static TIMING: AtomicBool = AtomicBool::new(false);

/// The fields of one of sqlx's statement events that [`STATEMENT_TIMES`] keeps.
#[derive(Default)]
struct Timed {
    summary: String,
    sql: String,
    secs: f64,
}

impl tracing::field::Visit for Timed {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.sql = value.to_owned(),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.secs = value;
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

/// Starts [`STATEMENT_TIMES`] afresh, if it is kept.
fn reset_statement_times() {
    if let Some(times) = STATEMENT_TIMES.lock().unwrap().as_mut() {
        times.clear();
    }
}

/// Prints where a row's statement time went, the costliest first, per delivery.
fn statement_times(label: &str, deliveries: usize) {
    let Some(times) = STATEMENT_TIMES.lock().unwrap().as_mut().map(std::mem::take) else {
        return;
    };
    let mut times: Vec<(String, (u64, f64))> = times.into_iter().collect();
    times.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    let total: f64 = times.iter().map(|(_, (_, secs))| secs).sum();
    let per = deliveries as f64;
    println!(
        "{label}: statement time {:.0} ms, {:.1} µs a delivery (calls/dlv, µs/call, µs/dlv, statement)",
        total * 1e3,
        total * 1e6 / per
    );
    for (sql, (calls, secs)) in times.iter().take(14) {
        let shown: String = sql.chars().take(110).collect();
        println!(
            "  {:>7.3} {:>8.1} {:>7.1}  {shown}",
            *calls as f64 / per,
            secs * 1e6 / *calls as f64,
            secs * 1e6 / per
        );
    }
}

/// The database's counters at one moment.
#[derive(Clone, Copy, Default)]
struct Counters {
    statements: u64,
    /// PostgreSQL only: committed and rolled-back transactions, and the WAL position.
    transactions: Option<i64>,
    wal: Option<i64>,
    /// PostgreSQL only: the next transaction id the server will assign. Only a transaction
    /// that writes is assigned one, so the difference counts the commits that flush WAL.
    next_xid: Option<i64>,
    /// PostgreSQL only: CPU time of the server's processes, in clock ticks.
    server_ticks: Option<u64>,
}

impl Counters {
    async fn read(postgres: Option<&str>) -> Counters {
        let statements = STATEMENTS.load(Ordering::Relaxed);
        let Some(url) = postgres else {
            return Counters {
                statements,
                ..Counters::default()
            };
        };
        // Its own connection, closed before the next reading: it adds one transaction a
        // reading, which `cost` takes off.
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let (transactions, wal, next_xid): (i64, i64, i64) = sqlx::query_as(
            "SELECT (xact_commit + xact_rollback)::int8, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8, \
                    pg_snapshot_xmax(pg_current_snapshot())::text::int8 \
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        Counters {
            statements,
            transactions: Some(transactions),
            wal: Some(wal),
            next_xid: Some(next_xid),
            server_ticks: postgres_ticks(),
        }
    }
}

/// User and system CPU time of every `postgres` process on this machine, with the children
/// each has reaped (the postmaster reaps the backends that closed), in clock ticks; `None`
/// when `/proc` has none (a server on another machine).
fn postgres_ticks() -> Option<u64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: fields after the command's closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 after the comm.
        let ticks: u64 = fields
            .get(11..15)
            .into_iter()
            .flatten()
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        *total.get_or_insert(0) += ticks;
    }
    total
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// What one delivery cost the database on average.
#[derive(Clone, Copy)]
struct Cost {
    statements: f64,
    transactions: Option<f64>,
    /// Of those, the ones that wrote: each commit waits for the disk.
    commits: Option<f64>,
    wal_bytes: Option<f64>,
    /// PostgreSQL server CPU time per delivery, microseconds.
    server_micros: Option<f64>,
}

fn cost(before: Counters, after: Counters, deliveries: usize) -> Cost {
    let per = |n: f64| n / deliveries as f64;
    Cost {
        statements: per((after.statements - before.statements) as f64),
        // One transaction is the reading's own.
        transactions: after
            .transactions
            .zip(before.transactions)
            .map(|(a, b)| per((a - b - 1) as f64)),
        // The reading writes nothing, so it takes no id.
        commits: after
            .next_xid
            .zip(before.next_xid)
            .map(|(a, b)| per((a - b) as f64)),
        wal_bytes: after.wal.zip(before.wal).map(|(a, b)| per((a - b) as f64)),
        server_micros: after
            .server_ticks
            .zip(before.server_ticks)
            .map(|(a, b)| per(a.saturating_sub(b) as f64 / TICKS_PER_SECOND * 1e6)),
    }
}

/// Arrival times by `webhook-id` (or a baseline sequence number) and path (the endpoint).
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(String, String, Instant)>>>);

impl Arrivals {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A receiver that records every request's arrival; `/hang` takes requests and never answers.
async fn receiver(arrivals: Arrivals) -> String {
    let hang = axum::routing::post(std::future::pending::<()>);
    let app = axum::Router::new().route("/hang", hang).fallback(
        move |uri: axum::http::Uri, headers: HeaderMap| {
            let arrivals = arrivals.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let path = uri.path().to_owned();
                arrivals.0.lock().unwrap().push((id, path, Instant::now()));
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn subscription(n: usize) -> Subscription {
    Subscription {
        username: format!("user-{n}"),
        monthly_fee: 9.99,
        start_date: "2026-11-22T08:00:00Z".parse().unwrap(),
    }
}

struct Figures {
    label: String,
    deliveries: usize,
    per_second: f64,
    /// From commit (the 202, or `send` returning) to arrival, p50 and p99; `None` where
    /// everything was stored before the clock started, and for the baseline, which commits
    /// nothing.
    from_commit: Option<(Duration, Duration)>,
    /// From the request's start (the POST sent, or `send` called) to arrival: what a commit
    /// waiting longer to gather other writes would add to shows here, not in `from_commit`.
    from_request: Option<(Duration, Duration)>,
    /// From the request's start to herald's answer that the event is committed (the 202).
    answered: Option<(Duration, Duration)>,
    /// The process's resident memory, at its highest so far (MiB).
    rss: f64,
    /// Requests that arrived for an event already delivered (none in a run without faults).
    duplicates: usize,
    /// What a delivery cost the database (not measured for the baseline).
    cost: Option<Cost>,
    /// This process's CPU time (herald, the load and the receiver together) per delivery,
    /// from the clock's start to the last arrival: the baseline's is what the load and the
    /// receiver take alone, so the difference is herald's, whatever the machine's speed.
    cpu: Duration,
}

/// For each row of two processes run with its row of one (`postgres-api-1x2` and
/// `postgres-api-1`): the rate of two against one's in each round, in the order run, and their
/// median. Issue 16 asks that two processes be no slower than one.
fn two_against_one(keyed: &[(&str, f64)]) -> Vec<String> {
    let rates = |key: &str| -> Vec<f64> {
        keyed
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, rate)| *rate)
            .collect()
    };
    let mut twos: Vec<&str> = Vec::new();
    for (key, _) in keyed {
        if key.ends_with("x2") && !twos.contains(key) {
            twos.push(key);
        }
    }
    let mut lines = Vec::new();
    for two_key in twos {
        let one_key = two_key.trim_end_matches("x2");
        let (two, one) = (rates(two_key), rates(one_key));
        let mut ratios: Vec<f64> = two.iter().zip(&one).map(|(t, o)| t / o).collect();
        if ratios.is_empty() {
            continue;
        }
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        ratios.sort_by(f64::total_cmp);
        let median = if ratios.len() % 2 == 1 {
            ratios[ratios.len() / 2]
        } else {
            (ratios[ratios.len() / 2 - 1] + ratios[ratios.len() / 2]) / 2.0
        };
        lines.push(format!(
            "two processes against one ({two_key} / {one_key}): {} (median {median:.2})",
            shown.join(", ")
        ));
    }
    lines
}

/// User and system CPU time of this process so far, every thread's.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // utime and stime are fields 14 and 15, 12 and 13 after the command's parenthesis.
    let ticks: u64 = stat
        .rsplit_once(") ")
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
}

/// The p50 and p99 of `latencies`, if there are any.
fn spread(mut latencies: Vec<Duration>) -> Option<(Duration, Duration)> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort();
    Some((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn wait_for(arrivals: &Arrivals, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.count() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} arrived in 120 s",
            arrivals.count()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The same client posting the same bodies, nothing stored, nothing signed.
async fn baseline(requests: usize) -> Figures {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let arrivals = Arrivals::default();
    let base = receiver(arrivals.clone()).await;
    let client = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    reset_statement_times();
    let started = Instant::now();
    let cpu = process_cpu();
    let mut sent_at = Vec::with_capacity(requests);
    let mut tasks = Vec::with_capacity(requests);
    for n in 0..requests {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let body = serde_json::to_string(&subscription(n)).unwrap();
        let request = client
            .post(format!("{base}/hook"))
            .header("webhook-id", n.to_string())
            .header("content-type", "application/json")
            .body(body);
        sent_at.push(Instant::now());
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap();
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    wait_for(&arrivals, requests).await;
    let cpu = (process_cpu() - cpu) / u32::try_from(requests).unwrap();
    let arrived = arrivals.0.lock().unwrap().clone();
    let last = arrived.iter().map(|(_, _, at)| *at).max().unwrap();
    let latencies: Vec<Duration> = arrived
        .iter()
        .map(|(id, _, at)| at.duration_since(sent_at[id.parse::<usize>().unwrap()]))
        .collect();
    Figures {
        label: "baseline: same client and receiver, no herald".into(),
        deliveries: requests,
        per_second: requests as f64 / last.duration_since(started).as_secs_f64(),
        from_commit: None,
        from_request: spread(latencies),
        answered: None,
        rss: rss_mib(),
        duplicates: 0,
        cost: None,
        cpu,
    }
}

/// How events reach herald.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// `POST /api/v1/tenants/bench/events`, as another process (or language) would.
    Api,
    /// Typed `Sender::send`, in process.
    Send,
    /// The API at a steady rate (events per second) for a number of seconds.
    Steady(u32),
    /// Stored before the worker starts; the clock runs from its start: the worker alone.
    Drain,
}

/// What else the row's tenant has.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Plain,
    /// Another tenant's endpoint that takes requests and never answers, with this many events
    /// sent to it first.
    Hanging(usize),
    /// Events spread over this many ordering keys.
    Keys(usize),
    /// The endpoints sign with Ed25519 instead of HMAC.
    Ed25519,
    /// The events are `subscription-renewed` in its newest version, and the endpoints pin the
    /// first: every event is converted at accept, and every delivery sends the conversion.
    Versioned,
}

struct Herald {
    /// The database's counters just before the clock starts.
    before: Counters,
    /// One per process sharing the database; event `n` goes to node `n % nodes.len()`.
    nodes: Vec<Node>,
}

/// One herald service, as one `herald serve` process: its own pool, worker and listener.
struct Node {
    base: String,
    sender: herald_server::Sender,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), herald_server::Error>>,
}

impl Node {
    async fn serve(service: Service) -> Node {
        let sender = service.sender();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(service.serve(herald_example_seed::app(), listener, async {
            let _ = stopped.await;
        }));
        Node {
            base,
            sender,
            stop,
            server,
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(database_url: &str) -> Config {
    let mut config = Config::new(database_url).admin_token("bench");
    config.allow_targets = vec!["127.0.0.0/8".parse().unwrap()];
    config.worker.shutdown_grace = Duration::from_millis(500);
    config
}

/// herald with default delivery settings (a short shutdown grace, so a row with a hanging
/// endpoint ends soon), tenant `bench` with `endpoints`, and what `setup` adds; `stored`
/// events are in the store before the worker starts (on PostgreSQL put there by an earlier
/// process, so their cost is not the drain's); `processes` services share the database.
async fn start_herald(
    database_url: &str,
    postgres: bool,
    receiver: &str,
    endpoints: usize,
    setup: Setup,
    stored: usize,
    processes: usize,
) -> Herald {
    let mut service = Service::open(config(database_url), herald_example_seed::app().declared())
        .await
        .unwrap();
    let store = service.store();
    store.create_tenant("bench").await.unwrap();
    for n in 0..endpoints {
        let url = format!("{receiver}/ep{n}");
        let mut endpoint = NewEndpoint::new("bench", &url, SECRET);
        if matches!(setup, Setup::Ed25519) {
            endpoint.signature = herald_store::Signature::Ed25519;
            let key = herald_signature::SigningKey::generate().unwrap();
            endpoint.keys = vec![key.expose()];
        }
        if matches!(setup, Setup::Versioned) {
            endpoint.version = Some("2026-01-01".into());
        }
        store.create_endpoint(endpoint).await.unwrap();
    }
    let sender = service.sender();
    if let Setup::Hanging(events) = setup {
        store.create_tenant("hanging").await.unwrap();
        let url = format!("{receiver}/hang");
        store
            .create_endpoint(NewEndpoint::new("hanging", &url, SECRET))
            .await
            .unwrap();
        for n in 0..events {
            sender
                .send(
                    &new_subscription,
                    &"hanging".parse().unwrap(),
                    &subscription(n),
                )
                .await
                .unwrap();
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..stored {
        let sender = sender.clone();
        tasks.spawn(async move {
            sender
                .send(
                    &new_subscription,
                    &"bench".parse().unwrap(),
                    &subscription(n),
                )
                .await
                .unwrap()
        });
        while tasks.len() >= CONCURRENCY {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    // On PostgreSQL the counts come from the server, which cannot tell one process's
    // statements from another's; on SQLite they are counted here, from this point on.
    if stored > 0 && postgres {
        drop(service);
        // The earlier process's connections close, and their backends report their counts.
        tokio::time::sleep(Duration::from_secs(1)).await;
        service = Service::open(config(database_url), herald_example_seed::app().declared())
            .await
            .unwrap();
    }
    drop(sender);
    let mut services = vec![service];
    for _ in 1..processes {
        let other = Service::open(config(database_url), herald_example_seed::app().declared())
            .await
            .unwrap();
        services.push(other);
    }
    if postgres {
        past_days(database_url).await;
    }
    idle_endpoints(database_url, postgres).await;
    let before = Counters::read(postgres.then_some(database_url)).await;
    let mut nodes = Vec::with_capacity(processes);
    for service in services {
        nodes.push(Node::serve(service).await);
    }
    Herald { before, nodes }
}

/// Sends event `n` the way `load` says (with an ordering key if `keys`); returns its id once
/// herald has committed it.
async fn send_one(
    load: Load,
    setup: Setup,
    herald: &Herald,
    client: &reqwest::Client,
    n: usize,
) -> String {
    let keys = match setup {
        Setup::Keys(keys) => Some(keys),
        Setup::Plain | Setup::Hanging(_) | Setup::Ed25519 | Setup::Versioned => None,
    };
    let key = keys.map(|keys| format!("key-{}", n % keys));
    let node = &herald.nodes[n % herald.nodes.len()];
    if load == Load::Send && setup == Setup::Versioned {
        let renewal = RenewalV2 {
            username: format!("user-{n}"),
            fee: Money {
                amount: 999,
                currency: "EUR".into(),
            },
        };
        let accepted = node
            .sender
            .send(&subscription_renewed, &"bench".parse().unwrap(), &renewal)
            .await
            .unwrap();
        return accepted.event.id;
    }
    if load == Load::Send {
        let options = herald_server::SendOptions {
            ordering_key: key.as_deref(),
            ..Default::default()
        };
        let accepted = node
            .sender
            .send_with(
                &new_subscription,
                &"bench".parse().unwrap(),
                &subscription(n),
                options,
            )
            .await
            .unwrap();
        return accepted.event.id;
    }
    let mut body = serde_json::json!({
        "event_type": "new-subscription",
        "payload": subscription(n),
    });
    if let Some(key) = key {
        body["ordering_key"] = key.into();
    }
    let response = client
        .post(format!("{}/api/v1/tenants/bench/events", node.base))
        .bearer_auth("bench")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn herald(run: &Run, database_url: &str) -> Figures {
    let postgres = run.postgres.then_some(database_url);
    let arrivals = Arrivals::default();
    let receiver = receiver(arrivals.clone()).await;
    let stored = if run.load == Load::Drain {
        run.events
    } else {
        0
    };
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(Arc::clone(&sampling)));
    let herald = Arc::new(
        start_herald(
            database_url,
            run.postgres,
            &receiver,
            run.endpoints,
            run.setup,
            stored,
            run.processes,
        )
        .await,
    );
    let pin = pin_log(run, database_url).await;
    let client = reqwest::Client::new();

    // Each event's id: when its request started, and when herald answered that it committed.
    let committed: Arc<Mutex<HashMap<String, (Instant, Instant)>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    reset_statement_times();
    let started = Instant::now();
    let cpu = process_cpu();
    let mut tasks = Vec::with_capacity(run.events);
    let mut ticks = match run.load {
        Load::Steady(rate) => Some(tokio::time::interval(Duration::from_secs(1) / rate)),
        Load::Api | Load::Send | Load::Drain => None,
    };
    for n in 0..run.events - stored {
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
        }
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let (herald, client, committed) =
            (Arc::clone(&herald), client.clone(), Arc::clone(&committed));
        let (load, setup) = (run.load, run.setup);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let id = send_one(load, setup, &herald, &client, n).await;
            committed.lock().unwrap().insert(id, (sent, Instant::now()));
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let deliveries = run.events * run.endpoints;
    wait_for(&arrivals, deliveries).await;
    let cpu = (process_cpu() - cpu) / u32::try_from(deliveries).unwrap();
    statement_times(run.label, deliveries);
    // Anything sent twice would arrive within this.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let arrived = arrivals.0.lock().unwrap().clone();
    let committed = committed.lock().unwrap().clone();
    // Each event once to each endpoint.
    let distinct: std::collections::HashSet<(&str, &str)> = arrived
        .iter()
        .map(|(id, path, _)| (id.as_str(), path.as_str()))
        .collect();
    assert_eq!(
        distinct.len(),
        deliveries,
        "{}: every delivery arrived",
        run.label
    );
    let last = arrived.iter().map(|(_, _, at)| *at).max().unwrap();
    let (from_request, from_commit): (Vec<Duration>, Vec<Duration>) = arrived
        .iter()
        .filter_map(|(id, _, at)| {
            let (sent, committed) = committed.get(id)?;
            Some((
                at.saturating_duration_since(*sent),
                at.saturating_duration_since(*committed),
            ))
        })
        .unzip();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let rss = sampler.await.unwrap();
    let herald = Arc::into_inner(herald).unwrap();
    let before = herald.before;
    for node in herald.nodes {
        node.stop().await;
    }
    keep_log(run, database_url, pin).await;
    // herald's backends report their counts as they close.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Counters::read(postgres).await;
    if let (Some(url), Some(from), Some(to)) = (postgres, before.wal, after.wal) {
        wal_records(run.label, url, from, to, deliveries).await;
    }
    Figures {
        label: run.label.into(),
        deliveries,
        per_second: deliveries as f64 / last.duration_since(started).as_secs_f64(),
        from_commit: spread(from_commit),
        from_request: spread(from_request),
        answered: spread(
            committed
                .values()
                .map(|(sent, committed)| committed.duration_since(*sent))
                .collect(),
        ),
        rss,
        duplicates: arrived.len() - distinct.len(),
        cost: Some(cost(before, after, deliveries)),
        cpu,
    }
}

/// With `HERALD_BENCH_KEEP=DIR`, a SQLite row's database and the whole write-ahead log of the
/// row are kept in `DIR` (`scripts/sqlite-wal-pages.py` says which b-trees the log's pages
/// belong to). A read transaction held from the row's start keeps the writer's checkpoints
/// from starting the log over; the row's own figures are then not comparable with others'.
async fn pin_log(run: &Run, database_url: &str) -> Option<sqlx::SqliteConnection> {
    use sqlx::Connection;
    std::env::var_os("HERALD_BENCH_KEEP").filter(|_| !run.postgres)?;
    let mut pin = sqlx::SqliteConnection::connect(database_url).await.ok()?;
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM deliveries")
        .execute(&mut pin)
        .await
        .ok()?;
    Some(pin)
}

/// Copies the row's database and log to `HERALD_BENCH_KEEP` while `pin` still holds the log.
async fn keep_log(run: &Run, database_url: &str, pin: Option<sqlx::SqliteConnection>) {
    let (Some(pin), Some(dir)) = (pin, std::env::var_os("HERALD_BENCH_KEEP")) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let from = database_url.trim_start_matches("sqlite://");
    std::fs::create_dir_all(&dir).expect("HERALD_BENCH_KEEP is a directory");
    for suffix in ["", "-wal"] {
        let to = dir.join(format!("{}.db{suffix}", run.key));
        std::fs::copy(format!("{from}{suffix}"), &to).expect("the row's database is kept");
        println!("kept {}", to.display());
    }
    drop(pin);
}

/// With `HERALD_BENCH_WAL=1`, where a row's WAL went, per delivery: each kind of record
/// (`pg_walinspect`), its count, its bytes and the full-page images among them; then each
/// kind by the relation it writes.
async fn wal_records(label: &str, url: &str, from: i64, to: i64, deliveries: usize) {
    if std::env::var("HERALD_BENCH_WAL").is_err() {
        return;
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(&mut conn)
        .await
        .unwrap();
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT \"resource_manager/record_type\", count, record_size + fpi_size, fpi_size \
         FROM pg_get_wal_stats('0/0'::pg_lsn + $1::numeric, '0/0'::pg_lsn + $2::numeric, true) \
         WHERE count > 0 ORDER BY record_size + fpi_size DESC",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let per = |n: i64| n as f64 / deliveries as f64;
    println!("{label}: WAL per delivery by record (kind, records, bytes, of which full pages)");
    for (kind, count, bytes, fpi) in rows.iter().take(16) {
        println!(
            "  {kind:<28} {:>6.2} {:>8.1} {:>8.1}",
            per(*count),
            per(*bytes),
            per(*fpi)
        );
    }
    // The same records by the table or index they change (the first block a record names;
    // a day's partition and its indexes by name), which says which index an entry is for
    // and which row versions leave their page.
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "WITH r AS (SELECT resource_manager || '/' || record_type AS kind, \
             CAST((regexp_match(block_ref, 'rel [0-9]+/[0-9]+/([0-9]+)'))[1] AS oid) AS node, \
             record_length \
           FROM pg_get_wal_records_info('0/0'::pg_lsn + $1::numeric, \
                                        '0/0'::pg_lsn + $2::numeric)) \
         SELECT r.kind, coalesce(c.relname::text, '-'), count(*), sum(r.record_length)::int8 \
         FROM r LEFT JOIN pg_class c ON c.relfilenode = r.node \
         GROUP BY 1, 2 ORDER BY 4 DESC LIMIT 20",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    println!("{label}: WAL per delivery by record and relation (kind, relation, records, bytes)");
    for (kind, relation, count, bytes) in &rows {
        println!(
            "  {kind:<28} {relation:<44} {:>6.2} {:>8.1}",
            per(*count),
            per(*bytes)
        );
    }
    sqlx::Connection::close(conn).await.unwrap();
}

/// With `HERALD_BENCH_PAST_DAYS=n`, the partitions of the `n` days before today, empty, as a
/// database a month into retention has them (their pending deliveries long done): what every
/// query that cannot tell the day, claims first, pays for each day kept.
async fn past_days(database_url: &str) {
    let Some(days) = std::env::var("HERALD_BENCH_PAST_DAYS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
    else {
        return;
    };
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(database_url)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DO $$ DECLARE today BIGINT := floor(extract(epoch FROM now()) / 86400)::bigint; \
           day BIGINT; t RECORD; BEGIN \
           FOR d IN 1 .. {days} LOOP \
             day := (today - d) * 86400000; \
             FOR t IN SELECT * FROM (VALUES ('events', 'evt_'), ('deliveries', 'dlv_'), \
                 ('attempts', 'dlv_')) AS v (name, prefix) LOOP \
               EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', \
                 t.name || '_past' || d, t.name, t.prefix || herald_ulid_floor(day), \
                 t.prefix || herald_ulid_floor(day + 86400000)); \
             END LOOP; \
           END LOOP; END $$"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::Connection::close(admin).await.unwrap();
}

/// With `HERALD_BENCH_IDLE_ENDPOINTS=n`, `n` more endpoints, ten to a tenant, with nothing
/// due: what the endpoints of a large installation that are not being sent to cost the ones
/// that are (issue 16 asks about 100,000). Written straight into the tables, as
/// `create_endpoint` would leave them, since making them one by one would take minutes.
async fn idle_endpoints(database_url: &str, postgres: bool) {
    let Some(n) = std::env::var("HERALD_BENCH_IDLE_ENDPOINTS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return;
    };
    let statements = [
        "INSERT INTO tenants (id, created_at) \
         SELECT 'idle-' || i, 0 FROM n WHERE i % 10 = 0",
        "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, enabled, \
           created_at, updated_at) \
         SELECT 'ep_idle' || i, 'idle-' || (i - i % 10), 'https://idle.example/' || i, '', '[]', \
           '{}', true, 0, 0 FROM n",
        "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) \
         SELECT 'ep_idle' || i, 'whsec_c2VjcmV0', 0 FROM n",
        "INSERT INTO endpoint_queues (endpoint_id) SELECT 'ep_idle' || i FROM n",
    ];
    let numbers = format!(
        "WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) ",
        n.saturating_sub(1)
    );
    let run = |statement: &str| sqlx::AssertSqlSafe(format!("{numbers}{statement}"));
    if postgres {
        let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(database_url)
            .await
            .unwrap();
        for statement in statements {
            sqlx::query(run(statement)).execute(&mut db).await.unwrap();
        }
        sqlx::query("ANALYZE tenants, endpoints, endpoint_secrets, endpoint_queues")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::Connection::close(db).await.unwrap();
    } else {
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(database_url)
            .await
            .unwrap();
        for statement in statements {
            sqlx::query(run(statement)).execute(&mut db).await.unwrap();
        }
        sqlx::Connection::close(db).await.unwrap();
    }
}

/// Retention on the database a drain row left behind, both ways herald does it: half the
/// events deleted row by row (500 a statement, oldest first: SQLite's way, and PostgreSQL's for a
/// day kept by a pending delivery), then the rest by dropping their day's partitions, as
/// PostgreSQL's retention does once the day is old.
async fn retention_rows(run: &Run, database_url: &str) -> Vec<Figures> {
    use herald_store::Upkeep;
    let postgres = run.postgres.then_some(database_url);
    let store = herald_store::postgres::PostgresStore::open(database_url)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Rows a month old sit on pages not written since many checkpoints: the first change to
    // each page after one writes the whole page to the WAL. A checkpoint here makes these rows
    // as old as that (it needs a superuser or pg_checkpoint; without it, the WAL is too low).
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(database_url)
        .await
        .unwrap();
    let (stored,): (i64,) = sqlx::query_as(
        "SELECT sum(pg_total_relation_size(p.relid))::int8 \
         FROM unnest(ARRAY['events', 'deliveries', 'attempts']) AS t (name), \
           pg_partition_tree(CAST(t.name AS regclass)) AS p WHERE p.isleaf",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    println!(
        "retention rows: {:.0} bytes on disk per event before (events, deliveries, attempts \
         with their indexes)",
        stored as f64 / run.events as f64
    );
    if let Err(error) = sqlx::query("CHECKPOINT").execute(&mut admin).await {
        println!("retention rows: no CHECKPOINT ({error}); its WAL leaves out full-page images");
    }
    sqlx::Connection::close(admin).await.unwrap();

    let before = Counters::read(postgres).await;
    reset_statement_times();
    let started = Instant::now();
    let cpu = process_cpu();
    let mut purged = 0;
    while purged < run.events / 2 {
        let n = store.purge(Duration::ZERO, 500).await.unwrap();
        purged += usize::try_from(n).unwrap();
        if n < 500 {
            break;
        }
    }
    let elapsed = started.elapsed();
    let cpu = (process_cpu() - cpu) / u32::try_from(purged.max(1)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Counters::read(postgres).await;
    let deleted = Figures {
        label: "PostgreSQL, retention: events deleted (per event)".into(),
        deliveries: purged,
        per_second: purged as f64 / elapsed.as_secs_f64(),
        from_commit: None,
        from_request: None,
        answered: None,
        rss: rss_mib(),
        duplicates: 0,
        cost: Some(cost(before, after, purged)),
        cpu,
    };

    // Forty days on, the day of the drain is old: its partitions go.
    let later = herald_store::Clock::now(&herald_store::SystemClock) + 40 * 24 * 3600 * 1000;
    let store = store.with_clock(Arc::new(herald_store::ManualClock::at(later)));
    let before = Counters::read(postgres).await;
    reset_statement_times();
    let started = Instant::now();
    let cpu = process_cpu();
    let days = store
        .rotate_partitions(Some(Duration::from_secs(30 * 24 * 3600)))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let cpu = process_cpu() - cpu;
    assert!(!days.is_empty(), "retention dropped the drain's day");
    let left = store.purge(Duration::ZERO, 500).await.unwrap();
    assert_eq!(left, 0, "nothing was left to delete row by row");
    drop(store);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Counters::read(postgres).await;
    let dropped = run.events - purged;
    vec![
        deleted,
        Figures {
            label: "PostgreSQL, retention: its day dropped (per event)".into(),
            deliveries: dropped,
            per_second: dropped as f64 / elapsed.as_secs_f64(),
            from_commit: None,
            from_request: None,
            answered: None,
            rss: rss_mib(),
            duplicates: 0,
            cost: Some(cost(before, after, dropped)),
            cpu: cpu / u32::try_from(dropped.max(1)).unwrap(),
        },
    ]
}

async fn fresh_postgres() -> Option<(String, String)> {
    let url = std::env::var("HERALD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = sqlx::PgPool::connect(&url).await.ok()?;
    let name = format!("herald_bench_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .ok()?;
    let (base, _) = url.rsplit_once('/')?;
    Some((format!("{base}/{name}"), url))
}

async fn drop_postgres(admin_url: &str, database_url: &str) {
    let name = database_url.rsplit('/').next().unwrap();
    let pool = sqlx::PgPool::connect(admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
}

/// The highest resident memory seen while `sampling` holds, sampled every 20 ms.
async fn peak_rss(sampling: Arc<std::sync::atomic::AtomicBool>) -> f64 {
    let mut peak = rss_mib();
    while sampling.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        peak = peak.max(rss_mib());
    }
    peak
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One row of the table: which backend, how events arrive, how many endpoints and events,
/// and what else the database holds.
#[derive(Clone, Copy)]
struct Run {
    key: &'static str,
    label: &'static str,
    postgres: bool,
    load: Load,
    endpoints: usize,
    events: usize,
    setup: Setup,
    /// herald services sharing the database, as that many processes.
    processes: usize,
}

const RUNS: &[Run] = &[
    Run {
        key: "sqlite-drain-1",
        label: "SQLite, drain (stored first), 1 endpoint",
        postgres: false,
        load: Load::Drain,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "sqlite-drain-ed25519",
        label: "SQLite, drain (stored first), 1 endpoint signing with Ed25519",
        postgres: false,
        load: Load::Drain,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Ed25519,
        processes: 1,
    },
    Run {
        key: "sqlite-hanging",
        label: "SQLite, HTTP API, 1 endpoint beside a hanging one",
        postgres: false,
        load: Load::Api,
        endpoints: 1,
        events: 10_000,
        setup: Setup::Hanging(1_000),
        processes: 1,
    },
    Run {
        key: "sqlite-keys-100",
        label: "SQLite, HTTP API, 1 endpoint, 100 ordering keys",
        postgres: false,
        load: Load::Api,
        endpoints: 1,
        events: 10_000,
        setup: Setup::Keys(100),
        processes: 1,
    },
    Run {
        key: "sqlite-api-1",
        label: "SQLite, HTTP API, 1 endpoint",
        postgres: false,
        load: Load::Api,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "sqlite-api-50",
        label: "SQLite, HTTP API, fan-out to 50",
        postgres: false,
        load: Load::Api,
        endpoints: 50,
        events: 400,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "sqlite-send-1",
        label: "SQLite, in-process send, 1 endpoint",
        postgres: false,
        load: Load::Send,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "sqlite-send-versioned",
        label: "SQLite, in-process send, converted to old version",
        postgres: false,
        load: Load::Send,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Versioned,
        processes: 1,
    },
    Run {
        key: "sqlite-send-50",
        label: "SQLite, in-process send, fan-out to 50",
        postgres: false,
        load: Load::Send,
        endpoints: 50,
        events: 400,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "sqlite-steady",
        label: "SQLite, HTTP API, steady 1,000 events/s for 10 s",
        postgres: false,
        load: Load::Steady(1000),
        endpoints: 1,
        events: 10_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "sqlite-steady-100",
        label: "SQLite, HTTP API, steady 100 events/s for 10 s",
        postgres: false,
        load: Load::Steady(100),
        endpoints: 1,
        events: 1_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "postgres-api-1",
        label: "PostgreSQL, HTTP API, 1 endpoint",
        postgres: true,
        load: Load::Api,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "postgres-api-1x2",
        label: "PostgreSQL, HTTP API, 1 endpoint, 2 processes",
        postgres: true,
        load: Load::Api,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 2,
    },
    Run {
        key: "postgres-send-1",
        label: "PostgreSQL, in-process send, 1 endpoint",
        postgres: true,
        load: Load::Send,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "postgres-drain-1",
        label: "PostgreSQL, drain (stored first), 1 endpoint",
        postgres: true,
        load: Load::Drain,
        endpoints: 1,
        events: 20_000,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "postgres-api-50",
        label: "PostgreSQL, HTTP API, fan-out to 50",
        postgres: true,
        load: Load::Api,
        endpoints: 50,
        events: 400,
        setup: Setup::Plain,
        processes: 1,
    },
    Run {
        key: "postgres-api-50x2",
        label: "PostgreSQL, HTTP API, fan-out to 50, 2 processes",
        postgres: true,
        load: Load::Api,
        endpoints: 50,
        events: 400,
        setup: Setup::Plain,
        processes: 2,
    },
    Run {
        key: "postgres-steady",
        label: "PostgreSQL, HTTP API, steady 1,000 events/s for 10 s",
        postgres: true,
        load: Load::Steady(1000),
        endpoints: 1,
        events: 10_000,
        setup: Setup::Plain,
        processes: 1,
    },
];

fn main() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter};
    tracing_subscriber::registry()
        .with(CountStatements.with_filter(filter::filter_fn(|m| {
            matches!(m.target(), "sqlx::query" | "herald_store::statement")
        })))
        .init();
    if std::env::var("HERALD_BENCH_STATEMENTS").is_ok() {
        *STATEMENT_TIMES.lock().unwrap() = Some(HashMap::new());
        TIMING.store(true, Ordering::Relaxed);
    }
    // `HERALD_BENCH=sqlite-api-1,postgres-api-1` runs only those rows (and the baseline).
    let only = std::env::var("HERALD_BENCH").unwrap_or_default();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime = builder.enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("herald-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let scale: usize = std::env::var("HERALD_BENCH_SCALE")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        if scale > 1 {
            println!("every row but the steady ones sends {scale} times its events (HERALD_BENCH_SCALE)");
        }
        // `HERALD_BENCH_ROUNDS=3` runs the rows chosen three times, each round through all of
        // them in turn, so that rows compared are run alternately, not one after the other.
        let rounds: usize = std::env::var("HERALD_BENCH_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        let mut rows = vec![baseline(20_000 * scale).await];
        let mut keyed: Vec<(&str, f64)> = Vec::new();
        for run in std::iter::repeat_n(RUNS, rounds).flatten() {
            if !only.is_empty() && !only.split(',').any(|key| key == run.key) {
                continue;
            }
            // A steady row's length is in its label (10 s at its rate): it stays as it is.
            let events = match run.load {
                Load::Steady(_) => run.events,
                Load::Api | Load::Send | Load::Drain => run.events * scale,
            };
            let run = &Run { events, ..*run };
            if run.postgres {
                let Some((url, admin)) = fresh_postgres().await else {
                    println!("PostgreSQL unreachable: {} skipped", run.label);
                    continue;
                };
                rows.push(herald(run, &url).await);
                keyed.push((run.key, rows[rows.len() - 1].per_second));
                if run.load == Load::Drain {
                    rows.extend(retention_rows(run, &url).await);
                }
                drop_postgres(&admin, &url).await;
            } else {
                let url = format!("sqlite://{}/{}.db", dir.display(), run.key);
                rows.push(herald(run, &url).await);
                keyed.push((run.key, rows[rows.len() - 1].per_second));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);

        let baseline_rate = rows[0].per_second;
        println!();
        println!(
            "{:<54} {:>10} {:>13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>9} {:>8} {:>11} {:>8} {:>10}",
            "run",
            "deliveries",
            "deliveries/s",
            "p50",
            "p99",
            "req p50",
            "req p99",
            "202 p50",
            "202 p99",
            "vs base",
            "CPU/dlv",
            "RSS MiB",
            "twice",
            "stmts/dlv",
            "txns/dlv",
            "commits/dlv",
            "WAL/dlv",
            "PG CPU/dlv"
        );
        let shown = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{d:.1?}"));
        let figure = |f: Option<f64>, decimals: usize| {
            f.map_or("-".to_owned(), |f| format!("{f:.decimals$}"))
        };
        for row in &rows {
            let cost = row.cost;
            println!(
                "{:<54} {:>10} {:>13.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7.0}% {:>5.0} µs {:>8.0} {:>6} {:>9} {:>8} {:>11} {:>8} {:>10}",
                row.label,
                row.deliveries,
                row.per_second,
                shown(row.from_commit.map(|(p50, _)| p50)),
                shown(row.from_commit.map(|(_, p99)| p99)),
                shown(row.from_request.map(|(p50, _)| p50)),
                shown(row.from_request.map(|(_, p99)| p99)),
                shown(row.answered.map(|(p50, _)| p50)),
                shown(row.answered.map(|(_, p99)| p99)),
                100.0 * row.per_second / baseline_rate,
                row.cpu.as_secs_f64() * 1e6,
                row.rss,
                row.duplicates,
                figure(cost.map(|c| c.statements), 2),
                figure(cost.and_then(|c| c.transactions), 2),
                figure(cost.and_then(|c| c.commits), 2),
                figure(cost.and_then(|c| c.wal_bytes), 0),
                cost.and_then(|c| c.server_micros)
                    .map_or("-".to_owned(), |us| format!("{us:.0} µs")),
            );
        }
        for line in two_against_one(&keyed) {
            println!("{line}");
        }
        let twice: usize = rows.iter().map(|row| row.duplicates).sum();
        assert_eq!(
            twice, 0,
            "a fault-free run delivers each event exactly once"
        );
    });
}
