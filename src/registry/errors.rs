//! A registry's error answers as one-line [`Error`]s: the HTTP status with the registry's own
//! error code and message (`{"errors":[{"code","message"}]}`), and which statuses are retried.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header;

use crate::error::{Error, Location, RegistryMessage};
use crate::http::read_limited;

/// Turn a failed response into an [`Error::Registry`] with the registry's code and message.
pub async fn status_error(resp: reqwest::Response, op: &str, loc: &Location) -> Error {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::retry::parse_retry_after);
    let body = tokio::time::timeout(
        Duration::from_secs(10),
        read_limited(resp, 64 * 1024, Duration::from_secs(5)),
    )
    .await
    .ok()
    .and_then(|r| r.ok())
    .unwrap_or_default();
    Error::Registry {
        op: op.to_string(),
        location: loc.clone(),
        status,
        detail: registry_message(&body),
        retry_after,
    }
}

/// The first error of a distribution error body `{"errors":[{"code","message"}]}`.
pub fn registry_message(body: &[u8]) -> RegistryMessage {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    let clean = |s: String| -> String {
        let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        one_line.chars().take(300).collect()
    };
    match serde_json::from_slice::<Errs>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let first = e.errors.into_iter().next().expect("non-empty");
            RegistryMessage {
                code: first.code.map(clean),
                message: first.message.map(clean),
            }
        }
        _ => RegistryMessage::default(),
    }
}

pub(crate) fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

pub(crate) fn limit_text(limit: usize) -> String {
    if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit}-byte")
    }
}

/// The error for a "found" check that unexpectedly passed on an unsuccessful answer.
pub(crate) fn unreachable_success(op: &str, loc: &Location) -> Error {
    Error::Network {
        op: op.to_string(),
        location: loc.clone(),
        reason: "unexpected answer".into(),
        transient: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_messages() {
        let m = registry_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown","detail":{}}]}"#);
        assert_eq!(m.code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(m.message.as_deref(), Some("manifest unknown"));
        assert_eq!(registry_message(b"<html>"), RegistryMessage::default());
    }
}
