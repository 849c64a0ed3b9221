//! The event types catalogue: every declared webhook with its schema and an example.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::event_types::EventType;
use crate::problem::Problem;
use crate::state::AppState;

/// A declared webhook.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventTypeOut {
    /// The name events are sent with, e.g. `new-subscription`.
    name: String,
    summary: String,
    description: Option<String>,
    /// The payload's JSON Schema (draft 2020-12), self-contained.
    #[schema(value_type = Object)]
    schema: serde_json::Value,
    /// A payload the schema accepts: the declared example, or one made from the schema.
    #[schema(value_type = Object)]
    example: serde_json::Value,
    /// False when `example` was made from the schema.
    example_declared: bool,
    /// For a versioned webhook, the newest version's date (the one above); null otherwise.
    version: Option<String>,
    /// For a versioned webhook, every version, oldest first; empty otherwise.
    versions: Vec<EventTypeVersionOut>,
    /// One of herald's own operational webhooks (`endpoint.disabled`…): an endpoint receives
    /// it only if it names it, and only herald sends it.
    operational: bool,
}

/// One version of a versioned webhook.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventTypeVersionOut {
    /// Its date, e.g. `2026-12-01`.
    version: String,
    /// The name of its body's schema in the OpenAPI document.
    body_schema: String,
    /// Its payload's JSON Schema (draft 2020-12), self-contained.
    #[schema(value_type = Object)]
    schema: serde_json::Value,
    /// A payload of this version.
    #[schema(value_type = Object)]
    example: serde_json::Value,
    /// The version this one's payloads are converted to for endpoints pinned before it;
    /// null for the oldest, or when the application declares no conversion (`--spec`).
    converts_to: Option<String>,
}

impl From<&EventType> for EventTypeOut {
    fn from(t: &EventType) -> Self {
        EventTypeOut {
            name: t.name.clone(),
            summary: t.summary.clone(),
            description: t.description.clone(),
            schema: t.schema.clone(),
            example: t.example.clone(),
            example_declared: t.example_declared,
            version: t.version().map(str::to_owned),
            versions: t
                .versions
                .iter()
                .map(|v| EventTypeVersionOut {
                    version: v.version.clone(),
                    body_schema: v.body_schema.clone(),
                    schema: v.schema.clone(),
                    example: v.example.clone(),
                    converts_to: v.converts_to.clone(),
                })
                .collect(),
            operational: t.operational,
        }
    }
}

/// Every event type.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventTypeList {
    data: Vec<EventTypeOut>,
}

/// List event types
///
/// The webhooks this service sends, by name, with their payload schema and an example: the
/// app's, then herald's operational ones.
#[utoipa::path(get, path = "/api/v1/event-types", tag = "herald", security(("token" = [])),
    responses(
        (status = 200, description = "Every declared webhook", body = EventTypeList),
    ))]
pub(crate) async fn list_event_types(State(state): State<AppState>) -> axum::Json<EventTypeList> {
    axum::Json(EventTypeList {
        data: state
            .event_types
            .catalogue()
            .iter()
            .map(Into::into)
            .collect(),
    })
}

/// Get an event type
#[utoipa::path(get, path = "/api/v1/event-types/{name}", tag = "herald", security(("token" = [])),
    params(("name" = String, Path, description = "The webhook's name")),
    responses(
        (status = 200, description = "The webhook", body = EventTypeOut),
        (status = 404, description = "No such event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_event_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<EventTypeOut>, Problem> {
    state
        .event_types
        .get(&name)
        .map(|t| axum::Json(t.into()))
        .ok_or_else(|| Problem::not_found(format!("no event type `{name}`")))
}
