use herald::webhook;

#[derive(serde::Serialize)]
struct Subscription {
    username: String,
}

/// Sent when a user subscribes.
#[webhook(post, "new-subscription")]
fn new_subscription(body: Subscription) {}

fn main() {}
