//! More of what travels with an image (see `referrers.rs`): `sync` and `promote` carry it,
//! invoked as `skopeo` nothing is carried but named, `ferry tree` shows it, and a stale or
//! lying referrers list is named or refused.

use crate::referrers::{assert_carried, attach, copy, report};
use crate::support::fixtures::*;
use crate::support::referrers::*;
use crate::support::*;

#[test]
fn sync_carries_attachments_and_lists_tags_once() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let mut attached = vec![];
    for (i, tag) in ["v1", "v2", "v3"].iter().enumerate() {
        let fx = ImageSpec::oci().layers(&[800 + i]).build();
        fx.seed(&src, &format!("ns/app:{tag}"));
        let image = src.get_manifest("ns/app", tag).unwrap();
        let sig = cosign_signature(&image.digest, &src.image("ns/app"), tag);
        sig.push(
            &src.url(),
            "ns/app",
            Some(&format!("{}.sig", fallback_tag(&image.digest))),
        );
        attached.push((image, sig));
    }
    let mark = src.mark();
    let out = ferry()
        .args(["sync", "--src", "docker", "--dest", "docker"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.image("ns/app"))
        .arg(dst.image("mirror"))
        .run();
    out.assert_success();
    // The .sig tags travel with their images; they are not images of their own.
    assert!(
        out.stdout.contains(
            "Synced 3 images from 1 sources: 3 copied, 0 already present, 0 failed; attachment tags: 3 copied, 0 already present, 0 skipped by filter"
        ),
        "{out}"
    );
    for (image, sig) in &attached {
        let tag = format!("{}.sig", fallback_tag(&image.digest));
        assert_eq!(
            dst.manifest_digest("mirror/app", &tag),
            Some(sig.digest.clone())
        );
    }
    let lists = src
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.kind() == RequestKind::TagsList)
        .count();
    assert_eq!(lists, 1, "the source's tags are listed once");

    // Across repositories (one client each): the referrers API is looked for once per registry.
    let fx = ImageSpec::oci().layers(&[700]).build();
    fx.seed(&src, "ns/other:v1");
    let sb = Sandbox::new();
    let yaml = sb.path().join("sync.yaml");
    std::fs::write(
        &yaml,
        format!(
            "{}:\n  images:\n    ns/app: [v1, v2]\n    ns/other: [v1]\n  tls-verify: false\n",
            src.host()
        ),
    )
    .unwrap();
    let mark = src.mark();
    sb.ferry()
        .args(["sync", "--src", "yaml", "--dest", "docker"])
        .args(dst.tls_args(Side::Dest))
        .arg(&yaml)
        .arg(dst.image("yaml"))
        .run()
        .assert_success();
    let seen = src.requests_since(mark);
    let probes = seen
        .iter()
        .filter(|r| r.path.contains("/referrers/"))
        .count();
    let lists = seen
        .iter()
        .filter(|r| r.kind() == RequestKind::TagsList)
        .count();
    assert_eq!((probes, lists), (1, 2), "{seen:#?}");
}

#[test]
fn as_skopeo_nothing_attached_is_copied_and_the_signature_is_named() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1000]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    attach(&src, "ns/app", &image);
    let out = copy(
        &mut ferry_as_skopeo(),
        &[],
        (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1")),
        (&dst.tls_args(Side::Dest)[..], dst.docker_ref("prod/app:v1")),
    );
    out.assert_success();
    assert_eq!(dst.tags("prod/app"), vec!["v1".to_string()]);
    assert!(
        out.stderr.contains(&format!(
            "cosign signature {}.sig",
            fallback_tag(&image.digest)
        )),
        "{out}"
    );
}

#[test]
fn tree_shows_what_is_attached_as_text_and_json() {
    let src = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[700]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let a = attach(&src, "ns/app", &image);
    let tree = |extra: &[&str]| {
        let out = ferry()
            .arg("tree")
            .args(extra)
            .args(src.tls_args(Side::Plain))
            .arg(src.docker_ref("ns/app:v1"))
            .run();
        out.assert_success();
        out
    };
    let out = tree(&[]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], src.image("ns/app:v1"));
    assert!(
        lines[1].starts_with(&format!("{} {OCI_MANIFEST} ", image.digest)),
        "{out}"
    );
    assert_eq!(lines.len(), 2 + 7, "{out}");
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in\n{out}"))
    };
    let indent = |i: usize| lines[i].find(|c: char| c.is_ascii_alphanumeric()).unwrap();
    let sbom = at(&format!("referrer {} {SPDX}", a.sbom_ref.digest));
    let sig_of_sbom = at(&a.sig_of_sbom_ref.digest);
    assert!(indent(sig_of_sbom) > indent(sbom), "{out}");
    let tag = at(&format!(
        "tag {}.sig {}",
        fallback_tag(&image.digest),
        a.sig.digest
    ));
    assert_eq!(indent(tag), indent(sbom));

    let out = tree(&["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["digest"], image.digest.as_str());
    let attached = v["attached"].as_array().unwrap();
    assert_eq!(attached.len(), 5, "{out}");
    let sbom = attached
        .iter()
        .find(|x| x["digest"] == a.sbom_ref.digest.as_str())
        .unwrap();
    assert_eq!(sbom["via"], "referrer");
    assert_eq!(sbom["artifactType"], SPDX);
    assert_eq!(
        sbom["attached"][0]["digest"],
        a.sig_of_sbom_ref.digest.as_str()
    );

    // Filtered: only the SBOMs (the cosign .sbom is text/spdx+json, not an SPDX referrer).
    let out = tree(&["--json", "--referrers-artifact-type", SPDX]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let digests: Vec<&str> = v["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, vec![a.sbom_ref.digest.as_str()], "{out}");
}

#[test]
fn a_stale_or_lying_referrers_list_is_named() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[600]).build();
    fx.seed(&src, "ns/app:v1");
    let other = ImageSpec::oci().layers(&[601]).build();
    other.seed(&src, "ns/app:other");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let base = src.url();
    // A referrer deleted since its fallback entry was written.
    let gone = sbom_referrer(&Subject::of(&image));
    gone.push(&base, "ns/app", None);
    let kept = signature_referrer(&Subject::of(&image));
    kept.push(&base, "ns/app", None);
    fallback_index(&[&gone, &kept]).push(&base, "ns/app", Some(&fallback_tag(&image.digest)));
    assert_eq!(src.delete_manifest("ns/app", &gone.digest), 202);
    let dst_args = dst.tls_args(Side::Dest);
    let to = |repo: &str| (&dst_args[..], dst.docker_ref(repo));
    let from = (&src.tls_args(Side::Src)[..], src.docker_ref("ns/app:v1"));
    let out = copy(&mut ferry(), &[], from.clone(), to("a/app:v1"));
    out.assert_success();
    assert!(
        out.stderr
            .contains(&format!("Note: not copied: referrer {}", gone.digest)),
        "{out}"
    );
    let idx = dst
        .get_manifest("a/app", &fallback_tag(&image.digest))
        .unwrap();
    assert_eq!(listed(&idx.bytes), vec![kept.digest.clone()]);

    // A list that names a manifest referring to something else: refused, nothing moves.
    let other_m = src.get_manifest("ns/app", "other").unwrap();
    let liar = sbom_referrer(&Subject::of(&other_m));
    liar.push(&base, "ns/app", None);
    fallback_index(&[&kept, &liar]).push(&base, "ns/app", Some(&fallback_tag(&image.digest)));
    let out = copy(&mut ferry(), &[], from, to("b/app:v1"));
    assert_eq!(out.code, Some(1), "{out}");
    let line = crate::faults::one_error_line(&out);
    assert!(
        line.contains(&format!("its subject is {}", other_m.digest)),
        "{out}"
    );
    assert!(
        dst.tags("b/app").is_empty(),
        "nothing written before discovery is done"
    );
}

#[test]
fn promote_carries_attachments_and_records_them() {
    let np = Registry::start(RegistryOptions::default());
    let p = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[900]).build();
    fx.seed(&np, "dev/app:v1");
    let image = np.get_manifest("dev/app", "v1").unwrap();
    let a = attach(&np, "dev/app", &image);
    let sb = Sandbox::new();
    let tok = sb.path().join("token");
    std::fs::write(&tok, "t").unwrap();
    let record = sb.path().join("promotion.json");
    let config = crate::promote::write_config(
        sb.path(),
        &crate::promote::promotion_yaml(&[&np.host()], &[&p.host()], &["dev"], &["prod"]),
    );
    let run = || {
        sb.ferry()
            .args(["--insecure-policy", "promote", "--image-name", "app"])
            .arg("--config")
            .arg(&config)
            .args([
                "--non-prod-registry",
                &np.host(),
                "--prod-registry",
                &p.host(),
            ])
            .args([
                "--non-prod-project",
                "dev",
                "--prod-project",
                "prod",
                "--tag",
                "v1",
            ])
            .arg("--src-token-file")
            .arg(&tok)
            .arg("--dest-token-file")
            .arg(&tok)
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("--record={}", record.display()))
            .run()
    };
    let out = run();
    out.assert_success();
    assert_carried(&p, "prod/app", &image.digest, &a);
    assert!(
        out.stdout
            .contains(", 3 referrer(s), 4 attachment tag(s) in"),
        "{out}"
    );
    let r = report(&record);
    assert_eq!(r["referrers"]["copied"], 3);
    assert_eq!(r["attachments"]["copied"], 4);
    let out = run();
    out.assert_success();
    assert!(out.stdout.starts_with("Already promoted"), "{out}");
    let r = report(&record);
    assert_eq!(r["referrers"]["already_present"], 3);
    assert_eq!(r["attachments"]["already_present"], 4);
}
