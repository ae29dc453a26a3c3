//! TLS settings for one registry: certificate directories and verification, as skopeo reads them.
//!
//! A cert dir holds `*.crt` files (CA certificates, added to the system roots) and client
//! certificates as `NAME.cert` with `NAME.key`. Without `--cert-dir`, the per-host directories
//! `/etc/containers/certs.d/HOST[:PORT]` and `/etc/docker/certs.d/HOST[:PORT]` are used when
//! they exist, as containers/image does. Verification is on unless the user turns it off with
//! `--tls-verify=false`, which also allows plain HTTP.
//!
//! Server certificates are verified as Go verifies them for skopeo ([`verifier`]): a chain to
//! a trusted CA, or a certificate that is itself one of the trusted certificates (a registry's
//! self-signed certificate placed in the cert dir).

mod verifier;

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::environment::{Environment, Proxies};
use crate::error::{Error, Result};

/// A client certificate chain and its private key.
pub struct ClientIdentity {
    /// The certificate, then any intermediates, as the `.cert` file lists them.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key from the `.key` file.
    pub key: PrivateKeyDer<'static>,
}

/// Certificates and client identity read from a cert dir.
#[derive(Default)]
pub struct TlsMaterial {
    /// Extra trusted certificates (CAs, or a registry's own self-signed certificate).
    pub roots: Vec<CertificateDer<'static>>,
    /// Client certificate and key, if one was found.
    pub identity: Option<ClientIdentity>,
    /// Files that were used, for `--debug` output.
    pub files: Vec<PathBuf>,
}

/// TLS options for one side of an operation.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `--tls-verify`: `None` means the default (verify).
    pub verify: Option<bool>,
    /// `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// `$HOME`: `~/.config/containers/certs.d/<host>` is read when there is no `--cert-dir`.
    pub home: Option<PathBuf>,
    /// The proxies the environment names.
    pub proxies: Proxies,
}

impl TlsOptions {
    /// `--tls-verify` and `--cert-dir`, with what the environment says (`HOME`, proxies).
    pub fn new(verify: Option<bool>, cert_dir: Option<PathBuf>, env: &Environment) -> Self {
        TlsOptions {
            verify,
            cert_dir,
            home: env.home.clone(),
            proxies: env.proxies.clone(),
        }
    }

    /// Whether certificates are verified (and HTTPS required).
    pub fn verify(&self) -> bool {
        self.verify.unwrap_or(true)
    }
}

/// An HTTP client builder with ferry's TLS settings for `host`: the cert dir's certificates
/// added to the system roots, its client certificate, and verification as the user chose
/// (off also accepts invalid certificates). HTTP/1.1 only: parallel transfers use parallel
/// connections.
pub fn client_builder(opts: &TlsOptions, host: &str) -> Result<reqwest::ClientBuilder> {
    install_crypto_provider();
    let material = load(opts, host)?;
    for f in &material.files {
        log::debug!("{host}: using TLS file {}", f.display());
    }
    let roots = if opts.verify() {
        Some(
            system_roots()
                .iter()
                .cloned()
                .chain(material.roots)
                .collect(),
        )
    } else {
        None
    };
    let config = verifier::client_config(roots, material.identity)?;
    Ok(reqwest::Client::builder()
        .user_agent(crate::registry::USER_AGENT)
        .http1_only()
        .no_proxy()
        .proxy(env_proxy(&opts.proxies))
        .use_preconfigured_tls(config))
}

/// Proxies from the environment, chosen as skopeo (Go's `http.ProxyFromEnvironment`) chooses
/// them: `HTTPS_PROXY` for `https://` URLs, `HTTP_PROXY` for `http://` ones (either in lower
/// case too; a value without a scheme is an `http://` proxy), `NO_PROXY` exceptions (domains
/// with their subdomains, IP addresses, CIDR blocks, `*`), and never for `localhost` or a
/// loopback address. `HTTP_PROXY` is ignored in a CGI environment (`REQUEST_METHOD` set).
fn env_proxy(env: &Proxies) -> reqwest::Proxy {
    let proxies = EnvProxies::new(env.http.clone(), env.https.clone(), env.no_proxy.clone());
    reqwest::Proxy::custom(move |target: &url::Url| proxies.proxy_for(target))
}

struct EnvProxies {
    http: String,
    https: String,
    matcher: hyper_util::client::proxy::matcher::Matcher,
}

impl EnvProxies {
    fn new(http: String, https: String, no: String) -> Self {
        let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
            .http(&http)
            .https(&https)
            .no(no)
            .build();
        EnvProxies {
            http,
            https,
            matcher,
        }
    }

    /// The proxy (with its credentials, if any) for `target`, if one applies.
    fn proxy_for(&self, target: &url::Url) -> Option<url::Url> {
        let loopback = match target.host()? {
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        if loopback {
            return None;
        }
        // The matcher applies NO_PROXY and knows which proxies are usable.
        let uri: http::Uri = target.as_str().parse().ok()?;
        self.matcher.intercept(&uri)?;
        let raw = if target.scheme() == "https" {
            &self.https
        } else {
            &self.http
        };
        let raw = raw.trim();
        let proxy = if raw.contains("://") {
            url::Url::parse(raw)
        } else {
            url::Url::parse(&format!("http://{raw}"))
        }
        .ok()?;
        log::debug!(
            "{}: through the proxy {}",
            target.host_str().unwrap_or_default(),
            crate::redact::url(&proxy)
        );
        Some(proxy)
    }
}

/// The system's trusted CAs, read once per process (every client of a run shares them).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            log::debug!("system CA store: {e}");
        }
        found.certs
    })
}

/// Make ring rustls' process-wide crypto provider (once). ring seeds from the OS's random
/// source at no cost, where aws-lc-rs spends tens of milliseconds of CPU on every start.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The default per-host cert directories containers/image consults.
fn default_cert_dirs(home: Option<&Path>, host: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = home {
        dirs.push(home.join(".config/containers/certs.d").join(host));
    }
    dirs.push(Path::new("/etc/containers/certs.d").join(host));
    dirs.push(Path::new("/etc/docker/certs.d").join(host));
    dirs
}

/// Read the TLS material for `host` from the explicit cert dir or the default per-host ones.
pub fn load(opts: &TlsOptions, host: &str) -> Result<TlsMaterial> {
    match &opts.cert_dir {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Error::Tls(format!(
                    "cert dir {} does not exist or is not a directory",
                    dir.display()
                )));
            }
            read_cert_dir(dir)
        }
        None => {
            let mut all = TlsMaterial::default();
            for dir in default_cert_dirs(opts.home.as_deref(), host) {
                if dir.is_dir() {
                    let m = read_cert_dir(&dir)?;
                    all.roots.extend(m.roots);
                    all.files.extend(m.files);
                    if all.identity.is_none() {
                        all.identity = m.identity;
                    }
                }
            }
            Ok(all)
        }
    }
}

/// Read one cert dir: `*.crt` are CAs, `X.cert` + `X.key` a client certificate. A folder or
/// file that others may write to is a way to slip in a CA: a warning names it
/// ([`warn_if_writable`]).
pub fn read_cert_dir(dir: &Path) -> Result<TlsMaterial> {
    let mut out = TlsMaterial::default();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading cert dir", dir, e))?;
    warn_if_writable(dir, "cert dir");
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for path in &names {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "crt" | "cert" | "key") && !path.is_dir() {
            warn_if_writable(path, "TLS file");
        }
    }
    for path in &names {
        // Mounted Secrets hold `..data` folders and symlinks into them: follow files, skip folders.
        if path.is_dir() {
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let pem = std::fs::read(path)
                    .map_err(|e| Error::io("reading CA certificate", path, e))?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Error::Tls(format!(
                            "CA certificate {} is not valid PEM: {e}",
                            path.display()
                        ))
                    })?;
                if let Some(e) = certs.iter().find_map(|c| verifier::check_anchor(c).err()) {
                    return Err(Error::Tls(format!(
                        "CA certificate {} is not usable: {e}",
                        path.display()
                    )));
                }
                if certs.is_empty() {
                    return Err(Error::Tls(format!(
                        "CA certificate {} holds no certificate",
                        path.display()
                    )));
                }
                out.roots.extend(certs);
                out.files.push(path.clone());
            }
            "cert" => {
                let key_path = path.with_extension("key");
                if !key_path.is_file() {
                    return Err(Error::Tls(format!(
                        "client certificate {} has no matching key {}",
                        path.display(),
                        key_path.display()
                    )));
                }
                let cert_pem = std::fs::read(path)
                    .map_err(|e| Error::io("reading client certificate", path, e))?;
                let key_pem = std::fs::read(&key_path)
                    .map_err(|e| Error::io("reading client key", &key_path, e))?;
                let unusable = |why: String| {
                    Error::Tls(format!(
                        "client certificate {} / {} is not usable: {why}",
                        path.display(),
                        key_path.display(),
                    ))
                };
                let chain = CertificateDer::pem_slice_iter(&cert_pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| unusable(e.to_string()))?;
                if chain.is_empty() {
                    return Err(unusable("no certificate in it".into()));
                }
                let key =
                    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| unusable(e.to_string()))?;
                out.identity = Some(ClientIdentity { chain, key });
                out.files.push(path.clone());
                out.files.push(key_path);
            }
            "key" if !path.with_extension("cert").is_file() => {
                return Err(Error::Tls(format!(
                    "client key {} has no matching certificate {}",
                    path.display(),
                    path.with_extension("cert").display()
                )));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Why a TLS connection failed, when it failed in TLS itself. Found by the error's type
/// (rustls' [`rustls::Error`], wherever it sits in the chain of sources), never by its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server answered with something that is not TLS: a plain-HTTP server.
    PlainHttp,
    /// A certificate was refused (ours by the server, or the server's by us).
    Certificate,
    /// Any other TLS failure (no common protocol version or cipher, a misbehaving peer).
    Handshake,
}

/// The TLS failure behind `err`, if it is one. Each is deterministic: retrying gives the same
/// answer.
pub fn classify(err: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
    use rustls::{AlertDescription as A, Error as E, InvalidMessage};
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<E>() {
            return Some(match t {
                E::InvalidMessage(InvalidMessage::InvalidContentType) => TlsFailure::PlainHttp,
                E::InvalidCertificate(_)
                | E::NoCertificatesPresented
                | E::UnsupportedNameType
                | E::InvalidCertRevocationList(_)
                | E::AlertReceived(
                    A::BadCertificate
                    | A::UnsupportedCertificate
                    | A::CertificateRevoked
                    | A::CertificateExpired
                    | A::CertificateUnknown
                    | A::UnknownCA
                    | A::CertificateRequired
                    | A::AccessDenied,
                ) => TlsFailure::Certificate,
                _ => TlsFailure::Handshake,
            });
        }
        // `io::Error::source()` skips the error it wraps: step into it explicitly.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Warn on stderr when `path` may be written by its group or by others, as ssh does for keys:
/// whoever can write there can add a CA that ferry then trusts. A read-only mount (a Secret
/// volume) is not writable whatever its mode bits say, and is not warned about.
pub fn warn_if_writable(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if let Some(w) = writable_warning(path, what, mode, read_only_mount(path)) {
        log::warn!("{w}");
    }
}

/// The warning for a `mode` at `path`, if it lets the group or others write there.
pub fn writable_warning(path: &Path, what: &str, mode: u32, read_only: bool) -> Option<String> {
    if mode & 0o022 == 0 || read_only {
        return None;
    }
    Some(format!(
        "{what} {} (mode {mode:04o}) is writable by others: anyone who can write there can add a CA that ferry trusts; make it writable by its owner only (chmod go-w)",
        path.display()
    ))
}

/// Whether `path` is on a file system mounted read-only.
fn read_only_mount(path: &Path) -> bool {
    rustix::fs::statvfs(path)
        .is_ok_and(|st| st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_cert_material_is_warned_about() {
        let p = Path::new("/certs");
        let w = writable_warning(p, "cert dir", 0o777, false).unwrap();
        assert!(
            w.contains("/certs (mode 0777) is writable by others"),
            "{w}"
        );
        assert!(writable_warning(p, "cert dir", 0o1777, false).is_some());
        assert!(writable_warning(p, "TLS file", 0o664, false).is_some());
        assert!(writable_warning(p, "TLS file", 0o644, false).is_none());
        assert!(writable_warning(p, "cert dir", 0o755, false).is_none());
        // A read-only mount (a Secret volume shows 1777 but nobody can write it).
        assert!(writable_warning(p, "cert dir", 0o1777, true).is_none());
    }

    fn via(p: &EnvProxies, target: &str) -> Option<String> {
        p.proxy_for(&url::Url::parse(target).unwrap())
            .map(|u| u.to_string())
    }

    #[test]
    fn proxies_are_chosen_as_go_chooses_them() {
        let p = EnvProxies::new(
            "proxy.corp:3128".into(),
            "http://user:p%40ss@secure.corp:8080".into(),
            "internal.example, .svc, 10.0.0.0/8, registry.example:5000".into(),
        );
        // By scheme; a bare host:port is an http:// proxy; credentials are kept.
        assert_eq!(
            via(&p, "http://quay.io/v2/").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        assert_eq!(
            via(&p, "https://quay.io/v2/").as_deref(),
            Some("http://user:p%40ss@secure.corp:8080/")
        );
        // NO_PROXY: a domain and its subdomains, a leading-dot suffix, a CIDR block.
        for direct in [
            "https://internal.example/v2/",
            "https://reg.internal.example/v2/",
            "https://image-registry.openshift-image-registry.svc/v2/",
            "https://10.1.2.3:5000/v2/",
        ] {
            assert_eq!(via(&p, direct), None, "{direct}");
        }
        assert!(via(&p, "https://11.1.2.3/v2/").is_some());
        // Never for loopback, as Go.
        for local in [
            "https://127.0.0.1:5000/v2/",
            "https://127.8.9.10/v2/",
            "https://[::1]:5000/v2/",
            "https://localhost:5000/v2/",
            "https://LOCALHOST./v2/",
            "https://reg.localhost/v2/",
        ] {
            assert_eq!(via(&p, local), None, "{local}");
        }
        // Nothing set: no proxy.
        let none = EnvProxies::new(String::new(), String::new(), String::new());
        assert_eq!(via(&none, "https://quay.io/v2/"), None);
        // NO_PROXY=*: no proxy.
        let star = EnvProxies::new("p:1".into(), "p:1".into(), "*".into());
        assert_eq!(via(&star, "https://quay.io/v2/"), None);
    }
}
