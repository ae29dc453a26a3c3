//! `list-tags`: skopeo's JSON, byte for byte, against a token-auth registry.

use crate::support::fixtures::*;
use crate::support::*;

#[test]
fn list_tags_matches_skopeo_byte_for_byte() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("reader-token".into(), vec![Grant::pull("ns/*")])],
        ..Default::default()
    });
    let reg = Registry::start(RegistryOptions {
        auth: Auth::Token(ts.config()),
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[50]).build();
    for tag in ["v1", "v2.0", "latest", "1.0_rc-1"] {
        fx.seed(&reg, &format!("ns/app:{tag}"));
    }
    let mut args = vec!["list-tags".to_string(), "--creds=sa:reader-token".into()];
    args.extend(reg.tls_args(Side::Plain));
    args.push(reg.docker_ref("ns/app"));
    let s = skopeo().args(&args).run();
    let f = ferry().args(&args).run();
    assert_eq!(f.assert_success().stdout, s.assert_success().stdout);
    let v: serde_json::Value = serde_json::from_str(&f.stdout).unwrap();
    assert_eq!(v["Repository"], reg.image("ns/app"));
    let mut tags: Vec<String> = serde_json::from_value(v["Tags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, ["1.0_rc-1", "latest", "v1", "v2.0"]);

    // A repository that does not exist: both fail with 1 (NAME_UNKNOWN is not a missing image).
    let mut args = vec!["list-tags".to_string(), "--creds=sa:reader-token".into()];
    args.extend(reg.tls_args(Side::Plain));
    args.push(reg.docker_ref("ns/none"));
    let s = skopeo().args(&args).run();
    let f = ferry().args(&args).run();
    assert_eq!(s.code, Some(1), "{s}");
    assert_eq!(f.code, Some(1), "{f}");
    // A tag is refused by both.
    let mut args = vec!["list-tags".to_string(), "--creds=sa:reader-token".into()];
    args.extend(reg.tls_args(Side::Plain));
    args.push(reg.docker_ref("ns/app:v1"));
    skopeo().args(&args).run().assert_failure();
    ferry()
        .args(&args)
        .run()
        .assert_failure_with(&["without tag or digest"]);
}

/// A registry that pages its tag list with `Link` headers: every page is followed, and the
/// output is the same as skopeo's through the same pages.
#[test]
fn list_tags_follows_link_pagination_like_skopeo() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    let reg = Registry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(&reg);
    proxy.add(Rule::new(
        "GET",
        "/tags/list$",
        Fault::respond(|seen| {
            let (tags, next) = if seen.query.contains("last=b") {
                (r#"["c"]"#, None)
            } else {
                (r#"["a","b"]"#, Some("/v2/ns/app/tags/list?n=2&last=b"))
            };
            let mut b = axum::response::Response::builder()
                .status(200)
                .header("content-type", "application/json");
            if let Some(n) = next {
                b = b.header("link", format!(r#"<{n}>; rel="next""#));
            }
            b.body(axum::body::Body::from(format!(
                r#"{{"name":"ns/app","tags":{tags}}}"#
            )))
            .unwrap()
        }),
    ));
    let out = ferry()
        .args(["list-tags", "--tls-verify=false"])
        .arg(proxy.docker_ref("ns/app"))
        .run();
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["Tags"],
        serde_json::json!(["a", "b", "c"]),
        "{}",
        out.stdout
    );
    assert_eq!(proxy.requests_to("GET", "/tags/list").len(), 2);
    let sk = skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(proxy.docker_ref("ns/app"))
        .run();
    sk.assert_success();
    assert_eq!(out.stdout, sk.stdout);
}
