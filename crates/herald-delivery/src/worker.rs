//! The worker: claims due deliveries, sends them, records each attempt, decides what next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_signature::Secret;
use herald_store::{Attempt, Claimed, Millis, Outcome, Queue, millis};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::{Client, Request, Response};
use crate::metrics::Metrics;
use crate::retry::{Next, RetryPolicy};

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Unique among every worker on the database (it names its leases).
    pub name: String,
    /// At most this many deliveries claimed per query.
    pub batch: u32,
    /// How long a claim holds; must exceed the request timeout plus time queued.
    pub lease: Duration,
    /// Requests in flight at once, in all.
    pub concurrency: usize,
    /// Requests in flight at once to one endpoint.
    pub per_endpoint: usize,
    /// How often to look for due work when nothing wakes the worker (retries coming due,
    /// work from other processes without a notification channel).
    pub poll: Duration,
    /// When to retry and when to give up.
    pub retry: RetryPolicy,
    /// An endpoint whose every delivery has failed for this long is disabled.
    pub disable_after: Duration,
    /// On shutdown, how long in-flight requests may take to finish before their leases are
    /// handed back.
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// Defaults with a unique name derived from `prefix`.
    pub fn new(prefix: &str) -> WorkerConfig {
        let mut random = [0u8; 6];
        let _ = getrandom::fill(&mut random);
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        WorkerConfig {
            name: format!("{prefix}-{}-{suffix}", std::process::id()),
            batch: 64,
            lease: Duration::from_secs(60),
            concurrency: 64,
            per_endpoint: 8,
            poll: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A delivery worker. Run several, in one process or many: the store's leases keep them apart.
pub struct Worker {
    store: Arc<dyn Queue>,
    client: Client,
    config: Arc<WorkerConfig>,
    metrics: Arc<Metrics>,
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The delivery's next state.
    pub outcome: Outcome,
    /// Disable the endpoint, for this reason.
    pub disable: Option<String>,
}

/// Decides what follows an attempt: pure, so it is tested as a table.
///
/// `unit` is a random number in `[0, 1)` for the retry jitter.
pub fn decide(
    config: &WorkerConfig,
    claimed: &Claimed,
    response: &Response,
    now: Millis,
    unit: f64,
) -> Decision {
    if response.succeeded() {
        return Decision {
            outcome: Outcome::Succeeded,
            disable: None,
        };
    }
    if response.status == Some(410) {
        return Decision {
            outcome: Outcome::Dead,
            disable: Some("the endpoint answered 410 Gone".into()),
        };
    }
    let failing_since = claimed.failing_since.unwrap_or(now);
    let failing_for = Duration::from_millis(u64::try_from(now - failing_since).unwrap_or(0));
    if failing_for >= config.disable_after {
        return Decision {
            outcome: Outcome::Dead,
            disable: Some(format!(
                "every delivery failed for {} hours",
                failing_for.as_secs() / 3600
            )),
        };
    }
    let outcome = match config
        .retry
        .after_failure(claimed.attempts + 1, response.retry_after, unit)
    {
        Next::RetryIn(wait) => {
            Outcome::RetryAt(now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2))
        }
        Next::GiveUp => Outcome::Dead,
    };
    Decision {
        outcome,
        disable: None,
    }
}

impl Worker {
    /// A worker over `store`, sending with `client`.
    pub fn new(store: Arc<dyn Queue>, client: Client, config: WorkerConfig) -> Worker {
        Worker {
            store,
            client,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// What this worker counts (attempts, their outcomes and durations), for `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs until `shutdown` turns true; then stops claiming, lets in-flight requests finish
    /// for up to the grace period, and hands back its remaining leases.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let config = Arc::clone(&self.config);
        let global = Arc::new(Semaphore::new(config.concurrency));
        let endpoints: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Arc::default();
        let mut tasks = JoinSet::new();
        // The store wakes the worker when deliveries become due, here or in another process.
        let due = match self.store.due_work().await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other processes' work; polling only");
                Arc::new(Notify::new())
            }
        };
        tracing::info!(worker = %config.name, "delivery worker started");

        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            // Claim no more than can start now, so leased work never waits for capacity.
            let free = u32::try_from(global.available_permits())
                .unwrap_or(u32::MAX)
                .min(config.batch);
            let lease_until = self.store.now() + millis(config.lease);
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self.store.claim_due(&config.name, free, config.lease).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::error!(%error, "claiming deliveries failed; retrying");
                        Vec::new()
                    }
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    () = due.notified() => {}
                    () = tokio::time::sleep(config.poll) => {}
                    _ = shutdown.changed() => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
                continue;
            }
            for claim in claimed {
                let Ok(permit) = Arc::clone(&global).acquire_owned().await else {
                    break;
                };
                let endpoint = endpoint_semaphore(&endpoints, &claim.endpoint_id, &config);
                let store = Arc::clone(&self.store);
                let client = self.client.clone();
                let config = Arc::clone(&config);
                let metrics = Arc::clone(&self.metrics);
                tasks.spawn(async move {
                    let _permit = permit;
                    let _endpoint = endpoint.acquire_owned().await;
                    // Queued behind its endpoint's other requests, a delivery may have used up
                    // most of its lease. Sent now, it could still be in flight when the lease
                    // lapses and another worker takes it; left alone, it is claimed again then.
                    if !lease_covers(lease_until, store.now(), client.timeout()) {
                        tracing::warn!(delivery = %claim.delivery_id, "lease too short to send; left for the next claim");
                        return;
                    }
                    deliver(&*store, &client, &config, &metrics, claim).await;
                });
            }
        }

        tracing::info!(in_flight = tasks.len(), "delivery worker stopping");
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
        match self.store.release(&config.name).await {
            Ok(released) => tracing::info!(released, "delivery worker stopped"),
            Err(error) => tracing::error!(%error, "releasing leases failed; they expire instead"),
        }
    }
}

fn endpoint_semaphore(
    endpoints: &Mutex<HashMap<String, Arc<Semaphore>>>,
    endpoint_id: &str,
    config: &WorkerConfig,
) -> Arc<Semaphore> {
    let mut endpoints = endpoints
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Forget endpoints with nothing in flight, so the map does not grow without bound.
    if endpoints.len() > 10_000 {
        endpoints.retain(|_, s| s.available_permits() < config.per_endpoint);
    }
    Arc::clone(
        endpoints
            .entry(endpoint_id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(config.per_endpoint))),
    )
}

#[tracing::instrument(skip_all, fields(delivery = %claim.delivery_id, event = %claim.event_id, endpoint = %claim.endpoint_id, attempt = claim.attempts + 1))]
async fn deliver(
    store: &dyn Queue,
    client: &Client,
    config: &WorkerConfig,
    metrics: &Metrics,
    claim: Claimed,
) {
    let secrets: Vec<Secret> = claim
        .secrets
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let started_at = store.now();
    let response = client
        .send(Request {
            url: &claim.url,
            event_id: &claim.event_id,
            payload: &claim.payload,
            secrets: &secrets,
            headers: &claim.headers,
        })
        .await;
    let now = store.now();
    let decision = decide(config, &claim, &response, now, random_unit());
    tracing::debug!(status = ?response.status, error = ?response.error, outcome = ?decision.outcome, "attempt finished");
    let attempt = Attempt {
        started_at,
        duration_ms: millis(response.duration),
        status_code: response.status,
        response_excerpt: response.excerpt,
        error: response.error,
        request_headers: response.request_headers,
        response_headers: response.response_headers,
    };
    match store
        .finish_attempt(&claim.delivery_id, &claim.lease, attempt, decision.outcome)
        .await
    {
        Ok(true) => metrics.attempt(&decision.outcome, response.duration),
        Ok(false) => tracing::warn!("lease lost before the attempt was recorded"),
        Err(error) => {
            // The lease expires and the delivery is tried again: at least once, never lost.
            tracing::error!(%error, "recording the attempt failed");
            return;
        }
    }
    if let Some(reason) = decision.disable {
        tracing::warn!(%reason, "disabling endpoint");
        if let Err(error) = store.disable_endpoint(&claim.endpoint_id, &reason).await {
            tracing::error!(%error, "disabling the endpoint failed");
        }
    }
}

/// Whether a request started at `now` ends, even by timing out, before `lease_until`.
fn lease_covers(lease_until: Millis, now: Millis, timeout: Duration) -> bool {
    now + millis(timeout) <= lease_until
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    // 53 random bits: every f64 in [0, 1) with that spacing.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn claimed(attempts: u32, failing_since: Option<Millis>) -> Claimed {
        Claimed {
            lease: "w/1".into(),
            delivery_id: "dlv_1".into(),
            attempts,
            event_id: "evt_1".into(),
            event_type: "t".into(),
            payload: "{}".into(),
            endpoint_id: "ep_1".into(),
            url: "https://example.com".into(),
            headers: BTreeMap::new(),
            secrets: Vec::new(),
            failing_since,
        }
    }

    fn response(status: Option<u16>, retry_after: Option<u64>) -> Response {
        Response {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            excerpt: None,
            error: status.is_none().then(|| "timed out".into()),
            duration: Duration::from_millis(5),
            request_headers: BTreeMap::new(),
            response_headers: BTreeMap::new(),
        }
    }

    #[test]
    fn decisions() {
        let config = WorkerConfig::new("t");
        let now = 10 * 24 * 3600 * 1000;
        let day = 24 * 3600 * 1000;
        let cases = [
            (
                "200",
                claimed(0, None),
                response(Some(200), None),
                Outcome::Succeeded,
                false,
            ),
            (
                "204 after failures",
                claimed(5, Some(now - day)),
                response(Some(204), None),
                Outcome::Succeeded,
                false,
            ),
            (
                "500 first",
                claimed(0, None),
                response(Some(500), None),
                Outcome::RetryAt(now + 5_000),
                false,
            ),
            (
                "timeout",
                claimed(1, None),
                response(None, None),
                Outcome::RetryAt(now + 300_000),
                false,
            ),
            (
                "302 is a failure",
                claimed(0, None),
                response(Some(302), None),
                Outcome::RetryAt(now + 5_000),
                false,
            ),
            (
                "429 Retry-After",
                claimed(0, None),
                response(Some(429), Some(60)),
                Outcome::RetryAt(now + 60_000),
                false,
            ),
            (
                "last attempt",
                claimed(9, Some(now - day)),
                response(Some(500), None),
                Outcome::Dead,
                false,
            ),
            (
                "410 Gone",
                claimed(0, None),
                response(Some(410), None),
                Outcome::Dead,
                true,
            ),
            (
                "failing 5 days",
                claimed(3, Some(now - 5 * day)),
                response(Some(500), None),
                Outcome::Dead,
                true,
            ),
            (
                "failing 4 days",
                claimed(3, Some(now - 4 * day)),
                response(Some(500), None),
                Outcome::RetryAt(now + 7_200_000),
                false,
            ),
        ];
        for (name, claim, response, outcome, disables) in cases {
            let decision = decide(&config, &claim, &response, now, 0.5);
            assert_eq!(decision.outcome, outcome, "{name}");
            assert_eq!(decision.disable.is_some(), disables, "{name}");
        }
    }

    #[test]
    fn leases_must_outlast_the_request() {
        let timeout = Duration::from_secs(15);
        let cases = [
            ("fresh 60 s lease", 60_000, true),
            ("exactly the timeout", 15_000, true),
            ("one millisecond short", 14_999, false),
            ("lapsed", -1, false),
        ];
        for (name, left, covers) in cases {
            assert_eq!(lease_covers(1_000 + left, 1_000, timeout), covers, "{name}");
        }
    }

    #[test]
    fn random_units_are_in_range() {
        for _ in 0..1000 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit));
        }
    }
}
