//! A stand-in for a Tekton Triggers EventListener behind its Route, driven by the templates'
//! own objects (the EventListener, its TriggerBinding and TriggerTemplate, the interceptor's
//! Secret), processing an event as tektoncd/triggers does:
//!
//! - the sink (`pkg/sink/sink.go`) reads the body and answers `202 Accepted` with
//!   `{"eventListener","namespace","eventListenerUID","eventID"}` whatever the triggers then
//!   decide (they run after the answer; here they run first, which changes nothing the caller
//!   can see, and keeps the test deterministic);
//! - each trigger's interceptors run in order; the `github` ClusterInterceptor
//!   (`pkg/interceptors/github/github.go`) refuses a form-encoded body, an event type outside
//!   `eventTypes` (`X-GitHub-Event`) when set, a `secretRef` without `secretKey`, a missing
//!   `X-Hub-Signature-256`, and a signature that is not `sha256=` + the hex HMAC-SHA256 of the
//!   body keyed with the Secret's value (go-github's `ValidateSignature`; its `sha1=` and
//!   `sha512=` forms are not implemented here and are refused);
//! - the bindings' `$(body.…)`/`$(header.…)` JSONPaths are resolved (`pkg/template`): a field
//!   the event lacks takes the TriggerTemplate's default for that param, or fails the trigger;
//! - the TriggerTemplate's `$(tt.params.NAME)` are replaced in its resource templates (the
//!   value JSON-escaped), each resource gets a `generateName` suffix and the labels
//!   `triggers.tekton.dev/eventlistener`, `…/trigger`, `…/triggers-eventid`, and is "created":
//!   recorded in [`Event::created`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::token::{TlsListener, server_tls_config};

/// One event as the stand-in processed it.
#[derive(Clone, Debug)]
pub struct Event {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub event_id: String,
    /// Per trigger: the resources it created, or why it did not.
    pub verdicts: Vec<(String, Result<Vec<Value>, String>)>,
}

impl Event {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every resource created for this event.
    pub fn created(&self) -> Vec<Value> {
        self.verdicts
            .iter()
            .filter_map(|(_, v)| v.as_ref().ok())
            .flatten()
            .cloned()
            .collect()
    }

    /// Why triggers refused it (empty when none did).
    pub fn refusals(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter_map(|(_, v)| v.as_ref().err().cloned())
            .collect()
    }
}

struct State {
    listener: Value,
    bindings: Vec<Value>,
    templates: Vec<Value>,
    /// Secret name → key → value.
    secrets: BTreeMap<String, BTreeMap<String, String>>,
    events: Mutex<Vec<Event>>,
    uid: String,
}

/// The running stand-in (HTTPS with the lab CA, as an edge Route); stopped when dropped.
pub struct EventListenerServer {
    addr: SocketAddr,
    cert_dir: tempfile::TempDir,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EventListenerServer {
    /// `objects`: the EventListener, TriggerBindings and TriggerTemplates (processed template
    /// objects); `secrets`: the namespace's Secrets the interceptors read.
    pub fn start(
        objects: &[Value],
        secrets: BTreeMap<String, BTreeMap<String, String>>,
    ) -> EventListenerServer {
        let of = |kind: &str| -> Vec<Value> {
            objects
                .iter()
                .filter(|o| o["kind"] == kind)
                .cloned()
                .collect()
        };
        let listener = of("EventListener").pop().expect("an EventListener");
        let state = Arc::new(State {
            listener,
            bindings: of("TriggerBinding"),
            templates: of("TriggerTemplate"),
            secrets,
            events: Mutex::new(Vec::new()),
            uid: format!("{}-el", super::random_hex(8)),
        });
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("ferry-lab-el-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = TlsListener {
                        inner: tokio::net::TcpListener::from_std(std_listener).unwrap(),
                        acceptor: tokio_rustls::TlsAcceptor::from(server_tls_config()),
                    };
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("eventlistener"),
                        _ = rx => {}
                    }
                });
            })
            .unwrap();
        let cert_dir = tempfile::Builder::new()
            .prefix("ferry-lab-el-certs-")
            .tempdir()
            .unwrap();
        super::pki::lab_ca().write_cert_dir(cert_dir.path(), None);
        EventListenerServer {
            addr,
            cert_dir,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The Route's URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The Route's CA, as `ca.crt`.
    pub fn cert_dir(&self) -> &std::path::Path {
        self.cert_dir.path()
    }

    pub fn events(&self) -> Vec<Event> {
        self.state.events.lock().unwrap().clone()
    }
}

impl Drop for EventListenerServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event_id = super::random_hex(6);
    let hdrs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut verdicts = Vec::new();
    for t in st.listener["spec"]["triggers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = t["name"].as_str().unwrap_or_default().to_string();
        verdicts.push((
            name.clone(),
            process(&st, t, &name, &hdrs, &body, &event_id),
        ));
    }
    st.events.lock().unwrap().push(Event {
        method: method.to_string(),
        headers: hdrs,
        body: body.to_vec(),
        event_id: event_id.clone(),
        verdicts,
    });
    let answer = json!({
        "eventListener": st.listener["metadata"]["name"],
        "namespace": st.listener["metadata"]["namespace"],
        "eventListenerUID": st.uid,
        "eventID": event_id,
    });
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        format!("{answer}\n"),
    )
        .into_response()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// go-github's `ValidateSignature` for the `sha256=` form.
fn validate_signature(signature: &str, body: &[u8], secret: &[u8]) -> Result<(), String> {
    let Some(hex_mac) = signature.strip_prefix("sha256=") else {
        return Err(format!("error parsing signature {signature:?}"));
    };
    let mac = hex::decode(hex_mac).map_err(|e| format!("error decoding signature: {e}"))?;
    let mut h = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    h.update(body);
    h.verify_slice(&mac)
        .map_err(|_| "payload signature check failed".to_string())
}

fn github(
    st: &State,
    params: &[Value],
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), String> {
    if header(headers, "content-type") == Some("application/x-www-form-urlencoded") {
        return Err(
            "form parameter encoding not supported, please change the hook to send JSON payloads"
                .into(),
        );
    }
    let param = |n: &str| params.iter().find(|p| p["name"] == n).map(|p| &p["value"]);
    if let Some(types) = param("eventTypes").and_then(Value::as_array) {
        let actual = header(headers, "x-github-event").unwrap_or_default();
        if !types.iter().any(|t| t == actual) {
            return Err(format!("event type {actual} is not allowed"));
        }
    }
    if let Some(r) = param("secretRef") {
        let key = r["secretKey"].as_str().unwrap_or_default();
        if key.is_empty() {
            return Err("github interceptor secretRef.secretKey is empty".into());
        }
        let sig =
            header(headers, "x-hub-signature-256").ok_or("no X-Hub-Signature-256 header set")?;
        let name = r["secretName"].as_str().unwrap_or_default();
        let secret = st
            .secrets
            .get(name)
            .and_then(|s| s.get(key))
            .ok_or(format!(
                "error getting secret: secret {name:?} key {key:?} not found"
            ))?;
        validate_signature(sig, body, secret.as_bytes())?;
    }
    Ok(())
}

/// A `$(body.a.b)` / `$(header.X)` JSONPath of a binding, on the event.
fn json_path(event: &Value, expr: &str) -> Result<String, String> {
    let mut v = event;
    for part in expr.split('.') {
        v = v.get(part).ok_or(format!("{part} is not found"))?;
    }
    Ok(match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn process(
    st: &State,
    trigger: &Value,
    trigger_name: &str,
    headers: &[(String, String)],
    body: &[u8],
    event_id: &str,
) -> Result<Vec<Value>, String> {
    for i in trigger["interceptors"].as_array().into_iter().flatten() {
        let params: Vec<Value> = i["params"].as_array().cloned().unwrap_or_default();
        match (
            i["ref"]["name"].as_str(),
            i["ref"]["kind"].as_str().unwrap_or("ClusterInterceptor"),
        ) {
            (Some("github"), "ClusterInterceptor") => github(st, &params, headers, body)?,
            other => return Err(format!("interceptor {other:?} is not in the stand-in")),
        }
    }
    let by_name =
        |list: &[Value], n: &str| list.iter().find(|o| o["metadata"]["name"] == n).cloned();
    let template = by_name(
        &st.templates,
        trigger["template"]["ref"].as_str().unwrap_or_default(),
    )
    .ok_or("TriggerTemplate not found")?;
    let tt_params: Vec<Value> = template["spec"]["params"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parsed: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| format!("failed to unmarshal request body: {e}"))?
    };
    let event = json!({
        "body": parsed,
        "header": headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "extensions": {},
    });
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for p in &tt_params {
        if let Some(d) = p["default"].as_str() {
            values.insert(p["name"].as_str().unwrap().to_string(), d.to_string());
        }
    }
    let expr = regex::Regex::new(r"\$\(([^)]+)\)").unwrap();
    for b in trigger["bindings"].as_array().into_iter().flatten() {
        let binding = by_name(&st.bindings, b["ref"].as_str().unwrap_or_default())
            .ok_or("TriggerBinding not found")?;
        for p in binding["spec"]["params"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let raw = p["value"].as_str().unwrap_or_default();
            let mut out = raw.to_string();
            for c in expr.captures_iter(raw) {
                let v = match json_path(&event, &c[1]) {
                    Ok(v) => v,
                    Err(e) => match values.get(&name) {
                        Some(d) => d.clone(),
                        None => {
                            return Err(format!(
                                "failed to replace JSONPath value for param {name}: {raw}: {e}"
                            ));
                        }
                    },
                };
                out = out.replace(&c[0], &v);
            }
            values.insert(name, out);
        }
    }
    let mut created = Vec::new();
    for rt in template["spec"]["resourcetemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut text = rt.to_string();
        for (k, v) in &values {
            let escaped = serde_json::to_string(v).unwrap();
            text = text.replace(&format!("$(tt.params.{k})"), &escaped[1..escaped.len() - 1]);
        }
        if text.contains("$(tt.params.") {
            return Err(format!("undeclared param in {text}"));
        }
        let mut o: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let meta = o["metadata"].as_object_mut().ok_or("no metadata")?;
        if let Some(g) = meta.remove("generateName") {
            meta.insert(
                "name".into(),
                Value::String(format!("{}{}", g.as_str().unwrap(), super::random_hex(3))),
            );
        }
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        labels["triggers.tekton.dev/eventlistener"] = st.listener["metadata"]["name"].clone();
        labels["triggers.tekton.dev/trigger"] = Value::String(trigger_name.to_string());
        labels["triggers.tekton.dev/triggers-eventid"] = Value::String(event_id.to_string());
        created.push(o);
    }
    Ok(created)
}
