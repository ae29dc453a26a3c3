//! Where `copy` finds the signatures a trust policy requires, each place with skopeo-made
//! signatures and skopeo 1.18 beside ferry: OpenShift's signature API, lookaside storage over
//! `http://`, and `.sig` attachments only where `registries.d` enables them (the lab and the
//! `file://` lookaside and `.sig` cases are in [`crate::verify_copy`]; `dir:` signature files in
//! [`crate::signing`]).

use std::path::Path;

use axum::body::Body;
use axum::response::Response;
use serde_json::json;

use crate::support::Side;
use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::ImageSpec;
use crate::verify_copy::{Lab, seed};

/// A registry with OpenShift's signature API (the lab's stand-in in front of a real registry):
/// skopeo 1.9.3 `--sign-by` stores the simple signature there; ferry (as itself and as
/// `skopeo`) and skopeo 1.18 read it from the API and agree: the signer's key accepts, another
/// key refuses with nothing written.
#[test]
fn gpg_signed_through_the_openshift_signature_api() {
    use crate::support::signatures::SignatureExtension;
    let lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[1500]).build();
    seed(&lab, &fx, "base/app:v1");
    let api = FaultProxy::start(&lab.src);
    let ext = SignatureExtension::serve(&api);
    let (alice, fpr) = lab.gpg_key("Alice <alice@example.com>");
    let (bob, _) = lab.gpg_key("Bob <bob@example.com>");
    lab.sb
        .skopeo()
        .env("GNUPGHOME", &lab.gnupg)
        .args(["copy", "-q", "--sign-by", &fpr])
        .args(api.tls_args(Side::Src))
        .args(api.tls_args(Side::Dest))
        .arg(api.docker_ref("base/app:v1"))
        .arg(api.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
    assert_eq!(ext.signatures("ns/app", &fx.digest).len(), 1);
    let policy = |name: &str, key: &Path| {
        let doc = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {format!("{}/ns", api.host()):
                [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key}]}}
        });
        lab.file(name, doc.to_string())
    };
    let (good, wrong) = (policy("alice.json", &alice), policy("bob.json", &bob));
    for tool in ["ferry", "ferry-as-skopeo", "skopeo-1.18"] {
        let copy = |policy: &Path, tag: &str| {
            let mut t = match tool {
                "ferry" => lab.sb.ferry(),
                "ferry-as-skopeo" => lab.sb.ferry_as_skopeo(),
                _ => lab.sb.skopeo_current_strict(),
            };
            t.arg("--policy")
                .arg(policy)
                .args(["copy", "-q"])
                .args(api.tls_args(Side::Src))
                .args(lab.dst.tls_args(Side::Dest))
                .arg(api.docker_ref("ns/app:v1"))
                .arg(lab.dst.docker_ref(&format!("api/{tool}:{tag}")))
                .run()
        };
        copy(&good, "ok").assert_success();
        assert_eq!(
            lab.dst
                .manifest_digest(&format!("api/{tool}"), "ok")
                .as_deref(),
            Some(fx.digest.as_str())
        );
        let mark = lab.dst.mark();
        let out = copy(&wrong, "no");
        assert_eq!(out.code, Some(1), "{tool}: {out}");
        assert!(
            out.stderr
                .contains("Source image rejected: Invalid GPG signature"),
            "{tool}: {out}"
        );
        if tool != "skopeo-1.18" {
            assert!(
                out.stderr.contains(&format!("(simple signing, key {fpr})")),
                "{out}"
            );
        }
        assert!(
            lab.dst
                .requests_since(mark)
                .iter()
                .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
            "{tool}: {out}"
        );
    }
}

/// skopeo 1.9.3 signs into a `file://` lookaside; the same files are then served over
/// `http://` and `registries.d` points there: ferry and skopeo 1.18 read them and agree.
#[test]
fn gpg_signatures_read_from_an_http_lookaside() {
    let mut lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[800]).build();
    seed(&lab, &fx, "base/app:v1");
    let (alice, fpr) = lab.gpg_key("Alice <alice@example.com>");
    let (bob, _) = lab.gpg_key("Bob <bob@example.com>");
    lab.sign(
        false,
        &["--sign-by", &fpr],
        "base/app:v1",
        "ns/app:v1",
        false,
    );
    let files = lab.sb.path().join("lookaside");
    let server = FaultProxy::standalone("127.0.0.1");
    server.add(Rule::new(
        "GET",
        "^/sigs/",
        Fault::respond(move |seen| {
            let rel = seen.path.trim_start_matches("/sigs/");
            match std::fs::read(files.join(rel)) {
                Ok(b) if !rel.contains("..") => {
                    Response::builder().status(200).body(Body::from(b)).unwrap()
                }
                _ => Response::builder().status(404).body(Body::empty()).unwrap(),
            }
        }),
    ));
    let regd = lab.sb.path().join("registries.d-http");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("http.yaml"),
        format!(
            "docker:\n  {}:\n    lookaside: {}/sigs\n",
            lab.src.host(),
            server.url()
        ),
    )
    .unwrap();
    lab.regd = regd;
    let signed_by = |k: &Path| json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPath": k}]);
    let good = lab.policy("good.json", signed_by(&alice));
    lab.accepted(&good, "ns/app:v1", &fx.digest, &[]);
    assert!(!server.requests_to("GET", "/sigs/").is_empty());
    let wrong = lab.policy("wrong.json", signed_by(&bob));
    lab.refused(
        &wrong,
        "ns/app:v1",
        "Invalid GPG signature",
        "signedBy",
        &format!("1 signature tried: signature 1 (simple signing, key {fpr})"),
    );
}

/// A `.sig` attachment is read only where `registries.d` sets `use-sigstore-attachments`, as
/// skopeo reads it: without it, everyone refuses (no signature), and ferry's line says where
/// it would have looked.
#[test]
fn sigstore_attachments_need_use_sigstore_attachments() {
    let mut lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[600]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let sign = [
        "--sign-by-sigstore-private-key",
        private.as_str(),
        "--sign-passphrase-file",
        "pass",
    ];
    lab.sign(true, &sign, "base/app:v1", "ns/app:v1", false);
    let sig_tag = format!("sha256-{}.sig", fx.digest.trim_start_matches("sha256:"));
    assert!(lab.src.tags("ns/app").contains(&sig_tag));
    let regd = lab.sb.path().join("registries.d-none");
    std::fs::create_dir(&regd).unwrap();
    lab.regd = regd;
    let good = lab.policy(
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    lab.refused(
        &good,
        "ns/app:v1",
        "A signature was required, but no signature exists",
        "sigstoreSigned",
        "registries.d sets use-sigstore-attachments: true",
    );
}
