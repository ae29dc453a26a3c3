//! `oc process` for the tests: OpenShift's template processor, re-implemented offline so that
//! the templates in `templates/` are processed exactly as `oc process -f FILE -p NAME=VALUE`
//! would, before their output is validated (see `templates.rs`).
//!
//! What it does, as OpenShift's processor does:
//! - parameter values: a `-p` value, else the parameter's `value`, else (with
//!   `generate: expression`) a value generated from `from`; a `required` parameter left empty is
//!   an error; a `-p` name the template does not declare is refused;
//! - `${NAME}` (NAME in `[a-zA-Z0-9_]`) is replaced inside any string of the objects and of
//!   `message`; a string that is exactly `${{NAME}}` is replaced by the value parsed as JSON
//!   (a typed value: number, boolean, object…), or by the plain string when it is not JSON;
//! - the template's `labels` are added to every object's `metadata.labels` (a different value
//!   already there is an error);
//! - a namespace written literally in an object is dropped (only a parameterised one is kept).
//!
//! Stricter than OpenShift, to catch template typos: a `${NAME}` naming no parameter (OpenShift
//! leaves it as is), a `${{NAME}}` that is not a whole string, and a `${` in a map key are errors.
//! Jenkins' own `${computer.name}` placeholders do not match the parameter syntax and stay.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value};

/// The result of processing: the objects (a `List`'s items, as `oc process` prints them), the
/// value every parameter ended up with, and the template's message after substitution.
#[derive(Debug, Clone)]
pub struct Processed {
    pub objects: Vec<Value>,
    pub values: BTreeMap<String, String>,
    pub message: Option<String>,
}

/// Reads a template file (YAML) into the JSON value model the schemas apply to.
pub fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml::from_str::<Value>(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parameter_reference() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    // OpenShift: stringParameterExp = `\$\{([a-zA-Z0-9\_]+?)\}`
    RE.get_or_init(|| Regex::new(r"\$\{([a-zA-Z0-9_]+?)\}").unwrap())
}

fn typed_reference() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    // OpenShift: nonStringParameterExp = `^\$\{\{([a-zA-Z0-9\_]+)\}\}$`
    RE.get_or_init(|| Regex::new(r"^\$\{\{([a-zA-Z0-9_]+)\}\}$").unwrap())
}

/// Processes `template` with the `-p NAME=VALUE` pairs in `params`.
pub fn process(template: &Value, params: &[(&str, &str)]) -> Result<Processed, String> {
    let kind = template.get("kind").and_then(Value::as_str);
    if kind != Some("Template") {
        return Err(format!("not a Template (kind {kind:?})"));
    }
    let declared: Vec<&Value> = match template.get("parameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(other) => return Err(format!("parameters is not a list: {other}")),
    };

    let name_ok = Regex::new(r"^[a-zA-Z0-9_]+$").unwrap();
    let mut names = Vec::new();
    for p in &declared {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("parameter without a name: {p}"))?;
        if !name_ok.is_match(name) {
            return Err(format!("parameter name {name:?} is not [a-zA-Z0-9_]+"));
        }
        if names.contains(&name) {
            return Err(format!("parameter {name} is declared twice"));
        }
        names.push(name);
    }

    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in params {
        if !names.contains(name) {
            return Err(format!("unknown parameter name \"{name}\""));
        }
        given.insert(name, value);
    }

    let mut values = BTreeMap::new();
    for p in &declared {
        let name = p["name"].as_str().unwrap_or_default();
        let mut value = match given.get(name) {
            Some(v) => (*v).to_string(),
            None => match p.get("value") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "parameter {name}: value must be a string, not {other}"
                    ));
                }
            },
        };
        let generate = p.get("generate").and_then(Value::as_str).unwrap_or("");
        if value.is_empty() && !generate.is_empty() {
            if generate != "expression" {
                return Err(format!("parameter {name}: unknown generator {generate:?}"));
            }
            let from = p
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("parameter {name}: generate without from"))?;
            value = generate_expression(from).map_err(|e| format!("parameter {name}: {e}"))?;
        }
        let required = match p.get("required") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "parameter {name}: required must be a boolean, not {other}"
                ));
            }
        };
        if required && value.is_empty() {
            return Err(format!(
                "parameter {name} is required and must be specified"
            ));
        }
        values.insert(name.to_string(), value);
    }

    let labels = match template.get("labels") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => substitute(&Value::Object(m.clone()), &values, "labels")?
            .as_object()
            .cloned()
            .unwrap_or_default(),
        Some(other) => return Err(format!("labels is not a map: {other}")),
    };

    let mut objects = Vec::new();
    let raw_objects = template
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("a Template needs an objects list")?;
    for (i, raw) in raw_objects.iter().enumerate() {
        let at = format!("objects[{i}]");
        let mut object = substitute(raw, &values, &at)?;
        let metadata = object
            .as_object_mut()
            .ok_or_else(|| format!("{at} is not a map"))?
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| format!("{at}.metadata is not a map"))?;
        let literal_namespace = raw
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .is_some_and(|ns| !ns.contains("${"));
        if literal_namespace {
            metadata.remove("namespace");
        }
        if !labels.is_empty() {
            let object_labels = metadata
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or_else(|| format!("{at}.metadata.labels is not a map"))?;
            for (k, v) in &labels {
                match object_labels.get(k) {
                    Some(existing) if existing != v => {
                        return Err(format!(
                            "{at}: label {k}={existing} conflicts with the template's {k}={v}"
                        ));
                    }
                    _ => {
                        object_labels.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        objects.push(object);
    }

    let message = match template.get("message") {
        None | Some(Value::Null) => None,
        Some(m) => Some(
            substitute(m, &values, "message")?
                .as_str()
                .ok_or("message is not a string")?
                .to_string(),
        ),
    };

    Ok(Processed {
        objects,
        values,
        message,
    })
}

/// Parameter substitution in every string of `value` (not in map keys).
fn substitute(value: &Value, values: &BTreeMap<String, String>, at: &str) -> Result<Value, String> {
    match value {
        Value::String(s) => substitute_string(s, values, at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| substitute(v, values, &format!("{at}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k.contains("${") {
                    return Err(format!("{at}: parameter reference in the key {k:?}"));
                }
                out.insert(k.clone(), substitute(v, values, &format!("{at}.{k}"))?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn substitute_string(
    s: &str,
    values: &BTreeMap<String, String>,
    at: &str,
) -> Result<Value, String> {
    if let Some(c) = typed_reference().captures(s) {
        let name = &c[1];
        let v = values
            .get(name)
            .ok_or_else(|| format!("{at}: ${{{{{name}}}}} names no parameter"))?;
        return Ok(serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone())));
    }
    if s.contains("${{") {
        return Err(format!(
            "{at}: ${{{{…}}}} must be the whole string, in {s:?}"
        ));
    }
    let mut missing = None;
    let out =
        parameter_reference().replace_all(s, |c: &regex::Captures<'_>| match values.get(&c[1]) {
            Some(v) => v.clone(),
            None => {
                missing.get_or_insert_with(|| c[1].to_string());
                c[0].to_string()
            }
        });
    match missing {
        Some(name) => Err(format!("{at}: ${{{name}}} names no parameter")),
        None => Ok(Value::String(out.into_owned())),
    }
}

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NUMERALS: &str = "0123456789";
const SYMBOLS: &str = "~!@#$%^&*()-_+={}[]\\|<,>.?/\"';:`";

/// OpenShift's `expression` generator: every `[RANGES]{N}` in `from` becomes N characters drawn
/// from RANGES; the rest of `from` is kept. RANGES is a sequence of `a-z`-style ranges, single
/// letters or digits, and the classes `\w` (letters, digits, `_`), `\d` (digits), `\a` (letters
/// and digits) and `\A` (symbols). N is 1 to 255. (Ranges here include their upper end.)
pub fn generate_expression(from: &str) -> Result<String, String> {
    let group = Regex::new(r"\[([a-zA-Z0-9\-\\]+)\]\{([0-9]+)\}").unwrap();
    let ascii: Vec<char> = format!("{LOWER}{UPPER}{NUMERALS}{SYMBOLS}")
        .chars()
        .collect();
    let mut out = String::new();
    let mut last = 0;
    for c in group.captures_iter(from) {
        let whole = c.get(0).unwrap();
        out.push_str(&from[last..whole.start()]);
        last = whole.end();
        let length: usize = c[2]
            .parse()
            .map_err(|_| format!("bad length in {}", whole.as_str()))?;
        if !(1..=255).contains(&length) {
            return Err(format!(
                "range must be within [1-255] characters: {}",
                whole.as_str()
            ));
        }
        let spec: Vec<char> = c[1].chars().collect();
        let mut alphabet: Vec<char> = Vec::new();
        let mut i = 0;
        while i < spec.len() {
            if spec[i] == '\\' {
                let class = spec.get(i + 1).ok_or("dangling \\ in expression")?;
                let chars = match class {
                    'w' => format!("{LOWER}{UPPER}{NUMERALS}_"),
                    'd' => NUMERALS.to_string(),
                    'a' => format!("{LOWER}{UPPER}{NUMERALS}"),
                    'A' => SYMBOLS.to_string(),
                    other => return Err(format!("unknown class \\{other}")),
                };
                alphabet.extend(chars.chars());
                i += 2;
            } else if spec.get(i + 1) == Some(&'-') && i + 2 < spec.len() {
                let (a, b) = (spec[i], spec[i + 2]);
                let left = ascii.iter().position(|&x| x == a);
                let right = ascii.iter().position(|&x| x == b);
                match (left, right) {
                    (Some(l), Some(r)) if l <= r => alphabet.extend(&ascii[l..=r]),
                    _ => return Err(format!("invalid range specified: {a}-{b}")),
                }
                i += 3;
            } else if spec[i].is_ascii_alphanumeric() {
                alphabet.push(spec[i]);
                i += 1;
            } else {
                return Err(format!("unexpected {:?} in {}", spec[i], whole.as_str()));
            }
        }
        alphabet.sort_unstable();
        alphabet.dedup();
        for _ in 0..length {
            out.push(alphabet[fastrand::usize(..alphabet.len())]);
        }
    }
    out.push_str(&from[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    const SAMPLE: &str = r#"
apiVersion: template.openshift.io/v1
kind: Template
metadata: {name: sample}
labels: {app: "${APP}"}
message: "made ${NAME}"
parameters:
  - {name: NAME, required: true}
  - {name: APP, value: demo}
  - {name: REPLICAS, value: "3"}
  - {name: FLAG, value: "true"}
  - {name: NOTJSON, value: "a b"}
  - {name: SECRET, generate: expression, from: "[a-f0-9]{40}"}
  - {name: EMPTY}
objects:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: "${NAME}-cm", namespace: fixed}
    data:
      both: "${NAME}/${APP}"
      jenkins: "${computer.jnlpmac} ${computer.name}"
      secret: "${SECRET}"
      empty: "x${EMPTY}y"
  - kind: Thing
    metadata: {name: n, namespace: "${NAME}"}
    spec: {replicas: "${{REPLICAS}}", flag: "${{FLAG}}", text: "${{NOTJSON}}", s: "${REPLICAS}"}
"#;

    #[test]
    fn substitutes_strings_typed_values_labels_and_message() {
        let p = process(&template(SAMPLE), &[("NAME", "web")]).unwrap();
        let cm = &p.objects[0];
        assert_eq!(cm["metadata"]["name"], "web-cm");
        assert_eq!(cm["data"]["both"], "web/demo");
        assert_eq!(
            cm["data"]["jenkins"],
            "${computer.jnlpmac} ${computer.name}"
        );
        assert_eq!(cm["data"]["empty"], "xy");
        assert_eq!(cm["metadata"]["labels"]["app"], "demo");
        assert!(
            cm["metadata"].get("namespace").is_none(),
            "a literal namespace is dropped"
        );
        let thing = &p.objects[1];
        assert_eq!(
            thing["metadata"]["namespace"], "web",
            "a parameterised namespace stays"
        );
        assert_eq!(thing["spec"]["replicas"], json!(3));
        assert_eq!(thing["spec"]["flag"], json!(true));
        assert_eq!(thing["spec"]["text"], json!("a b"));
        assert_eq!(thing["spec"]["s"], json!("3"));
        assert_eq!(p.message.as_deref(), Some("made web"));
        let secret = cm["data"]["secret"].as_str().unwrap();
        assert_eq!(secret.len(), 40);
        assert!(
            secret
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(p.values["SECRET"], secret);
    }

    #[test]
    fn a_given_value_wins_over_default_and_generator() {
        let p = process(
            &template(SAMPLE),
            &[("NAME", "a"), ("APP", "b"), ("SECRET", "given")],
        )
        .unwrap();
        assert_eq!(p.objects[0]["data"]["both"], "a/b");
        assert_eq!(p.objects[0]["data"]["secret"], "given");
    }

    #[test]
    fn a_required_parameter_without_value_is_an_error() {
        let e = process(&template(SAMPLE), &[]).unwrap_err();
        assert!(e.contains("NAME is required"), "{e}");
        let e = process(&template(SAMPLE), &[("NAME", "")]).unwrap_err();
        assert!(e.contains("NAME is required"), "{e}");
    }

    #[test]
    fn an_unknown_parameter_name_is_refused() {
        let e = process(&template(SAMPLE), &[("NAME", "a"), ("NAMES", "b")]).unwrap_err();
        assert_eq!(e, "unknown parameter name \"NAMES\"");
    }

    #[test]
    fn references_to_undeclared_parameters_are_errors() {
        let t = template("kind: Template\nobjects:\n- kind: X\n  metadata: {name: \"${TYPO}\"}\n");
        let e = process(&t, &[]).unwrap_err();
        assert!(e.contains("${TYPO} names no parameter"), "{e}");
        let t = template(
            "kind: Template\nparameters: [{name: A, value: '1'}]\nobjects:\n- kind: X\n  spec: {n: \"x${{A}}\"}\n",
        );
        assert!(process(&t, &[]).unwrap_err().contains("whole string"));
        let t = template(
            "kind: Template\nparameters: [{name: A, value: '1'}]\nobjects:\n- kind: X\n  data: {\"${A}\": v}\n",
        );
        assert!(process(&t, &[]).unwrap_err().contains("key"));
    }

    #[test]
    fn the_expression_generator_follows_its_ranges_and_lengths() {
        let v = generate_expression("[a-zA-Z0-9]{32}").unwrap();
        assert_eq!(v.len(), 32);
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric()));
        let v = generate_expression("test[0-9]{1}x").unwrap();
        assert!(v.starts_with("test") && v.ends_with('x') && v.len() == 6);
        assert!(v.as_bytes()[4].is_ascii_digit());
        let v = generate_expression("0x[A-F0-9]{4}").unwrap();
        assert!(v.starts_with("0x") && v[2..].chars().all(|c| c.is_ascii_hexdigit()));
        let v = generate_expression("[0-1]{64}").unwrap();
        assert!(v.chars().all(|c| c == '0' || c == '1'));
        let v = generate_expression("[\\d]{10}").unwrap();
        assert!(v.chars().all(|c| c.is_ascii_digit()));
        let v = generate_expression("[\\w]{50}").unwrap();
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let v = generate_expression("[\\a]{50}").unwrap();
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric()));
        let v = generate_expression("[\\A]{20}").unwrap();
        assert!(v.chars().all(|c| SYMBOLS.contains(c)));
        // Two generators in one expression, each drawn separately.
        let v = generate_expression("[a-z]{3}-[0-9]{3}").unwrap();
        assert!(v.len() == 7 && v.as_bytes()[3] == b'-');
        assert!(generate_expression("[a-z]{0}").is_err());
        assert!(generate_expression("[a-z]{256}").is_err());
        assert!(generate_expression("[z-a]{3}").is_err());
        // Not a generator: kept as is.
        assert_eq!(generate_expression("plain").unwrap(), "plain");
        // Random: two 40-character values differ.
        assert_ne!(
            generate_expression("[a-f0-9]{40}").unwrap(),
            generate_expression("[a-f0-9]{40}").unwrap()
        );
    }

    #[test]
    fn conflicting_template_labels_are_errors() {
        let t = template(
            "kind: Template\nlabels: {role: a}\nobjects:\n- kind: X\n  metadata: {labels: {role: b}}\n",
        );
        assert!(process(&t, &[]).unwrap_err().contains("conflicts"));
    }
}
