//! Finding the registry: `GET /v2/` once per client tells the scheme (HTTPS, or plain HTTP
//! when TLS verification is off and HTTPS fails), the authentication challenge, and whether
//! the registry serves OpenShift's signature extension.

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use reqwest::header;
use url::Url;

use super::auth::{self, Challenge};
use super::errors::{retryable_status, status_error};
use super::{Client, signatures};
use crate::error::{Error, Location, Result};
use crate::http::same_origin;
use crate::redact;
use crate::retry::RetryPolicy;

impl Client {
    /// The base URL (`https://host` or, with TLS verification off, possibly `http://host`),
    /// found by pinging `/v2/` once.
    pub async fn base(&self) -> Result<&Url> {
        self.base.get_or_try_init(|| self.ping()).await
    }

    /// Open `extra` connections to the registry (each an unauthenticated `GET /v2/`, its
    /// answer read and dropped), once per connection pool (host and TLS settings) in a
    /// process, so that the requests that will soon run side by side (a copy's upload
    /// sessions, while the source's child manifests are read) find connections ready instead
    /// of paying TCP and TLS set-up, two round trips, each. Only over HTTPS with verification
    /// on (the scheme is certain) and without a request-rate bound. Nothing waits for them,
    /// and their failures are ignored: a request that finds no connection ready opens its own.
    pub fn warm_up(&self, extra: usize) {
        if self.allow_http || self.pace.is_bounded() || self.warmed.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(url) = Url::parse(&format!("https://{}/v2/", self.host)) else {
            return;
        };
        for _ in 0..extra {
            let (http, url, timeout) = (self.http.clone(), url.clone(), self.request_timeout);
            self.requests.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                if let Ok(r) = http.get(url).timeout(timeout).send().await {
                    let _ = r.bytes().await;
                }
            });
        }
    }

    async fn ping(&self) -> Result<Url> {
        let https = Url::parse(&format!("https://{}/", self.host))
            .map_err(|_| Error::usage(format!("invalid registry host {:?}", self.registry)))?;
        // With verification off, HTTPS is tried once before falling back to plain HTTP.
        match self.ping_at(&https, !self.allow_http).await {
            Ok(()) => Ok(https),
            Err(e) if self.allow_http && matches!(e, Error::Network { .. }) => {
                log::debug!(
                    "{}: HTTPS ping failed ({e}); trying plain HTTP (TLS verification is off)",
                    self.registry
                );
                let http = Url::parse(&format!("http://{}/", self.host)).expect("valid URL");
                self.ping_at(&http, true).await.map(|()| http)
            }
            Err(e) => Err(e),
        }
    }

    async fn ping_at(&self, base: &Url, retry: bool) -> Result<()> {
        let url = base.join("v2/").expect("valid URL");
        let loc = self.location("");
        let policy = if retry {
            self.retry.clone()
        } else {
            RetryPolicy::none()
        };
        let op = "pinging the registry";
        let (url_ref, loc_ref) = (&url, &loc);
        let resp = crate::retry::run(&policy, op, move || async move {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let r = self
                .http
                .get(url_ref.clone())
                .timeout(self.request_timeout)
                .send()
                .await;
            match r {
                Ok(r) if retryable_status(r.status()) => Err(status_error(r, op, loc_ref).await),
                Ok(r) => Ok(r),
                Err(e) => Err(self.network_error(e, op, loc_ref)),
            }
        })
        .await?;
        log::debug!("GET {} -> {}", redact::url(&url), resp.status().as_u16());
        if resp.status() == StatusCode::UNAUTHORIZED && !same_origin(resp.url(), base) {
            return Err(self.foreign_401(resp.url(), &loc));
        }
        let sigs = resp
            .headers()
            .get(signatures::SUPPORTS_HEADER)
            .is_some_and(|v| v.as_bytes() == b"1");
        self.supports_signatures.store(sigs, Ordering::Relaxed);
        match resp.status() {
            s if s.is_success() => {
                self.state.lock().await.challenge = None;
                Ok(())
            }
            StatusCode::UNAUTHORIZED => {
                let challenge = self.challenge_from(&resp, &loc)?;
                self.state.lock().await.challenge = challenge;
                Ok(())
            }
            _ => Err(status_error(resp, "pinging the registry (GET /v2/)", &loc).await),
        }
    }

    pub(super) fn challenge_from(
        &self,
        resp: &reqwest::Response,
        loc: &Location,
    ) -> Result<Option<Challenge>> {
        let values: Vec<&str> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(Error::Auth {
                location: loc.clone(),
                reason: "the registry answered 401 without a WWW-Authenticate challenge".into(),
            });
        }
        let mut found = Vec::new();
        for v in values {
            found.extend(auth::parse_challenges(v).map_err(|reason| Error::Auth {
                location: loc.clone(),
                reason: reason.to_string(),
            })?);
        }
        // Prefer Bearer, as Docker clients do.
        let bearer = found
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .cloned();
        Ok(bearer.or_else(|| found.into_iter().next()))
    }
}
