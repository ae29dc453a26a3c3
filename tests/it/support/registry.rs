//! Real `docker-registry` (CNCF distribution 2.8) processes for tests.
//!
//! Each [`Registry`] has its own temp dir (storage, generated `config.yml`, TLS material,
//! htpasswd), listens on a free `127.0.0.1` port, is killed and waited for in `Drop` (also when
//! the test panics) and carries `PR_SET_PDEATHSIG(SIGKILL)` so it never outlives the test.
//!
//! # Request log
//!
//! distribution wraps its handler in gorilla's `CombinedLoggingHandler(os.Stdout, …)`: every
//! request gives one Apache combined log line on **stdout** (its own logs go to stderr). A reader
//! thread collects those lines. A line is written only after the handler returns, so it can lag
//! behind the client seeing the response. To make [`Registry::requests`] deterministic without
//! sleeping, the lab sends a *sentinel* request (`GET /v2/?lab-sentinel=<unique>`, with the
//! lab's User-Agent) once the client under test has finished, and waits until the sentinel's
//! line shows up: everything logged before it is the complete history of requests that had
//! finished before the sentinel was sent. (Go's server flushes the last buffered bytes of a
//! response after the handler, and so after the log line, returns; only the final bytes of a
//! large body written straight through could reach a client first, and then the log write is a
//! few instructions away while the sentinel needs a new connection and a full request.) A
//! request the client abandoned half-way (a dropped connection during a blob upload) may still
//! be running in the registry and be logged after the sentinel, i.e. in the next interval.
//! Lines carrying the lab's User-Agent (sentinels, readiness probes, the lab's own checks) are
//! left out of the result.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use url::form_urlencoded;

use super::http::{LabHttp, Response};
use super::token::{TokenAuthConfig, write_root_bundle};
use super::{LAB_USER_AGENT, kill_with_parent, pki, random_hex, sha256_digest};

/// How long a registry may take to answer its first `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sentinel's log line may take to appear.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(20);
/// The user the lab adds to every htpasswd file for its own checks and seeding.
pub const LAB_ADMIN_USER: &str = "ferry-lab-admin";

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP.
    #[default]
    None,
    /// HTTPS with a server certificate signed by the lab CA.
    Ca,
    /// HTTPS that also requires a client certificate signed by the lab CA (`http.tls.clientcas`).
    ClientCert,
}

#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    /// htpasswd (bcrypt) with these (user, password) pairs (plus the lab's own admin user).
    Basic(Vec<(String, String)>),
    /// Bearer tokens from a [`TokenServer`](super::TokenServer): `Auth::Token(ts.config())`.
    Token(TokenAuthConfig),
}

#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub tls: Tls,
    pub auth: Auth,
    /// `storage.delete.enabled` (default true). With false, deletes get 405.
    pub delete_enabled: bool,
    /// `storage.maintenance.readonly.enabled`: pulls work, pushes and deletes get 405.
    /// Seed first, then switch with [`Registry::restart`].
    pub read_only: bool,
    /// With TLS: serve this certificate instead of one signed by the lab CA (e.g. a
    /// self-signed one, as skopeo's system tests make). The cert dir then holds this
    /// certificate alone, as `domain.crt`.
    pub server_cert: Option<pki::CertKey>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            tls: Tls::None,
            auth: Auth::None,
            delete_enabled: true,
            read_only: false,
            server_cert: None,
        }
    }
}

/// Which flag family of skopeo (and ferry) to produce: `--src-…`, `--dest-…` or the plain
/// `--tls-verify`/`--cert-dir`/`--creds` of `inspect`, `delete`, `list-tags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Src,
    Dest,
    Plain,
}

impl Side {
    fn flag(self, name: &str) -> String {
        match self {
            Side::Src => format!("--src-{name}"),
            Side::Dest => format!("--dest-{name}"),
            Side::Plain => format!("--{name}"),
        }
    }
}

/// A position in the request log, from [`Registry::mark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(usize);

/// One request as the registry logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The path without the query, as sent (not percent-decoded).
    pub path: String,
    /// The raw query string without `?` (empty if none).
    pub query: String,
    pub status: u16,
    /// Size of the response body.
    pub bytes: u64,
    pub user_agent: String,
    /// The raw log line.
    pub line: String,
}

/// What a registry API request was, from its method, path and query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET /v2/`
    Ping,
    ManifestGet,
    ManifestHead,
    ManifestPut,
    ManifestDelete,
    BlobGet,
    BlobHead,
    BlobDelete,
    /// `POST /v2/<name>/blobs/uploads/?mount=…&from=…`; status 201 = mounted, 202 = the
    /// registry fell back to an upload.
    BlobMount,
    /// `POST /v2/<name>/blobs/uploads/` (without `mount`).
    UploadStart,
    /// `PATCH` on an upload.
    UploadChunk,
    /// `PUT` on an upload (`?digest=…`), completing it.
    UploadFinish,
    /// `GET`/`DELETE` of an upload's status / cancellation.
    UploadOther,
    TagsList,
    Catalog,
    Other,
}

impl LoggedRequest {
    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The repository name the request is about (`ns/app`), if any.
    pub fn repo(&self) -> Option<String> {
        let rest = self.path.strip_prefix("/v2/")?;
        for marker in ["/manifests/", "/blobs/", "/tags/"] {
            if let Some(i) = rest.rfind(marker) {
                return Some(rest[..i].to_string());
            }
        }
        None
    }

    /// The last path segment (a tag, digest or upload id).
    pub fn reference(&self) -> Option<String> {
        self.repo()?;
        self.path.rsplit('/').next().map(str::to_string)
    }

    pub fn kind(&self) -> RequestKind {
        let m = self.method.as_str();
        let p = self.path.as_str();
        if p == "/v2/" || p == "/v2" {
            return RequestKind::Ping;
        }
        if p == "/v2/_catalog" {
            return RequestKind::Catalog;
        }
        if p.ends_with("/tags/list") {
            return RequestKind::TagsList;
        }
        if p.contains("/manifests/") {
            return match m {
                "GET" => RequestKind::ManifestGet,
                "HEAD" => RequestKind::ManifestHead,
                "PUT" => RequestKind::ManifestPut,
                "DELETE" => RequestKind::ManifestDelete,
                _ => RequestKind::Other,
            };
        }
        if p.contains("/blobs/uploads") {
            return match m {
                "POST" if self.query_param("mount").is_some() => RequestKind::BlobMount,
                "POST" => RequestKind::UploadStart,
                "PATCH" => RequestKind::UploadChunk,
                "PUT" => RequestKind::UploadFinish,
                _ => RequestKind::UploadOther,
            };
        }
        if p.contains("/blobs/") {
            return match m {
                "GET" => RequestKind::BlobGet,
                "HEAD" => RequestKind::BlobHead,
                "DELETE" => RequestKind::BlobDelete,
                _ => RequestKind::Other,
            };
        }
        RequestKind::Other
    }

    /// Parse one gorilla combined-log line:
    /// `127.0.0.1 - - [27/Nov/2025:08:53:00 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "skopeo/1.9.3"`
    pub fn parse(line: &str) -> Option<LoggedRequest> {
        let start = line.find("] \"")? + 2;
        let (request_line, rest) = parse_quoted(&line[start..])?;
        let mut parts = request_line.split(' ');
        let method = parts.next()?.to_string();
        let uri = parts.next()?;
        let mut rest = rest.trim_start().splitn(3, ' ');
        let status = rest.next()?.parse().ok()?;
        let bytes = rest.next()?.parse().unwrap_or(0);
        let rest = rest.next().unwrap_or("");
        let (_referer, rest) = parse_quoted(rest.trim_start()).unwrap_or_default();
        let (user_agent, _) = parse_quoted(rest.trim_start()).unwrap_or_default();
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        Some(LoggedRequest {
            method,
            path: path.to_string(),
            query: query.to_string(),
            status,
            bytes,
            user_agent,
            line: line.to_string(),
        })
    }
}

/// A `"…"` string with gorilla's backslash escapes at the start of `s`; returns it unescaped and
/// the text after the closing quote.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    out.push(e);
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// A manifest as the registry serves it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// sha256 of `bytes`, computed by the lab.
    pub digest: String,
    /// The registry's `Docker-Content-Digest` header.
    pub header_digest: Option<String>,
}

/// Lines of stdout (the access log) collected by a reader thread.
#[derive(Default)]
struct AccessLog {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl AccessLog {
    fn spawn_reader(self: &Arc<Self>, stdout: std::process::ChildStdout) {
        let log = self.clone();
        std::thread::Builder::new()
            .name("ferry-lab-registry-log".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    log.lines.lock().unwrap().0.push(line);
                    log.changed.notify_all();
                }
                log.lines.lock().unwrap().1 = true;
                log.changed.notify_all();
            })
            .expect("spawning the access log reader");
    }

    /// Wait until a line at index >= `from` contains `needle`; its index.
    fn wait_for(&self, from: usize, needle: &str, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lines.lock().unwrap();
        let mut scanned = from;
        loop {
            if let Some(i) = guard.0[scanned.min(guard.0.len())..]
                .iter()
                .position(|l| l.contains(needle))
            {
                return Some(scanned.min(guard.0.len()) + i);
            }
            scanned = scanned.max(guard.0.len());
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    fn len(&self) -> usize {
        self.lines.lock().unwrap().0.len()
    }

    fn slice(&self, from: usize, to: usize) -> Vec<String> {
        self.lines.lock().unwrap().0[from..to].to_vec()
    }
}

static SENTINELS: AtomicU64 = AtomicU64::new(0);

/// A running `docker-registry`.
pub struct Registry {
    opts: RegistryOptions,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    log: Arc<AccessLog>,
    http: LabHttp,
    admin_password: String,
    cert_dir: Option<PathBuf>,
}

impl Registry {
    /// Start a registry and wait until it answers `GET /v2/`. Panics with the registry's stderr
    /// if it does not come up.
    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("ferry-lab-registry-")
            .tempdir()
            .expect("creating the registry temp dir");
        fs::create_dir_all(dir.path().join("storage")).expect("storage dir");
        let mut reg = Registry {
            http: LabHttp::new(String::new(), None, None),
            opts,
            dir,
            port: 0,
            child: None,
            log: Arc::new(AccessLog::default()),
            admin_password: random_hex(12),
            cert_dir: None,
        };
        for attempt in 1..=8 {
            reg.port = free_port();
            match reg.launch() {
                Ok(()) => return reg,
                Err(why) if attempt < 8 => {
                    eprintln!(
                        "ferry-lab: registry on port {} failed ({why}); retrying",
                        reg.port
                    );
                }
                Err(why) => panic!("docker-registry did not start after {attempt} attempts: {why}"),
            }
        }
        unreachable!()
    }

    /// Stop the registry and start it again on the same port and storage with changed options
    /// (for example `read_only`, `delete_enabled`). The request log starts afresh.
    pub fn restart(&mut self, change: impl FnOnce(&mut RegistryOptions)) {
        self.stop();
        change(&mut self.opts);
        // Go sets SO_REUSEADDR, so the port is free again at once unless someone else took it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(why) if Instant::now() < deadline => {
                    eprintln!(
                        "ferry-lab: restarting registry on port {} failed ({why}); retrying",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(why) => panic!(
                    "docker-registry did not restart on port {}: {why}",
                    self.port
                ),
            }
        }
    }

    /// Write config and TLS/auth files, spawn, await readiness. `Err` means "try again" (the
    /// port was taken); anything else panics.
    fn launch(&mut self) -> Result<(), String> {
        let config = self.write_config();
        let stderr_path = self.dir.path().join("registry.stderr");
        let stderr = fs::File::create(&stderr_path).expect("registry stderr file");
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(&config)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        kill_with_parent(&mut cmd);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`docker-registry` was not found on PATH: run `.ci/run` (or \
                 `apt-get install -y docker-registry`) to install the test prerequisites"
            ),
            Err(e) => panic!("spawning docker-registry: {e}"),
        };
        self.log = Arc::new(AccessLog::default());
        self.log
            .spawn_reader(child.stdout.take().expect("registry stdout"));
        self.child = Some(child);
        self.http = self.make_http();

        let nonce = random_hex(8);
        let probe = format!("/v2/?lab-ready={nonce}");
        let needle = format!("?lab-ready={nonce} ");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.child = None;
                let err = fs::read_to_string(&stderr_path).unwrap_or_default();
                if err.contains("address already in use") {
                    return Err(format!("port {} in use", self.port));
                }
                panic!(
                    "docker-registry exited ({status}) before it was ready.\nstderr:\n{err}\nconfig:\n{}",
                    fs::read_to_string(&config).unwrap_or_default()
                );
            }
            if self.http.get(&probe, &[]).is_ok() {
                // Something answered; make sure it was this registry, not a process that had
                // the port already (ours then exits with "address already in use").
                if self
                    .log
                    .wait_for(0, &needle, Duration::from_secs(5))
                    .is_some()
                {
                    return Ok(());
                }
                self.stop();
                return Err(format!("port {} answered by another process", self.port));
            }
            if Instant::now() > deadline {
                self.stop();
                panic!(
                    "docker-registry on port {} did not answer GET /v2/ within {READY_TIMEOUT:?}.\nstderr:\n{}",
                    self.port,
                    fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn make_http(&self) -> LabHttp {
        let ca = pki::lab_ca();
        if self.opts.tls != Tls::None && self.opts.server_cert.is_some() {
            // The lab talks to its own registry on loopback; a test's own server certificate
            // (which may be expired or name another host on purpose) is not checked here.
            return LabHttp::new_unverified(format!("https://{}", self.host()));
        }
        match self.opts.tls {
            Tls::None => LabHttp::new(format!("http://{}", self.host()), None, None),
            Tls::Ca => LabHttp::new(format!("https://{}", self.host()), Some(&ca.ca_pem), None),
            Tls::ClientCert => LabHttp::new(
                format!("https://{}", self.host()),
                Some(&ca.ca_pem),
                Some((&ca.client.cert_pem, &ca.client.key_pem)),
            ),
        }
    }

    fn write_config(&mut self) -> PathBuf {
        let d = self.dir.path();
        let ca = pki::lab_ca();
        let mut y = String::new();
        writeln!(y, "version: 0.1").unwrap();
        writeln!(
            y,
            "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false"
        )
        .unwrap();
        writeln!(
            y,
            "storage:\n  filesystem:\n    rootdirectory: {}",
            d.join("storage").display()
        )
        .unwrap();
        writeln!(y, "  delete:\n    enabled: {}", self.opts.delete_enabled).unwrap();
        writeln!(
            y,
            "  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}",
            self.opts.read_only
        )
        .unwrap();
        writeln!(
            y,
            "http:\n  addr: 127.0.0.1:{}\n  secret: {}",
            self.port,
            random_hex(16)
        )
        .unwrap();
        writeln!(y, "  headers:\n    X-Content-Type-Options: [nosniff]").unwrap();
        self.cert_dir = None;
        if self.opts.tls != Tls::None {
            let tls = d.join("tls");
            fs::create_dir_all(&tls).unwrap();
            let server = self.opts.server_cert.as_ref().unwrap_or(&ca.server);
            fs::write(tls.join("server.crt"), &server.cert_pem).unwrap();
            fs::write(tls.join("server.key"), &server.key_pem).unwrap();
            fs::write(tls.join("clientca.crt"), &ca.ca_pem).unwrap();
            writeln!(
                y,
                "  tls:\n    certificate: {}\n    key: {}",
                tls.join("server.crt").display(),
                tls.join("server.key").display()
            )
            .unwrap();
            let certs = d.join("certs");
            let _ = fs::remove_dir_all(&certs);
            if let Some(own) = &self.opts.server_cert {
                fs::create_dir_all(&certs).unwrap();
                fs::write(certs.join("domain.crt"), &own.cert_pem).unwrap();
            } else if self.opts.tls == Tls::ClientCert {
                writeln!(
                    y,
                    "    clientcas:\n      - {}",
                    tls.join("clientca.crt").display()
                )
                .unwrap();
                ca.write_cert_dir(&certs, Some(&ca.client));
            } else {
                ca.write_cert_dir(&certs, None);
            }
            self.cert_dir = Some(certs);
        }
        match &self.opts.auth {
            Auth::None => {}
            Auth::Basic(users) => {
                let mut htpasswd = String::new();
                let admin = [(LAB_ADMIN_USER.to_string(), self.admin_password.clone())];
                for (user, password) in users.iter().chain(&admin) {
                    // Cost 4 (the minimum): the registry checks the hash on every request.
                    let hash = bcrypt::hash_with_result(password, 4)
                        .expect("bcrypt")
                        .format_for_version(bcrypt::Version::TwoY);
                    writeln!(htpasswd, "{user}:{hash}").unwrap();
                }
                fs::write(d.join("htpasswd"), htpasswd).unwrap();
                writeln!(
                    y,
                    "auth:\n  htpasswd:\n    realm: ferry-lab\n    path: {}",
                    d.join("htpasswd").display()
                )
                .unwrap();
            }
            Auth::Token(cfg) => {
                let bundle = write_root_bundle(cfg, d);
                writeln!(
                    y,
                    "auth:\n  token:\n    realm: \"{}\"\n    service: \"{}\"\n    issuer: \"{}\"\n    rootcertbundle: {}",
                    cfg.realm,
                    cfg.service,
                    cfg.issuer,
                    bundle.display()
                )
                .unwrap();
            }
        }
        let path = d.join("config.yml");
        fs::write(&path, y).expect("writing registry config");
        path
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `NAME:PORT`: the registry under another name of this machine (`localhost`).
    pub fn host_as(&self, name: &str) -> String {
        format!("{name}:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://…`
    pub fn url(&self) -> String {
        self.http.base.clone()
    }

    /// `127.0.0.1:PORT/<name>`, e.g. `reg.image("ns/app:v1")`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// `docker://127.0.0.1:PORT/<name>`
    pub fn docker_ref(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host())
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// The skopeo cert dir of this registry: `ca.crt`, plus `client.cert`/`client.key` for
    /// [`Tls::ClientCert`]. `None` for plain HTTP.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.cert_dir.as_deref()
    }

    /// A fresh directory with only the lab CA (`ca.crt`): a client that trusts the registry
    /// but has no client certificate.
    pub fn ca_only_cert_dir(&self) -> PathBuf {
        let dir = self
            .dir
            .path()
            .join(format!("certs-ca-only-{}", random_hex(4)));
        pki::lab_ca().write_cert_dir(&dir, None);
        dir
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own log (stderr) so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.stderr")).unwrap_or_default()
    }

    /// The TLS flags for skopeo/ferry: `--src-tls-verify=false` for plain HTTP, else
    /// `--src-cert-dir=<cert_dir>` (prefix per `side`).
    pub fn tls_args(&self, side: Side) -> Vec<String> {
        match &self.cert_dir {
            None => vec![format!("{}=false", side.flag("tls-verify"))],
            Some(dir) => vec![format!("{}={}", side.flag("cert-dir"), dir.display())],
        }
    }

    /// [`tls_args`](Self::tls_args) plus credentials that may pull and push `repo`: the lab's
    /// htpasswd admin for Basic auth, a JWT minted by the lab (`--…registry-token`, so the
    /// token server's log stays clean) for token auth.
    pub fn admin_args(&self, side: Side, repo: &str) -> Vec<String> {
        let mut args = self.tls_args(side);
        match &self.opts.auth {
            Auth::None => {}
            Auth::Basic(_) => args.push(format!(
                "{}={LAB_ADMIN_USER}:{}",
                side.flag("creds"),
                self.admin_password
            )),
            Auth::Token(cfg) => {
                let jwt = cfg.mint(
                    LAB_ADMIN_USER,
                    &[(
                        repo.to_string(),
                        vec!["pull".into(), "push".into(), "delete".into()],
                    )],
                    Duration::from_secs(3600),
                );
                args.push(format!("{}={jwt}", side.flag("registry-token")));
            }
        }
        args
    }

    /// The `Authorization` value of the lab's admin for `repo` (`None` without auth): for a
    /// stand-in that lets requests in on its own authority.
    pub fn admin_authorization(&self, repo: &str) -> Option<String> {
        self.lab_auth(repo).into_iter().next().map(|(_, v)| v)
    }

    /// The `Authorization` header the lab uses for its own requests about `repo`.
    fn lab_auth(&self, repo: &str) -> Vec<(&'static str, String)> {
        match &self.opts.auth {
            Auth::None => vec![],
            Auth::Basic(_) => vec![(
                "authorization",
                format!(
                    "Basic {}",
                    B64.encode(format!("{LAB_ADMIN_USER}:{}", self.admin_password))
                ),
            )],
            Auth::Token(cfg) => {
                let jwt = cfg.mint(
                    LAB_ADMIN_USER,
                    &[(
                        repo.to_string(),
                        vec!["pull".into(), "push".into(), "delete".into()],
                    )],
                    Duration::from_secs(3600),
                );
                vec![("authorization", format!("Bearer {jwt}"))]
            }
        }
    }

    /// One request by the lab's own client with admin rights on `repo` (left out of
    /// [`requests`](Self::requests)). Panics on transport errors.
    fn lab_request(
        &self,
        method: Method,
        repo: &str,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: Option<Vec<u8>>,
    ) -> Response {
        headers.extend(self.lab_auth(repo));
        self.http
            .send(method, path, &headers, body)
            .unwrap_or_else(|e| panic!("lab request to registry {} failed: {e}", self.host()))
    }

    /// One request by the lab's client with exactly the given `Authorization` (or none), e.g.
    /// to try a token obtained from a [`TokenServer`](super::TokenServer). Returns status and
    /// body; panics on transport errors. (Left out of [`requests`](Self::requests).)
    pub fn raw_request(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let method = Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut headers = vec![("accept", MANIFEST_ACCEPT.to_string())];
        if let Some(a) = authorization {
            headers.push(("authorization", a.to_string()));
        }
        let resp = self
            .http
            .send(method, path, &headers, None)
            .unwrap_or_else(|e| panic!("lab request to registry {} failed: {e}", self.host()));
        (resp.status, resp.body)
    }

    /// Fetch a manifest (by tag or digest) straight from the registry, with the lab's admin
    /// rights. `None` if the registry answers 404; panics on any other non-200 answer.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Option<Manifest> {
        let resp = self.lab_request(
            Method::GET,
            repo,
            &format!("/v2/{repo}/manifests/{reference}"),
            vec![("accept", MANIFEST_ACCEPT.to_string())],
            None,
        );
        if resp.status == 404 {
            return None;
        }
        assert_eq!(
            resp.status,
            200,
            "GET manifest {repo}:{reference} from {}: {}",
            self.host(),
            String::from_utf8_lossy(&resp.body)
        );
        Some(Manifest {
            digest: sha256_digest(&resp.body),
            media_type: resp.header("content-type").unwrap_or_default(),
            header_digest: resp.header("docker-content-digest"),
            bytes: resp.body,
        })
    }

    /// The digest (sha256 of the exact bytes) of the manifest `repo:reference`, or `None`.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Option<String> {
        self.get_manifest(repo, reference).map(|m| m.digest)
    }

    /// Store a manifest directly (for setting up unusual states). Returns the HTTP status.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> u16 {
        self.lab_request(
            Method::PUT,
            repo,
            &format!("/v2/{repo}/manifests/{reference}"),
            vec![("content-type", media_type.to_string())],
            Some(bytes.to_vec()),
        )
        .status
    }

    /// Delete a manifest by digest. Returns the HTTP status (202 on success).
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> u16 {
        self.lab_request(
            Method::DELETE,
            repo,
            &format!("/v2/{repo}/manifests/{digest}"),
            vec![],
            None,
        )
        .status
    }

    /// Whether `HEAD /v2/<repo>/blobs/<digest>` answers 200.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let status = self
            .lab_request(
                Method::HEAD,
                repo,
                &format!("/v2/{repo}/blobs/{digest}"),
                vec![],
                None,
            )
            .status;
        assert!(
            status == 200 || status == 404,
            "HEAD blob {repo}@{digest}: status {status}"
        );
        status == 200
    }

    /// A blob's bytes, or `None` on 404.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let resp = self.lab_request(
            Method::GET,
            repo,
            &format!("/v2/{repo}/blobs/{digest}"),
            vec![],
            None,
        );
        match resp.status {
            200 => Some(resp.body),
            404 => None,
            s => panic!("GET blob {repo}@{digest}: status {s}"),
        }
    }

    /// The tags of `repo` (sorted), empty if the repository is unknown.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.lab_request(
            Method::GET,
            repo,
            &format!("/v2/{repo}/tags/list"),
            vec![],
            None,
        );
        if resp.status == 404 {
            return Vec::new();
        }
        assert_eq!(
            resp.status,
            200,
            "tags of {repo}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("tags JSON");
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// Send a sentinel and wait for its log line; the index of that line.
    fn sync_log(&self) -> usize {
        let id = format!(
            "{}-{}",
            std::process::id(),
            SENTINELS.fetch_add(1, Ordering::SeqCst)
        );
        let from = self.log.len();
        if let Err(e) = self.http.get(&format!("/v2/?lab-sentinel={id}"), &[]) {
            panic!(
                "registry {} does not answer the log sentinel: {e}\nstderr:\n{}",
                self.host(),
                self.stderr()
            );
        }
        self.log
            .wait_for(from, &format!("?lab-sentinel={id} "), SENTINEL_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "the registry's access log did not show sentinel {id} within {SENTINEL_TIMEOUT:?}"
                )
            })
    }

    /// A position in the request log: pass it to [`requests_since`](Self::requests_since) to see
    /// only the requests made after this call.
    pub fn mark(&self) -> Mark {
        Mark(self.sync_log() + 1)
    }

    /// Every request the registry has completed so far (excluding the lab's own), in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests_since(Mark(0))
    }

    /// The requests completed after `mark` (excluding the lab's own), in order.
    pub fn requests_since(&self, mark: Mark) -> Vec<LoggedRequest> {
        let end = self.sync_log();
        self.log
            .slice(mark.0.min(end), end)
            .iter()
            .filter_map(|l| LoggedRequest::parse(l))
            .filter(|r| r.user_agent != LAB_USER_AGENT)
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago (the registry retries if it is gone by the time it binds).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("finding a free port")
        .port()
}
