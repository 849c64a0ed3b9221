//! A filter tried on the tenant's recent events before it is saved, so a tenant sees what an
//! endpoint would receive instead of finding out from what never arrives.

use axum::extract::State;
use herald_store::EventFilter;
use herald_store::filter::Filter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::endpoint_fields as fields;
use super::openapi::EventTypeName;
use super::rfc3339;
use crate::problem::Problem;
use crate::state::{ApiJson, AppState, Scope};

/// How many of the tenant's latest events a preview looks at.
const LOOK_AT: u32 = 100;

/// A filter to try.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterPreview {
    /// The event types the endpoint would receive, each once; omitted or empty: all the app's.
    #[serde(default)]
    #[schema(value_type = BTreeSet<EventTypeName>)]
    event_types: Vec<String>,
    #[schema(schema_with = fields::filter)]
    filter: Option<serde_json::Value>,
}

/// What a filter would have let through.
#[derive(Serialize, ToSchema)]
pub(crate) struct FilterPreviewOut {
    /// Events of those types among the tenant's latest 100.
    checked: u32,
    /// Those the filter matches, newest first.
    matched: Vec<PreviewedEvent>,
}

/// An event a filter matches.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviewedEvent {
    /// `evt_…`.
    id: String,
    event_type: String,
    created_at: String,
}

/// Preview a filter
///
/// Which of the tenant's latest 100 events of the given types a payload filter would have let
/// through, checked as saving it on an endpoint would check it (so a path no payload can have
/// is the same 422).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/filter-preview", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = FilterPreview,
    responses(
        (status = 200, description = "What it matches", body = FilterPreviewOut),
        (status = 422, description = "An invalid filter or unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn preview_filter(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    ApiJson(body): ApiJson<FilterPreview>,
) -> Result<axum::Json<FilterPreviewOut>, Problem> {
    fields::check_fields(
        &state,
        fields::Fields {
            event_types: Some(&body.event_types),
            ..fields::Fields::default()
        },
    )?;
    let text = fields::channels_and_filter(&state, &[], body.filter.as_ref(), &body.event_types)?;
    let filter = text
        .as_deref()
        .map(Filter::parse_text)
        .transpose()
        .map_err(|e| Problem::invalid(format!("the filter does not parse: {e}"), Vec::new()))?;
    let events = store
        .events(&tenant, &EventFilter::default(), None, LOOK_AT)
        .await?;
    let wanted = |event_type: &str| match body.event_types.is_empty() {
        true => state.event_types.sendable(event_type),
        false => body.event_types.iter().any(|t| t == event_type),
    };
    let mut checked = 0;
    let mut matched = Vec::new();
    for event in events.into_iter().filter(|e| wanted(&e.event_type)) {
        checked += 1;
        let matches = filter.as_ref().is_none_or(|f| {
            serde_json::from_str(&event.payload).is_ok_and(|payload| f.matches(&payload))
        });
        if matches {
            matched.push(PreviewedEvent {
                id: event.id,
                event_type: event.event_type,
                created_at: rfc3339(event.created_at),
            });
        }
    }
    Ok(axum::Json(FilterPreviewOut { checked, matched }))
}
