//! The kit's optional production signature set-up (issue 16 §4): the trust policy ConfigMap
//! (templates/prod-trust-policy.yaml), the signing key Secret
//! (templates/prod-signing-secret.yaml), the agent pod template mounting both (optionally), and
//! Jenkinsfile.prod passing `--policy`/`--registries.d` and `--attest` with the key flags only
//! when their files are mounted. `e2e_signed.rs` runs the result against the lab.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::kit::jenkinsfile_sh_scripts;
use crate::templates::{SECRET_PARAMETERS, declared, doc_commands, load, object, process, read};

/// Where the pod template mounts the trust ConfigMap and the signing Secret.
pub const TRUST_DIR: &str = "/etc/ferry-trust";
pub const SIGNING_DIR: &str = "/run/secrets/ferry-signing";

/// The pod template's volumes: (kind, mountPath, name, optional).
fn pod_volumes() -> Vec<(String, String, String, String)> {
    let p = process("agent.yaml", &[]);
    let cm = p.objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    let xml = cm["data"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let volumes = doc
        .root_element()
        .children()
        .find(|c| c.has_tag_name("volumes"))
        .unwrap();
    let text = |n: roxmltree::Node<'_, '_>, name: &str| {
        n.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .unwrap_or("")
            .to_string()
    };
    volumes
        .children()
        .filter(|c| c.is_element())
        .map(|v| {
            let name = match text(v, "secretName").as_str() {
                "" => text(v, "configMapName"),
                s => s.to_string(),
            };
            (
                v.tag_name().name().rsplit('.').next().unwrap().to_string(),
                text(v, "mountPath"),
                name,
                text(v, "optional"),
            )
        })
        .collect()
}

/// Install the processed trust ConfigMap and signing Secret as the kubelet would, under `root`
/// standing for the pod's `/` (absolute paths in the files are moved under `root` too).
pub fn install(root: &Path, trust: Option<&Value>, signing: Option<&Value>) {
    let moved = |text: &str| {
        text.replace(TRUST_DIR, &under(root, TRUST_DIR))
            .replace(SIGNING_DIR, &under(root, SIGNING_DIR))
    };
    if let Some(cm) = trust {
        let dir = PathBuf::from(under(root, TRUST_DIR));
        std::fs::create_dir_all(&dir).unwrap();
        for (k, v) in cm["data"].as_object().unwrap() {
            std::fs::write(dir.join(k), moved(v.as_str().unwrap())).unwrap();
        }
    }
    if let Some(secret) = signing {
        let dir = PathBuf::from(under(root, SIGNING_DIR));
        std::fs::create_dir_all(&dir).unwrap();
        for (k, v) in secret["data"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            std::fs::write(dir.join(k), bytes).unwrap();
        }
        for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
            std::fs::write(dir.join(k), v.as_str().unwrap()).unwrap();
        }
    }
}

fn under(root: &Path, path: &str) -> String {
    format!("{}{path}", root.display())
}

/// The arguments Jenkinsfile.prod's promote step gives `ferry` in a pod whose `/` is `root`:
/// its script run by `sh` with a stand-in `ferry` that prints them, the mount paths moved
/// under `root`.
pub fn jenkinsfile_prod_args(root: &Path) -> Vec<String> {
    let scripts = jenkinsfile_sh_scripts(&read("Jenkinsfile.prod"));
    let script = scripts
        .iter()
        .find(|s| s.contains("ferry promote"))
        .expect("Jenkinsfile.prod runs ferry promote");
    let script = script
        .replace(TRUST_DIR, &under(root, TRUST_DIR))
        .replace(SIGNING_DIR, &under(root, SIGNING_DIR));
    let bin = tempfile::tempdir().unwrap();
    let ferry = bin.path().join("ferry");
    std::fs::write(
        &ferry,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&ferry, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.path().display()))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_trust_policy_config_map_requires_the_teams_sigstore_signature() {
    let p = process("prod-trust-policy.yaml", &[]);
    let cm = object(&p, "ConfigMap");
    assert_eq!(cm["metadata"]["namespace"], "shop-prod");
    let data = cm["data"].as_object().unwrap();
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["policy.json", "nonprod-team.pub", "registries.yaml"])
    );
    assert_eq!(data["nonprod-team.pub"], p.values["NON_PROD_PUBLIC_KEY"]);
    let policy: Value = serde_json::from_str(data["policy.json"].as_str().unwrap()).unwrap();
    assert_eq!(policy["default"], json!([{"type": "reject"}]));
    assert_eq!(
        policy["transports"]["docker"],
        json!({
            "default-route-openshift-image-registry.apps.nonprod.example.com/shop-dev": [
                {"type": "sigstoreSigned", "keyPath": format!("{TRUST_DIR}/nonprod-team.pub"),
                 "signedIdentity": {"type": "matchRepoDigestOrExact"}}
            ]
        })
    );
    let regd: Value = serde_yaml::from_str(data["registries.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        regd,
        json!({"docker": {"default-route-openshift-image-registry.apps.nonprod.example.com":
            {"use-sigstore-attachments": true}}})
    );
    // The same scope as the promotion ConfigMap's policy: the one allowed project.
    let pipeline = process("prod-pipeline.yaml", &[]);
    let base: Value = serde_json::from_str(
        object(&pipeline, "ConfigMap")["data"]["policy.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        base["transports"]["docker"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        policy["transports"]["docker"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_signing_secret_holds_the_key_and_its_passphrase_from_files() {
    let t = load("prod-signing-secret.yaml");
    for name in ["SIGNING_KEY_BASE64", "SIGNING_PASSPHRASE"] {
        assert!(SECRET_PARAMETERS.contains(&name));
        let p = declared(&t)
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap();
        assert_eq!(p["required"], true);
        assert!(p.get("value").is_none() && p.get("generate").is_none());
    }
    let p = process("prod-signing-secret.yaml", &[]);
    let s = object(&p, "Secret");
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"]["cosign.key"], p.values["SIGNING_KEY_BASE64"]);
    assert_eq!(
        s["stringData"]["passphrase"],
        p.values["SIGNING_PASSPHRASE"]
    );
    // The guide gives both through --param-file, never -p.
    let c = doc_commands()
        .into_iter()
        .find(|c| c.file == "prod-signing-secret.yaml")
        .expect("docs/openshift.md applies templates/prod-signing-secret.yaml");
    assert_eq!(
        c.from_param_file,
        ["SIGNING_KEY_BASE64", "SIGNING_PASSPHRASE"]
    );
    assert!(c.line.contains("base64 -w0"), "{}", c.line);
}

#[test]
fn the_pod_template_mounts_trust_and_signing_optionally_where_the_jenkinsfile_looks() {
    let volumes = pod_volumes();
    let trust = process("prod-trust-policy.yaml", &[]);
    let signing = process("prod-signing-secret.yaml", &[]);
    let trust_name = object(&trust, "ConfigMap")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let signing_name = object(&signing, "Secret")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        volumes.contains(&(
            "ConfigMapVolume".into(),
            TRUST_DIR.into(),
            trust_name,
            "true".into()
        )),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&(
            "SecretVolume".into(),
            SIGNING_DIR.into(),
            signing_name,
            "true".into()
        )),
        "{volumes:?}"
    );
    let jenkinsfile = read("Jenkinsfile.prod");
    for path in [
        format!("{TRUST_DIR}/policy.json"),
        format!("{SIGNING_DIR}/cosign.key"),
        format!("{SIGNING_DIR}/passphrase"),
    ] {
        assert!(jenkinsfile.contains(&path), "Jenkinsfile.prod lacks {path}");
    }
    // The files the Jenkinsfile names are keys of the ConfigMap and the Secret.
    assert!(
        object(&trust, "ConfigMap")["data"]
            .get("policy.json")
            .is_some()
    );
    assert!(
        object(&signing, "Secret")["data"]
            .get("cosign.key")
            .is_some()
    );
    assert!(
        object(&signing, "Secret")["stringData"]
            .get("passphrase")
            .is_some()
    );
}

#[test]
fn jenkinsfile_prod_passes_policy_and_attest_flags_only_when_mounted() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let base = ["promote", "--record", "promotion.json"];
    assert_eq!(jenkinsfile_prod_args(root), base);

    let trust = process("prod-trust-policy.yaml", &[]);
    install(root, Some(object(&trust, "ConfigMap")), None);
    let trust_dir = under(root, TRUST_DIR);
    let policy = format!("{trust_dir}/policy.json");
    let mut with_policy: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    with_policy.extend([
        "--policy".into(),
        policy,
        "--registries.d".into(),
        trust_dir,
    ]);
    assert_eq!(jenkinsfile_prod_args(root), with_policy);

    let signing = process("prod-signing-secret.yaml", &[]);
    install(root, None, Some(object(&signing, "Secret")));
    let dir = under(root, SIGNING_DIR);
    let mut all = with_policy.clone();
    all.extend([
        "--attest".into(),
        "--sign-by-sigstore-private-key".into(),
        format!("{dir}/cosign.key"),
        "--sign-passphrase-file".into(),
        format!("{dir}/passphrase"),
    ]);
    let args = jenkinsfile_prod_args(root);
    assert_eq!(args, all);
    // The passphrase stays in its file.
    assert!(
        !args.iter().any(|a| a.contains("correct horse")),
        "{args:?}"
    );

    // The signing key alone (no trust ConfigMap): --attest without --policy.
    let root2 = tempfile::tempdir().unwrap();
    install(root2.path(), None, Some(object(&signing, "Secret")));
    let args = jenkinsfile_prod_args(root2.path());
    assert!(args.contains(&"--attest".to_string()), "{args:?}");
    assert!(!args.contains(&"--policy".to_string()), "{args:?}");
}
