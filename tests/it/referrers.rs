//! Signatures, attestations and SBOMs travel with the image: cosign attachment tags
//! (`sha256-<hex>.sig`, `.att`, `.sbom`) and OCI 1.1 referrers, byte for byte, recursively,
//! before the tag moves. The lab's registry (distribution 2.8) has no referrers API — the
//! fallback-tag registry; the API side is the stand-in of `support/referrers.rs`.

use std::collections::BTreeSet;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::referrers::*;
use crate::support::*;

/// Everything attached to one image in a fallback-tag registry.
pub(crate) struct Attachments {
    pub(crate) sig: Artifact,
    pub(crate) att: Artifact,
    pub(crate) sbom: Artifact,
    /// A cosign signature of the `.sbom` manifest (depth 2, tag scheme).
    pub(crate) sbom_sig: Artifact,
    /// Referrers of the image.
    pub(crate) sbom_ref: Artifact,
    pub(crate) sig_ref: Artifact,
    /// A signature referrer of the SBOM referrer (depth 2).
    pub(crate) sig_of_sbom_ref: Artifact,
}

impl Attachments {
    /// `(tag, artifact)` of every attachment tag.
    pub(crate) fn tags(&self, image: &str) -> Vec<(String, &Artifact)> {
        let t = fallback_tag(image);
        vec![
            (format!("{t}.sig"), &self.sig),
            (format!("{t}.att"), &self.att),
            (format!("{t}.sbom"), &self.sbom),
            (
                format!("{}.sig", fallback_tag(&self.sbom.digest)),
                &self.sbom_sig,
            ),
        ]
    }

    fn all(&self) -> Vec<&Artifact> {
        vec![
            &self.sig,
            &self.att,
            &self.sbom,
            &self.sbom_sig,
            &self.sbom_ref,
            &self.sig_ref,
            &self.sig_of_sbom_ref,
        ]
    }
}

/// Attach everything to `image` in `repo` of a registry without the referrers API, as cosign
/// and an OCI 1.1 client do there: tags for cosign, referrers by digest plus the fallback tag.
pub(crate) fn attach(reg: &Registry, repo: &str, image: &Manifest) -> Attachments {
    let base = reg.url();
    let subject = Subject::of(image);
    let a = Attachments {
        sig: cosign_signature(&image.digest, &reg.image(repo), "one"),
        att: cosign_attestation(&image.digest),
        sbom: cosign_sbom("app"),
        sbom_sig: cosign_signature("later", &reg.image(repo), "sbom"),
        sbom_ref: sbom_referrer(&subject),
        sig_ref: signature_referrer(&subject),
        sig_of_sbom_ref: cosign_signature("x", "y", "z"),
    };
    let sbom_sig = cosign_signature(&a.sbom.digest, &reg.image(repo), "sbom");
    let sig_of_sbom_ref = signature_referrer(&a.sbom_ref.subject());
    let a = Attachments {
        sbom_sig,
        sig_of_sbom_ref,
        ..a
    };
    for (tag, art) in a.tags(&image.digest) {
        art.push(&base, repo, Some(&tag));
    }
    for r in [&a.sbom_ref, &a.sig_ref, &a.sig_of_sbom_ref] {
        r.push(&base, repo, None);
    }
    fallback_index(&[&a.sbom_ref, &a.sig_ref]).push(
        &base,
        repo,
        Some(&fallback_tag(&image.digest)),
    );
    fallback_index(&[&a.sig_of_sbom_ref]).push(
        &base,
        repo,
        Some(&fallback_tag(&a.sbom_ref.digest)),
    );
    a
}

pub(crate) fn copy(
    tool: &mut Tool,
    extra: &[&str],
    src: (&[String], String),
    dst: (&[String], String),
) -> Output {
    tool.arg("copy")
        .args(extra)
        .args(src.0)
        .args(dst.0)
        .arg(src.1)
        .arg(dst.1)
        .run()
}

pub(crate) fn report(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub(crate) fn set(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

/// Every attachment is at the destination, byte for byte, with its blobs.
pub(crate) fn assert_carried(dst: &Registry, repo: &str, image: &str, a: &Attachments) {
    for art in a.all() {
        let got = dst
            .get_manifest(repo, &art.digest)
            .unwrap_or_else(|| panic!("{} missing at the destination", art.digest));
        assert_eq!(got.bytes, art.manifest);
        for b in &art.blobs {
            assert!(dst.blob_exists(repo, &sha256_digest(b)));
        }
    }
    for (tag, art) in a.tags(image) {
        assert_eq!(
            dst.manifest_digest(repo, &tag).as_deref(),
            Some(art.digest.as_str()),
            "{tag}"
        );
    }
    let idx = dst
        .get_manifest(repo, &fallback_tag(image))
        .expect("fallback tag of the image");
    assert_eq!(
        set(listed(&idx.bytes)),
        set(vec![a.sbom_ref.digest.clone(), a.sig_ref.digest.clone()])
    );
    let idx = dst
        .get_manifest(repo, &fallback_tag(&a.sbom_ref.digest))
        .expect("fallback tag of the SBOM");
    assert_eq!(listed(&idx.bytes), vec![a.sig_of_sbom_ref.digest.clone()]);
}

#[test]
fn everything_attached_travels_before_the_tag_and_a_rerun_writes_nothing() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1500, 3000]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let a = attach(&src, "ns/app", &image);

    let sb = Sandbox::new();
    let rep = sb.path().join("report.json");
    let rep_arg = format!("--report={}", rep.display());
    let s = (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1"));
    let d = (&dst.tls_args(Side::Dest)[..], dst.docker_ref("prod/app:v1"));
    let mark = dst.mark();
    let out = copy(&mut sb.ferry(), &[&rep_arg], s.clone(), d.clone());
    out.assert_success();
    assert_eq!(
        dst.manifest_digest("prod/app", "v1"),
        Some(image.digest.clone())
    );
    assert_carried(&dst, "prod/app", &image.digest, &a);
    assert!(
        out.stdout
            .contains(", 3 referrer(s), 4 attachment tag(s) in"),
        "{out}"
    );
    let r = report(&rep);
    assert_eq!(
        r["referrers"],
        serde_json::json!({"copied": 3, "already_present": 0, "skipped_by_filter": 0})
    );
    assert_eq!(
        r["attachments"],
        serde_json::json!({"copied": 4, "already_present": 0, "skipped_by_filter": 0})
    );

    // Order: the image by digest, then what is attached, then — last — the tag.
    let puts: Vec<String> = dst
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.kind() == RequestKind::ManifestPut)
        .map(|r| r.reference().unwrap())
        .collect();
    assert_eq!(puts.first(), Some(&image.digest), "{puts:#?}");
    assert_eq!(puts.last().map(String::as_str), Some("v1"), "{puts:#?}");
    assert_eq!(puts.iter().filter(|p| *p == "v1").count(), 1);
    let sbom_at = puts.iter().position(|p| *p == a.sbom_ref.digest).unwrap();
    let sig_of_sbom_at = puts
        .iter()
        .position(|p| *p == a.sig_of_sbom_ref.digest)
        .unwrap();
    assert!(
        sbom_at < sig_of_sbom_at,
        "a referrer after its subject: {puts:#?}"
    );

    // Again: everything is there; nothing is written.
    let mark = dst.mark();
    let out = copy(&mut sb.ferry(), &[&rep_arg], s, d);
    out.assert_success();
    assert!(out.stdout.contains("already present"), "{out}");
    let written: Vec<_> = dst
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .collect();
    assert!(written.is_empty(), "{written:#?}");
    let r = report(&rep);
    assert_eq!(r["referrers"]["already_present"], 3);
    assert_eq!(r["attachments"]["already_present"], 4);
}

#[test]
fn a_rerun_repairs_a_copy_that_lost_its_attachments() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::docker().layers(&[2000]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let a = attach(&src, "ns/app", &image);
    let sb = Sandbox::new();
    let s = (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1"));
    let d = (&dst.tls_args(Side::Dest)[..], dst.docker_ref("prod/app:v1"));

    // A copy without them (as skopeo would make it).
    copy(&mut sb.ferry(), &["--referrers=none"], s.clone(), d.clone()).assert_success();
    assert!(
        dst.tags("prod/app")
            .iter()
            .all(|t| !t.starts_with("sha256-"))
    );

    let out = copy(&mut sb.ferry(), &[], s.clone(), d.clone());
    out.assert_success();
    assert!(out.stdout.contains("already present at"), "{out}");
    assert!(
        out.stdout
            .contains("added what it lacked, 3 referrer(s), 4 attachment tag(s)"),
        "{out}"
    );
    assert_carried(&dst, "prod/app", &image.digest, &a);

    // One referrer lost at the destination (its fallback entry stays): put back.
    assert_eq!(dst.delete_manifest("prod/app", &a.sig_ref.digest), 202);
    let rep = sb.path().join("r.json");
    let out = copy(
        &mut sb.ferry(),
        &[&format!("--report={}", rep.display())],
        s,
        d,
    );
    out.assert_success();
    assert_carried(&dst, "prod/app", &image.digest, &a);
    let r = report(&rep);
    assert_eq!(r["referrers"]["copied"], 1, "{out}");
    assert_eq!(r["referrers"]["already_present"], 2);
    assert_eq!(r["attachments"]["already_present"], 4);
}

#[test]
fn referrers_api_and_fallback_tag_convert_both_ways() {
    let src_reg = Registry::start(RegistryOptions::default());
    let mid = Registry::start(RegistryOptions::default());
    let end_reg = Registry::start(RegistryOptions::default());
    let (src, end) = (FaultProxy::start(&src_reg), FaultProxy::start(&end_reg));
    let (src_api, end_api) = (ReferrersApi::serve(&src), ReferrersApi::serve(&end));
    let fx = ImageSpec::oci().layers(&[1200]).build();
    fx.seed(&src_reg, "ns/app:v1");
    let image = src_reg.get_manifest("ns/app", "v1").unwrap();
    let sbom = sbom_referrer(&Subject::of(&image));
    let sig = signature_referrer(&Subject::of(&image));
    let sig_of_sbom = signature_referrer(&sbom.subject());
    let att = attestation_referrer(&Subject::of(&image));
    for r in [&sbom, &sig, &sig_of_sbom, &att] {
        let h = r.push(&src.url(), "ns/app", None);
        assert!(
            h.get("oci-subject").is_some(),
            "the stand-in indexes what it stores"
        );
    }
    assert_eq!(src_api.referrers("ns/app", &image.digest).len(), 3);

    // API → fallback tag.
    let sb = Sandbox::new();
    let out = copy(
        &mut sb.ferry(),
        &[],
        (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1")),
        (&mid.tls_args(Side::Dest)[..], mid.docker_ref("mid/app:v1")),
    );
    out.assert_success();
    assert!(out.stdout.contains(", 4 referrer(s) in"), "{out}");
    let idx = mid
        .get_manifest("mid/app", &fallback_tag(&image.digest))
        .unwrap();
    assert_eq!(
        set(listed(&idx.bytes)),
        set(vec![
            sbom.digest.clone(),
            sig.digest.clone(),
            att.digest.clone()
        ])
    );
    let idx = mid
        .get_manifest("mid/app", &fallback_tag(&sbom.digest))
        .unwrap();
    assert_eq!(listed(&idx.bytes), vec![sig_of_sbom.digest.clone()]);
    for r in [&sbom, &sig, &sig_of_sbom, &att] {
        assert_eq!(
            mid.get_manifest("mid/app", &r.digest).unwrap().bytes,
            r.manifest
        );
    }

    // Fallback tag → API: the destination indexes them; no fallback tag is written there.
    let out = copy(
        &mut sb.ferry(),
        &[],
        (&mid.tls_args(Side::Src)[..], mid.docker_ref("mid/app:v1")),
        (&end.tls_args(Side::Dest)[..], end.docker_ref("end/app:v1")),
    );
    out.assert_success();
    assert_eq!(
        set(end_api.referrers("end/app", &image.digest)),
        set(vec![sbom.digest.clone(), sig.digest, att.digest])
    );
    assert_eq!(
        end_api.referrers("end/app", &sbom.digest),
        vec![sig_of_sbom.digest]
    );
    assert_eq!(end_reg.tags("end/app"), vec!["v1".to_string()]);
    assert_eq!(
        end_reg.manifest_digest("end/app", "v1"),
        Some(image.digest.clone())
    );

    // A filter the registry applies (OCI-Filters-Applied), and one it ignores: the same result.
    for (ignore, repo) in [(false, "sbom/app:v1"), (true, "sbom2/app:v1")] {
        src_api.ignore_filters(ignore);
        let rep = sb.path().join(format!("{ignore}.json"));
        let out = copy(
            &mut sb.ferry(),
            &[
                "--referrers-artifact-type",
                SPDX,
                &format!("--report={}", rep.display()),
            ],
            (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1")),
            (&mid.tls_args(Side::Dest)[..], mid.docker_ref(repo)),
        );
        out.assert_success();
        let r = repo.split(':').next().unwrap();
        let idx = mid.get_manifest(r, &fallback_tag(&image.digest)).unwrap();
        assert_eq!(listed(&idx.bytes), vec![sbom.digest.clone()], "{out}");
        // The signature of the SBOM is not an SBOM either.
        assert!(mid.get_manifest(r, &fallback_tag(&sbom.digest)).is_none());
        let rep = report(&rep);
        assert_eq!(rep["referrers"]["copied"], 1);
        // Filtered by the registry, ferry never saw them; else ferry left out three (the signature and the attestation of the image, the signature of the SBOM).
        let skipped = if ignore { 3 } else { 0 };
        assert_eq!(rep["referrers"]["skipped_by_filter"], skipped, "{rep}");
    }
}

#[test]
fn children_of_an_index_carry_their_own_referrers() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = IndexSpec::oci().platforms(2).build();
    fx.seed(&src, "ns/multi:v1");
    let base = src.url();
    let mut expected = vec![];
    let index = src.get_manifest("ns/multi", "v1").unwrap();
    for digest in fx.child_digests().into_iter().chain([index.digest.clone()]) {
        let m = src.get_manifest("ns/multi", &digest).unwrap();
        let r = sbom_referrer(&Subject::of(&m));
        r.push(&base, "ns/multi", None);
        fallback_index(&[&r]).push(&base, "ns/multi", Some(&fallback_tag(&digest)));
        expected.push((digest, r));
    }
    let out = copy(
        &mut ferry(),
        &[],
        (&src.tls_args(Side::Src)[..], src.docker_ref("ns/multi:v1")),
        (
            &dst.tls_args(Side::Dest)[..],
            dst.docker_ref("prod/multi:v1"),
        ),
    );
    out.assert_success();
    assert!(out.stdout.contains(", 3 referrer(s) in"), "{out}");
    for (digest, r) in &expected {
        let idx = dst
            .get_manifest("prod/multi", &fallback_tag(digest))
            .unwrap();
        assert_eq!(listed(&idx.bytes), vec![r.digest.clone()]);
        assert_eq!(
            dst.get_manifest("prod/multi", &r.digest).unwrap().bytes,
            r.manifest
        );
    }
    assert_eq!(dst.manifest_digest("prod/multi", "v1"), Some(index.digest));
}

#[test]
fn a_referrer_that_fails_leaves_the_tag_where_it_was() {
    let src = Registry::start(RegistryOptions::default());
    let dst_reg = Registry::start(RegistryOptions::default());
    let dst = FaultProxy::start(&dst_reg);
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let a = attach(&src, "ns/app", &image);
    dst.add(Rule::new(
        "PUT",
        &format!("/manifests/{}$", a.sbom_ref.digest),
        Fault::status(400),
    ));
    let out = copy(
        &mut ferry(),
        &[],
        (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1")),
        (&dst.tls_args(Side::Dest)[..], dst.docker_ref("prod/app:v1")),
    );
    assert_eq!(out.code, Some(1), "{out}");
    let line = crate::faults::one_error_line(&out);
    assert!(
        line.starts_with(&format!(
            "Error: copying referrer {} ({SPDX}) of {}",
            a.sbom_ref.digest,
            &image.digest[..19]
        )),
        "{out}"
    );
    assert_eq!(dst_reg.manifest_digest("prod/app", "v1"), None);
    assert!(dst.requests_to("PUT", "/manifests/v1").is_empty());
}

#[test]
fn a_referrer_blob_that_cannot_be_read_is_named_and_the_tag_stays() {
    let src_reg = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&src_reg, "ns/app:v1");
    let image = src_reg.get_manifest("ns/app", "v1").unwrap();
    let a = attach(&src_reg, "ns/app", &image);
    let src = FaultProxy::start(&src_reg);
    let payload = sha256_digest(&a.sbom_ref.blobs[1]);
    src.add(Rule::new(
        "GET",
        &format!("/blobs/{payload}$"),
        Fault::status(503),
    ));
    // The tag already names an older image: it must still name it afterwards.
    let old = ImageSpec::oci().layers(&[999]).build();
    old.seed(&dst, "prod/app:v1");
    let out = copy(
        &mut ferry(),
        &["--retry-times=1", "--retry-delay=10ms"],
        (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1")),
        (&dst.tls_args(Side::Dest)[..], dst.docker_ref("prod/app:v1")),
    );
    assert_eq!(out.code, Some(1), "not 2: the image exists\n{out}");
    let line = crate::faults::one_error_line(&out);
    assert!(
        line.starts_with(&format!("Error: copying referrer {}", a.sbom_ref.digest))
            && line.contains("HTTP 503")
            && line.contains("gave up after 1 retry"),
        "{out}"
    );
    assert_eq!(dst.manifest_digest("prod/app", "v1"), Some(old.digest));
}

#[test]
fn nothing_attached_costs_one_tag_list_and_one_referrers_probe() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1000, 2000]).build();
    fx.seed(&src, "ns/app:v1");
    let count = |extra: &[&str], to: &str| {
        let mark = src.mark();
        copy(
            &mut ferry(),
            extra,
            (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1")),
            (&dst.tls_args(Side::Dest)[..], dst.docker_ref(to)),
        )
        .assert_success();
        src.requests_since(mark)
    };
    let without = count(&["--referrers=none"], "a/app:v1");
    let with = count(&[], "b/app:v1");
    let extra: Vec<_> = with
        .iter()
        .filter(|r| r.kind() == RequestKind::TagsList || r.path.contains("/referrers/"))
        .collect();
    assert_eq!(extra.len(), 2, "{with:#?}");
    // `--referrers=none` still looks for a cosign signature to name (one HEAD of its tag);
    // with attachments on, the tag list answers that too.
    let probes = |l: &[LoggedRequest]| {
        l.iter()
            .filter(|r| r.kind() == RequestKind::ManifestHead && r.path.ends_with(".sig"))
            .count()
    };
    assert_eq!((probes(&without), probes(&with)), (1, 0));
    assert_eq!(with.len(), without.len() + 1, "{without:#?}\n{with:#?}");
}
