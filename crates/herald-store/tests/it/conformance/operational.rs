//! Operational events: written with the attempts that cause them, to the endpoints that asked
//! for them (the tenant's and the operator's), never caused by their own delivery.

use herald_store::operational::{self, OPERATOR};
use herald_store::{Claimed, ErrorKind, EventFilter, NewEndpoint, NewEvent, Outcome};
use serde_json::Value;

use super::{SECRET, T0, attempt};
use crate::timed::{Timed, finish};

const ASKED: [&str; 5] = operational::TYPES;

async fn endpoint(store: &Timed, tenant: &str, url: &str, types: &[&str]) -> String {
    let mut new = NewEndpoint::new(tenant, url, SECRET);
    new.event_types = types.iter().map(|t| (*t).to_owned()).collect();
    store.create_endpoint(new, T0).await.unwrap().id
}

/// Claims everything due at `now`, then records each claim's attempt with `outcome`.
async fn drain(store: &Timed, now: i64, outcome: Outcome, status: Option<u16>) -> Vec<Claimed> {
    let claimed = store.claim_due("w", 50, now + 60_000, now).await.unwrap();
    for claim in &claimed {
        store
            .finish_attempt(claim, &claim.lease, attempt(now, status), outcome)
            .await
            .unwrap();
    }
    claimed
}

/// The operational claims among `claimed`: (endpoint, type, payload).
fn notices(claimed: &[Claimed]) -> Vec<(String, String, Value)> {
    let mut notices: Vec<_> = claimed
        .iter()
        .filter(|c| operational::is_operational(&c.event_type))
        .map(|c| {
            let payload = serde_json::from_str(&c.payload).unwrap();
            (c.endpoint_id.clone(), c.event_type.clone(), payload)
        })
        .collect();
    notices.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    notices
}

pub(crate) async fn operational_events_tell_both_the_tenant_and_the_operator(store: &Timed) {
    let taken = store.create_tenant(OPERATOR, T0).await.unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::Conflict, "every database has it");
    store.create_tenant("acme", T0).await.unwrap();
    let app = endpoint(store, "acme", "https://acme.example/hook", &[]).await;
    let own = endpoint(store, "acme", "https://acme.example/ops", &ASKED).await;
    let operator = endpoint(store, OPERATOR, "https://ops.example/hook", &ASKED).await;
    let expected_for = |event_type: &str| {
        let mut both = vec![
            (own.clone(), event_type.to_owned()),
            (operator.clone(), event_type.to_owned()),
        ];
        both.sort();
        both
    };

    // The first failure after a success: endpoint.failing, to both; not to the endpoint that
    // takes every type without naming these.
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap();
    let first = drain(store, T0 + 10, Outcome::RetryAt(T0 + 5_000), Some(503)).await;
    assert_eq!(first.len(), 1);
    let told = notices(&drain(store, T0 + 100, Outcome::Dead, None).await);
    let kinds: Vec<_> = told
        .iter()
        .map(|(e, t, _)| (e.clone(), t.clone()))
        .collect();
    assert_eq!(kinds, expected_for(operational::ENDPOINT_FAILING));
    for (_, _, payload) in &told {
        assert_eq!(payload["tenant"], "acme");
        assert_eq!(payload["endpoint_id"], app.as_str());
        assert_eq!(payload["url"], "https://acme.example/hook");
        assert_eq!(payload["failures"], 1);
        assert_eq!(payload["circuit_open"], false);
        assert_eq!(payload["last_attempt"]["status_code"], 503);
        assert!(payload["failing_since"].as_str().unwrap().ends_with('Z'));
    }

    // Those two just died at the operator's endpoints, which failed too: nothing about them.
    assert!(
        notices(&drain(store, T0 + 200, Outcome::Succeeded, Some(200)).await).is_empty(),
        "an operational delivery's own failure and death are not told"
    );

    // The retry succeeds: endpoint.recovered.
    let recovered = drain(store, T0 + 5_000, Outcome::Succeeded, Some(200)).await;
    assert_eq!(recovered.len(), 1);
    let told = notices(&drain(store, T0 + 5_100, Outcome::Succeeded, Some(200)).await);
    let kinds: Vec<_> = told
        .iter()
        .map(|(e, t, _)| (e.clone(), t.clone()))
        .collect();
    assert_eq!(kinds, expected_for(operational::ENDPOINT_RECOVERED));
    assert_eq!(told[0].2["failures"], 1);

    // A delivery given up: delivery.dead (and endpoint.failing, a new streak).
    let dead = store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0 + 6_000)
        .await
        .unwrap()
        .event;
    drain(store, T0 + 6_010, Outcome::Dead, Some(500)).await;
    let told = notices(&drain(store, T0 + 6_100, Outcome::Succeeded, Some(200)).await);
    let of = |event_type: &str| -> Vec<&Value> {
        told.iter()
            .filter(|(_, t, _)| t == event_type)
            .map(|(_, _, p)| p)
            .collect()
    };
    assert_eq!(of(operational::ENDPOINT_FAILING).len(), 2);
    let deaths = of(operational::DELIVERY_DEAD);
    assert_eq!(deaths.len(), 2, "{told:?}");
    assert_eq!(deaths[0]["event_id"], dead.id.as_str());
    assert_eq!(deaths[0]["event_type"], "t");
    assert_eq!(deaths[0]["attempts"], 1);
    assert_eq!(deaths[0]["last_attempt"]["status_code"], 500);

    // 410 Gone: endpoint.disabled with its reason (and delivery.dead), not "failing".
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0 + 7_000)
        .await
        .unwrap();
    let gone = store
        .claim_due("w", 50, T0 + 70_000, T0 + 7_010)
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    let mut last = finish(
        &gone[0],
        &gone[0].lease,
        attempt(T0 + 7_010, Some(410)),
        Outcome::Dead,
    );
    last.gone = true;
    assert!(store.finish(last).await.unwrap().disabled.is_some());
    let told = notices(&drain(store, T0 + 7_100, Outcome::Succeeded, Some(200)).await);
    let mut kinds: Vec<_> = told
        .iter()
        .map(|(e, t, _)| (e.clone(), t.clone()))
        .collect();
    kinds.sort();
    let mut expected = expected_for(operational::DELIVERY_DEAD);
    expected.extend(expected_for(operational::ENDPOINT_DISABLED));
    expected.sort();
    assert_eq!(kinds, expected);
    let disabled = told
        .iter()
        .find(|(_, t, _)| t == operational::ENDPOINT_DISABLED)
        .unwrap();
    assert_eq!(disabled.2["reason"], "the endpoint answered 410 Gone");
    assert_eq!(disabled.2["last_attempt"]["status_code"], 410);

    // Each is an event of its own tenant: acme's log has acme's, the operator's has its own.
    let filter = |t: &str| EventFilter {
        event_type: Some(t.to_owned()),
        ..EventFilter::default()
    };
    for tenant in ["acme", OPERATOR] {
        let disabled = store
            .events(tenant, &filter(operational::ENDPOINT_DISABLED), None, 10)
            .await
            .unwrap();
        assert_eq!(disabled.len(), 1, "{tenant}");
        assert_eq!(disabled[0].tenant_id, tenant);
    }
}

pub(crate) async fn operational_events_are_stored_only_for_those_who_ask(store: &Timed) {
    store.create_tenant("quiet", T0).await.unwrap();
    endpoint(store, "quiet", "https://quiet.example/hook", &[]).await;
    // Another tenant asking for every operational type hears only of its own endpoints.
    store.create_tenant("nosy", T0).await.unwrap();
    endpoint(store, "nosy", "https://nosy.example/ops", &ASKED).await;
    store
        .accept_event(NewEvent::new("quiet", "t", "{}"), T0)
        .await
        .unwrap();
    drain(store, T0 + 10, Outcome::Dead, None).await;
    assert!(
        store
            .claim_due("w", 50, T0 + 60_000, T0 + 100)
            .await
            .unwrap()
            .is_empty(),
        "nothing for anyone to send"
    );
    for tenant in ["quiet", "nosy", OPERATOR] {
        let events = store
            .events(tenant, &EventFilter::default(), None, 10)
            .await
            .unwrap();
        let operational: Vec<_> = events
            .iter()
            .filter(|e| operational::is_operational(&e.event_type))
            .collect();
        assert!(operational.is_empty(), "{tenant}: {operational:?}");
    }
}

pub(crate) async fn a_finished_replay_is_told(store: &Timed) {
    store.create_tenant("acme", T0).await.unwrap();
    let app = endpoint(store, "acme", "https://acme.example/hook", &["t"]).await;
    let operator = endpoint(
        store,
        OPERATOR,
        "https://ops.example/hook",
        &[operational::REPLAY_FINISHED],
    )
    .await;
    for n in 0..3 {
        store
            .accept_event(NewEvent::new("acme", "t", "{}"), T0 + n)
            .await
            .unwrap();
    }
    drain(store, T0 + 10, Outcome::Succeeded, Some(200)).await;
    let replay = store
        .create_replay("acme", &app, T0, T0 + 100)
        .await
        .unwrap()
        .unwrap();
    // Past the replay's settling time, so its last look ends it.
    let mut now = T0 + 10_000;
    let mut step = store.replay_step(&replay.id, 100, now).await.unwrap();
    while step.state == herald_store::ReplayState::Running {
        now += 1_000;
        step = store.replay_step(&replay.id, 100, now).await.unwrap();
    }
    let claimed = drain(store, now + 10, Outcome::Succeeded, Some(200)).await;
    let told = notices(&claimed);
    assert_eq!(told.len(), 1, "{told:?}");
    let (to, event_type, payload) = &told[0];
    assert_eq!((to, event_type.as_str()), (&operator, "replay.finished"));
    assert_eq!(payload["replay_id"], replay.id.as_str());
    assert_eq!(payload["endpoint_id"], app.as_str());
    assert_eq!(payload["events"], 3);
    assert_eq!(claimed.len(), 4, "the three events again, and the notice");
}
