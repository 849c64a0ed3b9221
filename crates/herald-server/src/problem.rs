//! The one HTTP error type: `application/problem+json` (RFC 9457) that says what was wrong.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
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

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let (kind, title) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("https://herald.rs/problems/too-large", "Content Too Large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "https://herald.rs/problems/media-type",
                "Unsupported Media Type",
            ),
            StatusCode::BAD_REQUEST => ("https://herald.rs/problems/malformed", "Bad Request"),
            _ => (
                "https://herald.rs/problems/invalid",
                "Unprocessable Content",
            ),
        };
        Problem::new(status, kind, title, rejection.body_text())
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
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        status,
                        "https://herald.rs/problems/too-large",
                        "Content Too Large",
                        rejection.body_text(),
                    )
                } else {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "https://herald.rs/problems/malformed",
                        "Bad Request",
                        rejection.body_text(),
                    )
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        match serde_json::from_slice::<Option<Box<serde_json::value::RawValue>>>(&bytes) {
            Ok(None) => Ok(OptionalJson(T::default())),
            Ok(Some(raw)) => object_body(&raw).map(OptionalJson),
            Err(e) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "https://herald.rs/problems/malformed",
                "Bad Request",
                format!("the body is not JSON: {e}"),
            )),
        }
    }
}

/// `T` from a JSON body that must be an object: serde would also read a struct from an array
/// of its fields in order, which no operation documents.
fn object_body<T: serde::de::DeserializeOwned>(
    raw: &serde_json::value::RawValue,
) -> Result<T, Problem> {
    if !raw.get().trim_start().starts_with('{') {
        return Err(Problem::invalid(
            "the body must be a JSON object",
            Vec::new(),
        ));
    }
    serde_json::from_str(raw.get()).map_err(|e| {
        Problem::invalid(
            format!("the body does not fit this operation: {e}"),
            Vec::new(),
        )
    })
}

/// `Query` whose rejections are problems, not axum's plain text.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub(crate) struct ApiQuery<T>(pub(crate) T);

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
        let Json(raw) = Json::<Box<serde_json::value::RawValue>>::from_request(request, state)
            .await
            .map_err(Problem::from)?;
        object_body(&raw).map(ApiJson)
    }
}
