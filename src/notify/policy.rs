//! What follows one delivery attempt (pure): delivered, retry at a time, dead-lettered, or the
//! sink disabled. Exponential backoff with full jitter, `Retry-After` honoured.

use std::time::Duration;

/// Retry settings of one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts before an event is dead-lettered (≥ 1).
    pub max_attempts: u32,
    /// The first backoff cap; doubles per attempt.
    pub base: Duration,
    /// No wait is longer than this (a `Retry-After` included).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// A 2xx answer (a command: exit status 0).
    Delivered { status: u16 },
    /// 410 Gone: the receiver asks never to be called again.
    Gone,
    /// Any other answer, a 3xx included (redirects are not followed).
    Failed {
        status: Option<u16>,
        error: String,
        /// The receiver's `Retry-After`, already turned into a wait.
        retry_after: Option<Duration>,
    },
}

/// What the dispatcher records after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Delivered,
    /// Try again at this unix time.
    RetryAt(f64),
    /// Out of attempts.
    Dead,
    /// The sink answered 410: stop calling it (the event stays pending).
    DisableSink,
}

/// The next step after attempt number `attempt` (1-based) ended as `a`, at `now`. `jitter`
/// is a uniform sample in [0, 1): full jitter waits `jitter × min(max, base × 2^(attempt-1))`.
pub fn after(a: &Attempt, attempt: u32, retry: &Retry, now: f64, jitter: f64) -> Next {
    match a {
        Attempt::Delivered { .. } => Next::Delivered,
        Attempt::Gone => Next::DisableSink,
        Attempt::Failed { retry_after, .. } => {
            if attempt >= retry.max_attempts {
                return Next::Dead;
            }
            let wait = match retry_after {
                Some(w) => (*w).min(retry.max),
                None => backoff(attempt, retry).mul_f64(jitter.clamp(0.0, 1.0)),
            };
            Next::RetryAt(now + wait.as_secs_f64())
        }
    }
}

/// The backoff cap after attempt `attempt`: `min(max, base × 2^(attempt-1))`.
pub fn backoff(attempt: u32, retry: &Retry) -> Duration {
    let doublings = attempt.saturating_sub(1).min(40);
    retry
        .base
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(retry.max)
        .min(retry.max)
}

/// A `Retry-After` value: delay-seconds or an HTTP date, as a wait from `now` (unix seconds).
/// Unreadable values are ignored (`None`): the backoff applies.
pub fn parse_retry_after(value: &str, now: f64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    Some(Duration::from_secs_f64((at - now).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(retry_after: Option<Duration>) -> Attempt {
        Attempt::Failed {
            status: Some(503),
            error: "503".into(),
            retry_after,
        }
    }

    #[test]
    fn a_2xx_is_delivered_and_a_410_disables_the_sink() {
        let r = Retry::default();
        assert_eq!(
            after(&Attempt::Delivered { status: 204 }, 1, &r, 0.0, 0.5),
            Next::Delivered
        );
        assert_eq!(after(&Attempt::Gone, 1, &r, 0.0, 0.5), Next::DisableSink);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let r = Retry {
            max_attempts: 100,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        let caps: Vec<u64> = (1..=8).map(|a| backoff(a, &r).as_secs()).collect();
        assert_eq!(caps, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(1000, &r), Duration::from_secs(60));
        // Full jitter: anywhere in [0, cap).
        assert_eq!(
            after(&failed(None), 3, &r, 100.0, 0.0),
            Next::RetryAt(100.0)
        );
        assert_eq!(
            after(&failed(None), 3, &r, 100.0, 0.5),
            Next::RetryAt(102.0)
        );
        assert_eq!(
            after(&failed(None), 3, &r, 100.0, 0.999),
            Next::RetryAt(100.0 + 4.0 * 0.999)
        );
    }

    #[test]
    fn retry_after_wins_over_the_backoff_but_not_over_the_cap() {
        let r = Retry {
            max_attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_secs(30),
        };
        let n = after(&failed(Some(Duration::from_secs(7))), 1, &r, 10.0, 0.0);
        assert_eq!(n, Next::RetryAt(17.0));
        let n = after(&failed(Some(Duration::from_secs(7200))), 1, &r, 10.0, 0.0);
        assert_eq!(n, Next::RetryAt(40.0));
    }

    #[test]
    fn the_last_attempt_dead_letters() {
        let r = Retry {
            max_attempts: 3,
            ..Retry::default()
        };
        assert!(matches!(
            after(&failed(None), 2, &r, 0.0, 0.1),
            Next::RetryAt(_)
        ));
        assert_eq!(after(&failed(None), 3, &r, 0.0, 0.1), Next::Dead);
        assert_eq!(
            after(&failed(Some(Duration::from_secs(1))), 3, &r, 0.0, 0.1),
            Next::Dead
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(
            parse_retry_after(" 120 ", 0.0),
            Some(Duration::from_secs(120))
        );
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777.
        let d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_767.0);
        assert_eq!(d, Some(Duration::from_secs(10)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800.0),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0.0), None);
        assert_eq!(parse_retry_after("-5", 0.0), None);
    }
}
