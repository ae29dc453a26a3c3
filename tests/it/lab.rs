//! Tests of the test lab itself: every registry variant really works with skopeo (an
//! independent client), refuses what it must refuse, and the lab's observations (request log,
//! token log, digests) are right.
//!
//! This file: copies over every variant, what each variant refuses, registry options and the
//! tool helpers. The token server and token lifetimes are in `lab_tokens.rs`, the request log
//! and the fixtures in `lab_observations.rs`.

use std::io::Read;

use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

pub(crate) fn tls(tls: Tls) -> RegistryOptions {
    RegistryOptions {
        tls,
        ..Default::default()
    }
}

pub(crate) fn auth(auth: Auth, tls: Tls) -> RegistryOptions {
    RegistryOptions {
        auth,
        tls,
        ..Default::default()
    }
}

/// `skopeo copy --preserve-digests [--all] <src flags> <dst flags> src dst` in a fresh sandbox.
pub(crate) fn skopeo_copy(
    all: bool,
    src_args: &[String],
    dst_args: &[String],
    src: &str,
    dst: &str,
) -> Output {
    skopeo_copy_in(&Sandbox::new(), all, src_args, dst_args, src, dst)
}

/// The same in `sb` (whose blob info cache remembers earlier copies).
pub(crate) fn skopeo_copy_in(
    sb: &Sandbox,
    all: bool,
    src_args: &[String],
    dst_args: &[String],
    src: &str,
    dst: &str,
) -> Output {
    let mut c = sb.skopeo();
    c.args(["copy", "--preserve-digests"]);
    if all {
        c.arg("--all");
    }
    c.args(src_args).args(dst_args).arg(src).arg(dst).run()
}

/// `skopeo copy --preserve-digests [--all]` between the pair's registries, with the pair's
/// flags and credentials, in a fresh sandbox.
fn skopeo_pair_copy(p: &Pair, all: bool, src: &str, dst: &str) -> Output {
    let sb = Sandbox::new();
    let extra: &[&str] = if all {
        &["--preserve-digests", "--all"]
    } else {
        &["--preserve-digests"]
    };
    p.copy(sb.skopeo(), extra, src, dst)
}

/// The destination holds exactly the fixture: same top-level digest (checked through the
/// registry API, not skopeo's word), every child manifest and every blob.
pub(crate) fn assert_holds(reg: &Registry, repo: &str, tag: &str, fx: &Fixture) {
    let m = reg
        .get_manifest(repo, tag)
        .unwrap_or_else(|| panic!("{repo}:{tag} missing on {}", reg.host()));
    assert_eq!(m.digest, fx.digest, "manifest digest of {repo}:{tag}");
    assert_eq!(m.bytes, fx.manifest, "manifest bytes of {repo}:{tag}");
    assert_eq!(m.header_digest.as_deref(), Some(fx.digest.as_str()));
    assert_eq!(m.media_type, fx.media_type);
    for img in &fx.images {
        if fx.is_index() {
            let child = reg.get_manifest(repo, &img.digest).expect("child manifest");
            assert_eq!(child.bytes, img.manifest);
        }
        for blob in img.blob_digests() {
            assert!(
                reg.blob_exists(repo, &blob),
                "blob {blob} missing in {repo}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Copies over every variant.

#[test]
fn copy_over_plain_http_oci_gzip() {
    let p = Pair::plain();
    let fx = ImageSpec::oci().layers(&[3000, 70_000, 10]).build();
    fx.seed(&p.src, "ns/app:v1");
    skopeo_pair_copy(&p, false, "ns/app:v1", "prod/app:v1").assert_success();
    assert_holds(&p.dst, "prod/app", "v1", &fx);
}

#[test]
fn copy_over_https_with_cert_dirs_docker_uncompressed() {
    let p = Pair::new().tls().build();
    assert!(p.src.url().starts_with("https://"));
    let fx = ImageSpec::docker()
        .uncompressed()
        .layers(&[5000, 20_000])
        .build();
    assert_eq!(fx.image().layers[0].media_type, DOCKER_LAYER_TAR);
    fx.seed(&p.src, "ns/app:v1");
    skopeo_pair_copy(&p, false, "ns/app:v1", "ns/app:v1").assert_success();
    assert_holds(&p.dst, "ns/app", "v1", &fx);
}

#[test]
fn copy_over_https_with_client_certificates_oci_uncompressed() {
    let p = Pair::new().client_cert().build();
    let dir = p.src.cert_dir().unwrap();
    for f in ["ca.crt", "client.cert", "client.key"] {
        assert!(dir.join(f).is_file(), "{f} in cert dir");
    }
    let fx = ImageSpec::oci().uncompressed().layers(&[4096]).build();
    fx.seed(&p.src, "ns/app:v1");
    skopeo_pair_copy(&p, false, "ns/app:v1", "ns/app:v1").assert_success();
    assert_holds(&p.dst, "ns/app", "v1", &fx);
}

#[test]
fn copy_with_basic_auth_docker_gzip() {
    // A password with a colon: skopeo splits at the first one.
    let p = Pair::new()
        .src(|e| e.basic_auth("puller", "pull-pw"))
        .dst(|e| e.tls(Tls::Ca).basic_auth("pusher", "push:pw"))
        .build();
    let fx = ImageSpec::docker().layers(&[2048, 9000]).build();
    fx.seed(&p.src, "ns/app:v1");
    skopeo_pair_copy(&p, false, "ns/app:v1", "prod/app:v1").assert_success();
    assert_holds(&p.dst, "prod/app", "v1", &fx);
}

#[test]
fn copy_with_token_auth_and_different_tokens_multi_arch_oci() {
    // Source: HTTPS registry, token server over HTTPS (as OpenShift's route); the source token
    // may only pull. Destination: HTTP registry, HTTP token server; its token may push to prod/*.
    let p = Pair::new()
        .src(|e| {
            e.tls(Tls::Ca)
                .token("serviceaccount", "nonprod-sa", &[Grant::pull("ns/*")])
        })
        .dst(|e| {
            e.token("unused", "prod-sa", &[Grant::push("prod/*")])
                .token_fields(TokenFields::TokenOnly)
        })
        .build();
    let (src_ts, dst_ts) = (p.src_ts(), p.dst_ts());
    assert!(src_ts.realm().starts_with("https://127.0.0.1:"));
    assert!(dst_ts.realm().starts_with("http://127.0.0.1:"));
    let fx = IndexSpec::oci().platforms(3).build();
    fx.seed(&p.src, "ns/app:v1");
    let src_mark = src_ts.mark();

    skopeo_pair_copy(&p, true, "ns/app:v1", "prod/app:v1").assert_success();
    assert_holds(&p.dst, "prod/app", "v1", &fx);
    // Each side was asked with its own token, and granted what its grants allow.
    let src_reqs = src_ts.requests_since(src_mark);
    assert!(!src_reqs.is_empty());
    for r in &src_reqs {
        assert_eq!(r.token.as_deref(), Some("nonprod-sa"), "{r:?}");
        assert_eq!(r.user.as_deref(), Some("serviceaccount"));
        assert_eq!(
            r.granted,
            vec![("ns/app".to_string(), vec!["pull".to_string()])]
        );
    }
    let dst_reqs = dst_ts.requests();
    assert!(!dst_reqs.is_empty());
    for r in &dst_reqs {
        assert_eq!(r.token.as_deref(), Some("prod-sa"), "{r:?}");
    }
    assert!(dst_reqs.iter().any(|r| r.granted
        == vec![(
            "prod/app".to_string(),
            vec!["pull".to_string(), "push".to_string()]
        )]));
}

#[test]
fn copy_multi_arch_docker_manifest_list_with_all() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::docker()
        .platforms(4)
        .shared_layers(&[3000, 100])
        .own_layers(&[1500])
        .uncompressed()
        .build();
    assert_eq!(fx.media_type, DOCKER_MANIFEST_LIST);
    fx.seed(src, "ns/app:v1");
    let mark = dst.mark();
    skopeo_pair_copy(&p, true, "ns/app:v1", "ns/app:v1").assert_success();
    assert_holds(dst, "ns/app", "v1", &fx);
    // The shared layers were uploaded once, not once per platform.
    let finished: Vec<String> = dst
        .requests_since(mark)
        .iter()
        .filter(|r| r.kind() == RequestKind::UploadFinish && r.status == 201)
        .filter_map(|r| r.query_param("digest"))
        .collect();
    assert_eq!(finished.len(), fx.blobs().len(), "{finished:?}");
}

// ---------------------------------------------------------------------------------------------
// Each variant refuses what it must (a misconfigured variant fails these).

#[test]
fn https_registry_refuses_clients_without_the_ca() {
    let reg = Registry::start(tls(Tls::Ca));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    // No cert dir: the system roots do not know the lab CA.
    skopeo()
        .args(["inspect", "--raw"])
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_failure_with(&["x509", "certificate"]);
    // A cert dir with another CA.
    let other = tempfile::tempdir().unwrap();
    pki::foreign_ca().write_cert_dir(other.path(), None);
    skopeo()
        .args(["inspect", "--raw"])
        .arg(format!("--cert-dir={}", other.path().display()))
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_failure_with(&["x509", "certificate"]);
    // And it speaks only TLS: plain HTTP gets Go's "HTTP request to an HTTPS server" 400.
    let mut conn = std::net::TcpStream::connect(reg.host()).unwrap();
    std::io::Write::write_all(&mut conn, b"GET /v2/ HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.0 400"),
        "plain HTTP to the TLS port: {answer:?}"
    );
    // With the cert dir it works.
    skopeo()
        .args(["inspect", "--raw"])
        .args(reg.tls_args(Side::Plain))
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
}

#[test]
fn client_cert_registry_refuses_clients_without_a_trusted_certificate() {
    let reg = Registry::start(tls(Tls::ClientCert));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    let inspect = |cert_dir: &std::path::Path| {
        skopeo()
            .args(["inspect", "--raw"])
            .arg(format!("--cert-dir={}", cert_dir.display()))
            .arg(reg.docker_ref("ns/app:v1"))
            .run()
    };
    // The CA alone is not enough.
    inspect(&reg.ca_only_cert_dir()).assert_failure_with(&["certificate", "tls"]);
    // A client certificate from an untrusted CA is refused.
    let foreign = tempfile::tempdir().unwrap();
    pki::lab_ca().write_cert_dir(foreign.path(), Some(&pki::foreign_ca().client));
    inspect(foreign.path()).assert_failure_with(&["certificate", "tls"]);
    // The full cert dir works.
    let out = inspect(reg.cert_dir().unwrap());
    out.assert_success();
    assert_eq!(
        sha256_digest(&out.stdout_bytes),
        reg.manifest_digest("ns/app", "v1").unwrap()
    );
}

#[test]
fn basic_registry_refuses_anonymous_and_wrong_passwords() {
    let reg = Registry::start(auth(
        Auth::Basic(vec![("alice".into(), "s3cret".into())]),
        Tls::None,
    ));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    let inspect = |creds: Option<&str>| {
        let mut c = skopeo();
        c.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some(creds) = creds {
            c.arg(format!("--creds={creds}"));
        }
        c.arg(reg.docker_ref("ns/app:v1")).run()
    };
    inspect(None).assert_failure_with(&["unauthorized", "authentication required"]);
    inspect(Some("alice:wrong")).assert_failure_with(&["unauthorized", "authentication required"]);
    inspect(Some("mallory:s3cret"))
        .assert_failure_with(&["unauthorized", "authentication required"]);
    inspect(Some("alice:s3cret")).assert_success();
    // The registry itself answers 401 with a Basic challenge.
    let (status, _) = reg.raw_request("GET", "/v2/", None);
    assert_eq!(status, 401);
}

// ---------------------------------------------------------------------------------------------
// Registry options.

#[test]
fn registry_without_delete_and_read_only() {
    let mut reg = Registry::start(RegistryOptions {
        delete_enabled: false,
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&reg, "ns/app:v1");
    skopeo()
        .args(["delete", "--tls-verify=false"])
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_failure();
    assert_eq!(reg.delete_manifest("ns/app", &fx.digest), 405);

    reg.restart(|o| {
        o.delete_enabled = true;
        o.read_only = true;
    });
    // Pulls work, pushes are refused.
    assert_holds(&reg, "ns/app", "v1", &fx);
    let other = ImageSpec::oci().layers(&[100]).build();
    skopeo_copy(
        false,
        &[],
        &reg.tls_args(Side::Dest),
        &other.dir_ref(),
        &reg.docker_ref("ns/app:v2"),
    )
    .assert_failure();
    assert!(reg.get_manifest("ns/app", "v2").is_none());

    reg.restart(|o| o.read_only = false);
    assert_eq!(reg.delete_manifest("ns/app", &fx.digest), 202);
    assert!(reg.get_manifest("ns/app", "v1").is_none());
}

// ---------------------------------------------------------------------------------------------
// Tool helpers.

#[test]
fn tools_run_isolated() {
    let sb = Sandbox::new();
    let out = sb.ferry().arg("--version").run();
    out.assert_success();
    assert!(out.stdout.contains("ferry"), "{out}");
    let out = sb.ferry_as_skopeo().arg("--version").run();
    assert!(out.code.is_some(), "{out}");
    assert!(out.command.starts_with("ferry-as-skopeo --version"));
    let out = sb.skopeo().arg("--version").run();
    out.assert_success();
    assert!(out.stdout.contains("skopeo version"), "{out}");

    // A logged-in auth file lands in the sandbox, not in the user's home.
    let reg = Registry::start(auth(Auth::Basic(vec![("u".into(), "p".into())]), Tls::None));
    sb.skopeo()
        .args(["login", "--tls-verify=false", "-u", "u", "--password-stdin"])
        .arg(reg.host())
        .stdin("p\n")
        .run()
        .assert_success();
    let auth_file = sb.runtime_dir().join("containers/auth.json");
    assert!(
        auth_file.is_file(),
        "skopeo login wrote no {}",
        auth_file.display()
    );
    ImageSpec::oci()
        .layers(&[10])
        .build()
        .seed(&reg, "ns/app:v1");
    let out = sb
        .skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(reg.docker_ref("ns/app"))
        .run();
    out.assert_success();
    assert!(out.stdout.contains("\"v1\""), "{out}");
    // A fresh sandbox knows nothing of it.
    skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(reg.docker_ref("ns/app"))
        .run()
        .assert_failure_with(&["unauthorized", "authentication required"]);

    let out = skopeo()
        .args(["inspect", "docker://127.0.0.1:1/nothing:here"])
        .run();
    out.assert_failure();
    assert_eq!(out.code, Some(1));
}
