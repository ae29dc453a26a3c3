//! What is attached to images, for the lab: cosign-shaped and OCI 1.1 artifacts built in the
//! test, pushed with the lab's own HTTP client, and a stand-in for the OCI 1.1 referrers API.
//!
//! The lab's registry (CNCF distribution 2.8) predates the referrers API: it is the
//! "fallback tag" registry. [`ReferrersApi::serve`] puts the API in front of one, on a
//! [`FaultProxy`], as the OCI distribution spec 1.1 describes it:
//!
//! - `PUT /v2/<name>/manifests/<reference>` is forwarded; when the registry accepted a
//!   manifest that has a `subject`, the stand-in indexes it and answers with
//!   `OCI-Subject: <subject digest>` (a client then maintains no fallback tag);
//! - `GET /v2/<name>/referrers/<digest>`: 200 with an image index listing the manifests whose
//!   subject is `<digest>` (an unknown digest gets an empty list, never 404), each entry with
//!   `mediaType`, `digest`, `size`, `artifactType` (the manifest's, else its config's media
//!   type) and `annotations`; `?artifactType=T` (repeatable) filters the list and the answer
//!   says so with `OCI-Filters-Applied: artifactType` — unless the stand-in is told not to
//!   filter ([`ReferrersApi::ignore_filters`]), as the spec allows; an invalid digest is 400;
//! - a manifest deleted from the registry drops out of the lists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::faults::{Fault, FaultProxy, Rule, Served};
use super::http::LabHttp;
use super::sha256_digest;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const SPDX: &str = "application/spdx+json";
pub const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

type Index = Arc<Mutex<HashMap<(String, String), Vec<Value>>>>;

/// The stand-in's state: which manifests refer to which, per repository.
#[derive(Clone, Default)]
pub struct ReferrersApi {
    index: Index,
    ignore_filters: Arc<AtomicBool>,
}

impl ReferrersApi {
    /// Serve the referrers API on `proxy` (which fronts a lab registry).
    pub fn serve(proxy: &FaultProxy) -> ReferrersApi {
        let api = ReferrersApi::default();
        let index = api.index.clone();
        proxy.add(Rule::new(
            "PUT",
            "^/v2/.+/manifests/[^/]+$",
            Fault::Serve(Arc::new(move |req| {
                let index = index.clone();
                Box::pin(async move { put_manifest(index, req).await })
            })),
        ));
        let (index, ignore) = (api.index.clone(), api.ignore_filters.clone());
        proxy.add(Rule::new(
            "GET",
            "^/v2/.+/referrers/[^/]+$",
            Fault::Serve(Arc::new(move |req| {
                let (index, ignore) = (index.clone(), ignore.clone());
                Box::pin(async move { list(index, ignore.load(Ordering::SeqCst), req).await })
            })),
        ));
        api
    }

    /// Answer `?artifactType=` with the whole list and no `OCI-Filters-Applied` (allowed).
    pub fn ignore_filters(&self, ignore: bool) {
        self.ignore_filters.store(ignore, Ordering::SeqCst);
    }

    /// The digests of the referrers of `subject` indexed in `repo`.
    pub fn referrers(&self, repo: &str, subject: &str) -> Vec<String> {
        self.index
            .lock()
            .unwrap()
            .get(&(repo.to_string(), subject.to_string()))
            .map(|l| {
                l.iter()
                    .filter_map(|e| e["digest"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn answer(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Body::from(body)).expect("response")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(
        status,
        &[("content-type", "application/json".into())],
        json!({"errors": [{"code": code, "message": message}]})
            .to_string()
            .into_bytes(),
    )
}

/// The descriptor of a manifest in a referrers list.
pub fn entry(bytes: &[u8], media_type: &str) -> Value {
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let mut e = json!({
        "mediaType": doc.get("mediaType").and_then(Value::as_str).unwrap_or(media_type),
        "digest": sha256_digest(bytes),
        "size": bytes.len(),
    });
    let artifact_type = doc
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| doc.pointer("/config/mediaType").and_then(Value::as_str));
    if let Some(t) = artifact_type {
        e["artifactType"] = json!(t);
    }
    if let Some(a) = doc.get("annotations").filter(|a| a.is_object()) {
        e["annotations"] = a.clone();
    }
    e
}

async fn put_manifest(index: Index, req: Served) -> Response {
    let upstream = req.upstream.clone().expect("a registry behind the proxy");
    let mut rb = req.client.put(format!("{upstream}{}", req.seen.path));
    for (k, v) in &req.seen.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            rb = rb.header(k.as_str(), v.as_str());
        }
    }
    let resp = match rb.body(req.body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, "UNAVAILABLE", &e.to_string()),
    };
    let status = resp.status().as_u16();
    let mut headers: Vec<(&str, String)> = vec![];
    for name in ["content-type", "docker-content-digest", "location"] {
        if let Some(v) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.push((name, v.to_string()));
        }
    }
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if status == 201 {
        let doc: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if let Some(subject) = doc.pointer("/subject/digest").and_then(Value::as_str) {
            let repo = req.seen.path["/v2/".len()..]
                .rsplit_once("/manifests/")
                .map(|(r, _)| r.to_string())
                .unwrap_or_default();
            let ct = req
                .seen
                .header("content-type")
                .unwrap_or(OCI_MANIFEST)
                .to_string();
            let e = entry(&req.body, &ct);
            let mut index = index.lock().unwrap();
            let list = index.entry((repo, subject.to_string())).or_default();
            if !list.iter().any(|x| x["digest"] == e["digest"]) {
                list.push(e);
            }
            headers.push(("oci-subject", subject.to_string()));
        }
    }
    answer(
        StatusCode::from_u16(status).expect("status"),
        &headers,
        body,
    )
}

async fn list(index: Index, ignore_filters: bool, req: Served) -> Response {
    let rest = &req.seen.path["/v2/".len()..];
    let Some((repo, digest)) = rest.rsplit_once("/referrers/") else {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "no repository");
    };
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
    }
    let wanted: Vec<String> = url::form_urlencoded::parse(req.seen.query.as_bytes())
        .filter(|(k, _)| k == "artifactType")
        .map(|(_, v)| v.into_owned())
        .collect();
    let all = index
        .lock()
        .unwrap()
        .get(&(repo.to_string(), digest.to_string()))
        .cloned()
        .unwrap_or_default();
    // Manifests deleted from the registry drop out.
    let upstream = req.upstream.clone().expect("a registry behind the proxy");
    let mut listed = vec![];
    for e in all {
        let d = e["digest"].as_str().unwrap_or_default();
        let exists = req
            .client
            .head(format!("{upstream}/v2/{repo}/manifests/{d}"))
            .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if exists {
            listed.push(e);
        }
    }
    let mut headers = vec![("content-type", OCI_INDEX.to_string())];
    if !wanted.is_empty() && !ignore_filters {
        listed.retain(|e| {
            e["artifactType"]
                .as_str()
                .is_some_and(|t| wanted.iter().any(|w| w == t))
        });
        headers.push(("oci-filters-applied", "artifactType".into()));
    }
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
    answer(StatusCode::OK, &headers, body.to_string().into_bytes())
}

/// An artifact built in the test: its manifest and blobs.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub manifest: Vec<u8>,
    pub media_type: String,
    pub digest: String,
    pub blobs: Vec<Vec<u8>>,
}

impl Artifact {
    fn new(doc: Value, blobs: Vec<Vec<u8>>) -> Artifact {
        let manifest = serde_json::to_vec(&doc).unwrap();
        Artifact {
            digest: sha256_digest(&manifest),
            media_type: doc["mediaType"]
                .as_str()
                .unwrap_or(OCI_MANIFEST)
                .to_string(),
            manifest,
            blobs,
        }
    }

    /// Push the blobs, then the manifest under `reference` (its digest if `None`), to the
    /// registry or proxy at `base` (`http://IP:PORT`); the answer's headers.
    pub fn push(
        &self,
        base: &str,
        repo: &str,
        reference: Option<&str>,
    ) -> reqwest::header::HeaderMap {
        let http = LabHttp::new(base.to_string(), None, None);
        for b in &self.blobs {
            push_blob(&http, repo, b);
        }
        let r = reference.unwrap_or(&self.digest);
        let resp = http
            .send(
                reqwest::Method::PUT,
                &format!("/v2/{repo}/manifests/{r}"),
                &[("content-type", self.media_type.clone())],
                Some(self.manifest.clone()),
            )
            .unwrap();
        assert_eq!(
            resp.status,
            201,
            "pushing {r}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        resp.headers
    }

    /// `(media type, digest, size)` as a subject descriptor.
    pub fn subject(&self) -> Subject {
        Subject {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.manifest.len() as u64,
        }
    }
}

/// Push one blob (monolithic upload).
/// Upload `bytes` as a blob of `repo` at the registry `base` (`http://IP:PORT`), for tests
/// that arrange unusual registry states.
pub fn upload_blob(base: &str, repo: &str, bytes: &[u8]) {
    push_blob(&LabHttp::new(base.to_string(), None, None), repo, bytes);
}

fn push_blob(http: &LabHttp, repo: &str, bytes: &[u8]) {
    let d = sha256_digest(bytes);
    let start = http
        .send(
            reqwest::Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(start.status, 202, "starting an upload");
    let loc = start.header("location").unwrap();
    let path = loc.strip_prefix(&http.base).unwrap_or(&loc).to_string();
    let sep = if path.contains('?') { '&' } else { '?' };
    let put = http
        .send(
            reqwest::Method::PUT,
            &format!("{path}{sep}digest={d}"),
            &[("content-type", "application/octet-stream".into())],
            Some(bytes.to_vec()),
        )
        .unwrap();
    assert_eq!(
        put.status,
        201,
        "uploading {d}: {}",
        String::from_utf8_lossy(&put.body)
    );
}

/// A manifest a referrer points at.
#[derive(Clone, Debug)]
pub struct Subject {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Subject {
    /// The subject of a lab manifest (`Registry::get_manifest`).
    pub fn of(m: &super::Manifest) -> Subject {
        Subject {
            media_type: m.media_type.clone(),
            digest: m.digest.clone(),
            size: m.bytes.len() as u64,
        }
    }

    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

fn blob_desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

/// A cosign `sha256-<hex>.sig` manifest (tag scheme): a config listing the payload, one
/// simple-signing layer with its signature annotation.
pub fn cosign_signature(subject_digest: &str, repo: &str, salt: &str) -> Artifact {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": repo},
            "image": {"docker-manifest-digest": subject_digest},
            "type": "cosign container image signature"
        },
        "optional": {"salt": salt}
    })
    .to_string()
    .into_bytes();
    cosign_shaped(
        COSIGN_SIMPLESIGNING,
        payload,
        json!({"dev.cosignproject.cosign/signature": format!("MEUCIQ{}", super::random_hex(24))}),
    )
}

/// A cosign `.att` manifest: one DSSE envelope layer.
pub fn cosign_attestation(subject_digest: &str) -> Artifact {
    let statement = json!({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": subject_digest.trim_start_matches("sha256:")}}], "predicateType": "https://slsa.dev/provenance/v0.2"});
    let envelope = json!({"payloadType": "application/vnd.in-toto+json", "payload": statement.to_string(), "signatures": [{"sig": super::random_hex(16)}]})
        .to_string()
        .into_bytes();
    cosign_shaped(
        DSSE,
        envelope,
        json!({"predicateType": "https://slsa.dev/provenance/v0.2"}),
    )
}

/// A cosign `.sbom` manifest: one SPDX layer.
pub fn cosign_sbom(name: &str) -> Artifact {
    let sbom = json!({"spdxVersion": "SPDX-2.3", "name": name, "packages": [{"name": super::random_hex(6)}]})
        .to_string()
        .into_bytes();
    cosign_shaped("text/spdx+json", sbom, json!({}))
}

fn cosign_shaped(layer_type: &str, payload: Vec<u8>, annotations: Value) -> Artifact {
    let config = json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&payload)]}, "config": {}
    })
    .to_string()
    .into_bytes();
    let mut layer = blob_desc(layer_type, &payload);
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        layer["annotations"] = annotations;
    }
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": blob_desc(OCI_CONFIG, &config),
        "layers": [layer],
    });
    Artifact::new(doc, vec![config, payload])
}

/// An OCI 1.1 referrer of `subject`: `artifactType`, the empty config, one layer of
/// `payload` (of `layer_type`), and annotations.
pub fn referrer(
    subject: &Subject,
    artifact_type: &str,
    layer_type: &str,
    payload: &[u8],
) -> Artifact {
    let empty = b"{}".to_vec();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(&empty), "size": 2, "data": "e30="},
        "layers": [blob_desc(layer_type, payload)],
        "subject": subject.json(),
        "annotations": {"org.opencontainers.image.created": "2025-06-01T00:00:00Z", "lab.nonce": super::random_hex(4)},
    });
    Artifact::new(doc, vec![empty, payload.to_vec()])
}

/// An SPDX SBOM referrer of `subject`.
pub fn sbom_referrer(subject: &Subject) -> Artifact {
    let sbom = json!({"spdxVersion": "SPDX-2.3", "name": super::random_hex(6)}).to_string();
    referrer(subject, SPDX, SPDX, sbom.as_bytes())
}

/// A cosign signature as an OCI 1.1 referrer of `subject` (cosign's referrers mode).
pub fn signature_referrer(subject: &Subject) -> Artifact {
    let payload = json!({"critical": {"image": {"docker-manifest-digest": subject.digest}, "type": "cosign container image signature"}}).to_string();
    referrer(
        subject,
        COSIGN_SIG_ARTIFACT,
        COSIGN_SIMPLESIGNING,
        payload.as_bytes(),
    )
}

/// An in-toto attestation (a DSSE envelope) as an OCI 1.1 referrer of `subject`.
pub fn attestation_referrer(subject: &Subject) -> Artifact {
    let statement = json!({"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1", "subject": [{"digest": {"sha256": subject.digest.trim_start_matches("sha256:")}}]});
    let envelope = json!({"payloadType": "application/vnd.in-toto+json", "payload": statement.to_string(), "signatures": [{"sig": super::random_hex(16)}]}).to_string();
    referrer(
        subject,
        "application/vnd.in-toto+json",
        DSSE,
        envelope.as_bytes(),
    )
}

/// The fallback index (`sha256-<hex>` tag) listing `referrers`, as a client of a registry
/// without the referrers API writes it.
pub fn fallback_index(referrers: &[&Artifact]) -> Artifact {
    let entries: Vec<Value> = referrers
        .iter()
        .map(|a| entry(&a.manifest, &a.media_type))
        .collect();
    Artifact::new(
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        vec![],
    )
}

/// `sha256-<hex>` for `sha256:<hex>`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

/// The digests a referrers index (fallback tag or API answer) lists.
pub fn listed(index: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(index).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap().to_string())
        .collect()
}
