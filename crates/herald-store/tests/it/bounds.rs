//! What one tenant may hold: endpoints, at most `Limits::max_endpoints_per_tenant`, so that no
//! tenant's events become writes every other tenant waits behind.

use herald_store::{ErrorKind, NewEndpoint, Registry};
use sqlx::Connection;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn endpoint(tenant: &str, n: usize) -> NewEndpoint {
    NewEndpoint::new(tenant, &format!("https://example.com/{n}"), SECRET)
}

/// With room for three endpoints a tenant: the fourth is refused, saying why; other tenants
/// are not counted; deleting one makes room; many made at once never pass the bound.
async fn a_tenant_holds_at_most_its_endpoints<S: Registry + Clone + Send + Sync + 'static>(
    store: S,
) {
    store.create_tenant("acme").await.unwrap();
    store.create_tenant("other").await.unwrap();
    let mut made = Vec::new();
    for n in 0..3 {
        made.push(store.create_endpoint(endpoint("acme", n)).await.unwrap().id);
    }
    let refused = store
        .create_endpoint(endpoint("acme", 3))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("tenant `acme` has 3 endpoints"),
        "{refused}"
    );
    store.create_endpoint(endpoint("other", 0)).await.unwrap();
    assert!(store.delete_endpoint("acme", &made[0]).await.unwrap());
    store.create_endpoint(endpoint("acme", 4)).await.unwrap();
    assert_eq!(store.endpoints("acme", None, 100).await.unwrap().len(), 3);
    // An unknown tenant is still told so, not counted.
    let unknown = store
        .create_endpoint(endpoint("nobody", 0))
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound, "{unknown}");
}

/// Twelve endpoints made at once for tenant `rush`, which has room for three: three are kept.
async fn twelve_at_once_keep_three<S: Registry + Clone + Send + Sync + 'static>(
    store: &S,
    meanwhile: impl std::future::Future<Output = ()>,
) {
    store.create_tenant("rush").await.unwrap();
    let tries: Vec<_> = (0..12)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.create_endpoint(endpoint("rush", n)).await })
        })
        .collect();
    meanwhile.await;
    let mut kept = 0;
    for attempt in tries {
        match attempt.await.unwrap() {
            Ok(_) => kept += 1,
            Err(error) => assert_eq!(error.kind(), ErrorKind::Conflict, "{error}"),
        }
    }
    assert_eq!(kept, 3);
    assert_eq!(store.endpoints("rush", None, 100).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_a_tenant_to_its_endpoints() {
    let (store, _dir) = crate::sqlite().await;
    let store = store.with_max_endpoints_per_tenant(Some(3));
    a_tenant_holds_at_most_its_endpoints(store.clone()).await;
    twelve_at_once_keep_three(&store, async {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_a_tenant_to_its_endpoints() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let store = store.with_max_endpoints_per_tenant(Some(3));
    a_tenant_holds_at_most_its_endpoints(store.clone()).await;
    // Every insert held back for a moment while the twelve count what is there: each must
    // count after the one before it inserted, or all twelve would see room.
    let mut blocker = sqlx::PgConnection::connect(&crate::pg_url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET search_path TO {schema}; BEGIN; LOCK TABLE endpoints IN SHARE ROW EXCLUSIVE MODE"
    )))
    .execute(&mut blocker)
    .await
    .unwrap();
    twelve_at_once_keep_three(&store, async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    })
    .await;
    drop(store);
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bound_a_tenant_holds_any_number() {
    let (store, _dir) = crate::sqlite().await;
    let store = store.with_max_endpoints_per_tenant(None);
    store.create_tenant("acme").await.unwrap();
    for n in 0..5 {
        store.create_endpoint(endpoint("acme", n)).await.unwrap();
    }
    assert_eq!(
        herald_store::Limits::default().max_endpoints_per_tenant,
        Some(1_000),
        "the default bound"
    );
}
