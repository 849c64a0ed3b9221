//! herald as a service: the store, the delivery worker, the management API under `/api/v1`
//! with its own document, and the dashboard, for the webhooks one app declares.
//!
//! [`Service::open`] takes the app's declarations; the service then hands out a [`Sender`],
//! its [`Router`](axum::Router) to nest wherever the app wants, and the worker as a
//! [`Running`] handle, or serves everything on a listener in one call ([`Service::serve`]), so
//! tests (and embedding applications) own the port.

mod api;
mod auth;
mod config;
mod dashboard;
mod database;
mod error;
mod event_types;
mod example;
mod filters;
mod http;
mod link;
mod operational;
mod ops;
mod problem;
mod replay;
mod retention;
mod sender;
mod service;
mod state;
mod tenant;

pub use config::{Config, masked_url};
pub use database::open_store;
pub use error::{Error, ErrorKind};
pub use http::HttpLimits;
pub use retention::Retention;
pub use sender::{SendOptions, Sender, Transaction};
pub use service::{Running, Service, api_document};
pub use tenant::TenantId;

/// Serves `app` plus herald's routes on `listener` and runs a delivery worker, until
/// `shutdown` completes: [`Service::open`] then [`Service::serve`].
pub async fn serve(
    app: herald_core::App,
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    Service::open(config, app.declared())
        .await?
        .serve(app, listener, shutdown)
        .await
}
