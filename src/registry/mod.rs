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
mod errors;
pub mod lookaside;
pub mod manifest;
mod ping;
pub mod referrers;
mod scope;
pub mod signatures;
pub mod sigstore;
pub mod source;
pub mod tags;
mod token;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::credentials::Credentials;
use crate::error::{Location, Result};
use crate::http::media_type;
use crate::reference::api_host;
use crate::retry::RetryPolicy;
use crate::tls::TlsOptions;
pub use errors::{registry_message, status_error};
pub use manifest::ManifestHead;
pub use scope::Scope;
pub use tags::{link_path, parse_next_link};
use token::AuthState;
pub use transport::{Body, Request, Timeout};

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
    endpoints_with(src_client, src, dst_client, dst, None)
}

/// The source and destination of a registry-to-registry copy, blobs mounted between them
/// when they are repositories of one registry, signatures read and written where
/// `registries.d` says (lookaside storage, sigstore attachments).
pub fn endpoints_with(
    src_client: Arc<Client>,
    src: &crate::reference::ImageRef,
    dst_client: Arc<Client>,
    dst: &crate::reference::ImageRef,
    registries_d: Option<&crate::registries_d::RegistriesD>,
) -> (
    Arc<dyn crate::image::ImageSource>,
    Arc<dyn crate::image::ImageDestination>,
) {
    use crate::image::ImageSource as _;
    let source = source_with(src_client, src, registries_d);
    let origin = source.blob_origin();
    let destination = destination_with(dst_client, dst, origin.as_ref(), registries_d);
    (Arc::new(source), Arc::new(destination))
}

/// A registry image as a source, its lookaside and sigstore attachments as `registries.d`
/// configures them for it.
pub fn source_with(
    client: Arc<Client>,
    image: &crate::reference::ImageRef,
    registries_d: Option<&crate::registries_d::RegistriesD>,
) -> source::RegistrySource {
    let read = registries_d.and_then(|c| c.lookaside(image, false).ok());
    let sigstore = registries_d.is_some_and(|c| c.use_sigstore_attachments(image));
    source::RegistrySource::new(client, image.clone())
        .with_lookaside(read)
        .with_sigstore_attachments(sigstore)
}

/// A registry reference as a destination (blobs mounted from `origin` on the same registry),
/// its lookaside staging and sigstore attachments as `registries.d` configures them.
pub fn destination_with(
    client: Arc<Client>,
    image: &crate::reference::ImageRef,
    origin: Option<&crate::image::BlobOrigin>,
    registries_d: Option<&crate::registries_d::RegistriesD>,
) -> destination::RegistryDestination {
    let write = registries_d.and_then(|c| c.configured_lookaside(image, true).ok().flatten());
    let sigstore = registries_d.is_some_and(|c| c.use_sigstore_attachments(image));
    destination::RegistryDestination::new(client, image.clone(), origin)
        .with_lookaside(write)
        .with_sigstore_attachments(sigstore)
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

/// Connections a registry destination opens ahead of its uploads ([`Client::warm_up`]), once it
/// knows the image is not there: with the one already open, one for each of the four large
/// blobs that stream at once ([`crate::copy::Slots`]).
pub const WARM_CONNECTIONS: usize = 3;

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
    /// Requests per second to this registry at most (`--requests-per-second`), shared by every
    /// client of the process for the same host ([`crate::ratelimit`]).
    pub requests_per_second: Option<f64>,
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
            requests_per_second: None,
        }
    }
}

/// A client for one registry.
pub struct Client {
    registry: String,
    host: String,
    http: reqwest::Client,
    /// The pool's connections were opened ahead already ([`Client::warm_up`]).
    warmed: Arc<std::sync::atomic::AtomicBool>,
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
    /// Pacing shared with every client of this host ([`crate::ratelimit`]).
    pace: Arc<crate::ratelimit::Pacer>,
    /// Tag lists read once (attachment tags are looked up in them).
    attachments: referrers::Cache,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("creds", &self.creds.describe())
            .finish()
    }
}

impl Client {
    /// A client for `registry` (as written in references: `docker.io`, `host:port`).
    pub fn new(registry: &str, opts: ClientOptions) -> Result<Arc<Self>> {
        let host = api_host(registry).to_string();
        let pool = crate::http::pool::shared(&opts.tls, &host, opts.connect_timeout)?;
        let pace = crate::ratelimit::for_host(&host, opts.requests_per_second);
        Ok(Arc::new(Client {
            registry: registry.to_string(),
            host,
            http: pool.http,
            warmed: pool.warmed,
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
            pace,
            attachments: referrers::Cache::default(),
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
