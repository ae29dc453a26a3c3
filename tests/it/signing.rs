//! Signatures made by skopeo verify under ferry, and signatures made by ferry verify under
//! skopeo, with the same keys and the same policy file; one changed byte of a signature, a
//! payload or a manifest is refused by both.
//!
//! Keys: a GnuPG key made with `gpg --batch --quick-gen-key` in a temporary `GNUPGHOME`, and
//! sigstore key pairs made by skopeo 1.18's `generate-sigstore-key` and by ferry's. Oracles:
//! Debian's skopeo 1.9.3 for GnuPG simple signing (`standalone-sign`/`standalone-verify`),
//! current skopeo 1.18 (`shared/tools/skopeo-current`) for everything sigstore and for
//! `copy --policy` over `dir:` images (1.9.3 has sigstore patched out). ferry's side is the
//! `standalone-*` and `generate-sigstore-key` verbs, and for policy evaluation the library
//! call the copy engine makes, `Policy::verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use ferry::policy::Policy;
use ferry::reference::ImageRef;
use ferry::signing::keys::PrivateKey;
use ferry::signing::{Candidate, Signature, SigstoreSignature};

use crate::support::fixtures::ImageSpec;

/// A directory holding `skopeo`, current skopeo (1.18).
static SKOPEO_CURRENT: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("ferry-skopeo-current-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/skopeo-current");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--install-wrapper")
        .arg(&dir)
        .output()
        .expect("running shared/tools/skopeo-current");
    assert!(
        out.status.success(),
        "skopeo-current: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("skopeo")
});

/// A process run: exit code, stdout, stderr.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
    #[track_caller]
    fn fails(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(1),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert_eq!(
            self.stderr.trim().lines().count(),
            1,
            "one line: {}",
            self.stderr
        );
        self
    }
}

/// A scratch directory with its own `HOME` and `GNUPGHOME`; the gpg-agent GnuPG starts there
/// is stopped when it goes away.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::Builder::new()
            .prefix("ferry-signing-")
            .tempdir()
            .unwrap();
        for d in ["home", "gnupg"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("gnupg"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Lab { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn run(&self, program: &Path, args: &[&str]) -> Ran {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("GNUPGHOME", self.path("gnupg"))
            .env("_CONTAINERS_ROOTLESS_UID", "1000")
            .current_dir(self.dir.path())
            .args(args)
            .stdin(std::process::Stdio::null());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ferry(&self, args: &[&str]) -> Ran {
        self.run(Path::new(env!("CARGO_BIN_EXE_ferry")), args)
    }

    fn skopeo(&self, args: &[&str]) -> Ran {
        self.run(Path::new("skopeo"), args)
    }

    fn skopeo_current(&self, args: &[&str]) -> Ran {
        self.run(&SKOPEO_CURRENT, args)
    }

    /// A GnuPG key (ed25519, `gpg --batch --quick-gen-key`); its fingerprint. With a
    /// passphrase when `passphrase` is not empty.
    fn gpg_key(&self, uid: &str, passphrase: &str) -> String {
        self.run(
            Path::new("gpg"),
            &[
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
                "--quick-gen-key",
                uid,
            ],
        )
        .ok();
        let out = self.run(
            Path::new("gpg"),
            &["--batch", "--with-colons", "--list-keys", uid],
        );
        out.stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("fingerprint")
    }

    /// A copy of a `dir:` image with `signature-1` set to `blob`.
    fn signed_copy(&self, name: &str, image: &Path, blob: &[u8]) -> PathBuf {
        let dest = self.path(name);
        std::fs::create_dir(&dest).unwrap();
        for e in std::fs::read_dir(image).unwrap() {
            let e = e.unwrap();
            if !e.file_name().to_string_lossy().starts_with("signature-") {
                std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
            }
        }
        std::fs::write(dest.join("signature-1"), blob).unwrap();
        dest
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path("gnupg"))
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// A manifest with one more byte (a space after the opening brace): still valid, same blobs,
/// another digest.
fn tamper_manifest(m: &[u8]) -> Vec<u8> {
    let mut out = b"{ ".to_vec();
    out.extend_from_slice(&m[1..]);
    out
}

/// `bytes` with the byte at `at` (from the end when negative) changed.
fn flip(bytes: &[u8], at: isize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let i = if at < 0 {
        b.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    b[i] ^= 0x01;
    b
}

const IDENTITY: &str = "reg.example/team/app:v1";

/// One policy file for both: the `docker` scope ferry evaluates for `docker://…`, the `dir`
/// transport skopeo evaluates when copying from a `dir:` image (whose identity is the
/// signature's, so `exactReference`).
fn policy(requirement: &str) -> String {
    format!(
        r#"{{"default":[{{"type":"reject"}}],"transports":{{
            "docker":{{"reg.example/team":[{requirement}]}},
            "dir":{{"":[{req_dir}]}}}}}}"#,
        req_dir = requirement.replacen(
            '{',
            &format!(
                r#"{{"signedIdentity":{{"type":"exactReference","dockerReference":"{IDENTITY}"}},"#
            ),
            1
        )
    )
}

fn ferry_verify(policy_file: &Path, manifest: &[u8], blobs: &[Vec<u8>]) -> Result<String, String> {
    let p = Policy::read(policy_file).map_err(|e| e.to_string())?;
    let candidates: Vec<Candidate> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            Candidate::new(
                format!("signature-{}", i + 1),
                Signature::from_blob(b).unwrap_or(Signature::Simple(b.clone())),
            )
        })
        .collect();
    p.verify(&ImageRef::parse(IDENTITY).unwrap(), manifest, &candidates)
        .map(|v| v.accepted[0].key.clone())
        .map_err(|e| e.to_string())
}

#[test]
fn gpg_standalone_sign_and_verify_both_ways() {
    let lab = Lab::new();
    let fpr = lab.gpg_key("Ferry Test <test@example.com>", "");
    lab.run(
        Path::new("gpg"),
        &["--batch", "--export", "--output", "pub.gpg"],
    )
    .ok();
    let m = lab.write("m.json", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#);
    let m = m.to_str().unwrap();
    let digest = ferry::reference::Digest::sha256(&std::fs::read(m).unwrap());

    // skopeo signs, ferry verifies (public key file, "any", the user's keyring).
    lab.skopeo(&["standalone-sign", m, IDENTITY, &fpr, "-o", "by-skopeo.sig"])
        .ok();
    let expected = format!("Signature verified using fingerprint {fpr}, digest {digest}\n");
    for args in [
        vec![
            m,
            IDENTITY,
            &fpr,
            "by-skopeo.sig",
            "--public-key-file",
            "pub.gpg",
        ],
        vec![
            m,
            IDENTITY,
            "any",
            "by-skopeo.sig",
            "--public-key-file",
            "pub.gpg",
        ],
        vec![m, IDENTITY, &fpr, "by-skopeo.sig"],
    ] {
        let mut a = vec!["standalone-verify"];
        a.extend(args.iter().copied());
        assert_eq!(lab.ferry(&a).ok().stdout, expected);
        // skopeo 1.18 prints the same line.
        assert_eq!(lab.skopeo_current(&a).ok().stdout, expected);
    }
    // ferry signs, skopeo verifies.
    lab.ferry(&["standalone-sign", m, IDENTITY, &fpr, "-o", "by-ferry.sig"])
        .ok();
    lab.skopeo(&["standalone-verify", m, IDENTITY, &fpr, "by-ferry.sig"])
        .ok();
    lab.skopeo_current(&[
        "standalone-verify",
        "--public-key-file",
        "pub.gpg",
        m,
        IDENTITY,
        "any",
        "by-ferry.sig",
    ])
    .ok();

    // Refused by both: a changed byte of the signature, of the manifest, another identity,
    // another fingerprint.
    for sig in ["by-skopeo.sig", "by-ferry.sig"] {
        let bytes = std::fs::read(lab.path(sig)).unwrap();
        lab.write("tampered.sig", flip(&bytes, -20));
        lab.write("m2.json", flip(&std::fs::read(m).unwrap(), 10));
        for args in [
            [m, IDENTITY, fpr.as_str(), "tampered.sig"],
            ["m2.json", IDENTITY, fpr.as_str(), sig],
            [m, "reg.example/team/app:v2", fpr.as_str(), sig],
            [m, IDENTITY, "0000000000000000000000000000000000000000", sig],
        ] {
            let mut a = vec!["standalone-verify", "--public-key-file", "pub.gpg"];
            a.extend(args);
            let f = lab.ferry(&a);
            f.fails();
            assert!(
                f.stderr.starts_with("Error: Error verifying signature: "),
                "{}",
                f.stderr
            );
            assert_eq!(
                lab.skopeo_current(&a).code,
                Some(1),
                "skopeo accepted {args:?}"
            );
        }
    }

    // A key with a passphrase: from --passphrase-file, never argv.
    let fpr2 = lab.gpg_key("Ferry Pass <pass@example.com>", "s3cret words");
    lab.write("pass", "s3cret words\nsecond line ignored\n");
    lab.ferry(&[
        "standalone-sign",
        "--passphrase-file",
        "pass",
        m,
        IDENTITY,
        &fpr2,
        "-o",
        "p.sig",
    ])
    .ok();
    lab.skopeo(&["standalone-verify", m, IDENTITY, &fpr2, "p.sig"])
        .ok();

    // Usage as skopeo's.
    let f = lab.ferry(&["standalone-sign", m, IDENTITY, &fpr]);
    f.fails();
    assert!(
        f.stderr.contains("Usage: skopeo standalone-sign"),
        "{}",
        f.stderr
    );
    lab.ferry(&["standalone-verify", m, IDENTITY, "any", "by-ferry.sig"])
        .fails();
}

#[test]
fn gpg_signatures_under_the_same_policy() {
    let lab = Lab::new();
    let fpr = lab.gpg_key("Ferry Test <test@example.com>", "");
    let pubkey = lab.path("pub.gpg");
    lab.run(
        Path::new("gpg"),
        &["--batch", "--export", "--output", pubkey.to_str().unwrap()],
    )
    .ok();
    let policy_file = lab.write(
        "policy.json",
        policy(&format!(
            r#"{{"type":"signedBy","keyType":"GPGKeys","keyPath":{:?}}}"#,
            pubkey.display().to_string()
        )),
    );
    let pol = policy_file.to_str().unwrap();
    let img = ImageSpec::oci().layers(&[2048]).build();
    let src = img.dir_ref();

    // skopeo copies with --sign-by into a dir: image; ferry's policy check accepts it.
    let signed = lab.path("signed-by-skopeo");
    let dst = format!("dir:{}", signed.display());
    lab.skopeo_current(&[
        "--insecure-policy",
        "copy",
        "-q",
        "--sign-by",
        &fpr,
        "--sign-identity",
        IDENTITY,
        &src,
        &dst,
    ])
    .ok();
    let sig = std::fs::read(signed.join("signature-1")).unwrap();
    assert_eq!(
        ferry_verify(&policy_file, &img.manifest, std::slice::from_ref(&sig)),
        Ok(fpr.clone())
    );
    // ... and skopeo's own check of it with the same policy passes.
    let out = format!("dir:{}", lab.path("out1").display());
    lab.skopeo_current(&[
        "--policy",
        pol,
        "copy",
        "-q",
        &format!("dir:{}", signed.display()),
        &out,
    ])
    .ok();

    // ferry signs (the verb, inside the lab's GNUPGHOME); skopeo's copy with the same policy
    // accepts it.
    lab.write("manifest.json", &img.manifest);
    lab.ferry(&[
        "standalone-sign",
        "manifest.json",
        IDENTITY,
        &fpr,
        "-o",
        "ferry.sig",
    ])
    .ok();
    let ferry_sig = std::fs::read(lab.path("ferry.sig")).unwrap();
    let dir = lab.signed_copy("signed-by-ferry", img.dir(), &ferry_sig);
    lab.skopeo_current(&[
        "--policy",
        pol,
        "copy",
        "-q",
        &format!("dir:{}", dir.display()),
        &format!("dir:{}", lab.path("out2").display()),
    ])
    .ok();
    assert_eq!(
        ferry_verify(
            &policy_file,
            &img.manifest,
            std::slice::from_ref(&ferry_sig)
        ),
        Ok(fpr.clone())
    );

    // One changed byte of the signature, or of the manifest: refused by both.
    for (n, s) in [&sig, &ferry_sig].into_iter().enumerate() {
        let bad = flip(s, -30);
        let e = ferry_verify(&policy_file, &img.manifest, std::slice::from_ref(&bad)).unwrap_err();
        assert!(
            e.starts_with("Source image rejected: ") && e.contains("signature-1 (simple signing)"),
            "{e}"
        );
        let dir = lab.signed_copy(&format!("bad-sig-{n}"), img.dir(), &bad);
        let r = lab.skopeo_current(&[
            "--policy",
            pol,
            "copy",
            "-q",
            &format!("dir:{}", dir.display()),
            &format!("dir:{}", lab.path(&format!("o-{n}")).display()),
        ]);
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert!(!lab.path(&format!("o-{n}")).join("manifest.json").exists());
    }
    let bad_manifest = tamper_manifest(&img.manifest);
    let e = ferry_verify(&policy_file, &bad_manifest, std::slice::from_ref(&sig)).unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    // No signature at all.
    let e = ferry_verify(&policy_file, &img.manifest, &[]).unwrap_err();
    assert!(
        e.contains("A signature was required, but no signature exists"),
        "{e}"
    );
    let r = lab.skopeo_current(&[
        "--policy",
        pol,
        "copy",
        "-q",
        &src,
        &format!("dir:{}", lab.path("o-none").display()),
    ]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("A signature was required, but no signature exists"),
        "{}",
        r.stderr
    );
}

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
