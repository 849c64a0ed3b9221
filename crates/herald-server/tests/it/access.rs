//! Who may do what: the admin everything, a tenant token only its own tenant, and no or a
//! revoked token nothing.

use serde_json::json;

use crate::support::{ADMIN, Server, databases, drop_database};

/// Every tenant-scoped route, with the tenant and endpoint ids filled in.
fn tenant_routes(
    tenant: &str,
    endpoint: &str,
) -> Vec<(&'static str, String, Option<serde_json::Value>)> {
    let t = format!("/api/v1/tenants/{tenant}");
    let e = format!("{t}/endpoints/{endpoint}");
    vec![
        ("GET", format!("{t}/endpoints"), None),
        (
            "POST",
            format!("{t}/endpoints"),
            Some(json!({ "url": "http://127.0.0.1:9/x" })),
        ),
        ("GET", e.clone(), None),
        (
            "PATCH",
            e.clone(),
            Some(json!({ "description": "mine now" })),
        ),
        ("GET", format!("{e}/secret"), None),
        ("POST", format!("{e}/secret/rotate"), None),
        (
            "POST",
            format!("{t}/events"),
            Some(json!({
                "event_type": "new-subscription",
                "payload": { "username": "rick", "monthly_fee": 1.5, "start_date": "2026-11-22T08:00:00Z" }
            })),
        ),
        ("GET", format!("{t}/tokens"), None),
        (
            "POST",
            format!("{t}/tokens"),
            Some(json!({ "name": "stolen" })),
        ),
        (
            "DELETE",
            format!("{t}/tokens/tok_01JDXXXXXXXXXXXXXXXXXXXXXX"),
            None,
        ),
        ("DELETE", e, None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_reaches_only_its_own_tenant() {
    for (url, admin) in databases("isolation").await {
        let server = Server::start(&url).await;
        let _mine = server.tenant_with_endpoint("acme").await;
        let theirs = server.tenant_with_endpoint("umbrella").await;
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

        for (method, path, body) in tenant_routes("umbrella", &theirs) {
            let (status, answer) = server.call(method, &path, Some(&token), body).await;
            assert_eq!(
                status, 404,
                "{url}: {method} {path} with another tenant's token"
            );
            assert!(
                !answer.to_string().contains(&theirs),
                "{method} {path}: nothing of umbrella's shows"
            );
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
            let expected: &[u16] = if path.contains("tok_01JDXXXX") {
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
            for (method, path, body) in tenant_routes("acme", "ep_x") {
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
        let mut config = herald_server::Config::new(&url, "");
        config.admin_token = None;
        let first = herald_server::Service::open(config.clone()).await.unwrap();
        let token = first.first_admin_token().unwrap().to_owned();
        assert!(token.starts_with("hrld_"));
        let again = herald_server::Service::open(config.clone()).await.unwrap();
        assert_eq!(again.first_admin_token(), None, "{url}: made once");
        let stored = again.store().tokens(None).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(token.starts_with(&stored[0].prefix));
        drop((first, again));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let service = herald_server::Service::open(config).await.unwrap();
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
