use herald::webhook;

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Subscription {
    username: String,
}

#[webhook(posst, "new-subscription")]
fn new_subscription(body: Subscription) {}

fn main() {}
