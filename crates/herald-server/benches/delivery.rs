//! End-to-end durable delivery, measured: `cargo bench -p herald-server --bench delivery`.
//!
//! One process holds the receiver, herald (store, worker, client) and the load, on loopback.
//! For each backend and fan-out it sends events with typed `Sender::send` from 64 concurrent
//! tasks and reports deliveries per second (first send to last arrival) and the latency from
//! `send` returning (the event is committed) to the request arriving at the receiver. Beside it,
//! in the same run, the baseline: the same HTTP client posting the same bodies to the same
//! receiver with no storage and no signing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot unwrap should stop

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use herald_example_seed::{Subscription, new_subscription};
use herald_server::{Config, Service};
use herald_store::NewEndpoint;
use tokio::sync::Semaphore;

const CONCURRENCY: usize = 64;

/// Arrival times by `webhook-id` (or a baseline sequence number).
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(String, Instant)>>>);

impl Arrivals {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

async fn receiver(arrivals: Arrivals) -> String {
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let arrivals = arrivals.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            arrivals.0.lock().unwrap().push((id, Instant::now()));
        }
    });
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
    p50: Duration,
    p99: Duration,
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
    let started = Instant::now();
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
    let arrived = arrivals.0.lock().unwrap().clone();
    let last = arrived.iter().map(|(_, at)| *at).max().unwrap();
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .map(|(id, at)| at.duration_since(sent_at[id.parse::<usize>().unwrap()]))
        .collect();
    latencies.sort();
    Figures {
        label: "baseline: same client, no store, no signing".into(),
        deliveries: requests,
        per_second: requests as f64 / last.duration_since(started).as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

async fn herald(label: &str, database_url: &str, endpoints: usize, events: usize) -> Figures {
    let arrivals = Arrivals::default();
    let base = receiver(arrivals.clone()).await;
    let mut config = Config::new(database_url, "bench");
    config.allow_targets = vec!["127.0.0.0/8".parse().unwrap()];
    config.worker.concurrency = 128;
    config.worker.per_endpoint = 64;
    config.worker.batch = 256;
    let service = Service::open(config).await.unwrap();
    let store = service.store();
    store.create_tenant("bench", 0).await.unwrap();
    for n in 0..endpoints {
        let url = format!("{base}/ep{n}");
        let endpoint = NewEndpoint::new("bench", &url, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        store.create_endpoint(endpoint, 0).await.unwrap();
    }
    let sender = service.sender();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service.serve(herald_example_seed::app(), listener, async {
        let _ = stopped.await;
    }));

    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(events);
    for n in 0..events {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let sender = sender.clone();
        let committed = Arc::clone(&committed);
        tasks.push(tokio::spawn(async move {
            let accepted = sender
                .send(&new_subscription, "bench", &subscription(n))
                .await
                .unwrap();
            committed
                .lock()
                .unwrap()
                .insert(accepted.event.id, Instant::now());
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let deliveries = events * endpoints;
    wait_for(&arrivals, deliveries).await;
    let arrived = arrivals.0.lock().unwrap().clone();
    let committed = committed.lock().unwrap().clone();
    let last = arrived.iter().map(|(_, at)| *at).max().unwrap();
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .map(|(id, at)| at.saturating_duration_since(committed[id]))
        .collect();
    latencies.sort();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    Figures {
        label: label.into(),
        deliveries,
        per_second: deliveries as f64 / last.duration_since(started).as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
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

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("herald-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = |name: &str| format!("sqlite://{}/{name}.db", dir.display());

        let mut rows = vec![baseline(4000).await];
        rows.push(herald("herald, SQLite, 1 endpoint", &sqlite("one"), 1, 4000).await);
        rows.push(herald("herald, SQLite, fan-out to 50", &sqlite("fan"), 50, 200).await);
        if let Some((url, admin)) = fresh_postgres().await {
            rows.push(herald("herald, PostgreSQL, 1 endpoint", &url, 1, 4000).await);
            drop_postgres(&admin, &url).await;
        }
        if let Some((url, admin)) = fresh_postgres().await {
            rows.push(herald("herald, PostgreSQL, fan-out to 50", &url, 50, 200).await);
            drop_postgres(&admin, &url).await;
        } else {
            println!("PostgreSQL unreachable: its rows are missing");
        }
        let _ = std::fs::remove_dir_all(&dir);

        let baseline_rate = rows[0].per_second;
        println!();
        println!(
            "{:<46} {:>11} {:>14} {:>9} {:>9} {:>10}",
            "run", "deliveries", "deliveries/s", "p50", "p99", "vs base"
        );
        for row in &rows {
            println!(
                "{:<46} {:>11} {:>14.0} {:>9.1?} {:>9.1?} {:>9.0}%",
                row.label,
                row.deliveries,
                row.per_second,
                row.p50,
                row.p99,
                100.0 * row.per_second / baseline_rate
            );
        }
        println!(
            "peak RSS of the whole benchmark process: {:.0} MiB",
            rss_mib()
        );
    });
}
