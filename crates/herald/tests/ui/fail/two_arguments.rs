use herald::webhook;

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Subscription {
    username: String,
}

#[webhook(post, "new-subscription")]
fn new_subscription(body: Subscription, extra: u32) {}

fn main() {}
