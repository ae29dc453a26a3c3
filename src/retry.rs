//! Retry policy: which failures are retried, how often, and how long to wait.
//!
//! Retries are per request, not per command. Retried: connection resets and premature EOF,
//! timeouts (connect and stall), HTTP 408, 429, 500, 502, 503, 504 — see
//! [`crate::error::Error::is_transient`]. Never retried: other 4xx answers, authentication
//! refusals (a 401 only triggers one re-authentication), digest mismatches, invalid
//! documents, certificate errors, redirect loops, and a failure already given up on by an
//! inner loop (retries never nest: [`Schedule::give_up`]). `--retry-times N` allows N
//! retries after the first attempt; waits grow exponentially with jitter (from 0.5 s, capped
//! at 30 s) unless `--retry-delay` fixes them. A 429 is always honoured — its `Retry-After`
//! waited for, at least [`MIN_429_RETRIES`] times — even with `--retry-times 0`, as skopeo
//! does.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How many times a 429 is retried even when `--retry-times` is lower.
pub const MIN_429_RETRIES: u32 = 5;
/// The longest `Retry-After` ferry honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How a failed request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`--retry-times`).
    pub max_retries: u32,
    /// A fixed delay (`--retry-delay`); `None` means exponential backoff.
    pub fixed_delay: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            fixed_delay: None,
        }
    }
}

impl RetryPolicy {
    /// No retries (skopeo's default), 429 still honoured.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            fixed_delay: None,
        }
    }

    /// A fresh schedule for one request.
    pub fn schedule(&self) -> Schedule {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Schedule {
            policy: self.clone(),
            backoff,
            retries: 0,
            retries_429: 0,
        }
    }
}

/// The retry state of one request.
pub struct Schedule {
    policy: RetryPolicy,
    backoff: backon::ExponentialBackoff,
    retries: u32,
    retries_429: u32,
}

impl Schedule {
    /// After a failure: how long to wait before the next attempt, or `None` to give up.
    pub fn next_delay(&mut self, err: &crate::error::Error) -> Option<Duration> {
        if !err.is_transient() {
            return None;
        }
        let is_429 = err.status() == Some(429);
        if is_429 && self.retries_429 < MIN_429_RETRIES.max(self.policy.max_retries) {
            self.retries_429 += 1;
        } else if self.retries < self.policy.max_retries {
            self.retries += 1;
        } else {
            return None;
        }
        let computed = self
            .policy
            .fixed_delay
            .or_else(|| self.backoff.next())
            .unwrap_or(Duration::from_secs(1));
        Some(match err.retry_after() {
            Some(after) => after
                .min(MAX_RETRY_AFTER)
                .max(computed.min(Duration::from_millis(100))),
            None => computed,
        })
    }

    /// How many retries were made so far.
    pub fn attempts(&self) -> u32 {
        self.retries + self.retries_429
    }

    /// The error to return when [`next_delay`](Self::next_delay) gave up: a transient failure
    /// that was retried becomes [`Error::GaveUp`](crate::error::Error::GaveUp), which no outer
    /// loop retries again — retries never nest, so `--retry-times N` bounds the attempts of
    /// each request (and of each blob transfer) at N + 1.
    pub fn give_up(&self, err: crate::error::Error) -> crate::error::Error {
        if self.attempts() > 0 && err.is_transient() {
            crate::error::Error::GaveUp {
                retries: self.attempts(),
                source: Box::new(err),
            }
        } else {
            err
        }
    }
}

/// Run `attempt` until it succeeds, fails for good, or the policy gives up: the one retry
/// loop of ferry. Transient failures ([`Error::is_transient`](crate::error::Error)) wait for
/// the schedule's delay (a 429's `Retry-After` included); a failure given up on comes back as
/// [`Error::GaveUp`](crate::error::Error::GaveUp), which no outer `run` retries again.
/// `what` names the operation in the log line of each retry.
pub async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> crate::error::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::error::Result<T>>,
{
    let mut schedule = policy.schedule();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => match schedule.next_delay(&e) {
                Some(d) => {
                    log::info!("{e}; retrying {what} in {:.1}s", d.as_secs_f64());
                    tokio::time::sleep(d).await;
                }
                None => return Err(schedule.give_up(e)),
            },
        }
    }
}

/// Parse `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Parse a Go duration as skopeo's flags take it: `10s`, `1m30s`, `500ms`, `2h`, `1.5s`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?} (expected e.g. 10s, 1m30s, 500ms)");
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_end == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Location, RegistryMessage};

    fn http(status: u16, retry_after: Option<Duration>) -> Error {
        Error::Registry {
            op: "x".into(),
            location: Location {
                registry: "r".into(),
                repository: "p".into(),
            },
            status,
            detail: RegistryMessage::default(),
            retry_after,
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "10", "s", "10x", "-1s", "1e400s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn schedule_counts_and_classifies() {
        let p = RetryPolicy {
            max_retries: 2,
            fixed_delay: Some(Duration::from_millis(1)),
        };
        let mut s = p.schedule();
        assert!(s.next_delay(&http(404, None)).is_none());
        assert!(s.next_delay(&http(503, None)).is_some());
        assert!(s.next_delay(&http(503, None)).is_some());
        assert!(s.next_delay(&http(503, None)).is_none());
        // 429 is honoured even with no retries configured.
        let mut s = RetryPolicy::none().schedule();
        assert_eq!(
            s.next_delay(&http(429, Some(Duration::from_secs(2)))),
            Some(Duration::from_secs(2))
        );
        assert!(s.next_delay(&http(500, None)).is_none());
    }

    #[test]
    fn a_failure_given_up_on_is_not_retried_again() {
        let p = RetryPolicy {
            max_retries: 1,
            fixed_delay: Some(Duration::from_millis(1)),
        };
        let mut inner = p.schedule();
        assert!(inner.next_delay(&http(503, None)).is_some());
        assert!(inner.next_delay(&http(503, None)).is_none());
        let e = inner.give_up(http(503, None));
        assert!(!e.is_transient());
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string().ends_with("HTTP 503 (gave up after 1 retry)"),
            "{e}"
        );
        assert!(p.schedule().next_delay(&e).is_none());
        // Nothing to say when nothing was retried.
        let none = RetryPolicy::none().schedule();
        assert!(matches!(
            none.give_up(http(503, None)),
            Error::Registry { .. }
        ));
    }
}
