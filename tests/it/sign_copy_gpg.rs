//! `copy` signs with GnuPG as skopeo signs (`--sign-by`): the simple signature goes to
//! `registries.d`'s lookaside staging, to OpenShift's signature API (the lab's stand-in), or —
//! invoked as `skopeo` with nothing configured — to the local default lookaside directory,
//! where skopeo 1.9.3 puts its own; skopeo 1.9.3 and 1.18 accept it under `signedBy`. The
//! helpers are [`crate::sign_copy`]'s.

use std::path::Path;

use serde_json::{Value, json};

use crate::sign_copy::{dst_policy, regd, regd_reading, shape_of, sign_copy, verify};
use crate::support::Side;
use crate::support::fixtures::ImageSpec;
use crate::verify_copy::{Lab, seed};

/// The payload of a simple signature (gpg --decrypt).
fn simple_payload(lab: &Lab, file: &Path) -> Value {
    let out = std::process::Command::new("gpg")
        .env("GNUPGHOME", &lab.gnupg)
        .args(["--batch", "--decrypt"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GnuPG simple signing into lookaside staging (`registries.d`'s `lookaside-staging`,
/// `file://`): ferry (as itself and as `skopeo`) writes `<repo>@sha256=<hex>/signature-1`
/// where skopeo 1.9.3 writes its own, the same kind of blob and payload; skopeo 1.9.3 and
/// 1.18 and ferry accept the image under `signedBy` with the public key, reading that storage.
#[test]
fn gpg_signature_made_by_ferry_in_lookaside_staging() {
    let lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[1024]).build();
    seed(&lab, &fx, "base/app:v1");
    let (alice, fpr) = lab.gpg_key("Alice <alice@example.com>");
    let staging = lab.sb.path().join("staging");
    let write = regd(
        &lab,
        "regd-write",
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n    lookaside-staging: file://{}\n",
            lab.dst.host(),
            lab.sb.path().join("published").display(),
            staging.display()
        ),
    );
    let read = regd_reading(&lab, "regd-read", &staging);
    let hex = fx.digest.trim_start_matches("sha256:");
    let sig_file = |repo: &str| staging.join(format!("{repo}@sha256={hex}/signature-1"));
    sign_copy(
        &lab,
        "skopeo-1.9",
        &write,
        &["--sign-by", &fpr],
        "base/app:v1",
        "sk/app:v1",
    )
    .assert_success();
    let theirs = std::fs::read(sig_file("sk/app")).expect("skopeo's signature");
    let theirs_payload = simple_payload(&lab, &sig_file("sk/app"));
    let policy = dst_policy(
        &lab,
        "signed-by.json",
        json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPath": alice}]),
    );
    for tool in ["ferry", "ferry-as-skopeo"] {
        let repo = format!("{tool}/app");
        let out = sign_copy(
            &lab,
            tool,
            &write,
            &["--sign-by", &fpr],
            "base/app:v1",
            &format!("{repo}:v1"),
        );
        out.assert_success();
        let ours = std::fs::read(sig_file(&repo)).expect("ferry's signature");
        // Both raw OpenPGP messages (no `\0simple-signing` prefix), as skopeo writes them.
        assert_eq!(ours[0] & 0x80, 0x80, "{ours:?}");
        assert_eq!(theirs[0] & 0x80, 0x80);
        assert!(
            !staging
                .join(format!("{repo}@sha256={hex}/signature-2"))
                .exists()
        );
        assert!(!lab.sb.path().join("published").exists());
        let payload = simple_payload(&lab, &sig_file(&repo));
        assert_eq!(
            payload["critical"],
            json!({"identity": {"docker-reference": lab.dst.image(&format!("{repo}:v1"))},
                   "image": {"docker-manifest-digest": fx.digest},
                   "type": "atomic container signature"})
        );
        assert_eq!(shape_of(&payload), shape_of(&theirs_payload));
        for verifier in ["skopeo-1.9", "skopeo-1.18", "ferry"] {
            verify(&lab, verifier, &read, &policy, &format!("{repo}:v1")).assert_success();
        }
    }
}

/// A registry with OpenShift's signature API (the lab's stand-in): ferry stores its GnuPG
/// signature there, as skopeo 1.9.3 does (one `atomic` signature of the image), before the
/// tag moves; skopeo 1.9.3 reads it back from the API and accepts the image under `signedBy`.
#[test]
fn gpg_signature_into_openshift_signature_api() {
    use crate::support::faults::FaultProxy;
    use crate::support::signatures::SignatureExtension;
    let lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[1024]).build();
    seed(&lab, &fx, "base/app:v1");
    let (alice, fpr) = lab.gpg_key("Alice <alice@example.com>");
    let proxy = FaultProxy::start(&lab.dst);
    let api = SignatureExtension::serve(&proxy);
    let copy = |tool: &str, to: &str| {
        let mut t = if tool == "ferry" {
            lab.sb.ferry()
        } else {
            lab.sb.skopeo()
        };
        t.env("GNUPGHOME", &lab.gnupg)
            .args(["--insecure-policy", "copy", "-q", "--sign-by", &fpr])
            .args(lab.src.tls_args(Side::Src))
            .args(proxy.tls_args(Side::Dest))
            .arg(lab.src.docker_ref("base/app:v1"))
            .arg(proxy.docker_ref(to))
            .run()
    };
    copy("skopeo-1.9", "sk/app:v1").assert_success();
    let theirs = api.signatures("sk/app", &fx.digest);
    assert_eq!(theirs.len(), 1);
    copy("ferry", "fe/app:v1").assert_success();
    let ours = api.signatures("fe/app", &fx.digest);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].kind, theirs[0].kind);
    assert!(ours[0].name.starts_with(&format!("{}@", fx.digest)));
    // The signature before the tag.
    let seen = proxy.requests();
    let at = |method: &str, path: &str| {
        seen.iter()
            .position(|r| r.is(method, path))
            .unwrap_or_else(|| panic!("no {method} {path}"))
    };
    assert!(at("PUT", "/extensions/v2/fe/app/signatures/") < at("PUT", "/v2/fe/app/manifests/v1"));
    let file = lab.file("fe.sig", &ours[0].content);
    let payload = simple_payload(&lab, &file);
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        format!("{}/fe/app:v1", proxy.host()).as_str()
    );
    let policy = lab.file(
        "api.json",
        json!({"default": [{"type": "reject"}],
               "transports": {"docker": {proxy.host():
                   [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": alice}]}}})
        .to_string(),
    );
    let out = lab
        .sb
        .skopeo_strict()
        .args(["--policy"])
        .arg(&policy)
        .args(["copy", "-q"])
        .args(proxy.tls_args(Side::Src))
        .arg(proxy.docker_ref("fe/app:v1"))
        .arg(format!("dir:{}", lab.sb.path().join("from-api").display()))
        .run();
    out.assert_success();
}

/// A registry with no signature API and no lookaside configured: invoked as `skopeo`, ferry
/// files the GnuPG signature in the local default lookaside directory, where skopeo 1.9.3
/// files its own (`~/.local/share/containers/sigstore` for a user other than root); as
/// `ferry`, it refuses before anything is written (a directory that goes away with the pod
/// is no place for a signature).
#[test]
fn simple_signature_with_nowhere_configured() {
    let lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let (_, fpr) = lab.gpg_key("Alice <alice@example.com>");
    let none = regd(
        &lab,
        "regd-none",
        "default-docker:\n  use-sigstore-attachments: false\n",
    );
    let hex = fx.digest.trim_start_matches("sha256:");
    let stored = |repo: &str| {
        lab.sb.home().join(format!(
            ".local/share/containers/sigstore/{repo}@sha256={hex}/signature-1"
        ))
    };
    let run = |tool: &str, to: &str| {
        let mut t = match tool {
            "ferry" => lab.sb.ferry(),
            "ferry-as-skopeo" => lab.sb.ferry_as_skopeo(),
            _ => lab.sb.skopeo_strict(),
        };
        t.env("GNUPGHOME", &lab.gnupg)
            .env("_CONTAINERS_ROOTLESS_UID", "1000")
            .args(["--insecure-policy", "--registries.d"])
            .arg(&none)
            .args(["copy", "-q", "--sign-by", &fpr])
            .args(lab.src.tls_args(Side::Src))
            .args(lab.dst.tls_args(Side::Dest))
            .arg(lab.src.docker_ref("base/app:v1"))
            .arg(lab.dst.docker_ref(to))
            .run()
    };
    run("skopeo-1.9", "sk/app:v1").assert_success();
    assert!(stored("sk/app").exists());
    run("ferry-as-skopeo", "as/app:v1").assert_success();
    let payload = simple_payload(&lab, &stored("as/app"));
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        lab.dst.image("as/app:v1").as_str()
    );
    let mark = lab.dst.mark();
    let out = run("ferry", "fe/app:v1");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("nowhere to store a simple signature"),
        "{out}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        lab.dst
            .requests_since(mark)
            .iter()
            .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
        "{out}"
    );
    assert!(lab.dst.tags("fe/app").is_empty());
    assert!(!stored("fe/app").exists());
}

/// A GnuPG key with a passphrase: the wrong one (from the file) fails in gpg — exit 1, one
/// line, neither passphrase printed, nothing written; the right one (from the file, or from
/// `FERRY_SIGN_PASSPHRASE`) signs, handed to gpg through a pipe.
#[test]
fn gpg_key_with_a_passphrase() {
    let lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let gpg = |args: &[&str]| {
        let out = std::process::Command::new("gpg")
            .env("GNUPGHOME", &lab.gnupg)
            .args(["--batch", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out
    };
    gpg(&[
        "--passphrase",
        "bob's secret",
        "--quick-gen-key",
        "Bob <bob@example.com>",
        "default",
        "default",
        "never",
    ]);
    let listed = gpg(&["--with-colons", "--list-keys", "bob@example.com"]);
    let fpr = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    lab.file("bob-wrong", "not bob's\n");
    lab.file("bob-right", "bob's secret\n");
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
    let hex = fx.digest.trim_start_matches("sha256:");
    for tool in ["ferry", "ferry-as-skopeo"] {
        let mark = lab.dst.mark();
        let flags = ["--sign-by", &fpr, "--sign-passphrase-file", "bob-wrong"];
        let out = sign_copy(&lab, tool, &write, &flags, "base/app:v1", "out/app:v1");
        assert_eq!(out.code, Some(1), "{tool}: {out}");
        assert!(out.stderr.contains("Bad passphrase"), "{tool}: {out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{tool}: {out}");
        assert!(!out.stderr.contains("not bob's") && !out.stdout.contains("not bob's"));
        assert!(
            lab.dst
                .requests_since(mark)
                .iter()
                .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
            "{tool}: {out}"
        );
        assert!(lab.dst.tags("out/app").is_empty());
        assert!(!staging.exists());
    }
    let flags = ["--sign-by", &fpr, "--sign-passphrase-file", "bob-right"];
    sign_copy(&lab, "ferry", &write, &flags, "base/app:v1", "file/app:v1").assert_success();
    assert!(
        staging
            .join(format!("file/app@sha256={hex}/signature-1"))
            .exists()
    );
    // The agent forgets the passphrase it was just given: the environment's is what counts.
    let killed = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", &lab.gnupg)
        .args(["--kill", "gpg-agent"])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = lab
        .sb
        .ferry()
        .env("GNUPGHOME", &lab.gnupg)
        .env("FERRY_SIGN_PASSPHRASE", "bob's secret")
        .args(["--insecure-policy", "--registries.d"])
        .arg(&write)
        .args(["copy", "--sign-by", &fpr])
        .args(lab.src.tls_args(Side::Src))
        .args(lab.dst.tls_args(Side::Dest))
        .arg(lab.src.docker_ref("base/app:v1"))
        .arg(lab.dst.docker_ref("env/app:v1"))
        .run();
    out.assert_success();
    assert!(!out.stderr.contains("bob's secret"), "{out}");
    assert!(
        staging
            .join(format!("env/app@sha256={hex}/signature-1"))
            .exists()
    );
}
