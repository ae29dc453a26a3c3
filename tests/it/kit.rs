//! The kit as a security review reads it: the templates (processed as `oc process` would, see
//! `templates.rs`), the Jenkinsfiles, the agent's Dockerfile and the install guide line up —
//! least privilege for every identity, the production side pinning what a promotion may touch,
//! secrets kept off command lines, an image build with no floating reference.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use regex::Regex;
use serde_json::{Value, json};

use crate::oc_process;
use crate::templates::{default_of, env_names, load, object, process, read};

/// ferry promote's default non-production token file and certificate folder (the command-line
/// contract): the pod template must mount the non-production Secret exactly there.
pub(crate) const FERRY_SRC_TOKEN_FILE: &str =
    "/run/secrets/kubernetes.io/non-production-cluster-token/token";
pub(crate) const FERRY_SRC_CERT_DIR: &str =
    "/run/secrets/kubernetes.io/non-production-cluster-token";
/// Where the pod template mounts ferry's ConfigMap, and the file ferry promote reads there.
pub(crate) const FERRY_CONFIG_DIR: &str = "/etc/ferry";
pub(crate) const PROMOTION_FILE: &str = "promotion.yaml";

/// What the webhook may set: the production BuildConfig's env, and nothing else.
pub(crate) const WEBHOOK_PARAMETERS: [&str; 3] =
    ["IMAGE_NAME", "NON_PROD_PROJECT_NAME", "GIT_COMMIT"];

pub(crate) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub(crate) fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn jenkinsfile_agent_label(text: &str) -> String {
    let c = Regex::new(r"agent \{ label '([^']+)' \}")
        .unwrap()
        .captures(text);
    c.map(|c| c[1].to_string()).expect("agent { label '…' }")
}

/// The `container('…')` names a Jenkinsfile runs steps in.
pub(crate) fn jenkinsfile_containers(text: &str) -> BTreeSet<String> {
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
pub(crate) fn dockerfile_args(text: &str) -> BTreeMap<String, String> {
    Regex::new(r"(?m)^ARG (\w+)=(\S+)$")
        .unwrap()
        .captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// The text of the one `<name>` child of `node`.
pub(crate) fn child(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    let found: Vec<_> = node.children().filter(|c| c.has_tag_name(name)).collect();
    assert_eq!(
        found.len(),
        1,
        "<{name}> under <{}>",
        node.tag_name().name()
    );
    found[0].text().unwrap_or("").to_string()
}

pub(crate) fn elements<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &str,
) -> Vec<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}>"))
        .children()
        .filter(|c| c.is_element())
        .collect()
}

pub(crate) fn env_vars(container: roxmltree::Node<'_, '_>) -> BTreeMap<String, String> {
    elements(container, "envVars")
        .into_iter()
        .map(|e| (child(e, "key"), child(e, "value")))
        .collect()
}

pub(crate) fn pod_template_xml(p: &oc_process::Processed) -> String {
    let cm = p
        .objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"].get("role").is_some())
        .expect("the pod template ConfigMap");
    let data = cm["data"].as_object().unwrap();
    assert_eq!(data.len(), 1);
    data.values().next().unwrap().as_str().unwrap().to_string()
}

pub(crate) fn find_by_kind<'a>(p: &'a oc_process::Processed, kind: &str) -> Vec<&'a Value> {
    p.objects.iter().filter(|o| o["kind"] == kind).collect()
}

// ---------------------------------------------------------------------------------------------
// The production side pins what a promotion may touch

#[test]
pub(crate) fn the_production_pipeline_takes_only_the_image_from_the_webhook() {
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
pub(crate) fn the_promotion_config_map_pins_registries_and_projects() {
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
pub(crate) fn the_pod_template_mounts_what_ferry_reads_and_runs_as_its_own_account() {
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
pub(crate) fn no_proxy_covers_the_cluster_and_the_jvm_list_matches_it() {
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
