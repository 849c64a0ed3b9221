//! Retention: old, finished events go with their deliveries and attempts, a batch at a time;
//! pending work and recent events stay.

use crate::timed::Timed;
use herald_store::{NewEvent, Outcome};

use super::{T0, attempt, tenant_with_endpoint};

const DAY: i64 = 24 * 3600 * 1000;

pub(crate) async fn retention_deletes_old_finished_events_in_batches(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    let mut old = Vec::new();
    for n in 0..5 {
        let accepted = store
            .accept_event(NewEvent::new("acme", "t", "{}"), T0 + n)
            .await
            .unwrap();
        old.push(accepted.event.id);
    }
    // Four of the five old deliveries finish (three succeed, one dies); one stays pending.
    let claimed = store
        .claim_due("w", 10, T0 + 60_000, T0 + 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    let mut finished = Vec::new();
    for (i, c) in claimed.iter().take(4).enumerate() {
        let outcome = if i == 3 {
            Outcome::Dead
        } else {
            Outcome::Succeeded
        };
        store
            .finish_attempt(c, &c.lease, attempt(T0 + 100, Some(200)), outcome)
            .await
            .unwrap();
        finished.push((c.event_id.clone(), c.delivery_id.clone()));
    }
    let pending = claimed[4].event_id.clone();
    let recent = store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0 + 40 * DAY)
        .await
        .unwrap()
        .event
        .id;

    let cutoff = T0 + 30 * DAY;
    assert_eq!(store.purge(cutoff, 3).await.unwrap(), 3, "one batch");
    assert_eq!(store.purge(cutoff, 3).await.unwrap(), 1, "the rest");
    assert_eq!(
        store.purge(cutoff, 3).await.unwrap(),
        0,
        "nothing left to purge"
    );
    for (event, delivery) in &finished {
        assert!(
            store.event("acme", event).await.unwrap().is_none(),
            "{event} purged"
        );
        assert!(
            store.delivery("acme", delivery).await.unwrap().is_none(),
            "its delivery too"
        );
        assert!(
            store.attempts("acme", delivery).await.unwrap().is_empty(),
            "and its attempts"
        );
    }
    assert!(
        store.event("acme", &pending).await.unwrap().is_some(),
        "an event still being delivered stays"
    );
    assert!(
        store.event("acme", &recent).await.unwrap().is_some(),
        "a recent event stays"
    );
}
