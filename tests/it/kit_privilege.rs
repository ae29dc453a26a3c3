//! The kit's least privilege, as a security review reads it: every RoleBinding of every
//! template grants only what its step needs; webhook calls are authenticated by default, and
//! an unauthenticated binding stays inside the production project (see `kit.rs`).

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::{Value, json};

use crate::kit::*;
use crate::oc_process;
use crate::templates::{doc_commands, load, object, process, read, samples_for, template_files};

// ---------------------------------------------------------------------------------------------
// Least privilege

/// Every RoleBinding of every template, processed: (file, binding).
fn all_bindings() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let tekton = crate::templates::tekton_template_files()
        .into_iter()
        .map(|f| crate::templates::repo().join("templates").join(f));
    for path in template_files().into_iter().chain(tekton) {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let t = oc_process::load(&path).unwrap();
        let p = oc_process::process(&t, &samples_for(&t, &[])).unwrap();
        for o in p.objects {
            if o["kind"] == "RoleBinding" {
                out.push((file.clone(), o));
            }
        }
    }
    out
}

#[test]
fn every_identity_gets_only_what_its_step_needs() {
    let bindings = all_bindings();
    for (file, b) in &bindings {
        for s in b["subjects"].as_array().unwrap() {
            assert_ne!(
                s["name"], "jenkins",
                "{file}: a right for the Jenkins controller's account"
            );
        }
        let role = b["roleRef"]["name"].as_str().unwrap();
        assert!(
            !["edit", "admin", "cluster-admin", "system:image-pusher"].contains(&role),
            "{file}: {role} is more than a step needs"
        );
    }
    let by_subject = |name: &str| -> Vec<(String, String, String)> {
        bindings
            .iter()
            .filter(|(_, b)| b["subjects"][0]["name"] == name)
            .map(|(f, b)| {
                (
                    f.clone(),
                    b["roleRef"]["name"].as_str().unwrap().to_string(),
                    b["metadata"]["namespace"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };

    // The agent's account: in production, pushing to the production project's image streams,
    // nothing else.
    let agent = process("agent.yaml", &[]);
    let sa = object(&agent, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let prod = process("prod-pipeline.yaml", &[]);
    assert_eq!(
        object(&prod, "RoleBinding")["subjects"][0]["name"],
        sa.as_str()
    );
    let rights = by_subject(&sa);
    assert!(
        rights.contains(&(
            "prod-pipeline.yaml".into(),
            "system:image-builder".into(),
            "shop-prod".into()
        )),
        "{rights:?}"
    );
    assert_eq!(
        rights.iter().filter(|(_, _, ns)| ns == "shop-prod").count(),
        1,
        "{rights:?}"
    );

    // In non-production: start the application's build, read builds and logs, tag images.
    let nonprod = process("nonprod-pipeline.yaml", &[]);
    let role = object(&nonprod, "Role");
    let rb = object(&nonprod, "RoleBinding");
    assert_eq!(rb["subjects"][0]["name"], sa.as_str());
    assert_eq!(rb["roleRef"]["kind"], "Role");
    assert_eq!(rb["roleRef"]["name"], role["metadata"]["name"]);
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for resource in rule["resources"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                let verb = verb.as_str().unwrap();
                assert!(
                    ![
                        "*",
                        "delete",
                        "deletecollection",
                        "escalate",
                        "bind",
                        "impersonate"
                    ]
                    .contains(&verb),
                    "{verb} on {resource}"
                );
                assert!(
                    !["*", "secrets", "pods", "pods/exec", "rolebindings", "roles"]
                        .contains(&resource),
                    "{verb} on {resource}"
                );
                granted.insert(format!("{verb} {resource}"));
            }
        }
        if rule["resources"][0] == "buildconfigs/instantiate" {
            assert_eq!(
                rule["resourceNames"],
                json!(["shop"]),
                "only the application's build"
            );
        }
    }
    for needed in [
        "create buildconfigs/instantiate",
        "get builds",
        "watch builds",
        "get builds/log",
        "get imagestreams",
        "create imagestreamtags",
        "update imagestreamtags",
    ] {
        assert!(
            granted.contains(needed),
            "the agent cannot {needed}: {granted:?}"
        );
    }

    // The webhook caller: create on one BuildConfig's webhooks, nothing else.
    let caller = process("prod-webhook-caller.yaml", &[]);
    let role = object(&caller, "Role");
    assert_eq!(
        role["rules"],
        json!([{
            "apiGroups": ["build.openshift.io"],
            "resources": ["buildconfigs/webhooks"],
            "resourceNames": ["production-pipeline"],
            "verbs": ["create"],
        }])
    );
    assert_eq!(
        object(&prod, "BuildConfig")["metadata"]["name"],
        "production-pipeline"
    );
    let secret = object(&caller, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    let kinds: Vec<&str> = caller
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "Secret"]);

    // OpenShift Pipelines: the promotion's TaskRuns push, nothing else; the EventListener
    // creates PipelineRuns (OpenShift Pipelines' own role for it), nothing else.
    let tekton = process("tekton/prod-pipeline.yaml", &[]);
    let pusher = object(&tekton, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .unwrap();
    assert_eq!(
        by_subject(pusher),
        [(
            "prod-pipeline.yaml".to_string(),
            "system:image-builder".to_string(),
            "shop-prod".to_string()
        )]
    );
    let triggers = process("tekton/prod-triggers.yaml", &[]);
    let listener = object(&triggers, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .unwrap();
    assert_eq!(
        by_subject(listener),
        [(
            "prod-triggers.yaml".to_string(),
            "tekton-triggers-eventlistener-roles".to_string(),
            "shop-prod".to_string()
        )]
    );
    assert_eq!(
        object(&triggers, "EventListener")["spec"]["serviceAccountName"],
        listener
    );
    let template = object(&triggers, "TriggerTemplate");
    assert_eq!(
        template["spec"]["resourcetemplates"][0]["spec"]["taskRunTemplate"]["serviceAccountName"],
        pusher
    );
}

#[test]
fn webhook_calls_are_authenticated_by_default() {
    // Jenkinsfile.nonprod sends the caller's token from the Secret it mounts.
    let command = doc_commands()
        .into_iter()
        .find(|c| {
            c.file == "agent.yaml" && c.params.iter().any(|(k, _)| k == "MOUNTED_SECRET_NAME")
        })
        .expect("docs/openshift.md applies templates/agent.yaml in non-production");
    let p = oc_process::process(&load("agent.yaml"), &command.all_params()).unwrap();
    let xml = pod_template_xml(&p);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let secret_volume = doc
        .descendants()
        .find(|n| n.has_tag_name("org.csanchez.jenkins.plugins.kubernetes.volumes.SecretVolume"))
        .unwrap();
    let mount = child(secret_volume, "mountPath");
    let secret = process("nonprod-prod-api-secret.yaml", &[]);
    let secret = object(&secret, "Secret");
    assert_eq!(
        child(secret_volume, "secretName"),
        secret["metadata"]["name"]
    );
    let keys: BTreeSet<&String> = secret["stringData"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        BTreeSet::from([&"ca.crt".to_string(), &"token".to_string()])
    );

    let jenkinsfile = read("Jenkinsfile.nonprod");
    let flag = |name: &str| {
        Regex::new(&format!(r"--{name} (\S+)"))
            .unwrap()
            .captures(&jenkinsfile)
            .unwrap_or_else(|| panic!("Jenkinsfile.nonprod: no --{name}"))[1]
            .to_string()
    };
    assert_eq!(flag("cert-dir"), mount);
    assert_eq!(flag("token-file"), format!("{mount}/token"));

    // The anonymous binding is an option with its risk beside it, not a default step.
    let t = load("prod-webhook-unauthenticated.yaml");
    let description = t["metadata"]["annotations"]["description"]
        .as_str()
        .unwrap();
    assert!(description.contains("NOT THE DEFAULT") && description.contains("Risk"));
    let guide = read("docs/openshift.md");
    let at = guide
        .find("oc process --local -f templates/prod-webhook-unauthenticated.yaml")
        .unwrap();
    let before = &guide[..at];
    let section = &before[before
        .rfind("**Optional, not the default")
        .expect("marked optional")..];
    assert!(section.contains("The risk:"), "{section}");
}

#[test]
fn the_unauthenticated_webhook_binding_is_scoped_to_the_production_project() {
    let p = process("prod-webhook-unauthenticated.yaml", &[]);
    let rb = object(&p, "RoleBinding");
    assert_eq!(rb["roleRef"]["name"], "system:webhook");
    assert_eq!(rb["subjects"][0]["kind"], "Group");
    assert_eq!(rb["subjects"][0]["name"], "system:unauthenticated");
    assert_eq!(rb["metadata"]["namespace"], "shop-prod");
}
