//! Files are written safely (issue 11, item 4): `--record`, `--digestfile`, `--report` and the
//! auth file go through one helper (a temporary file created exclusively in the target's
//! directory, flushed, renamed over the target). Links planted at the target and at every
//! predictable temporary name are never written through.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::credentials::{PASSWORD, USER, creds};
use crate::support::fixtures::*;
use crate::support::*;

/// Links planted around one file ferry will write: at the file itself, and at every temporary
/// name a writer could predict (`.NAME.tmp`, `NAME.tmp`, `.NAME.<pid>.tmp` for the next few
/// thousand process ids), each pointing at a victim file outside.
struct Planted {
    target: std::path::PathBuf,
    victim: std::path::PathBuf,
    content: String,
    links: Vec<std::path::PathBuf>,
}

const VICTIM: &str = "victim: must never change";

fn plant(dir: &Path, name: &str, victims: &Path) -> Planted {
    plant_with(dir, name, victims, VICTIM)
}

/// [`plant`] with the victim's content (an auth file is read before it is written).
fn plant_with(dir: &Path, name: &str, victims: &Path, content: &str) -> Planted {
    let victim = victims.join(format!("{name}.victim"));
    std::fs::write(&victim, content).unwrap();
    let target = dir.join(name);
    std::os::unix::fs::symlink(&victim, &target).unwrap();
    let last_pid: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1000);
    let mut names = vec![
        format!(".{name}.tmp"),
        format!("{name}.tmp"),
        format!("{name}~"),
    ];
    names.extend((last_pid + 1..last_pid + 3000).map(|pid| format!(".{name}.{pid}.tmp")));
    let links = names
        .into_iter()
        .map(|n| {
            let l = dir.join(n);
            std::os::unix::fs::symlink(&victim, &l).unwrap();
            l
        })
        .collect();
    Planted {
        target,
        victim,
        content: content.to_string(),
        links,
    }
}

impl Planted {
    /// The victim is untouched, every planted temporary link is still there, and the target is
    /// now a regular file (the link at it replaced, not followed) holding what `check` wants.
    #[track_caller]
    fn assert_safe(&self, check: impl Fn(&str)) {
        assert_eq!(
            std::fs::read_to_string(&self.victim).unwrap(),
            self.content,
            "{} was written through a link",
            self.victim.display()
        );
        for l in &self.links {
            assert!(
                std::fs::symlink_metadata(l).unwrap().is_symlink(),
                "{}",
                l.display()
            );
        }
        let meta = std::fs::symlink_metadata(&self.target).unwrap();
        assert!(
            meta.is_file(),
            "{} is not a regular file",
            self.target.display()
        );
        check(&std::fs::read_to_string(&self.target).unwrap());
    }
}

/// Only the target and the planted links are in `dir`: no temporary file was left behind.
#[track_caller]
fn assert_nothing_left(dir: &Path, planted: &[&Planted]) {
    let expected: usize = planted.iter().map(|p| 1 + p.links.len()).sum();
    let found = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(found, expected, "files left behind in {}", dir.display());
}

/// `--digestfile` and `--report` (copy), `--digestfile` (sync), `--record` (promote) and the
/// auth file (login, logout): a link planted at the file or at a temporary name is never
/// written through; the file is replaced whole; the auth file is 0600.
#[test]
fn files_are_written_without_following_planted_links() {
    use std::os::unix::fs::PermissionsExt as _;
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[800]).build();
    fx.seed(&src, "dev/app:c1");
    let sb = Sandbox::new();
    let out_dir = sb.path().join("out");
    let victims = sb.path().join("victims");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::create_dir_all(&victims).unwrap();

    // copy --digestfile --report
    let digest = plant(&out_dir, "digest", &victims);
    let report = plant(&out_dir, "report.json", &victims);
    sb.ferry()
        .args(["--insecure-policy", "copy"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg("--digestfile")
        .arg(&digest.target)
        .arg("--report")
        .arg(&report.target)
        .arg(src.docker_ref("dev/app:c1"))
        .arg(dst.docker_ref("prod/app:c1"))
        .run()
        .assert_success();
    digest.assert_safe(|t| assert_eq!(t, fx.digest));
    report.assert_safe(|t| {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["digest"], fx.digest.as_str());
    });

    // sync --digestfile
    let synced = plant(&out_dir, "sync-digests", &victims);
    sb.ferry()
        .args([
            "--insecure-policy",
            "sync",
            "--src",
            "docker",
            "--dest",
            "docker",
        ])
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg("--digestfile")
        .arg(&synced.target)
        .arg(format!("{}/dev/app", src.host()))
        .arg(format!("{}/mirror", dst.host()))
        .run()
        .assert_success();
    synced.assert_safe(|t| {
        assert_eq!(
            t,
            format!("{} docker://{}/mirror/app:c1\n", fx.digest, dst.host())
        );
    });

    // promote --record
    let record = plant(&out_dir, "promotion.json", &victims);
    let config = crate::promote::write_config(
        sb.path(),
        &crate::promote::promotion_yaml(&[&src.host()], &[&dst.host()], &["dev"], &["prod"]),
    );
    let (tok, tok2) = (sb.path().join("t1"), sb.path().join("t2"));
    std::fs::write(&tok, "unused-token-1").unwrap();
    std::fs::write(&tok2, "unused-token-2").unwrap();
    sb.ferry()
        .args([
            "--insecure-policy",
            "promote",
            "--image-name=app",
            "--tag=c1",
        ])
        .args([
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--config",
        ])
        .arg(&config)
        .arg("--src-token-file")
        .arg(&tok)
        .arg("--dest-token-file")
        .arg(&tok2)
        .arg("--record")
        .arg(&record.target)
        .run()
        .assert_success();
    record.assert_safe(|t| {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["destination_digest"], fx.digest.as_str());
    });
    assert_nothing_left(&out_dir, &[&digest, &report, &synced, &record]);

    // login / logout: the auth file holds a secret.
    let auth_reg = Registry::start(RegistryOptions {
        auth: Auth::Basic(vec![(USER.into(), PASSWORD.into())]),
        ..Default::default()
    });
    let auth_dir = sb.path().join("auth");
    std::fs::create_dir_all(&auth_dir).unwrap();
    let other = r#"{"auths":{"other.example.com":{"auth":"b3RoZXI6b3RoZXI="}}}"#;
    let auth = plant_with(&auth_dir, "auth.json", &victims, other);
    sb.ferry()
        .args([
            "login",
            "--tls-verify=false",
            "--username",
            USER,
            "--password-stdin",
        ])
        .arg("--authfile")
        .arg(&auth.target)
        .arg(auth_reg.host())
        .stdin(PASSWORD)
        .run()
        .assert_success();
    auth.assert_safe(|t| {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(
            v["auths"][auth_reg.host()]["auth"],
            B64.encode(creds()).as_str()
        );
        // What the file held (read through the link) is kept, as skopeo keeps it.
        assert_eq!(v["auths"]["other.example.com"]["auth"], "b3RoZXI6b3RoZXI=");
    });
    let mode = std::fs::metadata(&auth.target)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    sb.ferry()
        .args(["logout", "--authfile"])
        .arg(&auth.target)
        .arg(auth_reg.host())
        .run()
        .assert_success();
    auth.assert_safe(|t| assert!(!t.contains(&auth_reg.host()), "{t}"));
    assert_nothing_left(&auth_dir, &[&auth]);
}
