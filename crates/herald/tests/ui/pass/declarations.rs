use herald::{Declare, webhook};

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Subscription {
    username: String,
}

/// When a new user subscribes.
#[webhook(post, "new-subscription")]
pub fn new_subscription(body: Subscription) {}

/// Every option at once, with a trailing comma.
#[webhook(
    PATCH,
    "subscription.changed",
    tag = "billing",
    deprecated,
    summary = "Changed",
    operation_id = "changed",
    header(name = "x-plan", description = "The plan."),
    response(status = 410, description = "Gone."),
    example = Subscription { username: "rick".into() },
)]
fn changed(body: Subscription) {}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
struct Seats {
    seats: u32,
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
struct SeatsV2 {
    seats: u32,
    plan: String,
}

/// The first version.
#[webhook(post, "seats.changed", version = "2026-01-01")]
fn seats_changed_2026_01_01(body: Seats) {}

/// A conversion by function instead of `From`.
#[webhook(
    post,
    "seats.changed",
    version = "2026-12-01",
    previous = seats_changed_2026_01_01,
    convert = |v2: SeatsV2| Seats { seats: v2.seats },
)]
fn seats_changed(body: SeatsV2) {}

fn main() {
    let app = herald::App::new("t", "1")
        .webhook(new_subscription)
        .webhook(changed)
        .webhook(seats_changed)
        .build()
        .unwrap();
    // The newest brings the version before it.
    assert_eq!(app.webhooks.len(), 4);
    assert_eq!(app.webhooks.versions("seats.changed"), ["2026-01-01", "2026-12-01"]);
    let _: herald::Webhook<Subscription> = changed.declare();
}
