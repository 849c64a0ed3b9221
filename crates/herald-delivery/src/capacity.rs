//! How many attempts this worker may have in flight, in all and to each endpoint.
//!
//! Each endpoint's limit adapts, as TCP's congestion window does: it starts at
//! [`START`] (or the ceiling, if lower), grows by one for every window of successes up to the
//! ceiling (`per_endpoint`), and halves on each failure or timeout. A fast, healthy receiver
//! soon gets all the concurrency it can use without anyone tuning a knob; a slow or failing one
//! holds back only its own deliveries, and ever fewer of this worker's slots (until the store's
//! circuit breaker leaves it one probe at a time). A slot is given back as soon as the response
//! (or the timeout) is in, not when the attempt is recorded.

use std::collections::{BTreeMap, HashMap};

/// Where every endpoint's limit starts.
pub const START: u32 = 8;

/// Endpoints remembered, at most, while idle; beyond it idle ones start over.
const REMEMBERED: usize = 10_000;

/// One endpoint's share.
#[derive(Clone, Debug, PartialEq)]
struct Share {
    in_flight: u32,
    /// The current limit; fractional so that growth is one per window.
    limit: f64,
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
            .map(|(endpoint, share)| {
                (
                    endpoint,
                    (share.limit as u32).saturating_sub(share.in_flight),
                )
            })
            .filter(|(_, free)| *free != first)
            .map(|(endpoint, free)| (endpoint.clone(), free))
            .collect()
    }

    /// An attempt to `endpoint` starts.
    pub fn start(&mut self, endpoint: &str) {
        self.in_flight += 1;
        let first = f64::from(self.first());
        self.endpoints
            .entry(endpoint.to_owned())
            .or_insert(Share {
                in_flight: 0,
                limit: first,
            })
            .in_flight += 1;
    }

    /// An attempt to `endpoint` has its answer (`succeeded`: a 2xx), or gave up.
    pub fn done(&mut self, endpoint: &str, succeeded: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let ceiling = f64::from(self.ceiling);
        let first = f64::from(self.first());
        let idle = match self.endpoints.get_mut(endpoint) {
            Some(share) => {
                share.in_flight = share.in_flight.saturating_sub(1);
                share.limit = if succeeded {
                    (share.limit + 1.0 / share.limit).min(ceiling)
                } else {
                    (share.limit / 2.0).max(1.0)
                };
                share.in_flight == 0 && (share.limit - first).abs() < f64::EPSILON
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

    #[test]
    fn limits_grow_with_success_and_halve_with_failure() {
        let mut capacity = Capacity::new(100, 64);
        assert_eq!(capacity.first(), 8);
        for _ in 0..8 {
            capacity.start("a");
        }
        assert_eq!(capacity.remaining(), BTreeMap::from([("a".into(), 0)]));
        assert_eq!(capacity.free(), 92);
        // A window of successes (8) grows the limit by one.
        for _ in 0..8 {
            capacity.done("a", true);
            capacity.start("a");
        }
        capacity.done("a", true);
        assert_eq!(capacity.remaining(), BTreeMap::from([("a".into(), 2)]));
        // A failure halves it.
        capacity.done("a", false);
        assert_eq!(capacity.remaining(), BTreeMap::from([("a".into(), 0)]));
        for _ in 0..6 {
            capacity.done("a", false);
        }
        assert_eq!(capacity.in_flight(), 0);
        assert_eq!(
            capacity.remaining(),
            BTreeMap::from([("a".into(), 1)]),
            "never below one"
        );
    }

    #[test]
    fn a_healthy_endpoint_reaches_the_ceiling_and_stays_there() {
        let mut capacity = Capacity::new(1000, 64);
        for _ in 0..5_000 {
            capacity.start("a");
            capacity.done("a", true);
        }
        assert_eq!(capacity.remaining(), BTreeMap::from([("a".into(), 64)]));
        let low = Capacity::new(10, 3);
        assert_eq!(low.first(), 3, "the ceiling bounds the start");
    }

    #[test]
    fn endpoints_back_at_the_start_are_forgotten() {
        let mut capacity = Capacity::new(10, 8);
        capacity.start("a");
        capacity.start("b");
        capacity.done("a", true);
        capacity.done("b", false);
        assert_eq!(
            capacity.remaining(),
            BTreeMap::from([("b".into(), 4)]),
            "a may take what a new endpoint may, so the claim need not be told"
        );
    }
}
