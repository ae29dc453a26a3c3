//! Image signatures through OpenShift's registry API extension, as skopeo reads and writes
//! them: a registry that answers its `/v2/` ping with `X-Registry-Supports-Signatures: 1`
//! serves `GET /extensions/v2/<repo>/signatures/<digest>` (`{"signatures": [...]}`) and takes
//! one new signature per `PUT` to the same path (201 Created). Only "atomic" signatures of
//! schema version 2 are read and written; their bytes pass through unchanged.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use super::{Body, Client, Request, Scope, status_error};
use crate::error::{Error, Result};
use crate::reference::Digest;

/// The header a registry's `/v2/` answer carries when it serves the extension.
pub const SUPPORTS_HEADER: &str = "x-registry-supports-signatures";
/// The only schema version skopeo reads and writes.
pub const SCHEMA_VERSION: i64 = 2;
/// The only type skopeo reads and writes.
pub const TYPE_ATOMIC: &str = "atomic";
/// Largest signature list ferry reads (skopeo's limit is 4 MiB as well).
const MAX_LIST: usize = 4 << 20;

/// One signature as the extension carries it; `content` is base64 in JSON (Go's `[]byte`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionSignature {
    /// `schemaVersion`.
    #[serde(rename = "schemaVersion", default)]
    pub version: i64,
    /// `sha256:<digest>@<unique name>`.
    #[serde(default)]
    pub name: String,
    /// `atomic`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The signature bytes.
    #[serde(with = "b64", default)]
    pub content: Vec<u8>,
}

impl ExtensionSignature {
    /// Whether skopeo would copy it (an atomic signature of schema version 2).
    pub fn is_atomic_v2(&self) -> bool {
        self.version == SCHEMA_VERSION && self.kind == TYPE_ATOMIC
    }
}

#[derive(Deserialize)]
struct SignatureList {
    #[serde(default)]
    signatures: Option<Vec<ExtensionSignature>>,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

impl Client {
    /// Whether the registry serves the signature extension (read from its `/v2/` answer).
    pub async fn supports_signatures(&self) -> Result<bool> {
        self.base().await?;
        Ok(self
            .supports_signatures
            .load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn signatures_url(&self, repo: &str, digest: &Digest) -> Result<url::Url> {
        let base = self.base().await?;
        base.join(&format!("extensions/v2/{repo}/signatures/{digest}"))
            .map_err(|_| Error::usage(format!("cannot build a signature URL for {repo}")))
    }

    /// The atomic signatures of the image `digest` in `repo`. An answer other than 200 is an
    /// error, as in skopeo (the registry said it serves the extension).
    pub async fn get_signatures(
        &self,
        repo: &str,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<Vec<ExtensionSignature>> {
        let loc = self.location(repo);
        let op = format!("reading the signatures of {}", digest.short());
        let url = self.signatures_url(repo, digest).await?;
        let answer = self
            .send_read(
                Request {
                    method: Method::GET,
                    url,
                    scope,
                    headers: HeaderMap::new(),
                    body: Body::Empty,
                    op: &op,
                    repo,
                },
                MAX_LIST,
                "signature list",
            )
            .await?;
        let body = match answer {
            Ok(b) => b.body,
            Err(resp) => return Err(status_error(resp, &op, &loc).await),
        };
        let list: SignatureList = serde_json::from_slice(&body).map_err(|e| Error::Invalid {
            what: format!("signature list of {}", digest.short()),
            location: loc.clone(),
            reason: e.to_string(),
        })?;
        Ok(list
            .signatures
            .unwrap_or_default()
            .into_iter()
            .filter(ExtensionSignature::is_atomic_v2)
            .collect())
    }

    /// Add one signature to the image `digest` in `repo` (the registry answers 201).
    pub async fn put_signature(
        &self,
        repo: &str,
        digest: &Digest,
        content: &[u8],
        scope: &Scope,
    ) -> Result<()> {
        let loc = self.location(repo);
        let op = format!("writing a signature of {}", digest.short());
        let url = self.signatures_url(repo, digest).await?;
        // The API wants a new unique name: the digest, `@`, 32 random hex digits (as skopeo).
        let name = format!(
            "{digest}@{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let body = serde_json::to_vec(&ExtensionSignature {
            version: SCHEMA_VERSION,
            name,
            kind: TYPE_ATOMIC.into(),
            content: content.to_vec(),
        })
        .map_err(|e| Error::usage(format!("encoding a signature: {e}")))?;
        let resp = self
            .send_small(Request {
                method: Method::PUT,
                url,
                scope,
                headers: HeaderMap::new(),
                body: Body::Bytes(Bytes::from(body), "application/json"),
                op: &op,
                repo,
            })
            .await?;
        if resp.status() != reqwest::StatusCode::CREATED {
            return Err(status_error(resp, &op, &loc).await);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_openshift_and_skopeo_write_it() {
        let s = ExtensionSignature {
            version: 2,
            name: "sha256:ab@01".into(),
            kind: "atomic".into(),
            content: b"\x00sig".to_vec(),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"schemaVersion": 2, "name": "sha256:ab@01", "type": "atomic", "content": "AHNpZw=="})
        );
        let list: SignatureList = serde_json::from_value(serde_json::json!({"signatures": [
            v, {"schemaVersion": 1, "type": "atomic", "content": ""}, {"schemaVersion": 2, "type": "other"}
        ]}))
        .unwrap();
        let sigs = list.signatures.unwrap();
        assert_eq!(sigs.iter().filter(|s| s.is_atomic_v2()).count(), 1);
        assert_eq!(sigs[0], s);
        assert!(
            serde_json::from_str::<SignatureList>(r#"{"signatures":[{"content":"%%"}]}"#).is_err()
        );
        assert!(
            serde_json::from_str::<SignatureList>("{}")
                .unwrap()
                .signatures
                .is_none()
        );
    }
}
