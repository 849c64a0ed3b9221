//! A receiver of FastAPI's `new-subscription` webhook, written in Rust: the route, the type the
//! body is read into, and [`herald_receiver::Verified`] doing the checking.
//!
//! `cargo run -p herald-example-receiver` listens on 127.0.0.1:9000 (or `$PORT`) with the secret
//! in `$WEBHOOK_SECRET`.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Utc};
use herald_receiver::{Secrets, Verified};
use tokio::sync::mpsc;

/// The body of `new-subscription`, as the sender's OpenAPI document describes it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Subscription {
    /// Who subscribed.
    pub username: String,
    /// What they pay each month.
    pub monthly_fee: f64,
    /// When the subscription starts.
    pub start_date: DateTime<Utc>,
}

/// What the handler hands on: here, to a channel; in an application, to its own logic.
#[derive(Clone)]
struct Received(mpsc::UnboundedSender<(String, Subscription)>);

/// The receiver's routes; every verified subscription goes to `received`, with its
/// `webhook-id` (use it to drop a repeat: a webhook may arrive more than once).
pub fn router(secrets: Secrets, received: mpsc::UnboundedSender<(String, Subscription)>) -> Router {
    Router::new()
        .route(
            "/webhooks/new-subscription",
            post(
                async |axum::extract::State(Received(received)): axum::extract::State<Received>,
                       Verified { id, body, .. }: Verified<Subscription>| {
                    // The handler runs only for genuine webhooks whose body fits the type.
                    let _ = received.send((id, body));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(State {
            secrets,
            received: Received(received),
        })
}

#[derive(Clone)]
struct State {
    secrets: Secrets,
    received: Received,
}

impl axum::extract::FromRef<State> for Secrets {
    fn from_ref(state: &State) -> Secrets {
        state.secrets.clone()
    }
}

impl axum::extract::FromRef<State> for Received {
    fn from_ref(state: &State) -> Received {
        state.received.clone()
    }
}
