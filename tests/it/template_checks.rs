//! The checks `templates.rs` runs on every template: the OpenShift 4.17 and 3.11 JSON schemas
//! (`tests/schemas/`, draft-04, offline) for the Template and each object it produces, then
//! what the schemas cannot see (apiVersions, misplaced keys, parameters, secrets).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

use crate::oc_process;
use crate::templates::*;

// ---------------------------------------------------------------------------------------------
// Schemas

pub(crate) struct SchemaSet {
    pub(crate) name: &'static str,
    validators: Vec<Validator>,
    /// (apiVersion, kind) -> index in `validators`, from each schema's
    /// x-kubernetes-group-version-kind (a schema may serve `v1` and its groupified version).
    by_gvk: BTreeMap<(String, String), usize>,
    pub(crate) kinds: BTreeSet<String>,
}

pub(crate) fn schema_sets() -> &'static [SchemaSet] {
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
