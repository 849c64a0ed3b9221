//! On PostgreSQL a process keeps the subscribers its accepts read (`sql/subscribers.rs`): an
//! event accepted through one process reaches its tenant's endpoints as they are when it is
//! accepted, whichever process changed them since.

use herald_store::postgres::PostgresStore;
use herald_store::{EndpointPatch, Log, NewEndpoint, NewEvent, Registry};

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
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com/1", SECRET))
        .await
        .unwrap();
    assert_eq!(accept(&store, "{}").await, (1, 0));
    let pool = sqlx::PgPool::connect(&crate::pg_url()).await.unwrap();
    let run = |statement: &str| {
        let text = format!("SET search_path TO {schema}; {statement}");
        let pool = &pool;
        async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(text))
                .execute(pool)
                .await
                .unwrap();
        }
    };
    run(
        "ALTER TABLE endpoints DISABLE TRIGGER endpoints_subscribers; \
         UPDATE endpoints SET enabled = false; \
         ALTER TABLE endpoints ENABLE TRIGGER endpoints_subscribers",
    )
    .await;
    assert_eq!(accept(&store, "{}").await, (1, 0), "kept, not read again");
    run("UPDATE tenants SET subscribers = subscribers + 1").await;
    assert_eq!(accept(&store, "{}").await, (0, 1), "read again");

    drop(store);
    crate::drop_schema(&schema).await;
}
