//! The one HTTP error type: `application/problem+json` (RFC 9457) that says what was wrong.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid value: where in the body, and why.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Violation {
    /// JSON pointer into the request body (e.g. `/payload/monthly_fee`).
    pub(crate) path: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

/// An error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// A short summary of the kind.
    pub(crate) title: &'static str,
    /// The HTTP status.
    pub(crate) status: u16,
    /// What exactly was wrong with this request.
    pub(crate) detail: String,
    /// Every invalid value, when the body did not match a schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<Violation>,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
        }
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "https://herald.rs/problems/unauthorized",
            "Unauthorized",
            detail.into(),
        )
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "https://herald.rs/problems/not-found",
            "Not Found",
            detail.into(),
        )
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "https://herald.rs/problems/forbidden",
            "Forbidden",
            detail.into(),
        )
    }

    pub(crate) fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "https://herald.rs/problems/conflict",
            "Conflict",
            detail.into(),
        )
    }

    pub(crate) fn invalid(detail: impl Into<String>, errors: Vec<Violation>) -> Self {
        Problem {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "https://herald.rs/problems/invalid",
                "Unprocessable Content",
                detail.into(),
            )
        }
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "https://herald.rs/problems/unavailable",
            "Service Unavailable",
            detail.into(),
        )
    }

    /// A server-side failure: logged with its cause, shown to the client as nothing internal.
    pub(crate) fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "https://herald.rs/problems/internal",
            "Internal Server Error",
            "herald could not complete the request; the cause is in its log".into(),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<herald_store::Error> for Problem {
    fn from(error: herald_store::Error) -> Self {
        match error.kind() {
            herald_store::ErrorKind::NotFound => Problem::not_found(error.to_string()),
            herald_store::ErrorKind::Conflict => Problem::conflict(error.to_string()),
            _ => Problem::internal(&error),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Problem::invalid(
            "the query string does not fit this operation",
            vec![Violation {
                path: "?".into(),
                message: rejection.body_text(),
            }],
        )
    }
}

/// An optional JSON body: empty or `null` means `T::default()`; rejections are problems.
pub(crate) struct OptionalJson<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let bytes = body_bytes(request, state).await?;
        match bytes.trim_ascii() {
            b"" | b"null" => Ok(OptionalJson(T::default())),
            _ => object_body(&bytes).map(OptionalJson),
        }
    }
}

/// A JSON object body (`Content-Type: application/json`) whose rejections are problems, not
/// axum's plain text.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let declared = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json(declared) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "https://herald.rs/problems/media-type",
                "Unsupported Media Type",
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = body_bytes(request, state).await?;
        object_body(&bytes).map(ApiJson)
    }
}

/// `application/json`, or any `application/…+json`.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The whole body, within the router's size limit (413 beyond it).
async fn body_bytes<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
) -> Result<axum::body::Bytes, Problem> {
    <axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "https://herald.rs/problems/too-large",
                "Content Too Large",
                rejection.body_text(),
            ),
            _ => malformed(rejection.body_text()),
        })
}

/// `T` from a body that must be a JSON object (serde would also read a struct from an array
/// of its fields in order, which no operation documents), read in one pass: 400 when it is not
/// JSON, 422 when it is JSON of the wrong shape.
fn object_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let not_json = |e: serde_json::Error| malformed(format!("the body is not JSON: {e}"));
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(not_json)?;
        return Err(Problem::invalid(
            "the body must be a JSON object",
            Vec::new(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            not_json(e)
        } else {
            Problem::invalid(
                format!("the body does not fit this operation: {e}"),
                Vec::new(),
            )
        }
    })
}

fn malformed(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "https://herald.rs/problems/malformed",
        "Bad Request",
        detail,
    )
}

/// `Query` whose rejections are problems, not axum's plain text.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub(crate) struct ApiQuery<T>(pub(crate) T);
