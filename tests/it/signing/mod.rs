//! Signatures made by skopeo verify under ferry, and signatures made by ferry verify under
//! skopeo, with the same keys and the same policy file; one changed byte of a signature, a
//! payload or a manifest is refused by both.
//!
//! Keys: a GnuPG key made with `gpg --batch --quick-gen-key` in a temporary `GNUPGHOME`, and
//! sigstore key pairs made by skopeo 1.18's `generate-sigstore-key` and by ferry's. Oracles:
//! Debian's skopeo 1.9.3 for GnuPG simple signing (`standalone-sign`/`standalone-verify`),
//! current skopeo 1.18 (`scripts/skopeo-current`) for everything sigstore and for
//! `copy --policy` over `dir:` images (1.9.3 has sigstore patched out). ferry's side is the
//! `standalone-*` and `generate-sigstore-key` verbs, and for policy evaluation the library
//! call the copy engine makes, `Policy::verify`. GnuPG here, sigstore in [`sigstore`].

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
    // Under the target directory, not /tmp: nothing is left behind outside the build.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("skopeo-current-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/skopeo-current");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--install-wrapper")
        .arg(&dir)
        .output()
        .expect("running scripts/skopeo-current");
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
    // ferry's copy engine accepts it under the same policy, signature and all.
    lab.ferry(&[
        "--policy",
        pol,
        "copy",
        "-q",
        &format!("dir:{}", dir.display()),
        &format!("dir:{}", lab.path("out3").display()),
    ])
    .ok();
    assert_eq!(
        std::fs::read(lab.path("out3").join("signature-1")).unwrap(),
        ferry_sig
    );
    assert_eq!(
        ferry_verify(
            &policy_file,
            &img.manifest,
            std::slice::from_ref(&ferry_sig)
        ),
        Ok(fpr)
    );

    // One changed byte of the signature, or of the manifest: refused by both.
    for (n, s) in [&sig, &ferry_sig].into_iter().enumerate() {
        let bad = flip(s, -30);
        let e = ferry_verify(&policy_file, &img.manifest, std::slice::from_ref(&bad)).unwrap_err();
        assert!(
            e.starts_with("Source image rejected: ") && e.contains("signature-1 (simple signing"),
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
        // ferry's copy engine refuses it the same way (the dir: image's signature-1).
        let f = lab.ferry(&[
            "--policy",
            pol,
            "copy",
            "-q",
            &format!("dir:{}", dir.display()),
            &format!("dir:{}", lab.path(&format!("f-{n}")).display()),
        ]);
        f.fails();
        assert!(f.stderr.contains("Source image rejected: "), "{}", f.stderr);
        assert!(!lab.path(&format!("f-{n}")).exists());
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

mod sigstore;
