//! Credentials go only to the registry they belong to (issue 11, item 2), each case against a
//! hostile stand-in on 127.0.0.0/8 that records every header it receives, side by side with
//! skopeo where skopeo has a behaviour for it: a 401 from another host, tag-list links to
//! another host, upload sessions on another host, a plain-http token realm, server text that
//! quotes a secret back.

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::faults::one_error_line;
use crate::support::faults::{Fault, FaultProxy, Rule, Seen};
use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

pub(crate) const USER: &str = "puller";
pub(crate) const PASSWORD: &str = "Pw-trust-8Hq3Zk1";

/// A registry asking for Basic credentials ([`USER`]:[`PASSWORD`]) with `ns/app:v1`, behind a
/// fault proxy (which forwards the client's `Authorization` to it).
fn basic_source() -> (Registry, FaultProxy, Fixture) {
    let reg = Registry::start(RegistryOptions {
        auth: Auth::Basic(vec![(USER.into(), PASSWORD.into())]),
        ..Default::default()
    });
    let fx = ImageSpec::oci()
        .uncompressed()
        .layers(&[1_200_000, 3000])
        .build();
    fx.seed(&reg, "ns/app:v1");
    let proxy = FaultProxy::start(&reg);
    (reg, proxy, fx)
}

pub(crate) fn creds() -> String {
    format!("{USER}:{PASSWORD}")
}

/// No request `stand_in` received carried an `Authorization` header.
#[track_caller]
fn assert_no_authorization(requests: &[Seen], who: &str) {
    for s in requests {
        assert!(
            s.header("authorization").is_none(),
            "{who} sent Authorization to a host it does not belong to: {s:#?}"
        );
    }
}

fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

/// A blob download redirected to another host that answers 401 with challenges of its own:
/// the redirect carries no credentials (for skopeo neither), and the foreign 401 is not
/// answered — no token is asked of the realm it names, no credentials go there. Both fail.
#[test]
fn a_401_from_another_host_is_never_answered_with_the_registry_credentials() {
    let (_reg, proxy, _fx) = basic_source();
    let dst = Registry::start(RegistryOptions::default());
    let foreign = FaultProxy::standalone("127.0.0.2");
    let challenge = format!(
        r#"Bearer realm="{}/token",service="foreign", Basic realm="foreign""#,
        foreign.url()
    );
    foreign.add(Rule::new(
        "GET",
        "/blobs/",
        Fault::Status {
            status: 401,
            headers: vec![("www-authenticate".into(), challenge)],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}"#.to_vec(),
        },
    ));
    foreign.add(Rule::new(
        "*",
        "/token",
        Fault::Status {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"token":"stolen-with-your-password"}"#.to_vec(),
        },
    ));
    proxy.add(Rule::new(
        "GET",
        "/blobs/sha256:",
        Fault::Redirect(foreign.url()),
    ));
    let out = ferry()
        .args(["copy", "--retry-times=2", "--retry-delay=10ms"])
        .args(proxy.tls_args(Side::Src))
        .arg(format!("--src-creds={}", creds()))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    // ferry did authenticate to its registry (else the checks below prove nothing).
    assert!(
        proxy
            .requests_to("GET", "/blobs/")
            .iter()
            .all(|s| s.header("authorization").is_some())
    );
    assert_no_authorization(&foreign.requests(), "ferry");
    assert!(
        foreign.requests_to("GET", "/token").is_empty(),
        "{:#?}",
        foreign.requests()
    );
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("{} answered HTTP 401", foreign.url()))
            && line.contains("only ever sent to the registry"),
        "{out}"
    );
    assert!(dst.get_manifest("ns/app", "v1").is_none());

    // skopeo: the same two boundaries (Go drops Authorization on a redirect to another host,
    // and a 401 there fails the copy).
    let mark = foreign.requests().len();
    let sk = skopeo()
        .arg("copy")
        .args(proxy.tls_args(Side::Src))
        .arg(format!("--src-creds={}", creds()))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    assert_eq!(sk.code, Some(1), "{sk}");
    let seen = foreign.requests()[mark..].to_vec();
    assert!(!seen.is_empty(), "skopeo followed the redirect");
    assert_no_authorization(&seen, "skopeo");
}

/// `tags/list` pagination whose `Link` names another host and port: as skopeo, only
/// the link's path and query are used, asked of the registry itself (with its credentials);
/// the other host sees nothing, and every tag is listed.
#[test]
fn tag_list_links_to_another_host_are_asked_of_the_registry_itself() {
    let (reg, proxy, fx) = basic_source();
    for t in ["v2", "v3"] {
        fx.seed(&reg, &format!("ns/app:{t}"));
    }
    let foreign = FaultProxy::standalone("127.0.0.2");
    let link = format!(
        r#"<http://{}/v2/ns/app/tags/list?n=100&last=a0>; rel="next""#,
        foreign.host()
    );
    // The first page (no `last`) is made up: one tag and the link; the next is the registry's.
    proxy.add(
        Rule::new(
            "GET",
            "/tags/list$",
            Fault::Status {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("link".into(), link),
                ],
                body: br#"{"name":"ns/app","tags":["a0"]}"#.to_vec(),
            },
        )
        .once(),
    );
    let out = ferry()
        .arg("list-tags")
        .args(proxy.tls_args(Side::Plain))
        .arg(format!("--creds={}", creds()))
        .arg(proxy.docker_ref("ns/app"))
        .run();
    assert_no_authorization(&foreign.requests(), "ferry");
    assert!(foreign.requests().is_empty(), "{:#?}", foreign.requests());
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["Tags"],
        serde_json::json!(["a0", "v1", "v2", "v3"]),
        "{out}"
    );
    let pages = proxy.requests_to("GET", "/tags/list");
    assert_eq!(pages.len(), 2, "{pages:#?}");
    assert_eq!(pages[1].query, "n=100&last=a0");
    assert!(pages[1].header("authorization").is_some());
    assert!(foreign.requests().is_empty(), "{:#?}", foreign.requests());

    // skopeo does the same.
    let mark = proxy.requests().len();
    proxy.add(
        Rule::new(
            "GET",
            "/tags/list$",
            Fault::Status {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    (
                        "link".into(),
                        format!(
                            r#"<http://{}/v2/ns/app/tags/list?n=100&last=a0>; rel="next""#,
                            foreign.host()
                        ),
                    ),
                ],
                body: br#"{"name":"ns/app","tags":["a0"]}"#.to_vec(),
            },
        )
        .once(),
    );
    let sk = skopeo()
        .arg("list-tags")
        .args(proxy.tls_args(Side::Plain))
        .arg(format!("--creds={}", creds()))
        .arg(proxy.docker_ref("ns/app"))
        .run();
    sk.assert_success();
    let sv: serde_json::Value = serde_json::from_str(&sk.stdout).unwrap();
    assert_eq!(sv["Tags"], v["Tags"]);
    let pages: Vec<Seen> = proxy.requests()[mark..]
        .iter()
        .filter(|s| s.is("GET", "/tags/list"))
        .cloned()
        .collect();
    assert_eq!(pages.last().unwrap().query, "n=100&last=a0");
    assert!(foreign.requests().is_empty());
}

/// A registry whose upload sessions live on another host (a storage backend letting uploads in
/// on its own authority, as with signed URLs): the `PATCH` and `PUT` there carry no
/// `Authorization`, and the copy succeeds, digest kept.
#[test]
fn an_upload_location_on_another_host_gets_no_credentials() {
    let p = Pair::new()
        .dst(|e| e.users(vec![(USER.into(), PASSWORD.into())]))
        .build();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci()
        .uncompressed()
        .layers(&[1_300_000, 2000])
        .build();
    fx.seed(src, "ns/app:v1");
    let front = FaultProxy::start(dst);
    let storage = FaultProxy::start(dst);
    storage.add(Rule::new(
        "*",
        "/blobs/uploads/",
        Fault::SetRequestHeader(
            "authorization".into(),
            dst.admin_authorization("prod/app").unwrap(),
        ),
    ));
    front.add(Rule::new(
        "POST",
        "/blobs/uploads/$",
        Fault::LocationTo(storage.url()),
    ));
    let out = ferry()
        .args(["copy", "--retry-times=0"])
        .args(src.tls_args(Side::Src))
        .args(front.tls_args(Side::Dest))
        .arg(format!("--dest-creds={}", creds()))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(front.docker_ref("prod/app:v1"))
        .run();
    out.assert_success();
    assert_eq!(
        dst.manifest_digest("prod/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    let starts = front.requests_to("POST", "/blobs/uploads/");
    assert!(!starts.is_empty() && starts.iter().all(|s| s.header("authorization").is_some()));
    let at_storage = storage.requests();
    assert!(
        at_storage.iter().any(|s| s.method == "PUT"),
        "{at_storage:#?}"
    );
    assert_no_authorization(&at_storage, "ferry");

    // skopeo sends its credentials to the other host.
    let mark = storage.requests().len();
    skopeo()
        .arg("copy")
        .args(src.tls_args(Side::Src))
        .args(front.tls_args(Side::Dest))
        .arg(format!("--dest-creds={}", creds()))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(front.docker_ref("prod/skopeo:v1"))
        .run()
        .assert_success();
    let by_skopeo = storage.requests()[mark..].to_vec();
    assert!(!by_skopeo.is_empty());
    assert!(
        by_skopeo
            .iter()
            .all(|s| s.header("authorization").is_some()),
        "{by_skopeo:#?}"
    );
}

/// A registry reached over HTTPS whose Bearer realm is plain `http://`: the credentials would
/// travel in clear text, so they are not sent (the token endpoint sees nothing) unless that
/// side's TLS verification is off.
#[test]
fn a_plain_http_token_realm_of_an_https_registry_gets_no_credentials() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa-token-clear-1".into(), vec![Grant::pull("ns/*")])],
        tls: false,
        ..Default::default()
    });
    assert!(ts.realm().starts_with("http://"));
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        auth: Auth::Token(ts.config()),
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[500]).build();
    fx.seed(&reg, "ns/app:v1");
    let inspect = |tls: Vec<String>| {
        ferry()
            .args([
                "inspect",
                "--raw",
                "--creds=serviceaccount:sa-token-clear-1",
            ])
            .args(tls)
            .arg(reg.docker_ref("ns/app:v1"))
            .run()
    };
    let out = inspect(reg.tls_args(Side::Plain));
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("token realm {}", ts.realm()))
            && line.contains("plain http://")
            && line.contains("--tls-verify=false"),
        "{out}"
    );
    assert!(ts.requests().is_empty(), "{:#?}", ts.requests());
    // With verification off, the user accepted clear text: it works.
    let out = inspect(vec!["--tls-verify=false".into()]);
    out.assert_success();
    assert_eq!(out.stdout_bytes, fx.manifest);
    assert!(!ts.requests().is_empty());
    // skopeo sends the credentials in clear text.
    let mark = ts.mark();
    skopeo()
        .args([
            "inspect",
            "--raw",
            "--creds=serviceaccount:sa-token-clear-1",
        ])
        .args(reg.tls_args(Side::Plain))
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
    assert!(
        ts.requests_since(mark)
            .iter()
            .any(|r| r.token.as_deref() == Some("sa-token-clear-1"))
    );
}

/// Text a registry quotes back — the password, the `Authorization` header it received — is
/// redacted like every other output: in the error line, in `--debug` logs.
#[test]
fn server_text_quoting_a_secret_is_redacted() {
    let (_reg, proxy, _fx) = basic_source();
    let dst = Registry::start(RegistryOptions::default());
    proxy.add(Rule::new(
        "GET",
        "/manifests/",
        Fault::respond(|seen| {
            let auth = seen.header("authorization").unwrap_or("none").to_string();
            let decoded = auth
                .strip_prefix("Basic ")
                .and_then(|b| B64.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let body = serde_json::json!({"errors": [{
                "code": "DENIED",
                "message": format!("denied: you sent {auth}, that is {decoded}"),
            }]});
            respond(
                403,
                &[("content-type", "application/json")],
                serde_json::to_vec(&body).unwrap(),
            )
        }),
    ));
    let out = ferry()
        .args(["--debug", "copy", "--retry-times=0"])
        .args(proxy.tls_args(Side::Src))
        .arg(format!("--src-creds={}", creds()))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.contains("HTTP 403: DENIED: denied: you sent Basic <redacted>, that is")
            && line.ends_with("<redacted>"),
        "{out}"
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    for secret in [
        PASSWORD.to_string(),
        B64.encode(PASSWORD),
        B64.encode(creds()),
    ] {
        assert!(!all.contains(&secret), "{secret} leaked:\n{out}");
    }
}
