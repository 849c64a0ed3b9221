//! herald's declarations: the webhooks an axum application sends, as typed Rust values, and the
//! OpenAPI 3.1 document and `/docs` page they appear in (the Rust counterpart of FastAPI's
//! `app.webhooks`).
//!
//! Applications depend on the `herald` crate, which re-exports everything here along with the
//! `#[webhook]` attribute and the service that delivers; this crate is the part that neither
//! stores nor sends, so that the service can depend on it.
//!
//! A webhook is a name, an HTTP method and a typed body, declared with the [`Webhook`] builder
//! (or `#[herald::webhook]`, which writes the same calls). [`App`] joins the webhooks with routes
//! documented by [utoipa-axum](utoipa_axum) and serves `/openapi.json`, Swagger UI at `/docs` and
//! Redoc at `/redoc`, with every asset compiled in.
//!
//! ```
//! use herald_core::{App, Webhook};
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! #[derive(serde::Serialize, utoipa::ToSchema)]
//! struct Subscription {
//!     username: String,
//!     monthly_fee: f64,
//! }
//!
//! let new_subscription = Webhook::<Subscription>::post("new-subscription")
//!     .summary("New Subscription")
//!     .description("Sent when a new user subscribes to your service.");
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

mod app;
pub mod asyncapi;
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
pub use openapi::{VERSION_EXTENSION, VERSION_HEADER, document};
pub use webhook::{Converted, Declaration, Declare, Method, Payload, Webhook};

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
