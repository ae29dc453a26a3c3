//! 030-local-registry-tls.bats, 040-local-registry-auth.bats.

use super::*;
use crate::support::pki;

// ---------------------------------------------------------------------------------------------
// 030-local-registry-tls.bats

/// The bats' registry `--with-cert`: a self-signed certificate made by `openssl req -x509`
/// (`CA:TRUE`, `DNS:localhost`), and a cert dir holding that certificate alone.
fn registry_with_cert(sb: &Sandbox) -> Registry {
    let auth = sb.path().join("auth");
    std::fs::create_dir_all(&auth).unwrap();
    Registry::start(RegistryOptions {
        tls: Tls::Ca,
        server_cert: Some(pki::openssl_self_signed(&auth)),
        ..Default::default()
    })
}

/// 030-local-registry-tls.bats, "local registry, with cert": push with `--dest-cert-dir`, pull
/// back with `--src-cert-dir` (into another registry here; `dir:` upstream), inspect and delete
/// with `--cert-dir` — the cert dir holding the registry's own self-signed certificate.
#[test]
fn local_registry_with_cert() {
    let (remote, fx) = remote_with("libpod/busybox:latest");
    let lab = Sandbox::new();
    let reg = registry_with_cert(&lab);
    let client_auth = reg.cert_dir().unwrap().display().to_string();
    let host = reg.host_as("localhost");
    let image = format!("docker://{host}/busybox:unsigned");
    for who in ALL {
        let sb = Sandbox::new();
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("--dest-cert-dir={client_auth}"),
                &remote.docker_ref("libpod/busybox:latest"),
                &image,
            ],
        );
        let extracted = local();
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                &format!("--src-cert-dir={client_auth}"),
                "--dest-tls-verify=false",
                &image,
                &extracted.docker_ref("extracted:latest"),
            ],
        );
        assert_eq!(
            extracted.manifest_digest("extracted", "latest").as_deref(),
            Some(fx.digest.as_str()),
            "{who:?}"
        );
        let out = run(
            who,
            &sb,
            0,
            &["inspect", &format!("--cert-dir={client_auth}"), &image],
        );
        expect_substring(who, &out, &format!("{host}/busybox"));
        run(
            who,
            &sb,
            0,
            &["delete", &format!("--cert-dir={client_auth}"), &image],
        );
        assert_eq!(reg.manifest_digest("busybox", "unsigned"), None, "{who:?}");
    }
}

/// 030-local-registry-tls.bats, "local registry, with cert", as upstream: pulled into `dir:`.
#[test]
fn local_registry_with_cert_into_dir() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let lab = Sandbox::new();
    let reg = registry_with_cert(&lab);
    let client_auth = reg.cert_dir().unwrap().display().to_string();
    let image = format!("docker://{}/busybox:unsigned", reg.host_as("localhost"));
    for who in ALL {
        let sb = Sandbox::new();
        let dest = format!("--dest-cert-dir={client_auth}");
        let src = format!("--src-cert-dir={client_auth}");
        let remote_image = remote.docker_ref("libpod/busybox:latest");
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                &dest,
                &remote_image,
                &image,
            ],
        );
        let extracted = sb.path().join("extracted");
        let dir = format!("dir:{}", extracted.display());
        run(who, &sb, 0, &["copy", &src, &image, &dir]);
        assert!(extracted.join("manifest.json").exists(), "{who:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 040-local-registry-auth.bats

/// The bats' `start_registry --testuser=testuser --testpassword=<random 15>`.
fn auth_registry() -> (Registry, String) {
    let password: String = (0..15).map(|_| fastrand::alphanumeric()).collect();
    let reg = Registry::start(RegistryOptions {
        auth: Auth::Basic(vec![("testuser".into(), password.clone())]),
        ..Default::default()
    });
    (reg, password)
}

/// 040-local-registry-auth.bats, "auth: credentials on command line". A missing image with
/// good credentials exits 2 (1.18 and ferry; 1.9.3: 1).
#[test]
fn auth_credentials_on_command_line() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let (reg, password) = auth_registry();
    let creds = format!("--creds=testuser:{password}");
    let nonesuch = reg.docker_ref("nonesuch");
    let mine = reg.docker_ref("busybox:mine");
    for who in ALL {
        let sb = Sandbox::new();
        let tls = "--tls-verify=false";
        // No creds, wrong user, wrong password.
        for args in [
            vec!["inspect", tls, &nonesuch],
            vec!["inspect", tls, "--creds=baduser:badpassword", &nonesuch],
            vec!["inspect", tls, "--creds=testuser:badpassword", &nonesuch],
        ] {
            let out = run(who, &sb, 1, &args);
            expect_substring(who, &out, "authentication required");
        }
        // Correct creds, but no such image.
        let rc = if who == Skopeo193 { 1 } else { 2 };
        let out = run(who, &sb, rc, &["inspect", tls, &creds, &nonesuch]);
        expect_substring(who, &out, "manifest unknown");
        // These should pass (--dcreds: the deprecated spelling of --dest-creds).
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("--dcreds=testuser:{password}"),
                &remote.docker_ref("libpod/busybox:latest"),
                &mine,
            ],
        );
        let out = run(who, &sb, 0, &["inspect", tls, &creds, &mine]);
        expect_substring(who, &out, &reg.image("busybox"));
    }
}

/// 040-local-registry-auth.bats, "auth: credentials via podman login" (`skopeo login` here):
/// logged in, copy and inspect work; logged out, inspect is refused.
#[test]
fn auth_credentials_via_login() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let (reg, password) = auth_registry();
    let mine = reg.docker_ref("busybox:mine");
    for who in ALL {
        let sb = Sandbox::new();
        let login = [
            "login",
            "--tls-verify=false",
            "-u",
            "testuser",
            "-p",
            &password,
            &reg.host(),
        ];
        run(who, &sb, 0, &login);
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &remote.docker_ref("libpod/busybox:latest"),
                &mine,
            ],
        );
        let out = run(who, &sb, 0, &["inspect", "--tls-verify=false", &mine]);
        expect_substring(who, &out, &reg.image("busybox"));
        run(who, &sb, 0, &["logout", &reg.host()]);
        let out = run(who, &sb, 1, &["inspect", "--tls-verify=false", &mine]);
        expect_substring(who, &out, "authentication required");
    }
}

/// 040-local-registry-auth.bats, "auth: copy with --src-creds and --dest-creds": push with
/// --dest-creds, pull with --src-creds (into another registry here; `dir:` upstream).
#[test]
fn auth_copy_with_src_creds_and_dest_creds() {
    let (remote, fx) = remote_with("libpod/busybox:latest");
    let (reg, password) = auth_registry();
    let mine = reg.docker_ref("busybox:mine");
    for who in ALL {
        let sb = Sandbox::new();
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("--dest-creds=testuser:{password}"),
                &remote.docker_ref("libpod/busybox:latest"),
                &mine,
            ],
        );
        let dir1 = local();
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("--src-creds=testuser:{password}"),
                "--dest-tls-verify=false",
                &mine,
                &dir1.docker_ref("dir1:latest"),
            ],
        );
        assert_eq!(
            dir1.manifest_digest("dir1", "latest").as_deref(),
            Some(fx.digest.as_str()),
            "{who:?}"
        );
    }
}

/// 040-local-registry-auth.bats, "auth: copy with --src-creds and --dest-creds", as upstream:
/// pulled into `dir:`.
#[test]
fn auth_copy_with_src_creds_into_dir() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let (reg, password) = auth_registry();
    let mine = reg.docker_ref("busybox:mine");
    for who in ALL {
        let sb = Sandbox::new();
        let dest = format!("--dest-creds=testuser:{password}");
        let src = format!("--src-creds=testuser:{password}");
        let remote_image = remote.docker_ref("libpod/busybox:latest");
        let d = ["--src-tls-verify=false", "--dest-tls-verify=false"];
        run(
            who,
            &sb,
            0,
            &["copy", d[0], d[1], &dest, &remote_image, &mine],
        );
        let dir1 = sb.path().join("dir1");
        let dir = format!("dir:{}", dir1.display());
        run(who, &sb, 0, &["copy", d[0], &src, &mine, &dir]);
        assert!(dir1.join("manifest.json").exists(), "{who:?}");
    }
}

/// 040-local-registry-auth.bats, "auth: credentials via authfile" (`skopeo login --authfile`
/// instead of podman's): without the file copy, inspect and delete are refused; with it they
/// work.
#[test]
fn auth_credentials_via_authfile() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let (reg, password) = auth_registry();
    let mine = reg.docker_ref("busybox:mine");
    let remote_image = remote.docker_ref("libpod/busybox:latest");
    for who in ALL {
        let sb = Sandbox::new();
        let authfile = sb.path().join("test.auth").display().to_string();
        run(
            who,
            &sb,
            0,
            &[
                "login",
                "--tls-verify=false",
                "--authfile",
                &authfile,
                "-u",
                "testuser",
                "-p",
                &password,
                &reg.host(),
            ],
        );
        let copy = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
        run(who, &sb, 1, &[&copy[..], &[&remote_image, &mine]].concat());
        run(
            who,
            &sb,
            0,
            &[&copy[..], &["--authfile", &authfile, &remote_image, &mine]].concat(),
        );
        let out = run(who, &sb, 1, &["inspect", "--tls-verify=false", &mine]);
        expect_substring(who, &out, "authentication required");
        let out = run(
            who,
            &sb,
            0,
            &[
                "inspect",
                "--tls-verify=false",
                "--authfile",
                &authfile,
                &mine,
            ],
        );
        expect_substring(who, &out, &reg.image("busybox"));
        let out = run(who, &sb, 1, &["delete", "--tls-verify=false", &mine]);
        expect_substring(who, &out, "authentication required");
        run(
            who,
            &sb,
            0,
            &[
                "delete",
                "--tls-verify=false",
                "--authfile",
                &authfile,
                &mine,
            ],
        );
        assert_eq!(reg.manifest_digest("busybox", "mine"), None, "{who:?}");
    }
}
