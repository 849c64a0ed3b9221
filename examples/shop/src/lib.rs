//! A shop, as an application writes it with herald: merchants (herald's tenants) get a
//! `new-subscription` webhook whenever one of their customers subscribes.
//!
//! The handler records the subscription and the event in one transaction, so the merchant is
//! told about exactly the subscriptions that exist; herald's API, its docs and the dashboard
//! are nested under `/herald`, behind the shop's own middleware.

// herald re-exports the crates its API uses; naming them here is also what lets the derive and
// route macros (which refer to `utoipa::…` and `axum::…`) find them.
use herald::axum::extract::{Path, State};
use herald::axum::http::{HeaderValue, StatusCode};
use herald::axum::{Json, Router, middleware};
use herald::utoipa_axum::{router::OpenApiRouter, routes};
use herald::{App, Config, Running, Sender, Service, TenantId, axum, sqlx, utoipa, webhook};
use serde::{Deserialize, Serialize};

/// A customer's new subscription: the body of the `new-subscription` webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    /// Who subscribed.
    pub username: String,
    /// What they pay each month, in cents.
    pub monthly_fee_cents: u32,
}

/// When one of your customers subscribes, we send you a POST request with the subscription
/// to the URL you registered for `new-subscription`.
#[webhook(post, "new-subscription")]
pub fn new_subscription(body: Subscription) {}

#[derive(Clone)]
struct Shop {
    herald: Sender,
    db: sqlx::SqlitePool,
}

/// Subscribe
///
/// Records the subscription and tells the merchant, in one transaction.
#[utoipa::path(post, path = "/merchants/{merchant}/subscriptions", request_body = Subscription,
    params(("merchant" = String, Path, description = "The merchant's id")),
    responses(
        (status = 201, description = "Subscribed; the merchant's webhook is on its way", body = Subscription),
        (status = 404, description = "No such merchant"),
        (status = 409, description = "This customer already subscribed"),
    ))]
async fn subscribe(
    State(shop): State<Shop>,
    Path(merchant): Path<String>,
    Json(subscription): Json<Subscription>,
) -> Result<(StatusCode, Json<Subscription>), (StatusCode, String)> {
    let merchant: TenantId = merchant
        .parse()
        .map_err(|e: herald::ServiceError| (StatusCode::NOT_FOUND, e.to_string()))?;
    let failed = |e: &dyn std::fmt::Display| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut tx = shop.db.begin().await.map_err(|e| failed(&e))?;
    shop.herald
        .send_in(&mut tx, &new_subscription, &merchant, &subscription)
        .await
        .map_err(|e| failed(&e))?;
    // Fails for a repeated username: the event above is then rolled back with it.
    sqlx::query(
        "INSERT INTO subscriptions (username, merchant, monthly_fee_cents) VALUES ($1, $2, $3)",
    )
    .bind(&subscription.username)
    .bind(merchant.as_str())
    .bind(subscription.monthly_fee_cents)
    .execute(&mut *tx)
    .await
    .map_err(|e| (StatusCode::CONFLICT, e.to_string()))?;
    tx.commit().await.map_err(|e| failed(&e))?;
    Ok((StatusCode::CREATED, Json(subscription)))
}

/// The shop's own middleware: every answer, herald's included, says who served it.
async fn stamp(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-served-by", HeaderValue::from_static("shop"));
    response
}

/// Opens herald with the shop's webhooks, and returns the shop's router (its routes and docs,
/// herald under `/herald`) and the running delivery worker.
pub async fn start(
    config: Config,
) -> Result<(Router, Running, Service), Box<dyn std::error::Error>> {
    let app = App::new("Shop", "1.0.0").webhook(new_subscription);
    let herald = Service::open(config, app.declared()).await?;
    let db = herald
        .sqlite_pool()
        .ok_or("the shop keeps its data in SQLite")?
        .clone();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS subscriptions \
         (username TEXT PRIMARY KEY, merchant TEXT NOT NULL, monthly_fee_cents INTEGER NOT NULL)",
    )
    .execute(&db)
    .await?;
    let shop = Shop {
        herald: herald.sender(),
        db,
    };
    let app = app
        .routes(
            OpenApiRouter::new()
                .routes(routes!(subscribe))
                .with_state(shop),
        )
        .build()?;
    let router = app
        .router
        .nest("/herald", herald.router().await?)
        .layer(middleware::from_fn(stamp));
    let running = herald.start().await?;
    Ok((router, running, herald))
}
