//! What an operator scrapes at `/metrics`, in Prometheus' text format: counters this process
//! keeps as it accepts events and makes attempts, and the queue's gauges, read from the store
//! (shared by every process) when scraped.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use herald_store::{Millis, Outcome, QueueFigures};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    /// `succeeded`, `retry` (failed, to be tried again) or `dead` (failed for good).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    tenant: String,
    endpoint: String,
}

type Seconds = Gauge<f64, AtomicU64>;

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    accepted: Counter,
    attempts: Family<OutcomeLabel, Counter>,
    duration: Histogram,
    pending: Gauge,
    due: Gauge,
    oldest_due_age: Seconds,
    failing: Family<EndpointLabel, Seconds>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("herald");
        let accepted = Counter::default();
        registry.register(
            "events_accepted",
            "Events stored by this process (API or send), duplicates by idempotency key excluded",
            accepted.clone(),
        );
        let attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "attempts",
            "Delivery attempts made by this process, by what became of the delivery",
            attempts.clone(),
        );
        // 5 ms to about 20 s: the request timeout is 15 s.
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        registry.register(
            "attempt_duration_seconds",
            "How long attempts took, from sending the request to the end of the response",
            duration.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "queue_pending",
            "Deliveries not yet succeeded or dead (every process)",
            pending.clone(),
        );
        let due = Gauge::default();
        registry.register(
            "queue_due",
            "Pending deliveries whose attempt is due and not in flight (every process)",
            due.clone(),
        );
        let oldest_due_age = Seconds::default();
        registry.register(
            "queue_oldest_due_age_seconds",
            "How long the longest-waiting due delivery has been due; 0 when none is",
            oldest_due_age.clone(),
        );
        let failing = Family::<EndpointLabel, Seconds>::default();
        registry.register(
            "endpoint_failing_seconds",
            "How long each failing endpoint's deliveries have been failing (its failure streak)",
            failing.clone(),
        );
        Metrics {
            registry,
            accepted,
            attempts,
            duration,
            pending,
            due,
            oldest_due_age,
            failing,
        }
    }

    /// Counts an accepted (new) event.
    pub fn event_accepted(&self) {
        self.accepted.inc();
    }

    /// Counts a recorded attempt and how long it took.
    pub fn attempt(&self, outcome: &Outcome, duration: Duration) {
        let outcome = match outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::RetryAt(_) => "retry",
            Outcome::Dead => "dead",
            Outcome::Interrupted => "interrupted",
        };
        self.attempts.get_or_create(&OutcomeLabel { outcome }).inc();
        self.duration.observe(duration.as_secs_f64());
    }

    /// The text exposition, with the queue's gauges set from `queue` as read at `now`.
    pub fn render(&self, queue: &QueueFigures, now: Millis) -> String {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.pending.set(gauge(queue.pending));
        self.due.set(gauge(queue.due));
        self.oldest_due_age.set(
            queue
                .oldest_due_at
                .map_or(0.0, |at| seconds_between(at, now)),
        );
        self.failing.clear();
        for (tenant, endpoint, since) in &queue.failing {
            let label = EndpointLabel {
                tenant: tenant.clone(),
                endpoint: endpoint.clone(),
            };
            self.failing
                .get_or_create(&label)
                .set(seconds_between(*since, now));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn seconds_between(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_the_queue_read_as_prometheus_text() {
        let metrics = Metrics::new();
        metrics.event_accepted();
        metrics.event_accepted();
        metrics.attempt(&Outcome::Succeeded, Duration::from_millis(12));
        metrics.attempt(&Outcome::RetryAt(5), Duration::from_millis(40));
        metrics.attempt(&Outcome::Dead, Duration::from_secs(15));
        let queue = QueueFigures {
            pending: 7,
            due: 3,
            oldest_due_at: Some(1_000),
            failing: vec![("acme".into(), "ep_1".into(), 500)],
        };
        let text = metrics.render(&queue, 4_000);
        for line in [
            "herald_events_accepted_total 2",
            "herald_attempts_total{outcome=\"succeeded\"} 1",
            "herald_attempts_total{outcome=\"retry\"} 1",
            "herald_attempts_total{outcome=\"dead\"} 1",
            "herald_attempt_duration_seconds_count 3",
            "herald_queue_pending 7",
            "herald_queue_due 3",
            "herald_queue_oldest_due_age_seconds 3.0",
            "herald_endpoint_failing_seconds{tenant=\"acme\",endpoint=\"ep_1\"} 3.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // A recovered endpoint disappears at the next scrape.
        let text = metrics.render(&QueueFigures::default(), 4_000);
        assert!(!text.contains("ep_1"), "{text}");
        assert!(
            text.lines()
                .any(|l| l == "herald_queue_oldest_due_age_seconds 0.0")
        );
    }
}
