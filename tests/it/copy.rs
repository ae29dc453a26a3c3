//! `ferry copy` against the lab's real registries, compared with skopeo where they share
//! behaviour. Every test checks the destination through the registry API (not ferry's word),
//! and where it matters, the requests the registry saw.
//!
//! This file: transports (HTTP, HTTPS, client certificates), multi-arch, and doing less
//! (mounts, skipped blobs, already-present images). Authentication is in `copy_auth.rs`,
//! failures in `copy_failures.rs`, digest files, reports and notices in `copy_outputs.rs`.

use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

pub(crate) fn opts(tls: Tls, auth: Auth) -> RegistryOptions {
    RegistryOptions {
        tls,
        auth,
        ..Default::default()
    }
}

/// `ferry copy <extra> <src args> <dst args> SRC DST`, for the copies a [`Pair`] does not
/// spell (a proxy in front of a registry, a side without its flags).
pub(crate) fn ferry_copy(
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
pub(crate) fn assert_holds(reg: &Registry, repo: &str, tag: &str, fx: &Fixture) {
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

pub(crate) fn count(reqs: &[LoggedRequest], kind: RequestKind) -> usize {
    reqs.iter().filter(|r| r.kind() == kind).count()
}

pub(crate) fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---------------------------------------------------------------------------------------------
// Transport variants; the destination digest equals the source's.

#[test]
fn copies_over_plain_http_like_skopeo() {
    let p = Pair::plain();
    let dst = &p.dst;
    let fx = ImageSpec::oci().layers(&[3_000, 2_500_000, 10]).build();
    fx.seed(&p.src, "ns/app:v1");
    let out = p.ferry_copy(&[], "ns/app:v1", "ns/app:v1");
    out.assert_success();
    assert_holds(dst, "ns/app", "v1", &fx);
    // skopeo makes the same copy to another repository: same digest.
    p.skopeo_copy(&["--preserve-digests"], "ns/app:v1", "oracle/app:v1")
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
    let p = Pair::new().tls().build();
    let fx = ImageSpec::docker()
        .uncompressed()
        .layers(&[40_000, 1_500_000])
        .build();
    assert_eq!(fx.image().layers[0].media_type, DOCKER_LAYER_TAR);
    fx.seed(&p.src, "ns/app:v1");
    p.ferry_copy(&["-q"], "ns/app:v1", "ns/app:v1")
        .assert_success();
    assert_holds(&p.dst, "ns/app", "v1", &fx);
}

#[test]
fn copies_with_a_client_certificate_and_fails_without_one() {
    let p = Pair::new().client_cert().build();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[10_000]).build();
    fx.seed(src, "ns/app:v1");
    p.ferry_copy(&["-q"], "ns/app:v1", "ns/app:v1")
        .assert_success();
    assert_holds(dst, "ns/app", "v1", &fx);
    let ca_only = format!("--dest-cert-dir={}", dst.ca_only_cert_dir().display());
    let out = ferry_copy(
        &["-q", "--retry-times=0"],
        &p.src_args(),
        &[ca_only],
        &p.src_ref("ns/app:v1"),
        &p.dst_ref("ns/other:v1"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(dst.manifest_digest("ns/other", "v1"), None);
}

// ---------------------------------------------------------------------------------------------
// Multi-arch.

#[test]
fn multi_arch_all_keeps_the_index_digest_as_skopeo_all_does() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::docker()
        .platforms(3)
        .shared_layers(&[30_000])
        .own_layers(&[20_000])
        .build();
    fx.seed(src, "ns/app:v1");
    // Invoked as ferry, the default is the whole index.
    p.ferry_copy(&["-q"], "ns/app:v1", "ns/app:v1")
        .assert_success();
    assert_holds(dst, "ns/app", "v1", &fx);
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
    p.skopeo_copy(
        &["--all", "--preserve-digests"],
        "ns/app:v1",
        "oracle/app:v1",
    )
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
        &p.src_args(),
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
    let p = Pair::plain();
    let dst = &p.dst;
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64", "linux/arm/v7"])
        .own_layers(&[10_000])
        .build();
    fx.seed(&p.src, "ns/app:v1");
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
        p.ferry_copy(&extra, "ns/app:v1", &format!("ferry/app:{arch}"))
            .assert_success();
        p.copy(
            sk,
            &["--preserve-digests"],
            "ns/app:v1",
            &format!("oracle/app:{arch}"),
        )
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
    let p = Pair::plain();
    let dst = &p.dst;
    let fx = IndexSpec::oci()
        .platform_list(&["linux/arm64", "linux/amd64"])
        .own_layers(&[5_000])
        .build();
    fx.seed(&p.src, "ns/app:v1");
    let run = |tool: Tool, repo: &str| {
        p.copy(
            tool,
            &["-q", "--override-arch=amd64", "--override-os=linux"],
            "ns/app:v1",
            &format!("{repo}:v1"),
        )
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
    let p = Pair::plain();
    let dst = &p.dst;
    let fx = IndexSpec::oci().platforms(2).own_layers(&[5_000]).build();
    fx.seed(&p.src, "ns/app:v1");
    // The children are already at the destination (another tag of the same repository).
    p.ferry_copy(&["-q"], "ns/app:v1", "ns/app:base")
        .assert_success();
    let m = dst.mark();
    p.ferry_copy(
        &["-q", "--multi-arch=index-only"],
        "ns/app:v1",
        "ns/app:ferry",
    )
    .assert_success();
    let reqs = dst.requests_since(m);
    assert_eq!(count(&reqs, RequestKind::ManifestPut), 1, "{reqs:#?}");
    assert_eq!(
        count(&reqs, RequestKind::UploadStart) + count(&reqs, RequestKind::BlobMount),
        0
    );
    p.skopeo_copy(
        &["--multi-arch=index-only", "--preserve-digests"],
        "ns/app:v1",
        "ns/app:oracle",
    )
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
    // One registry, so no pair: source and destination are repositories of the same one.
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
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci()
        .layers(&[10_000, 20_000, 1_500_000])
        .build();
    fx.seed(src, "ns/app:v1");
    fx.seed(dst, "ns/app:old");
    let m = src.mark();
    let md = dst.mark();
    let report = tempfile::NamedTempFile::new().unwrap();
    p.ferry_copy(
        &["-q", "--report", report.path().to_str().unwrap()],
        "ns/app:v1",
        "ns/app:v1",
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
    let p = Pair::new()
        .tls()
        .token("t", &[Grant::push("*")])
        .src(|e| e.creds("a:t"))
        .dst(|e| e.creds("a:t"))
        .build();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::oci().platforms(2).own_layers(&[5_000]).build();
    fx.seed(src, "ns/app:v1");
    p.ferry_copy(&["-q"], "ns/app:v1", "ns/app:v1")
        .assert_success();
    let not_ping = |r: &LoggedRequest| r.kind() != RequestKind::Ping;
    let again = |extra: &[&str]| {
        let (ms, md) = (src.mark(), dst.mark());
        let out = p.ferry_copy(extra, "ns/app:v1", "ns/app:v1");
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
