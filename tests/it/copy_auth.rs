//! `ferry copy` with authentication: htpasswd, tokens (one per registry, as OpenShift hands
//! them out), where credentials come from (flags, files, environment, the auth file) and
//! OAuth2 identity tokens. See `copy.rs` for the shared helpers.

use crate::copy::{assert_holds, b64, ferry_copy};
use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

#[test]
fn copies_with_basic_auth_and_refuses_a_wrong_password() {
    let users = vec![("alice".to_string(), "s3cret:with:colons".to_string())];
    // --creds splits at the first colon: the password keeps its colons.
    let p = Pair::new()
        .tls()
        .src(|e| e.users(users.clone()).creds("alice:s3cret:with:colons"))
        .dst(|e| e.users(users))
        .build();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::docker().layers(&[20_000, 1_200_000]).build();
    fx.seed(src, "ns/app:v1");
    let s = p.src_args();
    let mut d = p.dst_args();
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
    assert_holds(dst, "ns/app", "v1", &fx);

    let mut bad = p.dst_args();
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
    // An HTTPS registry's realm is HTTPS too (the builder's default): ferry sends no
    // credentials to a plain http:// realm of an HTTPS registry.
    let p = Pair::new()
        .tls()
        .src(|e| {
            e.token(
                "serviceaccount",
                "nonprod-sa-token",
                &[Grant::pull("team/*")],
            )
        })
        .dst(|e| {
            e.token("serviceaccount", "prod-sa-token", &[Grant::push("prod/*")])
                .no_creds()
        })
        .build();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[50_000])
        .own_layers(&[1_100_000])
        .build();
    fx.seed(src, "team/app:abc123");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "prod-sa-token\n").unwrap();
    let s = p.src_args();
    let mut d = p.dst_args();
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
    assert_holds(dst, "prod/app", "abc123", &fx);
    // One token per registry served the whole copy.
    let src_tokens: Vec<_> = p
        .src_ts()
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    let dst_tokens: Vec<_> = p
        .dst_ts()
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(src_tokens.len(), 1, "{src_tokens:?}");
    assert_eq!(dst_tokens.len(), 1, "{dst_tokens:?}");
    assert_eq!(src_tokens[0].user.as_deref(), Some("serviceaccount"));

    // The source token cannot push: used as destination, it is refused with a clear line.
    let mut wrong = p.dst_args();
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
    let p = Pair::new()
        .basic_auth("u", "right")
        .dst(|e| e.no_creds())
        .build();
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&p.src, "ns/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "u:right\n").unwrap();
    std::fs::write(&bad, "u:wrong\n").unwrap();
    let run = |flag: Option<&str>, file: Option<&std::path::Path>, env: Option<&str>, tag: &str| {
        let mut extra = vec!["-q".to_string(), "--retry-times=0".to_string()];
        if let Some(f) = flag {
            extra.push(format!("--dest-creds={f}"));
        }
        if let Some(f) = file {
            extra.push(format!("--dest-creds-file={}", f.display()));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut t = p.copy_cmd(ferry(), &extra, "ns/app:v1", &format!("ns/app:{tag}"));
        if let Some(e) = env {
            t.env("FERRY_DEST_CREDS", e);
        }
        t.run()
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
            p.dst.manifest_digest("ns/app", tag).as_deref(),
            Some(fx.digest.as_str()),
            "{tag}"
        );
    }
}

#[test]
fn credentials_come_from_the_auth_file_like_skopeo() {
    let p = Pair::new().basic_auth("bob", "pw").build();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(src, "ns/app:v1");
    let sb = Sandbox::new();
    // The destination's entry is for a namespace of the registry, not the whole host.
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
    p.copy_anonymous_cmd(sb.ferry(), &["-q"], "ns/app:v1", "ns/app:v1")
        .run()
        .assert_success();
    assert_eq!(
        dst.manifest_digest("ns/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    // The same auth file serves skopeo.
    p.copy_anonymous_cmd(
        sb.skopeo(),
        &["--preserve-digests"],
        "ns/app:v1",
        "ns/app:oracle",
    )
    .run()
    .assert_success();
}

/// An auth-file entry with an `identitytoken` (an OAuth2 refresh token, as `az acr login`
/// writes it): both tools exchange it for tokens with an OAuth2 `POST`
/// (`grant_type=refresh_token`), not with the entry's `auth` password.
#[test]
fn identity_tokens_in_the_auth_file_are_used_with_oauth2_like_skopeo() {
    let p = Pair::new()
        .token("refresh-7d1c", &[Grant::all("*")])
        .build();
    let (src, dst, ts) = (&p.src, &p.dst, p.ts());
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(src, "ns/app:v1");
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
    let copy = |mut tool: Tool, tag: &str, debug: bool| {
        if debug {
            tool.arg("--debug");
        }
        p.copy_anonymous_cmd(tool, &[], "ns/app:v1", &format!("ns/app:{tag}"))
            .run()
    };
    for (tool, tag) in [(sb.ferry(), "ferry"), (sb.skopeo(), "skopeo")] {
        let mark = ts.mark();
        let out = copy(tool, tag, tag == "ferry");
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
    let out = copy(sb.ferry(), "revoked", false);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("the token endpoint refused the credentials (HTTP 401)"),
        "{out}"
    );
}
