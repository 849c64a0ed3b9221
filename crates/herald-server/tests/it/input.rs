//! What the document allows is accepted and what it does not is refused with a problem: the
//! cases schemathesis found while the two disagreed, kept as a table.

use crate::support::{ADMIN, Server, databases, drop_database};

/// Method, path, body (content type and text), the status expected.
type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_read_as_the_document_describes_them() {
    for (url, admin) in databases("input").await {
        let server = Server::start(&url).await;
        let endpoint = server.tenant_with_endpoint("acme").await;
        let rotate = format!("/api/v1/tenants/acme/endpoints/{endpoint}/secret/rotate");
        let json = "application/json";
        let cases: &[Case<'_>] = &[
            // An optional body may be absent or null.
            ("POST", "/api/v1/tenants/acme/dashboard-link", None, 201),
            (
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some((json, "null")),
                201,
            ),
            ("POST", &rotate, Some((json, "null")), 200),
            // JSON Schema's `integer` includes 60.0.
            (
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some((json, r#"{"ttl_seconds": 600.0}"#)),
                201,
            ),
            (
                "POST",
                &rotate,
                Some((json, r#"{"keep_old_seconds": 60.0}"#)),
                200,
            ),
            (
                "POST",
                &rotate,
                Some((json, r#"{"keep_old_seconds": 60.5}"#)),
                422,
            ),
            (
                "POST",
                &rotate,
                Some((json, r#"{"keep_old_seconds": 604801}"#)),
                422,
            ),
            // A struct is an object, never an array of its fields.
            (
                "POST",
                "/api/v1/tenants",
                Some((json, r#"["acme-2"]"#)),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some((json, "[]")),
                422,
            ),
            // Not JSON, not declared JSON. Whitespace is not an absent body, and not JSON.
            ("POST", "/api/v1/tenants", Some((json, "{")), 400),
            ("POST", &rotate, Some((json, "\n")), 400),
            ("POST", &rotate, Some((json, " ")), 400),
            (
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some((json, "{")),
                400,
            ),
            (
                "POST",
                "/api/v1/tenants",
                Some(("text/plain", r#"{"id":"b"}"#)),
                415,
            ),
            // Token names are 1 to 100 characters, spaces included.
            (
                "POST",
                "/api/v1/tenants/acme/tokens",
                Some((json, r#"{"name": ""}"#)),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/tokens",
                Some((json, r#"{"name": " "}"#)),
                201,
            ),
            // Idempotency keys count characters, not bytes.
            (
                "POST",
                "/api/v1/tenants/acme/events",
                Some((json, &event_with_key(&"é".repeat(255)))),
                202,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/events",
                Some((json, &event_with_key(&"é".repeat(256)))),
                422,
            ),
            // Endpoint URLs and headers, as the schema draws them.
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("https://example.com:65535/a/b?c=d#e"))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://93.184.216.34/"))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://example.com:65536/"))),
                422,
            ),
            // IPv6 literals: accepted, and guarded as IPv4 ones are.
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("https://[2606:4700::1111]:8443/hook"))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[2a00:1450:4001:81c::200e]/"))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://xn--a.example/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://user:pw@example.com/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://example.com/%zz"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("ftp://example.com/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://10.0.0.1/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[::]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[::ffff:10.0.0.1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[::ffff:169.254.169.254]:80/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[64:ff9b::a00:1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[64:ff9b:1::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[fe80::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[fd00::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[2001:db8::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[ff02::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[::1%25eth0]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[1::2::3]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://[12345::1]/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_header("X-Team", "billing"))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_header("Content-Length", "1"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_header("Proxy-Authorization", "x"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_header("X-Team", "a\nb"))),
                422,
            ),
            // Nothing listens on port 0.
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://example.com:0/"))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &endpoint_at("http://example.com:1/"))),
                201,
            ),
            // Every request carries the extra headers and every attempt keeps them: at most
            // 20, names of at most 64 characters and values of at most 1024, no name twice.
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_headers(20, 64, 1024))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_headers(21, 8, 8))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_headers(1, 65, 8))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &with_headers(1, 8, 1025))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((
                    json,
                    r#"{"url": "https://example.com/hook", "headers": {"X-Team": "a", "x-team": "b"}}"#,
                )),
                422,
            ),
            (
                "PATCH",
                &format!("/api/v1/tenants/acme/endpoints/{endpoint}"),
                Some((json, &with_headers(21, 8, 8))),
                422,
            ),
            // A description of at most 1024 characters.
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &described(&"é".repeat(1024)))),
                201,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((json, &described(&"é".repeat(1025)))),
                422,
            ),
            (
                "PATCH",
                &format!("/api/v1/tenants/acme/endpoints/{endpoint}"),
                Some((json, &described(&"a".repeat(1025)))),
                422,
            ),
            // Event types and channels each once.
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((
                    json,
                    r#"{"url": "https://example.com/hook", "event_types": ["new-subscription", "new-subscription"]}"#,
                )),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some((
                    json,
                    r#"{"url": "https://example.com/hook", "channels": ["eu", "eu"]}"#,
                )),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/events",
                Some((json, &event_on_channels(&["eu", "eu"]))),
                422,
            ),
            (
                "POST",
                "/api/v1/tenants/acme/events",
                Some((json, &event_on_channels(&["eu", "us"]))),
                202,
            ),
            // Query strings.
            (
                "GET",
                "/api/v1/tenants/acme/deliveries?state=dead",
                None,
                200,
            ),
            (
                "GET",
                "/api/v1/tenants/acme/deliveries?state=lost",
                None,
                422,
            ),
            (
                "GET",
                "/api/v1/tenants/acme/events?since=2026-01-01T00:00:00Z",
                None,
                200,
            ),
            (
                "GET",
                "/api/v1/tenants/acme/events?since=yesterday",
                None,
                422,
            ),
        ];
        for (method, path, body, expected) in cases {
            let body = body.map(|(kind, text)| (kind, text.to_string()));
            let (status, answer) = server
                .call_raw(method, path, Some(ADMIN), body.clone())
                .await;
            assert_eq!(
                status, *expected,
                "{url}: {method} {path} {body:?} answered {answer}"
            );
            if status >= 400 {
                assert!(
                    answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
                    "{answer}"
                );
            }
        }
        drop(server);
        drop_database(&url, admin).await;
    }
}

fn event_with_key(key: &str) -> String {
    serde_json::json!({
        "event_type": "new-subscription",
        "payload": { "username": "rick", "monthly_fee": 5.0, "start_date": "2026-11-22T00:00:00Z" },
        "idempotency_key": key,
    })
    .to_string()
}

fn endpoint_at(url: &str) -> String {
    serde_json::json!({ "url": url }).to_string()
}

fn with_header(name: &str, value: &str) -> String {
    serde_json::json!({ "url": "https://example.com/hook", "headers": { name: value } }).to_string()
}

/// An endpoint with `count` extra headers, each name `name_len` characters and each value
/// `value_len`.
fn with_headers(count: usize, name_len: usize, value_len: usize) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = (0..count)
        .map(|i| {
            let name = format!("x-{i:0>width$}", width = name_len - 2);
            (name, "v".repeat(value_len).into())
        })
        .collect();
    serde_json::json!({ "url": "https://example.com/hook", "headers": headers }).to_string()
}

fn described(description: &str) -> String {
    serde_json::json!({ "url": "https://example.com/hook", "description": description }).to_string()
}

fn event_on_channels(channels: &[&str]) -> String {
    serde_json::json!({
        "event_type": "new-subscription",
        "payload": { "username": "rick", "monthly_fee": 5.0, "start_date": "2026-11-22T00:00:00Z" },
        "channels": channels,
    })
    .to_string()
}
