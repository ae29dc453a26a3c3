//! Signing refused: a key that cannot sign (wrong passphrase, missing key file, no
//! passphrase and no terminal, a fingerprint gpg does not know), bad combinations of flags —
//! exit 1, one line, the passphrase nowhere, the destination untouched; skopeo 1.18 words the
//! wrong passphrase the same; `--sign-identity` names what the signature names, and one that
//! is not a full, normalised reference is refused. The helpers are [`crate::sign_copy`]'s.

use serde_json::json;

use crate::sign_copy::{attachment, dst_policy, regd, sign_copy, sigstore_flags, verify};
use crate::support::Side;
use crate::support::fixtures::ImageSpec;
use crate::verify_copy::{Lab, seed};

/// A key that cannot sign: exit 1, one line, the passphrase nowhere, the destination
/// untouched (a key that does not load: no request at all; a key gpg does not have: no
/// write). Bad combinations of flags are refused as skopeo refuses them.
#[test]
fn keys_that_cannot_sign_leave_the_destination_untouched() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    lab.gpg_key("Alice <alice@example.com>");
    lab.file("wrong-pass", "not the lab passphrase\n");
    let missing = lab.sb.path().join("nowhere.private").display().to_string();
    // Somewhere to put simple signatures, so that gpg is asked.
    let neg = regd(
        &lab,
        "regd-neg",
        &format!(
            "default-docker:\n  use-sigstore-attachments: true\ndocker:\n  {}:\n    lookaside-staging: file://{}\n",
            lab.dst.host(),
            lab.sb.path().join("staging").display()
        ),
    );
    let cases: Vec<(Vec<&str>, &str, bool)> = vec![
        (
            vec![
                "--sign-by-sigstore-private-key",
                &private,
                "--sign-passphrase-file",
                "wrong-pass",
            ],
            "initializing private key: decrypt: encrypted: decryption failed",
            true,
        ),
        (
            vec![
                "--sign-by-sigstore-private-key",
                &missing,
                "--sign-passphrase-file",
                "pass",
            ],
            "reading private key from",
            true,
        ),
        (
            vec!["--sign-by-sigstore-private-key", &private],
            "standard input is not a TTY",
            true,
        ),
        (
            vec!["--sign-by", "0123456789ABCDEF0123456789ABCDEF01234567"],
            "creating signature",
            false,
        ),
        (
            vec![
                "--sign-by",
                "0123456789ABCDEF0123456789ABCDEF01234567",
                "--sign-by-sigstore-private-key",
                &private,
                "--sign-passphrase-file",
                "pass",
            ],
            "Only one of --sign-by and sign-by-sigstore-private-key can be used with sign-passphrase-file",
            true,
        ),
        (
            vec!["--sign-by-sigstore", "params.yaml"],
            "--sign-by-sigstore (keyless signing",
            true,
        ),
    ];
    for (flags, said, no_request) in &cases {
        for tool in ["ferry", "ferry-as-skopeo"] {
            let (src_mark, dst_mark) = (lab.src.mark(), lab.dst.mark());
            let out = sign_copy(&lab, tool, &neg, flags, "base/app:v1", "out/app:v1");
            assert_eq!(out.code, Some(1), "{tool}: {out}");
            assert!(out.stderr.contains(said), "{tool}: {out}");
            assert_eq!(out.stderr.trim().lines().count(), 1, "{tool}: {out}");
            assert!(!out.stderr.contains("lab passphrase"), "{out}");
            assert!(!out.stdout.contains("lab passphrase"), "{out}");
            let dst = lab.dst.requests_since(dst_mark);
            if *no_request {
                assert!(lab.src.requests_since(src_mark).is_empty(), "{tool}: {out}");
                assert!(dst.is_empty(), "{tool}: {out}");
            } else {
                assert!(
                    dst.iter()
                        .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
                    "{tool}: {out}\n{dst:?}"
                );
            }
            assert!(lab.dst.tags("out/app").is_empty(), "{tool}: {out}");
            assert!(!lab.sb.path().join("staging").exists(), "{tool}: {out}");
        }
    }
    // skopeo 1.18 words it the same for a wrong passphrase.
    let oracle = sign_copy(
        &lab,
        "skopeo-1.18",
        &lab.regd,
        &cases[0].0,
        "base/app:v1",
        "sk/app:v1",
    );
    assert_eq!(oracle.code, Some(1), "{oracle}");
    assert!(oracle.stderr.contains(cases[0].1), "{oracle}");
    // The passphrase from the environment (ferry) instead of a file.
    let out = lab
        .sb
        .ferry()
        .env("FERRY_SIGN_PASSPHRASE", "lab passphrase")
        .args(["--insecure-policy", "--registries.d"])
        .arg(&lab.regd)
        .args(["copy", "--sign-by-sigstore-private-key", &private])
        .args(lab.src.tls_args(Side::Src))
        .args(lab.dst.tls_args(Side::Dest))
        .arg(lab.src.docker_ref("base/app:v1"))
        .arg(lab.dst.docker_ref("env/app:v1"))
        .run();
    out.assert_success();
    attachment(&lab.dst, "env/app", &fx.digest);
    // --sign-identity or a passphrase file without a key: a usage error as ferry, ignored
    // as skopeo (as skopeo ignores them).
    for extra in [
        &["--sign-identity", "example.com/a:1"][..],
        &["--sign-passphrase-file", "pass"][..],
    ] {
        let out = sign_copy(
            &lab,
            "ferry",
            &lab.regd,
            extra,
            "base/app:v1",
            "lone/app:v1",
        );
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            out.stderr
                .contains("needs --sign-by or --sign-by-sigstore-private-key"),
            "{out}"
        );
        sign_copy(
            &lab,
            "ferry-as-skopeo",
            &lab.regd,
            extra,
            "base/app:v1",
            "lone/app:v1",
        )
        .assert_success();
        sign_copy(
            &lab,
            "skopeo-1.18",
            &lab.regd,
            extra,
            "base/app:v1",
            "lone/app:v1",
        )
        .assert_success();
    }
}

/// `--sign-identity` names what the signature names (skopeo 1.18 accepts it under an
/// `exactReference` policy, and refuses it as the destination's own name); an identity that
/// is not a full, normalised reference is refused before anything is copied.
#[test]
fn sign_identity() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let released = lab.dst.image("released/app:2.0");
    let mut flags = sigstore_flags(&private);
    flags.extend(["--sign-identity", released.as_str()]);
    sign_copy(&lab, "ferry", &lab.regd, &flags, "base/app:v1", "fe/app:v1").assert_success();
    assert_eq!(
        attachment(&lab.dst, "fe/app", &fx.digest).payloads[0]["critical"]["identity"]["docker-reference"],
        released.as_str()
    );
    let exact = dst_policy(
        &lab,
        "exact.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub"),
                "signedIdentity": {"type": "exactReference", "dockerReference": released}}]),
    );
    let own = dst_policy(
        &lab,
        "own.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    for verifier in ["skopeo-1.18", "ferry"] {
        verify(&lab, verifier, &lab.regd, &exact, "fe/app:v1").assert_success();
        let out = verify(&lab, verifier, &lab.regd, &own, "fe/app:v1");
        assert_eq!(out.code, Some(1), "{verifier}: {out}");
    }
    for (identity, said) in [
        ("app:v1", "Could not parse --sign-identity"),
        (
            &lab.dst.image("released/app") as &str,
            "Sign identity must be a fully specified reference",
        ),
    ] {
        let mut f = sigstore_flags(&private);
        f.extend(["--sign-identity", identity]);
        for tool in ["ferry", "ferry-as-skopeo"] {
            let mark = lab.dst.mark();
            let out = sign_copy(&lab, tool, &lab.regd, &f, "base/app:v1", "bad/app:v1");
            assert_eq!(out.code, Some(1), "{tool}: {out}");
            assert!(out.stderr.contains(said), "{tool}: {out}");
            assert!(lab.dst.requests_since(mark).is_empty(), "{tool}: {out}");
        }
    }
    let oracle = sign_copy(
        &lab,
        "skopeo-1.18",
        &lab.regd,
        &[&flags[..4], &["--sign-identity", "app:v1"]].concat(),
        "base/app:v1",
        "sk/app:v1",
    );
    assert_eq!(oracle.code, Some(1), "{oracle}");
    assert!(
        oracle.stderr.contains("Could not parse --sign-identity"),
        "{oracle}"
    );
}
