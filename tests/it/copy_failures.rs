//! `ferry copy` failures: what exits 1, what exits 2, clear one-line errors with hints, the
//! trust policy's refusals, and the tag never moving on failure. See `copy.rs` for the shared
//! helpers.

use crate::copy::{count, ferry_copy};
use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

#[test]
fn a_missing_image_exits_2_and_names_it() {
    let p = Pair::plain();
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&p.src, "ns/app:v1");
    let out = p.ferry_copy(&[], "ns/app:nope", "ns/app:v1");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let line = out.stderr.trim_end().lines().last().unwrap();
    assert!(
        line.contains("nope") && line.contains(&p.src.host()) && line.contains("MANIFEST_UNKNOWN"),
        "{line}"
    );
    // Current skopeo exits 2 for a missing image; Debian's 1.9.3 predates that and exits 1.
    let sk = p.skopeo_copy(&[], "ns/app:nope", "ns/app:v1");
    assert_ne!(sk.code, Some(0));
    // A repository that does not exist is also "not found".
    let out = p.ferry_copy(&[], "nothing/here:v1", "ns/app:v1");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn a_destination_that_refuses_uploads_leaves_the_tag_where_it_was() {
    let mut p = Pair::plain();
    let old = ImageSpec::oci().layers(&[1_000]).build();
    let new = ImageSpec::oci().layers(&[2_000, 1_300_000]).build();
    old.seed(&p.dst, "ns/app:v1");
    new.seed(&p.src, "ns/app:v1");
    p.dst.restart(|o| o.read_only = true);
    let out = p.ferry_copy(
        &["--retry-times=1", "--retry-delay=10ms"],
        "ns/app:v1",
        "ns/app:v1",
    );
    let dst = &p.dst;
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
    let p = Pair::new().src(|e| e.tls(Tls::Ca)).build();
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&p.src, "ns/app:v1");
    // No source flags at all: the lab CA is not trusted.
    let out = ferry_copy(
        &["--retry-times=0"],
        &[],
        &p.dst_args(),
        &p.src_ref("ns/app:v1"),
        &p.dst_ref("ns/app:v1"),
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
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(src, "ns/app:v1");
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
        p.ferry_copy(
            &["-q", "--policy", policy.to_str().unwrap()],
            "ns/app:v1",
            &format!("ns/app:{tag}"),
        )
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
    let out = p
        .copy_cmd(ferry(), &["-q"], "ns/app:v1", "ns/app:m")
        .env("CONTAINERS_POLICY_JSON", dir.path().join("missing.json"))
        .run();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("missing.json"), "{}", out.stderr);
}

/// OpenShift 3.11's registry takes neither OCI manifests nor manifest lists. A refusal names the
/// type and, for an index, the way out: `--multi-arch system`, which then works.
#[test]
fn a_registry_that_refuses_an_index_gets_a_clear_error_and_a_hint() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64"])
        .own_layers(&[2_000])
        .build();
    fx.seed(src, "ns/app:v1");
    let proxy = FaultProxy::start(dst);
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
