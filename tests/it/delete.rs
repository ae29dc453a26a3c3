//! `delete`: the manifest goes away (by digest, 202), and the refusals are clear.

use crate::support::fixtures::*;
use crate::support::*;

#[test]
fn delete_removes_the_manifest_by_digest() {
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        auth: Auth::Basic(vec![("admin".into(), "adm-pw".into())]),
        ..Default::default()
    });
    let old = ImageSpec::docker().layers(&[64]).build();
    let keep = ImageSpec::oci().layers(&[64]).build();
    old.seed(&reg, "ns/app:old");
    keep.seed(&reg, "ns/app:keep");
    let mark = reg.mark();
    ferry()
        .arg("delete")
        .args(reg.tls_args(Side::Plain))
        .arg("--creds=admin:adm-pw")
        .arg(reg.docker_ref("ns/app:old"))
        .run()
        .assert_success();
    assert!(reg.get_manifest("ns/app", "old").is_none());
    assert!(reg.get_manifest("ns/app", &old.digest).is_none());
    assert_eq!(
        reg.manifest_digest("ns/app", "keep").as_deref(),
        Some(keep.digest.as_str())
    );
    let deletes: Vec<_> = reg
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.kind() == RequestKind::ManifestDelete)
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].reference().as_deref(), Some(old.digest.as_str()));
    assert_eq!(deletes[0].status, 202);

    // Gone: deleting again is "not found" (exit 2, skopeo's documented code for a missing
    // image; skopeo's delete itself, 1.9.3 and 1.18, exits 1 "Unable to delete …").
    let f = ferry()
        .arg("delete")
        .args(reg.tls_args(Side::Plain))
        .arg("--creds=admin:adm-pw")
        .arg(reg.docker_ref("ns/app:old"))
        .run();
    assert_eq!(f.code, Some(2), "{f}");

    // By digest, as skopeo accepts it.
    let s = skopeo()
        .arg("delete")
        .args(reg.tls_args(Side::Plain))
        .arg("--creds=admin:adm-pw")
        .arg(reg.docker_ref(&format!("ns/app@{}", keep.digest)))
        .run();
    s.assert_success();
    assert!(reg.get_manifest("ns/app", "keep").is_none());
}

#[test]
fn delete_is_refused_clearly_when_the_registry_has_deletes_disabled() {
    let reg = Registry::start(RegistryOptions {
        delete_enabled: false,
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[32]).build();
    fx.seed(&reg, "ns/app:v1");
    let f = ferry()
        .arg("delete")
        .args(reg.tls_args(Side::Plain))
        .arg(reg.docker_ref("ns/app:v1"))
        .run();
    f.assert_failure_with(&["deletes disabled"]);
    assert_eq!(f.code, Some(1));
    assert_eq!(f.stderr.lines().count(), 1, "one line: {f}");
    assert_eq!(
        reg.manifest_digest("ns/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    skopeo()
        .arg("delete")
        .args(reg.tls_args(Side::Plain))
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_failure();
}
