//! `promote` and `sync` under a trust policy that requires signatures: the source image's are
//! checked before anything is written, as `copy` checks them ([`crate::verify_copy`] has the
//! lab, and the copy cases).

use std::path::Path;

use serde_json::json;

use crate::support::fixtures::ImageSpec;
use crate::verify_copy::{Lab, seed};

/// `ferry promote` under a policy requiring the non-production team's sigstore signature
/// (made by skopeo 1.18): the signed image is promoted and its record names the signature;
/// an unsigned one, or the signed one under another team's key, is refused with one line and
/// production sees no write.
#[test]
fn promote_requires_the_teams_signature() {
    use crate::promote::{promotion_yaml, write_config};
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[4096]).build();
    seed(&lab, &fx, "base/app:v1");
    let team = lab.sigstore_key("team");
    let other = lab.sigstore_key("other");
    let private = format!("{team}.private");
    let sign = [
        "--sign-by-sigstore-private-key",
        private.as_str(),
        "--sign-passphrase-file",
        "pass",
    ];
    lab.sign(true, &sign, "base/app:v1", "dev/app:v1", false);
    let unsigned = ImageSpec::oci().layers(&[512]).build();
    seed(&lab, &unsigned, "dev/unsigned:v1");
    let config = write_config(
        lab.sb.path(),
        &promotion_yaml(&[&lab.src.host()], &[&lab.dst.host()], &["dev"], &["prod"]),
    );
    let tokens = lab.file("token", "unused-on-an-open-registry\n");
    let policy = |name: &str, key: &str| {
        let doc = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {
                format!("{}/dev", lab.src.host()):
                    [{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]
            }}
        });
        lab.file(name, doc.to_string())
    };
    let (good, wrong) = (policy("team.json", &team), policy("other.json", &other));
    let record = lab.sb.path().join("record.json");
    let promote = |policy: &Path, image: &str| {
        lab.sb
            .ferry()
            .args(["--registries.d", lab.regd.to_str().unwrap(), "--policy"])
            .arg(policy)
            .args(["promote", "--image-name", image, "--tag", "v1", "--config"])
            .arg(&config)
            .args(["--non-prod-registry", &lab.src.host()])
            .args(["--prod-registry", &lab.dst.host()])
            .args(["--non-prod-project", "dev", "--prod-project", "prod"])
            .arg("--src-token-file")
            .arg(&tokens)
            .arg("--dest-token-file")
            .arg(&tokens)
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg("--record")
            .arg(&record)
            .run()
    };
    for (policy, image, reason) in [
        (
            &good,
            "unsigned",
            "A signature was required, but no signature exists",
        ),
        (&wrong, "app", "cryptographic signature verification failed"),
    ] {
        let mark = lab.dst.mark();
        let out = promote(policy, image);
        assert_eq!(out.code, Some(1), "{out}");
        let line = out.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{out}");
        assert!(
            line.contains(&format!("Source image rejected: {reason}"))
                && line.contains("requirement 1 (sigstoreSigned)")
                && line.contains(&lab.src.docker_ref(&format!("dev/{image}:v1"))),
            "{out}"
        );
        assert!(
            lab.dst
                .requests_since(mark)
                .iter()
                .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
            "{out}"
        );
        assert!(!record.exists());
    }
    let out = promote(&good, "app");
    out.assert_success();
    assert_eq!(
        lab.dst.manifest_digest("prod/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    let key_id =
        ferry::signing::keys::PublicKey::from_pem(&std::fs::read(format!("{team}.pub")).unwrap())
            .unwrap()
            .key_id();
    assert!(
        out.stderr.contains(&format!(
            "Signature verified: sigstoreSigned (sigstore, key {key_id}) names {}",
            lab.src.image("dev/app:v1")
        )),
        "{out}"
    );
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let v = &rec["signatures_verified"];
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{rec}");
    assert_eq!(v[0]["key"], key_id.as_str());
    assert_eq!(v[0]["digest"], fx.digest.as_str());
    assert_eq!(v[0]["requirement"], "sigstoreSigned");
}

/// `sync` checks each image as `copy` does, as ferry and as skopeo 1.18: a signed image
/// arrives; an unsigned one fails the sync (exit 1) before anything of it is written.
#[test]
fn sync_verifies_each_image() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[1024]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let sign = [
        "--sign-by-sigstore-private-key",
        &private,
        "--sign-passphrase-file",
        "pass",
    ];
    lab.sign(true, &sign, "base/app:v1", "ns/app:v1", false);
    seed(
        &lab,
        &ImageSpec::oci().layers(&[700]).build(),
        "ns/unsigned:v1",
    );
    let good = lab.policy(
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    for tool in ["ferry", "skopeo-1.18"] {
        let sync = |image: &str, to: &str| {
            let mut t = match tool {
                "ferry" => lab.sb.ferry(),
                _ => lab.sb.skopeo_current_strict(),
            };
            t.args(["--registries.d", lab.regd.to_str().unwrap(), "--policy"])
                .arg(&good)
                .args(["sync", "--src", "docker", "--dest", "docker"])
                .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
                .arg(lab.src.image(image))
                .arg(lab.dst.image(to))
                .run()
        };
        let to = format!("{}-ok", tool.replace('.', "-"));
        sync("ns/app:v1", &to).assert_success();
        assert_eq!(
            lab.dst
                .manifest_digest(&format!("{to}/app"), "v1")
                .as_deref(),
            Some(fx.digest.as_str()),
            "{tool}"
        );
        let mark = lab.dst.mark();
        let to = format!("{}-no", tool.replace('.', "-"));
        let out = sync("ns/unsigned:v1", &to);
        assert_eq!(out.code, Some(1), "{tool}: {out}");
        assert!(
            out.stderr.replace("\\\"", "\"").contains(
                "Source image rejected: A signature was required, but no signature exists"
            ),
            "{tool}: {out}"
        );
        assert!(
            lab.dst
                .requests_since(mark)
                .iter()
                .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
            "{tool}: {out}"
        );
    }
}
