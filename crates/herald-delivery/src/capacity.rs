//! How many attempts this worker may have in flight, in all and to each endpoint.
//!
//! Each endpoint's limit adapts, as TCP's congestion window does: it starts at [`START`] (or the
//! ceiling, if lower) and grows with successes up to the ceiling (`per_endpoint`): by one per
//! success (doubling each window) until its first failure, then by one per window. Each failure
//! or timeout halves it, and growth goes on from there by one per window. It grows only while
//! the receiver answers about as fast as it can (within twice its best response time, plus
//! [`SLACK`]): a receiver that answers more slowly the more it is sent is queueing requests,
//! and more of them would only queue longer. A fast, healthy receiver soon gets all the
//! concurrency it can use without anyone tuning a knob; a slow or failing one holds back only
//! its own deliveries, and ever fewer of this worker's slots (until the store's circuit breaker
//! leaves it one probe at a time). A slot is given back as soon as the response (or the
//! timeout) is in, not when the attempt is recorded.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Where every endpoint's limit starts.
pub const START: u32 = 8;

/// Response times within twice the best one plus this count as "not queueing": on loopback
/// or a LAN the best is well under a millisecond, and scheduling noise alone exceeds twice it.
pub const SLACK: Duration = Duration::from_millis(2);

/// Endpoints remembered, at most, while idle; beyond it idle ones start over.
const REMEMBERED: usize = 10_000;

/// One endpoint's share.
#[derive(Clone, Debug, PartialEq)]
struct Share {
    in_flight: u32,
    /// The current limit.
    limit: u32,
    /// Below this, the limit grows by one per success; from it, by one per window.
    threshold: u32,
    /// Successes since the limit last grew, while it grows by windows.
    acked: u32,
    /// The best response time lately: the lowest of the last [`BEST_OF`] or so, so that a
    /// receiver that has become slower for good is measured against what it is now.
    best: Best,
}

/// How long a best response time counts.
pub const BEST_OF: Duration = Duration::from_secs(10);

/// The lowest response time of the current half of [`BEST_OF`] and of the one before.
#[derive(Clone, Debug, Default, PartialEq)]
struct Best {
    since: Option<Instant>,
    current: Option<Duration>,
    previous: Option<Duration>,
}

impl Best {
    /// Notes `took`, answered at `at`; returns the best.
    fn note(&mut self, took: Duration, at: Instant) -> Duration {
        let since = *self.since.get_or_insert(at);
        let elapsed = at.saturating_duration_since(since);
        if elapsed >= BEST_OF {
            // Nothing for a whole window: start over.
            *self = Best::default();
            self.since = Some(at);
        } else if elapsed >= BEST_OF / 2 {
            self.previous = self.current.take();
            self.since = Some(at);
        }
        self.current = Some(self.current.map_or(took, |c| c.min(took)));
        self.previous
            .map_or(took, |p| p.min(took))
            .min(self.current.unwrap_or(took))
    }
}

/// The worker's slots.
#[derive(Debug)]
pub struct Capacity {
    total: u32,
    in_flight: u32,
    ceiling: u32,
    endpoints: HashMap<String, Share>,
}

impl Capacity {
    /// `total` in flight at once, at most `ceiling` to one endpoint.
    pub fn new(total: usize, ceiling: usize) -> Capacity {
        Capacity {
            total: u32::try_from(total).unwrap_or(u32::MAX).max(1),
            in_flight: 0,
            ceiling: u32::try_from(ceiling).unwrap_or(u32::MAX).max(1),
            endpoints: HashMap::new(),
        }
    }

    /// Attempts that could start now, in all.
    pub fn free(&self) -> u32 {
        self.total.saturating_sub(self.in_flight)
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// What an endpoint this worker knows nothing of may take.
    pub fn first(&self) -> u32 {
        START.min(self.ceiling)
    }

    /// What each endpoint this worker knows may take now, where it differs from
    /// [`Capacity::first`]: what a claim needs to know.
    pub fn remaining(&self) -> BTreeMap<String, u32> {
        let first = self.first();
        self.endpoints
            .iter()
            .map(|(endpoint, share)| (endpoint, share.limit.saturating_sub(share.in_flight)))
            .filter(|(_, free)| *free != first)
            .map(|(endpoint, free)| (endpoint.clone(), free))
            .collect()
    }

    /// Whether `endpoint` can take no more now (it or the whole worker is at its limit): when
    /// one of its attempts ends, a claim may find work that was held back.
    pub fn held_back(&self, endpoint: &str) -> bool {
        self.free() == 0
            || self
                .endpoints
                .get(endpoint)
                .is_some_and(|share| share.in_flight >= share.limit)
    }

    /// An attempt to `endpoint` starts.
    pub fn start(&mut self, endpoint: &str) {
        self.in_flight += 1;
        let first = self.first();
        let ceiling = self.ceiling;
        self.endpoints
            .entry(endpoint.to_owned())
            .or_insert(Share {
                in_flight: 0,
                limit: first,
                threshold: ceiling,
                acked: 0,
                best: Best::default(),
            })
            .in_flight += 1;
    }

    /// An attempt to `endpoint` has its answer (`succeeded`: a 2xx) after `took`, at `at`, or
    /// gave up.
    pub fn done(&mut self, endpoint: &str, succeeded: bool, took: Duration, at: Instant) {
        self.end(endpoint, |share, ceiling| {
            let best = share.best.note(took, at);
            let queueing = took > best * 2 + SLACK;
            if !succeeded {
                share.limit = (share.limit / 2).max(1);
                share.threshold = share.limit;
                share.acked = 0;
            } else if queueing {
                // Answered, but later than it can: hold the limit where it is.
            } else if share.limit < share.threshold {
                share.limit = (share.limit + 1).min(ceiling);
            } else {
                share.acked += 1;
                if share.acked >= share.limit {
                    share.acked = 0;
                    share.limit = (share.limit + 1).min(ceiling);
                }
            }
        });
    }

    /// herald cut off an attempt to `endpoint` (it is stopping, or lost its registration): the
    /// slot is free, and the endpoint's limit stays, since it was given no chance to answer.
    pub fn cut_off(&mut self, endpoint: &str) {
        self.end(endpoint, |_, _| {});
    }

    /// Frees an attempt's slot after `adapt` has moved the endpoint's limit (given the ceiling).
    fn end(&mut self, endpoint: &str, adapt: impl FnOnce(&mut Share, u32)) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let ceiling = self.ceiling;
        let first = self.first();
        let idle = match self.endpoints.get_mut(endpoint) {
            Some(share) => {
                share.in_flight = share.in_flight.saturating_sub(1);
                adapt(share, ceiling);
                share.in_flight == 0 && share.limit == first
            }
            None => false,
        };
        if idle {
            self.endpoints.remove(endpoint);
        }
        if self.endpoints.len() > REMEMBERED {
            self.endpoints.retain(|_, share| share.in_flight > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_millis(1);

    /// What `endpoint` may take now.
    fn left(capacity: &Capacity, endpoint: &str) -> u32 {
        capacity
            .remaining()
            .get(endpoint)
            .copied()
            .unwrap_or(capacity.first())
    }

    #[test]
    fn limits_grow_with_success_and_halve_with_failure() {
        let mut capacity = Capacity::new(100, 64);
        assert_eq!(capacity.first(), 8);
        for _ in 0..8 {
            capacity.start("a");
        }
        assert_eq!(left(&capacity, "a"), 0);
        assert_eq!(capacity.free(), 92);
        // Until the first failure, each success adds one: a window doubles it.
        for _ in 0..8 {
            capacity.done("a", true, FAST, Instant::now());
            capacity.start("a");
        }
        assert_eq!(left(&capacity, "a"), 8);
        // A failure halves it (16 to 8), and from there a window adds one.
        capacity.done("a", false, FAST, Instant::now());
        assert_eq!(left(&capacity, "a"), 1);
        for _ in 0..7 {
            capacity.done("a", true, FAST, Instant::now());
            capacity.start("a");
        }
        assert_eq!(left(&capacity, "a"), 1, "less than a window: not grown yet");
        capacity.done("a", true, FAST, Instant::now());
        capacity.start("a");
        assert_eq!(left(&capacity, "a"), 2);
        for _ in 0..7 {
            capacity.done("a", false, FAST, Instant::now());
        }
        assert_eq!(capacity.in_flight(), 0);
        assert_eq!(left(&capacity, "a"), 1, "never below one");
    }

    #[test]
    fn cut_off_attempts_free_their_slots_and_leave_the_limit_alone() {
        let mut capacity = Capacity::new(100, 64);
        for _ in 0..8 {
            capacity.start("a");
            capacity.done("a", true, FAST, Instant::now());
        }
        for _ in 0..16 {
            capacity.start("a");
        }
        for _ in 0..16 {
            capacity.cut_off("a");
        }
        assert_eq!(capacity.in_flight(), 0);
        assert_eq!(left(&capacity, "a"), 16, "not halved sixteen times");
    }

    #[test]
    fn a_healthy_endpoint_reaches_the_ceiling_and_stays_there() {
        let mut capacity = Capacity::new(1000, 64);
        for _ in 0..56 {
            capacity.start("a");
            capacity.done("a", true, FAST, Instant::now());
        }
        assert_eq!(
            left(&capacity, "a"),
            64,
            "56 successes take it from 8 to 64"
        );
        for _ in 0..5_000 {
            capacity.start("a");
            capacity.done("a", true, FAST, Instant::now());
        }
        assert_eq!(left(&capacity, "a"), 64);
        let low = Capacity::new(10, 3);
        assert_eq!(low.first(), 3, "the ceiling bounds the start");
    }

    #[test]
    fn endpoints_back_at_the_start_are_forgotten() {
        let mut capacity = Capacity::new(10, 16);
        capacity.start("a");
        capacity.start("b");
        capacity.start("c");
        capacity.done("a", true, FAST, Instant::now());
        capacity.done("b", false, FAST, Instant::now());
        assert_eq!(
            capacity.remaining(),
            BTreeMap::from([("a".into(), 9), ("b".into(), 4), ("c".into(), 7)]),
            "a grew, b halved, c has one in flight"
        );
        capacity.done("c", true, FAST, Instant::now());
        assert_eq!(
            capacity.remaining(),
            BTreeMap::from([("a".into(), 9), ("b".into(), 4), ("c".into(), 9)]),
        );
        let mut back = Capacity::new(10, 8);
        back.start("a");
        back.done("a", true, FAST, Instant::now());
        assert!(
            back.remaining().is_empty(),
            "at the ceiling, which is where it starts"
        );
    }

    #[test]
    fn a_receiver_that_queues_requests_gets_no_more_of_them() {
        let mut capacity = Capacity::new(1000, 256);
        // Its best is 10 ms; with more in flight it answers in 40 ms: it is queueing them.
        capacity.start("slow");
        capacity.done("slow", true, Duration::from_millis(10), Instant::now());
        assert_eq!(left(&capacity, "slow"), 9);
        for _ in 0..1_000 {
            capacity.start("slow");
            capacity.done("slow", true, Duration::from_millis(40), Instant::now());
        }
        assert_eq!(left(&capacity, "slow"), 9, "held while it queues");
        // Noise within twice the best (plus the slack) is not queueing.
        for _ in 0..8 {
            capacity.start("slow");
            capacity.done("slow", true, Duration::from_millis(21), Instant::now());
        }
        assert_eq!(left(&capacity, "slow"), 17);
    }

    #[test]
    fn a_receiver_slower_for_good_is_measured_against_what_it_is_now() {
        let mut capacity = Capacity::new(1000, 256);
        let start = Instant::now();
        capacity.start("a");
        capacity.done("a", true, Duration::from_millis(1), start);
        // From now on it takes 50 ms, however little it is sent: within the window that is
        // queueing; once the 1 ms answer is older than the window, 50 ms is its best, and the
        // limit grows again.
        for n in 0..100u32 {
            capacity.start("a");
            let at = start + BEST_OF * n / 100;
            capacity.done("a", true, Duration::from_millis(50), at);
        }
        assert_eq!(left(&capacity, "a"), 9, "held for the window");
        for n in 0..100u32 {
            capacity.start("a");
            let at = start + BEST_OF + BEST_OF * n / 100;
            capacity.done("a", true, Duration::from_millis(50), at);
        }
        assert!(left(&capacity, "a") > 100, "{}", left(&capacity, "a"));
    }
}
