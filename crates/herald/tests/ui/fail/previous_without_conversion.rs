use herald::webhook;

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
struct Plan {
    name: String,
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
struct PlanV2 {
    name: String,
    seats: u32,
}

#[webhook(post, "plan-changed", version = "2026-01-01")]
fn plan_changed_2026_01_01(body: Plan) {}

// No `From<PlanV2> for Plan`, and no `convert = …`: the compiler says so.
#[webhook(post, "plan-changed", version = "2026-12-01", previous = plan_changed_2026_01_01)]
fn plan_changed(body: PlanV2) {}

fn main() {}
