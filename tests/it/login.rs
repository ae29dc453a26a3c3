//! `login`/`logout`: the auth file ferry writes is the one skopeo reads.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};

use crate::support::fixtures::*;
use crate::support::*;

fn auth_file(sb: &Sandbox) -> std::path::PathBuf {
    sb.runtime_dir().join("containers/auth.json")
}

#[test]
fn login_writes_an_auth_file_that_skopeo_uses() {
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        auth: Auth::Basic(vec![("alice".into(), "s3cr:et&<x>".into())]),
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[64]).build();
    fx.seed(&reg, "ns/app:v1");
    let sb = Sandbox::new();
    let path = auth_file(&sb);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        r#"{"auths":{"other.example":{"auth":"eDp5","email":"x@example"}},"credHelpers":{"gcr.io":"gcloud"},"somethingElse":{"k":1}}"#,
    )
    .unwrap();
    let cert = format!("--cert-dir={}", reg.cert_dir().unwrap().display());

    // Without credentials skopeo is refused.
    sb.skopeo()
        .args(["inspect", &cert])
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_failure();

    // A wrong password is refused by the registry, and nothing is written.
    let before = std::fs::read(&path).unwrap();
    let f = sb
        .ferry()
        .args(["login", &cert, "-u", "alice", "-p", "WRONG-secret-99"])
        .arg(reg.host())
        .run();
    f.assert_failure();
    assert!(!f.stderr.contains("WRONG-secret-99"), "{f}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // The right one, from stdin.
    let f = sb
        .ferry()
        .args(["login", &cert, "-u", "alice", "--password-stdin"])
        .arg(reg.host())
        .stdin("s3cr:et&<x>\n")
        .run();
    assert_eq!(f.assert_success().stdout, "Login Succeeded!\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        v["auths"]["other.example"],
        json!({"auth": "eDp5", "email": "x@example"})
    );
    assert_eq!(v["credHelpers"], json!({"gcr.io": "gcloud"}));
    assert_eq!(v["somethingElse"], json!({"k": 1}));
    use base64::Engine as _;
    let auth = v["auths"][reg.host()]["auth"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap(),
        b"alice:s3cr:et&<x>"
    );

    // skopeo, in the same sandbox, uses it; ferry too; --get-login shows the user.
    sb.skopeo()
        .args(["inspect", &cert])
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
    sb.ferry()
        .args(["inspect", &cert])
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_success();
    let g = sb
        .ferry()
        .args(["login", "--get-login"])
        .arg(reg.host())
        .run();
    assert_eq!(g.assert_success().stdout, "alice\n");
    let g = sb
        .skopeo()
        .args(["login", "--get-login"])
        .arg(reg.host())
        .run();
    assert_eq!(g.assert_success().stdout, "alice\n");

    // logout removes only that entry; skopeo is refused again.
    let o = sb.ferry().arg("logout").arg(reg.host()).run();
    assert_eq!(
        o.assert_success().stdout,
        format!("Removed login credentials for {}\n", reg.host())
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["auths"].get(reg.host()).is_none());
    assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
    sb.skopeo()
        .args(["inspect", &cert])
        .arg(reg.docker_ref("ns/app:v1"))
        .run()
        .assert_failure();
    sb.ferry()
        .arg("logout")
        .arg(reg.host())
        .run()
        .assert_failure_with(&["not logged into"]);
}

#[test]
fn login_file_is_the_same_as_skopeos_and_logout_all_empties_it() {
    let reg = Registry::start(RegistryOptions {
        auth: Auth::Basic(vec![("bob".into(), "pw".into())]),
        ..Default::default()
    });
    let s_sb = Sandbox::new();
    let f_sb = Sandbox::new();
    for sb in [&s_sb, &f_sb] {
        let p = auth_file(sb);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"auths":{"z.example":{"auth":"eDp5"}}}"#).unwrap();
    }
    let args = ["login", "--tls-verify=false", "-u", "bob", "-p", "pw"];
    s_sb.skopeo()
        .args(args)
        .arg(format!("{}/ns/app", reg.host()))
        .run()
        .assert_success();
    f_sb.ferry()
        .args(args)
        .arg(format!("{}/ns/app", reg.host()))
        .run()
        .assert_success();
    assert_eq!(
        std::fs::read_to_string(auth_file(&f_sb)).unwrap(),
        std::fs::read_to_string(auth_file(&s_sb)).unwrap(),
        "ferry writes the file as skopeo does"
    );
    // --authfile elsewhere: created with its directory.
    let other = f_sb.path().join("deep/dir/auth.json");
    f_sb.ferry()
        .args(args)
        .arg(format!("--authfile={}", other.display()))
        .arg(reg.host())
        .run()
        .assert_success();
    assert!(other.exists());
    let o = f_sb.ferry().args(["logout", "--all"]).run();
    assert_eq!(
        o.assert_success().stdout,
        "Removed login credentials for all registries\n"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(auth_file(&f_sb)).unwrap()).unwrap();
    assert_eq!(v["auths"], json!({}));
}
