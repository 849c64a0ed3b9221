//! On PostgreSQL a process keeps the subscribers its accepts read (`sql/subscribers.rs`): an
//! event accepted through one process reaches its tenant's endpoints as they are when it is
//! accepted, whichever process changed them since.

use herald_store::postgres::PostgresStore;
use herald_store::{EndpointPatch, Log, NewEndpoint, NewEvent, Registry};
use sqlx::Connection;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `(deliveries, skipped)` of an event of type `t` accepted through `store`.
async fn accept(store: &PostgresStore, payload: &str) -> (u32, u32) {
    let accepted = store
        .accept_event(NewEvent::new("acme", "t", payload))
        .await
        .unwrap();
    (accepted.deliveries, accepted.skipped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_event_reaches_the_endpoints_another_process_changed() {
    let Some((changing, schema)) = crate::postgres().await else {
        return;
    };
    let accepting = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    changing.create_tenant("acme").await.unwrap();
    let first = changing
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/1", SECRET))
        .await
        .unwrap();
    assert_eq!(accept(&accepting, "{}").await, (1, 0), "kept from here on");

    // Each change made by the other process is seen by the next event.
    let second = changing
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/2", SECRET))
        .await
        .unwrap();
    assert_eq!(accept(&accepting, "{}").await, (2, 0), "a new endpoint");
    let patch = |patch: EndpointPatch| changing.update_endpoint("acme", &first.id, patch);
    patch(EndpointPatch {
        enabled: Some(false),
        ..EndpointPatch::default()
    })
    .await
    .unwrap();
    assert_eq!(accept(&accepting, "{}").await, (1, 1), "disabled");
    patch(EndpointPatch {
        enabled: Some(true),
        event_types: Some(vec!["u".into()]),
        ..EndpointPatch::default()
    })
    .await
    .unwrap();
    assert_eq!(accept(&accepting, "{}").await, (1, 0), "another type");
    patch(EndpointPatch {
        event_types: Some(Vec::new()),
        channels: Some(vec!["eu".into()]),
        ..EndpointPatch::default()
    })
    .await
    .unwrap();
    assert_eq!(accept(&accepting, "{}").await, (1, 0), "a channel");
    patch(EndpointPatch {
        channels: Some(Vec::new()),
        filter: Some(Some(r#"{"path":"/plan","eq":"pro"}"#.into())),
        ..EndpointPatch::default()
    })
    .await
    .unwrap();
    assert_eq!(
        accept(&accepting, r#"{"plan":"free"}"#).await,
        (1, 0),
        "a filter"
    );
    assert_eq!(accept(&accepting, r#"{"plan":"pro"}"#).await, (2, 0));
    assert!(changing.delete_endpoint("acme", &second.id).await.unwrap());
    assert_eq!(
        accept(&accepting, r#"{"plan":"pro"}"#).await,
        (1, 0),
        "deleted"
    );

    drop((accepting, changing));
    crate::drop_schema(&schema).await;
}

/// What is kept is what the next event goes by, for as long as the tenant's version of its
/// subscribers stays: a change the version does not see (none that herald makes) is not seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_subscribers_until_their_version_moves() {
    let Some((store, schema)) = kept_acme().await else {
        return;
    };
    run(
        &schema,
        "ALTER TABLE endpoints DISABLE TRIGGER endpoints_subscribers; \
         UPDATE endpoints SET enabled = false; \
         ALTER TABLE endpoints ENABLE TRIGGER endpoints_subscribers",
    )
    .await;
    assert_eq!(accept(&store, "{}").await, (1, 0), "kept, not read again");
    run(&schema, "UPDATE tenants SET subscribers = subscribers + 1").await;
    assert_eq!(accept(&store, "{}").await, (0, 1), "read again");

    drop(store);
    crate::drop_schema(&schema).await;
}

/// A store whose tenant `acme` has one endpoint, which it keeps as the subscriber of type `t`.
async fn kept_acme() -> Option<(PostgresStore, String)> {
    let (store, schema) = crate::postgres().await?;
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/1", SECRET))
        .await
        .unwrap();
    assert_eq!(accept(&store, "{}").await, (1, 0), "kept from here on");
    Some((store, schema))
}

/// Runs `statements` in `schema`, on a connection of their own.
async fn run(schema: &str, statements: &str) {
    let mut conn = sqlx::postgres::PgConnection::connect(&crate::pg_url())
        .await
        .unwrap();
    let text = format!("SET search_path TO {schema}; {statements}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(text))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A tenant whose endpoints change without pause (a script hammering the API) costs the
/// tenants whose events share its batches nothing, and its own events are accepted too: only
/// subscribers kept from an earlier batch are checked, so a batch tried again after they went
/// out of date reads everything afresh and cannot fail that way a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_tenant_changing_its_endpoints_without_pause_fails_no_event() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    for tenant in ["churning", "calm"] {
        store.create_tenant(tenant).await.unwrap();
        store
            .create_endpoint(NewEndpoint::new(tenant, "https://example.com/1", SECRET))
            .await
            .unwrap();
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&crate::pg_url())
        .await
        .unwrap();
    let churn = (0..2).map(|_| {
        let (pool, schema) = (pool.clone(), schema.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
                .execute(&mut *conn)
                .await
                .unwrap();
            let mut changes = 0u64;
            while std::time::Instant::now() < until {
                sqlx::query(
                    "UPDATE endpoints SET enabled = NOT enabled WHERE tenant_id = 'churning'",
                )
                .execute(&mut *conn)
                .await
                .unwrap();
                changes += 1;
            }
            changes
        })
    });
    let churn: Vec<_> = churn.collect();
    let senders = (0..32).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let tenant = if i % 2 == 0 { "churning" } else { "calm" };
            let (mut accepted, mut failed) = (0u64, Vec::new());
            while std::time::Instant::now() < until {
                match store.accept_event(NewEvent::new(tenant, "t", "{}")).await {
                    Ok(_) => accepted += 1,
                    Err(e) => failed.push(format!("{tenant}: {e}")),
                }
            }
            (accepted, failed)
        })
    });
    let senders: Vec<_> = senders.collect();
    let mut changes = 0;
    for task in churn {
        changes += task.await.unwrap();
    }
    let (mut accepted, mut failed) = (0, Vec::new());
    for task in senders {
        let (a, f) = task.await.unwrap();
        accepted += a;
        failed.extend(f);
    }
    eprintln!("{accepted} events accepted while the endpoints changed {changes} times");
    assert!(changes > 100, "the endpoints changed {changes} times");
    assert!(accepted > 100, "{accepted} events accepted");
    assert!(
        failed.is_empty(),
        "{} of {} events failed while the endpoints changed {changes} times; the first: {}",
        failed.len(),
        accepted + failed.len() as u64,
        failed[0]
    );

    drop((store, pool));
    crate::drop_schema(&schema).await;
}

/// A tenant deleted (herald has no call for it: an operator's `DELETE`) and made again under
/// the same id has subscribers at versions its first life never had, so what a process kept
/// of its first life is never taken for its second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_tenant_made_again_is_not_taken_for_its_first_life() {
    let Some((store, schema)) = kept_acme().await else {
        return;
    };
    run(&schema, "DELETE FROM tenants WHERE id = 'acme'").await;
    store.create_tenant("acme").await.unwrap();
    let second = store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/2", SECRET))
        .await
        .unwrap();
    let accepted = store
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    assert_eq!((accepted.deliveries, accepted.skipped), (1, 0));
    let deliveries = store
        .deliveries_of_event("acme", &accepted.event.id)
        .await
        .unwrap();
    assert_eq!(
        deliveries
            .iter()
            .map(|d| &d.endpoint_id)
            .collect::<Vec<_>>(),
        [&second.id]
    );

    drop(store);
    crate::drop_schema(&schema).await;
}
