//! The library's promises to an application: `send_in` joins the caller's transaction on both
//! databases (the event exists if and only if it commits), only declared webhooks are sent,
//! a transaction on the other database is refused, and the worker starts once.

use herald_core::{App, Webhook};
use herald_example_seed::{Subscription, new_subscription};
use herald_server::{Config, ErrorKind, Service, TenantId};
use herald_store::EventFilter;

use crate::support::{databases, drop_database};

fn subscription(name: &str) -> Subscription {
    Subscription {
        username: name.into(),
        monthly_fee: 9.99,
        start_date: "2026-12-02T08:00:00Z".parse().unwrap(),
    }
}

async fn stored(service: &Service, tenant: &TenantId) -> Vec<String> {
    let events = service
        .store()
        .events(tenant.as_str(), &EventFilter::default(), None, 100)
        .await
        .unwrap();
    let mut names: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<Subscription>(&e.payload)
                .unwrap()
                .username
        })
        .collect();
    names.sort();
    names
}

/// Begins a transaction on the service's own pool, stores `name`'s event in it, and commits
/// or rolls back.
/// herald on `config` knowing `app`'s webhooks, with the tenant `acme`.
async fn with_acme(config: Config, app: &App) -> (Service, TenantId) {
    let service = Service::open(config, app.declared()).await.unwrap();
    let acme: TenantId = "acme".parse().unwrap();
    service.store().create_tenant(acme.as_str()).await.unwrap();
    (service, acme)
}

async fn send_in(service: &Service, tenant: &TenantId, name: &str, commit: bool) {
    let sender = service.sender();
    let body = subscription(name);
    if let Some(pool) = service.sqlite_pool() {
        let mut tx = pool.begin().await.unwrap();
        sender
            .send_in(&mut tx, &new_subscription, tenant, &body)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap()
        } else {
            tx.rollback().await.unwrap()
        }
    } else {
        let pool = service.postgres_pool().unwrap();
        let mut tx = pool.begin().await.unwrap();
        sender
            .send_in(&mut tx, &new_subscription, tenant, &body)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap()
        } else {
            tx.rollback().await.unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_in_stores_the_event_if_and_only_if_the_caller_commits() {
    for (url, admin) in databases("outbox").await {
        let (service, acme) = with_acme(Config::new(&url), &herald_example_seed::app()).await;

        send_in(&service, &acme, "kept", true).await;
        send_in(&service, &acme, "rolled-back", false).await;
        assert_eq!(stored(&service, &acme).await, ["kept"], "{url}");
        drop(service);
        drop_database(&url, admin).await;
    }
}

#[tokio::test]
async fn a_webhook_the_app_did_not_declare_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("herald-undeclared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The service knows only the app's webhooks: here, none.
    let (service, acme) = with_acme(Config::sqlite(dir.join("x.db")), &App::new("t", "1")).await;
    let error = service
        .sender()
        .send(&new_subscription, &acme, &subscription("rick"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Undeclared);
    assert!(error.to_string().contains("`new-subscription`"), "{error}");

    // Nor by a builder of the same body type under another name.
    let other = Webhook::<Subscription>::post("subscription.renewed");
    let error = service
        .sender()
        .send(&other, &acme, &subscription("rick"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("`subscription.renewed`"),
        "{error}"
    );
    assert!(stored(&service, &acme).await.is_empty());

    // An app whose webhooks differ from the service's is refused at start.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = service
        .serve(herald_example_seed::app(), listener, async {})
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_transaction_on_the_other_database_is_refused() {
    let Some((url, admin)) = databases("other").await.into_iter().nth(1) else {
        return; // PostgreSQL is unreachable (and this is not CI): reported by `databases`
    };
    let (service, acme) = with_acme(Config::new(&url), &herald_example_seed::app()).await;
    let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    let mut tx = sqlite.begin().await.unwrap();
    let error = service
        .sender()
        .send_in(&mut tx, &new_subscription, &acme, &subscription("rick"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WrongDatabase);
    assert!(error.to_string().contains("PostgreSQL"), "{error}");
    drop(service);
    drop_database(&url, admin).await;
}

#[tokio::test]
async fn the_worker_starts_once() {
    let dir = std::env::temp_dir().join(format!("herald-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let service = Service::open(
        Config::sqlite(dir.join("x.db")),
        herald_example_seed::app().declared(),
    )
    .await
    .unwrap();
    let running = service.start().await.unwrap();
    let again = service.start().await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Server);
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// An application that closes herald (a test, a reload) can open the same SQLite file again in
/// the same process: the one-process lock goes with the service.
#[tokio::test]
async fn a_closed_service_lets_go_of_its_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("herald-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let declared = herald_example_seed::app();
    for round in 0..3 {
        let service = Service::open(Config::sqlite(dir.join("x.db")), declared.declared())
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let acme: TenantId = "acme".parse().unwrap();
        if round == 0 {
            service.store().create_tenant(acme.as_str()).await.unwrap();
        }
        service
            .sender()
            .send(&new_subscription, &acme, &subscription("rick"))
            .await
            .unwrap();
        let running = service.start().await.unwrap();
        running.shutdown().await;
        drop(service);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
