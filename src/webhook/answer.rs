//! What OpenShift's generic webhook answers, read and judged: the `Build` it started, the
//! `Status` it adds (payload ignored, no git information, skipped), and whether the build that
//! runs got the parameters (see the table in [`super`]).

use serde_json::Value;

use super::{EnvVar, NO_GIT_INFO, Redactor, Target};
use crate::error::{Error, Location, Result};

/// The build OpenShift started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedBuild {
    /// `metadata.name`, e.g. `production-pipeline-7`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// The strategy's env as the build has it (`None` when the answer does not show it).
    pub env: Option<Vec<(String, Option<String>)>>,
}

/// A `Status` object of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStatus {
    /// `status`: `Success` or `Failure`.
    pub status: String,
    /// `message`.
    pub message: String,
    /// `reason`: `Unauthorized`, `Forbidden`, `NotFound`, …
    pub reason: Option<String>,
    /// `code`.
    pub code: Option<u16>,
}

/// The webhook's answer, parsed: OpenShift writes one or two JSON documents one after the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Build`, if the answer holds one.
    pub build: Option<StartedBuild>,
    /// `Status` objects (warnings on a 200, the error otherwise).
    pub statuses: Vec<ApiStatus>,
    /// The body when it was not JSON (first line, shortened), for messages.
    pub text: Option<String>,
    /// What the body was, for messages: `an empty answer`, or its start on one line.
    pub summary: String,
}

/// The longest answer ferry reads from the webhook.
pub const MAX_ANSWER: usize = 4 << 20;

/// A body's start on one line (whitespace runs collapsed, control characters dropped), at
/// most 200 characters.
pub fn summarize(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(body);
    let one: String = t
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if one.is_empty() {
        return "an empty answer".into();
    }
    let mut end = one.len().min(200);
    while !one.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < one.len() { "…" } else { "" };
    format!("the answer: {}{more}", &one[..end])
}

/// Parse a webhook answer body (whatever its `Content-Type`: OpenShift's is not always JSON's).
pub fn parse_answer(status: u16, body: &[u8]) -> Answer {
    let mut a = Answer {
        status,
        summary: summarize(body),
        ..Answer::default()
    };
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut parsed_any = false;
    for v in stream.by_ref() {
        let Ok(v) = v else { break };
        parsed_any = true;
        match v.get("kind").and_then(Value::as_str) {
            Some("Build") => a.build = Some(build_of(&v)),
            Some("Status") => a.statuses.push(ApiStatus {
                status: str_of(&v, "status").unwrap_or_default(),
                message: str_of(&v, "message").unwrap_or_default(),
                reason: str_of(&v, "reason"),
                code: v.get("code").and_then(Value::as_u64).map(|c| c as u16),
            }),
            _ => {}
        }
    }
    if !parsed_any {
        let t = String::from_utf8_lossy(body);
        let line = t
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        if !line.is_empty() {
            let mut end = line.len().min(200);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            a.text = Some(line[..end].to_string());
        }
    }
    a
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn build_of(v: &Value) -> StartedBuild {
    let meta = v.get("metadata");
    let strategy = v.pointer("/spec/strategy");
    let env = strategy.and_then(|s| {
        [
            "jenkinsPipelineStrategy",
            "sourceStrategy",
            "dockerStrategy",
            "customStrategy",
        ]
        .iter()
        .find_map(|k| s.get(*k))
        .map(|st| {
            st.get("env")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|e| {
                            Some((
                                e.get("name")?.as_str()?.to_string(),
                                e.get("value").and_then(Value::as_str).map(str::to_string),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    });
    StartedBuild {
        name: meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        namespace: meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string),
        env,
    }
}

/// What a successful call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered {
    /// The build started (the answer named it).
    pub build: StartedBuild,
    /// Harmless warnings OpenShift gave (e.g. no git information).
    pub notes: Vec<String>,
}

/// Decide what an answer means: `Ok` only when a build was started with the parameters sent.
pub fn judge(
    answer: &Answer,
    target: &Target,
    sent: &[EnvVar],
    redactor: &Redactor<'_>,
) -> Result<Triggered> {
    let loc = Location {
        registry: target.api_url.host_str().unwrap_or_default().to_string(),
        repository: String::new(),
    };
    let bc = target.name();
    let server_says = || -> String {
        let m = answer
            .statuses
            .iter()
            .map(|s| s.message.as_str())
            .find(|m| !m.is_empty())
            .map(str::to_string)
            .or_else(|| answer.text.clone());
        match m {
            Some(m) => format!(": {}", redactor.text(&m)),
            None => String::new(),
        }
    };
    let fail =
        |reason: String| Error::Trigger(format!("webhook of buildconfig {bc} at {loc}: {reason}"));
    match answer.status {
        200..=299 => {}
        401 => {
            return Err(fail(format!(
                "HTTP 401{}: the secret is wrong, or the BuildConfig does not exist or has no Generic trigger (OpenShift does not say which)",
                server_says()
            )));
        }
        403 => {
            return Err(fail(format!(
                "HTTP 403{}: the caller may not use the webhook; OpenShift 4.16+ clusters need a RoleBinding granting system:webhook to system:unauthenticated in the namespace, or a token of an allowed account (--token-file)",
                server_says()
            )));
        }
        404 => {
            return Err(fail(format!(
                "HTTP 404{}: check --api-url and --namespace (and --legacy-oapi, only for OpenShift 3.11)",
                server_says()
            )));
        }
        s => return Err(fail(format!("HTTP {s}{}", server_says()))),
    }
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    for s in &answer.statuses {
        let msg = redactor.text(&s.message);
        if s.status == "Failure" {
            problems.push(msg);
        } else if s.message.contains(NO_GIT_INFO) {
            notes.push(msg);
        } else if !msg.is_empty() {
            problems.push(msg);
        }
    }
    if !problems.is_empty() {
        let what = match &answer.build {
            Some(b) if !b.name.is_empty() => format!(
                "OpenShift started build {} but warned: {} (the build runs without the parameters: cancel it with `oc cancel-build {} -n {}`)",
                b.name,
                problems.join("; "),
                b.name,
                target.namespace
            ),
            _ => format!("OpenShift started no build: {}", problems.join("; ")),
        };
        return Err(fail(what));
    }
    if let Some(b) = &answer.build
        && let Some(env) = &b.env
    {
        let missing: Vec<&str> = sent
            .iter()
            .filter(|e| {
                !env.iter()
                    .any(|(n, v)| n == &e.name && v.as_deref().unwrap_or("") == e.value)
            })
            .map(|e| e.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(fail(format!(
                "OpenShift started build {} without the parameters {} (the Generic trigger needs `allowEnv: true`)",
                b.name,
                missing.join(", ")
            )));
        }
    }
    // Success means a build was started: an answer that does not name it proves nothing.
    let Some(build) = answer.build.clone().filter(|b| !b.name.is_empty()) else {
        return Err(fail(format!(
            "OpenShift answered HTTP {} without naming a started build, so the build could not be confirmed ({})",
            answer.status,
            redactor.text(&answer.summary)
        )));
    };
    Ok(Triggered { build, notes })
}
