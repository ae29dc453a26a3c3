//! `ferry copy` against the lab's real registries, compared with skopeo where they share
//! behaviour. Every test checks the destination through the registry API (not ferry's word),
//! and where it matters, the requests the registry saw.

use crate::support::fixtures::*;
use crate::support::*;

fn opts(tls: Tls, auth: Auth) -> RegistryOptions {
    RegistryOptions {
        tls,
        auth,
        ..Default::default()
    }
}

/// `ferry copy -q <src args> <dst args> SRC DST` with extra flags.
fn ferry_copy(
    extra: &[&str],
    src_args: &[String],
    dst_args: &[String],
    src: &str,
    dst: &str,
) -> Output {
    ferry()
        .arg("copy")
        .args(extra)
        .args(src_args)
        .args(dst_args)
        .arg(src)
        .arg(dst)
        .run()
}

/// The destination holds exactly the fixture's manifest (bytes and digest) and every blob of
/// every image the fixture has.
fn assert_holds(reg: &Registry, repo: &str, tag: &str, fx: &Fixture) {
    let m = reg
        .get_manifest(repo, tag)
        .unwrap_or_else(|| panic!("{repo}:{tag} missing on {}", reg.host()));
    assert_eq!(m.digest, fx.digest, "digest of {repo}:{tag}");
    assert_eq!(m.bytes, fx.manifest, "manifest bytes of {repo}:{tag}");
    assert_eq!(m.media_type, fx.media_type);
    for img in &fx.images {
        if fx.is_index() {
            assert_eq!(
                reg.get_manifest(repo, &img.digest)
                    .expect("child manifest")
                    .bytes,
                img.manifest
            );
        }
        for b in img.blob_digests() {
            assert!(reg.blob_exists(repo, &b), "blob {b} missing in {repo}");
            assert_eq!(
                sha256_digest(&reg.get_blob(repo, &b).expect("blob")),
                b,
                "blob bytes of {b}"
            );
        }
    }
}

fn count(reqs: &[LoggedRequest], kind: RequestKind) -> usize {
    reqs.iter().filter(|r| r.kind() == kind).count()
}

// ---------------------------------------------------------------------------------------------
// Transport and authentication variants; the destination digest equals the source's.

#[test]
fn copies_over_plain_http_like_skopeo() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[3_000, 2_500_000, 10]).build();
    fx.seed(&src, "ns/app:v1");
    let out = ferry_copy(
        &[],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    );
    out.assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
    // skopeo makes the same copy to another repository: same digest.
    skopeo()
        .args(["copy", "--preserve-digests"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("oracle/app:v1"))
        .run()
        .assert_success();
    assert_eq!(
        dst.manifest_digest("oracle/app", "v1"),
        dst.manifest_digest("ns/app", "v1")
    );
    // The tag was written last: after every blob upload and child manifest.
    let reqs: Vec<LoggedRequest> = dst
        .requests()
        .into_iter()
        .filter(|r| r.repo().as_deref() == Some("ns/app"))
        .collect();
    let last = reqs.last().expect("requests");
    assert_eq!(
        (last.kind(), last.reference().as_deref()),
        (RequestKind::ManifestPut, Some("v1")),
        "{reqs:#?}"
    );
    assert_eq!(count(&reqs, RequestKind::ManifestPut), 1);
    assert_eq!(count(&reqs, RequestKind::UploadFinish), fx.blobs().len());
    // The repository was new (its tag list answered NAME_UNKNOWN): no blob was looked for.
    assert_eq!(count(&reqs, RequestKind::BlobHead), 0, "{reqs:#?}");
    assert_eq!(count(&reqs, RequestKind::TagsList), 1, "{reqs:#?}");
    // stdout carries the result line only; progress went to stderr.
    assert!(
        out.stdout.starts_with("Copied sha256:"),
        "stdout: {}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 1, "stdout: {}", out.stdout);
    assert!(
        out.stderr.contains("Copying blob"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn copies_over_https_with_cert_dirs_docker_uncompressed_keeps_digests() {
    let src = Registry::start(opts(Tls::Ca, Auth::None));
    let dst = Registry::start(opts(Tls::Ca, Auth::None));
    let fx = ImageSpec::docker()
        .uncompressed()
        .layers(&[40_000, 1_500_000])
        .build();
    assert_eq!(fx.image().layers[0].media_type, DOCKER_LAYER_TAR);
    fx.seed(&src, "ns/app:v1");
    ferry_copy(
        &["-q"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
}

#[test]
fn copies_with_a_client_certificate_and_fails_without_one() {
    let src = Registry::start(opts(Tls::ClientCert, Auth::None));
    let dst = Registry::start(opts(Tls::ClientCert, Auth::None));
    let fx = ImageSpec::oci().layers(&[10_000]).build();
    fx.seed(&src, "ns/app:v1");
    ferry_copy(
        &["-q"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
    let ca_only = format!("--dest-cert-dir={}", dst.ca_only_cert_dir().display());
    let out = ferry_copy(
        &["-q", "--retry-times=0"],
        &src.tls_args(Side::Src),
        &[ca_only],
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/other:v1"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(dst.manifest_digest("ns/other", "v1"), None);
}

#[test]
fn copies_with_basic_auth_and_refuses_a_wrong_password() {
    let users = vec![("alice".to_string(), "s3cret:with:colons".to_string())];
    let src = Registry::start(opts(Tls::Ca, Auth::Basic(users.clone())));
    let dst = Registry::start(opts(Tls::Ca, Auth::Basic(users)));
    let fx = ImageSpec::docker().layers(&[20_000, 1_200_000]).build();
    fx.seed(&src, "ns/app:v1");
    // --creds splits at the first colon: the password keeps its colons.
    let mut s = src.tls_args(Side::Src);
    s.push("--src-creds=alice:s3cret:with:colons".into());
    let mut d = dst.tls_args(Side::Dest);
    d.extend([
        "--dest-username=alice".to_string(),
        "--dest-password=s3cret:with:colons".to_string(),
    ]);
    ferry_copy(
        &["-q"],
        &s,
        &d,
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);

    let mut bad = dst.tls_args(Side::Dest);
    bad.push("--dest-creds=alice:wrong".into());
    let out = ferry_copy(
        &["-q"],
        &s,
        &bad,
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v2"),
    );
    assert_eq!(out.code, Some(1));
    let line = out.stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains(&dst.host()) && line.contains("401"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("wrong"),
        "password leaked: {}",
        out.stderr
    );
}

/// Two OpenShift-like registries behind token servers, each with its own service-account
/// token: the source token may only pull, the destination token may push.
#[test]
fn copies_with_two_different_tokens_like_openshift() {
    let ts_src = TokenServer::start(TokenServerOptions {
        tokens: vec![("nonprod-sa-token".into(), vec![Grant::pull("team/*")])],
        // An HTTPS registry's realm is HTTPS too: ferry sends no credentials to a plain
        // http:// realm of an HTTPS registry.
        tls: true,
        ..Default::default()
    });
    let ts_dst = TokenServer::start(TokenServerOptions {
        tokens: vec![("prod-sa-token".into(), vec![Grant::push("prod/*")])],
        tls: true,
        ..Default::default()
    });
    let src = Registry::start(opts(Tls::Ca, Auth::Token(ts_src.config())));
    let dst = Registry::start(opts(Tls::Ca, Auth::Token(ts_dst.config())));
    let fx = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[50_000])
        .own_layers(&[1_100_000])
        .build();
    fx.seed(&src, "team/app:abc123");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "prod-sa-token\n").unwrap();
    let mut s = src.tls_args(Side::Src);
    s.push("--src-creds=serviceaccount:nonprod-sa-token".into());
    let mut d = dst.tls_args(Side::Dest);
    d.push("--dest-username=serviceaccount".to_string());
    d.push(format!("--dest-password-file={}", token_file.display()));
    ferry_copy(
        &["-q"],
        &s,
        &d,
        &src.docker_ref("team/app:abc123"),
        &dst.docker_ref("prod/app:abc123"),
    )
    .assert_success();
    assert_holds(&dst, "prod/app", "abc123", &fx);
    // One token per registry served the whole copy.
    let src_tokens: Vec<_> = ts_src
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    let dst_tokens: Vec<_> = ts_dst
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(src_tokens.len(), 1, "{src_tokens:?}");
    assert_eq!(dst_tokens.len(), 1, "{dst_tokens:?}");
    assert_eq!(src_tokens[0].user.as_deref(), Some("serviceaccount"));

    // The source token cannot push: used as destination, it is refused with a clear line.
    let mut wrong = dst.tls_args(Side::Dest);
    wrong.push("--dest-creds=serviceaccount:nonprod-sa-token".into());
    let out = ferry_copy(
        &["-q"],
        &s,
        &wrong,
        &src.docker_ref("team/app:abc123"),
        &dst.docker_ref("prod/app:other"),
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("authentication to") && out.stderr.contains(&dst.host()),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("nonprod-sa-token"),
        "token leaked: {}",
        out.stderr
    );
    assert_eq!(dst.manifest_digest("prod/app", "other"), None);
}

#[test]
fn credentials_come_from_flag_then_file_then_environment() {
    let users = vec![("u".to_string(), "right".to_string())];
    let src = Registry::start(opts(Tls::None, Auth::Basic(users.clone())));
    let dst = Registry::start(opts(Tls::None, Auth::Basic(users)));
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&src, "ns/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "u:right\n").unwrap();
    std::fs::write(&bad, "u:wrong\n").unwrap();
    let run = |flag: Option<&str>, file: Option<&std::path::Path>, env: Option<&str>, tag: &str| {
        let mut t = ferry();
        t.args(["copy", "-q", "--retry-times=0"])
            .args(src.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest));
        t.arg("--src-creds=u:right");
        if let Some(f) = flag {
            t.arg(format!("--dest-creds={f}"));
        }
        if let Some(f) = file {
            t.arg(format!("--dest-creds-file={}", f.display()));
        }
        if let Some(e) = env {
            t.env("FERRY_DEST_CREDS", e);
        }
        t.arg(src.docker_ref("ns/app:v1"))
            .arg(dst.docker_ref(&format!("ns/app:{tag}")))
            .run()
    };
    assert_eq!(run(None, None, Some("u:right"), "env").code, Some(0));
    assert_eq!(
        run(None, Some(&good), Some("u:wrong"), "file-over-env").code,
        Some(0)
    );
    assert_eq!(
        run(
            Some("u:right"),
            Some(&bad),
            Some("u:wrong"),
            "flag-over-file"
        )
        .code,
        Some(0)
    );
    assert_eq!(
        run(None, Some(&bad), Some("u:right"), "bad-file").code,
        Some(1)
    );
    assert_eq!(run(None, None, None, "none").code, Some(1));
    for tag in ["env", "file-over-env", "flag-over-file"] {
        assert_eq!(
            dst.manifest_digest("ns/app", tag).as_deref(),
            Some(fx.digest.as_str()),
            "{tag}"
        );
    }
}

#[test]
fn credentials_come_from_the_auth_file_like_skopeo() {
    let users = vec![("bob".to_string(), "pw".to_string())];
    let src = Registry::start(opts(Tls::None, Auth::Basic(users.clone())));
    let dst = Registry::start(opts(Tls::None, Auth::Basic(users)));
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&src, "ns/app:v1");
    let sb = Sandbox::new();
    let auth = format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}},"{}/ns":{{"auth":"{}"}}}}}}"#,
        src.host(),
        b64("bob:pw"),
        dst.host(),
        b64("bob:pw"),
    );
    let path = sb.runtime_dir().join("containers/auth.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, auth).unwrap();
    sb.ferry()
        .args(["copy", "-q"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
    assert_eq!(
        dst.manifest_digest("ns/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    // The same auth file serves skopeo.
    sb.skopeo()
        .args(["copy", "--preserve-digests"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:oracle"))
        .run()
        .assert_success();
}

/// An auth-file entry with an `identitytoken` (an OAuth2 refresh token, as `az acr login`
/// writes it): both tools exchange it for tokens with an OAuth2 `POST`
/// (`grant_type=refresh_token`), not with the entry's `auth` password.
#[test]
fn identity_tokens_in_the_auth_file_are_used_with_oauth2_like_skopeo() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("refresh-7d1c".into(), vec![Grant::all("*")])],
        ..Default::default()
    });
    let src = Registry::start(opts(Tls::None, Auth::Token(ts.config())));
    let dst = Registry::start(opts(Tls::None, Auth::Token(ts.config())));
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&src, "ns/app:v1");
    let sb = Sandbox::new();
    let write_auth = |identity: &str| {
        let entry = format!(
            r#"{{"auth":"{}","identitytoken":"{identity}"}}"#,
            b64("00000000-0000-0000-0000-000000000000:not-a-token")
        );
        let path = sb.runtime_dir().join("containers/auth.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"{}":{entry},"{}":{entry}}}}}"#,
                src.host(),
                dst.host()
            ),
        )
        .unwrap();
    };
    write_auth("refresh-7d1c");
    let copy = |tool: &mut Tool, tag: &str, debug: bool| {
        if debug {
            tool.arg("--debug");
        }
        tool.arg("copy")
            .args(src.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest))
            .arg(src.docker_ref("ns/app:v1"))
            .arg(dst.docker_ref(&format!("ns/app:{tag}")))
            .run()
    };
    for (mut tool, tag) in [(sb.ferry(), "ferry"), (sb.skopeo(), "skopeo")] {
        let mark = ts.mark();
        let out = copy(&mut tool, tag, tag == "ferry");
        out.assert_success();
        assert_eq!(
            dst.manifest_digest("ns/app", tag).as_deref(),
            Some(fx.digest.as_str())
        );
        let reqs = ts.requests_since(mark);
        assert!(!reqs.is_empty());
        for r in &reqs {
            assert_eq!(
                (r.method.as_str(), r.grant_type.as_deref(), r.status),
                ("POST", Some("refresh_token"), 200),
                "{tag}: {reqs:#?}"
            );
            assert_eq!(r.token.as_deref(), Some("refresh-7d1c"));
        }
        if tag == "ferry" {
            assert!(!out.stderr.contains("refresh-7d1c"), "{out}");
        }
    }
    // A refresh token the server does not know: refused, one clear line, exit 1.
    write_auth("revoked");
    let out = copy(&mut sb.ferry(), "revoked", false);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("the token endpoint refused the credentials (HTTP 401)"),
        "{out}"
    );
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---------------------------------------------------------------------------------------------
// Multi-arch.

#[test]
fn multi_arch_all_keeps_the_index_digest_as_skopeo_all_does() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::docker()
        .platforms(3)
        .shared_layers(&[30_000])
        .own_layers(&[20_000])
        .build();
    fx.seed(&src, "ns/app:v1");
    // Invoked as ferry, the default is the whole index.
    ferry_copy(
        &["-q"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_holds(&dst, "ns/app", "v1", &fx);
    // Children by digest first, the index to the tag last.
    let puts: Vec<String> = dst
        .requests()
        .into_iter()
        .filter(|r| r.kind() == RequestKind::ManifestPut)
        .filter_map(|r| r.reference())
        .collect();
    let mut children = fx.child_digests();
    children.sort();
    let mut first: Vec<String> = puts[..puts.len() - 1].to_vec();
    first.sort();
    assert_eq!(first, children, "{puts:?}");
    assert_eq!(puts.last().map(String::as_str), Some("v1"));
    skopeo()
        .args(["copy", "--all", "--preserve-digests"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("oracle/app:v1"))
        .run()
        .assert_success();
    assert_eq!(
        dst.manifest_digest("oracle/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    // The shared layer was uploaded once.
    let shared = &fx.images[0].layers[0].digest;
    let dst2 = Registry::start(RegistryOptions::default());
    ferry_copy(
        &["-q"],
        &src.tls_args(Side::Src),
        &dst2.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst2.docker_ref("ns/app:v1"),
    )
    .assert_success();
    let puts: Vec<_> = dst2
        .requests()
        .into_iter()
        .filter(|r| r.kind() == RequestKind::UploadFinish)
        .collect();
    assert_eq!(
        puts.iter()
            .filter(|r| r.query_param("digest").as_deref() == Some(shared.as_str()))
            .count(),
        1
    );
}

#[test]
fn multi_arch_system_picks_the_same_image_as_skopeo() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64", "linux/arm/v7"])
        .own_layers(&[10_000])
        .build();
    fx.seed(&src, "ns/app:v1");
    for (arch, variant) in [("arm64", None), ("arm", Some("v7")), ("amd64", None)] {
        let mut extra = vec![
            "-q".to_string(),
            format!("--override-arch={arch}"),
            "--multi-arch=system".into(),
        ];
        let mut sk = skopeo();
        sk.arg(format!("--override-arch={arch}"));
        if let Some(v) = variant {
            extra.push(format!("--override-variant={v}"));
            sk.arg(format!("--override-variant={v}"));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        ferry_copy(
            &extra,
            &src.tls_args(Side::Src),
            &dst.tls_args(Side::Dest),
            &src.docker_ref("ns/app:v1"),
            &dst.docker_ref(&format!("ferry/app:{arch}")),
        )
        .assert_success();
        sk.args(["copy", "--preserve-digests"])
            .args(src.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest))
            .arg(src.docker_ref("ns/app:v1"))
            .arg(dst.docker_ref(&format!("oracle/app:{arch}")))
            .run()
            .assert_success();
        let want = match variant {
            Some(v) => fx
                .platform_image(&format!("linux/{arch}/{v}"))
                .digest
                .clone(),
            None => fx.platform_image(&format!("linux/{arch}")).digest.clone(),
        };
        assert_eq!(
            dst.manifest_digest("ferry/app", arch).as_deref(),
            Some(want.as_str()),
            "{arch}"
        );
        assert_eq!(
            dst.manifest_digest("oracle/app", arch),
            dst.manifest_digest("ferry/app", arch),
            "{arch}"
        );
    }
}

#[test]
fn invoked_as_skopeo_copies_one_platform_by_default() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::oci()
        .platform_list(&["linux/arm64", "linux/amd64"])
        .own_layers(&[5_000])
        .build();
    fx.seed(&src, "ns/app:v1");
    let run = |tool: Tool, repo: &str| {
        let mut t = tool;
        t.args(["copy", "-q", "--override-arch=amd64", "--override-os=linux"])
            .args(src.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest))
            .arg(src.docker_ref("ns/app:v1"))
            .arg(dst.docker_ref(&format!("{repo}:v1")))
            .run()
            .assert_success();
    };
    run(ferry_as_skopeo(), "as-skopeo/app");
    run(skopeo(), "oracle/app");
    run(ferry(), "as-ferry/app");
    let amd64 = fx.platform_image("linux/amd64").digest.clone();
    assert_eq!(
        dst.manifest_digest("as-skopeo/app", "v1").as_deref(),
        Some(amd64.as_str())
    );
    assert_eq!(
        dst.manifest_digest("oracle/app", "v1").as_deref(),
        Some(amd64.as_str())
    );
    assert_eq!(
        dst.manifest_digest("as-ferry/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
}

#[test]
fn multi_arch_index_only_copies_the_index_like_skopeo() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::oci().platforms(2).own_layers(&[5_000]).build();
    fx.seed(&src, "ns/app:v1");
    // The children are already at the destination (another tag of the same repository).
    ferry_copy(
        &["-q"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:base"),
    )
    .assert_success();
    let m = dst.mark();
    ferry_copy(
        &["-q", "--multi-arch=index-only"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:ferry"),
    )
    .assert_success();
    let reqs = dst.requests_since(m);
    assert_eq!(count(&reqs, RequestKind::ManifestPut), 1, "{reqs:#?}");
    assert_eq!(
        count(&reqs, RequestKind::UploadStart) + count(&reqs, RequestKind::BlobMount),
        0
    );
    skopeo()
        .args(["copy", "--multi-arch=index-only", "--preserve-digests"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:oracle"))
        .run()
        .assert_success();
    assert_eq!(
        dst.manifest_digest("ns/app", "ferry").as_deref(),
        Some(fx.digest.as_str())
    );
    assert_eq!(
        dst.manifest_digest("ns/app", "oracle").as_deref(),
        Some(fx.digest.as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// Doing less: mounts, skipped blobs, already-present images.

#[test]
fn same_registry_copy_mounts_every_layer_and_uploads_nothing() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![(
            "sa".into(),
            vec![Grant::pull("dev/*"), Grant::push("prod/*")],
        )],
        tls: true,
        ..Default::default()
    });
    let reg = Registry::start(opts(Tls::Ca, Auth::Token(ts.config())));
    let fx = ImageSpec::oci()
        .layers(&[10_000, 2_000_000, 30_000])
        .build();
    fx.seed(&reg, "dev/app:v1");
    let m = reg.mark();
    let mut s = reg.tls_args(Side::Src);
    s.push("--src-creds=x:sa".into());
    let mut d = reg.tls_args(Side::Dest);
    d.push("--dest-creds=x:sa".into());
    ferry_copy(
        &["-q"],
        &s,
        &d,
        &reg.docker_ref("dev/app:v1"),
        &reg.docker_ref("prod/app:v1"),
    )
    .assert_success();
    assert_holds(&reg, "prod/app", "v1", &fx);
    let reqs = reg.requests_since(m);
    let mounts: Vec<_> = reqs
        .iter()
        .filter(|r| r.kind() == RequestKind::BlobMount)
        .collect();
    assert_eq!(mounts.len(), fx.blobs().len(), "{reqs:#?}");
    assert!(mounts.iter().all(|r| r.status == 201), "{mounts:#?}");
    assert_eq!(
        count(&reqs, RequestKind::UploadChunk) + count(&reqs, RequestKind::UploadFinish),
        0
    );
    assert_eq!(count(&reqs, RequestKind::BlobGet), 0, "no blob was read");
}

#[test]
fn blobs_the_destination_has_are_skipped() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci()
        .layers(&[10_000, 20_000, 1_500_000])
        .build();
    fx.seed(&src, "ns/app:v1");
    fx.seed(&dst, "ns/app:old");
    let m = src.mark();
    let md = dst.mark();
    let report = tempfile::NamedTempFile::new().unwrap();
    ferry_copy(
        &["-q", "--report", report.path().to_str().unwrap()],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    assert_eq!(count(&src.requests_since(m), RequestKind::BlobGet), 0);
    let reqs = dst.requests_since(md);
    assert_eq!(count(&reqs, RequestKind::UploadStart), 0, "{reqs:#?}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    assert_eq!(r["blobs"]["skipped"], fx.blobs().len());
    assert_eq!(r["bytes"]["copied"], 0);
    assert_eq!(r["digest"], fx.digest.as_str());
}

#[test]
fn a_second_copy_costs_one_manifest_request_per_side() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("t".into(), vec![Grant::push("*")])],
        tls: true,
        ..Default::default()
    });
    let src = Registry::start(opts(Tls::Ca, Auth::Token(ts.config())));
    let dst = Registry::start(opts(Tls::Ca, Auth::Token(ts.config())));
    let fx = IndexSpec::oci().platforms(2).own_layers(&[5_000]).build();
    fx.seed(&src, "ns/app:v1");
    let mut s = src.tls_args(Side::Src);
    s.push("--src-creds=a:t".into());
    let mut d = dst.tls_args(Side::Dest);
    d.push("--dest-creds=a:t".into());
    ferry_copy(
        &["-q"],
        &s,
        &d,
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    let not_ping = |r: &LoggedRequest| r.kind() != RequestKind::Ping;
    let again = |extra: &[&str]| {
        let (ms, md) = (src.mark(), dst.mark());
        let out = ferry_copy(
            extra,
            &s,
            &d,
            &src.docker_ref("ns/app:v1"),
            &dst.docker_ref("ns/app:v1"),
        );
        out.assert_success();
        assert!(out.stdout.contains("already present"), "{}", out.stdout);
        let src_reqs: Vec<_> = src
            .requests_since(ms)
            .into_iter()
            .filter(not_ping)
            .collect();
        let dst_reqs: Vec<_> = dst
            .requests_since(md)
            .into_iter()
            .filter(not_ping)
            .collect();
        (src_reqs, dst_reqs)
    };
    let (src_reqs, dst_reqs) = again(&["--referrers=none"]);
    assert_eq!(src_reqs.len(), 1, "{src_reqs:#?}");
    assert_eq!(src_reqs[0].kind(), RequestKind::ManifestGet);
    assert_eq!(dst_reqs.len(), 1, "{dst_reqs:#?}");
    assert_eq!(dst_reqs[0].kind(), RequestKind::ManifestHead);
    // By default ferry also checks that nothing attached to the image (or its children) is
    // missing: one tag list and one referrers request (this registry has no referrers API)
    // at the source; with nothing attached, nothing more at the destination.
    let (src_reqs, dst_reqs) = again(&[]);
    let kinds: Vec<_> = src_reqs.iter().map(|r| r.kind()).collect();
    assert_eq!(
        kinds,
        [
            RequestKind::ManifestGet,
            RequestKind::TagsList,
            RequestKind::Other
        ],
        "{src_reqs:#?}"
    );
    assert!(src_reqs[2].path.contains("/referrers/"));
    assert_eq!(dst_reqs.len(), 1, "{dst_reqs:#?}");
}

// ---------------------------------------------------------------------------------------------
// Failures: what exits 1, what exits 2, and the tag never moves on failure.

#[test]
fn a_missing_image_exits_2_and_names_it() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&src, "ns/app:v1");
    let out = ferry_copy(
        &[],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:nope"),
        &dst.docker_ref("ns/app:v1"),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let line = out.stderr.trim_end().lines().last().unwrap();
    assert!(
        line.contains("nope") && line.contains(&src.host()) && line.contains("MANIFEST_UNKNOWN"),
        "{line}"
    );
    // Current skopeo exits 2 for a missing image; Debian's 1.9.3 predates that and exits 1.
    let sk = skopeo()
        .arg("copy")
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:nope"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    assert_ne!(sk.code, Some(0));
    // A repository that does not exist is also "not found".
    let out = ferry_copy(
        &[],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("nothing/here:v1"),
        &dst.docker_ref("ns/app:v1"),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn a_destination_that_refuses_uploads_leaves_the_tag_where_it_was() {
    let src = Registry::start(RegistryOptions::default());
    let mut dst = Registry::start(RegistryOptions::default());
    let old = ImageSpec::oci().layers(&[1_000]).build();
    let new = ImageSpec::oci().layers(&[2_000, 1_300_000]).build();
    old.seed(&dst, "ns/app:v1");
    new.seed(&src, "ns/app:v1");
    dst.restart(|o| o.read_only = true);
    let out = ferry_copy(
        &["--retry-times=1", "--retry-delay=10ms"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.lines().last().unwrap().contains(&dst.host()),
        "{}",
        out.stderr
    );
    assert_eq!(
        dst.manifest_digest("ns/app", "v1").as_deref(),
        Some(old.digest.as_str())
    );
    assert_eq!(count(&dst.requests(), RequestKind::ManifestPut), 0);
}

#[test]
fn https_without_the_ca_is_refused_with_a_hint() {
    let src = Registry::start(opts(Tls::Ca, Auth::None));
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&src, "ns/app:v1");
    let out = ferry_copy(
        &["--retry-times=0"],
        &[],
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    );
    assert_eq!(out.code, Some(1));
    // The hint names the side's own flags.
    assert!(
        out.stderr.contains("--src-cert-dir") && out.stderr.contains("--src-tls-verify=false"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_input_is_one_clear_line_and_exit_1() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "copy",
                "docker://a/b:c@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "docker://x/y",
            ],
            "tag and a digest",
        ),
        (
            &["copy", "docker://Example.com/UPPER/case", "docker://x/y"],
            "lowercase",
        ),
        (
            &["copy", "docker-daemon:busybox:latest", "docker://x/y"],
            "not supported yet",
        ),
        (&["copy", "busybox", "docker://x/y"], "transport"),
        (
            &[
                "copy",
                "--sign-by-sigstore=p.yaml",
                "docker://a/b",
                "docker://x/y",
            ],
            "--sign-by-sigstore (keyless signing with Fulcio and Rekor needs the network; sign with --sign-by-sigstore-private-key) is not supported yet",
        ),
        (
            &["copy", "--format=v2s1", "docker://a/b", "docker://x/y"],
            "--format",
        ),
        (
            &[
                "copy",
                "--encryption-key=jwe:/k",
                "docker://a/b",
                "docker://x/y",
            ],
            "not supported yet",
        ),
        (
            &["copy", "--multi-arch=some", "docker://a/b", "docker://x/y"],
            "multi-arch",
        ),
        (
            &[
                "copy",
                "--src-tls-verify=maybe",
                "docker://a/b",
                "docker://x/y",
            ],
            "invalid boolean",
        ),
        (
            &[
                "copy",
                "--src-creds=a:b",
                "--src-registry-token=t",
                "docker://a/b",
                "docker://x/y",
            ],
            "cannot be used together",
        ),
        (&["copy", "docker://a/b"], "DESTINATION-IMAGE"),
        (
            &["copy", "docker://127.0.0.1:99999/a", "docker://x/y"],
            "out of range",
        ),
    ];
    for (args, needle) in cases {
        let out = ferry().args(*args).arg("--insecure-policy").run();
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains("panicked") && !out.stderr.contains("backtrace"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn the_trust_policy_is_read_like_skopeo_reads_it() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&src, "ns/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let accept = write(
        "accept.json",
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#.into(),
    );
    let signed = write(
        "signed.json",
        format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],"transports":{{"docker":{{"{}/ns":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}}]}}}}}}"#,
            src.host()
        ),
    );
    let reject = write("reject.json", r#"{"default":[{"type":"reject"}]}"#.into());
    let run = |policy: &std::path::Path, tag: &str| {
        ferry()
            .args(["copy", "-q", "--policy"])
            .arg(policy)
            .args(src.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest))
            .arg(src.docker_ref("ns/app:v1"))
            .arg(dst.docker_ref(&format!("ns/app:{tag}")))
            .run()
    };
    run(&accept, "a").assert_success();
    // A signature is required and the image has none (the key file is not even read then):
    // refused, naming the requirement (tests/it/verify_copy.rs has the signed cases).
    let out = run(&signed, "s");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("Source image rejected: A signature was required, but no signature exists")
            && out.stderr.contains("requirement 1 (signedBy)"),
        "{}",
        out.stderr
    );
    let out = run(&reject, "r");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("rejected"), "{}", out.stderr);
    assert_eq!(dst.manifest_digest("ns/app", "s"), None);
    assert_eq!(dst.manifest_digest("ns/app", "r"), None);
    // No policy file at all (the sandbox's HOME has none; /etc/containers may): CONTAINERS_POLICY_JSON
    // pointing nowhere is an error unless --insecure-policy.
    let out = ferry()
        .env("CONTAINERS_POLICY_JSON", dir.path().join("missing.json"))
        .args(["copy", "-q"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:m"))
        .run();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("missing.json"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Outputs: digest file, report, secrets.

#[test]
fn digestfile_matches_skopeos_byte_for_byte() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::docker().layers(&[1_000]).build();
    fx.seed(&src, "ns/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let (f, s) = (
        dir.path().join("ferry.digest"),
        dir.path().join("skopeo.digest"),
    );
    ferry_copy(
        &["-q", "--digestfile", f.to_str().unwrap()],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("a/app:v1"),
    )
    .assert_success();
    skopeo()
        .args(["copy", "--preserve-digests", "--digestfile"])
        .arg(&s)
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("b/app:v1"))
        .run()
        .assert_success();
    assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(&s).unwrap());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), fx.digest);
}

#[test]
fn debug_output_never_shows_secrets() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("Sup3rSecretSAToken".into(), vec![Grant::push("*")])],
        tls: true,
        ..Default::default()
    });
    let src = Registry::start(opts(Tls::Ca, Auth::Token(ts.config())));
    let dst = Registry::start(opts(
        Tls::Ca,
        Auth::Basic(vec![("u".into(), "Pa55wordXYZ".into())]),
    ));
    let fx = ImageSpec::oci().layers(&[1_000, 1_100_000]).build();
    fx.seed(&src, "ns/app:v1");
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = ferry()
        .args([
            "--debug",
            "copy",
            "--report",
            report.path().to_str().unwrap(),
        ])
        .env("FERRY_SRC_CREDS", "sa:Sup3rSecretSAToken")
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg("--dest-creds=u:Pa55wordXYZ")
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    out.assert_success();
    let jwt = ts.fetch_jwt(
        Some(("sa", "Sup3rSecretSAToken")),
        &["repository:ns/app:pull"],
    );
    let all = format!(
        "{}{}{}",
        out.stdout,
        out.stderr,
        std::fs::read_to_string(report.path()).unwrap()
    );
    assert!(all.contains("GET"), "debug output expected: {}", out.stderr);
    for secret in [
        "Sup3rSecretSAToken",
        "Pa55wordXYZ",
        &b64("u:Pa55wordXYZ"),
        &b64("sa:Sup3rSecretSAToken"),
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    // A JWT issued by the server starts with its header; none may show.
    let jwt_head = jwt.split('.').next().unwrap();
    assert!(!all.contains(&format!("{jwt_head}.")), "a token leaked");
}

#[test]
fn the_report_documents_the_copy() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[10_000, 1_200_000]).build();
    fx.seed(&src, "ns/app:v1");
    let report = tempfile::NamedTempFile::new().unwrap();
    ferry_copy(
        &["-q", "--report", report.path().to_str().unwrap()],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    )
    .assert_success();
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    let total: u64 = fx.blobs().iter().map(|(_, s)| s).sum();
    assert_eq!(r["source"], format!("{}/ns/app:v1", src.host()));
    assert_eq!(r["destination"], format!("{}/ns/app:v1", dst.host()));
    assert_eq!(r["digest"], fx.digest.as_str());
    assert_eq!(r["source_digest"], fx.digest.as_str());
    assert_eq!(r["already_present"], false);
    assert_eq!(r["bytes"]["total"], total);
    assert_eq!(r["bytes"]["copied"], total);
    assert_eq!(r["blobs"]["copied"], fx.blobs().len());
    let seen: u64 = dst.requests().len() as u64;
    assert!(
        r["requests"]["destination"].as_u64().unwrap() >= seen.saturating_sub(1),
        "{r}"
    );
    assert!(r["duration_ms"].as_u64().is_some());
}

#[test]
fn signatures_that_are_not_copied_are_mentioned() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1_000]).build();
    fx.seed(&src, "ns/app:v1");
    // A cosign signature is stored as a tag named after the signed digest.
    let sig = ImageSpec::oci().layers(&[200]).build();
    let sig_tag = fx.digest.replace(':', "-") + ".sig";
    sig.seed(&src, &format!("ns/app:{sig_tag}"));
    // As ferry, it travels with the image (tests/it/referrers.rs has the details).
    let out = ferry_copy(
        &[],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/app:v1"),
    );
    out.assert_success();
    assert_eq!(dst.manifest_digest("ns/app", &sig_tag), Some(sig.digest));
    // Without attachments (as skopeo without use-sigstore-attachments), it is named.
    let out = ferry_copy(
        &["--referrers=none"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("other/app:v1"),
    );
    out.assert_success();
    assert!(
        out.stderr.contains("not copied") && out.stderr.contains(&sig_tag),
        "{}",
        out.stderr
    );
    assert_eq!(dst.manifest_digest("other/app", &sig_tag), None);
    // --remove-signatures: the user asked for it, no notice, no `.sig`.
    let out = ferry_copy(
        &["--remove-signatures"],
        &src.tls_args(Side::Src),
        &dst.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("bare/app:v2"),
    );
    out.assert_success();
    assert!(!out.stderr.contains("not copied"), "{}", out.stderr);
    assert_eq!(dst.tags("bare/app"), vec!["v2".to_string()]);
}

/// OpenShift 3.11's registry takes neither OCI manifests nor manifest lists. A refusal names the
/// type and, for an index, the way out: `--multi-arch system`, which then works.
#[test]
fn a_registry_that_refuses_an_index_gets_a_clear_error_and_a_hint() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64"])
        .own_layers(&[2_000])
        .build();
    fx.seed(&src, "ns/app:v1");
    let proxy = FaultProxy::start(&dst);
    proxy.add(Rule::new(
        "PUT",
        "/manifests/v1$",
        Fault::Status {
            status: 400,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest type"}]}"#.to_vec(),
        },
    ));
    let out = ferry_copy(
        &[],
        &src.tls_args(Side::Src),
        &proxy.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &proxy.docker_ref("ns/app:v1"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line = out.stderr.trim_end().lines().last().unwrap();
    assert!(
        line.contains("OCI image index")
            && line.contains("MANIFEST_INVALID")
            && line.contains("--multi-arch system"),
        "{line}"
    );
    assert_eq!(dst.manifest_digest("ns/app", "v1"), None);
    // The way out: one platform's image.
    ferry_copy(
        &[
            "-q",
            "--multi-arch=system",
            "--override-arch=amd64",
            "--override-os=linux",
        ],
        &src.tls_args(Side::Src),
        &proxy.tls_args(Side::Dest),
        &src.docker_ref("ns/app:v1"),
        &proxy.docker_ref("ns/app:v2"),
    )
    .assert_success();
    assert_eq!(
        dst.manifest_digest("ns/app", "v2").as_deref(),
        Some(fx.platform_image("linux/amd64").digest.as_str())
    );
}
