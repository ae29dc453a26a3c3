//! The OpenShift templates of `templates/`: each is processed as `oc process` would
//! (`oc_process.rs`), then the Template and every object it produces are validated against the
//! OpenShift 4.17 and 3.11 JSON schemas (`tests/schemas/`, draft-04, offline), then checked for
//! what the schemas cannot see (apiVersions, misplaced keys, parameters, secrets). `kit.rs` checks
//! that the flow's names line up across templates, Jenkinsfiles, the agent's Dockerfile, ferry's
//! defaults and the install guide (`docs/openshift.md`), with the helpers of this file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use crate::oc_process::{self, Processed};
use crate::template_checks::schema_sets;
pub use crate::template_checks::{all_problems, assert_none, schema_problems};

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
