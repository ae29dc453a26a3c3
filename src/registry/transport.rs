//! Sending a request to the registry: the credentials it needs (only to the registry's own
//! origin), retries of transient failures ([`crate::retry::run`]), one re-authentication
//! after a 401, and small answers read whole as part of the retried exchange.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use url::Url;

use super::errors::{limit_text, retryable_status, status_error};
use super::{Buffered, Client, Scope};
use crate::credentials::Credentials;
use crate::error::{Error, Location, Result};
use crate::http::{
    ReadError, network_error_msg, network_error_with, origin_text, read_limited, same_origin,
};
use crate::redact;

/// How long a request may take.
#[derive(Debug, Clone, Copy)]
pub enum Timeout {
    /// The whole exchange, body included (small requests).
    Total(Duration),
    /// Until the response headers arrive; the body is then read with a stall timeout.
    Headers(Duration),
}

/// A body for a request that may be sent more than once.
#[derive(Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// Bytes, re-sent as they are on a retry.
    Bytes(Bytes, &'static str),
}

/// What every attempt of one [`Client::send`] shares.
struct Exchange<'r, 'a> {
    request: &'r Request<'a>,
    timeout: Timeout,
    own: bool,
    base: &'r Url,
    loc: &'r Location,
    reauthed: &'r AtomicBool,
}

/// One request to a registry: what to send, which scope it needs, and what it is for (used
/// in messages).
#[derive(Clone)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: Method,
    /// Full URL.
    pub url: Url,
    /// Scope the request needs.
    pub scope: &'a Scope,
    /// Extra headers.
    pub headers: HeaderMap,
    /// Body (re-sent on retries).
    pub body: Body,
    /// What ferry is doing, for messages (`reading manifest latest`).
    pub op: &'a str,
    /// Repository, for messages.
    pub repo: &'a str,
}

impl Client {
    /// The URL of `/v2/<rest>`.
    pub async fn url(&self, rest: &str) -> Result<Url> {
        let base = self.base().await?;
        base.join(&format!("v2/{rest}"))
            .map_err(|_| Error::usage(format!("cannot build a URL for {rest:?}")))
    }

    /// Resolve a `Location` header against the registry base.
    pub async fn resolve(&self, location: &str) -> Result<Url> {
        let base = self.base().await?;
        base.join(location).map_err(|_| Error::Invalid {
            what: "Location header".into(),
            location: self.location(""),
            reason: format!("{location:?} is not a URL"),
        })
    }

    /// Send a request with retries and re-authentication. Returns the response whatever its
    /// status, unless the status is transient and retries are left, or it is a 401 after
    /// re-authenticating (an [`Error::Auth`]).
    pub async fn send(&self, request: Request<'_>, timeout: Timeout) -> Result<reqwest::Response> {
        let loc = self.location(request.repo);
        let base = self.base().await?;
        // Credentials go only to the registry itself: a URL the registry handed out on another
        // scheme, host or port (an upload Location on a storage backend) gets none.
        let own = same_origin(&request.url, base);
        // One re-authentication per request, whatever the retries.
        let reauthed = AtomicBool::new(false);
        let exchange = Exchange {
            request: &request,
            timeout,
            own,
            base,
            loc: &loc,
            reauthed: &reauthed,
        };
        let exchange = &exchange;
        crate::retry::run(&self.retry, request.op, move || self.exchange(exchange)).await
    }

    /// One attempt of [`send`](Self::send): the request, sent once more after a 401 when
    /// re-authenticating can help. Transient statuses come back as errors, for the retry.
    async fn exchange(&self, x: &Exchange<'_, '_>) -> Result<reqwest::Response> {
        let r = x.request;
        loop {
            let auth = if x.own {
                self.authorization(r.scope, false, x.loc).await?
            } else {
                None
            };
            let mut req = self
                .http
                .request(r.method.clone(), r.url.clone())
                .headers(r.headers.clone());
            if let Timeout::Total(t) = x.timeout {
                req = req.timeout(t);
            }
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            req = match &r.body {
                Body::Empty => req,
                Body::Bytes(b, ct) => req.header(header::CONTENT_TYPE, *ct).body(b.clone()),
            };
            self.pace.wait().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let resp = match x.timeout {
                Timeout::Total(_) => req
                    .send()
                    .await
                    .map_err(|e| self.network_error(e, r.op, x.loc))?,
                Timeout::Headers(d) => match tokio::time::timeout(d, req.send()).await {
                    Ok(r2) => r2.map_err(|e| self.network_error(e, r.op, x.loc))?,
                    Err(_) => {
                        return Err(Error::Network {
                            op: r.op.to_string(),
                            location: x.loc.clone(),
                            reason: format!("no answer within {} s", d.as_secs()),
                            transient: true,
                        });
                    }
                },
            };
            self.pace.observe(resp.headers());
            log::debug!(
                "{} {} -> {} ({} ms)",
                r.method,
                redact::url(&r.url),
                resp.status().as_u16(),
                started.elapsed().as_millis()
            );
            if resp.status() == StatusCode::UNAUTHORIZED {
                // A 401 from another host (after a redirect, or at a URL on another host) is
                // never answered with the registry's credentials.
                if !x.own || !same_origin(resp.url(), x.base) {
                    return Err(self.foreign_401(resp.url(), x.loc));
                }
                if !x.reauthed.swap(true, Ordering::Relaxed) && self.creds_can_reauth().await {
                    self.refresh_after_401(&resp, r.scope, x.loc).await?;
                    continue;
                }
                return Err(self.unauthorized(resp, r.op, x.loc).await);
            }
            if retryable_status(resp.status()) {
                return Err(status_error(resp, r.op, x.loc).await);
            }
            return Ok(resp);
        }
    }

    /// The error for a 401 that did not come from the registry itself.
    pub(super) fn foreign_401(&self, at: &Url, loc: &Location) -> Error {
        Error::Auth {
            location: loc.clone(),
            reason: format!(
                "{} answered HTTP 401 for the registry's request; the registry's credentials are only ever sent to the registry, so it was not answered",
                origin_text(at)
            ),
        }
    }

    /// A transport failure as an [`Error`], its TLS hint naming this side's flag.
    pub(crate) fn network_error(&self, e: reqwest::Error, op: &str, loc: &Location) -> Error {
        network_error_with(e, op, loc, &self.tls_verify_flag)
    }

    /// Whether `url` is on the registry itself (same scheme, host and port as its base URL).
    pub(crate) async fn is_own(&self, url: &Url) -> Result<bool> {
        Ok(same_origin(url, self.base().await?))
    }

    async fn unauthorized(&self, resp: reqwest::Response, op: &str, loc: &Location) -> Error {
        let insufficient = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.contains("insufficient_scope")));
        let e = status_error(resp, op, loc).await;
        let detail = match &e {
            Error::Registry { detail, .. } => detail.to_string(),
            _ => String::new(),
        };
        let reason = match &self.creds {
            _ if insufficient => {
                format!(
                    "{op}: the credentials do not grant the access this needs (HTTP 401 insufficient_scope{detail})"
                )
            }
            Credentials::Anonymous => format!("{op}: credentials are required (HTTP 401{detail})"),
            _ => format!("{op}: the registry refused the credentials (HTTP 401{detail})"),
        };
        Error::Auth {
            location: loc.clone(),
            reason,
        }
    }

    /// A small request whose successful answer is read whole, at most `limit` bytes (`what`
    /// names the document in the "too large" message). Reading the body is part of the
    /// retried exchange: a reset, premature EOF or stall while reading it is retried like a
    /// failure before the headers. An unsuccessful answer is returned unread (`Err`), for
    /// the caller's message.
    pub async fn send_read(
        &self,
        request: Request<'_>,
        limit: usize,
        what: &str,
    ) -> Result<std::result::Result<Buffered, reqwest::Response>> {
        let loc = self.location(request.repo);
        let too_large = |size: Option<u64>| Error::Invalid {
            what: what.to_string(),
            location: loc.clone(),
            reason: match size {
                Some(n) => format!("it is {n} bytes, more than the {} limit", limit_text(limit)),
                None => format!("it is more than the {} limit", limit_text(limit)),
            },
        };
        let (request, loc, too_large) = (&request, &loc, &too_large);
        crate::retry::run(&self.retry, request.op, move || async move {
            let resp = self.send_small(request.clone()).await?;
            if !resp.status().is_success() {
                return Ok(Err(resp));
            }
            if let Some(n) = resp.content_length().filter(|&n| n > limit as u64) {
                return Err(too_large(Some(n)));
            }
            let status = resp.status();
            let headers = resp.headers().clone();
            match read_limited(resp, limit, self.stall_timeout).await {
                Ok(body) => Ok(Ok(Buffered {
                    status,
                    headers,
                    body,
                })),
                Err(ReadError::TooLarge) => Err(too_large(None)),
                Err(e) => Err(network_error_msg(e, request.op, loc)),
            }
        })
        .await
    }

    /// A small request whose successful answer body is read whole (with `limit`).
    pub async fn send_small(&self, request: Request<'_>) -> Result<reqwest::Response> {
        self.send(request, Timeout::Total(self.request_timeout))
            .await
    }
}
