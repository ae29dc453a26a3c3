//! The promotion on OpenShift Pipelines, what it refuses: an event cannot move the pins and an
//! unsigned one starts nothing, the Task takes only the image from its params, and
//! `ferry trigger --event-listener` refuses bad input before sending anything. The lab is in
//! `tekton.rs`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::fixtures::ImageSpec;
use crate::support::tekton::{Cluster, Param, TaskRun};
use crate::support::{Sandbox, pki};
use crate::tekton::*;
use crate::templates::{object, process};

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
pub(crate) fn post_signed(
    lab: &Lab,
    body: &[u8],
    secret: &str,
) -> crate::support::eventlistener::Event {
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
