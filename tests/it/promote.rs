//! `ferry promote`: a promotion with flags and tokens, and with the pod's layout over HTTPS;
//! the helpers (promotion config, the pod's Secret files) that `promote_refusals` shares.

use std::path::{Path, PathBuf};

use crate::support::fixtures::ImageSpec;
use crate::support::{
    Auth, Grant, Registry, RegistryOptions, RequestKind, Sandbox, Tls, TokenServer,
    TokenServerOptions, pki,
};

/// The text of a promotion config (`promotion.yaml`) allowing these values.
pub fn promotion_yaml(
    source_registries: &[&str],
    destination_registries: &[&str],
    source_projects: &[&str],
    destination_projects: &[&str],
) -> String {
    let list = |v: &[&str]| format!("[{}]", v.join(", "));
    format!(
        "# what a promotion may touch\nsourceRegistries: {}\ndestinationRegistries: {}\nsourceProjects: {}\ndestinationProjects: {}\n",
        list(source_registries),
        list(destination_registries),
        list(source_projects),
        list(destination_projects)
    )
}

/// Write `yaml` as `<dir>/promotion.yaml`; the path, for `--config`.
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let p = dir.join("promotion.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

/// The agent pod's secret files, laid out as the kubelet mounts Secret volumes (files are
/// symlinks through `..data` into a timestamped folder), under a temp dir standing for `/`:
/// `run/secrets/kubernetes.io/non-production-cluster-token/{token,ca.crt}` and
/// `var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,service-ca.crt,namespace}`.
pub struct Pod {
    root: tempfile::TempDir,
}

impl Pod {
    /// `nonprod_ca`: the non-production route's CA (`None`: a publicly trusted one, no file);
    /// `service_ca`: the internal registry's CA.
    pub fn new(
        nonprod_token: &str,
        nonprod_ca: Option<&str>,
        prod_token: &str,
        service_ca: &str,
        namespace: &str,
    ) -> Pod {
        let root = tempfile::Builder::new()
            .prefix("ferry-pod-")
            .tempdir()
            .expect("pod dir");
        let mut nonprod = vec![("token", nonprod_token)];
        if let Some(ca) = nonprod_ca {
            nonprod.push(("ca.crt", ca));
        }
        mount(&root.path().join(SRC_DIR), &nonprod);
        // The API server's CA: not the registry's, and harmless as an extra CA.
        let api_ca = pki::foreign_ca().ca_pem.clone();
        mount(
            &root.path().join(DEST_DIR),
            &[
                ("token", prod_token),
                ("ca.crt", &api_ca),
                ("service-ca.crt", service_ca),
                ("namespace", namespace),
            ],
        );
        Pod { root }
    }

    pub fn src_dir(&self) -> PathBuf {
        self.root.path().join(SRC_DIR)
    }

    pub fn dest_dir(&self) -> PathBuf {
        self.root.path().join(DEST_DIR)
    }

    /// Install the production side's promotion config where the ConfigMap is mounted
    /// (`etc/ferry/promotion.yaml` under the pod's root); the `--config` arguments for it.
    pub fn install_config(&self, yaml: &str) -> Vec<String> {
        let dir = self.root.path().join("etc/ferry");
        std::fs::create_dir_all(&dir).unwrap();
        let p = write_config(&dir, yaml);
        vec!["--config".into(), p.to_str().unwrap().into()]
    }

    /// The environment that points ferry's defaults into this tree (`/run/…` → `<root>/run/…`),
    /// plus the agent image's permissive `/etc/containers/policy.json`.
    pub fn env(&self) -> Vec<(String, String)> {
        let policy = self.root.path().join("etc/containers/policy.json");
        std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        let p = |p: PathBuf| p.to_str().expect("UTF-8 path").to_string();
        vec![
            (
                "FERRY_SRC_TOKEN_FILE".into(),
                p(self.src_dir().join("token")),
            ),
            ("FERRY_SRC_CERT_DIR".into(), p(self.src_dir())),
            (
                "FERRY_DEST_TOKEN_FILE".into(),
                p(self.dest_dir().join("token")),
            ),
            ("FERRY_DEST_CERT_DIR".into(), p(self.dest_dir())),
            ("CONTAINERS_POLICY_JSON".into(), p(policy)),
        ]
    }
}

const SRC_DIR: &str = "run/secrets/kubernetes.io/non-production-cluster-token";
const DEST_DIR: &str = "var/run/secrets/kubernetes.io/serviceaccount";

/// Write `files` as a Secret volume: `dir/..2025_…/<file>`, `dir/..data -> ..2025_…`,
/// `dir/<file> -> ..data/<file>`.
fn mount(dir: &Path, files: &[(&str, &str)]) {
    let stamp = "..2025_01_01_00_00_00.000000001";
    std::fs::create_dir_all(dir.join(stamp)).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(stamp).join(name), content).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(stamp, dir.join("..data")).unwrap();
}

/// Promote with flags only, over plain HTTP registries with token auth; the non-production
/// token may only pull. A second run writes nothing.
#[test]
fn promote_with_flags_and_tokens() {
    let np_ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("np-token".into(), vec![Grant::pull("dev/*")])],
        ..Default::default()
    });
    let p_ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("p-token".into(), vec![Grant::push("prod/*")])],
        ..Default::default()
    });
    let np = Registry::start(RegistryOptions {
        auth: Auth::Token(np_ts.config()),
        ..Default::default()
    });
    let p = Registry::start(RegistryOptions {
        auth: Auth::Token(p_ts.config()),
        ..Default::default()
    });
    let img = ImageSpec::docker().layers(&[2048, 300]).build();
    img.seed(&np, "dev/app:v1");
    let sb = Sandbox::new();
    let (src_tok, dst_tok) = (sb.path().join("np"), sb.path().join("p"));
    std::fs::write(&src_tok, "np-token\n").unwrap();
    std::fs::write(&dst_tok, "p-token").unwrap();
    let config = write_config(
        sb.path(),
        &promotion_yaml(
            &["np.example.com", &np.host()],
            &["p.example.com", &p.host()],
            &["team-dev", "dev"],
            &["team-prod", "prod"],
        ),
    );
    let run = || {
        sb.ferry()
            .args([
                "--insecure-policy",
                "promote",
                "--image-name",
                "app",
                "--config",
            ])
            .arg(&config)
            .args([
                "--non-prod-registry",
                &np.host(),
                "--prod-registry",
                &p.host(),
            ])
            .args([
                "--non-prod-project",
                "dev",
                "--prod-project",
                "prod",
                "--tag",
                "v1",
            ])
            .arg("--src-token-file")
            .arg(&src_tok)
            .arg("--dest-token-file")
            .arg(&dst_tok)
            .args([
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--debug",
            ])
            .run()
    };
    let out = run();
    out.assert_success();
    assert!(
        out.stdout.starts_with(&format!(
            "Promoted {}/dev/app:v1 to {}/prod/app:v1 as {}",
            np.host(),
            p.host(),
            img.digest
        )),
        "{out}"
    );
    for s in ["np-token", "p-token"] {
        assert!(!out.stderr.contains(s) && !out.stdout.contains(s), "{out}");
    }
    assert_eq!(
        p.manifest_digest("prod/app", "v1").as_deref(),
        Some(img.digest.as_str())
    );
    let mark = p.mark();
    let out = run();
    out.assert_success();
    assert!(out.stdout.starts_with("Already promoted"), "{out}");
    let writes: Vec<_> = p
        .requests_since(mark)
        .into_iter()
        .filter(|r| {
            !matches!(
                r.kind(),
                RequestKind::Ping | RequestKind::ManifestHead | RequestKind::ManifestGet
            )
        })
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    // Every token request of each side carried its own token, as user "serviceaccount".
    assert!(
        np_ts
            .requests()
            .iter()
            .all(|r| r.token.as_deref() == Some("np-token")
                && r.user.as_deref() == Some("serviceaccount"))
    );
    assert!(
        p_ts.requests()
            .iter()
            .all(|r| r.token.as_deref() == Some("p-token"))
    );
}

/// The pod layout (Secret volumes with `..data` symlinks) with HTTPS registries: the CA files
/// are found in the default folders.
#[test]
fn promote_with_the_pod_layout_over_https() {
    let np = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        ..Default::default()
    });
    let p = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        ..Default::default()
    });
    let img = ImageSpec::oci().layers(&[1000]).build();
    img.seed(&np, "dev/app:c1");
    let ca = &pki::lab_ca().ca_pem;
    let pod = Pod::new("np", Some(ca), "p", ca, "prod");
    let sb = Sandbox::new();
    let record = sb.path().join("promotion.json");
    let mut t = sb.ferry();
    t.args(["promote", "-q", "--record"]).arg(&record);
    // Only the image name and the tag come from the pipeline: the registries and projects are
    // the config's defaults.
    t.args(pod.install_config(&promotion_yaml(
        &[&np.host()],
        &[&p.host()],
        &["dev"],
        &["prod"],
    )));
    for (k, v) in pod.env() {
        t.env(k, v);
    }
    let out = t.env("IMAGE_NAME", "app").env("GIT_COMMIT", "c1").run();
    out.assert_success();
    assert_eq!(out.stdout, "", "-q prints nothing: {out}");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(rec["destination_digest"], img.digest.as_str());
    assert_eq!(
        rec["destination"],
        format!("docker://{}/prod/app:c1", p.host())
    );
    assert!(rec.get("build_url").is_none(), "{rec}");
}
