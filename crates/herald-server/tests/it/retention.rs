//! The retention task as the service runs it: old events go in small batches while the service
//! serves; recent ones stay.

use std::time::Duration;

use herald_server::{Config, Retention, Service};
use std::sync::Arc;

use herald_store::{Clock, ManualClock, NewEvent, SystemClock};

use crate::support::{databases, drop_database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_deleted_while_the_service_runs() {
    for (url, admin) in databases("retention").await {
        let mut config = Config::new(&url).admin_token("token");
        config.retention = Retention {
            max_age: Some(Duration::from_secs(3600)),
            batch: 2,
            interval: Duration::from_millis(50),
        };
        let now = SystemClock.now();
        let clock = ManualClock::at(now);
        config.clock = Some(Arc::new(clock.clone()));
        let service = Service::open(config, herald_example_seed::app().declared())
            .await
            .unwrap();
        let store = service.store();
        store.create_tenant("acme").await.unwrap();
        let mut old = Vec::new();
        for n in 0..5 {
            // Two hours ago: no endpoint, so nothing is pending and each may go.
            clock.set(now - 2 * 3600 * 1000 + n);
            let accepted = store
                .accept_event(NewEvent::new("acme", "t", "{}"))
                .await
                .unwrap();
            old.push(accepted.event.id);
        }
        clock.set(now);
        let recent = store
            .accept_event(NewEvent::new("acme", "t", "{}"))
            .await
            .unwrap()
            .event
            .id;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(service.serve(herald_example_seed::app(), listener, async {
            let _ = stopped.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for id in &old {
            while store.event("acme", id).await.unwrap().is_some() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{url}: {id} was kept"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert!(
            store.event("acme", &recent).await.unwrap().is_some(),
            "{url}"
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        drop(store);
        drop_database(&url, admin).await;
    }
}
