//! The OpenShift templates of `templates/`: each is processed as `oc process` would
//! (`oc_process.rs`), then the Template and every object it produces are validated against the
//! OpenShift 4.17 and 3.11 JSON schemas (`tests/schemas/`, draft-04, offline), then checked for
//! what the schemas cannot see (apiVersions, misplaced keys, parameters, secrets). `kit.rs` checks
//! that the flow's names line up across templates, Jenkinsfiles, the agent's Dockerfile, ferry's
//! defaults and the install guide (`docs/openshift.md`), with the helpers of this file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::Validator;
use regex::Regex;
use serde_json::Value;

use crate::oc_process::{self, Processed};

/// Parameters whose values are secrets.
pub const SECRET_PARAMETERS: [&str; 5] = [
    "WEBHOOK_SECRET",
    "NON_PROD_TOKEN",
    "PROD_WEBHOOK_TOKEN",
    "SIGNING_KEY_BASE64",
    "SIGNING_PASSPHRASE",
];

pub const WEBHOOK_SECRET: &str = "5f2b0c8e4d6a1f3b9c7e2d4a6b8c0e1f3a5b7c9d";

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
    ("SOURCE_SECRET", "ferry-kit-git"),
    (
        "PROD_WEBHOOK_TOKEN",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3ZWJob29rIn0.c2lnbmF0dXJl",
    ),
    (
        "FERRY_IMAGE",
        "image-registry.openshift-image-registry.svc:5000/shop-prod/ferry-agent@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ),
    (
        "DESTINATION",
        "image-registry.openshift-image-registry.svc:5000/mirror",
    ),
    (
        "MIRROR_DESTINATION",
        "image-registry.openshift-image-registry.svc:5000/mirror",
    ),
    (
        "IMAGES_YAML",
        "quay.io:\n  images:\n    team/app: [v1, v2]\n",
    ),
    (
        "NON_PROD_PUBLIC_KEY",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    ),
    (
        "SIGNING_KEY_BASE64",
        "LS0tLS1CRUdJTiBFTkNSWVBURUQgU0lHU1RPUkUgUFJJVkFURSBLRVktLS0tLQo=",
    ),
    ("SIGNING_PASSPHRASE", "correct horse battery staple"),
];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn template_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("templates"))
        .expect("templates/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no templates in templates/");
    files
}

/// The Tekton templates, `templates/tekton/*.yaml`, as `tekton/NAME.yaml`.
pub fn tekton_template_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("templates/tekton"))
        .expect("templates/tekton/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| format!("tekton/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no templates in templates/tekton/");
    files
}

pub fn load(name: &str) -> Value {
    oc_process::load(&repo().join("templates").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn declared(template: &Value) -> Vec<&Value> {
    template["parameters"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

pub fn default_of<'a>(template: &'a Value, name: &str) -> &'a str {
    declared(template)
        .into_iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("no default for {name}"))
}

/// The sample values for the parameters `template` declares, plus `extra`.
pub fn samples_for<'a>(template: &Value, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
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

pub fn process(name: &str, extra: &[(&str, &str)]) -> Processed {
    let t = load(name);
    oc_process::process(&t, &samples_for(&t, extra)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn object<'a>(p: &'a Processed, kind: &str) -> &'a Value {
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
pub fn schema_problems(doc: &Value, what: &str) -> Vec<String> {
    if let Some(p) = crate::tekton_api::problems(doc, what) {
        return p;
    }
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
    ("Role", "rbac.authorization.k8s.io/v1"),
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
                || (r["kind"] != "ClusterRole" && r["kind"] != "Role")
                || r["name"].as_str().is_none_or(str::is_empty)
            {
                problems.push(format!("{what}: roleRef needs apiGroup rbac.authorization.k8s.io, kind ClusterRole or Role, and a name"));
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
pub fn all_problems(file: &str, template: &Value, params: &[(&str, &str)]) -> Vec<String> {
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

pub fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Jenkinsfiles and Dockerfile, read as text

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn env_names(bc: &Value) -> Vec<String> {
    bc["spec"]["strategy"]["jenkinsPipelineStrategy"]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// docs/openshift.md: its `oc process -f templates/… -p …` commands

/// One `oc process` command of the guide: the template file, its `-p` pairs, the parameters it
/// gives through `--param-file=<(printf 'NAME=%s\n' …)`, and whether it runs `--local`. A value
/// that the shell computes (`"$VAR"`, `"$(cat f)"`, a `--param-file`) is a placeholder.
#[derive(Debug)]
pub struct DocCommand {
    pub file: String,
    pub params: Vec<(String, String)>,
    pub from_param_file: Vec<String>,
    pub local: bool,
    pub line: String,
}

impl DocCommand {
    /// Every parameter, `-p` and `--param-file` alike, as `oc process` gets them.
    pub fn all_params(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                self.from_param_file
                    .iter()
                    .map(|k| (k.as_str(), "doc-placeholder-secret")),
            )
            .collect()
    }
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

/// The guides whose `oc process` commands are checked.
pub const GUIDES: [&str; 2] = ["docs/openshift.md", "docs/scale.md"];

pub fn doc_commands() -> Vec<DocCommand> {
    let text = GUIDES.map(read).join("\n");
    let joined = text.replace("\\\n", " ");
    // The one form a secret may take: a process substitution of the shell builtin printf.
    let param_file =
        Regex::new(r#"--param-file=<\(printf '([A-Z0-9_]+)=%s\\n' "[^"]*"\)"#).unwrap();
    let mut commands = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if !line.starts_with("oc process ") {
            continue;
        }
        let before_pipe = line.split(" | ").next().unwrap();
        let from_param_file: Vec<String> = param_file
            .captures_iter(before_pipe)
            .map(|c| c[1].to_string())
            .collect();
        let rest = param_file.replace_all(before_pipe, "");
        let words = shell_words(&rest);
        let mut file = None;
        let mut params = Vec::new();
        let mut local = false;
        let mut i = 2;
        while i < words.len() {
            match words[i].as_str() {
                "--local" => {
                    local = true;
                    i += 1;
                    continue;
                }
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
                other => panic!("docs: unexpected {other:?} in: {line}"),
            }
            i += 2;
        }
        let file = file
            .unwrap_or_else(|| panic!("docs: no -f in: {line}"))
            .trim_start_matches("templates/")
            .to_string();
        commands.push(DocCommand {
            file,
            params,
            from_param_file,
            local,
            line: line.to_string(),
        });
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
    // The Tekton ones: Tekton's own objects against the Tekton schemas (tekton_api.rs), the
    // others against OpenShift's.
    for file in tekton_template_files() {
        let template = load(&file);
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
    let rb = t["objects"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["kind"] == "RoleBinding")
        .unwrap();
    rb["roleRef"].as_object_mut().unwrap().remove("kind");
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
    let tekton = tekton_template_files()
        .into_iter()
        .map(|f| repo().join("templates").join(f));
    for path in template_files().into_iter().chain(tekton) {
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
        let params = c.all_params();
        problems.extend(all_problems(
            &format!("docs: {}", c.file),
            &template,
            &params,
        ));
    }
    let files = template_files()
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .chain(tekton_template_files());
    for file in files {
        if !used.contains(&file) {
            problems.push(format!(
                "neither docs/openshift.md nor docs/scale.md processes templates/{file}"
            ));
        }
    }
    assert_none(problems);
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
    let v417 = sets.iter().find(|s| s.name == "openshift-4.17").unwrap();
    for kind in ["Job", "CronJob"] {
        assert!(
            v417.kinds.contains(kind),
            "openshift-4.17: no schema for {kind}"
        );
    }
    assert!(Path::new(&repo().join("tests/schemas/README.md")).is_file());
}
