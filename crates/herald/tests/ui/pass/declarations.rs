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

fn main() {
    let app = herald::App::new("t", "1")
        .webhook(new_subscription)
        .webhook(changed)
        .build()
        .unwrap();
    assert_eq!(app.webhooks.len(), 2);
    let _: herald::Webhook<Subscription> = changed.declare();
}
