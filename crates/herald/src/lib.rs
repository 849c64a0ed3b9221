//! Declare the webhooks an axum application sends, next to its routes; publish them in its
//! OpenAPI 3.1 document and `/docs`; let each of your users subscribe URLs to them; and deliver
//! them, signed per Standard Webhooks, retried, logged and replayable. The Rust counterpart of
//! FastAPI's `app.webhooks`, with the sending included.
//!
//! This is the one crate an application depends on:
//!
//! ```toml
//! [dependencies]
//! herald = { version = "0.1", features = ["postgres"] } # SQLite alone: no features
//! ```
//!
//! It re-exports the crates whose types appear in its API ([`axum`], [`utoipa`],
//! [`utoipa_axum`], [`sqlx`]), so an application uses those and never pins their versions by
//! hand.
//!
//! - **Declare**: [`webhook`] on a function (or the [`Webhook`] builder), joined with routes in
//!   an [`App`], which builds one router and one document.
//! - **Deliver**: [`Service`] opens the store with the app's declarations, hands out a
//!   [`Sender`] (typed: a payload of the wrong type does not compile; a webhook the app did not
//!   declare is refused), herald's own [`router`](Service::router) (management API, its
//!   document, the dashboard) to nest where you like, and the delivery worker to
//!   [`start`](Service::start).
//! - **The outbox**: [`Sender::send_in`] stores an event in your own sqlx transaction, so it
//!   exists if and only if your change commits.
//!
//! ```
//! use herald::utoipa_axum::{router::OpenApiRouter, routes};
//! use herald::{App, Config, Service, TenantId, webhook};
//!
//! #[derive(serde::Serialize, herald::utoipa::ToSchema)]
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
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("herald-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let app = App::new("Shop", "1.0.0").webhook(new_subscription);
//! let herald = Service::open(Config::sqlite(dir.join("shop.db")), app.declared()).await?;
//!
//! let acme: TenantId = "acme".parse()?;
//! herald.store().create_tenant(acme.as_str()).await?;
//! let body = Subscription { username: "rick".into(), monthly_fee: 9.99 };
//! let accepted = herald.sender().send(&new_subscription, &acme, &body).await?;
//! assert!(accepted.event.id.starts_with("evt_"));
//!
//! // The app's own document shows its webhooks; herald's API is nested under a prefix.
//! let app = app.build()?;
//! let router: herald::axum::Router = app.router.nest("/herald", herald.router().await?);
//! let running = herald.start().await?; // the delivery worker and retention
//! # let _ = router;
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The repository's README walks through serving it, registering endpoints and watching
//! deliveries; `examples/shop` is a whole application.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use herald_core::{
    App, Built, Converted, Declaration, Declare, Docs, Error, ErrorKind, Method, Payload, Webhook,
    Webhooks, document, spec,
};

#[doc(hidden)]
pub use herald_core::__private;

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
/// later, to [`Sender::send`], which then accepts exactly that body type.
///
/// Arguments, after the method (`post`, `put`, `patch`, `delete` or `get`) and the name:
/// `tag = "…"` (repeatable), `deprecated`, `summary = "…"`, `operation_id = "…"`,
/// `header(name = "…", description = "…")`, `response(status = 410, description = "…")`, and
/// `example = <expression of the body type>`.
#[cfg(feature = "macros")]
pub use herald_macros::webhook;

#[cfg(feature = "server")]
pub use herald_server::{
    Config, Error as ServiceError, ErrorKind as ServiceErrorKind, Retention, Running, SendOptions,
    Sender, Service, TenantId, Transaction, api_document,
};

/// The store: events, deliveries and attempts, on SQLite or PostgreSQL.
#[cfg(feature = "server")]
pub use herald_store as store;

/// Delivery: the worker, the signed HTTP client and its SSRF guard, the retry schedule.
#[cfg(feature = "server")]
pub use herald_delivery as delivery;

/// Standard Webhooks signatures.
pub use herald_signature as signature;

/// Receiving herald's webhooks: the `Verified<T>` extractor.
#[cfg(feature = "receiver")]
pub use herald_receiver as receiver;

pub use axum;
#[cfg(feature = "server")]
pub use sqlx;
pub use utoipa;
pub use utoipa_axum;
