//! Group commit: the writes of many concurrent callers (events accepted, attempts recorded,
//! deliveries claimed, leases given back) share one transaction, and so one flush to disk.
//!
//! A commit that waits for the disk costs about a millisecond or more, whatever it holds.
//! Committing every accepted event and every recorded attempt on its own caps throughput at
//! that rate; here, one task takes whatever writes are queued, applies them in one
//! transaction and answers each caller only after the commit. While it waits on the disk,
//! the next batch gathers, so batches grow with the load and a lone write waits for nobody.
//! On the shared runtime it also lets the tasks about to queue a write run before it takes a
//! batch (`gather`): a few polls of the runtime, not a timer.
//!
//! Where one writer is all the database takes (SQLite), the main task runs on a thread of its
//! own ([`Home::Thread`]): it is the step every delivery passes through twice, and on the
//! shared runtime each of its statements would resume only after the request tasks queued
//! ahead of it.
//!
//! "Accepted" still means committed: no caller hears back before its write is durable. If a
//! batch fails, each of its writes is retried in a transaction of its own, so one bad write
//! (a tenant that does not exist) fails alone.
//!
//! Where the database takes concurrent writers (PostgreSQL), accepts also have a lane of their
//! own (or several, taking turns at one queue), so events are not held up behind the worker's
//! attempt records, and one batch's statements run while another's commit waits for the disk.
//! Accepts whose order or uniqueness rides on their commit order (an ordering key, an
//! idempotency key) stay in the main lane, with the worker's writes, which keeps its order too:
//! a worker's release never overtakes its finishes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::sql::claim::Leased;
use crate::{
    Accepted, ClaimRequest, Error, ErrorKind, Finish, Finished, Millis, NewEvent, lease_token,
};

/// Writes gathered per transaction, at most: bounds a transaction's size and its latency.
const MAX_BATCH: usize = 512;

/// Writes waiting for the committer, at most, before callers wait to queue theirs.
const QUEUE: usize = 4096;

/// A write that can share a transaction with others.
#[derive(Debug)]
pub(crate) enum Write {
    /// [`crate::Log::accept_event`].
    Accept { new: NewEvent, now: Millis },
    /// [`crate::Queue::finish`], at `now`.
    Finish { finish: Finish, now: Millis },
    /// [`crate::Queue::claim`], under the lease token `lease`.
    Claim {
        request: ClaimRequest,
        lease: String,
        now: Millis,
    },
    /// [`crate::Queue::release`], or a claim handed back unsent: after the finishes queued
    /// before it, never ahead of them.
    Release { holder: Holder, now: Millis },
}

impl Write {
    /// An accept with neither an ordering key nor an idempotency key: neither its order nor
    /// whether it is stored rides on when it commits.
    pub(crate) fn is_unkeyed_accept(&self) -> bool {
        matches!(self, Write::Accept { new, .. }
            if new.ordering_key.is_none() && new.idempotency_key.is_none())
    }
}

/// Whose leases a [`Write::Release`] gives back.
#[derive(Debug)]
pub(crate) enum Holder {
    /// Every lease a worker holds (the tokens `worker/…`).
    Worker(String),
    /// The deliveries `ids` of the one claim leased under `lease`.
    Claim {
        lease: String,
        ids: Vec<crate::sql::DeliveryKey>,
    },
}

/// What a [`Write`] produced.
#[derive(Debug)]
pub(crate) enum Written {
    Accepted(Accepted),
    Finished(Finished),
    Claimed(Leased),
    Released(u64),
}

/// A backend that can apply a batch of writes in one transaction.
#[async_trait]
pub(crate) trait Apply: Send + 'static {
    /// Applies every write in one transaction: either all commit, with one result each in
    /// order, or nothing does.
    async fn apply(&mut self, writes: &[Write]) -> Result<Vec<Written>, Error>;

    /// Nothing is queued: let go of what only the next batch would need (the connection).
    async fn idle(&mut self);

    /// How long to wait for the next write, when nothing is queued, before [`idle`]: a
    /// backend that prepares its statements again for every connection it takes keeps the
    /// connection through the short gaps between writes of a steady load. Zero by default.
    ///
    /// [`idle`]: Apply::idle
    fn linger(&self) -> Duration {
        Duration::ZERO
    }

    /// How long a committer at home on a thread of its own ([`Home::Thread`]) waits, having
    /// taken fewer than [`FEW`] writes in the middle of a steady load, for others to join them
    /// before it applies them: each commit waits for the disk, and at a steady rate most
    /// batches would otherwise hold one write each. The wait blocks the committer's thread (a
    /// timer of the runtime's ticks in milliseconds), so committers on the shared runtime never
    /// wait. Zero by default.
    fn window(&self) -> Duration {
        Duration::ZERO
    }
}

/// A batch of fewer writes than this, taken while writes keep coming, waits [`Apply::window`]
/// for more.
const FEW: usize = 4;

/// Small batches applied at once after a wait that caught no write.
const SKIP: u32 = 3;

type Queued = (Write, oneshot::Sender<Result<Written, Error>>);

/// The handle callers queue their writes on; the committing tasks end when the last handle
/// is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Committer {
    /// The main lane: one task, writes committed in the order they were queued.
    queue: mpsc::Sender<Queued>,
    /// Where accepts that need no order go: the accept lanes, or the main lane if none.
    accepts: mpsc::Sender<Queued>,
}

/// A queue one or more committing tasks take batches from, in turn.
type Incoming = Arc<Mutex<mpsc::Receiver<Queued>>>;

/// Where the main committing task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// On the current tokio runtime, beside every other task.
    Shared,
    /// On a thread of its own, with a runtime of its own: where one writer is the step every
    /// delivery passes through twice (claimed, recorded), so that each of its statements
    /// resumes as soon as the database answers, not once the shared runtime has polled the
    /// hundreds of request tasks queued ahead of it. Only for writes whose connections need
    /// no particular runtime (SQLite's run on threads of their own).
    Thread,
}

impl Committer {
    /// Starts the main committing task on `main` where `home` says, and an accept lane on each
    /// of `lanes` on the current tokio runtime. With no lanes, every write goes through the
    /// main one.
    pub(crate) fn start<A: Apply>(
        main: A,
        lanes: Vec<A>,
        home: Home,
    ) -> std::io::Result<Committer> {
        let (queue, incoming) = mpsc::channel(QUEUE);
        let main = commit_loop(main, Arc::new(Mutex::new(incoming)), home);
        match home {
            Home::Shared => {
                tokio::spawn(main);
            }
            Home::Thread => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                // Ends when the last handle is dropped, as the task would.
                std::thread::Builder::new()
                    .name("herald-commit".into())
                    .spawn(move || runtime.block_on(main))?;
            }
        }
        if lanes.is_empty() {
            return Ok(Committer {
                accepts: queue.clone(),
                queue,
            });
        }
        let (accepts, incoming) = mpsc::channel(QUEUE);
        let incoming: Incoming = Arc::new(Mutex::new(incoming));
        for lane in lanes {
            tokio::spawn(commit_loop(lane, Arc::clone(&incoming), Home::Shared));
        }
        Ok(Committer { queue, accepts })
    }

    /// Queues `write` and waits until it is committed (or failed).
    pub(crate) async fn write(&self, write: Write) -> Result<Written, Error> {
        let (reply, done) = oneshot::channel();
        let lane = if write.is_unkeyed_accept() {
            &self.accepts
        } else {
            &self.queue
        };
        lane.send((write, reply)).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    pub(crate) async fn accept(&self, new: NewEvent, now: Millis) -> Result<Accepted, Error> {
        match self.write(Write::Accept { new, now }).await? {
            Written::Accepted(accepted) => Ok(accepted),
            _ => Err(mismatched()),
        }
    }

    pub(crate) async fn finish(&self, finish: Finish, now: Millis) -> Result<Finished, Error> {
        match self.write(Write::Finish { finish, now }).await? {
            Written::Finished(finished) => Ok(finished),
            _ => Err(mismatched()),
        }
    }

    /// Leases what `request` allows; the caller reads what sending it needs after the commit
    /// (`sql::claim::read`), so that the one writer is not kept doing it.
    pub(crate) async fn claim(&self, request: &ClaimRequest, now: Millis) -> Result<Leased, Error> {
        let write = Write::Claim {
            lease: lease_token(&request.worker),
            request: request.clone(),
            now,
        };
        match self.write(write).await? {
            Written::Claimed(claimed) => Ok(claimed),
            _ => Err(mismatched()),
        }
    }

    pub(crate) async fn release(&self, holder: Holder, now: Millis) -> Result<u64, Error> {
        match self.write(Write::Release { holder, now }).await? {
            Written::Released(n) => Ok(n),
            _ => Err(mismatched()),
        }
    }
}

async fn commit_loop(mut backend: impl Apply, incoming: Incoming, home: Home) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    let mut window = Window {
        wait: match home {
            Home::Thread => backend.window(),
            Home::Shared => Duration::ZERO,
        },
        skip: 0,
    };
    loop {
        {
            // Held while this task waits for writes, not while it applies them: the next
            // lane gathers the next batch meanwhile.
            let mut queue = incoming.lock().await;
            let linger = backend.linger();
            // Whether writes kept coming: this batch came within the linger of the last.
            let mut steady = false;
            let received = if linger.is_zero() {
                if queue.is_empty() {
                    backend.idle().await;
                }
                queue.recv_many(&mut batch, MAX_BATCH).await
            } else {
                // Writes already queued are taken at once (the timeout polls first), and
                // `recv_many` is cancel safe: a timeout loses no write.
                match tokio::time::timeout(linger, queue.recv_many(&mut batch, MAX_BATCH)).await {
                    Ok(received) => {
                        steady = true;
                        received
                    }
                    Err(_) => {
                        backend.idle().await;
                        queue.recv_many(&mut batch, MAX_BATCH).await
                    }
                }
            };
            if received == 0 {
                break;
            }
            // A lone write after a pause is applied at once.
            if steady {
                window.widen(&mut queue, &mut batch);
            }
            if home == Home::Shared {
                gather(&mut queue, &mut batch).await;
            }
        }
        let (writes, replies): (Vec<Write>, Vec<_>) = batch.drain(..).unzip();
        match backend.apply(&writes).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that stopped waiting still had its write committed.
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) => {
                let mut replies = replies.into_iter();
                let mut unavailable = None;
                if error.kind() == ErrorKind::Unavailable {
                    unavailable = Some(error);
                } else if writes.len() == 1 {
                    if let Some(reply) = replies.next() {
                        let _ = reply.send(Err(error));
                    }
                } else {
                    // One write's fault fails the batch: apply each alone, so only it fails.
                    tracing::debug!(
                        %error,
                        size = writes.len(),
                        "batch failed; applying its writes one by one"
                    );
                    for write in &writes {
                        let Some(reply) = replies.next() else { break };
                        let result = backend
                            .apply(std::slice::from_ref(write))
                            .await
                            .and_then(|mut results| results.pop().ok_or_else(mismatched));
                        match result {
                            Err(error) if error.kind() == ErrorKind::Unavailable => {
                                let _ = reply.send(Err(Error::new(
                                    ErrorKind::Unavailable,
                                    error.to_string(),
                                )));
                                unavailable = Some(error);
                                break;
                            }
                            result => {
                                let _ = reply.send(result);
                            }
                        }
                    }
                }
                // The database is away: no write of the batch can succeed alone either, nor can
                // those queued while it waited. Answer them all now, not one acquire timeout
                // after another, so no caller waits much longer than one timeout.
                if let Some(error) = unavailable {
                    let message = error.to_string();
                    let fail = |reply: oneshot::Sender<_>| {
                        let _ =
                            reply.send(Err(Error::new(ErrorKind::Unavailable, message.clone())));
                    };
                    replies.for_each(fail);
                    // Another lane waiting at the queue takes those itself, and meets the same
                    // outage: never wait for it here.
                    if let Ok(mut queue) = incoming.try_lock() {
                        std::iter::from_fn(|| queue.try_recv().ok().map(|(_, r)| r)).for_each(fail);
                    }
                }
            }
        }
    }
}

/// Yields in a row that bring no write, after which a committer on the shared runtime applies
/// its batch ([`gather`]).
const PATIENCE: u32 = 4;

/// Yields a committer on the shared runtime makes at most before it applies its batch.
const GATHER: u32 = 32;

/// Lets the writes about to be queued join `batch`, on the shared runtime: when the
/// committer wakes, the tasks that will queue the next writes (requests being read and
/// checked, attempts being recorded) are often ready to run but not yet run. Taking only
/// what was queued by then, a steady load of events through the HTTP API went out in batches
/// of about 16 with 32 clients, and of 8 with two processes on one database, each
/// transaction costing the database about the same whatever it holds. Yielding lets them run
/// first; it stops when [`PATIENCE`] yields in a row bring nothing, after [`GATHER`] in all,
/// or when the batch is full, so a lone write waits a few polls of the runtime, never a timer.
async fn gather(queue: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
    let mut idle = 0;
    for _ in 0..GATHER {
        if idle == PATIENCE || batch.len() >= MAX_BATCH {
            break;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            let Ok(queued) = queue.try_recv() else { break };
            batch.push(queued);
        }
        idle = if batch.len() == before { idle + 1 } else { 0 };
    }
}

/// How a committer on a thread of its own lets a small batch grow ([`Apply::window`]).
struct Window {
    wait: Duration,
    /// Small batches left to apply at once, because the last wait caught nothing.
    skip: u32,
}

impl Window {
    /// In a steady stream, a small batch waits a little for the writes about to come, so one
    /// commit serves them all. A wait that caught nothing says the writes are further apart
    /// than that: the next few small batches go at once.
    fn widen(&mut self, queue: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
        let taken = batch.len();
        if self.wait.is_zero() || taken >= FEW {
            return;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        // The committer's own thread, with nothing else to run: sleeping blocks nobody.
        std::thread::sleep(self.wait);
        while batch.len() < MAX_BATCH {
            let Ok(queued) = queue.try_recv() else { break };
            batch.push(queued);
        }
        if batch.len() == taken {
            self.skip = SKIP;
        }
    }
}

fn stopped() -> Error {
    Error::new(
        ErrorKind::Database,
        "the store's committing task has stopped",
    )
}

fn mismatched() -> Error {
    Error::new(
        ErrorKind::Database,
        "the store's committing task answered with the wrong kind of result",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::time::Instant;

    use super::{Apply, Committer, Holder, Write, Written};
    use crate::{Error, ErrorKind};

    /// A database that is away: every batch waits out its acquire timeout, then fails.
    struct Away;

    #[async_trait]
    impl Apply for Away {
        async fn apply(&mut self, _: &[Write]) -> Result<Vec<Written>, Error> {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(Error::unavailable("acquire timed out"))
        }

        async fn idle(&mut self) {}
    }

    /// Notes the thread each batch is applied on, and when it is dropped (its loop ended).
    struct Where {
        threads: Arc<Mutex<Vec<String>>>,
        dropped: Arc<AtomicBool>,
    }

    #[async_trait]
    impl Apply for Where {
        async fn apply(&mut self, writes: &[Write]) -> Result<Vec<Written>, Error> {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.threads.lock().unwrap().push(name);
            Ok(writes.iter().map(|_| Written::Released(0)).collect())
        }

        async fn idle(&mut self) {}
    }

    impl Drop for Where {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_committer_at_home_on_a_thread_applies_there_and_stops_with_its_last_handle() {
        let threads = Arc::<Mutex<Vec<String>>>::default();
        let dropped = Arc::<AtomicBool>::default();
        let backend = Where {
            threads: Arc::clone(&threads),
            dropped: Arc::clone(&dropped),
        };
        let committer = Committer::start(backend, Vec::new(), super::Home::Thread).unwrap();
        committer
            .release(Holder::Worker("worker".into()), 0)
            .await
            .unwrap();
        committer
            .release(Holder::Worker("worker".into()), 0)
            .await
            .unwrap();
        assert_eq!(*threads.lock().unwrap(), ["herald-commit", "herald-commit"]);
        drop(committer);
        let started = std::time::Instant::now();
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the loop outlived its handles"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Keeps its connection through gaps of `linger`, waits `window` for a small batch to
    /// grow, and notes each batch's size.
    struct Windowed {
        linger: Duration,
        window: Duration,
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    #[async_trait]
    impl Apply for Windowed {
        async fn apply(&mut self, writes: &[Write]) -> Result<Vec<Written>, Error> {
            self.sizes.lock().unwrap().push(writes.len());
            Ok(writes.iter().map(|_| Written::Released(0)).collect())
        }

        async fn idle(&mut self) {}

        fn linger(&self) -> Duration {
            self.linger
        }

        fn window(&self) -> Duration {
            self.window
        }
    }

    #[tokio::test]
    async fn a_small_batch_in_a_steady_stream_waits_for_the_next_write_and_a_lone_one_does_not() {
        let sizes = Arc::<Mutex<Vec<usize>>>::default();
        let backend = Windowed {
            linger: Duration::from_millis(100),
            window: Duration::from_millis(400),
            sizes: Arc::clone(&sizes),
        };
        let committer = Committer::start(backend, Vec::new(), super::Home::Thread).unwrap();
        let release = || committer.release(Holder::Worker("w".into()), 0);
        // Nothing came within the linger: the committer let go, and a lone write goes at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        release().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "a lone write waited"
        );
        // The next comes within the linger: it waits for the one after, and they commit as one.
        let started = Instant::now();
        let second = tokio::spawn({
            let committer = committer.clone();
            async move { committer.release(Holder::Worker("w".into()), 0).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        release().await.unwrap();
        second.await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(*sizes.lock().unwrap(), [1, 2]);
        // A wait that catches nothing: the next small batches go at once.
        let started = Instant::now();
        release().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        let started = Instant::now();
        release().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "waited again after a wait that caught nothing"
        );
        assert_eq!(*sizes.lock().unwrap(), [1, 2, 1, 1]);
    }

    /// Writers a few polls away from queuing their writes when the committer wakes (a request
    /// still being read and checked) share its batch, on the shared runtime, with no timer.
    #[tokio::test(start_paused = true)]
    async fn writes_about_to_be_queued_join_the_batch_on_the_shared_runtime() {
        let sizes = Arc::<Mutex<Vec<usize>>>::default();
        let backend = Windowed {
            linger: Duration::ZERO,
            window: Duration::ZERO,
            sizes: Arc::clone(&sizes),
        };
        let committer = Committer::start(backend, Vec::new(), super::Home::Shared).unwrap();
        let started = Instant::now();
        let writers: Vec<_> = (0..10)
            .map(|polls| {
                let committer = committer.clone();
                tokio::spawn(async move {
                    for _ in 0..polls {
                        tokio::task::yield_now().await;
                    }
                    committer.release(Holder::Worker("w".into()), 0).await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(*sizes.lock().unwrap(), [10]);
        assert_eq!(started.elapsed(), Duration::ZERO, "no timer was waited on");
        // A lone write goes after a few polls that bring nothing.
        committer
            .release(Holder::Worker("w".into()), 0)
            .await
            .unwrap();
        assert_eq!(*sizes.lock().unwrap(), [10, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_accept_lane_answers_its_batch_while_another_lane_waits_for_writes() {
        let committer = Committer::start(Away, vec![Away, Away], super::Home::Shared).unwrap();
        let started = Instant::now();
        let event = crate::NewEvent::new("t", "new-subscription", "{}");
        let failed = tokio::time::timeout(Duration::from_secs(5), committer.accept(event, 0))
            .await
            .expect("answered, not left waiting for the next write");
        assert_eq!(failed.unwrap_err().kind(), ErrorKind::Unavailable);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn writes_queued_behind_an_unavailable_batch_fail_with_it() {
        let committer = Committer::start(Away, Vec::new(), super::Home::Shared).unwrap();
        let started = Instant::now();
        let first = tokio::spawn({
            let committer = committer.clone();
            async move { committer.release(Holder::Worker("w".into()), 0).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let queued = committer.release(Holder::Worker("w".into()), 0).await;
        assert_eq!(queued.unwrap_err().kind(), ErrorKind::Unavailable);
        assert_eq!(
            first.await.unwrap().unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert!(
            started.elapsed() < Duration::from_millis(1_600),
            "the queued write waited {:?}, one timeout after another",
            started.elapsed()
        );
    }
}

#[cfg(test)]
mod lanes {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::time::Instant;

    use super::{Apply, Committer, Holder, Write, Written};
    use crate::{Accepted, Error, Event, NewEvent};

    /// Which task applied which write, by its payload (or "release").
    type Seen = Arc<Mutex<Vec<(&'static str, String)>>>;

    /// A database whose every transaction takes `delay`, noting who applied what.
    struct Slow {
        lane: &'static str,
        delay: Duration,
        seen: Seen,
    }

    #[async_trait]
    impl Apply for Slow {
        async fn apply(&mut self, writes: &[Write]) -> Result<Vec<Written>, Error> {
            tokio::time::sleep(self.delay).await;
            let mut seen = self.seen.lock().unwrap();
            Ok(writes
                .iter()
                .map(|write| match write {
                    Write::Accept { new, now } => {
                        seen.push((self.lane, new.payload.clone()));
                        Written::Accepted(Accepted {
                            event: Event {
                                id: new.payload.clone(),
                                tenant_id: new.tenant_id.clone(),
                                event_type: new.event_type.clone(),
                                payload: new.payload.clone(),
                                idempotency_key: new.idempotency_key.clone(),
                                ordering_key: new.ordering_key.clone(),
                                test: false,
                                created_at: *now,
                                version: None,
                            },
                            created: true,
                            deliveries: 1,
                            skipped: 0,
                        })
                    }
                    _ => {
                        seen.push((self.lane, "release".into()));
                        Written::Released(0)
                    }
                })
                .collect())
        }

        async fn idle(&mut self) {}
    }

    fn committer(delay: Duration) -> (Committer, Seen) {
        let seen = Seen::default();
        let slow = |lane| Slow {
            lane,
            delay,
            seen: Arc::clone(&seen),
        };
        let committer =
            Committer::start(slow("main"), vec![slow("lane")], super::Home::Shared).unwrap();
        (committer, seen)
    }

    fn event(payload: &str) -> NewEvent {
        NewEvent::new("t", "new-subscription", payload)
    }

    #[tokio::test(start_paused = true)]
    async fn an_accept_commits_while_the_workers_batch_waits() {
        let (committer, _) = committer(Duration::from_millis(300));
        let started = Instant::now();
        let first = tokio::spawn({
            let committer = committer.clone();
            async move { committer.release(Holder::Worker("worker".into()), 0).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        committer.accept(event("1"), 0).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(350));
        first.await.unwrap().unwrap();
        // In one lane, the accept would have waited for the release: 600 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn accept_lanes_take_turns() {
        let seen = Seen::default();
        let slow = |lane| Slow {
            lane,
            delay: Duration::from_millis(300),
            seen: Arc::clone(&seen),
        };
        let committer = Committer::start(
            slow("main"),
            vec![slow("lane"), slow("lane")],
            super::Home::Shared,
        )
        .unwrap();
        let started = Instant::now();
        let first = tokio::spawn({
            let committer = committer.clone();
            async move { committer.accept(event("1"), 0).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        committer.accept(event("2"), 0).await.unwrap();
        first.await.unwrap().unwrap();
        // One after the other would be 600 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn accepts_with_a_key_and_the_workers_writes_keep_the_main_lane() {
        let (committer, seen) = committer(Duration::from_millis(10));
        let mut ordered = event("ordered");
        ordered.ordering_key = Some("k".into());
        let mut once = event("once");
        once.idempotency_key = Some("k".into());
        for new in [ordered, once, event("free")] {
            committer.accept(new, 0).await.unwrap();
        }
        committer
            .release(Holder::Worker("worker".into()), 0)
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                ("main", "ordered".to_owned()),
                ("main", "once".to_owned()),
                ("lane", "free".to_owned()),
                ("main", "release".to_owned()),
            ]
        );
    }
}
