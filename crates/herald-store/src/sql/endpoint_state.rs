//! An endpoint's health and turn after attempts: its failure streak, its circuit breaker, when
//! it is next due, and whether it must be disabled. Pure, so it is tested as a table; the
//! store applies it to the state read, locked, in the transaction that records the attempts.

use std::time::Duration;

use crate::{Millis, Outcome, millis};

/// Failures in a row that open an endpoint's circuit: from then on it gets one attempt at a
/// time, a probe, after a pause that grows with each failed probe.
pub(crate) const CIRCUIT_THRESHOLD: u32 = 5;

/// A failure streak goes on only while failures keep coming. One delivery waits at most 24 h
/// (+20% jitter) between tries, so an endpoint that has seen no failure for longer than this
/// has not been failing all along, whatever its last failure was: its streak starts over.
pub(crate) const STREAK_GAP: Millis = 36 * 3600 * 1000;

/// How long the circuit stays open after `failures` in a row: a second at the threshold,
/// doubling with each failed probe, a minute at most.
pub(crate) fn cooldown(failures: u32) -> Millis {
    let doublings = failures.saturating_sub(CIRCUIT_THRESHOLD).min(6);
    (1000 << doublings).min(60_000)
}

/// What the scheduler keeps of an endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EndpointState {
    /// Attempts failed in a row.
    pub(crate) failures: u32,
    /// The first failure of the current streak.
    pub(crate) failing_since: Option<Millis>,
    /// The latest failure.
    pub(crate) last_failure_at: Option<Millis>,
    /// While the circuit is open: no attempt before this.
    pub(crate) open_until: Option<Millis>,
    /// Its next turn.
    pub(crate) due_at: Option<Millis>,
}

/// One attempt's end, as the endpoint saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) outcome: Outcome,
    pub(crate) started_at: Millis,
    /// It answered `410 Gone`.
    pub(crate) gone: bool,
    /// Failing this long disables it.
    pub(crate) disable_after: Duration,
    /// When the attempt is recorded.
    pub(crate) now: Millis,
    /// Which of the batch's attempts it was.
    pub(crate) cause: usize,
}

/// What one attempt changed about an endpoint that its operator hears of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// It failed after a success, or its failures in a row reached the circuit's threshold.
    Failing { failures: u32, circuit_open: bool },
    /// It succeeded after `failures` failures in a row, a streak that began at `since`.
    Recovered {
        failures: u32,
        since: Option<Millis>,
    },
}

/// The turn from `before` to `after` one attempt, if it is one.
pub(crate) fn turn(before: &EndpointState, after: &EndpointState) -> Option<Turn> {
    let (was, is) = (before.failures, after.failures);
    if is == 0 && was > 0 {
        return Some(Turn::Recovered {
            failures: was,
            since: before.failing_since,
        });
    }
    let opened = was < CIRCUIT_THRESHOLD && is >= CIRCUIT_THRESHOLD;
    ((was == 0 && is > 0) || opened).then_some(Turn::Failing {
        failures: is,
        circuit_open: is >= CIRCUIT_THRESHOLD,
    })
}

impl EndpointState {
    /// Applies one attempt; returns why the endpoint must be disabled, when it must.
    pub(crate) fn record(&mut self, seen: &Seen) -> Option<String> {
        match seen.outcome {
            Outcome::Succeeded => {
                // A probe that closes the circuit: the deliveries waiting behind it go now, not
                // at the line's turn from while the circuit was open (the probe's hold, up to a
                // lease away).
                if self.failures >= CIRCUIT_THRESHOLD && self.due_at.is_some() {
                    self.due_by(seen.now);
                }
                self.failures = 0;
                self.failing_since = None;
                self.open_until = None;
            }
            Outcome::RetryAt(at) => {
                self.failed(seen.started_at, seen.now);
                self.due_by(at);
            }
            Outcome::Dead => self.failed(seen.started_at, seen.now),
            // herald's doing, not the endpoint's: its streak stays as it was. If this was the
            // half-open circuit's probe, its hold (until the probe's lease would end) goes, so
            // the next claim probes again instead of waiting out the lease.
            Outcome::Interrupted => {
                self.due_by(seen.now);
                if self.failures >= CIRCUIT_THRESHOLD
                    && self.open_until.is_some_and(|until| until > seen.now)
                {
                    self.open_until = Some(seen.now);
                }
            }
        }
        if seen.gone {
            return Some("the endpoint answered 410 Gone".into());
        }
        let failing_for = self.failing_since.map(|since| seen.now - since)?;
        (failing_for >= millis(seen.disable_after))
            .then(|| format!("every attempt failed for {} hours", failing_for / 3_600_000))
    }

    fn failed(&mut self, at: Millis, now: Millis) {
        let goes_on = self.failing_since.is_some()
            && self
                .last_failure_at
                .is_some_and(|last| at - last <= STREAK_GAP);
        if !goes_on {
            self.failing_since = Some(at);
        }
        self.last_failure_at = Some(self.last_failure_at.map_or(at, |last| last.max(at)));
        self.failures = self.failures.saturating_add(1);
        if self.failures >= CIRCUIT_THRESHOLD {
            self.open_until = Some(now + cooldown(self.failures));
        }
    }

    /// Its turn comes no later than `at`.
    pub(crate) fn due_by(&mut self, at: Millis) {
        self.due_at = Some(self.due_at.map_or(at, |due| due.min(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;
    const DAY: Millis = 24 * HOUR;
    const T: Millis = 100 * DAY;

    fn seen(outcome: Outcome, at: Millis) -> Seen {
        Seen {
            outcome,
            started_at: at,
            gone: false,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            now: at + 10,
            cause: 0,
        }
    }

    fn failing(since: Millis, last: Millis, failures: u32) -> EndpointState {
        EndpointState {
            failures,
            failing_since: Some(since),
            last_failure_at: Some(last),
            ..EndpointState::default()
        }
    }

    #[test]
    fn streaks_circuits_and_disabling() {
        let retry = |at| Outcome::RetryAt(at);
        let cases: Vec<(&str, EndpointState, Vec<Seen>, EndpointState, bool)> = vec![
            (
                "a first failure starts a streak and makes the retry its turn",
                EndpointState::default(),
                vec![seen(retry(T + 5_000), T)],
                EndpointState {
                    failures: 1,
                    failing_since: Some(T),
                    last_failure_at: Some(T),
                    due_at: Some(T + 5_000),
                    ..EndpointState::default()
                },
                false,
            ),
            (
                "a success ends the streak and closes the circuit",
                EndpointState {
                    open_until: Some(T + 1_000),
                    ..failing(T - DAY, T - 1, 7)
                },
                vec![seen(Outcome::Succeeded, T)],
                EndpointState {
                    last_failure_at: Some(T - 1),
                    ..EndpointState::default()
                },
                false,
            ),
            (
                "the fifth failure in a row opens the circuit for a second",
                failing(T - HOUR, T - 1, 4),
                vec![seen(Outcome::Dead, T)],
                EndpointState {
                    open_until: Some(T + 10 + 1_000),
                    ..failing(T - HOUR, T, 5)
                },
                false,
            ),
            (
                "each failed probe doubles the pause, up to a minute",
                failing(T - HOUR, T - 1, 9),
                vec![seen(Outcome::Dead, T)],
                EndpointState {
                    open_until: Some(T + 10 + 32_000),
                    ..failing(T - HOUR, T, 10)
                },
                false,
            ),
            (
                "five days of failures disable it",
                failing(T - 5 * DAY + 5, T - HOUR, 40),
                vec![seen(Outcome::Dead, T)],
                EndpointState {
                    open_until: Some(T + 10 + 60_000),
                    ..failing(T - 5 * DAY + 5, T, 41)
                },
                true,
            ),
            (
                "one failure after a quiet week is a new streak, not six days of failing",
                failing(T - 6 * DAY, T - 6 * DAY, 1),
                vec![seen(Outcome::Dead, T)],
                failing(T, T, 2),
                false,
            ),
            (
                "recovered, then one failure: a new streak (the order they were recorded in)",
                failing(T - 6 * DAY, T - HOUR, 3),
                vec![seen(Outcome::Succeeded, T), seen(Outcome::Dead, T + 1)],
                failing(T + 1, T + 1, 1),
                false,
            ),
            (
                "410 Gone disables it at once",
                EndpointState::default(),
                vec![Seen {
                    gone: true,
                    ..seen(Outcome::Dead, T)
                }],
                failing(T, T, 1),
                true,
            ),
        ];
        for (name, before, events, expected, disables) in cases {
            let mut state = before;
            let mut reason = None;
            for event in &events {
                reason = reason.or(state.record(event));
            }
            assert_eq!(state, expected, "{name}");
            assert_eq!(reason.is_some(), disables, "{name}: {reason:?}");
        }
    }

    #[test]
    fn cooldowns_grow_and_stop_at_a_minute() {
        let pauses: Vec<Millis> = (5..=13).map(cooldown).collect();
        assert_eq!(
            pauses,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
    }

    #[test]
    fn a_probe_that_succeeds_lets_the_backlog_go_at_once() {
        // The circuit is half open; the line's turn was set to the probe's hold.
        let mut state = failing(T - HOUR, T - 1_000, 12);
        state.open_until = Some(T + 60_000);
        state.due_at = Some(T + 60_000);
        state.record(&seen(Outcome::Succeeded, T));
        assert_eq!((state.failures, state.open_until), (0, None), "closed");
        assert_eq!(
            state.due_at,
            Some(T + 10),
            "the waiting deliveries' turn is now"
        );
    }

    #[test]
    fn an_interrupted_probe_lets_the_next_claim_probe_at_once() {
        // The circuit is half open and its probe is in flight, held until the lease ends.
        let mut state = failing(T - HOUR, T - 1_000, 7);
        state.open_until = Some(T + 60_000);
        let reason = state.record(&seen(Outcome::Interrupted, T));
        assert_eq!(reason, None);
        assert_eq!(state.open_until, Some(T + 10), "the probe's hold is gone");
        assert_eq!(
            state.failures, 7,
            "the streak is the endpoint's, and unchanged"
        );
        assert_eq!(state.due_at, Some(T + 10));
    }

    #[test]
    fn turns_an_operator_hears_of() {
        let at = |failures| EndpointState {
            failures,
            failing_since: (failures > 0).then_some(T),
            ..EndpointState::default()
        };
        let failing = |failures, circuit_open| {
            Some(Turn::Failing {
                failures,
                circuit_open,
            })
        };
        let cases = [
            ("healthy stays healthy", at(0), at(0), None),
            (
                "the first failure after a success",
                at(0),
                at(1),
                failing(1, false),
            ),
            ("a second failure is the same streak", at(1), at(2), None),
            ("the circuit opens", at(4), at(5), failing(5, true)),
            ("failures beyond the threshold", at(5), at(6), None),
            (
                "a success after failures",
                at(7),
                at(0),
                Some(Turn::Recovered {
                    failures: 7,
                    since: Some(T),
                }),
            ),
        ];
        for (name, before, after, expected) in cases {
            assert_eq!(turn(&before, &after), expected, "{name}");
        }
    }
}
