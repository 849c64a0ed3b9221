//! Versioned webhooks: which endpoints an event reaches by the version they pin, and which of
//! the event's payloads each is sent.

use std::collections::BTreeMap;

use crate::timed::Timed;
use herald_store::{EndpointPatch, NewEndpoint, NewEvent, Versions, resolve};

use super::{SECRET, T0};

const DECLARED: [&str; 3] = ["2025-06-01", "2026-01-01", "2026-12-01"];

fn versioned(version: &str, converted: &[(&str, &str)]) -> NewEvent {
    let mut new = NewEvent::new("acme", "price.changed", &format!(r#"{{"v":"{version}"}}"#));
    new.versions = Some(Versions {
        declared: DECLARED.iter().map(|v| (*v).to_owned()).collect(),
        version: version.to_owned(),
        converted: converted
            .iter()
            .map(|(v, body)| ((*v).to_owned(), (*body).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    });
    new
}

async fn endpoint(store: &Timed, url: &str, pin: Option<&str>) -> String {
    let mut new = NewEndpoint::new("acme", url, SECRET);
    new.version = pin.map(str::to_owned);
    let endpoint = store.create_endpoint(new, T0).await.unwrap();
    assert_eq!(endpoint.version.as_deref(), pin);
    endpoint.id
}

/// What each endpoint is sent of the next claims: URL → (version, payload).
async fn sent(store: &Timed, now: i64) -> BTreeMap<String, (Option<String>, String)> {
    store
        .claim_due("w", 100, now + 60_000, now)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.url, (c.version, c.payload)))
        .collect()
}

pub(crate) async fn each_endpoint_gets_the_version_it_pins(store: &Timed) {
    assert_eq!(resolve(&DECLARED, Some("2026-06-30")), Some("2026-01-01"));
    assert_eq!(resolve(&DECLARED, Some("2020-01-01")), Some("2025-06-01"));
    assert_eq!(resolve(&DECLARED, None), Some("2026-12-01"));
    assert_eq!(resolve::<&str>(&[], Some("2026-01-01")), None);

    store.create_tenant("acme", T0).await.unwrap();
    let old = endpoint(store, "https://old.example/", Some("2025-06-01")).await;
    endpoint(store, "https://mid.example/", Some("2026-06-30")).await;
    endpoint(store, "https://new.example/", Some("2026-12-01")).await;
    endpoint(store, "https://unpinned.example/", None).await;

    // The application sends the newest, converted to both older versions: all four get it.
    let newest = versioned(
        "2026-12-01",
        &[
            ("2026-01-01", r#"{"v":"2026-01-01"}"#),
            ("2025-06-01", r#"{"v":"2025-06-01"}"#),
        ],
    );
    let accepted = store.accept_event(newest, T0 + 10).await.unwrap();
    assert_eq!(accepted.deliveries, 4);
    assert_eq!(accepted.event.version.as_deref(), Some("2026-12-01"));
    let got = sent(store, T0 + 20).await;
    let version = |url: &str| got[url].0.as_deref().map(str::to_owned);
    assert_eq!(
        version("https://old.example/").as_deref(),
        Some("2025-06-01")
    );
    assert_eq!(got["https://old.example/"].1, r#"{"v":"2025-06-01"}"#);
    assert_eq!(
        version("https://mid.example/").as_deref(),
        Some("2026-01-01")
    );
    assert_eq!(got["https://mid.example/"].1, r#"{"v":"2026-01-01"}"#);
    assert_eq!(got["https://new.example/"].1, r#"{"v":"2026-12-01"}"#);
    assert_eq!(got["https://unpinned.example/"].1, r#"{"v":"2026-12-01"}"#);

    // Without conversions (`--spec`), a version reaches only the endpoints that receive it.
    let spec = versioned("2026-01-01", &[]);
    let accepted = store.accept_event(spec, T0 + 30).await.unwrap();
    assert_eq!(accepted.deliveries, 1);
    let got = sent(store, T0 + 40).await;
    assert_eq!(got.keys().collect::<Vec<_>>(), ["https://mid.example/"]);

    // Moving an endpoint: the next event is sent in the version it now pins.
    let patch = EndpointPatch {
        version: Some("2026-12-01".into()),
        ..EndpointPatch::default()
    };
    let moved = store
        .update_endpoint("acme", &old, patch, T0 + 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.version.as_deref(), Some("2026-12-01"));
    let newest = versioned("2026-12-01", &[("2026-01-01", "{}"), ("2025-06-01", "{}")]);
    store.accept_event(newest, T0 + 60).await.unwrap();
    let got = sent(store, T0 + 70).await;
    assert_eq!(got["https://old.example/"].0.as_deref(), Some("2026-12-01"));

    // An unversioned event goes to everyone, as it is, with no version.
    store
        .accept_event(NewEvent::new("acme", "plain", "[]"), T0 + 80)
        .await
        .unwrap();
    let got = sent(store, T0 + 90).await;
    assert_eq!(got.len(), 4);
    assert!(got.values().all(|(v, p)| v.is_none() && p == "[]"));
}
