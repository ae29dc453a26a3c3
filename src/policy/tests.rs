//! Unit tests of scopes and of sigstore verification (simple signing with GnuPG keys is
//! tested against skopeo in `tests/it/signing.rs`).

use std::io::Write as _;

use super::*;
use crate::signing::fulcio::tests::TestFulcio;
use crate::signing::keys::PrivateKey;
use crate::signing::sigstore::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, MIME_TYPE, SigstoreSignature,
};
use crate::signing::{Candidate, Signature};

fn img(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

#[test]
fn most_specific_scope_wins() {
    let p = Policy::parse(
        r#"{"default":[{"type":"reject"}],
            "transports":{"docker":{
              "reg.example.com/team":[{"type":"insecureAcceptAnything"}],
              "reg.example.com/team/signed":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}],
              "*.corp.example":[{"type":"insecureAcceptAnything"}]}}}"#,
    )
    .unwrap();
    // A scope requiring signatures: they are gathered and checked (none here: refused,
    // naming the requirement, the image and that no signature was found).
    assert!(
        p.needs_signatures(&img("reg.example.com/team/signed:1"))
            .unwrap()
    );
    let e = p
        .verify(&img("reg.example.com/team/signed:1"), b"{}", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("Source image rejected: ")
            && e.contains(
                "requirement 1 (signedBy) of docker scope \"reg.example.com/team/signed\""
            )
            && e.contains("docker://reg.example.com/team/signed:1")
            && e.ends_with("no signatures found]")
            && !e.contains('\n'),
        "{e}"
    );
    assert!(
        !p.needs_signatures(&img("reg.example.com/team/app:1"))
            .unwrap()
    );
    let e = p
        .needs_signatures(&img("other.io/x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "Source image rejected: Running image docker://other.io/x:latest is rejected by policy."
        ),
        "{e}"
    );
    assert!(!p.needs_signatures(&img("a.b.corp.example/x")).unwrap());
}

#[test]
fn transport_default_then_global_default() {
    let p = Policy::parse(
        r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"":[{"type":"reject"}]}}}"#,
    )
    .unwrap();
    assert!(p.needs_signatures(&img("r.io/x")).is_err());
    let p = Policy::parse(r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    assert!(!p.needs_signatures(&img("r.io/x")).unwrap());
    assert!(Policy::parse(r#"{"default":[{"type":"insecureAcceptAnything"}],"x":1}"#).is_err());
}

fn write(dir: &std::path::Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(body).unwrap();
    p.display().to_string()
}

fn cand(origin: &str, s: &SigstoreSignature) -> Candidate {
    Candidate::new(origin, Signature::Sigstore(s.clone()))
}

#[test]
fn sigstore_keys_digests_identities() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate_p256();
    let other = PrivateKey::generate_p256();
    let pub_path = write(dir.path(), "k.pub", key.public().to_pem().as_bytes());
    let other_path = write(dir.path(), "o.pub", other.public().to_pem().as_bytes());
    let policy = |extra: &str| {
        Policy::parse(&format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"reg.example/ns":[{{"type":"sigstoreSigned","keyPaths":[{:?},{:?}]{extra}}}]}}}}}}"#,
            other_path, pub_path
        ))
        .unwrap()
    };
    let p = policy("");
    let image = img("reg.example/ns/app:v1");
    let manifest = br#"{"schemaVersion":2,"layers":[]}"#;
    let good = SigstoreSignature::sign(&key, manifest, "reg.example/ns/app:v1");
    let v = p
        .verify(&image, manifest, &[cand("sha256-x.sig layer 1", &good)])
        .unwrap();
    assert_eq!(v.accepted.len(), 1);
    assert_eq!(v.accepted[0].key, key.public().key_id());
    assert_eq!(v.accepted[0].identity, "reg.example/ns/app:v1");
    assert_eq!(v.scope, r#"docker scope "reg.example/ns""#);

    // No signature at all.
    let e = p.verify(&image, manifest, &[]).unwrap_err().to_string();
    assert!(
        e.starts_with("Source image rejected: A signature was required, but no signature exists"),
        "{e}"
    );
    assert!(
        e.contains("requirement 1 (sigstoreSigned)") && e.contains("no signatures found"),
        "{e}"
    );
    // Another manifest (one byte changed): the digest does not match.
    let mut m2 = manifest.to_vec();
    m2[5] ^= 1;
    let e = p
        .verify(&image, &m2, &[cand("layer 1", &good)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match"), "{e}");
    // Another tag: the identity is not accepted (matchRepoDigestOrExact), unless the policy
    // says matchRepository.
    let e = p
        .verify(
            &img("reg.example/ns/app:v2"),
            manifest,
            &[cand("layer 1", &good)],
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(r#"Signature for identity "reg.example/ns/app:v1" is not accepted"#),
        "{e}"
    );
    let p_repo = policy(r#","signedIdentity":{"type":"matchRepository"}"#);
    assert!(
        p_repo
            .verify(&img("reg.example/ns/app:v2"), manifest, &[cand("l", &good)])
            .is_ok()
    );
    // By digest: any tag of the repository.
    let by_digest = img(&format!(
        "reg.example/ns/app@{}",
        crate::reference::Digest::sha256(manifest)
    ));
    assert!(p.verify(&by_digest, manifest, &[cand("l", &good)]).is_ok());
    // A key the policy does not trust; a tampered signature; a tampered payload.
    let stranger = SigstoreSignature::sign(
        &PrivateKey::generate_p256(),
        manifest,
        "reg.example/ns/app:v1",
    );
    let mut bad_sig = good.clone();
    let s = bad_sig
        .annotations
        .get_mut(crate::signing::sigstore::SIGNATURE_ANNOTATION)
        .unwrap();
    *s = s.replacen(&s[10..11], if &s[10..11] == "A" { "B" } else { "A" }, 1);
    let mut bad_payload = good.clone();
    bad_payload.payload[20] ^= 1;
    let e = p
        .verify(
            &image,
            manifest,
            &[
                cand("layer 1", &stranger),
                cand("layer 2", &bad_sig),
                cand("layer 3", &bad_payload),
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("None of the signatures were accepted, reasons:"),
        "{e}"
    );
    assert!(
        e.contains("layer 1 (sigstore), layer 2 (sigstore), layer 3 (sigstore)"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
    // One good signature among bad ones is enough.
    assert!(
        p.verify(&image, manifest, &[cand("1", &stranger), cand("2", &good)])
            .is_ok()
    );
    // Simple signatures and other attachments do not count for sigstoreSigned.
    let mut att = good;
    att.mime_type = "application/vnd.dsse.envelope.v1+json".into();
    let e = p
        .verify(
            &image,
            manifest,
            &[
                Candidate::new("s1", Signature::Simple(vec![0xa3])),
                cand("a", &att),
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(1 non-sigstore signatures, 1 sigstore non-signature attachments)"),
        "{e}"
    );
}

#[test]
fn sigstore_with_rekor_and_fulcio() {
    let dir = tempfile::tempdir().unwrap();
    let rekor = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let rekor_pem = crate::signing::keys::PublicKey::P256(*rekor.verifying_key()).to_pem();
    let rekor_path = write(dir.path(), "rekor.pub", rekor_pem.as_bytes());
    let manifest = br#"{"schemaVersion":2}"#;
    let image = img("reg.example/ns/app:v1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // A key and a Rekor SET.
    let key = PrivateKey::generate_p256();
    let key_path = write(dir.path(), "k.pub", key.public().to_pem().as_bytes());
    let p = Policy::parse(&format!(
        r#"{{"default":[{{"type":"sigstoreSigned","keyPath":{key_path:?},"rekorPublicKeyPath":{rekor_path:?}}}]}}"#
    ))
    .unwrap();
    let mut sig = SigstoreSignature::sign(&key, manifest, "reg.example/ns/app:v1");
    let e = p
        .verify(&image, manifest, &[cand("l", &sig)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing dev.sigstore.cosign/bundle annotation"),
        "{e}"
    );
    let b64 = sig.signature_annotation().unwrap().to_string();
    let set = crate::signing::rekor::make_set(
        &rekor,
        key.public().to_pem().as_bytes(),
        &b64,
        &sig.payload,
        now,
    );
    sig.annotations
        .insert(BUNDLE_ANNOTATION.into(), String::from_utf8(set).unwrap());
    p.verify(&image, manifest, &[cand("l", &sig)]).unwrap();

    // Fulcio: a certificate for the e-mail and issuer, logged in Rekor.
    let fulcio = TestFulcio::new();
    let ca_path = write(dir.path(), "ca.pem", fulcio.ca_pem.as_bytes());
    let p = Policy::parse(&format!(
        r#"{{"default":[{{"type":"sigstoreSigned","fulcio":{{"caPath":{ca_path:?},"oidcIssuer":"https://issuer.example","subjectEmail":"dev@example.com"}},"rekorPublicKeyPath":{rekor_path:?}}}]}}"#
    ))
    .unwrap();
    let keyless = |email: &str| {
        let (cert, leaf_key) = fulcio.leaf(email, "https://issuer.example", true);
        let mut s = SigstoreSignature::sign(&leaf_key, manifest, "reg.example/ns/app:v1");
        let b64 = s.signature_annotation().unwrap().to_string();
        let set = crate::signing::rekor::make_set(&rekor, cert.as_bytes(), &b64, &s.payload, now);
        s.annotations
            .insert(BUNDLE_ANNOTATION.into(), String::from_utf8(set).unwrap());
        s.annotations.insert(CERTIFICATE_ANNOTATION.into(), cert);
        s
    };
    let v = p
        .verify(&image, manifest, &[cand("l", &keyless("dev@example.com"))])
        .unwrap();
    assert_eq!(v.accepted[0].key, "fulcio:dev@example.com");
    let e = p
        .verify(&image, manifest, &[cand("l", &keyless("eve@example.com"))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Required email"), "{e}");
    // The key-signed signature is no Fulcio signature.
    assert!(p.verify(&image, manifest, &[cand("l", &sig)]).is_err());
    assert_eq!(MIME_TYPE, sig.mime_type);
}

#[test]
fn every_requirement_must_hold() {
    let key = PrivateKey::generate_p256();
    let pem = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(key.public().to_pem())
    };
    let manifest = b"{}";
    let image = img("r.example/app:1");
    let good = SigstoreSignature::sign(&key, manifest, "r.example/app:1");
    let p = Policy::parse(&format!(
        r#"{{"default":[{{"type":"sigstoreSigned","keyData":"{pem}"}},{{"type":"signedBy","keyType":"GPGKeys","keyData":"AA=="}}]}}"#
    ))
    .unwrap();
    let e = p
        .verify(&image, manifest, &[cand("l", &good)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("requirement 2 (signedBy)"), "{e}");
    let p = Policy::parse(&format!(
        r#"{{"default":[{{"type":"insecureAcceptAnything"}},{{"type":"sigstoreSigned","keyData":"{pem}"}}]}}"#
    ))
    .unwrap();
    assert!(p.verify(&image, manifest, &[cand("l", &good)]).is_ok());
}

#[test]
fn local_transports_scopes_and_identities() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let key = PrivateKey::generate_p256();
    let pub_path = write(&base, "k.pub", key.public().to_pem().as_bytes());
    let image_dir = base.join("img");
    std::fs::create_dir(&image_dir).unwrap();
    let policy = |identity: &str| {
        Policy::parse(&format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"dir":{{{:?}:[{{"type":"sigstoreSigned","keyPath":{pub_path:?}{identity}}}]}}}}}}"#,
            base.display().to_string()
        ))
        .unwrap()
    };
    let local = |s: &str| PolicyImage::of(&crate::reference::AnyRef::parse(s).unwrap());
    let image = local(&format!("dir:{}", image_dir.display()));
    let p = policy("");
    // The parent directory's scope applies; elsewhere the default rejects.
    assert!(p.needs_signatures_for(&image).unwrap());
    let e = p
        .needs_signatures_for(&local("dir:/"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Running image dir:/ is rejected by policy."),
        "{e}"
    );
    // A dir: image has no Docker reference: only exactReference/exactRepository can match.
    let manifest = br#"{"schemaVersion":2,"layers":[]}"#;
    let sig = SigstoreSignature::sign(&key, manifest, "reg.example/ns/app:v1");
    let e = p
        .verify_image(&image, manifest, &[cand("signature-1", &sig)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Docker reference match attempted on image dir:")
            && e.contains("with no known Docker reference identity")
            && e.contains(r#"of dir scope "#)
            && e.contains("1 signature tried: signature-1 (sigstore)"),
        "{e}"
    );
    let p = policy(
        r#","signedIdentity":{"type":"exactReference","dockerReference":"reg.example/ns/app:v1"}"#,
    );
    let v = p
        .verify_image(&image, manifest, &[cand("signature-1", &sig)])
        .unwrap();
    assert_eq!(v.accepted[0].key, key.public().key_id());
}
