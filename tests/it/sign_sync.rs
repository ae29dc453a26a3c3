//! `sync` and `promote` sign as `copy` signs ([`crate::sign_copy`]): every image synced is
//! signed as its own destination reference, the promoted image as its production reference,
//! and skopeo 1.18 (1.9.3 for GnuPG) accepts each under a policy requiring the signature.

use serde_json::json;

use crate::sign_copy::{attachment, dst_policy, regd, regd_reading, verify};
use crate::support::Side;
use crate::support::fixtures::ImageSpec;
use crate::verify_copy::{Lab, seed};

/// `sync` of a repository with two tags, signed with a sigstore key (as `ferry`) and with
/// GnuPG into lookaside staging (as `skopeo`): each image is signed as its destination
/// reference, and verifies under skopeo.
#[test]
fn sync_signs_every_image() {
    let lab = Lab::new();
    let (one, two) = (
        ImageSpec::oci().layers(&[1024]).build(),
        ImageSpec::oci().layers(&[2048]).build(),
    );
    seed(&lab, &one, "base/app:v1");
    seed(&lab, &two, "base/app:v2");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let (alice, fpr) = lab.gpg_key("Alice <alice@example.com>");
    let staging = lab.sb.path().join("staging");
    let write = regd(
        &lab,
        "regd-write",
        &format!(
            "docker:\n  {}:\n    lookaside-staging: file://{}\n",
            lab.dst.host(),
            staging.display()
        ),
    );
    let read = regd_reading(&lab, "regd-read", &staging);
    let sync = |tool: &str, regd: &std::path::Path, flags: &[&str], to: &str| {
        let mut t = if tool == "ferry" {
            lab.sb.ferry()
        } else {
            lab.sb.ferry_as_skopeo()
        };
        t.env("GNUPGHOME", &lab.gnupg)
            .args(["--insecure-policy", "--registries.d"])
            .arg(regd)
            .args(["sync", "--src", "docker", "--dest", "docker"])
            .args(flags)
            .args(lab.src.tls_args(Side::Src))
            .args(lab.dst.tls_args(Side::Dest))
            .arg(lab.src.image("base/app"))
            .arg(lab.dst.image(to))
            .run()
    };
    let out = sync(
        "ferry",
        &lab.regd,
        &[
            "--sign-by-sigstore-private-key",
            &private,
            "--sign-passphrase-file",
            "pass",
        ],
        "sig",
    );
    out.assert_success();
    let out = sync("ferry-as-skopeo", &write, &["--sign-by", &fpr], "gpg");
    out.assert_success();
    let sigstore = dst_policy(
        &lab,
        "sigstore.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    let gpg = dst_policy(
        &lab,
        "gpg.json",
        json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPath": alice}]),
    );
    for (fx, tag) in [(&one, "v1"), (&two, "v2")] {
        let a = attachment(&lab.dst, "sig/app", &fx.digest);
        assert_eq!(
            a.payloads[0]["critical"]["identity"]["docker-reference"],
            lab.dst.image(&format!("sig/app:{tag}")).as_str()
        );
        verify(
            &lab,
            "skopeo-1.18",
            &lab.regd,
            &sigstore,
            &format!("sig/app:{tag}"),
        )
        .assert_success();
        let hex = fx.digest.trim_start_matches("sha256:");
        assert!(
            staging
                .join(format!("gpg/app@sha256={hex}/signature-1"))
                .exists()
        );
        verify(&lab, "skopeo-1.9", &read, &gpg, &format!("gpg/app:{tag}")).assert_success();
    }
    // sync has no --sign-identity (each image is signed as itself).
    let out = sync(
        "ferry",
        &lab.regd,
        &["--sign-by", &fpr, "--sign-identity", "example.com/a:1"],
        "id",
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(lab.dst.tags("id/app").is_empty());
}

/// `promote` signs the production image with the sigstore key (the passphrase from
/// `FERRY_SIGN_PASSPHRASE`), records the signature it made, and skopeo 1.18 accepts the
/// production image under a policy requiring it; a wrong passphrase fails before any request.
#[test]
fn promote_signs_the_production_image() {
    use crate::promote::{promotion_yaml, write_config};
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[4096]).build();
    seed(&lab, &fx, "dev/app:v1");
    let key = lab.sigstore_key("prod");
    let private = format!("{key}.private");
    let config = write_config(
        lab.sb.path(),
        &promotion_yaml(&[&lab.src.host()], &[&lab.dst.host()], &["dev"], &["prod"]),
    );
    let tokens = lab.file("token", "unused-on-an-open-registry\n");
    let record = lab.sb.path().join("record.json");
    let promote = |passphrase: &str| {
        lab.sb
            .ferry()
            .env("FERRY_SIGN_PASSPHRASE", passphrase)
            .args([
                "--insecure-policy",
                "--registries.d",
                lab.regd.to_str().unwrap(),
            ])
            .args(["promote", "--image-name", "app", "--tag", "v1", "--config"])
            .arg(&config)
            .args(["--non-prod-registry", &lab.src.host()])
            .args(["--prod-registry", &lab.dst.host()])
            .args(["--non-prod-project", "dev", "--prod-project", "prod"])
            .arg("--src-token-file")
            .arg(&tokens)
            .arg("--dest-token-file")
            .arg(&tokens)
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .args(["--sign-by-sigstore-private-key", &private])
            .arg("--record")
            .arg(&record)
            .run()
    };
    let (src_mark, dst_mark) = (lab.src.mark(), lab.dst.mark());
    let out = promote("not the passphrase");
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(out.stderr.contains("decryption failed"), "{out}");
    assert!(!out.stderr.contains("not the passphrase"), "{out}");
    assert!(lab.src.requests_since(src_mark).is_empty());
    assert!(lab.dst.requests_since(dst_mark).is_empty());
    assert!(!record.exists());
    let out = promote("lab passphrase");
    out.assert_success();
    assert_eq!(
        lab.dst.manifest_digest("prod/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    let key_id =
        ferry::signing::keys::PublicKey::from_pem(&std::fs::read(format!("{key}.pub")).unwrap())
            .unwrap()
            .key_id();
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(
        rec["signatures_made"],
        json!([{"digest": fx.digest, "format": "sigstore", "key": key_id,
                "identity": lab.dst.image("prod/app:v1")}]),
        "{rec}"
    );
    let policy = dst_policy(
        &lab,
        "prod.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    verify(&lab, "skopeo-1.18", &lab.regd, &policy, "prod/app:v1").assert_success();
    verify(&lab, "ferry", &lab.regd, &policy, "prod/app:v1").assert_success();
}
