//! herald's integration tests: declaring, documenting and serving.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

mod asyncapi;
mod declare;
mod docs;
mod errors;
mod versions;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The seed example's body type, shared by the modules.
#[derive(Clone, Serialize, ToSchema)]
pub(crate) struct Subscription {
    pub(crate) username: String,
    pub(crate) monthly_fee: f64,
    pub(crate) start_date: DateTime<Utc>,
}

pub(crate) const DOC: &str = "When a new user subscribes to your service we'll send you a POST \
                              request with this\ndata to the URL that you register for the event \
                              `new-subscription` in the dashboard.";
