//! A stand-in for OpenShift's generic BuildConfig webhook endpoint.
//!
//! It answers `…/namespaces/<ns>/buildconfigs/<name>/webhooks/<secret>/<type>` under
//! `/apis/build.openshift.io/v1` and (OpenShift 3.11) `/oapi/v1` the way openshift-apiserver
//! does (`pkg/build/apiserver/registry/buildconfig/webhook.go`,
//! `pkg/build/apiserver/webhook/generic/generic.go`, `…/webhook/webhook.go`):
//!
//! - authentication first: a bearer token that is not the configured one → 401 `Unauthorized`;
//!   with [`WebhookOptions::require_token`] (a 4.16+ cluster without the `system:webhook`
//!   RoleBinding for `system:unauthenticated`), an anonymous caller → 403 `Forbidden`;
//! - only POST (405 otherwise); a subpath that is not `<secret>/<type>` → 400 (whose message
//!   quotes the subpath, secret included, as OpenShift's does); a type other than the four
//!   webhook plugins → 404;
//! - an unknown BuildConfig, one without a Generic trigger, or a wrong secret → 401
//!   `the webhook "generic" for "NAME" did not accept your secret`;
//! - `Content-Type` other than `application/json`/`application/yaml` (or none) → the build
//!   runs, payload ignored, with the warning `invalid Content-Type on payload, ignoring payload
//!   and continuing with build`; an empty body → the build runs with the BuildConfig's values;
//!   a body that does not decode into `GenericWebHookEvent` (for instance `env` as a map) → the
//!   build runs without parameters, warning `error unmarshalling payload: …, ignoring payload
//!   and continuing with build`;
//! - `env` is taken only with `allowEnv: true` (silently dropped otherwise); the build's
//!   strategy env is the BuildConfig's env overridden by the payload's (`UpdateBuildEnv`);
//! - a BuildConfig with a git source and no `git` in the payload: warning `no git information
//!   found in payload, ignoring and continuing with build`, env kept; a `git.ref` (or `refs`)
//!   that does not match the BuildConfig's → no build, warning `skipping build. …`;
//! - the answer: status 200, the `Build` (compact JSON, newline) followed by the warning's
//!   `Status` when there is one, written without a JSON `Content-Type` (Go sniffs
//!   `text/plain; charset=utf-8` because the handler writes the body itself).
//!
//! There is no Jenkins: each started build is recorded with the parameters Jenkins would see
//! — only the names declared in the BuildConfig's `jenkinsPipelineStrategy.env` (the mission's
//! rule; the Jenkinsfile declares the same names) — and the test then runs the production
//! stage itself with [`StartedBuild::stage_env`].
//!
//! Why one file (about 770 lines): it is one endpoint of openshift-apiserver, and the rules above
//! are applied in the order OpenShift applies them, in one handler (`answer`) next to the
//! payload decoding they depend on; split, the order would be spread over files that each
//! make sense only with the other.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::token::{TlsListener, server_tls_config};

/// One BuildConfig of the stand-in (JenkinsPipeline strategy).
#[derive(Clone, Debug)]
pub struct BuildConfig {
    pub namespace: String,
    pub name: String,
    /// The generic trigger: `None` when the BuildConfig has none.
    pub generic: Option<GenericTrigger>,
    /// `jenkinsPipelineStrategy.env`: declared parameters and their default values.
    pub env: Vec<(String, String)>,
    /// `spec.source.git.ref` when the BuildConfig has a git source (the Jenkinsfile's repo).
    pub git_ref: Option<String>,
}

/// `spec.triggers[].generic`.
#[derive(Clone, Debug)]
pub struct GenericTrigger {
    /// The value of `WebHookSecretKey` in the Secret the trigger references.
    pub secret: String,
    pub allow_env: bool,
}

impl BuildConfig {
    /// The production pipeline of the kit (`templates/prod-pipeline.yaml`): git source on
    /// `main`, Generic trigger with `allowEnv: true`, and as parameters only what the webhook
    /// may choose — the image name, the non-production project, the tag (the registries and
    /// the production project are pinned by the promotion config).
    pub fn production_pipeline(namespace: &str, secret: &str) -> BuildConfig {
        BuildConfig {
            namespace: namespace.to_string(),
            name: "production-pipeline".to_string(),
            generic: Some(GenericTrigger {
                secret: secret.to_string(),
                allow_env: true,
            }),
            env: ["IMAGE_NAME", "NON_PROD_PROJECT_NAME", "GIT_COMMIT"]
                .iter()
                .map(|n| (n.to_string(), String::new()))
                .collect(),
            git_ref: Some("main".to_string()),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WebhookOptions {
    pub buildconfigs: Vec<BuildConfig>,
    /// A 4.16+ cluster: anonymous callers get 403; this bearer token is allowed.
    pub require_token: Option<String>,
    /// Serve HTTPS with the lab CA's server certificate (as an API server), not HTTP.
    pub tls: bool,
}

/// One request the stand-in answered.
#[derive(Clone, Debug)]
pub struct WebhookCall {
    pub method: String,
    /// The path as sent (secret included).
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
    pub response: String,
}

/// A build the stand-in started ("Jenkins" runs it).
#[derive(Clone, Debug)]
pub struct StartedBuild {
    pub namespace: String,
    pub buildconfig: String,
    pub number: u64,
    pub name: String,
    /// The build's strategy env (BuildConfig env overridden by the payload's).
    pub env: Vec<(String, String)>,
    /// What Jenkins gets as build parameters: the declared names only.
    pub parameters: Vec<(String, String)>,
}

impl StartedBuild {
    /// The environment of the pipeline's `sh` step: the parameters plus Jenkins' own
    /// `JOB_NAME`, `BUILD_NUMBER`, `BUILD_URL` (job named `<ns>/<ns>-<bc>` as the sync plugin
    /// names it).
    pub fn stage_env(&self) -> Vec<(String, String)> {
        let job = format!("{}/{}-{}", self.namespace, self.namespace, self.buildconfig);
        let mut env = self.parameters.clone();
        env.push(("JOB_NAME".into(), job));
        env.push(("BUILD_NUMBER".into(), self.number.to_string()));
        env.push((
            "BUILD_URL".into(),
            format!(
                "https://jenkins.example.invalid/job/{}/job/{}-{}/{}/",
                self.namespace, self.namespace, self.buildconfig, self.number
            ),
        ));
        env
    }

    /// One parameter's value.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    opts: WebhookOptions,
    calls: Mutex<Vec<WebhookCall>>,
    builds: Mutex<Vec<StartedBuild>>,
}

/// The running stand-in; stopped when dropped.
pub struct WebhookServer {
    addr: SocketAddr,
    tls: bool,
    cert_dir: Option<tempfile::TempDir>,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookServer {
    pub fn start(opts: WebhookOptions) -> WebhookServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the webhook");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("webhook address");
        let tls = opts.tls;
        let state = Arc::new(State {
            opts,
            ..State::default()
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("ferry-lab-webhook-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("webhook runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("webhook listener");
                    if tls {
                        let listener = TlsListener {
                            inner: listener,
                            acceptor: tokio_rustls::TlsAcceptor::from(server_tls_config()),
                        };
                        tokio::select! {
                            r = axum::serve(listener, app) => r.expect("webhook server"),
                            _ = rx => {}
                        }
                    } else {
                        tokio::select! {
                            r = axum::serve(listener, app) => r.expect("webhook server"),
                            _ = rx => {}
                        }
                    }
                });
            })
            .expect("spawning the webhook thread");
        let cert_dir = tls.then(|| {
            let dir = tempfile::Builder::new()
                .prefix("ferry-lab-webhook-certs-")
                .tempdir()
                .expect("temp dir");
            super::pki::lab_ca().write_cert_dir(dir.path(), None);
            dir
        });
        WebhookServer {
            addr,
            tls,
            cert_dir,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The API server URL to give `ferry trigger --api-url` (plain HTTP needs
    /// `--tls-verify=false`).
    pub fn api_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// With `tls`: a directory holding the lab CA as `ca.crt` (the API server's CA).
    pub fn cert_dir(&self) -> Option<&std::path::Path> {
        self.cert_dir.as_ref().map(|d| d.path())
    }

    /// Every request answered so far (recorded before the answer is sent).
    pub fn calls(&self) -> Vec<WebhookCall> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Every build started so far.
    pub fn builds(&self) -> Vec<StartedBuild> {
        self.state.builds.lock().unwrap().clone()
    }

    /// Send a raw request (the test's own client, not ferry): (status, body).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.api_url());
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = body.map(<[u8]>::to_vec);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            crate::support::crypto_provider();
            let mut b = reqwest::Client::builder()
                .user_agent(super::LAB_USER_AGENT)
                .no_proxy();
            if self.tls {
                let ca = reqwest::Certificate::from_pem(super::pki::lab_ca().ca_pem.as_bytes())
                    .expect("lab CA");
                b = b.tls_certs_only([ca]);
            }
            let client = b.build().expect("client");
            let mut req = client.request(method, url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if let Some(b) = body {
                req = req.body(b);
            }
            let resp = req.send().await.expect("webhook unreachable");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        })
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A Kubernetes `Status` object.
fn status_json(status: &str, code: u16, reason: Option<&str>, message: &str) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "message": message,
        "code": code,
    });
    if let Some(r) = reason {
        v["reason"] = json!(r);
    }
    v
}

fn failure(code: u16, reason: &str, message: &str) -> (u16, String, &'static str) {
    (
        code,
        format!("{}\n", status_json("Failure", code, Some(reason), message)),
        "application/json",
    )
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn handle(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, text, content_type) = answer(&st, &method, &uri, &headers, &body);
    st.calls.lock().unwrap().push(WebhookCall {
        method: method.to_string(),
        path: uri.path().to_string(),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        authorization: header_str(&headers, header::AUTHORIZATION),
        user_agent: header_str(&headers, header::USER_AGENT),
        body: body.to_vec(),
        status,
        response: text.clone(),
    });
    (
        StatusCode::from_u16(status).expect("status"),
        [(header::CONTENT_TYPE, content_type)],
        text,
    )
        .into_response()
}

/// Percent-decode a path segment (the apiserver works on the decoded path).
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn answer(
    st: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (u16, String, &'static str) {
    let path = uri.path();
    let (legacy, rest) = if let Some(r) = path.strip_prefix("/apis/build.openshift.io/v1/") {
        (false, r)
    } else if let Some(r) = path.strip_prefix("/oapi/v1/") {
        (true, r)
    } else {
        return failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let parts: Vec<String> = rest.split('/').map(decode).collect();
    if parts.len() < 5
        || parts[0] != "namespaces"
        || parts[2] != "buildconfigs"
        || parts[4] != "webhooks"
    {
        return failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let (ns, name) = (parts[1].as_str(), parts[3].as_str());

    // Authentication and authorization come first (the apiserver's filter chain).
    let bearer = header_str(headers, header::AUTHORIZATION)
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string));
    match (&bearer, &st.opts.require_token) {
        (Some(t), Some(ok)) if t == ok => {}
        (Some(_), _) => return failure(401, "Unauthorized", "Unauthorized"),
        (None, Some(_)) => {
            return failure(
                403,
                "Forbidden",
                &format!(
                    "buildconfigs.build.openshift.io \"{name}\" is forbidden: User \"system:anonymous\" cannot create resource \"buildconfigs/webhooks\" in API group \"build.openshift.io\" in the namespace \"{ns}\""
                ),
            );
        }
        (None, None) => {}
    }
    if method != Method::POST {
        return failure(
            405,
            "MethodNotAllowed",
            &format!("{method} is not supported on resources of kind \"buildconfighook\""),
        );
    }
    let subpath = parts[5..].join("/");
    if parts.len() != 7 {
        return failure(
            400,
            "BadRequest",
            &format!("unexpected hook subpath /{subpath}"),
        );
    }
    let (secret, hook_type) = (parts[5].as_str(), parts[6].as_str());
    let refused = || {
        failure(
            401,
            "Unauthorized",
            &format!("the webhook \"{hook_type}\" for \"{name}\" did not accept your secret"),
        )
    };
    if !["generic", "github", "gitlab", "bitbucket"].contains(&hook_type) {
        return failure(
            404,
            "NotFound",
            &format!("buildconfighook.build.openshift.io \"{hook_type}\" not found"),
        );
    }
    let Some(bc) = st
        .opts
        .buildconfigs
        .iter()
        .find(|b| b.namespace == ns && b.name == name)
    else {
        return refused();
    };
    // Only the generic plugin is modelled; this BuildConfig has no other trigger.
    let Some(trigger) = bc.generic.as_ref().filter(|_| hook_type == "generic") else {
        return refused();
    };
    if trigger.secret != secret {
        return refused();
    }

    // The generic plugin's Extract.
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let media_type = match content_type.as_deref().map(parse_media_type) {
        None => String::new(),
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            return failure(
                400,
                "BadRequest",
                &format!("error parsing Content-Type: {e}"),
            );
        }
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut warning: Option<String> = None;
    let mut proceed = true;
    if media_type != "application/json" && media_type != "application/yaml" {
        warning = Some(
            "invalid Content-Type on payload, ignoring payload and continuing with build".into(),
        );
    } else if !body.is_empty() {
        let json_body = if media_type == "application/yaml" {
            match serde_yaml::from_slice::<Value>(body) {
                Ok(v) => Ok(v),
                Err(e) => Err(format!(
                    "error converting payload to json: {e}, ignoring payload and continuing with build"
                )),
            }
        } else {
            serde_json::from_slice::<Value>(body).map_err(|e| {
                format!(
                    "error unmarshalling payload: {}, ignoring payload and continuing with build",
                    go_syntax_error(&e)
                )
            })
        };
        match json_body.and_then(|v| {
            decode_event(&v).map_err(|e| {
                format!(
                    "error unmarshalling payload: {e}, ignoring payload and continuing with build"
                )
            })
        }) {
            Err(w) => warning = Some(w),
            Ok(event) => {
                if trigger.allow_env {
                    env = event.env;
                }
                if let Some(config_ref) = &bc.git_ref {
                    match event.git {
                        None => {
                            warning = Some(
                                "no git information found in payload, ignoring and continuing with build"
                                    .into(),
                            );
                        }
                        Some(git) => {
                            let matches = |r: &str| {
                                r.trim_start_matches("refs/heads/")
                                    == config_ref.trim_start_matches("refs/heads/")
                            };
                            if let Some(refs) = git.refs {
                                if !refs.iter().any(|r| matches(r)) {
                                    proceed = false;
                                    warning = Some(format!(
                                        "skipping build. None of the supplied refs matched {config_ref:?}"
                                    ));
                                }
                            } else if !matches(&git.r#ref) {
                                proceed = false;
                                warning = Some(format!(
                                    "skipping build. Branch reference from {:?} does not match configuration",
                                    git.r#ref
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    let warning_json = warning
        .as_ref()
        .map(|w| format!("{}\n", status_json("Success", 200, None, w)));
    if !proceed {
        return (200, warning_json.unwrap_or_default(), "application/json");
    }
    if let Some((bad, _)) = env.iter().find(|(n, _)| !is_env_name(n)) {
        return failure(
            500,
            "InternalError",
            &format!(
                "Internal error occurred: could not generate a build: spec.strategy.jenkinsPipelineStrategy.env[{bad}].name: Invalid value: {bad:?}: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"
            ),
        );
    }

    // Instantiate: UpdateBuildEnv, then "Jenkins" gets the declared names only.
    let mut strategy_env: Vec<(String, String)> = bc
        .env
        .iter()
        .filter(|(n, _)| !env.iter().any(|(m, _)| m == n))
        .cloned()
        .collect();
    strategy_env.extend(env.iter().cloned());
    let parameters: Vec<(String, String)> = bc
        .env
        .iter()
        .map(|(n, _)| {
            let v = strategy_env
                .iter()
                .rev()
                .find(|(m, _)| m == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (n.clone(), v)
        })
        .collect();
    let mut builds = st.builds.lock().unwrap();
    let number = builds
        .iter()
        .filter(|b| b.namespace == bc.namespace && b.buildconfig == bc.name)
        .count() as u64
        + 1;
    let build = StartedBuild {
        namespace: bc.namespace.clone(),
        buildconfig: bc.name.clone(),
        number,
        name: format!("{}-{number}", bc.name),
        env: strategy_env.clone(),
        parameters,
    };
    builds.push(build.clone());
    let env_json: Vec<Value> = strategy_env
        .iter()
        .map(|(n, v)| {
            if v.is_empty() {
                json!({ "name": n })
            } else {
                json!({ "name": n, "value": v })
            }
        })
        .collect();
    let mut source = json!({"type": "None"});
    if let Some(r) = &bc.git_ref {
        source =
            json!({"type": "Git", "git": {"uri": "https://git.example.invalid/kit.git", "ref": r}});
    }
    let build_json = json!({
        "kind": "Build",
        "apiVersion": if legacy { "v1" } else { "build.openshift.io/v1" },
        "metadata": {
            "name": build.name,
            "namespace": build.namespace,
            "labels": {"buildconfig": bc.name, "openshift.io/build-config.name": bc.name},
            "annotations": {"openshift.io/build-config.name": bc.name, "openshift.io/build.number": number.to_string()},
        },
        "spec": {
            "serviceAccount": "builder",
            "source": source,
            "strategy": {
                "type": "JenkinsPipeline",
                "jenkinsPipelineStrategy": {"jenkinsfilePath": "Jenkinsfile.prod", "env": env_json},
            },
            "triggeredBy": [{"message": "Generic WebHook", "genericWebHook": {"secret": "<secret>"}}],
        },
        "status": {"phase": "New", "config": {"kind": "BuildConfig", "namespace": bc.namespace, "name": bc.name}},
    });
    let mut text = format!("{build_json}\n");
    if let Some(w) = warning_json {
        text.push_str(&w);
    }
    (200, text, "text/plain; charset=utf-8")
}

/// `GenericWebHookEvent` as Go's encoding/json decodes it (keys matched case-insensitively,
/// unknown keys ignored, a type mismatch is an error).
struct Event {
    env: Vec<(String, String)>,
    git: Option<GitInfo>,
}

struct GitInfo {
    r#ref: String,
    refs: Option<Vec<String>>,
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn decode_event(v: &Value) -> Result<Event, String> {
    let mismatch = |v: &Value, field: &str, ty: &str| {
        format!(
            "json: cannot unmarshal {} into Go struct field GenericWebHookEvent.{field} of type {ty}",
            kind(v)
        )
    };
    let obj = match v {
        Value::Null => {
            return Ok(Event {
                env: vec![],
                git: None,
            });
        }
        Value::Object(o) => o,
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type v1.GenericWebHookEvent",
                kind(other)
            ));
        }
    };
    let mut env = Vec::new();
    match field(obj, "env") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::Object(e) = item else {
                    if item.is_null() {
                        env.push((String::new(), String::new()));
                        continue;
                    }
                    return Err(mismatch(item, "env", "v1.EnvVar"));
                };
                let get = |k: &str| -> Result<String, String> {
                    match field(e, k) {
                        None | Some(Value::Null) => Ok(String::new()),
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(other) => Err(mismatch(other, &format!("env.{k}"), "string")),
                    }
                };
                env.push((get("name")?, get("value")?));
            }
        }
        Some(other) => return Err(mismatch(other, "env", "[]v1.EnvVar")),
    }
    let git = match field(obj, "git") {
        None | Some(Value::Null) => None,
        Some(Value::Object(g)) => Some(GitInfo {
            r#ref: field(g, "ref")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            refs: field(g, "refs").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|r| field(r.as_object()?, "ref")?.as_str().map(str::to_string))
                    .collect()
            }),
        }),
        Some(other) => return Err(mismatch(other, "git", "v1.GitInfo")),
    };
    Ok(Event { env, git })
}

/// Go's message for a JSON syntax error, approximately (`invalid character … looking for …`).
fn go_syntax_error(e: &serde_json::Error) -> String {
    format!("invalid character in payload ({e})")
}

/// `mime.ParseMediaType`, reduced: the lower-cased type/subtype, or an error for a malformed one.
fn parse_media_type(v: &str) -> Result<String, String> {
    let t = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    match t.split_once('/') {
        Some((a, b)) if ok(a) && ok(b) => Ok(t),
        _ => Err("mime: expected slash after first token".into()),
    }
}

/// Kubernetes' env var name rule.
fn is_env_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    match name.chars().next() {
        Some(c) if ok(c) && !c.is_ascii_digit() => name.chars().all(ok),
        _ => false,
    }
}
