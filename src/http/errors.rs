//! Transport failures as one-line [`Error`]s, classified by the error's type (never its
//! text): which are transient (resets, EOFs, timeouts, stalls) and which answer the same way
//! every time (TLS and certificate failures, redirect loops).

use super::read::{ReadError, stalled_text};
use crate::error::{Error, Location};

/// One line describing an error and its causes, without URLs.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// A transport failure as an [`Error`] (the TLS hint names `--tls-verify`; a [`Client`] names
/// its own side's flag).
pub fn network_error(e: reqwest::Error, op: &str, loc: &Location) -> Error {
    network_error_with(e, op, loc, "--tls-verify")
}

/// A transport failure as an [`Error`], classified by the error's type (never its text):
/// TLS and certificate failures answer the same way every time and are not retried; a
/// registry answering plain HTTP on an HTTPS connection is said so in words; resets, EOFs and
/// timeouts are transient. `flag` is the side's `--…tls-verify` flag, for hints.
pub fn network_error_with(e: reqwest::Error, op: &str, loc: &Location, flag: &str) -> Error {
    use crate::tls::TlsFailure;
    let timeout = e.is_timeout();
    // A redirect loop (or chain longer than 10) answers the same way every time.
    let redirect = e.is_redirect();
    let e = e.without_url();
    let failure = crate::tls::classify(&e);
    let reason = chain(&e);
    let cert_dir = flag.replace("tls-verify", "cert-dir");
    let (reason, transient) = match failure {
        Some(TlsFailure::PlainHttp) => (
            format!(
                "the registry at {} answered in plain HTTP, not HTTPS; use {flag}=false if that is intended",
                loc.registry
            ),
            false,
        ),
        Some(TlsFailure::Certificate) => (
            format!(
                "{reason} (TLS verification failed: pass the registry's CA with {cert_dir}, or {flag}=false)"
            ),
            false,
        ),
        Some(TlsFailure::Handshake) => (format!("TLS handshake failed: {reason}"), false),
        None if timeout => (format!("timed out ({reason})"), true),
        None => (reason, !redirect),
    };
    Error::Network {
        op: op.to_string(),
        location: loc.clone(),
        reason,
        transient,
    }
}

/// A failure while reading a body ([`ReadError`]) as an [`Error`]: stalls and transport
/// failures are transient, a body over its limit is invalid.
pub fn network_error_msg(e: ReadError, op: &str, loc: &Location) -> Error {
    match e {
        ReadError::Http(e) => network_error(e, op, loc),
        ReadError::Stalled(d) => Error::Network {
            op: op.to_string(),
            location: loc.clone(),
            reason: stalled_text(d),
            transient: true,
        },
        ReadError::TooLarge => Error::Invalid {
            what: "answer".into(),
            location: loc.clone(),
            reason: "it is too large".into(),
        },
    }
}
