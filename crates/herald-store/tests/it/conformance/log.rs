//! The delivery log: listing with filters and cursors, retrying, the chart's figures, replays.

use crate::timed::{Timed, finish};
use herald_store::{
    Attempt, DeliveryFilter, DeliveryState, EndpointPatch, ErrorKind, EventFilter, NewEndpoint,
    NewEvent, Outcome, ReplayState,
};

use super::{SECRET, T0, attempt, tenant_with_endpoint};

/// Accepts `count` events of `event_type` for `tenant`, one millisecond apart from `at`.
async fn accept(store: &Timed, tenant: &str, event_type: &str, count: i64, at: i64) {
    for i in 0..count {
        store
            .accept_event(NewEvent::new(tenant, event_type, "{}"), at + i)
            .await
            .unwrap();
    }
}

/// The ids of `tenant`'s deliveries matching `filter`, read page after page of `size`, each
/// page starting after the last one's final id; no page is longer than asked.
async fn every_page(
    store: &Timed,
    tenant: &str,
    filter: &DeliveryFilter,
    size: u32,
) -> Vec<String> {
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = store
            .deliveries(tenant, filter, before.as_deref(), size)
            .await
            .unwrap();
        assert!(page.len() <= size as usize);
        let Some(last) = page.last() else { break };
        before = Some(last.id.clone());
        paged.extend(page.into_iter().map(|d| d.id));
    }
    paged
}

/// A tenant's deliveries are read endpoint by endpoint and merged: pages of three, each event
/// going to one endpoint or both, follow one another newest first across all its endpoints,
/// nothing missed or repeated; an endpoint another tenant owns lists nothing.
pub(crate) async fn deliveries_page_newest_first_across_endpoints(store: &Timed) {
    let first = tenant_with_endpoint(store, "acme").await;
    let mut second = NewEndpoint::new("acme", "https://example.com/b", SECRET);
    second.event_types = vec!["b".into()];
    let second = store.create_endpoint(second, T0).await.unwrap().id;
    tenant_with_endpoint(store, "other").await;
    for i in 0..4 {
        accept(store, "acme", "a", 1, T0 + 10 * i).await;
        accept(store, "acme", "b", 1, T0 + 10 * i + 5).await;
        accept(store, "other", "b", 1, T0 + 10 * i + 6).await;
    }
    let all = store
        .deliveries("acme", &DeliveryFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 12, "4 a to the first, 4 b to each");
    let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
    let mut newest_first = ids.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first);
    assert!(
        all.iter().any(|d| d.endpoint_id == second) && all.iter().any(|d| d.endpoint_id == first)
    );

    let paged = every_page(store, "acme", &DeliveryFilter::default(), 3).await;
    assert_eq!(
        paged, ids,
        "the pages, one after another, are the whole list"
    );

    let of_b = DeliveryFilter {
        event_type: Some("b".into()),
        ..DeliveryFilter::default()
    };
    let page = store.deliveries("acme", &of_b, None, 5).await.unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|d| d.event_type == "b"));
    let to_acme = DeliveryFilter {
        endpoint_id: Some(first),
        ..DeliveryFilter::default()
    };
    assert!(
        store
            .deliveries("other", &to_acme, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A tenant with more endpoints than are merged one by one has its deliveries read through
/// its events instead: pages follow one another newest first all the same, nothing missed or
/// repeated, and an endpoint's filter still holds.
pub(crate) async fn a_tenant_with_many_endpoints_pages_its_deliveries_newest_first(store: &Timed) {
    let first = tenant_with_endpoint(store, "acme").await;
    for i in 1..70 {
        let endpoint = NewEndpoint::new("acme", &format!("https://example.com/{i}"), SECRET);
        store.create_endpoint(endpoint, T0).await.unwrap();
    }
    tenant_with_endpoint(store, "other").await;
    accept(store, "acme", "a", 2, T0 + 10).await;
    accept(store, "other", "a", 1, T0 + 20).await;
    let paged = every_page(store, "acme", &DeliveryFilter::default(), 25).await;
    assert_eq!(paged.len(), 140, "two events to 70 endpoints");
    let mut newest_first = paged.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    newest_first.dedup();
    assert_eq!(paged, newest_first);
    let to_first = DeliveryFilter {
        endpoint_id: Some(first),
        ..DeliveryFilter::default()
    };
    let page = store.deliveries("acme", &to_first, None, 25).await.unwrap();
    assert_eq!(page.len(), 2);
}

pub(crate) async fn events_and_deliveries_are_listed_newest_first_with_filters(store: &Timed) {
    let first = tenant_with_endpoint(store, "acme").await;
    let mut second = NewEndpoint::new("acme", "https://example.com/b", SECRET);
    second.event_types = vec!["b".into()];
    let second = store.create_endpoint(second, T0).await.unwrap().id;
    tenant_with_endpoint(store, "other").await;
    accept(store, "acme", "a", 3, T0).await;
    accept(store, "acme", "b", 2, T0 + 10).await;
    accept(store, "other", "a", 4, T0).await;

    let all = store
        .events("acme", &EventFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 5, "only the tenant's own");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let page = store
        .events("acme", &EventFilter::default(), Some(&all[1].id), 2)
        .await
        .unwrap();
    assert_eq!(
        page,
        all[2..4],
        "the cursor continues after the last row seen"
    );
    let of_b = EventFilter {
        event_type: Some("b".into()),
        ..EventFilter::default()
    };
    assert_eq!(
        store.events("acme", &of_b, None, 100).await.unwrap().len(),
        2
    );
    let window = EventFilter {
        since: Some(T0 + 1),
        until: Some(T0 + 11),
        ..EventFilter::default()
    };
    assert_eq!(
        store
            .events("acme", &window, None, 100)
            .await
            .unwrap()
            .len(),
        3
    );

    let deliveries = store
        .deliveries("acme", &DeliveryFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(
        deliveries.len(),
        7,
        "3 a + 2 b to the first, 2 b to the second"
    );
    assert!(deliveries.iter().all(|d| d.state == DeliveryState::Pending));
    let to_second = DeliveryFilter {
        endpoint_id: Some(second.clone()),
        ..DeliveryFilter::default()
    };
    let listed = store
        .deliveries("acme", &to_second, None, 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|d| d.event_type == "b" && d.endpoint_id == second)
    );
    let of_a_to_first = DeliveryFilter {
        endpoint_id: Some(first),
        event_type: Some("a".into()),
        ..DeliveryFilter::default()
    };
    assert_eq!(
        store
            .deliveries("acme", &of_a_to_first, None, 100)
            .await
            .unwrap()
            .len(),
        3
    );
    let of_event = DeliveryFilter {
        event_id: Some(all[0].id.clone()),
        ..DeliveryFilter::default()
    };
    assert_eq!(
        store
            .deliveries("acme", &of_event, None, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .deliveries("other", &to_second, None, 100)
            .await
            .unwrap()
            .is_empty(),
        "another tenant's endpoint filter finds nothing"
    );

    let c = store
        .claim_due("w", 1, T0 + 60_000, T0 + 20)
        .await
        .unwrap()
        .remove(0);
    store
        .finish_attempt(
            &c,
            &c.lease,
            attempt(T0 + 20, Some(200)),
            Outcome::Succeeded,
        )
        .await
        .unwrap();
    let succeeded = DeliveryFilter {
        state: Some(DeliveryState::Succeeded),
        ..DeliveryFilter::default()
    };
    let listed = store
        .deliveries("acme", &succeeded, None, 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, c.delivery_id);
    assert_eq!(listed[0].attempts, 1);

    // Each state's list (pending and dead are read through their own indexes) is the whole
    // list's deliveries in that state, page by page.
    let c = store
        .claim_due("w", 100, T0 + 60_000, T0 + 30)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.endpoint_id == second)
        .unwrap();
    let held = store
        .finish_attempt(&c, &c.lease, attempt(T0 + 30, None), Outcome::Dead)
        .await
        .unwrap();
    assert!(held);
    let all = store
        .deliveries("acme", &DeliveryFilter::default(), None, 100)
        .await
        .unwrap();
    for state in [
        DeliveryState::Pending,
        DeliveryState::Dead,
        DeliveryState::Succeeded,
    ] {
        let expected: Vec<&str> = all
            .iter()
            .filter(|d| d.state == state)
            .map(|d| d.id.as_str())
            .collect();
        assert!(!expected.is_empty(), "{state:?}");
        let filter = DeliveryFilter {
            state: Some(state),
            ..DeliveryFilter::default()
        };
        let paged = every_page(store, "acme", &filter, 1).await;
        assert_eq!(paged, expected, "{state:?}");
    }
}

/// A request's headers read back as they were sent, whether the store kept all of them or
/// left out the three it can rebuild (a signed request's body type, `webhook-id` and
/// `webhook-timestamp`); one whose timestamp is not its start's second, or that is not signed,
/// or that was never sent, is kept as it is.
pub(crate) async fn attempts_read_back_the_headers_they_were_sent_with(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    accept(store, "acme", "t", 4, T0).await;
    let claims = store.claim_due("w", 4, T0 + 60_000, T0 + 10).await.unwrap();
    assert_eq!(claims.len(), 4);
    let started_at = T0 + 1_500;
    let headers = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    };
    let signed = |claim: &herald_store::Claimed, timestamp: &str| {
        headers(&[
            ("content-type", "application/json"),
            ("user-agent", "herald/0.1.0"),
            ("webhook-id", &claim.event_id),
            (
                "webhook-signature",
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
            ),
            ("webhook-timestamp", timestamp),
            ("x-custom", "kept"),
        ])
    };
    let sent = [
        signed(&claims[0], "1700000001"),
        signed(&claims[1], "1700000002"),
        headers(&[("x-custom", "unsigned")]),
        headers(&[]),
    ];
    for (claim, headers) in claims.iter().zip(&sent) {
        let attempt = herald_store::Attempt {
            request_headers: headers.clone(),
            ..attempt(started_at, Some(200))
        };
        store.record(claim, attempt, Outcome::Succeeded).await;
    }
    for (claim, headers) in claims.iter().zip(&sent) {
        let attempts = store.attempts("acme", &claim.delivery_id).await.unwrap();
        assert_eq!(&attempts[0].request_headers, headers);
    }
}

pub(crate) async fn a_retry_makes_a_delivery_due_now(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    tenant_with_endpoint(store, "other").await;
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap();
    let c = store
        .claim_due("w", 1, T0 + 60_000, T0)
        .await
        .unwrap()
        .remove(0);
    // In flight: the attempt's outcome would overwrite a retry, so it is refused.
    let busy = store
        .retry_delivery("acme", &c.delivery_id, T0 + 1)
        .await
        .unwrap_err();
    assert_eq!(busy.kind(), ErrorKind::Conflict, "{busy}");
    assert!(busy.to_string().contains("in flight"), "{busy}");
    store
        .finish_attempt(&c, &c.lease, attempt(T0, Some(500)), Outcome::Dead)
        .await
        .unwrap();

    assert_eq!(
        store
            .retry_delivery("other", &c.delivery_id, T0 + 10)
            .await
            .unwrap(),
        None,
        "another tenant's delivery is not found"
    );
    let retried = store
        .retry_delivery("acme", &c.delivery_id, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retried.state, retried.attempts, retried.next_attempt_at),
        (DeliveryState::Pending, 1, Some(T0 + 10))
    );
    let again = store.claim_due("w", 1, T0 + 60_000, T0 + 10).await.unwrap();
    assert_eq!(again.len(), 1, "claimable at once");
    assert_eq!(again[0].attempts, 1, "the count goes on");

    let patch = EndpointPatch {
        enabled: Some(false),
        ..EndpointPatch::default()
    };
    store
        .update_endpoint("acme", &endpoint, patch, T0 + 20)
        .await
        .unwrap();
    let refused = store
        .retry_delivery("acme", &c.delivery_id, T0 + 30)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
}

/// The attempt that made a delivery succeed (kept in the delivery's own row) is logged after
/// the failures before it, as it was recorded: its excerpt without NUL, its error, both sets
/// of headers. A retry by hand keeps it, and the next success is logged after it.
pub(crate) async fn a_success_is_logged_after_the_failures_and_through_a_retry(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    tenant_with_endpoint(store, "other").await;
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap();
    let claim = |now: i64| async move {
        let mut claimed = store.claim_due("w", 1, now + 60_000, now).await.unwrap();
        assert_eq!(claimed.len(), 1, "due at {now}");
        claimed.remove(0)
    };
    let c = claim(T0).await;
    let failed = attempt(T0, Some(500));
    store
        .record(&c, failed.clone(), Outcome::RetryAt(T0 + 1_000))
        .await;
    let c = claim(T0 + 1_000).await;
    let succeeded = Attempt {
        response_excerpt: Some("ok\0".into()),
        error: Some("timed out reading the body".into()),
        ..attempt(T0 + 1_000, Some(200))
    };
    store
        .record(&c, succeeded.clone(), Outcome::Succeeded)
        .await;
    let logged = Attempt {
        response_excerpt: Some("ok\u{FFFD}".into()),
        ..succeeded
    };
    let id = &c.delivery_id;
    assert_eq!(
        store.attempts("acme", id).await.unwrap(),
        [failed.clone(), logged.clone()]
    );
    assert_eq!(
        store.attempts("other", id).await.unwrap(),
        [],
        "another tenant reads none of them"
    );

    store.retry_delivery("acme", id, T0 + 5_000).await.unwrap();
    assert_eq!(
        store.attempts("acme", id).await.unwrap(),
        [failed.clone(), logged.clone()],
        "a retry by hand keeps the success"
    );
    let c = claim(T0 + 5_000).await;
    let again = attempt(T0 + 5_000, Some(204));
    store.record(&c, again.clone(), Outcome::Succeeded).await;
    assert_eq!(
        store.attempts("acme", id).await.unwrap(),
        [failed, logged, again]
    );
    let delivery = store.delivery("acme", id).await.unwrap().unwrap();
    assert_eq!(
        (delivery.state, delivery.attempts),
        (DeliveryState::Succeeded, 3)
    );
}

/// Two successes of one delivery handed in together (one under a lease that ran out, one
/// under the lease that holds) are both logged, whether they are recorded in one batch or two.
pub(crate) async fn two_successes_of_one_delivery_are_both_logged(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap();
    let stale = store.claim_due("w1", 1, T0 + 1_000, T0).await.unwrap();
    assert_eq!(store.reap(T0 + 1_000).await.unwrap(), 1);
    let held = store
        .claim_due("w2", 1, T0 + 60_000, T0 + 1_000)
        .await
        .unwrap();
    let (late, on_time) = (
        attempt(T0 + 1_100, Some(200)),
        attempt(T0 + 1_200, Some(200)),
    );
    let (late_held, on_time_held) = tokio::join!(
        store.finish(finish(
            &stale[0],
            &stale[0].lease,
            late.clone(),
            Outcome::Succeeded
        )),
        store.finish(finish(
            &held[0],
            &held[0].lease,
            on_time.clone(),
            Outcome::Succeeded
        )),
    );
    assert!(!late_held.unwrap().held && on_time_held.unwrap().held);
    assert_eq!(
        store.attempts("acme", &held[0].delivery_id).await.unwrap(),
        [late, on_time]
    );
}

/// The chart's figures: attempts per hour and tenant, whichever worker made them, counted
/// exactly (an attempt whose lease had gone included); an endpoint's go with it; hours older
/// than eight days are trimmed.
pub(crate) async fn attempt_stats_are_counted_per_hour_and_tenant(store: &Timed) {
    let acme = tenant_with_endpoint(store, "acme").await;
    tenant_with_endpoint(store, "other").await;
    const HOUR: i64 = 3_600_000;
    let start = (T0 / HOUR) * HOUR;
    accept(store, "acme", "t", 4, start).await;
    accept(store, "other", "t", 2, start).await;
    let mut claims = store
        .claim_due("w1", 3, start + 10 * HOUR, start + 5)
        .await
        .unwrap();
    claims.extend(
        store
            .claim_due("w2", 10, start + 10 * HOUR, start + 5)
            .await
            .unwrap(),
    );
    assert_eq!(claims.len(), 6);
    // (hour, status, duration) of each claim's attempt.
    let plan = [
        (0, Some(200), 10),
        (0, Some(500), 30),
        (1, None, 5),
        (1, Some(204), 40),
        (1, Some(200), 20),
        (2, Some(299), 7),
    ];
    for (c, (hour, status, duration)) in claims.iter().zip(plan) {
        let mut a = attempt(start + hour * HOUR + 10, status);
        a.duration_ms = duration;
        store
            .finish_attempt(c, &c.lease, a, Outcome::Dead)
            .await
            .unwrap();
    }
    // An attempt made under a lease that has gone is recorded, and counted, all the same.
    let last = &claims[5];
    let lost = store
        .finish(crate::timed::finish(
            last,
            &last.lease,
            attempt(start + 2 * HOUR + 20, Some(503)),
            Outcome::Dead,
        ))
        .await
        .unwrap();
    assert!(!lost.held);

    // What each tenant should see, from the claims' tenants.
    let tenant_of = |c: &herald_store::Claimed| {
        if c.endpoint_id == acme {
            "acme"
        } else {
            "other"
        }
    };
    let mut expected: std::collections::BTreeMap<(&str, i64), (u32, u32, i64, i64)> =
        Default::default();
    for (c, (hour, status, duration)) in claims.iter().zip(plan) {
        let e = expected.entry((tenant_of(c), hour)).or_default();
        if status.is_some_and(|s| (200..300).contains(&s)) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2 += duration;
        e.3 = e.3.max(duration);
    }
    let e = expected.entry((tenant_of(last), 2)).or_default();
    e.1 += 1;
    e.2 += 12;
    e.3 = e.3.max(12);
    for tenant in ["acme", "other"] {
        let stats = store.attempt_stats(tenant, None, start + 5).await.unwrap();
        let got: Vec<_> = stats
            .iter()
            .map(|s| (s.start, s.succeeded, s.failed, s.mean_ms, s.max_ms))
            .collect();
        let want: Vec<_> = expected
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|((_, hour), &(ok, failed, total, max))| {
                let mean = total as f64 / f64::from(ok + failed);
                (start + hour * HOUR, ok, failed, mean, max)
            })
            .collect();
        assert_eq!(got, want, "{tenant}");
    }
    let later = store
        .attempt_stats("acme", None, start + HOUR)
        .await
        .unwrap();
    assert!(
        later.iter().all(|s| s.start >= start + HOUR),
        "from the hour that holds `since`"
    );
    let one = store
        .attempt_stats("acme", Some(&acme), start)
        .await
        .unwrap();
    let all = store.attempt_stats("acme", None, start).await.unwrap();
    assert_eq!(one.len(), all.len(), "acme has one endpoint");
    let elsewhere = store
        .attempt_stats("other", Some(&acme), start)
        .await
        .unwrap();
    assert!(
        elsewhere.is_empty(),
        "another tenant's endpoint shows nothing"
    );

    // Eight days on, the first hours are trimmed; the endpoint's counts go with it.
    store.clock.set(start + 8 * 24 * HOUR + HOUR);
    assert!(store.trim_attempt_hours().await.unwrap() >= 1);
    let kept = store.attempt_stats("acme", None, start).await.unwrap();
    assert!(
        kept.iter().all(|s| s.start >= start + HOUR),
        "{:?}",
        kept.len()
    );
    assert!(store.delete_endpoint("acme", &acme).await.unwrap());
    assert!(
        store
            .attempt_stats("acme", None, start)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .attempt_stats("other", None, start)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn a_replay_redelivers_every_matching_event_in_batches(store: &Timed) {
    tenant_with_endpoint(store, "acme").await;
    tenant_with_endpoint(store, "other").await;
    accept(store, "acme", "a", 5, T0).await;
    accept(store, "acme", "b", 2, T0 + 10).await;
    accept(store, "acme", "a", 1, T0 - 100).await; // before `since`
    accept(store, "other", "a", 3, T0).await;
    let mut target = NewEndpoint::new("acme", "https://example.com/replay", SECRET);
    target.event_types = vec!["a".into()];
    let target = store.create_endpoint(target, T0 + 50).await.unwrap().id;

    assert_eq!(
        store
            .create_replay("other", &target, T0, T0 + 100)
            .await
            .unwrap(),
        None,
        "another tenant's endpoint"
    );
    let replay = store
        .create_replay("acme", &target, T0, T0 + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (replay.total, replay.done, replay.state),
        (5, 0, ReplayState::Running)
    );
    accept(store, "acme", "a", 1, T0 + 200).await; // after the replay began: not its business
    assert_eq!(
        store.running_replays().await.unwrap(),
        std::slice::from_ref(&replay)
    );
    assert_eq!(store.replay("other", &replay.id).await.unwrap(), None);

    let step = store.replay_step(&replay.id, 2, T0 + 300).await.unwrap();
    assert_eq!((step.done, step.state), (2, ReplayState::Running));
    let mut step = step;
    while step.done < 5 {
        step = store.replay_step(&replay.id, 2, T0 + 300).await.unwrap();
    }
    assert_eq!(
        step.state,
        ReplayState::Running,
        "it waits for accepts that were in flight when it was made"
    );
    let step = store
        .replay_step(&replay.id, 2, T0 + 100 + 5_000)
        .await
        .unwrap();
    assert_eq!(step.state, ReplayState::Finished);
    assert_eq!((step.total, step.done), (5, 5));
    assert!(store.running_replays().await.unwrap().is_empty());
    assert_eq!(store.replay("acme", &replay.id).await.unwrap(), Some(step));

    let to_target = DeliveryFilter {
        endpoint_id: Some(target),
        ..DeliveryFilter::default()
    };
    let made = store
        .deliveries("acme", &to_target, None, 100)
        .await
        .unwrap();
    // Five replayed, plus the one event accepted after the endpoint existed.
    assert_eq!(made.len(), 6);
    assert!(
        made.iter()
            .all(|d| d.event_type == "a" && d.state == DeliveryState::Pending)
    );
}

pub(crate) async fn a_disabled_endpoint_gets_no_replay(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    accept(store, "acme", "a", 3, T0).await;
    let sent = store.claim_due("w", 10, T0 + 60_000, T0 + 5).await.unwrap();
    for claim in &sent {
        let finish = store.finish_attempt(
            claim,
            &claim.lease,
            attempt(T0 + 6, Some(200)),
            Outcome::Succeeded,
        );
        finish.await.unwrap();
    }
    let replay = store
        .create_replay("acme", &endpoint, T0, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    let step = store.replay_step(&replay.id, 1, T0 + 20).await.unwrap();
    assert_eq!((step.done, step.state), (1, ReplayState::Running));

    // Disabled while the replay runs: it stops where it is, and what it made is not sent.
    let off = EndpointPatch {
        enabled: Some(false),
        ..EndpointPatch::default()
    };
    store
        .update_endpoint("acme", &endpoint, off, T0 + 30)
        .await
        .unwrap();
    let stopped = store.replay_step(&replay.id, 1, T0 + 40).await.unwrap();
    assert_eq!((stopped.done, stopped.state), (1, ReplayState::Stopped));
    assert!(store.running_replays().await.unwrap().is_empty());
    let again = store.replay_step(&replay.id, 1, T0 + 50).await.unwrap();
    assert_eq!((again.done, again.state), (1, ReplayState::Stopped));
    let claimed = store
        .claim_due("w", 10, T0 + 60_000, T0 + 60)
        .await
        .unwrap();
    assert!(
        claimed.is_empty(),
        "a disabled endpoint was sent {claimed:?}"
    );

    // A new replay to it is refused, saying why.
    let refused = store
        .create_replay("acme", &endpoint, T0, T0 + 70)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(refused.to_string().contains("disabled"), "{refused}");
}

pub(crate) async fn a_test_event_goes_to_one_endpoint_only(store: &Timed) {
    let first = tenant_with_endpoint(store, "acme").await;
    let mut other = NewEndpoint::new("acme", "https://example.com/b", SECRET);
    other.event_types = vec!["elsewhere".into()];
    let other = store.create_endpoint(other, T0).await.unwrap().id;
    tenant_with_endpoint(store, "zeta").await;

    let (event, delivery) = store
        .accept_test_event(NewEvent::new("acme", "t", r#"{"n": 1}"#), &other, T0)
        .await
        .unwrap()
        .unwrap();
    let made = store.deliveries_of_event("acme", &event.id).await.unwrap();
    assert_eq!(made.len(), 1, "not fanned out to {first}");
    assert_eq!(
        (made[0].id.as_str(), made[0].endpoint_id.as_str()),
        (delivery.as_str(), other.as_str())
    );
    assert!(event.test && made[0].test, "marked as a test, for the log");
    assert_eq!(store.event("acme", &event.id).await.unwrap(), Some(event));
    let ordinary = store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0)
        .await
        .unwrap()
        .event;
    assert!(!ordinary.test);
    let stored = store.event("acme", &ordinary.id).await.unwrap().unwrap();
    assert!(!stored.test);
    assert!(
        store
            .deliveries_of_event("acme", &ordinary.id)
            .await
            .unwrap()
            .iter()
            .all(|d| !d.test)
    );
    assert_eq!(
        store
            .accept_test_event(NewEvent::new("zeta", "t", "{}"), &other, T0)
            .await
            .unwrap(),
        None,
        "another tenant's endpoint"
    );

    let tenants: Vec<String> = store
        .tenants(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    // The operator's tenant is in every database; where it sorts is the database's collation.
    let operator = herald_store::operational::OPERATOR;
    assert!(tenants.iter().any(|t| t == operator));
    let theirs =
        |ids: Vec<String>| -> Vec<String> { ids.into_iter().filter(|t| t != operator).collect() };
    assert_eq!(theirs(tenants), ["acme", "zeta"]);
    let after: Vec<String> = store
        .tenants(Some("acme"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(theirs(after), ["zeta"]);
}

pub(crate) async fn server_keys_are_made_once(store: &Timed) {
    let first = store.server_key("links", "k1").await.unwrap();
    assert_eq!(first, "k1");
    assert_eq!(
        store.server_key("links", "k2").await.unwrap(),
        "k1",
        "the first one stays"
    );
    assert_eq!(store.server_key("other", "k3").await.unwrap(), "k3");
}
