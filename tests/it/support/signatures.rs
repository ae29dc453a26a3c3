//! A stand-in for OpenShift's image-signature API extension (openshift/image-registry's
//! `signatureDispatcher`, which skopeo's `docker` transport reads and writes), served by a
//! [`FaultProxy`] in front of a lab registry:
//!
//! - the `/v2/` answer carries `X-Registry-Supports-Signatures: 1`;
//! - `GET /extensions/v2/<repo>/signatures/<digest>`: 404 when the image is not in the
//!   repository (the registry is asked), else 200 with
//!   `{"signatures":[{"schemaVersion":2,"name":…,"type":…,"content":<base64>}]}`;
//! - `PUT` of one `{"schemaVersion","name","type","content"}`: the type defaults to `atomic`;
//!   a schema version other than 2, or a name that is not `<digest>@<name>`, is 400
//!   `SIGNATURE_INVALID`; a name already taken is 409 `SIGNATURE_EXISTS`; an image not in the
//!   repository is 404; otherwise the signature is stored and the answer is 201, no body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};

use super::faults::{Fault, FaultProxy, Rule, Served};

/// One stored signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSignature {
    pub name: String,
    pub kind: String,
    pub content: Vec<u8>,
}

type Store = Arc<Mutex<HashMap<(String, String), Vec<StoredSignature>>>>;

/// The signatures a proxy serves, by repository and image digest.
#[derive(Clone, Default)]
pub struct SignatureExtension {
    store: Store,
}

impl SignatureExtension {
    /// Serve the extension on `proxy` (and announce it on `/v2/`).
    pub fn serve(proxy: &FaultProxy) -> SignatureExtension {
        let ext = SignatureExtension::default();
        proxy.add(Rule::new(
            "GET",
            "^/v2/$",
            Fault::AddHeader("X-Registry-Supports-Signatures".into(), "1".into()),
        ));
        let store = ext.store.clone();
        proxy.add(Rule::new(
            "*",
            "^/extensions/v2/",
            Fault::Serve(Arc::new(move |req| {
                let store = store.clone();
                Box::pin(async move { handle(store, req).await })
            })),
        ));
        ext
    }

    /// Store a signature directly (as `oc adm sign` or `oc image` would have).
    pub fn add(&self, repo: &str, digest: &str, kind: &str, content: &[u8]) {
        let mut store = self.store.lock().unwrap();
        let list = store.entry((repo.into(), digest.into())).or_default();
        list.push(StoredSignature {
            name: format!("{digest}@{}", super::random_hex(16)),
            kind: kind.into(),
            content: content.to_vec(),
        });
    }

    /// The signatures stored for an image.
    pub fn signatures(&self, repo: &str, digest: &str) -> Vec<StoredSignature> {
        self.store
            .lock()
            .unwrap()
            .get(&(repo.to_string(), digest.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

fn json_answer(status: StatusCode, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(v.to_string()))
        .expect("response")
}

fn error(status: StatusCode, code: &str, detail: &str) -> Response {
    json_answer(
        status,
        json!({"errors": [{"code": code, "message": code.to_lowercase(), "detail": detail}]}),
    )
}

async fn handle(store: Store, req: Served) -> Response {
    let path = req.seen.path.clone();
    let Some((repo, digest)) = path
        .strip_prefix("/extensions/v2/")
        .and_then(|p| p.rsplit_once("/signatures/"))
        .map(|(r, d)| (r.to_string(), d.to_string()))
    else {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "no such endpoint");
    };
    // The image must be in the repository (OpenShift looks up the image stream image).
    let upstream = req.upstream.clone().expect("a registry behind the proxy");
    let exists = req
        .client
        .head(format!("{upstream}/v2/{repo}/manifests/{digest}"))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if !exists {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .expect("response");
    }
    let key = (repo, digest.clone());
    match req.seen.method.as_str() {
        "GET" => {
            let list = store.lock().unwrap().get(&key).cloned().unwrap_or_default();
            let sigs: Vec<Value> = list
                .iter()
                .map(|s| {
                    json!({
                        "schemaVersion": 2,
                        "name": s.name,
                        "type": s.kind,
                        "content": base64::engine::general_purpose::STANDARD.encode(&s.content),
                    })
                })
                .collect();
            json_answer(StatusCode::OK, json!({ "signatures": sigs }))
        }
        "PUT" => {
            let Ok(v) = serde_json::from_slice::<Value>(&req.body) else {
                return error(StatusCode::BAD_REQUEST, "SIGNATURE_INVALID", "not JSON");
            };
            if v.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "SIGNATURE_INVALID",
                    "only schemaVersion=2 is currently supported",
                );
            }
            let name = v.get("name").and_then(Value::as_str).unwrap_or("");
            if name
                .strip_prefix(&format!("{digest}@"))
                .is_none_or(str::is_empty)
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "SIGNATURE_INVALID",
                    "name must be <digest>@<signature name>",
                );
            }
            let kind = match v.get("type").and_then(Value::as_str) {
                None | Some("") => "atomic",
                Some(k) => k,
            };
            let Some(content) = v
                .get("content")
                .and_then(Value::as_str)
                .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
            else {
                return error(StatusCode::BAD_REQUEST, "SIGNATURE_INVALID", "no content");
            };
            let mut store = store.lock().unwrap();
            let list = store.entry(key).or_default();
            if list.iter().any(|s| s.name == name) {
                return error(StatusCode::CONFLICT, "SIGNATURE_EXISTS", name);
            }
            list.push(StoredSignature {
                name: name.to_string(),
                kind: kind.to_string(),
                content,
            });
            Response::builder()
                .status(StatusCode::CREATED)
                .body(Body::empty())
                .expect("response")
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "GET or PUT"),
    }
}
