//! The worker: claims what it can start now, sends it, gives the slot back as soon as the
//! answer is in, records the attempt, and decides what next.
//!
//! Fairness, rate limits, circuit breakers and ordering keys are the store's claim
//! ([`herald_store::Queue::claim`]); the worker's part is its capacity ([`Capacity`]), asking
//! for no more than it can start, and starting at once what it is given.

use std::sync::Arc;
use std::time::Duration;

use herald_signature::Signer;
use herald_store::{
    Attempt, Claim, ClaimRequest, Claimed, Finish, Millis, Outcome, Queue, Registration, millis,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::capacity::Capacity;
use crate::client::{Client, Request, Response};
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::retry::{Next, RetryPolicy};
use crate::trace;

/// How often a worker beats its registration's heart and reaps gone workers' claims.
const UPKEEP: Duration = Duration::from_secs(1);

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Unique among every worker on the database (it names its claims).
    pub name: String,
    /// At most this many deliveries claimed at once.
    pub batch: u32,
    /// How long a claim holds if this worker stops finishing but does not go away (a stuck
    /// process); a worker that is gone loses its claims at once.
    pub lease: Duration,
    /// Requests in flight at once, in all.
    pub concurrency: usize,
    /// Requests in flight at once to one endpoint, at most: each endpoint's limit starts lower
    /// and grows while it answers well ([`Capacity`]).
    pub per_endpoint: usize,
    /// How often to look for due work when nothing wakes the worker (retries coming due).
    pub poll: Duration,
    /// When to retry and when to give up.
    pub retry: RetryPolicy,
    /// An endpoint whose every delivery has failed for this long is disabled.
    pub disable_after: Duration,
    /// On shutdown, how long requests in flight may take to finish; the rest are cut off and
    /// recorded as interrupted.
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
            batch: 256,
            lease: Duration::from_secs(60),
            concurrency: 512,
            per_endpoint: 256,
            poll: Duration::from_millis(250),
            retry: RetryPolicy::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The delivery's next state.
    pub outcome: Outcome,
    /// The endpoint answered `410 Gone`: the store disables it.
    pub gone: bool,
}

/// Decides what follows an attempt made after `attempts` earlier ones: pure, so it is tested
/// as a table. `unit` is a random number in `[0, 1)` for the retry jitter.
pub fn decide(
    policy: &RetryPolicy,
    attempts: u32,
    response: &Response,
    now: Millis,
    unit: f64,
) -> Decision {
    if response.succeeded() {
        return Decision {
            outcome: Outcome::Succeeded,
            gone: false,
        };
    }
    if response.status == Some(410) {
        return Decision {
            outcome: Outcome::Dead,
            gone: true,
        };
    }
    let outcome = match policy.after_failure(attempts + 1, response.retry_after, unit) {
        Next::RetryIn(wait) => Outcome::RetryAt(now + millis(wait)),
        Next::GiveUp => Outcome::Dead,
    };
    Decision {
        outcome,
        gone: false,
    }
}

/// A delivery worker. Run several, in one process or many: the store keeps them apart.
pub struct Worker {
    store: Arc<dyn Queue>,
    client: Client,
    config: Arc<WorkerConfig>,
    metrics: Arc<Metrics>,
    keys: Arc<Keys>,
}

/// What an attempt task tells the worker.
enum Report {
    /// The answer is in (or the attempt gave up): the endpoint's slot is free.
    Answered {
        endpoint: String,
        succeeded: bool,
        took: Duration,
    },
    /// herald cut the attempt off: the slot is free, and the endpoint's limit unchanged.
    CutOff { endpoint: String },
    /// The attempt is recorded: an ordering key's next delivery may be due.
    Recorded,
}

impl Worker {
    /// A worker over `store`, sending with `client`.
    pub fn new(store: Arc<dyn Queue>, client: Client, config: WorkerConfig) -> Worker {
        Worker {
            store,
            client,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            keys: Arc::default(),
        }
    }

    /// What this worker counts (attempts, their outcomes and durations), for `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs until `shutdown` turns true. Then it claims nothing more, lets requests in flight
    /// finish for up to the grace period, cuts off the rest (recording them as interrupted),
    /// and gives back what it still holds, after every attempt is recorded.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let config = Arc::clone(&self.config);
        let Some(mut registration) = self.register(&config.name, &mut shutdown).await else {
            return;
        };
        // The store wakes the worker when deliveries become due, here or in another process.
        let due = match self.store.due_work().await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot hear of other processes' work; polling only");
                Arc::new(Notify::new())
            }
        };
        tracing::info!(worker = %config.name, "delivery worker started");

        let mut name = config.name.clone();
        let mut generation = 0u32;
        let mut capacity = Capacity::new(config.concurrency, config.per_endpoint);
        let (report, mut reports) = mpsc::unbounded_channel();
        // Cut off requests in flight: at the end of the shutdown grace, or when the worker
        // loses its registration (others may be sending its deliveries by then).
        let (cut_off, cut) = watch::channel(false);
        let mut tasks = JoinSet::new();
        // Every second: the registration's heartbeat, and reaping gone workers' claims. Due
        // even while claims keep coming back full, since a worker whose heartbeat stops is
        // taken for stalled and its endpoints pass to the others.
        let mut upkeep_at = tokio::time::Instant::now() + UPKEEP;
        let mut look = true;
        // When the next endpoint's turn comes, as the last claim saw it.
        let mut next_turn: Option<Millis> = None;

        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            while let Ok(message) = reports.try_recv() {
                look |= apply(&mut capacity, message);
            }
            if look && capacity.free() > 0 {
                let request = ClaimRequest {
                    worker: name.clone(),
                    limit: capacity.free().min(config.batch),
                    capacity: capacity.first(),
                    remaining: capacity.remaining(),
                    lease: config.lease,
                };
                let span = tracing::info_span!(
                    "claim",
                    limit = request.limit,
                    claimed = tracing::field::Empty
                );
                let result = self
                    .store
                    .claim_with_next_turn(&request)
                    .instrument(span.clone())
                    .await;
                if let Ok(claim) = &result {
                    span.record("claimed", claim.deliveries.len());
                }
                match result {
                    Ok(Claim {
                        deliveries: claimed,
                        next_turn: turn,
                    }) => {
                        next_turn = turn;
                        // As many as asked for: more may be due at once. Fewer: what is left
                        // waits for room (a slot given back looks again), for its time (the
                        // pause below), or for new work (the store says).
                        look = claimed.len() >= request.limit as usize;
                        for claim in claimed {
                            capacity.start(&claim.endpoint_id);
                            let attempt = self.attempt(claim, report.clone(), cut.clone());
                            tasks.spawn(attempt);
                        }
                    }
                    Err(error) => {
                        look = false;
                        next_turn = None;
                        tracing::error!(%error, "claiming deliveries failed; trying again");
                    }
                }
            }
            if look && capacity.free() > 0 && tokio::time::Instant::now() < upkeep_at {
                continue;
            }
            // Nothing to start: sleep until the next endpoint's turn (a retry, a rate limit's
            // next token, a circuit half-opening), or until told of new work or of room.
            let pause = match next_turn {
                Some(at) if capacity.free() > 0 => until(at, self.store.now(), config.poll),
                _ => config.poll,
            };
            tokio::select! {
                () = due.notified() => look = true,
                Some(message) = reports.recv() => look |= apply(&mut capacity, message),
                () = tokio::time::sleep(pause) => look = true,
                () = tokio::time::sleep_until(upkeep_at) => {
                    upkeep_at = tokio::time::Instant::now() + UPKEEP;
                    if !registration.alive().await {
                        tracing::error!(worker = %name, "the database lost this worker's registration: cutting off its requests");
                        let _ = cut_off.send(true);
                        while tasks.join_next().await.is_some() {}
                        let _ = cut_off.send(false);
                        generation += 1;
                        name = format!("{}.{generation}", config.name);
                        match self.register(&name, &mut shutdown).await {
                            Some(again) => registration = again,
                            None => break,
                        }
                    }
                    if let Err(error) = self.store.reap().await {
                        tracing::warn!(%error, "handing back a gone worker's claims failed");
                    }
                }
                _ = shutdown.changed() => {}
            }
        }

        tracing::info!(in_flight = tasks.len(), "delivery worker stopping");
        registration.retire().await;
        let finished = tokio::time::timeout(config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                in_flight = tasks.len(),
                "cutting off requests still in flight"
            );
            let _ = cut_off.send(true);
            while tasks.join_next().await.is_some() {}
        }
        // Queued behind every attempt's record, never ahead of one.
        match self.store.release(&name).await {
            Ok(released) => tracing::info!(released, "delivery worker stopped"),
            Err(error) => {
                tracing::error!(%error, "giving back claims failed; reaped when this process is gone")
            }
        }
        drop(registration);
    }

    /// Registers `name`, trying again every second while the database is away; `None` if
    /// shut down first.
    async fn register(
        &self,
        name: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Box<dyn Registration>> {
        loop {
            match self.store.register(name).await {
                Ok(registration) => return Some(registration),
                Err(error) => {
                    tracing::error!(%error, worker = %name, "cannot register the delivery worker; trying again")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return None;
            }
        }
    }

    /// One attempt, as a task: send, report the answer, record, report the record.
    fn attempt(
        &self,
        claim: Claimed,
        report: mpsc::UnboundedSender<Report>,
        cut: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let store = Arc::clone(&self.store);
        let client = self.client.clone();
        let config = Arc::clone(&self.config);
        let metrics = Arc::clone(&self.metrics);
        let keys = Arc::clone(&self.keys);
        async move {
            // In the attempt's own task, not the claim loop: a key not yet parsed costs 40 µs.
            let signers = keys.signers(&claim.secrets);
            let endpoint = claim.endpoint_id.clone();
            let started = std::time::Instant::now();
            let finish = deliver(&*store, &client, &config, claim, &signers, cut).await;
            let _ = report.send(match finish.outcome {
                Outcome::Interrupted => Report::CutOff { endpoint },
                outcome => Report::Answered {
                    endpoint,
                    succeeded: outcome == Outcome::Succeeded,
                    took: started.elapsed(),
                },
            });
            record(&*store, &metrics, finish).await;
            let _ = report.send(Report::Recorded);
        }
    }
}

/// How long from `now` until a turn `at`: at least a couple of milliseconds (a turn due now but
/// taken by another process's claim), at most `poll`.
fn until(at: Millis, now: Millis, poll: Duration) -> Duration {
    let wait = u64::try_from(at - now).unwrap_or(0);
    Duration::from_millis(wait).clamp(Duration::from_millis(2), poll)
}

/// Applies a report; true when a claim may now find work that capacity held back.
fn apply(capacity: &mut Capacity, report: Report) -> bool {
    match report {
        Report::Answered {
            endpoint,
            succeeded,
            took,
        } => {
            let held_back = capacity.held_back(&endpoint);
            capacity.done(&endpoint, succeeded, took, std::time::Instant::now());
            held_back
        }
        Report::CutOff { endpoint } => {
            let held_back = capacity.held_back(&endpoint);
            capacity.cut_off(&endpoint);
            held_back
        }
        // What a record makes due (an ordering key's next delivery) is announced by the store.
        Report::Recorded => false,
    }
}

/// The header that tells the receiver which version of a versioned webhook's body it got
/// (`herald_core::VERSION_HEADER` documents it).
pub const VERSION_HEADER: &str = "herald-event-version";

/// Sends one claimed delivery and decides what follows, in a span `attempt` that continues
/// the trace its event was accepted in; cut off (`cut` turns true), it is recorded as
/// interrupted and due again at once.
async fn deliver(
    store: &dyn Queue,
    client: &Client,
    config: &WorkerConfig,
    claim: Claimed,
    signers: &[Signer],
    cut: watch::Receiver<bool>,
) -> Finish {
    let span = tracing::info_span!(
        "attempt",
        delivery = %claim.delivery_id,
        event = %claim.event_id,
        endpoint = %claim.endpoint_id,
        attempt = claim.attempts + 1,
        "http.response.status_code" = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let traceparent = trace::continue_in(&span, claim.traceparent.as_deref());
    send_and_decide(store, client, config, claim, signers, cut, traceparent)
        .instrument(span)
        .await
}

async fn send_and_decide(
    store: &dyn Queue,
    client: &Client,
    config: &WorkerConfig,
    claim: Claimed,
    signers: &[Signer],
    mut cut: watch::Receiver<bool>,
    traceparent: Option<String>,
) -> Finish {
    let started_at = store.now();
    // The endpoint's own headers, and for this attempt the body's version and its trace.
    let extended;
    let headers = if claim.version.is_none() && traceparent.is_none() {
        &claim.headers
    } else {
        let mut headers = claim.headers.clone();
        if let Some(version) = &claim.version {
            headers.insert(VERSION_HEADER.into(), version.clone());
        }
        if let Some(traceparent) = traceparent {
            headers.insert(trace::TRACEPARENT.into(), traceparent);
        }
        extended = headers;
        &extended
    };
    let sent = client.send(Request {
        url: &claim.url,
        event_id: &claim.event_id,
        payload: &claim.payload,
        secrets: signers,
        headers,
    });
    let interrupted = async {
        if cut.wait_for(|cut| *cut).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let (response, decision) = tokio::select! {
        response = sent => {
            // Only a retry's time has jitter: a success asks for no random bytes (a system call).
            let unit = if response.succeeded() { 0.0 } else { random_unit() };
            let decision = decide(&config.retry, claim.attempts, &response, store.now(), unit);
            (response, decision)
        }
        () = interrupted => {
            let response = Response::interrupted(started_at, store.now());
            // Due again at once, for the next worker: this try may or may not have arrived.
            (response, Decision { outcome: Outcome::Interrupted, gone: false })
        }
    };
    let span = tracing::Span::current();
    if let Some(status) = response.status {
        span.record("http.response.status_code", i64::from(status));
    }
    span.record("duration_ms", millis(response.duration));
    tracing::debug!(status = ?response.status, error = ?response.error, outcome = ?decision.outcome, "attempt made");
    Finish {
        delivery_id: claim.delivery_id,
        endpoint_id: claim.endpoint_id,
        event_id: claim.event_id,
        lease: claim.lease,
        attempt: Attempt {
            started_at,
            duration_ms: millis(response.duration),
            status_code: response.status,
            response_excerpt: response.excerpt,
            error: response.error,
            request_headers: response.request_headers,
            response_headers: response.response_headers,
        },
        outcome: decision.outcome,
        gone: decision.gone,
        disable_after: config.disable_after,
    }
}

/// Records an attempt and counts it.
async fn record(store: &dyn Queue, metrics: &Metrics, finish: Finish) {
    let outcome = finish.outcome;
    let duration = Duration::from_millis(u64::try_from(finish.attempt.duration_ms).unwrap_or(0));
    match store.finish(finish).await {
        Ok(finished) => {
            if finished.held {
                metrics.attempt(&outcome, duration);
            } else {
                tracing::warn!("the claim was handed back before the attempt was recorded");
            }
            if let Some(reason) = finished.disabled {
                tracing::warn!(%reason, "endpoint disabled");
            }
        }
        // The claim is handed back when this process goes, and the delivery tried again: at
        // least once, never lost.
        Err(error) => tracing::error!(%error, "recording the attempt failed"),
    }
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
        let policy = RetryPolicy::default();
        let now = 10 * 24 * 3600 * 1000;
        let cases = [
            (
                "200",
                0,
                response(Some(200), None),
                Outcome::Succeeded,
                false,
            ),
            (
                "204 after failures",
                5,
                response(Some(204), None),
                Outcome::Succeeded,
                false,
            ),
            (
                "500 first",
                0,
                response(Some(500), None),
                Outcome::RetryAt(now + 5_000),
                false,
            ),
            (
                "timeout",
                1,
                response(None, None),
                Outcome::RetryAt(now + 300_000),
                false,
            ),
            (
                "302 is a failure",
                0,
                response(Some(302), None),
                Outcome::RetryAt(now + 5_000),
                false,
            ),
            (
                "429 Retry-After",
                0,
                response(Some(429), Some(60)),
                Outcome::RetryAt(now + 60_000),
                false,
            ),
            (
                "last attempt",
                9,
                response(Some(500), None),
                Outcome::Dead,
                false,
            ),
            (
                "410 Gone",
                0,
                response(Some(410), None),
                Outcome::Dead,
                true,
            ),
        ];
        for (name, attempts, response, outcome, gone) in cases {
            let decision = decide(&policy, attempts, &response, now, 0.5);
            assert_eq!(decision.outcome, outcome, "{name}");
            assert_eq!(decision.gone, gone, "{name}");
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
