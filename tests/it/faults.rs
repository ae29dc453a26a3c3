//! Fault injection: ferry either finishes the copy or fails cleanly, and the destination tag
//! never points at an incomplete or corrupt image.
//!
//! This file: the shared lab and faults on the source side (downloads); faults on the
//! destination side (uploads, manifest writes, tokens) are in `faults_uploads.rs`.
//!
//! A [`FaultProxy`] sits in front of the source or the destination registry. Transient faults
//! must end in success with the destination digest (read from the registry, not from ferry)
//! equal to the source's; persistent ones in exit 1, one `Error:` line naming what, where and
//! why, and the destination tag still pointing at the older image it pointed at before.
//! Every run is short: 10 ms between retries, a 2 s stall timeout; a hang is ended by the
//! lab's hang guard (the tool's timeout), which fails the test, and no test asserts how long
//! anything took.

use std::time::Duration;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

pub(crate) const SRC_NAME: &str = "ns/app:v2";
pub(crate) const DST_REPO: &str = "prod/app";
pub(crate) const DST_TAG: &str = "v1";

/// Bigger than ferry's 1 MiB "small blob" limit: streamed GET→PATCH, resumable.
pub(crate) const BIG: usize = 1_600_000;
/// Read whole and sent in one PUT.
pub(crate) const SMALL: usize = 200_000;

/// Source and destination registries, the image to copy, and an older image already at the
/// destination tag.
pub(crate) struct Lab {
    pub(crate) src: Registry,
    pub(crate) dst: Registry,
    pub(crate) fx: Fixture,
    pub(crate) old: Fixture,
}

impl Lab {
    pub(crate) fn new() -> Lab {
        Self::with(RegistryOptions::default(), RegistryOptions::default())
    }

    pub(crate) fn with(src_opts: RegistryOptions, dst_opts: RegistryOptions) -> Lab {
        let src = Registry::start(src_opts);
        let dst = Registry::start(dst_opts);
        let fx = ImageSpec::oci()
            .uncompressed()
            .layers(&[BIG, SMALL])
            .build();
        let old = ImageSpec::oci().layers(&[1000]).build();
        fx.seed(&src, SRC_NAME);
        old.seed(&dst, &format!("{DST_REPO}:{DST_TAG}"));
        Lab { src, dst, fx, old }
    }

    pub(crate) fn big(&self) -> &Layer {
        &self.fx.image().layers[0]
    }

    pub(crate) fn small(&self) -> &Layer {
        &self.fx.image().layers[1]
    }

    /// `ferry copy` from `src` (through `proxy` if it fronts the source) to `dst` (through
    /// `proxy` if it fronts the destination).
    pub(crate) fn copy(&self, via: Via<'_>, extra: &[&str]) -> Output {
        let (src_args, src_ref) = match via {
            Via::Src(p) => (p.tls_args(Side::Src), p.docker_ref(SRC_NAME)),
            _ => (self.src.tls_args(Side::Src), self.src.docker_ref(SRC_NAME)),
        };
        let dst_name = format!("{DST_REPO}:{DST_TAG}");
        let (dst_args, dst_ref) = match via {
            Via::Dst(p) => (p.tls_args(Side::Dest), p.docker_ref(&dst_name)),
            _ => (
                self.dst.tls_args(Side::Dest),
                self.dst.docker_ref(&dst_name),
            ),
        };
        let mut args = bounded();
        if extra.iter().any(|a| a.starts_with("--retry-times")) {
            args.retain(|a| !a.starts_with("--retry-times"));
        }
        ferry()
            .args(args)
            .args(extra)
            .args(src_args)
            .args(dst_args)
            .arg(src_ref)
            .arg(dst_ref)
            .run()
    }

    /// The copy succeeded and the destination holds exactly the source image.
    #[track_caller]
    pub(crate) fn assert_copied(&self, out: &Output) {
        out.assert_success();
        assert_no_panic(out);
        let got = self.dst.get_manifest(DST_REPO, DST_TAG).expect("dst tag");
        assert_eq!(got.digest, self.fx.digest, "destination digest\n{out}");
        assert_eq!(got.bytes, self.fx.manifest);
        for (digest, _) in self.fx.blobs() {
            assert_eq!(
                self.dst.get_blob(DST_REPO, &digest).as_deref(),
                Some(self.fx.blob(&digest).as_slice()),
                "blob {digest} at the destination"
            );
        }
    }

    /// The copy failed with exit 1 and one error line mentioning every needle, and the
    /// destination tag still points at the older image.
    #[track_caller]
    pub(crate) fn assert_failed_cleanly(&self, out: &Output, needles: &[&str]) {
        assert_eq!(out.code, Some(1), "exit code\n{out}");
        assert_no_panic(out);
        let line = one_error_line(out);
        for n in needles {
            assert!(line.contains(n), "error line lacks {n:?}: {line}\n{out}");
        }
        assert_eq!(
            self.dst.manifest_digest(DST_REPO, DST_TAG).as_deref(),
            Some(self.old.digest.as_str()),
            "the destination tag moved\n{out}"
        );
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Via<'a> {
    Src(&'a FaultProxy),
    Dst(&'a FaultProxy),
}

/// Flags that keep every run short: 10 ms between retries, a 2 s stall timeout. No command
/// timeout: a copy that hangs is ended by the lab's hang guard (`Tool::run`'s timeout).
pub(crate) fn bounded() -> Vec<&'static str> {
    vec![
        "copy",
        "--retry-times=3",
        "--retry-delay=10ms",
        "--stall-timeout=2s",
    ]
}

#[track_caller]
pub(crate) fn assert_no_panic(out: &Output) {
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "ferry panicked\n{out}"
    );
}

/// The single `Error:` line of stderr.
#[track_caller]
pub(crate) fn one_error_line(out: &Output) -> String {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line\n{out}");
    lines[0].to_string()
}

pub(crate) fn blob_path(digest: &str) -> String {
    format!("/blobs/{digest}$")
}

// ---------------------------------------------------------------------------------------------
// Source downloads.

#[test]
fn reset_mid_blob_once_resumes_with_range() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    let big = lab.big().digest.clone();
    proxy.add(Rule::new("GET", &blob_path(&big), Fault::ResetAfter(400_000)).once());
    let out = lab.copy(Via::Src(&proxy), &[]);
    lab.assert_copied(&out);
    let gets = proxy.requests_to("GET", &big);
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(gets[0].header("range"), None);
    let range = gets[1].header("range").expect("resumed with Range");
    let from: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Range {range:?}"));
    assert!(from > 0 && from <= 400_000, "resumed at {from}");
}

#[test]
fn reset_twice_on_the_same_blob_and_on_a_small_blob() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    let (big, small) = (lab.big().digest.clone(), lab.small().digest.clone());
    proxy.add(Rule::new("GET", &blob_path(&big), Fault::ResetAfter(300_000)).times(2));
    proxy.add(Rule::new("GET", &blob_path(&small), Fault::ResetAfter(50_000)).once());
    let out = lab.copy(Via::Src(&proxy), &[]);
    lab.assert_copied(&out);
    assert_eq!(proxy.requests_to("GET", &big).len(), 3);
    // A small blob is read whole: it is fetched again from the start.
    let small_gets = proxy.requests_to("GET", &small);
    assert_eq!(small_gets.len(), 2);
    assert!(small_gets.iter().all(|s| s.header("range").is_none()));
}

#[test]
fn server_errors_on_manifest_and_blob_gets_are_retried() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    let manifest = proxy.add(Rule::new("GET", "/manifests/", Fault::status(500)).once());
    let big = proxy.add(Rule::new("GET", &blob_path(&lab.big().digest), Fault::status(502)).once());
    let small =
        proxy.add(Rule::new("GET", &blob_path(&lab.small().digest), Fault::status(503)).times(2));
    let out = lab.copy(Via::Src(&proxy), &[]);
    lab.assert_copied(&out);
    assert_eq!(
        (proxy.hits(manifest), proxy.hits(big), proxy.hits(small)),
        (1, 1, 2)
    );
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    proxy.add(Rule::new("GET", "/manifests/v2$", Fault::too_many(1)).once());
    // 429 is honoured even when no retries are configured.
    let out = lab.copy(Via::Src(&proxy), &["--retry-times=0"]);
    lab.assert_copied(&out);
    let gets = proxy.requests_to("GET", "/manifests/v2");
    assert_eq!(gets.len(), 2);
    let waited = gets[1].at - gets[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 not honoured (retried after {waited:?})"
    );
}

#[test]
fn stalled_bodies_time_out_and_resume() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    let (big, small) = (lab.big().digest.clone(), lab.small().digest.clone());
    proxy.add(Rule::new("GET", &blob_path(&big), Fault::StallAfter(200_000)).once());
    proxy.add(Rule::new("GET", &blob_path(&small), Fault::StallAfter(0)).once());
    proxy.add(Rule::new("GET", "/manifests/v2$", Fault::StallAfter(10)).once());
    let out = lab.copy(Via::Src(&proxy), &[]);
    lab.assert_copied(&out);
    // The stalled bodies were left, not waited out: the big blob resumed with Range.
    let gets = proxy.requests_to("GET", &big);
    assert_eq!(gets.len(), 2);
    assert!(gets[1].header("range").is_some(), "{gets:#?}");
}

#[test]
fn truncated_bodies_once_are_recovered() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    let (big, small) = (lab.big().digest.clone(), lab.small().digest.clone());
    proxy.add(Rule::new("GET", &blob_path(&big), Fault::TruncateAfter(500_000)).once());
    proxy.add(Rule::new("GET", &blob_path(&small), Fault::TruncateAfter(1000)).once());
    proxy.add(Rule::new("GET", "/manifests/v2$", Fault::TruncateAfter(100)).once());
    let out = lab.copy(Via::Src(&proxy), &[]);
    lab.assert_copied(&out);
}

#[test]
fn persistent_download_faults_fail_cleanly_and_leave_the_tag() {
    let lab = Lab::new();
    let proxy = FaultProxy::start(&lab.src);
    let big = lab.big().digest.clone();
    let host = proxy.host();
    let short = &big["sha256:".len().."sha256:".len() + 12];
    // (fault, what the error line says, how many GETs of the blob at most: 1 + 3 retries per
    // request and per blob transfer, never nested; a 429 is retried at least 5 times; each
    // interrupted download may resume 5 times when it made progress, and a resumed request
    // that fails before its answer has its own retries).
    let cases: Vec<(Fault, Vec<&str>, usize)> = vec![
        (
            Fault::status(503),
            vec!["HTTP 503", short, "gave up after 3 retries"],
            4,
        ),
        (
            Fault::too_many(0),
            vec!["HTTP 429", short, "gave up after 8 retries"],
            9,
        ),
        (
            Fault::TruncateAfter(100_000),
            vec![short, "gave up after 3 retries"],
            4 * 6 + 4,
        ),
        (
            Fault::ResetAfter(100_000),
            vec![short, "gave up after 3 retries"],
            4 * 6 + 4,
        ),
        (
            Fault::StallAfter(0),
            vec![short, "stalled", "gave up after 3 retries"],
            4,
        ),
    ];
    for (fault, needles, max_gets) in cases {
        let name = format!("{needles:?}");
        let id = proxy.add(Rule::new("GET", &blob_path(&big), fault));
        let out = lab.copy(Via::Src(&proxy), &[]);
        let mut needles = needles;
        needles.push(&host);
        lab.assert_failed_cleanly(&out, &needles);
        let gets = proxy.hits(id);
        assert!(
            (2..=max_gets).contains(&gets),
            "{name}: {gets} GETs, expected 2..={max_gets}\n{out}"
        );
        proxy.clear();
    }
}

#[test]
fn a_flipped_byte_fails_and_is_never_retried() {
    // A streamed blob and a small one, each on a fresh destination (the blob the first run
    // did not corrupt would be "already present" in the second).
    for (big, at) in [(true, 1_000_000), (false, 4321)] {
        let lab = Lab::new();
        let proxy = FaultProxy::start(&lab.src);
        let digest = if big {
            &lab.big().digest
        } else {
            &lab.small().digest
        };
        proxy.add(Rule::new("GET", &blob_path(digest), Fault::FlipByte(at)));
        let out = lab.copy(Via::Src(&proxy), &[]);
        lab.assert_failed_cleanly(&out, &["digest mismatch", digest, &proxy.host()]);
        assert_eq!(
            proxy.requests_to("GET", digest).len(),
            1,
            "a digest mismatch was retried\n{out}"
        );
        assert!(
            !lab.dst.blob_exists(DST_REPO, digest),
            "the corrupt blob was committed at the destination"
        );
    }
}

#[test]
fn manifest_bytes_not_matching_the_digest_asked_for() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let idx = IndexSpec::oci().platforms(2).own_layers(&[1000]).build();
    idx.seed(&src, SRC_NAME);
    let old = ImageSpec::oci().layers(&[100]).build();
    old.seed(&dst, &format!("{DST_REPO}:{DST_TAG}"));
    let proxy = FaultProxy::start(&src);
    // A child of the index, fetched by digest, comes back with other (valid JSON) bytes.
    let child = idx.images[1].digest.clone();
    proxy.add(Rule::new(
        "GET",
        &format!("/manifests/{child}$"),
        Fault::rewrite(|mut b| {
            b.extend_from_slice(b"\n");
            b
        }),
    ));
    // And the top manifest when asked for by digest.
    let top = idx.digest;
    proxy.add(Rule::new(
        "GET",
        &format!("/manifests/{top}$"),
        Fault::rewrite(|mut b| {
            b.insert(0, b' ');
            b
        }),
    ));
    let dst_ref = dst.docker_ref(&format!("{DST_REPO}:{DST_TAG}"));
    for (src_ref, what) in [
        (proxy.docker_ref(SRC_NAME), child.clone()),
        (proxy.docker_ref(&format!("ns/app@{top}")), top),
    ] {
        let out = ferry()
            .args(bounded())
            .args(proxy.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest))
            .arg(&src_ref)
            .arg(&dst_ref)
            .run();
        assert_eq!(out.code, Some(1), "{out}");
        assert_no_panic(&out);
        let line = one_error_line(&out);
        assert!(
            line.contains("digest mismatch") && line.contains(&what),
            "{line}"
        );
        assert_eq!(
            proxy
                .requests_to("GET", &format!("/manifests/{what}"))
                .len(),
            1
        );
        assert_eq!(
            dst.manifest_digest(DST_REPO, DST_TAG),
            Some(old.digest.clone())
        );
    }
    // Nothing of the index was written.
    assert!(dst.get_manifest(DST_REPO, &child).is_none());
}

#[test]
fn blob_redirects_to_another_host_carry_no_credentials() {
    let users = vec![("puller".to_string(), "pull-secret-1".to_string())];
    let src = Registry::start(RegistryOptions {
        auth: Auth::Basic(users),
        ..Default::default()
    });
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci()
        .uncompressed()
        .layers(&[BIG, SMALL])
        .build();
    fx.seed(&src, SRC_NAME);
    // The "storage backend": another loopback address that serves blobs by digest.
    let store = FaultProxy::standalone("127.0.0.2");
    let blobs: Vec<(String, Vec<u8>)> = fx
        .blobs()
        .into_iter()
        .map(|(d, _)| {
            let b = fx.blob(&d);
            (d, b)
        })
        .collect();
    store.add(Rule::new(
        "GET",
        "/blobs/",
        Fault::respond(move |seen| {
            let digest = seen.last_segment();
            match blobs.iter().find(|(d, _)| d == digest) {
                Some((_, b)) => axum::response::Response::builder()
                    .status(200)
                    .header("content-type", "application/octet-stream")
                    .header("content-length", b.len())
                    .body(axum::body::Body::from(b.clone()))
                    .unwrap(),
                None => axum::response::Response::builder()
                    .status(404)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            }
        }),
    ));
    let proxy = FaultProxy::start(&src);
    proxy.add(Rule::new(
        "GET",
        "/blobs/sha256:",
        Fault::Redirect(store.url()),
    ));
    let out = ferry()
        .args(bounded())
        .args(proxy.tls_args(Side::Src))
        .arg("--src-creds=puller:pull-secret-1")
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref(SRC_NAME))
        .arg(dst.docker_ref(&format!("{DST_REPO}:{DST_TAG}")))
        .run();
    out.assert_success();
    assert_eq!(
        dst.manifest_digest(DST_REPO, DST_TAG).as_deref(),
        Some(fx.digest.as_str())
    );
    let redirected = proxy.requests_to("GET", "/blobs/sha256:");
    assert_eq!(redirected.len(), 3, "{redirected:#?}");
    assert!(
        redirected
            .iter()
            .all(|s| s.header("authorization").is_some()),
        "ferry sent no credentials to the registry itself: the check below would prove nothing"
    );
    let at_store = store.requests();
    assert_eq!(at_store.len(), 3, "{at_store:#?}");
    for s in &at_store {
        assert!(
            s.header("authorization").is_none(),
            "Authorization reached the redirect target: {s:#?}"
        );
    }
}
