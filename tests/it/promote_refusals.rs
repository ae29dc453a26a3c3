//! `ferry promote` refuses: missing inputs (all named at once), no promotion config, an empty
//! token, and a webhook caller who tries to redirect the promotion.

use std::path::Path;

use crate::promote::{Pod, promotion_yaml, write_config};
use crate::support::fixtures::ImageSpec;
use crate::support::webhook::{BuildConfig, WebhookOptions, WebhookServer};
use crate::support::{
    Auth, Grant, Registry, RegistryOptions, Sandbox, TokenServer, TokenServerOptions,
};

#[test]
fn promote_names_every_missing_input_at_once() {
    let sb = Sandbox::new();
    let config = write_config(
        sb.path(),
        &promotion_yaml(
            &["np.example.com"],
            &["p.example.com:5000"],
            &["dev"],
            &["prod"],
        ),
    );
    let out = sb
        .ferry()
        .args(["promote", "--image-name", "app", "--config"])
        .arg(&config)
        .env("GIT_COMMIT", "")
        .env("FERRY_SRC_TOKEN_FILE", sb.path().join("nope"))
        .run();
    out.assert_failure_with(&["missing or empty inputs"]);
    assert_eq!(out.code, Some(1));
    for item in [
        "GIT_COMMIT (--tag)",
        "non-production token file",
        "production token file /var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        assert!(out.stderr.contains(item), "{item}:\n{out}");
    }
    // The registries and projects have the config's defaults; the image name was given.
    for absent in [
        "IMAGE_NAME",
        "NON_PROD_REGISTRY",
        "PROD_REGISTRY",
        "PROJECT_NAME",
    ] {
        assert!(!out.stderr.contains(absent), "{absent}: {out}");
    }
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

/// Without its config promote does nothing, and says what the production side must install;
/// no environment variable can point it at another file.
#[test]
fn promote_refuses_to_run_without_its_config() {
    let sb = Sandbox::new();
    let good = write_config(
        sb.path(),
        &promotion_yaml(&["np.example.com"], &["p.example.com"], &["dev"], &["prod"]),
    );
    let missing = sb.path().join("etc/ferry/promotion.yaml");
    let listener = Listener::start();
    let run = |config: Option<&Path>| {
        let mut t = sb.ferry();
        t.arg("promote");
        if let Some(c) = config {
            t.arg("--config").arg(c);
        }
        // Whatever the environment says (a build parameter becomes one), the flag decides.
        for var in [
            "FERRY_CONFIG",
            "FERRY_PROMOTE_CONFIG",
            "FERRY_PROMOTION_CONFIG",
            "PROMOTION_CONFIG",
            "CONFIG",
        ] {
            t.env(var, &good);
        }
        t.env("IMAGE_NAME", "app")
            .env("GIT_COMMIT", "c1")
            .env("PROD_REGISTRY", listener.host())
            .run()
    };
    let out = run(Some(&missing));
    out.assert_failure_with(&["does not exist"]);
    assert_eq!(out.code, Some(1));
    let line = crate::faults::one_error_line(&out);
    for needle in [
        missing.to_str().unwrap(),
        "must install it",
        "templates/prod-pipeline.yaml",
        "templates/agent.yaml",
        "docs/promote.md",
    ] {
        assert!(line.contains(needle), "{needle}: {out}");
    }
    if !Path::new("/etc/ferry/promotion.yaml").exists() {
        let out = run(None);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            crate::faults::one_error_line(&out)
                .contains("/etc/ferry/promotion.yaml does not exist"),
            "{out}"
        );
    }
    // A config that is not one: refused, naming the file and the key.
    let bad = sb.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!(
            "{}registries: [x.io]\n",
            std::fs::read_to_string(&good).unwrap()
        ),
    )
    .unwrap();
    let out = run(Some(&bad));
    assert_eq!(out.code, Some(1), "{out}");
    let line = crate::faults::one_error_line(&out);
    assert!(
        line.contains(bad.to_str().unwrap()) && line.contains("unknown field `registries`"),
        "{out}"
    );
    assert_eq!(listener.connections(), 0);
}

#[test]
fn promote_refuses_an_empty_token() {
    let sb = Sandbox::new();
    let pod = Pod::new("np", None, "", "x", "team-prod");
    let mut t = sb.ferry();
    t.arg("promote").args(pod.install_config(&promotion_yaml(
        &["np.example.com"],
        &["p.example.com"],
        &["a"],
        &["b"],
    )));
    for (k, v) in pod.env() {
        t.env(k, v);
    }
    let out = t.env("IMAGE_NAME", "app").env("GIT_COMMIT", "abc").run();
    out.assert_failure_with(&["production token file"]);
    assert!(out.stderr.contains("empty"), "{out}");
}

/// A listener standing in for a host that must never be contacted: connections the kernel
/// accepted for it wait in its backlog, so counting them needs no thread.
pub struct Listener {
    listener: std::net::TcpListener,
}

impl Listener {
    pub fn start() -> Listener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
        listener.set_nonblocking(true).unwrap();
        Listener { listener }
    }

    pub fn host(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Connections made to it so far (each taken off the backlog).
    pub fn connections(&self) -> usize {
        let mut n = 0;
        while self.listener.accept().is_ok() {
            n += 1;
        }
        n
    }
}

/// The attack of issue 11: whoever holds only the webhook secret calls the production
/// pipeline's generic webhook with values of their own. Even when every value reaches the
/// pipeline's environment (a BuildConfig that still declares all six as parameters), promote
/// refuses — before any request — a registry, a project or a name outside the production
/// side's config: the foreign host sees no connection, the registries and token servers no
/// request, and the production token goes nowhere.
#[test]
fn a_webhook_caller_cannot_redirect_the_promotion() {
    const SECRET: &str = "0f3c5e7a9b1d2f4a6c8e0b2d4f6a8c0e1f3a5b7c";
    let np_ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("np-token".into(), vec![Grant::pull("*")])],
        ..Default::default()
    });
    // The production token may push anywhere in this registry: only the config stops a push
    // into another project.
    let p_ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("p-token".into(), vec![Grant::push("*")])],
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
    let img = ImageSpec::oci().layers(&[700]).build();
    img.seed(&np, "dev/app:c1");
    let foreign = Listener::start();
    // The old production pipeline: every one of the six is a build parameter.
    let mut bc = BuildConfig::production_pipeline("prod", SECRET);
    for name in ["NON_PROD_REGISTRY", "PROD_REGISTRY", "PROD_PROJECT_NAME"] {
        bc.env.push((name.to_string(), String::new()));
    }
    let hook = WebhookServer::start(WebhookOptions {
        buildconfigs: vec![bc],
        require_token: None,
        tls: false,
    });
    let sb = Sandbox::new();
    let config = write_config(
        sb.path(),
        &promotion_yaml(&[&np.host()], &[&p.host()], &["dev"], &["prod"]),
    );
    let (src_tok, dst_tok) = (sb.path().join("np"), sb.path().join("p"));
    std::fs::write(&src_tok, "np-token").unwrap();
    std::fs::write(&dst_tok, "p-token").unwrap();
    let attack = |params: &[(&str, &str)]| {
        let env: Vec<serde_json::Value> = params
            .iter()
            .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "env": env })).unwrap();
        let path = format!(
            "/apis/build.openshift.io/v1/namespaces/prod/buildconfigs/production-pipeline/webhooks/{SECRET}/generic"
        );
        let (status, answer) = hook.send(
            "POST",
            &path,
            &[("content-type", "application/json")],
            Some(&body),
        );
        assert_eq!(status, 200, "{answer}");
        let build = hook.builds().pop().unwrap();
        let mut t = sb.ferry();
        t.args([
            "--insecure-policy",
            "promote",
            "--retry-times=0",
            "--config",
        ])
        .arg(&config)
        .arg("--src-token-file")
        .arg(&src_tok)
        .arg("--dest-token-file")
        .arg(&dst_tok)
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"]);
        for (k, v) in build.stage_env() {
            t.env(k, v);
        }
        t.run()
    };
    let base = [
        ("IMAGE_NAME", "app"),
        ("NON_PROD_PROJECT_NAME", "dev"),
        ("GIT_COMMIT", "c1"),
    ];
    let with = |extra: (&'static str, String)| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| *k != extra.0)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.push((extra.0.to_string(), extra.1));
        v
    };
    type Params = Vec<(String, String)>;
    let cases: Vec<(Params, &str, String)> = vec![
        (
            with(("PROD_REGISTRY", foreign.host())),
            "destinationRegistries",
            foreign.host(),
        ),
        (
            with(("NON_PROD_REGISTRY", foreign.host())),
            "sourceRegistries",
            foreign.host(),
        ),
        (
            with(("PROD_PROJECT_NAME", "other-prod".into())),
            "destinationProjects",
            "other-prod".into(),
        ),
        (
            with(("NON_PROD_PROJECT_NAME", "kube-system".into())),
            "sourceProjects",
            "kube-system".into(),
        ),
        (
            with(("GIT_COMMIT", "c1;curl${IFS}evil".into())),
            "invalid tag",
            "c1;curl${IFS}evil".into(),
        ),
        (
            with(("GIT_COMMIT", "../../v2".into())),
            "invalid tag",
            "../../v2".into(),
        ),
        (
            with(("IMAGE_NAME", "app/../../other".into())),
            "not an image name",
            "app/../../other".into(),
        ),
    ];
    let (np_mark, p_mark) = (np.mark(), p.mark());
    for (params, needle, value) in &cases {
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = attack(&params);
        assert_eq!(out.code, Some(1), "{params:?}\n{out}");
        let line = crate::faults::one_error_line(&out);
        assert!(
            line.contains(needle) && line.contains(value.as_str()),
            "{params:?}: {out}"
        );
        if needle.ends_with("Registries") || needle.ends_with("Projects") {
            assert!(line.contains(config.to_str().unwrap()), "{out}");
        }
        for s in ["np-token", "p-token"] {
            assert!(!out.stderr.contains(s), "{out}");
        }
    }
    assert_eq!(foreign.connections(), 0, "the foreign host was contacted");
    assert_eq!(np.requests_since(np_mark), vec![]);
    assert_eq!(p.requests_since(p_mark), vec![]);
    assert!(np_ts.requests().is_empty() && p_ts.requests().is_empty());
    assert!(p.get_manifest("other-prod/app", "c1").is_none());
    // The same caller within the config: promoted.
    let out = attack(&base);
    out.assert_success();
    assert_eq!(
        p.manifest_digest("prod/app", "c1").as_deref(),
        Some(img.digest.as_str())
    );
}
