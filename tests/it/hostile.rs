//! Hostile and bad input: no panic, one clear error line, exit 1 (2 for an image that does not
//! exist) — for malformed references, unsupported transports, invalid manifests and registries
//! that misbehave on purpose (served by the fault proxy). A run that hangs is ended by the
//! lab's hang guard (the tool's timeout) and fails the test; nothing asserts how long a run
//! took.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

fn run_copy(src: &str, dst: &str, extra: &[&str]) -> Output {
    ferry()
        .args([
            "copy",
            "--retry-times=2",
            "--retry-delay=10ms",
            "--stall-timeout=2s",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .arg(src)
        .arg(dst)
        .run()
}

/// Exit `code`, no panic, exactly one `Error:` line, containing every needle.
#[track_caller]
fn assert_clean_error(out: &Output, code: i32, needles: &[&str]) {
    assert_eq!(out.code, Some(code), "exit code\n{out}");
    assert!(!out.stderr.contains("panicked"), "panic\n{out}");
    let line = crate::faults::one_error_line(out).to_lowercase();
    for n in needles {
        assert!(
            line.contains(&n.to_lowercase()),
            "error line lacks {n:?}\n{out}"
        );
    }
}

fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.into())).unwrap()
}

fn serve(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Fault {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fault::Status {
        status,
        headers,
        body: body.to_vec(),
    }
}

/// A body that never ends (no `Content-Length`).
fn endless() -> Body {
    Body::from_stream(futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(Bytes::from_static(&[b' '; 64 * 1024]))
    }))
}

fn digest(bytes: &[u8]) -> String {
    sha256_digest(bytes)
}

// ---------------------------------------------------------------------------------------------
// The command line.

#[test]
fn malformed_references_and_unsupported_transports() {
    let good = "docker://127.0.0.1:1/ns/app:v1";
    let hex64 = "a".repeat(64);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "invalid image reference"),
        ("docker://".into(), "empty"),
        ("docker:// ns/app:v1".into(), "whitespace"),
        ("docker://ns/app :v1".into(), "whitespace"),
        (
            "docker://127.0.0.1:5000/Ns/App:v1".into(),
            "invalid image reference",
        ),
        ("docker://r.io/a@md5:abc".into(), "invalid image reference"),
        (
            "docker://r.io/a@sha256:abc".into(),
            "invalid image reference",
        ),
        (
            format!("docker://r.io/a@sha256:{hex64}0"),
            "invalid image reference",
        ),
        (
            format!("docker://r.io/a:v1@sha256:{hex64}"),
            "tag and a digest",
        ),
        ("docker://r.io:99999/a:v1".into(), "invalid image reference"),
        ("docker://r.io/a:-bad".into(), "invalid image reference"),
        ("docker://r.io/a:v1:v2".into(), "invalid image reference"),
        ("docker:r.io/a:v1".into(), "docker://"),
        ("ns/app:v1".into(), "transport"),
        (
            "oci:/nonexistent-ferry/layout:v1".into(),
            "nonexistent-ferry",
        ),
        ("dir:/nonexistent-ferry/x".into(), "nonexistent-ferry"),
        (
            "docker-archive:/nonexistent-ferry/x.tar".into(),
            "nonexistent-ferry",
        ),
        ("oci:/tmp:-bad-name".into(), "invalid image name"),
        ("docker-daemon:ns/app:v1".into(), "not supported"),
        ("containers-storage:ns/app".into(), "not supported"),
        ("ftp://r.io/a:v1".into(), "unknown transport"),
    ];
    for (bad, needle) in &cases {
        for (src, dst) in [(bad.as_str(), good), (good, bad.as_str())] {
            let out = ferry().args(["copy", src, dst]).run();
            assert_clean_error(&out, 1, &[needle]);
        }
    }
    // Invoked as skopeo, the same.
    let out = ferry_as_skopeo()
        .args(["copy", "docker://r.io/A/b:v1", good])
        .run();
    assert_clean_error(&out, 1, &["invalid image reference"]);
}

#[test]
fn a_missing_image_exits_2() {
    let reg = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&reg, "ns/app:v1");
    for name in ["ns/app:nope", "ns/nothing:v1"] {
        let out = run_copy(&reg.docker_ref(name), &reg.docker_ref("ns/copy:v1"), &[]);
        assert_clean_error(&out, 2, &["not found", &reg.host()]);
    }
}

// ---------------------------------------------------------------------------------------------
// Invalid manifests.

const OCI_CT: &str = "application/vnd.oci.image.manifest.v1+json";

fn oci_image(layer_digest: serde_json::Value) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_CT,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{}", "c".repeat(64)), "size": 10},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": 10}]
    })
}

#[test]
fn invalid_manifests_are_refused_with_a_reason() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let old = ImageSpec::oci().layers(&[100]).build();
    old.seed(&dst, "prod/app:v1");
    let proxy = FaultProxy::start(&src);
    let good_digest = json!(format!("sha256:{}", "d".repeat(64)));
    let mut contradicts_shape = oci_image(good_digest.clone());
    contradicts_shape["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    let mut no_config = oci_image(good_digest.clone());
    no_config.as_object_mut().unwrap().remove("config");
    let docker_doc = {
        let mut v = oci_image(good_digest.clone());
        v["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
        v
    };
    let mut huge = oci_image(good_digest);
    huge["annotations"] = json!({"pad": "x".repeat(5 << 20)});
    let huge = serde_json::to_vec(&huge).unwrap();
    let cases: Vec<(&str, Fault, Vec<&str>)> = vec![
        (
            "not JSON",
            serve(200, &[("content-type", OCI_CT)], b"<html>hello</html>"),
            vec!["invalid manifest", "not valid JSON"],
        ),
        (
            "mediaType contradicts Content-Type",
            serve(
                200,
                &[("content-type", OCI_CT)],
                &serde_json::to_vec(&docker_doc).unwrap(),
            ),
            vec!["contradicts the response's Content-Type"],
        ),
        (
            "mediaType contradicts shape",
            serve(
                200,
                &[("content-type", "application/vnd.oci.image.index.v1+json")],
                &serde_json::to_vec(&contradicts_shape).unwrap(),
            ),
            vec!["\"layers\""],
        ),
        (
            "missing config",
            serve(
                200,
                &[("content-type", OCI_CT)],
                &serde_json::to_vec(&no_config).unwrap(),
            ),
            vec!["no \"config\""],
        ),
        (
            "layer digest not a digest",
            serve(
                200,
                &[("content-type", OCI_CT)],
                &serde_json::to_vec(&oci_image(json!("sha256:not-a-digest"))).unwrap(),
            ),
            vec!["layers[0].digest"],
        ),
        (
            "layer digest not a string",
            serve(
                200,
                &[("content-type", OCI_CT)],
                &serde_json::to_vec(&oci_image(json!(42))).unwrap(),
            ),
            vec!["layers[0].digest"],
        ),
        (
            "over 4 MiB with Content-Length",
            serve(200, &[("content-type", OCI_CT)], &huge),
            vec!["4 MiB limit"],
        ),
        (
            "over 4 MiB without Content-Length",
            Fault::respond(|_| {
                Response::builder()
                    .status(200)
                    .header("content-type", OCI_CT)
                    .body(endless())
                    .unwrap()
            }),
            vec!["4 MiB limit"],
        ),
        (
            "Content-Length of a terabyte",
            Fault::respond(|_| {
                Response::builder()
                    .status(200)
                    .header("content-type", OCI_CT)
                    .header("content-length", "1099511627776")
                    .body(endless())
                    .unwrap()
            }),
            vec!["1099511627776 bytes", "4 MiB limit"],
        ),
    ];
    for (name, fault, needles) in cases {
        proxy.clear();
        let id = proxy.add(Rule::new("GET", "/manifests/v1$", fault));
        let out = run_copy(
            &proxy.docker_ref("ns/app:v1"),
            &dst.docker_ref("prod/app:v1"),
            &[],
        );
        let mut needles = needles;
        let host = proxy.host();
        needles.push(&host);
        assert_clean_error(&out, 1, &needles);
        // Invalid documents are not retried.
        assert_eq!(proxy.hits(id), 1, "{name}\n{out}");
        assert_eq!(
            dst.manifest_digest("prod/app", "v1").as_deref(),
            Some(old.digest.as_str()),
            "{name}"
        );
    }
}

#[test]
fn an_index_nested_more_than_8_levels_is_refused() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    // An image, then 10 indexes each holding the previous one.
    let mut docs: Vec<(String, Vec<u8>, &str)> = Vec::new();
    let image =
        serde_json::to_vec(&oci_image(json!(format!("sha256:{}", "e".repeat(64))))).unwrap();
    let mut child = (digest(&image), image.len(), OCI_CT);
    docs.push((child.0.clone(), image, OCI_CT));
    for _ in 0..10 {
        let idx = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": child.2, "digest": child.0, "size": child.1,
                           "platform": {"os": "linux", "architecture": "amd64"}}]
        }))
        .unwrap();
        child = (digest(&idx), idx.len(), OCI_INDEX);
        docs.push((child.0.clone(), idx, OCI_INDEX));
    }
    let top = docs.last().unwrap().1.clone();
    let proxy = FaultProxy::start(&src);
    proxy.add(Rule::new(
        "GET",
        "/manifests/",
        Fault::respond(move |seen| {
            let reference = seen.last_segment();
            let found = if reference == "v1" {
                Some((top.clone(), OCI_INDEX))
            } else {
                docs.iter()
                    .find(|(d, _, _)| d == reference)
                    .map(|(_, b, t)| (b.clone(), *t))
            };
            match found {
                Some((b, t)) => respond(200, &[("content-type", t)], b),
                None => respond(404, &[], Bytes::new()),
            }
        }),
    ));
    let out = run_copy(
        &proxy.docker_ref("ns/app:v1"),
        &dst.docker_ref("prod/app:v1"),
        &[],
    );
    assert_clean_error(&out, 1, &["nest more than 8 levels"]);
    assert!(dst.get_manifest("prod/app", "v1").is_none());
}

// ---------------------------------------------------------------------------------------------
// Hostile registries.

#[test]
fn hostile_blob_answers() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci()
        .uncompressed()
        .layers(&[1_200_000, 5000])
        .build();
    fx.seed(&src, "ns/app:v1");
    let proxy = FaultProxy::start(&src);
    let big = fx.image().layers[0].digest.clone();
    let small = fx.image().layers[1].digest.clone();
    let cases: Vec<(&str, String, Fault, Vec<&str>)> = vec![
        (
            "terabyte Content-Length",
            big.clone(),
            Fault::respond(|_| {
                Response::builder()
                    .status(200)
                    .header("content-length", "1099511627776")
                    .body(endless())
                    .unwrap()
            }),
            vec!["announces 1099511627776 bytes"],
        ),
        (
            "never-ending streamed blob",
            big,
            Fault::respond(|_| Response::builder().status(200).body(endless()).unwrap()),
            vec!["more than the", "bytes the manifest declares"],
        ),
        (
            "never-ending small blob",
            small,
            Fault::respond(|_| Response::builder().status(200).body(endless()).unwrap()),
            vec!["more than the", "bytes the manifest declares"],
        ),
    ];
    for (i, (name, digest, fault, needles)) in cases.into_iter().enumerate() {
        proxy.clear();
        let id = proxy.add(Rule::new("GET", &format!("/blobs/{digest}$"), fault));
        let out = run_copy(
            &proxy.docker_ref("ns/app:v1"),
            &dst.docker_ref(&format!("prod/app{i}:v1")),
            &[],
        );
        assert_clean_error(&out, 1, &needles);
        assert_eq!(
            proxy.hits(id),
            1,
            "{name}: refused documents are not retried\n{out}"
        );
        assert!(dst.get_manifest(&format!("prod/app{i}"), "v1").is_none());
    }
}

#[test]
fn a_redirect_loop_fails_without_retrying() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[5000]).build();
    fx.seed(&src, "ns/app:v1");
    let proxy = FaultProxy::start(&src);
    let id = proxy.add(Rule::new("GET", "/blobs/", Fault::Redirect(proxy.url())));
    let out = run_copy(
        &proxy.docker_ref("ns/app:v1"),
        &dst.docker_ref("prod/app:v1"),
        &["--image-parallel-copies=1"],
    );
    assert_clean_error(&out, 1, &["redirect", &proxy.host()]);
    // The first request and 10 redirects; a loop is not retried.
    assert_eq!(proxy.hits(id), 11, "{out}");
}

#[test]
fn hostile_authentication() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(&src);
    let token_url = format!("{}/token", proxy.url());
    let bearer = format!(r#"Bearer realm="{token_url}",service="hostile""#);
    let cases: Vec<(&str, Vec<Rule>, Vec<&str>)> = vec![
        (
            "malformed WWW-Authenticate",
            vec![Rule::new(
                "GET",
                "^/v2/$",
                serve(
                    401,
                    &[("www-authenticate", r#"Bearer realm="http://x/t"#)],
                    b"",
                ),
            )],
            vec!["authentication", "malformed WWW-Authenticate"],
        ),
        (
            "Bearer without realm",
            vec![Rule::new(
                "GET",
                "^/v2/$",
                serve(401, &[("www-authenticate", r#"Bearer service="x""#)], b""),
            )],
            vec!["authentication", "without realm"],
        ),
        (
            "401 without a challenge",
            vec![Rule::new("GET", "^/v2/$", serve(401, &[], b""))],
            vec!["authentication", "without a WWW-Authenticate"],
        ),
        (
            "token endpoint answering HTML",
            vec![
                Rule::new(
                    "GET",
                    "^/v2/$",
                    serve(401, &[("www-authenticate", &bearer)], b""),
                ),
                Rule::new(
                    "GET",
                    "^/token",
                    serve(
                        200,
                        &[("content-type", "text/html")],
                        b"<html><body>Log in</body></html>",
                    ),
                ),
            ],
            vec!["authentication", "not JSON", "text/html"],
        ),
    ];
    for (name, rules, needles) in cases {
        proxy.clear();
        for r in rules {
            proxy.add(r);
        }
        let out = run_copy(
            &proxy.docker_ref("ns/app:v1"),
            &dst.docker_ref("prod/app:v1"),
            &["--src-creds=user:hostile-secret-9"],
        );
        let host = proxy.host();
        let mut needles = needles;
        needles.push(&host);
        assert_clean_error(&out, 1, &needles);
        assert!(!out.stderr.contains("hostile-secret-9"), "{name}\n{out}");
    }
}

#[test]
fn a_tag_list_whose_link_pagination_loops_is_refused() {
    let src = Registry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(&src);
    // Page 1 links to page 2, page 2 back to page 1.
    proxy.add(Rule::new(
        "GET",
        "/tags/list$",
        Fault::respond(|seen| {
            let (tag, next) = if seen.query.contains("last=a") {
                ("b", "/v2/ns/app/tags/list?n=1")
            } else {
                ("a", "/v2/ns/app/tags/list?n=1&last=a")
            };
            let link = format!(r#"<{next}>; rel="next""#);
            respond(
                200,
                &[("content-type", "application/json"), ("link", &link)],
                format!(r#"{{"name":"ns/app","tags":["{tag}"]}}"#),
            )
        }),
    ));
    let out = ferry()
        .args(["list-tags", "--tls-verify=false"])
        .arg(proxy.docker_ref("ns/app"))
        .run();
    assert_clean_error(&out, 1, &["Link pagination loops", &proxy.host()]);
    // The first URL has no query; the loop is seen when page 1 links to page 2 again.
    assert_eq!(proxy.requests_to("GET", "/tags/list").len(), 3);
}
