//! When a failed delivery is tried again, and when it is given up.

use std::time::{Duration, SystemTime};

/// The default schedule: the first attempt at once, then these waits after each failure. After
/// the tenth attempt fails, the delivery is dead.
const DEFAULT_DELAYS: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// A retry schedule with jitter, and how far a receiver's `Retry-After` is followed.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
    jitter: f64,
    retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays: DEFAULT_DELAYS.to_vec(),
            jitter: 0.2,
            retry_after_cap: Duration::from_secs(24 * 3600),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Try again after this long.
    RetryIn(Duration),
    /// That was the last attempt.
    GiveUp,
}

impl RetryPolicy {
    /// A schedule of waits: `delays[0]` before the first attempt (normally zero), `delays[n]`
    /// after the n-th failure. Its length is the number of attempts.
    ///
    /// `jitter` is the fraction each wait may vary by either way (0.2 = ±20%), so endpoints that
    /// failed together do not all retry in the same second.
    pub fn new(delays: Vec<Duration>, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            delays,
            jitter: jitter.clamp(0.0, 1.0),
            ..RetryPolicy::default()
        }
    }

    /// Caps how long a receiver's `Retry-After` can hold a delivery back (default 24 h).
    pub fn with_retry_after_cap(mut self, cap: Duration) -> RetryPolicy {
        self.retry_after_cap = cap;
        self
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// After `attempts` failed attempts: the next wait or the end.
    ///
    /// `unit` is a random number in `[0, 1)` choosing the jitter. A `retry_after` from the
    /// receiver lengthens the wait to what it asked, up to the cap; it never shortens it.
    pub fn after_failure(&self, attempts: u32, retry_after: Option<Duration>, unit: f64) -> Next {
        let Some(base) = self.delays.get(attempts as usize) else {
            return Next::GiveUp;
        };
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let jittered = base.mul_f64(factor);
        let asked = retry_after.map_or(Duration::ZERO, |d| d.min(self.retry_after_cap));
        Next::RetryIn(jittered.max(asked))
    }
}

/// Reads a `Retry-After` header: whole seconds, or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_default_schedule_then_give_up() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts(), 10);
        // unit 0.5 means no jitter.
        let expected = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];
        for (failed, seconds) in (1..).zip(expected) {
            assert_eq!(
                policy.after_failure(failed, None, 0.5),
                Next::RetryIn(S(seconds)),
                "after {failed} failures"
            );
        }
        assert_eq!(policy.after_failure(10, None, 0.5), Next::GiveUp);
        assert_eq!(policy.after_failure(11, None, 0.5), Next::GiveUp);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::default();
        let cases = [(0.0, 240), (0.25, 270), (0.5, 300), (0.999_999, 360)];
        for (unit, seconds) in cases {
            let Next::RetryIn(wait) = policy.after_failure(2, None, unit) else {
                panic!("retries")
            };
            assert!(
                wait.abs_diff(S(seconds)) < Duration::from_millis(1),
                "{unit}: {wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_and_is_capped() {
        let policy = RetryPolicy::default().with_retry_after_cap(S(3600));
        let cases = [
            (1, Some(S(60)), S(60)),      // asks more than 5 s: wait 60 s
            (2, Some(S(10)), S(300)),     // asks less than 5 min: keep 5 min
            (1, Some(S(86400)), S(3600)), // asks a day: capped at an hour
            (1, None, S(5)),
        ];
        for (failed, asked, expected) in cases {
            assert_eq!(
                policy.after_failure(failed, asked, 0.5),
                Next::RetryIn(expected),
                "{failed} {asked:?}"
            );
        }
        assert_eq!(policy.after_failure(10, Some(S(1)), 0.5), Next::GiveUp);
    }

    #[test]
    fn a_compressed_schedule_for_tests() {
        let policy = RetryPolicy::new(vec![Duration::ZERO, Duration::from_millis(50)], 0.0);
        assert_eq!(policy.max_attempts(), 2);
        assert_eq!(
            policy.after_failure(1, None, 0.9),
            Next::RetryIn(Duration::from_millis(50))
        );
        assert_eq!(policy.after_failure(2, None, 0.9), Next::GiveUp);
    }

    #[test]
    fn retry_after_headers() {
        let now = httpdate::parse_http_date("Sun, 22 Nov 2026 08:00:00 GMT").unwrap();
        let cases = [
            ("120", Some(S(120))),
            (" 0 ", Some(S(0))),
            ("Sun, 22 Nov 2026 08:01:30 GMT", Some(S(90))),
            ("Sun, 22 Nov 2026 07:00:00 GMT", Some(S(0))),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_retry_after(header, now), expected, "{header:?}");
        }
    }
}
