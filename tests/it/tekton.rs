//! The promotion on OpenShift Pipelines, run for real: `ferry trigger --event-listener` signs an
//! event for the stand-in EventListener (support/eventlistener.rs), which runs it through the
//! GitHub interceptor, the TriggerBinding and the TriggerTemplate of
//! `templates/tekton/prod-triggers.yaml`; the PipelineRun it creates is run as Tekton runs it
//! (support/tekton.rs) — the Pipeline of `templates/tekton/prod-pipeline.yaml`, the Task of
//! `templates/tekton/ferry-promote-task.yaml`, its step's script executed in a pod laid out with
//! the production side's ConfigMap and the non-production token Secret — against the lab's two
//! registries (HTTPS, token auth as OpenShift's). The results Tekton Chains reads are checked
//! against what production holds.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::eventlistener::EventListenerServer;
use crate::support::fixtures::ImageSpec;
use crate::support::tekton::{Cluster, Param, PipelineRun, TaskRun, Workspace};
use crate::support::{
    Auth, Grant, Output, Registry, RegistryOptions, RequestKind, Sandbox, Tls, TokenServer,
    TokenServerOptions, pki,
};
use crate::templates::{assert_none, object, process, read, schema_problems};

const NONPROD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.tekton-nonprod-puller.sa-token";
const PROD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.tekton-ferry-pipeline.sa-token";
const WEBHOOK_SECRET: &str = "8c3e1f0a9b7d5c2e4f6a8b0c1d3e5f7a9b1c3d5e";
const DEV: &str = "team-dev";
const PROD: &str = "team-prod";
const COMMIT: &str = "5e8a1f3c7b9d2e4f6a8c0b1d3e5f7a9c2b4d6e8f";
const FERRY_IMAGE: &str = "image-registry.openshift-image-registry.svc:5000/team-prod/ferry-agent@sha256:0b3e5f7a9c2b4d6e8f5e8a1f3c7b9d2e4f6a8c0b1d3e5f7a9c2b4d6e8f5e8a1f";

#[track_caller]
fn assert_no_secrets(out: &Output) {
    for s in [NONPROD_TOKEN, PROD_TOKEN, WEBHOOK_SECRET] {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "secret in output:\n{out}"
        );
    }
}

/// A Secret object's `stringData` as files.
fn secret_files(o: &Value) -> Vec<(String, Vec<u8>)> {
    o["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
        .collect()
}

/// Production, with OpenShift Pipelines: its registry, the non-production one it reads from,
/// the objects of the Tekton templates as installed (processed for the lab), the EventListener.
struct Lab {
    nonprod: Registry,
    prod: Registry,
    cluster: Cluster,
    task: Value,
    pipeline: Value,
    el: EventListenerServer,
    _tokens: (TokenServer, TokenServer),
}

impl Lab {
    fn start() -> Lab {
        let nonprod_tokens = TokenServer::start(TokenServerOptions {
            tokens: vec![(NONPROD_TOKEN.into(), vec![Grant::pull(&format!("{DEV}/*"))])],
            tls: true,
            ..Default::default()
        });
        let prod_tokens = TokenServer::start(TokenServerOptions {
            tokens: vec![(PROD_TOKEN.into(), vec![Grant::push(&format!("{PROD}/*"))])],
            tls: true,
            ..Default::default()
        });
        let registry = |t: &TokenServer| {
            Registry::start(RegistryOptions {
                tls: Tls::Ca,
                auth: Auth::Token(t.config()),
                ..Default::default()
            })
        };
        let nonprod = registry(&nonprod_tokens);
        let prod = registry(&prod_tokens);
        let ca = pki::lab_ca().ca_pem.clone();
        let task_t = process(
            "tekton/ferry-promote-task.yaml",
            &[("PROD_PROJECT_NAME", PROD), ("FERRY_IMAGE", FERRY_IMAGE)],
        );
        let pipeline_t = process(
            "tekton/prod-pipeline.yaml",
            &[
                ("PROD_PROJECT_NAME", PROD),
                ("NON_PROD_REGISTRY", &nonprod.host()),
                ("NON_PROD_PROJECT_NAME", DEV),
                ("PROD_REGISTRY", &prod.host()),
            ],
        );
        let triggers = process("tekton/prod-triggers.yaml", &[("PROD_PROJECT_NAME", PROD)]);
        let hook = process(
            "prod-webhook-secret.yaml",
            &[
                ("PROD_PROJECT_NAME", PROD),
                ("WEBHOOK_SECRET", WEBHOOK_SECRET),
            ],
        );
        let token = process(
            "prod-nonprod-token-secret.yaml",
            &[
                ("PROD_PROJECT_NAME", PROD),
                ("NON_PROD_TOKEN", NONPROD_TOKEN),
                ("NON_PROD_REGISTRY_CA", &ca),
            ],
        );
        let mut cluster = Cluster {
            namespace: PROD.into(),
            ..Cluster::default()
        };
        let cm = object(&pipeline_t, "ConfigMap");
        cluster.config_maps.insert(
            cm["metadata"]["name"].as_str().unwrap().into(),
            cm["data"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                .collect(),
        );
        let mut el_secrets = BTreeMap::new();
        for s in [object(&hook, "Secret"), object(&token, "Secret")] {
            let name = s["metadata"]["name"].as_str().unwrap().to_string();
            cluster.secrets.insert(name.clone(), secret_files(s));
            el_secrets.insert(
                name,
                s["stringData"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
            );
        }
        // The ServiceAccount the Pipeline's TaskRuns run as: its token pushes; the service CA
        // signs the internal registry's certificate; ca.crt is the API server's (not the
        // registry's: harmless as an extra CA).
        let sa = object(&pipeline_t, "ServiceAccount")["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        cluster.service_accounts.insert(
            sa,
            vec![
                ("token".into(), PROD_TOKEN.as_bytes().to_vec()),
                (
                    "ca.crt".into(),
                    pki::foreign_ca().ca_pem.as_bytes().to_vec(),
                ),
                ("service-ca.crt".into(), ca.as_bytes().to_vec()),
                ("namespace".into(), PROD.as_bytes().to_vec()),
            ],
        );
        let el = EventListenerServer::start(&triggers.objects, el_secrets);
        Lab {
            nonprod,
            prod,
            cluster,
            task: object(&task_t, "Task").clone(),
            pipeline: object(&pipeline_t, "Pipeline").clone(),
            el,
            _tokens: (nonprod_tokens, prod_tokens),
        }
    }

    /// The non-production pipeline's last step, as Jenkinsfile.nonprod would run it against
    /// an EventListener.
    fn trigger(&self, secret: &str, env: &[String]) -> Output {
        let mut t = Sandbox::new().ferry();
        t.args(["trigger", "--event-listener", &self.el.url(), "--cert-dir"])
            .arg(self.el.cert_dir());
        for e in env {
            t.args(["--env", e]);
        }
        let out = t.env("FERRY_WEBHOOK_SECRET", secret).run();
        assert_no_secrets(&out);
        out
    }

    fn run(
        &self,
        pipeline_run: &Value,
        workspaces: Vec<(String, Workspace)>,
    ) -> crate::support::tekton::PipelineRunResult {
        let run = PipelineRun::from_object(pipeline_run, workspaces).unwrap();
        let r = self
            .cluster
            .run_pipeline(&self.pipeline, &[&self.task], &run);
        for (_, tr) in &r.task_runs {
            for s in &tr.steps {
                assert_no_secrets(s);
            }
        }
        r
    }

    fn prod_writes(&self, mark: crate::support::Mark) -> usize {
        self.prod
            .requests_since(mark)
            .iter()
            .filter(|r| {
                matches!(
                    r.kind(),
                    RequestKind::UploadStart | RequestKind::BlobMount | RequestKind::ManifestPut
                )
            })
            .count()
    }
}

fn writable_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("ferry-lab-claim-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    d
}

fn the_three() -> Vec<String> {
    vec![
        "IMAGE_NAME=app".into(),
        format!("NON_PROD_PROJECT_NAME={DEV}"),
        format!("GIT_COMMIT={COMMIT}"),
    ]
}

#[test]
fn tekton_a_signed_event_promotes_and_the_results_name_the_production_digest() {
    let lab = Lab::start();
    let image = ImageSpec::oci().layers(&[3000, 70_000]).build();
    image.seed(&lab.nonprod, &format!("{DEV}/app:{COMMIT}"));

    // The non-production side: one signed event.
    let out = lab.trigger(WEBHOOK_SECRET, &the_three());
    out.assert_success();
    let events = lab.el.events();
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert!(ev.refusals().is_empty(), "{:?}", ev.verdicts);
    assert!(
        ev.header("x-hub-signature-256")
            .unwrap()
            .starts_with("sha256=")
    );
    assert_eq!(ev.header("content-type"), Some("application/json"));
    assert!(
        out.stdout.contains(&ev.event_id)
            && out.stdout.contains("triggers.tekton.dev/triggers-eventid="),
        "{out}"
    );
    let body: Value = serde_json::from_slice(&ev.body).unwrap();
    assert_eq!(
        body,
        json!({"IMAGE_NAME": "app", "NON_PROD_PROJECT_NAME": DEV, "GIT_COMMIT": COMMIT})
    );

    // What the TriggerTemplate created: one PipelineRun, valid, with only the three params.
    let created = ev.created();
    assert_eq!(created.len(), 1, "{created:?}");
    let pr = &created[0];
    assert_none(schema_problems(pr, "the created PipelineRun"));
    assert_eq!(
        pr["metadata"]["labels"]["triggers.tekton.dev/triggers-eventid"],
        ev.event_id.as_str()
    );
    let names: Vec<&str> = pr["spec"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["IMAGE_NAME", "GIT_COMMIT", "NON_PROD_PROJECT_NAME"]);

    // Tekton runs it: the promotion happens, the results are production's.
    let record = writable_dir();
    let r = lab.run(
        pr,
        vec![(
            "record".into(),
            Workspace::Claim(record.path().to_path_buf()),
        )],
    );
    assert!(r.succeeded, "{r:#?}");
    let (_, tr) = &r.task_runs[0];
    let prod_digest = lab
        .prod
        .manifest_digest(&format!("{PROD}/app"), COMMIT)
        .unwrap();
    assert_eq!(prod_digest, image.digest);
    assert_eq!(tr.results["IMAGE_DIGEST"], prod_digest);
    assert_eq!(
        tr.results["IMAGE_URL"],
        format!("{}/{PROD}/app:{COMMIT}", lab.prod.host())
    );
    assert_eq!(
        r.results, tr.results,
        "the Pipeline's results are the Task's"
    );
    let rec: Value =
        serde_json::from_slice(&std::fs::read(record.path().join("promotion.json")).unwrap())
            .unwrap();
    assert_eq!(rec["destination_digest"], prod_digest.as_str());
    assert_eq!(rec["already_present"], false);

    // The same event again: nothing is written, the results are the same.
    lab.trigger(WEBHOOK_SECRET, &the_three()).assert_success();
    let again = lab.el.events()[1].created();
    let mark = lab.prod.mark();
    let r2 = lab.run(&again[0], vec![]);
    assert!(r2.succeeded, "{r2:#?}");
    assert_eq!(r2.results, r.results);
    assert_eq!(lab.prod_writes(mark), 0);
}

/// Whoever holds the signing secret can choose only the image, the tag and an allowed
/// non-production project; a wrong secret starts nothing.
#[test]
fn tekton_events_cannot_move_the_pins_and_unsigned_ones_start_nothing() {
    let lab = Lab::start();
    let image = ImageSpec::oci().layers(&[1500]).build();
    image.seed(&lab.nonprod, &format!("{DEV}/app:{COMMIT}"));
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    let foreign_host = foreign.local_addr().unwrap().to_string();

    // A wrong secret: the EventListener accepts the event (it answers before its interceptors
    // run) and ferry says so; the interceptor refuses it; nothing is created.
    let out = lab.trigger("not-the-secret-0123456789", &the_three());
    out.assert_success();
    assert!(
        out.stderr.contains("checks the signature after answering"),
        "{out}"
    );
    let ev = lab.el.events().pop().unwrap();
    assert!(ev.created().is_empty());
    assert!(
        ev.refusals()
            .iter()
            .any(|r| r.contains("signature check failed")),
        "{:?}",
        ev.verdicts
    );

    // The registries and the production project are not sent (ferry drops them) …
    let mut env = the_three();
    env.push(format!("PROD_REGISTRY={foreign_host}"));
    env.push("PROD_PROJECT_NAME=kube-system".into());
    let out = lab.trigger(WEBHOOK_SECRET, &env);
    out.assert_success();
    assert!(
        out.stderr.contains("--env PROD_REGISTRY is not sent"),
        "{out}"
    );
    let ev = lab.el.events().pop().unwrap();
    let body: Value = serde_json::from_slice(&ev.body).unwrap();
    assert!(body.get("PROD_REGISTRY").is_none() && body.get("PROD_PROJECT_NAME").is_none());

    // … and a caller who signs its own body with them gets them ignored by the binding, and a
    // project outside the allowed ones refused by ferry promote before any request.
    let hostile = serde_json::to_vec(&json!({
        "IMAGE_NAME": "app", "GIT_COMMIT": COMMIT, "NON_PROD_PROJECT_NAME": "other-team",
        "PROD_REGISTRY": foreign_host, "PROD_PROJECT_NAME": "kube-system",
        "NON_PROD_REGISTRY": foreign_host,
    }))
    .unwrap();
    let ev = post_signed(&lab, &hostile, WEBHOOK_SECRET);
    let created = ev.created();
    assert_eq!(created.len(), 1, "{:?}", ev.verdicts);
    let params = created[0]["spec"]["params"].to_string();
    assert!(
        !params.contains(&foreign_host) && !params.contains("kube-system"),
        "{params}"
    );
    let mark = lab.prod.mark();
    let r = lab.run(&created[0], vec![]);
    assert!(!r.succeeded);
    let step = &r.task_runs[0].1.steps[0];
    assert_eq!(step.code, Some(1), "{step}");
    assert!(
        step.stderr.contains("\"other-team\" is not allowed")
            && step.stderr.contains("/etc/ferry/promotion.yaml"),
        "{step}"
    );
    assert_eq!(lab.prod_writes(mark), 0);

    // A malformed tag: refused by ferry promote's grammar.
    let bad_tag =
        serde_json::to_vec(&json!({"IMAGE_NAME": "app", "GIT_COMMIT": "../../etc"})).unwrap();
    let ev = post_signed(&lab, &bad_tag, WEBHOOK_SECRET);
    let r = lab.run(&ev.created()[0], vec![]);
    assert!(!r.succeeded);
    assert!(
        r.task_runs[0].1.steps[0].stderr.contains("GIT_COMMIT"),
        "{r:#?}"
    );
    assert!(
        foreign.accept().is_err(),
        "something connected to the foreign host"
    );
    assert_eq!(
        lab.prod.manifest_digest(&format!("{PROD}/app"), COMMIT),
        None
    );
}

/// POST `body` to the EventListener, signed as GitHub signs (the test's own HMAC).
fn post_signed(lab: &Lab, body: &[u8], secret: &str) -> crate::support::eventlistener::Event {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let url = lab.el.url();
    let body = body.to_vec();
    let before = lab.el.events().len();
    crate::support::runtime().block_on(async move {
        crate::support::crypto_provider();
        let ca = reqwest::Certificate::from_pem(pki::lab_ca().ca_pem.as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .user_agent(crate::support::LAB_USER_AGENT)
            .no_proxy()
            .tls_certs_only([ca])
            .build()
            .unwrap();
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
    });
    let events = lab.el.events();
    assert_eq!(events.len(), before + 1);
    events.last().unwrap().clone()
}

/// The Task takes nothing from its params but the three inputs, and those only as data: the
/// promotion config and the token Secret are mounted under fixed names, the script has no
/// param in its text; Tekton refuses a TaskRun that sets anything else.
#[test]
fn tekton_the_task_takes_only_the_image_from_its_params() {
    let t = process("tekton/ferry-promote-task.yaml", &[]);
    let task = object(&t, "Task");
    let spec = &task["spec"];
    let params: Vec<&str> = spec["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["IMAGE_NAME", "GIT_COMMIT", "NON_PROD_PROJECT_NAME"]
    );
    let volumes = spec["volumes"].to_string();
    assert!(
        !volumes.contains("$("),
        "a volume chosen by a param: {volumes}"
    );
    let step = &spec["steps"][0];
    let script = step["script"].as_str().unwrap();
    assert!(
        !script.contains("$(params"),
        "params in the script's text: {script}"
    );
    let mounts: BTreeMap<&str, &str> = step["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap(),
                m["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(mounts.get("/etc/ferry"), Some(&"promotion-config"));
    assert_eq!(
        mounts.get("/run/secrets/kubernetes.io/non-production-cluster-token"),
        Some(&"non-production-cluster-token")
    );
    for e in step["env"].as_array().unwrap() {
        let v = e["value"].as_str().unwrap();
        if v.contains("$(params.") {
            assert_eq!(
                v,
                format!("$(params.{})", e["name"].as_str().unwrap()),
                "{e}"
            );
        }
    }
    // The Pipeline passes its params through, and nothing else.
    let p = process("tekton/prod-pipeline.yaml", &[]);
    let pipeline = object(&p, "Pipeline");
    let passed: Vec<&str> = pipeline["spec"]["tasks"][0]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(passed, params);
    // A TaskRun setting anything else is refused before a pod starts.
    let cluster = Cluster::default();
    let r = cluster.run_task(&TaskRun {
        name: "tr".into(),
        task,
        params: vec![
            ("IMAGE_NAME".into(), Param::str("app")),
            ("GIT_COMMIT".into(), Param::str("v1")),
            ("PROD_REGISTRY".into(), Param::str("evil.example.com")),
        ],
        workspaces: vec![],
        service_account: "default".into(),
        pipeline_run: None,
    });
    assert!(!r.succeeded && r.steps.is_empty());
    assert!(
        r.reason
            .unwrap()
            .contains("\"PROD_REGISTRY\" is not declared")
    );
    // The promotion config the Tekton path installs is the Jenkins path's, byte for byte.
    let jenkins = process("prod-pipeline.yaml", &[]);
    assert_eq!(
        object(&p, "ConfigMap")["data"],
        object(&jenkins, "ConfigMap")["data"]
    );
}

/// `ferry trigger --event-listener`: what it refuses before sending anything.
#[test]
fn tekton_trigger_event_listener_refusals() {
    let run = |args: &[&str], secret: Option<&str>| {
        let mut t = Sandbox::new().ferry();
        t.arg("trigger").args(args);
        if let Some(s) = secret {
            t.env("FERRY_WEBHOOK_SECRET", s);
        }
        t.run()
    };
    run(
        &["--event-listener", "http://127.0.0.1:9/", "--env", "A=1"],
        Some("s3cret-value"),
    )
    .assert_failure_with(&["clear text"]);
    run(&["--event-listener", "https://127.0.0.1:9/"], None)
        .assert_failure_with(&["missing inputs: the webhook secret"]);
    run(
        &[
            "--event-listener",
            "https://127.0.0.1:9/",
            "--token-file",
            "/dev/null",
        ],
        Some("s3cret-value"),
    )
    .assert_failure_with(&["cannot be used with"]);
    run(
        &[
            "--event-listener",
            "https://127.0.0.1:9/",
            "--env",
            "A=1",
            "--env",
            "A=2",
        ],
        Some("s3cret-value"),
    )
    .assert_failure_with(&["--env A is given twice"]);
}

/// The Tekton YAML of the guides (TaskRuns and PipelineRuns to create by hand) is valid.
#[test]
fn tekton_the_guides_yaml_validates() {
    let mut seen = BTreeMap::new();
    let mut problems = Vec::new();
    for guide in crate::templates::GUIDES {
        let text = read(guide);
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let yaml = block.split("```").next().unwrap();
            let Ok(doc) = serde_yaml::from_str::<Value>(yaml) else {
                continue;
            };
            let api = doc["apiVersion"].as_str().unwrap_or_default();
            if api.contains("tekton.dev") {
                *seen
                    .entry(doc["kind"].as_str().unwrap_or_default().to_string())
                    .or_insert(0) += 1;
                problems.extend(schema_problems(&doc, &format!("{guide} yaml block {i}")));
            }
        }
    }
    assert_none(problems);
    for kind in ["TaskRun", "PipelineRun"] {
        assert!(
            seen.contains_key(kind),
            "the guides show no {kind}: {seen:?}"
        );
    }
}
