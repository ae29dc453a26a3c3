//! What `ferry copy` writes besides the image: the digest file, the report, notices about
//! signatures left behind, and debug output that never shows a secret. See `copy.rs` for the
//! shared helpers.

use crate::copy::b64;
use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

#[test]
fn digestfile_matches_skopeos_byte_for_byte() {
    let p = Pair::plain();
    let fx = ImageSpec::docker().layers(&[1_000]).build();
    fx.seed(&p.src, "ns/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let (f, s) = (
        dir.path().join("ferry.digest"),
        dir.path().join("skopeo.digest"),
    );
    p.ferry_copy(
        &["-q", "--digestfile", f.to_str().unwrap()],
        "ns/app:v1",
        "a/app:v1",
    )
    .assert_success();
    p.skopeo_copy(
        &["--preserve-digests", "--digestfile", s.to_str().unwrap()],
        "ns/app:v1",
        "b/app:v1",
    )
    .assert_success();
    assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(&s).unwrap());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), fx.digest);
}

#[test]
fn debug_output_never_shows_secrets() {
    // The source's credentials come from the environment, the destination's from the flag.
    let p = Pair::new()
        .tls()
        .src(|e| {
            e.token("sa", "Sup3rSecretSAToken", &[Grant::push("*")])
                .no_creds()
        })
        .dst(|e| e.basic_auth("u", "Pa55wordXYZ"))
        .build();
    let fx = ImageSpec::oci().layers(&[1_000, 1_100_000]).build();
    fx.seed(&p.src, "ns/app:v1");
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut debug = ferry();
    debug.arg("--debug");
    let out = p
        .copy_cmd(
            debug,
            &["--report", report.path().to_str().unwrap()],
            "ns/app:v1",
            "ns/app:v1",
        )
        .env("FERRY_SRC_CREDS", "sa:Sup3rSecretSAToken")
        .run();
    out.assert_success();
    let jwt = p.src_ts().fetch_jwt(
        Some(("sa", "Sup3rSecretSAToken")),
        &["repository:ns/app:pull"],
    );
    let all = format!(
        "{}{}{}",
        out.stdout,
        out.stderr,
        std::fs::read_to_string(report.path()).unwrap()
    );
    assert!(all.contains("GET"), "debug output expected: {}", out.stderr);
    for secret in [
        "Sup3rSecretSAToken",
        "Pa55wordXYZ",
        &b64("u:Pa55wordXYZ"),
        &b64("sa:Sup3rSecretSAToken"),
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    // A JWT issued by the server starts with its header; none may show.
    let jwt_head = jwt.split('.').next().unwrap();
    assert!(!all.contains(&format!("{jwt_head}.")), "a token leaked");
}

#[test]
fn the_report_documents_the_copy() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[10_000, 1_200_000]).build();
    fx.seed(src, "ns/app:v1");
    let report = tempfile::NamedTempFile::new().unwrap();
    p.ferry_copy(
        &["-q", "--report", report.path().to_str().unwrap()],
        "ns/app:v1",
        "ns/app:v1",
    )
    .assert_success();
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    let total: u64 = fx.blobs().iter().map(|(_, s)| s).sum();
    assert_eq!(r["source"], format!("{}/ns/app:v1", src.host()));
    assert_eq!(r["destination"], format!("{}/ns/app:v1", dst.host()));
    assert_eq!(r["digest"], fx.digest.as_str());
    assert_eq!(r["source_digest"], fx.digest.as_str());
    assert_eq!(r["already_present"], false);
    assert_eq!(r["bytes"]["total"], total);
    assert_eq!(r["bytes"]["copied"], total);
    assert_eq!(r["blobs"]["copied"], fx.blobs().len());
    let seen: u64 = dst.requests().len() as u64;
    assert!(
        r["requests"]["destination"].as_u64().unwrap() >= seen.saturating_sub(1),
        "{r}"
    );
    assert!(r["duration_ms"].as_u64().is_some());
}

#[test]
fn signatures_that_are_not_copied_are_mentioned() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[1_000]).build();
    fx.seed(src, "ns/app:v1");
    // A cosign signature is stored as a tag named after the signed digest.
    let sig = ImageSpec::oci().layers(&[200]).build();
    let sig_tag = fx.digest.replace(':', "-") + ".sig";
    sig.seed(src, &format!("ns/app:{sig_tag}"));
    // As ferry, it travels with the image (tests/it/referrers.rs has the details).
    let out = p.ferry_copy(&[], "ns/app:v1", "ns/app:v1");
    out.assert_success();
    assert_eq!(dst.manifest_digest("ns/app", &sig_tag), Some(sig.digest));
    // Without attachments (as skopeo without use-sigstore-attachments), it is named.
    let out = p.ferry_copy(&["--referrers=none"], "ns/app:v1", "other/app:v1");
    out.assert_success();
    assert!(
        out.stderr.contains("not copied") && out.stderr.contains(&sig_tag),
        "{}",
        out.stderr
    );
    assert_eq!(dst.manifest_digest("other/app", &sig_tag), None);
    // --remove-signatures: the user asked for it, no notice, no `.sig`.
    let out = p.ferry_copy(&["--remove-signatures"], "ns/app:v1", "bare/app:v2");
    out.assert_success();
    assert!(!out.stderr.contains("not copied"), "{}", out.stderr);
    assert_eq!(dst.tags("bare/app"), vec!["v2".to_string()]);
}
