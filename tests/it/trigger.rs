//! `ferry trigger` against the stand-in of OpenShift's generic webhook, and the stand-in's own
//! fidelity checks (answers as openshift-apiserver gives them).

use crate::support::webhook::{BuildConfig, GenericTrigger, WebhookOptions, WebhookServer};
use crate::support::{Output, Sandbox};

const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0deadbeef";
const NS: &str = "team-prod";

fn webhook() -> WebhookServer {
    WebhookServer::start(WebhookOptions {
        buildconfigs: vec![BuildConfig::production_pipeline(NS, SECRET)],
        require_token: None,
        tls: false,
    })
}

/// The three parameters the non-production pipeline sends (what the webhook may choose).
fn params() -> Vec<String> {
    [
        "IMAGE_NAME=app",
        "NON_PROD_PROJECT_NAME=team-dev",
        "GIT_COMMIT=0123456789abcdef0123456789abcdef01234567",
    ]
    .iter()
    .flat_map(|p| ["--env".to_string(), p.to_string()])
    .collect()
}

/// `ferry trigger` at the stand-in, secret from the environment.
fn trigger(sandbox: &Sandbox, hook: &WebhookServer, extra: &[&str]) -> Output {
    trigger_bc(sandbox, hook, "production-pipeline", extra)
}

fn trigger_bc(sandbox: &Sandbox, hook: &WebhookServer, bc: &str, extra: &[&str]) -> Output {
    sandbox
        .ferry()
        .arg("trigger")
        .args(["--api-url", &hook.api_url(), "--tls-verify=false"])
        .args(["--namespace", NS, "--buildconfig", bc])
        .args(params())
        .args(extra)
        .env("FERRY_WEBHOOK_SECRET", SECRET)
        .run()
}

#[track_caller]
fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "secret leaked:\n{out}"
        );
    }
}

#[test]
fn trigger_starts_the_build_with_the_parameters() {
    let hook = webhook();
    let sb = Sandbox::new();
    let out = trigger(&sb, &hook, &["--debug"]);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        "Started build team-prod/production-pipeline-1 (generic webhook of buildconfig team-prod/production-pipeline)"
    );
    // The BuildConfig has a git source: OpenShift's harmless warning is a note, not an error.
    assert!(out.stderr.contains("no git information"), "{out}");
    assert!(out.stderr.contains("/webhooks/<redacted>/generic"), "{out}");
    assert_no_secret(&out, &[SECRET]);

    let calls = hook.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.method, "POST");
    assert_eq!(
        c.path,
        format!(
            "/apis/build.openshift.io/v1/namespaces/{NS}/buildconfigs/production-pipeline/webhooks/{SECRET}/generic"
        )
    );
    assert_eq!(c.content_type.as_deref(), Some("application/json"));
    assert!(c.authorization.is_none());
    let body: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
    let env = body["env"].as_array().expect("env is a list");
    assert_eq!(env.len(), 3);
    assert_eq!(
        env[2],
        serde_json::json!({"name": "GIT_COMMIT", "value": "0123456789abcdef0123456789abcdef01234567"})
    );

    let builds = hook.builds();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0].parameter("IMAGE_NAME"), Some("app"));
    assert_eq!(
        builds[0].parameter("NON_PROD_PROJECT_NAME"),
        Some("team-dev")
    );
}

/// The registries and the production project are the production side's (its promotion
/// config): an old pipeline that still passes them gets a warning, and they are not sent.
#[test]
fn trigger_does_not_send_what_production_pins() {
    let hook = webhook();
    let sb = Sandbox::new();
    let out = trigger(
        &sb,
        &hook,
        &[
            "--env",
            "NON_PROD_REGISTRY=registry.nonprod.example.com",
            "--env",
            "PROD_REGISTRY=image-registry.openshift-image-registry.svc:5000",
            "--env",
            "PROD_PROJECT_NAME=team-prod",
        ],
    );
    out.assert_success();
    for name in ["NON_PROD_REGISTRY", "PROD_REGISTRY", "PROD_PROJECT_NAME"] {
        assert!(
            out.stderr.contains(&format!(
                "--env {name} is not sent: the production side pins"
            )),
            "{name}: {out}"
        );
    }
    let body: serde_json::Value = serde_json::from_slice(&hook.calls()[0].body).unwrap();
    let names: Vec<&str> = body["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["IMAGE_NAME", "NON_PROD_PROJECT_NAME", "GIT_COMMIT"]);
}

/// Success means a build was started: a 2xx answer that does not name one (empty, HTML,
/// oversized, unreadable) exits 1, saying the build could not be confirmed and what the answer
/// was, redacted.
#[test]
fn trigger_fails_when_the_answer_does_not_confirm_a_build() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    let hook = webhook();
    let proxy = FaultProxy::forward_to(&hook.api_url());
    let html = format!(
        "<html>\n<head><title>Sign in</title></head><body>Continue to /webhooks/{SECRET}/generic</body></html>"
    );
    let cases: Vec<(&str, Fault, Vec<&str>)> = vec![
        (
            "empty",
            Fault::Status {
                status: 200,
                headers: vec![],
                body: vec![],
            },
            vec!["an empty answer"],
        ),
        (
            "html",
            Fault::Status {
                status: 200,
                headers: vec![("content-type".into(), "text/html".into())],
                body: html.into_bytes(),
            },
            vec!["<title>Sign in</title>", "/webhooks/<redacted>/generic"],
        ),
        (
            "json that is no build",
            Fault::Status {
                status: 201,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"kind":"Status","status":"Success"}"#.to_vec(),
            },
            vec!["HTTP 201", r#"the answer: {"kind":"Status""#],
        ),
        (
            "oversized",
            Fault::Status {
                status: 200,
                headers: vec![],
                body: vec![b' '; 5 << 20],
            },
            vec!["an answer larger than 4 MiB"],
        ),
        (
            // Headers, the start of a body, then the connection breaks.
            "unreadable",
            Fault::respond(|_| {
                // The body waits once between its two parts, so that the server sends what
                // it has (the headers, the start of the body) before the break.
                let parts = futures_util::stream::unfold(0, |i| async move {
                    match i {
                        0 => Some((Ok(bytes::Bytes::from_static(b"{\"kind\":\"Bu")), 1)),
                        1 => {
                            tokio::task::yield_now().await;
                            Some((Err(std::io::Error::other("cut")), 2))
                        }
                        _ => None,
                    }
                });
                axum::response::Response::builder()
                    .status(200)
                    .body(axum::body::Body::from_stream(parts))
                    .unwrap()
            }),
            vec!["an answer that could not be read"],
        ),
        (
            // The stand-in's own answer (the build it started), cut short: wherever the
            // connection breaks, the build may have started.
            "cut",
            Fault::TruncateAfter(10),
            vec![],
        ),
    ];
    for (name, fault, needles) in cases {
        proxy.clear();
        proxy.add(Rule::new("POST", "/generic$", fault));
        let sb = Sandbox::new();
        let out = sb
            .ferry()
            .arg("trigger")
            .args(["--api-url", &proxy.url(), "--tls-verify=false"])
            .args(["--namespace", NS, "--buildconfig", "production-pipeline"])
            .args(params())
            .env("FERRY_WEBHOOK_SECRET", SECRET)
            .run();
        assert_eq!(out.code, Some(1), "{name}\n{out}");
        let line = crate::faults::one_error_line(&out);
        assert!(
            line.contains("the build could not be confirmed"),
            "{name}\n{out}"
        );
        for n in needles {
            assert!(line.contains(n), "{name}: {n}\n{out}");
        }
        assert_no_secret(&out, &[SECRET]);
    }
}

#[test]
fn trigger_over_https_secret_from_file_and_legacy_path() {
    let hook = WebhookServer::start(WebhookOptions {
        buildconfigs: vec![BuildConfig::production_pipeline(NS, SECRET)],
        require_token: None,
        tls: true,
    });
    let sb = Sandbox::new();
    let f = sb.path().join("webhook-secret");
    std::fs::write(&f, format!("{SECRET}\n")).unwrap();
    let run = |extra: &[&str]| {
        sb.ferry()
            .arg("trigger")
            .args(["--api-url", &format!("{}/", hook.api_url())])
            .args(["-n", NS, "--buildconfig", "production-pipeline"])
            .arg("--secret-file")
            .arg(&f)
            .args(params())
            .args(extra)
            .run()
    };
    // Without the API server's CA: a certificate error, the secret nowhere.
    let out = run(&[]);
    out.assert_failure_with(&["certificate"]);
    assert_no_secret(&out, &[SECRET]);
    assert!(hook.calls().is_empty());
    let cert_dir = hook.cert_dir().unwrap().to_str().unwrap().to_string();
    let out = run(&["--cert-dir", &cert_dir, "--legacy-oapi"]);
    out.assert_success();
    assert!(out.stdout.contains("production-pipeline-1"), "{out}");
    assert!(
        hook.calls()[0]
            .path
            .starts_with("/oapi/v1/namespaces/team-prod/")
    );
}

#[test]
fn trigger_refuses_a_wrong_secret_without_showing_it() {
    let hook = webhook();
    let sb = Sandbox::new();
    let wrong = "not-the-secret-1234";
    let out = sb
        .ferry()
        .arg("trigger")
        .args(["--api-url", &hook.api_url(), "--tls-verify=false"])
        .args(["--namespace", NS, "--buildconfig", "production-pipeline"])
        .args(params())
        .arg("--debug")
        .env("FERRY_WEBHOOK_SECRET", wrong)
        .run();
    out.assert_failure_with(&["HTTP 401"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("did not accept your secret"), "{out}");
    assert_no_secret(&out, &[wrong, SECRET]);
    assert!(hook.builds().is_empty());

    // An unknown BuildConfig is answered the same way.
    let out = trigger_bc(&sb, &hook, "nope", &[]);
    out.assert_failure_with(&["HTTP 401"]);
}

#[test]
fn trigger_fails_when_the_trigger_does_not_allow_env() {
    let mut bc = BuildConfig::production_pipeline(NS, SECRET);
    bc.generic = Some(GenericTrigger {
        secret: SECRET.into(),
        allow_env: false,
    });
    let hook = WebhookServer::start(WebhookOptions {
        buildconfigs: vec![bc],
        require_token: None,
        tls: false,
    });
    let out = trigger(&Sandbox::new(), &hook, &[]);
    out.assert_failure_with(&["allowEnv"]);
    // OpenShift did start a build (with the BuildConfig's empty values): ferry names it.
    assert!(out.stderr.contains("production-pipeline-1"), "{out}");
    assert_eq!(hook.builds()[0].parameter("GIT_COMMIT"), Some(""));
}

#[test]
fn trigger_with_a_token_on_clusters_that_refuse_anonymous_calls() {
    let token = "sha256~prod-webhook-caller-token";
    let hook = WebhookServer::start(WebhookOptions {
        buildconfigs: vec![BuildConfig::production_pipeline(NS, SECRET)],
        require_token: Some(token.into()),
        tls: false,
    });
    let sb = Sandbox::new();
    let out = trigger(&sb, &hook, &[]);
    out.assert_failure_with(&["HTTP 403"]);
    assert!(out.stderr.contains("system:webhook"), "{out}");

    let f = sb.path().join("token");
    std::fs::write(&f, token).unwrap();
    let out = trigger(
        &sb,
        &hook,
        &["--token-file", f.to_str().unwrap(), "--debug"],
    );
    out.assert_success();
    assert_no_secret(&out, &[SECRET, token]);
    assert_eq!(
        hook.calls().last().unwrap().authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );

    std::fs::write(&f, "sha256~some-other-token").unwrap();
    trigger(&sb, &hook, &["--token-file", f.to_str().unwrap()]).assert_failure_with(&["HTTP 401"]);
}

#[test]
fn trigger_input_errors() {
    let sb = Sandbox::new();
    // Everything missing: one error naming all of it.
    let out = sb.ferry().arg("trigger").run();
    out.assert_failure_with(&["missing inputs"]);
    for what in [
        "--api-url",
        "--namespace",
        "--buildconfig",
        "FERRY_WEBHOOK_SECRET",
    ] {
        assert!(out.stderr.contains(what), "{what}: {out}");
    }
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    // A secret on the command line is refused, and not repeated.
    let out = sb
        .ferry()
        .args([
            "trigger",
            "--api-url",
            "https://h",
            "-n",
            "a",
            "--buildconfig",
            "b",
        ])
        .arg(format!("--secret={SECRET}"))
        .run();
    out.assert_failure_with(&["never taken from the command line"]);
    assert_no_secret(&out, &[SECRET]);
    // Malformed --env, and http:// without --tls-verify=false.
    sb.ferry()
        .args(["trigger", "--env", "NOEQUALS"])
        .run()
        .assert_failure_with(&["NAME=VALUE"]);
    sb.ferry()
        .args([
            "trigger",
            "--api-url",
            "http://127.0.0.1:9",
            "-n",
            "a",
            "--buildconfig",
            "b",
        ])
        .env("FERRY_WEBHOOK_SECRET", SECRET)
        .run()
        .assert_failure_with(&["clear text"]);
}

// ---------------------------------------------------------------------------------------------
// The stand-in answers as OpenShift does (independent of ferry).

fn hook_path(secret: &str) -> String {
    format!(
        "/apis/build.openshift.io/v1/namespaces/{NS}/buildconfigs/production-pipeline/webhooks/{secret}/generic"
    )
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn stand_in_ignores_a_map_payload_with_a_warning_and_runs_the_build_without_parameters() {
    let hook = webhook();
    let (status, body) = hook.send(
        "POST",
        &hook_path(SECRET),
        &[JSON],
        Some(br#"{"env":{"GIT_COMMIT":"abc"}}"#),
    );
    assert_eq!(status, 200);
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&body)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(docs.len(), 2, "{body}");
    assert_eq!(docs[0]["kind"], "Build");
    assert_eq!(docs[1]["kind"], "Status");
    assert_eq!(docs[1]["code"], 200);
    let msg = docs[1]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("error unmarshalling payload: json: cannot unmarshal object into Go struct field GenericWebHookEvent.env")
            && msg.ends_with("ignoring payload and continuing with build"),
        "{msg}"
    );
    assert_eq!(hook.builds()[0].parameter("GIT_COMMIT"), Some(""));
}

#[test]
fn stand_in_answers_like_openshift() {
    let mut other = BuildConfig::production_pipeline(NS, SECRET);
    other.name = "no-git".into();
    other.git_ref = None;
    let hook = WebhookServer::start(WebhookOptions {
        buildconfigs: vec![BuildConfig::production_pipeline(NS, SECRET), other],
        require_token: None,
        tls: false,
    });
    let env = br#"{"env":[{"name":"GIT_COMMIT","value":"abc"},{"name":"UNDECLARED","value":"x"}]}"#;
    // POST only.
    assert_eq!(hook.send("GET", &hook_path(SECRET), &[], None).0, 405);
    // Wrong secret: 401, the message does not repeat it.
    let (s, b) = hook.send("POST", &hook_path("wrong"), &[JSON], Some(env));
    assert_eq!(s, 401);
    assert!(
        b.contains(
            r#"the webhook \"generic\" for \"production-pipeline\" did not accept your secret"#
        ),
        "{b}"
    );
    // Unknown hook type: 404; a known one without a trigger: 401; a bad subpath: 400.
    let base = hook_path(SECRET);
    let base = base.trim_end_matches("/generic");
    assert_eq!(
        hook.send("POST", &format!("{base}/nosuch"), &[JSON], None)
            .0,
        404
    );
    assert_eq!(
        hook.send("POST", &format!("{base}/github"), &[JSON], None)
            .0,
        401
    );
    assert_eq!(
        hook.send("POST", &format!("{base}/generic/x"), &[JSON], None)
            .0,
        400
    );
    // No Content-Type: the build runs, payload ignored, with a warning.
    let (s, b) = hook.send("POST", &hook_path(SECRET), &[], Some(env));
    assert_eq!(s, 200);
    assert!(
        b.contains("invalid Content-Type on payload, ignoring payload and continuing with build"),
        "{b}"
    );
    // JSON: only declared parameters reach "Jenkins"; the build's env has all of them.
    let (s, b) = hook.send("POST", &hook_path(SECRET), &[JSON], Some(env));
    assert_eq!(s, 200);
    assert!(b.contains("no git information found in payload"), "{b}");
    let build = hook.builds().pop().unwrap();
    assert_eq!(build.parameter("GIT_COMMIT"), Some("abc"));
    assert_eq!(build.parameter("UNDECLARED"), None);
    assert!(build.env.iter().any(|(n, _)| n == "UNDECLARED"));
    // Without a git source, no warning at all; YAML is taken too.
    let no_git = hook_path(SECRET).replace("production-pipeline", "no-git");
    let (s, b) = hook.send("POST", &no_git, &[JSON], Some(env));
    assert_eq!((s, b.lines().count()), (200, 1), "{b}");
    let (s, _) = hook.send(
        "POST",
        &no_git,
        &[("content-type", "application/yaml")],
        Some(b"env:\n- name: GIT_COMMIT\n  value: fromyaml\n"),
    );
    assert_eq!(s, 200);
    assert_eq!(
        hook.builds().pop().unwrap().parameter("GIT_COMMIT"),
        Some("fromyaml")
    );
    // A git ref that does not match the BuildConfig's: no build.
    let n = hook.builds().len();
    let (s, b) = hook.send(
        "POST",
        &hook_path(SECRET),
        &[JSON],
        Some(br#"{"git":{"ref":"other"}}"#),
    );
    assert_eq!(s, 200);
    assert!(b.contains("skipping build"), "{b}");
    assert_eq!(hook.builds().len(), n);
}
