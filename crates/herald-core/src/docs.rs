//! Serving the documents: `/openapi.json`, Swagger UI at `/docs`, Redoc at `/redoc`, and the
//! AsyncAPI document of the webhooks at `/asyncapi.json`.
//!
//! Every asset is compiled into the binary (see `vendor/` and `scripts/vendor-docs-assets.sh`),
//! and a Content-Security-Policy keeps the pages from loading anything from another origin.
//!
//! The routes work wherever they are nested (`Router::nest("/herald", …)`): the pages refer to
//! their assets and to the document by relative URLs, and a document served under a prefix
//! names that prefix as its server, so "Try it out" calls the nested routes.

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;

use crate::error::{Error, ErrorKind};

const SWAGGER_UI_BUNDLE: &[u8] = include_bytes!("../vendor/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &[u8] = include_bytes!("../vendor/swagger-ui/swagger-ui.css");
const SWAGGER_UI_FAVICON: &[u8] = include_bytes!("../vendor/swagger-ui/favicon-32x32.png");
const REDOC_BUNDLE: &[u8] = include_bytes!("../vendor/redoc/redoc.standalone.js");

/// Pages may only load what this server serves. Both UIs inject inline styles, and Redoc runs
/// its search index in a worker made from a blob.
const CSP: &str = "default-src 'none'; script-src 'self' blob:; worker-src 'self' blob:; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'self'";

const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const ASSET_CACHE: &str = "public, max-age=86400";

/// Where the OpenAPI document and its two viewers are served, like FastAPI's `openapi_url`,
/// `docs_url` and `redoc_url`. `None` switches one off; without the document, both viewers are
/// off too.
///
/// ```
/// let docs = herald_core::Docs::default().docs_url(Some("/api-docs")).redoc_url(None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Docs {
    openapi_url: Option<String>,
    docs_url: Option<String>,
    redoc_url: Option<String>,
    asyncapi_url: Option<String>,
}

impl Default for Docs {
    fn default() -> Self {
        Docs {
            openapi_url: Some("/openapi.json".into()),
            docs_url: Some("/docs".into()),
            redoc_url: Some("/redoc".into()),
            asyncapi_url: Some("/asyncapi.json".into()),
        }
    }
}

impl Docs {
    /// Serves nothing: no document, no viewers.
    pub fn disabled() -> Self {
        Docs {
            openapi_url: None,
            docs_url: None,
            redoc_url: None,
            asyncapi_url: None,
        }
    }

    /// Where the JSON document is served (default `/openapi.json`).
    pub fn openapi_url(mut self, url: Option<&str>) -> Self {
        self.openapi_url = url.map(Into::into);
        self
    }

    /// Where Swagger UI is served (default `/docs`).
    pub fn docs_url(mut self, url: Option<&str>) -> Self {
        self.docs_url = url.map(Into::into);
        self
    }

    /// Where Redoc is served (default `/redoc`).
    pub fn redoc_url(mut self, url: Option<&str>) -> Self {
        self.redoc_url = url.map(Into::into);
        self
    }

    /// Where the AsyncAPI 3.0 document of the webhooks is served (default `/asyncapi.json`).
    pub fn asyncapi_url(mut self, url: Option<&str>) -> Self {
        self.asyncapi_url = url.map(Into::into);
        self
    }

    /// The routes serving `document` and `asyncapi` (already serialized) under the configured
    /// paths.
    pub(crate) fn router<S>(
        &self,
        title: &str,
        document: Bytes,
        asyncapi: Bytes,
    ) -> Result<Router<S>, Error>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut router = Router::new();
        if let Some(asyncapi_url) = &self.asyncapi_url {
            check_path("asyncapi_url", asyncapi_url)?;
            router = router.route(
                asyncapi_url,
                get(
                    move || async move { ([(header::CONTENT_TYPE, "application/json")], asyncapi) },
                ),
            );
        }
        let Some(openapi_url) = &self.openapi_url else {
            return Ok(router);
        };
        check_path("openapi_url", openapi_url)?;
        let served_at = openapi_url.clone();
        router = router.route(
            openapi_url,
            get(move |OriginalUri(uri): OriginalUri| async move {
                let prefix = uri.path().strip_suffix(served_at.as_str()).unwrap_or("");
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    with_server(document, prefix),
                )
            }),
        );

        if let Some(docs_url) = &self.docs_url {
            check_path("docs_url", docs_url)?;
            let base = docs_url.trim_end_matches('/');
            let page = swagger_page(title, &|asset| {
                relative(docs_url, &format!("{base}/{asset}"))
            });
            // Swagger UI resolves the document's URL against the page's, not the script's.
            let init = swagger_initializer(&relative(docs_url, openapi_url));
            router = router
                .route(docs_url, get(move || async move { html(page) }))
                .route(&format!("{base}/swagger-initializer.js"), asset(JS, init))
                .route(
                    &format!("{base}/swagger-ui-bundle.js"),
                    asset(JS, SWAGGER_UI_BUNDLE),
                )
                .route(
                    &format!("{base}/swagger-ui.css"),
                    asset("text/css; charset=utf-8", SWAGGER_UI_CSS),
                )
                .route(
                    &format!("{base}/favicon-32x32.png"),
                    asset("image/png", SWAGGER_UI_FAVICON),
                );
        }

        if let Some(redoc_url) = &self.redoc_url {
            check_path("redoc_url", redoc_url)?;
            let base = redoc_url.trim_end_matches('/');
            let page = redoc_page(
                title,
                &relative(redoc_url, &format!("{base}/redoc.standalone.js")),
                &relative(redoc_url, openapi_url),
            );
            router = router
                .route(redoc_url, get(move || async move { html(page) }))
                .route(
                    &format!("{base}/redoc.standalone.js"),
                    asset(JS, REDOC_BUNDLE),
                );
        }
        Ok(router)
    }
}

/// `document`, and when it is served under `prefix` (nested) and names no server of its own,
/// with `prefix` as its server: its paths are relative to where it is mounted.
fn with_server(document: Bytes, prefix: &str) -> Bytes {
    if prefix.is_empty() {
        return document;
    }
    let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_slice(&document) else {
        return document;
    };
    if doc.contains_key("servers") {
        return document;
    }
    doc.insert(
        "servers".into(),
        serde_json::json!([{ "url": prefix, "description": "where this document is mounted" }]),
    );
    serde_json::to_vec(&doc).map_or(document, Bytes::from)
}

/// The URL of `target` relative to the page at `page` (both paths from the same root), so a
/// link keeps working when the routes are nested under a prefix.
fn relative(page: &str, target: &str) -> String {
    // A page at `/a/b/docs` resolves relative URLs against `/a/b/`: climb to the root first.
    let depth = page.matches('/').count().saturating_sub(1);
    let climb = "../".repeat(depth);
    let target = target.trim_start_matches('/');
    if climb.is_empty() && target.is_empty() {
        return "./".into();
    }
    format!("{climb}{target}")
}

fn check_path(key: &str, path: &str) -> Result<(), Error> {
    let valid = path.starts_with('/')
        && !path.contains(['{', '}', '*', '?', '#', ' '])
        && !path.ends_with("//");
    if valid {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidDocsPath,
        format!(
            "{key} `{path}` is not a plain URL path: it must start with `/` and contain no \
             `{{`, `}}`, `*`, `?`, `#` or spaces"
        ),
    ))
}

fn asset<S>(content_type: &'static str, body: impl Into<Bytes>) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let body: Bytes = body.into();
    get(move || async move {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, ASSET_CACHE),
            ],
            body,
        )
    })
}

fn html(page: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(HTML)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        page,
    )
}

/// An HTML page; `title` is escaped here, `head` and `body` must already be safe.
fn page(title: &str, head: &str, body: &str) -> String {
    let title = escape_html(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

/// Swagger UI's page; `asset` gives the URL of one of its assets (relative to the page).
fn swagger_page(title: &str, asset: &dyn Fn(&str) -> String) -> String {
    let [css, icon, bundle, init] = [
        "swagger-ui.css",
        "favicon-32x32.png",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ]
    .map(|name| escape_html(&asset(name)));
    page(
        &format!("{title} - Swagger UI"),
        &format!(
            "<link rel=\"stylesheet\" href=\"{css}\">\n\
             <link rel=\"icon\" type=\"image/png\" href=\"{icon}\">\n"
        ),
        &format!(
            "<div id=\"swagger-ui\"></div>\n\
             <script src=\"{bundle}\"></script>\n\
             <script src=\"{init}\"></script>\n"
        ),
    )
}

fn swagger_initializer(openapi_url: &str) -> String {
    // serde_json writes a valid JS string literal; "</" cannot occur in a checked path.
    let url = serde_json::Value::from(openapi_url).to_string();
    format!(
        r##"window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: {url},
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    defaultModelRendering: "model",
    defaultModelExpandDepth: 3,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}});
"##
    )
}

fn redoc_page(title: &str, script: &str, openapi_url: &str) -> String {
    let script = escape_html(script);
    let openapi_url = escape_html(openapi_url);
    page(
        &format!("{title} - ReDoc"),
        "<link rel=\"icon\" href=\"data:,\">\n<style>body { margin: 0; padding: 0; }</style>\n",
        &format!(
            "<redoc spec-url=\"{openapi_url}\" expand-responses=\"200,2XX\" \
             expand-single-schema-field></redoc>\n\
             <script src=\"{script}\"></script>\n"
        ),
    )
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        let cases = [
            ("/docs", true),
            ("/", true),
            ("/api/docs/", true),
            ("docs", false),
            ("/docs/{id}", false),
            ("/docs/*rest", false),
            ("/docs?x=1", false),
            ("", false),
        ];
        for (path, ok) in cases {
            assert_eq!(check_path("docs_url", path).is_ok(), ok, "{path:?}");
        }
    }

    #[test]
    fn the_bundles_load_nothing_from_a_cdn() {
        for (name, bundle) in [("swagger-ui", SWAGGER_UI_BUNDLE), ("redoc", REDOC_BUNDLE)] {
            let text = String::from_utf8_lossy(bundle);
            for cdn in [
                "cdn.redoc.ly",
                "cdn.jsdelivr.net",
                "unpkg.com",
                "fonts.googleapis.com",
            ] {
                assert!(!text.contains(cdn), "{name} references {cdn}");
            }
        }
    }

    #[test]
    fn links_are_relative_to_the_page() {
        let cases = [
            ("/docs", "/docs/swagger-ui.css", "docs/swagger-ui.css"),
            ("/docs", "/openapi.json", "openapi.json"),
            ("/docs/", "/openapi.json", "../openapi.json"),
            (
                "/api/v1/docs/",
                "/api/v1/openapi.json",
                "../../../api/v1/openapi.json",
            ),
            ("/api/v1/docs", "/api/v1/docs", "../../api/v1/docs"),
            ("/", "", "./"),
        ];
        for (page, target, expected) in cases {
            assert_eq!(relative(page, target), expected, "{page} -> {target}");
        }
    }

    #[test]
    fn a_nested_document_names_its_prefix_as_server() {
        let doc = Bytes::from_static(br#"{"openapi":"3.1.0"}"#);
        assert_eq!(with_server(doc.clone(), ""), doc);
        let nested: serde_json::Value =
            serde_json::from_slice(&with_server(doc, "/herald")).unwrap();
        assert_eq!(nested["servers"][0]["url"], "/herald");
        let own = Bytes::from_static(br#"{"servers":[{"url":"https://x"}]}"#);
        assert_eq!(with_server(own.clone(), "/herald"), own);
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(
            escape_html(r#"<b>"Tom" & 'Jerry'</b>"#),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }
}
