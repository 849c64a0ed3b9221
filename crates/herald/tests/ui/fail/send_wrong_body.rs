use herald::{Sender, TenantId, webhook};

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Subscription {
    username: String,
}

/// Sent when a user subscribes.
#[webhook(post, "new-subscription")]
fn new_subscription(body: Subscription) {}

fn notify(sender: &Sender, acme: &TenantId) {
    // The declared body is a `Subscription`: a bare string does not compile.
    let _ = sender.send(&new_subscription, acme, &"rick");
}

fn main() {}
