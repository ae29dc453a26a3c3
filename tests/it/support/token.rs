//! A token server standing in for OpenShift's registry token endpoint `/openshift/token`.
//!
//! Docker clients get `401 WWW-Authenticate: Bearer realm=…,service=…,scope=…` from a registry
//! configured with `auth.token`, then ask the realm for a token:
//! `GET /openshift/token?service=…&scope=repository:ns/app:pull,push&scope=…` with Basic auth
//! (any username, the password is a service-account-like token), or OAuth2
//! `POST grant_type=password|refresh_token`. The server answers with a JWT (ES256, `x5c`
//! header holding the signing certificate, which is the registry's `rootcertbundle`) whose
//! `access` claim grants the intersection of the requested scopes and the token's grants.
//! No credentials give an anonymous token with empty access (as OpenShift does); a password
//! that is no configured token gives 401.
//!
//! Token lifetime: distribution 2.8 accepts a JWT until `exp + 60 s` (and from `nbf - 60 s`;
//! `registry/auth/token/token.go`, `Leeway = 60 * time.Second`). So that a token really stops
//! working after the configured lifetime, the JWT carries `exp = now + lifetime - 60 s` while
//! the response says `expires_in = lifetime`. Clients must go by `expires_in` (as docker
//! clients do); the JWT's `exp` claim may even lie before `iat` for lifetimes under 60 s.
//! `lab_tokens.rs` checks both the leeway and the effective lifetime against the real registry.
//!
//! Why one file (about 750 lines): the token server's exchange (Basic `GET`, OAuth2 `POST`),
//! the JWT it mints and the registry configuration that trusts it are one protocol, with one
//! set of claims and one leeway rule; `lab_tokens.rs` tests them together against the real
//! registry.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{Value, json};
use tokio_rustls::rustls;
use url::form_urlencoded;

use super::http::LabHttp;
use super::pki;

/// Distribution's leeway on `exp`/`nbf` (registry/auth/token/token.go in distribution 2.8).
pub const REGISTRY_TOKEN_LEEWAY: Duration = Duration::from_secs(60);

/// What one service token may do on the repositories matching `pattern`.
///
/// `pattern` is a repository name (`ns/app`), `ns/*` (every repository under `ns/`, any depth)
/// or `*` (everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub pattern: String,
    pub actions: Vec<String>,
}

impl Grant {
    /// Pull only (OpenShift's `system:image-puller`).
    pub fn pull(pattern: &str) -> Grant {
        Grant::new(pattern, &["pull"])
    }
    /// Pull and push (`system:image-pusher`; distribution needs `pull` too for every upload).
    pub fn push(pattern: &str) -> Grant {
        Grant::new(pattern, &["pull", "push"])
    }
    /// Pull, push and delete.
    pub fn all(pattern: &str) -> Grant {
        Grant::new(pattern, &["pull", "push", "delete"])
    }
    pub fn new(pattern: &str, actions: &[&str]) -> Grant {
        Grant {
            pattern: pattern.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }
    pub fn matches(&self, repo: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => repo.starts_with(prefix),
            None => self.pattern == repo,
        }
    }
}

/// Which fields carry the JWT in the token response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenFields {
    /// `token` and `access_token` (what docker/distribution token servers send).
    #[default]
    Both,
    /// Only `token`.
    TokenOnly,
    /// Only `access_token` (OAuth2 style).
    AccessTokenOnly,
}

#[derive(Clone, Debug)]
pub struct TokenServerOptions {
    /// Service-account-like tokens (the Basic-auth password) and what each may do.
    pub tokens: Vec<(String, Vec<Grant>)>,
    /// How long an issued JWT is accepted by the registry (whole seconds, at least 1).
    pub lifetime: Duration,
    /// Serve HTTPS with the lab CA's server certificate instead of HTTP.
    pub tls: bool,
    pub fields: TokenFields,
    /// The `service` (JWT `aud`) the registry expects.
    pub service: String,
}

impl Default for TokenServerOptions {
    fn default() -> Self {
        TokenServerOptions {
            tokens: Vec::new(),
            lifetime: Duration::from_secs(300),
            tls: false,
            fields: TokenFields::Both,
            service: "lab-registry".to_string(),
        }
    }
}

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// POST only: `password` or `refresh_token`.
    pub grant_type: Option<String>,
    /// Basic-auth username (or form `username`); `None` for anonymous requests.
    pub user: Option<String>,
    /// The configured service token that authenticated the request, if any.
    pub token: Option<String>,
    pub service: Option<String>,
    /// The scopes as requested (one entry per scope, space-separated lists split).
    pub scopes: Vec<String>,
    /// What the issued JWT grants: (repository, actions).
    pub granted: Vec<(String, Vec<String>)>,
    pub status: u16,
    pub user_agent: Option<String>,
    pub at: Instant,
}

/// What a registry needs to trust the token server (`auth.token` in its config), plus the
/// signing key so that the lab itself can mint tokens for its own checks and seeding.
#[derive(Clone)]
pub struct TokenAuthConfig {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub root_cert_pem: String,
    signer: Arc<Signer>,
}

impl std::fmt::Debug for TokenAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthConfig")
            .field("realm", &self.realm)
            .field("service", &self.service)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

struct Signer {
    key: EncodingKey,
    /// base64 (standard) DER of the signing certificate, for the `x5c` header.
    x5c: String,
}

impl TokenAuthConfig {
    /// Mint a JWT for `subject` granting `access` (repository name, actions) that the registry
    /// accepts for `lifetime` (see the module doc about the leeway).
    pub fn mint(
        &self,
        subject: &str,
        access: &[(String, Vec<String>)],
        lifetime: Duration,
    ) -> String {
        self.mint_with_times(subject, access, lifetime, unix_now())
    }

    /// Like [`mint`](Self::mint) with an explicit "now" (unix seconds): for leeway checks.
    pub fn mint_with_times(
        &self,
        subject: &str,
        access: &[(String, Vec<String>)],
        lifetime: Duration,
        now: i64,
    ) -> String {
        let lifetime = lifetime.as_secs().max(1) as i64;
        let exp = now + lifetime - REGISTRY_TOKEN_LEEWAY.as_secs() as i64;
        let access: Vec<Value> = access
            .iter()
            .map(|(name, actions)| json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": exp,
            "nbf": now,
            "iat": now,
            "jti": super::random_hex(16),
            "access": access,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![self.signer.x5c.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.signer.key).expect("signing a lab JWT")
    }

    fn generate(realm: String, service: String) -> TokenAuthConfig {
        let key = KeyPair::generate().expect("generating token signing key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "ferry-lab-token-signer");
        let cert = params.self_signed(&key).expect("self-signing token cert");
        let signer = Signer {
            key: EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("EC key for JWT"),
            x5c: B64.encode(cert.der()),
        };
        TokenAuthConfig {
            realm,
            service,
            issuer: "ferry-lab-token-issuer".to_string(),
            root_cert_pem: cert.pem(),
            signer: Arc::new(signer),
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

struct ServerState {
    tokens: Vec<(String, Vec<Grant>)>,
    lifetime_secs: AtomicU64,
    fields: TokenFields,
    config: TokenAuthConfig,
    log: Mutex<Vec<TokenRequest>>,
}

/// The running token server; stopped when dropped.
pub struct TokenServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<ServerState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    cert_dir: Option<tempfile::TempDir>,
}

impl TokenServer {
    pub fn start(opts: TokenServerOptions) -> TokenServer {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        std_listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = std_listener.local_addr().expect("token server address");
        let scheme = if opts.tls { "https" } else { "http" };
        let realm = format!("{scheme}://{addr}/openshift/token");
        let state = Arc::new(ServerState {
            tokens: opts.tokens.clone(),
            lifetime_secs: AtomicU64::new(opts.lifetime.as_secs().max(1)),
            fields: opts.fields,
            config: TokenAuthConfig::generate(realm, opts.service.clone()),
            log: Mutex::new(Vec::new()),
        });
        let tls_config = opts.tls.then(server_tls_config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/openshift/token", get(get_token).post(post_token))
            .with_state(state.clone());
        let thread = std::thread::Builder::new()
            .name(format!("ferry-lab-token-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("token server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)
                        .expect("token server listener");
                    // Not graceful: dropping the runtime at the end of this thread cancels
                    // the connection tasks, so Drop never waits for idle keep-alive clients.
                    match tls_config {
                        None => {
                            tokio::select! {
                                r = axum::serve(listener, app) => r.expect("token server"),
                                _ = rx => {}
                            }
                        }
                        Some(cfg) => {
                            let listener = TlsListener {
                                inner: listener,
                                acceptor: tokio_rustls::TlsAcceptor::from(cfg),
                            };
                            tokio::select! {
                                r = axum::serve(listener, app) => r.expect("token server"),
                                _ = rx => {}
                            }
                        }
                    }
                });
            })
            .expect("spawning the token server thread");
        let cert_dir = opts.tls.then(|| {
            let dir = tempfile::Builder::new()
                .prefix("ferry-lab-token-certs-")
                .tempdir()
                .expect("temp dir");
            pki::lab_ca().write_cert_dir(dir.path(), None);
            dir
        });
        TokenServer {
            addr,
            tls: opts.tls,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
            cert_dir,
        }
    }

    /// What a registry needs for `auth.token` (pass as `Auth::Token(ts.config())`).
    pub fn config(&self) -> TokenAuthConfig {
        self.state.config.clone()
    }

    /// The realm URL, `http(s)://127.0.0.1:PORT/openshift/token`.
    pub fn realm(&self) -> String {
        self.state.config.realm.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// With `tls`: a directory holding the lab CA as `ca.crt`.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.cert_dir.as_ref().map(|d| d.path())
    }

    /// Change the lifetime of tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.state
            .lifetime_secs
            .store(lifetime.as_secs().max(1), Ordering::SeqCst);
    }

    /// Every request answered so far (the log is written before the response is sent, so it is
    /// complete once the client has its answer). Includes the lab's own [`fetch`](Self::fetch)
    /// and [`post_form`](Self::post_form) (User-Agent `ferry-lab/1`); the lab's seeding never
    /// asks the token server (it mints its tokens directly).
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests after `mark` (a previous `requests().len()`).
    pub fn requests_since(&self, mark: usize) -> Vec<TokenRequest> {
        self.state.log.lock().unwrap()[mark..].to_vec()
    }

    pub fn mark(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }

    /// Ask for a token directly (GET, like docker clients): `creds` (user, password) as Basic
    /// auth, `scopes` as `scope` parameters. Returns the HTTP status and the JSON body
    /// (`Value::Null` if it is not JSON).
    pub fn fetch(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> (u16, Value) {
        let ca = self.tls.then(|| pki::lab_ca().ca_pem.clone());
        let scheme = if self.tls { "https" } else { "http" };
        let http = LabHttp::new(format!("{scheme}://{}", self.addr), ca.as_deref(), None);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("service", &self.state.config.service);
        for s in scopes {
            query.append_pair("scope", s);
        }
        let mut headers = Vec::new();
        if let Some((u, p)) = creds {
            headers.push((
                "authorization",
                format!("Basic {}", B64.encode(format!("{u}:{p}"))),
            ));
        }
        let resp = http
            .get(&format!("/openshift/token?{}", query.finish()), &headers)
            .unwrap_or_else(|e| panic!("token server unreachable: {e}"));
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
        )
    }

    /// POST a form to the token endpoint (OAuth2 style, e.g. `grant_type=password`).
    pub fn post_form(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let ca = self.tls.then(|| pki::lab_ca().ca_pem.clone());
        let scheme = if self.tls { "https" } else { "http" };
        let http = LabHttp::new(format!("{scheme}://{}", self.addr), ca.as_deref(), None);
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            body.append_pair(k, v);
        }
        let resp = http
            .send(
                reqwest::Method::POST,
                "/openshift/token",
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )],
                Some(body.finish().into_bytes()),
            )
            .unwrap_or_else(|e| panic!("token server unreachable: {e}"));
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
        )
    }

    /// The JWT of a successful [`fetch`](Self::fetch) (panics otherwise).
    pub fn fetch_jwt(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> String {
        let (status, body) = self.fetch(creds, scopes);
        assert_eq!(status, 200, "token request failed: {body}");
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_string()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(super) fn server_tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ca = pki::lab_ca();
    let certs = vec![
        CertificateDer::from_pem_slice(ca.server.cert_pem.as_bytes()).expect("server cert PEM"),
    ];
    let key = PrivateKeyDer::from_pem_slice(ca.server.key_pem.as_bytes()).expect("server key PEM");
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("token server TLS config");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

pub(super) struct TlsListener {
    pub(super) inner: tokio::net::TcpListener,
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            // Handshakes are done one at a time here; bounded so a silent client cannot wedge
            // the server. A failed handshake (client without the CA) just drops the connection.
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Credentials as presented: (username, password) or absent.
type Creds = Option<(String, String)>;

async fn get_token(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let Ok(creds) = basic_auth(&headers) else {
        return st.deny(&Ctx::new("GET", None, &params, &headers), None);
    };
    st.issue(&Ctx::new("GET", None, &params, &headers), creds)
}

async fn post_token(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let grant_type = param("grant_type");
    let ctx = Ctx::new("POST", grant_type.clone(), &params, &headers);
    let creds = match grant_type.as_deref() {
        Some("password") => match (param("username"), param("password")) {
            (Some(u), Some(p)) => Some((u, p)),
            _ => return st.deny(&ctx, None),
        },
        Some("refresh_token") => match param("refresh_token") {
            Some(t) => Some((param("username").unwrap_or_default(), t)),
            None => return st.deny(&ctx, None),
        },
        _ => return st.deny(&ctx, None),
    };
    st.issue(&ctx, creds)
}

fn basic_auth(headers: &HeaderMap) -> Result<Creds, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, rest) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = B64.decode(rest.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (user, pass) = decoded.split_once(':').ok_or(())?;
    Ok(Some((user.to_string(), pass.to_string())))
}

/// The scopes of a request: every `scope` parameter, each split at spaces (OAuth2 style).
fn scopes_of(params: &[(String, String)]) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').filter(|s| !s.is_empty()).map(str::to_string))
        .collect()
}

/// One token request being answered.
struct Ctx<'a> {
    method: &'static str,
    grant_type: Option<String>,
    params: &'a [(String, String)],
    headers: &'a HeaderMap,
}

impl<'a> Ctx<'a> {
    fn new(
        method: &'static str,
        grant_type: Option<String>,
        params: &'a [(String, String)],
        headers: &'a HeaderMap,
    ) -> Self {
        Ctx {
            method,
            grant_type,
            params,
            headers,
        }
    }

    fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl ServerState {
    fn record(
        &self,
        ctx: &Ctx<'_>,
        user: Option<String>,
        token: Option<String>,
        granted: Vec<(String, Vec<String>)>,
        status: u16,
    ) {
        let user_agent = ctx
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.log.lock().unwrap().push(TokenRequest {
            method: ctx.method.to_string(),
            grant_type: ctx.grant_type.clone(),
            user,
            token,
            service: ctx.param("service"),
            scopes: scopes_of(ctx.params),
            granted,
            status,
            user_agent,
            at: Instant::now(),
        });
    }

    fn deny(&self, ctx: &Ctx<'_>, user: Option<String>) -> Response {
        // An unknown OAuth2 grant type is a bad request; everything else is "who are you?".
        let status = if ctx.method == "POST" && user.is_none() && ctx.grant_type.is_none() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        self.record(ctx, user, None, Vec::new(), status.as_u16());
        (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, "Basic realm=\"openshift\""),
            ],
            json!({"details": "authentication required"}).to_string(),
        )
            .into_response()
    }

    fn issue(&self, ctx: &Ctx<'_>, creds: Creds) -> Response {
        let (user, grants, token) = match creds {
            None => (None, &[][..], None),
            Some((user, password)) => match self.tokens.iter().find(|(t, _)| *t == password) {
                Some((t, g)) => (Some(user), &g[..], Some(t.clone())),
                None => return self.deny(ctx, Some(user)),
            },
        };
        let mut granted: Vec<(String, Vec<String>)> = Vec::new();
        for scope in scopes_of(ctx.params) {
            // type:name:actions, where name may itself hold a colon (host:port/...).
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            if kind != "repository" {
                continue;
            }
            let allowed: Vec<&str> = grants
                .iter()
                .filter(|g| g.matches(name))
                .flat_map(|g| g.actions.iter().map(String::as_str))
                .collect();
            let mut actions: Vec<String> = actions
                .split(',')
                .flat_map(|a| {
                    if a == "*" {
                        allowed.clone()
                    } else {
                        allowed.iter().copied().filter(|x| *x == a).collect()
                    }
                })
                .map(str::to_string)
                .collect();
            actions.sort();
            actions.dedup();
            if actions.is_empty() {
                continue;
            }
            match granted.iter_mut().find(|(n, _)| n == name) {
                Some((_, existing)) => {
                    existing.extend(actions);
                    existing.sort();
                    existing.dedup();
                }
                None => granted.push((name.to_string(), actions)),
            }
        }
        let lifetime = Duration::from_secs(self.lifetime_secs.load(Ordering::SeqCst));
        let service = ctx
            .param("service")
            .unwrap_or_else(|| self.config.service.clone());
        // The audience is the service the client asked for (as docker's token servers do), so a
        // client that mangles `service` gets a token the registry refuses.
        let mut config = self.config.clone();
        config.service = service;
        let jwt = config.mint(user.as_deref().unwrap_or(""), &granted, lifetime);
        self.record(ctx, user, token, granted, 200);
        let mut body = serde_json::Map::new();
        if self.fields != TokenFields::AccessTokenOnly {
            body.insert("token".into(), jwt.clone().into());
        }
        if self.fields != TokenFields::TokenOnly {
            body.insert("access_token".into(), jwt.into());
        }
        body.insert("expires_in".into(), lifetime.as_secs().into());
        body.insert(
            "issued_at".into(),
            humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .into(),
        );
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Value::Object(body).to_string(),
        )
            .into_response()
    }
}

/// The claims of a JWT (its middle part), without verifying anything.
pub fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("JWT claims are base64url");
    serde_json::from_slice(&bytes).expect("JWT claims are JSON")
}

/// Write `root_cert_pem` where the registry config points (`rootcertbundle`).
pub(crate) fn write_root_bundle(cfg: &TokenAuthConfig, dir: &Path) -> PathBuf {
    let path = dir.join("token-rootcertbundle.crt");
    std::fs::write(&path, &cfg.root_cert_pem).expect("writing rootcertbundle");
    path
}
