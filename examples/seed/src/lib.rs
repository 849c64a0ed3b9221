//! FastAPI's webhooks example, as a Rust application writes it with herald.
//!
//! ```python
//! class Subscription(BaseModel):
//!     username: str
//!     monthly_fee: float
//!     start_date: datetime
//!
//! @app.webhooks.post("new-subscription")
//! def new_subscription(body: Subscription):
//!     """
//!     When a new user subscribes to your service we'll send you a POST request with this
//!     data to the URL that you register for the event `new-subscription` in the dashboard.
//!     """
//!
//! @app.get("/users/")
//! def read_users():
//!     return ["Rick", "Morty"]
//! ```
//!
//! Beside it, `subscription-renewed` shows a webhook with two versions: endpoints pinned to
//! `2026-01-01` receive the first body, converted from the one the application sends.
//!
//! The `herald` binary serves this app by default; `cargo run -p herald-example-seed` serves it
//! on its own.

use chrono::{DateTime, Utc};
use herald::axum::Json;
use herald::utoipa::ToSchema;
use herald::utoipa_axum::{router::OpenApiRouter, routes};
// herald brings axum and utoipa; the route and schema macros refer to them by these names.
use herald::{App, axum, utoipa, webhook};
use serde::{Deserialize, Serialize};

/// A user's new subscription: the body of the `new-subscription` webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    /// Who subscribed.
    pub username: String,
    /// What they pay each month.
    pub monthly_fee: f64,
    /// When the subscription starts (UTC).
    pub start_date: DateTime<Utc>,
}

/// When a new user subscribes to your service we'll send you a POST request with this
/// data to the URL that you register for the event `new-subscription` in the dashboard.
#[webhook(post, "new-subscription")]
pub fn new_subscription(body: Subscription) {}

/// A renewal as first published: the fee in the account's currency, as a float.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Renewal {
    /// Who renewed.
    pub username: String,
    /// What they pay each month.
    pub monthly_fee: f64,
}

/// A renewal since 2026-12-01: the fee in cents with its currency, so no amount is rounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenewalV2 {
    /// Who renewed.
    pub username: String,
    /// What they pay each month.
    pub fee: Money,
}

/// An amount of money.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// In the currency's smallest unit (cents), at most 10^12.
    #[schema(maximum = 1_000_000_000_000u64)]
    pub amount: u64,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

impl From<RenewalV2> for Renewal {
    fn from(renewal: RenewalV2) -> Renewal {
        Renewal {
            username: renewal.username,
            monthly_fee: renewal.fee.amount as f64 / 100.0,
        }
    }
}

/// Sent when a subscription renews for another month (first version).
#[webhook(
    post,
    "subscription-renewed",
    version = "2026-01-01",
    example = Renewal { username: "rick".into(), monthly_fee: 12.5 }
)]
pub fn subscription_renewed_2026_01_01(body: Renewal) {}

/// Sent when a subscription renews for another month. Endpoints pinned before 2026-12-01
/// receive the first version, with the fee as a float.
#[webhook(
    post,
    "subscription-renewed",
    version = "2026-12-01",
    previous = subscription_renewed_2026_01_01,
    example = RenewalV2 {
        username: "rick".into(),
        fee: Money { amount: 1250, currency: "EUR".into() },
    }
)]
pub fn subscription_renewed(body: RenewalV2) {}

/// Read Users
#[utoipa::path(get, path = "/users/", responses((status = 200, description = "Successful Response", body = Vec<String>)))]
pub async fn read_users() -> Json<[&'static str; 2]> {
    Json(["Rick", "Morty"])
}

/// The example's routes and webhooks, before docs are added; other apps (the `herald` binary)
/// extend it.
pub fn app() -> App {
    App::new("FastAPI", "0.1.0")
        .routes(OpenApiRouter::new().routes(routes!(read_users)))
        .webhook(new_subscription)
        .webhook(subscription_renewed)
}
