//! Simple signatures in lookaside storage (`registries.d`: `lookaside`/`sigstore` to read,
//! `lookaside-staging`/`sigstore-staging` to write, `file://` and `http(s)://`) are copied as
//! skopeo copies them — Debian's skopeo 1.9.3 runs on the same files as the oracle — and a
//! signature that cannot be carried is named, never dropped in silence.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

fn sig_dir(base: &Path, repo: &str, digest: &str) -> PathBuf {
    base.join(format!("{repo}@{}", digest.replace(':', "=")))
}

fn write_registries_d(dir: &Path, yaml: &str) -> PathBuf {
    let d = dir.join("registries.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("lab.yaml"), yaml).unwrap();
    d
}

fn copy(tool: &mut Tool, regd: &Path, src: &Registry, dst: &Registry, to: &str) -> Output {
    tool.arg(format!("--registries.d={}", regd.display()))
        .arg("copy")
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref(to))
        .run()
}

fn signatures(dir: &Path) -> Vec<Vec<u8>> {
    (1..)
        .map(|i| dir.join(format!("signature-{i}")))
        .take_while(|p| p.exists())
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn file_lookaside_signatures_are_copied_like_skopeo() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1500]).build();
    fx.seed(&src, "ns/app:v1");
    let sb = Sandbox::new();
    let (read, staging, never) = (
        sb.path().join("src-sigs"),
        sb.path().join("staging"),
        sb.path().join("dst-read"),
    );
    let sigs: Vec<Vec<u8>> = vec![
        b"\xa3\x01signature one".to_vec(),
        b"\xa3\x01signature two".to_vec(),
    ];
    let dir = sig_dir(&read, "ns/app", &fx.digest);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, s) in sigs.iter().enumerate() {
        std::fs::write(dir.join(format!("signature-{}", i + 1)), s).unwrap();
    }
    let regd = write_registries_d(
        sb.path(),
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n  {}:\n    sigstore: file://{}\n    sigstore-staging: file://{}\n",
            src.host(),
            read.display(),
            dst.host(),
            never.display(),
            staging.display()
        ),
    );
    let out = copy(&mut sb.ferry(), &regd, &src, &dst, "prod/app:v1");
    out.assert_success();
    assert!(out.stdout.contains(", 2 signature(s) in"), "{out}");
    let by_ferry = signatures(&sig_dir(&staging, "prod/app", &fx.digest));
    assert_eq!(by_ferry, sigs);
    assert!(!never.exists(), "written to the staging location only");

    // Again: they are there; none is added twice.
    copy(&mut sb.ferry(), &regd, &src, &dst, "prod/app:v1").assert_success();
    assert_eq!(signatures(&sig_dir(&staging, "prod/app", &fx.digest)), sigs);

    // The oracle writes the same files.
    copy(&mut skopeo(), &regd, &src, &dst, "skopeo/app:v1").assert_success();
    assert_eq!(
        signatures(&sig_dir(&staging, "skopeo/app", &fx.digest)),
        by_ferry
    );

    // A destination with no lookaside configured: named, not dropped in silence.
    let regd = write_registries_d(
        &sb.path().join("only-src"),
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n",
            src.host(),
            read.display()
        ),
    );
    let rep = sb.path().join("r.json");
    let out = sb
        .ferry()
        .arg(format!("--registries.d={}", regd.display()))
        .arg("copy")
        .arg(format!("--report={}", rep.display()))
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("bare/app:v1"))
        .run();
    out.assert_success();
    assert!(
        out.stderr
            .contains("Note: a signature of the source was not copied: 2 simple signature(s)"),
        "{out}"
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    assert_eq!(r["signatures_not_copied"].as_array().unwrap().len(), 1);
}

#[test]
fn http_lookaside_is_read_and_never_written() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::docker().layers(&[900]).build();
    fx.seed(&src, "ns/app:v1");
    let server = FaultProxy::standalone("127.0.0.1");
    let wanted = format!("/sigs/ns/app@{}/signature-1", fx.digest.replace(':', "="));
    let served: Arc<Vec<u8>> = Arc::new(b"\x00simple-signing\n\xa3\x01served over http".to_vec());
    server.add(Rule::new(
        "GET",
        "^/sigs/",
        Fault::respond(move |seen| {
            let status = if seen.path == wanted { 200 } else { 404 };
            let b = if status == 200 {
                served.to_vec()
            } else {
                vec![]
            };
            Response::builder()
                .status(status)
                .body(Body::from(b))
                .unwrap()
        }),
    ));
    let sb = Sandbox::new();
    let staging = sb.path().join("staging");
    let regd = write_registries_d(
        sb.path(),
        &format!(
            "docker:\n  {}:\n    lookaside: {}/sigs\n  {}:\n    lookaside-staging: file://{}\n",
            src.host(),
            server.url(),
            dst.host(),
            staging.display()
        ),
    );
    copy(&mut sb.ferry(), &regd, &src, &dst, "prod/app:v1").assert_success();
    copy(&mut skopeo(), &regd, &src, &dst, "skopeo/app:v1").assert_success();
    let by_ferry = signatures(&sig_dir(&staging, "prod/app", &fx.digest));
    // Written as skopeo writes a simple signature: without the format prefix.
    assert_eq!(by_ferry, vec![b"\xa3\x01served over http".to_vec()]);
    assert_eq!(
        signatures(&sig_dir(&staging, "skopeo/app", &fx.digest)),
        by_ferry
    );
    // Never with the registry's credentials, and only up to the first missing one.
    let asked = server.requests_to("GET", "/sigs/");
    assert!(asked.iter().all(|s| s.header("authorization").is_none()));

    // An http(s) location cannot be written: refused as skopeo refuses it (after the image,
    // as skopeo: signatures are added to an image that is there).
    let regd = write_registries_d(
        &sb.path().join("http-dest"),
        &format!(
            "docker:\n  {}:\n    lookaside: {}/sigs\n  {}:\n    lookaside: {}/dest\n",
            src.host(),
            server.url(),
            dst.host(),
            server.url()
        ),
    );
    let out = copy(&mut sb.ferry(), &regd, &src, &dst, "web/app:v1");
    assert_eq!(out.code, Some(1), "{out}");
    let line = crate::faults::one_error_line(&out);
    assert!(line.contains("Configure a lookaside-staging"), "{out}");
}
