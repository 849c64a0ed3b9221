//! Workers sharing a PostgreSQL database share its endpoints: each endpoint is served by one
//! registered worker (rendezvous hashing over the workers that are not retiring and whose
//! heartbeat is recent), so two processes neither take turns at one endpoint nor both serve
//! every one, and a stalled one's endpoints pass to the others.

use std::collections::BTreeSet;

use herald_store::{NewEndpoint, NewEvent};

use crate::timed::Timed;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 60_000;
const ENDPOINTS: usize = 20;

/// The endpoints of the deliveries `worker` claims at `now`, as many as are due.
async fn served(store: &Timed, worker: &str, now: i64) -> BTreeSet<String> {
    store
        .claim_due(worker, 100, now + LEASE, now)
        .await
        .unwrap()
        .into_iter()
        .map(|claimed| claimed.endpoint_id)
        .collect()
}

/// A PostgreSQL store in a schema of its own, with a tenant and its `ENDPOINTS` endpoints.
async fn with_endpoints() -> Option<(Timed, String)> {
    let (store, schema) = crate::postgres().await?;
    let store = crate::timed(store);
    store.create_tenant("acme", T0).await.unwrap();
    for n in 0..ENDPOINTS {
        let url = format!("https://example.com/{n}");
        store
            .create_endpoint(NewEndpoint::new("acme", &url, SECRET), T0)
            .await
            .unwrap();
    }
    Some((store, schema))
}

/// An event for every endpoint, accepted at `now`.
async fn fan_out(store: &Timed, now: i64) {
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), now)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serves_each_endpoint_from_one_worker() {
    let Some((store, schema)) = with_endpoints().await else {
        return;
    };
    let mut first = store.register("first").await.unwrap();
    let second = store.register("second").await.unwrap();

    // Each takes its own endpoints, and together they take every one.
    fan_out(&store, T0 + 1).await;
    let firsts = served(&store, "first", T0 + 2).await;
    let seconds = served(&store, "second", T0 + 3).await;
    assert!(
        !firsts.is_empty() && !seconds.is_empty(),
        "{firsts:?} {seconds:?}"
    );
    assert!(firsts.is_disjoint(&seconds), "{firsts:?} {seconds:?}");
    assert_eq!(firsts.len() + seconds.len(), ENDPOINTS);

    // The same endpoints stay with the same worker; the other passes them over.
    fan_out(&store, T0 + 4).await;
    assert_eq!(served(&store, "first", T0 + 5).await, firsts);
    assert_eq!(
        served(&store, "first", T0 + 6).await,
        BTreeSet::new(),
        "not the second's"
    );
    assert_eq!(served(&store, "second", T0 + 7).await, seconds);

    // A claimer that is not a registered worker (a tool) takes any.
    fan_out(&store, T0 + 8).await;
    assert_eq!(served(&store, "tool", T0 + 9).await.len(), ENDPOINTS);

    // A worker that is stopping hands its endpoints over at once.
    first.retire().await;
    fan_out(&store, T0 + 10).await;
    assert_eq!(served(&store, "second", T0 + 11).await.len(), ENDPOINTS);

    // One that is gone, once a reaper has seen its session closed.
    drop(second);
    let third = store.register("third").await.unwrap();
    fan_out(&store, T0 + 12).await;
    let mut reaped = false;
    for _ in 0..50 {
        store.reap(T0 + 12).await.unwrap();
        if workers(&schema).await == vec!["first", "third"] {
            reaped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        reaped,
        "the second worker's session closed: {:?}",
        workers(&schema).await
    );
    assert_eq!(served(&store, "third", T0 + 13).await.len(), ENDPOINTS);

    drop((first, third, store));
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_a_stalled_workers_endpoints_to_the_others() {
    let Some((store, schema)) = with_endpoints().await else {
        return;
    };
    let mut first = store.register("first").await.unwrap();
    let _second = store.register("second").await.unwrap();
    fan_out(&store, T0 + 1).await;
    let firsts = served(&store, "first", T0 + 2).await;
    assert!(!firsts.is_empty() && firsts.len() < ENDPOINTS, "{firsts:?}");
    served(&store, "second", T0 + 3).await;

    // The first's heartbeat stops (its process is stopped, or wedged) while its session
    // stays open: after 5 s it serves nothing, not even its own endpoints if it claims again
    // before its next heartbeat (back from the stall), and the second serves every endpoint.
    execute(
        &schema,
        "UPDATE workers SET seen_at = now() - interval '6 seconds' WHERE id = 'first'",
    )
    .await;
    fan_out(&store, T0 + 4).await;
    assert!(served(&store, "first", T0 + 5).await.is_empty());
    assert_eq!(served(&store, "second", T0 + 5).await.len(), ENDPOINTS);

    // Its next heartbeat gives it its endpoints back.
    assert!(first.alive().await);
    fan_out(&store, T0 + 6).await;
    assert_eq!(served(&store, "first", T0 + 7).await, firsts);

    // A heartbeat finding its worker's row gone (reaped) says the registration is lost.
    execute(&schema, "DELETE FROM workers WHERE id = 'first'").await;
    assert!(!first.alive().await);

    drop((first, _second, store));
    crate::drop_schema(&schema).await;
}

/// Each process wakes only for the endpoints its worker serves. The announcement goes to the
/// serving worker's process alone, on that worker's channel. Accepted by the serving worker's
/// own process, nothing is announced (each announcement costs every listening connection a
/// transaction): that process wakes its worker itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_only_the_process_whose_worker_serves_the_endpoint() {
    use std::time::Duration;

    use herald_store::postgres::PostgresStore;
    use herald_store::{Log, Queue};
    use sqlx::postgres::PgListener;

    let Some((api, schema)) = crate::postgres().await else {
        return;
    };
    let url = crate::pg_url();
    let open = || PostgresStore::open_in_schema(&url, &schema);
    let (first, second) = (open().await.unwrap(), open().await.unwrap());
    let mut registered = [
        first.register("first").await.unwrap(),
        second.register("second").await.unwrap(),
    ];
    let woken = [
        first.due_work().await.unwrap(),
        second.due_work().await.unwrap(),
    ];
    let owner = one_endpoints_worker(&api, &schema).await;
    let serving = usize::from(owner == "second");
    let stores = [&first, &second];
    // What a process of each kind would hear: the channel of all, and each worker's.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let channels: (String, String, String) = sqlx::query_as(
        "SELECT 'herald_deliveries_' || md5($1), 'herald_worker_' || md5($1 || '/' || $2), \
           'herald_worker_' || md5($1 || '/' || $3)",
    )
    .bind(&schema)
    .bind(&owner)
    .bind(if owner == "first" { "second" } else { "first" })
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut listeners = Vec::new();
    for channel in [&channels.0, &channels.1, &channels.2] {
        let mut listener = PgListener::connect(&url).await.unwrap();
        listener.listen(channel).await.unwrap();
        listeners.push(listener);
    }

    // Accepted by a process with no worker, by the serving worker's, and by the other's:
    // each time the serving worker is woken, and the other is not.
    for (n, accepting, announced) in [
        (0, &api, 1),
        (1, stores[serving], 0),
        (2, stores[1 - serving], 1),
    ] {
        for due in &woken {
            // A wake-up left from before.
            let _ = tokio::time::timeout(Duration::from_millis(200), due.notified()).await;
        }
        for listener in &mut listeners {
            heard(listener).await;
        }
        // Their heartbeats: a worker not seen for 5 s serves nothing.
        for registration in &mut registered {
            assert!(registration.alive().await);
        }
        accepting
            .accept_event(NewEvent::new("acme", "t", "{}"))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), woken[serving].notified())
            .await
            .unwrap_or_else(|_| panic!("accept {n}: the serving worker ({owner}) is woken"));
        let other = tokio::time::timeout(Duration::from_millis(500), woken[1 - serving].notified());
        assert!(
            other.await.is_err(),
            "accept {n}: the other worker is not woken for an endpoint it does not serve"
        );
        let [to_all, to_them, to_others] = &mut listeners[..] else {
            unreachable!()
        };
        assert_eq!(
            heard(to_all).await,
            0,
            "accept {n}: nothing for every process"
        );
        assert_eq!(
            heard(to_them).await,
            announced,
            "accept {n}: on the serving worker's channel"
        );
        assert_eq!(
            heard(to_others).await,
            0,
            "accept {n}: nothing for the other"
        );
    }

    drop((api, first, second));
    crate::drop_schema(&schema).await;
}

/// A wake-up for an endpoint another worker serves does not bring a worker back at once. Its
/// claim cannot fold a wake-up the serving worker's claim is folding (it holds the row), and
/// under load new ones commit all the time; a next turn read from them had the other process
/// claim again and again, for nothing, each claim waiting on the serving worker's queue row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_wake_up_for_another_workers_endpoint_does_not_bring_a_worker_back() {
    use herald_store::{Clocked, Log, Queue};

    let Some((api, schema)) = crate::postgres().await else {
        return;
    };
    let _registered = (
        api.register("first").await.unwrap(),
        api.register("second").await.unwrap(),
    );
    let owner = one_endpoints_worker(&api, &schema).await;
    let pool = sqlx::PgPool::connect(&crate::pg_url()).await.unwrap();
    let other = if owner == "first" { "second" } else { "first" };
    api.accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    // The serving worker's claim is folding the wake-up: it holds the row until it commits.
    let mut folding = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {schema}.endpoint_wakeups FOR UPDATE"
    )))
    .fetch_all(&mut *folding)
    .await
    .unwrap();
    let claim = |worker: &str| {
        let request = herald_store::ClaimRequest {
            worker: worker.into(),
            ..crate::ten_for_a_minute()
        };
        let api = &api;
        async move { api.claim_with_next_turn(&request).await.unwrap() }
    };

    let theirs = claim(other).await;
    assert!(theirs.deliveries.is_empty());
    assert_eq!(
        theirs.next_turn, None,
        "the other worker has no turn coming: nothing it serves is due"
    );
    // The serving worker is told its turn has come, and takes the delivery once the fold
    // that held the wake-up is over.
    let mine = claim(&owner).await;
    assert!(mine.deliveries.is_empty(), "the wake-up is not folded yet");
    let now = api.now();
    assert!(
        mine.next_turn.is_some_and(|at| at <= now),
        "the serving worker's turn has come: {:?} at {now}",
        mine.next_turn
    );
    folding.rollback().await.unwrap();
    assert_eq!(claim(&owner).await.deliveries.len(), 1);

    drop(api);
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_its_own_worker_while_its_listener_is_away() {
    use std::time::Duration;

    use herald_store::postgres::PostgresStore;
    use herald_store::{Log, Queue, Registry};

    let Some((direct, schema)) = crate::postgres().await else {
        return;
    };
    // The store reaches the server through a gate that can cut its connections and refuse
    // new ones for a while (a restart of the server, a proxy dropping idle connections).
    let gate = Gate::open(&crate::pg_url()).await;
    let store = PostgresStore::open_in_schema(&gate.url, &schema)
        .await
        .unwrap();
    let _registered = store.register("only").await.unwrap();
    let woken = store.due_work().await.unwrap();
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/0", SECRET))
        .await
        .unwrap();
    let accept_wakes = |n: usize| {
        let (store, woken) = (&store, &woken);
        async move {
            let _ = tokio::time::timeout(Duration::from_millis(300), woken.notified()).await;
            store
                .accept_event(NewEvent::new("acme", "t", "{}"))
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_millis(200), woken.notified())
                .await
                .unwrap_or_else(|_| panic!("accept {n}: the worker is woken at once"));
        }
    };
    accept_wakes(0).await;

    // Every connection cut, and none possible for 300 ms: the listener finds its connection
    // gone and cannot make another. The accepts after it still wake the worker, at once.
    gate.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.reopen();
    for n in 1..5 {
        accept_wakes(n).await;
    }

    drop((store, direct));
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replaces_a_listener_whose_connection_stops_carrying_announcements() {
    use std::time::{Duration, Instant};

    use herald_store::postgres::PostgresStore;
    use herald_store::{Log, Queue, Registry};

    let Some((api, schema)) = crate::postgres().await else {
        return;
    };
    // This process reaches the server through a gate; another (`api`) accepts the events.
    let gate = Gate::open(&crate::pg_url()).await;
    let store = PostgresStore::open_in_schema(&gate.url, &schema)
        .await
        .unwrap()
        .with_listener_check(Duration::from_millis(300));
    let _registered = store.register("only").await.unwrap();
    let woken = store.due_work().await.unwrap();
    api.create_tenant("acme").await.unwrap();
    api.create_endpoint(NewEndpoint::new("acme", "https://example.com/0", SECRET))
        .await
        .unwrap();
    let accept = || api.accept_event(NewEvent::new("acme", "t", "{}"));
    let _ = tokio::time::timeout(Duration::from_millis(300), woken.notified()).await;
    accept().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.notified())
        .await
        .expect("another process's event wakes the worker");

    // The listener's connection stays open and carries nothing. Within a few checks it is
    // replaced, and other processes' events wake the worker again.
    assert_eq!(gate.silence_listeners(), 1, "one connection listens");
    let silenced = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = tokio::time::timeout(Duration::from_millis(50), woken.notified()).await;
    let heard = loop {
        accept().await.unwrap();
        if tokio::time::timeout(Duration::from_millis(200), woken.notified())
            .await
            .is_ok()
        {
            break true;
        }
        if silenced.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    assert!(
        heard,
        "10 s after the listener's connection went silent, other processes' events still do \
         not wake the worker"
    );
    // Settled: each event is heard at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = tokio::time::timeout(Duration::from_millis(50), woken.notified()).await;
    for n in 0..3 {
        accept().await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), woken.notified())
            .await
            .unwrap_or_else(|_| panic!("event {n} after the new listener: the worker is woken"));
    }

    drop((store, api));
    crate::drop_schema(&schema).await;
}

/// An event for hundreds of endpoints served by hundreds of workers is announced to each of
/// them: hundreds of notifications in one transaction, on as many channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_announcement_to_hundreds_of_workers_wakes_each() {
    use std::time::Duration;

    use herald_store::{Log, Registry};

    let Some((api, schema)) = crate::postgres().await else {
        return;
    };
    let (store, _registered, woken) = listening(&schema, "listening").await;
    api.create_tenant("acme").await.unwrap();
    let first = api
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/0", SECRET))
        .await
        .unwrap();
    // 400 other workers, each of which the first endpoint hashes lower with than with the
    // listening worker, so that it serves that one whatever its id (drawing endpoints until
    // it served one outran the tenant's 1,000 endpoints in one run of twelve or so).
    execute(
        &schema,
        &format!(
            "INSERT INTO workers (id, lock_key, started_at) \
             SELECT c.name, c.n, 0 FROM (SELECT n, \
               'a-worker-with-a-long-name-' || lpad(n::text, 7, '0') AS name \
               FROM generate_series(1, 1000000) AS n) AS c \
             WHERE md5('{first}' || c.name) < md5('{first}' || 'listening') LIMIT 400",
            first = first.id
        ),
    )
    .await;
    assert_eq!(serving_worker(&schema, &first.id).await, "listening");
    for n in 1..400 {
        api.create_endpoint(NewEndpoint::new(
            "acme",
            &format!("https://example.com/{n}"),
            SECRET,
        ))
        .await
        .unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_millis(300), woken.notified()).await;
    let accepted = api.accept_event(NewEvent::new("acme", "t", "{}")).await;
    assert!(accepted.is_ok(), "the event is accepted: {accepted:?}");
    tokio::time::timeout(Duration::from_secs(5), woken.notified())
        .await
        .expect("the listening worker is woken for the endpoints it serves");

    drop((store, api));
    crate::drop_schema(&schema).await;
}

/// A worker that registers again (reaped while it stalled, it comes back under a new name) is
/// heard on its new name's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hears_a_worker_registered_under_a_new_name() {
    use std::time::Duration;

    use herald_store::{Log, Queue};

    let Some((api, schema)) = crate::postgres().await else {
        return;
    };
    let (store, first, woken) = listening(&schema, "first").await;
    drop(first);
    execute(&schema, "DELETE FROM workers").await;
    let _again = store.register("again").await.unwrap();
    assert_eq!(one_endpoints_worker(&api, &schema).await, "again");
    // The new listener is up within a moment; it looks once when it is.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = tokio::time::timeout(Duration::from_millis(300), woken.notified()).await;

    for n in 0..3 {
        api.accept_event(NewEvent::new("acme", "t", "{}"))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), woken.notified())
            .await
            .unwrap_or_else(|_| panic!("event {n}: the worker is woken under its new name"));
    }

    drop((store, api));
    crate::drop_schema(&schema).await;
}

/// Another process on `schema`, with a worker registered as `worker`, hearing announcements.
async fn listening(
    schema: &str,
    worker: &str,
) -> (
    herald_store::postgres::PostgresStore,
    Box<dyn herald_store::Registration>,
    std::sync::Arc<tokio::sync::Notify>,
) {
    use herald_store::Queue;
    let store = herald_store::postgres::PostgresStore::open_in_schema(&crate::pg_url(), schema)
        .await
        .unwrap();
    let registered = store.register(worker).await.unwrap();
    let woken = store.due_work().await.unwrap();
    (store, registered, woken)
}

/// How many announcements `listener` hears until it hears none for 300 ms.
async fn heard(listener: &mut sqlx::postgres::PgListener) -> usize {
    let wait = std::time::Duration::from_millis(300);
    let mut n = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(wait, listener.recv()).await {
        n += 1;
    }
    n
}

/// A TCP relay to the PostgreSQL server of `url`, which can cut every connection it carries,
/// or silence the ones that listen: they stay open and carry nothing, as through a firewall
/// that has forgotten them.
struct Gate {
    /// `url`, through the gate.
    url: String,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    carried: std::sync::Arc<std::sync::Mutex<Vec<Relay>>>,
}

/// One connection through the gate.
struct Relay {
    task: tokio::task::AbortHandle,
    /// Whether its client has sent `LISTEN`.
    listens: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether it has stopped carrying anything.
    silenced: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Gate {
    async fn open(url: &str) -> Gate {
        use std::str::FromStr;
        use std::sync::atomic::Ordering;

        let options = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
        let server = format!("{}:{}", options.get_host(), options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let through = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        assert!(url.contains(&server), "{url} names {server}");
        let gate = Gate {
            url: url.replacen(&server, &through, 1),
            open: Default::default(),
            carried: Default::default(),
        };
        gate.open.store(true, Ordering::SeqCst);
        let (open, carried) = (gate.open.clone(), gate.carried.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(upstream) = tokio::net::TcpStream::connect(&server).await else {
                    continue;
                };
                let listens = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let silenced = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = upstream.into_split();
                let up = carry(
                    client_in,
                    server_out,
                    Some(listens.clone()),
                    silenced.clone(),
                );
                let down = carry(server_in, client_out, None, silenced.clone());
                let task = tokio::spawn(async move {
                    tokio::join!(up, down);
                });
                carried.lock().unwrap().push(Relay {
                    task: task.abort_handle(),
                    listens,
                    silenced,
                });
            }
        });
        gate
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for relay in self.carried.lock().unwrap().drain(..) {
            relay.task.abort();
        }
    }

    fn reopen(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Silences every connection that has sent `LISTEN`; returns how many.
    fn silence_listeners(&self) -> usize {
        use std::sync::atomic::Ordering;
        let carried = self.carried.lock().unwrap();
        let listening = carried.iter().filter(|r| r.listens.load(Ordering::SeqCst));
        listening
            .inspect(|r| r.silenced.store(true, Ordering::SeqCst))
            .count()
    }
}

/// Copies `from` to `to` until either ends; once `silenced`, reads and drops. With `listens`,
/// notes whether what passes holds a `LISTEN`.
async fn carry(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    listens: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    silenced: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(listens) = &listens
            && buffer[..n].windows(7).any(|w| w == b"LISTEN ")
        {
            listens.store(true, Ordering::SeqCst);
        }
        if silenced.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Runs `statement` in the test's schema.
async fn execute(schema: &str, statement: &str) {
    let pool = sqlx::PgPool::connect(&crate::pg_url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET search_path TO {schema}; {statement}"
    )))
    .execute(&pool)
    .await
    .unwrap();
}

/// Makes tenant `acme` with one endpoint through `api`; the registered worker that serves it.
async fn one_endpoints_worker(api: &herald_store::postgres::PostgresStore, schema: &str) -> String {
    use herald_store::Registry;
    api.create_tenant("acme").await.unwrap();
    let endpoint = api
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/0", SECRET))
        .await
        .unwrap();
    serving_worker(schema, &endpoint.id).await
}

/// The registered worker that serves `endpoint` (the one it hashes highest with).
async fn serving_worker(schema: &str, endpoint: &str) -> String {
    let pool = sqlx::PgPool::connect(&crate::pg_url()).await.unwrap();
    let (owner,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {schema}.workers ORDER BY md5($1 || id) DESC LIMIT 1"
    )))
    .bind(endpoint)
    .fetch_one(&pool)
    .await
    .unwrap();
    owner
}

/// The registered workers' names.
async fn workers(schema: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&crate::pg_url()).await.unwrap();
    let names: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {schema}.workers ORDER BY id"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    names.into_iter().map(|(name,)| name).collect()
}
