//! Declare the webhooks an axum application sends, next to its routes, and publish them in its
//! OpenAPI 3.1 document and `/docs` page — the Rust counterpart of FastAPI's `app.webhooks`.
//!
//! A webhook is a name, an HTTP method and a typed body. Declare it with the [`webhook`]
//! attribute on a function whose doc comment says when it is sent, or with the [`Webhook`]
//! builder; both produce the same document. [`App`] joins the webhooks with routes documented by
//! [utoipa-axum](utoipa_axum) and serves `/openapi.json`, Swagger UI at `/docs` and Redoc at
//! `/redoc`, with every asset compiled in.
//!
//! ```
//! use herald::{App, webhook};
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! #[derive(serde::Serialize, utoipa::ToSchema)]
//! struct Subscription {
//!     username: String,
//!     monthly_fee: f64,
//! }
//!
//! /// When a new user subscribes to your service we'll send you a POST request with this
//! /// data to the URL that you register for the event `new-subscription` in the dashboard.
//! #[webhook(post, "new-subscription")]
//! fn new_subscription(body: Subscription) {}
//!
//! /// List the users.
//! #[utoipa::path(get, path = "/users/", responses((status = 200, body = Vec<String>)))]
//! async fn read_users() -> axum::Json<Vec<&'static str>> {
//!     axum::Json(vec!["Rick", "Morty"])
//! }
//!
//! let app = App::new("My API", "1.0.0")
//!     .routes(OpenApiRouter::new().routes(routes!(read_users)))
//!     .webhook(new_subscription)
//!     .build()
//!     .expect("the declarations are consistent");
//!
//! let doc = serde_json::to_value(&app.openapi).unwrap();
//! assert_eq!(doc["openapi"], "3.1.0");
//! assert_eq!(doc["webhooks"]["new-subscription"]["post"]["summary"], "New Subscription");
//! # let _router: axum::Router = app.router;
//! ```
//!
//! The guide in the repository's README walks through serving it, registering endpoints and
//! delivering events.

mod app;
mod catalog;
mod docs;
mod error;
mod naming;
mod openapi;
pub mod spec;
mod webhook;

pub use app::{App, Built};
pub use catalog::Webhooks;
pub use docs::Docs;
pub use error::{Error, ErrorKind};
pub use openapi::document;
pub use webhook::{Declaration, Declare, Method, Payload, Webhook};

/// Marks a function as a webhook declaration, like FastAPI's `@app.webhooks.post(...)`.
///
/// ```
/// # #[derive(serde::Serialize, utoipa::ToSchema)] struct Subscription { username: String }
/// /// Sent when a user subscribes.
/// #[herald::webhook(post, "new-subscription", tag = "billing")]
/// fn new_subscription(body: Subscription) {}
/// ```
///
/// The function's single argument gives the body type, its doc comment the description, and its
/// name the summary (`New Subscription`) and `operationId`. The function itself becomes a unit
/// struct of the same name implementing [`Declare`], so it can be passed to [`App::webhook`] and,
/// later, to `send`, which then accepts exactly that body type.
///
/// Arguments, after the method (`post`, `put`, `patch`, `delete` or `get`) and the name:
/// `tag = "…"` (repeatable), `deprecated`, `summary = "…"`, `operation_id = "…"`,
/// `header(name = "…", description = "…")`, `response(status = 410, description = "…")`, and
/// `example = <expression of the body type>`.
#[cfg(feature = "macros")]
pub use herald_macros::webhook;

pub use utoipa;
pub use utoipa_axum;

#[doc(hidden)]
pub mod __private {
    //! What the `#[webhook]` macro's expansion names; not a public API.
    pub use crate::webhook::Payload;
    use crate::webhook::{Method, Webhook};

    /// `Webhook::new` as a bounded function: a body type that is not a [`Payload`] then fails
    /// with `Payload`'s own message rather than "method exists but its bounds were not met".
    pub fn new_webhook<T: Payload>(method: Method, name: &str) -> Webhook<T> {
        Webhook::new(method, name)
    }

    /// The summary FastAPI derives from a function's name.
    pub fn summary(name: &str) -> String {
        crate::naming::summary(name)
    }
}
