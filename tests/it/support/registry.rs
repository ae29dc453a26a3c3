//! Real `docker-registry` (CNCF distribution 2.8) processes for tests.
//!
//! Each [`Registry`] has its own temp dir (storage, generated `config.yml`, TLS material,
//! htpasswd), listens on a free `127.0.0.1` port, is killed and waited for in `Drop` (also when
//! the test panics) and carries `PR_SET_PDEATHSIG(SIGKILL)` so it never outlives the test.
//!
//! The request log (what the registry saw, as the tests check it) is in
//! [`request_log`](super::request_log); the lab's own requests to a registry (its checks
//! through the registry API, and reading the request log up to now) in `registry/api.rs`.

mod api;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;

use super::http::{LabHttp, Response};
use super::request_log::AccessLog;
pub use super::request_log::{LoggedRequest, Mark, RequestKind};
use super::token::{TokenAuthConfig, write_root_bundle};
use super::{LAB_USER_AGENT, kill_with_parent, pki, random_hex, sha256_digest};

/// How long a registry may take to answer its first `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sentinel's log line may take to appear: a hang guard, not a measurement.
const SENTINEL_TIMEOUT: Duration = super::HANG_GUARD;
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
