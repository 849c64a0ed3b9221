//! herald's durable store: one database that is both the record of every event, delivery and
//! attempt, and the queue workers claim from.
//!
//! [`Store`] is the contract, one trait per role ([`Registry`], [`Log`], [`Replays`],
//! [`Queue`], [`Upkeep`]), so each part of herald depends only on what it uses. One
//! implementation, [`SqlStore`], serves both databases with each query written once:
//! [`sqlite::SqliteStore`] (embedded, the default) and [`postgres::PostgresStore`] (any number
//! of herald processes on one database); one conformance suite (`tests/it`) runs against both.
//!
//! Writes that can share a transaction (events accepted, attempts recorded, claims) are
//! queued to one committing task per store, which applies whatever is waiting as one
//! transaction of multi-row statements and answers each caller after the commit: group
//! commit, so one flush to disk serves many callers and "accepted" still means durable.
//!
//! Every time is milliseconds since the Unix epoch, read from the store's [`Clock`], which
//! tests replace with a [`ManualClock`] to move time by hand instead of sleeping.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use herald_store::{Log, NewEndpoint, NewEvent, Registry, sqlite::SqliteStore};
//!
//! let store = SqliteStore::open_in_memory().await?;
//! store.create_tenant("acme").await?;
//! store.create_endpoint(NewEndpoint::new("acme", "https://example.com/hook", "whsec_c2VjcmV0")).await?;
//! let accepted = store
//!     .accept_event(NewEvent::new("acme", "new-subscription", r#"{"username":"rick"}"#))
//!     .await?;
//! assert_eq!(accepted.deliveries, 1);
//! # Ok::<(), herald_store::Error>(())
//! # }).unwrap();
//! ```

mod clock;
mod error;
pub mod filter;
mod group;
mod limits;
mod log;
mod model;
pub mod operational;
mod roles;
pub mod sql;

#[cfg(feature = "postgres")]
mod partitions;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

pub use clock::{Clock, ManualClock, Millis, SystemClock, millis};
pub use error::{Error, ErrorKind};
pub use limits::Limits;
pub use log::{AttemptStats, DeliveryFilter, EventFilter, Replay, ReplayState};
pub use model::{
    Accepted, Attempt, Claim, ClaimRequest, Claimed, Delivery, DeliveryState, Endpoint,
    EndpointPatch, EndpointSecret, Event, Finish, Finished, KeyKind, NewEndpoint, NewEvent,
    NewToken, Outcome, QueueFigures, Signature, SignatureChange, Tenant, Token, Versions, resolve,
};
pub use roles::{Clocked, Log, Queue, Registration, Registry, Replays, Store, Upkeep};
pub use sql::{Backend, Sql, SqlStore};

/// A token for one claim by `worker`, so finishing checks this very lease, not just the
/// worker's name (which [`Queue::release`] matches as the part before `/`).
pub(crate) fn lease_token(worker: &str) -> String {
    format!("{worker}/{}", ulid::Ulid::generate())
}

/// The worker a [`lease_token`] was made for.
pub(crate) fn lease_worker(lease: &str) -> &str {
    lease.rsplit_once('/').map_or(lease, |(worker, _)| worker)
}

/// A new prefixed, time-ordered id such as `evt_01JD…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::generate())
}

/// The first id with `prefix` made at `at`: ids from it on were made at `at` or later, and
/// those before it earlier (ids compare as bytes).
pub(crate) fn id_floor(prefix: &str, at: Millis) -> String {
    let at = u64::try_from(at).unwrap_or(0);
    format!("{prefix}_{}", ulid::Ulid::from_parts(at, 0))
}

/// A new prefixed id made at `at` (the store's clock), for rows whose id says when they were
/// made (see [`id_floor`]): events, deliveries.
pub(crate) fn new_id_at(prefix: &str, at: Millis) -> String {
    let random = ulid::Ulid::generate().random();
    let at = u64::try_from(at).unwrap_or(0);
    format!("{prefix}_{}", ulid::Ulid::from_parts(at, random))
}
