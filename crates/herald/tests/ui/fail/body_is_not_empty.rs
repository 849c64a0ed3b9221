use herald::webhook;

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Subscription {
    username: String,
}

#[webhook(post, "new-subscription")]
fn new_subscription(body: Subscription) {
    println!("{}", body.username);
}

fn main() {}
