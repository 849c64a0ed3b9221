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

/// `name` as one token of a JSON pointer (RFC 6901): `~` as `~0`, `/` as `~1`.
pub(crate) fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
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
    /// Seconds after which trying again makes sense: the `Retry-After` header, not the body.
    #[serde(skip)]
    pub(crate) retry_after: Option<u32>,
}

/// What a 503 asks the client to wait, in seconds: about how long a database takes to restart.
const RETRY_AFTER: u32 = 5;

impl Problem {
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: String,
    ) -> Self {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
            retry_after: None,
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

    /// A 503 that tells the client to try again after `RETRY_AFTER` seconds.
    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Problem {
            retry_after: Some(RETRY_AFTER),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "https://herald.rs/problems/unavailable",
                "Service Unavailable",
                detail.into(),
            )
        }
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
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<herald_store::Error> for Problem {
    fn from(error: herald_store::Error) -> Self {
        match error.kind() {
            herald_store::ErrorKind::NotFound => Problem::not_found(error.to_string()),
            herald_store::ErrorKind::Conflict => Problem::conflict(error.to_string()),
            herald_store::ErrorKind::Unavailable => {
                tracing::warn!(%error, "the database is unavailable");
                Problem::unavailable("the database is unavailable; try again shortly")
            }
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

pub(crate) fn malformed(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "https://herald.rs/problems/malformed",
        "Bad Request",
        detail,
    )
}
