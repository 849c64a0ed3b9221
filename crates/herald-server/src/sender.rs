//! Sending declared webhooks from Rust, typed: the payload is the declared body type, so a
//! payload of the wrong type does not compile and what is sent is what is documented; a
//! webhook the service was not opened with is refused by name.

use std::future::Future;
use std::sync::Arc;

use herald_core::{Declare, Payload};
use herald_delivery::metrics::Metrics;
use herald_store::{Accepted, NewEvent, Store};

use crate::database::Database;
use crate::error::{Error, ErrorKind};
use crate::event_types::{EventTypes, VersionError};
use crate::tenant::TenantId;

/// Stores events for delivery: with [`send`](Self::send) on its own, or with
/// [`send_in`](Self::send_in) inside your own transaction. The worker is woken as soon as the
/// event is committed.
///
/// ```no_run
/// # async fn f(sender: herald_server::Sender) -> Result<(), herald_server::Error> {
/// use herald_example_seed::{Subscription, new_subscription};
///
/// let subscription = Subscription {
///     username: "rick".into(),
///     monthly_fee: 9.99,
///     start_date: chrono::Utc::now(),
/// };
/// let acme = "acme".parse()?;
/// let accepted = sender.send(&new_subscription, &acme, &subscription).await?;
/// println!("stored {}", accepted.event.id);
/// # Ok(()) }
/// ```
///
/// The same call with a payload of another type does not compile:
///
/// ```compile_fail
/// # async fn f(sender: herald_server::Sender, acme: herald_server::TenantId) {
/// // `new_subscription` takes a `Subscription`; a string is refused at compile time.
/// sender.send(&herald_example_seed::new_subscription, &acme, &"rick").await;
/// # }
/// ```
#[derive(Clone)]
pub struct Sender {
    database: Database,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// The webhooks the service was opened with: nothing else is sent.
    declared: Arc<EventTypes>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("webhooks", &self.declared.names())
            .finish_non_exhaustive()
    }
}

impl Sender {
    pub(crate) fn new(
        database: Database,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        declared: Arc<EventTypes>,
    ) -> Sender {
        Sender {
            database,
            store,
            metrics,
            declared,
        }
    }

    /// Stores `payload` as an event of `webhook` for `tenant`, with one delivery per subscribed
    /// endpoint, and returns once that is committed.
    pub async fn send<W: Declare>(
        &self,
        webhook: &W,
        tenant: &TenantId,
        payload: &W::Payload,
    ) -> Result<Accepted, Error> {
        self.send_with(webhook, tenant, payload, SendOptions::default())
            .await
    }

    /// Like [`send`](Self::send), with an idempotency key or an ordering key.
    pub async fn send_with<W: Declare>(
        &self,
        webhook: &W,
        tenant: &TenantId,
        payload: &W::Payload,
        options: SendOptions<'_>,
    ) -> Result<Accepted, Error> {
        let event = self.event(webhook, tenant, payload, options)?;
        let accepted = self
            .store
            .accept_event(event)
            .await
            .map_err(|e| Error::store("cannot store the event", e))?;
        Ok(self.counted(accepted))
    }

    /// Stores the event inside `transaction`, your own sqlx transaction on this service's
    /// database (begun on [`Service::sqlite_pool`](crate::Service::sqlite_pool) or
    /// [`Service::postgres_pool`](crate::Service::postgres_pool)): the event and its
    /// deliveries exist if and only if you commit, and the worker is woken when you do.
    ///
    /// ```no_run
    /// # async fn f(herald: herald_server::Service, body: herald_example_seed::Subscription)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use herald_example_seed::new_subscription;
    ///
    /// let pool = herald.sqlite_pool().expect("a SQLite service");
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO subscriptions (username) VALUES ($1)")
    ///     .bind(&body.username)
    ///     .execute(&mut *tx)
    ///     .await?;
    /// let acme = "acme".parse()?;
    /// herald.sender().send_in(&mut tx, &new_subscription, &acme, &body).await?;
    /// tx.commit().await?; // the event is stored, and the worker woken, only now
    /// # Ok(()) }
    /// ```
    pub async fn send_in<W: Declare, T: Transaction>(
        &self,
        transaction: &mut T,
        webhook: &W,
        tenant: &TenantId,
        payload: &W::Payload,
    ) -> Result<Accepted, Error> {
        self.send_in_with(
            transaction,
            webhook,
            tenant,
            payload,
            SendOptions::default(),
        )
        .await
    }

    /// Like [`send_in`](Self::send_in), with an idempotency key or an ordering key.
    pub async fn send_in_with<W: Declare, T: Transaction>(
        &self,
        transaction: &mut T,
        webhook: &W,
        tenant: &TenantId,
        payload: &W::Payload,
        options: SendOptions<'_>,
    ) -> Result<Accepted, Error> {
        let event = self.event(webhook, tenant, payload, options)?;
        let accepted = transaction.accept(&self.database, event).await?;
        Ok(self.counted(accepted))
    }

    /// Counts a newly stored event (not an idempotent repeat) for `/metrics`.
    fn counted(&self, accepted: Accepted) -> Accepted {
        if accepted.created {
            self.metrics.event_accepted();
        }
        accepted
    }

    /// The event to store, if `webhook` was declared with the service.
    fn event<W: Declare>(
        &self,
        webhook: &W,
        tenant: &TenantId,
        payload: &W::Payload,
        options: SendOptions<'_>,
    ) -> Result<NewEvent, Error> {
        let name = webhook.name();
        if !self.declared.contains(name.as_ref()) {
            return Err(Error::new(
                ErrorKind::Undeclared,
                format!(
                    "the webhook `{name}` is not declared with the app this service was opened \
                     with: add it with `App::webhook` before `Service::open`"
                ),
            ));
        }
        new_event(webhook, tenant, payload, options, &self.declared)
    }
}

/// What else an event may carry.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendOptions<'a> {
    /// A repeated key returns the first event instead of storing a second.
    pub idempotency_key: Option<&'a str>,
    /// Events with the same key reach each endpoint one at a time, in the order they were
    /// accepted.
    pub ordering_key: Option<&'a str>,
    /// Channels: endpoints that ask for channels receive only events carrying one of them.
    pub channels: &'a [&'a str],
    /// A W3C `traceparent` its deliveries continue; default: the current span's, while
    /// spans are exported.
    pub traceparent: Option<&'a str>,
}

/// The event `send` would store.
fn new_event<W: Declare>(
    webhook: &W,
    tenant: &TenantId,
    payload: &W::Payload,
    options: SendOptions<'_>,
    declared: &EventTypes,
) -> Result<NewEvent, Error> {
    let json = payload.to_json().map_err(|e| {
        Error::new(
            ErrorKind::Payload,
            format!("the payload does not serialize to JSON: {e}"),
        )
    })?;
    let name = webhook.name();
    let versions = declared
        .versions(&name, webhook.version().as_deref(), &json)
        .map_err(|error| match error {
            VersionError::Unknown(message) => Error::new(ErrorKind::Undeclared, message),
            VersionError::Conversion(message) => Error::new(ErrorKind::Payload, message),
            VersionError::Invalid {
                version,
                violations,
            } => Error::new(
                ErrorKind::Payload,
                format!(
                    "converted to version {version}, the payload does not match that \
                     version's schema: {}",
                    violations
                        .iter()
                        .map(|v| format!("{} {}", v.path, v.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
        })?;
    let channels: Vec<String> = options.channels.iter().map(|c| (*c).to_owned()).collect();
    let bad = crate::filters::check_channels(&channels, "channels");
    if !bad.is_empty() {
        let why: Vec<String> = bad.into_iter().map(|v| v.message).collect();
        return Err(Error::new(ErrorKind::Payload, why.join("; ")));
    }
    Ok(NewEvent {
        tenant_id: tenant.as_str().into(),
        event_type: name.into_owned(),
        payload: json.to_string(),
        idempotency_key: options.idempotency_key.map(Into::into),
        ordering_key: options.ordering_key.map(Into::into),
        versions,
        channels,
        traceparent: match options.traceparent {
            Some(given) => {
                herald_delivery::trace::parse(given).map(|c| herald_delivery::trace::format(&c))
            }
            None => herald_delivery::trace::continue_in(&tracing::Span::current(), None),
        },
    })
}

/// A caller's sqlx transaction (or connection) that an event can be stored in:
/// `sqlx::Transaction` on SQLite or PostgreSQL, or a bare connection inside one.
pub trait Transaction: sealed::Sealed + Send {
    #[doc(hidden)]
    /// Stores `event` here, if this is `database`'s kind of connection.
    fn accept(
        &mut self,
        database: &Database,
        event: NewEvent,
    ) -> impl Future<Output = Result<Accepted, Error>> + Send;
}

mod sealed {
    pub trait Sealed {}
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn wrong_database(database: &Database, given: &str) -> Error {
    Error::new(
        ErrorKind::WrongDatabase,
        format!(
            "this service stores its events in {}, and the transaction is on {given}: begin it \
             on the service's own pool",
            database.name()
        ),
    )
}

/// `Transaction` for one database's connection and its `sqlx::Transaction`: the event is stored
/// there when the service runs on that database.
macro_rules! outbox_on {
    ($db:ty, $connection:ty, $variant:ident, $name:literal) => {
        impl sealed::Sealed for $connection {}

        impl Transaction for $connection {
            async fn accept(
                &mut self,
                database: &Database,
                event: NewEvent,
            ) -> Result<Accepted, Error> {
                match database {
                    Database::$variant(store) => store
                        .accept_event_in(self, event)
                        .await
                        .map_err(|e| Error::store("cannot store the event", e)),
                    #[allow(unreachable_patterns)] // SQLite alone: there is no other
                    _ => Err(wrong_database(database, $name)),
                }
            }
        }

        impl sealed::Sealed for sqlx::Transaction<'_, $db> {}

        impl Transaction for sqlx::Transaction<'_, $db> {
            async fn accept(
                &mut self,
                database: &Database,
                event: NewEvent,
            ) -> Result<Accepted, Error> {
                (**self).accept(database, event).await
            }
        }
    };
}

outbox_on!(sqlx::Sqlite, sqlx::SqliteConnection, Sqlite, "SQLite");
#[cfg(feature = "postgres")]
outbox_on!(sqlx::Postgres, sqlx::PgConnection, Postgres, "PostgreSQL");
