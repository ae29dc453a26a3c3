//! Authorization for each request: Basic credentials, or a bearer token fetched from the
//! challenge's realm (GET with Basic credentials, or an OAuth2 POST for identity tokens),
//! cached per scope, renewed before it expires and once after a 401.

use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};
use url::Url;

use super::auth::{self, CachedToken, Challenge};
use super::errors::status_error;
use super::{Client, Scope};
use crate::credentials::Credentials;
use crate::error::{Error, Location, Result};
use crate::http::{content_type, network_error_msg, read_limited};
use crate::redact;

#[derive(Default)]
pub(super) struct AuthState {
    pub(super) challenge: Option<Challenge>,
    tokens: Vec<(Scope, CachedToken)>,
}

pub(crate) fn basic_header(user: &str, pass: &str) -> Result<HeaderValue> {
    use base64::Engine as _;
    redact::remember_basic(user, pass);
    let v = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let mut h = HeaderValue::from_str(&v)
        .map_err(|_| Error::usage("credentials contain characters not allowed in HTTP headers"))?;
    h.set_sensitive(true);
    Ok(h)
}

pub(crate) fn bearer_header(token: &str) -> Result<HeaderValue> {
    let mut h = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::usage("the token contains characters not allowed in HTTP headers"))?;
    h.set_sensitive(true);
    Ok(h)
}

impl Client {
    /// The `Authorization` header for a request needing `scope`, fetching a token if needed.
    pub(super) async fn authorization(
        &self,
        scope: &Scope,
        refresh: bool,
        loc: &Location,
    ) -> Result<Option<HeaderValue>> {
        if let Credentials::Bearer(t) = &self.creds {
            return Ok(Some(bearer_header(t.expose())?));
        }
        let mut state = self.state.lock().await;
        match state.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => match &self.creds {
                Credentials::Basic { username, password }
                | Credentials::OAuth2 {
                    username, password, ..
                } => Ok(Some(basic_header(username, password.expose())?)),
                _ => Ok(None),
            },
            Some(Challenge::Bearer { realm, service }) => {
                let now = Instant::now();
                state.tokens.retain(|(_, t)| t.fresh(now));
                if refresh {
                    state.tokens.retain(|(s, _)| !s.covers(scope));
                } else if let Some((_, t)) = state.tokens.iter().find(|(s, _)| s.covers(scope)) {
                    return Ok(Some(bearer_header(t.token.expose())?));
                }
                let t = self
                    .fetch_token(&realm, service.as_deref(), scope, loc)
                    .await?;
                let cached = CachedToken::new(t.token, t.lifetime, now);
                let h = bearer_header(cached.token.expose())?;
                state.tokens.push((scope.clone(), cached));
                Ok(Some(h))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        loc: &Location,
    ) -> Result<auth::TokenResponse> {
        let auth_err = |reason: String| Error::Auth {
            location: loc.clone(),
            reason,
        };
        let mut url = Url::parse(realm)
            .map_err(|_| auth_err(format!("token realm {realm:?} is not a URL")))?;
        // Credentials never travel in clear text to a registry reached over HTTPS: a realm on
        // plain http:// gets them only when this side's TLS verification is off.
        let sends_secret = !matches!(self.creds, Credentials::Anonymous | Credentials::Bearer(_));
        if sends_secret && url.scheme() == "http" && !self.allow_http {
            return Err(auth_err(format!(
                "the registry's token realm {} is plain http://: its credentials would travel in clear text, so they are not sent (pass {}=false if that is intended)",
                redact::url(&url),
                self.tls_verify_flag
            )));
        }
        // An identity token is exchanged with an OAuth2 POST (as skopeo does); otherwise the
        // token is asked for with a GET, with Basic credentials if there are any.
        let oauth2_form = match &self.creds {
            Credentials::OAuth2 { identity_token, .. } => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", identity_token.expose());
                form.append_pair("client_id", "containers/image");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                for s in &scope.0 {
                    form.append_pair("scope", s);
                }
                Some(redact::Secret::new(form.finish()))
            }
            _ => None,
        };
        if oauth2_form.is_none() {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in &scope.0 {
                q.append_pair("scope", s);
            }
            if let Credentials::Basic { username, .. } = &self.creds {
                q.append_pair("account", username);
            }
        }
        let (url, oauth2_form, auth_err) = (&url, &oauth2_form, &auth_err);
        crate::retry::run(&self.retry, "requesting a token", move || async move {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.token_requests.fetch_add(1, Ordering::Relaxed);
            let mut req = match oauth2_form {
                Some(form) => self
                    .http
                    .post(url.clone())
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.expose().to_string()),
                None => self.http.get(url.clone()),
            }
            .timeout(self.request_timeout);
            if let Credentials::Basic { username, password } = &self.creds {
                req = req.header(
                    header::AUTHORIZATION,
                    basic_header(username, password.expose())?,
                );
            }
            let resp = req
                .send()
                .await
                .map_err(|e| self.network_error(e, "requesting a token", loc))?;
            let status = resp.status();
            log::debug!(
                "{} {} -> {}",
                if oauth2_form.is_some() { "POST" } else { "GET" },
                redact::url(url),
                status.as_u16()
            );
            if status.is_success() {
                let ct = content_type(&resp);
                let body = read_limited(resp, 1 << 20, self.request_timeout)
                    .await
                    .map_err(|e| network_error_msg(e, "reading the token", loc))?;
                let secrets = self.creds.secrets();
                return auth::parse_token_response(&body, ct.as_deref())
                    .map_err(|r| auth_err(redact::scrub(&r.to_string(), &secrets)));
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let what = match &self.creds {
                    Credentials::Anonymous => {
                        "anonymous access was refused; credentials are needed"
                    }
                    _ => "the token endpoint refused the credentials",
                };
                return Err(auth_err(format!("{what} (HTTP {})", status.as_u16())));
            }
            let e = status_error(resp, "requesting a token", loc).await;
            if e.is_transient() {
                return Err(e);
            }
            Err(auth_err(format!(
                "the token endpoint answered HTTP {}{}",
                status.as_u16(),
                match &e {
                    Error::Registry { detail, .. } => detail.to_string(),
                    _ => String::new(),
                }
            )))
        })
        .await
    }

    pub(super) async fn creds_can_reauth(&self) -> bool {
        matches!(
            self.state.lock().await.challenge,
            Some(Challenge::Bearer { .. })
        ) || !matches!(self.creds, Credentials::Anonymous)
    }

    pub(super) async fn refresh_after_401(
        &self,
        resp: &reqwest::Response,
        scope: &Scope,
        loc: &Location,
    ) -> Result<()> {
        // The registry may name a (new) challenge; take it, then fetch a fresh token.
        if let Ok(Some(c)) = self.challenge_from(resp, loc) {
            self.state.lock().await.challenge = Some(c);
        }
        log::debug!("{}: 401, re-authenticating", self.registry);
        self.authorization(scope, true, loc).await.map(|_| ())
    }

    /// Make sure the scope has a fresh token before a long, non-retryable request.
    pub async fn prepare(&self, scope: &Scope, repo: &str) -> Result<Option<HeaderValue>> {
        self.base().await?;
        self.authorization(scope, false, &self.location(repo)).await
    }
}
