//! 050-signing.bats.

use serde_json::json;

use super::*;

/// 050-signing.bats, "signing": the rows that need no signature — `/myns/carol:latest` under
/// the policy's `reject` default ("Source image rejected: Running image … is rejected by
/// policy.") and `/open/forall:latest` under `insecureAcceptAnything` — pushed unsigned and
/// fetched with `--policy` (into a registry here; `dir:` upstream). The signed rows wait for
/// signing and verification (issue 16).
#[test]
fn signing_policy_reject_and_accept_rows() {
    let (remote, fx) = remote_with("libpod/busybox:latest");
    let reg = local();
    let host = reg.host();
    let lab = Sandbox::new();
    let key = lab.path().join("pubkey-alice.gpg");
    std::fs::write(&key, b"").unwrap();
    let registries_d = lab.path().join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("registries.yaml"),
        format!(
            "docker:\n   {host}:\n        sigstore: file://{}\n",
            lab.path().join("sigstore").display()
        ),
    )
    .unwrap();
    let policy = lab.path().join("policy.json");
    let signed_by = json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key}]);
    std::fs::write(
        &policy,
        json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {
                format!("{host}/myns/alice"): signed_by,
                format!("{host}/open"): [{"type": "insecureAcceptAnything"}],
            }}
        })
        .to_string(),
    )
    .unwrap();
    let (registries_d, policy) = (
        registries_d.display().to_string(),
        policy.display().to_string(),
    );
    for path in ["/myns/carol:latest", "/open/forall:latest"] {
        run(
            Skopeo193,
            &lab,
            0,
            &[
                "--registries.d",
                &registries_d,
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &remote.docker_ref("libpod/busybox:latest"),
                &format!("docker://{host}{path}"),
            ],
        );
    }
    for who in ALL {
        for (path, expected_error) in [
            (
                "/myns/carol:latest",
                Some(format!(
                    "Running image docker://{host}/myns/carol:latest is rejected by policy."
                )),
            ),
            ("/open/forall:latest", None),
        ] {
            let d = local();
            let out = who
                .skopeo_strict(&Sandbox::new())
                .args(["--registries.d", &registries_d, "--policy", &policy])
                .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
                .arg(format!("docker://{host}{path}"))
                .arg(d.docker_ref("d:latest"))
                .run();
            match expected_error {
                Some(e) => {
                    assert_eq!(out.code, Some(1), "{who:?}: {out}");
                    expect_substring(who, &out, &format!("Source image rejected: {e}"));
                    assert_eq!(d.manifest_digest("d", "latest"), None, "{who:?}");
                }
                None => {
                    assert_eq!(out.code, Some(0), "{who:?}: {out}");
                    assert_eq!(
                        d.manifest_digest("d", "latest").as_deref(),
                        Some(fx.digest.as_str())
                    );
                }
            }
        }
    }
}

/// A temporary `GNUPGHOME` with the bats' key for `alice@test.redhat.com` (RSA, with a
/// passphrase); its gpg-agent is stopped when it goes away.
struct GnuPg {
    home: std::path::PathBuf,
}

impl GnuPg {
    fn new(sb: &Sandbox, passphrase: &str) -> GnuPg {
        use std::os::unix::fs::PermissionsExt as _;
        let home = sb.path().join("skopeo-gpg");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let g = GnuPg { home };
        let out = g
            .gpg(&[
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--gen-key",
                "--passphrase",
                passphrase,
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(
                    b"Key-Type: RSA\nName-Real: Test key - alice\nName-email: alice@test.redhat.com\n%commit\n",
                )?;
                child.wait_with_output()
            })
            .expect("running gpg (apt-get install -y gnupg)");
        assert!(out.status.success(), "gpg --gen-key: {out:?}");
        g
    }

    fn gpg(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("gpg");
        c.env("GNUPGHOME", &self.home).args(args);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    /// bats' `kill_gpg_agent`: drop unlocked keys, so that the passphrase is really used.
    fn kill_agent(&self) {
        let _ = std::process::Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .output();
    }

    fn fingerprint(&self) -> String {
        let out = self
            .gpg(&["--with-colons", "--list-keys", "alice@test.redhat.com"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("alice's fingerprint")
    }
}

impl Drop for GnuPg {
    fn drop(&mut self) {
        self.kill_agent();
    }
}

/// 050-signing.bats, "signing: standalone": sign a manifest with `standalone-sign`, verify it
/// with `standalone-verify`, and the digest it reports is `manifest-digest`'s. The manifest
/// comes from the registry with `inspect --raw` (upstream copies the image into `dir:` and
/// uses its `manifest.json`: the same bytes).
#[test]
fn signing_standalone() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let reg = local();
    let image = reg.image("busybox:latest");
    for who in ALL {
        let sb = Sandbox::new();
        let passphrase: String = (0..20).map(|_| fastrand::alphanumeric()).collect();
        let passphrase_file = sb.path().join("passphrase-file");
        std::fs::write(&passphrase_file, format!("{passphrase}\n")).unwrap();
        let gpg = GnuPg::new(&sb, &passphrase);
        let skopeo = |args: &[&str], rc: i32| {
            let out = who.skopeo(&sb).env("GNUPGHOME", &gpg.home).args(args).run();
            assert_eq!(out.code, Some(rc), "{who:?}: {out}");
            out
        };
        skopeo(
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &remote.docker_ref("libpod/busybox:latest"),
                &format!("docker://{image}"),
            ],
            0,
        );
        let raw = skopeo(
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{image}"),
            ],
            0,
        );
        let manifest = sb.path().join("manifest.json");
        std::fs::write(&manifest, &raw.stdout_bytes).unwrap();
        let (manifest, signature, passphrase_file) = (
            manifest.display().to_string(),
            sb.path().join("busybox.signature").display().to_string(),
            passphrase_file.display().to_string(),
        );
        // Standalone sign
        gpg.kill_agent();
        skopeo(
            &[
                "standalone-sign",
                "-o",
                &signature,
                "--passphrase-file",
                &passphrase_file,
                &manifest,
                &image,
                "alice@test.redhat.com",
            ],
            0,
        );
        // Standalone verify
        let fingerprint = gpg.fingerprint();
        let out = skopeo(
            &[
                "standalone-verify",
                &manifest,
                &image,
                &fingerprint,
                &signature,
            ],
            0,
        );
        let digest = out
            .stdout
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        // manifest digest
        let out = skopeo(&["manifest-digest", &manifest], 0);
        assert_eq!(out.stdout.trim(), digest, "{who:?}");
        assert_eq!(digest, sha256_digest(&raw.stdout_bytes), "{who:?}");
    }
}
