//! Registry certificates given with `--cert-dir`, accepted and refused as skopeo (Go's
//! `crypto/x509`) accepts and refuses them — side by side with skopeo 1.9.3 and 1.18. A
//! registry's self-signed certificate placed in the cert dir is trusted as itself (whether it
//! says `CA:TRUE`, as `openssl req -x509` makes it, or not); the name, the validity period and
//! the extended key usage are still checked, and a certificate that is not in the cert dir is
//! still refused. (skopeo's own system test with such a certificate is in
//! `skopeo_systemtests::registries`.)

use crate::skopeo_systemtests::{ALL, Who};
use crate::support::fixtures::*;
use crate::support::pki::{self, CertKey, SelfSigned};
use crate::support::*;

/// A registry serving `cert`, holding `ns/app:v1`.
fn registry_serving(cert: CertKey) -> Registry {
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        server_cert: Some(cert),
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[500]).build();
    skopeo()
        .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
        .arg(fx.dir_ref())
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
    reg
}

/// A cert dir holding these certificates (as `NAME.crt`).
fn cert_dir(sb: &Sandbox, certs: &[(&str, &str)]) -> String {
    let dir = sb.path().join(format!("certs-{}", fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, pem) in certs {
        std::fs::write(dir.join(format!("{name}.crt")), pem).unwrap();
    }
    dir.display().to_string()
}

/// `inspect --cert-dir=DIR docker://NAME:PORT/ns/app:v1` with each tool: all succeed, or all
/// fail (ferry with one error line about the certificate).
#[track_caller]
fn expect_all(reg: &Registry, host_name: &str, certs: &[(&str, &str)], accepted: bool) {
    for who in ALL {
        let sb = Sandbox::new();
        let dir = cert_dir(&sb, certs);
        let out = who
            .skopeo(&sb)
            .args(["inspect", "--raw", "--retry-times=0"])
            .arg(format!("--cert-dir={dir}"))
            .arg(format!("docker://{}/ns/app:v1", reg.host_as(host_name)))
            .run();
        if accepted {
            out.assert_success();
            assert!(out.stdout.contains("schemaVersion"), "{who:?}: {out}");
        } else {
            assert_eq!(out.code, Some(1), "{who:?} should refuse:\n{out}");
            if who == Who::Ferry {
                let line = crate::faults::one_error_line(&out).to_lowercase();
                assert!(line.contains("certificate"), "{out}");
            }
        }
    }
}

#[test]
fn a_self_signed_ca_certificate_made_by_openssl_is_trusted_as_itself() {
    let sb = Sandbox::new();
    let cert = pki::openssl_self_signed(sb.path());
    let reg = registry_serving(cert.clone());
    expect_all(&reg, "localhost", &[("domain", &cert.cert_pem)], true);
    // …but only for the name it carries, and only when it is in the cert dir.
    expect_all(&reg, "127.0.0.1", &[("domain", &cert.cert_pem)], false);
    expect_all(&reg, "localhost", &[], false);
    let other = pki::self_signed(&SelfSigned::default());
    expect_all(&reg, "localhost", &[("other", &other.cert_pem)], false);
    // Among other certificates of the cert dir, it is still found.
    expect_all(
        &reg,
        "localhost",
        &[
            ("a-other", &other.cert_pem),
            ("b-domain", &cert.cert_pem),
            ("c-ca", &pki::lab_ca().ca_pem),
        ],
        true,
    );
}

#[test]
fn a_self_signed_end_entity_certificate_is_trusted_as_itself() {
    let cert = pki::self_signed(&SelfSigned {
        ca: false,
        names: vec!["localhost".into(), "127.0.0.1".into()],
        ..SelfSigned::default()
    });
    let reg = registry_serving(cert.clone());
    expect_all(&reg, "localhost", &[("domain", &cert.cert_pem)], true);
    expect_all(&reg, "127.0.0.1", &[("domain", &cert.cert_pem)], true);
}

#[test]
fn an_expired_self_signed_certificate_is_refused() {
    let cert = pki::self_signed(&SelfSigned {
        expired: true,
        ..SelfSigned::default()
    });
    let reg = registry_serving(cert.clone());
    expect_all(&reg, "localhost", &[("domain", &cert.cert_pem)], false);
}

#[test]
fn a_self_signed_certificate_for_clients_only_is_refused() {
    let cert = pki::self_signed(&SelfSigned {
        client_auth_only: true,
        ..SelfSigned::default()
    });
    let reg = registry_serving(cert.clone());
    expect_all(&reg, "localhost", &[("domain", &cert.cert_pem)], false);
}

#[test]
fn a_ca_signed_certificate_is_trusted_through_its_ca_or_as_itself() {
    let ca = pki::lab_ca();
    let reg = registry_serving(ca.server.clone());
    expect_all(&reg, "127.0.0.1", &[("ca", &ca.ca_pem)], true);
    // The server's own certificate in the cert dir, without its CA: Go trusts it as itself.
    expect_all(&reg, "localhost", &[("server", &ca.server.cert_pem)], true);
    // Another CA: refused.
    expect_all(
        &reg,
        "127.0.0.1",
        &[("ca", &pki::foreign_ca().ca_pem)],
        false,
    );
}
