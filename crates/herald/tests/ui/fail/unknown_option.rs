use herald::webhook;

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Subscription {
    username: String,
}

#[webhook(post, "new-subscription", tags = "billing")]
fn new_subscription(body: Subscription) {}

fn main() {}
