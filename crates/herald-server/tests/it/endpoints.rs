//! The endpoint lifecycle over HTTP: list by cursor, update, secrets and rotation, delete.

use serde_json::json;

use crate::support::{ADMIN, Server, databases, drop_database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_paged_updated_rotated_and_deleted() {
    for (url, admin) in databases("endpoints").await {
        let server = Server::start(&url).await;
        let first = server.tenant_with_endpoint("acme").await;
        for n in 0..4 {
            let (status, _) = server
                .call(
                    "POST",
                    "/api/v1/tenants/acme/endpoints",
                    Some(ADMIN),
                    Some(json!({ "url": format!("http://127.0.0.1:9/{n}") })),
                )
                .await;
            assert_eq!(status, 201);
        }
        let mut seen = Vec::new();
        let mut path = "/api/v1/tenants/acme/endpoints?limit=2".to_owned();
        loop {
            let (status, page) = server.call("GET", &path, Some(ADMIN), None).await;
            assert_eq!(status, 200, "{page}");
            for endpoint in page["data"].as_array().unwrap() {
                assert!(
                    endpoint.get("secret").is_none(),
                    "lists do not carry secrets"
                );
                seen.push(endpoint["id"].as_str().unwrap().to_owned());
            }
            match page["next"].as_str() {
                Some(next) => path = format!("/api/v1/tenants/acme/endpoints?limit=2&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "{url}: every endpoint once");
        assert_eq!(seen[0], first);
        let (status, problem) = server
            .call(
                "GET",
                "/api/v1/tenants/acme/endpoints?limit=0",
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 422, "{problem}");

        let e = format!("/api/v1/tenants/acme/endpoints/{first}");
        let (status, updated) = server
            .call(
                "PATCH",
                &e,
                Some(ADMIN),
                Some(json!({ "event_types": ["new-subscription"], "enabled": false })),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["event_types"], json!(["new-subscription"]));
        assert_eq!(updated["enabled"], false);
        assert_eq!(updated["disabled_reason"], "disabled through the API");
        let (status, problem) = server
            .call(
                "PATCH",
                &e,
                Some(ADMIN),
                Some(json!({ "url": "ftp://x", "event_types": ["nope"] })),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");

        let (_, before) = server
            .call("GET", &format!("{e}/secret"), Some(ADMIN), None)
            .await;
        let old = before["secret"].as_str().unwrap().to_owned();
        assert!(old.starts_with("whsec_"));
        assert_eq!(before["previous"], json!([]));
        let (status, rotated) = server
            .call("POST", &format!("{e}/secret/rotate"), Some(ADMIN), None)
            .await;
        assert_eq!(status, 200, "{rotated}");
        assert_ne!(rotated["secret"], old);
        assert_eq!(
            rotated["previous"][0]["secret"], old,
            "the old one still signs"
        );
        let (status, _) = server
            .call(
                "POST",
                &format!("{e}/secret/rotate"),
                Some(ADMIN),
                Some(json!({ "keep_old_seconds": 0 })),
            )
            .await;
        assert_eq!(status, 200);
        let (_, now) = server
            .call("GET", &format!("{e}/secret"), Some(ADMIN), None)
            .await;
        assert_eq!(
            now["previous"],
            json!([]),
            "keep_old_seconds 0 ends the others at once"
        );

        let (status, _) = server.call("DELETE", &e, Some(ADMIN), None).await;
        assert_eq!(status, 204);
        let (status, _) = server.call("GET", &e, Some(ADMIN), None).await;
        assert_eq!(status, 404);
        drop(server);
        drop_database(&url, admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_endpoint_bound_is_told_so_with_a_409() {
    for (url, admin) in databases("endpoint_bound").await {
        let server = Server::start_with(&url, |config| {
            config.database.max_endpoints_per_tenant = Some(2);
        })
        .await;
        let first = server.tenant_with_endpoint("acme").await;
        let create = |n: usize| {
            server.call(
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some(ADMIN),
                Some(json!({ "url": format!("http://127.0.0.1:9/{n}") })),
            )
        };
        assert_eq!(create(1).await.0, 201);
        let (status, problem) = create(2).await;
        assert_eq!(status, 409, "{url}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("tenant `acme` has 2 endpoints")),
            "{problem}"
        );
        let (status, _) = server
            .call(
                "DELETE",
                &format!("/api/v1/tenants/acme/endpoints/{first}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 204);
        assert_eq!(create(3).await.0, 201, "{url}: room again");
        drop(server);
        drop_database(&url, admin).await;
    }
}
