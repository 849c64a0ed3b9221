//! The scheduler: endpoints in turn, no more from each than the worker can start, rate limits,
//! circuit breakers and ordering keys.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use herald_store::{ClaimRequest, Claimed, EndpointPatch, NewEndpoint, NewEvent, Outcome};

use super::{SECRET, T0, attempt};
use crate::timed::Timed;

/// A worker's claim: `limit` in all, `capacity` per endpoint unless `remaining` says.
fn request(limit: u32, capacity: u32, remaining: &[(&str, u32)]) -> ClaimRequest {
    ClaimRequest {
        worker: "w".into(),
        limit,
        capacity,
        remaining: remaining
            .iter()
            .map(|(e, n)| ((*e).to_owned(), *n))
            .collect(),
        lease: Duration::from_secs(60),
    }
}

/// Endpoints of tenant `acme`, each for its own event type `t0`, `t1`…, so an event reaches
/// one endpoint.
async fn endpoints(store: &Timed, n: usize, rate_limit: Option<u32>) -> Vec<String> {
    store.create_tenant("acme", T0).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let mut new = NewEndpoint::new("acme", &format!("https://example.com/{i}"), SECRET);
        new.event_types = vec![format!("t{i}")];
        new.rate_limit = rate_limit;
        ids.push(store.create_endpoint(new, T0).await.unwrap().id);
    }
    ids
}

async fn send(store: &Timed, endpoint: usize, count: usize, at: i64) {
    for _ in 0..count {
        let event = NewEvent::new("acme", &format!("t{endpoint}"), "{}");
        store.accept_event(event, at).await.unwrap();
    }
}

fn per_endpoint(claimed: &[Claimed]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in claimed {
        *counts.entry(c.endpoint_id.clone()).or_default() += 1;
    }
    counts
}

pub(crate) async fn endpoints_take_turns_and_give_no_more_than_can_start(store: &Timed) {
    let ids = endpoints(store, 3, None).await;
    send(store, 0, 100, T0).await; // a backlog
    send(store, 1, 5, T0 + 1).await;
    send(store, 2, 2, T0 + 2).await;

    // Each endpoint gives at most what the worker can start to it now.
    let claimed = store.claim(&request(20, 4, &[]), T0 + 10).await.unwrap();
    assert_eq!(
        per_endpoint(&claimed),
        BTreeMap::from([
            (ids[0].clone(), 4),
            (ids[1].clone(), 4),
            (ids[2].clone(), 2)
        ]),
        "the backlog of one does not crowd out the others"
    );
    // An endpoint the worker has no room for is passed over; the others go on.
    let claimed = store
        .claim(&request(20, 4, &[(ids[0].as_str(), 0)]), T0 + 11)
        .await
        .unwrap();
    assert_eq!(
        per_endpoint(&claimed),
        BTreeMap::from([(ids[1].clone(), 1)])
    );
    // Endpoints with due work take turns: one each, round and round.
    let mut order = Vec::new();
    send(store, 1, 3, T0 + 12).await;
    send(store, 2, 3, T0 + 12).await;
    for n in 0..6 {
        let one = store.claim(&request(1, 1, &[]), T0 + 20 + n).await.unwrap();
        order.push(one[0].endpoint_id.clone());
    }
    let distinct: BTreeSet<_> = order[..3].iter().collect();
    assert_eq!(distinct.len(), 3, "three endpoints, three turns: {order:?}");
    assert_eq!(order[..3], order[3..], "then round again: {order:?}");
}

/// A claim of more deliveries than are read in the writer's transaction (on SQLite, 16) reads
/// what they send after its commit, on a reader (on SQLite through the reader's borrowed
/// handle): every delivery with its own event, payload, endpoint and secret, in the order
/// claimed, which for one endpoint is the order of acceptance.
pub(crate) async fn a_large_claim_reads_what_each_delivery_sends(store: &Timed) {
    let ids = endpoints(store, 2, None).await;
    let mut accepted = Vec::new();
    for n in 0..40 {
        let endpoint = n % 2;
        let payload = format!(r#"{{"n":{n},"text":"é\u0000 {}"}}"#, "x".repeat(n));
        let event = NewEvent::new("acme", &format!("t{endpoint}"), &payload);
        let at = T0 + i64::try_from(n).unwrap();
        let event = store.accept_event(event, at).await.unwrap().event;
        accepted.push((event.id, payload, ids[endpoint].clone()));
    }
    let claimed = store.claim(&request(64, 64, &[]), T0 + 40).await.unwrap();
    assert_eq!(claimed.len(), 40);
    let mut seen: Vec<_> = claimed
        .iter()
        .map(|c| {
            assert_eq!(c.secrets, [SECRET]);
            assert_eq!(c.attempts, 0);
            assert!(c.url.starts_with("https://example.com/"));
            (c.event_id.clone(), c.payload.clone(), c.endpoint_id.clone())
        })
        .collect();
    // Endpoints take turns; each one's deliveries come in the order they were accepted.
    for endpoint in &ids {
        let mine = |list: &[(String, String, String)]| -> Vec<_> {
            list.iter()
                .filter(|(_, _, e)| e == endpoint)
                .cloned()
                .collect()
        };
        assert_eq!(mine(&seen), mine(&accepted));
    }
    seen.sort();
    accepted.sort();
    assert_eq!(seen, accepted);
}

pub(crate) async fn a_claim_says_when_to_look_again(store: &Timed) {
    let ids = endpoints(store, 1, None).await;
    let limited = {
        let mut new = NewEndpoint::new("acme", "https://example.com/limited", SECRET);
        new.event_types = vec!["limited".into()];
        new.rate_limit = Some(20);
        store.create_endpoint(new, T0).await.unwrap().id
    };
    let nothing = store
        .claim_with_next_turn(&request(20, 4, &[]), T0 + 1)
        .await
        .unwrap();
    assert!(nothing.deliveries.is_empty());
    assert_eq!(nothing.next_turn, None, "nothing pending: sleep until told");

    send(store, 0, 10, T0 + 2).await;
    // Cut by the claim's limit, with room left for the endpoint: more is due now.
    let cut = store
        .claim_with_next_turn(&request(3, 20, &[]), T0 + 10)
        .await
        .unwrap();
    assert_eq!(cut.deliveries.len(), 3);
    assert_eq!(cut.next_turn, Some(T0 + 10));
    // Filled to what the worker can start to it: its backlog waits for a slot, not a turn.
    let filled = store
        .claim_with_next_turn(&request(20, 4, &[]), T0 + 11)
        .await
        .unwrap();
    assert_eq!(
        per_endpoint(&filled.deliveries),
        BTreeMap::from([(ids[0].clone(), 4)])
    );
    assert_eq!(filled.next_turn, None, "{:?}", filled.next_turn);

    // A rate limit's next token: 20 a second, a burst of two, then one every 50 ms.
    for _ in 0..5 {
        store
            .accept_event(NewEvent::new("acme", "limited", "{}"), T0 + 20)
            .await
            .unwrap();
    }
    let room = [(ids[0].as_str(), 0)];
    let burst = store
        .claim_with_next_turn(&request(20, 20, &room), T0 + 30)
        .await
        .unwrap();
    assert_eq!(
        per_endpoint(&burst.deliveries),
        BTreeMap::from([(limited.clone(), 2)])
    );
    let waiting = store
        .claim_with_next_turn(&request(20, 20, &room), T0 + 31)
        .await
        .unwrap();
    assert!(waiting.deliveries.is_empty());
    let turn = waiting
        .next_turn
        .expect("the limited endpoint's next token");
    assert!(
        (T0 + 70..=T0 + 90).contains(&turn),
        "one token every 50 ms: {turn} after {T0}"
    );
}

pub(crate) async fn rate_limits_hold_across_claims(store: &Timed) {
    // 20 a second: a burst of two (a tenth of a second's worth), then one every 50 ms.
    let limited = endpoints(store, 1, Some(20)).await;
    let mut free = NewEndpoint::new("acme", "https://example.com/free", SECRET);
    free.event_types = vec!["free".into()];
    let free = store.create_endpoint(free, T0).await.unwrap().id;
    send(store, 0, 50, T0).await;
    for _ in 0..5 {
        store
            .accept_event(NewEvent::new("acme", "free", "{}"), T0)
            .await
            .unwrap();
    }

    let mut sent = 0;
    let mut claims = Vec::new();
    // A second of claims, every 10 ms, with room for everything.
    for step in 0..=100 {
        let now = T0 + 1_000 + step * 10;
        let claimed = store.claim(&request(100, 100, &[]), now).await.unwrap();
        let counts = per_endpoint(&claimed);
        let mine = counts.get(&limited[0]).copied().unwrap_or(0);
        sent += mine;
        claims.push((now, mine));
        if step == 0 {
            assert_eq!(
                counts.get(&free),
                Some(&5),
                "the unlimited endpoint is not held back"
            );
        }
    }
    assert!(
        (20..=23).contains(&sent),
        "at most 20 a second and a burst of 2: {sent} in {claims:?}"
    );
    let in_first_100ms: usize = claims[..10].iter().map(|(_, n)| n).sum();
    assert!(in_first_100ms <= 4, "{claims:?}");

    // Lifting the limit lets the rest go at once.
    let patch = EndpointPatch {
        rate_limit: Some(None),
        ..EndpointPatch::default()
    };
    store
        .update_endpoint("acme", &limited[0], patch, T0 + 2_100)
        .await
        .unwrap();
    let rest = store
        .claim(&request(100, 100, &[]), T0 + 2_200)
        .await
        .unwrap();
    assert_eq!(rest.len(), 50 - sent);
}

/// A probe whose lease is handed back without an attempt (its worker stopped, or the database
/// lost the worker's registration and another process reaped it) must not hold the circuit
/// until the lease would have run out: the next claim probes again. Found by the outage test,
/// where a reaped probe kept an endpoint silent for its whole 60 s lease.
pub(crate) async fn a_probe_handed_back_lets_the_next_claim_probe_at_once(store: &Timed) {
    endpoints(store, 1, None).await;
    send(store, 0, 10, T0).await;
    let mut now = T0 + 1_000;
    let claimed = store.claim(&request(5, 5, &[]), now).await.unwrap();
    for c in &claimed {
        now += 10;
        let failed = attempt(now, Some(503));
        let retry = Outcome::RetryAt(now);
        store.record(c, failed, retry).await;
    }
    let probe = store
        .claim(&request(100, 100, &[]), now + 1_100)
        .await
        .unwrap();
    assert_eq!(probe.len(), 1, "one probe");
    store.clock.set(now + 1_150);
    assert_eq!(
        store.release("w").await.unwrap(),
        1,
        "the probe is handed back"
    );
    let again = store
        .claim(&request(100, 100, &[]), now + 1_200)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the next claim probes again");
}

/// A half-open circuit's probe is counted only when a delivery goes. Found with fewer spare
/// candidates per claim: a probe claim whose only due delivery had to wait for its ordering key
/// took nothing, yet marked the probe as out for a whole lease, so the endpoint's retries waited
/// a minute (`herald-server`'s ordering test stalled past 30 s).
pub(crate) async fn a_probe_that_sends_nothing_leaves_the_circuit_half_open(store: &Timed) {
    endpoints(store, 1, None).await;
    let keyed = |n: u32| NewEvent {
        ordering_key: Some("k".into()),
        ..NewEvent::new("acme", "t0", &format!("{{\"k\":{n}}}"))
    };
    send(store, 0, 4, T0).await;
    store.accept_event(keyed(1), T0 + 1).await.unwrap();
    let mut now = T0 + 1_000;
    let claimed = store.claim(&request(5, 5, &[]), now).await.unwrap();
    assert_eq!(claimed.len(), 5);
    // k2 comes after the claim, so it is due, not yet set aside behind k1.
    store.accept_event(keyed(2), now + 1).await.unwrap();
    let k1_again = T0 + 5_000;
    for c in &claimed {
        now += 10;
        let retry = if c.payload == "{\"k\":1}" {
            k1_again
        } else {
            T0 + 3_600_000
        };
        store
            .record(c, attempt(now, Some(503)), Outcome::RetryAt(retry))
            .await;
    }
    // Half open: the only due delivery is k2, which waits for k1 (retrying): nothing goes.
    let nothing = store
        .claim(&request(100, 100, &[]), now + 1_100)
        .await
        .unwrap();
    assert!(nothing.is_empty(), "k2 waits for k1");
    // When k1's retry comes, it is the probe.
    let probe = store
        .claim(&request(100, 100, &[]), k1_again + 100)
        .await
        .unwrap();
    assert_eq!(
        probe.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(),
        ["{\"k\":1}"],
        "the circuit is still half open: k1 goes as its probe"
    );
}

/// Until when endpoint `id`'s circuit is open, as its API shows it at `at` (one by one and
/// listed alike).
async fn circuit(store: &Timed, id: &str, at: i64) -> Option<i64> {
    store.clock.set(at);
    let endpoint = store.endpoint("acme", id).await.unwrap().unwrap();
    let listed = store.endpoints("acme", None, 10).await.unwrap();
    let listed = listed.iter().find(|e| e.id == id).unwrap();
    assert_eq!(listed.circuit_open_until, endpoint.circuit_open_until);
    endpoint.circuit_open_until
}

pub(crate) async fn a_failing_endpoint_gets_one_probe_at_a_time(store: &Timed) {
    let ids = endpoints(store, 2, None).await;
    send(store, 0, 30, T0).await;
    let mut now = T0 + 1_000;
    // Five failures in a row open the circuit.
    let claimed = store.claim(&request(5, 5, &[]), now).await.unwrap();
    assert_eq!(claimed.len(), 5);
    for c in &claimed {
        now += 10;
        let failed = attempt(now, Some(503));
        store.record(c, failed, Outcome::RetryAt(now)).await;
    }
    send(store, 1, 1, now).await;
    let open = store
        .claim(&request(100, 100, &[]), now + 20)
        .await
        .unwrap();
    assert_eq!(
        per_endpoint(&open),
        BTreeMap::from([(ids[1].clone(), 1)]),
        "while open, nothing for it (and the other endpoint is served)"
    );
    let until = circuit(store, &ids[0], now + 20)
        .await
        .expect("its circuit shows as open");
    assert!(until > now + 20, "until a time to come");
    assert_eq!(
        circuit(store, &ids[0], until).await,
        None,
        "not open once that time has come"
    );
    assert_eq!(
        store
            .endpoint("acme", &ids[1])
            .await
            .unwrap()
            .unwrap()
            .circuit_open_until,
        None,
        "the healthy endpoint's is closed"
    );
    // After a second, one probe; no second one while it is out.
    let probe = store
        .claim(&request(100, 100, &[]), now + 1_100)
        .await
        .unwrap();
    assert_eq!(probe.len(), 1, "one probe");
    let none = store
        .claim(&request(100, 100, &[]), now + 1_200)
        .await
        .unwrap();
    assert!(none.is_empty(), "one probe at a time");
    // The probe fails: open again, for longer.
    let at = now + 1_300;
    store
        .record(&probe[0], attempt(at, None), Outcome::RetryAt(at))
        .await;
    let closed_for_a_while = store
        .claim(&request(100, 100, &[]), at + 1_500)
        .await
        .unwrap();
    assert!(
        closed_for_a_while.is_empty(),
        "a failed probe doubles the pause"
    );
    // A test event half-opens it at once: a user checking a mended endpoint does not wait.
    store
        .accept_test_event(NewEvent::new("acme", "t0", "{}"), &ids[0], at + 1_600)
        .await
        .unwrap()
        .unwrap();
    let probe = store
        .claim(&request(100, 100, &[]), at + 1_610)
        .await
        .unwrap();
    assert_eq!(probe.len(), 1, "a test makes the probe go now");
    // The probe succeeds: the circuit closes and the endpoint gets all it can take.
    let at = at + 2_200;
    store
        .record(&probe[0], attempt(at, Some(200)), Outcome::Succeeded)
        .await;
    let all = store.claim(&request(100, 100, &[]), at + 20).await.unwrap();
    assert_eq!(
        all.len(),
        30,
        "everything still pending, the test event too"
    );
}

/// Attempts herald itself cut off (it was stopping, or lost its registration while the
/// database was away) say nothing of the endpoint: they are due again at once, and open no
/// circuit, however many there were. Found by the PostgreSQL outage test: a worker that noticed
/// its lost registration only after the database came back cut off 64 attempts to a healthy
/// receiver, and the circuit they opened held its deliveries back for a minute.
pub(crate) async fn interrupted_attempts_are_not_the_endpoints_failures(store: &Timed) {
    let ids = endpoints(store, 1, None).await;
    send(store, 0, 12, T0).await;
    let now = T0 + 1_000;
    let claimed = store.claim(&request(12, 12, &[]), now).await.unwrap();
    assert_eq!(claimed.len(), 12);
    let cut = now + 50;
    for c in &claimed {
        store
            .record(c, interrupted(now, cut), Outcome::Interrupted)
            .await;
    }
    let again = store.claim(&request(100, 100, &[]), cut + 1).await.unwrap();
    assert_eq!(
        per_endpoint(&again),
        BTreeMap::from([(ids[0].clone(), 12)]),
        "all due again at once, no circuit open"
    );
    let health = store.endpoint("acme", &ids[0]).await.unwrap().unwrap();
    assert_eq!(health.failing_since, None, "no failure streak: {health:?}");
}

fn interrupted(started_at: i64, cut: i64) -> herald_store::Attempt {
    herald_store::Attempt {
        started_at,
        duration_ms: cut - started_at,
        status_code: None,
        response_excerpt: None,
        error: Some("interrupted: herald stopped during the attempt".into()),
        request_headers: BTreeMap::new(),
        response_headers: BTreeMap::new(),
    }
}

pub(crate) async fn ordering_keys_go_one_at_a_time_in_acceptance_order(store: &Timed) {
    endpoints(store, 1, None).await;
    let keyed = |key: &str, n: u32| NewEvent {
        ordering_key: Some(key.into()),
        ..NewEvent::new("acme", "t0", &format!("{{\"{key}\":{n}}}"))
    };
    for n in 1..=3 {
        store
            .accept_event(keyed("k", n), T0 + i64::from(n))
            .await
            .unwrap();
    }
    store
        .accept_event(NewEvent::new("acme", "t0", "{\"free\":1}"), T0 + 4)
        .await
        .unwrap();
    for n in 1..=2 {
        store.accept_event(keyed("l", n), T0 + 5).await.unwrap();
    }
    let payloads = |claimed: &[Claimed]| -> BTreeSet<String> {
        claimed.iter().map(|c| c.payload.clone()).collect()
    };

    let first = store.claim(&request(100, 100, &[]), T0 + 10).await.unwrap();
    assert_eq!(
        payloads(&first),
        BTreeSet::from([
            "{\"k\":1}".to_owned(),
            "{\"free\":1}".to_owned(),
            "{\"l\":1}".to_owned()
        ]),
        "one per key; unkeyed events are not held back"
    );
    assert!(
        store
            .claim(&request(100, 100, &[]), T0 + 20)
            .await
            .unwrap()
            .is_empty(),
        "the rest wait for the ones in flight"
    );
    let of = |claimed: &[Claimed], payload: &str| {
        claimed
            .iter()
            .find(|c| c.payload == payload)
            .unwrap()
            .clone()
    };
    // k1 fails: k2 waits for its retry.
    let k1 = of(&first, "{\"k\":1}");
    store
        .record(
            &k1,
            attempt(T0 + 30, Some(500)),
            Outcome::RetryAt(T0 + 5_000),
        )
        .await;
    // l1 succeeds: l2 is next.
    let l1 = of(&first, "{\"l\":1}");
    store
        .record(&l1, attempt(T0 + 30, Some(200)), Outcome::Succeeded)
        .await;
    let next = store
        .claim(&request(100, 100, &[]), T0 + 100)
        .await
        .unwrap();
    assert_eq!(payloads(&next), BTreeSet::from(["{\"l\":2}".to_owned()]));
    // k1's retry comes due; only then k2, then k3.
    let retry = store
        .claim(&request(100, 100, &[]), T0 + 5_000)
        .await
        .unwrap();
    assert_eq!(payloads(&retry), BTreeSet::from(["{\"k\":1}".to_owned()]));
    let mut delivered = vec!["{\"k\":1}".to_owned()];
    let mut current = retry[0].clone();
    let mut now = T0 + 5_010;
    loop {
        store
            .record(&current, attempt(now, Some(200)), Outcome::Succeeded)
            .await;
        // Recorded at the attempt's end (12 ms in): the next is due from then.
        let next = store
            .claim(&request(100, 100, &[]), now + 20)
            .await
            .unwrap();
        if next.is_empty() {
            break;
        }
        assert_eq!(next.len(), 1);
        current = next[0].clone();
        delivered.push(current.payload.clone());
        now += 30;
    }
    assert_eq!(delivered, ["{\"k\":1}", "{\"k\":2}", "{\"k\":3}"]);
}

/// Events accepted while claims run (from other tasks, truly in parallel): none is left due
/// with its endpoint out of line, so every one is claimed in the end.
pub(crate) async fn events_accepted_during_claims_are_never_left_behind(store: &Timed) {
    endpoints(store, 1, None).await;
    let accepting = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..300 {
                let event = NewEvent::new("acme", "t0", &format!("{{\"n\":{n}}}"));
                store.store.accept_event(event).await.unwrap();
            }
        })
    };
    let mut claimed = 0;
    let mut now = T0 + 1_000;
    loop {
        let done = accepting.is_finished();
        let batch = store.claim(&request(7, 7, &[]), now).await.unwrap();
        for c in &batch {
            store
                .record(c, attempt(now, Some(200)), Outcome::Succeeded)
                .await;
        }
        claimed += batch.len();
        now += 20;
        if done && batch.is_empty() {
            break;
        }
    }
    accepting.await.unwrap();
    assert_eq!(claimed, 300, "every accepted event was claimed");
}
