//! The OCI distribution client: one [`Client`] per registry and set of credentials.
//!
//! It finds the scheme and the authentication the registry wants (`GET /v2/`), caches bearer
//! tokens per scope, retries transient failures per request ([`crate::retry`]), re-authenticates
//! once on 401, and maps every failure to a one-line [`Error`] naming the registry, the
//! repository, the HTTP status and the registry's own error code and message.
//!
//! Timeouts: connecting has [`ClientOptions::connect_timeout`]; small requests (manifests,
//! HEADs, tokens, tag lists) have [`ClientOptions::request_timeout`] in all; a body that moves
//! less than [`STALL_FLOOR`] bytes within [`ClientOptions::stall_timeout`] is stalled — a
//! silent or trickling body never hangs a copy.
//!
//! Credentials go only to the registry itself (its scheme, host and port): never along a
//! redirect to another host (reqwest strips `Authorization` on cross-origin redirects; at most
//! 10 redirects are followed), never to a URL the registry hands out on another host (an
//! upload session), never in answer to a 401 that came from another host, never to a plain
//! `http://` token realm of a registry reached over HTTPS (unless TLS verification is off);
//! `Link` pagination keeps only the link's path and query, as skopeo does.

pub mod auth;
pub mod blob;
pub mod destination;
use crate::manifest;
pub mod signatures;
pub mod source;
pub mod tags;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::credentials::Credentials;
use crate::error::{Error, Location, RegistryMessage, Result};
use crate::redact;
use crate::reference::{Digest, api_host};
use crate::retry::RetryPolicy;
use crate::tls::TlsOptions;
use auth::{CachedToken, Challenge};
use manifest::Manifest;

/// The source and destination of a registry-to-registry copy, blobs mounted between them
/// when they are repositories of one registry.
pub fn endpoints(
    src_client: Arc<Client>,
    src: &crate::reference::ImageRef,
    dst_client: Arc<Client>,
    dst: &crate::reference::ImageRef,
) -> (
    Arc<dyn crate::image::ImageSource>,
    Arc<dyn crate::image::ImageDestination>,
) {
    use crate::image::ImageSource as _;
    let source = source::RegistrySource::new(src_client, src.clone());
    let origin = source.blob_origin();
    let destination =
        destination::RegistryDestination::new(dst_client, dst.clone(), origin.as_ref());
    (Arc::new(source), Arc::new(destination))
}

/// The user agent ferry sends.
pub const USER_AGENT: &str = concat!("ferry/", env!("CARGO_PKG_VERSION"));

/// How to reach and authenticate to one registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TLS verification and cert dir.
    pub tls: TlsOptions,
    /// Credentials.
    pub credentials: Credentials,
    /// Retry policy for every request.
    pub retry: RetryPolicy,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Total time allowed for a small request (everything but blob bodies).
    pub request_timeout: Duration,
    /// Time a blob transfer may go without moving enough bytes ([`STALL_FLOOR`]).
    pub stall_timeout: Duration,
    /// The flag that turns TLS verification off for this side (`--dest-tls-verify`), for
    /// messages.
    pub tls_verify_flag: String,
    /// The most memory a tag list may take ([`tags::TagBudget`]).
    pub max_tag_data: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: TlsOptions::default(),
            credentials: Credentials::Anonymous,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(60),
            tls_verify_flag: "--tls-verify".into(),
            max_tag_data: tags::DEFAULT_LIMIT,
        }
    }
}

/// Scopes a request needs, e.g. `repository:ns/app:pull`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Pull access to one repository.
    pub fn pull(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull")])
    }

    /// Pull and push access to one repository.
    pub fn push(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }

    /// Delete access (plus pull) to one repository.
    pub fn delete(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull,delete")])
    }

    /// Registry-wide catalog access.
    pub fn catalog() -> Self {
        Scope(vec!["registry:catalog:*".into()])
    }

    /// No scope (e.g. for a login check).
    pub fn none() -> Self {
        Scope(vec![])
    }

    /// This scope plus pull access to another repository (for cross-repository mounts).
    pub fn and_pull(mut self, repo: &str) -> Self {
        let s = format!("repository:{repo}:pull");
        if !self
            .0
            .iter()
            .any(|x| x.starts_with(&format!("repository:{repo}:")))
        {
            self.0.push(s);
        }
        self
    }

    /// Whether a token granted for `self` also serves a request needing `other`.
    pub fn covers(&self, other: &Scope) -> bool {
        other.0.iter().all(|want| {
            let Some((res, actions)) = want.rsplit_once(':') else {
                return false;
            };
            self.0.iter().any(|have| {
                have.rsplit_once(':').is_some_and(|(hres, hactions)| {
                    hres == res
                        && actions
                            .split(',')
                            .all(|a| hactions.split(',').any(|h| h == a || h == "*"))
                })
            })
        })
    }

    #[cfg(test)]
    fn key(&self) -> String {
        self.0.join(" ")
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: Vec<(Scope, CachedToken)>,
}

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

/// A client for one registry.
pub struct Client {
    registry: String,
    host: String,
    http: reqwest::Client,
    allow_http: bool,
    creds: Credentials,
    retry: RetryPolicy,
    request_timeout: Duration,
    stall_timeout: Duration,
    base: tokio::sync::OnceCell<Url>,
    state: tokio::sync::Mutex<AuthState>,
    requests: AtomicU64,
    token_requests: AtomicU64,
    /// The `/v2/` answer carried `X-Registry-Supports-Signatures: 1`.
    supports_signatures: std::sync::atomic::AtomicBool,
    tls_verify_flag: String,
    max_tag_data: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("creds", &self.creds.describe())
            .finish()
    }
}

/// What a manifest HEAD found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`.
    pub digest: Option<Digest>,
    /// `Content-Type`.
    pub media_type: Option<String>,
    /// `Content-Length`.
    pub size: Option<u64>,
}

impl Client {
    /// A client for `registry` (as written in references: `docker.io`, `host:port`).
    pub fn new(registry: &str, opts: ClientOptions) -> Result<Arc<Self>> {
        let host = api_host(registry).to_string();
        let b = crate::tls::client_builder(&opts.tls, &host)?
            .connect_timeout(opts.connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(10));
        let http = b.build().map_err(|e| {
            Error::usage(format!(
                "cannot set up TLS for {registry}: {}",
                chain(&e.without_url())
            ))
        })?;
        Ok(Arc::new(Client {
            registry: registry.to_string(),
            host,
            http,
            allow_http: !opts.tls.verify(),
            creds: opts.credentials,
            retry: opts.retry,
            request_timeout: opts.request_timeout,
            stall_timeout: opts.stall_timeout,
            base: tokio::sync::OnceCell::new(),
            state: tokio::sync::Mutex::new(AuthState::default()),
            requests: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            supports_signatures: std::sync::atomic::AtomicBool::new(false),
            tls_verify_flag: opts.tls_verify_flag,
            max_tag_data: opts.max_tag_data,
        }))
    }

    /// The host (and port) the API is reached at (`registry-1.docker.io` for `docker.io`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The registry name this client talks to.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Requests sent so far (including pings and token requests).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Token requests sent so far.
    pub fn token_request_count(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    /// The stall timeout for blob transfers.
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A location for messages.
    pub fn location(&self, repo: &str) -> Location {
        Location {
            registry: self.registry.clone(),
            repository: repo.to_string(),
        }
    }

    /// Whether two clients reach the same registry (so blobs can be mounted across repositories).
    pub fn same_registry(&self, other: &Client) -> bool {
        self.host == other.host
    }

    /// The base URL (`https://host` or, with TLS verification off, possibly `http://host`),
    /// found by pinging `/v2/` once.
    pub async fn base(&self) -> Result<&Url> {
        self.base.get_or_try_init(|| self.ping()).await
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
        let mut schedule = if retry {
            self.retry.schedule()
        } else {
            RetryPolicy::none().schedule()
        };
        let resp = loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let r = self
                .http
                .get(url.clone())
                .timeout(self.request_timeout)
                .send()
                .await;
            let err = match r {
                Ok(r) if retryable_status(r.status()) => {
                    status_error(r, "pinging the registry", &loc).await
                }
                Ok(r) => break r,
                Err(e) => self.network_error(e, "pinging the registry", &loc),
            };
            match schedule.next_delay(&err) {
                Some(d) => tokio::time::sleep(d).await,
                None => return Err(schedule.give_up(err)),
            }
        };
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

    fn challenge_from(
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
                reason,
            })?);
        }
        // Prefer Bearer, as Docker clients do.
        let bearer = found
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .cloned();
        Ok(bearer.or_else(|| found.into_iter().next()))
    }

    /// The `Authorization` header for a request needing `scope`, fetching a token if needed.
    async fn authorization(
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
        let mut schedule = self.retry.schedule();
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.token_requests.fetch_add(1, Ordering::Relaxed);
            let mut req = match &oauth2_form {
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
            let err = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    log::debug!(
                        "{} {} -> {}",
                        if oauth2_form.is_some() { "POST" } else { "GET" },
                        redact::url(&url),
                        status.as_u16()
                    );
                    if status.is_success() {
                        let ct = content_type(&resp);
                        let body = read_limited(resp, 1 << 20, self.request_timeout)
                            .await
                            .map_err(|e| network_error_msg(e, "reading the token", loc))?;
                        let secrets = self.creds.secrets();
                        return auth::parse_token_response(&body, ct.as_deref())
                            .map_err(|r| auth_err(redact::scrub(&r, &secrets)));
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
                    if !e.is_transient() {
                        return Err(auth_err(format!(
                            "the token endpoint answered HTTP {}{}",
                            status.as_u16(),
                            match &e {
                                Error::Registry { detail, .. } => detail.to_string(),
                                _ => String::new(),
                            }
                        )));
                    }
                    e
                }
                Err(e) => self.network_error(e, "requesting a token", loc),
            };
            match schedule.next_delay(&err) {
                Some(d) => tokio::time::sleep(d).await,
                None => return Err(schedule.give_up(err)),
            }
        }
    }

    /// Make sure the scope has a fresh token before a long, non-retryable request.
    pub async fn prepare(&self, scope: &Scope, repo: &str) -> Result<Option<HeaderValue>> {
        self.base().await?;
        self.authorization(scope, false, &self.location(repo)).await
    }

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
        let Request {
            method,
            url,
            scope,
            headers,
            body,
            op,
            repo,
        } = request;
        let loc = self.location(repo);
        let base = self.base().await?;
        // Credentials go only to the registry itself: a URL the registry handed out on another
        // scheme, host or port (an upload Location on a storage backend) gets none.
        let own = same_origin(&url, base);
        let mut schedule = self.retry.schedule();
        let mut reauthed = false;
        loop {
            let auth = if own {
                self.authorization(scope, false, &loc).await?
            } else {
                None
            };
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Timeout::Total(t) = timeout {
                req = req.timeout(t);
            }
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            req = match &body {
                Body::Empty => req,
                Body::Bytes(b, ct) => req.header(header::CONTENT_TYPE, *ct).body(b.clone()),
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result = match timeout {
                Timeout::Total(_) => req
                    .send()
                    .await
                    .map_err(|e| self.network_error(e, op, &loc)),
                Timeout::Headers(d) => match tokio::time::timeout(d, req.send()).await {
                    Ok(r) => r.map_err(|e| self.network_error(e, op, &loc)),
                    Err(_) => Err(Error::Network {
                        op: op.to_string(),
                        location: loc.clone(),
                        reason: format!("no answer within {} s", d.as_secs()),
                        transient: true,
                    }),
                },
            };
            let err = match result {
                Ok(resp) => {
                    log::debug!(
                        "{method} {} -> {} ({} ms)",
                        redact::url(&url),
                        resp.status().as_u16(),
                        started.elapsed().as_millis()
                    );
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        // A 401 from another host (after a redirect, or at a URL on another
                        // host) is never answered with the registry's credentials.
                        if !own || !same_origin(resp.url(), base) {
                            return Err(self.foreign_401(resp.url(), &loc));
                        }
                        if !reauthed && self.creds_can_reauth().await {
                            reauthed = true;
                            self.refresh_after_401(&resp, scope, &loc).await?;
                            continue;
                        }
                        return Err(self.unauthorized(resp, op, &loc).await);
                    }
                    if retryable_status(resp.status()) {
                        status_error(resp, op, &loc).await
                    } else {
                        return Ok(resp);
                    }
                }
                Err(e) => e,
            };
            match schedule.next_delay(&err) {
                Some(d) => {
                    log::info!("{err}; retrying in {:.1}s", d.as_secs_f64());
                    tokio::time::sleep(d).await;
                }
                None => return Err(schedule.give_up(err)),
            }
        }
    }

    /// The error for a 401 that did not come from the registry itself.
    fn foreign_401(&self, at: &Url, loc: &Location) -> Error {
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

    async fn creds_can_reauth(&self) -> bool {
        matches!(
            self.state.lock().await.challenge,
            Some(Challenge::Bearer { .. })
        ) || !matches!(self.creds, Credentials::Anonymous)
    }

    async fn refresh_after_401(
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
        let mut schedule = self.retry.schedule();
        loop {
            let resp = self.send_small(request.clone()).await?;
            if !resp.status().is_success() {
                return Ok(Err(resp));
            }
            if let Some(n) = resp.content_length().filter(|&n| n > limit as u64) {
                return Err(too_large(Some(n)));
            }
            let status = resp.status();
            let headers = resp.headers().clone();
            let err = match read_limited(resp, limit, self.stall_timeout).await {
                Ok(body) => {
                    return Ok(Ok(Buffered {
                        status,
                        headers,
                        body,
                    }));
                }
                Err(ReadError::TooLarge) => return Err(too_large(None)),
                Err(e) => network_error_msg(e, request.op, &loc),
            };
            match schedule.next_delay(&err) {
                Some(d) => {
                    log::info!("{err}; retrying in {:.1}s", d.as_secs_f64());
                    tokio::time::sleep(d).await;
                }
                None => return Err(schedule.give_up(err)),
            }
        }
    }

    /// A small request whose successful answer body is read whole (with `limit`).
    pub async fn send_small(&self, request: Request<'_>) -> Result<reqwest::Response> {
        self.send(request, Timeout::Total(self.request_timeout))
            .await
    }

    // ---- manifests -------------------------------------------------------------------

    /// `GET /v2/<repo>/manifests/<reference>`: the manifest, parsed, bytes kept. When
    /// `reference` is a digest, the bytes are verified against it.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest> {
        let loc = self.location(repo);
        let op = format!("reading manifest {reference}");
        let url = self.url(&format!("{repo}/manifests/{reference}")).await?;
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let answer = self
            .send_read(
                Request {
                    method: Method::GET,
                    url,
                    scope: &Scope::pull(repo),
                    headers: h,
                    body: Body::Empty,
                    op: &op,
                    repo,
                },
                manifest::MAX_MANIFEST_SIZE,
                &format!("manifest {reference}"),
            )
            .await?;
        let answer = match answer {
            Ok(a) => a,
            Err(resp) => {
                return Err(self
                    .found(resp, &op, format!("manifest {reference}"), &loc)
                    .await
                    .err()
                    .unwrap_or_else(|| unreachable_success(&op, &loc)));
            }
        };
        let ct = answer.content_type();
        let bytes = answer.body;
        if let Ok(d) = reference.parse::<Digest>()
            && let Some(actual) = d.verify(&bytes)
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest {reference}"),
                location: loc,
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        manifest::parse(bytes, ct.as_deref()).map_err(|reason| Error::Invalid {
            what: format!("manifest {reference}"),
            location: loc,
            reason,
        })
    }

    /// The response if it succeeded; a 404 becomes [`Error::NotFound`] for `what` (exit
    /// code 2), anything else an [`Error::Registry`].
    async fn found(
        &self,
        resp: reqwest::Response,
        op: &str,
        what: String,
        loc: &Location,
    ) -> Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        match status_error(resp, op, loc).await {
            Error::Registry { detail, .. } if status == StatusCode::NOT_FOUND => {
                Err(Error::NotFound {
                    what,
                    location: loc.clone(),
                    detail,
                })
            }
            e => Err(e),
        }
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Option<ManifestHead>> {
        let loc = self.location(repo);
        let op = format!("checking manifest {reference}");
        let url = self.url(&format!("{repo}/manifests/{reference}")).await?;
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let resp = self
            .send_small(Request {
                method: Method::HEAD,
                url,
                scope,
                headers: h,
                body: Body::Empty,
                op: &op,
                repo,
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(resp, &op, &loc).await);
        }
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        Ok(Some(ManifestHead {
            digest,
            media_type: content_type(&resp),
            size: resp.content_length(),
        }))
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the exact bytes; returns the digest the
    /// registry reports (checked against the bytes' digest).
    pub async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest) -> Result<()> {
        let loc = self.location(repo);
        let op = format!("writing manifest {reference}");
        let url = self.url(&format!("{repo}/manifests/{reference}")).await?;
        let ct: &'static str = match m.media_type.as_str() {
            manifest::OCI_INDEX => manifest::OCI_INDEX,
            manifest::OCI_MANIFEST => manifest::OCI_MANIFEST,
            manifest::DOCKER_MANIFEST => manifest::DOCKER_MANIFEST,
            manifest::DOCKER_MANIFEST_LIST => manifest::DOCKER_MANIFEST_LIST,
            other => {
                return Err(Error::Unsupported(format!(
                    "writing a manifest of media type {other:?}"
                )));
            }
        };
        let resp = self
            .send_small(Request {
                method: Method::PUT,
                url,
                scope: &Scope::push(repo),
                headers: HeaderMap::new(),
                body: Body::Bytes(m.bytes.clone(), ct),
                op: &op,
                repo,
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let e = status_error(resp, &op, &loc).await;
            if matches!(status.as_u16(), 400 | 415) {
                let detail = match &e {
                    Error::Registry { detail, .. } => detail.to_string(),
                    _ => String::new(),
                };
                let hint = if m.is_index() {
                    " (a registry that takes no multi-arch images, like OpenShift 3.11's, needs --multi-arch system)"
                } else if m.media_type == manifest::OCI_MANIFEST {
                    " (a registry that takes no OCI manifests, like OpenShift 3.11's, cannot store this image unchanged)"
                } else {
                    ""
                };
                return Err(Error::Invalid {
                    what: format!(
                        "write of {} {}",
                        manifest::type_name(&m.media_type),
                        m.digest
                    ),
                    location: loc,
                    reason: format!(
                        "the registry refused it (HTTP {}{detail}){hint}",
                        status.as_u16()
                    ),
                });
            }
            return Err(e);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && d != m.digest.as_str()
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest {reference} as stored"),
                location: loc,
                expected: m.digest.to_string(),
                actual: d.to_string(),
            });
        }
        Ok(())
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`.
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<()> {
        let loc = self.location(repo);
        let op = format!("deleting manifest {digest}");
        let url = self.url(&format!("{repo}/manifests/{digest}")).await?;
        let resp = self
            .send_small(Request {
                method: Method::DELETE,
                url,
                scope: &Scope::delete(repo),
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: &op,
                repo,
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => self
                .found(resp, &op, format!("manifest {digest}"), &loc)
                .await
                .map(|_| ()),
            StatusCode::METHOD_NOT_ALLOWED => {
                let e = status_error(resp, &op, &loc).await;
                Err(Error::Registry {
                    op: format!("{op} (the registry has deletes disabled)"),
                    location: loc,
                    status: 405,
                    detail: match e {
                        Error::Registry { detail, .. } => detail,
                        _ => RegistryMessage::default(),
                    },
                    retry_after: None,
                })
            }
            _ => Err(status_error(resp, &op, &loc).await),
        }
    }

    /// `GET /v2/<repo>/tags/list`, following `Link` pagination (a loop of links is refused).
    /// The tags may take at most [`ClientOptions::max_tag_data`] of memory, pages included.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let loc = self.location(repo);
        let op = "listing tags".to_string();
        let mut url = self.url(&format!("{repo}/tags/list")).await?;
        let mut seen = std::collections::HashSet::new();
        let budget = tags::TagBudget::new(self.max_tag_data);
        let mut tags = Vec::new();
        let mut held = 0usize;
        let over = |o: tags::OverBudget| Error::Invalid {
            what: "tag list".into(),
            location: loc.clone(),
            reason: o.to_string(),
        };
        loop {
            if !seen.insert(url.to_string()) || seen.len() > 10_000 {
                return Err(Error::Invalid {
                    what: "tag list".into(),
                    location: loc,
                    reason: "its Link pagination loops".into(),
                });
            }
            let room = budget.room(held).min(64 << 20);
            let answer = self
                .send_read(
                    Request {
                        method: Method::GET,
                        url: url.clone(),
                        scope: &Scope::pull(repo),
                        headers: HeaderMap::new(),
                        body: Body::Empty,
                        op: &op,
                        repo,
                    },
                    room,
                    "tag list",
                )
                .await;
            let answer = match answer {
                Ok(Ok(a)) => a,
                Ok(Err(resp)) => return Err(status_error(resp, &op, &loc).await),
                // A page that does not fit in what is left of the budget.
                Err(Error::Invalid { .. }) if room < (64 << 20) => {
                    return Err(over(tags::OverBudget {
                        limit: budget.limit(),
                        tags: tags.len(),
                    }));
                }
                Err(e) => return Err(e),
            };
            let next = answer
                .headers
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link);
            match budget.parse_page(&answer.body, &mut tags, &mut held) {
                Ok(()) => {}
                Err(tags::PageError::Over(o)) => return Err(over(o)),
                Err(tags::PageError::Json(e)) => {
                    return Err(Error::Invalid {
                        what: "tag list".into(),
                        location: loc.clone(),
                        reason: format!("not valid JSON: {e}"),
                    });
                }
            }
            drop(answer);
            match next {
                // As skopeo: only the path and query of the link, asked of the registry itself
                // (a link to another scheme, host or port never gets the credentials).
                Some(n) => url = self.resolve(&link_path(&url, &n)).await?,
                None => break,
            }
        }
        Ok(tags)
    }

    /// Whether the repository exists. `Some(false)` only when the registry says so
    /// (`GET …/tags/list` answers 404 `NAME_UNKNOWN`): then no blob can be found in it and
    /// looking for each one is wasted. `None` when the registry does not tell (or the probe
    /// failed: it is only an optimisation).
    pub async fn repository_exists(&self, repo: &str, scope: &Scope) -> Option<bool> {
        let loc = self.location(repo);
        let mut url = self.url(&format!("{repo}/tags/list")).await.ok()?;
        url.query_pairs_mut().append_pair("n", "1");
        let resp = self
            .send_small(Request {
                method: Method::GET,
                url,
                scope,
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: "checking the repository",
                repo,
            })
            .await
            .ok()?;
        match resp.status() {
            s if s.is_success() => Some(true),
            StatusCode::NOT_FOUND => {
                match status_error(resp, "checking the repository", &loc).await {
                    Error::Registry { detail, .. }
                        if detail.code.as_deref() == Some("NAME_UNKNOWN") =>
                    {
                        Some(false)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Check that the credentials are accepted (for `login`): pings, then authenticates
    /// against `/v2/`.
    pub async fn check_login(&self) -> Result<()> {
        let loc = self.location("");
        let url = self.url("").await?;
        let resp = self
            .send_small(Request {
                method: Method::GET,
                url,
                scope: &Scope::none(),
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: "logging in",
                repo: "",
            })
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(status_error(resp, "logging in", &loc).await)
    }

    /// The raw reqwest client (for blob streaming).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// A successful answer read whole by [`Client::send_read`].
#[derive(Debug)]
pub struct Buffered {
    /// The status (2xx).
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Buffered {
    /// The media type (parameters stripped).
    pub fn content_type(&self) -> Option<String> {
        media_type(&self.headers)
    }
}

fn limit_text(limit: usize) -> String {
    if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit}-byte")
    }
}

/// The error for a "found" check that unexpectedly passed on an unsuccessful answer.
fn unreachable_success(op: &str, loc: &Location) -> Error {
    Error::Network {
        op: op.to_string(),
        location: loc.clone(),
        reason: "unexpected answer".into(),
        transient: false,
    }
}

/// Whether two URLs have the same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `scheme://host:port` of a URL, for messages.
fn origin_text(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}://{}:{p}", u.scheme(), u.host_str().unwrap_or_default()),
        None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
    }
}

/// The path and query of a `Link` target (resolved against the page that sent it), to be
/// asked of the registry's own base URL whatever scheme, host or port the link names.
pub fn link_path(page: &Url, link: &str) -> String {
    match page.join(link) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => link.to_string(),
    }
}

/// Parse `Link: </v2/x/tags/list?n=1&last=a>; rel="next"`.
pub fn parse_next_link(v: &str) -> Option<String> {
    for part in v.split(',') {
        let part = part.trim();
        let (target, params) = part.split_once(';').unwrap_or((part, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        }) {
            return Some(target.to_string());
        }
    }
    None
}

fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn basic_header(user: &str, pass: &str) -> Result<HeaderValue> {
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

fn bearer_header(token: &str) -> Result<HeaderValue> {
    let mut h = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::usage("the token contains characters not allowed in HTTP headers"))?;
    h.set_sensitive(true);
    Ok(h)
}

/// The response's media type (parameters stripped).
pub fn content_type(resp: &reqwest::Response) -> Option<String> {
    media_type(resp.headers())
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Why reading a body failed.
#[derive(Debug)]
pub enum ReadError {
    /// More bytes than allowed.
    TooLarge,
    /// No byte arrived within the stall timeout.
    Stalled(Duration),
    /// The connection failed.
    Http(reqwest::Error),
}

/// The fewest bytes a body must move within each stall window ([`ClientOptions::stall_timeout`])
/// not to count as stalled: a body that trickles a few bytes a second is as stuck as a silent
/// one.
pub const STALL_FLOOR: u64 = 1024;

/// Watches a body for stalls: fewer than [`STALL_FLOOR`] bytes within a window is a stall.
#[derive(Debug, Clone)]
pub struct StallWatch {
    window: Duration,
    start: tokio::time::Instant,
    bytes: u64,
}

impl StallWatch {
    /// A watch whose first window starts now.
    pub fn new(window: Duration) -> Self {
        StallWatch {
            window,
            start: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    /// When the current window ends: the next bytes must arrive before it.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.start + self.window
    }

    /// Count `n` bytes received. True when they complete the floor (a new window starts).
    pub fn record(&mut self, n: usize) -> bool {
        self.bytes += n as u64;
        if self.bytes >= STALL_FLOOR {
            self.start = tokio::time::Instant::now();
            self.bytes = 0;
            true
        } else {
            false
        }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The words for a stall of `window`.
pub fn stalled_text(window: Duration) -> String {
    format!(
        "less than {STALL_FLOOR} bytes in {} s (stalled)",
        window.as_secs()
    )
}

/// Read a whole body, at most `limit` bytes, failing as stalled when fewer than
/// [`STALL_FLOOR`] bytes arrive within `stall`.
pub async fn read_limited(
    resp: reqwest::Response,
    limit: usize,
    stall: Duration,
) -> Result<Bytes, ReadError> {
    let mut stream = resp.bytes_stream();
    let mut buf = bytes::BytesMut::new();
    let mut watch = StallWatch::new(stall);
    loop {
        match tokio::time::timeout_at(watch.deadline(), stream.next()).await {
            Err(_) => return Err(ReadError::Stalled(stall)),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(ReadError::Http(e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                watch.record(chunk.len());
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

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
pub(crate) fn network_error(e: reqwest::Error, op: &str, loc: &Location) -> Error {
    network_error_with(e, op, loc, "--tls-verify")
}

/// A transport failure as an [`Error`], classified by the error's type (never its text):
/// TLS and certificate failures answer the same way every time and are not retried; a
/// registry answering plain HTTP on an HTTPS connection is said so in words; resets, EOFs and
/// timeouts are transient. `flag` is the side's `--…tls-verify` flag, for hints.
pub(crate) fn network_error_with(e: reqwest::Error, op: &str, loc: &Location, flag: &str) -> Error {
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

pub(crate) fn network_error_msg(e: ReadError, op: &str, loc: &Location) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        assert_eq!(
            parse_next_link(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#),
            Some("/v2/a/tags/list?last=x&n=2".into())
        );
        assert_eq!(parse_next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(parse_next_link("garbage"), None);
    }

    #[test]
    fn registry_messages() {
        let m = registry_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown","detail":{}}]}"#);
        assert_eq!(m.code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(m.message.as_deref(), Some("manifest unknown"));
        assert_eq!(registry_message(b"<html>"), RegistryMessage::default());
    }

    #[test]
    fn scopes() {
        let s = Scope::push("a/b").and_pull("c/d").and_pull("a/b");
        assert_eq!(s.key(), "repository:a/b:pull,push repository:c/d:pull");
        assert!(s.covers(&Scope::pull("a/b")));
        assert!(s.covers(&Scope::push("a/b")));
        assert!(s.covers(&Scope::pull("c/d")));
        assert!(!s.covers(&Scope::push("c/d")));
        assert!(!s.covers(&Scope::pull("a/bb")));
        assert!(s.covers(&Scope::none()));
    }
}
