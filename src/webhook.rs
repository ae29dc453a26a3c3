//! Calling OpenShift's generic BuildConfig webhook (`ferry trigger`).
//!
//! The endpoint is
//! `POST <api>/apis/build.openshift.io/v1/namespaces/<ns>/buildconfigs/<name>/webhooks/<secret>/generic`
//! (OpenShift 3.11 also: `/oapi/v1/namespaces/…`), with `Content-Type: application/json` and
//! the payload `{"env":[{"name":…,"value":…}]}`. What OpenShift answers (openshift-apiserver,
//! `pkg/build/apiserver/registry/buildconfig/webhook.go` and `webhook/generic/generic.go`):
//!
//! - 200 with the new `Build` object (JSON) when a build was started;
//! - 200 with the `Build` *followed by* a `Status` object (`"status":"Success","code":200`)
//!   carrying a warning: `invalid Content-Type on payload, ignoring payload and continuing with
//!   build`, `error unmarshalling payload: …, ignoring payload and continuing with build` (for
//!   instance `env` given as a map) — the build runs, without the parameters; or `no git
//!   information found in payload, ignoring and continuing with build` when the BuildConfig has
//!   a git source — harmless, the parameters were taken;
//! - 200 with only a `Status` when no build was started (`skipping build. …`);
//! - 401 `Status` "the webhook \"generic\" for \"NAME\" did not accept your secret" for a wrong
//!   secret, an unknown BuildConfig, or one without a generic trigger (OpenShift does not tell
//!   which);
//! - 403 for a caller without `system:webhook` (anonymous callers on new 4.16+ clusters);
//! - 404 for an unknown webhook type, 405 for another method than POST, 400/500 otherwise.
//!
//! Env vars are only passed when the trigger has `allowEnv: true`; without it they are dropped
//! silently. ferry checks the returned `Build` and reports parameters that did not arrive.
//!
//! The secret is a path segment of the URL: every URL ferry prints goes through
//! [`Redactor::url`], every text from the server through [`Redactor::text`].

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::error::{Error, Location, Result};
use crate::http::chain;
use crate::redact::{self, Secret};
use crate::tls::TlsOptions;

/// The warning OpenShift gives when it ran the build but dropped the payload.
pub const PAYLOAD_IGNORED: &str = "ignoring payload and continuing with build";
/// The warning OpenShift gives when a BuildConfig with a git source gets no git information:
/// the env vars were taken, only the revision is the configured one.
pub const NO_GIT_INFO: &str = "no git information found in payload";

/// One `--env NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl std::str::FromStr for EnvVar {
    type Err = String;

    /// `NAME=VALUE` (split at the first `=`; the value may be empty). The name must be a valid
    /// Kubernetes env var name (`[-._a-zA-Z][-._a-zA-Z0-9]*`), as OpenShift validates it.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let Some((name, value)) = s.split_once('=') else {
            return Err(format!("expected NAME=VALUE, got {s:?}"));
        };
        if !is_env_name(name) {
            return Err(format!(
                "{name:?} is not a valid environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)"
            ));
        }
        Ok(EnvVar {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

/// Kubernetes' `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    match chars.next() {
        Some(c) if ok(c) && !c.is_ascii_digit() => chars.all(ok),
        _ => false,
    }
}

/// The request body: `{"env":[{"name":…,"value":…},…]}` (a list, never a map).
pub fn payload(env: &[EnvVar]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Payload<'a> {
        env: &'a [EnvVar],
    }
    serde_json::to_vec(&Payload { env }).expect("payload serialises")
}

/// Which BuildConfig's webhook to call.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API server, `https://api.example.com:6443` (a path prefix is kept).
    pub api_url: Url,
    /// Namespace (project) of the BuildConfig.
    pub namespace: String,
    /// BuildConfig name.
    pub buildconfig: String,
    /// Use OpenShift 3.11's `/oapi/v1/…` path.
    pub legacy_oapi: bool,
}

impl Target {
    /// Check the API URL and names. `insecure` is `--tls-verify=false` (which allows `http://`).
    pub fn new(
        api_url: &str,
        namespace: &str,
        buildconfig: &str,
        legacy_oapi: bool,
        insecure: bool,
    ) -> Result<Self> {
        let api = Url::parse(api_url).map_err(|e| {
            Error::usage(format!("--api-url {api_url:?} is not a URL ({e}); expected e.g. https://api.example.com:6443"))
        })?;
        match api.scheme() {
            "https" => {}
            "http" if insecure => {}
            "http" => {
                return Err(Error::usage(
                    "--api-url is http://: the webhook secret would travel in clear text (pass --tls-verify=false to allow it)",
                ));
            }
            other => {
                return Err(Error::usage(format!(
                    "--api-url must be an https:// URL, not {other}://"
                )));
            }
        }
        if !api.username().is_empty() || api.password().is_some() {
            return Err(Error::usage(
                "--api-url must not carry credentials (use --token-file for a bearer token)",
            ));
        }
        if api.query().is_some() || api.fragment().is_some() || api.cannot_be_a_base() {
            return Err(Error::usage(
                "--api-url must be the API server's base URL, without query or fragment",
            ));
        }
        for (what, v) in [("--namespace", namespace), ("--buildconfig", buildconfig)] {
            if !is_object_name(v) {
                return Err(Error::usage(format!(
                    "{what} {v:?} is not a valid OpenShift name (lower-case letters, digits, '-' and '.')"
                )));
            }
        }
        Ok(Target {
            api_url: api,
            namespace: namespace.to_string(),
            buildconfig: buildconfig.to_string(),
            legacy_oapi,
        })
    }

    /// The webhook URL with `secret` as a (percent-encoded) path segment.
    pub fn url(&self, secret: &Secret) -> Url {
        let mut u = self.api_url.clone();
        {
            let mut segs = u.path_segments_mut().expect("checked: a base URL");
            segs.pop_if_empty();
            if self.legacy_oapi {
                segs.extend(["oapi", "v1"]);
            } else {
                segs.extend(["apis", "build.openshift.io", "v1"]);
            }
            segs.extend([
                "namespaces",
                &self.namespace,
                "buildconfigs",
                &self.buildconfig,
                "webhooks",
                secret.expose(),
                "generic",
            ]);
        }
        u
    }

    /// `namespace/buildconfig`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.namespace, self.buildconfig)
    }
}

/// A Kubernetes object name as it may appear in the webhook path: a DNS subdomain.
fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Check a webhook secret before it goes into a URL path.
pub fn check_secret(secret: &Secret) -> Result<()> {
    let v = secret.expose();
    if v.is_empty() {
        return Err(Error::usage("the webhook secret is empty"));
    }
    if v.contains('/') {
        return Err(Error::usage(
            "the webhook secret contains '/': OpenShift cannot take it in the webhook URL (generate one with e.g. `openssl rand -hex 20`)",
        ));
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::usage(
            "the webhook secret contains whitespace or control characters (a stray newline in the Secret?)",
        ));
    }
    Ok(())
}

/// Removes the webhook secret (and the bearer token) from anything printed.
pub struct Redactor<'a> {
    secrets: Vec<&'a Secret>,
    /// Percent-encoded forms of the secrets.
    encoded: Vec<String>,
}

impl<'a> Redactor<'a> {
    /// A redactor for these secrets.
    pub fn new(secrets: Vec<&'a Secret>) -> Self {
        let mut encoded = Vec::new();
        for s in &secrets {
            if s.expose().len() < 4 {
                continue;
            }
            encoded.push(
                percent_encoding::utf8_percent_encode(
                    s.expose(),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            );
            // The form the URL crate gives a path segment (it leaves more characters alone).
            let mut u = Url::parse("http://x/").expect("valid URL");
            u.path_segments_mut().expect("base URL").push(s.expose());
            encoded.push(u.path()[1..].to_string());
        }
        Redactor { secrets, encoded }
    }

    /// `text` with every secret (plain, base64, percent-encoded) replaced by `<redacted>`.
    pub fn text(&self, text: &str) -> String {
        let mut out = redact::scrub(text, &self.secrets);
        for e in &self.encoded {
            out = out.replace(e.as_str(), "<redacted>");
        }
        out
    }

    /// A URL safe to print: the secret path segment replaced.
    pub fn url(&self, u: &Url) -> String {
        let mut shown = redact::url(u);
        if let Some(segs) = u.path_segments() {
            let segs: Vec<&str> = segs.collect();
            if let Some(i) = segs.iter().position(|s| *s == "webhooks")
                && i + 2 < segs.len()
            {
                shown = shown.replacen(
                    &format!("/webhooks/{}/", segs[i + 1]),
                    "/webhooks/<redacted>/",
                    1,
                );
            }
        }
        self.text(&shown)
    }
}

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
        |reason: String| Error::Usage(format!("webhook of buildconfig {bc} at {loc}: {reason}"));
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

/// Everything `trigger` needs.
pub struct Call<'a> {
    /// Which webhook.
    pub target: &'a Target,
    /// The webhook secret.
    pub secret: &'a Secret,
    /// Parameters.
    pub env: &'a [EnvVar],
    /// Bearer token for clusters that refuse anonymous webhook calls.
    pub token: Option<&'a Secret>,
    /// TLS settings.
    pub tls: &'a TlsOptions,
    /// Time allowed for the whole call.
    pub timeout: Duration,
}

/// POST the webhook once (never retried: a retry could start a second build) and judge the
/// answer.
pub async fn trigger(call: Call<'_>) -> Result<Triggered> {
    check_secret(call.secret)?;
    let mut secrets = vec![call.secret];
    if let Some(t) = call.token {
        secrets.push(t);
    }
    let redactor = Redactor::new(secrets);
    let target = call.target;
    let url = target.url(call.secret);
    let host = target.api_url.host_str().unwrap_or_default().to_string();
    let host_port = match target.api_url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let loc = Location {
        registry: host_port.clone(),
        repository: String::new(),
    };
    let b = crate::tls::client_builder(call.tls, &host_port)?
        .connect_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    let http = b.build().map_err(|e| {
        Error::usage(format!(
            "cannot set up TLS for {host_port}: {}",
            redactor.text(&chain(&e.without_url()))
        ))
    })?;
    let mut req = http
        .post(url.clone())
        .timeout(call.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(payload(call.env));
    if let Some(t) = call.token {
        req = req.bearer_auth(t.expose());
    }
    log::debug!(
        "POST {} with {} env var(s): {}",
        redactor.url(&url),
        call.env.len(),
        call.env
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let resp = req.send().await.map_err(|e| {
        // Unless the connection never opened, OpenShift may have started a build.
        let maybe_sent = !e.is_connect();
        let e = e.without_url();
        let mut reason = redactor.text(&chain(&e));
        if let Some(t) = crate::tls::classify(&e) {
            reason = match t {
                crate::tls::TlsFailure::PlainHttp => format!(
                    "the API server at {host_port} answered in plain HTTP, not HTTPS (an http:// --api-url needs --tls-verify=false)"
                ),
                _ => format!("{reason} (TLS: pass the API server's CA with --cert-dir)"),
            };
        } else if maybe_sent {
            reason = format!(
                "{reason}: the build could not be confirmed (see `oc get builds -n {}`)",
                target.namespace
            );
        }
        Error::Network {
            op: format!("calling the webhook of buildconfig {}", target.name()),
            location: loc.clone(),
            reason,
            transient: false,
        }
    })?;
    let status = resp.status().as_u16();
    let read = crate::http::read_limited(resp, MAX_ANSWER, call.timeout).await;
    let (body, unread) = match read {
        Ok(b) => (b, None),
        Err(crate::http::ReadError::TooLarge) => (
            Default::default(),
            Some(format!("an answer larger than {} MiB", MAX_ANSWER >> 20)),
        ),
        Err(crate::http::ReadError::Stalled(d)) => (
            Default::default(),
            Some(format!(
                "an answer that stalled ({} s without data)",
                d.as_secs()
            )),
        ),
        Err(crate::http::ReadError::Http(e)) => (
            Default::default(),
            Some(format!(
                "an answer that could not be read: {}",
                chain(&e.without_url())
            )),
        ),
    };
    log::debug!(
        "POST {} -> {status} ({} bytes)",
        redactor.url(&url),
        body.len()
    );
    let mut answer = parse_answer(status, &body);
    if let Some(u) = unread {
        answer.summary = u;
    }
    judge(&answer, target, call.env, &redactor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(legacy: bool) -> Target {
        Target::new(
            "https://api.example.com:6443",
            "prod",
            "production-pipeline",
            legacy,
            false,
        )
        .unwrap()
    }

    #[test]
    fn env_args() {
        assert_eq!(
            "GIT_COMMIT=abc=1".parse::<EnvVar>().unwrap(),
            EnvVar {
                name: "GIT_COMMIT".into(),
                value: "abc=1".into()
            }
        );
        assert_eq!("A=".parse::<EnvVar>().unwrap().value, "");
        for bad in ["A", "=x", "1A=x", "A B=x", "A/B=x"] {
            assert!(bad.parse::<EnvVar>().is_err(), "{bad}");
        }
        assert!(is_env_name("a.b-c_D"));
    }

    #[test]
    fn payload_is_a_list() {
        let env = vec![EnvVar {
            name: "A".into(),
            value: "1".into(),
        }];
        assert_eq!(payload(&env), br#"{"env":[{"name":"A","value":"1"}]}"#);
        assert_eq!(payload(&[]), br#"{"env":[]}"#);
    }

    #[test]
    fn urls_and_redaction() {
        let s = Secret::new("s3cr3t+/x?");
        let t = target(false);
        let u = t.url(&s);
        assert_eq!(
            u.path(),
            "/apis/build.openshift.io/v1/namespaces/prod/buildconfigs/production-pipeline/webhooks/s3cr3t+%2Fx%3F/generic"
        );
        let r = Redactor::new(vec![&s]);
        let shown = r.url(&u);
        assert_eq!(
            shown,
            "https://api.example.com:6443/apis/build.openshift.io/v1/namespaces/prod/buildconfigs/production-pipeline/webhooks/<redacted>/generic"
        );
        assert!(!r.text(&format!("404 page for {u}")).contains("s3cr3t"));
        let legacy = target(true).url(&Secret::new("abcd"));
        assert!(
            legacy.path().starts_with("/oapi/v1/namespaces/prod/"),
            "{legacy}"
        );
        let prefixed = Target::new("https://h/prefix/", "a", "b", false, false).unwrap();
        assert!(
            prefixed
                .url(&Secret::new("abcd"))
                .path()
                .starts_with("/prefix/apis/")
        );
    }

    #[test]
    fn refuses_bad_targets_and_secrets() {
        assert!(Target::new("http://h", "a", "b", false, false).is_err());
        assert!(Target::new("http://h", "a", "b", false, true).is_ok());
        assert!(Target::new("https://u:p@h", "a", "b", false, false).is_err());
        assert!(Target::new("ftp://h", "a", "b", false, false).is_err());
        assert!(Target::new("https://h", "A", "b", false, false).is_err());
        assert!(Target::new("https://h", "a", "b/c", false, false).is_err());
        assert!(check_secret(&Secret::new("a/b")).is_err());
        assert!(check_secret(&Secret::new("abc\n")).is_err());
        assert!(check_secret(&Secret::new("")).is_err());
        assert!(check_secret(&Secret::new("0123abcd")).is_ok());
    }

    fn build_json(env: &str) -> String {
        format!(
            r#"{{"kind":"Build","apiVersion":"build.openshift.io/v1","metadata":{{"name":"production-pipeline-3","namespace":"prod"}},"spec":{{"strategy":{{"type":"JenkinsPipeline","jenkinsPipelineStrategy":{{"env":{env}}}}}}}}}"#
        )
    }

    fn warning(msg: &str) -> String {
        format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Success","message":"{msg}","code":200}}"#
        )
    }

    #[test]
    fn judges_answers() {
        let t = target(false);
        let s = Secret::new("topsecret");
        let r = Redactor::new(vec![&s]);
        let sent = vec![EnvVar {
            name: "GIT_COMMIT".into(),
            value: "abc".into(),
        }];
        let ok = build_json(r#"[{"name":"GIT_COMMIT","value":"abc"},{"name":"X"}]"#);

        let a = parse_answer(200, ok.as_bytes());
        let got = judge(&a, &t, &sent, &r).unwrap();
        assert_eq!(got.build.name, "production-pipeline-3");

        // A BuildConfig with a git source: harmless warning after the Build.
        let body = format!(
            "{ok}\n{}",
            warning("no git information found in payload, ignoring and continuing with build")
        );
        let got = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r).unwrap();
        assert_eq!(got.notes.len(), 1);

        // The payload was ignored: an error naming the build.
        let body = format!(
            "{}\n{}",
            build_json("[]"),
            warning(
                "error unmarshalling payload: json: cannot unmarshal object into Go struct field GenericWebHookEvent.env of type []v1.EnvVar, ignoring payload and continuing with build"
            )
        );
        let e = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ignoring payload") && e.contains("production-pipeline-3"),
            "{e}"
        );

        // allowEnv false: no warning, but the parameters are not in the build.
        let body = build_json(r#"[{"name":"GIT_COMMIT","value":""}]"#);
        let e = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowEnv") && e.contains("GIT_COMMIT"), "{e}");

        // No build at all.
        let body =
            warning("skipping build. Branch reference from \\\"x\\\" does not match configuration");
        let e = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("started no build"), "{e}");

        // Wrong secret, forbidden, plain-text errors echoing the secret.
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the webhook \"generic\" for \"production-pipeline\" did not accept your secret","reason":"Unauthorized","code":401}"#;
        let e = judge(&parse_answer(401, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 401") && e.contains("did not accept your secret"),
            "{e}"
        );
        let e = judge(&parse_answer(403, b"{}"), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("system:webhook"), "{e}");
        let e = judge(
            &parse_answer(404, b"no route /webhooks/topsecret/generic\n"),
            &t,
            &sent,
            &r,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("<redacted>") && !e.contains("topsecret"), "{e}");

        // A 2xx answer that names no build proves nothing.
        for (body, needle) in [
            (&b""[..], "an empty answer"),
            (
                b"<html>\n<body>Welcome topsecret</body></html>",
                "<html> <body>Welcome <redacted>",
            ),
            (
                b"{\"kind\":\"Build\",\"metadata\":{}}",
                "the answer: {\"kind\":\"Build\"",
            ),
        ] {
            let e = judge(&parse_answer(200, body), &t, &sent, &r)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("the build could not be confirmed") && e.contains(needle),
                "{e}"
            );
            assert!(!e.contains("topsecret"), "{e}");
        }
    }
}
