//! The management API under `/api/v1`: tenants, tokens, event types, endpoints, events, the
//! delivery log and replays.

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::authenticate;
use crate::event_types::EventTypes;
use crate::problem::{Problem, Violation};
use crate::state::AppState;

mod catalogue;
mod endpoint_fields;
mod endpoints;
mod events;
mod log;
mod members;
pub(crate) mod nul;
mod openapi;
mod preview;
mod replays;
mod signing;
mod tenants;
mod tokens;

/// The largest request body the API reads (1 MiB); larger ones get a 413 problem.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// The API's routes, documented, each behind a bearer token but the public ones.
pub(crate) fn routes(state: AppState) -> OpenApiRouter {
    let mut router = behind_token()
        .layer(axum::middleware::from_fn_with_state(
            state.credentials.clone(),
            authenticate,
        ))
        .merge(public());
    openapi::describe(router.get_openapi_mut(), &state.event_types);
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(nul::refuse_in_path_and_query))
        .with_state(state)
}

/// What anyone may read: each tenant's public keys.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signing::jwks))
}

fn behind_token() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(security())
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(tenants::create_link))
        .routes(routes!(catalogue::list_event_types))
        .routes(routes!(catalogue::get_event_type))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(
            endpoints::create_endpoint,
            endpoints::list_endpoints
        ))
        .routes(routes!(
            endpoints::get_endpoint,
            endpoints::update_endpoint,
            endpoints::delete_endpoint
        ))
        .routes(routes!(signing::get_secret))
        .routes(routes!(signing::rotate_secret))
        .routes(routes!(signing::get_keys))
        .routes(routes!(signing::rotate_keys))
        .routes(routes!(endpoints::send_test))
        .routes(routes!(preview::preview_filter))
        .routes(routes!(replays::create_replay))
        .routes(routes!(replays::get_replay))
        .routes(routes!(events::create_event, log::list_events))
        .routes(routes!(log::get_event))
        .routes(routes!(log::list_deliveries))
        .routes(routes!(log::get_delivery))
        .routes(routes!(log::retry_delivery))
        .routes(routes!(log::stats))
}

/// `/api/v1/…` paths that no operation has: a 404 problem, not an empty body.
pub(crate) fn unknown() -> axum::Router {
    async fn unknown(uri: axum::http::Uri) -> Problem {
        Problem::not_found(format!(
            "no operation at `{}`; the operations are listed in /api/v1/openapi.json",
            uri.path()
        ))
    }
    axum::Router::new()
        .route("/api/v1", axum::routing::any(unknown))
        .route("/api/v1/{*rest}", axum::routing::any(unknown))
}

/// The API's part of the document for an app that declares `event_types`, without serving
/// anything: what [`routes`] documents.
pub(crate) fn openapi(event_types: &EventTypes) -> utoipa::openapi::OpenApi {
    let mut doc = behind_token().merge(public()).into_openapi();
    openapi::describe(&mut doc, event_types);
    doc
}

/// Declares the bearer scheme every API operation requires.
fn security() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = utoipa::openapi::OpenApi::default();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The admin token (`HERALD_ADMIN_TOKEN`, or the one printed at first start), \
                     which reaches everything, or a tenant's API token (`hrld_…`), which \
                     reaches only that tenant: another tenant's objects answer 404.",
                ))
                .build(),
        ),
    );
    doc
}

/// Where a list continues.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// The `next` of the previous page.
    pub(crate) after: Option<String>,
    /// At most this many (1 to 100; 20 by default).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
}

impl Page {
    pub(crate) fn limit(&self) -> Result<u32, Problem> {
        in_range("limit", self.limit.unwrap_or(20), 1..=100)
    }
}

/// `value`, or the 422 naming `field` (a query parameter, or `/field` in a body) and `range`.
pub(crate) fn in_range(
    field: &str,
    value: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, Problem> {
    if range.contains(&value) {
        return Ok(value);
    }
    let name = field.trim_start_matches('/');
    Err(Problem::invalid(
        format!("`{name}` is {} to {}", range.start(), range.end()),
        vec![Violation {
            path: field.into(),
            message: format!("{value} is out of range"),
        }],
    ))
}

/// Reads a count that may be absent (`None`), `null` (`Some(None)`) or a number, as
/// [`whole_number`] reads it: a PATCH's way to remove a value.
pub(crate) fn whole_number_or_null<'de, D>(deserializer: D) -> Result<Option<Option<u32>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    whole_number(deserializer).map(Some)
}

/// Reads an optional count that JSON may spell `533` or `533.0`: JSON Schema's `integer`
/// allows both, and the document promises JSON Schema.
pub(crate) fn whole_number<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{number} is not a whole number from 0 to {}",
                u32::MAX
            ))
        })
}

/// One page of a list, oldest or newest first as the operation says.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Listed<T> {
    data: Vec<T>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

impl Page {
    /// Cuts `rows` (fetched with one more than the limit, which tells whether another page
    /// follows) to a page of `show(row)`, naming where the next page starts.
    pub(crate) fn of<R, T>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> &String,
        show: impl FnMut(R) -> Result<T, Problem>,
    ) -> Result<Listed<T>, Problem> {
        let limit = self.limit()? as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = more.then(|| rows.last().map(|r| key(r).clone())).flatten();
        Ok(Listed {
            data: rows.into_iter().map(show).collect::<Result<_, _>>()?,
            next,
        })
    }
}

/// Reads an RFC 3339 time from query parameter `name`.
pub(crate) fn parse_time(name: &str, text: Option<&str>) -> Result<Option<i64>, Problem> {
    text.map(|text| {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| {
                Problem::invalid(
                    format!("`{name}` is not an RFC 3339 time"),
                    vec![Violation {
                        path: name.into(),
                        message: format!("{text:?}: {e}"),
                    }],
                )
            })
    })
    .transpose()
}

pub(crate) fn rfc3339(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let nanos = u32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A store error while writing under `tenant`: a missing tenant is a 404 naming it.
pub(crate) fn tenant_problem(error: herald_store::Error, tenant: &str) -> Problem {
    if error.kind() == herald_store::ErrorKind::NotFound {
        Problem::not_found(format!("no tenant `{tenant}`"))
    } else {
        Problem::from(error)
    }
}
