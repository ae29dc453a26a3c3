//! Fault injection on the destination side: uploads and manifest writes that fail once or
//! for good, tokens that expire or are rejected in the middle of a copy, a destination that
//! stops reading. The lab and its rules are in `faults.rs`.

use std::time::Duration;

use crate::faults::{DST_REPO, DST_TAG, Lab, SRC_NAME, Via, blob_path, bounded};
use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::*;

#[test]
fn upload_and_manifest_put_failures_once_are_retried() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.dst);
    // The big layer goes up streamed in its `PUT`, the others whole.
    let big = format!("digest={}", upload_digest(&lab.big().digest));
    let cases = [
        ("POST", "/blobs/uploads/$", ""),
        ("PUT", "/blobs/uploads/", big.as_str()),
        ("PUT", "/blobs/uploads/", ""),
        ("PUT", "/manifests/try", ""),
    ];
    for (i, (method, path, query)) in cases.into_iter().enumerate() {
        // A fresh destination tag each time (the older image stays at prod/app:v1).
        let id = proxy.add(
            Rule::new(method, path, Fault::status(500))
                .query(query)
                .once(),
        );
        let tag = format!("try{i}");
        let dst_name = format!("prod/app{i}:{tag}");
        let out = ferry()
            .args(bounded())
            .args(lab.src.tls_args(Side::Src))
            .args(proxy.tls_args(Side::Dest))
            .arg(lab.src.docker_ref(SRC_NAME))
            .arg(proxy.docker_ref(&dst_name))
            .run();
        out.assert_success();
        assert_eq!(proxy.hits(id), 1, "{method} {path}: fault not hit\n{out}");
        assert_eq!(
            lab.dst.manifest_digest(&format!("prod/app{i}"), &tag),
            Some(lab.fx.digest.clone()),
            "{method} {path}"
        );
    }
}

#[test]
fn persistent_manifest_put_failure_leaves_the_tag() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.dst);
    proxy.add(Rule::new("PUT", "/manifests/", Fault::status(500)));
    let out = lab.copy(Via::Dst(&proxy), &[]);
    lab.assert_failed_cleanly(&out, &["writing manifest", "HTTP 500", &proxy.host()]);
    // Blobs may be there (they are harmless); the tag is not moved.
    assert!(proxy.requests_to("PUT", "/manifests/v1").len() >= 2);
}

#[test]
fn persistent_upload_failure_leaves_the_tag_and_writes_no_manifest() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.dst);
    proxy.add(Rule::new("PUT", "/blobs/uploads/", Fault::status(500)));
    let out = lab.copy(Via::Dst(&proxy), &[]);
    lab.assert_failed_cleanly(&out, &["uploading blob", "HTTP 500", &proxy.host()]);
    assert!(proxy.requests_to("PUT", "/manifests/").is_empty());
}

#[test]
fn a_token_expiring_in_the_middle_of_a_copy_is_renewed() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa-token".into(), vec![Grant::all("*")])],
        lifetime: Duration::from_secs(2),
        ..Default::default()
    });
    let opts = || RegistryOptions {
        auth: Auth::Token(ts.config()),
        ..Default::default()
    };
    let lab = Lab::with(opts(), opts());
    let src_proxy = FaultProxy::start(&lab.src);
    // Slow the big layer down past the tokens' lifetime (but under the stall timeout).
    src_proxy.add(
        Rule::new(
            "GET",
            &blob_path(&lab.big().digest),
            Fault::PauseAfter(300_000, Duration::from_millis(3500)),
        )
        .once(),
    );
    let mark = ts.mark();
    let out = ferry()
        .args(bounded().into_iter().map(|a| {
            if a.starts_with("--stall-timeout") {
                "--stall-timeout=6s"
            } else {
                a
            }
        }))
        .args(src_proxy.tls_args(Side::Src))
        .arg("--src-creds=builder:sa-token")
        .args(lab.dst.tls_args(Side::Dest))
        .arg("--dest-creds=pusher:sa-token")
        .arg(src_proxy.docker_ref(SRC_NAME))
        .arg(lab.dst.docker_ref(&format!("{DST_REPO}:{DST_TAG}")))
        .run();
    lab.assert_copied(&out);
    // The destination's token expired while the big layer was on its way: a new one was
    // fetched to commit it and write the manifests.
    let reqs = ts.requests_since(mark);
    let users: Vec<&str> = reqs.iter().filter_map(|r| r.user.as_deref()).collect();
    assert!(
        users.iter().filter(|u| **u == "pusher").count() >= 2,
        "the destination token was not renewed: {users:?}\n{out}"
    );
}

#[test]
fn a_rejected_token_is_renewed_once_on_401() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa-token".into(), vec![Grant::all("*")])],
        ..Default::default()
    });
    let opts = || RegistryOptions {
        auth: Auth::Token(ts.config()),
        ..Default::default()
    };
    let lab = Lab::with(opts(), opts());
    let proxy = FaultProxy::start(&lab.dst);
    // The registry no longer accepts the token when the manifest is written (revoked,
    // expired early by a clock skew): one 401 with a fresh challenge.
    let challenge = format!(
        r#"Bearer realm="{}",service="lab-registry",scope="repository:{DST_REPO}:pull,push",error="invalid_token""#,
        ts.realm()
    );
    proxy.add(
        Rule::new(
            "PUT",
            "/manifests/v1$",
            Fault::Status {
                status: 401,
                headers: vec![("www-authenticate".into(), challenge)],
                body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#.to_vec(),
            },
        )
        .once(),
    );
    let mark = ts.mark();
    let out = ferry()
        .args(bounded())
        .args(lab.src.tls_args(Side::Src))
        .arg("--src-creds=builder:sa-token")
        .args(proxy.tls_args(Side::Dest))
        .arg("--dest-creds=pusher:sa-token")
        .arg(lab.src.docker_ref(SRC_NAME))
        .arg(proxy.docker_ref(&format!("{DST_REPO}:{DST_TAG}")))
        .run();
    lab.assert_copied(&out);
    assert_eq!(proxy.requests_to("PUT", "/manifests/v1").len(), 2);
    let pusher = ts
        .requests_since(mark)
        .iter()
        .filter(|r| r.user.as_deref() == Some("pusher"))
        .count();
    assert!(pusher >= 2, "no new token after the 401\n{out}");
}

/// A destination that stops reading an upload: the watchdog gives up on the stalled streamed
/// `PUT` after the stall timeout (the destination would hold it for an hour) and the blob is
/// sent again in a fresh upload.
#[test]
fn a_destination_that_stops_reading_an_upload_is_left_and_retried() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.dst);
    let big = format!("digest={}", upload_digest(&lab.big().digest));
    let id = proxy.add(
        Rule::new(
            "PUT",
            "/blobs/uploads/",
            // Longer than any test: the destination never gives up on its own, so the
            // counts below cannot depend on how fast the machine is.
            Fault::Delay(Duration::from_secs(3600)),
        )
        .query(&big)
        .once(),
    );
    let out = lab.copy(Via::Dst(&proxy), &[]);
    lab.assert_copied(&out);
    assert_eq!(proxy.hits(id), 1, "{out}");
    let big_puts = proxy
        .requests_to("PUT", "/blobs/uploads/")
        .into_iter()
        .filter(|s| s.query.contains(&big))
        .count();
    assert_eq!(big_puts, 2, "{out}");
    // The copy was over while the destination was still holding the stalled PATCH (or had
    // seen ferry hang up on it): ferry did not wait for the destination.
    assert_eq!(
        proxy.holding(id) + proxy.abandoned(id),
        1,
        "waited for the destination\n{out}"
    );
    assert!(out.stderr.contains("stalled"), "{out}");
}

/// A digest as it appears in an upload's `?digest=` query (the colon percent-encoded).
fn upload_digest(digest: &str) -> String {
    digest.replace(':', "%3A")
}
