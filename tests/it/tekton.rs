//! The promotion on OpenShift Pipelines, run for real: `ferry trigger --event-listener` signs an
//! event for the stand-in EventListener (support/eventlistener.rs), which runs it through the
//! GitHub interceptor, the TriggerBinding and the TriggerTemplate of
//! `templates/tekton/prod-triggers.yaml`; the PipelineRun it creates is run as Tekton runs it
//! (support/tekton.rs) — the Pipeline of `templates/tekton/prod-pipeline.yaml`, the Task of
//! `templates/tekton/ferry-promote-task.yaml`, its step's script executed in a pod laid out with
//! the production side's ConfigMap and the non-production token Secret — against the lab's two
//! registries (HTTPS, token auth as OpenShift's). The results Tekton Chains reads are checked
//! against what production holds.
//!
//! This file: the lab, a promotion end to end and the guides' YAML; what the event, the Task
//! and `ferry trigger` refuse is in `tekton_refusals.rs`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::eventlistener::EventListenerServer;
use crate::support::fixtures::ImageSpec;
use crate::support::tekton::{Cluster, PipelineRun, Workspace};
use crate::support::{
    Auth, Grant, Output, Registry, RegistryOptions, RequestKind, Sandbox, Tls, TokenServer,
    TokenServerOptions, pki,
};
use crate::templates::{assert_none, object, process, read, schema_problems};

pub(crate) const NONPROD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.tekton-nonprod-puller.sa-token";
pub(crate) const PROD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.tekton-ferry-pipeline.sa-token";
pub(crate) const WEBHOOK_SECRET: &str = "8c3e1f0a9b7d5c2e4f6a8b0c1d3e5f7a9b1c3d5e";
pub(crate) const DEV: &str = "team-dev";
pub(crate) const PROD: &str = "team-prod";
pub(crate) const COMMIT: &str = "5e8a1f3c7b9d2e4f6a8c0b1d3e5f7a9c2b4d6e8f";
pub(crate) const FERRY_IMAGE: &str = "image-registry.openshift-image-registry.svc:5000/team-prod/ferry-agent@sha256:0b3e5f7a9c2b4d6e8f5e8a1f3c7b9d2e4f6a8c0b1d3e5f7a9c2b4d6e8f5e8a1f";

#[track_caller]
pub(crate) fn assert_no_secrets(out: &Output) {
    for s in [NONPROD_TOKEN, PROD_TOKEN, WEBHOOK_SECRET] {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "secret in output:\n{out}"
        );
    }
}

/// A Secret object's `stringData` as files.
pub(crate) fn secret_files(o: &Value) -> Vec<(String, Vec<u8>)> {
    o["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
        .collect()
}

/// Production, with OpenShift Pipelines: its registry, the non-production one it reads from,
/// the objects of the Tekton templates as installed (processed for the lab), the EventListener.
pub(crate) struct Lab {
    pub(crate) nonprod: Registry,
    pub(crate) prod: Registry,
    pub(crate) cluster: Cluster,
    pub(crate) task: Value,
    pub(crate) pipeline: Value,
    pub(crate) el: EventListenerServer,
    _tokens: (TokenServer, TokenServer),
}

impl Lab {
    pub(crate) fn start() -> Lab {
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
    pub(crate) fn trigger(&self, secret: &str, env: &[String]) -> Output {
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

    pub(crate) fn run(
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

    pub(crate) fn prod_writes(&self, mark: crate::support::Mark) -> usize {
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

pub(crate) fn writable_dir() -> tempfile::TempDir {
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

pub(crate) fn the_three() -> Vec<String> {
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
