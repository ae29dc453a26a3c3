//! Pacing the requests sent to one registry: `--requests-per-second N`, and the budget a
//! registry announces in `RateLimit` headers.
//!
//! One [`Pacer`] per registry host, shared by every client of the process that talks to that
//! host (a sync makes a client per repository). The registry client's send path calls
//! [`Pacer::wait`] before each request and [`Pacer::observe`] with each answer's headers.
//!
//! - `--requests-per-second N`: requests start at least 1/N s apart, whatever the concurrency.
//! - A registry that answers `RateLimit-Remaining: 0` with `RateLimit-Reset: S` (IETF
//!   httpapi-ratelimit-headers, drafts 01–06; also the combined `RateLimit: limit=…,
//!   remaining=…, reset=…` and the structured `RateLimit: "policy";r=…;t=…` of later drafts;
//!   a `;w=` window parameter, as Docker Hub sends, is ignored) gets no request until `S`
//!   seconds have passed — at most [`MAX_WAIT`] at a time; after that, the registry's `429`
//!   and its `Retry-After` take over. A reset written as a Unix time (larger than a year in
//!   seconds) is read as one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The longest one pause for an exhausted budget lasts.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// What an answer said about the registry's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests left in the window.
    pub remaining: u64,
    /// Until the window resets, when said.
    pub reset: Option<Duration>,
}

/// The leading integer of a header value (`76;w=21600` → 76, `"x"` → none).
fn leading_int(v: &str) -> Option<u64> {
    let v = v.trim();
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v[..end].parse().ok()
}

/// A reset value: delta seconds, or a Unix time when it is larger than a year.
fn reset_of(seconds: u64) -> Duration {
    const YEAR: u64 = 365 * 24 * 3600;
    if seconds > YEAR {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Duration::from_secs(seconds.saturating_sub(now))
    } else {
        Duration::from_secs(seconds)
    }
}

/// Read the budget from an answer's headers, if it states one.
pub fn parse(headers: &http::HeaderMap) -> Option<Budget> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut remaining = get("ratelimit-remaining").and_then(leading_int);
    let mut reset = get("ratelimit-reset").and_then(leading_int).map(reset_of);
    if let Some(combined) = get("ratelimit") {
        for item in combined.split([',', ';']) {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "remaining" | "r" => remaining = remaining.or(leading_int(v)),
                "reset" | "t" => reset = reset.or(leading_int(v).map(reset_of)),
                _ => {}
            }
        }
    }
    remaining.map(|remaining| Budget { remaining, reset })
}

#[derive(Debug, Default)]
struct State {
    /// `--requests-per-second`: the gap between request starts.
    interval: Option<Duration>,
    /// When the next paced request may start.
    next: Option<Instant>,
    /// No request before this (an exhausted budget).
    blocked_until: Option<Instant>,
}

/// The pacing of one registry host.
#[derive(Debug)]
pub struct Pacer {
    host: String,
    state: Mutex<State>,
}

impl Pacer {
    /// A pacer for `host` with no limit of its own.
    pub fn new(host: &str) -> Pacer {
        Pacer {
            host: host.to_string(),
            state: Mutex::new(State::default()),
        }
    }

    /// Set (or lift, with `None`) the requests-per-second bound.
    pub fn set_rate(&self, requests_per_second: Option<f64>) {
        let interval = requests_per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        self.state.lock().expect("pacer").interval = interval;
    }

    /// Whether a requests-per-second bound is set.
    pub fn is_bounded(&self) -> bool {
        self.state.lock().expect("pacer").interval.is_some()
    }

    /// Wait until a request may start, and take its slot.
    pub async fn wait(&self) {
        let until = {
            let mut s = self.state.lock().expect("pacer");
            let now = Instant::now();
            let mut at = now;
            if let Some(b) = s.blocked_until {
                if b > now {
                    at = b;
                } else {
                    s.blocked_until = None;
                }
            }
            if let Some(iv) = s.interval {
                if let Some(n) = s.next {
                    at = at.max(n);
                }
                s.next = Some(at + iv);
            }
            at
        };
        tokio::time::sleep_until(until).await;
    }

    /// Take note of an answer's `RateLimit` headers.
    pub fn observe(&self, headers: &http::HeaderMap) {
        let Some(b) = parse(headers) else { return };
        if b.remaining > 0 {
            return;
        }
        let Some(reset) = b.reset else {
            log::debug!(
                "{}: RateLimit-Remaining 0 without a reset time; going on (a 429 would be retried after its Retry-After)",
                self.host
            );
            return;
        };
        let wait = reset.min(MAX_WAIT);
        let until = Instant::now() + wait;
        let mut s = self.state.lock().expect("pacer");
        if s.blocked_until.is_none_or(|b| b < until) {
            if s.blocked_until.is_none() {
                log::info!(
                    "{}: the registry's request budget is used up (RateLimit-Remaining 0): no request for {} s (RateLimit-Reset)",
                    self.host,
                    wait.as_secs().max(1)
                );
            }
            s.blocked_until = Some(until);
        }
    }
}

/// The pacer of `host`, shared by the process; `requests_per_second` (when given) sets its
/// bound.
pub fn for_host(host: &str, requests_per_second: Option<f64>) -> Arc<Pacer> {
    static PACERS: OnceLock<Mutex<HashMap<String, Arc<Pacer>>>> = OnceLock::new();
    let p = PACERS
        .get_or_init(Default::default)
        .lock()
        .expect("pacers")
        .entry(host.to_string())
        .or_insert_with(|| Arc::new(Pacer::new(host)))
        .clone();
    if requests_per_second.is_some() {
        p.set_rate(requests_per_second);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn header_forms() {
        let b = |p: &[(&str, &str)]| parse(&headers(p));
        assert_eq!(
            b(&[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "30")]),
            Some(Budget {
                remaining: 0,
                reset: Some(Duration::from_secs(30))
            })
        );
        // Docker Hub: a window parameter, no reset.
        assert_eq!(
            b(&[
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-remaining", "76;w=21600")
            ]),
            Some(Budget {
                remaining: 76,
                reset: None
            })
        );
        assert_eq!(
            b(&[("RateLimit", "limit=100, remaining=0, reset=5")]),
            Some(Budget {
                remaining: 0,
                reset: Some(Duration::from_secs(5))
            })
        );
        assert_eq!(
            b(&[("RateLimit", "\"default\";r=3;t=12")]),
            Some(Budget {
                remaining: 3,
                reset: Some(Duration::from_secs(12))
            })
        );
        assert_eq!(b(&[("RateLimit-Reset", "5")]), None);
        assert_eq!(b(&[]), None);
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 20;
        let r = b(&[
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", &epoch.to_string()),
        ])
        .unwrap()
        .reset
        .unwrap();
        assert!(
            r <= Duration::from_secs(20) && r >= Duration::from_secs(18),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn requests_per_second_spaces_request_starts() {
        let p = Pacer::new("r.example.com");
        p.set_rate(Some(20.0));
        let start = Instant::now();
        for _ in 0..5 {
            p.wait().await;
        }
        // 5 starts at 1/20 s apart: the last one no earlier than 4/20 s after the first.
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        p.set_rate(None);
        assert!(p.state.lock().unwrap().interval.is_none());
    }

    #[tokio::test]
    async fn an_exhausted_budget_holds_requests_until_the_reset() {
        let p = Pacer::new("r.example.com");
        p.observe(&headers(&[
            ("RateLimit-Remaining", "5"),
            ("RateLimit-Reset", "1"),
        ]));
        assert!(
            p.state.lock().unwrap().blocked_until.is_none(),
            "budget left: no pause"
        );
        let t = Instant::now();
        p.observe(&headers(&[
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", "1"),
        ]));
        p.wait().await;
        assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
        // Shared by host.
        let a = for_host("shared.example.com:5000", Some(2.0));
        let b = for_host("shared.example.com:5000", None);
        assert!(Arc::ptr_eq(&a, &b));
    }
}
