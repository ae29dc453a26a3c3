//! `copy` verifies signatures as the trust policy requires, before it writes anything: images
//! in the lab's registries signed by skopeo itself (1.18's `--sign-by-sigstore-private-key`,
//! the `.sig` attachment; Debian 1.9.3's GnuPG `--sign-by`, lookaside storage `file://`),
//! then copied by ferry (as `ferry` and as `skopeo`) and by skopeo 1.18 side by side with the
//! same policy and `registries.d`: the same verdict every time. Accepted: the same digest at
//! the destination. Refused (missing, tampered, wrong key, wrong identity): exit 1, one line
//! naming the requirement, the image and the signatures tried, and the destination registry
//! saw no write.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::fixtures::{Fixture, ImageSpec, IndexSpec};
use crate::support::{Output, Registry, RegistryOptions, Sandbox, Side};

/// Two registries, a sandbox, a GnuPG home and a `registries.d` (sigstore attachments on;
/// lookaside storage for the source registry in a directory).
pub struct Lab {
    pub sb: Sandbox,
    pub src: Registry,
    pub dst: Registry,
    pub regd: PathBuf,
    pub gnupg: PathBuf,
}

impl Lab {
    pub fn new() -> Lab {
        use std::os::unix::fs::PermissionsExt as _;
        let sb = Sandbox::new();
        let (src, dst) = (
            Registry::start(RegistryOptions::default()),
            Registry::start(RegistryOptions::default()),
        );
        let regd = sb.path().join("registries.d");
        let gnupg = sb.path().join("gnupg");
        std::fs::create_dir(&regd).unwrap();
        std::fs::create_dir(&gnupg).unwrap();
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(
            regd.join("lab.yaml"),
            format!(
                "default-docker:\n  use-sigstore-attachments: true\ndocker:\n  {}:\n    sigstore: file://{}\n",
                src.host(),
                sb.path().join("lookaside").display()
            ),
        )
        .unwrap();
        Lab {
            sb,
            src,
            dst,
            regd,
            gnupg,
        }
    }

    pub fn file(&self, name: &str, body: impl AsRef<[u8]>) -> PathBuf {
        let p = self.sb.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// A policy: `reqs` for the source registry's `ns` namespace, reject elsewhere.
    pub fn policy(&self, name: &str, reqs: serde_json::Value) -> PathBuf {
        let doc = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {format!("{}/ns", self.src.host()): reqs}}
        });
        self.file(name, doc.to_string())
    }

    fn gpg(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new("gpg")
            .env("GNUPGHOME", &self.gnupg)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("running gpg");
        assert!(out.status.success(), "gpg {args:?}: {out:?}");
        out
    }

    /// A GnuPG key for `uid`: its public key file and fingerprint.
    pub fn gpg_key(&self, uid: &str) -> (PathBuf, String) {
        self.gpg(&["--quick-gen-key", uid]);
        let out = self.gpg(&["--with-colons", "--list-keys", uid]);
        let fpr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("fingerprint");
        let public = self.gpg(&["--export", uid]).stdout;
        (self.file(&format!("{fpr}.gpg"), public), fpr)
    }

    /// A sigstore key pair (skopeo 1.18's `generate-sigstore-key`): the prefix.
    pub fn sigstore_key(&self, prefix: &str) -> String {
        self.file("pass", "lab passphrase\n");
        self.sb
            .skopeo_current()
            .args(["generate-sigstore-key", "--output-prefix", prefix])
            .args(["--passphrase-file", "pass"])
            .run()
            .assert_success();
        self.sb.path().join(prefix).display().to_string()
    }

    /// skopeo copies `from` (in the source registry) to `to` (there too), signing with `how`.
    pub fn sign(&self, current: bool, how: &[&str], from: &str, to: &str, all: bool) {
        let mut t = if current {
            self.sb.skopeo_current()
        } else {
            self.sb.skopeo()
        };
        t.env("GNUPGHOME", &self.gnupg)
            .args(["--registries.d", self.regd.to_str().unwrap(), "copy", "-q"])
            .args(how)
            .args(self.src.tls_args(Side::Src))
            .args(self.src.tls_args(Side::Dest));
        if all {
            t.arg("--all");
        }
        t.arg(self.src.docker_ref(from))
            .arg(self.src.docker_ref(to))
            .run()
            .assert_success();
    }

    /// Copy `image` of the source registry to `dst/out:<tag>` with `tool` and `policy`.
    pub fn copy(
        &self,
        tool: &str,
        policy: &Path,
        image: &str,
        tag: &str,
        extra: &[&str],
    ) -> Output {
        let mut t = match tool {
            "ferry" => self.sb.ferry(),
            "ferry-as-skopeo" => self.sb.ferry_as_skopeo(),
            _ => self.sb.skopeo_current_strict(),
        };
        t.args(["--registries.d", self.regd.to_str().unwrap(), "--policy"])
            .arg(policy)
            .arg("copy")
            // ferry's own lines (the signatures it verified) are progress output.
            .args(if tool == "ferry" {
                &[][..]
            } else {
                &["-q"][..]
            })
            .args(extra)
            .args(self.src.tls_args(Side::Src))
            .args(self.dst.tls_args(Side::Dest))
            .arg(self.src.docker_ref(image))
            .arg(self.dst.docker_ref(&format!("out:{tag}")))
            .run()
    }

    /// ferry (as itself and as `skopeo`) and skopeo 1.18 accept: the same digest arrives.
    #[track_caller]
    pub fn accepted(&self, policy: &Path, image: &str, digest: &str, extra: &[&str]) {
        for tool in ["ferry", "ferry-as-skopeo", "skopeo-1.18"] {
            let tag = format!("{tool}-{}", fastrand::u32(..));
            let out = self.copy(tool, policy, image, &tag, extra);
            out.assert_success();
            assert_eq!(
                self.dst.manifest_digest("out", &tag).as_deref(),
                Some(digest),
                "{tool}: {out}"
            );
            if tool == "ferry" {
                assert!(out.stderr.contains("Signature verified: "), "{out}");
            }
        }
    }

    /// All three refuse with `reason`; ferry's error is one line naming `requirement` and
    /// the signatures tried (`tried`); the destination registry saw no write from any.
    #[track_caller]
    pub fn refused(
        &self,
        policy: &Path,
        image: &str,
        reason: &str,
        requirement: &str,
        tried: &str,
    ) {
        for tool in ["ferry", "ferry-as-skopeo", "skopeo-1.18"] {
            let mark = self.dst.mark();
            let out = self.copy(tool, policy, image, "refused", &[]);
            assert_eq!(out.code, Some(1), "{tool}: {out}");
            let writes: Vec<_> = self
                .dst
                .requests_since(mark)
                .into_iter()
                .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
                .collect();
            assert!(writes.is_empty(), "{tool} wrote: {writes:?}\n{out}");
            assert_eq!(self.dst.manifest_digest("out", "refused"), None);
            // logrus quotes its msg: \" inside.
            let said = out.stderr.replace("\\\"", "\"");
            assert!(
                said.contains(&format!("Source image rejected: {reason}")),
                "{tool}: {out}"
            );
            if tool.starts_with("ferry") {
                let errors: Vec<&str> = out
                    .stderr
                    .lines()
                    .filter(|l| l.contains("rejected"))
                    .collect();
                assert_eq!(errors.len(), 1, "{tool}: {out}");
                assert!(!out.stderr.contains("Copying"), "{tool}: {out}");
                assert!(
                    out.stderr
                        .contains(&format!("requirement 1 ({requirement})"))
                        && out.stderr.contains(&self.src.docker_ref(image))
                        && out.stderr.contains(tried),
                    "{tool}: {out}"
                );
            }
        }
    }
}

pub fn seed(lab: &Lab, fx: &Fixture, name: &str) {
    fx.seed(&lab.src, name);
}

/// A `.sig` attachment made by skopeo 1.18: accepted with its key; refused with another key,
/// another identity, after tampering with the signature, and for an unsigned image.
#[test]
fn sigstore_signed_by_skopeo() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[2048]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let other = lab.sigstore_key("other");
    let private = format!("{key}.private");
    lab.sign(
        true,
        &[
            "--sign-by-sigstore-private-key",
            &private,
            "--sign-passphrase-file",
            "pass",
        ],
        "base/app:v1",
        "ns/app:v1",
        false,
    );
    seed(&lab, &fx, "ns/unsigned:v1");
    let good = lab.policy(
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    lab.accepted(&good, "ns/app:v1", &fx.digest, &[]);
    let sig_tag = format!("sha256-{}.sig", fx.digest.trim_start_matches("sha256:"));
    // Another key.
    let wrong_key = lab.policy(
        "wrong-key.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{other}.pub")}]),
    );
    lab.refused(
        &wrong_key,
        "ns/app:v1",
        "cryptographic signature verification failed",
        "sigstoreSigned",
        &format!("1 signature tried: {sig_tag} layer 1 (sigstore)"),
    );
    // Another identity.
    let wrong_identity = lab.policy(
        "wrong-identity.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub"),
                "signedIdentity": {"type": "exactReference",
                                   "dockerReference": lab.src.image("ns/app:v2")}}]),
    );
    lab.refused(
        &wrong_identity,
        "ns/app:v1",
        &format!(
            "Signature for identity \"{}\" is not accepted",
            lab.src.image("ns/app:v1")
        ),
        "sigstoreSigned",
        "1 signature tried",
    );
    // No signature.
    lab.refused(
        &good,
        "ns/unsigned:v1",
        "A signature was required, but no signature exists",
        "sigstoreSigned",
        "no signatures found",
    );
    // One character of the signature changed in the attachment.
    let m = lab.src.get_manifest("ns/app", &sig_tag).expect(".sig");
    let mut doc: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    let b64 = doc["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if b64.as_bytes()[20] == b'A' { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &b64[..20], &b64[21..]);
    doc["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = json!(tampered);
    let bytes = serde_json::to_vec(&doc).unwrap();
    assert_eq!(
        lab.src
            .put_manifest("ns/app", &sig_tag, m.media_type.as_str(), &bytes),
        201
    );
    lab.refused(
        &good,
        "ns/app:v1",
        "cryptographic signature verification failed",
        "sigstoreSigned",
        "1 signature tried",
    );
}

/// GnuPG simple signing by Debian's skopeo 1.9.3 into lookaside storage (`file://`): accepted
/// with the signer's key; refused with another key, through another tag of the same digest
/// (the signature names the first), after one byte of the signature changed, and unsigned.
#[test]
fn gpg_signed_by_skopeo_in_lookaside() {
    let lab = Lab::new();
    let fx = ImageSpec::docker().layers(&[1024]).build();
    seed(&lab, &fx, "base/app:v1");
    let (alice, alice_fpr) = lab.gpg_key("Alice <alice@example.com>");
    let (bob, _) = lab.gpg_key("Bob <bob@example.com>");
    lab.sign(
        false,
        &["--sign-by", &alice_fpr],
        "base/app:v1",
        "ns/app:v1",
        false,
    );
    // The same manifest under another tag, unsigned: lookaside finds the signature by digest.
    lab.sign(false, &[], "base/app:v1", "ns/app:other", false);
    let unsigned = ImageSpec::docker().layers(&[512]).build();
    seed(&lab, &unsigned, "ns/unsigned:v1");
    let signed_by =
        |key: &Path| json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key}]);
    let good = lab.policy("good.json", signed_by(&alice));
    lab.accepted(&good, "ns/app:v1", &fx.digest, &[]);
    // keyData and keyPaths work as well.
    let key_data = lab.policy(
        "key-data.json",
        json!([{"type": "signedBy", "keyType": "GPGKeys",
                "keyData": base64_std(&std::fs::read(&alice).unwrap())}]),
    );
    lab.accepted(&key_data, "ns/app:v1", &fx.digest, &[]);
    let wrong_key = lab.policy("wrong-key.json", signed_by(&bob));
    let tried = format!("1 signature tried: signature 1 (simple signing, key {alice_fpr})");
    lab.refused(
        &wrong_key,
        "ns/app:v1",
        "Invalid GPG signature",
        "signedBy",
        &tried,
    );
    lab.refused(
        &good,
        "ns/app:other",
        &format!(
            "Signature for identity \"{}\" is not accepted",
            lab.src.image("ns/app:v1")
        ),
        "signedBy",
        &tried,
    );
    lab.refused(
        &good,
        "ns/unsigned:v1",
        "A signature was required, but no signature exists",
        "signedBy",
        "no signatures found",
    );
    // One byte of the stored signature changed.
    let sig = lab.sb.path().join(format!(
        "lookaside/ns/app@sha256={}/signature-1",
        fx.digest.trim_start_matches("sha256:")
    ));
    let mut bytes = std::fs::read(&sig).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&sig, bytes).unwrap();
    lab.refused(
        &good,
        "ns/app:v1",
        "",
        "signedBy",
        "1 signature tried: signature 1 (simple signing",
    );
    // An image already at the destination is checked all the same (as skopeo, which checks
    // before it looks at the destination): refused, the tag left as it was.
    lab.sb
        .ferry()
        .args(["--insecure-policy", "copy", "-q"])
        .args(lab.src.tls_args(Side::Src))
        .args(lab.dst.tls_args(Side::Dest))
        .arg(lab.src.docker_ref("ns/unsigned:v1"))
        .arg(lab.dst.docker_ref("out:there"))
        .run()
        .assert_success();
    for tool in ["ferry", "ferry-as-skopeo", "skopeo-1.18"] {
        let out = lab.copy(tool, &good, "ns/unsigned:v1", "there", &[]);
        assert_eq!(out.code, Some(1), "{tool}: {out}");
        assert!(out.stderr.contains("no signature exists"), "{tool}: {out}");
    }
}

/// An index copied whole: skopeo 1.18 signs the index and each image (`--all`); each is
/// checked. Without one image's signature, everyone refuses it; `--multi-arch system` checks
/// only the image it copies.
#[test]
fn index_children_are_checked() {
    let lab = Lab::new();
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64"])
        .build();
    seed(&lab, &fx, "base/multi:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    lab.sign(
        true,
        &[
            "--sign-by-sigstore-private-key",
            &private,
            "--sign-passphrase-file",
            "pass",
        ],
        "base/multi:v1",
        "ns/multi:v1",
        true,
    );
    let good = lab.policy(
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    lab.accepted(&good, "ns/multi:v1", &fx.digest, &["--multi-arch", "all"]);
    let children = fx.child_digests();
    let arm = fx.platform_image("linux/arm64").digest.clone();
    assert!(children.contains(&arm));
    let arm_sig = format!("sha256-{}.sig", arm.trim_start_matches("sha256:"));
    let sig_digest = lab
        .src
        .manifest_digest("ns/multi", &arm_sig)
        .expect("child .sig");
    assert_eq!(lab.src.delete_manifest("ns/multi", &sig_digest), 202);
    for tool in ["ferry", "ferry-as-skopeo", "skopeo-1.18"] {
        let mark = lab.dst.mark();
        let out = lab.copy(
            tool,
            &good,
            "ns/multi:v1",
            "partial",
            &["--multi-arch", "all"],
        );
        assert_eq!(out.code, Some(1), "{tool}: {out}");
        assert!(
            out.stderr.contains(
                "Source image rejected: A signature was required, but no signature exists"
            ),
            "{tool}: {out}"
        );
        if tool == "ferry" {
            assert!(out.stderr.contains(&format!("(manifest {arm})")), "{out}");
        }
        // skopeo copies the images of an index one after the other, each checked just before
        // it is copied: what came before the unsigned one is written. ferry checks them all
        // first. Neither moves the tag.
        let wrote = lab
            .dst
            .requests_since(mark)
            .iter()
            .any(|r| !matches!(r.method.as_str(), "GET" | "HEAD"));
        assert_eq!(wrote, tool == "skopeo-1.18", "{tool}: {out}");
        assert_eq!(lab.dst.manifest_digest("out", "partial"), None);
    }
    // The amd64 image alone is still signed.
    let amd = fx.platform_image("linux/amd64").digest.clone();
    for tool in ["ferry", "skopeo-1.18"] {
        let out = lab.copy(
            tool,
            &good,
            "ns/multi:v1",
            "amd64",
            &[
                "--multi-arch",
                "system",
                "--override-arch",
                "amd64",
                "--override-os",
                "linux",
            ],
        );
        out.assert_success();
        assert_eq!(
            lab.dst.manifest_digest("out", "amd64").as_deref(),
            Some(amd.as_str())
        );
    }
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
