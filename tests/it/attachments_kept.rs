//! What the destination holds under a cosign tag is never replaced by a copy: a `.sig`
//! attachment that differs from the source's (production added its own signature) gets the
//! source's signatures added to it, as cosign and skopeo add signatures; any other
//! attachment (`.att`, `.sbom`) that differs is kept as it is and named. A re-run of a
//! promotion without its signing flags must not drop production's signature.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::fixtures::*;
use crate::support::referrers::*;
use crate::support::*;

/// The layer digests of the manifest tagged `tag`.
fn layer_digests(reg: &Registry, repo: &str, tag: &str) -> BTreeSet<String> {
    let m = reg.get_manifest(repo, tag).expect("the tag exists");
    let doc: Value = serde_json::from_slice(&m.bytes).unwrap();
    doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn copy(src: &Registry, dst: &Registry) -> Output {
    let out = ferry()
        .arg("copy")
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    out.assert_success();
    out
}

#[test]
fn a_destination_signature_attachment_is_merged_into_never_replaced() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[900]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let tag = format!("{}.sig", fallback_tag(&image.digest));
    let team = cosign_signature(&image.digest, &src.image("ns/app"), "team");
    team.push(&src.url(), "ns/app", Some(&tag));

    copy(&src, &dst);
    assert_eq!(
        dst.manifest_digest("ns/app", &tag),
        Some(team.digest),
        "first copy: byte for byte"
    );
    let team_layers = layer_digests(&dst, "ns/app", &tag);

    // Production's own signature replaces the attachment there (as a signing tool that does
    // not merge would leave it).
    let prod = cosign_signature(&image.digest, &dst.image("ns/app"), "production");
    prod.push(&dst.url(), "ns/app", Some(&tag));
    let prod_layers = layer_digests(&dst, "ns/app", &tag);
    assert!(team_layers.is_disjoint(&prod_layers));

    copy(&src, &dst);
    let merged = layer_digests(&dst, "ns/app", &tag);
    assert_eq!(
        merged,
        team_layers.union(&prod_layers).cloned().collect(),
        "the source's signature added, production's kept"
    );
    let after = dst.manifest_digest("ns/app", &tag);
    assert_eq!(dst.manifest_digest("ns/app", "v1"), Some(image.digest));

    // Once merged, a re-run writes no attachment.
    let mark = dst.mark();
    copy(&src, &dst);
    assert_eq!(dst.manifest_digest("ns/app", &tag), after);
    let puts: Vec<String> = dst
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.kind() == RequestKind::ManifestPut)
        .map(|r| r.path)
        .collect();
    assert!(puts.is_empty(), "nothing rewritten: {puts:?}");
}

#[test]
fn a_differing_attestation_at_the_destination_is_kept_and_named() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[901]).build();
    fx.seed(&src, "ns/app:v1");
    let image = src.get_manifest("ns/app", "v1").unwrap();
    let tag = format!("{}.att", fallback_tag(&image.digest));
    cosign_attestation(&image.digest).push(&src.url(), "ns/app", Some(&tag));
    copy(&src, &dst);

    let theirs = cosign_attestation(&image.digest);
    theirs.push(&dst.url(), "ns/app", Some(&tag));
    let out = copy(&src, &dst);
    assert_eq!(
        dst.manifest_digest("ns/app", &tag),
        Some(theirs.digest.clone()),
        "the destination's attestation stays"
    );
    assert!(
        out.stderr.contains(&format!(
            "the destination's tag names {}: kept, not replaced",
            theirs.digest
        )) || out.stdout.contains("kept, not replaced"),
        "{out}"
    );
}
