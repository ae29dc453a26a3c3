//! Sigstore keys, signatures and the `.sig` attachment, made and checked by skopeo 1.18 and
//! by ferry in both directions (helpers in the parent module).

use super::*;

#[test]
fn sigstore_keys_and_signatures_both_ways() {
    let lab = Lab::new();
    lab.write("pass", "correct horse\n");
    // Key pairs from both tools; each reads the other's.
    let k = lab.skopeo_current(&[
        "generate-sigstore-key",
        "--output-prefix",
        "skopeo-key",
        "--passphrase-file",
        "pass",
    ]);
    k.ok();
    let f = lab.ferry(&[
        "generate-sigstore-key",
        "--output-prefix",
        "ferry-key",
        "--passphrase-file",
        "pass",
    ]);
    f.ok();
    assert_eq!(
        f.stdout,
        r#"Key written to "ferry-key.private" and "ferry-key.pub""#
    );
    assert_eq!(
        k.stdout,
        r#"Key written to "skopeo-key.private" and "skopeo-key.pub""#
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &str| std::fs::metadata(lab.path(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            (mode("ferry-key.private"), mode("ferry-key.pub")),
            (0o600, 0o644)
        );
    }
    // Refusals as skopeo's (exit 1): an existing key, no passphrase source and no terminal,
    // no prefix.
    for args in [
        vec![
            "generate-sigstore-key",
            "--output-prefix",
            "ferry-key",
            "--passphrase-file",
            "pass",
        ],
        vec!["generate-sigstore-key", "--output-prefix", "other"],
        vec!["generate-sigstore-key"],
    ] {
        let f = lab.ferry(&args);
        f.fails();
        assert_eq!(lab.skopeo_current(&args).code, Some(1));
    }
    assert!(!lab.path("other.pub").exists());

    let img = ImageSpec::oci().layers(&[1024]).build();
    let src = img.dir_ref();
    let pass = ferry::redact::Secret::new("correct horse");
    for (signer, verifier) in [("ferry-key", "skopeo-key"), ("skopeo-key", "ferry-key")] {
        let _ = verifier;
        let pub_path = lab.path(&format!("{signer}.pub"));
        let policy_file = lab.write(
            &format!("policy-{signer}.json"),
            policy(&format!(
                r#"{{"type":"sigstoreSigned","keyPath":{:?}}}"#,
                pub_path.display().to_string()
            )),
        );
        let pol = policy_file.to_str().unwrap();

        // skopeo 1.18 signs with this key (made by either tool); ferry verifies.
        let signed = lab.path(&format!("skopeo-signed-{signer}"));
        lab.skopeo_current(&[
            "--insecure-policy",
            "copy",
            "-q",
            "--sign-by-sigstore-private-key",
            &format!("{signer}.private"),
            "--sign-passphrase-file",
            "pass",
            "--sign-identity",
            IDENTITY,
            &src,
            &format!("dir:{}", signed.display()),
        ])
        .ok();
        let by_skopeo = std::fs::read(signed.join("signature-1")).unwrap();
        assert!(by_skopeo.starts_with(b"\x00sigstore-json\n"));
        let key_id = ferry::signing::keys::PublicKey::from_pem(&std::fs::read(&pub_path).unwrap())
            .unwrap()
            .key_id();
        assert_eq!(
            ferry_verify(
                &policy_file,
                &img.manifest,
                std::slice::from_ref(&by_skopeo)
            ),
            Ok(key_id.clone())
        );

        // ferry signs with the same key; skopeo's copy with the same policy accepts it.
        let key = PrivateKey::from_encrypted_pem(
            &std::fs::read(lab.path(&format!("{signer}.private"))).unwrap(),
            &pass,
        )
        .unwrap();
        let ours =
            Signature::Sigstore(SigstoreSignature::sign(&key, &img.manifest, IDENTITY)).to_blob();
        let dir = lab.signed_copy(&format!("ferry-signed-{signer}"), img.dir(), &ours);
        lab.skopeo_current(&[
            "--policy",
            pol,
            "copy",
            "-q",
            &format!("dir:{}", dir.display()),
            &format!("dir:{}", lab.path(&format!("out-{signer}")).display()),
        ])
        .ok();
        assert_eq!(
            ferry_verify(&policy_file, &img.manifest, std::slice::from_ref(&ours)),
            Ok(key_id)
        );

        // Tampering, refused by both: a byte of the payload, a byte of the signature.
        for (n, blob) in [&by_skopeo, &ours].into_iter().enumerate() {
            let Signature::Sigstore(s) = Signature::from_blob(blob).unwrap() else {
                unreachable!()
            };
            let mut bad_payload = s.clone();
            bad_payload.payload = flip(&s.payload, 40);
            let mut bad_sig = s.clone();
            let b64 = bad_sig
                .annotations
                .get_mut(ferry::signing::sigstore::SIGNATURE_ANNOTATION)
                .unwrap();
            let c = if b64.as_bytes()[12] == b'A' { "B" } else { "A" };
            b64.replace_range(12..13, c);
            for (m, bad) in [bad_payload, bad_sig].into_iter().enumerate() {
                let blob = Signature::Sigstore(bad).to_blob();
                let e = ferry_verify(&policy_file, &img.manifest, std::slice::from_ref(&blob))
                    .unwrap_err();
                assert!(e.starts_with("Source image rejected: "), "{e}");
                let name = format!("bad-{signer}-{n}-{m}");
                let dir = lab.signed_copy(&name, img.dir(), &blob);
                let out = lab.path(&format!("out-{name}"));
                let r = lab.skopeo_current(&[
                    "--policy",
                    pol,
                    "copy",
                    "-q",
                    &format!("dir:{}", dir.display()),
                    &format!("dir:{}", out.display()),
                ]);
                assert_eq!(r.code, Some(1), "skopeo accepted {name}: {}", r.stderr);
                assert!(!out.join("manifest.json").exists());
            }
        }
        // The manifest changed by one byte: refused by both.
        let bad_manifest = tamper_manifest(&img.manifest);
        let e = ferry_verify(&policy_file, &bad_manifest, std::slice::from_ref(&ours)).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let dir = lab.signed_copy(&format!("bad-manifest-{signer}"), img.dir(), &ours);
        std::fs::write(dir.join("manifest.json"), &bad_manifest).unwrap();
        let r = lab.skopeo_current(&[
            "--policy",
            pol,
            "copy",
            "-q",
            &format!("dir:{}", dir.display()),
            &format!("dir:{}", lab.path(&format!("out-bm-{signer}")).display()),
        ]);
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert!(r.stderr.contains("does not match"), "{}", r.stderr);
    }
}

/// The `sha256-<hex>.sig` attachment in a real registry: skopeo 1.18 (with
/// `use-sigstore-attachments`) writes one, ferry reads its layers and verifies; ferry builds
/// one (`add_to_attachment`), skopeo reads it and verifies with the same policy.
#[test]
fn sigstore_attachments_in_a_registry_both_ways() {
    use crate::support::{Registry, RegistryOptions, Side};
    use ferry::signing::sigstore::{add_to_attachment, attachment_layers, attachment_tag};

    let lab = Lab::new();
    let reg = Registry::start(RegistryOptions::default());
    let regd = lab.path("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("default.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )
    .unwrap();
    let regd = regd.to_str().unwrap().to_string();
    lab.write("pass", "pw\n");
    lab.ferry(&[
        "generate-sigstore-key",
        "--output-prefix",
        "k",
        "--passphrase-file",
        "pass",
    ])
    .ok();
    let pub_path = lab.path("k.pub").display().to_string();
    let name = |repo: &str| format!("{}/{repo}:v1", reg.host());
    let policy_file = lab.write(
        "policy.json",
        format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],"transports":{{"docker":{{"{}/team":[{{"type":"sigstoreSigned","keyPath":{pub_path:?}}}]}}}}}}"#,
            reg.host()
        ),
    );
    let pol = policy_file.to_str().unwrap();
    let tls_dest = reg.tls_args(Side::Dest);
    let tls_src = reg.tls_args(Side::Src);
    let img = ImageSpec::oci().layers(&[1024]).build();
    let digest: ferry::reference::Digest = img.digest.parse().unwrap();
    let key = PrivateKey::from_encrypted_pem(
        &std::fs::read(lab.path("k.private")).unwrap(),
        &ferry::redact::Secret::new("pw"),
    )
    .unwrap();
    let ferry_check = |repo: &str| -> Result<String, String> {
        let m = reg
            .get_manifest(repo, &attachment_tag(&digest))
            .expect("attachment manifest");
        assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
        let layers = attachment_layers(&m.bytes).map_err(|e| e.to_string())?;
        let candidates: Vec<Candidate> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let payload = reg.get_blob(repo, l.digest.as_str()).expect("payload blob");
                Candidate::new(
                    format!("{} layer {}", attachment_tag(&digest), i + 1),
                    Signature::Sigstore(l.signature(payload).unwrap()),
                )
            })
            .collect();
        Policy::read(&policy_file)
            .unwrap()
            .verify(
                &ImageRef::parse(&name(repo)).unwrap(),
                &img.manifest,
                &candidates,
            )
            .map(|v| v.accepted[0].origin.clone())
            .map_err(|e| e.to_string())
    };

    // skopeo signs into the registry; ferry reads the attachment and verifies.
    let mut args = vec![
        "--insecure-policy",
        "--registries.d",
        &regd,
        "copy",
        "-q",
        "--preserve-digests",
        "--sign-by-sigstore-private-key",
        "k.private",
        "--sign-passphrase-file",
        "pass",
    ];
    args.extend(tls_dest.iter().map(String::as_str));
    let src = img.dir_ref();
    let dst = format!("docker://{}", name("team/by-skopeo"));
    args.extend([src.as_str(), dst.as_str()]);
    lab.skopeo_current(&args).ok();
    assert_eq!(
        ferry_check("team/by-skopeo"),
        Ok(format!("{} layer 1", attachment_tag(&digest)))
    );

    // ferry builds the attachment for a copy without one (pushed as a dir: image, byte for
    // byte); skopeo reads and verifies it with the same policy, and so does ferry.
    let mut args = vec!["--insecure-policy", "copy", "-q", "--preserve-digests"];
    args.extend(tls_dest.iter().map(String::as_str));
    let dst = format!("docker://{}", name("team/by-ferry"));
    args.extend([src.as_str(), dst.as_str()]);
    lab.skopeo_current(&args).ok();
    let sig = SigstoreSignature::sign(&key, &img.manifest, &name("team/by-ferry"));
    let update = add_to_attachment(None, std::slice::from_ref(&sig))
        .unwrap()
        .unwrap();
    let att_dir = lab.path("attachment");
    std::fs::create_dir(&att_dir).unwrap();
    std::fs::write(
        att_dir.join("version"),
        "Directory Transport Version: 1.1\n",
    )
    .unwrap();
    std::fs::write(att_dir.join("manifest.json"), &update.manifest).unwrap();
    for (d, bytes) in &update.blobs {
        std::fs::write(att_dir.join(d.hex()), bytes).unwrap();
    }
    let mut args = vec!["--insecure-policy", "copy", "-q", "--preserve-digests"];
    args.extend(tls_dest.iter().map(String::as_str));
    let att_src = format!("dir:{}", att_dir.display());
    let att_dst = format!(
        "docker://{}/team/by-ferry:{}",
        reg.host(),
        attachment_tag(&digest)
    );
    args.extend([att_src.as_str(), att_dst.as_str()]);
    lab.skopeo_current(&args).ok();
    assert_eq!(
        reg.manifest_digest("team/by-ferry", &attachment_tag(&digest)),
        Some(ferry::reference::Digest::sha256(&update.manifest).to_string()),
        "the attachment is stored byte for byte"
    );
    assert!(ferry_check("team/by-ferry").is_ok());
    let verify_with_skopeo = |repo: &str, out: &str| {
        let mut args = vec!["--policy", pol, "--registries.d", &regd, "copy", "-q"];
        args.extend(tls_src.iter().map(String::as_str));
        let from = format!("docker://{}", name(repo));
        let to = format!("dir:{}", lab.path(out).display());
        args.extend([from.as_str(), to.as_str()]);
        lab.skopeo_current(&args)
    };
    verify_with_skopeo("team/by-ferry", "out-ferry").ok();
    verify_with_skopeo("team/by-skopeo", "out-skopeo").ok();

    // Another repository's signature (identity) is refused by both; so is an image without any.
    let mut args = vec!["--insecure-policy", "copy", "-q", "--preserve-digests"];
    args.extend(tls_dest.iter().map(String::as_str));
    let dst = format!("docker://{}", name("team/unsigned"));
    args.extend([src.as_str(), dst.as_str()]);
    lab.skopeo_current(&args).ok();
    let r = verify_with_skopeo("team/unsigned", "out-unsigned");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let mut args = vec!["--insecure-policy", "copy", "-q", "--preserve-digests"];
    args.extend(tls_dest.iter().map(String::as_str));
    let att_dst = format!(
        "docker://{}/team/unsigned:{}",
        reg.host(),
        attachment_tag(&digest)
    );
    args.extend([att_src.as_str(), att_dst.as_str()]);
    lab.skopeo_current(&args).ok();
    let e = ferry_check("team/unsigned").unwrap_err();
    assert!(e.contains("is not accepted"), "{e}");
    let r = verify_with_skopeo("team/unsigned", "out-unsigned2");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("is not accepted"), "{}", r.stderr);
}

/// A keyless (Fulcio) signature with its Rekor SET, built as cosign builds them with a test CA
/// and a test Rekor key: ferry's offline check and skopeo 1.18's agree, with one policy file.
#[test]
fn fulcio_and_rekor_checked_offline_as_skopeo_checks_them() {
    use base64::Engine as _;
    use ecdsa::signature::hazmat::PrehashSigner as _;
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, SanType,
    };
    use sha2::Digest as _;

    let lab = Lab::new();
    let b64 = &base64::engine::general_purpose::STANDARD;
    // The test Fulcio: a CA and a short-lived leaf for dev@example.com.
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test fulcio");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::Rfc822Name("dev@example.com".try_into().unwrap())];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    leaf.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
        b"https://issuer.example".to_vec(),
    )];
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::hours(1);
    let cert_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();
    let signer = PrivateKey::from_pkcs8_der(&leaf_key.serialize_der()).unwrap();

    // The signature, and the Rekor SET a Rekor with `rekor` would return for it.
    let img = ImageSpec::oci().layers(&[512]).build();
    let mut sig = SigstoreSignature::sign(&signer, &img.manifest, IDENTITY);
    let sig_b64 = sig.signature_annotation().unwrap().to_string();
    let rekor = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let entry = serde_json::json!({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(&sig.payload))}},
            "signature": {"content": sig_b64, "publicKey": {"content": b64.encode(&cert_pem)}},
        },
    });
    let set_payload = serde_json::json!({
        "body": b64.encode(serde_json::to_vec(&entry).unwrap()),
        "integratedTime": now.unix_timestamp(),
        "logIndex": 42,
        "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
    });
    let canonical = serde_json_canonicalizer::to_vec(&set_payload).unwrap();
    let set_sig: p256::ecdsa::Signature = rekor
        .sign_prehash(&sha2::Sha256::digest(&canonical))
        .unwrap();
    let set = serde_json::to_string(&serde_json::json!({
        "SignedEntryTimestamp": b64.encode(set_sig.to_der().as_bytes()),
        "Payload": set_payload,
    }))
    .unwrap();
    sig.annotations.insert(
        ferry::signing::sigstore::BUNDLE_ANNOTATION.into(),
        set.clone(),
    );
    sig.annotations.insert(
        ferry::signing::sigstore::CERTIFICATE_ANNOTATION.into(),
        cert_pem,
    );

    let ca_path = lab.write("ca.pem", &ca_pem).display().to_string();
    let rekor_pem = ferry::signing::keys::PublicKey::P256(*rekor.verifying_key()).to_pem();
    let rekor_path = lab.write("rekor.pub", &rekor_pem).display().to_string();
    let policy_for = |email: &str| {
        lab.write(
            &format!("policy-{email}.json"),
            policy(&format!(
                r#"{{"type":"sigstoreSigned","fulcio":{{"caPath":{ca_path:?},"oidcIssuer":"https://issuer.example","subjectEmail":"{email}"}},"rekorPublicKeyPath":{rekor_path:?}}}"#
            )),
        )
    };
    let both = |policy_file: &Path, s: &SigstoreSignature, name: &str| {
        let blob = Signature::Sigstore(s.clone()).to_blob();
        let ours = ferry_verify(policy_file, &img.manifest, std::slice::from_ref(&blob));
        let dir = lab.signed_copy(name, img.dir(), &blob);
        let theirs = lab.skopeo_current(&[
            "--policy",
            policy_file.to_str().unwrap(),
            "copy",
            "-q",
            &format!("dir:{}", dir.display()),
            &format!("dir:{}", lab.path(&format!("out-{name}")).display()),
        ]);
        (ours, theirs)
    };

    let good = policy_for("dev@example.com");
    let (ours, theirs) = both(&good, &sig, "good");
    assert_eq!(ours, Ok("fulcio:dev@example.com".to_string()));
    theirs.ok();

    // Another e-mail in the policy: both refuse.
    let (ours, theirs) = both(&policy_for("eve@example.com"), &sig, "email");
    assert!(ours.unwrap_err().contains("Required email"));
    assert_eq!(theirs.code, Some(1), "{}", theirs.stderr);
    assert!(
        theirs.stderr.contains("Required email"),
        "{}",
        theirs.stderr
    );

    // The SET changed (another integratedTime): both refuse.
    let mut bad = sig.clone();
    let t = now.unix_timestamp().to_string();
    bad.annotations.insert(
        ferry::signing::sigstore::BUNDLE_ANNOTATION.into(),
        set.replace(&t, &(now.unix_timestamp() + 1).to_string()),
    );
    let (ours, theirs) = both(&good, &bad, "set");
    assert!(ours.unwrap_err().contains("Rekor SET failed"));
    assert_eq!(theirs.code, Some(1), "{}", theirs.stderr);

    // No SET at all: both refuse.
    let mut bad = sig.clone();
    bad.annotations
        .remove(ferry::signing::sigstore::BUNDLE_ANNOTATION);
    let (ours, theirs) = both(&good, &bad, "noset");
    assert!(
        ours.unwrap_err()
            .contains("missing dev.sigstore.cosign/bundle annotation")
    );
    assert_eq!(theirs.code, Some(1), "{}", theirs.stderr);
}
