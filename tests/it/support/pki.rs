//! TLS material: one CA per test run (generated with rcgen), a server certificate for
//! `127.0.0.1`/`localhost`/[`PROXIED_HOST`] and a client certificate, both signed by it; written in skopeo's
//! cert-dir layout (`ca.crt`, `client.cert`, `client.key`).

use std::fs;
use std::path::Path;
use std::sync::LazyLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, both PEM (the key is PKCS#8).
#[derive(Clone, Debug)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA with the server and client certificates it signed.
#[derive(Debug)]
pub struct LabCa {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// Server certificate with SANs `127.0.0.1`, `localhost` and [`PROXIED_HOST`].
    pub server: CertKey,
    /// Client certificate (CN `ferry-lab-client`, extended key usage clientAuth).
    pub client: CertKey,
}

/// A name that resolves nowhere: only the lab's CONNECT proxy knows it (as `127.0.0.1`), so a
/// client reaching a registry by this name must have gone through the proxy.
pub const PROXIED_HOST: &str = "registry.ferry.test";

/// The lab CA of this test run, generated on first use.
pub fn lab_ca() -> &'static LabCa {
    static CA: LazyLock<LabCa> = LazyLock::new(|| LabCa::generate("ferry lab CA"));
    &CA
}

/// A second, unrelated CA (same shape as [`lab_ca`]): for "wrong CA" and "client certificate
/// from an untrusted CA" tests.
pub fn foreign_ca() -> &'static LabCa {
    static CA: LazyLock<LabCa> = LazyLock::new(|| LabCa::generate("ferry lab foreign CA"));
    &CA
}

impl LabCa {
    fn generate(name: &str) -> LabCa {
        let ca_key = KeyPair::generate().expect("generating CA key");
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("{name} {}", super::random_hex(4)),
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-signing the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("generating server key");
        let mut server_params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            PROXIED_HOST.to_string(),
        ])
        .expect("server certificate parameters");
        server_params.distinguished_name = rcgen::DistinguishedName::new();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "ferry-lab-registry");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("signing the server certificate");

        let client_key = KeyPair::generate().expect("generating client key");
        let mut client_params = CertificateParams::default();
        client_params.distinguished_name = rcgen::DistinguishedName::new();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "ferry-lab-client");
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .expect("signing the client certificate");

        LabCa {
            ca_pem: ca_cert.pem(),
            server: CertKey {
                cert_pem: server_cert.pem(),
                key_pem: server_key.serialize_pem(),
            },
            client: CertKey {
                cert_pem: client_cert.pem(),
                key_pem: client_key.serialize_pem(),
            },
        }
    }

    /// Write `ca.crt` (this CA) into `dir` (created if needed), and with `client`, also
    /// `client.cert` + `client.key`: skopeo's `--cert-dir` layout.
    pub fn write_cert_dir(&self, dir: &Path, client: Option<&CertKey>) {
        fs::create_dir_all(dir).expect("creating cert dir");
        fs::write(dir.join("ca.crt"), &self.ca_pem).expect("writing ca.crt");
        if let Some(client) = client {
            fs::write(dir.join("client.cert"), &client.cert_pem).expect("writing client.cert");
            fs::write(dir.join("client.key"), &client.key_pem).expect("writing client.key");
        }
    }
}

/// A registry certificate made the way skopeo's system tests make it (`systemtest/helpers.bash`,
/// `start_registry --with-cert`): `openssl req -x509` — self-signed, and (openssl's default
/// extensions) `CA:TRUE` — for `DNS:localhost`. 2048-bit RSA instead of helpers.bash's 4096
/// (only generation time differs). Written into `dir`, which must exist.
pub fn openssl_self_signed(dir: &Path) -> CertKey {
    let (cert, key) = (dir.join("domain.crt"), dir.join("domain.key"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout"])
        .arg(&key)
        .args(["-x509", "-days", "2", "-out"])
        .arg(&cert)
        .args([
            "-subj",
            "/C=US/ST=Foo/L=Bar/O=Red Hat, Inc./CN=registry host certificate",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .output()
        .expect("running openssl (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    CertKey {
        cert_pem: fs::read_to_string(&cert).expect("openssl's certificate"),
        key_pem: fs::read_to_string(&key).expect("openssl's key"),
    }
}

/// How [`self_signed`] makes a certificate.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// `basicConstraints CA:TRUE` (as `openssl req -x509` marks it) or a plain end entity.
    pub ca: bool,
    /// Subject alternative names (DNS names or IP addresses).
    pub names: Vec<String>,
    /// Expired since 2021 instead of valid for a day around now.
    pub expired: bool,
    /// Extended key usage `clientAuth` only (not usable by a TLS server).
    pub client_auth_only: bool,
}

impl Default for SelfSigned {
    fn default() -> Self {
        SelfSigned {
            ca: true,
            names: vec!["localhost".into()],
            expired: false,
            client_auth_only: false,
        }
    }
}

/// A self-signed server certificate (rcgen), for the cases openssl's defaults do not make.
pub fn self_signed(how: &SelfSigned) -> CertKey {
    let key = KeyPair::generate().expect("generating key");
    let mut params = CertificateParams::new(how.names.clone()).expect("certificate parameters");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("ferry lab self-signed {}", super::random_hex(4)),
    );
    if how.ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    if how.expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    if how.client_auth_only {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params.self_signed(&key).expect("self-signing");
    CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
