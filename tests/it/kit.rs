//! The kit as a security review reads it: the templates (processed as `oc process` would, see
//! `templates.rs`), the Jenkinsfiles, the agent's Dockerfile and the install guide line up —
//! least privilege for every identity, the production side pinning what a promotion may touch,
//! secrets kept off command lines, an image build with no floating reference.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use regex::Regex;
use serde_json::{Value, json};

use crate::oc_process;
use crate::templates::{
    SECRET_PARAMETERS, WEBHOOK_SECRET, declared, default_of, doc_commands, env_names, load, object,
    process, read, samples_for, template_files,
};

/// ferry promote's default non-production token file and certificate folder (the command-line
/// contract): the pod template must mount the non-production Secret exactly there.
const FERRY_SRC_TOKEN_FILE: &str = "/run/secrets/kubernetes.io/non-production-cluster-token/token";
const FERRY_SRC_CERT_DIR: &str = "/run/secrets/kubernetes.io/non-production-cluster-token";
/// Where the pod template mounts ferry's ConfigMap, and the file ferry promote reads there.
const FERRY_CONFIG_DIR: &str = "/etc/ferry";
const PROMOTION_FILE: &str = "promotion.yaml";

/// What the webhook may set: the production BuildConfig's env, and nothing else.
const WEBHOOK_PARAMETERS: [&str; 3] = ["IMAGE_NAME", "NON_PROD_PROJECT_NAME", "GIT_COMMIT"];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn jenkinsfile_agent_label(text: &str) -> String {
    let c = Regex::new(r"agent \{ label '([^']+)' \}")
        .unwrap()
        .captures(text);
    c.map(|c| c[1].to_string()).expect("agent { label '…' }")
}

/// The `container('…')` names a Jenkinsfile runs steps in.
fn jenkinsfile_containers(text: &str) -> BTreeSet<String> {
    Regex::new(r"container\('([^']+)'\)")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

/// The shell scripts of a Jenkinsfile's `sh '…'` and `sh '''…'''` steps, in order.
pub fn jenkinsfile_sh_scripts(text: &str) -> Vec<String> {
    let re = Regex::new(r"(?s)\bsh\s*\(?\s*(?:'''(.*?)'''|'([^'\n]*)')").unwrap();
    re.captures_iter(text)
        .map(|c| c.get(1).or(c.get(2)).unwrap().as_str().to_string())
        .collect()
}

/// `ARG NAME=default` lines of a Dockerfile.
fn dockerfile_args(text: &str) -> BTreeMap<String, String> {
    Regex::new(r"(?m)^ARG (\w+)=(\S+)$")
        .unwrap()
        .captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// The text of the one `<name>` child of `node`.
fn child(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    let found: Vec<_> = node.children().filter(|c| c.has_tag_name(name)).collect();
    assert_eq!(
        found.len(),
        1,
        "<{name}> under <{}>",
        node.tag_name().name()
    );
    found[0].text().unwrap_or("").to_string()
}

fn elements<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}>"))
        .children()
        .filter(|c| c.is_element())
        .collect()
}

fn env_vars(container: roxmltree::Node<'_, '_>) -> BTreeMap<String, String> {
    elements(container, "envVars")
        .into_iter()
        .map(|e| (child(e, "key"), child(e, "value")))
        .collect()
}

fn pod_template_xml(p: &oc_process::Processed) -> String {
    let cm = p
        .objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"].get("role").is_some())
        .expect("the pod template ConfigMap");
    let data = cm["data"].as_object().unwrap();
    assert_eq!(data.len(), 1);
    data.values().next().unwrap().as_str().unwrap().to_string()
}

fn find_by_kind<'a>(p: &'a oc_process::Processed, kind: &str) -> Vec<&'a Value> {
    p.objects.iter().filter(|o| o["kind"] == kind).collect()
}

// ---------------------------------------------------------------------------------------------
// The production side pins what a promotion may touch

#[test]
fn the_production_pipeline_takes_only_the_image_from_the_webhook() {
    let p = process("prod-pipeline.yaml", &[]);
    let bc = object(&p, "BuildConfig");
    let spec = &bc["spec"];
    assert_eq!(spec["strategy"]["type"], "JenkinsPipeline");
    assert_eq!(spec["runPolicy"], "Serial");
    let triggers = spec["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0]["generic"]["allowEnv"], true);

    // The webhook (allowEnv) can override exactly the declared env: the image, the project
    // and the tag. Registries and the production project are not among them.
    assert_eq!(
        sorted(env_names(bc)),
        sorted(strings(&WEBHOOK_PARAMETERS)),
        "jenkinsPipelineStrategy.env must declare exactly what the webhook may set"
    );
    // The default project is the allowed one.
    let env = spec["strategy"]["jenkinsPipelineStrategy"]["env"]
        .as_array()
        .unwrap();
    let project = env
        .iter()
        .find(|e| e["name"] == "NON_PROD_PROJECT_NAME")
        .unwrap();
    assert_eq!(project["value"], "shop-dev");

    let jenkinsfile = read(
        spec["strategy"]["jenkinsPipelineStrategy"]["jenkinsfilePath"]
            .as_str()
            .unwrap(),
    );
    for needle in [
        "skipDefaultCheckout()",
        "GIT_COMMIT = \"${params.GIT_COMMIT}\"",
        "set -- --record promotion.json",
        "ferry promote \"$@\"",
        "archiveArtifacts(artifacts: 'promotion.json'",
    ] {
        assert!(
            jenkinsfile.contains(needle),
            "Jenkinsfile.prod lacks {needle}"
        );
    }
    for gone in [
        "PROD_REGISTRY",
        "PROD_PROJECT_NAME",
        "--prod-registry",
        "--non-prod-registry",
    ] {
        assert!(
            !jenkinsfile.contains(&format!("${gone}"))
                && !jenkinsfile.contains(&format!("'{gone}'")),
            "Jenkinsfile.prod still takes {gone} from the build"
        );
    }
}

#[test]
fn the_promotion_config_map_pins_registries_and_projects() {
    let p = process("prod-pipeline.yaml", &[]);
    let cm = object(&p, "ConfigMap");
    assert_eq!(cm["metadata"]["namespace"], "shop-prod");
    let data = cm["data"].as_object().unwrap();
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from([PROMOTION_FILE, "policy.json"]));

    let promotion: Value =
        serde_yaml::from_str(data[PROMOTION_FILE].as_str().unwrap()).expect("promotion.yaml");
    assert_eq!(
        promotion,
        json!({
            "sourceRegistries": ["default-route-openshift-image-registry.apps.nonprod.example.com"],
            "destinationRegistries": ["image-registry.openshift-image-registry.svc:5000"],
            "sourceProjects": ["shop-dev"],
            "destinationProjects": ["shop-prod"],
        })
    );
    // A registry with a port stays one string (3.11's internal registry).
    let p311 = process(
        "prod-pipeline.yaml",
        &[("PROD_REGISTRY", "docker-registry.default.svc:5000")],
    );
    let promotion: Value = serde_yaml::from_str(
        object(&p311, "ConfigMap")["data"][PROMOTION_FILE]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        promotion["destinationRegistries"],
        json!(["docker-registry.default.svc:5000"])
    );

    // The trust policy: reject by default, accept the allowed non-production project only.
    let policy: Value = serde_json::from_str(data["policy.json"].as_str().unwrap()).unwrap();
    assert_eq!(policy["default"], json!([{"type": "reject"}]));
    let scopes = policy["transports"]["docker"].as_object().unwrap();
    assert_eq!(
        scopes.keys().collect::<Vec<_>>(),
        ["default-route-openshift-image-registry.apps.nonprod.example.com/shop-dev"]
    );

    // ferry itself reads that policy so: another project of the same registry is refused
    // before any request (the host does not resolve: a connection attempt would say so).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(&file, data["policy.json"].as_str().unwrap()).unwrap();
    let run = |source: &str| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("--policy")
            .arg(&file)
            .args([
                "copy",
                "--retry-times",
                "0",
                source,
                "docker://127.0.0.1:9/x:1",
            ])
            .output()
            .unwrap()
    };
    let out = run(
        "docker://default-route-openshift-image-registry.apps.nonprod.example.com/shop-prod/app:1",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is rejected by policy"), "{stderr}");
}

#[test]
fn the_pod_template_mounts_what_ferry_reads_and_runs_as_its_own_account() {
    let t = load("agent.yaml");
    let p = process("agent.yaml", &[]);
    let xml = pod_template_xml(&p);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("pod template XML: {e}"));
    let root = doc.root_element();
    assert_eq!(
        root.tag_name().name(),
        "org.csanchez.jenkins.plugins.kubernetes.PodTemplate"
    );
    let cm = p.objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    assert_eq!(cm["metadata"]["labels"]["role"], "jenkins-slave");

    // The label the Jenkinsfiles ask for.
    let label = child(root, "label");
    assert_eq!(label, default_of(&t, "AGENT_LABEL"));
    for jenkinsfile in ["Jenkinsfile.nonprod", "Jenkinsfile.prod"] {
        assert_eq!(
            jenkinsfile_agent_label(&read(jenkinsfile)),
            label,
            "{jenkinsfile}'s agent label"
        );
    }

    // Its own ServiceAccount, created here; never the Jenkins controller's.
    let sa = object(&p, "ServiceAccount");
    assert_eq!(child(root, "serviceAccount"), sa["metadata"]["name"]);
    assert_ne!(child(root, "serviceAccount"), "jenkins");

    // The volumes: the non-production token where ferry promote reads it, ferry's ConfigMap
    // at /etc/ferry (optional: non-production has none).
    let volumes = elements(root, "volumes");
    // (and the optional trust policy and signing key: kit_signing.rs)
    assert_eq!(volumes.len(), 4);
    let secret = volumes
        .iter()
        .find(|v| v.has_tag_name("org.csanchez.jenkins.plugins.kubernetes.volumes.SecretVolume"))
        .unwrap();
    let mount = child(*secret, "mountPath");
    assert_eq!(
        mount, FERRY_SRC_CERT_DIR,
        "ferry promote's default --src-cert-dir"
    );
    assert_eq!(format!("{mount}/token"), FERRY_SRC_TOKEN_FILE);
    let token = process("prod-nonprod-token-secret.yaml", &[]);
    let token_secret = object(&token, "Secret");
    assert_eq!(
        child(*secret, "secretName"),
        token_secret["metadata"]["name"]
    );
    let keys: BTreeSet<&str> = token_secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["token", "ca.crt"]));

    let config = volumes
        .iter()
        .find(|v| v.has_tag_name("org.csanchez.jenkins.plugins.kubernetes.volumes.ConfigMapVolume"))
        .unwrap();
    assert_eq!(child(*config, "mountPath"), FERRY_CONFIG_DIR);
    assert_eq!(child(*config, "optional"), "true");
    let pipeline = process("prod-pipeline.yaml", &[]);
    let promotion_cm = object(&pipeline, "ConfigMap");
    assert_eq!(
        child(*config, "configMapName"),
        promotion_cm["metadata"]["name"]
    );
    assert_eq!(
        promotion_cm["metadata"]["namespace"],
        cm["metadata"]["namespace"]
    );

    // Two containers: jnlp (the Jenkins agent) and ferry, the one the Jenkinsfiles use.
    let containers = elements(root, "containers");
    let names: Vec<String> = containers.iter().map(|c| child(*c, "name")).collect();
    assert_eq!(names, ["jnlp", "ferry"]);
    for jenkinsfile in ["Jenkinsfile.nonprod", "Jenkinsfile.prod"] {
        assert_eq!(
            jenkinsfile_containers(&read(jenkinsfile)),
            BTreeSet::from(["ferry".to_string()]),
            "{jenkinsfile} runs ferry in the ferry container"
        );
    }
    let (jnlp, ferry) = (containers[0], containers[1]);
    assert_eq!(
        child(jnlp, "image"),
        "image-registry.openshift-image-registry.svc:5000/openshift/jenkins-agent-base:latest"
    );
    assert_eq!(child(jnlp, "args"), "${computer.jnlpmac} ${computer.name}");
    let is = object(&p, "ImageStream");
    let bc = object(&p, "BuildConfig");
    let output = bc["spec"]["output"]["to"]["name"].as_str().unwrap();
    assert_eq!(
        output,
        format!("{}:latest", is["metadata"]["name"].as_str().unwrap())
    );
    assert_eq!(
        child(ferry, "image"),
        format!("image-registry.openshift-image-registry.svc:5000/shop-prod/{output}")
    );
    // A sidecar stays up for `container('ferry') { sh … }`.
    assert_eq!(child(ferry, "command"), "cat");
    assert_eq!(child(ferry, "ttyEnabled"), "true");
    assert_eq!(
        child(jnlp, "workingDir"),
        child(ferry, "workingDir"),
        "promotion.json must be where archiveArtifacts looks"
    );
    // The one-image layout is a parameter away.
    let one = process(
        "agent.yaml",
        &[(
            "JNLP_IMAGE",
            "image-registry.openshift-image-registry.svc:5000/shop-prod/ferry-agent:latest",
        )],
    );
    let one_xml = pod_template_xml(&one);
    let one_doc = roxmltree::Document::parse(&one_xml).unwrap();
    let one_containers = elements(one_doc.root_element(), "containers");
    assert_eq!(
        child(one_containers[0], "image"),
        child(one_containers[1], "image")
    );

    // The trust policy comes from the cluster (the ConfigMap), not from the image.
    let ferry_env = env_vars(ferry);
    assert_eq!(
        ferry_env["CONTAINERS_POLICY_JSON"],
        format!("{FERRY_CONFIG_DIR}/policy.json")
    );
    assert!(promotion_cm["data"].get("policy.json").is_some());

    for (element_name, parameter) in [
        ("resourceRequestCpu", "CPU_REQUEST"),
        ("resourceRequestMemory", "MEMORY_REQUEST"),
        ("resourceLimitCpu", "CPU_LIMIT"),
        ("resourceLimitMemory", "MEMORY_LIMIT"),
    ] {
        assert_eq!(child(jnlp, element_name), p.values[parameter]);
    }
    assert_eq!(
        child(ferry, "resourceLimitMemory"),
        p.values["FERRY_MEMORY_LIMIT"]
    );

    // Proxies: both spellings for the jnlp container, the JVM's non-proxy list beside them.
    let env = env_vars(jnlp);
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] {
        assert_eq!(env[name], p.values[name], "{name}");
        assert_eq!(env[&name.to_lowercase()], p.values[name]);
        assert_eq!(ferry_env[name], p.values[name], "ferry container {name}");
    }
    assert_eq!(env["HTTPS_PROXY"], "http://proxy.example.com:3128");
    assert_eq!(
        env["JAVA_TOOL_OPTIONS"],
        format!("-Dhttp.nonProxyHosts={}", p.values["JVM_NON_PROXY_HOSTS"])
    );

    // The newer label value is a parameter away.
    let newer = process("agent.yaml", &[("POD_TEMPLATE_ROLE", "jenkins-agent")]);
    assert_eq!(
        object(&newer, "ConfigMap")["metadata"]["labels"]["role"],
        "jenkins-agent"
    );
}

#[test]
fn no_proxy_covers_the_cluster_and_the_jvm_list_matches_it() {
    let t = load("agent.yaml");
    let no_proxy: Vec<&str> = default_of(&t, "NO_PROXY").split(',').collect();
    for needed in [
        ".svc",
        ".cluster.local",
        "172.30.0.0/16",
        "172.30.0.1",
        "kubernetes.default",
        "kubernetes.default.svc",
    ] {
        assert!(no_proxy.contains(&needed), "NO_PROXY lacks {needed}");
    }
    // Each NO_PROXY entry in the JVM's syntax: `.d` is `*.d`, a CIDR block its wildcard.
    let jvm: BTreeSet<String> = default_of(&t, "JVM_NON_PROXY_HOSTS")
        .split('|')
        .map(str::to_string)
        .collect();
    let expected: BTreeSet<String> = no_proxy
        .iter()
        .filter(|e| **e != "172.30.0.1") // inside 172.30.*
        .map(|e| match *e {
            "172.30.0.0/16" => "172.30.*".to_string(),
            e if e.starts_with('.') => format!("*{e}"),
            e => e.to_string(),
        })
        .collect();
    assert_eq!(jvm, expected);
}

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

// ---------------------------------------------------------------------------------------------
// The install guide

#[test]
fn the_install_guide_keeps_secrets_off_command_lines_and_away_from_the_api() {
    let commands = doc_commands();
    assert!(!commands.is_empty());
    for c in &commands {
        assert!(
            c.local,
            "without --local the template goes to the API server: {}",
            c.line
        );
        for (name, _) in &c.params {
            assert!(
                !SECRET_PARAMETERS.contains(&name.as_str()),
                "{name} given with -p: {}",
                c.line
            );
        }
        for name in &c.from_param_file {
            assert!(SECRET_PARAMETERS.contains(&name.as_str()), "{}", c.line);
        }
    }
    // Every secret parameter of every template the guide applies comes from a file.
    for c in &commands {
        let t = load(&c.file);
        for p in declared(&t) {
            let name = p["name"].as_str().unwrap();
            if SECRET_PARAMETERS.contains(&name) {
                assert!(
                    c.from_param_file.iter().any(|n| n == name),
                    "{}: {name} not from --param-file",
                    c.file
                );
            }
        }
    }
    let guide = read("docs/openshift.md");
    assert!(!guide.contains("export WEBHOOK_SECRET") && !guide.contains("export NON_PROD_TOKEN"));
    // The usage comments at the top of each template say the same.
    for path in template_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let joined = text.replace("\\\n#", " ");
        for line in joined.lines().filter(|l| l.contains("oc process ")) {
            let line = line.trim_start_matches('#').trim();
            if !line.starts_with("oc process ") {
                continue;
            }
            assert!(line.contains("--local"), "{}: {line}", path.display());
            for secret in SECRET_PARAMETERS {
                assert!(
                    !line.contains(&format!("-p {secret}=")),
                    "{}: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_install_guide_waits_for_the_token_controller() {
    let guide = read("docs/openshift.md");
    // Token Secrets are read by read_token only, which retries until `token` is filled in.
    let function = Regex::new(r"(?s)read_token\(\) \{.*?\n\}").unwrap();
    let body = function
        .find(&guide)
        .expect("read_token() in the guide")
        .as_str();
    assert!(
        body.contains("[ -s \"$3\" ] && return 0") && body.contains("sleep"),
        "{body}"
    );
    let rest = guide.replace(body, "");
    assert!(
        !rest.contains("{.data.token}"),
        "a token read outside read_token (before the token controller filled it in)"
    );
    // Each token Secret a template creates is read after the command that applies it.
    for (file, secret) in [
        (
            "nonprod-image-puller.yaml",
            "across-project-image-puller-token",
        ),
        (
            "prod-webhook-caller.yaml",
            "production-pipeline-webhook-caller-token",
        ),
    ] {
        let p = process(file, &[]);
        let s = find_by_kind(&p, "Secret")
            .into_iter()
            .find(|s| s["type"] == "kubernetes.io/service-account-token")
            .unwrap();
        assert_eq!(s["metadata"]["name"], secret);
        let applied = rest.find(&format!("templates/{file}")).unwrap();
        let read_at = rest.find(&format!("read_token {secret} ")).unwrap();
        assert!(applied < read_at, "{secret} read before it is created");
    }
}

#[test]
fn every_build_config_that_clones_the_kit_has_a_source_secret() {
    for file in ["agent.yaml", "prod-pipeline.yaml"] {
        let p = process(file, &[]);
        let bc = object(&p, "BuildConfig");
        assert_eq!(
            bc["spec"]["source"]["sourceSecret"]["name"], "ferry-kit-git",
            "{file}"
        );
        let t = load(file);
        let param = declared(&t)
            .into_iter()
            .find(|p| p["name"] == "SOURCE_SECRET")
            .unwrap();
        assert_eq!(param["required"], true);
    }
}

// ---------------------------------------------------------------------------------------------
// The Jenkinsfiles

#[test]
fn the_jenkinsfiles_declare_no_parameters_so_the_build_config_defaults_stand() {
    let parameters_block = Regex::new(r"(?m)^\s*parameters\s*\{").unwrap();
    let param = Regex::new(r"params\.(\w+)").unwrap();
    let var = Regex::new(r"\$\{?([A-Z][A-Z0-9_]*)").unwrap();
    let env_ref = Regex::new(r"env\.([A-Z][A-Z0-9_]*)").unwrap();
    for (jenkinsfile, template) in [
        ("Jenkinsfile.nonprod", "nonprod-pipeline.yaml"),
        ("Jenkinsfile.prod", "prod-pipeline.yaml"),
        ("Jenkinsfile.mirror", "mirror-pipeline.yaml"),
    ] {
        let text = read(jenkinsfile);
        // The sync plugin makes the BuildConfig's env the job's parameters, defaults
        // included; a `parameters` block would replace them with its own at the first run.
        assert!(
            !parameters_block.is_match(&text),
            "{jenkinsfile} declares parameters"
        );
        let p = process(template, &[]);
        let env: BTreeSet<String> = env_names(object(&p, "BuildConfig")).into_iter().collect();
        // Every parameter the Jenkinsfile reads is one the BuildConfig declares: `params.X`,
        // and every upper-case variable of its shell steps but the ones Jenkins sets itself.
        let mut used: BTreeSet<String> = param
            .captures_iter(&text)
            .map(|c| c[1].to_string())
            .collect();
        for script in jenkinsfile_sh_scripts(&text) {
            used.extend(var.captures_iter(&script).map(|c| c[1].to_string()));
        }
        used.remove("FERRY_WEBHOOK_SECRET"); // withCredentials
        if jenkinsfile == "Jenkinsfile.nonprod" {
            used.remove("GIT_COMMIT"); // the checkout of the application's repository
        }
        if jenkinsfile == "Jenkinsfile.mirror" {
            // Set by the Jenkinsfile itself for each branch (withEnv), and by withCredentials.
            for own in ["FERRY_SHARD", "FERRY_REPORT", "REGISTRY_AUTH_FILE"] {
                used.remove(own);
            }
            // env.X of the Groovy code is a parameter too.
            used.extend(env_ref.captures_iter(&text).map(|c| c[1].to_string()));
        }
        let missing: Vec<&String> = used.difference(&env).collect();
        assert!(
            missing.is_empty(),
            "{jenkinsfile} reads undeclared {missing:?}"
        );
    }
}

#[test]
fn the_nonprod_pipeline_sends_only_the_image_to_ferry_trigger() {
    let jenkinsfile = read("Jenkinsfile.nonprod");
    let scripts = jenkinsfile_sh_scripts(&jenkinsfile);
    let trigger = scripts
        .iter()
        .find(|s| s.contains("ferry trigger"))
        .expect("a ferry trigger step");
    let sent: Vec<String> = Regex::new(r#"--env (\w+)="\$(\w+)""#)
        .unwrap()
        .captures_iter(trigger)
        .map(|c| {
            assert_eq!(c[1], c[2]);
            c[1].to_string()
        })
        .collect();
    assert_eq!(sorted(sent), sorted(strings(&WEBHOOK_PARAMETERS)));
    assert!(jenkinsfile.contains("variable: 'FERRY_WEBHOOK_SECRET'"));
    assert!(
        !jenkinsfile.contains("--secret"),
        "the webhook secret must not be a flag value"
    );
    assert!(
        !jenkinsfile.contains("$FERRY_WEBHOOK_SECRET"),
        "the webhook secret must stay in the environment, never expanded into a command line"
    );
    // The webhook secret both sides share.
    let nonprod = process("nonprod-webhook-secret.yaml", &[]);
    let jenkins = object(&nonprod, "Secret");
    let credential_id = &jenkins["metadata"]["annotations"]["jenkins.openshift.io/secret.name"];
    let pipeline = process("nonprod-pipeline.yaml", &[]);
    let env =
        &object(&pipeline, "BuildConfig")["spec"]["strategy"]["jenkinsPipelineStrategy"]["env"];
    let id = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "WEBHOOK_CREDENTIAL_ID")
        .unwrap();
    assert_eq!(&id["value"], credential_id);
}

#[test]
fn the_nonprod_pipeline_tags_the_digest_its_build_produced() {
    let scripts = jenkinsfile_sh_scripts(&read("Jenkinsfile.nonprod"));
    let build = scripts
        .iter()
        .find(|s| s.contains("oc start-build"))
        .expect("a build step");
    assert!(build.contains("{.status.output.to.imageDigest}"), "{build}");
    assert!(
        build.contains(r#"oc tag "$NON_PROD_PROJECT_NAME/$IMAGE_NAME@$digest""#),
        "{build}"
    );
    assert!(
        !build.contains(":latest"),
        "tags whatever latest names: {build}"
    );
    // (tests/it/e2e.rs runs this step against a registry where `latest` moves meanwhile.)
}

#[test]
fn the_webhook_secret_is_one_parameter_shared_by_both_clusters() {
    for file in ["nonprod-webhook-secret.yaml", "prod-webhook-secret.yaml"] {
        let t = load(file);
        let p = declared(&t)
            .into_iter()
            .find(|p| p["name"] == "WEBHOOK_SECRET")
            .expect(file);
        assert_eq!(p["required"], true, "{file}");
        assert!(
            p.get("generate").is_none() && p.get("value").is_none(),
            "{file}: {p}"
        );
    }
    let nonprod = process("nonprod-webhook-secret.yaml", &[]);
    let jenkins = object(&nonprod, "Secret");
    assert_eq!(jenkins["stringData"]["secrettext"], WEBHOOK_SECRET);
    assert_eq!(
        jenkins["metadata"]["labels"]["credential.sync.jenkins.openshift.io"],
        "true"
    );
    let prod = process("prod-webhook-secret.yaml", &[]);
    let webhook = object(&prod, "Secret");
    assert_eq!(webhook["stringData"]["WebHookSecretKey"], WEBHOOK_SECRET);
    assert_eq!(webhook["stringData"].as_object().unwrap().len(), 1);
    let pipeline = process("prod-pipeline.yaml", &[]);
    let trigger = &object(&pipeline, "BuildConfig")["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "Generic");
    assert_eq!(
        trigger["generic"]["secretReference"]["name"],
        webhook["metadata"]["name"]
    );
}

#[test]
fn the_jenkinsfiles_keep_secrets_out_of_groovy_strings() {
    let double_quoted_sh = Regex::new(r#"\bsh\s*\(?\s*""#).unwrap();
    let interpolation = Regex::new(r#""[^"\n]*\$\{[^"\n]*""#).unwrap();
    // The only Groovy strings with interpolation: the tag parameter, and the mirror's shard
    // numbers and file names (no secret is ever in a Groovy variable).
    let allowed = [
        "\"${params.GIT_COMMIT}\"",
        "\"${i}/${shards}\"",
        "\"mirror-report-${i}-of-${shards}.json\"",
        "\"shard ${shard}\"",
        "\"FERRY_SHARD=${shard}\"",
        "\"FERRY_REPORT=${report}\"",
    ];
    for file in [
        "Jenkinsfile.nonprod",
        "Jenkinsfile.prod",
        "Jenkinsfile.mirror",
    ] {
        let text = read(file);
        assert!(
            !double_quoted_sh.is_match(&text),
            "{file}: double-quoted sh step"
        );
        for gstring in interpolation.find_iter(&text) {
            assert!(
                allowed.contains(&gstring.as_str()),
                "{file}: Groovy interpolation {}",
                gstring.as_str()
            );
        }
        assert!(!text.contains("set -x"), "{file}: set -x would echo values");
    }
}

#[test]
fn the_nonprod_image_puller_has_a_long_lived_token_secret() {
    let p = process("nonprod-image-puller.yaml", &[]);
    let sa = object(&p, "ServiceAccount");
    let name = sa["metadata"]["name"].as_str().unwrap();
    let rb = object(&p, "RoleBinding");
    assert_eq!(rb["roleRef"]["name"], "system:image-puller");
    assert_eq!(rb["subjects"][0]["name"], name);
    assert_eq!(rb["subjects"][0]["namespace"], "shop-dev");
    let secret = object(&p, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        name
    );
    // The ServiceAccount comes first: the token controller deletes a token Secret whose
    // ServiceAccount does not exist.
    let kinds: Vec<&str> = p
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ServiceAccount", "RoleBinding", "Secret"]);
}

// ---------------------------------------------------------------------------------------------
// The image build: no floating reference, the image's own labels

#[test]
fn the_agent_image_build_pins_its_inputs_and_follows_its_base() {
    let dockerfile = read("agent/Dockerfile");
    let args = dockerfile_args(&dockerfile);
    let p = process("agent.yaml", &[]);
    let bc = object(&p, "BuildConfig");
    let strategy = &bc["spec"]["strategy"]["dockerStrategy"];
    assert_eq!(strategy["dockerfilePath"], "agent/Dockerfile");
    assert!(
        bc["spec"]["source"].get("contextDir").is_none(),
        "the Dockerfile needs the repository root"
    );

    // The Rust image by digest, the same in the Dockerfile and the template.
    let digest = Regex::new(r"@sha256:[0-9a-f]{64}$").unwrap();
    assert!(
        digest.is_match(&args["RUST_IMAGE"]),
        "{}",
        args["RUST_IMAGE"]
    );
    let build_args: BTreeMap<String, String> = strategy["buildArgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(build_args["RUST_IMAGE"], args["RUST_IMAGE"]);
    assert_eq!(build_args["SOURCE_URL"], p.values["GIT_URI"]);
    for name in build_args.keys() {
        assert!(
            args.contains_key(name),
            "build argument {name} is no ARG of the Dockerfile"
        );
    }
    // The runtime base: a tagged version, never latest, in the Dockerfile; in OpenShift the
    // Samples operator's ImageStreamTag, whose changes rebuild the image.
    let base = &args["BASE_IMAGE"];
    assert!(
        Regex::new(r":v?\d+\.\d+(\.\d+)?$").unwrap().is_match(base),
        "BASE_IMAGE {base} is not a tagged version"
    );
    assert_eq!(
        strategy["from"],
        json!({"kind": "ImageStreamTag", "namespace": "openshift", "name": "jenkins-agent-base:latest"})
    );
    let triggers = bc["spec"]["triggers"].as_array().unwrap();
    assert!(
        triggers
            .iter()
            .any(|t| t["type"] == "ImageChange" && t["imageChange"] == json!({}))
    );
    // The version label is Cargo.toml's.
    assert_eq!(args["FERRY_VERSION"], env!("CARGO_PKG_VERSION"));
    // The prebuilt path and the in-image build, offline when vendored crates are there.
    assert_eq!(args["FERRY_FROM"], "build");
    assert!(dockerfile.contains("cargo build --release --locked --offline"));
    assert!(dockerfile.contains("FROM ${FERRY_FROM} AS ferry"));
    let ignore = read(".dockerignore");
    for allowed in ["!vendor/", "!.cargo/", "!src/", "!agent/", "!Cargo.lock"] {
        assert!(
            ignore.lines().any(|l| l == allowed),
            ".dockerignore lacks {allowed}"
        );
    }
    // No trust policy written into the image.
    assert!(!dockerfile.contains("insecureAcceptAnything"));
    assert!(!dockerfile.contains("> /etc/containers/policy.json"));
}

#[test]
fn ferry_promote_defaults_match_the_pod_template() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["promote", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for path in [
        FERRY_SRC_TOKEN_FILE,
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        assert!(
            help.contains(path),
            "`ferry promote --help` does not show the default {path}"
        );
    }
}
