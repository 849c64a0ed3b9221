use herald::webhook;

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
struct Plan {
    name: String,
}

#[webhook(post, "plan-changed", version = "2026-01-01")]
fn plan_changed_2026_01_01(body: Plan) {}

#[webhook(post, "plan-changed", previous = plan_changed_2026_01_01)]
fn plan_changed(body: Plan) {}

fn main() {}
