//! Who may do what: the admin everything, a tenant token only its own tenant, and no or a
//! revoked token nothing.

use serde_json::json;

use crate::support::{ADMIN, Server, databases, drop_database};

/// The ids of one tenant's objects.
pub(crate) struct Ids {
    pub(crate) endpoint: String,
    pub(crate) event: String,
    pub(crate) delivery: String,
}

impl Ids {
    fn none() -> Ids {
        Ids {
            endpoint: "ep_x".into(),
            event: "evt_x".into(),
            delivery: "dlv_x".into(),
        }
    }
}

/// Ids no tenant has; even the admin gets 404 for them.
const NOBODYS: [&str; 2] = ["tok_01JDXXXX", "rpl_01JDXXXX"];

/// Every tenant-scoped operation, as the API document names its path, with a body; the
/// endpoint's deletion comes last. [`every_tenant_route_is_walked`] holds this list to the
/// served document, so a new route cannot escape the isolation walk.
const TENANT_ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/tenants/{tenant}/endpoints", None),
    (
        "POST",
        "/api/v1/tenants/{tenant}/endpoints",
        Some(r#"{"url": "http://127.0.0.1:9/x"}"#),
    ),
    ("GET", "/api/v1/tenants/{tenant}/endpoints/{endpoint}", None),
    (
        "PATCH",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}",
        Some(r#"{"description": "mine now", "signature": "both"}"#),
    ),
    (
        "GET",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secret",
        None,
    ),
    (
        "POST",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate",
        None,
    ),
    (
        "GET",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}/keys",
        None,
    ),
    (
        "POST",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}/keys/rotate",
        None,
    ),
    (
        "POST",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}/test",
        None,
    ),
    (
        "POST",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}/replay",
        Some(r#"{"since": "2026-01-01T00:00:00Z"}"#),
    ),
    ("GET", "/api/v1/tenants/{tenant}/replays/{replay}", None),
    (
        "POST",
        "/api/v1/tenants/{tenant}/events",
        Some(
            r#"{"event_type": "new-subscription", "payload": {"username": "rick", "monthly_fee": 1.5, "start_date": "2026-11-22T08:00:00Z"}}"#,
        ),
    ),
    ("GET", "/api/v1/tenants/{tenant}/events", None),
    ("GET", "/api/v1/tenants/{tenant}/events/{event}", None),
    ("GET", "/api/v1/tenants/{tenant}/deliveries", None),
    (
        "GET",
        "/api/v1/tenants/{tenant}/deliveries/{delivery}",
        None,
    ),
    (
        "POST",
        "/api/v1/tenants/{tenant}/deliveries/{delivery}/retry",
        None,
    ),
    ("GET", "/api/v1/tenants/{tenant}/stats", None),
    (
        "POST",
        "/api/v1/tenants/{tenant}/filter-preview",
        Some(r#"{"filter": {"path": "/username", "eq": "rick"}}"#),
    ),
    ("POST", "/api/v1/tenants/{tenant}/dashboard-link", None),
    ("GET", "/api/v1/tenants/{tenant}/tokens", None),
    (
        "POST",
        "/api/v1/tenants/{tenant}/tokens",
        Some(r#"{"name": "stolen"}"#),
    ),
    ("DELETE", "/api/v1/tenants/{tenant}/tokens/{token}", None),
    (
        "DELETE",
        "/api/v1/tenants/{tenant}/endpoints/{endpoint}",
        None,
    ),
];

/// Every tenant-scoped route, with the tenant and object ids filled in.
fn tenant_routes(
    tenant: &str,
    ids: &Ids,
) -> Vec<(&'static str, String, Option<serde_json::Value>)> {
    TENANT_ROUTES
        .iter()
        .map(|&(method, template, body)| {
            let path = template
                .replace("{tenant}", tenant)
                .replace("{endpoint}", &ids.endpoint)
                .replace("{event}", &ids.event)
                .replace("{delivery}", &ids.delivery)
                .replace("{replay}", "rpl_01JDXXXXXXXXXXXXXXXXXXXXXX")
                .replace("{token}", "tok_01JDXXXXXXXXXXXXXXXXXXXXXX");
            let body = body.map(|text| serde_json::from_str(text).unwrap());
            (method, path, body)
        })
        .collect()
}

/// The walk above covers every operation behind a token that the API document has under a
/// tenant: an operation added later without its place in [`TENANT_ROUTES`] fails here, and so
/// does one added with no credential but the one meant to be public.
#[test]
fn every_tenant_route_is_walked() {
    let event_types =
        herald_core::App::new("t", "1").webhook(herald_example_seed::new_subscription);
    let document = herald_server::api_document(event_types.declared()).unwrap();
    let mut served = std::collections::BTreeSet::new();
    let mut public = Vec::new();
    let tenant_paths = document
        .paths
        .paths
        .iter()
        .filter(|(path, _)| path.starts_with("/api/v1/tenants/{tenant}"));
    for (path, item) in tenant_paths {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PATCH", &item.patch),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in methods {
            let Some(operation) = operation else { continue };
            let behind_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let named = (method.to_owned(), path.clone());
            if behind_token {
                served.insert(named);
            } else {
                public.push(named);
            }
        }
    }
    let walked = TENANT_ROUTES
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        served, walked,
        "the isolation walk and the document disagree"
    );
    assert_eq!(
        public,
        [(
            "GET".to_owned(),
            "/api/v1/tenants/{tenant}/jwks.json".to_owned()
        )],
        "only the public keys are open to anyone"
    );
}

/// Makes tenant `id` with an endpoint and one event delivered to it; returns their ids.
async fn tenant_with_delivery(server: &Server, id: &str) -> Ids {
    let endpoint = server.tenant_with_endpoint(id).await;
    let (status, event) = server
        .call(
            "POST",
            &format!("/api/v1/tenants/{id}/events"),
            Some(ADMIN),
            Some(json!({
                "event_type": "new-subscription",
                "payload": { "username": "rick", "monthly_fee": 1.5, "start_date": "2026-11-22T08:00:00Z" }
            })),
        )
        .await;
    assert_eq!(status, 202, "{event}");
    let event = event["id"].as_str().unwrap().to_owned();
    let (_, deliveries) = server
        .call(
            "GET",
            &format!("/api/v1/tenants/{id}/deliveries?event={event}"),
            Some(ADMIN),
            None,
        )
        .await;
    let delivery = deliveries["data"][0]["id"].as_str().unwrap().to_owned();
    Ids {
        endpoint,
        event,
        delivery,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_reaches_only_its_own_tenant() {
    for (url, admin) in databases("isolation").await {
        let server = Server::start(&url).await;
        let _mine = tenant_with_delivery(&server, "acme").await;
        let theirs = tenant_with_delivery(&server, "umbrella").await;
        let (status, made) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/tokens",
                Some(ADMIN),
                Some(json!({ "name": "acme's backend" })),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        let token = made["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with(made["prefix"].as_str().unwrap()));

        let link = server
            .call(
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some(ADMIN),
                None,
            )
            .await
            .1["token"]
            .as_str()
            .unwrap()
            .to_owned();
        for credential in [&token, &link] {
            for (method, path, body) in tenant_routes("umbrella", &theirs) {
                let (status, answer) = server.call(method, &path, Some(credential), body).await;
                assert_eq!(
                    status, 404,
                    "{url}: {method} {path} with another tenant's credential"
                );
                assert!(
                    !answer.to_string().contains(&theirs.endpoint),
                    "{method} {path}: nothing of umbrella's shows"
                );
            }
            // Its own tenant's routes with umbrella's ids: not found either.
            for (method, path, body) in tenant_routes("acme", &theirs) {
                let (status, answer) = server.call(method, &path, Some(credential), body).await;
                let text = answer.to_string();
                if path.contains(&theirs.endpoint)
                    || path.contains(&theirs.event)
                    || path.contains(&theirs.delivery)
                {
                    assert_eq!(status, 404, "{url}: {method} {path}: {text}");
                }
                for id in [&theirs.endpoint, &theirs.event, &theirs.delivery] {
                    assert!(
                        !text.contains(id.as_str()) || path.contains(id.as_str()),
                        "{method} {path} shows umbrella's {id}: {text}"
                    );
                }
            }
        }
        // herald's own tenant, whose endpoints hear every tenant's operational webhooks, is
        // no tenant's.
        for credential in [&token, &link] {
            for (method, path, body) in tenant_routes("_operator", &theirs) {
                let (status, _) = server.call(method, &path, Some(credential), body).await;
                assert_eq!(status, 404, "{url}: {method} {path} with acme's credential");
            }
        }
        let (status, _) = server
            .call(
                "POST",
                "/api/v1/tenants",
                Some(&token),
                Some(json!({ "id": "evil" })),
            )
            .await;
        assert_eq!(status, 403, "a tenant token does not make tenants");

        // The admin reaches umbrella; the routes work, so the 404s above were scope.
        for (method, path, body) in tenant_routes("umbrella", &theirs) {
            let (status, answer) = server.call(method, &path, Some(ADMIN), body).await;
            let expected: &[u16] = if NOBODYS.iter().any(|id| path.contains(id)) {
                &[404]
            } else {
                &[200, 201, 202, 204]
            };
            assert!(
                expected.contains(&status),
                "{url}: admin {method} {path}: {status} {answer}"
            );
        }

        for (token, why) in [(None, "no token"), (Some("hrld_nope"), "an unknown token")] {
            for (method, path, body) in tenant_routes("acme", &Ids::none()) {
                let (status, _) = server.call(method, &path, token, body).await;
                assert_eq!(status, 401, "{method} {path} with {why}");
            }
        }

        let (status, _) = server
            .call("GET", "/api/v1/tenants/acme/endpoints", Some(&token), None)
            .await;
        assert_eq!(status, 200, "the token works for its tenant");
        let id = made["id"].as_str().unwrap();
        let (status, _) = server
            .call(
                "DELETE",
                &format!("/api/v1/tenants/acme/tokens/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 204, "a tenant may revoke its own token");
        let (status, _) = server
            .call("GET", "/api/v1/tenants/acme/endpoints", Some(&token), None)
            .await;
        assert_eq!(status, 401, "a revoked token opens nothing");
        let (_, listed) = server
            .call("GET", "/api/v1/tenants/acme/tokens", Some(ADMIN), None)
            .await;
        assert_eq!(listed[0]["id"], made["id"]);
        assert!(listed[0]["revoked_at"].is_string());
        assert!(listed[0].get("token").is_none(), "lists never show a token");
        drop(server);
        drop_database(&url, admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_makes_one_admin_token_and_keeps_only_its_hash() {
    for (url, admin) in databases("first").await {
        let mut config = herald_server::Config::new(&url);
        config.admin_token = None;
        let first =
            herald_server::Service::open(config.clone(), herald_example_seed::app().declared())
                .await
                .unwrap();
        let token = first.first_admin_token().unwrap().to_owned();
        assert!(token.starts_with("hrld_"));
        // The next start (one process on a SQLite file at a time).
        drop(first);
        let again =
            herald_server::Service::open(config.clone(), herald_example_seed::app().declared())
                .await
                .unwrap();
        assert_eq!(again.first_admin_token(), None, "{url}: made once");
        let stored = again.store().tokens(None).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(token.starts_with(&stored[0].prefix));
        drop(again);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let service = herald_server::Service::open(config, herald_example_seed::app().declared())
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(service.serve(herald_example_seed::app(), listener, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{base}/api/v1/tenants"))
            .bearer_auth(&token)
            .json(&json!({ "id": "acme" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            created.status(),
            201,
            "{url}: the printed token is the admin's"
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        drop_database(&url, admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_link_manages_endpoints_but_never_credentials() {
    for (url, admin) in databases("link_scope").await {
        let server = Server::start(&url).await;
        server.tenant_with_endpoint("acme").await;
        let (_, made) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some(ADMIN),
                Some(json!({ "ttl_seconds": 3600 })),
            )
            .await;
        let link = made["token"].as_str().unwrap().to_owned();
        let (_, token) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/tokens",
                Some(ADMIN),
                Some(json!({ "name": "backend" })),
            )
            .await;
        let token_path = format!(
            "/api/v1/tenants/acme/tokens/{}",
            token["id"].as_str().unwrap()
        );
        // What outlives the link, or reaches past it: refused with 403, whatever else holds.
        for (method, path, body) in [
            (
                "POST",
                "/api/v1/tenants/acme/tokens",
                Some(json!({ "name": "forever" })),
            ),
            ("GET", "/api/v1/tenants/acme/tokens", None),
            ("DELETE", token_path.as_str(), None),
            (
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some(json!({ "ttl_seconds": 86400 })),
            ),
        ] {
            let (status, answer) = server.call(method, path, Some(&link), body).await;
            assert_eq!(status, 403, "{url}: {method} {path} with a link: {answer}");
        }
        let (_, tokens) = server
            .call("GET", "/api/v1/tenants/acme/tokens", Some(ADMIN), None)
            .await;
        assert_eq!(
            tokens.as_array().unwrap().len(),
            1,
            "{url}: no token was made"
        );
        assert!(tokens[0]["revoked_at"].is_null(), "{url}: none was revoked");
        // What the dashboard is for still works.
        let (status, _) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some(&link),
                Some(json!({ "url": "https://example.com/hook" })),
            )
            .await;
        assert_eq!(status, 201, "{url}");
        for path in [
            "/api/v1/tenants/acme/endpoints",
            "/api/v1/tenants/acme/deliveries",
            "/api/v1/tenants/acme/stats",
        ] {
            let (status, _) = server.call("GET", path, Some(&link), None).await;
            assert_eq!(status, 200, "{url}: GET {path} with a link");
        }
        drop(server);
        drop_database(&url, admin).await;
    }
}
