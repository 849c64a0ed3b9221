//! The document and both viewers are served from the binary, at configurable paths.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use herald::{App, Docs, Webhook};
use tower::ServiceExt;

use crate::Subscription;

fn app(docs: Docs) -> (Router, serde_json::Value) {
    let built = App::new("Seed <test>", "1")
        .webhook(Webhook::<Subscription>::post("new-subscription"))
        .docs(docs)
        .build()
        .expect("valid app");
    let doc = serde_json::to_value(&built.openapi).unwrap();
    (built.router, doc)
}

struct Fetched {
    status: StatusCode,
    content_type: String,
    csp: Option<String>,
    body: Vec<u8>,
}

impl Fetched {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

async fn fetch(router: &Router, path: &str) -> Fetched {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    Fetched {
        status: response.status(),
        content_type: header(header::CONTENT_TYPE).unwrap_or_default(),
        csp: header(header::CONTENT_SECURITY_POLICY),
        body: to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    }
}

/// Every `src="…"` and `href="…"` in a page.
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\"", "spec-url=\""] {
        let mut rest = page;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').unwrap();
            found.push(rest[..end].to_owned());
        }
    }
    found
}

/// `reference`, relative to the page at `page`, as the browser resolves it.
fn resolve(page: &str, reference: &str) -> String {
    if reference.starts_with("data:") {
        return reference.to_owned();
    }
    let mut segments: Vec<&str> = page.split('/').collect();
    segments.pop(); // the page's own name
    for part in reference.split('/') {
        match part {
            ".." => {
                segments.pop();
            }
            "." => {}
            part => segments.push(part),
        }
    }
    segments.join("/")
}

#[tokio::test]
async fn the_document_is_served_as_json() {
    let (router, doc) = app(Docs::default());
    let fetched = fetch(&router, "/openapi.json").await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.content_type, "application/json");
    let served: serde_json::Value = serde_json::from_slice(&fetched.body).unwrap();
    assert_eq!(served, doc);
}

#[tokio::test]
async fn swagger_ui_and_every_asset_it_loads_are_local() {
    let (router, _) = app(Docs::default());
    let page = fetch(&router, "/docs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.csp.as_deref().unwrap().contains("connect-src 'self'"));
    assert!(
        page.text()
            .contains("<title>Seed &lt;test&gt; - Swagger UI</title>")
    );

    let refs = references(page.text());
    assert_eq!(
        refs,
        [
            "docs/swagger-ui-bundle.js",
            "docs/swagger-initializer.js",
            "docs/swagger-ui.css",
            "docs/favicon-32x32.png"
        ]
    );
    for reference in refs {
        let asset = fetch(&router, &resolve("/docs", &reference)).await;
        assert_eq!(asset.status, StatusCode::OK, "{reference}");
        assert!(!asset.body.is_empty(), "{reference}");
    }
    let init = fetch(&router, "/docs/swagger-initializer.js").await;
    assert!(init.text().contains(r#"url: "openapi.json""#));
    assert!(init.text().contains("validatorUrl: null"));
    let bundle = fetch(&router, "/docs/swagger-ui-bundle.js").await;
    assert!(bundle.text().contains("SwaggerUIBundle"));
}

#[tokio::test]
async fn redoc_and_its_bundle_are_local() {
    let (router, _) = app(Docs::default());
    let page = fetch(&router, "/redoc").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.csp.is_some());
    assert_eq!(
        references(page.text()),
        ["redoc/redoc.standalone.js", "data:,", "openapi.json"]
    );
    let bundle = fetch(&router, "/redoc/redoc.standalone.js").await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert_eq!(bundle.content_type, "text/javascript; charset=utf-8");
    assert!(bundle.body.len() > 500_000);
}

#[tokio::test]
async fn paths_are_configurable() {
    let (router, _) = app(Docs::default()
        .openapi_url(Some("/api/spec.json"))
        .docs_url(Some("/api/docs/"))
        .redoc_url(None));
    assert_eq!(
        fetch(&router, "/api/spec.json").await.status,
        StatusCode::OK
    );
    let page = fetch(&router, "/api/docs/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(references(page.text()).contains(&"../../api/docs/swagger-ui-bundle.js".to_owned()));
    let init = fetch(&router, "/api/docs/swagger-initializer.js").await;
    assert!(init.text().contains(r#"url: "../../api/spec.json""#));
    for gone in ["/openapi.json", "/docs", "/redoc"] {
        assert_eq!(
            fetch(&router, gone).await.status,
            StatusCode::NOT_FOUND,
            "{gone}"
        );
    }
}

/// Nested under a prefix, the pages load their assets and the document from under it, and
/// the document names the prefix as its server, so "Try it out" calls the nested routes.
#[tokio::test]
async fn the_docs_work_nested_under_a_prefix() {
    let (inner, doc) = app(Docs::default().docs_url(Some("/api/v1/docs")));
    let router = Router::new().nest("/herald", inner);
    for page in ["/herald/api/v1/docs", "/herald/redoc"] {
        let fetched = fetch(&router, page).await;
        assert_eq!(fetched.status, StatusCode::OK, "{page}");
        for reference in references(fetched.text()) {
            let at = resolve(page, &reference);
            if at.starts_with("data:") {
                continue;
            }
            assert!(at.starts_with("/herald/"), "{page}: {reference} -> {at}");
            assert_eq!(
                fetch(&router, &at).await.status,
                StatusCode::OK,
                "{page}: {at}"
            );
        }
    }
    let init = fetch(&router, "/herald/api/v1/docs/swagger-initializer.js").await;
    assert!(
        init.text().contains(r#"url: "../../openapi.json""#),
        "{}",
        init.text()
    );
    assert_eq!(
        resolve("/herald/api/v1/docs", "../../openapi.json"),
        "/herald/openapi.json"
    );

    let served: serde_json::Value =
        serde_json::from_slice(&fetch(&router, "/herald/openapi.json").await.body).unwrap();
    assert_eq!(served["servers"][0]["url"], "/herald");
    let mut without = served.clone();
    without.as_object_mut().unwrap().remove("servers");
    assert_eq!(without, doc, "the document is otherwise the same");
}

#[tokio::test]
async fn everything_can_be_switched_off() {
    for docs in [Docs::disabled(), Docs::default().openapi_url(None)] {
        let (router, _) = app(docs);
        for gone in [
            "/openapi.json",
            "/docs",
            "/redoc",
            "/docs/swagger-ui-bundle.js",
        ] {
            assert_eq!(
                fetch(&router, gone).await.status,
                StatusCode::NOT_FOUND,
                "{gone}"
            );
        }
    }
}
