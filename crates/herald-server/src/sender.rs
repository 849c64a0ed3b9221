//! Sending declared webhooks from Rust, typed: the payload is the declared body type, so a
//! payload of the wrong type does not compile and what is sent is what is documented.

use herald_delivery::metrics::Metrics;
use std::sync::Arc;

use herald::{Declare, Payload};
use herald_store::{Accepted, NewEvent, Store};

use crate::Error;

/// Stores events for delivery (the store wakes the worker).
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
/// let accepted = sender.send(&new_subscription, "acme", &subscription).await?;
/// println!("stored {}", accepted.event.id);
/// # Ok(()) }
/// ```
///
/// The same call with a payload of another type does not compile:
///
/// ```compile_fail
/// # async fn f(sender: herald_server::Sender) {
/// // `new_subscription` takes a `Subscription`; a string is refused at compile time.
/// sender.send(&herald_example_seed::new_subscription, "acme", &"rick").await;
/// # }
/// ```
#[derive(Clone)]
pub struct Sender {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Sender {
    pub(crate) fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Sender {
        Sender { store, metrics }
    }

    /// Stores `payload` as an event of `webhook` for `tenant`, with one delivery per subscribed
    /// endpoint, and returns once that is committed.
    pub async fn send<W: Declare>(
        &self,
        webhook: &W,
        tenant: &str,
        payload: &W::Payload,
    ) -> Result<Accepted, Error> {
        self.send_with(webhook, tenant, payload, SendOptions::default())
            .await
    }

    /// Like [`send`](Self::send), with an idempotency key or an ordering key.
    pub async fn send_with<W: Declare>(
        &self,
        webhook: &W,
        tenant: &str,
        payload: &W::Payload,
        options: SendOptions<'_>,
    ) -> Result<Accepted, Error> {
        let event = new_event(webhook, tenant, payload, options)?;
        let accepted = self
            .store
            .accept_event(event)
            .await
            .map_err(|e| Error(format!("cannot store the event: {e}")))?;
        if accepted.created {
            self.metrics.event_accepted();
        }
        Ok(accepted)
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
}

/// The event `send` would store, for storing it in your own transaction with
/// `SqlStore::accept_event_in`.
pub fn new_event<W: Declare>(
    webhook: &W,
    tenant: &str,
    payload: &W::Payload,
    options: SendOptions<'_>,
) -> Result<NewEvent, Error> {
    let json = payload
        .to_json()
        .map_err(|e| Error(format!("the payload does not serialize to JSON: {e}")))?;
    Ok(NewEvent {
        tenant_id: tenant.into(),
        event_type: webhook.name().into_owned(),
        payload: json.to_string(),
        idempotency_key: options.idempotency_key.map(Into::into),
        ordering_key: options.ordering_key.map(Into::into),
    })
}
