//! The OpenShift templates of `templates/`: each is processed as `oc process` would
//! (`oc_process.rs`), then the Template and every object it produces are validated against the
//! OpenShift 4.17 and 3.11 JSON schemas (`tests/schemas/`, draft-04, offline), then checked for
//! what the schemas cannot see: the flow's names line up across templates, Jenkinsfiles, the
//! agent's Dockerfile, ferry's defaults and the install guide (`docs/openshift.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::Validator;
use regex::Regex;
use serde_json::Value;

use crate::oc_process::{self, Processed};

/// ferry promote's default non-production token file and certificate folder (the command-line
/// contract): the pod template must mount the non-production Secret exactly there.
const FERRY_SRC_TOKEN_FILE: &str = "/run/secrets/kubernetes.io/non-production-cluster-token/token";
const FERRY_SRC_CERT_DIR: &str = "/run/secrets/kubernetes.io/non-production-cluster-token";

/// The six inputs of `ferry promote`, as build parameters of the production pipeline.
const PROMOTE_PARAMETERS: [&str; 6] = [
    "IMAGE_NAME",
    "NON_PROD_REGISTRY",
    "PROD_REGISTRY",
    "NON_PROD_PROJECT_NAME",
    "PROD_PROJECT_NAME",
    "GIT_COMMIT",
];

/// Parameters whose values are secrets.
const SECRET_PARAMETERS: [&str; 2] = ["WEBHOOK_SECRET", "NON_PROD_TOKEN"];

const WEBHOOK_SECRET: &str = "5f2b0c8e4d6a1f3b9c7e2d4a6b8c0e1f3a5b7c9d";

/// Sample `-p` values: each template gets those of its parameters that appear here.
const SAMPLES: &[(&str, &str)] = &[
    ("NON_PROD_PROJECT_NAME", "shop-dev"),
    ("PROD_PROJECT_NAME", "shop-prod"),
    ("PROJECT_NAME", "shop-prod"),
    ("WEBHOOK_SECRET", WEBHOOK_SECRET),
    (
        "NON_PROD_TOKEN",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl",
    ),
    (
        "NON_PROD_REGISTRY_CA",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ==\n-----END CERTIFICATE-----",
    ),
    ("GIT_URI", "https://git.example.com/platform/ferry.git"),
    ("IMAGE_NAME", "shop"),
    (
        "NON_PROD_REGISTRY",
        "default-route-openshift-image-registry.apps.nonprod.example.com",
    ),
    ("PROD_API_URL", "https://api.prod.example.com:6443"),
    ("HTTP_PROXY", "http://proxy.example.com:3128"),
    ("HTTPS_PROXY", "http://proxy.example.com:3128"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn template_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("templates"))
        .expect("templates/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no templates in templates/");
    files
}

fn load(name: &str) -> Value {
    oc_process::load(&repo().join("templates").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn declared(template: &Value) -> Vec<&Value> {
    template["parameters"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn default_of<'a>(template: &'a Value, name: &str) -> &'a str {
    declared(template)
        .into_iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("no default for {name}"))
}

/// The sample values for the parameters `template` declares, plus `extra`.
fn samples_for<'a>(template: &Value, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let names: BTreeSet<&str> = declared(template)
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut params: Vec<(&str, &str)> = SAMPLES
        .iter()
        .copied()
        .filter(|(n, _)| names.contains(n))
        .collect();
    params.retain(|(n, _)| !extra.iter().any(|(e, _)| e == n));
    params.extend_from_slice(extra);
    params
}

fn process(name: &str, extra: &[(&str, &str)]) -> Processed {
    let t = load(name);
    oc_process::process(&t, &samples_for(&t, extra)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn object<'a>(p: &'a Processed, kind: &str) -> &'a Value {
    let found: Vec<&Value> = p.objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found[0]
}

// ---------------------------------------------------------------------------------------------
// Schemas

struct SchemaSet {
    name: &'static str,
    validators: Vec<Validator>,
    /// (apiVersion, kind) -> index in `validators`, from each schema's
    /// x-kubernetes-group-version-kind (a schema may serve `v1` and its groupified version).
    by_gvk: BTreeMap<(String, String), usize>,
    kinds: BTreeSet<String>,
}

fn schema_sets() -> &'static [SchemaSet] {
    static SETS: OnceLock<Vec<SchemaSet>> = OnceLock::new();
    SETS.get_or_init(|| {
        ["openshift-4.17", "openshift-3.11"]
            .into_iter()
            .map(|name| {
                let dir = repo().join("tests/schemas").join(name);
                let mut set = SchemaSet {
                    name,
                    validators: Vec::new(),
                    by_gvk: BTreeMap::new(),
                    kinds: BTreeSet::new(),
                };
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                    .map(|e| e.unwrap().path())
                    .filter(|f| f.extension().is_some_and(|e| e == "json"))
                    .collect();
                files.sort();
                for file in files {
                    let schema: Value =
                        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
                    // Draft-04 whatever `$schema` says; the schemas are standalone (no $ref out).
                    let validator = jsonschema::draft4::options()
                        .build(&schema)
                        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                    set.validators.push(validator);
                    let index = set.validators.len() - 1;
                    for gvk in schema["x-kubernetes-group-version-kind"]
                        .as_array()
                        .unwrap()
                    {
                        let group = gvk["group"].as_str().unwrap();
                        let version = gvk["version"].as_str().unwrap();
                        let kind = gvk["kind"].as_str().unwrap().to_string();
                        let api_version = if group.is_empty() {
                            version.to_string()
                        } else {
                            format!("{group}/{version}")
                        };
                        set.kinds.insert(kind.clone());
                        set.by_gvk.insert((api_version, kind), index);
                    }
                }
                set
            })
            .collect()
    })
}

/// Schema problems of one document (a Template or an object), in every set that knows its kind.
fn schema_problems(doc: &Value, what: &str) -> Vec<String> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let mut problems = Vec::new();
    for set in schema_sets() {
        match set.by_gvk.get(&(api_version.clone(), kind.clone())) {
            Some(&i) => {
                for e in set.validators[i].iter_errors(doc) {
                    problems.push(format!(
                        "{what}: {}: at {}: {e}",
                        set.name,
                        e.instance_path()
                    ));
                }
            }
            // Every kind must be known to 4.17; to 3.11 where 3.11 has that kind at all.
            None if set.name == "openshift-4.17" || set.kinds.contains(&kind) => {
                problems.push(format!(
                    "{what}: {}: no schema for apiVersion {api_version} kind {kind}",
                    set.name
                ));
            }
            None => {}
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Checks of one template and of the objects it produced, beyond the schemas

/// OpenShift kinds whose apiVersion must be the groupified one.
const GROUPIFIED: &[(&str, &str)] = &[
    ("Template", "template.openshift.io/v1"),
    ("BuildConfig", "build.openshift.io/v1"),
    ("ImageStream", "image.openshift.io/v1"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1"),
];

fn template_problems(file: &str, template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if template["apiVersion"] != "template.openshift.io/v1" {
        problems.push(format!(
            "{file}: apiVersion must be template.openshift.io/v1"
        ));
    }
    let used = serde_json::to_string(&(
        &template["objects"],
        &template["message"],
        &template["labels"],
    ))
    .unwrap();
    for p in declared(template) {
        let name = p["name"].as_str().unwrap_or_default();
        if p["description"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
        {
            problems.push(format!("{file}: parameter {name} has no description"));
        }
        if !used.contains(&format!("${{{name}}}")) && !used.contains(&format!("${{{{{name}}}}}")) {
            problems.push(format!("{file}: parameter {name} is never used"));
        }
        // A secret is given once by the operator: never a default, never generated per template
        // (two `generate`s would make two different webhook secrets).
        if SECRET_PARAMETERS.contains(&name) {
            if p.get("generate").is_some() || p["value"].as_str().is_some_and(|v| !v.is_empty()) {
                problems.push(format!(
                    "{file}: secret parameter {name} has a default or a generator"
                ));
            }
            if p["required"] != true {
                problems.push(format!("{file}: secret parameter {name} must be required"));
            }
        }
    }
    for (i, raw) in template["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ns = raw["metadata"]["namespace"].as_str().unwrap_or_default();
        if !ns.contains("${") {
            problems.push(format!(
                "{file}: objects[{i}] needs a parameterised metadata.namespace (oc drops literal ones)"
            ));
        }
    }
    problems
}

fn object_problems(what: &str, o: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = o["kind"].as_str().unwrap_or_default();
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let what = format!("{what} {kind}/{name}");
    if let Some((_, api)) = GROUPIFIED.iter().find(|(k, _)| *k == kind)
        && o["apiVersion"] != *api
    {
        problems.push(format!(
            "{what}: apiVersion must be {api}, not {}",
            o["apiVersion"]
        ));
    }
    match kind {
        "BuildConfig" => {
            for misplaced in ["triggers", "runPolicy"] {
                if o.get(misplaced).is_some() || o["spec"]["source"].get(misplaced).is_some() {
                    problems.push(format!("{what}: {misplaced} belongs under spec"));
                }
            }
            if o["spec"]["runPolicy"].is_null() {
                problems.push(format!("{what}: no spec.runPolicy"));
            }
            let context = o["spec"]["source"]["contextDir"].as_str().unwrap_or("");
            if context.starts_with('/') {
                problems.push(format!(
                    "{what}: contextDir {context:?} has a leading slash"
                ));
            }
            let strategy = &o["spec"]["strategy"];
            let repo_file = |path: &str| repo().join(context).join(path);
            for (field, path) in [
                (
                    "jenkinsfilePath",
                    &strategy["jenkinsPipelineStrategy"]["jenkinsfilePath"],
                ),
                (
                    "dockerfilePath",
                    &strategy["dockerStrategy"]["dockerfilePath"],
                ),
            ] {
                if let Some(path) = path.as_str()
                    && (path.starts_with('/') || !repo_file(path).is_file())
                {
                    problems.push(format!(
                        "{what}: {field} {path:?} is not a file of the repository"
                    ));
                }
            }
            for t in o["spec"]["triggers"].as_array().into_iter().flatten() {
                if t["type"] == "Generic" {
                    if t["generic"]["secretReference"]["name"]
                        .as_str()
                        .is_none_or(str::is_empty)
                    {
                        problems.push(format!(
                            "{what}: the Generic trigger needs secretReference.name"
                        ));
                    }
                    if t["generic"].get("secret").is_some() {
                        problems.push(format!(
                            "{what}: a literal webhook secret in the BuildConfig"
                        ));
                    }
                }
            }
        }
        "RoleBinding" => {
            let r = &o["roleRef"];
            if r["apiGroup"] != "rbac.authorization.k8s.io"
                || r["kind"] != "ClusterRole"
                || r["name"].as_str().is_none_or(str::is_empty)
            {
                problems.push(format!("{what}: roleRef needs apiGroup rbac.authorization.k8s.io, kind ClusterRole and a name"));
            }
            let subjects = o["subjects"].as_array().cloned().unwrap_or_default();
            if subjects.is_empty() {
                problems.push(format!("{what}: no subjects"));
            }
            for s in subjects {
                let ok = match s["kind"].as_str() {
                    Some("ServiceAccount") => {
                        s["namespace"].as_str().is_some_and(|n| !n.is_empty())
                    }
                    Some("Group" | "User") => s["apiGroup"] == "rbac.authorization.k8s.io",
                    _ => false,
                };
                if !ok {
                    problems.push(format!("{what}: subject {s} is incomplete"));
                }
            }
        }
        "Secret" if o["type"].as_str().is_none() => {
            problems.push(format!("{what}: no type"));
        }
        _ => {}
    }
    problems
}

/// Everything checked for one template file: schema of the Template, processing, schema and
/// structure of each object.
fn all_problems(file: &str, template: &Value, params: &[(&str, &str)]) -> Vec<String> {
    let mut problems = schema_problems(template, file);
    problems.extend(template_problems(file, template));
    match oc_process::process(template, params) {
        Err(e) => problems.push(format!("{file}: oc process: {e}")),
        Ok(p) => {
            for (i, o) in p.objects.iter().enumerate() {
                let what = format!("{file} objects[{i}]");
                problems.extend(schema_problems(o, &what));
                problems.extend(object_problems(&what, o));
            }
        }
    }
    problems
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Jenkinsfiles and Dockerfile, read as text

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `string(name: '…')` parameters a declarative Jenkinsfile declares.
fn jenkinsfile_parameters(text: &str) -> Vec<String> {
    Regex::new(r"string\(name: '(\w+)'")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

fn jenkinsfile_agent_label(text: &str) -> String {
    let c = Regex::new(r"agent \{ label '([^']+)' \}")
        .unwrap()
        .captures(text);
    c.map(|c| c[1].to_string()).expect("agent { label '…' }")
}

/// `ARG NAME=default` lines of a Dockerfile.
fn dockerfile_args(text: &str) -> BTreeMap<String, String> {
    Regex::new(r"(?m)^ARG (\w+)=(\S+)$")
        .unwrap()
        .captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

fn env_names(bc: &Value) -> Vec<String> {
    bc["spec"]["strategy"]["jenkinsPipelineStrategy"]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// docs/openshift.md: its `oc process -f templates/… -p …` commands

/// One `oc process` command of the guide: the template file and its `-p` pairs. A value that
/// the shell computes (`"$VAR"`, `"$(cat f)"`) is replaced by a placeholder.
#[derive(Debug)]
struct DocCommand {
    file: String,
    params: Vec<(String, String)>,
}

fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn doc_commands() -> Vec<DocCommand> {
    let text = read("docs/openshift.md");
    let joined = text.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if !line.starts_with("oc process -f templates/") {
            continue;
        }
        let before_pipe = line.split(" | ").next().unwrap();
        let words = shell_words(before_pipe);
        let mut file = None;
        let mut params = Vec::new();
        let mut i = 2;
        while i < words.len() {
            match words[i].as_str() {
                "-f" => file = words.get(i + 1).cloned(),
                "-p" => {
                    let pair = words.get(i + 1).cloned().unwrap_or_default();
                    let (k, v) = pair.split_once('=').unwrap_or((&pair, ""));
                    let v = if v.contains('$') {
                        format!("doc-placeholder-{k}")
                    } else {
                        v.to_string()
                    };
                    params.push((k.to_string(), v));
                }
                other => panic!("docs/openshift.md: unexpected {other:?} in: {line}"),
            }
            i += 2;
        }
        let file = file.unwrap().trim_start_matches("templates/").to_string();
        commands.push(DocCommand { file, params });
    }
    commands
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_template_validates_against_the_openshift_schemas() {
    let mut problems = Vec::new();
    for path in template_files() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let template = oc_process::load(&path).unwrap_or_else(|e| panic!("{e}"));
        problems.extend(all_problems(&file, &template, &samples_for(&template, &[])));
    }
    assert_none(problems);
}

fn bc_mut(t: &mut Value) -> &mut Value {
    &mut t["objects"][0]
}

fn move_triggers_out_of_spec(t: &mut Value) {
    let o = bc_mut(t);
    let triggers = o["spec"]
        .as_object_mut()
        .unwrap()
        .remove("triggers")
        .unwrap();
    o.as_object_mut()
        .unwrap()
        .insert("triggers".into(), triggers);
}

#[test]
fn the_checks_reject_broken_templates() {
    // A deliberately broken copy of the production pipeline must fail, each way it can break.
    let good = load("prod-pipeline.yaml");
    let params = samples_for(&good, &[]);
    assert_none(all_problems("prod-pipeline.yaml", &good, &params));

    let mut broken = Vec::new();

    // `triggers` beside `spec` instead of under it: refused by both schema sets.
    let mut t = good.clone();
    move_triggers_out_of_spec(&mut t);
    broken.push(("triggers outside spec", "'triggers' was unexpected", t));

    // `runPolicy` under spec.source.
    let mut t = good.clone();
    let o = bc_mut(&mut t);
    let policy = o["spec"]
        .as_object_mut()
        .unwrap()
        .remove("runPolicy")
        .unwrap();
    o["spec"]["source"]
        .as_object_mut()
        .unwrap()
        .insert("runPolicy".into(), policy);
    broken.push(("runPolicy under source", "'runPolicy' was unexpected", t));

    // roleRef without kind.
    let mut t = good.clone();
    t["objects"][1]["roleRef"]
        .as_object_mut()
        .unwrap()
        .remove("kind");
    broken.push(("roleRef without kind", "\"kind\" is a required property", t));

    // A leading slash in contextDir.
    let mut t = good.clone();
    t["objects"][0]["spec"]["source"]["contextDir"] = Value::from("/agent");
    broken.push(("contextDir with a leading slash", "has a leading slash", t));

    // A Jenkinsfile that is not in the repository.
    let mut t = good.clone();
    t["objects"][0]["spec"]["strategy"]["jenkinsPipelineStrategy"]["jenkinsfilePath"] =
        Value::from("${JENKINSFILE_PATH}.missing");
    broken.push(("missing Jenkinsfile", "is not a file of the repository", t));

    // A pre-groupified apiVersion.
    let mut t = good.clone();
    t["objects"][0]["apiVersion"] = Value::from("v1");
    broken.push((
        "apiVersion v1 for a BuildConfig",
        "apiVersion must be build.openshift.io/v1",
        t,
    ));

    // A typo in a parameter reference.
    let mut t = good.clone();
    t["objects"][0]["metadata"]["name"] = Value::from("${PIPELINE_NAM}");
    broken.push((
        "unknown parameter reference",
        "${PIPELINE_NAM} names no parameter",
        t,
    ));

    // A generated webhook secret.
    let mut t = load("prod-webhook-secret.yaml");
    let p = t["parameters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == "WEBHOOK_SECRET")
        .unwrap();
    p["generate"] = Value::from("expression");
    p["from"] = Value::from("[a-f0-9]{40}");
    broken.push((
        "generated webhook secret",
        "WEBHOOK_SECRET has a default or a generator",
        t,
    ));

    for (why, expected, t) in broken {
        let problems = all_problems("broken", &t, &samples_for(&t, &[]));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "a template with {why} was not reported as {expected:?}: {problems:#?}"
        );
    }

    // The misplaced `triggers` is caught by the schemas themselves, in both versions.
    let mut t = good.clone();
    move_triggers_out_of_spec(&mut t);
    let processed = oc_process::process(&t, &params).unwrap();
    let problems = schema_problems(&processed.objects[0], "broken BuildConfig");
    for set in ["openshift-4.17", "openshift-3.11"] {
        assert!(
            problems
                .iter()
                .any(|p| p.contains(set) && p.contains("triggers")),
            "{set} schema did not reject `triggers` outside spec: {problems:?}"
        );
    }
}

#[test]
fn required_parameters_must_be_given() {
    for path in template_files() {
        let template = oc_process::load(&path).unwrap();
        let all = samples_for(&template, &[]);
        for p in declared(&template) {
            let name = p["name"].as_str().unwrap();
            let has_default = p["value"].as_str().is_some_and(|v| !v.is_empty());
            if p["required"] == true && !has_default {
                let without: Vec<_> = all.iter().copied().filter(|(n, _)| *n != name).collect();
                let e = oc_process::process(&template, &without).unwrap_err();
                assert!(e.contains(name), "{}: {e}", path.display());
            }
        }
        let e = oc_process::process(&template, &[("NO_SUCH_PARAMETER", "x")]).unwrap_err();
        assert!(e.contains("unknown parameter name"), "{e}");
    }
}

#[test]
fn the_install_guide_processes_every_template() {
    let commands = doc_commands();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for c in &commands {
        used.insert(c.file.clone());
        let template = load(&c.file);
        let params: Vec<(&str, &str)> = c
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        problems.extend(all_problems(
            &format!("docs: {}", c.file),
            &template,
            &params,
        ));
    }
    for path in template_files() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if !used.contains(&file) {
            problems.push(format!(
                "docs/openshift.md never processes templates/{file}"
            ));
        }
    }
    assert_none(problems);
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
    for path in template_files() {
        let t = oc_process::load(&path).unwrap();
        for p in declared(&t) {
            assert!(
                p.get("generate").is_none(),
                "{}: {} is generated",
                path.display(),
                p["name"]
            );
        }
    }
    let nonprod = process("nonprod-webhook-secret.yaml", &[]);
    let jenkins = object(&nonprod, "Secret");
    assert_eq!(jenkins["stringData"]["secrettext"], WEBHOOK_SECRET);
    assert_eq!(
        jenkins["metadata"]["labels"]["credential.sync.jenkins.openshift.io"],
        "true"
    );
    let credential_id =
        jenkins["metadata"]["annotations"]["jenkins.openshift.io/secret.name"].clone();
    assert!(credential_id.is_string());

    let prod = process("prod-webhook-secret.yaml", &[]);
    let webhook = object(&prod, "Secret");
    assert_eq!(webhook["stringData"]["WebHookSecretKey"], WEBHOOK_SECRET);
    assert_eq!(webhook["stringData"].as_object().unwrap().len(), 1);

    // The production BuildConfig references that Secret; the non-production pipeline reads
    // the Jenkins credential by its id.
    let pipeline = process("prod-pipeline.yaml", &[]);
    let bc = object(&pipeline, "BuildConfig");
    let trigger = &bc["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "Generic");
    assert_eq!(
        trigger["generic"]["secretReference"]["name"],
        webhook["metadata"]["name"]
    );
    let nonprod_pipeline = process("nonprod-pipeline.yaml", &[]);
    let env = &object(&nonprod_pipeline, "BuildConfig")["spec"]["strategy"]["jenkinsPipelineStrategy"]
        ["env"];
    let id = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "WEBHOOK_CREDENTIAL_ID")
        .unwrap();
    assert_eq!(id["value"], credential_id);
}

#[test]
fn the_production_pipeline_declares_exactly_the_promote_parameters() {
    let p = process("prod-pipeline.yaml", &[]);
    let bc = object(&p, "BuildConfig");
    let spec = &bc["spec"];
    assert_eq!(spec["strategy"]["type"], "JenkinsPipeline");
    assert_eq!(spec["runPolicy"], "Serial");
    let triggers = spec["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0]["generic"]["allowEnv"], true);

    let mut env = env_names(bc);
    env.sort();
    let mut six: Vec<String> = PROMOTE_PARAMETERS.iter().map(|s| s.to_string()).collect();
    six.sort();
    assert_eq!(
        env, six,
        "jenkinsPipelineStrategy.env must declare exactly ferry promote's inputs"
    );

    let jenkinsfile = read(
        spec["strategy"]["jenkinsPipelineStrategy"]["jenkinsfilePath"]
            .as_str()
            .unwrap(),
    );
    let mut declared = jenkinsfile_parameters(&jenkinsfile);
    declared.sort();
    assert_eq!(declared, six, "Jenkinsfile.prod parameters");
    for needle in [
        "skipDefaultCheckout()",
        "GIT_COMMIT = \"${params.GIT_COMMIT}\"",
        "sh 'ferry promote --record promotion.json'",
        "archiveArtifacts(artifacts: 'promotion.json'",
    ] {
        assert!(
            jenkinsfile.contains(needle),
            "Jenkinsfile.prod lacks {needle}"
        );
    }

    // The Jenkins ServiceAccount may push to the production project.
    let rb = object(&p, "RoleBinding");
    assert_eq!(rb["roleRef"]["name"], "system:image-builder");
    assert_eq!(rb["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(rb["subjects"][0]["name"], "jenkins");
    assert_eq!(rb["subjects"][0]["namespace"], "shop-prod");
    assert_eq!(rb["metadata"]["namespace"], "shop-prod");
}

#[test]
fn the_nonprod_pipeline_passes_the_six_values_to_ferry_trigger() {
    let p = process("nonprod-pipeline.yaml", &[]);
    let bc = object(&p, "BuildConfig");
    assert_eq!(bc["spec"]["strategy"]["type"], "JenkinsPipeline");
    assert_eq!(bc["spec"]["runPolicy"], "Serial");
    let jenkinsfile = read(
        bc["spec"]["strategy"]["jenkinsPipelineStrategy"]["jenkinsfilePath"]
            .as_str()
            .unwrap(),
    );
    let mut env = env_names(bc);
    env.sort();
    let mut declared = jenkinsfile_parameters(&jenkinsfile);
    declared.sort();
    assert_eq!(
        env, declared,
        "BuildConfig env and Jenkinsfile.nonprod parameters differ"
    );

    assert!(jenkinsfile.contains("ferry trigger"));
    for name in PROMOTE_PARAMETERS {
        let arg = format!("--env {name}=\"${name}\"");
        assert!(
            jenkinsfile.contains(&arg),
            "Jenkinsfile.nonprod does not pass {arg}"
        );
    }
    assert!(jenkinsfile.contains("variable: 'FERRY_WEBHOOK_SECRET'"));
    assert!(
        !jenkinsfile.contains("--secret"),
        "the webhook secret must not be a flag value"
    );
    assert!(
        !jenkinsfile.contains("$FERRY_WEBHOOK_SECRET"),
        "the webhook secret must stay in the environment, never expanded into a command line"
    );
}

#[test]
fn the_jenkinsfiles_keep_secrets_out_of_groovy_strings() {
    let double_quoted_sh = Regex::new(r#"\bsh\s*\(?\s*""#).unwrap();
    let interpolation = Regex::new(r#""[^"\n]*\$\{[^"\n]*""#).unwrap();
    for file in ["Jenkinsfile.nonprod", "Jenkinsfile.prod"] {
        let text = read(file);
        // Every shell step is single-quoted: the shell expands variables, Groovy never does.
        assert!(
            !double_quoted_sh.is_match(&text),
            "{file}: double-quoted sh step"
        );
        // The only Groovy interpolation is of the GIT_COMMIT parameter.
        for gstring in interpolation.find_iter(&text) {
            assert_eq!(
                gstring.as_str(),
                "\"${params.GIT_COMMIT}\"",
                "{file}: Groovy interpolation"
            );
        }
        assert!(!text.contains("set -x"), "{file}: set -x would echo values");
    }
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

fn element<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}>"))
}

#[test]
fn the_agent_pod_template_mounts_the_token_where_ferry_reads_it() {
    let t = load("agent.yaml");
    let p = process("agent.yaml", &[]);

    // Image: ImageStream + Docker build of agent/Dockerfile from the repository root.
    let is = object(&p, "ImageStream");
    assert!(
        is["metadata"]["labels"].get("role").is_none(),
        "a role label would add a second pod template"
    );
    let bc = object(&p, "BuildConfig");
    assert_eq!(bc["spec"]["strategy"]["type"], "Docker");
    assert!(
        bc["spec"]["source"].get("contextDir").is_none(),
        "the Dockerfile needs the repository root"
    );
    assert_eq!(
        bc["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"],
        "agent/Dockerfile"
    );
    let output = &bc["spec"]["output"]["to"];
    assert_eq!(output["kind"], "ImageStreamTag");
    let (stream, tag) = output["name"].as_str().unwrap().split_once(':').unwrap();
    assert_eq!(stream, is["metadata"]["name"]);

    // Build arguments are the Dockerfile's ARGs, with the same defaults.
    let args = dockerfile_args(&read("agent/Dockerfile"));
    let build_args = bc["spec"]["strategy"]["dockerStrategy"]["buildArgs"]
        .as_array()
        .unwrap();
    assert_eq!(build_args.len(), args.len());
    for a in build_args {
        let name = a["name"].as_str().unwrap();
        assert_eq!(
            args.get(name).map(String::as_str),
            a["value"].as_str(),
            "ARG {name}"
        );
    }

    // The pod template ConfigMap.
    let cm = object(&p, "ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["role"], "jenkins-slave");
    let data = cm["data"].as_object().unwrap();
    assert_eq!(data.len(), 1);
    let xml = data.values().next().unwrap().as_str().unwrap();
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("pod template XML: {e}"));
    let root = doc.root_element();
    assert_eq!(
        root.tag_name().name(),
        "org.csanchez.jenkins.plugins.kubernetes.PodTemplate"
    );

    let label = child(root, "label");
    assert_eq!(label, default_of(&t, "AGENT_LABEL"));
    for jenkinsfile in ["Jenkinsfile.nonprod", "Jenkinsfile.prod"] {
        assert_eq!(
            jenkinsfile_agent_label(&read(jenkinsfile)),
            label,
            "{jenkinsfile}'s agent label"
        );
    }
    assert_eq!(child(root, "serviceAccount"), "jenkins");

    let volumes: Vec<_> = element(root, "volumes")
        .children()
        .filter(|c| c.is_element())
        .collect();
    assert_eq!(volumes.len(), 1);
    let volume = volumes[0];
    assert_eq!(
        volume.tag_name().name(),
        "org.csanchez.jenkins.plugins.kubernetes.volumes.SecretVolume"
    );
    let mount = child(volume, "mountPath");
    assert_eq!(
        mount, FERRY_SRC_CERT_DIR,
        "ferry promote's default --src-cert-dir"
    );
    assert_eq!(
        format!("{mount}/token"),
        FERRY_SRC_TOKEN_FILE,
        "ferry promote's default --src-token-file"
    );
    let token = process("prod-nonprod-token-secret.yaml", &[]);
    let token_secret = object(&token, "Secret");
    assert_eq!(
        child(volume, "secretName"),
        token_secret["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(
        token_secret["metadata"]["namespace"],
        cm["metadata"]["namespace"]
    );
    let keys: BTreeSet<&str> = token_secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["token", "ca.crt"]));

    let containers: Vec<_> = element(root, "containers")
        .children()
        .filter(|c| c.is_element())
        .collect();
    assert_eq!(containers.len(), 1);
    let c = containers[0];
    assert_eq!(
        child(c, "name"),
        "jnlp",
        "the Kubernetes plugin runs the agent in the container named jnlp"
    );
    assert_eq!(
        child(c, "image"),
        format!("image-registry.openshift-image-registry.svc:5000/shop-prod/{stream}:{tag}")
    );
    for (element_name, parameter) in [
        ("resourceRequestCpu", "CPU_REQUEST"),
        ("resourceRequestMemory", "MEMORY_REQUEST"),
        ("resourceLimitCpu", "CPU_LIMIT"),
        ("resourceLimitMemory", "MEMORY_LIMIT"),
    ] {
        let v = child(c, element_name);
        assert!(!v.is_empty(), "{element_name}");
        assert_eq!(v, p.values[parameter]);
    }
    let env: BTreeMap<String, String> = element(c, "envVars")
        .children()
        .filter(|e| e.is_element())
        .map(|e| (child(e, "key"), child(e, "value")))
        .collect();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] {
        assert_eq!(env[name], p.values[name], "{name}");
        assert_eq!(
            env[&name.to_lowercase()],
            p.values[name],
            "{}",
            name.to_lowercase()
        );
    }
    assert_eq!(env["HTTPS_PROXY"], "http://proxy.example.com:3128");

    // The newer label value is a parameter away.
    let newer = process("agent.yaml", &[("POD_TEMPLATE_ROLE", "jenkins-agent")]);
    assert_eq!(
        object(&newer, "ConfigMap")["metadata"]["labels"]["role"],
        "jenkins-agent"
    );
}

#[test]
fn the_nonprod_agent_mounts_the_production_api_ca_where_the_trigger_reads_it() {
    // The non-production agent as the guide applies it.
    let command = doc_commands()
        .into_iter()
        .find(|c| {
            c.file == "agent.yaml" && c.params.iter().any(|(k, _)| k == "MOUNTED_SECRET_NAME")
        })
        .expect("docs/openshift.md applies templates/agent.yaml in non-production");
    let params: Vec<(&str, &str)> = command
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let p = oc_process::process(&load("agent.yaml"), &params).unwrap();
    let xml = object(&p, "ConfigMap")["data"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let text = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_string()
    };

    let secret = process("nonprod-prod-api-secret.yaml", &[]);
    let secret = object(&secret, "Secret");
    assert_eq!(
        text("secretName"),
        secret["metadata"]["name"].as_str().unwrap()
    );
    let keys: Vec<&String> = secret["stringData"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ca.crt"]);
    let jenkinsfile = read("Jenkinsfile.nonprod");
    let cert_dir = Regex::new(r"--cert-dir (\S+)")
        .unwrap()
        .captures(&jenkinsfile)
        .expect("--cert-dir")[1]
        .to_string();
    assert_eq!(text("mountPath"), cert_dir);
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
    let message = p.message.as_deref().unwrap();
    assert!(
        message.contains(&format!("secret {name}-token -n shop-dev")),
        "{message}"
    );
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

#[test]
fn ferry_promote_defaults_match_the_pod_template_when_implemented() {
    // Cross-check with the binary itself once `ferry promote` exists: its help must show the
    // default token and certificate paths that the pod template mounts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["promote", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !help.contains("--src-token-file") {
        eprintln!("ferry promote is not implemented in this build: cross-check skipped");
        return;
    }
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

/// Keeps the repository's copy of the schemas honest: the files the tests use are all there.
#[test]
fn the_schema_copies_are_complete() {
    let sets = schema_sets();
    for kind in [
        "Template",
        "BuildConfig",
        "ImageStream",
        "Secret",
        "ServiceAccount",
        "RoleBinding",
        "ConfigMap",
    ] {
        for set in sets {
            assert!(
                set.kinds.contains(kind),
                "{}: no schema for {kind}",
                set.name
            );
        }
    }
    assert!(Path::new(&repo().join("tests/schemas/README.md")).is_file());
}
