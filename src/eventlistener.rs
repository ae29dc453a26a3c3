//! Calling a Tekton Triggers EventListener (`ferry trigger --event-listener URL`).
//!
//! An EventListener is an HTTP sink (its Service, port 8080, exposed through a Route): a `POST`
//! with a JSON body is an event. The production side's EventListener runs it through the GitHub
//! interceptor, which checks the `X-Hub-Signature-256` header — `sha256=` and the hex
//! HMAC-SHA256 of the exact body bytes, keyed with the shared secret (go-github's
//! `ValidateSignature`) — then its TriggerBinding reads the body's fields and its
//! TriggerTemplate creates the PipelineRun.
//!
//! The body is one JSON object of the `--env` pairs, `{"IMAGE_NAME":"app",…}`, so that a
//! TriggerBinding reads each as `$(body.IMAGE_NAME)`.
//!
//! What the sink answers (tektoncd/triggers, `pkg/sink/sink.go`): it reads the body, then
//! answers `202 Accepted` with `{"eventListener":NAME,"namespace":NS,"eventListenerUID":UID,
//! "eventID":ID}` and processes the triggers (interceptors included) *afterwards*, in the
//! background. So a 202 proves that the event was accepted under an ID, not that the signature
//! was right: ferry says so, and names the label (`triggers.tekton.dev/triggers-eventid=ID`)
//! that the PipelineRun started for it carries. Anything else — another status, an answer
//! without an event ID — is a failure (exit 1). Never retried: a retry would be a second event.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};
use url::Url;

use crate::error::{Error, Location, Result};
use crate::http::chain;
use crate::redact::Secret;
use crate::tls::TlsOptions;
use crate::webhook::{EnvVar, MAX_ANSWER, Redactor};

/// The header GitHub-style interceptors check.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The label Tekton Triggers puts on every resource it creates for an event.
pub const EVENT_ID_LABEL: &str = "triggers.tekton.dev/triggers-eventid";

/// The request body: one JSON object, each `--env` a string field (sorted by name). Names must
/// be unique.
pub fn body(env: &[EnvVar]) -> Result<Vec<u8>> {
    let mut map = Map::new();
    for e in env {
        if map
            .insert(e.name.clone(), Value::String(e.value.clone()))
            .is_some()
        {
            return Err(Error::usage(format!(
                "trigger: --env {} is given twice",
                e.name
            )));
        }
    }
    Ok(serde_json::to_vec(&Value::Object(map)).expect("a map of strings serialises"))
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`, as GitHub signs a delivery.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check the EventListener's URL: `https://` (`http://` only with `--tls-verify=false`), no
/// credentials, no fragment.
pub fn check_url(input: &str, insecure: bool) -> Result<Url> {
    let u = Url::parse(input).map_err(|e| {
        Error::usage(format!(
            "--event-listener {input:?} is not a URL ({e}); expected e.g. https://el-ferry-promotion-shop-prod.apps.example.com"
        ))
    })?;
    match u.scheme() {
        "https" => {}
        "http" if insecure => {}
        "http" => {
            return Err(Error::usage(
                "--event-listener is http://: the event and its signature would travel in clear text (pass --tls-verify=false to allow it)",
            ));
        }
        other => {
            return Err(Error::usage(format!(
                "--event-listener must be an https:// URL, not {other}://"
            )));
        }
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Error::usage("--event-listener must not carry credentials"));
    }
    if u.fragment().is_some() || u.cannot_be_a_base() || u.host_str().is_none() {
        return Err(Error::usage(
            "--event-listener must be the EventListener's URL, without a fragment",
        ));
    }
    Ok(u)
}

/// What the EventListener said when it accepted the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `eventListener`: its name.
    pub event_listener: String,
    /// `namespace`, when given.
    pub namespace: Option<String>,
    /// `eventID`: the label value of what it creates.
    pub event_id: String,
}

/// Decide what an answer means: `Ok` only for a 2xx naming the event it accepted.
pub fn judge(status: u16, body: &[u8], url: &str, redactor: &Redactor<'_>) -> Result<Accepted> {
    let fail = |reason: String| Error::Trigger(format!("EventListener at {url}: {reason}"));
    let said = || redactor.text(&crate::webhook::summarize(body));
    if !(200..300).contains(&status) {
        let hint = match status {
            404 => ": check the URL (the EventListener's Route)",
            503 => ": the EventListener has no ready pod (oc get pods -l eventlistener=NAME)",
            _ => "",
        };
        return Err(fail(format!("HTTP {status}{hint} ({})", said())));
    }
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match (field("eventID"), field("eventListener")) {
        (Some(event_id), Some(event_listener)) => Ok(Accepted {
            event_listener,
            namespace: field("namespace"),
            event_id,
        }),
        _ => Err(fail(format!(
            "HTTP {status} without naming an accepted event (eventListener, eventID), so the event could not be confirmed ({})",
            said()
        ))),
    }
}

/// Everything a call needs.
pub struct Call<'a> {
    /// The EventListener's URL.
    pub url: &'a Url,
    /// The shared secret the interceptor checks.
    pub secret: &'a Secret,
    /// The body's fields.
    pub env: &'a [EnvVar],
    /// TLS settings.
    pub tls: &'a TlsOptions,
    /// Time allowed for the call.
    pub timeout: Duration,
}

/// POST the event once (never retried) and judge the answer.
pub async fn send(call: Call<'_>) -> Result<Accepted> {
    if call.secret.expose().is_empty() {
        return Err(Error::usage("the webhook secret is empty"));
    }
    let redactor = Redactor::new(vec![call.secret]);
    let body = body(call.env)?;
    let sig = signature(call.secret, &body);
    let host = call.url.host_str().unwrap_or_default().to_string();
    let host_port = match call.url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let shown = redactor.url(call.url);
    let loc = Location {
        registry: host_port.clone(),
        repository: String::new(),
    };
    let http = crate::tls::client_builder(call.tls, &host_port)?
        .connect_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            Error::Tls(format!(
                "cannot set up TLS for {host_port}: {}",
                chain(&e.without_url())
            ))
        })?;
    log::debug!(
        "POST {shown} ({} bytes, fields {}, {SIGNATURE_HEADER}: sha256=…)",
        body.len(),
        call.env
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let resp = http
        .post(call.url.clone())
        .timeout(call.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .header(SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let maybe_sent = !e.is_connect();
            let e = e.without_url();
            let mut reason = redactor.text(&chain(&e));
            if let Some(t) = crate::tls::classify(&e) {
                reason = match t {
                    crate::tls::TlsFailure::PlainHttp => format!(
                        "{host_port} answered in plain HTTP, not HTTPS (an http:// URL needs --tls-verify=false)"
                    ),
                    _ => format!("{reason} (TLS: pass the Route's CA with --cert-dir)"),
                };
            } else if maybe_sent {
                reason = format!("{reason}: the event could not be confirmed");
            }
            Error::Network {
                op: "calling the EventListener".into(),
                location: loc.clone(),
                reason,
                transient: false,
            }
        })?;
    let status = resp.status().as_u16();
    let body = match crate::http::read_limited(resp, MAX_ANSWER, call.timeout).await {
        Ok(b) => b.to_vec(),
        Err(crate::http::ReadError::TooLarge) => {
            return Err(Error::usage(format!(
                "EventListener at {shown}: HTTP {status} with an answer larger than {} MiB: the event could not be confirmed",
                MAX_ANSWER >> 20
            )));
        }
        Err(_) => Vec::new(),
    };
    log::debug!("POST {shown} -> {status} ({} bytes)", body.len());
    judge(status, &body, &shown, &redactor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
        pairs
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    #[test]
    fn body_is_one_object() {
        let b = body(&env(&[("IMAGE_NAME", "app"), ("GIT_COMMIT", "abc")])).unwrap();
        assert_eq!(b, br#"{"GIT_COMMIT":"abc","IMAGE_NAME":"app"}"#);
        assert!(body(&env(&[("A", "1"), ("A", "2")])).is_err());
        assert_eq!(body(&[]).unwrap(), b"{}");
    }

    #[test]
    fn signature_as_github_computes_it() {
        // GitHub's documented example ("Validating webhook deliveries"): secret "It's a Secret
        // to Everybody", payload "Hello, World!".
        let s = Secret::new("It's a Secret to Everybody");
        assert_eq!(
            signature(&s, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn urls() {
        assert!(check_url("https://el.apps.example.com", false).is_ok());
        assert!(check_url("https://el.apps.example.com/hooks/x?y=1", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080", false).is_err());
        assert!(check_url("http://127.0.0.1:8080", true).is_ok());
        assert!(check_url("https://u:p@el.example.com", false).is_err());
        assert!(check_url("https://el.example.com/#x", false).is_err());
        assert!(check_url("ftp://el.example.com", false).is_err());
        assert!(check_url("el.example.com", false).is_err());
    }

    #[test]
    fn answers() {
        let s = Secret::new("topsecret");
        let r = Redactor::new(vec![&s]);
        let ok = br#"{"eventListener":"ferry-promotion","namespace":"shop-prod","eventListenerUID":"u-1","eventID":"7b1e"}"#;
        let a = judge(202, ok, "https://el", &r).unwrap();
        assert_eq!(a.event_id, "7b1e");
        assert_eq!(a.event_listener, "ferry-promotion");
        assert_eq!(a.namespace.as_deref(), Some("shop-prod"));
        for (status, body, needle) in [
            (202, &b""[..], "an empty answer"),
            (200, b"<html>topsecret</html>", "<redacted>"),
            (202, br#"{"eventListener":"x"}"#, "could not be confirmed"),
            (404, b"not found", "HTTP 404"),
            (503, b"", "no ready pod"),
            (500, b"oops", "HTTP 500"),
        ] {
            let e = judge(status, body, "https://el", &r)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{status}: {e}");
            assert!(!e.contains("topsecret"), "{e}");
        }
    }
}
