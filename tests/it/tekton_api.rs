//! The Tekton objects' shapes, for `templates.rs`: Tekton Pipelines' Task, Pipeline, PipelineRun
//! and TaskRun against the v1 schemas of `tests/schemas/tekton` (tektoncd/pipeline's CRDs, made
//! strict: an unknown field fails, as `kubectl apply --validate=strict` fails it), and Tekton
//! Triggers' EventListener, TriggerBinding and TriggerTemplate — whose CRDs publish no schema —
//! against a schema written here from Tekton Triggers' documented API (`triggers.tekton.dev/v1beta1`:
//! the Go types of `pkg/apis/triggers/v1beta1` and the docs' field lists), equally strict, plus
//! what its admission webhook checks (every `$(tt.params.NAME)` declared, resource templates
//! with `apiVersion` and `kind`, the GitHub interceptor's params).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use regex::Regex;
use serde_json::{Value, json};

use crate::templates::repo;

/// The apiVersion of Tekton Pipelines' objects and of Triggers' objects.
pub const PIPELINES: &str = "tekton.dev/v1";
pub const TRIGGERS: &str = "triggers.tekton.dev/v1beta1";

fn compile(schema: &Value, what: &str) -> Validator {
    jsonschema::draft4::options()
        .build(schema)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn pipelines() -> &'static BTreeMap<&'static str, Validator> {
    static V: OnceLock<BTreeMap<&'static str, Validator>> = OnceLock::new();
    V.get_or_init(|| {
        [
            ("Task", "task-tekton-v1.json"),
            ("Pipeline", "pipeline-tekton-v1.json"),
            ("PipelineRun", "pipelinerun-tekton-v1.json"),
            ("TaskRun", "taskrun-tekton-v1.json"),
        ]
        .into_iter()
        .map(|(kind, file)| {
            let path = repo().join("tests/schemas/tekton").join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (kind, compile(&serde_json::from_str(&text).unwrap(), file))
        })
        .collect()
    })
}

/// Tekton Triggers v1beta1, from its documented API.
fn triggers_schemas() -> BTreeMap<&'static str, Value> {
    let s = json!({"type": "string"});
    let param = json!({"type": "object", "required": ["name", "value"], "additionalProperties": false,
        "properties": {"name": s, "value": s}});
    let param_spec = json!({"type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": s, "description": s, "default": s}});
    let binding = json!({"type": "object", "additionalProperties": false, "properties": {
        "name": s, "value": s, "ref": s, "apiversion": s,
        "kind": {"enum": ["TriggerBinding", "ClusterTriggerBinding"]}}});
    let template_spec = json!({"type": "object", "additionalProperties": false,
        "required": ["resourcetemplates"], "properties": {
        "params": {"type": "array", "items": param_spec},
        "resourcetemplates": {"type": "array", "minItems": 1, "items": {"type": "object",
            "required": ["apiVersion", "kind"]}}}});
    let interceptor = json!({"type": "object", "required": ["ref"], "additionalProperties": false,
        "properties": {
            "name": s,
            "ref": {"type": "object", "additionalProperties": false, "properties": {
                "name": s, "apiVersion": s,
                "kind": {"enum": ["ClusterInterceptor", "NamespacedInterceptor"]}}},
            "params": {"type": "array", "items": {"type": "object", "required": ["name", "value"],
                "additionalProperties": false, "properties": {"name": s, "value": {}}}},
            "webhook": {"type": "object"}}});
    let trigger = json!({"type": "object", "additionalProperties": false, "properties": {
        "name": s,
        "bindings": {"type": "array", "items": binding},
        "template": {"type": "object", "additionalProperties": false, "properties": {
            "ref": s, "apiversion": s, "spec": template_spec}},
        "triggerRef": s,
        "interceptors": {"type": "array", "items": interceptor},
        "serviceAccountName": s}});
    let selector = json!({"type": "object", "additionalProperties": false, "properties": {
        "matchNames": {"type": "array", "items": s}}});
    let el_spec = json!({"type": "object", "additionalProperties": false, "properties": {
        "serviceAccountName": s,
        "triggers": {"type": "array", "items": trigger},
        "triggerGroups": {"type": "array"},
        "namespaceSelector": selector,
        "labelSelector": {"type": "object"},
        "resources": {"type": "object", "additionalProperties": false, "properties": {
            "kubernetesResource": {"type": "object", "additionalProperties": false, "properties": {
                "replicas": {"type": "integer"}, "serviceType": s,
                "servicePort": {"type": "integer"}, "serviceLoadBalancerClass": s,
                "spec": {"type": "object"}}},
            "customResource": {"type": "object"}}},
        "cloudEventURI": s}});
    let object = |kind: &str, spec: Value| {
        json!({"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
            "additionalProperties": false, "properties": {
            "apiVersion": {"enum": [TRIGGERS]}, "kind": {"enum": [kind]},
            "metadata": {"type": "object"}, "spec": spec}})
    };
    BTreeMap::from([
        (
            "TriggerBinding",
            object(
                "TriggerBinding",
                json!({"type": "object", "additionalProperties": false,
                "properties": {"params": {"type": "array", "items": param}}}),
            ),
        ),
        ("TriggerTemplate", object("TriggerTemplate", template_spec)),
        ("EventListener", object("EventListener", el_spec)),
    ])
}

fn triggers() -> &'static BTreeMap<&'static str, Validator> {
    static V: OnceLock<BTreeMap<&'static str, Validator>> = OnceLock::new();
    V.get_or_init(|| {
        triggers_schemas()
            .into_iter()
            .map(|(k, s)| (k, compile(&s, k)))
            .collect()
    })
}

fn errors(v: &Validator, doc: &Value, what: &str, set: &str) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{what}: {set}: at {}: {e}", e.instance_path()))
        .collect()
}

/// Problems of a Tekton object; `None` for objects of other API groups.
pub fn problems(doc: &Value, what: &str) -> Option<Vec<String>> {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    if api.starts_with("tekton.dev/") {
        return Some(match pipelines().get(kind) {
            Some(v) if api == PIPELINES => errors(v, doc, what, "tekton v1"),
            _ => vec![format!("{what}: no Tekton schema for {api} {kind}")],
        });
    }
    if api.starts_with("triggers.tekton.dev/") {
        let mut p = match triggers().get(kind) {
            Some(v) if api == TRIGGERS => errors(v, doc, what, "tekton triggers v1beta1"),
            _ => vec![format!(
                "{what}: not a Tekton Triggers {TRIGGERS} kind: {api} {kind}"
            )],
        };
        p.extend(semantic(doc, what));
        return Some(p);
    }
    None
}

/// What Triggers' admission webhook checks beyond the fields.
fn semantic(doc: &Value, what: &str) -> Vec<String> {
    let mut p = Vec::new();
    match doc["kind"].as_str() {
        Some("TriggerTemplate") => {
            let declared: Vec<&str> = doc["spec"]["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["name"].as_str())
                .collect();
            let used = Regex::new(r"\$\(tt\.params\.([_a-zA-Z][_a-zA-Z0-9.-]*)\)").unwrap();
            for (i, rt) in doc["spec"]["resourcetemplates"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let text = rt.to_string();
                for c in used.captures_iter(&text) {
                    if !declared.contains(&&c[1]) {
                        p.push(format!(
                            "{what}: resourcetemplates[{i}]: undeclared param '$(tt.params.{})'",
                            &c[1]
                        ));
                    }
                }
                // A Tekton resource it creates must be valid once the params are in.
                let filled: Value = serde_json::from_str(&used.replace_all(&text, "x")).unwrap();
                if let Some(more) = problems(&filled, &format!("{what} resourcetemplates[{i}]")) {
                    p.extend(more);
                }
            }
        }
        Some("EventListener") => {
            for t in doc["spec"]["triggers"].as_array().into_iter().flatten() {
                for i in t["interceptors"].as_array().into_iter().flatten() {
                    if i["ref"]["name"] != "github" {
                        continue;
                    }
                    let params: BTreeMap<&str, &Value> = i["params"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| (x["name"].as_str().unwrap_or_default(), &x["value"]))
                        .collect();
                    for name in params.keys() {
                        if !["secretRef", "eventTypes", "addChangedFiles", "githubOwners"]
                            .contains(name)
                        {
                            p.push(format!(
                                "{what}: the github interceptor has no param {name:?}"
                            ));
                        }
                    }
                    // Required since Triggers 0.37.1: every GitHub payload is verifiably signed.
                    match params.get("secretRef") {
                        Some(r)
                            if r["secretName"].as_str().is_some_and(|s| !s.is_empty())
                                && r["secretKey"].as_str().is_some_and(|s| !s.is_empty())
                                && r.as_object().is_some_and(|o| o.len() == 2) => {}
                        _ => p.push(format!(
                            "{what}: the github interceptor needs secretRef {{secretName, secretKey}}"
                        )),
                    }
                }
            }
        }
        _ => {}
    }
    p
}

/// The documented-API schema refuses what Triggers would: checked on deliberately broken objects.
#[test]
fn the_triggers_checks_reject_broken_objects() {
    let good = json!({"apiVersion": TRIGGERS, "kind": "TriggerBinding", "metadata": {"name": "b"},
        "spec": {"params": [{"name": "A", "value": "$(body.a)"}]}});
    assert_eq!(problems(&good, "b"), Some(vec![]));
    let mut bad = good.clone();
    bad["spec"]["params"][0]["valu"] = json!("x");
    assert!(!problems(&bad, "b").unwrap().is_empty());
    let mut bad = good;
    bad["apiVersion"] = json!("triggers.tekton.dev/v1alpha9");
    assert!(!problems(&bad, "b").unwrap().is_empty());
    let tt = json!({"apiVersion": TRIGGERS, "kind": "TriggerTemplate", "metadata": {},
        "spec": {"params": [{"name": "A"}], "resourcetemplates": [{"apiVersion": PIPELINES,
        "kind": "PipelineRun", "metadata": {"generateName": "x-"},
        "spec": {"pipelineRef": {"name": "p"}, "params": [{"name": "A", "value": "$(tt.params.B)"}]}}]}});
    let p = problems(&tt, "tt").unwrap();
    assert!(
        p.iter()
            .any(|e| e.contains("undeclared param '$(tt.params.B)'")),
        "{p:?}"
    );
    let mut tt2 = tt;
    tt2["spec"]["resourcetemplates"][0]["spec"]["pipelinRef"] = json!({});
    let p = problems(&tt2, "tt").unwrap();
    assert!(p.iter().any(|e| e.contains("pipelinRef")), "{p:?}");
    let el = json!({"apiVersion": TRIGGERS, "kind": "EventListener", "metadata": {},
        "spec": {"triggers": [{"name": "t", "interceptors": [{"ref": {"name": "github"},
        "params": [{"name": "eventTypes", "value": ["push"]}]}]}]}});
    let p = problems(&el, "el").unwrap();
    assert!(p.iter().any(|e| e.contains("needs secretRef")), "{p:?}");
}
