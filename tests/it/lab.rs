//! Tests of the test lab itself: every registry variant really works with skopeo (an
//! independent client), refuses what it must refuse, and the lab's observations (request log,
//! token log, digests) are right.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::fixtures::*;
use crate::support::*;

fn tls(tls: Tls) -> RegistryOptions {
    RegistryOptions {
        tls,
        ..Default::default()
    }
}

fn auth(auth: Auth, tls: Tls) -> RegistryOptions {
    RegistryOptions {
        auth,
        tls,
        ..Default::default()
    }
}

/// `skopeo copy --preserve-digests [--all] <src flags> <dst flags> src dst` in a fresh sandbox.
fn skopeo_copy(
    all: bool,
    src_args: &[String],
    dst_args: &[String],
    src: &str,
    dst: &str,
) -> Output {
    skopeo_copy_in(&Sandbox::new(), all, src_args, dst_args, src, dst)
}

/// The same in `sb` (whose blob info cache remembers earlier copies).
fn skopeo_copy_in(
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

/// The destination holds exactly the fixture: same top-level digest (checked through the
/// registry API, not skopeo's word), every child manifest and every blob.
fn assert_holds(reg: &Registry, repo: &str, tag: &str, fx: &Fixture) {
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
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[3000, 70_000, 10]).build();
    fx.seed(&src, "ns/app:v1");
    skopeo_copy(
        false,
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("prod/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "prod/app", "v1", &fx);
}

#[test]
fn copy_over_https_with_cert_dirs_docker_uncompressed() {
    let src = Registry::start(tls(Tls::Ca));
    let dst = Registry::start(tls(Tls::Ca));
    assert!(src.url().starts_with("https://"));
    let fx = ImageSpec::docker()
        .uncompressed()
        .layers(&[5000, 20_000])
        .build();
    assert_eq!(fx.image().layers[0].media_type, DOCKER_LAYER_TAR);
    fx.seed(&src, "ns/app:v1");
    skopeo_copy(
        false,
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
}

#[test]
fn copy_over_https_with_client_certificates_oci_uncompressed() {
    let src = Registry::start(tls(Tls::ClientCert));
    let dst = Registry::start(tls(Tls::ClientCert));
    let dir = src.cert_dir().unwrap();
    for f in ["ca.crt", "client.cert", "client.key"] {
        assert!(dir.join(f).is_file(), "{f} in cert dir");
    }
    let fx = ImageSpec::oci().uncompressed().layers(&[4096]).build();
    fx.seed(&src, "ns/app:v1");
    skopeo_copy(
        false,
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
}

#[test]
fn copy_with_basic_auth_docker_gzip() {
    let src = Registry::start(auth(
        Auth::Basic(vec![("puller".into(), "pull-pw".into())]),
        Tls::None,
    ));
    let dst = Registry::start(auth(
        Auth::Basic(vec![("pusher".into(), "push:pw".into())]),
        Tls::Ca,
    ));
    let fx = ImageSpec::docker().layers(&[2048, 9000]).build();
    fx.seed(&src, "ns/app:v1");
    let mut src_args = src.tls_args(Side::Src);
    src_args.push("--src-creds=puller:pull-pw".into());
    let mut dst_args = dst.tls_args(Side::Dest);
    // A password with a colon: skopeo splits at the first one.
    dst_args.push("--dest-creds=pusher:push:pw".into());
    skopeo_copy(
        false,
        &src_args,
        &dst_args,
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("prod/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "prod/app", "v1", &fx);
}

#[test]
fn copy_with_token_auth_and_different_tokens_multi_arch_oci() {
    // Source: HTTPS registry, token server over HTTPS (as OpenShift's route); the source token
    // may only pull. Destination: HTTP registry, HTTP token server; its token may push to prod/*.
    let src_ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("nonprod-sa".into(), vec![Grant::pull("ns/*")])],
        tls: true,
        ..Default::default()
    });
    let dst_ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("prod-sa".into(), vec![Grant::push("prod/*")])],
        fields: TokenFields::TokenOnly,
        ..Default::default()
    });
    assert!(src_ts.realm().starts_with("https://127.0.0.1:"));
    let src = Registry::start(auth(Auth::Token(src_ts.config()), Tls::Ca));
    let dst = Registry::start(auth(Auth::Token(dst_ts.config()), Tls::None));
    let fx = IndexSpec::oci().platforms(3).build();
    fx.seed(&src, "ns/app:v1");
    let src_mark = src_ts.mark();

    let mut src_args = src.tls_args(Side::Src);
    src_args.push("--src-creds=serviceaccount:nonprod-sa".into());
    let mut dst_args = dst.tls_args(Side::Dest);
    dst_args.push("--dest-creds=unused:prod-sa".into());
    skopeo_copy(
        true,
        &src_args,
        &dst_args,
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("prod/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "prod/app", "v1", &fx);

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
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::docker()
        .platforms(4)
        .shared_layers(&[3000, 100])
        .own_layers(&[1500])
        .uncompressed()
        .build();
    assert_eq!(fx.media_type, DOCKER_MANIFEST_LIST);
    fx.seed(&src, "ns/app:v1");
    let mark = dst.mark();
    skopeo_copy(
        true,
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
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

#[test]
fn token_registry_refuses_wrong_tokens_and_missing_rights() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![
            ("puller".into(), vec![Grant::pull("ns/app")]),
            ("pusher".into(), vec![Grant::push("ns/*")]),
        ],
        ..Default::default()
    });
    let reg = Registry::start(auth(Auth::Token(ts.config()), Tls::None));
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&reg, "ns/app:v1");
    let inspect = |creds: Option<&str>| {
        let mut c = skopeo();
        c.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some(creds) = creds {
            c.arg(format!("--creds={creds}"));
        }
        c.arg(reg.docker_ref("ns/app:v1")).run()
    };
    // Anonymous: the token server hands out an empty token, the registry refuses it.
    inspect(None).assert_failure_with(&["unauthorized", "authentication required", "denied"]);
    // A password that is no configured token: the token server says 401.
    inspect(Some("sa:not-a-token")).assert_failure_with(&["unauthorized", "401"]);
    assert!(
        ts.requests()
            .iter()
            .any(|r| r.status == 401 && r.token.is_none())
    );
    // The pull token pulls ns/app ...
    inspect(Some("sa:puller")).assert_success();
    // ... but may not push there.
    let push = |token: &str, repo: &str| {
        skopeo_copy(
            false,
            &[],
            &[
                "--dest-tls-verify=false".into(),
                format!("--dest-creds=sa:{token}"),
            ],
            &fx.dir_ref(),
            &reg.docker_ref(repo),
        )
    };
    push("puller", "ns/app:v2").assert_failure_with(&[
        "denied",
        "unauthorized",
        "authentication required",
    ]);
    assert!(reg.get_manifest("ns/app", "v2").is_none());
    // The push token may, but only under ns/.
    push("pusher", "ns/other:v1").assert_success();
    push("pusher", "elsewhere/app:v1").assert_failure_with(&[
        "denied",
        "unauthorized",
        "authentication required",
    ]);
    // A token the lab mints for another service (audience) is refused.
    let mut wrong = ts.config();
    wrong.service = "another-registry".into();
    let jwt = wrong.mint(
        "x",
        &[("ns/app".into(), vec!["pull".into()])],
        Duration::from_secs(60),
    );
    let (status, _) = reg.raw_request(
        "GET",
        "/v2/ns/app/manifests/v1",
        Some(&format!("Bearer {jwt}")),
    );
    assert_eq!(status, 401);
}

#[test]
fn token_stops_working_after_its_lifetime() {
    let lifetime = Duration::from_secs(2);
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa".into(), vec![Grant::pull("ns/*")])],
        lifetime,
        ..Default::default()
    });
    let reg = Registry::start(auth(Auth::Token(ts.config()), Tls::None));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    let issued = Instant::now();
    let (status, body) = ts.fetch(Some(("u", "sa")), &["repository:ns/app:pull"]);
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 2);
    let jwt = body["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {jwt}");
    let get = || {
        reg.raw_request("GET", "/v2/ns/app/manifests/v1", Some(&bearer))
            .0
    };
    assert_eq!(get(), 200, "fresh token refused");
    // Poll until the registry refuses it.
    loop {
        // When the request left, not when its answer came: a slow machine cannot fail this.
        let elapsed = issued.elapsed();
        let status = get();
        if status == 401 {
            // exp is whole seconds: the token is refused between lifetime - 1 s and lifetime.
            assert!(
                elapsed + Duration::from_millis(1100) >= lifetime,
                "token refused too early, after {elapsed:?}"
            );
            break;
        }
        assert_eq!(status, 200);
        assert!(
            elapsed < lifetime + Duration::from_secs(3),
            "token still accepted after {elapsed:?} (lifetime {lifetime:?}): registry leeway not compensated"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn registry_accepts_tokens_for_sixty_seconds_past_exp() {
    // The lab's lifetime compensation assumes distribution's 60 s leeway; check it against the
    // real registry: exp 55 s ago is still accepted, exp 65 s ago is not.
    let ts = TokenServer::start(TokenServerOptions::default());
    let cfg = ts.config();
    let reg = Registry::start(auth(Auth::Token(cfg.clone()), Tls::None));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let access = [("ns/app".to_string(), vec!["pull".to_string()])];
    let leeway = REGISTRY_TOKEN_LEEWAY.as_secs() as i64;
    // mint_with_times sets exp = now' + lifetime - leeway.
    let exp_55s_ago = cfg.mint_with_times("t", &access, Duration::from_secs(5), now);
    assert_eq!(jwt_claims(&exp_55s_ago)["exp"], now + 5 - leeway);
    let exp_65s_ago = cfg.mint_with_times("t", &access, Duration::from_secs(1), now - 6);
    assert_eq!(jwt_claims(&exp_65s_ago)["exp"], now - 65);
    let get = |jwt: &str| {
        reg.raw_request(
            "GET",
            "/v2/ns/app/manifests/v1",
            Some(&format!("Bearer {jwt}")),
        )
        .0
    };
    assert_eq!(get(&exp_55s_ago), 200);
    assert_eq!(get(&exp_65s_ago), 401);
}

// ---------------------------------------------------------------------------------------------
// The token server's protocol.

#[test]
fn token_server_grants_the_intersection_of_scope_and_grants() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![(
            "sa-token".into(),
            vec![Grant::pull("ns/app"), Grant::push("team/*")],
        )],
        lifetime: Duration::from_secs(120),
        ..Default::default()
    });
    let (status, body) = ts.fetch(
        Some(("anyone", "sa-token")),
        &[
            "repository:ns/app:pull,push",
            "repository:team/a/b:push,pull repository:other/x:pull",
            "registry:catalog:*",
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 120);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["token"], body["access_token"]);
    let claims = jwt_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["aud"], "lab-registry");
    assert_eq!(claims["sub"], "anyone");
    assert_eq!(claims["iss"], ts.config().issuer);
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "ns/app", "actions": ["pull"]},
            {"type": "repository", "name": "team/a/b", "actions": ["pull", "push"]},
        ])
    );
    let header: serde_json::Value = {
        use base64::Engine;
        let h = body["token"].as_str().unwrap().split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);

    // Anonymous: a token with empty access.
    let (status, body) = ts.fetch(None, &["repository:ns/app:pull"]);
    assert_eq!(status, 200);
    assert_eq!(
        jwt_claims(body["token"].as_str().unwrap())["access"],
        serde_json::json!([])
    );
    // Wrong password: 401.
    let (status, _) = ts.fetch(Some(("anyone", "nope")), &["repository:ns/app:pull"]);
    assert_eq!(status, 401);

    // OAuth2 POST, password and refresh_token grants.
    let (status, body) = ts.post_form(&[
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "sa-token"),
        ("service", "lab-registry"),
        ("scope", "repository:ns/app:pull"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    let (status, _) = ts.post_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "sa-token"),
    ]);
    assert_eq!(status, 200);
    let (status, _) = ts.post_form(&[
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "x"),
    ]);
    assert_eq!(status, 401);

    let log = ts.requests();
    assert_eq!(log.len(), 6);
    assert_eq!(
        log[0].scopes.len(),
        4,
        "space-separated scopes are split: {:?}",
        log[0].scopes
    );
    assert_eq!(log[1].user, None);
    assert_eq!(log[2].status, 401);
    assert_eq!(log[3].grant_type.as_deref(), Some("password"));
    assert_eq!(log[4].grant_type.as_deref(), Some("refresh_token"));

    // Only one of the two fields, if asked.
    for (fields, present, absent) in [
        (TokenFields::TokenOnly, "token", "access_token"),
        (TokenFields::AccessTokenOnly, "access_token", "token"),
    ] {
        let ts = TokenServer::start(TokenServerOptions {
            fields,
            ..Default::default()
        });
        let (_, body) = ts.fetch(None, &[]);
        assert!(body[present].is_string(), "{body}");
        assert!(body.get(absent).is_none(), "{body}");
    }
}

#[test]
fn skopeo_reads_access_token_only_responses() {
    // Clients must cope with OAuth2-style answers; skopeo does, so the variant is usable.
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa".into(), vec![Grant::pull("*")])],
        fields: TokenFields::AccessTokenOnly,
        ..Default::default()
    });
    let reg = Registry::start(auth(Auth::Token(ts.config()), Tls::None));
    let fx = ImageSpec::docker().layers(&[100]).build();
    fx.seed(&reg, "ns/app:v1");
    let out = skopeo()
        .args(["inspect", "--raw", "--tls-verify=false", "--creds=u:sa"])
        .arg(reg.docker_ref("ns/app:v1"))
        .run();
    out.assert_success();
    assert_eq!(out.stdout_bytes, fx.manifest);
}

// ---------------------------------------------------------------------------------------------
// The request log.

#[test]
fn request_log_shows_uploads_skips_and_mounts() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1000, 2000]).build();
    fx.seed(&src, "ns/app:v1");

    // The seeding is in src's log: blobs uploaded, then the manifest.
    let seeded = src.requests();
    assert!(
        seeded.iter().all(|r| r.user_agent.contains("skopeo")),
        "{seeded:#?}"
    );
    let puts: Vec<&LoggedRequest> = seeded
        .iter()
        .filter(|r| r.kind() == RequestKind::ManifestPut)
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        (puts[0].path.as_str(), puts[0].status),
        ("/v2/ns/app/manifests/v1", 201)
    );
    assert_eq!(puts[0].repo().as_deref(), Some("ns/app"));
    assert_eq!(puts[0].reference().as_deref(), Some("v1"));

    // First copy: every blob uploaded (config + 2 layers), then one manifest PUT, last.
    // One sandbox for all copies: skopeo's blob info cache then knows where blobs already are.
    let sb = Sandbox::new();
    let copy = |to: &str| {
        skopeo_copy_in(
            &sb,
            false,
            &src.tls_args(Side::Src),
            &dst.tls_args(Side::Dest),
            &src.docker_ref("ns/app:v1"),
            &dst.docker_ref(to),
        )
        .assert_success();
    };
    let mark = dst.mark();
    copy("prod/app:v1");
    let reqs = dst.requests_since(mark);
    let mut uploaded: Vec<String> = reqs
        .iter()
        .filter(|r| r.kind() == RequestKind::UploadFinish)
        .map(|r| {
            assert_eq!(r.status, 201, "{r:?}");
            r.query_param("digest").unwrap()
        })
        .collect();
    uploaded.sort();
    let mut expected = fx.image().blob_digests();
    expected.sort();
    assert_eq!(uploaded, expected);
    let last = reqs.last().unwrap();
    assert_eq!(last.kind(), RequestKind::ManifestPut);
    assert_eq!(
        (last.path.as_str(), last.status),
        ("/v2/prod/app/manifests/v1", 201)
    );
    assert!(reqs.iter().all(|r| !r.line.contains("lab-sentinel")));

    // Same copy again: blobs exist, nothing is uploaded.
    let mark = dst.mark();
    copy("prod/app:v1");
    let again = dst.requests_since(mark);
    assert!(
        !again.iter().any(|r| r.kind() == RequestKind::UploadFinish),
        "{again:#?}"
    );
    assert!(
        again
            .iter()
            .any(|r| r.kind() == RequestKind::BlobHead && r.status == 200)
    );

    // Into another repository of the same registry: skopeo mounts the blobs its cache knows
    // are there.
    let mark = dst.mark();
    copy("other/app:v1");
    let third = dst.requests_since(mark);
    let mounts: Vec<&LoggedRequest> = third
        .iter()
        .filter(|r| r.kind() == RequestKind::BlobMount)
        .collect();
    assert!(!mounts.is_empty(), "{third:#?}");
    for m in &mounts {
        assert_eq!(m.status, 201, "mounted, not uploaded: {m:?}");
        assert_eq!(m.query_param("from").as_deref(), Some("prod/app"));
    }
    assert_holds(&dst, "other/app", "v1", &fx);

    // A mark excludes everything before it; an empty interval is empty.
    let m = dst.mark();
    assert!(dst.requests_since(m).is_empty());
}

#[test]
fn request_log_parses_combined_log_lines() {
    let line = r#"127.0.0.1 - - [27/Nov/2025:08:53:00 +0000] "POST /v2/ns/app/blobs/uploads/?mount=sha256%3Aab&from=ns%2Fold HTTP/1.1" 201 0 "" "skopeo/1.9.3 \"quoted\"""#;
    let r = LoggedRequest::parse(line).unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v2/ns/app/blobs/uploads/");
    assert_eq!(r.query_param("mount").as_deref(), Some("sha256:ab"));
    assert_eq!(r.query_param("from").as_deref(), Some("ns/old"));
    assert_eq!(r.status, 201);
    assert_eq!(r.bytes, 0);
    assert_eq!(r.user_agent, "skopeo/1.9.3 \"quoted\"");
    assert_eq!(r.kind(), RequestKind::BlobMount);
    assert_eq!(r.repo().as_deref(), Some("ns/app"));
    assert!(LoggedRequest::parse("time=\"…\" level=info msg=\"listening\"").is_none());
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
// Fixtures.

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn fixtures_are_real_images() {
    for (format, compression) in [
        (Format::Docker, Compression::Gzip),
        (Format::Docker, Compression::None),
        (Format::Oci, Compression::Gzip),
        (Format::Oci, Compression::None),
    ] {
        let fx = ImageSpec::new(format)
            .compression(compression)
            .layers(&[10_000, 0, 333])
            .label("app", "demo")
            .build();
        let img = fx.image();
        assert_eq!(fx.digest, sha256_digest(&fx.manifest));
        assert_eq!(img.digest, fx.digest);
        let manifest: serde_json::Value = serde_json::from_slice(&fx.manifest).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], fx.media_type.as_str());
        assert_eq!(manifest["config"]["digest"], img.config_digest.as_str());
        assert_eq!(manifest["config"]["size"], img.config.len());
        assert_eq!(
            sha256_digest(&fx.blob(&img.config_digest)),
            img.config_digest
        );
        let config: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Labels"]["app"], "demo");
        assert!(config["config"]["Env"].as_array().unwrap().len() >= 2);
        assert_eq!(config["history"].as_array().unwrap().len(), 3);
        for (i, layer) in img.layers.iter().enumerate() {
            let blob = fx.blob(&layer.digest);
            assert_eq!(sha256_digest(&blob), layer.digest);
            assert_eq!(blob.len() as u64, layer.size);
            assert_eq!(manifest["layers"][i]["digest"], layer.digest.as_str());
            assert_eq!(
                manifest["layers"][i]["mediaType"],
                layer.media_type.as_str()
            );
            let tar_bytes = match compression {
                Compression::Gzip => {
                    assert_eq!(&blob[..2], &[0x1f, 0x8b]);
                    // Random content does not compress.
                    assert!(blob.len() >= layer.payload_size);
                    gunzip(&blob)
                }
                Compression::None => blob,
            };
            assert_eq!(sha256_digest(&tar_bytes), layer.diff_id);
            assert_eq!(config["rootfs"]["diff_ids"][i], layer.diff_id.as_str());
            let mut archive = tar::Archive::new(&tar_bytes[..]);
            let sizes: Vec<u64> = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap().size())
                .collect();
            assert_eq!(sizes, vec![0, layer.payload_size as u64]);
        }
    }
    // The same seed gives the same image; another seed another one.
    let a = ImageSpec::oci().seed(42).build();
    let b = ImageSpec::oci().seed(42).build();
    let c = ImageSpec::oci().seed(43).build();
    assert_eq!(a.digest, b.digest);
    assert_ne!(a.digest, c.digest);
    assert_ne!(a.image().layers[0].digest, a.image().layers[1].digest);
}

#[test]
fn index_fixtures_share_layers_across_platforms() {
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64", "linux/arm/v7"])
        .shared_layers(&[1000, 2000])
        .own_layers(&[500])
        .build();
    assert!(fx.is_index());
    let index: serde_json::Value = serde_json::from_slice(&fx.manifest).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["platform"]["variant"], "v7");
    assert_eq!(fx.child_digests().len(), 3);
    for (entry, img) in entries.iter().zip(&fx.images) {
        assert_eq!(entry["digest"], img.digest.as_str());
        assert_eq!(entry["size"], img.manifest.len());
        assert_eq!(img.digest, sha256_digest(&img.manifest));
        assert_eq!(img.layers.len(), 3);
    }
    let amd = fx.platform_image("linux/amd64");
    let arm = fx.platform_image("linux/arm64");
    assert_eq!(amd.layers[..2], arm.layers[..2], "shared layers");
    assert_ne!(amd.layers[2].digest, arm.layers[2].digest, "own layers");
    assert_ne!(amd.config_digest, arm.config_digest);
    let arm_config: serde_json::Value = serde_json::from_slice(&arm.config).unwrap();
    assert_eq!(arm_config["architecture"], "arm64");
    // 2 shared + 3 own layers + 3 configs.
    assert_eq!(fx.blobs().len(), 8);
}

#[test]
fn seeding_works_against_every_variant_and_skopeo_agrees_with_the_lab() {
    let ts = TokenServer::start(TokenServerOptions::default());
    for opts in [
        tls(Tls::Ca),
        auth(Auth::Basic(vec![]), Tls::ClientCert),
        auth(Auth::Token(ts.config()), Tls::Ca),
    ] {
        let reg = Registry::start(opts.clone());
        let fx = IndexSpec::docker().platforms(2).build();
        fx.seed(&reg, "ns/app:v1");
        // skopeo's view of the bytes matches the lab's HTTP client's.
        let out = skopeo()
            .args(["inspect", "--raw"])
            .args(reg.admin_args(Side::Plain, "ns/app"))
            .arg(reg.docker_ref("ns/app:v1"))
            .run();
        out.assert_success();
        assert_eq!(out.stdout_bytes, fx.manifest, "{opts:?}");
        assert_eq!(reg.tags("ns/app"), vec!["v1".to_string()]);
        let layer = &fx.images[1].layers[0];
        assert_eq!(
            reg.get_blob("ns/app", &layer.digest).unwrap(),
            fx.blob(&layer.digest)
        );
    }
    // The lab's seeding does not go through the token server.
    assert!(ts.requests().is_empty());
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
