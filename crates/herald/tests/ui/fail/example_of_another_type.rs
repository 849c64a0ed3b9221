use herald::webhook;

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Subscription {
    username: String,
}

#[webhook(post, "new-subscription", example = "rick")]
fn new_subscription(body: Subscription) {}

fn main() {}
