//! The behaviour every `Store` must have, written once.

use std::collections::BTreeSet;

use crate::timed::{Timed, finish};
use herald_store::{
    Attempt, DeliveryFilter, DeliveryState, EndpointPatch, ErrorKind, Finish, NewEndpoint,
    NewEvent, NewToken, Outcome,
};

mod log;
mod operational;
mod retention;
mod scheduler;
mod signing;
mod versions;
pub(crate) use log::*;
pub(crate) use operational::*;
pub(crate) use retention::*;
pub(crate) use scheduler::*;
pub(crate) use signing::*;
pub(crate) use versions::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const T0: i64 = 1_700_000_000_000;

pub(crate) fn attempt(at: i64, status: Option<u16>) -> Attempt {
    Attempt {
        started_at: at,
        duration_ms: 12,
        status_code: status,
        response_excerpt: status.map(|s| format!("status {s}")),
        error: status.is_none().then(|| "connection refused".to_owned()),
        request_headers: [("webhook-id".to_owned(), format!("msg_{at}"))].into(),
        response_headers: status
            .map(|_| [("content-type".to_owned(), "text/plain".to_owned())].into())
            .unwrap_or_default(),
    }
}

async fn tenant_with_endpoint(store: &Timed, tenant: &str) -> String {
    store.create_tenant(tenant, T0).await.unwrap();
    let endpoint = NewEndpoint::new(tenant, "https://example.com/hook", SECRET);
    store.create_endpoint(endpoint, T0).await.unwrap().id
}

pub(crate) async fn tenants_are_created_once(store: &Timed) {
    let tenant = store.create_tenant("acme", T0).await.unwrap();
    assert_eq!(tenant.id, "acme");
    assert_eq!(store.tenant("acme").await.unwrap(), Some(tenant));
    let again = store.create_tenant("acme", T0).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
    assert_eq!(store.tenant("nobody").await.unwrap(), None);
}

pub(crate) async fn endpoints_belong_to_existing_tenants_and_are_scoped(store: &Timed) {
    let missing = store
        .create_endpoint(NewEndpoint::new("ghost", "https://example.com", SECRET), T0)
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    store.create_tenant("a", T0).await.unwrap();
    store.create_tenant("b", T0).await.unwrap();
    let mut new = NewEndpoint::new("a", "https://a.example/hook", SECRET);
    new.event_types = vec!["new-subscription".into()];
    new.headers.insert("x-team".into(), "billing".into());
    new.description = "A's hook".into();
    let created = store.create_endpoint(new, T0).await.unwrap();
    assert!(created.id.starts_with("ep_"));
    let fetched = store.endpoint("a", &created.id).await.unwrap().unwrap();
    assert_eq!(fetched, created);
    assert_eq!(
        store.endpoint("b", &created.id).await.unwrap(),
        None,
        "scoped to its tenant"
    );
}

pub(crate) async fn events_fan_out_to_enabled_subscribed_endpoints(store: &Timed) {
    store.create_tenant("acme", T0).await.unwrap();
    store.create_tenant("other", T0).await.unwrap();
    let mut ids = Vec::new();
    for (types, enabled) in [
        (vec![], true),                               // every type
        (vec!["new-subscription".to_owned()], true),  // this type
        (vec!["invoice.paid".to_owned()], true),      // another type
        (vec!["new-subscription".to_owned()], false), // disabled
    ] {
        let mut new = NewEndpoint::new("acme", "https://example.com/hook", SECRET);
        new.event_types = types;
        new.enabled = enabled;
        ids.push(store.create_endpoint(new, T0).await.unwrap().id);
    }
    tenant_with_endpoint_of(store, "other").await;

    let accepted = store
        .accept_event(NewEvent::new("acme", "new-subscription", "{}"), T0)
        .await
        .unwrap();
    assert!(accepted.created);
    assert!(accepted.event.id.starts_with("evt_"));
    assert_eq!((accepted.deliveries, accepted.skipped), (2, 1));
    let deliveries = store
        .deliveries_of_event("acme", &accepted.event.id)
        .await
        .unwrap();
    let pending: BTreeSet<_> = deliveries
        .iter()
        .filter(|d| d.state == DeliveryState::Pending)
        .map(|d| d.endpoint_id.clone())
        .collect();
    assert_eq!(pending, BTreeSet::from([ids[0].clone(), ids[1].clone()]));
    assert_eq!(deliveries.len(), 3, "none to the other type's endpoint");
    for delivery in deliveries {
        assert!(delivery.id.starts_with("dlv_"));
        assert_eq!(delivery.attempts, 0);
        if delivery.endpoint_id == ids[3] {
            // The disabled endpoint's: recorded, not sent, and not due.
            assert_eq!(delivery.state, DeliveryState::Skipped);
            assert_eq!(delivery.next_attempt_at, None);
        } else {
            assert_eq!(delivery.state, DeliveryState::Pending);
            assert_eq!(delivery.next_attempt_at, Some(T0));
        }
    }
    let stored = store.event("acme", &accepted.event.id).await.unwrap();
    assert_eq!(stored, Some(accepted.event.clone()));
    assert_eq!(
        store.event("other", &accepted.event.id).await.unwrap(),
        None
    );
}

async fn tenant_with_endpoint_of(store: &Timed, tenant: &str) {
    store
        .create_endpoint(
            NewEndpoint::new(tenant, "https://other.example", SECRET),
            T0,
        )
        .await
        .unwrap();
}

pub(crate) async fn idempotency_keys_return_the_first_event(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    tenant_with_endpoint(store, "other").await;
    let keyed = |tenant: &str, payload: &str| NewEvent {
        idempotency_key: Some("order-42".into()),
        ..NewEvent::new(tenant, "new-subscription", payload)
    };
    let first = store
        .accept_event(keyed("acme", "{\"n\":1}"), T0)
        .await
        .unwrap();
    let again = store
        .accept_event(keyed("acme", "{\"n\":2}"), T0 + 5)
        .await
        .unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(
        again.event, first.event,
        "the first event, payload included"
    );
    assert_eq!(again.deliveries, 1);
    assert_eq!(
        store
            .deliveries_of_event("acme", &first.event.id)
            .await
            .unwrap()
            .len(),
        1
    );

    let elsewhere = store.accept_event(keyed("other", "{}"), T0).await.unwrap();
    assert!(elsewhere.created, "keys are per tenant");
    assert_ne!(elsewhere.event.id, first.event.id);
}

pub(crate) async fn an_event_for_an_unknown_tenant_stores_nothing(store: &Timed) {
    let error = store
        .accept_event(NewEvent::new("ghost", "new-subscription", "{}"), T0)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        store
            .claim_due("w", 10, T0 + 1000, T0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn payloads_are_kept_byte_for_byte(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    let payload = "{ \"z\":1,\"a\" : [1.50, \"é ✓ \\u00e9\"],\n\"big\": 12345678901234567890 }";
    let accepted = store
        .accept_event(NewEvent::new("acme", "t", payload), T0)
        .await
        .unwrap();
    let claimed = store.claim_due("w", 1, T0 + 1000, T0).await.unwrap();
    assert_eq!(claimed[0].payload, payload);
    assert_eq!(
        store
            .event("acme", &accepted.event.id)
            .await
            .unwrap()
            .unwrap()
            .payload,
        payload
    );
}

pub(crate) async fn claims_take_due_work_once_with_everything_needed(store: &Timed) {
    store.create_tenant("acme", T0).await.unwrap();
    let mut new = NewEndpoint::new("acme", "https://example.com/hook", SECRET);
    new.headers.insert("x-team".into(), "billing".into());
    let endpoint = store.create_endpoint(new, T0).await.unwrap();
    let first = store
        .accept_event(NewEvent::new("acme", "new-subscription", "{\"n\":1}"), T0)
        .await
        .unwrap();
    store
        .accept_event(
            NewEvent::new("acme", "new-subscription", "{\"n\":2}"),
            T0 + 10_000,
        )
        .await
        .unwrap();

    let claimed = store
        .claim_due("w1", 10, T0 + 30_000, T0 + 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "the second event is not due yet");
    let c = &claimed[0];
    assert_eq!(c.event_id, first.event.id);
    assert_eq!(c.event_type, "new-subscription");
    assert_eq!(c.payload, "{\"n\":1}");
    assert_eq!(c.endpoint_id, endpoint.id);
    assert_eq!(c.url, "https://example.com/hook");
    assert_eq!(c.headers.get("x-team").map(String::as_str), Some("billing"));
    assert_eq!(c.secrets, [SECRET]);
    assert_eq!(c.attempts, 0);
    assert!(c.lease.starts_with("w1/"));

    let again = store
        .claim_due("w2", 10, T0 + 30_000, T0 + 2)
        .await
        .unwrap();
    assert!(again.is_empty(), "leased work is not claimed twice");
    let later = store
        .claim_due("w2", 10, T0 + 40_000, T0 + 10_000)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].payload, "{\"n\":2}");
}

pub(crate) async fn an_expired_lease_makes_work_claimable_again(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap();
    let dead_worker = store.claim_due("w1", 10, T0 + 1_000, T0).await.unwrap();
    assert_eq!(dead_worker.len(), 1);
    assert!(
        store
            .claim_due("w2", 10, T0 + 2_000, T0 + 999)
            .await
            .unwrap()
            .is_empty()
    );

    // A live worker's claim is never taken; a lease that ran out is handed back by the reaper.
    assert_eq!(store.reap(T0 + 999).await.unwrap(), 0, "not yet");
    assert_eq!(store.reap(T0 + 1_000).await.unwrap(), 1);
    let rescued = store
        .claim_due("w2", 10, T0 + 31_000, T0 + 1_000)
        .await
        .unwrap();
    assert_eq!(rescued.len(), 1, "claimable once the lease runs out");
    let id = &rescued[0].delivery_id;

    let late = store
        .finish_attempt(
            &rescued[0],
            &dead_worker[0].lease,
            attempt(T0 + 1_500, Some(200)),
            Outcome::Succeeded,
        )
        .await
        .unwrap();
    assert!(!late, "the old lease no longer holds");
    assert_eq!(
        store.delivery("acme", id).await.unwrap().unwrap().state,
        DeliveryState::Pending
    );

    let held = store
        .finish_attempt(
            &rescued[0],
            &rescued[0].lease,
            attempt(T0 + 1_600, Some(200)),
            Outcome::Succeeded,
        )
        .await
        .unwrap();
    assert!(held);
    let delivery = store.delivery("acme", id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Succeeded);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(
        store.attempts("acme", id).await.unwrap().len(),
        2,
        "both tries are in the log"
    );
}

pub(crate) async fn outcomes_move_deliveries_on(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    let event = store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap()
        .event;
    let claim = |now: i64| store.claim_due("w", 10, now + 30_000, now);

    let c = claim(T0).await.unwrap().remove(0);
    let failed = attempt(T0, Some(500));
    assert!(
        store
            .finish_attempt(&c, &c.lease, failed.clone(), Outcome::RetryAt(T0 + 5_000))
            .await
            .unwrap()
    );
    let d = store
        .delivery("acme", &c.delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.state, d.attempts, d.next_attempt_at),
        (DeliveryState::Pending, 1, Some(T0 + 5_000))
    );
    assert!(
        claim(T0 + 4_999).await.unwrap().is_empty(),
        "not before its time"
    );

    let c = claim(T0 + 5_000).await.unwrap().remove(0);
    assert_eq!(c.attempts, 1);
    let refused = attempt(T0 + 5_000, None);
    assert!(
        store
            .finish_attempt(&c, &c.lease, refused.clone(), Outcome::Dead)
            .await
            .unwrap()
    );
    let d = store
        .delivery("acme", &c.delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.state, d.attempts, d.next_attempt_at),
        (DeliveryState::Dead, 2, None)
    );
    assert!(
        claim(T0 + 100_000).await.unwrap().is_empty(),
        "dead is final"
    );
    assert_eq!(
        store.attempts("acme", &c.delivery_id).await.unwrap(),
        [failed, refused]
    );
    assert_eq!(
        store
            .deliveries_of_event("acme", &event.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn endpoint_failure_streaks_are_tracked(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    for n in 0..3 {
        store
            .accept_event(NewEvent::new("acme", "t", "{}"), T0 + n)
            .await
            .unwrap();
    }
    let claimed = store
        .claim_due("w", 10, T0 + 60_000, T0 + 10)
        .await
        .unwrap();
    for (c, at) in [(&claimed[0], T0 + 100), (&claimed[1], T0 + 200)] {
        let failed = attempt(at, Some(503));
        let retry = Outcome::RetryAt(at + 1_000_000);
        store
            .finish_attempt(c, &c.lease, failed, retry)
            .await
            .unwrap();
    }
    let failing = store
        .endpoint("acme", &endpoint)
        .await
        .unwrap()
        .unwrap()
        .failing_since;
    assert_eq!(
        failing,
        Some(T0 + 100),
        "the streak starts at the first failure"
    );
    // The operator's view: two waiting for their retry, one in flight, nothing due yet.
    let figures = store.queue_figures(T0 + 500).await.unwrap();
    assert_eq!(
        (figures.pending, figures.due, figures.oldest_due_at),
        (3, 0, None)
    );
    assert_eq!(
        figures.failing,
        [("acme".into(), endpoint.clone(), T0 + 100)]
    );
    let later = store.queue_figures(T0 + 2_000_000).await.unwrap();
    assert_eq!(
        (later.pending, later.due),
        (3, 3),
        "retries due, the lease expired"
    );
    assert!(later.oldest_due_at.is_some_and(|at| at <= T0 + 1_000_200));
    store.ping().await.unwrap();
    let c = &claimed[2];
    store
        .finish_attempt(
            c,
            &c.lease,
            attempt(T0 + 300, Some(200)),
            Outcome::Succeeded,
        )
        .await
        .unwrap();
    let failing = store
        .endpoint("acme", &endpoint)
        .await
        .unwrap()
        .unwrap()
        .failing_since;
    assert_eq!(failing, None, "a success ends it");
    let figures = store.queue_figures(T0 + 500).await.unwrap();
    assert_eq!((figures.pending, figures.failing.len()), (2, 0));
}

pub(crate) async fn disabling_an_endpoint_stops_its_deliveries(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    for _ in 0..2 {
        store
            .accept_event(NewEvent::new("acme", "t", "{}"), T0)
            .await
            .unwrap();
    }
    let claimed = store.claim_due("w", 10, T0 + 60_000, T0).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // The first answers 410 Gone: the endpoint is disabled as the attempt is recorded, and
    // its other delivery, in flight, ends with it.
    let gone = Finish {
        gone: true,
        ..finish(
            &claimed[0],
            &claimed[0].lease,
            attempt(T0 + 1, Some(410)),
            Outcome::Dead,
        )
    };
    let finished = store.finish(gone).await.unwrap();
    assert!(finished.held);
    assert_eq!(
        finished.disabled.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    let ep = store.endpoint("acme", &endpoint).await.unwrap().unwrap();
    assert!(!ep.enabled);
    assert_eq!(
        ep.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    // The one that was answered 410 is dead (claims of one moment come in either order).
    let deliveries = store
        .deliveries_of_event("acme", &claimed[0].event_id)
        .await
        .unwrap();
    assert_eq!(deliveries[0].state, DeliveryState::Dead);
    let late = store
        .finish_attempt(
            &claimed[1],
            &claimed[1].lease,
            attempt(T0 + 2, Some(200)),
            Outcome::Succeeded,
        )
        .await
        .unwrap();
    assert!(!late, "its delivery ended with the endpoint");
    let second = store
        .deliveries_of_event("acme", &claimed[1].event_id)
        .await
        .unwrap();
    assert_eq!(
        second[0].state,
        DeliveryState::Skipped,
        "in flight when the endpoint went: skipped, not lost"
    );
    assert!(
        store
            .claim_due("w", 10, T0 + 60_000, T0 + 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0 + 20)
        .await
        .unwrap();
    assert_eq!((later.deliveries, later.skipped), (0, 1));
}

pub(crate) async fn what_a_disabled_endpoint_misses_is_skipped_then_sent_in_order(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    let patch = |enabled, deliver_skipped| EndpointPatch {
        enabled: Some(enabled),
        deliver_skipped,
        ..EndpointPatch::default()
    };
    let keyed = |key: &str| NewEvent {
        ordering_key: Some(key.into()),
        ..NewEvent::new("acme", "t", "{}")
    };
    let pending = store.accept_event(keyed("k"), T0).await.unwrap().event.id;
    store
        .update_endpoint("acme", &endpoint, patch(false, false), T0 + 1)
        .await
        .unwrap();
    let mut events = vec![pending];
    for (n, new) in [keyed("k"), NewEvent::new("acme", "t", "{}"), keyed("k")]
        .into_iter()
        .enumerate()
    {
        let accepted = store.accept_event(new, T0 + 10 + n as i64).await.unwrap();
        assert_eq!((accepted.deliveries, accepted.skipped), (0, 1));
        events.push(accepted.event.id);
    }
    assert_eq!(
        skipped(store, &endpoint).await,
        4,
        "the pending one and the three that came later"
    );
    assert!(
        store
            .claim_due("w", 10, T0 + 60_000, T0 + 20)
            .await
            .unwrap()
            .is_empty()
    );

    // Enabled without them: they stay skipped, in the log.
    store
        .update_endpoint("acme", &endpoint, patch(true, false), T0 + 30)
        .await
        .unwrap();
    assert!(
        store
            .claim_due("w", 10, T0 + 60_000, T0 + 31)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(skipped(store, &endpoint).await, 4);

    // Asked for: due at once, the key's deliveries one at a time in acceptance order.
    store
        .update_endpoint("acme", &endpoint, patch(true, true), T0 + 40)
        .await
        .unwrap();
    assert_eq!(skipped(store, &endpoint).await, 0);
    let mut sent = Vec::new();
    for step in 0..4 {
        let now = T0 + 100 + step * 100; // after the last finish (12 ms each)
        let claimed = store.claim_due("w", 10, now + 60_000, now).await.unwrap();
        for claim in claimed {
            sent.push(claim.event_id.clone());
            store
                .finish_attempt(
                    &claim,
                    &claim.lease,
                    attempt(now, Some(200)),
                    Outcome::Succeeded,
                )
                .await
                .unwrap();
        }
    }
    let key_order: Vec<&String> = sent.iter().filter(|e| **e != events[2]).collect();
    assert_eq!(key_order, [&events[0], &events[1], &events[3]]);
    assert_eq!(sent.len(), 4, "each sent once: {sent:?}");
}

/// How many of acme's deliveries to `endpoint` are skipped.
async fn skipped(store: &Timed, endpoint: &str) -> usize {
    let filter = DeliveryFilter {
        endpoint_id: Some(endpoint.to_owned()),
        state: Some(DeliveryState::Skipped),
        ..DeliveryFilter::default()
    };
    store
        .deliveries("acme", &filter, None, 100)
        .await
        .unwrap()
        .len()
}

pub(crate) async fn released_leases_are_claimable_at_once(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due("w1", 10, T0 + 60_000, T0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.release("w1-other").await.unwrap(),
        0,
        "names are matched whole"
    );
    assert_eq!(store.release("w1").await.unwrap(), 1);
    assert_eq!(
        store
            .claim_due("w2", 10, T0 + 60_000, T0 + 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn concurrent_claims_never_share_a_delivery(store: &Timed) {
    store.create_tenant("acme", T0).await.unwrap();
    for n in 0..4 {
        let url = format!("https://example.com/{n}");
        store
            .create_endpoint(NewEndpoint::new("acme", &url, SECRET), T0)
            .await
            .unwrap();
    }
    for n in 0..50 {
        store
            .accept_event(NewEvent::new("acme", "t", "{}"), T0 + n)
            .await
            .unwrap();
    }
    // Eight workers on their own tasks (truly parallel on the multi-threaded runtime), each
    // claiming in small batches until nothing is left.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_due(&format!("w{w}"), 7, T0 + 600_000, T0 + 100)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break mine;
                    }
                    mine.extend(batch.into_iter().map(|c| c.delivery_id));
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    let unique: BTreeSet<_> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), 200, "every delivery claimed");
    assert_eq!(unique.len(), 200, "none claimed twice");
}

/// Writes made at once share transactions (group commit); each still gets its own answer, and
/// a bad one fails alone.
/// Events of several tenants and types accepted at once share transactions, where the
/// endpoints subscribed to all of them are read in one statement: each event still reaches
/// its own tenant's endpoints of its own type, an endpoint that takes every type still gets
/// no operational event it did not name, and a disabled one still records what it skipped.
pub(crate) async fn a_batch_of_many_tenants_and_types_fans_out_each_event_alike(store: &Timed) {
    let operational = herald_store::operational::ENDPOINT_DISABLED;
    let mut endpoints = std::collections::BTreeMap::new();
    for tenant in ["acme", "globex"] {
        store.create_tenant(tenant, T0).await.unwrap();
    }
    for (name, tenant, types, enabled) in [
        ("acme every type", "acme", vec![], true),
        ("acme a", "acme", vec!["a"], true),
        ("acme operational", "acme", vec![operational], true),
        ("globex b", "globex", vec!["b"], true),
        ("globex every type, disabled", "globex", vec![], false),
    ] {
        let mut new = NewEndpoint::new(tenant, "https://example.com/hook", SECRET);
        new.event_types = types.into_iter().map(str::to_owned).collect();
        new.enabled = enabled;
        let id = store.create_endpoint(new, T0).await.unwrap().id;
        endpoints.insert(id, name);
    }
    // (tenant, type) → the endpoints it reaches, sent to and skipped.
    let expected = |tenant: &str, event_type: &str| -> (Vec<&str>, Vec<&str>) {
        match (tenant, event_type) {
            ("acme", "a") => (vec!["acme a", "acme every type"], vec![]),
            ("acme", "b") => (vec!["acme every type"], vec![]),
            ("acme", _) => (vec!["acme operational"], vec![]),
            ("globex", "a") => (vec![], vec!["globex every type, disabled"]),
            ("globex", "b") => (vec!["globex b"], vec!["globex every type, disabled"]),
            _ => (vec![], vec![]),
        }
    };
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..60_i64 {
        let store = store.clone();
        let tenant = ["acme", "globex"][usize::try_from(n % 2).unwrap()];
        let event_type = ["a", "b", operational][usize::try_from(n / 2 % 3).unwrap()];
        writes.spawn(async move {
            let new = NewEvent::new(tenant, event_type, &format!("{{\"n\":{n}}}"));
            (
                tenant,
                event_type,
                store.accept_event(new, T0 + n).await.unwrap(),
            )
        });
    }
    while let Some(joined) = writes.join_next().await {
        let (tenant, event_type, accepted) = joined.unwrap();
        let (sent, skipped) = expected(tenant, event_type);
        let what = format!("{tenant}'s {event_type}");
        assert_eq!(accepted.deliveries as usize, sent.len(), "{what}");
        assert_eq!(accepted.skipped as usize, skipped.len(), "{what}");
        let mut reached: Vec<(&str, bool)> = store
            .deliveries_of_event(tenant, &accepted.event.id)
            .await
            .unwrap()
            .iter()
            .map(|d| (endpoints[&d.endpoint_id], d.state == DeliveryState::Skipped))
            .collect();
        reached.sort_unstable();
        let mut wanted: Vec<(&str, bool)> = sent.iter().map(|e| (*e, false)).collect();
        wanted.extend(skipped.iter().map(|e| (*e, true)));
        wanted.sort_unstable();
        assert_eq!(reached, wanted, "{what}");
    }
}

pub(crate) async fn concurrent_writes_each_get_their_own_answer(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..60 {
        let store = store.clone();
        writes.spawn(async move {
            let tenant = if n % 10 == 9 { "nobody" } else { "acme" };
            let mut event = NewEvent::new(tenant, "t", &format!("{{\"n\":{n}}}"));
            if n % 10 == 3 {
                event.idempotency_key = Some("same".into());
            }
            (n, store.accept_event(event, T0 + n).await)
        });
    }
    let mut created = BTreeSet::new();
    let mut keyed = BTreeSet::new();
    while let Some(joined) = writes.join_next().await {
        let (n, result) = joined.unwrap();
        match n % 10 {
            9 => assert_eq!(result.unwrap_err().kind(), ErrorKind::NotFound, "write {n}"),
            3 => {
                let accepted = result.unwrap();
                assert_eq!(accepted.deliveries, 1, "write {n}");
                keyed.insert(accepted.event.id);
            }
            _ => {
                let accepted = result.unwrap();
                assert!(accepted.created, "write {n}");
                assert_eq!(accepted.event.payload, format!("{{\"n\":{n}}}"));
                assert_eq!(accepted.deliveries, 1);
                created.insert(accepted.event.id);
            }
        }
    }
    assert_eq!(created.len(), 48, "every plain event stored once");
    assert_eq!(keyed.len(), 1, "one event for the repeated key");

    let claimed = store
        .claim_due("w", 100, T0 + 60_000, T0 + 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 49, "one delivery per stored event");
    assert!(claimed.iter().all(|c| c.endpoint_id == endpoint));

    let mut finishes = tokio::task::JoinSet::new();
    for (n, claim) in claimed.into_iter().enumerate() {
        let store = store.clone();
        finishes.spawn(async move {
            // Every fourth finish carries a stale lease, as from a worker that lost it.
            let lease = if n % 4 == 0 {
                "w/stale".to_owned()
            } else {
                claim.lease.clone()
            };
            let at = T0 + 200 + i64::try_from(n).unwrap();
            let outcome = if n % 2 == 0 {
                Outcome::Succeeded
            } else {
                Outcome::RetryAt(at + 5_000)
            };
            let held = store
                .finish_attempt(&claim, &lease, attempt(at, Some(200)), outcome)
                .await
                .unwrap();
            (n, claim.delivery_id, held)
        });
    }
    while let Some(joined) = finishes.join_next().await {
        let (n, delivery_id, held) = joined.unwrap();
        assert_eq!(held, n % 4 != 0, "finish {n}");
        let delivery = store.delivery("acme", &delivery_id).await.unwrap().unwrap();
        let expected = match n {
            _ if n % 4 == 0 => (DeliveryState::Pending, 0),
            _ if n % 2 == 0 => (DeliveryState::Succeeded, 1),
            _ => (DeliveryState::Pending, 1),
        };
        assert_eq!((delivery.state, delivery.attempts), expected, "finish {n}");
        assert_eq!(
            store.attempts("acme", &delivery_id).await.unwrap().len(),
            1,
            "the attempt is logged even when the lease was lost"
        );
    }
}

pub(crate) async fn tokens_are_found_by_hash_listed_and_revoked(store: &Timed) {
    store.create_tenant("acme", T0).await.unwrap();
    let token = |tenant: Option<&str>, hash: &str| NewToken {
        tenant_id: tenant.map(str::to_owned),
        name: "ci".into(),
        prefix: "hrld_ab".into(),
        hash: hash.into(),
    };
    let admin = store
        .create_token(token(None, "h-admin"), T0)
        .await
        .unwrap();
    let acme = store
        .create_token(token(Some("acme"), "h-acme"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .create_token(token(Some("nobody"), "h-x"), T0)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.token_by_hash("h-acme").await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(store.token_by_hash("h-none").await.unwrap(), None);
    assert_eq!(store.tokens(None).await.unwrap(), [admin]);
    assert_eq!(
        store.tokens(Some("acme")).await.unwrap(),
        std::slice::from_ref(&acme)
    );

    assert!(
        !store.revoke_token(None, &acme.id, T0 + 2).await.unwrap(),
        "a tenant's token is not revoked as an admin token"
    );
    assert!(
        store
            .revoke_token(Some("acme"), &acme.id, T0 + 2)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_token(Some("acme"), &acme.id, T0 + 3)
            .await
            .unwrap(),
        "revoked once"
    );
    let revoked = store.token_by_hash("h-acme").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(T0 + 2));
}

pub(crate) async fn endpoints_are_listed_updated_and_deleted_within_their_tenant(store: &Timed) {
    store.create_tenant("acme", T0).await.unwrap();
    store.create_tenant("umbrella", T0).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        let url = format!("https://example.com/{n}");
        let endpoint = NewEndpoint::new("acme", &url, SECRET);
        ids.push(store.create_endpoint(endpoint, T0).await.unwrap().id);
    }
    let theirs = store
        .create_endpoint(
            NewEndpoint::new("umbrella", "https://u.example", SECRET),
            T0,
        )
        .await
        .unwrap();

    let first = store.endpoints("acme", None, 2).await.unwrap();
    let rest = store
        .endpoints("acme", Some(&first[1].id), 10)
        .await
        .unwrap();
    let listed: Vec<_> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        listed, sorted,
        "every endpoint once, in id order, by cursor"
    );

    let patch = EndpointPatch {
        url: Some("https://example.com/new".into()),
        event_types: Some(vec!["new-subscription".into()]),
        enabled: Some(false),
        ..EndpointPatch::default()
    };
    assert_eq!(
        store
            .update_endpoint("acme", &theirs.id, patch.clone(), T0)
            .await
            .unwrap(),
        None,
        "another tenant's endpoint is not found"
    );
    let updated = store
        .update_endpoint("acme", &ids[0], patch, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.url, "https://example.com/new");
    assert_eq!(updated.event_types, ["new-subscription"]);
    assert!(!updated.enabled);
    assert_eq!(
        updated.disabled_reason.as_deref(),
        Some("disabled through the API")
    );
    assert_eq!(updated.description, "", "fields not in the patch are kept");
    let enabled = EndpointPatch {
        enabled: Some(true),
        ..EndpointPatch::default()
    };
    let updated = store
        .update_endpoint("acme", &ids[0], enabled, T0 + 2)
        .await
        .unwrap()
        .unwrap();
    assert!(updated.enabled);
    assert_eq!(updated.disabled_reason, None);

    assert!(!store.delete_endpoint("acme", &theirs.id).await.unwrap());
    assert!(store.delete_endpoint("acme", &ids[1]).await.unwrap());
    assert_eq!(store.endpoint("acme", &ids[1]).await.unwrap(), None);
    assert!(
        store
            .endpoint("umbrella", &theirs.id)
            .await
            .unwrap()
            .is_some()
    );
}
